//! Building the bootloader and the demo application for a board.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use boards::Board;
use device_profile::{KeySource, Profile};

use crate::root;
use crate::toolchain::TargetBuild;

/// Cargo profile of firmware for QEMU: optimised for size, no LTO, quick to rebuild for
/// each application version.
const QEMU_PROFILE: &str = "firmware-dev";
/// Cargo profile of firmware for real boards: fat LTO, so the bootloader fits its 64 KiB.
const BOARD_PROFILE: &str = "firmware";

fn cargo_profile(board: &Board) -> &'static str {
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
/// trusting the public keys of `keys`; with its log proof check (`tlog`) if the profile lists
/// transparency-log keys, and reading its keys from the provisioning record
/// (`provisioned-keys`, `keys` unused) if the profile says so.
pub(crate) fn bootloader(board: &Board, profile: &Profile, keys: &[PathBuf]) -> Result<PathBuf> {
    let list: Vec<String> = keys.iter().map(|k| k.display().to_string()).collect();
    let path = profile.path.display().to_string();
    let mut features = vec!["standard"];
    let mut name = String::from("fwsign-bootloader");
    if !profile.log_keys.is_empty() {
        features.push("tlog");
        name.push_str("-tlog");
    }
    if profile.key_source == KeySource::Provisioned {
        features.push("provisioned-keys");
        name.push_str("-provisioned");
    }
    if profile.revoke_by_use {
        name.push_str("-by-use");
    }
    let elf = build(
        board,
        cargo_profile(board),
        "fwsign-bootloader-firmware",
        "fwsign-bootloader",
        &features,
        &[("FWSIGN_TRUSTED_KEYS", &list.join(",")), ("FWSIGN_DEVICE_PROFILE", &path)],
    )?;
    copy_out(&elf, &out_dir(board).join(name + ".elf"))
}

/// Builds the demo application `version` for `board`; an unhealthy build never confirms itself.
pub(crate) fn app(board: &Board, version: &str, healthy: bool) -> Result<App> {
    let vars =
        [("FWSIGN_APP_VERSION", version), ("FWSIGN_APP_HEALTHY", if healthy { "1" } else { "0" })];
    let elf = build(board, cargo_profile(board), "fwsign-demo-app", "fwsign-demo-app", &[], &vars)?;
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

/// The standard bootloader with its log proof check and provisioned keys for `board`, built
/// like a real board's (fat LTO, [`BOARD_PROFILE`]) with the device profile at `profile`: what
/// `cargo xtask check-no-panic` inspects.
pub(crate) fn bootloader_for_analysis(board: &Board, profile: &Path) -> Result<PathBuf> {
    let profile = profile.display().to_string();
    let vars = [("FWSIGN_TRUSTED_KEYS", ""), ("FWSIGN_DEVICE_PROFILE", profile.as_str())];
    let features = ["standard", "tlog", "provisioned-keys"];
    build(board, BOARD_PROFILE, "fwsign-bootloader-firmware", "fwsign-bootloader", &features, &vars)
}

/// Builds `binary` of `package` for `board` with the cargo profile `cargo_profile`, the
/// board's feature and `features`.
fn build(
    board: &Board,
    cargo_profile: &str,
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
            cargo_profile,
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
    Ok(crate::target_dir().join(board.target).join(cargo_profile).join(binary))
}

fn copy_out(from: &Path, to: &Path) -> Result<PathBuf> {
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    crate::write_atomically(to, &bytes)?;
    Ok(to.to_owned())
}
