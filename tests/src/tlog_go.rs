//! Go's `golang.org/x/mod/sumdb/tlog` and `sumdb/note`, behind the small program in
//! `tests/tlog-go`: the independent implementation the transparency log is checked against.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The Debian packages that provide Go 1.19 and `golang.org/x/mod`.
pub const GO_INSTALL: &str = "apt-get install golang-1.19-go golang-golang-x-mod-dev";

/// Where Debian's golang-golang-x-mod-dev puts the Go sources (GOPATH mode).
const GOCODE: &str = "/usr/share/gocode";

/// The `go` command: `$FWSIGN_GO`, else Debian's Go 1.19, else `go` on `PATH`.
fn go() -> PathBuf {
    if let Some(path) = std::env::var_os("FWSIGN_GO") {
        return PathBuf::from(path);
    }
    let debian = Path::new("/usr/lib/go-1.19/bin/go");
    if debian.is_file() {
        return debian.to_path_buf();
    }
    crate::require_program("go", GO_INSTALL)
}

/// The built `tlog-go` program, built once per test process.
///
/// # Panics
/// When Go or `golang.org/x/mod` is missing (with the install command), or the build fails.
pub fn tlog_go() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let sumdb = Path::new(GOCODE).join("src/golang.org/x/mod/sumdb/tlog");
        assert!(sumdb.is_dir(), "{} not found: install it with `{GO_INSTALL}`", sumdb.display());
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::workspace_root().join("target"));
        let dir = target.join("tlog-go");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        // Built under a name of its own, then renamed: test binaries running side by side
        // never see a half-written program.
        let building = dir.join(format!("tlog-go.{}", std::process::id()));
        let binary = dir.join("tlog-go");
        let source = crate::workspace_root().join("tests/tlog-go/main.go");
        let output = Command::new(go())
            .env("GOPATH", format!("{}:{GOCODE}", dir.join("gopath").display()))
            .env("GO111MODULE", "off")
            .env("GOCACHE", dir.join("cache"))
            .env("GOFLAGS", "")
            .arg("build")
            .arg("-o")
            .arg(&building)
            .arg(&source)
            .output()
            .unwrap_or_else(|e| panic!("cannot run go ({e}): install it with `{GO_INSTALL}`"));
        assert!(
            output.status.success(),
            "building {} failed: {}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::rename(&building, &binary).unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
        binary
    })
}

/// Runs `tlog-go ARGS` with `input` on standard input; its output, or its error text.
pub fn run(args: &[&str], input: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new(tlog_go())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run tlog-go: {e}"))?;
    child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(input))
        .transpose()
        .map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}
