//! Key rotation on a device with provisioned keys: a confirmed image's REVOKE_KEYS (and, when
//! the profile says so, revocation by use) programs the record's one-way revoked words, and a
//! revoked key never verifies again, wherever its image sits.

// Test code: the crate's no-panic lints are for the bootloader, not for its tests.
#![allow(
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod support;

use bootloader::sim::{Fault, Operation};
use bootloader::{Outcome, Refusal};
use provisioning::SlotState;
use provisioning::format::revoked_word;
use support::{Device, Signer, provisioned_device, record_offset, rotation_image};

/// Keys A (slot 0) and B (slot 1); the factory image is signed by A.
fn rotation_device(by_use: bool) -> (Signer, Signer, Device) {
    let (a, b) = (Signer::new(1), Signer::new(2));
    let mut device = provisioned_device(&[&a, &b], &rotation_image(&a, 1, 1, &[]), by_use);
    device.boot().expect("factory image");
    (a, b, device)
}

fn states(device: &Device) -> Vec<SlotState> {
    let record = device.record();
    (0..record.key_count()).map(|slot| record.slot_state(slot)).collect()
}

/// Test-installs `image`, boots it and confirms it, as an application that is happy with it.
fn install_and_confirm(device: &mut Device, image: &[u8]) {
    device.stage(image, false);
    let test = device.boot().expect("test boot");
    assert_eq!(test.record.outcome, Outcome::TestBoot);
    device.updater().confirm().expect("confirm");
}

fn outcome_of_update(device: &mut Device, image: &[u8]) -> (Outcome, Option<Refusal>) {
    device.stage(image, false);
    let boot = device.boot().expect("boots");
    (boot.record.outcome, boot.record.refusal)
}

#[test]
fn a_rotation_waits_for_confirmation_then_revokes_for_good() {
    let (a, b, mut device) = rotation_device(false);
    // The same security counter as the factory image: only the key can refuse a downgrade.
    let rotation = rotation_image(&b, 2, 1, &[0]);

    // The test boot revokes nothing: the A-signed image it may revert to stays bootable.
    device.stage(&rotation, false);
    assert_eq!(device.boot().expect("test boot").record.outcome, Outcome::TestBoot);
    assert_eq!(states(&device), [SlotState::Valid, SlotState::Valid]);
    assert_eq!(device.boot().expect("revert").record.outcome, Outcome::Reverted);
    assert_eq!(states(&device), [SlotState::Valid, SlotState::Valid]);

    install_and_confirm(&mut device, &rotation);
    assert_eq!(device.boot().expect("confirmed").record.outcome, Outcome::Normal);
    assert_eq!(states(&device), [SlotState::Revoked, SlotState::Valid]);

    // Written once: later boots of the same image leave the word alone.
    device.flash.record_operations();
    device.boot().expect("again");
    let record = record_offset()..record_offset() + provisioning::RECORD_LEN as u32;
    let writes_to_record = device.flash.operations_log().iter().filter(
        |operation| matches!(operation, Operation::Write { offset, .. } if record.contains(offset)),
    );
    assert_eq!(writes_to_record.count(), 0);

    // A is refused from then on: the A-signed factory image, still in the secondary slot,
    // offered again as a downgrade, and a new A-signed update.
    let factory = rotation_image(&a, 1, 1, &[]);
    assert_eq!(device.slot(support::layout().secondary, factory.len()), factory);
    device.updater().request_upgrade(false).expect("request the secondary slot as it is");
    let boot = device.boot().expect("stays on the rotation image");
    assert_eq!(boot.record.outcome, Outcome::UpdateRefused);
    assert_eq!((boot.record.refusal, boot.record.version.major), (Some(Refusal::UntrustedKey), 2));
    assert_eq!(
        outcome_of_update(&mut device, &rotation_image(&a, 3, 3, &[])),
        (Outcome::UpdateRefused, Some(Refusal::UntrustedKey))
    );
    // B goes on: an update signed by B installs.
    install_and_confirm(&mut device, &rotation_image(&b, 4, 4, &[]));
    assert_eq!(device.boot().expect("B").record.version.major, 4);
}

#[test]
fn a_permanent_rotation_revokes_at_its_first_boot() {
    let (_, b, mut device) = rotation_device(false);
    device.stage(&rotation_image(&b, 2, 2, &[0]), true);
    assert_eq!(device.boot().expect("upgraded").record.outcome, Outcome::Upgraded);
    assert_eq!(states(&device), [SlotState::Revoked, SlotState::Valid]);
}

#[test]
fn an_image_revoking_its_own_key_is_refused() {
    let (_, b, mut device) = rotation_device(false);
    let suicidal = rotation_image(&b, 2, 2, &[0, 1]);
    assert_eq!(
        outcome_of_update(&mut device, &suicidal),
        (Outcome::UpdateRefused, Some(Refusal::RevokesOwnKey))
    );
    assert_eq!(states(&device), [SlotState::Valid, SlotState::Valid]);
    // Once A is gone, B is the last valid key: an image revoking it is refused the same way.
    install_and_confirm(&mut device, &rotation_image(&b, 2, 2, &[0]));
    device.boot().expect("rotated");
    assert_eq!(
        outcome_of_update(&mut device, &rotation_image(&b, 3, 3, &[1])),
        (Outcome::UpdateRefused, Some(Refusal::RevokesOwnKey))
    );
    assert_eq!(states(&device), [SlotState::Revoked, SlotState::Valid]);
}

#[test]
fn a_revoked_key_is_refused_as_revert_target() {
    let (_, b, mut device) = rotation_device(false);
    // A test image by B, its revert target the factory image by A.
    device.stage(&rotation_image(&b, 2, 2, &[]), false);
    assert_eq!(device.boot().expect("test boot").record.outcome, Outcome::TestBoot);
    // However slot 0 came to be revoked, the A-signed image is no longer a revert target.
    let word = revoked_word(0).expect("slot 0");
    device.flash.program(record_offset() as usize + word.start, &[0; 4]);
    let boot = device.boot().expect("keeps the test image");
    assert_eq!(boot.record.outcome, Outcome::RevertRefused);
    assert_eq!(boot.record.refusal, Some(Refusal::UntrustedKey));
    assert_eq!(boot.record.version.major, 2);
}

#[test]
fn revocation_by_use_revokes_every_slot_below_the_signers() {
    let (a, b, c) = (Signer::new(1), Signer::new(2), Signer::new(3));
    let mut device = provisioned_device(&[&a, &b, &c], &rotation_image(&a, 1, 1, &[]), true);
    device.boot().expect("factory image");
    // Signed by B: revokes A, once confirmed.
    device.stage(&rotation_image(&b, 2, 2, &[]), false);
    device.boot().expect("test boot");
    assert_eq!(states(&device), [SlotState::Valid; 3]);
    device.updater().confirm().expect("confirm");
    device.boot().expect("confirmed");
    assert_eq!(states(&device), [SlotState::Revoked, SlotState::Valid, SlotState::Valid]);
    // Signed by C: revokes B too.
    install_and_confirm(&mut device, &rotation_image(&c, 3, 3, &[]));
    device.boot().expect("confirmed");
    assert_eq!(states(&device), [SlotState::Revoked, SlotState::Revoked, SlotState::Valid]);
    assert_eq!(
        outcome_of_update(&mut device, &rotation_image(&b, 4, 4, &[])),
        (Outcome::UpdateRefused, Some(Refusal::UntrustedKey))
    );
}

#[test]
fn without_revocation_by_use_a_newer_key_revokes_nothing() {
    let (a, b, mut device) = rotation_device(false);
    install_and_confirm(&mut device, &rotation_image(&b, 2, 2, &[]));
    device.boot().expect("confirmed");
    assert_eq!(states(&device), [SlotState::Valid, SlotState::Valid]);
    install_and_confirm(&mut device, &rotation_image(&a, 3, 3, &[]));
    assert_eq!(device.boot().expect("A still trusted").record.version.major, 3);
}

/// Power cut at every flash operation of the boot that applies a revocation, the write torn:
/// each following boot starts the rotation image, the word never goes back to erased once it
/// left it, and the revocation ends applied, with one completed write at most.
#[test]
fn a_torn_revocation_reads_as_pending_or_revoked_never_undone() {
    let (_, b, mut start) = rotation_device(false);
    install_and_confirm(&mut start, &rotation_image(&b, 2, 2, &[0]));
    let total = {
        let mut probe = start.clone();
        let before = probe.flash.operations();
        probe.boot().expect("applies");
        probe.flash.operations() - before
    };
    for cut in 1..=total {
        for seed in 0..8 {
            let mut device = start.clone();
            device.flash.schedule(cut, Fault::TornWrite { seed });
            let _ = device.boot();
            device.flash.restore_power();
            let after_cut = states(&device)[0];
            for _ in 0..2 {
                let boot = device.boot().expect("boots after the cut");
                assert_eq!(boot.record.version.major, 2, "cut {cut} seed {seed}");
                assert_eq!(states(&device)[1], SlotState::Valid, "cut {cut} seed {seed}");
                if after_cut != SlotState::Valid {
                    assert_eq!(states(&device)[0], after_cut, "cut {cut} seed {seed}: rewritten");
                }
            }
            assert_ne!(states(&device)[0], SlotState::Valid, "cut {cut} seed {seed}: pending");
        }
    }
}
