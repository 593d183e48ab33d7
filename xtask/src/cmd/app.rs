//! `cargo xtask app`: the demo application as an unsigned binary, ready to sign.

use std::path::PathBuf;

use anyhow::{Result, anyhow};

use crate::cmd::device::DeviceArg;
use crate::firmware;

/// Build the demo application as a raw binary (the payload, linked to run after the image
/// header) for `fwsign sign --device PROFILE --pad-header`.
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
    #[command(flatten)]
    device: DeviceArg,
}

impl Cmd {
    pub(crate) fn run(self) -> Result<()> {
        let board = boards::by_name(&self.board)
            .ok_or_else(|| anyhow!("unknown board {:?}", self.board))?;
        let profile = self.device.profile(&board)?;
        let app = firmware::app(&board, &self.version, !self.unhealthy)?;
        let bytes = std::fs::read(&app.bin)?;
        crate::write_atomically(&self.out, &bytes)?;
        let counter = if profile.require_security_counter { " -s COUNTER" } else { "" };
        println!(
            "{}: {} bytes, linked at {:#x}. Sign it with:\n  fwsign sign --device {} -k KEY -v {}{counter} --pad-header {} signed.bin",
            self.out.display(),
            bytes.len(),
            board.primary_address() + board.header_size,
            profile.path.display(),
            self.version,
            self.out.display()
        );
        Ok(())
    }
}
