//! Test images in the MCUboot format and a small device model around `SimFlash`.
// Test support: the crate's no-panic lints are for the bootloader, not for its tests.
#![allow(
    clippy::cast_possible_truncation,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::expect_used
)]
#![allow(dead_code, unreachable_pub)]

use bootloader::sim::{SimFlash, device_rules};
use bootloader::{
    BootDecision, BootError, BootLoader, Config, FirmwareUpdater, Layout, PublicKey, Region,
    SignatureValidator, TrustedKey,
};
use ed25519_compact::KeyPair;
use sha2::{Digest, Sha256};
use verifier_core::tlog::{LogKey, ProofBuffer};

pub const SECTOR: u32 = 0x400;
pub const SLOT_SECTORS: u32 = 6;
pub type Flash = SimFlash<4, 0x400>;

pub fn layout() -> Layout {
    let slot = SLOT_SECTORS * SECTOR;
    Layout {
        primary: Region::new(0, slot),
        secondary: Region::new(slot, slot),
        scratch: Region::new(2 * slot, SECTOR),
        state: Region::new(2 * slot + SECTOR, 3 * SECTOR),
        sector_size: SECTOR,
    }
}

pub fn capacity() -> usize {
    (2 * SLOT_SECTORS * SECTOR + 4 * SECTOR) as usize
}

/// An Ed25519 signing key with its trusted-key entry.
pub struct Signer {
    pair: KeyPair,
}

impl Signer {
    pub fn new(seed: u8) -> Self {
        Self { pair: KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32])) }
    }

    pub fn trusted(&self) -> TrustedKey {
        TrustedKey::new(PublicKey::Ed25519(*self.pair.pk))
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> Vec<u8> {
        let mut der = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        der.extend_from_slice(&*self.pair.pk);
        der
    }
}

/// A signed image: version `major.0.0`, security counter `counter`, a payload of
/// `payload_len` bytes derived from `major`.
pub fn image(signer: &Signer, major: u8, counter: u32, payload_len: usize) -> Vec<u8> {
    image_with_flags(signer, major, counter, payload_len, 0, 0)
}

/// As [`image`], with header `flags` and load address.
pub fn image_with_flags(
    signer: &Signer,
    major: u8,
    counter: u32,
    payload_len: usize,
    flags: u32,
    load_addr: u32,
) -> Vec<u8> {
    build_image(signer, major, counter, payload_len, flags, load_addr, &[], KeyForm::Hash)
}

/// A rotation image for a device with provisioned keys: as [`image`], naming its key by the
/// full public key (PUBKEY), with a protected REVOKE_KEYS TLV naming `revoked_slots` (none:
/// no TLV).
pub fn rotation_image(signer: &Signer, major: u8, counter: u32, revoked_slots: &[u8]) -> Vec<u8> {
    let value: Vec<u8> =
        revoked_slots.iter().flat_map(|slot| [&[*slot][..], &[0; 32]].concat()).collect();
    let revoke = [(0x00a3u16, value)];
    let extra = if revoked_slots.is_empty() { &[][..] } else { &revoke[..] };
    build_image(signer, major, counter, 1500, 0, 0, extra, KeyForm::Full)
}

/// How an image names its signing key.
#[derive(Clone, Copy)]
enum KeyForm {
    /// KEYHASH: SHA-256 of the SubjectPublicKeyInfo.
    Hash,
    /// PUBKEY: the SubjectPublicKeyInfo itself.
    Full,
}

#[allow(clippy::too_many_arguments)]
fn build_image(
    signer: &Signer,
    major: u8,
    counter: u32,
    payload_len: usize,
    flags: u32,
    load_addr: u32,
    extra_protected: &[(u16, Vec<u8>)],
    key_form: KeyForm,
) -> Vec<u8> {
    const HDR: usize = 0x40;
    let payload: Vec<u8> = (0..payload_len).map(|i| (i as u8).wrapping_mul(31) ^ major).collect();
    let mut entries = [&[0x50, 0, 4, 0][..], &counter.to_le_bytes()].concat();
    for (tag, value) in extra_protected {
        entries.extend_from_slice(&tag.to_le_bytes());
        entries.extend_from_slice(&(value.len() as u16).to_le_bytes());
        entries.extend_from_slice(value);
    }
    let protected =
        [&[0x08, 0x69][..], &((entries.len() + 4) as u16).to_le_bytes(), &entries].concat();
    let mut out = vec![0u8; HDR];
    out[0..4].copy_from_slice(&0x96f3_b83du32.to_le_bytes());
    out[8..10].copy_from_slice(&(HDR as u16).to_le_bytes());
    out[10..12].copy_from_slice(&(protected.len() as u16).to_le_bytes());
    out[4..8].copy_from_slice(&load_addr.to_le_bytes());
    out[12..16].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[16..20].copy_from_slice(&flags.to_le_bytes());
    out[20] = major;
    out.extend_from_slice(&payload);
    out.extend_from_slice(&protected);
    let digest = Sha256::digest(&out);
    let key = match key_form {
        KeyForm::Hash => (0x01u16, Sha256::digest(signer.spki()).to_vec()),
        KeyForm::Full => (0x02u16, signer.spki()),
    };
    let signature = signer.pair.sk.sign(digest, None);
    let mut tlvs = Vec::new();
    for (tag, value) in [(0x10u16, &digest[..]), (key.0, &key.1[..]), (0x24, &signature[..])] {
        tlvs.extend_from_slice(&tag.to_le_bytes());
        tlvs.extend_from_slice(&(value.len() as u16).to_le_bytes());
        tlvs.extend_from_slice(value);
    }
    out.extend_from_slice(&[0x07, 0x69]);
    out.extend_from_slice(&((tlvs.len() + 4) as u16).to_le_bytes());
    out.extend_from_slice(&tlvs);
    out
}

/// `image` with an unprotected LOG_PROOF TLV (0x00a2) holding `proof` appended.
pub fn with_log_proof(image: &[u8], proof: &[u8]) -> Vec<u8> {
    let field = |at: usize, len: usize| {
        image[at..at + len].iter().rev().fold(0usize, |n, b| n << 8 | usize::from(*b))
    };
    let info = field(8, 2) + field(12, 4) + field(10, 2);
    let mut out = image.to_vec();
    let total = field(info + 2, 2) + 4 + proof.len();
    out[info + 2..info + 4].copy_from_slice(&(total as u16).to_le_bytes());
    out.extend_from_slice(&0x00a2u16.to_le_bytes());
    out.extend_from_slice(&(proof.len() as u16).to_le_bytes());
    out.extend_from_slice(proof);
    out
}

/// A device: flash plus the keys its bootloader trusts.
#[derive(Clone)]
pub struct Device {
    pub flash: Flash,
    pub keys: Vec<TrustedKey>,
    pub config: Config,
}

/// Where a provisioned device keeps its provisioning record: the sector after the state.
pub fn record_offset() -> u32 {
    capacity() as u32
}

/// A device whose bootloader reads its keys from a provisioning record trusting `signers`
/// (slot order) and revokes keys in it, by use too if `by_use`.
pub fn provisioned_device(signers: &[&Signer], factory: &[u8], by_use: bool) -> Device {
    let record = signers
        .iter()
        .fold(provisioning::RecordBuilder::new(b"sim-device"), |record, signer| {
            record.trusted_key_hash(Sha256::digest(signer.spki()).into())
        })
        .build()
        .expect("record");
    let mut flash = Flash::new(capacity() + SECTOR as usize);
    flash.program(layout().primary.offset as usize, factory);
    flash.program(record_offset() as usize, &record);
    let revocation = bootloader::KeyRevocation { record_offset: record_offset(), by_use };
    Device {
        flash,
        keys: Vec::new(),
        config: Config { revocation: Some(revocation), ..Config::default() },
    }
}

impl Device {
    /// A device with `factory` programmed into the primary slot.
    pub fn new(keys: Vec<TrustedKey>, factory: &[u8]) -> Self {
        let mut flash = Flash::new(capacity());
        flash.program(layout().primary.offset as usize, factory);
        Self { flash, keys, config: Config::default() }
    }

    /// One power-on: runs the bootloader. A provisioned device reads its keys from its record
    /// first, as the firmware does.
    pub fn boot(&mut self) -> Result<BootDecision, BootError> {
        if self.config.revocation.is_some() {
            self.keys = self.record().trusted_keys().as_slice().to_vec();
        }
        let mut loader = BootLoader::new(&mut self.flash, layout(), self.config).expect("layout");
        loader.boot(&mut SignatureValidator::new(&self.keys, device_rules(&layout())))
    }

    /// The provisioning record of a provisioned device.
    pub fn record(&self) -> provisioning::RecordView<'_> {
        let bytes = &self.flash.bytes()[record_offset() as usize..];
        provisioning::Record::parse(bytes).expect("a valid record")
    }

    /// One power-on of a bootloader that requires a log proof by one of `log_keys`.
    pub fn boot_requiring_log(
        &mut self,
        log_keys: &[LogKey<'_>],
    ) -> Result<BootDecision, BootError> {
        let mut loader = BootLoader::new(&mut self.flash, layout(), self.config).expect("layout");
        let mut buffer = Box::new(ProofBuffer::new());
        let validator = SignatureValidator::new(&self.keys, device_rules(&layout()));
        loader.boot(&mut validator.requiring_log_proof(log_keys, &mut buffer))
    }

    pub fn updater(&mut self) -> FirmwareUpdater<&mut Flash> {
        FirmwareUpdater::new(&mut self.flash, layout())
    }

    /// Stages `image` in the secondary slot the way an application would, in 100-byte chunks.
    pub fn stage(&mut self, image: &[u8], permanent: bool) {
        let mut updater = self.updater();
        updater.prepare(image.len() as u32).expect("prepare");
        for (i, chunk) in image.chunks(100).enumerate() {
            updater.write(i as u32 * 100, chunk).expect("write");
        }
        updater.request_upgrade(permanent).expect("request");
    }

    pub fn slot(&self, region: Region, len: usize) -> &[u8] {
        &self.flash.bytes()[region.offset as usize..][..len]
    }

    pub fn primary_holds(&self, image: &[u8]) -> bool {
        self.slot(layout().primary, image.len()) == image
    }
}
