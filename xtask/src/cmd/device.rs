//! `--device FILE`, shared by the tasks that build for, sign for or program a board.

use std::path::PathBuf;

use anyhow::Result;
use boards::Board;
use device_profile::Profile;

/// The device profile option.
#[derive(clap::Args)]
pub(crate) struct DeviceArg {
    /// Device profile: the rules and keys the bootloader is built with and images are judged
    /// by (default: the board's boards/profiles/<board>.toml).
    #[arg(long, value_name = "FILE")]
    device: Option<PathBuf>,
}

impl DeviceArg {
    /// The profile for `board`, which it must describe.
    pub(crate) fn profile(&self, board: &Board) -> Result<Profile> {
        load(board, self.device.clone())
    }
}

/// The profile at `path` (by default the board's shipped one), checked against `board`.
pub(crate) fn load(board: &Board, path: Option<PathBuf>) -> Result<Profile> {
    let path = path.unwrap_or_else(|| device_profile::shipped(board.name));
    // Absolute: the firmware build script runs in another directory.
    let path = std::fs::canonicalize(&path).or_else(|_| std::path::absolute(&path))?;
    let profile = Profile::load(&path)?;
    board.check_profile(&profile)?;
    Ok(profile)
}
