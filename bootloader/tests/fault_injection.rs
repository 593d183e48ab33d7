//! Fault-injection hardening: a fault that skips the first check's refusal must not boot the
//! image. The first check is forced by a validator that accepts the primary's first
//! validation whatever the flash holds, as a skipped branch would; only this test build has it.

// Test code: the crate's no-panic lints are for the bootloader, not for its tests.
#![allow(clippy::expect_used)]

mod support;

use bootloader::{
    BootError, BootLoader, ImageInfo, ImageValidator, Refusal, Region, SignatureValidator,
    TrustedKey,
};
use support::{Device, Flash, Signer, image, layout};
use verifier_core::{Digest, FlashReader, HashAlgorithm, ImageReader, read_header};

/// Accepts the primary slot's first full validation without checking its digest or signature
/// (the refusal "skipped", the digest as computed), then validates honestly, the second check
/// included.
struct ForcedFirstCheck<'k> {
    honest: SignatureValidator<'k>,
    forced: bool,
}

impl ImageValidator<&mut Flash> for ForcedFirstCheck<'_> {
    fn validate(
        &mut self,
        flash: &mut &mut Flash,
        slot: Region,
        max_len: u32,
        min: u32,
    ) -> Result<ImageInfo, Refusal> {
        if slot == layout().primary && !self.forced {
            self.forced = true;
            let info = self.honest.inspect(flash, slot, max_len)?;
            return Ok(ImageInfo::skipped_comparison(&info, computed_digest(flash, slot)));
        }
        self.honest.validate(flash, slot, max_len, min)
    }

    fn revalidate(
        &mut self,
        flash: &mut &mut Flash,
        slot: Region,
        max_len: u32,
        min: u32,
        first: &ImageInfo,
    ) -> Result<ImageInfo, Refusal> {
        self.honest.revalidate(flash, slot, max_len, min, first)
    }

    fn inspect(
        &mut self,
        flash: &mut &mut Flash,
        slot: Region,
        max_len: u32,
    ) -> Result<ImageInfo, Refusal> {
        self.honest.inspect(flash, slot, max_len)
    }
}

/// The digest a first validation computes before it compares anything: a skipped comparison
/// leaves this digest in its result.
fn computed_digest(flash: &mut Flash, slot: Region) -> Digest {
    let mut reader = FlashReader::new(flash, slot.offset, slot.size);
    let header = read_header(&mut reader).expect("header");
    let mut region = vec![0; header.hashed_len().expect("sizes") as usize];
    reader.read(0, &mut region).expect("readable");
    HashAlgorithm::Sha256.digest(&region)
}

fn boot_forced(
    device: &mut Device,
    keys: &[TrustedKey],
) -> Result<bootloader::BootDecision, BootError> {
    let mut loader = BootLoader::new(&mut device.flash, layout(), device.config).expect("layout");
    loader.boot(&mut ForcedFirstCheck {
        honest: SignatureValidator::new(keys, bootloader::sim::device_rules(&layout())),
        forced: false,
    })
}

#[test]
fn a_forced_first_check_does_not_boot_an_untrusted_image() {
    let (trusted, attacker) = (Signer::new(1), Signer::new(9));
    let mut device = Device::new(vec![trusted.trusted()], &image(&attacker, 1, 1, 2000));
    let keys = device.keys.clone();
    assert_eq!(
        boot_forced(&mut device, &keys),
        Err(BootError::NothingBootable(Refusal::FaultDetected))
    );
    // The counter was not raised on the strength of the forced check.
    let honest = device.boot();
    assert_eq!(honest, Err(BootError::NothingBootable(Refusal::UntrustedKey)));
}

#[test]
fn a_forced_first_check_does_not_boot_a_tampered_image() {
    let key = Signer::new(1);
    let mut tampered = image(&key, 1, 1, 2000);
    tampered[0x100] ^= 0x20;
    let mut device = Device::new(vec![key.trusted()], &tampered);
    let keys = device.keys.clone();
    assert_eq!(
        boot_forced(&mut device, &keys),
        Err(BootError::NothingBootable(Refusal::FaultDetected))
    );
}

#[test]
fn a_valid_image_boots_with_an_accepted_verdict() {
    let key = Signer::new(1);
    let mut device = Device::new(vec![key.trusted()], &image(&key, 1, 1, 2000));
    let decision = device.boot().expect("boots");
    assert!(decision.verdict.is_accepted());
    // Forcing the first check of a valid image changes nothing.
    let keys = device.keys.clone();
    let forced = boot_forced(&mut device, &keys).expect("boots");
    assert!(forced.verdict.is_accepted());
}

/// An "always accept" validator written outside the crate: the only image descriptions it can
/// hand out are the ones `SignatureValidator` made, so it reports inspected images as valid.
struct AcceptAll<'k>(SignatureValidator<'k>);

impl ImageValidator<&mut Flash> for AcceptAll<'_> {
    fn validate(
        &mut self,
        flash: &mut &mut Flash,
        slot: Region,
        max_len: u32,
        _min: u32,
    ) -> Result<ImageInfo, Refusal> {
        self.0.inspect(flash, slot, max_len)
    }

    fn inspect(
        &mut self,
        flash: &mut &mut Flash,
        slot: Region,
        max_len: u32,
    ) -> Result<ImageInfo, Refusal> {
        self.0.inspect(flash, slot, max_len)
    }
}

/// Whatever it is asked, such a validator makes the bootloader refuse: nothing it reports is
/// verified.
#[test]
fn an_always_accept_validator_cannot_boot_or_install_an_untrusted_image() {
    let (trusted, attacker) = (Signer::new(1), Signer::new(9));
    let keys = vec![trusted.trusted()];
    let mut device = Device::new(keys.clone(), &image(&attacker, 1, 1, 2000));
    let rules = bootloader::sim::device_rules(&layout());
    let mut accept_all = AcceptAll(SignatureValidator::new(&keys, rules));
    let mut loader = BootLoader::new(&mut device.flash, layout(), device.config).expect("layout");
    assert_eq!(
        loader.boot(&mut accept_all),
        Err(BootError::NothingBootable(Refusal::FaultDetected))
    );

    let mut device = Device::new(keys.clone(), &image(&trusted, 1, 1, 2000));
    let forged = image(&attacker, 2, 2, 2000);
    device.stage(&forged, true);
    let mut loader = BootLoader::new(&mut device.flash, layout(), device.config).expect("layout");
    assert_eq!(
        loader.boot(&mut accept_all),
        Err(BootError::NothingBootable(Refusal::FaultDetected))
    );
    assert!(!device.primary_holds(&forged), "the forged update was not installed");
    assert_eq!(device.boot().expect("an honest boot").record.version.major, 1);
}
