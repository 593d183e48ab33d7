//! The two TLV areas after the payload, located and walked without allocation.
//!
//! Every offset is computed with checked arithmetic and every entry is checked against the end
//! of its own area before its value is read.

use crate::error::{TlvError, VerifyError};
use crate::format::{
    PROTECTED_TLV_MAGIC, TLV_ENTRY_HEADER_SIZE, TLV_INFO_SIZE, UNPROTECTED_TLV_MAGIC,
};
use crate::header::ImageHeader;
use crate::reader::ImageReader;

#[allow(clippy::cast_possible_truncation, reason = "4 fits in u32")]
const INFO_SIZE: u32 = TLV_INFO_SIZE as u32;
#[allow(clippy::cast_possible_truncation, reason = "4 fits in u32")]
const ENTRY_HEADER_SIZE: u32 = TLV_ENTRY_HEADER_SIZE as u32;

/// Which TLV area an entry is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlvArea {
    /// Inside the hashed, signed region.
    Protected,
    /// After the hashed region: not covered by the signature.
    Unprotected,
}

/// One TLV entry; its value is at `value_offset..value_offset + len` in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlvEntry {
    /// The area the entry is in.
    pub area: TlvArea,
    /// `it_type`.
    pub tag: u16,
    /// Offset of the value from the start of the image.
    pub value_offset: u32,
    /// `it_len`.
    pub len: u16,
}

/// Where the TLV areas of an image are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlvLayout {
    /// Start of the protected area (= end of the payload); empty when there is none.
    pub protected_start: u32,
    /// Start of the unprotected area (= end of the hashed region).
    pub unprotected_start: u32,
    /// End of the unprotected area: the end of the image proper.
    pub end: u32,
}

impl TlvLayout {
    /// Reads both info headers and checks their magics and sizes against the header and the
    /// readable size.
    ///
    /// # Errors
    /// [`TlvError`]s for wrong magics or sizes; [`crate::ReadError`] if an area lies past the end.
    pub fn locate<R: ImageReader>(
        reader: &mut R,
        header: &ImageHeader,
    ) -> Result<Self, VerifyError> {
        let overflow = VerifyError::Header(crate::error::HeaderError::SizeOverflow);
        let protected_start = header.payload_end().ok_or(overflow)?;
        let unprotected_start = header.hashed_len().ok_or(overflow)?;
        if header.protect_tlv_size != 0 {
            let total = read_info(reader, protected_start, PROTECTED_TLV_MAGIC)?;
            if total != header.protect_tlv_size {
                return Err(TlvError::ProtectedSizeMismatch {
                    header: header.protect_tlv_size,
                    area: total,
                }
                .into());
            }
        }
        let total = read_info(reader, unprotected_start, UNPROTECTED_TLV_MAGIC)?;
        let end = unprotected_start.checked_add(u32::from(total)).ok_or(overflow)?;
        if end > reader.size() {
            let len = u32::from(total);
            return Err(crate::ReadError::OutOfBounds { offset: unprotected_start, len }.into());
        }
        Ok(Self { protected_start, unprotected_start, end })
    }

    /// Iterates over the entries of both areas, protected first.
    pub fn entries<'r, R: ImageReader>(&self, reader: &'r mut R) -> TlvIter<'r, R> {
        let has_protected = self.unprotected_start > self.protected_start;
        let (area, position, area_end) = if has_protected {
            (TlvArea::Protected, self.protected_start, self.unprotected_start)
        } else {
            (TlvArea::Unprotected, self.unprotected_start, self.end)
        };
        TlvIter {
            reader,
            layout: *self,
            area,
            position: position.saturating_add(INFO_SIZE),
            area_end,
            done: false,
        }
    }
}

/// Reads an area's info header at `offset`, returning its total size.
fn read_info<R: ImageReader>(reader: &mut R, offset: u32, magic: u16) -> Result<u16, VerifyError> {
    let mut info = [0u8; TLV_INFO_SIZE];
    reader.read(offset, &mut info)?;
    let [m0, m1, t0, t1] = info;
    let found = u16::from_le_bytes([m0, m1]);
    if found != magic {
        return Err(TlvError::BadAreaMagic { expected: magic, found }.into());
    }
    let total = u16::from_le_bytes([t0, t1]);
    if u32::from(total) < INFO_SIZE {
        return Err(TlvError::AreaTooSmall { total }.into());
    }
    Ok(total)
}

/// Iterator over TLV entries; stops after the first error.
pub struct TlvIter<'r, R> {
    reader: &'r mut R,
    layout: TlvLayout,
    area: TlvArea,
    position: u32,
    area_end: u32,
    done: bool,
}

impl<R: ImageReader> TlvIter<'_, R> {
    /// Reads an entry's value into the start of `buf`, returning the filled part.
    ///
    /// # Errors
    /// [`TlvError::BadLength`] if the value is longer than `buf`; read errors.
    pub fn read_value<'b>(
        &mut self,
        entry: &TlvEntry,
        buf: &'b mut [u8],
    ) -> Result<&'b [u8], VerifyError> {
        let bad_length = TlvError::BadLength { tag: entry.tag, len: entry.len };
        let value = buf.get_mut(..usize::from(entry.len)).ok_or(bad_length)?;
        self.reader.read(entry.value_offset, value)?;
        Ok(value)
    }

    fn next_entry(&mut self) -> Result<Option<TlvEntry>, VerifyError> {
        while self.position >= self.area_end {
            if self.area == TlvArea::Unprotected {
                return Ok(None);
            }
            self.area = TlvArea::Unprotected;
            self.position = self.layout.unprotected_start.saturating_add(INFO_SIZE);
            self.area_end = self.layout.end;
        }
        let mut raw = [0u8; TLV_ENTRY_HEADER_SIZE];
        let value_offset = self.position.checked_add(ENTRY_HEADER_SIZE);
        let overrun = |tag, len| VerifyError::Tlv(TlvError::EntryOverrun { tag, len });
        let Some(value_offset) = value_offset.filter(|end| *end <= self.area_end) else {
            return Err(overrun(0, 0));
        };
        self.reader.read(self.position, &mut raw)?;
        let [t0, t1, l0, l1] = raw;
        let (tag, len) = (u16::from_le_bytes([t0, t1]), u16::from_le_bytes([l0, l1]));
        let value_end = value_offset.checked_add(u32::from(len));
        let Some(value_end) = value_end.filter(|end| *end <= self.area_end) else {
            return Err(overrun(tag, len));
        };
        self.position = value_end;
        Ok(Some(TlvEntry { area: self.area, tag, value_offset, len }))
    }
}

impl<R: ImageReader> Iterator for TlvIter<'_, R> {
    type Item = Result<TlvEntry, VerifyError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_entry().transpose();
        self.done = !matches!(next, Some(Ok(_)));
        next
    }
}
