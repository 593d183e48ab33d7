//! The boot record the bootloader leaves in RAM for the application: 32 bytes at an address
//! both sides agree on (each board defines it).
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | [`MAGIC`] |
//! | 4 | slot booted (0 = primary) |
//! | 5 | outcome code |
//! | 6 | refusal code, 0 if none |
//! | 7 | 0 |
//! | 8..16 | image version (major, minor, revision u16, build u32) |
//! | 16..20 | the image's security counter |
//! | 20..24 | the device's security counter |
//! | 24..28 | offset of the booted slot in flash |
//! | 28..32 | checksum: `!` of the wrapping sum of the seven words before it |

/// The record's first four bytes.
pub const MAGIC: [u8; 4] = *b"FWBR";
/// Size of the record.
pub const SIZE: usize = 32;
/// Offset of the slot byte.
pub const SLOT: usize = 4;
/// Offset of the outcome byte.
pub const OUTCOME: usize = 5;
/// Offset of the refusal byte.
pub const REFUSAL: usize = 6;
/// Offset of the image version.
pub const VERSION: usize = 8;
/// Offset of the image's security counter.
pub const IMAGE_SECURITY_COUNTER: usize = 16;
/// Offset of the device's security counter.
pub const DEVICE_SECURITY_COUNTER: usize = 20;
/// Offset of the booted slot's flash offset.
pub const SLOT_OFFSET: usize = 24;
/// Offset of the checksum.
pub const CHECKSUM: usize = 28;

/// The checksum of a record: `!` of the wrapping sum of its first seven little-endian words.
pub fn checksum(record: &[u8; SIZE]) -> u32 {
    let (words, _) = record.split_at(CHECKSUM);
    let sum = words
        .chunks_exact(4)
        .filter_map(|word| word.first_chunk::<4>())
        .map(|word| u32::from_le_bytes(*word))
        .fold(0u32, u32::wrapping_add);
    !sum
}
