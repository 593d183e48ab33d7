//! The persistent, monotonic security counter.
//!
//! Two state sectors hold a log of records `value (u32 LE) ‖ !value (u32 LE)`, one per
//! bookkeeping unit (8 bytes, or the write size if larger).
//! The counter is the largest valid record in either sector, so a record is never
//! overwritten and an erase only ever removes older, smaller records:
//!
//! 1. a raise appends a record after the last used unit of the sector holding the maximum;
//! 2. when that sector is full, the other sector is erased and the new record starts it.
//!
//! A power cut at any point leaves either the old or the new maximum readable. Lowering is
//! impossible through this API.

use embedded_storage::nor_flash::NorFlash;

use crate::flash::{self, CONTENT, FlashError};

/// The security counter log.
pub(crate) struct SecurityCounter {
    sectors: [u32; 2],
    sector_size: u32,
}

/// Where the maximum was found, where the next record of that sector would go, and the
/// other sector.
struct Scan {
    value: u32,
    next_free: Option<u32>,
    other: u32,
}

/// The largest record of one sector and where its next record would go.
struct SectorScan {
    max: Option<u32>,
    next_free: Option<u32>,
}

impl SecurityCounter {
    /// The log in the two sectors starting at `first_sector`.
    ///
    /// # Errors
    /// Out of bounds if the second sector lies beyond the address space.
    pub(crate) fn new(first_sector: u32, sector_size: u32) -> Result<Self, FlashError> {
        let second_sector = flash::add(first_sector, sector_size)?;
        Ok(Self { sectors: [first_sector, second_sector], sector_size })
    }

    /// The current value (0 on a blank device).
    pub(crate) fn read<F: NorFlash>(&self, flash: &mut F) -> Result<u32, FlashError> {
        Ok(self.scan(flash)?.value)
    }

    /// Raises the counter to `value`; does nothing if it is already at least `value`.
    pub(crate) fn raise<F: NorFlash>(&self, flash: &mut F, value: u32) -> Result<(), FlashError> {
        let scan = self.scan(flash)?;
        if value <= scan.value {
            return Ok(());
        }
        let record = encode(value);
        match scan.next_free {
            Some(offset) => flash::write_unit(flash, offset, &record),
            None => {
                flash::erase(flash, scan.other, self.sector_size)?;
                flash::write_unit(flash, scan.other, &record)
            }
        }
    }

    fn scan<F: NorFlash>(&self, flash: &mut F) -> Result<Scan, FlashError> {
        let [first, second] = self.sectors;
        let (in_first, in_second) =
            (self.scan_sector(flash, first)?, self.scan_sector(flash, second)?);
        let value = in_first.max.max(in_second.max).unwrap_or(0);
        Ok(if in_second.max.is_some_and(|max| max >= in_first.max.unwrap_or(0)) {
            Scan { value, next_free: in_second.next_free, other: first }
        } else {
            Scan { value, next_free: in_first.next_free, other: second }
        })
    }

    fn scan_sector<F: NorFlash>(&self, flash: &mut F, base: u32) -> Result<SectorScan, FlashError> {
        let unit_len = flash::unit_len::<F>();
        let units = flash::units_in::<F>(self.sector_size);
        let (mut max, mut used) = (None, 0);
        for unit in 0..units {
            let bytes = flash::read_unit(flash, flash::at(base, unit, unit_len)?)?;
            if flash::is_erased(&bytes) {
                continue;
            }
            // `unit < units`: cannot saturate.
            used = unit.saturating_add(1);
            max = max.max(decode(flash::content(&bytes)));
        }
        let next_free = if used < units { Some(flash::at(base, used, unit_len)?) } else { None };
        Ok(SectorScan { max, next_free })
    }
}

fn encode(value: u32) -> [u8; CONTENT] {
    let [a, b, c, d] = value.to_le_bytes();
    let [e, f, g, h] = (!value).to_le_bytes();
    [a, b, c, d, e, f, g, h]
}

fn decode(record: [u8; CONTENT]) -> Option<u32> {
    let [a, b, c, d, e, f, g, h] = record;
    let value = u32::from_le_bytes([a, b, c, d]);
    (value == !u32::from_le_bytes([e, f, g, h])).then_some(value)
}
