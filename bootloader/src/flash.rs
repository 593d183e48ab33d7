//! Small flash helpers shared by the trailer, journal, counter and swap code.
//!
//! Everything the bootloader writes is written in [`UNIT`]-byte units (MCUboot's
//! `BOOT_MAX_ALIGN` of 8), so the flash write size must divide 8.

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};

/// Size of one bookkeeping write: a trailer field, a journal entry or a counter record.
pub(crate) const UNIT: usize = 8;
/// [`UNIT`] as a flash offset.
pub(crate) const UNIT_LEN: u32 = 8;
/// Value of an erased byte.
pub(crate) const ERASED: u8 = 0xFF;
/// Chunk size used when copying between regions.
const COPY_CHUNK: usize = 256;
/// [`COPY_CHUNK`] as a flash length.
const COPY_CHUNK_LEN: u32 = 256;

/// A flash operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashError(pub NorFlashErrorKind);

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

/// Fails to compile for a flash whose write size does not divide [`UNIT`].
pub(crate) const fn assert_unit_writable<F: NorFlash>() {
    assert!(
        F::WRITE_SIZE <= UNIT && UNIT.is_multiple_of(F::WRITE_SIZE),
        "flash write size must divide 8"
    );
}

/// Reads one unit.
pub(crate) fn read_unit<F: NorFlash>(flash: &mut F, offset: u32) -> Result<[u8; UNIT], FlashError> {
    let mut unit = [0u8; UNIT];
    flash.read(offset, &mut unit)?;
    Ok(unit)
}

/// Writes `bytes` (at most one unit) padded with the erased value.
pub(crate) fn write_unit<F: NorFlash>(
    flash: &mut F,
    offset: u32,
    bytes: &[u8],
) -> Result<(), FlashError> {
    const { assert_unit_writable::<F>() };
    let mut unit = [ERASED; UNIT];
    unit.iter_mut()
        .zip(bytes)
        .for_each(|(dst, src)| *dst = *src);
    flash.write(offset, &unit)?;
    Ok(())
}

/// Erases `size` bytes at `offset` (both sector-aligned).
pub(crate) fn erase<F: NorFlash>(flash: &mut F, offset: u32, size: u32) -> Result<(), FlashError> {
    flash.erase(offset, offset + size)?;
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
    let mut done = 0;
    while done < size {
        let len = COPY_CHUNK_LEN.min(size - done);
        let buf = &mut chunk[..len as usize];
        flash.read(src + done, buf)?;
        if buf.iter().any(|b| *b != ERASED) {
            flash.write(dst + done, buf)?;
        }
        done += len;
    }
    Ok(())
}

/// Whether every byte of `unit` is erased.
pub(crate) fn is_erased(unit: &[u8]) -> bool {
    unit.iter().all(|b| *b == ERASED)
}
