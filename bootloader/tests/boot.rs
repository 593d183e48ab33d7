//! End-to-end boot scenarios on simulated NOR flash with signed images.

// Test code: the crate's no-panic lints are for the bootloader, not for its tests.
#![allow(clippy::expect_used)]

mod support;

use bootloader::{BootError, Mode, Outcome, Refusal, Region};
use support::{Device, Signer, image, image_with_flags, layout};
use verifier_core::format::flags;

const LEN: usize = 2500; // three sectors with header and TLVs

fn trusted_device(signer: &Signer, factory: &[u8]) -> Device {
    Device::new(vec![signer.trusted()], factory)
}

#[test]
fn factory_image_boots_and_sets_the_counter() {
    let key = Signer::new(1);
    let v1 = image(&key, 1, 1, LEN);
    let mut device = trusted_device(&key, &v1);
    let decision = device.boot().expect("boots");
    assert_eq!(decision.record.outcome, Outcome::Normal);
    assert_eq!(decision.record.version.major, 1);
    assert_eq!(decision.record.device_security_counter, 1);
    assert_eq!(decision.vector_table_offset, layout().primary.offset + 0x40);
}

#[test]
fn test_upgrade_is_reverted_unless_confirmed() {
    let key = Signer::new(1);
    let (v1, v2) = (image(&key, 1, 1, LEN), image(&key, 2, 2, LEN + 700));
    let mut device = trusted_device(&key, &v1);
    device.boot().expect("v1");
    device.stage(&v2, false);

    let test = device.boot().expect("test boot");
    assert_eq!((test.record.outcome, test.record.version.major), (Outcome::TestBoot, 2));
    assert_eq!(test.record.device_security_counter, 1, "not raised before confirmation");
    assert!(device.primary_holds(&v2));
    assert!(device.updater().is_pending_confirmation().expect("read"));

    let reverted = device.boot().expect("revert");
    assert_eq!((reverted.record.outcome, reverted.record.version.major), (Outcome::Reverted, 1));
    assert!(device.primary_holds(&v1));
    let again = device.boot().expect("stays on v1");
    assert_eq!((again.record.outcome, again.record.version.major), (Outcome::Normal, 1));
}

#[test]
fn confirmed_test_upgrade_stays_and_raises_the_counter() {
    let key = Signer::new(1);
    let (v1, v2) = (image(&key, 1, 1, LEN), image(&key, 2, 2, LEN));
    let mut device = trusted_device(&key, &v1);
    device.boot().expect("v1");
    device.stage(&v2, false);
    device.boot().expect("test boot");
    device.updater().confirm().expect("confirm");
    assert!(!device.updater().is_pending_confirmation().expect("read"));
    let kept = device.boot().expect("v2 kept");
    assert_eq!((kept.record.outcome, kept.record.version.major), (Outcome::Normal, 2));
    assert_eq!(kept.record.device_security_counter, 2);
}

#[test]
fn permanent_upgrade_needs_no_confirmation() {
    let key = Signer::new(1);
    let (v1, v2) = (image(&key, 1, 1, LEN), image(&key, 2, 2, LEN));
    let mut device = trusted_device(&key, &v1);
    device.stage(&v2, true);
    let up = device.boot().expect("upgrade");
    assert_eq!((up.record.outcome, up.record.device_security_counter), (Outcome::Upgraded, 2));
    let next = device.boot().expect("no revert");
    assert_eq!((next.record.outcome, next.record.version.major), (Outcome::Normal, 2));
}

fn refused(device: &mut Device, update: &[u8], expected: Refusal, running: u8) {
    device.stage(update, false);
    let boot = device.boot().expect("old image keeps running");
    assert_eq!(boot.record.outcome, Outcome::UpdateRefused);
    assert_eq!(boot.record.refusal, Some(expected));
    assert_eq!(boot.record.version.major, running);
    let next = device.boot().expect("request was cancelled");
    assert_eq!(next.record.outcome, Outcome::Normal);
}

#[test]
fn tampered_unknown_key_and_downgrade_are_refused() {
    let key = Signer::new(1);
    let (v1, v2) = (image(&key, 1, 1, LEN), image(&key, 2, 2, LEN));
    let mut device = trusted_device(&key, &v1);
    device.stage(&v2, true);
    device.boot().expect("v2");

    let mut tampered = image(&key, 3, 3, LEN);
    tampered[0x100] ^= 0x01;
    refused(&mut device, &tampered, Refusal::HashMismatch, 2);
    refused(&mut device, &image(&Signer::new(9), 3, 3, LEN), Refusal::UntrustedKey, 2);
    refused(&mut device, &v1, Refusal::Rollback, 2);
    let too_big = image(&key, 3, 3, support::SLOT_SECTORS as usize * support::SECTOR as usize);
    device.flash.program(
        layout().secondary.offset as usize,
        &too_big[..layout().max_image_size() as usize],
    );
    device.updater().request_upgrade(false).expect("request");
    assert_eq!(device.boot().expect("v2").record.refusal, Some(Refusal::TooLarge));
}

#[test]
fn corrupted_primary_without_valid_secondary_is_not_booted() {
    let key = Signer::new(1);
    let mut v1 = image(&key, 1, 1, LEN);
    v1[0x300] ^= 0xFF;
    let mut device = trusted_device(&key, &v1);
    assert_eq!(device.boot(), Err(BootError::NothingBootable(Refusal::HashMismatch)));
    let mut blank = Device::new(vec![key.trusted()], &[]);
    assert_eq!(blank.boot(), Err(BootError::NothingBootable(Refusal::NoImage)));
}

#[test]
fn image_signed_by_an_untrusted_key_never_boots_from_primary() {
    let v1 = image(&Signer::new(2), 1, 1, LEN);
    let mut device = trusted_device(&Signer::new(1), &v1);
    assert_eq!(device.boot(), Err(BootError::NothingBootable(Refusal::UntrustedKey)));
}

#[test]
fn overwrite_only_installs_permanently_without_revert() {
    let key = Signer::new(1);
    let (v1, v2) = (image(&key, 1, 1, LEN), image(&key, 2, 2, LEN));
    let mut device = trusted_device(&key, &v1);
    device.config.mode = Mode::OverwriteOnly;
    device.stage(&v2, false);
    let up = device.boot().expect("overwrite");
    assert_eq!((up.record.outcome, up.record.device_security_counter), (Outcome::Upgraded, 2));
    assert!(device.primary_holds(&v2));
    assert_eq!(device.boot().expect("kept").record.outcome, Outcome::Normal);
}

#[test]
fn imgtool_style_confirmed_trailer_requests_a_permanent_upgrade() {
    // `imgtool sign --confirm --pad -S SLOT` ends the file with image_ok at E-24 and the
    // magic at E-16: program the slot as a flashing tool would.
    let key = Signer::new(1);
    let (v1, v2) = (image(&key, 1, 1, LEN), image(&key, 2, 2, LEN));
    let mut device = trusted_device(&key, &v1);
    let slot = layout().secondary;
    let mut padded = vec![0xFF; slot.size as usize];
    padded[..v2.len()].copy_from_slice(&v2);
    let end = padded.len();
    padded[end - 24] = 0x01;
    padded[end - 16..].copy_from_slice(&bootloader::trailer::MAGIC);
    device.flash.program(slot.offset as usize, &padded);
    assert_eq!(device.boot().expect("perm").record.outcome, Outcome::Upgraded);
}

#[test]
fn counter_survives_many_raises_across_sector_rollover() {
    let key = Signer::new(1);
    let mut device = trusted_device(&key, &image(&key, 1, 1, 100));
    for counter in 2..=300 {
        device.stage(&image(&key, 2, counter, 100), true);
        let boot = device.boot().expect("upgrade");
        assert_eq!(boot.record.device_security_counter, counter);
    }
    refused(&mut device, &image(&key, 2, 299, 100), Refusal::Rollback, 2);
}

#[test]
fn without_primary_validation_updates_are_still_verified() {
    let key = Signer::new(1);
    let v1 = image(&key, 1, 1, LEN);
    let mut device = trusted_device(&key, &v1);
    device.config.validate_primary = false;
    let boot = device.boot().expect("v1");
    assert_eq!(boot.record.device_security_counter, 1);
    // The primary is only header-checked in this configuration once its counter is stored.
    device.flash.program(layout().primary.offset as usize + 0x300, &[v1[0x300] ^ 0xFF]);
    assert_eq!(device.boot().expect("header is well-formed").record.version.major, 1);
    let mut bad = image(&key, 2, 2, LEN);
    bad[0x300] ^= 0xFF;
    refused(&mut device, &bad, Refusal::HashMismatch, 1);
    device.stage(&image(&key, 2, 2, LEN), false);
    assert_eq!(device.boot().expect("v2").record.outcome, Outcome::TestBoot);
}

#[test]
fn the_counter_never_rises_from_an_unverified_image() {
    let key = Signer::new(1);
    let mut forged = image(&key, 1, 1, LEN);
    forged[0x300] ^= 0xFF; // a well-formed header, a counter of 1, a broken signature
    let mut device = trusted_device(&key, &forged);
    device.config.validate_primary = false;
    assert_eq!(device.boot(), Err(BootError::NothingBootable(Refusal::HashMismatch)));
    let counter_sector = layout().state.offset + layout().sector_size;
    let counter = device.slot(Region::new(counter_sector, 8), 8);
    let erased = counter.iter().all(|b| *b == bootloader::ERASED_VALUE);
    assert!(erased, "no counter record written: {counter:02x?}");
}

#[test]
fn non_bootable_and_misplaced_rom_fixed_images_are_refused() {
    let key = Signer::new(1);
    let v1 = image(&key, 1, 1, LEN);
    let mut device = trusted_device(&key, &v1);
    device.boot().expect("v1");
    let data = image_with_flags(&key, 2, 2, LEN, flags::NON_BOOTABLE, 0);
    refused(&mut device, &data, Refusal::NotBootable, 1);
    let elsewhere = image_with_flags(&key, 2, 2, LEN, flags::ROM_FIXED, layout().secondary.offset);
    refused(&mut device, &elsewhere, Refusal::FlagNotAllowed, 1);
    let in_ram = image_with_flags(&key, 2, 2, LEN, flags::RAM_LOAD, 0x2000_0000);
    refused(&mut device, &in_ram, Refusal::FlagNotAllowed, 1);
    let here = image_with_flags(&key, 2, 2, LEN, flags::ROM_FIXED, layout().primary.offset);
    device.stage(&here, true);
    assert_eq!(device.boot().expect("ROM_FIXED for the primary").record.version.major, 2);

    let mut data_primary =
        trusted_device(&key, &image_with_flags(&key, 1, 1, LEN, flags::NON_BOOTABLE, 0));
    assert_eq!(data_primary.boot(), Err(BootError::NothingBootable(Refusal::NotBootable)));
}

#[test]
fn a_revert_onto_a_damaged_previous_image_keeps_the_test_image() {
    let key = Signer::new(1);
    let (v1, v2) = (image(&key, 1, 1, LEN), image(&key, 2, 2, LEN));
    let mut device = trusted_device(&key, &v1);
    device.boot().expect("v1");
    device.stage(&v2, false);
    assert_eq!(device.boot().expect("test boot").record.outcome, Outcome::TestBoot);
    // The swap left v1 in the secondary; damage it before the revert.
    device.flash.program(layout().secondary.offset as usize + 0x300, &[v1[0x300] ^ 0xFF]);
    let kept = device.boot().expect("the test image stays bootable");
    assert_eq!(kept.record.outcome, Outcome::RevertRefused);
    assert_eq!(kept.record.refusal, Some(Refusal::HashMismatch));
    assert_eq!(kept.record.version.major, 2);
    assert!(device.primary_holds(&v2));
    assert_eq!(kept.record.device_security_counter, 1, "still unconfirmed: not raised");
}
