//! `fwsign factory` end to end on virtual QEMU devices: the firmware comes from
//! `cargo xtask factory-firmware` (a real bootloader and demo application), the devices boot
//! under qemu-system-arm, and every refusal the line promises is checked from the outside:
//! through the exit status, the station's report and the device's flash.

#[allow(unused_imports)] // `common` re-exports helpers this file does not need.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{fwsign, text};

/// The factory firmware, built once per test run.
fn firmware() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        fwsign_tests::require_program("qemu-system-arm", "apt-get install qemu-system-arm");
        let root = fwsign_tests::workspace_root();
        let dir = root.join("target").join("factory-test-firmware");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["run", "--quiet", "-p", "xtask", "--", "factory-firmware", "--out"])
            .arg(&dir)
            .current_dir(&root)
            .status()
            .expect("cannot run cargo");
        assert!(status.success(), "cargo xtask factory-firmware failed");
        dir
    })
}

/// A station in its own directory, with the line's usual arguments.
struct Line {
    dir: tempfile::TempDir,
    /// Extra environment of every `fwsign factory provision`.
    env: Vec<(&'static str, String)>,
}

impl Line {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let station = "name = \"test-line\"\ndatabase = \"station.sqlite\"\n";
        std::fs::write(dir.path().join("station.toml"), station).expect("station.toml");
        Self { dir, env: Vec::new() }
    }

    /// From now on the station also sends its rows to the service at `url`, with `token` in
    /// the default token variable.
    fn send_to(&mut self, url: &str, token: &str) {
        let station = format!(
            "name = \"test-line\"\ndatabase = \"station.sqlite\"\n[service]\nurl = \"{url}\"\n"
        );
        std::fs::write(self.dir.path().join("station.toml"), station).expect("station.toml");
        self.env = vec![("FWSIGN_STATION_TOKEN", token.to_owned())];
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// `fwsign factory provision` of `count` virtual devices with `extra` arguments.
    fn provision(&self, count: usize, keys: &[&str], extra: &[&str]) -> Output {
        let firmware = firmware();
        let path = |name: &str| firmware.join(name).display().to_string();
        let profile = firmware.join("device.toml");
        let mut args = vec![
            "factory".to_owned(),
            "provision".to_owned(),
            "--device".to_owned(),
            profile.display().to_string(),
            "--bootloader".to_owned(),
            path("bootloader.elf"),
            "--image".to_owned(),
            path("app.signed.bin"),
            "--station".to_owned(),
            self.path("station.toml"),
            "--qemu".to_owned(),
            "mps2-an386".to_owned(),
            "--count".to_owned(),
            count.to_string(),
            "--keys".to_owned(),
        ];
        args.extend(keys.iter().map(|k| path(&format!("keys/{k}.pub.pem"))));
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        Command::new(env!("CARGO_BIN_EXE_fwsign"))
            .current_dir(self.dir.path())
            .args(&args)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .output()
            .expect("cannot run fwsign")
    }

    /// The station's rows as JSON.
    fn report(&self) -> Vec<serde_json::Value> {
        let station = self.path("station.toml");
        let output =
            fwsign(self.dir.path(), &["factory", "report", "--station", &station, "--json"]);
        let rows: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
        rows.as_array().expect("an array").clone()
    }

    /// Changes one column of row `id` in the station's database, as a station of another
    /// version, or a damaged database, might hold it.
    fn set_row(&self, id: i64, column: &str, value: &str) {
        let url = format!("sqlite:{}", self.path("station.sqlite"));
        let sql = format!("UPDATE devices SET {column} = ? WHERE id = ?");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(async {
            let mut connection = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
                .await
                .expect("station database");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(value)
                .bind(id)
                .execute(&mut connection)
                .await
                .expect("update");
        });
    }

    fn device_file(&self, index: usize, name: &str) -> PathBuf {
        self.dir.path().join("qemu-devices").join(format!("device-{index}")).join(name)
    }
}

const KEYS: [&str; 2] = ["ed25519", "p256"];

#[test]
fn provisions_devices_records_them_and_refuses_them_twice_unless_reworked() {
    let line = Line::new();
    let output = line.provision(2, &KEYS, &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("2 of 2 devices good"), "{}", text(&output));
    let rows = line.report();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row["status"], "good", "{row}");
        assert_eq!(row["version"], "1.0.0");
        assert_eq!(row["security_counter"], 1);
        assert_eq!(row["read_back"], "ok");
        assert_eq!(row["station"], "test-line");
        assert_eq!(row["key_hashes"].as_str().map(|k| k.split(',').count()), Some(2));
        assert!(row["boot"].as_str().is_some_and(|b| b.contains("version=1.0.0")), "{row}");
    }
    assert_ne!(rows[0]["identity"], rows[1]["identity"]);
    assert_ne!(rows[0]["record_sha256"], rows[1]["record_sha256"], "each device its own record");

    let again = line.provision(1, &KEYS, &[]);
    assert!(!again.status.success(), "a device on record was provisioned again");
    assert!(text(&again).contains("already provisioned"), "{}", text(&again));
    let rows = line.report();
    assert_eq!(rows[2]["status"], "refused");

    let reworked = line.provision(1, &KEYS, &["--rework"]);
    assert!(reworked.status.success(), "{}", text(&reworked));
    let rows = line.report();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3]["status"], "good");
    assert_eq!(rows[3]["previous"], rows[0]["id"], "the rework points at the history");
    assert_eq!(rows[0]["status"], "good", "the history is kept");

    let station = line.path("station.toml");
    let csv = fwsign(line.dir.path(), &["factory", "report", "--station", &station, "--csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout).into_owned();
    assert!(csv.starts_with("id,identity,station,"), "{csv}");
    assert_eq!(csv.lines().count(), 5, "{csv}");
    let later = fwsign(
        line.dir.path(),
        &["factory", "report", "--station", &station, "--json", "--since", "2999-01-01"],
    );
    assert_eq!(String::from_utf8_lossy(&later.stdout).trim(), "[]");
}

#[test]
fn refuses_an_application_signed_by_a_key_not_provisioned() {
    let line = Line::new();
    // The application is signed by the Ed25519 key; only the P-256 key is provisioned.
    let output = line.provision(1, &["p256"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("refusing to provision"), "{}", text(&output));
    assert!(!line.device_file(0, "fwsign-flash.bin").exists(), "a device was flashed");
    assert!(!line.dir.path().join("station.sqlite").exists(), "a device was recorded");
}

#[test]
fn a_read_back_mismatch_marks_the_device_failed() {
    let line = Line::new();
    // Flash that takes every write and keeps nothing, as a silently failing probe would.
    let flash = line.device_file(0, "fwsign-flash.bin");
    std::fs::create_dir_all(flash.parent().expect("parent")).expect("device dir");
    std::os::unix::fs::symlink("/dev/null", &flash).expect("symlink");
    let output = line.provision(1, &KEYS, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let rows = line.report();
    assert_eq!(rows[0]["status"], "failed", "{rows:?}");
    let error = rows[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("read-back mismatch"), "{error}");
    assert!(rows[0]["boot"].is_null(), "a device that failed read-back was booted");
}

#[test]
fn a_station_crash_mid_device_is_found_and_the_device_redone() {
    let line = Line::new();
    let crashed = line.provision(1, &KEYS, &["--simulate-crash-after", "flash"]);
    assert_eq!(crashed.status.code(), Some(3), "{}", text(&crashed));
    let rows = line.report();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "incomplete");

    let output = line.provision(1, &KEYS, &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("left incomplete"), "{}", text(&output));
    let rows = line.report();
    assert_eq!(rows[1]["status"], "good");
    assert_eq!(rows[1]["identity"], rows[0]["identity"]);
    assert_eq!(rows[1]["previous"], rows[0]["id"]);
}

#[test]
fn a_device_that_finds_its_record_damaged_is_marked_failed_not_good() {
    let line = Line::new();
    let output = line.provision(1, &KEYS, &["--simulate-record-retention-fault"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let rows = line.report();
    assert_eq!(rows[0]["status"], "failed", "{rows:?}");
    assert_eq!(rows[0]["read_back"], "ok", "the damage came after the read-back: {rows:?}");
    let boot = rows[0]["boot"].as_str().unwrap_or_default();
    assert!(boot.contains("safe state"), "the device did not stop in its safe state: {boot}");
    assert!(rows[0]["lock"].is_null(), "a device that refused to boot was locked: {rows:?}");

    let reworked = line.provision(1, &KEYS, &[]);
    assert!(reworked.status.success(), "a fresh record did not mend it: {}", text(&reworked));
    assert_eq!(line.report()[1]["status"], "good");
}

/// `fwsign serve` in `dir` with a development key, a station token for `test-line` and an
/// auditor token; the service and both tokens.
fn service(dir: &Path) -> (common::Served, String, String) {
    fwsign(dir, &["keygen", "-k", "dev.pem", "-t", "ed25519"]);
    std::fs::write(dir.join("policy.cedar"), "forbid (principal, action, resource);\n")
        .expect("policy");
    let config = "listen = \"127.0.0.1:8443\"\ndatabase = \"sqlite:service.db\"\n\
                  policy = \"policy.cedar\"\n[keys.dev]\nkey = \"dev.pem\"\n";
    std::fs::write(dir.join("service.toml"), config).expect("service.toml");
    let token = |name: &str, role: &str| {
        let create =
            ["token", "create", "--config", "service.toml", "--name", name, "--role", role];
        String::from_utf8_lossy(&fwsign(dir, &create).stdout).trim().to_owned()
    };
    let (station, auditor) = (token("test-line", "station"), token("carol", "auditor"));
    (serve(dir), station, auditor)
}

fn serve(dir: &Path) -> common::Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fwsign"));
    command.current_dir(dir);
    common::serve(command, "service.toml")
}

/// The service's audit records of provisioned devices.
fn provisioned_records(url: &str, auditor: &str) -> Vec<serde_json::Value> {
    let mut reply = ureq::get(&format!("{url}/v1/audit"))
        .header("authorization", &format!("Bearer {auditor}"))
        .call()
        .expect("audit");
    let records: Vec<serde_json::Value> =
        serde_json::from_str(&reply.body_mut().read_to_string().expect("body")).expect("JSON");
    records
        .iter()
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(r["body"].as_str()?).ok())
        .filter(|body| body["decision"] == "provisioned")
        .collect()
}

#[test]
fn every_finished_device_reaches_the_service_audit_trail_even_after_an_outage() {
    let service_dir = tempfile::tempdir().expect("temp dir");
    let (served, station, auditor) = service(service_dir.path());
    let mut line = Line::new();
    line.send_to(&served.url, &station);

    let output = line.provision(1, &KEYS, &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("1 device record(s) sent"), "{}", text(&output));
    let rows = line.report();
    let records = provisioned_records(&served.url, &auditor);
    assert_eq!(records.len(), 1, "{records:?}");
    let device = &records[0]["device"];
    assert_eq!(device["identity"], rows[0]["identity"]);
    assert_eq!(device["record_sha256"], rows[0]["record_sha256"]);
    assert_eq!(device["station"], "test-line");
    assert_eq!(records[0]["identity"]["name"], "test-line", "recorded under the station's token");
    assert!(rows[0]["service_seq"].is_i64(), "{rows:?}");

    drop(served);
    let offline = line.provision(1, &KEYS, &["--rework"]);
    assert!(offline.status.success(), "an absent service failed the device: {}", text(&offline));
    assert!(text(&offline).contains("not sent"), "{}", text(&offline));
    assert!(line.report()[1]["service_seq"].is_null());

    // A row the service refuses as it is holds back none of the rows after it.
    let unsent = line.report()[1].clone();
    let id = unsent["id"].as_i64().expect("row id");
    let digest = unsent["record_sha256"].as_str().expect("record digest").to_owned();
    line.set_row(id, "record_sha256", &digest.to_uppercase());
    let served = serve(service_dir.path());
    line.send_to(&served.url, &station);
    let back = line.provision(1, &KEYS, &["--rework"]);
    assert!(back.status.success(), "{}", text(&back));
    assert!(text(&back).contains("1 device record(s) sent"), "{}", text(&back));
    assert!(text(&back).contains("refused the record of device"), "{}", text(&back));
    assert!(text(&back).contains("`record_sha256`: expected"), "{}", text(&back));
    let rows = line.report();
    assert!(rows[1]["service_seq"].is_null() && rows[2]["service_seq"].is_i64(), "{rows:?}");

    // Mended, it is sent with the next run, the backlog first.
    line.set_row(id, "record_sha256", &digest);
    let mended = line.provision(1, &KEYS, &["--rework"]);
    assert!(mended.status.success(), "{}", text(&mended));
    assert!(text(&mended).contains("2 device record(s) sent"), "{}", text(&mended));
    let records = provisioned_records(&served.url, &auditor);
    assert_eq!(records.len(), 4, "{records:?}");
    let rows = line.report();
    assert!(rows.iter().all(|row| row["service_seq"].is_i64()), "{rows:?}");
}
