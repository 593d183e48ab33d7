//! The embedded targets of the pinned toolchain, made available before the first firmware build.
//!
//! `rust-toolchain.toml` pins the release but cannot make cargo install a target: on a fresh
//! machine the thumb targets are simply missing, and a release may have no prebuilt standard
//! library for them at all. So every embedded build goes through [`TargetBuild::for_target`],
//! which looks in the toolchain's sysroot, adds a missing target with `rustup target add`, and,
//! when that is impossible, builds `core` and `compiler_builtins` from the `rust-src` component
//! with cargo's `-Zbuild-std` (allowed on a stable release by `RUSTC_BOOTSTRAP=1`, for the
//! embedded builds only: host builds, tests and build scripts keep the prebuilt std).
//! `FWSIGN_BUILD_STD=1` forces that fallback so CI keeps it working.
//!
//! The size-oriented benchmark builds always build `core` from source ([`configure_minimal_core`]):
//! with `panic = "immediate-abort"` a panic is a trap instruction, so no panic message or
//! formatting code is linked at all.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

use crate::root;

/// The environment switch that forces `core` to be built from source.
pub(crate) const FORCE_BUILD_STD: &str = "FWSIGN_BUILD_STD";

/// The cargo flags that build the embedded standard library from `rust-src`: `core`, and
/// `compiler_builtins` with its `mem` feature for `memcpy`, `memset` and friends.
const BUILD_STD_ARGS: &[&str] =
    &["-Zbuild-std=core,compiler_builtins", "-Zbuild-std-features=compiler-builtins-mem"];

/// How the standard library of one embedded target is provided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TargetBuild {
    /// The toolchain's prebuilt `rust-std` component.
    Prebuilt,
    /// `core` built from `rust-src` with `-Zbuild-std`.
    FromSource,
}

/// What was decided per target in this process, so each decision is made and reported once.
static DECIDED: Mutex<BTreeMap<String, TargetBuild>> = Mutex::new(BTreeMap::new());

impl TargetBuild {
    /// Makes `target` buildable (installing its standard library when missing) and says how.
    pub(crate) fn for_target(target: &str) -> Result<Self> {
        let mut decided = DECIDED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(build) = decided.get(target) {
            return Ok(*build);
        }
        let build = decide(target)?;
        decided.insert(target.to_owned(), build);
        Ok(build)
    }

    /// Adds the flags and environment this way of building needs to a `cargo build` or
    /// `cargo clippy` command for the target.
    pub(crate) fn configure(self, command: &mut Command) {
        if self == Self::FromSource {
            command.args(BUILD_STD_ARGS).env("RUSTC_BOOTSTRAP", "1");
        }
    }
}

/// Adds to a `cargo build` with `profile` the flags that build `core` from `rust-src` with
/// `panic = "immediate-abort"` (installing `rust-src` when missing). Replaces
/// [`TargetBuild::configure`] for that build.
pub(crate) fn configure_minimal_core(command: &mut Command, profile: &str) -> Result<()> {
    from_source()?;
    command
        .args(BUILD_STD_ARGS)
        .args(["-Zpanic-immediate-abort", "--config"])
        .arg(format!("profile.{profile}.panic=\"immediate-abort\""))
        .env("RUSTC_BOOTSTRAP", "1");
    Ok(())
}

fn decide(target: &str) -> Result<TargetBuild> {
    if std::env::var_os(FORCE_BUILD_STD).is_some_and(|value| value == "1") {
        println!("{target}: building core from rust-src ({FORCE_BUILD_STD}=1)");
        return from_source();
    }
    if has_std(target)? {
        return Ok(TargetBuild::Prebuilt);
    }
    println!("{target}: not installed in the toolchain; running `rustup target add {target}`");
    match rustup(&["target", "add", target]) {
        Ok(()) if has_std(target)? => Ok(TargetBuild::Prebuilt),
        Ok(()) => bail!("`rustup target add {target}` succeeded but the target is still missing"),
        Err(why) => {
            println!("{target}: no prebuilt standard library ({why}); building core from rust-src");
            from_source()
        }
    }
}

/// Chooses the source build, first making sure `rust-src` is there.
fn from_source() -> Result<TargetBuild> {
    if !sysroot()?.join("lib/rustlib/src/rust/library/core").is_dir() {
        println!("rust-src: not installed; running `rustup component add rust-src`");
        rustup(&["component", "add", "rust-src"]).context(
            "the fallback needs the toolchain's source: `rustup component add rust-src` failed",
        )?;
    }
    Ok(TargetBuild::FromSource)
}

/// Whether the active toolchain holds a prebuilt standard library for `target`.
fn has_std(target: &str) -> Result<bool> {
    Ok(sysroot()?.join("lib/rustlib").join(target).join("lib").is_dir())
}

/// The sysroot of the toolchain the workspace builds with.
fn sysroot() -> Result<PathBuf> {
    let output = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(root())
        .output()
        .context("cannot run rustc")?;
    if !output.status.success() {
        bail!("`rustc --print sysroot` failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
}

/// Runs `rustup` for the workspace's toolchain; the error is rustup's last line.
fn rustup(args: &[&str]) -> Result<()> {
    let output = Command::new("rustup")
        .args(args)
        .current_dir(root())
        .output()
        .context("rustup is not installed")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("failed");
        bail!("rustup {}: {}", args.join(" "), last.trim());
    }
    Ok(())
}
