//! `cargo xtask app`: the demo application as an unsigned binary, ready to sign.

use std::path::PathBuf;

use anyhow::{Result, anyhow};

use crate::firmware;

/// Build the demo application as a raw binary (the payload, linked to run after the image
/// header) for `fwsign sign`/`imgtool sign -H 0x200 --pad-header -S SLOT_SIZE`.
#[derive(clap::Parser)]
pub(crate) struct Cmd {
    /// Board: mps2-an386, mps2-an385, mps2-an505 or nrf52840dk.
    #[arg(long, default_value = "mps2-an386")]
    board: String,
    /// Application version, major.minor.revision.
    #[arg(long)]
    version: String,
    /// Build an application that fails its health check (never confirms a test boot).
    #[arg(long)]
    unhealthy: bool,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

impl Cmd {
    pub(crate) fn run(self) -> Result<()> {
        let board = boards::by_name(&self.board)
            .ok_or_else(|| anyhow!("unknown board {:?}", self.board))?;
        let app = firmware::app(&board, &self.version, !self.unhealthy)?;
        let bytes = std::fs::read(&app.bin)?;
        crate::write_atomically(&self.out, &bytes)?;
        println!(
            "{}: {} bytes, linked at {:#x}. Sign it with:\n  fwsign sign -k KEY -v {} -s COUNTER -H {:#x} --pad-header -S {:#x} {} signed.bin",
            self.out.display(),
            bytes.len(),
            board.primary_address() + board.header_size,
            self.version,
            board.header_size,
            board.slot_size(),
            self.out.display()
        );
        Ok(())
    }
}
