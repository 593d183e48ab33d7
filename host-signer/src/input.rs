//! Reading the firmware to sign: raw binary, Intel HEX or ELF, told apart by content.
//!
//! HEX and ELF inputs carry addresses; the image starts at the lowest one, and that
//! address is kept so a HEX output lands where the input did. Gaps in HEX inputs are
//! filled with 0xff, as imgtool fills them (the filler is hashed, so it has to match for
//! identical images); gaps between ELF segments take the erased value.
//!
//! Loading writes straight into the buffer the image is built in, after room for the
//! header when `--pad-header` asks for it, so the payload is never copied again.

use std::path::{Path, PathBuf};

use object::read::elf::{FileHeader, ProgramHeader};

/// Largest address span accepted from HEX or ELF input (64 MiB): a distant region
/// (option bytes, a RAM section with load data) would otherwise make a huge image.
const MAX_SPAN: u64 = 64 << 20;
/// What imgtool fills HEX gaps with.
const HEX_GAP_FILL: u8 = 0xff;

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Raw binary.
    Bin,
    /// Intel HEX.
    Hex,
    /// ELF executable.
    Elf,
}

/// A loaded input.
#[derive(Debug)]
pub struct LoadedInput {
    /// `prefix` bytes of filler followed by the firmware.
    pub bytes: Vec<u8>,
    /// Address of the first byte of `bytes` (the prefix included), for HEX and ELF inputs.
    pub base_addr: Option<u32>,
    /// The format detected or requested.
    pub format: InputFormat,
    /// ELF segments taken, for reporting.
    pub segments: Vec<SegmentInfo>,
}

/// An ELF segment copied into the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Index in the program header table.
    pub index: usize,
    /// Physical (load) address.
    pub paddr: u64,
    /// Virtual address.
    pub vaddr: u64,
    /// Bytes of file data.
    pub size: u64,
}

/// Why the input could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A HEX record is malformed.
    #[error("{path}: line {line}: bad Intel HEX record: {reason}")]
    HexRecord {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Two HEX records or ELF segments write the same address.
    #[error(
        "{path}: data at 0x{second:08x} overlaps data already at 0x{first:08x}..0x{first_end:08x}"
    )]
    Overlap {
        /// The file.
        path: PathBuf,
        /// Start of the earlier block.
        first: u64,
        /// Its end.
        first_end: u64,
        /// Start of the overlapping block.
        second: u64,
    },
    /// The input holds no data.
    #[error("{path}: {what}")]
    Empty {
        /// The file.
        path: PathBuf,
        /// What was missing.
        what: &'static str,
    },
    /// The data spans too wide an address range.
    #[error("{path}: data spans 0x{start:08x}..0x{end:08x} ({} bytes), more than the 64 MiB an image may take; is a distant region (option bytes, RAM) included?", end - start)]
    SpanTooLarge {
        /// The file.
        path: PathBuf,
        /// Lowest address.
        start: u64,
        /// End address.
        end: u64,
    },
    /// The ELF file is malformed or not an executable fwsign can use.
    #[error("{path}: bad ELF file: {reason}")]
    Elf {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The header room cannot be placed below the lowest address.
    #[error(
        "{path}: lowest address 0x{base:08x} is below the header size 0x{header:x}, so --pad-header cannot place the header before it"
    )]
    BaseBelowHeader {
        /// The file.
        path: PathBuf,
        /// Lowest address.
        base: u32,
        /// Header size.
        header: usize,
    },
}

/// Recognises the format from the content: ELF magic, or text of `:` records.
pub fn detect(bytes: &[u8]) -> InputFormat {
    if bytes.starts_with(b"\x7fELF") {
        return InputFormat::Elf;
    }
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b':') && text.iter().all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        InputFormat::Hex
    } else {
        InputFormat::Bin
    }
}

/// Loads `path`, prepending `prefix` bytes of `fill` (the header room of `--pad-header`).
///
/// `format` forces a format; `None` detects it from the content.
///
/// # Errors
/// Any [`InputError`] naming the file.
pub fn load(
    path: &Path,
    format: Option<InputFormat>,
    prefix: usize,
    fill: u8,
) -> Result<LoadedInput, InputError> {
    let io = |source| InputError::Io { path: path.to_owned(), source };
    let file = std::fs::read(path).map_err(io)?;
    let format = format.unwrap_or_else(|| detect(&file));
    match format {
        InputFormat::Bin => {
            let mut bytes = Vec::with_capacity(prefix + file.len());
            bytes.resize(prefix, fill);
            bytes.extend_from_slice(&file);
            Ok(LoadedInput { bytes, base_addr: None, format, segments: Vec::new() })
        }
        InputFormat::Hex => {
            let blocks = hex_blocks(path, &file)?;
            let (bytes, base) = assemble(path, &blocks, prefix, fill, HEX_GAP_FILL)?;
            Ok(LoadedInput { bytes, base_addr: Some(base), format, segments: Vec::new() })
        }
        InputFormat::Elf => {
            let (blocks, segments) = elf_blocks(path, &file)?;
            let (bytes, base) = assemble(path, &blocks, prefix, fill, fill)?;
            Ok(LoadedInput { bytes, base_addr: Some(base), format, segments })
        }
    }
}

/// A run of bytes at an address.
struct Block<'a> {
    addr: u64,
    data: std::borrow::Cow<'a, [u8]>,
}

/// Lays `blocks` out from the lowest address, with `prefix` bytes of `fill` in front.
///
/// Returns the buffer and the address of its first byte. Like imgtool, the header room
/// moves the base address down, except when the lowest address is 0.
fn assemble(
    path: &Path,
    blocks: &[Block<'_>],
    prefix: usize,
    fill: u8,
    gap_fill: u8,
) -> Result<(Vec<u8>, u32), InputError> {
    let mut order: Vec<&Block<'_>> = blocks.iter().filter(|b| !b.data.is_empty()).collect();
    order.sort_by_key(|b| b.addr);
    let (Some(first), Some(_)) = (order.first(), order.last()) else {
        return Err(InputError::Empty { path: path.to_owned(), what: "no data records" });
    };
    let start = first.addr;
    let (mut previous, mut end) = (start, start);
    for block in &order {
        if block.addr < end {
            return Err(InputError::Overlap {
                path: path.to_owned(),
                first: previous,
                first_end: end,
                second: block.addr,
            });
        }
        previous = block.addr;
        end = block.addr + block.data.len() as u64;
    }
    if end - start > MAX_SPAN || end > 1 << 32 {
        return Err(InputError::SpanTooLarge { path: path.to_owned(), start, end });
    }
    let span = usize::try_from(end - start).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(prefix + span);
    bytes.resize(prefix, fill);
    for block in &order {
        let offset = prefix + usize::try_from(block.addr - start).unwrap_or(usize::MAX);
        bytes.resize(offset, gap_fill);
        bytes.extend_from_slice(&block.data);
    }
    let start = u32::try_from(start).unwrap_or(u32::MAX);
    let base = match start {
        0 => 0,
        addr => {
            let header = u32::try_from(prefix).unwrap_or(u32::MAX);
            addr.checked_sub(header).ok_or(InputError::BaseBelowHeader {
                path: path.to_owned(),
                base: addr,
                header: prefix,
            })?
        }
    };
    Ok((bytes, base))
}

fn hex_blocks<'a>(path: &Path, file: &[u8]) -> Result<Vec<Block<'a>>, InputError> {
    let text = std::str::from_utf8(file).map_err(|e| InputError::HexRecord {
        path: path.to_owned(),
        line: 1,
        reason: format!("not ASCII text ({e})"),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut upper = 0u64;
    let mut blocks = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |reason: String| InputError::HexRecord {
            path: path.to_owned(),
            line: index + 1,
            reason,
        };
        match ihex::Record::from_record_string(line).map_err(|e| bad(e.to_string()))? {
            ihex::Record::Data { offset, value } => {
                blocks.push(Block { addr: upper + u64::from(offset), data: value.into() });
            }
            ihex::Record::ExtendedLinearAddress(high) => upper = u64::from(high) << 16,
            ihex::Record::ExtendedSegmentAddress(segment) => upper = u64::from(segment) << 4,
            ihex::Record::EndOfFile => break,
            ihex::Record::StartLinearAddress(_) | ihex::Record::StartSegmentAddress { .. } => {}
        }
    }
    Ok(blocks)
}

fn elf_blocks<'a>(
    path: &Path,
    file: &'a [u8],
) -> Result<(Vec<Block<'a>>, Vec<SegmentInfo>), InputError> {
    let kind = object::FileKind::parse(file)
        .map_err(|e| InputError::Elf { path: path.to_owned(), reason: e.to_string() })?;
    match kind {
        object::FileKind::Elf32 => {
            elf_segments::<object::elf::FileHeader32<object::Endianness>>(path, file)
        }
        object::FileKind::Elf64 => {
            elf_segments::<object::elf::FileHeader64<object::Endianness>>(path, file)
        }
        other => {
            Err(InputError::Elf { path: path.to_owned(), reason: format!("{other:?} is not ELF") })
        }
    }
}

/// PT_LOAD segments with file data, placed by physical address.
fn elf_segments<'a, Elf: FileHeader<Endian = object::Endianness>>(
    path: &Path,
    file: &'a [u8],
) -> Result<(Vec<Block<'a>>, Vec<SegmentInfo>), InputError> {
    let bad = |e: object::Error| InputError::Elf { path: path.to_owned(), reason: e.to_string() };
    let header = Elf::parse(file).map_err(bad)?;
    let endian = header.endian().map_err(bad)?;
    let mut blocks = Vec::new();
    let mut taken = Vec::new();
    for (index, segment) in header.program_headers(endian, file).map_err(bad)?.iter().enumerate() {
        if segment.p_type(endian) != object::elf::PT_LOAD || segment.p_filesz(endian).into() == 0 {
            continue;
        }
        let data = segment.data(endian, file).map_err(|()| InputError::Elf {
            path: path.to_owned(),
            reason: format!("segment {index} data lies outside the file"),
        })?;
        let paddr: u64 = segment.p_paddr(endian).into();
        taken.push(SegmentInfo {
            index,
            paddr,
            vaddr: segment.p_vaddr(endian).into(),
            size: data.len() as u64,
        });
        blocks.push(Block { addr: paddr, data: data.into() });
    }
    if blocks.is_empty() {
        return Err(InputError::Empty {
            path: path.to_owned(),
            what: "ELF file has no loadable (PT_LOAD) segment with file data",
        });
    }
    Ok((blocks, taken))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: u16, data: &[u8]) -> String {
        ihex::Record::Data { offset, value: data.to_vec() }.to_record_string().expect("record")
    }

    fn load_text(text: &str, prefix: usize) -> Result<LoadedInput, InputError> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("in.txt");
        std::fs::write(&path, text).expect("write");
        load(&path, None, prefix, 0)
    }

    #[test]
    fn hex_gaps_are_filled_and_base_kept() {
        let text = format!(
            "{}\n{}\n{}\n{}\n",
            ihex::Record::ExtendedLinearAddress(0x0800).to_record_string().expect("ela"),
            record(0x1000, &[1, 2]),
            record(0x1004, &[3]),
            ":00000001FF"
        );
        let input = load_text(&text, 0x20).expect("load");
        assert_eq!(input.format, InputFormat::Hex);
        assert_eq!(input.base_addr, Some(0x0800_0fe0));
        assert_eq!(&input.bytes[0x20..], &[1, 2, 0xff, 0xff, 3]);
    }

    #[test]
    fn overlapping_hex_records_are_refused() {
        let text = format!("{}\n{}\n:00000001FF\n", record(0x10, &[1, 2, 3]), record(0x12, &[4]));
        assert!(matches!(load_text(&text, 0), Err(InputError::Overlap { second: 0x12, .. })));
    }

    #[test]
    fn binary_is_not_taken_for_hex() {
        assert_eq!(detect(&[0, 0, 0x3a]), InputFormat::Bin);
        assert_eq!(detect(b":00000001FF\n"), InputFormat::Hex);
        assert_eq!(detect(b"\x7fELF\x01"), InputFormat::Elf);
    }
}
