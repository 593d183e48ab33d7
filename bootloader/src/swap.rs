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
        // Three times a u16 fits a u32: cannot saturate.
        Operation::Swap { kind, sectors } => {
            (u32::from(sectors).saturating_mul(3), kind != SwapType::Test)
        }
        Operation::Overwrite { sectors } => (u32::from(sectors), true),
    };
    match step.checked_sub(data_steps) {
        None => copy_step(flash, layout, operation, step),
        Some(0) => finish_primary_trailer(flash, layout, operation, image_ok),
        Some(1) => trailer::erase(flash, layout, layout.secondary),
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
    let (size, scratch) = (layout.sector_size, layout.scratch.offset);
    if let Operation::Overwrite { .. } = operation {
        let (primary, secondary) = sector_pair(layout, step)?;
        return flash::erase_and_copy(flash, secondary, primary, size);
    }
    let (primary, secondary) = sector_pair(layout, step / 3)?;
    match step % 3 {
        0 => flash::erase_and_copy(flash, secondary, scratch, size),
        1 => flash::erase_and_copy(flash, primary, secondary, size),
        _ => flash::erase_and_copy(flash, scratch, primary, size),
    }
}

/// Offsets of sector `index` in the primary and in the secondary slot.
fn sector_pair(layout: &Layout, index: u32) -> Result<(u32, u32), FlashError> {
    let size = layout.sector_size;
    Ok((
        flash::at(layout.primary.offset, index, size)?,
        flash::at(layout.secondary.offset, index, size)?,
    ))
}

fn finish_primary_trailer<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    operation: Operation,
    image_ok: bool,
) -> Result<(), FlashError> {
    let slot = layout.primary;
    trailer::erase(flash, layout, slot)?;
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
