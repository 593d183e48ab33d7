//! Writing the signed image: binary or Intel HEX, padded with a trailer on request,
//! always through a temporary file renamed into place so no half-written file remains.
//!
//! The HEX layout (16 data bytes per record, records split at gaps and 64 KiB
//! boundaries, extended linear address records only when an address exceeds 0xffff)
//! reproduces what imgtool writes, so HEX outputs compare byte for byte. A padded HEX
//! image is sparse: besides the image, only the trailer's `image_ok` chunk and magic.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::trailer::{SlotMark, TrailerLayout};

/// Data bytes per HEX record.
const HEX_RECORD_LEN: usize = 16;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Raw binary.
    Bin,
    /// Intel HEX.
    Hex,
}

impl OutputFormat {
    /// The format imgtool would pick from the file name: `.hex` is HEX, anything else binary.
    pub fn from_extension(path: &Path) -> Self {
        let hex = path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("hex"));
        if hex { Self::Hex } else { Self::Bin }
    }
}

/// The padding and trailer to add after the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Padding {
    /// Slot size to pad to.
    pub slot_size: u32,
    /// Trailer geometry.
    pub layout: TrailerLayout,
    /// What the trailer says.
    pub mark: SlotMark,
    /// Erased flash value.
    pub erased: u8,
}

/// Why the output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// HEX output without an address.
    #[error(
        "{path}: Intel HEX output needs an address: give -x/--hex-addr or sign a HEX or ELF input"
    )]
    NoHexAddress {
        /// The output file.
        path: PathBuf,
    },
    /// The image does not fit below 4 GiB at its address.
    #[error("{path}: image at 0x{base:08x} extends past the 32-bit address space")]
    AddressOverflow {
        /// The output file.
        path: PathBuf,
        /// Its base address.
        base: u32,
    },
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The output file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Renders the binary file: the image, then, when padding, erased bytes to the slot end
/// with the trailer writes on top.
pub fn render_bin(image: Vec<u8>, padding: Option<&Padding>) -> Vec<u8> {
    let Some(padding) = padding else {
        return image;
    };
    let mut bytes = image;
    let slot = usize::try_from(padding.slot_size).unwrap_or(usize::MAX);
    bytes.resize(slot.max(bytes.len()), padding.erased);
    let end = bytes.len();
    for (from_end, data) in padding.layout.writes(padding.mark, padding.erased) {
        let start = end.saturating_sub(from_end as usize);
        if let Some(target) = bytes.get_mut(start..start + data.len()) {
            target.copy_from_slice(&data);
        }
    }
    bytes
}

/// Renders the Intel HEX file of `image` at `base`, with sparse trailer writes when padding.
///
/// # Errors
/// [`OutputError::AddressOverflow`].
pub fn render_hex(
    path: &Path,
    image: &[u8],
    base: u32,
    padding: Option<&Padding>,
) -> Result<Vec<u8>, OutputError> {
    let overflow = || OutputError::AddressOverflow { path: path.to_owned(), base };
    let base = u64::from(base);
    let mut blocks: Vec<(u64, &[u8])> = vec![(base, image)];
    let writes = padding.map(|p| p.layout.writes(p.mark, p.erased)).unwrap_or_default();
    if let Some(padding) = padding {
        let slot_end = base + u64::from(padding.slot_size);
        for (from_end, data) in &writes {
            blocks.push((slot_end - u64::from(*from_end), data));
        }
    }
    let end = blocks.iter().map(|(addr, data)| addr + data.len() as u64).max().unwrap_or(base);
    if end > 1 << 32 {
        return Err(overflow());
    }
    Ok(hex_records(&blocks, end - 1 > 0xffff).into_bytes())
}

/// Emits records for address-ordered, non-overlapping blocks; adjacent blocks chain
/// into one run, as they would in a memory image.
fn hex_records(blocks: &[(u64, &[u8])], linear_records: bool) -> String {
    let mut out = String::new();
    let mut current_high: Option<u64> = None;
    let mut pending: Vec<u8> = Vec::with_capacity(HEX_RECORD_LEN);
    let mut pending_addr = 0u64;
    let flush = |out: &mut String, addr: u64, data: &mut Vec<u8>, high: &mut Option<u64>| {
        if data.is_empty() {
            return;
        }
        if linear_records && *high != Some(addr >> 16) {
            *high = Some(addr >> 16);
            push_record(out, &ihex::Record::ExtendedLinearAddress(((addr >> 16) & 0xffff) as u16));
        }
        push_record(
            out,
            &ihex::Record::Data { offset: (addr & 0xffff) as u16, value: std::mem::take(data) },
        );
    };
    for (addr, data) in blocks {
        for (index, byte) in data.iter().enumerate() {
            let at = addr + index as u64;
            let contiguous = !pending.is_empty() && pending_addr + pending.len() as u64 == at;
            let starts_segment = at & 0xffff == 0;
            if !contiguous || pending.len() == HEX_RECORD_LEN || starts_segment {
                flush(&mut out, pending_addr, &mut pending, &mut current_high);
                pending_addr = at;
            }
            pending.push(*byte);
        }
    }
    flush(&mut out, pending_addr, &mut pending, &mut current_high);
    push_record(&mut out, &ihex::Record::EndOfFile);
    out
}

fn push_record(out: &mut String, record: &ihex::Record) {
    // Records built here are at most 16 data bytes, which always encode.
    if let Ok(text) = record.to_record_string() {
        out.push_str(&text);
        out.push('\n');
    }
}

/// Who may read a file written here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Readable by all (images, public keys): mode 0644 on Unix.
    Shared,
    /// Readable by the owner only (private keys): mode 0600 on Unix.
    Private,
}

impl Access {
    #[cfg(unix)]
    fn permissions(self) -> std::fs::Permissions {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::Permissions::from_mode(match self {
            Self::Shared => 0o644,
            Self::Private => 0o600,
        })
    }
}

/// A file written to a temporary name beside its destination, renamed on [`commit`].
///
/// Dropping it without committing deletes the temporary file.
///
/// [`commit`]: StagedFile::commit
#[derive(Debug)]
pub struct StagedFile {
    path: PathBuf,
    temp: tempfile::NamedTempFile,
}

impl StagedFile {
    /// Writes `bytes` to a temporary file in `path`'s directory.
    ///
    /// # Errors
    /// [`OutputError::Io`].
    pub fn write(path: &Path, bytes: &[u8], access: Access) -> Result<Self, OutputError> {
        let io = |source| OutputError::Io { path: path.to_owned(), source };
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".fwsign-");
        #[cfg(unix)]
        builder.permissions(access.permissions());
        #[cfg(not(unix))]
        let _ = access;
        let mut temp = builder.tempfile_in(dir).map_err(io)?;
        temp.write_all(bytes).map_err(io)?;
        temp.as_file().sync_all().map_err(io)?;
        Ok(Self { path: path.to_owned(), temp })
    }

    /// Renames the temporary file to its destination.
    ///
    /// # Errors
    /// [`OutputError::Io`].
    pub fn commit(self) -> Result<(), OutputError> {
        let path = self.path;
        self.temp.persist(&path).map_err(|e| OutputError::Io { path, source: e.error })?;
        Ok(())
    }
}

/// Writes a file atomically.
///
/// # Errors
/// [`OutputError::Io`].
pub fn write_atomic(path: &Path, bytes: &[u8], access: Access) -> Result<(), OutputError> {
    StagedFile::write(path, bytes, access)?.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_records_split_at_gaps_and_sixteen_bytes() {
        let data: Vec<u8> = (0..20).collect();
        let text = hex_records(&[(0x100, &data), (0x120, &[0xaa])], false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with(":10010000"));
        assert!(lines[1].starts_with(":04011000"));
        assert!(lines[2].starts_with(":01012000AA"));
        assert_eq!(lines[3], ":00000001FF");
    }

    #[test]
    fn hex_records_cross_64k_with_linear_address() {
        let data = [0u8; 8];
        let text = hex_records(&[(0x0800_fffc, &data)], true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], ":020000040800F2");
        assert!(lines[1].starts_with(":04FFFC00"));
        assert_eq!(lines[2], ":020000040801F1");
        assert!(lines[3].starts_with(":04000000"));
    }

    #[test]
    fn padded_bin_has_magic_and_image_ok() {
        let padding = Padding {
            slot_size: 0x1000,
            layout: TrailerLayout::for_align(8),
            mark: SlotMark::Confirm,
            erased: 0xff,
        };
        let bytes = render_bin(vec![1, 2, 3], Some(&padding));
        assert_eq!(bytes.len(), 0x1000);
        assert_eq!(bytes[0x1000 - 24], 1);
        assert_eq!(&bytes[0x1000 - 16..], &padding.layout.magic());
    }
}
