//! The application's side: stage an update, request it, confirm the running image.
//!
//! These are the operations MCUboot applications perform through `boot_set_pending` and
//! `boot_set_confirmed`, on the same trailer fields, so images and applications move
//! between this bootloader and MCUboot unchanged.

use embedded_storage::nor_flash::NorFlash;

use crate::flash::{self, FlashError};
use crate::layout::Layout;
use crate::trailer::{self, Flag, Magic, SwapType, Trailer};

/// Why an update could not be staged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UpdateError {
    /// A flash operation failed.
    Flash(FlashError),
    /// The image does not fit in the slot next to the trailer.
    TooLarge {
        /// Bytes requested.
        len: u32,
        /// Largest image the slot takes.
        max: u32,
    },
    /// A write falls outside the prepared range or is not aligned to the flash write size.
    BadWrite {
        /// Offset within the slot.
        offset: u32,
    },
}

impl From<FlashError> for UpdateError {
    fn from(error: FlashError) -> Self {
        UpdateError::Flash(error)
    }
}

/// Writes updates into the secondary slot and talks to the bootloader through trailers.
pub struct FirmwareUpdater<F> {
    flash: F,
    layout: Layout,
    prepared: u32,
}

impl<F: NorFlash> FirmwareUpdater<F> {
    /// An updater over the same flash and layout the bootloader uses.
    pub fn new(flash: F, layout: Layout) -> Self {
        const { flash::assert_unit_writable::<F>() };
        Self { flash, layout, prepared: 0 }
    }

    /// Erases the secondary trailer (cancelling any request), then the sectors an image of
    /// `len` bytes needs.
    ///
    /// # Errors
    /// [`UpdateError::TooLarge`] or a flash error.
    pub fn prepare(&mut self, len: u32) -> Result<(), UpdateError> {
        let max = self.layout.max_image_size();
        if len > max {
            return Err(UpdateError::TooLarge { len, max });
        }
        let slot = self.layout.secondary;
        let size = self.layout.sector_size;
        // Whole sectors, at least one (an error for a zero sector size).
        let erase_len = len.max(1).checked_next_multiple_of(size).ok_or(flash::OUT_OF_BOUNDS)?;
        trailer::erase(&mut self.flash, &self.layout, slot)?;
        flash::erase(&mut self.flash, slot.offset, erase_len)?;
        self.prepared = len;
        Ok(())
    }

    /// Writes `data` at `offset` within the prepared range. `offset` and `data.len()` must
    /// be multiples of the flash write size, except for the final chunk, which is padded.
    ///
    /// # Errors
    /// [`UpdateError::BadWrite`] or a flash error.
    pub fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), UpdateError> {
        let bad = UpdateError::BadWrite { offset };
        let len = u32::try_from(data.len()).map_err(|_| bad)?;
        let end = offset.checked_add(len).ok_or(bad)?;
        if end > self.prepared || !(offset as usize).is_multiple_of(F::WRITE_SIZE) {
            return Err(bad);
        }
        let at = self.layout.secondary.offset.checked_add(offset).ok_or(bad)?;
        // The remainder is a suffix of `data`: the subtraction cannot saturate.
        let tail_len = data.chunks_exact(F::WRITE_SIZE).remainder().len();
        let (whole, tail) =
            data.split_at_checked(data.len().saturating_sub(tail_len)).ok_or(bad)?;
        let tail_at =
            u32::try_from(whole.len()).ok().and_then(|len| at.checked_add(len)).ok_or(bad)?;
        self.flash.write(at, whole).map_err(FlashError::from)?;
        if !tail.is_empty() {
            if end != self.prepared {
                return Err(bad);
            }
            let mut unit = [flash::ERASED; flash::MAX_UNIT];
            unit.iter_mut().zip(tail).for_each(|(dst, src)| *dst = *src);
            let unit = unit.get(..F::WRITE_SIZE).ok_or(bad)?;
            self.flash.write(tail_at, unit).map_err(FlashError::from)?;
        }
        Ok(())
    }

    /// Requests the staged image: boot it once as a test (`permanent == false`) or for good.
    ///
    /// # Errors
    /// A flash error.
    pub fn request_upgrade(&mut self, permanent: bool) -> Result<(), UpdateError> {
        let slot = self.layout.secondary;
        let kind = if permanent { SwapType::Permanent } else { SwapType::Test };
        trailer::write_swap_info(&mut self.flash, slot, kind)?;
        if permanent {
            trailer::write_image_ok(&mut self.flash, slot)?;
        }
        // The magic goes last: a cut before it leaves no request at all.
        trailer::write_magic(&mut self.flash, slot)?;
        Ok(())
    }

    /// Whether the running image is a test boot still waiting for [`Self::confirm`].
    ///
    /// # Errors
    /// A flash error.
    pub fn is_pending_confirmation(&mut self) -> Result<bool, UpdateError> {
        Ok(Trailer::read(&mut self.flash, self.layout.primary)?.is_unconfirmed_test())
    }

    /// Confirms the running image so it is kept at the next reset. Does nothing if it is
    /// already confirmed.
    ///
    /// # Errors
    /// A flash error.
    pub fn confirm(&mut self) -> Result<(), UpdateError> {
        let slot = self.layout.primary;
        let state = Trailer::read(&mut self.flash, slot)?;
        if state.magic == Magic::Good && state.image_ok == Flag::Unset {
            trailer::write_image_ok(&mut self.flash, slot)?;
        }
        Ok(())
    }

    /// Gives the flash back.
    pub fn into_flash(self) -> F {
        self.flash
    }
}
