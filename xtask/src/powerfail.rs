//! `cargo xtask powerfail`: the power-fail matrix on simulated NOR flash.
//!
//! Runs the `fwsign-powerfail` crate's matrix in release mode: every flow (test upgrade,
//! confirm, revert, permanent upgrade, overwrite-only, security-counter update) on every flash
//! shape (uniform 1 KiB and 4 KiB pages, STM32F4 mixed 16/64/128 KiB sectors) and write size
//! (1, 2, 4, 8 bytes), with a power cut, a torn write or an interrupted erase at every flash
//! operation, plus random samples with further faults during recovery. The output ends with
//! `N interruption points, F failures`.
//!
//! - default (CI): two damage variants per operation, 150 random samples per cell; about ten
//!   seconds on two cores once built.
//! - `--long`: eight damage variants per operation, 3000 random samples per cell with up to
//!   five faults during recovery; a few minutes on two cores.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::root;

/// Runs the matrix; `Ok(false)` when a failure was found (the matrix has printed it).
pub(crate) fn run(long: bool) -> Result<bool> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command.args([
        "run",
        "--release",
        "--quiet",
        "-p",
        "fwsign-powerfail",
        "--",
    ]);
    if long {
        command.arg("--long");
    }
    let status = command
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    Ok(status.success())
}

/// The CI-sized matrix as a test step: fails if any interruption point fails.
pub(crate) fn check() -> Result<()> {
    if !run(false)? {
        bail!("the power-fail matrix found failures (listed above)");
    }
    Ok(())
}
