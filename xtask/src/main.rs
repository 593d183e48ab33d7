//! `cargo xtask`: the project's tasks, runnable on a fresh machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod fuzz;
mod no_panic;
mod test;
mod tools;

#[derive(Parser)]
#[command(about = "fwsign project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run every test and check, as CI does.
    Test {
        /// How long the bounded fuzzing session runs, per target.
        #[arg(long, default_value_t = 60)]
        fuzz_seconds: u32,
    },
    /// Prove the verifier links no panic path in a thumbv7em release firmware.
    CheckNoPanic,
    /// Replay the fuzz seeds and fuzz every target for a bounded time.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u32,
    },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse().task) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> Result<()> {
    match task {
        Task::Test { fuzz_seconds } => test::run(fuzz_seconds),
        Task::CheckNoPanic => no_panic_check(),
        Task::Fuzz { seconds } => fuzz::run(seconds),
    }
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
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

fn no_panic_check() -> Result<()> {
    const TARGET: &str = "thumbv7em-none-eabihf";
    let package = "verifier-no-panic-check";
    cargo(&[
        "build",
        "-p",
        package,
        "--target",
        TARGET,
        "--profile",
        "firmware",
    ])?;
    let elf = root()
        .join("target")
        .join(TARGET)
        .join("firmware")
        .join(package);
    no_panic::check(&elf, &no_panic::llvm_objdump()?)
}
