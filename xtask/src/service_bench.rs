//! `cargo xtask service-bench`: the signing service under concurrent load, against the floor.
//!
//! Each configuration (database, instances, key kind) gets fresh release `fwsign serve`
//! instances on loopback, keeping a transparency log, with one key `dev` (an Ed25519 key file
//! or an Ed25519 key on a SoftHSM2 token). SQLite runs one instance; PostgreSQL (a throwaway
//! loopback cluster, one database per configuration) runs one or two instances on the same
//! database, each in its own directory on its own port, the clients spread over them
//! round-robin (no load balancer). For each client count, that many threads sign realistic
//! images (64 KiB to 1 MiB; only the to-be-signed region travels, as `fwsign sign --server`
//! sends it) for a fixed time through the same client the CLI uses. Every reply is durable
//! (SQLite: WAL, `synchronous=FULL`; PostgreSQL: `synchronous_commit = on`) before it
//! arrives. The CPU figure is the service instances' only, not PostgreSQL's. The floor is the
//! same signatures made in this process with no HTTP and no database: what the machine
//! allows.
//!
//! JSON keys are flat: `{database}_{instances}_{keys}_{clients}_{signs_per_s,p50_ms,p99_ms,
//! cpu_ms_per_sign,floor_ratio}`, plus `floor_{keys}_signs_per_s`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fwsign_keys::key_ref::KeyRef;
use fwsign_keys::keys::NoPassword;
use fwsign_service::client::{ServiceClient, SignOutcome};
use fwsign_tests::SoftHsmToken;
use test_postgres::Cluster;
use verifier_core::HashAlgorithm;

use crate::service::{KEY_NAME, LocalService, ServiceLog, ServiceSpec};

/// The to-be-signed payload sizes the clients cycle through.
const IMAGE_SIZES: [u32; 3] = [64 * 1024, 256 * 1024, 1024 * 1024];
/// The SoftHSM2 token's label and user PIN.
const TOKEN_LABEL: &str = "service-bench";
const TOKEN_PIN: &str = "4321";

/// What to measure.
pub(crate) struct Options<'a> {
    /// Concurrent clients per point.
    pub(crate) clients: &'a [usize],
    /// How long each point runs.
    pub(crate) seconds: u64,
    /// Where to write the flat JSON figures.
    pub(crate) json: Option<&'a Path>,
    /// Where to draw signatures/s and p99 against clients.
    pub(crate) plot: Option<&'a Path>,
}

/// A service configuration: where it stores, how many instances, which keys.
#[derive(Debug, Clone, Copy)]
struct Configuration {
    database: &'static str,
    instances: u32,
    keys: KeyKind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum KeyKind {
    File,
    SoftHsm,
}

impl KeyKind {
    fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::SoftHsm => "softhsm",
        }
    }
}

/// The configurations measured.
const CONFIGURATIONS: [Configuration; 6] = [
    Configuration { database: "sqlite", instances: 1, keys: KeyKind::File },
    Configuration { database: "postgres", instances: 1, keys: KeyKind::File },
    Configuration { database: "postgres", instances: 2, keys: KeyKind::File },
    Configuration { database: "sqlite", instances: 1, keys: KeyKind::SoftHsm },
    Configuration { database: "postgres", instances: 1, keys: KeyKind::SoftHsm },
    Configuration { database: "postgres", instances: 2, keys: KeyKind::SoftHsm },
];

impl Configuration {
    fn label(self) -> String {
        format!("{}_{}_{}", self.database, self.instances, self.keys.name())
    }

    /// The storage URL the instances are given: a SQLite file in the instance's directory, or
    /// a fresh database, named after the configuration, on `cluster`.
    fn database_url(self, cluster: &Cluster) -> Result<String> {
        match self.database {
            "postgres" => cluster
                .create_database(&self.label())
                .with_context(|| format!("the database for {}", self.label())),
            _ => Ok("sqlite:service.db".to_owned()),
        }
    }

    /// Starts the configuration's instances, each in its own directory under `dir`.
    fn start(self, fwsign: &Path, dir: &Path, spec: &ServiceSpec<'_>) -> Result<Vec<LocalService>> {
        (0..self.instances)
            .map(|n| {
                let instance = dir.join(self.label()).join(format!("instance-{n}"));
                LocalService::start_with(fwsign, &instance, spec)
                    .with_context(|| format!("{} instance {n}", self.label()))
            })
            .collect()
    }
}

/// One measured point.
#[derive(Debug, Clone, Copy)]
struct Point {
    clients: usize,
    signs_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_ms_per_sign: f64,
}

/// Keys for one configuration: where the key is and what `fwsign` needs to reach it.
pub(crate) struct Keys {
    /// The key `dev`: a key file or a PKCS#11 URI.
    pub(crate) key: String,
    /// What `fwsign` needs in its environment to reach the key.
    pub(crate) env: Vec<(&'static str, std::ffi::OsString)>,
    /// The SoftHSM2 token holding the key, if any (removed when dropped).
    pub(crate) token: Option<SoftHsmToken>,
}

impl Keys {
    /// [`env`](Self::env) as [`ServiceSpec`] takes it.
    pub(crate) fn env_refs(&self) -> Vec<(&str, &OsStr)> {
        self.env.iter().map(|(k, v)| (*k, v.as_os_str())).collect()
    }
}

/// Runs the benchmark.
pub(crate) fn run(options: &Options<'_>) -> Result<()> {
    if options.clients.is_empty() || options.clients.contains(&0) || options.seconds == 0 {
        bail!("--clients needs counts of at least 1 and --seconds at least 1");
    }
    let fwsign = crate::bench::build_fwsign()?;
    let dir = crate::target_dir().join("service-bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let log_key = dir.join("log.pem");
    generate_key(&fwsign, log_key.to_str().context("target path is not UTF-8")?, &[])?;
    let images: Vec<Vec<u8>> = IMAGE_SIZES.iter().map(|size| region(*size)).collect();
    let duration = Duration::from_secs(options.seconds);
    let cluster =
        Cluster::start().context("the PostgreSQL cluster for the postgres configurations")?;
    let mut figures = BTreeMap::new();
    let mut curves = Vec::new();
    for kind in [KeyKind::File, KeyKind::SoftHsm] {
        let keys = keys_for(&fwsign, &dir, kind)?;
        let floor = floor(&keys, duration)?;
        println!("floor, {} keys, in process: {floor:.0} signatures/s", kind.name());
        figures.insert(format!("floor_{}_signs_per_s", kind.name()), floor);
        for configuration in CONFIGURATIONS.iter().filter(|c| c.keys == kind) {
            let log = ServiceLog { origin: "bench.example/log", key: &log_key };
            let env = keys.env_refs();
            let database = configuration.database_url(&cluster)?;
            let spec = ServiceSpec {
                key: &keys.key,
                database: &database,
                log: Some(&log),
                env: &env,
                settings: "",
            };
            let services = configuration.start(&fwsign, &dir, &spec)?;
            let mut points = Vec::new();
            for clients in options.clients {
                let point = measure(&services, &images, *clients, duration)?;
                print_point(&configuration.label(), &point, floor);
                let prefix = format!("{}_{}", configuration.label(), point.clients);
                figures.insert(format!("{prefix}_signs_per_s"), point.signs_per_s);
                figures.insert(format!("{prefix}_p50_ms"), point.p50_ms);
                figures.insert(format!("{prefix}_p99_ms"), point.p99_ms);
                figures.insert(format!("{prefix}_cpu_ms_per_sign"), point.cpu_ms_per_sign);
                figures.insert(format!("{prefix}_floor_ratio"), point.signs_per_s / floor);
                points.push(point);
            }
            curves.push((configuration.label(), points));
        }
    }
    if let Some(path) = options.json {
        let json: Vec<String> =
            figures.iter().map(|(key, value)| format!("  \"{key}\": {value:.2}")).collect();
        crate::write_atomically(path, format!("{{\n{}\n}}\n", json.join(",\n")).as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = options.plot {
        plot(path, &curves)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn print_point(label: &str, point: &Point, floor: f64) {
    println!(
        "{label:<18} {:>4} clients  {:>7.1} signatures/s  p50 {:>7.1} ms  p99 {:>7.1} ms  {:>5.2} CPU ms/signature  {:>4.0}% of floor",
        point.clients,
        point.signs_per_s,
        point.p50_ms,
        point.p99_ms,
        point.cpu_ms_per_sign,
        100.0 * point.signs_per_s / floor
    );
}

/// The key `dev` of `kind`: a file, or a key made on a fresh SoftHSM2 token.
fn keys_for(fwsign: &Path, dir: &Path, kind: KeyKind) -> Result<Keys> {
    match kind {
        KeyKind::File => {
            let key = dir.join("dev.pem");
            let key = key.to_str().context("target path is not UTF-8")?.to_owned();
            generate_key(fwsign, &key, &[])?;
            Ok(Keys { key, env: Vec::new(), token: None })
        }
        KeyKind::SoftHsm => softhsm_keys(fwsign),
    }
}

/// An Ed25519 key `dev` made on a fresh SoftHSM2 token.
pub(crate) fn softhsm_keys(fwsign: &Path) -> Result<Keys> {
    let token = SoftHsmToken::new(TOKEN_LABEL, TOKEN_PIN);
    let env = vec![
        ("SOFTHSM2_CONF", token.config().into_os_string()),
        ("FWSIGN_PKCS11_MODULE", token.module.clone().into_os_string()),
        ("FWSIGN_PKCS11_PIN", TOKEN_PIN.into()),
    ];
    let uri = format!("pkcs11:token={TOKEN_LABEL};object={KEY_NAME}");
    let keys = Keys { key: format!("{uri};type=private"), env, token: Some(token) };
    generate_key(fwsign, &uri, &keys.env_refs())?;
    Ok(keys)
}

/// `fwsign keygen -t ed25519` of `key` (a file, replaced, or a PKCS#11 URI).
fn generate_key(fwsign: &Path, key: &str, env: &[(&str, &OsStr)]) -> Result<()> {
    if !key.starts_with("pkcs11:") {
        let _ = std::fs::remove_file(key);
    }
    let mut command = std::process::Command::new(fwsign);
    command.envs(env.iter().copied()).args(["keygen", "-k", key, "-t", "ed25519"]);
    crate::sign::run(&mut command).map(|_| ())
}

/// A to-be-signed region as the client sends it: a 32-byte MCUboot header, `payload`
/// bytes, and the protected TLV area holding a security counter.
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

/// `clients` threads signing for `duration`, client `n` on instance `n` modulo their number;
/// throughput, latency and the instances' CPU.
fn measure(
    services: &[LocalService],
    images: &[Vec<u8>],
    clients: usize,
    duration: Duration,
) -> Result<Point> {
    let cpu_before = services_cpu(services)?;
    let started = Instant::now();
    let deadline = started + duration;
    let latencies = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|n| {
                let service = &services[n % services.len()];
                scope.spawn(move || {
                    let client = ServiceClient::new(service.url(), service.token().to_owned());
                    let mut latencies = Vec::new();
                    let mut next = n;
                    while Instant::now() < deadline {
                        let image = &images[next % images.len()];
                        next += 1;
                        let asked = Instant::now();
                        match client.sign(KEY_NAME, &[image], "sha256", false) {
                            Ok(SignOutcome::Signed(_)) => latencies.push(asked.elapsed()),
                            Ok(SignOutcome::Pending(_)) => bail!("the bench key needs no approval"),
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Ok(latencies)
                })
            })
            .collect();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??);
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = services_cpu(services)? - cpu_before;
    let mut latencies = latencies;
    latencies.sort_unstable();
    if latencies.is_empty() {
        bail!("no signature completed in {duration:?} with {clients} clients");
    }
    let count = latencies.len() as f64;
    Ok(Point {
        clients,
        signs_per_s: count / elapsed,
        p50_ms: percentile(&latencies, 50),
        p99_ms: percentile(&latencies, 99),
        cpu_ms_per_sign: cpu.as_secs_f64() * 1000.0 / count,
    })
}

fn percentile(sorted: &[Duration], percent: usize) -> f64 {
    let index = (sorted.len() * percent).div_ceil(100).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// The CPU time of every instance in `services` so far.
fn services_cpu(services: &[LocalService]) -> Result<Duration> {
    services.iter().map(|service| process_cpu(service.pid())).sum()
}

/// User plus system CPU time of process `pid` so far, from `/proc/PID/stat`.
fn process_cpu(pid: u32) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).context("unexpected stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> Result<u64> {
        fields
            .get(index)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("{path}: field {}", index + 3))
    };
    const TICKS_PER_SECOND: u64 = 100; // USER_HZ on Linux
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_millis(total * 1000 / TICKS_PER_SECOND))
}

/// The floor for `keys`: [`floor_in_process`] run in a child process that sees the key's
/// environment (SoftHSM2 reads its configuration from it); signatures per second.
fn floor(keys: &Keys, duration: Duration) -> Result<f64> {
    let xtask = std::env::current_exe().context("cannot find the xtask executable")?;
    let mut command = std::process::Command::new(xtask);
    command
        .envs(keys.env.iter().map(|(k, v)| (k, v)))
        .args(["service-bench-floor", "--key", &keys.key, "--seconds"])
        .arg(duration.as_secs().to_string());
    let said = crate::sign::run(&mut command)?;
    said.trim().parse().with_context(|| format!("service-bench-floor said {said:?}"))
}

/// Prints the signatures per second made in this process with `key`, one signer per core,
/// for `seconds`: hash a realistic region, sign the digest; no HTTP, no database.
pub(crate) fn floor_in_process(key: &str, seconds: u64) -> Result<()> {
    let key: KeyRef = key.parse().map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
    let images: Vec<Vec<u8>> = IMAGE_SIZES.iter().map(|size| region(*size)).collect();
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    // Opened one after another: opened by threads at once, SoftHSM2 crashed (heap corruption).
    let signers = (0..threads)
        .map(|_| key.signer(&NoPassword).map_err(|e| anyhow::anyhow!("{e}")))
        .collect::<Result<Vec<_>>>()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let count = std::thread::scope(|scope| {
        let workers: Vec<_> = signers
            .into_iter()
            .enumerate()
            .map(|(n, signer)| {
                let images = &images;
                scope.spawn(move || {
                    let mut count = 0u64;
                    for image in images.iter().cycle().skip(n) {
                        if Instant::now() >= deadline {
                            break;
                        }
                        let digest = HashAlgorithm::Sha256.digest(image);
                        signer.sign_digest(&digest).map_err(|e| anyhow::anyhow!("{e}"))?;
                        count += 1;
                    }
                    Ok::<_, anyhow::Error>(count)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow::anyhow!("a signer thread panicked"))?)
            .sum::<Result<u64>>()
    })?;
    println!("{}", count as f64 / started.elapsed().as_secs_f64());
    Ok(())
}

/// One figure of a point, for a chart.
type Metric = fn(&Point) -> f64;

/// Draws signatures/s and p99 latency against clients, one line per configuration.
fn plot(path: &Path, curves: &[(String, Vec<Point>)]) -> Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (left, right) = root.split_horizontally(500);
    let max_clients =
        curves.iter().flat_map(|(_, p)| p.iter().map(|p| p.clients)).max().unwrap_or(1);
    let signs_per_s: Metric = |p| p.signs_per_s;
    let p99_ms: Metric = |p| p.p99_ms;
    let charts = [(&left, "signatures/s", signs_per_s), (&right, "p99 latency (ms)", p99_ms)];
    for (area, title, value) in charts {
        let top = curves.iter().flat_map(|(_, p)| p.iter().map(value)).fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..max_clients as f64 * 1.05, 0.0..top * 1.15)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("concurrent clients")
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (index, (label, points)) in curves.iter().enumerate() {
            let colour = Palette99::pick(index).to_rgba();
            let line = points.iter().map(|p| (p.clients as f64, value(p)));
            chart
                .draw_series(LineSeries::new(line, colour.stroke_width(2)))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
