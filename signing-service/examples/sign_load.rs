//! The client side of `cargo xtask service-bench`, built with optimisations so that the load
//! generator is not what bounds the figures: the clients base64-encode and JSON-serialise up to
//! 1 MiB per request, which an unoptimised build does several times slower than the service
//! answers.
//!
//! ```text
//! sign_load clients CLIENTS SECONDS KEY URL TOKEN [URL TOKEN]...
//! sign_load floor KEY_REF SECONDS
//! ```
//!
//! `clients`: CLIENTS threads, client `n` on service `n` modulo their number, sign realistic
//! to-be-signed regions (64 KiB, 256 KiB, 1 MiB in turn) with the service's key KEY through the
//! client `fwsign sign --server` uses, for SECONDS. Prints one JSON object: `signatures`,
//! `seconds`, `p50_ms`, `p99_ms`.
//!
//! `floor`: the same hash-and-sign in this process with KEY_REF (a key file or PKCS#11 URI),
//! one signer per core, no HTTP, no database: what the machine allows. Prints signatures/s.

use std::time::{Duration, Instant};

use fwsign_keys::key_ref::KeyRef;
use fwsign_keys::keys::NoPassword;
use fwsign_service::client::{ServiceClient, SignOutcome};
use verifier_core::HashAlgorithm;

/// The to-be-signed payload sizes the clients cycle through.
const PAYLOAD_SIZES: [u32; 3] = [64 * 1024, 256 * 1024, 1024 * 1024];

const USAGE: &str = "usage: sign_load clients CLIENTS SECONDS KEY URL TOKEN [URL TOKEN]...\n       \
                     sign_load floor KEY_REF SECONDS";

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["clients", clients, seconds, key, services @ ..]
            if !services.is_empty() && services.len() % 2 == 0 =>
        {
            let clients = number("CLIENTS", clients)?;
            let services: Vec<(&str, &str)> =
                services.chunks_exact(2).map(|pair| (pair[0], pair[1])).collect();
            load(clients, seconds_arg(seconds)?, key, &services)
        }
        ["floor", key, seconds] => floor(key, seconds_arg(seconds)?),
        _ => Err(USAGE.into()),
    }
}

fn number(name: &str, value: &str) -> Result<usize, Error> {
    match value.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{name}: expected a whole number of at least 1, got {value:?}").into()),
    }
}

fn seconds_arg(value: &str) -> Result<Duration, Error> {
    number("SECONDS", value).map(|n| Duration::from_secs(n as u64))
}

/// `clients` threads signing with `key` for `duration`; prints the count and latencies.
fn load(
    clients: usize,
    duration: Duration,
    key: &str,
    services: &[(&str, &str)],
) -> Result<(), Error> {
    let regions = regions();
    let started = Instant::now();
    let deadline = started + duration;
    let mut latencies = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|n| {
                let (url, token) = services[n % services.len()];
                let client = ServiceClient::new(url, token.to_owned());
                let regions = &regions;
                scope.spawn(move || sign_until(&client, key, regions, n, deadline))
            })
            .collect();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.join().map_err(|_| "a client thread panicked")??);
        }
        Ok::<_, Error>(all)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if latencies.is_empty() {
        return Err(format!("no signature completed in {duration:?} with {clients} clients").into());
    }
    latencies.sort_unstable();
    let report = serde_json::json!({
        "signatures": latencies.len(),
        "seconds": seconds,
        "p50_ms": percentile(&latencies, 50),
        "p99_ms": percentile(&latencies, 99),
    });
    println!("{report}");
    Ok(())
}

/// One client's loop: sign the regions in turn, starting at `first`, until `deadline`.
fn sign_until(
    client: &ServiceClient,
    key: &str,
    regions: &[Vec<u8>],
    first: usize,
    deadline: Instant,
) -> Result<Vec<Duration>, Error> {
    let mut latencies = Vec::new();
    for region in regions.iter().cycle().skip(first) {
        if Instant::now() >= deadline {
            break;
        }
        let asked = Instant::now();
        match client.sign(key, &[region], "sha256", false)? {
            SignOutcome::Signed(_) => latencies.push(asked.elapsed()),
            SignOutcome::Pending(_) => return Err("the bench key needs no approval".into()),
        }
    }
    Ok(latencies)
}

fn percentile(sorted: &[Duration], percent: usize) -> f64 {
    let index = (sorted.len() * percent).div_ceil(100).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Prints the signatures per second made in this process with `key`, one signer per core.
fn floor(key: &str, duration: Duration) -> Result<(), Error> {
    let key: KeyRef = key.parse().map_err(|e| format!("{key}: {e}"))?;
    let regions = regions();
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    // Opened one after another: opened by threads at once, SoftHSM2 crashed (heap corruption).
    let signers = (0..threads)
        .map(|_| key.signer(&NoPassword).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    let deadline = started + duration;
    let count = std::thread::scope(|scope| {
        let workers: Vec<_> = signers
            .into_iter()
            .enumerate()
            .map(|(n, signer)| {
                let regions = &regions;
                scope.spawn(move || {
                    let mut count = 0u64;
                    for region in regions.iter().cycle().skip(n) {
                        if Instant::now() >= deadline {
                            break;
                        }
                        let digest = HashAlgorithm::Sha256.digest(region);
                        signer.sign_digest(&digest).map_err(|e| e.to_string())?;
                        count += 1;
                    }
                    Ok::<_, String>(count)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| "a signer thread panicked".to_owned())?)
            .sum::<Result<u64, String>>()
    })?;
    println!("{}", count as f64 / started.elapsed().as_secs_f64());
    Ok(())
}

/// The regions the clients send, one per payload size.
fn regions() -> Vec<Vec<u8>> {
    PAYLOAD_SIZES.iter().map(|size| region(*size)).collect()
}

/// A to-be-signed region as `fwsign sign --server` sends it: a 32-byte MCUboot header,
/// `payload` bytes, and the protected TLV area holding a security counter.
fn region(payload: u32) -> Vec<u8> {
    const HEADER_SIZE: u16 = 32;
    const PROTECTED_SIZE: u16 = 12;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0x96f3_b83d_u32.to_le_bytes()); // magic
    bytes.extend_from_slice(&0u32.to_le_bytes()); // load address
    bytes.extend_from_slice(&HEADER_SIZE.to_le_bytes());
    bytes.extend_from_slice(&PROTECTED_SIZE.to_le_bytes());
    bytes.extend_from_slice(&payload.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes()); // flags
    bytes.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0]); // version 1.0.0+1
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend((0..payload).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    bytes.extend_from_slice(&[0x08, 0x69, 12, 0, 0x50, 0, 4, 0]); // protected area, counter TLV
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes
}
