//! The swap journal: power-fail-safe progress of a swap or overwrite.
//!
//! The journal is the first state sector, an array of bookkeeping units (8 bytes, or the
//! flash write size if larger), laid out as `verifier_core::format::journal` defines: a
//! header naming the operation, one unit per completed step, and a boot marker.
//!
//! Every step of an [`Operation`] is "erase a destination sector, copy a source into it",
//! and no step overwrites the source of the step after it. A step whose unit is still
//! erased is therefore simply redone after a power cut, whatever state the cut left its
//! destination in. The sector is erased and the header written before the first step, so at
//! any power cut the journal either describes the operation or nothing has changed yet.
//!
//! A finished journal stays in place until the next operation begins. Its boot marker is the
//! last flash write of the boot that finished it (after the security counter is raised), so
//! a cut anywhere before the jump repeats that boot with the same outcome: a test image still
//! gets its test boot. Erasing the journal at that point instead would be unsafe, since an
//! erase cut part-way can leave the sector blank (the operation forgotten) or unreadable.

use embedded_storage::nor_flash::NorFlash;

use crate::flash::{self, CONTENT, FlashError};
use crate::layout::Layout;
use crate::trailer::SwapType;

use verifier_core::format::journal::{self as format, OVERWRITE as OVERWRITE_CODE};

/// Every bit programmed, whatever the erased value.
const STEP_DONE: u8 = !flash::ERASED;

/// A multi-step flash operation recorded in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Operation {
    /// Exchange the first `sectors` sectors of the slots through scratch, then write trailers.
    Swap {
        /// Why: test, permanent or revert.
        kind: SwapType,
        /// Data sectors exchanged.
        sectors: u16,
    },
    /// Copy the first `sectors` sectors of the secondary over the primary.
    Overwrite {
        /// Data sectors copied.
        sectors: u16,
    },
}

impl Operation {
    /// Steps including the completion marker.
    pub(crate) fn steps(&self) -> u32 {
        match *self {
            Operation::Swap { sectors, .. } => steps_for(u32::from(sectors)),
            Operation::Overwrite { sectors } => format::overwrite_steps(u32::from(sectors)),
        }
    }

    fn code(&self) -> (u8, u16) {
        match *self {
            Operation::Swap { kind, sectors } => (kind as u8, sectors),
            Operation::Overwrite { sectors } => (OVERWRITE_CODE, sectors),
        }
    }

    fn decode(code: u8, sectors: u16) -> Option<Self> {
        let kind = match code {
            OVERWRITE_CODE => return Some(Operation::Overwrite { sectors }),
            code if code == SwapType::Test as u8 => SwapType::Test,
            code if code == SwapType::Permanent as u8 => SwapType::Permanent,
            code if code == SwapType::Revert as u8 => SwapType::Revert,
            _ => return None,
        };
        Some(Operation::Swap { kind, sectors })
    }

    fn header(&self) -> [u8; CONTENT] {
        let (code, sectors) = self.code();
        format::encode_header(code, sectors)
    }

    fn parse(unit: [u8; CONTENT]) -> Option<Self> {
        format::decode_header(unit).and_then(|(code, sectors)| Self::decode(code, sectors))
    }
}

/// Steps of a swap of `sectors` data sectors, including the completion marker.
pub(crate) const fn steps_for(sectors: u32) -> u32 {
    format::swap_steps(sectors)
}

/// What the journal says at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum JournalState {
    /// No operation recorded.
    Empty,
    /// An operation was interrupted; `next_step` is the first step not known to be done.
    Interrupted {
        /// The operation.
        operation: Operation,
        /// First step to (re)do.
        next_step: u32,
    },
    /// The operation finished but the boot it was done for has not run to the end: power
    /// was cut before the jump.
    Finished {
        /// The operation.
        operation: Operation,
    },
    /// The operation finished and its boot ran; the journal is idle.
    Booted {
        /// The operation.
        operation: Operation,
    },
    /// The header is neither erased nor valid: no step was started under it.
    Corrupt,
}

/// The journal sector.
pub(crate) struct Journal {
    offset: u32,
    sector_size: u32,
}

impl Journal {
    pub(crate) fn new(offset: u32, sector_size: u32) -> Self {
        Self { offset, sector_size }
    }

    /// Units available in the sector on flash `F`.
    pub(crate) fn units<F: NorFlash>(sector_size: u32) -> u32 {
        flash::units_in::<F>(sector_size)
    }

    /// Where the unit recording `step` lies: right after the header. Step `steps()` is the
    /// boot marker.
    fn step_offset<F: NorFlash>(&self, step: u32) -> Result<u32, FlashError> {
        let unit = step.checked_add(1).ok_or(flash::OUT_OF_BOUNDS)?;
        flash::at(self.offset, unit, flash::unit_len::<F>())
    }

    pub(crate) fn read<F: NorFlash>(&self, flash: &mut F) -> Result<JournalState, FlashError> {
        let header = flash::read_unit(flash, self.offset)?;
        if flash::is_erased(&header) {
            return Ok(JournalState::Empty);
        }
        let Some(operation) = Operation::parse(flash::content(&header)) else {
            return Ok(JournalState::Corrupt);
        };
        let steps = operation.steps();
        let units = Self::units::<F>(self.sector_size);
        if steps.checked_add(1).is_none_or(|used| used >= units) {
            return Ok(JournalState::Corrupt);
        }
        for step in 0..steps {
            // A torn marker still means its step had completed: any non-erased unit counts.
            if flash::is_erased(&flash::read_unit(flash, self.step_offset::<F>(step)?)?) {
                return Ok(JournalState::Interrupted { operation, next_step: step });
            }
        }
        let marker = flash::read_unit(flash, self.step_offset::<F>(steps)?)?;
        if flash::is_erased(&marker) {
            Ok(JournalState::Finished { operation })
        } else {
            Ok(JournalState::Booted { operation })
        }
    }

    /// Erases whatever an earlier operation (or a cut erase) left, then records `operation`.
    pub(crate) fn begin<F: NorFlash>(
        &self,
        flash: &mut F,
        operation: Operation,
    ) -> Result<(), FlashError> {
        flash::erase(flash, self.offset, self.sector_size)?;
        flash::write_unit(flash, self.offset, &operation.header())
    }

    pub(crate) fn complete<F: NorFlash>(&self, flash: &mut F, step: u32) -> Result<(), FlashError> {
        flash::write_unit(flash, self.step_offset::<F>(step)?, &[STEP_DONE; CONTENT])
    }

    /// Records that the boot `operation` was done for has run.
    pub(crate) fn mark_booted<F: NorFlash>(
        &self,
        flash: &mut F,
        operation: Operation,
    ) -> Result<(), FlashError> {
        let unit = self.step_offset::<F>(operation.steps())?;
        flash::write_unit(flash, unit, &[STEP_DONE; CONTENT])
    }
}

/// What the journal of a bootloader with `layout` says (for tests and diagnostics).
///
/// # Errors
/// A flash read error.
pub fn read_state<F: NorFlash>(flash: &mut F, layout: &Layout) -> Result<JournalState, FlashError> {
    Journal::new(layout.state.offset, layout.sector_size).read(flash)
}
