//! Building the bootloader and the demo application for a board.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use boards::Board;

use crate::root;
use crate::toolchain::TargetBuild;

/// Cargo profile of firmware for QEMU: optimised for size, no LTO, quick to rebuild for
/// each application version.
const QEMU_PROFILE: &str = "firmware-dev";
/// Cargo profile of firmware for real boards: fat LTO, so the bootloader fits its 64 KiB.
const BOARD_PROFILE: &str = "firmware";

fn profile(board: &Board) -> &'static str {
    if board.qemu.is_some() { QEMU_PROFILE } else { BOARD_PROFILE }
}

/// A built demo application.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// Its ELF (for log decoding).
    pub(crate) elf: PathBuf,
    /// Its raw binary, ready for `fwsign sign --pad-header`.
    pub(crate) bin: PathBuf,
}

/// Where built artefacts of `board` are kept.
pub(crate) fn out_dir(board: &Board) -> PathBuf {
    root().join("target").join("xtask").join(board.name)
}

/// Builds the bootloader for `board` with the rules of the device profile `profile`,
/// trusting the public keys of `keys`.
pub(crate) fn bootloader(board: &Board, profile: &Path, keys: &[PathBuf]) -> Result<PathBuf> {
    let list: Vec<String> = keys.iter().map(|k| k.display().to_string()).collect();
    let profile = profile.display().to_string();
    let elf = build(
        board,
        "fwsign-bootloader-firmware",
        "fwsign-bootloader",
        &["standard"],
        &[("FWSIGN_TRUSTED_KEYS", &list.join(",")), ("FWSIGN_DEVICE_PROFILE", &profile)],
    )?;
    copy_out(&elf, &out_dir(board).join("fwsign-bootloader.elf"))
}

/// Builds the demo application `version` for `board`; an unhealthy build never confirms itself.
pub(crate) fn app(board: &Board, version: &str, healthy: bool) -> Result<App> {
    let vars =
        [("FWSIGN_APP_VERSION", version), ("FWSIGN_APP_HEALTHY", if healthy { "1" } else { "0" })];
    let elf = build(board, "fwsign-demo-app", "fwsign-demo-app", &[], &vars)?;
    let name = if healthy { format!("app-{version}") } else { format!("app-{version}-unhealthy") };
    let dir = out_dir(board);
    let elf = copy_out(&elf, &dir.join(format!("{name}.elf")))?;
    let (address, binary) = crate::elf::to_binary(&elf)?;
    let expected = board.primary_address() + board.header_size;
    if address != expected {
        bail!("{}: linked at {address:#x}, expected {expected:#x}", elf.display());
    }
    let bin = dir.join(format!("{name}.bin"));
    crate::write_atomically(&bin, &binary)?;
    Ok(App { elf, bin })
}

/// Builds `binary` of `package` for `board`, with the board's feature and `features`.
fn build(
    board: &Board,
    package: &str,
    binary: &str,
    features: &[&str],
    vars: &[(&str, &str)],
) -> Result<PathBuf> {
    let features = [&[board.name][..], features].concat().join(",");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .args([
            "build",
            "--quiet",
            "-p",
            package,
            "--target",
            board.target,
            "--profile",
            profile(board),
        ])
        .args(["--no-default-features", "--features", &features])
        .env("DEFMT_LOG", "info")
        .current_dir(root());
    for (name, value) in vars {
        command.env(name, value);
    }
    TargetBuild::for_target(board.target)?.configure(&mut command);
    let status = command.status().with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("building {package} for {} failed", board.name);
    }
    Ok(crate::target_dir().join(board.target).join(profile(board)).join(binary))
}

fn copy_out(from: &Path, to: &Path) -> Result<PathBuf> {
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    crate::write_atomically(to, &bytes)?;
    Ok(to.to_owned())
}
