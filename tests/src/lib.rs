//! Support for the end-to-end tests: finding and running the real peers (imgtool).
//!
//! A test that needs imgtool never skips itself: when imgtool is missing it fails with the
//! command that installs it.

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod tlog_go;
pub mod tsa;

/// The version of imgtool the compatibility contract is written against.
pub const IMGTOOL_VERSION: &str = "2.5.0";

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The imgtool executable: `$FWSIGN_IMGTOOL`, else the workspace's `.venv`, else `PATH`.
///
/// # Panics
/// When imgtool cannot be found, with the command that installs it.
pub fn imgtool_path() -> PathBuf {
    if let Some(path) = std::env::var_os("FWSIGN_IMGTOOL") {
        return PathBuf::from(path);
    }
    let venv = workspace_root().join(".venv/bin/imgtool");
    if venv.is_file() {
        return venv;
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths).map(|dir| dir.join("imgtool")).collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "imgtool {IMGTOOL_VERSION} not found (looked at $FWSIGN_IMGTOOL, .venv/bin/imgtool, PATH). \
             Install it with: python3 -m venv .venv && .venv/bin/pip install imgtool=={IMGTOOL_VERSION}"
        )
    })
}

/// Runs imgtool with `args`, returning its standard output.
///
/// # Panics
/// When imgtool is missing or exits with an error (its stderr is in the message).
pub fn imgtool<I, S>(args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = Command::new(imgtool_path())
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run imgtool: {e}"));
    assert!(
        output.status.success(),
        "imgtool {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Deterministic pseudo-random bytes, so a failing case can be reproduced.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// The apt packages that provide the HSM and timestamp tools the tests drive.
pub const HSM_TOOLS_INSTALL: &str = "apt-get install softhsm2 opensc openssl";

/// Finds `program` on `PATH`.
///
/// # Panics
/// When it is missing, naming the package to install (`install`), so a test that needs it
/// fails instead of silently skipping.
pub fn require_program(program: &str, install: &str) -> PathBuf {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} not found on PATH: install it with `{install}`"))
}

/// The `openssl` command.
pub fn openssl() -> PathBuf {
    require_program("openssl", "apt-get install openssl")
}

/// The `pkcs11-tool` command (OpenSC).
pub fn pkcs11_tool() -> PathBuf {
    require_program("pkcs11-tool", "apt-get install opensc")
}

/// The SoftHSM2 PKCS#11 module: `$FWSIGN_SOFTHSM_MODULE`, else the usual install paths.
///
/// # Panics
/// When it is missing, with the package to install.
pub fn softhsm_module() -> PathBuf {
    if let Some(path) = std::env::var_os("FWSIGN_SOFTHSM_MODULE") {
        return PathBuf::from(path);
    }
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.is_file())
    .unwrap_or_else(|| {
        panic!(
            "the SoftHSM2 module libsofthsm2.so was not found (set FWSIGN_SOFTHSM_MODULE): install it with `apt-get install softhsm2`"
        )
    })
}

/// A fresh SoftHSM2 token in a temporary directory of its own.
///
/// Commands run through [`SoftHsmToken::command`] see it through `SOFTHSM2_CONF`, so tests
/// running side by side never share a token.
pub struct SoftHsmToken {
    dir: tempfile::TempDir,
    /// The token label.
    pub label: String,
    /// The user PIN.
    pub pin: String,
    /// The PKCS#11 module.
    pub module: PathBuf,
}

impl SoftHsmToken {
    /// Creates the configuration and initialises a token with `label` and user PIN `pin`.
    ///
    /// # Panics
    /// When SoftHSM2 is missing or the token cannot be initialised.
    pub fn new(label: &str, pin: &str) -> Self {
        let module = softhsm_module();
        let util = require_program("softhsm2-util", "apt-get install softhsm2");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap_or_else(|e| panic!("{}: {e}", tokens.display()));
        let config = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        );
        std::fs::write(dir.path().join("softhsm2.conf"), config)
            .unwrap_or_else(|e| panic!("softhsm2.conf: {e}"));
        let token = Self { dir, label: label.to_owned(), pin: pin.to_owned(), module };
        let mut init = token.command(&util);
        init.args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", "12345678", "--pin", pin]);
        run_checked(&mut init);
        token
    }

    /// The `SOFTHSM2_CONF` file.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// The token's directory (a place for test files too).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A command that sees this token.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env("SOFTHSM2_CONF", self.config());
        command
    }

    /// Runs `pkcs11-tool` against the token, logged in; it must succeed.
    pub fn pkcs11_tool(&self, args: &[&str]) -> Vec<u8> {
        let mut command = self.command(pkcs11_tool());
        command
            .arg("--module")
            .arg(&self.module)
            .args(["--token-label", &self.label, "--login", "--pin", &self.pin])
            .args(args);
        run_checked(&mut command)
    }
}

/// Runs a command that must succeed, returning its stdout.
///
/// # Panics
/// When it cannot start or fails, with its output.
pub fn run_checked(command: &mut Command) -> Vec<u8> {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}
