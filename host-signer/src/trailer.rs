//! The swap trailer at the end of a slot, as `--pad`, `--test` and `--confirm` write it.
//!
//! Only the boot magic and `image_ok` are ever written by the signer; the size of the
//! whole trailer matters because the image must leave room for it in the slot. Sizes
//! follow imgtool's estimate (three status entries per sector, no swap-offset field),
//! so the "image too large" boundary is where imgtool puts it.

use verifier_core::format::trailer::{self as format, FLAG_SET};

/// Size of the boot magic.
pub const MAGIC_SIZE: u32 = format::MAGIC_LEN;

/// Flash write sizes `--align` accepts.
pub const ALIGNMENTS: [u8; 6] = [1, 2, 4, 8, 16, 32];
/// Values `--max-align` accepts.
pub const MAX_ALIGNMENTS: [u8; 3] = [8, 16, 32];

/// The trailer geometry, from the bootloader's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrailerLayout {
    /// Flash write size (`--align`), one of [`ALIGNMENTS`].
    pub align: u8,
    /// `BOOT_MAX_ALIGN` (`--max-align`), one of [`MAX_ALIGNMENTS`].
    pub max_align: u8,
    /// Sectors the swap status must cover (`-M`, 128 by default).
    pub max_sectors: u32,
    /// Overwrite-only upgrades keep no swap status.
    pub overwrite_only: bool,
}

/// What the trailer of a padded image says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotMark {
    /// Magic only (`--pad`).
    Pad,
    /// Magic, `image_ok` erased: boot it once as a test (`--test`).
    Test,
    /// Magic and `image_ok` set: a permanent upgrade (`--confirm`).
    Confirm,
}

impl TrailerLayout {
    /// The default layout for a write size: `max_align` = max(8, align).
    pub fn for_align(align: u8) -> Self {
        Self { align, max_align: align.max(8), max_sectors: 128, overwrite_only: false }
    }

    fn max_align(&self) -> u32 {
        u32::from(self.max_align)
    }

    fn magic_area(&self) -> u32 {
        MAGIC_SIZE.next_multiple_of(self.max_align())
    }

    /// Bytes the trailer takes at the end of the slot.
    pub fn size(&self) -> u64 {
        let max_align = u64::from(self.max_align);
        let magic = u64::from(self.magic_area());
        if self.overwrite_only {
            2 * max_align + magic
        } else {
            let status = u64::from(self.max_sectors) * 3 * u64::from(self.align);
            status + 4 * max_align + magic
        }
    }

    /// The 16-byte boot magic.
    pub fn magic(&self) -> [u8; 16] {
        format::magic(u16::from(self.max_align))
    }

    /// Distance of `image_ok` from the end of the slot.
    pub fn image_ok_from_end(&self) -> u32 {
        format::image_ok_from_end(self.max_align())
    }

    /// The writes a mark makes, as (distance from slot end, bytes), lowest address first.
    ///
    /// `--test` and `--confirm` write the whole `max_align` chunk holding `image_ok`
    /// (erased for test); overwrite-only layouts have no `image_ok` and take magic only.
    pub fn writes(&self, mark: SlotMark, erased: u8) -> Vec<(u32, Vec<u8>)> {
        let mut writes = Vec::with_capacity(2);
        if mark != SlotMark::Pad && !self.overwrite_only {
            let mut chunk = vec![erased; usize::from(self.max_align)];
            if let (SlotMark::Confirm, Some(first)) = (mark, chunk.first_mut()) {
                *first = FLAG_SET;
            }
            writes.push((self.image_ok_from_end(), chunk));
        }
        writes.push((MAGIC_SIZE, self.magic().to_vec()));
        writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_trailer_is_432_bytes() {
        assert_eq!(TrailerLayout::for_align(1).size(), 0x1b0);
    }

    #[test]
    fn image_ok_offsets() {
        assert_eq!(TrailerLayout::for_align(8).image_ok_from_end(), 24);
        assert_eq!(TrailerLayout::for_align(32).image_ok_from_end(), 64);
    }

    #[test]
    fn magic_for_large_alignment_starts_with_it() {
        let magic = TrailerLayout::for_align(32).magic();
        assert_eq!(&magic[..4], &[0x20, 0x00, 0x2d, 0xe1]);
    }

    #[test]
    fn overwrite_only_never_writes_image_ok() {
        let layout = TrailerLayout { overwrite_only: true, ..TrailerLayout::for_align(4) };
        assert_eq!(layout.size(), 32);
        assert_eq!(layout.writes(SlotMark::Confirm, 0xff).len(), 1);
    }
}
