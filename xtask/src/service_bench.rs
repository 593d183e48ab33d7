//! `cargo xtask service-bench`: the signing service under concurrent load, against the floor.
//!
//! Each configuration (database, instances, key kind) gets fresh release `fwsign serve`
//! instances on loopback, keeping a transparency log, with one key `dev` (an Ed25519 key file
//! or an Ed25519 key on a SoftHSM2 token). SQLite runs one instance; PostgreSQL (a throwaway
//! loopback cluster, one database per configuration) runs one or two instances on the same
//! database, each in its own directory on its own port, the clients spread over them
//! round-robin (no load balancer). For each client count, that many threads sign realistic
//! images (64 KiB to 1 MiB; only the to-be-signed region travels, as `fwsign sign --server`
//! sends it) for a fixed time through the same client the CLI uses, in the release-built
//! `sign_load` example of the service crate (an unoptimised client bounded the first
//! figures: it encodes up to 1 MiB per request several times slower). Every reply is durable
//! (SQLite: WAL, `synchronous=FULL`; PostgreSQL: `synchronous_commit = on`) before it
//! arrives. The CPU figure is the service instances' only, not PostgreSQL's. The floor is the
//! same signatures made by `sign_load floor` in one process with no HTTP and no database:
//! what the machine allows.
//!
//! Each point also reports the machine's steal time while it ran: on a virtual machine the
//! hypervisor can take a large share of the cores (up to 43% was seen here), and the figures
//! of such a point are the neighbours' as much as the service's.
//!
//! JSON keys are flat: `{database}_{instances}_{keys}_{clients}_{signs_per_s,p50_ms,p99_ms,
//! cpu_ms_per_sign,floor_ratio,steal_percent}`, plus `floor_{keys}_signs_per_s`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fwsign_tests::SoftHsmToken;
use test_postgres::Cluster;

use crate::service::{KEY_NAME, LocalService, ServiceLog, ServiceSpec};

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
    steal_percent: f64,
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
    let load = build_sign_load()?;
    let dir = crate::target_dir().join("service-bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let log_key = dir.join("log.pem");
    generate_key(&fwsign, log_key.to_str().context("target path is not UTF-8")?, &[])?;
    let duration = Duration::from_secs(options.seconds);
    let cluster =
        Cluster::start().context("the PostgreSQL cluster for the postgres configurations")?;
    let mut figures = BTreeMap::new();
    let mut curves = Vec::new();
    for kind in [KeyKind::File, KeyKind::SoftHsm] {
        let keys = keys_for(&fwsign, &dir, kind)?;
        let floor = floor(&load, &keys, duration)?;
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
                let point = measure(&load, &services, *clients, duration)?;
                print_point(&configuration.label(), &point, floor);
                let prefix = format!("{}_{}", configuration.label(), point.clients);
                figures.insert(format!("{prefix}_signs_per_s"), point.signs_per_s);
                figures.insert(format!("{prefix}_p50_ms"), point.p50_ms);
                figures.insert(format!("{prefix}_p99_ms"), point.p99_ms);
                figures.insert(format!("{prefix}_cpu_ms_per_sign"), point.cpu_ms_per_sign);
                figures.insert(format!("{prefix}_floor_ratio"), point.signs_per_s / floor);
                figures.insert(format!("{prefix}_steal_percent"), point.steal_percent);
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
        "{label:<18} {:>4} clients  {:>7.1} signatures/s  p50 {:>7.1} ms  p99 {:>7.1} ms  {:>5.2} CPU ms/signature  {:>4.0}% of floor  steal {:>2.0}%",
        point.clients,
        point.signs_per_s,
        point.p50_ms,
        point.p99_ms,
        point.cpu_ms_per_sign,
        100.0 * point.signs_per_s / floor,
        point.steal_percent
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

/// The release `sign_load` example: the clients and the floor.
fn build_sign_load() -> Result<PathBuf> {
    crate::cargo(&[
        "build",
        "--quiet",
        "--release",
        "-p",
        "signing-service",
        "--example",
        "sign_load",
    ])?;
    Ok(crate::target_dir().join("release/examples/sign_load"))
}

/// `clients` threads of `load` signing for `duration`, client `n` on instance `n` modulo their
/// number; throughput, latency and the instances' CPU.
fn measure(
    load: &Path,
    services: &[LocalService],
    clients: usize,
    duration: Duration,
) -> Result<Point> {
    let mut command = Command::new(load);
    command.arg("clients").arg(clients.to_string()).arg(duration.as_secs().to_string());
    command.arg(KEY_NAME);
    for service in services {
        command.args([service.url(), service.token()]);
    }
    let cpu_before = services_cpu(services)?;
    let machine_before = MachineTicks::now()?;
    let said = crate::sign::run(&mut command)?;
    let cpu = services_cpu(services)? - cpu_before;
    let steal_percent = MachineTicks::now()?.steal_percent_since(&machine_before);
    let report: serde_json::Value = serde_json::from_str(said.trim())
        .with_context(|| format!("sign_load clients said {said:?}"))?;
    let figure = |name: &str| {
        report[name].as_f64().with_context(|| format!("sign_load clients said {said:?}: no {name}"))
    };
    let count = figure("signatures")?;
    Ok(Point {
        clients,
        signs_per_s: count / figure("seconds")?,
        p50_ms: figure("p50_ms")?,
        p99_ms: figure("p99_ms")?,
        cpu_ms_per_sign: cpu.as_secs_f64() * 1000.0 / count,
        steal_percent,
    })
}

/// The machine's CPU time so far, from the `cpu` line of `/proc/stat`: all of it, and the part
/// the hypervisor took (steal).
struct MachineTicks {
    total: u64,
    steal: u64,
}

impl MachineTicks {
    fn now() -> Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
        let line = stat.lines().next().filter(|l| l.starts_with("cpu ")).context("/proc/stat")?;
        let ticks: Vec<u64> =
            line.split_whitespace().skip(1).map_while(|t| t.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal [guest guest_nice, counted in user]
        let steal = *ticks.get(7).context("/proc/stat has no steal column")?;
        Ok(Self { total: ticks.iter().take(8).sum(), steal })
    }

    fn steal_percent_since(&self, before: &Self) -> f64 {
        let total = self.total.saturating_sub(before.total).max(1);
        100.0 * self.steal.saturating_sub(before.steal) as f64 / total as f64
    }
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

/// The floor for `keys`: `sign_load floor` in a child process that sees the key's environment
/// (SoftHSM2 reads its configuration from it); signatures per second.
fn floor(load: &Path, keys: &Keys, duration: Duration) -> Result<f64> {
    let mut command = Command::new(load);
    command
        .envs(keys.env.iter().map(|(k, v)| (k, v)))
        .args(["floor", &keys.key])
        .arg(duration.as_secs().to_string());
    let said = crate::sign::run(&mut command)?;
    said.trim().parse().with_context(|| format!("sign_load floor said {said:?}"))
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
