//! Where the slots and the bootloader's own state live on the flash.
//!
//! All regions are byte ranges of one [`NorFlash`](embedded_storage::nor_flash::NorFlash)
//! device and must start and end on erase-sector boundaries. The last sector of each slot
//! is reserved for the MCUboot trailer, so an image may use at most
//! `slot size - sector size` bytes.

/// A byte range of the flash device: `offset..offset + size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Region {
    /// First byte, relative to the start of the flash device.
    pub offset: u32,
    /// Length in bytes.
    pub size: u32,
}

impl Region {
    /// A region of `size` bytes starting at `offset`.
    pub const fn new(offset: u32, size: u32) -> Self {
        Self { offset, size }
    }

    /// One past the last byte, or `None` if that lies beyond the 32-bit address space.
    pub const fn end(&self) -> Option<u32> {
        self.offset.checked_add(self.size)
    }

    /// Whether the regions share a byte; a region without an end overlaps everything.
    fn overlaps(&self, other: &Region) -> bool {
        match (self.end(), other.end()) {
            (Some(end), Some(other_end)) => self.offset < other_end && other.offset < end,
            _ => true,
        }
    }
}

/// The partitions the bootloader manages.
///
/// | region | sectors | contents |
/// |---|---|---|
/// | `primary` | N | the image that runs (execute in place), trailer in the last sector |
/// | `secondary` | N | the incoming update, trailer in the last sector |
/// | `scratch` | 1 | temporary copy of one sector during a swap |
/// | `state` | 3 | sector 0: swap journal; sectors 1-2: security counter log |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Layout {
    /// Slot the application runs from.
    pub primary: Region,
    /// Slot an update is written into.
    pub secondary: Region,
    /// One sector used while swapping.
    pub scratch: Region,
    /// Three sectors of bootloader state.
    pub state: Region,
    /// Erase-sector size shared by all regions.
    pub sector_size: u32,
}

/// Why a [`Layout`] cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LayoutError {
    /// The sector size is not a multiple of the flash erase size.
    SectorSize,
    /// A region does not start and end on a sector boundary, or is too small.
    Misaligned,
    /// Primary and secondary slots differ in size.
    SlotSizeMismatch,
    /// Two regions overlap.
    Overlap,
    /// The swap journal cannot record that many sectors.
    SlotTooLarge,
    /// A region lies beyond the end of the flash.
    OutOfFlash,
}

/// Number of state sectors the bootloader needs.
pub const STATE_SECTORS: u32 = 3;

impl Layout {
    /// Sectors per slot, including the trailer sector (0 if the sector size is 0).
    pub const fn slot_sectors(&self) -> u32 {
        match self.primary.size.checked_div(self.sector_size) {
            Some(sectors) => sectors,
            None => 0,
        }
    }

    /// Largest image (header, payload and TLVs) a slot can hold: the slot-fit rule
    /// [`verifier_core::max_image_len`] that host tools apply too.
    pub const fn max_image_size(&self) -> u32 {
        verifier_core::max_image_len(self.primary.size, self.sector_size)
    }

    /// Offset of the sector holding `slot`'s trailer, or `None` if `slot` ends beyond the
    /// address space or is smaller than a sector.
    pub const fn trailer_sector(&self, slot: Region) -> Option<u32> {
        match slot.end() {
            Some(end) => end.checked_sub(self.sector_size),
            None => None,
        }
    }

    /// Checks the layout against a flash device's geometry.
    ///
    /// # Errors
    /// The [`LayoutError`] naming the first rule broken.
    pub fn check(
        &self,
        erase_size: u32,
        capacity: u32,
        journal_units: u32,
    ) -> Result<(), LayoutError> {
        if self.sector_size == 0 || erase_size == 0 || !self.sector_size.is_multiple_of(erase_size)
        {
            return Err(LayoutError::SectorSize);
        }
        let regions = [self.primary, self.secondary, self.scratch, self.state];
        for region in regions {
            if !region.offset.is_multiple_of(self.sector_size)
                || !region.size.is_multiple_of(self.sector_size)
            {
                return Err(LayoutError::Misaligned);
            }
            if region.end().is_none_or(|end| end > capacity) {
                return Err(LayoutError::OutOfFlash);
            }
        }
        if self.primary.size != self.secondary.size {
            return Err(LayoutError::SlotSizeMismatch);
        }
        if self.slot_sectors() < 2 || self.scratch.size < self.sector_size {
            return Err(LayoutError::Misaligned);
        }
        let state_size = STATE_SECTORS.checked_mul(self.sector_size);
        if state_size.is_none_or(|needed| self.state.size < needed) {
            return Err(LayoutError::Misaligned);
        }
        let mut rest = regions.as_slice();
        while let Some((region, others)) = rest.split_first() {
            if others.iter().any(|other| region.overlaps(other)) {
                return Err(LayoutError::Overlap);
            }
            rest = others;
        }
        // All sectors but the trailer's are swapped (at least 1: checked above). The journal
        // holds a header, one unit per step and the boot marker.
        let swapped = self.slot_sectors().saturating_sub(1);
        let units = crate::journal::steps_for(swapped).checked_add(2);
        if units.is_none_or(|units| units > journal_units) {
            return Err(LayoutError::SlotTooLarge);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECTOR: u32 = 0x1000;

    fn layout() -> Layout {
        Layout {
            primary: Region::new(0x0000, 8 * SECTOR),
            secondary: Region::new(0x8000, 8 * SECTOR),
            scratch: Region::new(0x10000, SECTOR),
            state: Region::new(0x11000, 3 * SECTOR),
            sector_size: SECTOR,
        }
    }

    #[test]
    fn accepts_a_sound_layout() {
        assert_eq!(layout().check(SECTOR, 0x14000, 512), Ok(()));
        assert_eq!(layout().max_image_size(), 7 * SECTOR);
    }

    #[test]
    fn rejects_each_broken_rule() {
        let mut l = layout();
        l.secondary.size = 4 * SECTOR;
        assert_eq!(l.check(SECTOR, 0x14000, 512), Err(LayoutError::SlotSizeMismatch));
        let mut l = layout();
        l.scratch.offset = 0x7000;
        assert_eq!(l.check(SECTOR, 0x14000, 512), Err(LayoutError::Overlap));
        let mut l = layout();
        l.state.offset += 1;
        assert_eq!(l.check(SECTOR, 0x14000, 512), Err(LayoutError::Misaligned));
        assert_eq!(layout().check(0x3000, 0x14000, 512), Err(LayoutError::SectorSize));
        assert_eq!(layout().check(SECTOR, 0x12000, 512), Err(LayoutError::OutOfFlash));
        assert_eq!(layout().check(SECTOR, 0x14000, 8), Err(LayoutError::SlotTooLarge));
    }

    #[test]
    fn a_region_ending_beyond_the_address_space_is_out_of_flash() {
        let mut l = layout();
        l.state = Region::new(0xFFFF_F000, 3 * SECTOR);
        assert_eq!(l.state.end(), None);
        assert_eq!(l.check(SECTOR, u32::MAX, 512), Err(LayoutError::OutOfFlash));
        assert_eq!(l.trailer_sector(l.state), None);
    }
}
