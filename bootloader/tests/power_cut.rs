//! Cutting power at every flash operation of an install or a revert: the next boot must
//! finish the job and leave exactly the state an uninterrupted run leaves.

// Test code: the crate's no-panic lints are for the bootloader, not for its tests.
#![allow(clippy::expect_used, clippy::arithmetic_side_effects)]

mod support;

use bootloader::Outcome;
use support::{Device, Signer, image};

/// Boots with power cut before the `cut`th flash operation, then boots again normally.
fn interrupted_boot(device: &mut Device, cut: u32) -> Outcome {
    device.flash.cut_power_after(cut);
    let _ = device.boot();
    device.flash.restore_power();
    device.boot().expect("resumes").record.outcome
}

fn ops_of_boot(device: &Device) -> u32 {
    let mut probe =
        Device { flash: device.flash.clone(), keys: device.keys.clone(), config: device.config };
    let before = probe.flash.operations();
    probe.boot().expect("boot");
    probe.flash.operations() - before
}

#[test]
fn test_swap_resumes_after_a_cut_at_every_operation() {
    let key = Signer::new(1);
    let (v1, v2) = (image(&key, 1, 1, 2500), image(&key, 2, 2, 3000));
    let mut start = Device::new(vec![key.trusted()], &v1);
    start.boot().expect("v1");
    start.stage(&v2, false);
    let total = ops_of_boot(&start);
    assert!(total > 12, "a swap of three sectors takes more than 12 operations, got {total}");

    let mut reference =
        Device { flash: start.flash.clone(), keys: start.keys.clone(), config: start.config };
    reference.boot().expect("uninterrupted");
    for cut in 1..=total {
        let mut device =
            Device { flash: start.flash.clone(), keys: start.keys.clone(), config: start.config };
        let outcome = interrupted_boot(&mut device, cut);
        assert_eq!(outcome, Outcome::TestBoot, "cut at operation {cut}");
        assert!(device.primary_holds(&v2), "cut at operation {cut}");
        assert_eq!(device.flash.bytes(), reference.flash.bytes(), "cut at operation {cut}");
    }
}

#[test]
fn revert_resumes_after_a_cut_at_every_operation() {
    let key = Signer::new(1);
    let (v1, v2) = (image(&key, 1, 1, 2500), image(&key, 2, 2, 2000));
    let mut start = Device::new(vec![key.trusted()], &v1);
    start.boot().expect("v1");
    start.stage(&v2, false);
    start.boot().expect("test boot");
    let total = ops_of_boot(&start);
    for cut in 1..=total {
        let mut device =
            Device { flash: start.flash.clone(), keys: start.keys.clone(), config: start.config };
        assert_eq!(interrupted_boot(&mut device, cut), Outcome::Reverted, "cut at operation {cut}");
        assert!(device.primary_holds(&v1), "cut at operation {cut}");
        assert_eq!(device.boot().expect("v1").record.outcome, Outcome::Normal);
    }
}

#[test]
fn overwrite_resumes_after_a_cut_at_every_operation() {
    let key = Signer::new(1);
    let (v1, v2) = (image(&key, 1, 1, 2500), image(&key, 2, 2, 3000));
    let mut start = Device::new(vec![key.trusted()], &v1);
    start.config.mode = bootloader::Mode::OverwriteOnly;
    start.boot().expect("v1");
    start.stage(&v2, false);
    let total = ops_of_boot(&start);
    for cut in 1..=total {
        let mut device =
            Device { flash: start.flash.clone(), keys: start.keys.clone(), config: start.config };
        // Even a cut at the very last operation (after the counter is raised) repeats the
        // boot the overwrite was done for, so it is still reported as the upgrade.
        let outcome = interrupted_boot(&mut device, cut);
        assert_eq!(outcome, Outcome::Upgraded, "cut at operation {cut} of {total}");
        assert!(device.primary_holds(&v2), "cut at operation {cut}");
        let next = device.boot().expect("v2").record;
        assert_eq!((next.outcome, next.device_security_counter), (Outcome::Normal, 2));
    }
}
