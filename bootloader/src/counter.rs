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

/// Where the maximum was found and where the next record of that sector would go.
struct Scan {
    value: u32,
    sector: usize,
    next_free: Option<u32>,
}

impl SecurityCounter {
    pub(crate) fn new(first_sector: u32, sector_size: u32) -> Self {
        Self { sectors: [first_sector, first_sector + sector_size], sector_size }
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
        let mut record = [0u8; CONTENT];
        record[..4].copy_from_slice(&value.to_le_bytes());
        record[4..].copy_from_slice(&(!value).to_le_bytes());
        match scan.next_free {
            Some(offset) => flash::write_unit(flash, offset, &record),
            None => {
                let other = self.sectors[1 - scan.sector];
                flash::erase(flash, other, self.sector_size)?;
                flash::write_unit(flash, other, &record)
            }
        }
    }

    fn scan<F: NorFlash>(&self, flash: &mut F) -> Result<Scan, FlashError> {
        let mut best = Scan { value: 0, sector: 0, next_free: None };
        let mut free = [None; 2];
        let unit_len = flash::unit_len::<F>();
        let units = self.sector_size / unit_len;
        for (index, base) in self.sectors.iter().enumerate() {
            let mut last_used = None;
            for unit in 0..units {
                let offset = base + unit * unit_len;
                let bytes = flash::read_unit(flash, offset)?;
                if flash::is_erased(&bytes) {
                    continue;
                }
                last_used = Some(unit);
                if let Some(value) = decode(flash::content(&bytes)).filter(|v| *v >= best.value) {
                    best.value = value;
                    best.sector = index;
                }
            }
            let next = last_used.map_or(0, |u| u + 1);
            free[index] = (next < units).then(|| base + next * unit_len);
        }
        best.next_free = free[best.sector];
        Ok(best)
    }
}

fn decode(record: [u8; CONTENT]) -> Option<u32> {
    let [a, b, c, d, e, f, g, h] = record;
    let value = u32::from_le_bytes([a, b, c, d]);
    (value == !u32::from_le_bytes([e, f, g, h])).then_some(value)
}
