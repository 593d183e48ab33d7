//! `cargo xtask`: the project's tasks, runnable on a fresh machine.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod bench;
mod cmd;
mod device_log;
mod elf;
mod firmware;
mod fuzz;
mod kit;
mod no_panic;
mod powerfail;
mod qemu;
mod scenarios;
mod service;
mod service_bench;
mod service_faults;
mod sha256_check;
mod sign;
mod size_boot;
mod test;
mod toolchain;
mod tools;

#[derive(Parser)]
#[command(about = "fwsign project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build everything and play the OTA story on QEMU mps2-an386 with decoded device logs.
    Demo(cmd::demo::Cmd),
    /// Run every QEMU scenario (all boards); non-zero exit if any fails.
    QemuTest(cmd::qemu_test::Cmd),
    /// Build the demo application as an unsigned binary, ready to sign.
    App(cmd::app::Cmd),
    /// Check on QEMU whether the device accepts an update image (exit 0) or refuses it (exit 1).
    Ota(cmd::ota::Cmd),
    /// Verify a signed image, then program it and the bootloader onto a board through a debug probe.
    Flash(cmd::flash::Cmd),
    /// Build the bootloader and signed demo application a factory line provisions (QEMU board).
    FactoryFirmware(cmd::factory::FirmwareCmd),
    /// Provision N virtual QEMU devices with `fwsign factory provision`: devices per hour and
    /// time per step.
    FactoryBench(cmd::factory::BenchCmd),
    /// Create the development keys (target/dev-keys) if they are missing.
    Keys,
    /// Run every test and check, as CI does.
    Test {
        /// How long the bounded fuzzing session runs, per target.
        #[arg(long, default_value_t = 30)]
        fuzz_seconds: u32,
    },
    /// Measure instructions on QEMU, flash and RAM, and host signing speed against imgtool.
    Bench {
        /// Also write the figures as a flat JSON object to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Load the signing service over loopback with concurrent clients (SQLite, PostgreSQL with
    /// one and two instances; file and SoftHSM2 keys): signatures/s, p50/p99 latency and CPU per signature against the
    /// in-process floor.
    ServiceBench {
        /// Concurrent clients per point.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 32, 128])]
        clients: Vec<usize>,
        /// Seconds per point.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Also write the figures as a flat JSON object to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Draw signatures/s and p99 latency against clients into this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
    /// Prove the verifier, and the bootloader built with a log key, link no panic path of our
    /// own in a thumbv7em release firmware.
    CheckNoPanic,
    /// Boot the size-oriented Ed25519 bootloader on QEMU: a signed image starts, altered and
    /// malleated ones do not.
    CheckSizeBuild,
    /// Check the shipped SHA-256 block functions against `sha2` on QEMU (Cortex-M3, M4, M33;
    /// rolled and unrolled).
    CheckSha256,
    /// Replay the fuzz seeds and fuzz every target for a bounded time.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u32,
    },
    /// The signing service under faults (kill -9 under load, a full disk, hostile
    /// connections, kill -9 of one of two PostgreSQL instances, PostgreSQL restarted, the HSM
    /// token gone): every signature a client received must be in the audit trail and the
    /// transparency log afterwards; prints `N acknowledged, M lost` per scenario.
    ServiceFaults {
        /// Fewer kills and shorter load (the `cargo xtask test` step).
        #[arg(long)]
        quick: bool,
        /// Replay the kill moments of an earlier run (its printed seed).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Cut power, tear writes and interrupt erases at every flash operation of every update
    /// flow on simulated flash; ends with `N interruption points, F failures`.
    Powerfail {
        /// The long matrix: eight damage variants per operation and 3000 random samples per
        /// cell (about 15 minutes on two cores).
        #[arg(long)]
        long: bool,
        /// Instead, kill the real firmware on QEMU mid-swap and check the next power-on
        /// recovers.
        #[arg(long, conflicts_with = "long")]
        qemu: bool,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::Demo(cmd) => cmd.run().map(|()| true),
        Task::QemuTest(cmd) => cmd.run().map(|()| true),
        Task::App(cmd) => cmd.run().map(|()| true),
        Task::Ota(cmd) => cmd.run(),
        Task::Flash(cmd) => cmd.run().map(|()| true),
        Task::FactoryFirmware(cmd) => cmd.run().map(|()| true),
        Task::FactoryBench(cmd) => cmd.run().map(|()| true),
        Task::Keys => sign::fwsign().and_then(|fwsign| sign::dev_keys(&fwsign)).map(|_| true),
        Task::Test { fuzz_seconds } => test::run(fuzz_seconds).map(|()| true),
        Task::Bench { json } => bench::run(json.as_deref()).map(|()| true),
        Task::ServiceBench { clients, seconds, json, plot } => {
            let options = service_bench::Options {
                clients: &clients,
                seconds,
                json: json.as_deref(),
                plot: plot.as_deref(),
            };
            service_bench::run(&options).map(|()| true)
        }
        Task::CheckNoPanic => no_panic_check().map(|()| true),
        Task::CheckSizeBuild => size_boot::check().map(|()| true),
        Task::CheckSha256 => sha256_check::check().map(|()| true),
        Task::Fuzz { seconds } => fuzz::run(seconds).map(|()| true),
        Task::ServiceFaults { quick, seed } => service_faults::run(quick, seed),
        Task::Powerfail { long, qemu: false } => powerfail::run(long),
        Task::Powerfail { qemu: true, .. } => powerfail::run_qemu(false).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set, else `target/` in the workspace.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, so a failure
/// never leaves a half-written file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&temp, bytes).with_context(|| format!("cannot write {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs `cargo` with `args` in the workspace root, failing if it fails.
fn cargo(args: &[&str]) -> Result<()> {
    run_cargo(cargo_command(args), args)
}

/// Runs `cargo` with `args` for the embedded `target`, whose standard library is made available
/// first; `--target` and any flags that needs go before a `--` in `args`.
fn cargo_for_target(target: &str, args: &[&str]) -> Result<()> {
    let build = toolchain::TargetBuild::for_target(target)?;
    let (own, tool) = args.split_at(args.iter().position(|a| *a == "--").unwrap_or(args.len()));
    let mut command = cargo_command(own);
    command.args(["--target", target]);
    build.configure(&mut command);
    command.args(tool);
    run_cargo(command, args)
}

/// A `cargo` command with `args`, run in the workspace root.
fn cargo_command(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(args).current_dir(root());
    command
}

fn run_cargo(mut command: Command, args: &[&str]) -> Result<()> {
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}

fn no_panic_check() -> Result<()> {
    const TARGET: &str = "thumbv7em-none-eabihf";
    let package = "verifier-no-panic-check";
    let objdump = no_panic::llvm_objdump()?;
    for ed25519 in ["ed25519-compact", "salty"] {
        println!("no-panic check with Ed25519 through {ed25519}");
        let mut args = vec!["build", "-p", package, "--profile", "firmware"];
        if ed25519 == "salty" {
            args.extend(["--features", "verifier-core/salty"]);
        }
        cargo_for_target(TARGET, &args)?;
        let elf = target_dir().join(TARGET).join("firmware").join(package);
        no_panic::check(&elf, &objdump)?;
    }
    no_panic::check(&no_panic::logged_bootloader()?, &objdump)
}
