//! `fwsign factory provision`: every device on the fixture gets the same checked image, its
//! own provisioning record, a read-back, a boot check and a lock, and a row on record.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;

use super::line::{Line, Step};
use super::programmer::{BootReport, Programmer};
use super::progress::Progress;
use super::station::{Database, NewDevice, Outcome, ServiceLink, Station, Status};
use crate::cmd::EXIT_INVALID;

/// Provision devices: build each one's provisioning record, merge it with the bootloader and
/// the signed application (padded and confirmed) into one image, flash it, verify it by
/// read-back, reset, check the version the device boots, lock it and record it.
///
/// Before anything is flashed the application is verified against the keys being provisioned
/// under the device profile's rules, as the device will: a line never flashes an image its
/// devices would refuse. Exit status: 0 when every device is good, 1 otherwise.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The device profile (slot geometry and boot rules).
    #[arg(long, value_name = "FILE")]
    device: PathBuf,
    /// The bootloader (ELF or Intel HEX) built to read its keys from the provisioning record.
    #[arg(long, value_name = "FILE")]
    bootloader: PathBuf,
    /// The signed application for the primary slot (binary or Intel HEX), unpadded.
    #[arg(long, value_name = "FILE")]
    image: PathBuf,
    /// Public keys (PEM) the devices will trust, in record slot order (1 to 4).
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    keys: Vec<PathBuf>,
    /// The station's configuration: its name and database.
    #[arg(long, value_name = "FILE")]
    station: PathBuf,
    /// Provision virtual devices of this QEMU board (mps2-an386, mps2-an385, mps2-an505).
    #[arg(long, value_name = "BOARD", requires = "count", conflicts_with = "probe")]
    qemu: Option<String>,
    /// How many virtual devices.
    #[arg(long, value_name = "N", requires = "qemu")]
    count: Option<usize>,
    /// Where the virtual devices live (default: `qemu-devices` beside the station database).
    #[arg(long, value_name = "DIR", requires = "qemu")]
    qemu_dir: Option<PathBuf>,
    /// A debug probe, `VID:PID:SERIAL`; repeat for several (one thread per probe).
    #[arg(long, value_name = "VID:PID:SERIAL", required_unless_present = "qemu")]
    probe: Vec<String>,
    /// Provision devices already on record again (their history is kept).
    #[arg(long)]
    rework: bool,
    /// How long a device may take to report the version it booted.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    boot_timeout: u64,
    /// Print one JSON object per device (identity, status, step times) instead of a log.
    #[arg(long)]
    json: bool,
    /// Test hook: stop the station abruptly right after this step of the first device
    /// (`flash`), as a power cut would.
    #[arg(long, value_name = "STEP", hide = true)]
    simulate_crash_after: Option<String>,
    /// Test hook: the first virtual device loses one bit of its provisioning record after the
    /// read-back, as a flash cell that does not hold its charge would.
    #[arg(long, hide = true, requires = "qemu")]
    simulate_record_retention_fault: bool,
}

/// Exit status of a station stopped by `--simulate-crash-after`.
const EXIT_CRASHED: i32 = 3;

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let station = Station::load(&args.station)?;
    let line = Line::prepare(&args.device, &args.bootloader, &args.image, &args.keys)?;
    let fixtures = fixtures(args, &line, &station)?;
    let database = Mutex::new(Database::open(&station)?);
    let options = Options {
        rework: args.rework,
        boot_timeout: Duration::from_secs(args.boot_timeout),
        json: args.json,
        progress: Progress::for_stdout(args.json),
        crash_after: args.simulate_crash_after.as_deref(),
    };
    options.progress.println(&line.summary());
    let results: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = fixtures
            .into_iter()
            .map(|devices| {
                let (line, database, options) = (&line, &database, &options);
                scope.spawn(move || {
                    devices
                        .into_iter()
                        .map(|mut device| provision(device.as_mut(), line, database, options))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|_| vec![false])).collect()
    });
    let good = results.iter().filter(|ok| **ok).count();
    options.progress.println(&format!("{good} of {} devices good", results.len()));
    if let Some(link) = &station.service {
        send_to_service(link, &database, &options.progress);
    }
    Ok(if good == results.len() { super::super::EXIT_OK } else { ExitCode::from(EXIT_INVALID) })
}

/// Sends the finished rows the signing service does not have yet; a failure is a warning, not
/// a failed device: the rows stay in the station's database and the next run sends them.
fn send_to_service(link: &ServiceLink, database: &Mutex<Database>, progress: &Progress) {
    let sent = match database.lock() {
        Ok(mut database) => super::upload::send_unsent(link, &mut database),
        Err(_) => Err(anyhow::anyhow!("the station database lock is poisoned")),
    };
    match sent {
        Ok(sent) => {
            progress.println(&format!("{} device record(s) sent to {}", sent.recorded, link.url));
            for (identity, reason) in &sent.refused {
                eprintln!(
                    "warning: {} refused the record of device {identity} ({reason}); it stays \
                     in the station database, unsent, and the next run offers it again",
                    link.url
                );
            }
        }
        Err(error) => eprintln!(
            "warning: device records not sent to {}: {error:#}; they stay in the station \
             database and the next run sends them",
            link.url
        ),
    }
}

/// The devices, grouped by fixture: each group is provisioned in order on its own thread.
pub(crate) type Fixtures = Vec<Vec<Box<dyn Programmer + Send>>>;

fn fixtures(args: &Args, line: &Line, station: &Station) -> anyhow::Result<Fixtures> {
    if let Some(board) = &args.qemu {
        anyhow::ensure!(
            *board == line.board.name,
            "--qemu {board}: the device profile {} is for {}",
            args.device.display(),
            line.board.name
        );
        let dir = match &args.qemu_dir {
            Some(dir) => dir.clone(),
            None => station.database.with_file_name("qemu-devices"),
        };
        let count = args.count.unwrap_or(0);
        anyhow::ensure!(count > 0, "--count: expected at least one device");
        let devices = (0..count)
            .map(|i| {
                let mut device = super::qemu::QemuDevice::new(line.board, &dir, i)?;
                if i == 0 && args.simulate_record_retention_fault {
                    device = device.with_record_retention_fault();
                }
                Ok(Box::new(device) as Box<dyn Programmer + Send>)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        return Ok(vec![devices]);
    }
    super::probe::fixtures(&args.probe, &line.board)
}

/// How each device is handled.
struct Options<'a> {
    rework: bool,
    boot_timeout: Duration,
    json: bool,
    progress: Progress,
    crash_after: Option<&'a str>,
}

/// Provisions one device; whether it ended good.
fn provision(
    device: &mut dyn Programmer,
    line: &Line,
    database: &Mutex<Database>,
    options: &Options<'_>,
) -> bool {
    let fixture = device.name();
    let progress = options.progress.fixture(&fixture);
    let mut log = |message: &str| progress.say(message);
    let mut timings: Vec<(Step, Duration)> = Vec::new();
    let result = attempt(device, line, database, options, &mut timings, &mut log);
    let (identity, status, error) = match &result {
        Ok((identity, status, error)) => (identity.clone(), *status, error.clone()),
        Err(error) => (String::new(), Status::Failed, Some(format!("{error:#}"))),
    };
    match (&error, options.json) {
        (_, true) => {
            let steps: serde_json::Map<_, _> = timings
                .iter()
                .map(|(step, time)| (step.name().to_owned(), json!(time.as_secs_f64() * 1000.0)))
                .collect();
            println!(
                "{}",
                json!({ "fixture": fixture, "identity": identity, "status": status.as_str(),
                        "error": error, "steps_ms": steps })
            );
        }
        (Some(error), false) => progress.outcome(&format!("{}: {error}", status.as_str())),
        (None, false) => progress.outcome("good"),
    }
    status == Status::Good
}

/// The steps of one device; the device's identity, how it ended and why it failed.
fn attempt(
    device: &mut dyn Programmer,
    line: &Line,
    database: &Mutex<Database>,
    options: &Options<'_>,
    timings: &mut Vec<(Step, Duration)>,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<(String, Status, Option<String>)> {
    let identity = device.identity().context("reading the device identity")?;
    log(&format!("device {identity}"));
    let db =
        || database.lock().map_err(|_| anyhow::anyhow!("the station database lock is poisoned"));
    let previous = db()?.latest(&identity)?;
    let started = Instant::now();
    let image = line.merge(identity.as_bytes())?;
    timings.push((Step::Merge, started.elapsed()));
    let record = NewDevice {
        identity: &identity,
        probe: &device.name(),
        digests: [&line.digests.bootloader, &image.record_digest, &line.digests.application],
        version: &line.version,
        security_counter: line.security_counter,
        key_hashes: &line.key_hashes,
        previous: previous.map(|p| p.id),
    };
    if let Some(previous) = previous.filter(|p| p.status == "good" && !options.rework) {
        db()?.start(&record, Status::Refused)?;
        let error = format!(
            "already provisioned (record {}); give --rework to provision it again",
            previous.id
        );
        return Ok((identity, Status::Refused, Some(error)));
    }
    if let Some(previous) = previous.filter(|p| p.status == "incomplete") {
        log(&format!("record {} was left incomplete (the station stopped): redoing", previous.id));
    }
    let started = Instant::now();
    let row = db()?.start(&record, Status::Incomplete)?;
    timings.push((Step::Record, started.elapsed()));
    let mut outcome = Outcome::default();
    let result = steps(device, &image.merged, line, options, timings, &mut outcome, log);
    let started = Instant::now();
    let (status, error) = match result {
        Ok(()) => (Status::Good, None),
        Err(error) => (Status::Failed, Some(format!("{error:#}"))),
    };
    outcome.error = error.clone();
    db()?.finish(row, status, &outcome)?;
    if let Some((_, time)) = timings.iter_mut().find(|(step, _)| *step == Step::Record) {
        *time += started.elapsed();
    }
    Ok((identity, status, error))
}

/// Flash, read back, boot check and lock, each timed and its result kept in `outcome`.
fn steps(
    device: &mut dyn Programmer,
    image: &super::merge::MergedImage,
    line: &Line,
    options: &Options<'_>,
    timings: &mut Vec<(Step, Duration)>,
    outcome: &mut Outcome,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let started = Instant::now();
    device.flash(image).context("flashing failed")?;
    timings.push((Step::Flash, started.elapsed()));
    log(&format!("flashed {} bytes", image.len()));
    if options.crash_after == Some("flash") {
        std::process::exit(EXIT_CRASHED);
    }
    let started = Instant::now();
    let read = device.read_back(image).context("reading back failed")?;
    let checked = image.check_read_back(&read);
    timings.push((Step::Verify, started.elapsed()));
    outcome.read_back = Some(checked.clone().err().unwrap_or_else(|| "ok".to_owned()));
    checked.map_err(anyhow::Error::msg)?;
    log("read back: identical");
    let started = Instant::now();
    let report = device.reset_and_report(options.boot_timeout)?;
    timings.push((Step::BootCheck, started.elapsed()));
    match report {
        BootReport::Booted { version, status } => {
            outcome.boot = Some(status);
            anyhow::ensure!(
                version == line.version,
                "the device booted version {version}, expected {}",
                line.version
            );
            log(&format!("booted version {version}"));
        }
        BootReport::Refused { reason } => {
            outcome.boot = Some(format!("refused: {reason}"));
            anyhow::bail!("the device refused to boot: {reason}");
        }
    }
    let started = Instant::now();
    let locked = device.lock().context("locking failed")?;
    timings.push((Step::Lock, started.elapsed()));
    log(&format!("lock: {locked}"));
    outcome.lock = Some(locked);
    Ok(())
}
