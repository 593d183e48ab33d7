//! The station: its configuration file and the database holding one row per device attempt.
//!
//! Rows are never deleted: a device provisioned again (`--rework`) or redone after a station
//! crash gets a new row, and the old one stays as history. A row is written `incomplete`
//! before anything touches the device and finished (`good` or `failed`) after the last step,
//! so a crash leaves evidence the next run finds.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use anyhow::Context as _;
use fwsign_service::factory::ProvisionedDevice;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteRow};
use sqlx::{Connection as _, Row as _, SqliteConnection};

/// `station.toml`: who this station is and where it records devices.
#[derive(Debug, Clone)]
pub(crate) struct Station {
    /// The station's name, recorded with every device.
    pub(crate) name: String,
    /// The SQLite database file (relative paths are relative to `station.toml`).
    pub(crate) database: PathBuf,
    /// The signing service that also records every device (`[service]`), if any.
    pub(crate) service: Option<ServiceLink>,
}

/// `[service]` of `station.toml`: where finished rows are sent ([`super::upload`]).
#[derive(Debug, Clone)]
pub(crate) struct ServiceLink {
    /// The service's base URL.
    pub(crate) url: String,
    /// The environment variable holding the station's API token (role `station`).
    pub(crate) token_env: String,
    /// A PEM file of certificate authorities to trust, for a service with a private CA.
    pub(crate) ca_cert: Option<PathBuf>,
}

/// The token's environment variable when `[service]` names none.
const DEFAULT_TOKEN_ENV: &str = "FWSIGN_STATION_TOKEN";

impl Station {
    /// Reads and checks `path`.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let origin = format!("--station {}", path.display());
        let text = std::fs::read_to_string(path).with_context(|| origin.clone())?;
        let table: toml::Table = toml::from_str(&text).with_context(|| origin.clone())?;
        let field = |name: &str| -> anyhow::Result<String> {
            text_field(&table, name)
                .and_then(|value| value.with_context(|| format!("`{name}` is missing")))
                .with_context(|| origin.clone())
        };
        let known = ["name", "database", "service"];
        if let Some(unknown) = table.keys().find(|k| !known.contains(&k.as_str())) {
            anyhow::bail!(
                "{origin}: unknown field `{unknown}` (expected `name`, `database` and `[service]`)"
            );
        }
        let database = PathBuf::from(field("database")?);
        let base = path.parent().unwrap_or(Path::new("."));
        let service = match table.get("service") {
            Some(toml::Value::Table(service)) => Some(ServiceLink::from_table(service, base)),
            Some(_) => anyhow::bail!("{origin}: `service` must be a table, `[service]`"),
            None => None,
        };
        let service = service.transpose().with_context(|| format!("{origin}: [service]"))?;
        Ok(Self { name: field("name")?, database: base.join(database), service })
    }
}

impl ServiceLink {
    fn from_table(table: &toml::Table, base: &Path) -> anyhow::Result<Self> {
        let text = |name: &str| text_field(table, name);
        let known = ["url", "token_env", "ca_cert"];
        if let Some(unknown) = table.keys().find(|k| !known.contains(&k.as_str())) {
            anyhow::bail!("unknown field `{unknown}` (expected `url`, `token_env`, `ca_cert`)");
        }
        let url = text("url")?.context("`url` is missing (the signing service's base URL)")?;
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "`url`: expected an http:// or https:// URL, found {url:?}"
        );
        Ok(Self {
            url,
            token_env: text("token_env")?.unwrap_or_else(|| DEFAULT_TOKEN_ENV.to_owned()),
            ca_cert: text("ca_cert")?.map(|file| base.join(file)),
        })
    }
}

/// The non-empty string `name` of `table`, if present.
fn text_field(table: &toml::Table, name: &str) -> anyhow::Result<Option<String>> {
    match table.get(name) {
        Some(toml::Value::String(value)) if !value.trim().is_empty() => Ok(Some(value.clone())),
        Some(_) => anyhow::bail!("`{name}` must be a non-empty string"),
        None => Ok(None),
    }
}

/// How a device attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Started and not finished: the station stopped mid-device.
    Incomplete,
    /// Every step passed.
    Good,
    /// A step failed; `error` says which.
    Failed,
    /// Not attempted: the device is already on record (no `--rework`).
    Refused,
}

impl Status {
    /// Its name in the database and reports.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Incomplete => "incomplete",
            Self::Good => "good",
            Self::Failed => "failed",
            Self::Refused => "refused",
        }
    }
}

/// What is written before a device is touched.
#[derive(Debug, Clone)]
pub(crate) struct NewDevice<'a> {
    /// The device's identity (nRF52840: FICR DEVICEID; QEMU: the virtual device's id).
    pub(crate) identity: &'a str,
    /// The probe or fixture it is on.
    pub(crate) probe: &'a str,
    /// SHA-256 of the bootloader, the provisioning record and the application, hex.
    pub(crate) digests: [&'a str; 3],
    /// The application's version.
    pub(crate) version: &'a str,
    /// The application's (and the record's initial) security counter.
    pub(crate) security_counter: u32,
    /// The provisioned key hashes, hex, comma-separated.
    pub(crate) key_hashes: &'a str,
    /// The row this one reworks or redoes, if any.
    pub(crate) previous: Option<i64>,
}

/// The step results written when a device attempt ends.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    /// Read-back comparison result.
    pub(crate) read_back: Option<String>,
    /// What the device reported after reset.
    pub(crate) boot: Option<String>,
    /// Lock result.
    pub(crate) lock: Option<String>,
    /// Why the attempt failed.
    pub(crate) error: Option<String>,
}

/// A previous attempt on a device.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Previous {
    /// Its row.
    pub(crate) id: i64,
    /// How it ended.
    pub(crate) status: &'static str,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS devices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    identity TEXT NOT NULL,
    station TEXT NOT NULL,
    probe TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    bootloader_sha256 TEXT NOT NULL,
    record_sha256 TEXT NOT NULL,
    application_sha256 TEXT NOT NULL,
    version TEXT NOT NULL,
    security_counter INTEGER NOT NULL,
    key_hashes TEXT NOT NULL,
    verify TEXT NOT NULL,
    read_back TEXT,
    boot TEXT,
    lock TEXT,
    status TEXT NOT NULL CHECK (status IN ('incomplete', 'good', 'failed', 'refused')),
    error TEXT,
    previous INTEGER REFERENCES devices(id),
    service_seq INTEGER
);
CREATE INDEX IF NOT EXISTS devices_identity ON devices(identity);
CREATE INDEX IF NOT EXISTS devices_started ON devices(started_at);";

/// Adds `service_seq` to a database made before stations sent rows to the service.
const ADD_SERVICE_SEQ: &str = "ALTER TABLE devices ADD COLUMN service_seq INTEGER";

/// The station's database.
pub(crate) struct Database {
    runtime: tokio::runtime::Runtime,
    connection: SqliteConnection,
    station: String,
    path: PathBuf,
}

impl Database {
    /// Opens (creating if needed) the database of `station`.
    pub(crate) fn open(station: &Station) -> anyhow::Result<Self> {
        let path = &station.database;
        let origin = || format!("station database {}", path.display());
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let options = SqliteConnectOptions::from_str("sqlite:")
            .with_context(origin)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let connection = runtime.block_on(async {
            let mut connection = SqliteConnection::connect_with(&options).await?;
            sqlx::raw_sql(SCHEMA).execute(&mut connection).await?;
            let has_service_seq: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pragma_table_info('devices') WHERE name = 'service_seq'",
            )
            .fetch_one(&mut connection)
            .await?;
            if has_service_seq == 0 {
                sqlx::raw_sql(ADD_SERVICE_SEQ).execute(&mut connection).await?;
            }
            Ok::<_, sqlx::Error>(connection)
        });
        let connection = connection.with_context(origin)?;
        Ok(Self { runtime, connection, station: station.name.clone(), path: path.clone() })
    }

    fn context(&self) -> String {
        format!("station database {}", self.path.display())
    }

    /// The latest attempt on `identity`, if any.
    pub(crate) fn latest(&mut self, identity: &str) -> anyhow::Result<Option<Previous>> {
        let query = sqlx::query("SELECT id, status FROM devices WHERE identity = ? AND status != 'refused' ORDER BY id DESC LIMIT 1")
            .bind(identity);
        let row = self.runtime.block_on(query.fetch_optional(&mut self.connection));
        let row = row.with_context(|| self.context())?;
        row.map(|row| {
            let status: String = row.try_get("status")?;
            let status = [Status::Incomplete, Status::Good, Status::Failed]
                .into_iter()
                .find(|s| s.as_str() == status)
                .map_or("unknown", Status::as_str);
            Ok(Previous { id: row.try_get("id")?, status })
        })
        .transpose()
    }

    /// Writes a new attempt (`status`, normally incomplete); returns its row.
    pub(crate) fn start(&mut self, device: &NewDevice<'_>, status: Status) -> anyhow::Result<i64> {
        let [bootloader, record, application] = device.digests;
        let query = sqlx::query(
            "INSERT INTO devices (identity, station, probe, started_at, bootloader_sha256,
                record_sha256, application_sha256, version, security_counter, key_hashes,
                verify, status, previous)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok', ?, ?) RETURNING id",
        )
        .bind(device.identity)
        .bind(&self.station)
        .bind(device.probe)
        .bind(now())
        .bind(bootloader)
        .bind(record)
        .bind(application)
        .bind(device.version)
        .bind(i64::from(device.security_counter))
        .bind(device.key_hashes)
        .bind(status.as_str())
        .bind(device.previous);
        let row = self.runtime.block_on(query.fetch_one(&mut self.connection));
        Ok(row.with_context(|| self.context())?.try_get("id")?)
    }

    /// Ends the attempt `id` with `status` and the step results.
    pub(crate) fn finish(
        &mut self,
        id: i64,
        status: Status,
        outcome: &Outcome,
    ) -> anyhow::Result<()> {
        let query = sqlx::query(
            "UPDATE devices SET finished_at = ?, status = ?, read_back = ?, boot = ?, lock = ?,
                error = ? WHERE id = ?",
        )
        .bind(now())
        .bind(status.as_str())
        .bind(&outcome.read_back)
        .bind(&outcome.boot)
        .bind(&outcome.lock)
        .bind(&outcome.error)
        .bind(id);
        self.runtime
            .block_on(query.execute(&mut self.connection))
            .with_context(|| self.context())?;
        Ok(())
    }

    /// The finished rows not yet recorded by the signing service, oldest first, as it takes
    /// them; each with its row id.
    pub(crate) fn unsent(&mut self) -> anyhow::Result<Vec<(i64, ProvisionedDevice)>> {
        let query = sqlx::query(
            "SELECT * FROM devices WHERE service_seq IS NULL AND status != 'incomplete' ORDER BY id",
        );
        let rows = self.runtime.block_on(query.fetch_all(&mut self.connection));
        let rows = rows.with_context(|| self.context())?;
        rows.iter().map(|row| Ok((row.try_get("id")?, provisioned_device(row)?))).collect()
    }

    /// Notes that the service recorded row `id` as its audit record `seq`.
    pub(crate) fn mark_sent(&mut self, id: i64, seq: u64) -> anyhow::Result<()> {
        let seq = i64::try_from(seq).context("audit sequence number out of range")?;
        let query =
            sqlx::query("UPDATE devices SET service_seq = ? WHERE id = ?").bind(seq).bind(id);
        self.runtime
            .block_on(query.execute(&mut self.connection))
            .with_context(|| self.context())?;
        Ok(())
    }

    /// Every row started at or after `since` (Unix seconds), oldest first, as JSON objects.
    pub(crate) fn since(&mut self, since: i64) -> anyhow::Result<Vec<serde_json::Value>> {
        let query =
            sqlx::query("SELECT * FROM devices WHERE started_at >= ? ORDER BY id").bind(since);
        let rows = self.runtime.block_on(query.fetch_all(&mut self.connection));
        rows.with_context(|| self.context())?.iter().map(row_json).collect()
    }
}

/// The report's columns, in order.
pub(crate) const COLUMNS: [&str; 20] = [
    "id",
    "identity",
    "station",
    "probe",
    "started_at",
    "finished_at",
    "bootloader_sha256",
    "record_sha256",
    "application_sha256",
    "version",
    "security_counter",
    "key_hashes",
    "verify",
    "read_back",
    "boot",
    "lock",
    "status",
    "error",
    "previous",
    "service_seq",
];

fn row_json(row: &SqliteRow) -> anyhow::Result<serde_json::Value> {
    let mut object = serde_json::Map::new();
    for column in COLUMNS {
        let value = match column {
            "id" | "security_counter" => json!(row.try_get::<i64, _>(column)?),
            "finished_at" | "previous" | "service_seq" => {
                json!(row.try_get::<Option<i64>, _>(column)?)
            }
            "started_at" => json!(row.try_get::<i64, _>(column)?),
            _ => json!(row.try_get::<Option<String>, _>(column)?),
        };
        object.insert(column.to_owned(), value);
    }
    Ok(serde_json::Value::Object(object))
}

/// The row as the signing service takes it.
fn provisioned_device(row: &SqliteRow) -> anyhow::Result<ProvisionedDevice> {
    let text = |column: &str| row.try_get::<String, _>(column);
    let key_hashes = text("key_hashes")?.split(',').map(str::to_owned).collect();
    Ok(ProvisionedDevice {
        station: text("station")?,
        station_row: row.try_get("id")?,
        identity: text("identity")?,
        probe: text("probe")?,
        status: text("status")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        bootloader_sha256: text("bootloader_sha256")?,
        record_sha256: text("record_sha256")?,
        application_sha256: text("application_sha256")?,
        version: text("version")?,
        security_counter: u32::try_from(row.try_get::<i64, _>("security_counter")?)?,
        key_hashes,
        read_back: row.try_get("read_back")?,
        boot: row.try_get("boot")?,
        lock: row.try_get("lock")?,
        error: row.try_get("error")?,
    })
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Station::load` of `text`, as an error message.
    fn refusal(text: &str) -> String {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("station.toml");
        std::fs::write(&path, text).expect("station.toml");
        format!("{:#}", Station::load(&path).expect_err("refused"))
    }

    #[test]
    fn a_bad_station_file_names_the_file_and_the_field() {
        let base = "name = \"line-1\"\ndatabase = \"s.sqlite\"\n";
        for (text, field) in [
            ("database = \"s.sqlite\"\n", "`name` is missing"),
            ("name = \"\"\ndatabase = \"s.sqlite\"\n", "`name` must be a non-empty string"),
            (&format!("{base}colour = \"red\"\n"), "unknown field `colour`"),
            (&format!("{base}service = \"http://x\"\n"), "`service` must be a table"),
            (&format!("{base}[service]\ntoken_env = \"T\"\n"), "`url` is missing"),
            (&format!("{base}[service]\nurl = \"ftp://x\"\n"), "`url`: expected an http://"),
            (&format!("{base}[service]\nurl = \"http://x\"\npin = 1\n"), "unknown field `pin`"),
        ] {
            let error = refusal(text);
            assert!(error.contains("--station") && error.contains("station.toml"), "{error}");
            assert!(error.contains(field), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_service_table_takes_defaults_and_paths_beside_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("station.toml");
        let text = "name = \"l\"\ndatabase = \"s.sqlite\"\n[service]\nurl = \"https://signer\"\n\
                    ca_cert = \"ca.pem\"\n";
        std::fs::write(&path, text).expect("station.toml");
        let station = Station::load(&path).expect("loads");
        let service = station.service.expect("[service]");
        assert_eq!(service.token_env, DEFAULT_TOKEN_ENV);
        assert_eq!(service.ca_cert, Some(dir.path().join("ca.pem")));
        assert_eq!(station.database, dir.path().join("s.sqlite"));
    }
}
