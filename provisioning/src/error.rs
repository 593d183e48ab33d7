//! Why a record is refused.

use core::fmt;

/// A part of the record, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Field {
    /// The reserved bytes after the lengths.
    Reserved,
    /// The device identity's padding.
    Identity,
    /// A key hash slot past the key count.
    UnusedKeyHash,
    /// The transparency-log key (public key or name) when the flags say there is none.
    LogKey,
    /// The log key name's padding.
    LogKeyName,
}

impl Field {
    /// The field's name as the format documentation spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reserved => "reserved bytes",
            Self::Identity => "identity padding",
            Self::UnusedKeyHash => "unused key hash slot",
            Self::LogKey => "log key (absent per flags)",
            Self::LogKeyName => "log key name padding",
        }
    }
}

/// Why [`crate::Record::parse`] refused a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecordError {
    /// Fewer bytes than [`crate::RECORD_LEN`].
    Truncated {
        /// Bytes given.
        len: usize,
    },
    /// The record's header is erased: the device was never provisioned.
    NotProvisioned,
    /// The first bytes are neither erased nor the record magic.
    BadMagic,
    /// A format version this bootloader does not read.
    UnsupportedVersion(u16),
    /// The digest does not match the sealed part: damaged, or a torn factory write.
    DigestMismatch,
    /// The key count is not 1 to [`crate::MAX_KEYS`].
    KeyCount(u8),
    /// Flag bits this version does not define.
    UnknownFlags(u8),
    /// The identity length exceeds [`crate::MAX_IDENTITY_LEN`].
    IdentityLength(u8),
    /// The log key name is empty, too long, not UTF-8, or not a valid note key name.
    LogKeyName,
    /// A byte that must be zero is not.
    NonZeroPadding(Field),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { len } => {
                write!(f, "provisioning record truncated: {len} bytes, expected {}", crate::RECORD_LEN)
            }
            Self::NotProvisioned => f.write_str("no provisioning record: the region is erased"),
            Self::BadMagic => f.write_str("provisioning record: bad magic, expected \"FWPR\""),
            Self::UnsupportedVersion(v) => write!(
                f,
                "provisioning record: format version {v}, expected {}",
                crate::format::FORMAT_VERSION
            ),
            Self::DigestMismatch => {
                f.write_str("provisioning record damaged: its digest does not match")
            }
            Self::KeyCount(n) => {
                write!(f, "provisioning record: key count {n}, expected 1 to {}", crate::MAX_KEYS)
            }
            Self::UnknownFlags(flags) => {
                write!(f, "provisioning record: unknown flags {flags:#04x}")
            }
            Self::IdentityLength(n) => write!(
                f,
                "provisioning record: identity length {n}, expected at most {}",
                crate::MAX_IDENTITY_LEN
            ),
            Self::LogKeyName => f.write_str(
                "provisioning record: the log key name is not a note key name (1 to 64 bytes of UTF-8, no space or '+')",
            ),
            Self::NonZeroPadding(field) => {
                write!(f, "provisioning record: {} must be zero", field.name())
            }
        }
    }
}

impl core::error::Error for RecordError {}
