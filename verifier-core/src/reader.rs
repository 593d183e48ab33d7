//! Reading an image in chunks, so a bootloader can stream it from flash without holding it in RAM.

use crate::error::ReadError;

/// Random-access, read-only view of one image slot.
///
/// The verifier reads the header, walks the TLVs and hashes the image through this trait,
/// a chunk at a time. Offsets are relative to the start of the image.
pub trait ImageReader {
    /// Number of readable bytes (the slot size, or the file size on a host).
    fn size(&self) -> u32;

    /// Fills `buf` with the bytes at `offset..offset + buf.len()`.
    ///
    /// # Errors
    /// [`ReadError::OutOfBounds`] if the range ends past [`ImageReader::size`],
    /// [`ReadError::Storage`] if the storage fails.
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), ReadError>;
}

/// An image held in memory (a file on the host, or memory-mapped flash).
#[derive(Debug, Clone, Copy)]
pub struct SliceReader<'a> {
    bytes: &'a [u8],
}

impl<'a> SliceReader<'a> {
    /// Reads from `bytes`; only the first 4 GiB are addressable.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }
}

impl ImageReader for SliceReader<'_> {
    fn size(&self) -> u32 {
        u32::try_from(self.bytes.len()).unwrap_or(u32::MAX)
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), ReadError> {
        let src = range(offset, buf.len())
            .and_then(|(start, end)| self.bytes.get(start..end))
            .ok_or(out_of_bounds(offset, buf.len()))?;
        for (dst, byte) in buf.iter_mut().zip(src) {
            *dst = *byte;
        }
        Ok(())
    }
}

/// An image in a region of an `embedded-storage` flash.
///
/// The flash's `READ_SIZE` must divide the verifier's reads: it reads headers and TLV entries
/// at arbitrary offsets, so use a flash (or wrapper) with `READ_SIZE == 1`: any other fails to
/// compile.
#[cfg(feature = "embedded-storage")]
#[derive(Debug)]
pub struct FlashReader<'f, F> {
    flash: &'f mut F,
    base: u32,
    size: u32,
}

#[cfg(feature = "embedded-storage")]
impl<'f, F: embedded_storage::nor_flash::ReadNorFlash> FlashReader<'f, F> {
    /// Reads the `size` bytes of `flash` starting at `base`.
    pub fn new(flash: &'f mut F, base: u32, size: u32) -> Self {
        const {
            assert!(
                F::READ_SIZE == 1,
                "FlashReader reads at any offset: wrap this flash so that READ_SIZE is 1"
            );
        }
        Self { flash, base, size }
    }
}

#[cfg(feature = "embedded-storage")]
impl<F: embedded_storage::nor_flash::ReadNorFlash> ImageReader for FlashReader<'_, F> {
    fn size(&self) -> u32 {
        self.size
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), ReadError> {
        let end = u32::try_from(buf.len()).ok().and_then(|len| offset.checked_add(len));
        let fits = end.is_some_and(|end| end <= self.size);
        let absolute = self.base.checked_add(offset).filter(|_| fits);
        let absolute = absolute.ok_or(out_of_bounds(offset, buf.len()))?;
        self.flash.read(absolute, buf).map_err(|_| ReadError::Storage)
    }
}

fn range(offset: u32, len: usize) -> Option<(usize, usize)> {
    let start = usize::try_from(offset).ok()?;
    Some((start, start.checked_add(len)?))
}

fn out_of_bounds(offset: u32, len: usize) -> ReadError {
    ReadError::OutOfBounds { offset, len: u32::try_from(len).unwrap_or(u32::MAX) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_reader_reads_in_bounds_only() {
        let data = [1u8, 2, 3, 4, 5];
        let mut reader = SliceReader::new(&data);
        let mut buf = [0u8; 2];
        reader.read(3, &mut buf).unwrap();
        assert_eq!(buf, [4, 5]);
        assert_eq!(reader.read(4, &mut buf), Err(ReadError::OutOfBounds { offset: 4, len: 2 }));
        assert_eq!(
            reader.read(u32::MAX, &mut buf),
            Err(ReadError::OutOfBounds { offset: u32::MAX, len: 2 })
        );
    }

    #[cfg(feature = "embedded-storage")]
    #[test]
    fn flash_reader_reads_inside_its_region_only() {
        use embedded_storage::nor_flash::{ErrorType, NorFlashErrorKind, ReadNorFlash};

        struct Rom([u8; 16]);
        impl ErrorType for Rom {
            type Error = NorFlashErrorKind;
        }
        impl ReadNorFlash for Rom {
            const READ_SIZE: usize = 1;
            fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
                let start = offset as usize;
                let src = self.0.get(start..start + bytes.len());
                bytes.copy_from_slice(src.ok_or(NorFlashErrorKind::OutOfBounds)?);
                Ok(())
            }
            fn capacity(&self) -> usize {
                self.0.len()
            }
        }

        let mut rom = Rom(core::array::from_fn(|i| i as u8));
        let mut reader = FlashReader::new(&mut rom, 4, 8);
        let mut buf = [0u8; 3];
        reader.read(5, &mut buf).unwrap();
        assert_eq!(buf, [9, 10, 11]);
        assert_eq!(reader.read(6, &mut buf), Err(ReadError::OutOfBounds { offset: 6, len: 3 }));
        let mut reader = FlashReader::new(&mut rom, 14, 8);
        assert_eq!(reader.read(0, &mut buf), Err(ReadError::Storage));
    }
}
