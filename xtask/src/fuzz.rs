//! `cargo xtask fuzz`: replays the committed seeds, then fuzzes for a bounded time.
//!
//! cargo-fuzz needs nightly compiler flags. The nightly toolchain is used when installed;
//! otherwise the pinned toolchain is asked to accept them (`RUSTC_BOOTSTRAP=1`), so fuzzing works
//! on a machine with only the project's toolchain.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::root;

/// The fuzz targets, each with its seed directory under `fuzz/seeds/`.
pub(crate) const TARGETS: &[&str] = &[
    "verify_image",
    "boot_state",
    "update_protocol",
    "service_request",
    "log_proof",
    "device_profile",
    "log_tiles",
    "provisioning_record",
];

/// Runs every target for `seconds` (after replaying its seeds) and reports the executions.
pub(crate) fn run(seconds: u32) -> Result<()> {
    crate::tools::ensure_cargo_fuzz()?;
    for target in TARGETS {
        let corpus = root().join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("cannot create {}", corpus.display()))?;
        let seeds = root().join("fuzz/seeds").join(target);
        let max_time = format!("-max_total_time={seconds}");
        let mut command = fuzz_command();
        command
            .args(["fuzz", "run", "--fuzz-dir", "fuzz", target])
            .arg(&corpus)
            .arg(&seeds)
            .args(["--", &max_time, "-print_final_stats=1"]);
        let output = command.current_dir(root()).output().context("cannot run cargo fuzz")?;
        let log = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            eprintln!("{log}");
            bail!(
                "fuzz target {target} failed: the crashing input is under fuzz/artifacts/{target}/"
            );
        }
        let executions = log
            .lines()
            .find_map(|line| line.strip_prefix("stat::number_of_executed_units:"))
            .map_or("?", str::trim);
        println!("fuzz {target}: {executions} executions in {seconds} s, no failure");
    }
    Ok(())
}

/// `cargo +nightly` when a nightly toolchain is installed, else the pinned toolchain with
/// nightly flags allowed.
fn fuzz_command() -> Command {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    let mut command = Command::new("cargo");
    if nightly {
        command.arg("+nightly");
    } else {
        command.env("RUSTC_BOOTSTRAP", "1");
    }
    command
}
