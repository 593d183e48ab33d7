//! A simulated NOR flash for host tests, with power cuts, torn writes and interrupted erases.
//!
//! It behaves like the real thing where the bootloader could get it wrong:
//! - the sector map may be uniform or mixed (STM32F4: 16, 64 and 128 KiB sectors), and an
//!   erase must cover whole physical sectors;
//! - a write must be aligned to the write size (1 to 32 bytes) and may only program cells
//!   that are erased; programming only moves bits away from the erased value (`0xFF` or
//!   `0x00`);
//! - reads, writes and erases must stay in bounds.
//!
//! A [`Fault`] can be scheduled at the Nth erase or write from now. The faulty operation is
//! not performed ([`Fault::Cut`]), performed in part ([`Fault::TornWrite`]: a prefix of the
//! cells programmed and one cell only partly), or leaves its sectors partly erased or with
//! random content ([`Fault::InterruptedErase`]). Every later operation then fails until
//! [`SimFlash::restore_power`], as on MCUboot's simulator.

// Test support, never in a bootloader build (`sim-flash` feature or `cfg(test)`): a host
// test should stop at the first impossible state, so it panics and indexes freely.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects, clippy::expect_used)]

extern crate std;
use std::vec;
use std::vec::Vec;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// The rules of a simulated device whose flash starts at address 0: a security counter is
/// required and `ROM_FIXED` images must be linked for the primary slot.
pub const fn device_rules(layout: &crate::Layout) -> verifier_core::DeviceRules {
    verifier_core::DeviceRules {
        require_security_counter: true,
        allowed_flags: verifier_core::format::flags::ROM_FIXED,
        run_address: layout.primary.offset,
    }
}

/// A simulated operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimError {
    /// Power was cut before or during this operation.
    PowerCut,
    /// A write hit a byte that is not erased.
    NotErased {
        /// Offset of the first such byte.
        offset: u32,
    },
    /// Offset or length not aligned to the write size, or an erase not covering whole
    /// sectors.
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

/// What a power failure does to the operation it interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The operation is not performed at all.
    Cut,
    /// A write stops part-way: the cells before a point chosen from `seed` are programmed,
    /// the cell at that point only partly (some of its bits), the rest not at all. An erase
    /// hit by this fault is not performed.
    TornWrite {
        /// Chooses the point and the bits.
        seed: u64,
    },
    /// An erase stops part-way. A write hit by this fault is not performed.
    InterruptedErase {
        /// What the erased range holds afterwards.
        damage: EraseDamage,
        /// Chooses the extent or the content.
        seed: u64,
    },
}

/// The state an interrupted erase leaves behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EraseDamage {
    /// A prefix of the range is erased, the rest keeps its old content.
    Partial,
    /// The range holds random bytes.
    Random,
}

/// One erase or write, as recorded by [`SimFlash::operations_log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `erase(from, to)`.
    Erase {
        /// Start of the range.
        from: u32,
        /// End of the range.
        to: u32,
    },
    /// `write(offset, len bytes)`.
    Write {
        /// First byte.
        offset: u32,
        /// Bytes written.
        len: u32,
    },
}

/// NOR flash in memory with `WRITE`-byte writes and a smallest sector of `ERASE` bytes.
#[derive(Clone, Debug)]
pub struct SimFlash<const WRITE: usize, const ERASE: usize> {
    data: Vec<u8>,
    /// Start offset of every sector, plus the capacity at the end.
    sector_starts: Vec<u32>,
    erased: u8,
    operations: u32,
    fault: Option<(u32, Fault)>,
    powered: bool,
    log: Option<Vec<Operation>>,
}

impl<const WRITE: usize, const ERASE: usize> SimFlash<WRITE, ERASE> {
    /// An erased device of `capacity` bytes in uniform `ERASE`-byte sectors, erased to the
    /// value this build of the bootloader expects ([`crate::ERASED_VALUE`]).
    pub fn new(capacity: usize) -> Self {
        assert!(capacity.is_multiple_of(ERASE), "capacity must be whole sectors");
        let count = u32::try_from(capacity / ERASE).expect("capacity fits in u32");
        let sector = u32::try_from(ERASE).expect("sector fits");
        Self::with_sectors(&[(count, sector)], crate::ERASED_VALUE)
    }

    /// An erased device made of runs of `(count, size)` sectors, in address order, whose
    /// erased cells read `erased` (`0xFF` or `0x00`). Every size must be a multiple of `ERASE`.
    pub fn with_sectors(runs: &[(u32, u32)], erased: u8) -> Self {
        const { assert!(WRITE >= 1 && WRITE <= 32, "write size must be 1 to 32 bytes") };
        assert!(erased == 0xFF || erased == 0x00, "erased value is 0xFF or 0x00");
        let mut sector_starts = vec![0u32];
        for &(count, size) in runs {
            assert!(
                (size as usize).is_multiple_of(ERASE),
                "sector size {size} is not a multiple of the erase size {ERASE}"
            );
            for _ in 0..count {
                let last = *sector_starts.last().expect("never empty");
                sector_starts.push(last + size);
            }
        }
        let capacity = *sector_starts.last().expect("never empty") as usize;
        Self {
            data: vec![erased; capacity],
            sector_starts,
            erased,
            operations: 0,
            fault: None,
            powered: true,
            log: None,
        }
    }

    /// The raw contents.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The value of an erased byte.
    pub fn erased_value(&self) -> u8 {
        self.erased
    }

    /// Sector boundaries: the start of every sector, then the capacity.
    pub fn sector_starts(&self) -> &[u32] {
        &self.sector_starts
    }

    /// Erase and write operations performed so far (a faulty one counts).
    pub fn operations(&self) -> u32 {
        self.operations
    }

    /// Cuts power before the `n`th erase or write from now (`n >= 1`).
    pub fn cut_power_after(&mut self, n: u32) {
        self.schedule(n, Fault::Cut);
    }

    /// Applies `fault` to the `n`th erase or write from now (`n >= 1`); power is off from then.
    pub fn schedule(&mut self, n: u32, fault: Fault) {
        assert!(n >= 1, "operations are counted from 1");
        self.fault = Some((n, fault));
    }

    /// Powers the device up again; pending faults are cancelled.
    pub fn restore_power(&mut self) {
        self.fault = None;
        self.powered = true;
    }

    /// Whether a scheduled fault has fired and power is still off.
    pub fn is_powered_off(&self) -> bool {
        !self.powered
    }

    /// Starts (or restarts) recording every erase and write.
    pub fn record_operations(&mut self) {
        self.log = Some(Vec::new());
    }

    /// The operations recorded since [`Self::record_operations`].
    pub fn operations_log(&self) -> &[Operation] {
        self.log.as_deref().unwrap_or(&[])
    }

    /// Programs bytes directly, bypassing the rules (factory programming in tests).
    pub fn program(&mut self, offset: usize, bytes: &[u8]) {
        self.data[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    /// Counts an operation; the fault that hits it, if any.
    fn tick(&mut self, operation: Operation) -> Result<Option<Fault>, SimError> {
        if !self.powered {
            return Err(SimError::PowerCut);
        }
        if let Some(log) = &mut self.log {
            log.push(operation);
        }
        self.operations += 1;
        match &mut self.fault {
            Some((1, fault)) => {
                let fault = *fault;
                self.fault = None;
                self.powered = false;
                Ok(Some(fault))
            }
            Some((n, _)) => {
                *n -= 1;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn range(&self, offset: u32, len: usize) -> Result<core::ops::Range<usize>, SimError> {
        let start = offset as usize;
        let end = start
            .checked_add(len)
            .filter(|end| *end <= self.data.len())
            .ok_or(SimError::OutOfBounds)?;
        Ok(start..end)
    }

    fn is_sector_boundary(&self, offset: u32) -> bool {
        self.sector_starts.binary_search(&offset).is_ok()
    }

    /// The value a cell holds after `byte` is programmed into it.
    fn programmed(&self, cell: u8, byte: u8) -> u8 {
        if self.erased == 0xFF { cell & byte } else { cell | byte }
    }

    fn tear(&mut self, range: core::ops::Range<usize>, bytes: &[u8], seed: u64) {
        let mut rng = SplitMix(seed);
        let changing: Vec<usize> = (0..bytes.len()).filter(|i| bytes[*i] != self.erased).collect();
        let Some(&stop) = changing.get(rng.below(changing.len())) else {
            return;
        };
        for (i, byte) in bytes.iter().enumerate().take(stop) {
            let cell = range.start + i;
            self.data[cell] = self.programmed(self.data[cell], *byte);
        }
        // Only some of the bits that should move do: never none of them... nor all.
        let moving = bytes[stop] ^ self.erased;
        let mut partial = moving & rng.byte();
        if partial == moving {
            partial &= partial - 1;
        }
        let cell = range.start + stop;
        self.data[cell] ^= partial;
    }

    fn damage(&mut self, range: core::ops::Range<usize>, damage: EraseDamage, seed: u64) {
        let mut rng = SplitMix(seed);
        match damage {
            EraseDamage::Partial => {
                let erased = rng.below(range.len());
                let erased_value = self.erased;
                self.data[range.start..range.start + erased].fill(erased_value);
            }
            EraseDamage::Random => self.data[range].iter_mut().for_each(|cell| *cell = rng.byte()),
        }
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
        if to < from || !self.is_sector_boundary(from) || !self.is_sector_boundary(to) {
            return Err(if to as usize > self.data.len() {
                SimError::OutOfBounds
            } else {
                SimError::NotAligned
            });
        }
        let range = self.range(from, (to - from) as usize)?;
        match self.tick(Operation::Erase { from, to })? {
            None => {}
            Some(Fault::InterruptedErase { damage, seed }) => {
                self.damage(range, damage, seed);
                return Err(SimError::PowerCut);
            }
            Some(_) => return Err(SimError::PowerCut),
        }
        let erased = self.erased;
        self.data[range].fill(erased);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        if !(offset as usize).is_multiple_of(WRITE) || !bytes.len().is_multiple_of(WRITE) {
            return Err(SimError::NotAligned);
        }
        let range = self.range(offset, bytes.len())?;
        if let Some(i) = self.data[range.clone()].iter().position(|b| *b != self.erased) {
            return Err(SimError::NotErased {
                offset: offset + u32::try_from(i).unwrap_or(u32::MAX),
            });
        }
        let len = u32::try_from(bytes.len()).map_err(|_| SimError::OutOfBounds)?;
        match self.tick(Operation::Write { offset, len })? {
            None => {}
            Some(Fault::TornWrite { seed }) => {
                self.tear(range, bytes, seed);
                return Err(SimError::PowerCut);
            }
            Some(_) => return Err(SimError::PowerCut),
        }
        for (i, byte) in range.zip(bytes) {
            self.data[i] = self.programmed(self.data[i], *byte);
        }
        Ok(())
    }
}

/// A small, seedable pseudo-random generator (SplitMix64), so every fault is reproducible.
#[derive(Clone, Debug)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64().to_le_bytes()[0]
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            return 0;
        }
        let bound64 = u64::try_from(bound).unwrap_or(u64::MAX);
        usize::try_from(self.next_u64() % bound64).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type Result = core::result::Result<(), SimError>;

    /// Uniform sectors erased to `0xFF`, whatever the build's erased value.
    fn blank<const W: usize, const E: usize>(capacity: u32) -> SimFlash<W, E> {
        let sector = u32::try_from(E).expect("small sector");
        SimFlash::with_sectors(&[(capacity / sector, sector)], 0xFF)
    }

    #[test]
    fn enforces_nor_rules() -> Result {
        let mut flash = blank::<4, 16>(64);
        assert_eq!(flash.write(2, &[0; 4]), Err(SimError::NotAligned));
        assert_eq!(flash.write(0, &[0; 3]), Err(SimError::NotAligned));
        assert_eq!(flash.erase(0, 8), Err(SimError::NotAligned));
        assert_eq!(flash.write(64, &[0; 4]), Err(SimError::OutOfBounds));
        assert_eq!(flash.erase(0, 80), Err(SimError::OutOfBounds));
        flash.write(0, &[1, 2, 3, 4])?;
        assert_eq!(flash.write(0, &[0; 4]), Err(SimError::NotErased { offset: 0 }));
        flash.erase(0, 16)?;
        assert!(flash.bytes()[..16].iter().all(|b| *b == 0xFF));
        Ok(())
    }

    #[test]
    fn mixed_sectors_erase_only_whole_sectors() -> Result {
        // 4 x 16 then 1 x 64 then 2 x 128: STM32F4's shape, scaled down.
        let mut flash = SimFlash::<1, 16>::with_sectors(&[(4, 16), (1, 64), (2, 128)], 0xFF);
        assert_eq!(flash.capacity(), 384);
        flash.write(70, &[0])?;
        assert_eq!(flash.erase(64, 80), Err(SimError::NotAligned));
        assert_eq!(flash.erase(128, 192), Err(SimError::NotAligned));
        flash.erase(64, 128)?;
        flash.erase(0, 384)?;
        Ok(())
    }

    #[test]
    fn erased_zero_programs_bits_to_one() -> Result {
        let mut flash = SimFlash::<2, 16>::with_sectors(&[(2, 16)], 0x00);
        assert!(flash.bytes().iter().all(|b| *b == 0));
        flash.write(0, &[0x5A, 0x00])?;
        assert_eq!(flash.bytes()[..2], [0x5A, 0x00]);
        assert_eq!(flash.write(0, &[0xFF, 0xFF]), Err(SimError::NotErased { offset: 0 }));
        flash.write(2, &[0x00, 0x01])?;
        flash.erase(0, 16)?;
        assert!(flash.bytes().iter().all(|b| *b == 0));
        Ok(())
    }

    #[test]
    fn power_cut_stops_the_nth_operation_and_all_after() -> Result {
        let mut flash = blank::<4, 16>(64);
        flash.cut_power_after(2);
        flash.write(0, &[0; 4])?;
        assert_eq!(flash.write(4, &[0; 4]), Err(SimError::PowerCut));
        assert_eq!(flash.erase(0, 16), Err(SimError::PowerCut));
        assert_eq!(flash.bytes()[4], 0xFF);
        flash.restore_power();
        flash.write(4, &[0; 4])?;
        assert_eq!(flash.operations(), 3);
        Ok(())
    }

    #[test]
    fn a_torn_write_programs_part_of_the_data() {
        for seed in 0..64 {
            let mut flash = blank::<8, 16>(32);
            flash.schedule(1, Fault::TornWrite { seed });
            let data = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77];
            assert_eq!(flash.write(8, &data), Err(SimError::PowerCut));
            let cells = &flash.bytes()[8..16];
            assert_ne!(cells, data, "seed {seed}: a torn write must not complete");
            // Every cell is on its way from erased to its target: only bits that are 0 in
            // the target may have been cleared.
            assert!(cells.iter().zip(data).all(|(c, d)| c & d == d));
        }
    }

    #[test]
    fn an_interrupted_erase_leaves_old_or_random_content() {
        let mut flash = blank::<1, 16>(32);
        flash.program(0, &[0u8; 32]);
        let damage = EraseDamage::Partial;
        flash.schedule(1, Fault::InterruptedErase { damage, seed: 3 });
        assert_eq!(flash.erase(0, 16), Err(SimError::PowerCut));
        let erased = flash.bytes()[..16].iter().take_while(|b| **b == 0xFF).count();
        assert!(erased < 16 && flash.bytes()[erased..32].iter().all(|b| *b == 0));

        let mut flash = blank::<1, 16>(32);
        let damage = EraseDamage::Random;
        flash.schedule(1, Fault::InterruptedErase { damage, seed: 3 });
        assert_eq!(flash.erase(16, 32), Err(SimError::PowerCut));
        assert!(flash.bytes()[16..].iter().any(|b| *b != 0xFF));
    }

    #[test]
    fn records_operations() -> Result {
        let mut flash = blank::<4, 16>(64);
        flash.record_operations();
        flash.erase(16, 48)?;
        flash.write(20, &[1; 8])?;
        assert_eq!(
            flash.operations_log(),
            [Operation::Erase { from: 16, to: 48 }, Operation::Write { offset: 20, len: 8 }]
        );
        Ok(())
    }
}
