//! Support for the end-to-end tests: finding and running the real peers (imgtool).
//!
//! A test that needs imgtool never skips itself: when imgtool is missing it fails with the
//! command that installs it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The version of imgtool the compatibility contract is written against.
pub const IMGTOOL_VERSION: &str = "2.5.0";

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
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
            std::env::split_paths(&paths)
                .map(|dir| dir.join("imgtool"))
                .collect::<Vec<_>>()
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
