//! Keys and signing: development keys, `fwsign sign`, and imgtool for interop.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use boards::Board;

use crate::root;

/// The development keys the bootloader built by these tasks trusts.
pub(crate) struct DevKeys {
    /// Ed25519 private key, `target/dev-keys/ed25519.pem`.
    pub ed25519: PathBuf,
    /// P-256 private key beside it.
    pub p256: PathBuf,
}

impl DevKeys {
    /// Both keys, for the bootloader's trusted set.
    pub(crate) fn trusted(&self) -> Vec<PathBuf> {
        vec![self.ed25519.clone(), self.p256.clone()]
    }
}

/// Builds the `fwsign` CLI; its path.
pub(crate) fn fwsign() -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--quiet", "-p", "host-signer", "--bin", "fwsign"])
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("building fwsign failed");
    }
    Ok(crate::target_dir().join("debug").join("fwsign"))
}

/// Creates the development keys if they do not exist yet.
pub(crate) fn dev_keys(fwsign: &Path) -> Result<DevKeys> {
    let dir = root().join("target").join("dev-keys");
    let keys = DevKeys { ed25519: dir.join("ed25519.pem"), p256: dir.join("p256.pem") };
    ensure_key(fwsign, &keys.ed25519, "ed25519")?;
    ensure_key(fwsign, &keys.p256, "ecdsa-p256")?;
    Ok(keys)
}

/// Creates a key at `path` with `fwsign keygen` unless one exists.
pub(crate) fn ensure_key(fwsign: &Path, path: &Path, key_type: &str) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    run(Command::new(fwsign).arg("keygen").arg("-k").arg(path).args(["-t", key_type]))?;
    println!("created key {}", path.display());
    Ok(())
}

/// How to sign an application binary for a board's slots.
pub(crate) struct SignRequest<'a> {
    /// The raw binary (`cargo xtask app`).
    pub(crate) input: &'a Path,
    /// Where to write the image.
    pub(crate) output: &'a Path,
    /// Signing key; `None` makes an image with a hash only.
    pub(crate) key: Option<&'a Path>,
    /// Version `major.minor.revision`.
    pub(crate) version: &'a str,
    /// Security counter.
    pub(crate) security_counter: u32,
}

/// Signs with `fwsign sign --device PROFILE`: sizes from the device profile; returns the image.
pub(crate) fn with_fwsign(
    fwsign: &Path,
    profile: &Path,
    request: &SignRequest<'_>,
) -> Result<Vec<u8>> {
    let mut command = Command::new(fwsign);
    command.arg("sign").arg("--device").arg(profile).arg("--pad-header");
    if let Some(key) = request.key {
        command.arg("-k").arg(key);
    }
    command
        .args(["-v", request.version, "-s", &request.security_counter.to_string()])
        .arg(request.input)
        .arg(request.output);
    run(&mut command)?;
    std::fs::read(request.output)
        .with_context(|| format!("cannot read {}", request.output.display()))
}

/// Signs with imgtool (found as documented in [`imgtool`]); returns the image.
pub(crate) fn with_imgtool(board: &Board, request: &SignRequest<'_>) -> Result<Vec<u8>> {
    let mut command = Command::new(imgtool()?);
    command.arg("sign");
    if let Some(key) = request.key {
        command.arg("-k").arg(key);
    }
    add_image_options(&mut command, board, request);
    run(&mut command)?;
    std::fs::read(request.output)
        .with_context(|| format!("cannot read {}", request.output.display()))
}

fn add_image_options(command: &mut Command, board: &Board, request: &SignRequest<'_>) {
    command
        .args(["-v", request.version, "-s", &request.security_counter.to_string()])
        .args(["-H", &format!("{:#x}", board.header_size), "--pad-header"])
        .args(["-S", &format!("{:#x}", board.slot_size())])
        .arg(request.input)
        .arg(request.output);
}

/// imgtool: `$FWSIGN_IMGTOOL`, the workspace's `.venv`, or `PATH` (installed into `.venv`
/// when none is found).
pub(crate) fn imgtool() -> Result<PathBuf> {
    crate::tools::ensure_imgtool()?;
    if let Some(path) = std::env::var_os("FWSIGN_IMGTOOL") {
        return Ok(PathBuf::from(path));
    }
    let venv = root().join(".venv").join("bin").join("imgtool");
    Ok(if venv.is_file() { venv } else { PathBuf::from("imgtool") })
}

/// Runs `command`; its standard output, or its output in the error if it fails.
pub(crate) fn run(command: &mut Command) -> Result<String> {
    let output =
        command.output().with_context(|| format!("cannot run {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{:?} failed: {}{}",
            command.get_program(),
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
