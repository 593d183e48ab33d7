//! Small flash helpers shared by the trailer, journal, counter and swap code.
//!
//! Everything the bootloader writes is written in units of [`unit`] bytes: MCUboot's
//! `BOOT_MAX_ALIGN`, the larger of 8 and the flash write size. The write size must be a power
//! of two up to 32 bytes (STM32H7 programs 32-byte flash words, STM32U5 16 bytes).

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};

/// Bytes of content in a bookkeeping unit (a journal entry or a counter record); the rest of
/// a larger unit is padding.
pub(crate) const CONTENT: usize = verifier_core::format::journal::CONTENT;
/// Largest unit: MCUboot's largest `BOOT_MAX_ALIGN`.
pub(crate) const MAX_UNIT: usize = 32;
/// Value of an erased byte.
pub(crate) const ERASED: u8 = if cfg!(feature = "flash-erase-zero") { 0x00 } else { 0xFF };
/// Chunk size used when copying between regions.
const COPY_CHUNK: usize = 256;
/// [`COPY_CHUNK`] as a flash length.
const COPY_CHUNK_LEN: u32 = 256;

/// A flash operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashError(pub NorFlashErrorKind);

/// An offset computed past the 32-bit address space (or a unit past its buffer): it cannot be
/// on the flash either, so it is refused as out of bounds, never wrapped.
pub(crate) const OUT_OF_BOUNDS: FlashError = FlashError(NorFlashErrorKind::OutOfBounds);

/// `base + offset`, or [`OUT_OF_BOUNDS`].
pub(crate) fn add(base: u32, offset: u32) -> Result<u32, FlashError> {
    base.checked_add(offset).ok_or(OUT_OF_BOUNDS)
}

/// The start of element `index` of an array of `stride`-byte elements at `base`, or
/// [`OUT_OF_BOUNDS`].
pub(crate) fn at(base: u32, index: u32, stride: u32) -> Result<u32, FlashError> {
    add(base, index.checked_mul(stride).ok_or(OUT_OF_BOUNDS)?)
}

#[cfg(feature = "defmt")]
impl defmt::Format for FlashError {
    fn format(&self, f: defmt::Formatter<'_>) {
        let kind = match self.0 {
            NorFlashErrorKind::NotAligned => "not aligned",
            NorFlashErrorKind::OutOfBounds => "out of bounds",
            _ => "device error",
        };
        defmt::write!(f, "flash error: {=str}", kind);
    }
}

impl<E: NorFlashError> From<E> for FlashError {
    fn from(error: E) -> Self {
        Self(error.kind())
    }
}

/// Size of one bookkeeping write (a trailer field, a journal entry or a counter record) on
/// flash `F`: the larger of 8 and its write size.
pub(crate) const fn unit<F: NorFlash>() -> usize {
    if F::WRITE_SIZE > CONTENT { F::WRITE_SIZE } else { CONTENT }
}

/// [`unit`] as a flash offset.
#[allow(clippy::cast_possible_truncation)] // at most MAX_UNIT, checked at compile time
pub(crate) const fn unit_len<F: NorFlash>() -> u32 {
    unit::<F>() as u32
}

/// Whole units in `len` bytes on flash `F`.
pub(crate) const fn units_in<F: NorFlash>(len: u32) -> u32 {
    // A unit is at least CONTENT bytes: the division never fails.
    match len.checked_div(unit_len::<F>()) {
        Some(units) => units,
        None => 0,
    }
}

/// Fails to compile for a flash whose write size is not a power of two up to 32.
pub(crate) const fn assert_unit_writable<F: NorFlash>() {
    assert!(
        F::WRITE_SIZE <= MAX_UNIT && F::WRITE_SIZE.is_power_of_two(),
        "flash write size must be 1, 2, 4, 8, 16 or 32 bytes"
    );
}

/// The first [`unit`] bytes of `buffer`: all of a unit on flash `F`. The write size check
/// makes the unit fit, so the error is never returned.
fn unit_of<F: NorFlash>(buffer: &mut [u8; MAX_UNIT]) -> Result<&mut [u8], FlashError> {
    const { assert_unit_writable::<F>() };
    buffer.get_mut(..unit::<F>()).ok_or(OUT_OF_BOUNDS)
}

/// Reads one unit; bytes beyond the unit read as erased.
pub(crate) fn read_unit<F: NorFlash>(
    flash: &mut F,
    offset: u32,
) -> Result<[u8; MAX_UNIT], FlashError> {
    let mut buffer = [ERASED; MAX_UNIT];
    flash.read(offset, unit_of::<F>(&mut buffer)?)?;
    Ok(buffer)
}

/// The content bytes of a unit read with [`read_unit`].
pub(crate) fn content(unit: &[u8; MAX_UNIT]) -> [u8; CONTENT] {
    let [a, b, c, d, e, f, g, h, ..] = *unit;
    [a, b, c, d, e, f, g, h]
}

/// Writes `bytes` (at most one unit) padded with the erased value.
pub(crate) fn write_unit<F: NorFlash>(
    flash: &mut F,
    offset: u32,
    bytes: &[u8],
) -> Result<(), FlashError> {
    let mut buffer = [ERASED; MAX_UNIT];
    buffer.iter_mut().zip(bytes).for_each(|(dst, src)| *dst = *src);
    flash.write(offset, unit_of::<F>(&mut buffer)?)?;
    Ok(())
}

/// Erases `size` bytes at `offset` (both sector-aligned).
pub(crate) fn erase<F: NorFlash>(flash: &mut F, offset: u32, size: u32) -> Result<(), FlashError> {
    flash.erase(offset, add(offset, size)?)?;
    Ok(())
}

/// Erases the sector at `dst` and copies `size` bytes from `src` into it.
pub(crate) fn erase_and_copy<F: NorFlash>(
    flash: &mut F,
    src: u32,
    dst: u32,
    size: u32,
) -> Result<(), FlashError> {
    erase(flash, dst, size)?;
    let mut chunk = [0u8; COPY_CHUNK];
    for done in (0..size).step_by(COPY_CHUNK) {
        // `done < size`: the subtraction cannot saturate.
        let len = COPY_CHUNK_LEN.min(size.saturating_sub(done));
        let buf = chunk.get_mut(..len as usize).ok_or(OUT_OF_BOUNDS)?;
        flash.read(add(src, done)?, buf)?;
        if buf.iter().any(|b| *b != ERASED) {
            flash.write(add(dst, done)?, buf)?;
        }
    }
    Ok(())
}

/// Whether every byte of `unit` is erased.
pub(crate) fn is_erased(unit: &[u8]) -> bool {
    unit.iter().all(|b| *b == ERASED)
}
