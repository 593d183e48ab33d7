//! Building `fwsign-entry/v1` entries; the format itself is defined (once) by
//! `verifier-core`'s [`LogEntry`], which both writes and reads it.

use verifier_core::tlog::LogEntry;

use crate::TlogError;

/// An entry's field values, owned, in the order of the format.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Lowercase hex image digest (the hash TLV).
    pub image_digest: String,
    /// Lowercase hex SHA-256 of the signing key's SubjectPublicKeyInfo.
    pub key_hash: String,
    /// The signing key's name.
    pub key_name: String,
    /// The image version.
    pub version: String,
    /// The security counter in decimal, or `none`.
    pub security_counter: String,
    /// Identity issuer, or the API client kind; `-` if none.
    pub issuer: String,
    /// Identity subject; `-` if none.
    pub subject: String,
    /// Source repository; `-` if none.
    pub repository: String,
    /// Git ref; `-` if none.
    pub git_ref: String,
    /// Git commit; `-` if none.
    pub commit: String,
    /// RFC 3339 UTC time, `YYYY-MM-DDTHH:MM:SSZ`.
    pub time: String,
}

impl Entry {
    fn view(&self) -> LogEntry<'_> {
        LogEntry {
            image_digest: &self.image_digest,
            key_hash: &self.key_hash,
            key_name: &self.key_name,
            version: &self.version,
            security_counter: &self.security_counter,
            issuer: &self.issuer,
            subject: &self.subject,
            repository: &self.repository,
            git_ref: &self.git_ref,
            commit: &self.commit,
            time: &self.time,
        }
    }

    /// The canonical entry text, checked by the verifier's own parser.
    ///
    /// # Errors
    /// [`TlogError::Format`] naming the field that is empty or malformed.
    pub fn to_text(&self) -> Result<String, TlogError> {
        let text = self.view().to_string();
        if text.len() > verifier_core::tlog::MAX_ENTRY_LEN {
            return Err(verifier_core::tlog::LogError::TooLong {
                what: "entry",
                max: verifier_core::tlog::MAX_ENTRY_LEN,
            }
            .into());
        }
        LogEntry::parse(text.as_bytes())?;
        Ok(text)
    }

    /// Parses an entry text.
    ///
    /// # Errors
    /// [`TlogError::Format`] naming the malformed field.
    pub fn parse(text: &[u8]) -> Result<Self, TlogError> {
        let entry = LogEntry::parse(text)?;
        let [
            image_digest,
            key_hash,
            key_name,
            version,
            security_counter,
            issuer,
            subject,
            repository,
            git_ref,
            commit,
            time,
        ] = entry.values().map(str::to_owned);
        Ok(Self {
            image_digest,
            key_hash,
            key_name,
            version,
            security_counter,
            issuer,
            subject,
            repository,
            git_ref,
            commit,
            time,
        })
    }
}

/// `seconds` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339_utc(seconds: u64) -> String {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_rfc3339() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_796_212_800), "2026-12-02T12:00:00Z");
    }

    #[test]
    fn empty_fields_are_refused_by_name() {
        let entry =
            Entry { image_digest: "ab".repeat(32), key_hash: "cd".repeat(32), ..Entry::default() };
        let error = entry.to_text().unwrap_err().to_string();
        assert!(error.contains("key-name"), "{error}");
    }
}
