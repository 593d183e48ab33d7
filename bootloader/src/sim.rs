//! A simulated NOR flash for host tests, with power cuts.
//!
//! It behaves like the real thing where the bootloader could get it wrong: erase sets whole
//! sectors to `0xFF`, a write must be aligned to the write size and may only program erased
//! bytes, and reads and writes must stay in bounds. A power cut can be scheduled after N
//! erase/write operations: the Nth is not performed and every later one fails until power
//! is restored, as on MCUboot's simulator.

extern crate std;
use std::vec;
use std::vec::Vec;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// A simulated operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimError {
    /// Power was cut before this operation.
    PowerCut,
    /// A write hit a byte that is not erased.
    NotErased {
        /// Offset of the first such byte.
        offset: u32,
    },
    /// Offset or length not aligned to the write or erase size.
    NotAligned,
    /// Outside the device.
    OutOfBounds,
}

impl NorFlashError for SimError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            SimError::NotAligned => NorFlashErrorKind::NotAligned,
            SimError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            SimError::PowerCut | SimError::NotErased { .. } => NorFlashErrorKind::Other,
        }
    }
}

/// NOR flash in memory with `WRITE`-byte writes and `ERASE`-byte sectors.
#[derive(Clone, Debug)]
pub struct SimFlash<const WRITE: usize, const ERASE: usize> {
    data: Vec<u8>,
    operations: u32,
    cut_after: Option<u32>,
}

impl<const WRITE: usize, const ERASE: usize> SimFlash<WRITE, ERASE> {
    /// An erased device of `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            data: vec![0xFF; capacity],
            operations: 0,
            cut_after: None,
        }
    }

    /// The raw contents.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// Erase and write operations performed so far.
    pub fn operations(&self) -> u32 {
        self.operations
    }

    /// Cuts power before the `n`th erase or write from now (`n >= 1`).
    pub fn cut_power_after(&mut self, n: u32) {
        self.cut_after = Some(n);
    }

    /// Powers the device up again; pending cuts are cancelled.
    pub fn restore_power(&mut self) {
        self.cut_after = None;
    }

    /// Programs bytes directly, bypassing the rules (factory programming in tests).
    pub fn program(&mut self, offset: usize, bytes: &[u8]) {
        self.data[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    fn tick(&mut self) -> Result<(), SimError> {
        match self.cut_after {
            Some(0) => return Err(SimError::PowerCut),
            Some(1) => {
                self.cut_after = Some(0);
                return Err(SimError::PowerCut);
            }
            Some(n) => self.cut_after = Some(n - 1),
            None => {}
        }
        self.operations += 1;
        Ok(())
    }

    fn range(&self, offset: u32, len: usize) -> Result<core::ops::Range<usize>, SimError> {
        let start = offset as usize;
        let end = start
            .checked_add(len)
            .filter(|end| *end <= self.data.len())
            .ok_or(SimError::OutOfBounds)?;
        Ok(start..end)
    }
}

impl<const WRITE: usize, const ERASE: usize> ErrorType for SimFlash<WRITE, ERASE> {
    type Error = SimError;
}

impl<const WRITE: usize, const ERASE: usize> ReadNorFlash for SimFlash<WRITE, ERASE> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        let range = self.range(offset, bytes.len())?;
        bytes.copy_from_slice(&self.data[range]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl<const WRITE: usize, const ERASE: usize> NorFlash for SimFlash<WRITE, ERASE> {
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        if !(from as usize).is_multiple_of(ERASE)
            || !(to as usize).is_multiple_of(ERASE)
            || to < from
        {
            return Err(SimError::NotAligned);
        }
        let range = self.range(from, (to - from) as usize)?;
        self.tick()?;
        self.data[range].fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        if !(offset as usize).is_multiple_of(WRITE) || !bytes.len().is_multiple_of(WRITE) {
            return Err(SimError::NotAligned);
        }
        let range = self.range(offset, bytes.len())?;
        if let Some(i) = self.data[range.clone()].iter().position(|b| *b != 0xFF) {
            return Err(SimError::NotErased {
                offset: offset + u32::try_from(i).unwrap_or(u32::MAX),
            });
        }
        self.tick()?;
        self.data[range]
            .iter_mut()
            .zip(bytes)
            .for_each(|(cell, byte)| *cell &= *byte);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type Result = core::result::Result<(), SimError>;

    #[test]
    fn enforces_nor_rules() -> Result {
        let mut flash = SimFlash::<4, 16>::new(64);
        assert_eq!(flash.write(2, &[0; 4]), Err(SimError::NotAligned));
        assert_eq!(flash.write(0, &[0; 3]), Err(SimError::NotAligned));
        assert_eq!(flash.erase(0, 8), Err(SimError::NotAligned));
        assert_eq!(flash.write(64, &[0; 4]), Err(SimError::OutOfBounds));
        flash.write(0, &[1, 2, 3, 4])?;
        assert_eq!(
            flash.write(0, &[0; 4]),
            Err(SimError::NotErased { offset: 0 })
        );
        flash.erase(0, 16)?;
        assert!(flash.bytes()[..16].iter().all(|b| *b == 0xFF));
        Ok(())
    }

    #[test]
    fn power_cut_stops_the_nth_operation_and_all_after() -> Result {
        let mut flash = SimFlash::<4, 16>::new(64);
        flash.cut_power_after(2);
        flash.write(0, &[0; 4])?;
        assert_eq!(flash.write(4, &[0; 4]), Err(SimError::PowerCut));
        assert_eq!(flash.erase(0, 16), Err(SimError::PowerCut));
        assert_eq!(flash.bytes()[4], 0xFF);
        flash.restore_power();
        flash.write(4, &[0; 4])?;
        assert_eq!(flash.operations(), 2);
        Ok(())
    }
}
