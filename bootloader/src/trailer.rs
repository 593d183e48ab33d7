//! MCUboot's image trailer at the end of each slot.
//!
//! Offsets depend on `BOOT_MAX_ALIGN` (MA), the larger of 8 and the flash write size; images
//! for a flash with 16- or 32-byte writes are signed with `imgtool sign --max-align 16|32`.
//!
//! The layout is defined in `verifier_core::format::trailer`. Each field is written alone, as
//! an MA-byte unit padded with the erased value (`0xFF`, or `0x00` with the
//! `flash-erase-zero` feature). This is the
//! interface shared with `imgtool sign --pad/--test/--confirm` and with applications
//! written for MCUboot; the bootloader's own progress bookkeeping lives elsewhere
//! (see [`journal`](crate::journal)).

use embedded_storage::nor_flash::NorFlash;

use crate::flash::{self, FlashError, MAX_UNIT};
use crate::layout::{Layout, Region};

use verifier_core::format::trailer::{
    FLAG_SET, MAGIC_LEN, copy_done_from_end, image_ok_from_end, swap_info_from_end, swap_type,
};
pub use verifier_core::format::trailer::{MAGIC, magic};

/// Distances of the flags from the slot end on flash `F`.
struct Offsets {
    image_ok: u32,
    copy_done: u32,
    swap_info: u32,
}

impl Offsets {
    fn of<F: NorFlash>() -> Self {
        let align = flash::unit_len::<F>();
        Self {
            image_ok: image_ok_from_end(align),
            copy_done: copy_done_from_end(align),
            swap_info: swap_info_from_end(align),
        }
    }
}

/// Where the field `from_end` bytes before the end of `slot` starts.
fn field_at(slot: Region, from_end: u32) -> Result<u32, FlashError> {
    slot.end().and_then(|end| end.checked_sub(from_end)).ok_or(flash::OUT_OF_BOUNDS)
}

fn magic_of<F: NorFlash>() -> [u8; 16] {
    magic(u16::try_from(flash::unit::<F>()).unwrap_or(u16::MAX))
}

/// Swap type recorded in `swap_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum SwapType {
    /// Boot the new image once; revert unless it confirms itself.
    Test = swap_type::TEST,
    /// Make the new image permanent.
    Permanent = swap_type::PERMANENT,
    /// Put the previous image back.
    Revert = swap_type::REVERT,
}

/// State of the 16-byte magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Magic {
    /// The MCUboot magic.
    Good,
    /// All bytes erased.
    Unset,
    /// Anything else.
    Bad,
}

/// State of a one-byte flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Flag {
    /// `0x01`.
    Set,
    /// Erased.
    Unset,
    /// Any other value.
    Bad,
}

impl Flag {
    fn decode(byte: u8) -> Self {
        match byte {
            FLAG_SET => Flag::Set,
            flash::ERASED => Flag::Unset,
            _ => Flag::Bad,
        }
    }
}

/// The decoded trailer of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Trailer {
    /// Boot magic.
    pub magic: Magic,
    /// The image is confirmed.
    pub image_ok: Flag,
    /// The image was put here by a swap.
    pub copy_done: Flag,
    /// Raw swap_info byte.
    pub swap_info: u8,
}

impl Trailer {
    /// Reads the trailer at the end of `slot`.
    ///
    /// # Errors
    /// A flash read error.
    pub fn read<F: NorFlash>(flash: &mut F, slot: Region) -> Result<Self, FlashError> {
        let at = Offsets::of::<F>();
        let mut magic = [0u8; 16];
        flash.read(field_at(slot, MAGIC_LEN)?, &mut magic)?;
        let magic = match magic {
            m if m == magic_of::<F>() => Magic::Good,
            m if flash::is_erased(&m) => Magic::Unset,
            _ => Magic::Bad,
        };
        Ok(Self {
            magic,
            image_ok: Flag::decode(flash::read_unit(flash, field_at(slot, at.image_ok)?)?[0]),
            copy_done: Flag::decode(flash::read_unit(flash, field_at(slot, at.copy_done)?)?[0]),
            swap_info: flash::read_unit(flash, field_at(slot, at.swap_info)?)?[0],
        })
    }

    /// The upgrade this trailer requests when it belongs to the secondary slot.
    pub fn requested_upgrade(&self) -> Option<SwapType> {
        match (self.magic, self.image_ok) {
            (Magic::Good, Flag::Unset) => Some(SwapType::Test),
            (Magic::Good, Flag::Set) => Some(SwapType::Permanent),
            _ => None,
        }
    }

    /// Whether this primary-slot trailer marks a test boot that was never confirmed.
    pub fn is_unconfirmed_test(&self) -> bool {
        self.magic == Magic::Good && self.copy_done == Flag::Set && self.image_ok == Flag::Unset
    }
}

/// Writes the 16-byte magic: two units when they are 8 bytes, else the one unit ending at the
/// slot end, the magic in its last 16 bytes.
pub(crate) fn write_magic<F: NorFlash>(flash: &mut F, slot: Region) -> Result<(), FlashError> {
    let magic = magic_of::<F>();
    let unit = flash::unit::<F>();
    if unit < magic.len() {
        let at = field_at(slot, MAGIC_LEN)?;
        let (first, second) = magic.split_at_checked(unit).ok_or(flash::OUT_OF_BOUNDS)?;
        flash::write_unit(flash, at, first)?;
        return flash::write_unit(flash, flash::add(at, flash::unit_len::<F>())?, second);
    }
    let mut padded = [flash::ERASED; MAX_UNIT];
    let field = padded.get_mut(..unit).ok_or(flash::OUT_OF_BOUNDS)?;
    // `unit` is at least the magic's length here: never out of bounds.
    *field.last_chunk_mut().ok_or(flash::OUT_OF_BOUNDS)? = magic;
    flash::write_unit(flash, field_at(slot, flash::unit_len::<F>())?, field)
}

/// Erases the sector holding `slot`'s trailer.
pub(crate) fn erase<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    slot: Region,
) -> Result<(), FlashError> {
    let sector = layout.trailer_sector(slot).ok_or(flash::OUT_OF_BOUNDS)?;
    flash::erase(flash, sector, layout.sector_size)
}

/// Sets image_ok.
pub(crate) fn write_image_ok<F: NorFlash>(flash: &mut F, slot: Region) -> Result<(), FlashError> {
    flash::write_unit(flash, field_at(slot, Offsets::of::<F>().image_ok)?, &[FLAG_SET])
}

/// Sets copy_done.
pub(crate) fn write_copy_done<F: NorFlash>(flash: &mut F, slot: Region) -> Result<(), FlashError> {
    flash::write_unit(flash, field_at(slot, Offsets::of::<F>().copy_done)?, &[FLAG_SET])
}

/// Records the swap type (image index 0).
pub(crate) fn write_swap_info<F: NorFlash>(
    flash: &mut F,
    slot: Region,
    swap: SwapType,
) -> Result<(), FlashError> {
    flash::write_unit(flash, field_at(slot, Offsets::of::<F>().swap_info)?, &[swap as u8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimFlash;

    /// Writes every field into a 1 KiB slot and returns the slot's last 64 bytes.
    fn trailer_bytes<const W: usize>() -> [u8; 64] {
        let mut flash = SimFlash::<W, 256>::new(1024);
        let slot = Region::new(0, 1024);
        write_swap_info(&mut flash, slot, SwapType::Test).expect("write");
        write_copy_done(&mut flash, slot).expect("write");
        write_image_ok(&mut flash, slot).expect("write");
        write_magic(&mut flash, slot).expect("write");
        let trailer = Trailer::read(&mut flash, slot).expect("read");
        assert_eq!(
            (trailer.magic, trailer.image_ok, trailer.copy_done, trailer.swap_info),
            (Magic::Good, Flag::Set, Flag::Set, 2)
        );
        let mut end = [0u8; 64];
        end.copy_from_slice(&flash.bytes()[960..]);
        end
    }

    #[test]
    fn a_slot_smaller_than_its_trailer_is_out_of_bounds() {
        let mut sim = SimFlash::<4, 256>::new(1024);
        let slot = Region::new(0, 8);
        assert_eq!(Trailer::read(&mut sim, slot), Err(flash::OUT_OF_BOUNDS));
        assert_eq!(write_magic(&mut sim, slot), Err(flash::OUT_OF_BOUNDS));
        assert!(flash::is_erased(sim.bytes()), "nothing written");
    }

    /// MCUboot's offsets (image_ok at `ALIGN_DOWN(end - 16 - MA, MA)`) and magics, as imgtool
    /// writes them with `--max-align 8|16|32`.
    #[test]
    fn fields_sit_where_mcuboot_puts_them_for_every_alignment() {
        for (end, ma) in [(trailer_bytes::<4>(), 8), (trailer_bytes::<8>(), 8)] {
            assert_eq!(end[48..], MAGIC);
            assert_eq!([end[40], end[32], end[24]], [1, 1, 2], "align {ma}");
        }
        let end = trailer_bytes::<16>();
        assert_eq!(end[48..50], [0x10, 0x00]);
        assert_eq!(end[50..], magic(16)[2..]);
        assert_eq!([end[32], end[16], end[0]], [1, 1, 2]);
        let end = trailer_bytes::<32>();
        assert_eq!(end[48..], magic(32));
        assert_eq!(magic(32)[..4], [0x20, 0x00, 0x2d, 0xe1]);
        assert_eq!(end[0], 1, "image_ok at end - 64");
    }
}
