//! MCUboot's image trailer at the end of each slot, for `BOOT_MAX_ALIGN` = 8.
//!
//! | field | offset from slot end | values |
//! |---|---|---|
//! | magic | -16 (16 bytes) | [`MAGIC`] or erased |
//! | image_ok | -24 | `0x01` set, `0xFF` unset |
//! | copy_done | -32 | `0x01` set, `0xFF` unset |
//! | swap_info | -40 | low nibble: swap type (2 test, 3 permanent, 4 revert) |
//!
//! Each field is written alone, as an 8-byte unit padded with `0xFF`. This is the
//! interface shared with `imgtool sign --pad/--test/--confirm` and with applications
//! written for MCUboot; the bootloader's own progress bookkeeping lives elsewhere
//! (see [`journal`](crate::journal)).

use embedded_storage::nor_flash::NorFlash;

use crate::flash::{self, FlashError, UNIT, UNIT_LEN};
use crate::layout::Region;

/// Boot magic for a maximum write alignment of 8.
pub const MAGIC: [u8; 16] = [
    0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80,
];
const MAGIC_OFFSET: u32 = 16;
const IMAGE_OK_OFFSET: u32 = 24;
const COPY_DONE_OFFSET: u32 = 32;
const SWAP_INFO_OFFSET: u32 = 40;
const FLAG_SET: u8 = 0x01;

/// Swap type recorded in `swap_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum SwapType {
    /// Boot the new image once; revert unless it confirms itself.
    Test = 2,
    /// Make the new image permanent.
    Permanent = 3,
    /// Put the previous image back.
    Revert = 4,
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
        let end = slot.end();
        let mut magic = [0u8; 16];
        flash.read(end - MAGIC_OFFSET, &mut magic)?;
        let magic = match magic {
            MAGIC => Magic::Good,
            m if flash::is_erased(&m) => Magic::Unset,
            _ => Magic::Bad,
        };
        Ok(Self {
            magic,
            image_ok: Flag::decode(flash::read_unit(flash, end - IMAGE_OK_OFFSET)?[0]),
            copy_done: Flag::decode(flash::read_unit(flash, end - COPY_DONE_OFFSET)?[0]),
            swap_info: flash::read_unit(flash, end - SWAP_INFO_OFFSET)?[0],
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

/// Writes the 16-byte magic (two units).
pub(crate) fn write_magic<F: NorFlash>(flash: &mut F, slot: Region) -> Result<(), FlashError> {
    let at = slot.end() - MAGIC_OFFSET;
    let (first, second) = MAGIC.split_at(UNIT);
    flash::write_unit(flash, at, first)?;
    flash::write_unit(flash, at + UNIT_LEN, second)
}

/// Sets image_ok.
pub(crate) fn write_image_ok<F: NorFlash>(flash: &mut F, slot: Region) -> Result<(), FlashError> {
    flash::write_unit(flash, slot.end() - IMAGE_OK_OFFSET, &[FLAG_SET])
}

/// Sets copy_done.
pub(crate) fn write_copy_done<F: NorFlash>(flash: &mut F, slot: Region) -> Result<(), FlashError> {
    flash::write_unit(flash, slot.end() - COPY_DONE_OFFSET, &[FLAG_SET])
}

/// Records the swap type (image index 0).
pub(crate) fn write_swap_info<F: NorFlash>(
    flash: &mut F,
    slot: Region,
    swap: SwapType,
) -> Result<(), FlashError> {
    flash::write_unit(flash, slot.end() - SWAP_INFO_OFFSET, &[swap as u8])
}
