//! The boot record the bootloader hands to the application.
//!
//! 32 bytes at a RAM address both sides agree on (each board defines it), written just
//! before the jump, and when nothing may boot; the layout is
//! `verifier_core::format::boot_record`'s.

use verifier_core::format::boot_record::{
    CHECKSUM, DEVICE_SECURITY_COUNTER, IMAGE_SECURITY_COUNTER, MAGIC, OUTCOME, REFUSAL, SIZE, SLOT,
    SLOT_OFFSET, VERSION, checksum,
};

use crate::validate::{ImageVersion, Refusal};

/// What happened at this boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Outcome {
    /// No update was pending; the confirmed image booted.
    Normal = 0,
    /// A test upgrade was installed; the application must confirm it or it is reverted.
    TestBoot = 1,
    /// A permanent upgrade (or an overwrite) was installed.
    Upgraded = 2,
    /// An unconfirmed test image was replaced by the previous image.
    Reverted = 3,
    /// A requested update was refused; the previous image booted.
    UpdateRefused = 4,
    /// The test image was not confirmed, but the previous image failed validation: the test
    /// image booted again.
    RevertRefused = 5,
    /// Nothing may boot; the bootloader stays in its safe state (for a recovery application).
    NothingBootable = 6,
}

impl Outcome {
    fn from_u8(byte: u8) -> Option<Self> {
        const ALL: [Outcome; 7] = [
            Outcome::Normal,
            Outcome::TestBoot,
            Outcome::Upgraded,
            Outcome::Reverted,
            Outcome::UpdateRefused,
            Outcome::RevertRefused,
            Outcome::NothingBootable,
        ];
        ALL.into_iter().find(|o| *o as u8 == byte)
    }

    /// A short lower-case description.
    pub fn describe(self) -> &'static str {
        match self {
            Outcome::Normal => "normal",
            Outcome::TestBoot => "test-boot",
            Outcome::Upgraded => "upgraded",
            Outcome::Reverted => "reverted",
            Outcome::UpdateRefused => "update-refused",
            Outcome::RevertRefused => "revert-refused",
            Outcome::NothingBootable => "nothing-bootable",
        }
    }
}

/// The boot record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootRecord {
    /// Slot booted (always 0, the primary, in swap and overwrite modes).
    pub slot: u8,
    /// What happened.
    pub outcome: Outcome,
    /// Why an update, a revert or the primary was refused ([`Outcome::UpdateRefused`],
    /// [`Outcome::RevertRefused`], [`Outcome::NothingBootable`]).
    pub refusal: Option<Refusal>,
    /// Version of the booted image.
    pub version: ImageVersion,
    /// Security counter of the booted image.
    pub image_security_counter: u32,
    /// The device's security counter after this boot's decisions.
    pub device_security_counter: u32,
    /// Flash offset of the booted slot.
    pub slot_offset: u32,
}

impl BootRecord {
    /// Size of the encoded record.
    pub const SIZE: usize = SIZE;

    /// The record left when nothing may boot: why, for a recovery application.
    pub const fn nothing_bootable(refusal: Refusal, slot_offset: u32) -> Self {
        Self {
            slot: 0,
            outcome: Outcome::NothingBootable,
            refusal: Some(refusal),
            version: ImageVersion { major: 0, minor: 0, revision: 0, build_num: 0 },
            image_security_counter: 0,
            device_security_counter: 0,
            slot_offset,
        }
    }

    /// Encodes the record.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        let version = self.version.to_bytes();
        let fields: [(usize, &[u8]); 8] = [
            (0, &MAGIC),
            (SLOT, &[self.slot]),
            (OUTCOME, &[self.outcome as u8]),
            (REFUSAL, &[self.refusal.map_or(0, |r| r as u8)]),
            (VERSION, &version),
            (IMAGE_SECURITY_COUNTER, &self.image_security_counter.to_le_bytes()),
            (DEVICE_SECURITY_COUNTER, &self.device_security_counter.to_le_bytes()),
            (SLOT_OFFSET, &self.slot_offset.to_le_bytes()),
        ];
        for (at, bytes) in fields {
            put(&mut out, at, bytes);
        }
        let sum = checksum(&out).to_le_bytes();
        put(&mut out, CHECKSUM, &sum);
        out
    }

    /// Decodes a record; `None` if the magic, checksum or an enum value is wrong (for
    /// example when the application was started without the bootloader).
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Option<Self> {
        let byte = |at: usize| bytes.get(at).copied().unwrap_or(0);
        let word = |at: usize| {
            bytes
                .get(at..)
                .and_then(|rest| rest.first_chunk::<4>())
                .map_or(0, |w| u32::from_le_bytes(*w))
        };
        if bytes.first_chunk::<4>() != Some(&MAGIC) || word(CHECKSUM) != checksum(bytes) {
            return None;
        }
        let refusal = match byte(REFUSAL) {
            0 => None,
            code => Some(Refusal::from_u8(code)?),
        };
        let version = bytes.get(VERSION..).and_then(|rest| rest.first_chunk::<8>())?;
        Some(Self {
            slot: byte(SLOT),
            outcome: Outcome::from_u8(byte(OUTCOME))?,
            refusal,
            version: ImageVersion::from_bytes(version),
            image_security_counter: word(IMAGE_SECURITY_COUNTER),
            device_security_counter: word(DEVICE_SECURITY_COUNTER),
            slot_offset: word(SLOT_OFFSET),
        })
    }
}

/// Copies `bytes` into `out` at `at` (the layout's offsets all fit; byte by byte, so no
/// length-mismatch panic path is linked).
fn put(out: &mut [u8; SIZE], at: usize, bytes: &[u8]) {
    let field = out.get_mut(at..).unwrap_or_default();
    for (to, from) in field.iter_mut().zip(bytes) {
        *to = *from;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> BootRecord {
        BootRecord {
            slot: 0,
            outcome: Outcome::UpdateRefused,
            refusal: Some(Refusal::Rollback),
            version: ImageVersion { major: 2, minor: 1, revision: 7, build_num: 9 },
            image_security_counter: 2,
            device_security_counter: 2,
            slot_offset: 0x2_0000,
        }
    }

    #[test]
    fn round_trips() {
        assert_eq!(BootRecord::from_bytes(&record().to_bytes()), Some(record()));
        let refused = BootRecord::nothing_bootable(Refusal::NoSecurityCounter, 0x2_0000);
        let decoded = BootRecord::from_bytes(&refused.to_bytes()).unwrap();
        assert_eq!(decoded.outcome, Outcome::NothingBootable);
        assert_eq!(decoded.refusal, Some(Refusal::NoSecurityCounter));
    }

    #[test]
    fn rejects_a_flipped_bit_and_garbage() {
        let mut bytes = record().to_bytes();
        bytes[17] ^= 1;
        assert_eq!(BootRecord::from_bytes(&bytes), None);
        assert_eq!(BootRecord::from_bytes(&[0xAA; 32]), None);
    }
}
