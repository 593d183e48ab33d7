//! ELF to raw binary: the loadable bytes from the lowest load address, gaps filled with 0xFF.

use std::path::Path;

use anyhow::{Context, Result, bail};
use object::{Object, ObjectSegment};

/// The image an ELF file puts in memory, and where it starts.
pub(crate) fn to_binary(elf: &Path) -> Result<(u32, Vec<u8>)> {
    let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let file = object::File::parse(&*data)
        .with_context(|| format!("{} is not an ELF file", elf.display()))?;
    let mut segments = Vec::new();
    for segment in file.segments() {
        let bytes =
            segment.data().with_context(|| format!("{}: unreadable segment", elf.display()))?;
        if bytes.is_empty() {
            continue;
        }
        let (offset, _) = segment.file_range();
        let paddr = physical_address(&file, offset).unwrap_or(segment.address());
        segments.push((paddr, bytes.to_vec()));
    }
    let Some(start) = segments.iter().map(|(a, _)| *a).min() else {
        bail!("{}: no loadable segments", elf.display());
    };
    let end = segments.iter().map(|(a, b)| a + b.len() as u64).max().unwrap_or(start);
    let mut image = vec![0xFF; usize::try_from(end - start)?];
    for (address, bytes) in segments {
        let at = usize::try_from(address - start)?;
        image[at..at + bytes.len()].copy_from_slice(&bytes);
    }
    Ok((u32::try_from(start)?, image))
}

/// The load (physical) address of the program header at file `offset`: `.data` runs from
/// RAM but is stored in flash after `.rodata`.
fn physical_address(file: &object::File<'_>, offset: u64) -> Option<u64> {
    use object::read::elf::ProgramHeader as _;
    let object::File::Elf32(elf) = file else {
        return None;
    };
    let endian = elf.endian();
    elf.elf_program_headers()
        .iter()
        .find(|h| u64::from(h.p_offset(endian)) == offset && h.p_filesz(endian) > 0)
        .map(|h| u64::from(h.p_paddr(endian)))
}
