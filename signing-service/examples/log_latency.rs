//! What logging adds to a signature: the time of the audit append alone against the audit
//! append with one log leaf (tree hashes, entry, signed checkpoint, proof) in the same SQLite
//! transaction, per signature, on a log already holding entries.
//!
//! `cargo run --release -p signing-service --example log_latency [ENTRIES]`

use std::time::{Duration, Instant};

use fwsign_keys::key_ref::KeyRef;
use fwsign_keys::keys::{Algorithm, PrivateKey};
use fwsign_service::audit::{AuditEntry, Decision};
use fwsign_service::config::LogConfig;
use fwsign_service::log::{LogSigner, sign_checkpoint};
use fwsign_service::storage::Open as _;
use fwsign_service::storage::sqlite::SqliteStorage;
use fwsign_service::storage::{LogAppend, Storage as _};

/// Appends timed per kind, after the warm-up.
const TIMED: u32 = 500;

fn audit_entry() -> AuditEntry {
    AuditEntry {
        time: 1_796_212_800,
        identity: serde_json::json!({"kind": "api-token", "name": "builder"}),
        source: "127.0.0.1:40000".into(),
        key: Some("dev".into()),
        images: Vec::new(),
        decision: Decision::Signed,
        reason: "ci-signs".into(),
        device: None,
    }
}

fn log_entry(index: u64) -> String {
    let digest = format!("{index:064x}");
    format!(
        "fwsign-entry/v1\nimage-digest {digest}\nkey-hash {}\nkey-name dev\nversion 1.2.3+0\n\
         security-counter 4\nissuer api-token\nsubject builder\nrepository -\nref -\ncommit -\n\
         time 2026-12-02T12:00:00Z\n",
        "ab".repeat(32)
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prefill: u64 = std::env::args().nth(1).map_or(Ok(1000), |n| n.parse())?;
    let dir = tempfile::tempdir()?;
    let key = PrivateKey::generate(Algorithm::Ed25519)?;
    std::fs::write(dir.path().join("log.pem"), key.to_pkcs8_pem(None)?)?;
    let config = LogConfig {
        origin: "example.com/latency".into(),
        key: KeyRef::File(dir.path().join("log.pem")),
    };
    let signer = LogSigner::open(&config)?;
    let url = format!("sqlite:{}", dir.path().join("service.db").display());
    let storage = SqliteStorage::open(&url).await?;
    let empty = sign_checkpoint(&signer, 0, fwsign_tlog::tree::empty_tree_hash())?;
    storage.insert_log_checkpoint(0, &empty).await?;
    let entry = audit_entry();
    for index in 0..prefill {
        let entries = [log_entry(index)];
        storage
            .append_audit_logged(&entry, &LogAppend { entries: &entries, signer: &signer })
            .await?;
    }
    let mut audit_only = Duration::ZERO;
    let mut logged = Duration::ZERO;
    for index in prefill..prefill + u64::from(TIMED) {
        let start = Instant::now();
        storage.append_audit(&entry).await?;
        audit_only += start.elapsed();
        let entries = [log_entry(index)];
        let start = Instant::now();
        storage
            .append_audit_logged(&entry, &LogAppend { entries: &entries, signer: &signer })
            .await?;
        logged += start.elapsed();
    }
    let per = |total: Duration| total.as_secs_f64() * 1e6 / f64::from(TIMED);
    println!("log of {prefill}..{} entries, {TIMED} appends each:", prefill + u64::from(TIMED));
    println!("  audit record only:        {:8.1} µs", per(audit_only));
    println!("  audit record + log leaf:  {:8.1} µs", per(logged));
    println!("  added by logging:         {:8.1} µs", per(logged) - per(audit_only));
    Ok(())
}
