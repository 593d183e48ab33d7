//! Building `fwsign-entry/v1` entries; the format itself is defined (once) by
//! `verifier-core`'s [`LogEntry`], which both writes and reads it.

use verifier_core::tlog::{LogEntry, LogError, MAX_ENTRY_LEN};

use crate::TlogError;

/// An entry with owned values; build it, then write it with [`entry_text`].
pub type Entry = LogEntry<String>;

/// The canonical text of `entry`, checked by the verifier's own parser.
///
/// # Errors
/// [`TlogError::Format`] naming the field that is empty or malformed, or the entry being
/// longer than the verifier accepts.
pub fn entry_text(entry: &Entry) -> Result<String, TlogError> {
    let text = entry.to_string();
    if text.len() > MAX_ENTRY_LEN {
        return Err(LogError::TooLong { what: "entry", max: MAX_ENTRY_LEN }.into());
    }
    LogEntry::parse(text.as_bytes())?;
    Ok(text)
}

/// Parses an entry's text into owned values.
///
/// # Errors
/// [`TlogError::Format`] naming the malformed field.
pub fn parse_entry(text: &[u8]) -> Result<Entry, TlogError> {
    let values = LogEntry::parse(text)?.values().map(str::to_owned);
    Ok(LogEntry::from_values(values))
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
        let error = entry_text(&entry).unwrap_err().to_string();
        assert!(error.contains("key-name"), "{error}");
    }
}
