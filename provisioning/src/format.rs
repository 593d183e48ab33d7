//! The record layout, defined once for the bootloader, the factory station and the tests.
//!
//! All integers are little-endian. Bytes `0..SEALED_LEN` are the immutable part; the SHA-256
//! of it follows at [`DIGEST`]. The revoked words sit after the digest, one per key slot,
//! [`REVOKED_STRIDE`] bytes apart so that each has a flash write unit of its own on every
//! supported part (up to MCUboot's largest `BOOT_MAX_ALIGN`, 32). Unused bytes of the sealed
//! part (identity and name padding, unused key slots, reserved bytes) must be zero. The format
//! assumes flash erases to `0xff`, as on every supported board.
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `FWPR` |
//! | 4..6 | format version (1) |
//! | 6 | key count, 1..=4 |
//! | 7 | flags: bit 0 = a transparency-log key is present |
//! | 8 | identity length, 0..=32 |
//! | 9 | log key name length, 0..=64 (0 without a log key) |
//! | 10..12 | reserved, zero |
//! | 12..16 | initial security counter |
//! | 16..48 | device identity, zero-padded |
//! | 48..176 | 4 trusted key hashes: SHA-256 of the key's DER SubjectPublicKeyInfo |
//! | 176..208 | log key: Ed25519 public key |
//! | 208..272 | log key: note key name (UTF-8), zero-padded |
//! | 272..304 | SHA-256 of bytes 0..272 |
//! | 320 + 32·slot, 4 bytes | revoked word of key slot `slot` (outside the digest) |

use core::ops::Range;

/// The first four bytes of every record.
pub const MAGIC: [u8; 4] = *b"FWPR";
/// The format version this crate reads and writes.
pub const FORMAT_VERSION: u16 = 1;
/// The most trusted key hashes a record holds.
pub const MAX_KEYS: usize = 4;
/// The longest device identity, in bytes.
pub const MAX_IDENTITY_LEN: usize = 32;
/// The longest transparency-log key name, in bytes.
pub const MAX_LOG_KEY_NAME_LEN: usize = 64;
/// Flags bit: the record holds a transparency-log key.
pub const FLAG_LOG_KEY: u8 = 0x01;

/// Magic.
pub const MAGIC_FIELD: Range<usize> = 0..4;
/// Format version.
pub const VERSION: Range<usize> = 4..6;
/// Key count.
pub const KEY_COUNT: usize = 6;
/// Flags.
pub const FLAGS: usize = 7;
/// Identity length.
pub const IDENTITY_LEN: usize = 8;
/// Log key name length.
pub const LOG_KEY_NAME_LEN: usize = 9;
/// Reserved, zero.
pub const RESERVED: Range<usize> = 10..12;
/// Initial security counter.
pub const SECURITY_COUNTER: Range<usize> = 12..16;
/// Device identity.
pub const IDENTITY: Range<usize> = 16..48;
/// Trusted key hashes, [`KEY_HASH_LEN`] bytes each.
pub const KEY_HASHES: Range<usize> = 48..176;
/// Length of one key hash.
pub const KEY_HASH_LEN: usize = 32;
/// Log key: Ed25519 public key.
pub const LOG_PUBLIC_KEY: Range<usize> = 176..208;
/// Log key: name.
pub const LOG_KEY_NAME: Range<usize> = 208..272;
/// Length of the part the digest covers.
pub const SEALED_LEN: usize = 272;
/// SHA-256 of bytes `0..SEALED_LEN`.
pub const DIGEST: Range<usize> = 272..304;
/// Offset of the first revoked word.
pub const REVOKED_BASE: usize = 320;
/// Distance between revoked words: one write unit each.
pub const REVOKED_STRIDE: usize = 32;
/// Length of a revoked word.
pub const REVOKED_WORD_LEN: usize = 4;
/// Bytes a record occupies (the rest of its flash page is not read).
pub const RECORD_LEN: usize = 448;

/// A revoked word as erased flash reads: the key slot is valid.
pub const ERASED: u32 = 0xffff_ffff;
/// The value written to revoke a key slot. Zero, so it can be written over any torn value.
pub const REVOKED: u32 = 0;

/// Where the revoked word of key slot `slot` lies, or `None` past [`MAX_KEYS`].
pub const fn revoked_word(slot: usize) -> Option<Range<usize>> {
    if slot >= MAX_KEYS {
        return None;
    }
    // slot < 4: no overflow.
    #[allow(clippy::arithmetic_side_effects)]
    let start = REVOKED_BASE + slot * REVOKED_STRIDE;
    #[allow(clippy::arithmetic_side_effects)]
    Some(start..start + REVOKED_WORD_LEN)
}

/// Where key hash `slot` lies, or `None` past [`MAX_KEYS`].
pub const fn key_hash(slot: usize) -> Option<Range<usize>> {
    if slot >= MAX_KEYS {
        return None;
    }
    // slot < 4: no overflow.
    #[allow(clippy::arithmetic_side_effects)]
    let start = KEY_HASHES.start + slot * KEY_HASH_LEN;
    #[allow(clippy::arithmetic_side_effects)]
    Some(start..start + KEY_HASH_LEN)
}
