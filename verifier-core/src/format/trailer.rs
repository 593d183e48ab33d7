//! MCUboot's trailer at the end of each slot: the boot magic and three one-byte flags.
//!
//! Offsets depend on `BOOT_MAX_ALIGN` (MA), the larger of 8 and the flash write size:
//!
//! | field | offset from slot end, MA = 8 / 16 / 32 | values |
//! |---|---|---|
//! | magic | -16 (16 bytes) | [`magic`]`(MA)` or erased |
//! | image_ok | -24 / -32 / -64 | [`FLAG_SET`] set, erased unset |
//! | copy_done | image_ok - MA | [`FLAG_SET`] set, erased unset |
//! | swap_info | copy_done - MA | low nibble: [`swap_type`] |
//!
//! Each field is written alone, as an MA-byte unit padded with the erased value.

/// Boot magic for a maximum write alignment of 8.
pub const MAGIC: [u8; 16] = [
    0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80,
];
/// The last 14 bytes of the magic for other alignments (the first two are the alignment).
const MAGIC_TAIL: [u8; 14] =
    [0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a];
/// Size of the boot magic.
pub const MAGIC_LEN: u32 = 16;
/// Value of a set flag.
pub const FLAG_SET: u8 = 0x01;

/// Swap types recorded in `swap_info` (and in the bootloader's journal).
pub mod swap_type {
    /// Boot the new image once; revert unless it confirms itself.
    pub const TEST: u8 = 2;
    /// Make the new image permanent.
    pub const PERMANENT: u8 = 3;
    /// Put the previous image back.
    pub const REVERT: u8 = 4;
}

/// The boot magic for a maximum write alignment of `max_align` bytes.
pub const fn magic(max_align: u16) -> [u8; 16] {
    if max_align == 8 {
        return MAGIC;
    }
    let [a0, a1] = max_align.to_le_bytes();
    let [t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13] = MAGIC_TAIL;
    [a0, a1, t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13]
}

/// Distance of `image_ok` from the slot end.
pub const fn image_ok_from_end(max_align: u32) -> u32 {
    MAGIC_LEN.next_multiple_of(max_align).saturating_add(max_align)
}

/// Distance of `copy_done` from the slot end.
pub const fn copy_done_from_end(max_align: u32) -> u32 {
    image_ok_from_end(max_align).saturating_add(max_align)
}

/// Distance of `swap_info` from the slot end.
pub const fn swap_info_from_end(max_align: u32) -> u32 {
    copy_done_from_end(max_align).saturating_add(max_align)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_the_maximum_alignment() {
        assert_eq!(
            [image_ok_from_end(8), copy_done_from_end(8), swap_info_from_end(8)],
            [24, 32, 40]
        );
        assert_eq!(image_ok_from_end(16), 32);
        assert_eq!(image_ok_from_end(32), 64);
        assert_eq!(magic(8), MAGIC);
        assert_eq!(magic(32)[..4], [32, 0, 0x2d, 0xe1]);
    }
}
