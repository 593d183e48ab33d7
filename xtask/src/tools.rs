//! The external programs the tests and demos run, found or installed on demand.
//!
//! A fresh machine gets what it lacks: Debian packages through apt when running as root, imgtool
//! in the workspace's `.venv`, cargo-fuzz through `cargo install`. Where that is impossible the
//! error names the one command that installs the missing piece.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::root;

/// The imgtool release the compatibility tests are written against.
const IMGTOOL_VERSION: &str = "2.5.0";

/// A program from a Debian package.
pub(crate) struct AptTool {
    /// The program looked for on `PATH`, or an absolute path of a file the package installs.
    pub(crate) program: &'static str,
    /// The package that provides it.
    pub(crate) package: &'static str,
}

/// Everything the full test suite runs.
pub(crate) const TEST_TOOLS: &[AptTool] = &[
    AptTool { program: "qemu-system-arm", package: "qemu-system-arm" },
    AptTool { program: "openssl", package: "openssl" },
    AptTool { program: "softhsm2-util", package: "softhsm2" },
    AptTool { program: "pkcs11-tool", package: "opensc" },
    AptTool { program: "/usr/lib/postgresql/15/bin/initdb", package: "postgresql" },
    AptTool { program: "/usr/lib/go-1.19/bin/go", package: "golang-1.19-go" },
    AptTool {
        program: "/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog/tlog.go",
        package: "golang-golang-x-mod-dev",
    },
];

/// Makes sure every tool in `tools` is on `PATH`, installing the missing ones with apt as root.
pub(crate) fn ensure_apt(tools: &[AptTool]) -> Result<()> {
    let missing: Vec<&str> =
        tools.iter().filter(|t| !on_path(t.program)).map(|t| t.package).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!(
        "apt-get update && apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() || !on_path("apt-get") {
        bail!("missing Debian packages {}: run `sudo sh -c '{install}'`", missing.join(", "));
    }
    println!("installing {}", missing.join(", "));
    let status = Command::new("sh")
        .args(["-c", &install])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!("`{install}` failed");
    }
    Ok(())
}

/// Makes sure imgtool is available to the tests (`$FWSIGN_IMGTOOL`, `.venv` or `PATH`),
/// creating `.venv` with imgtool in it when none is.
pub(crate) fn ensure_imgtool() -> Result<()> {
    let venv = root().join(".venv");
    if std::env::var_os("FWSIGN_IMGTOOL").is_some()
        || venv.join("bin/imgtool").is_file()
        || on_path("imgtool")
    {
        return Ok(());
    }
    println!("installing imgtool {IMGTOOL_VERSION} into {}", venv.display());
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        .context("cannot create the venv: install python3-venv")?;
    let spec = format!("imgtool=={IMGTOOL_VERSION}");
    run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", &spec]))
}

/// Makes sure `cargo fuzz` works, installing cargo-fuzz when it is missing.
pub(crate) fn ensure_cargo_fuzz() -> Result<()> {
    let present = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if present {
        return Ok(());
    }
    println!("installing cargo-fuzz");
    run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
}

/// Whether `program` is an executable file in a `PATH` directory.
pub(crate) fn on_path(program: &str) -> bool {
    find_on_path(program).is_some()
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|path| path.is_file())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

fn run(command: &mut Command) -> Result<()> {
    let status = command.status().with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed");
    }
    Ok(())
}
