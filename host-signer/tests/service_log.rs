//! The signing service's transparency log end to end: `fwsign serve` with a `[log]` logs every
//! signature; `fwsign sign --server` puts the returned proof into the image, which then passes
//! `fwsign verify --log-key` (with the key `fwsign log verifier-key --config` prints) and
//! `imgtool verify`; `fwsign log monitor` reads the log's tiles over HTTP, lists new entries,
//! and catches, from the attacker's side, a log forked or truncated under the same key.
//!
//! Needs imgtool; a missing tool fails with what to install.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Served, fwsign, imgtool, pseudo_random_bytes, text};

const ORIGIN: &str = "example.com/fw-service-log";

/// Starts `fwsign serve --config CONFIG` in `dir` on a free loopback port.
fn serve(dir: &Path, config: &str) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fwsign"));
    command.current_dir(dir);
    common::serve(command, config)
}

/// A service directory: image key `dev`, log key, policy, `service.toml` and `other.toml`
/// (the same keys over another database: a second log under the same log key).
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fwsign(d, &["keygen", "-k", "dev.pem", "-t", "ed25519"]);
    fwsign(d, &["keygen", "-k", "log.pem", "-t", "ed25519"]);
    std::fs::write(
        d.join("policy.cedar"),
        "@id(\"ci-signs\")\npermit (principal in Group::\"ci\", action == Action::\"sign\", resource);\n",
    )
    .unwrap();
    for (config, database) in [("service.toml", "service.db"), ("other.toml", "other.db")] {
        std::fs::write(
            d.join(config),
            format!(
                "listen = \"127.0.0.1:8443\"\ndatabase = \"sqlite:{database}\"\npolicy = \"policy.cedar\"\n\
                 [keys.dev]\nkey = \"dev.pem\"\n[groups.ci]\nmembers = [\"builder\"]\n\
                 [log]\norigin = \"{ORIGIN}\"\nkey = \"log.pem\"\n"
            ),
        )
        .unwrap();
        let token = fwsign(
            d,
            &["token", "create", "--config", config, "--name", "builder", "--role", "submitter"],
        );
        let name = config.replace(".toml", ".token");
        std::fs::write(d.join(name), String::from_utf8(token.stdout).unwrap().trim()).unwrap();
    }
    let vkey = fwsign(d, &["log", "verifier-key", "--config", "service.toml"]);
    std::fs::write(d.join("log.vkey"), vkey.stdout).unwrap();
    dir
}

/// Signs a fresh image `seed` through `served` into `output`.
fn sign_remotely(dir: &Path, served: &Served, token_file: &str, seed: u16, output: &str) {
    std::fs::write(
        dir.join("app.bin"),
        pseudo_random_bytes(2000 + usize::from(seed), u64::from(seed)),
    )
    .unwrap();
    let token = std::fs::read_to_string(dir.join(token_file)).unwrap();
    let signed = Command::new(env!("CARGO_BIN_EXE_fwsign"))
        .current_dir(dir)
        .env("FWSIGN_API_TOKEN", token)
        .args(["sign", "--server", &served.url, "--api-token-env", "FWSIGN_API_TOKEN"])
        .args(["-k", "dev", "-v", "1.2.3", "-s", "4", "-H", "0x200", "--pad-header"])
        .args(["-S", "0x10000", "app.bin", output])
        .output()
        .unwrap();
    assert!(signed.status.success(), "{}", text(&signed));
}

fn monitor(dir: &Path, served: &Served, extra: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fwsign"));
    command.current_dir(dir).args(["log", "monitor", "--server", &served.url]);
    command.args(["--log-key", "log.vkey", "--state", "monitor.state"]).args(extra);
    command.output().unwrap()
}

#[test]
fn service_signatures_are_logged_proven_in_the_image_and_monitored() {
    let dir = setup();
    let d = dir.path();
    let served = serve(d, "service.toml");
    sign_remotely(d, &served, "service.token", 1, "first.bin");
    let verified = fwsign(d, &["verify", "-k", "dev.pem", "--log-key", "log.vkey", "first.bin"]);
    assert!(
        text(&verified).contains(&format!("logged as entry 0 of {ORIGIN} (tree size 1)")),
        "{}",
        text(&verified)
    );
    imgtool(d, &["verify", "-k", "dev.pem", "first.bin"]);

    let first = monitor(d, &served, &[]);
    assert!(first.status.success(), "{}", text(&first));
    let listed = String::from_utf8(first.stdout).unwrap();
    assert!(listed.starts_with("0 image-digest="), "{listed}");
    assert!(listed.contains("key-name=dev") && listed.contains("subject=builder"), "{listed}");

    sign_remotely(d, &served, "service.token", 2, "second.bin");
    sign_remotely(d, &served, "service.token", 3, "third.bin");
    let third = fwsign(d, &["verify", "-k", "dev.pem", "--log-key", "log.vkey", "third.bin"]);
    assert!(text(&third).contains("logged as entry 2"), "{}", text(&third));
    let next = monitor(d, &served, &["--json"]);
    assert!(next.status.success(), "{}", text(&next));
    let lines: Vec<serde_json::Value> = String::from_utf8(next.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "only the entries added since the last run");
    assert_eq!(lines[0]["index"], 1);
    assert_eq!(lines[1]["security-counter"], "4");
    let quiet = monitor(d, &served, &[]);
    assert!(quiet.status.success() && quiet.stdout.is_empty(), "{}", text(&quiet));
    drop(served);

    // The same log key signs a second log over another database: its first entries differ.
    let state = std::fs::read(d.join("monitor.state")).unwrap();
    let other = serve(d, "other.toml");
    sign_remotely(d, &other, "other.token", 9, "forked.bin");
    let truncated = monitor(d, &other, &[]);
    assert_eq!(truncated.status.code(), Some(1), "{}", text(&truncated));
    assert!(text(&truncated).contains("ALERT") && text(&truncated).contains("truncated"));
    for seed in 10..13 {
        sign_remotely(d, &other, "other.token", seed, "forked.bin");
    }
    let forked = monitor(d, &other, &[]);
    assert_eq!(forked.status.code(), Some(1), "{}", text(&forked));
    assert!(text(&forked).contains("consistency proof from size 3 to size 4"), "{}", text(&forked));
    assert_eq!(std::fs::read(d.join("monitor.state")).unwrap(), state, "the state is kept");
    // The forked log's proofs are well-formed and signed by the log key: only the monitor sees.
    fwsign(d, &["verify", "-k", "dev.pem", "--log-key", "log.vkey", "forked.bin"]);
}
