//! `cargo xtask service-faults`: the signing service under faults, checked for lost records.
//!
//! A signature is *acknowledged* when a client received it (HTTP 200 with signatures). After
//! each scenario every acknowledged signature must be in the audit trail (`GET /v1/audit`,
//! same record, same signature bytes) and in the transparency log (read and checked from its
//! tiles by `fwsign log monitor`), the log's indices must be unique and gapless, and the log's
//! checkpoint must be consistent with every checkpoint handed out before the fault (a
//! consistency proof per checkpoint, again by `fwsign log monitor`). Each scenario prints
//! `N acknowledged, M lost`; the command fails if anything is lost or inconsistent.
//!
//! - `kill -9`: client threads sign while the service is killed with SIGKILL at seeded random
//!   moments (the seed is printed; `--seed` replays it), restarted, several times.
//! - disk full: the database on a small tmpfs, filled up: clients get 503 with a reason and
//!   `Retry-After`; freeing the space lets the service sign again without a restart.
//! - hostile connections: a slowloris client (cut off by the header-read timeout), a client
//!   that disconnects mid-body, a body over `body_limit` (413): others are served meanwhile, and
//!   the sockets the service holds come back to what they were.
//! - PostgreSQL kill -9: two instances on one database, the clients spread over both; one
//!   instance at a time (in turn) is killed with SIGKILL at seeded random moments and
//!   restarted. The log's sequencing is serialised in the database, so its indices stay unique
//!   and gapless across instances.
//! - PostgreSQL restart: the database server restarted (fast shutdown) under load; clients get
//!   503 with a reason and `Retry-After` meanwhile and retry, and the service signs again by
//!   itself, without being restarted.
//! - HSM failure: a service whose key is on a SoftHSM2 token; the token's directory is moved
//!   away under load: clients get 503 with a reason and nothing is signed without a record;
//!   moved back, the service signs again by itself.
//!
//! The service under test is the real `fwsign serve`, on SQLite or on a throwaway PostgreSQL
//! cluster (`test-postgres`, one database per scenario). PostgreSQL and SoftHSM2 are
//! required: without them the run fails, saying what to install.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use serde_json::Value;
use test_postgres::Cluster;

use crate::service::{LocalService, ServiceLog, ServiceSpec};
use crate::service_bench::softhsm_keys;
use crate::sign::dev_keys;

/// The log's origin in these scenarios.
const ORIGIN: &str = "faults.fwsign.example/log";
/// How long one exchange may take before the client gives up.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a service may take to sign again once a fault clears.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every scenario (`quick`: fewer kills, shorter load); `Ok(false)` if any lost a record
/// or found the log inconsistent.
pub(crate) fn run(quick: bool, seed: Option<u64>) -> Result<bool> {
    let fwsign = crate::sign::fwsign()?;
    let keys = dev_keys(&fwsign)?;
    let work = crate::target_dir().join("service-faults");
    let log_key = work.join("log.pem");
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    if !log_key.exists() {
        crate::sign::run(
            Command::new(&fwsign).arg("keygen").arg("-k").arg(&log_key).args(["-t", "ed25519"]),
        )?;
    }
    let log = ServiceLog { origin: ORIGIN, key: &log_key };
    let bench = Bench { fwsign: &fwsign, key: &keys.ed25519, work: &work, log: &log };
    let seed = seed.unwrap_or_else(seed_from_clock);
    let cluster = Cluster::start().context("the PostgreSQL cluster for the postgres scenarios")?;
    let mut clean = true;
    clean &= bench.report("kill -9", kill_nine(&bench, quick, seed))?;
    clean &= bench.report("disk full", disk_full(&bench))?;
    clean &= bench.report("hostile connections", hostile_connections(&bench))?;
    clean &= bench.report("postgres kill -9", postgres_kill_nine(&bench, &cluster, quick, seed))?;
    clean &= bench.report("postgres restart", postgres_restart(&bench, &cluster, quick))?;
    clean &= bench.report("hsm failure", hsm_failure(&bench, quick))?;
    Ok(clean)
}

/// The `cargo xtask test` step: the quick run, failing if anything was lost.
pub(crate) fn check() -> Result<()> {
    if !run(true, None)? {
        bail!("the signing service lost acknowledged signatures under faults (listed above)");
    }
    Ok(())
}

/// What every scenario starts its service with.
struct Bench<'a> {
    fwsign: &'a Path,
    key: &'a Path,
    work: &'a Path,
    log: &'a ServiceLog<'a>,
}

impl Bench<'_> {
    /// A fresh service in `dir` on SQLite with the development key file.
    fn start(&self, dir: &Path, settings: &str) -> Result<LocalService> {
        self.start_on(dir, "sqlite:service.db", settings)
    }

    /// A fresh service in `dir` on `database` with the development key file.
    fn start_on(&self, dir: &Path, database: &str, settings: &str) -> Result<LocalService> {
        let key = self.key.display().to_string();
        let spec = ServiceSpec { key: &key, database, log: Some(self.log), env: &[], settings };
        LocalService::start_with(self.fwsign, dir, &spec)
    }

    /// Prints the scenario's line; whether it lost nothing.
    fn report(&self, name: &str, outcome: Result<Tally>) -> Result<bool> {
        let tally = outcome.with_context(|| format!("scenario {name}"))?;
        println!("{name}: {} acknowledged, {} lost", tally.acknowledged, tally.lost);
        Ok(tally.lost == 0)
    }
}

/// A scenario's outcome.
struct Tally {
    acknowledged: usize,
    lost: usize,
}

/// A signature a client received.
#[derive(Clone)]
struct Acknowledged {
    audit_seq: u64,
    digest: String,
    /// The signature, hex (as the audit trail holds it).
    signature: String,
    /// The log index the proof names.
    index: u64,
    /// The checkpoint the proof is against.
    checkpoint: String,
}

/// Seeds the kill moments from the clock when no `--seed` is given.
fn seed_from_clock() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()) | 1)
}

/// xorshift64: reproducible kill moments from the printed seed.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn kill_nine(bench: &Bench<'_>, quick: bool, seed: u64) -> Result<Tally> {
    println!("kill -9: seed {seed} (replay with --seed {seed})");
    let (rounds, clients) = if quick { (3, 4) } else { (10, 8) };
    let mut service = [bench.start(&bench.work.join("kill-nine"), "")?];
    let auditor = service[0].create_token("fault-auditor", "auditor")?;
    let acknowledged = kill_under_load("kill -9", &mut service, rounds, clients, seed)?;
    verify_nothing_lost(bench, &service[0], &auditor, &acknowledged)
}

/// Two instances on one PostgreSQL database, one of them killed in turn under load.
fn postgres_kill_nine(
    bench: &Bench<'_>,
    cluster: &Cluster,
    quick: bool,
    seed: u64,
) -> Result<Tally> {
    println!("postgres kill -9: seed {seed} (replay with --seed {seed})");
    let (rounds, clients) = if quick { (2, 2) } else { (10, 8) };
    let database = cluster.create_database("kill_nine").context("the kill -9 database")?;
    let dir = bench.work.join("postgres-kill-nine");
    let mut instances = [
        bench.start_on(&dir.join("instance-0"), &database, "")?,
        bench.start_on(&dir.join("instance-1"), &database, "")?,
    ];
    let auditor = instances[0].create_token("fault-auditor", "auditor")?;
    let acknowledged = kill_under_load("postgres kill -9", &mut instances, rounds, clients, seed)?;
    verify_nothing_lost(bench, &instances[0], &auditor, &acknowledged)
}

/// `rounds` times: `clients` threads sign, spread over `instances`, until one instance (each
/// in turn) is killed with SIGKILL at a seeded random moment; it is restarted. The signatures
/// acknowledged.
fn kill_under_load(
    name: &str,
    instances: &mut [LocalService],
    rounds: usize,
    clients: usize,
    seed: u64,
) -> Result<Vec<Acknowledged>> {
    let mut random = seed.max(1);
    let mut acknowledged = Vec::new();
    let sequence = AtomicU32::new(1);
    for round in 0..rounds {
        let kill_after = Duration::from_millis(200 + next_random(&mut random) % 800);
        let victim = round % instances.len();
        let targets: Vec<(String, String)> =
            instances.iter().map(|s| (s.url().to_owned(), s.token().to_owned())).collect();
        let stop = AtomicBool::new(false);
        let refused = Mutex::new(Vec::new());
        let signed = thread::scope(|scope| {
            let workers: Vec<_> = (0..clients)
                .map(|n| {
                    let (url, token) = &targets[n % targets.len()];
                    let load = Load { stop: &stop, sequence: &sequence, refused: &refused };
                    scope.spawn(move || sign_until(url, token, &load))
                })
                .collect();
            thread::sleep(kill_after);
            let killed = instances[victim].kill();
            stop.store(true, Ordering::SeqCst);
            let signed: Vec<Acknowledged> =
                workers.into_iter().filter_map(|w| w.join().ok()).flatten().collect();
            killed.map(|()| signed)
        })?;
        println!(
            "{name}: round {}: instance {victim} killed after {} ms, {} signatures acknowledged",
            round + 1,
            kill_after.as_millis(),
            signed.len()
        );
        acknowledged.extend(signed);
        instances[victim].restart()?;
    }
    Ok(acknowledged)
}

/// The PostgreSQL server restarted under load: refusals are 503 with a reason, and the
/// service signs again by itself.
fn postgres_restart(bench: &Bench<'_>, cluster: &Cluster, quick: bool) -> Result<Tally> {
    let (clients, after_restart) = if quick { (2, 1) } else { (8, 5) };
    let database = cluster.create_database("restart").context("the restart database")?;
    let service = bench.start_on(&bench.work.join("postgres-restart"), &database, "")?;
    let auditor = service.create_token("fault-auditor", "auditor")?;
    let (mut acknowledged, refused, restart) =
        fault_under_load(&service, clients, Duration::from_secs(after_restart), || {
            let started = Instant::now();
            cluster.restart().context("restarting PostgreSQL")?;
            Ok(started.elapsed())
        })?;
    println!(
        "postgres restart: took {} ms; {} signatures acknowledged, {} refused meanwhile",
        restart.as_millis(),
        acknowledged.len(),
        refused.len()
    );
    for reply in &refused {
        ensure_unavailable("a PostgreSQL restart", reply)?;
    }
    let recovery = sign_again(&service, &mut acknowledged, 3_000_000)?;
    println!("postgres restart: signing again, the first try {} ms after", recovery.as_millis());
    verify_nothing_lost(bench, &service, &auditor, &acknowledged)
}

/// A SoftHSM2 token gone under load and back: 503 meanwhile, nothing signed without a
/// record, and signing again by itself.
fn hsm_failure(bench: &Bench<'_>, quick: bool) -> Result<Tally> {
    let clients = if quick { 2 } else { 8 };
    let keys = softhsm_keys(bench.fwsign)?;
    let token = keys.token.as_ref().context("a SoftHSM2 key without its token")?;
    let (tokens, away) = (token.dir().join("tokens"), token.dir().join("tokens.away"));
    let env = keys.env_refs();
    let spec = ServiceSpec {
        key: &keys.key,
        database: "sqlite:service.db",
        log: Some(bench.log),
        env: &env,
        settings: "",
    };
    let service = LocalService::start_with(bench.fwsign, &bench.work.join("hsm-failure"), &spec)?;
    let auditor = service.create_token("fault-auditor", "auditor")?;
    let (mut acknowledged, refused, ()) =
        fault_under_load(&service, clients, Duration::from_secs(1), || {
            std::fs::rename(&tokens, &away)
                .with_context(|| format!("cannot move {}", tokens.display()))
        })?;
    let first = refused.first().context("the service kept signing with its token gone")?;
    for reply in &refused {
        ensure_unavailable("a token gone", reply)?;
    }
    println!(
        "hsm failure: token gone: {} refused with 503, Retry-After {:?}: {}",
        refused.len(),
        first.retry_after,
        first.body.trim()
    );
    std::fs::rename(&away, &tokens)
        .with_context(|| format!("cannot move {} back", tokens.display()))?;
    let recovery = sign_again(&service, &mut acknowledged, 4_000_000)?;
    println!("hsm failure: signing again {} ms after the token came back", recovery.as_millis());
    ensure_every_signed_record_acknowledged(&service, &auditor, &acknowledged)?;
    verify_nothing_lost(bench, &service, &auditor, &acknowledged)
}

/// `clients` threads sign on `service`; half a second in, `fault` runs, and the load goes on
/// for `then` after it. The signatures acknowledged, the replies that were not signatures, and
/// what `fault` returned.
fn fault_under_load<T>(
    service: &LocalService,
    clients: usize,
    then: Duration,
    fault: impl FnOnce() -> Result<T>,
) -> Result<(Vec<Acknowledged>, Vec<Exchange>, T)> {
    let (stop, sequence, refused) = (AtomicBool::new(false), AtomicU32::new(1), Mutex::default());
    let load = Load { stop: &stop, sequence: &sequence, refused: &refused };
    let (signed, outcome) = thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| scope.spawn(|| sign_until(service.url(), service.token(), &load)))
            .collect();
        thread::sleep(Duration::from_millis(500));
        let outcome = fault();
        thread::sleep(then);
        stop.store(true, Ordering::SeqCst);
        let signed: Vec<Acknowledged> =
            workers.into_iter().filter_map(|w| w.join().ok()).flatten().collect();
        (signed, outcome)
    });
    let refused = refused.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok((signed, refused, outcome?))
}

/// `reply` is a 503 with `Retry-After` and a reason, as a failed dependency must answer.
fn ensure_unavailable(fault: &str, reply: &Exchange) -> Result<()> {
    ensure!(
        reply.status == 503 && reply.retry_after.is_some() && reply.body.contains("error"),
        "{fault} answered {} (Retry-After {:?}) {}, expected 503 with Retry-After and a reason",
        reply.status,
        reply.retry_after,
        reply.body
    );
    Ok(())
}

/// Signs one image (numbered from `sequence`) until the service signs it, for at most
/// [`RECOVERY_TIMEOUT`]; how long that took.
fn sign_again(
    service: &LocalService,
    acknowledged: &mut Vec<Acknowledged>,
    mut sequence: u32,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        sequence += 1;
        let (reply, signed) = post_image(service.url(), service.token(), &region(sequence))?;
        if let Some(ack) = signed {
            acknowledged.push(ack);
            return Ok(started.elapsed());
        }
        ensure!(
            started.elapsed() < RECOVERY_TIMEOUT,
            "no signature {} s after the fault cleared: {} {}",
            RECOVERY_TIMEOUT.as_secs(),
            reply.status,
            reply.body
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// As many `signed` records in the audit trail as acknowledged signatures: nothing was signed
/// that a client was not given.
fn ensure_every_signed_record_acknowledged(
    service: &LocalService,
    auditor: &str,
    acknowledged: &[Acknowledged],
) -> Result<()> {
    let trail = audit_trail(service.url(), auditor)?;
    let signed = trail
        .iter()
        .filter(|r| r["body"].as_str().is_some_and(|b| b.contains("\"signed\"")))
        .count();
    ensure!(
        signed == acknowledged.len(),
        "{signed} signed records for {} acknowledged signatures",
        acknowledged.len()
    );
    Ok(())
}

/// What the client threads of a scenario share.
struct Load<'a> {
    /// Set when they are to stop.
    stop: &'a AtomicBool,
    /// Numbers the images, so each is unique.
    sequence: &'a AtomicU32,
    /// Every reply that was not a signature.
    refused: &'a Mutex<Vec<Exchange>>,
}

/// Signs fresh images on `url` until `load.stop`; the signatures received. Refusals are kept
/// in `load.refused`; neither they nor connection failures (the service was killed) end
/// anything: the client keeps trying, as a CI job retries.
fn sign_until(url: &str, token: &str, load: &Load<'_>) -> Vec<Acknowledged> {
    let mut signed = Vec::new();
    while !load.stop.load(Ordering::SeqCst) {
        let image = region(load.sequence.fetch_add(1, Ordering::SeqCst));
        match post_image(url, token, &image) {
            Ok((_, Some(ack))) => signed.push(ack),
            Ok((reply, None)) => {
                load.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(reply);
                thread::sleep(Duration::from_millis(50));
            }
            Err(_) => {}
        }
    }
    signed
}

/// Posts one image to `/v1/sign`: the reply, and the signature if it was signed (200).
fn post_image(url: &str, token: &str, image: &[u8]) -> Result<(Exchange, Option<Acknowledged>)> {
    let base64 = base64::engine::general_purpose::STANDARD;
    let body = serde_json::json!({ "key": "dev", "images": [base64.encode(image)] }).to_string();
    let reply = exchange(url, "POST", "/v1/sign", Some(token), Some(&body))?;
    let signed = if reply.status == 200 { Some(acknowledged(&reply)?) } else { None };
    Ok((reply, signed))
}

/// The signature in a 200 reply.
fn acknowledged(reply: &Exchange) -> Result<Acknowledged> {
    let json: Value = serde_json::from_str(&reply.body).context("a 200 reply that is not JSON")?;
    let signature = &json["signatures"][0];
    let proof = signature["log_proof"].as_str().context("a signature without its log proof")?;
    let index = proof
        .lines()
        .find_map(|line| line.strip_prefix("index "))
        .and_then(|index| index.parse().ok())
        .context("a log proof without its index")?;
    let checkpoint = proof.split_once("\n\n").context("a log proof without its checkpoint")?.1;
    let signature_bytes = base64::engine::general_purpose::STANDARD
        .decode(signature["signature"].as_str().unwrap_or_default())
        .context("a signature that is not base64")?;
    Ok(Acknowledged {
        audit_seq: json["audit_seq"].as_u64().context("a reply without audit_seq")?,
        digest: signature["digest"].as_str().unwrap_or_default().to_owned(),
        signature: fwsign_keys::hex(&signature_bytes),
        index,
        checkpoint: checkpoint.to_owned(),
    })
}

/// A to-be-signed region unique to `sequence`: header, 1 KiB of payload, a protected security
/// counter of 1.
fn region(sequence: u32) -> Vec<u8> {
    const PAYLOAD: u32 = 1024;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0x96f3_b83d_u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&32u16.to_le_bytes());
    bytes.extend_from_slice(&12u16.to_le_bytes());
    bytes.extend_from_slice(&PAYLOAD.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&sequence.to_le_bytes());
    bytes.resize(32 + PAYLOAD as usize, 0x5a);
    bytes.extend_from_slice(&[0x08, 0x69, 12, 0, 0x50, 0, 4, 0]);
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes
}

/// Every acknowledged signature in the trail and the log, the log gapless and consistent with
/// every checkpoint handed out.
fn verify_nothing_lost(
    bench: &Bench<'_>,
    service: &LocalService,
    auditor: &str,
    acknowledged: &[Acknowledged],
) -> Result<Tally> {
    let trail = audit_trail(service.url(), auditor)?;
    let entries = log_entries(bench, service, None)?;
    for checkpoint in acknowledged.iter().map(|a| &a.checkpoint).collect::<BTreeSet<_>>() {
        log_entries(bench, service, Some(checkpoint))
            .context("the log is not consistent with a checkpoint handed out before")?;
    }
    let indexes: BTreeSet<u64> = acknowledged.iter().map(|a| a.index).collect();
    ensure!(
        indexes.len() == acknowledged.len(),
        "two acknowledged signatures name the same log index"
    );
    let lost = acknowledged
        .iter()
        .filter(|ack| {
            let in_trail = trail.iter().any(|record| {
                record["seq"].as_u64() == Some(ack.audit_seq)
                    && record["body"].as_str().is_some_and(|body| body.contains(&ack.signature))
            });
            let in_log = usize::try_from(ack.index)
                .ok()
                .and_then(|index| entries.get(index))
                .is_some_and(|entry| {
                    entry["index"].as_u64() == Some(ack.index)
                        && entry["image-digest"].as_str() == Some(ack.digest.as_str())
                });
            if !in_trail || !in_log {
                eprintln!(
                    "LOST: audit record {} (in trail: {in_trail}), log index {} (in log: {in_log})",
                    ack.audit_seq, ack.index
                );
            }
            !in_trail || !in_log
        })
        .count();
    Ok(Tally { acknowledged: acknowledged.len(), lost })
}

/// The whole audit trail, checked gapless (`seq` 1, 2, …).
fn audit_trail(url: &str, auditor: &str) -> Result<Vec<Value>> {
    let mut records: Vec<Value> = Vec::new();
    loop {
        let after = records.len();
        let reply = exchange(url, "GET", &format!("/v1/audit?after={after}"), Some(auditor), None)?;
        ensure!(reply.status == 200, "GET /v1/audit: {} {}", reply.status, reply.body);
        let page: Vec<Value> = serde_json::from_str(&reply.body).context("GET /v1/audit")?;
        if page.is_empty() {
            return Ok(records);
        }
        for record in page {
            let expected = records.len() as u64 + 1;
            ensure!(record["seq"].as_u64() == Some(expected), "the audit trail skips {expected}");
            records.push(record);
        }
    }
}

/// `fwsign log monitor`: the entries after `since` (every entry when `None`), proved consistent
/// with `since` and each checked against its leaf.
fn log_entries(
    bench: &Bench<'_>,
    service: &LocalService,
    since: Option<&str>,
) -> Result<Vec<Value>> {
    let key = bench.work.join("log.vkey");
    std::fs::write(&key, service.log_verifier_key(bench.fwsign)?)
        .with_context(|| format!("cannot write {}", key.display()))?;
    let state = bench.work.join("monitor.state");
    let _ = std::fs::remove_file(&state);
    if let Some(checkpoint) = since {
        std::fs::write(&state, checkpoint)
            .with_context(|| format!("cannot write {}", state.display()))?;
    }
    let output = Command::new(bench.fwsign)
        .args(["log", "monitor", "--json", "--server", service.url(), "--log-key"])
        .arg(&key)
        .arg("--state")
        .arg(&state)
        .output()
        .context("cannot run fwsign log monitor")?;
    if !output.status.success() {
        bail!("fwsign log monitor: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let entries = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).context("fwsign log monitor --json"))
        .collect::<Result<Vec<Value>>>()?;
    for (position, entry) in entries.iter().enumerate() {
        ensure!(entry["index"].as_u64().is_some(), "log entry {position} without an index");
    }
    Ok(entries)
}

/// The database on a 1 MiB tmpfs, filled: 503s with a reason, then signing again once freed.
fn disk_full(bench: &Bench<'_>) -> Result<Tally> {
    if !is_root() {
        bail!("the disk-full scenario mounts a tmpfs and needs root: run it as root (sudo)");
    }
    let mount = bench.work.join("small-disk");
    // Left mounted by an interrupted run, or not mounted: either way, start afresh.
    let _ = Command::new("umount").arg(&mount).stderr(std::process::Stdio::null()).status();
    std::fs::create_dir_all(&mount)
        .with_context(|| format!("cannot create {}", mount.display()))?;
    crate::sign::run(
        Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(&mount),
    )?;
    let outcome = fill_and_free(bench, &mount.join("service"), &mount.join("filler"));
    let unmounted = Command::new("umount").arg(&mount).status();
    let tally = outcome?;
    ensure!(unmounted.is_ok_and(|s| s.success()), "cannot unmount {}", mount.display());
    Ok(tally)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn fill_and_free(bench: &Bench<'_>, dir: &Path, filler: &Path) -> Result<Tally> {
    let service = bench.start(dir, "")?;
    let auditor = service.create_token("fault-auditor", "auditor")?;
    let mut acknowledged = Vec::new();
    let mut sequence = 1_000_000;
    let mut sign = |acknowledged: &mut Vec<Acknowledged>| -> Result<Exchange> {
        sequence += 1;
        let (reply, signed) = post_image(service.url(), service.token(), &region(sequence))?;
        acknowledged.extend(signed);
        Ok(reply)
    };
    fill(filler)?;
    let mut refused = None;
    for _ in 0..2000 {
        let reply = sign(&mut acknowledged)?;
        if reply.status != 200 {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.context("the service kept signing on a full disk for 2000 requests")?;
    ensure!(
        refused.status == 503 && refused.retry_after.is_some() && refused.body.contains("error"),
        "a full disk answered {} (Retry-After {:?}) {}, expected 503 with Retry-After and a reason",
        refused.status,
        refused.retry_after,
        refused.body
    );
    println!(
        "disk full: refused with 503, Retry-After {:?}: {}",
        refused.retry_after,
        refused.body.trim()
    );
    std::fs::remove_file(filler).with_context(|| format!("cannot remove {}", filler.display()))?;
    let recovered = Instant::now();
    loop {
        if sign(&mut acknowledged)?.status == 200 {
            break;
        }
        ensure!(
            recovered.elapsed() < Duration::from_secs(10),
            "no signature 10 s after the disk was freed"
        );
        thread::sleep(Duration::from_millis(100));
    }
    println!(
        "disk full: signing again {} ms after the space was freed",
        recovered.elapsed().as_millis()
    );
    verify_nothing_lost(bench, &service, &auditor, &acknowledged)
}

/// Writes `filler` until the file system is full.
fn fill(filler: &Path) -> Result<()> {
    let mut file = std::fs::File::create(filler)
        .with_context(|| format!("cannot create {}", filler.display()))?;
    let block = [0u8; 4096];
    loop {
        match file.write_all(&block).and_then(|()| file.sync_all()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot fill {}", filler.display())),
        }
    }
}

/// Slowloris, a client gone mid-body, a body over the limit: others served meanwhile, no
/// record half-written, the service's sockets back to their count before.
fn hostile_connections(bench: &Bench<'_>) -> Result<Tally> {
    let dir = bench.work.join("hostile");
    let service = bench.start(&dir, "body_limit = 65536\nheader_read_timeout_secs = 1")?;
    let auditor = service.create_token("fault-auditor", "auditor")?;
    let address = service.url().trim_start_matches("http://").to_owned();
    let mut acknowledged = Vec::new();
    let mut sequence = 2_000_000;
    let mut sign_one = |acknowledged: &mut Vec<Acknowledged>| -> Result<()> {
        sequence += 1;
        let (reply, signed) = post_image(service.url(), service.token(), &region(sequence))?;
        let ack = signed.with_context(|| {
            format!("a plain request beside a hostile client: {} {}", reply.status, reply.body)
        })?;
        acknowledged.push(ack);
        Ok(())
    };
    sign_one(&mut acknowledged)?;
    audit_trail(service.url(), &auditor)?;
    thread::sleep(Duration::from_millis(200));
    let baseline = open_sockets(service.pid())?;

    // Slowloris: headers a byte at a time; the service must cut it off, and serve others.
    let mut slow = TcpStream::connect(&address).context("connecting the slow client")?;
    slow.write_all(b"POST /v1/sign HTTP/1.1\r\nhost: x\r\n").context("slow client")?;
    let started = Instant::now();
    let mut cut_off = false;
    while started.elapsed() < Duration::from_secs(5) {
        if slow.write_all(b"x").is_err() {
            cut_off = true;
            break;
        }
        sign_one(&mut acknowledged)?;
        thread::sleep(Duration::from_millis(200));
    }
    let mut rest = Vec::new();
    slow.set_read_timeout(Some(Duration::from_secs(1))).context("slow client")?;
    cut_off |= slow.read_to_end(&mut rest).is_ok();
    ensure!(
        cut_off,
        "a slowloris client was still connected after 5 s (header_read_timeout_secs = 1)"
    );
    println!(
        "hostile connections: slowloris client cut off after {} ms",
        started.elapsed().as_millis()
    );

    // A client that sends half its body and leaves.
    let mut gone = TcpStream::connect(&address).context("connecting the leaving client")?;
    let head = format!(
        "POST /v1/sign HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 60000\r\n\r\n{{\"key\":\"dev\",\"images\":[\"",
        service.token()
    );
    gone.write_all(head.as_bytes()).context("leaving client")?;
    gone.write_all(&[b'A'; 20000]).context("leaving client")?;
    drop(gone);
    sign_one(&mut acknowledged)?;

    // A body over the limit.
    let big = format!("{{\"key\":\"dev\",\"images\":[\"{}\"]}}", "A".repeat(100_000));
    let reply = exchange(service.url(), "POST", "/v1/sign", Some(service.token()), Some(&big))?;
    ensure!(
        reply.status == 413,
        "a body over body_limit answered {}: {}",
        reply.status,
        reply.body
    );
    sign_one(&mut acknowledged)?;

    let settled = Instant::now();
    let mut now_open = open_sockets(service.pid())?;
    while now_open > baseline && settled.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(100));
        now_open = open_sockets(service.pid())?;
    }
    ensure!(
        now_open <= baseline,
        "the service holds {now_open} sockets open, {baseline} before the hostile clients"
    );
    println!("hostile connections: {now_open} sockets open after, {baseline} before");
    let trail = audit_trail(service.url(), &auditor)?;
    let refused_large = trail
        .iter()
        .filter(|r| r["body"].as_str().is_some_and(|b| b.contains("exceeds the limit")))
        .count();
    ensure!(
        refused_large == 1,
        "the body over the limit left {refused_large} audit records, expected 1"
    );
    ensure_every_signed_record_acknowledged(&service, &auditor, &acknowledged)?;
    verify_nothing_lost(bench, &service, &auditor, &acknowledged)
}

/// The number of sockets (listening and connected) process `pid` holds open.
fn open_sockets(pid: u32) -> Result<usize> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let fds = std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
    Ok(fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count())
}

/// An HTTP reply.
struct Exchange {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

/// One HTTP/1.1 exchange on its own connection (`Connection: close`), as plain as the faults
/// need: the status, `Retry-After` and the body.
fn exchange(
    url: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<Exchange> {
    let address = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).with_context(|| format!("connecting to {url}"))?;
    stream.set_read_timeout(Some(EXCHANGE_TIMEOUT))?;
    let body = body.unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(token) = token {
        request += &format!("authorization: Bearer {token}\r\n");
    }
    request += "\r\n";
    request += body;
    stream.write_all(request.as_bytes()).with_context(|| format!("{method} {url}{path}"))?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).with_context(|| format!("{method} {url}{path}"))?;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) =
        reply.split_once("\r\n\r\n").with_context(|| format!("{method} {url}{path}: no reply"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{method} {url}{path}: no status in {head}"))?;
    let retry_after = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after").then(|| value.trim().to_owned())
    });
    Ok(Exchange { status, retry_after, body: body.to_owned() })
}
