//! `cargo xtask`: the project's tasks, runnable on a fresh machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod no_panic;

#[derive(Parser)]
#[command(about = "fwsign project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Prove the verifier links no panic path in a thumbv7em release firmware.
    CheckNoPanic,
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::CheckNoPanic => check_no_panic(),
    }
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Runs `cargo` with `args` in the workspace root, failing if it fails.
fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}

fn check_no_panic() -> Result<()> {
    const TARGET: &str = "thumbv7em-none-eabihf";
    let package = "verifier-no-panic-check";
    cargo(&["build", "-p", package, "--target", TARGET, "--profile", "firmware"])?;
    let elf = root().join("target").join(TARGET).join("firmware").join(package);
    no_panic::check(&elf, &no_panic::llvm_objdump()?)
}
