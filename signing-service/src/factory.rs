//! What a factory station reports about a device it provisioned (`POST /v1/factory/devices`).
//!
//! The station (`fwsign factory provision`) keeps its own database, so a line runs when the
//! service is away; each finished attempt is also sent here, where it becomes a record of the
//! same hash-chained audit trail as every signature. The security team then sees, in one
//! place, which devices trust which key hashes and which application each left the line with.
//! The format is defined once, here, and used by the station and the service alike.

use serde::{Deserialize, Serialize};

/// One device attempt, as the station recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionedDevice {
    /// The station's name (`station.toml`).
    pub station: String,
    /// The station's own row id for this attempt.
    pub station_row: i64,
    /// The device's identity (nRF52840: FICR DEVICEID).
    pub identity: String,
    /// The probe or fixture it was on.
    pub probe: String,
    /// `good`, `failed` or `refused`.
    pub status: String,
    /// When the attempt started and finished, seconds since the Unix epoch.
    pub started_at: i64,
    /// When it finished.
    pub finished_at: Option<i64>,
    /// SHA-256 of the bootloader, hex.
    pub bootloader_sha256: String,
    /// SHA-256 of the device's provisioning record, hex.
    pub record_sha256: String,
    /// SHA-256 of the signed application, hex.
    pub application_sha256: String,
    /// The application's version.
    pub version: String,
    /// The application's (and the record's initial) security counter.
    pub security_counter: u32,
    /// The provisioned key hashes (SHA-256 of each key's SPKI, hex), in slot order.
    pub key_hashes: Vec<String>,
    /// The read-back result, if the attempt got that far.
    pub read_back: Option<String>,
    /// What the device reported after reset.
    pub boot: Option<String>,
    /// The lock result.
    pub lock: Option<String>,
    /// Why the attempt failed or was refused.
    pub error: Option<String>,
}

/// The statuses a station sends: an `incomplete` attempt is sent once it ends.
pub const STATUSES: [&str; 3] = ["good", "failed", "refused"];

/// Longest identity, station, probe or version accepted.
const MAX_NAME: usize = 128;
/// Longest free-text field (boot report, error) accepted.
const MAX_TEXT: usize = 4096;

impl ProvisionedDevice {
    /// Checks every field a reader of the audit trail relies on.
    ///
    /// # Errors
    /// The field and what was expected.
    pub fn check(&self) -> Result<(), String> {
        for (field, value) in [
            ("station", &self.station),
            ("identity", &self.identity),
            ("probe", &self.probe),
            ("version", &self.version),
        ] {
            if value.trim().is_empty() || value.len() > MAX_NAME {
                return Err(format!("`{field}`: expected 1 to {MAX_NAME} characters"));
            }
        }
        if !STATUSES.contains(&self.status.as_str()) {
            return Err(format!("`status`: expected one of {}", STATUSES.join(", ")));
        }
        for (field, value) in [
            ("bootloader_sha256", &self.bootloader_sha256),
            ("record_sha256", &self.record_sha256),
            ("application_sha256", &self.application_sha256),
        ] {
            check_sha256(field, value)?;
        }
        if !(1..=4).contains(&self.key_hashes.len()) {
            return Err("`key_hashes`: expected 1 to 4 key hashes".into());
        }
        for hash in &self.key_hashes {
            check_sha256("key_hashes", hash)?;
        }
        for (field, value) in [
            ("read_back", &self.read_back),
            ("boot", &self.boot),
            ("lock", &self.lock),
            ("error", &self.error),
        ] {
            if value.as_ref().is_some_and(|text| text.len() > MAX_TEXT) {
                return Err(format!("`{field}`: longer than {MAX_TEXT} bytes"));
            }
        }
        Ok(())
    }
}

fn check_sha256(field: &str, value: &str) -> Result<(), String> {
    let hex = value.len() == 64
        && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex {
        Ok(())
    } else {
        Err(format!("`{field}`: expected a SHA-256 digest, 64 lowercase hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> ProvisionedDevice {
        ProvisionedDevice {
            station: "line-1".into(),
            station_row: 7,
            identity: "qemu-0011223344556677".into(),
            probe: "qemu:mps2-an386:0".into(),
            status: "good".into(),
            started_at: 1_790_000_000,
            finished_at: Some(1_790_000_002),
            bootloader_sha256: "a".repeat(64),
            record_sha256: "b".repeat(64),
            application_sha256: "c".repeat(64),
            version: "1.0.0".into(),
            security_counter: 1,
            key_hashes: vec!["d".repeat(64)],
            read_back: Some("ok".into()),
            boot: Some("version=1.0.0".into()),
            lock: Some("locked".into()),
            error: None,
        }
    }

    #[test]
    fn a_complete_record_passes_and_each_bad_field_is_named() {
        assert_eq!(device().check(), Ok(()));
        type Spoil = fn(&mut ProvisionedDevice);
        let bad: [(&str, Spoil); 6] = [
            ("identity", |d| d.identity = String::new()),
            ("status", |d| d.status = "incomplete".into()),
            ("record_sha256", |d| d.record_sha256 = "B".repeat(64)),
            ("key_hashes", |d| d.key_hashes.clear()),
            ("key_hashes", |d| d.key_hashes = vec!["e".repeat(63)]),
            ("error", |d| d.error = Some("x".repeat(MAX_TEXT + 1))),
        ];
        for (field, spoil) in bad {
            let mut record = device();
            spoil(&mut record);
            let error = record.check().expect_err(field);
            assert!(error.contains(field), "{error}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut json = serde_json::to_value(device()).expect("json");
        json["approved_by"] = "nobody".into();
        assert!(serde_json::from_value::<ProvisionedDevice>(json).is_err());
    }
}
