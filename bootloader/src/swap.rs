//! Carrying out a journaled [`Operation`] one idempotent step at a time.
//!
//! A swap of `n` data sectors takes `3n + 3` steps. For sector `i`:
//!
//! | step | action |
//! |---|---|
//! | `3i` | erase scratch, copy secondary sector `i` into it |
//! | `3i + 1` | erase secondary sector `i`, copy primary sector `i` into it |
//! | `3i + 2` | erase primary sector `i`, copy scratch into it |
//!
//! then: rewrite the primary trailer (swap_info, copy_done, image_ok unless this is a test,
//! magic last), erase the secondary trailer sector, and write the completion marker. An
//! overwrite takes `n + 3` steps: one "erase primary sector `i`, copy secondary sector `i`"
//! per sector, then the same three final steps with image_ok set.

use embedded_storage::nor_flash::NorFlash;

use crate::flash::{self, FlashError};
use crate::journal::{Journal, Operation};
use crate::layout::Layout;
use crate::trailer::{self, SwapType};

/// Runs `operation` from `first_step` to completion, journaling each step.
pub(crate) fn run<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    journal: &Journal,
    operation: Operation,
    first_step: u32,
) -> Result<(), FlashError> {
    for step in first_step..operation.steps() {
        perform(flash, layout, operation, step)?;
        journal.complete(flash, step)?;
    }
    Ok(())
}

fn perform<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    operation: Operation,
    step: u32,
) -> Result<(), FlashError> {
    let (data_steps, image_ok) = match operation {
        Operation::Swap { kind, sectors } => (3 * u32::from(sectors), kind != SwapType::Test),
        Operation::Overwrite { sectors } => (u32::from(sectors), true),
    };
    match step.checked_sub(data_steps) {
        None => copy_step(flash, layout, operation, step),
        Some(0) => finish_primary_trailer(flash, layout, operation, image_ok),
        Some(1) => {
            let sector = layout.trailer_sector(layout.secondary);
            flash::erase(flash, sector, layout.sector_size)
        }
        // The completion marker: the journal entry is the whole step.
        Some(_) => Ok(()),
    }
}

fn copy_step<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    operation: Operation,
    step: u32,
) -> Result<(), FlashError> {
    let size = layout.sector_size;
    let (primary, secondary, scratch) =
        (layout.primary.offset, layout.secondary.offset, layout.scratch.offset);
    if let Operation::Overwrite { .. } = operation {
        return flash::erase_and_copy(flash, secondary + step * size, primary + step * size, size);
    }
    let at = (step / 3) * size;
    match step % 3 {
        0 => flash::erase_and_copy(flash, secondary + at, scratch, size),
        1 => flash::erase_and_copy(flash, primary + at, secondary + at, size),
        _ => flash::erase_and_copy(flash, scratch, primary + at, size),
    }
}

fn finish_primary_trailer<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    operation: Operation,
    image_ok: bool,
) -> Result<(), FlashError> {
    let slot = layout.primary;
    flash::erase(flash, layout.trailer_sector(slot), layout.sector_size)?;
    let kind = match operation {
        Operation::Swap { kind, .. } => kind,
        Operation::Overwrite { .. } => SwapType::Permanent,
    };
    trailer::write_swap_info(flash, slot, kind)?;
    trailer::write_copy_done(flash, slot)?;
    if image_ok {
        trailer::write_image_ok(flash, slot)?;
    }
    trailer::write_magic(flash, slot)
}
