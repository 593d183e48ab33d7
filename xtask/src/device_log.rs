//! Decoding the device's defmt logs.
//!
//! The firmware sends each defmt frame over semihosting as a tag byte (which program sent
//! it) followed by the rzCOBS frame ending in `0x00` (see `boards::logger`). This module
//! splits the stream, decodes each frame with the ELF of its program and formats lines.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use defmt_decoder::{DecodeError, Table};

/// The tag the bootloader logs under; applications use their major version.
pub(crate) const BOOTLOADER_TAG: u8 = b'B';

/// Decoders for the programs that may log.
pub(crate) struct LogDecoder {
    programs: HashMap<u8, (String, Table)>,
    pending: Vec<u8>,
}

impl LogDecoder {
    /// An empty decoder.
    pub(crate) fn new() -> Self {
        Self { programs: HashMap::new(), pending: Vec::new() }
    }

    /// Frames tagged `tag` come from `elf`, shown as `name`.
    pub(crate) fn add(&mut self, tag: u8, name: &str, elf: &Path) -> Result<()> {
        let bytes = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
        let table = Table::parse(&bytes)
            .with_context(|| format!("{}: bad defmt data", elf.display()))?
            .ok_or_else(|| anyhow!("{}: no defmt data (built without defmt?)", elf.display()))?;
        self.programs.insert(tag, (name.to_owned(), table));
        Ok(())
    }

    /// Feeds console bytes; returns the lines of every frame completed.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for byte in bytes {
            self.pending.push(*byte);
            if *byte == 0 {
                let frame = std::mem::take(&mut self.pending);
                // A lone separator (sent before a program's first frame) carries nothing.
                if frame.len() > 1 {
                    lines.push(self.decode(&frame));
                }
            }
        }
        lines
    }

    fn decode(&self, frame: &[u8]) -> String {
        let Some((&tag, encoded)) = frame.split_first() else {
            return String::new();
        };
        let Some((name, table)) = self.programs.get(&tag) else {
            return format!("[tag {tag:#04x}] <{} undecodable bytes>", encoded.len());
        };
        let mut decoder = table.new_stream_decoder();
        decoder.received(encoded);
        match decoder.decode() {
            Ok(frame) => {
                let level = frame.level().map_or("", |l| l.as_str());
                format!("[{name}] {:<5} {}", level.to_uppercase(), frame.display_message())
            }
            Err(DecodeError::UnexpectedEof | DecodeError::Malformed) => {
                format!("[{name}] <malformed frame, {} bytes>", encoded.len())
            }
        }
    }
}
