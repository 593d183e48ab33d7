//! The `fwsign-entry/v1` log entry: what one leaf of the log says about one signature.
//!
//! An entry is UTF-8 text, one field per line, in this order and no other, each line
//! `<field> <value>\n`:
//!
//! ```text
//! fwsign-entry/v1
//! image-digest 6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d
//! key-hash 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! key-name release-2026
//! version 1.2.3+4
//! security-counter 7
//! issuer https://token.actions.githubusercontent.com
//! subject repo:acme/fw:ref:refs/heads/main
//! repository acme/fw
//! ref refs/heads/main
//! commit 0123456789abcdef0123456789abcdef01234567
//! time 2026-12-02T12:00:00Z
//! ```
//!
//! - `image-digest`: the image digest the signature covers (the hash TLV), lowercase hex: 64
//!   digits for SHA-256 images, 128 for SHA-512 ones.
//! - `key-hash`: SHA-256 of the signing key's DER SubjectPublicKeyInfo, lowercase hex (what
//!   `fwsign getpub -e hash` prints, and the KEYHASH of a SHA-256 image).
//! - `version`: the image version `major.minor.revision+build`; `security-counter`: decimal,
//!   or `none`.
//! - `key-name`, `issuer`, `subject`, `repository`, `ref`, `commit`: who asked and with which
//!   key, as the signing service knows them; `-` when there is nothing to say.
//! - `time`: when the entry was made, RFC 3339 UTC (`YYYY-MM-DDTHH:MM:SSZ`).
//!
//! Every value is non-empty and free of control characters; nothing follows the last line.
//! Being one canonical text, an entry hashes to one leaf: an entry binds one image to one key.

use core::fmt;

use super::error::LogError;

/// The first line of an entry.
pub const ENTRY_HEADER: &str = "fwsign-entry/v1";

/// The fields of an entry, in their order.
pub const ENTRY_FIELDS: [&str; 11] = [
    "image-digest",
    "key-hash",
    "key-name",
    "version",
    "security-counter",
    "issuer",
    "subject",
    "repository",
    "ref",
    "commit",
    "time",
];

/// A `fwsign-entry/v1` entry; see the module documentation for each field. Parsed entries
/// borrow the text (`LogEntry<&str>`); a signer builds one with owned values
/// (`LogEntry<String>`) and writes it with `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogEntry<S> {
    /// Lowercase hex image digest.
    pub image_digest: S,
    /// Lowercase hex SHA-256 of the signing key's SubjectPublicKeyInfo.
    pub key_hash: S,
    /// The signing key's name.
    pub key_name: S,
    /// The image version.
    pub version: S,
    /// The security counter, or `none`.
    pub security_counter: S,
    /// Identity issuer (OIDC `iss`), or the API client kind.
    pub issuer: S,
    /// Identity subject.
    pub subject: S,
    /// Source repository.
    pub repository: S,
    /// Git ref.
    pub git_ref: S,
    /// Git commit.
    pub commit: S,
    /// RFC 3339 UTC time of the entry.
    pub time: S,
}

impl<'a> LogEntry<&'a str> {
    /// Parses and checks an entry's text.
    ///
    /// # Errors
    /// [`LogError::BadEntry`] naming the first missing, misplaced or malformed field.
    pub fn parse(text: &'a [u8]) -> Result<Self, LogError> {
        let text = core::str::from_utf8(text).map_err(|_| bad("header"))?;
        let body = text.strip_prefix(ENTRY_HEADER).and_then(|t| t.strip_prefix('\n'));
        let mut rest = body.ok_or(bad("header"))?;
        let mut values = [""; ENTRY_FIELDS.len()];
        for (name, value) in ENTRY_FIELDS.iter().zip(values.iter_mut()) {
            let (line, after) = rest.split_once('\n').ok_or(bad(name))?;
            let field = line.strip_prefix(name).and_then(|l| l.strip_prefix(' '));
            *value = field.filter(|v| is_valid_value(v)).ok_or(bad(name))?;
            rest = after;
        }
        if !rest.is_empty() {
            return Err(bad("end"));
        }
        let entry = Self::from_values(values);
        entry.check_formats()?;
        Ok(entry)
    }
}

impl<S> LogEntry<S> {
    /// The entry with `values` in [`ENTRY_FIELDS`] order.
    pub fn from_values(values: [S; ENTRY_FIELDS.len()]) -> Self {
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
        ] = values;
        Self {
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
        }
    }
}

impl<S: AsRef<str>> LogEntry<S> {
    /// The field values in [`ENTRY_FIELDS`] order.
    pub fn values(&self) -> [&str; ENTRY_FIELDS.len()] {
        [
            &self.image_digest,
            &self.key_hash,
            &self.key_name,
            &self.version,
            &self.security_counter,
            &self.issuer,
            &self.subject,
            &self.repository,
            &self.git_ref,
            &self.commit,
            &self.time,
        ]
        .map(AsRef::as_ref)
    }

    fn check_formats(&self) -> Result<(), LogError> {
        let (digest, key_hash) = (self.image_digest.as_ref(), self.key_hash.as_ref());
        if !matches!(digest.len(), 64 | 128) || !is_lower_hex(digest) {
            return Err(bad("image-digest"));
        }
        if key_hash.len() != 64 || !is_lower_hex(key_hash) {
            return Err(bad("key-hash"));
        }
        let counter = self.security_counter.as_ref();
        let too_large = |c: u64| c > u64::from(u32::MAX);
        if counter != "none" && super::checkpoint::parse_decimal(counter).is_none_or(too_large) {
            return Err(bad("security-counter"));
        }
        if !is_rfc3339_utc(self.time.as_ref()) {
            return Err(bad("time"));
        }
        Ok(())
    }

    /// Whether the entry names `digest` as the image digest.
    pub fn names_digest(&self, digest: &[u8]) -> bool {
        hex_equals(self.image_digest.as_ref(), digest)
    }

    /// Whether the entry names the key whose SubjectPublicKeyInfo has SHA-256 `key_hash`.
    pub fn names_key(&self, key_hash: &[u8; 32]) -> bool {
        hex_equals(self.key_hash.as_ref(), key_hash)
    }
}

/// Writes the canonical text of the entry (what [`LogEntry::parse`] reads back).
impl<S: AsRef<str>> fmt::Display for LogEntry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{ENTRY_HEADER}")?;
        for (name, value) in ENTRY_FIELDS.iter().zip(self.values()) {
            writeln!(f, "{name} {value}")?;
        }
        Ok(())
    }
}

fn bad(field: &'static str) -> LogError {
    LogError::BadEntry { field }
}

fn is_valid_value(value: &str) -> bool {
    !value.is_empty() && !value.chars().any(char::is_control)
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex_equals(hex: &str, bytes: &[u8]) -> bool {
    let digit = |d: u8| char::from(d).to_digit(16);
    hex.len() == bytes.len().saturating_mul(2)
        && hex.as_bytes().chunks_exact(2).zip(bytes).all(|(pair, byte)| match pair {
            [high, low] => digit(*high).zip(digit(*low)).is_some_and(|(h, l)| {
                h.checked_mul(16).and_then(|h| h.checked_add(l)) == Some(u32::from(*byte))
            }),
            _ => false,
        })
}

/// `YYYY-MM-DDTHH:MM:SSZ` with plausible ranges.
fn is_rfc3339_utc(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:ddZ";
    let shaped = bytes.len() == shape.len()
        && bytes
            .iter()
            .zip(shape)
            .all(|(b, s)| if *s == b'd' { b.is_ascii_digit() } else { b == s });
    let number =
        |range: core::ops::Range<usize>| text.get(range).and_then(|t| t.parse::<u8>().ok());
    shaped
        && number(5..7).is_some_and(|m| (1..=12).contains(&m))
        && number(8..10).is_some_and(|d| (1..=31).contains(&d))
        && number(11..13).is_some_and(|h| h < 24)
        && number(14..16).is_some_and(|m| m < 60)
        && number(17..19).is_some_and(|s| s < 61)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    const DIGEST: &str = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";
    const KEY_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn entry() -> LogEntry<&'static str> {
        LogEntry {
            image_digest: DIGEST,
            key_hash: KEY_HASH,
            key_name: "release-2026",
            version: "1.2.3+4",
            security_counter: "7",
            issuer: "https://token.actions.githubusercontent.com",
            subject: "repo:acme/fw:ref:refs/heads/main",
            repository: "acme/fw",
            git_ref: "refs/heads/main",
            commit: "0123456789abcdef0123456789abcdef01234567",
            time: "2026-12-02T12:00:00Z",
        }
    }

    #[test]
    fn round_trips_and_matches_the_documented_example() {
        let text = entry().to_string();
        assert!(text.starts_with("fwsign-entry/v1\nimage-digest 6e34"));
        assert!(text.ends_with("time 2026-12-02T12:00:00Z\n"));
        assert_eq!(LogEntry::parse(text.as_bytes()), Ok(entry()));
        let digest: std::vec::Vec<u8> =
            (0..32).map(|i| u8::from_str_radix(&DIGEST[2 * i..2 * i + 2], 16).unwrap()).collect();
        assert!(entry().names_digest(&digest));
        assert!(!entry().names_digest(&digest[..31]));
        let mut other = digest.clone();
        other[31] ^= 1;
        assert!(!entry().names_digest(&other));
    }

    #[test]
    fn refuses_each_malformed_field() {
        let text = entry().to_string();
        let field = |text: &str| match LogEntry::parse(text.as_bytes()) {
            Err(LogError::BadEntry { field }) => field,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(field(&text.replacen("fwsign-entry/v1", "fwsign-entry/v2", 1)), "header");
        assert_eq!(field(&text.replacen(DIGEST, &DIGEST.to_uppercase(), 1)), "image-digest");
        assert_eq!(field(&text.replacen(DIGEST, &DIGEST[1..], 1)), "image-digest");
        assert_eq!(field(&text.replacen(KEY_HASH, DIGEST.get(..62).unwrap(), 1)), "key-hash");
        assert_eq!(field(&text.replacen("release-2026", "", 1)), "key-name");
        assert_eq!(field(&text.replacen("release-2026", "a\tb", 1)), "key-name");
        assert_eq!(field(&text.replacen("counter 7", "counter 07", 1)), "security-counter");
        assert_eq!(field(&text.replacen("counter 7", "counter 4294967296", 1)), "security-counter");
        assert_eq!(field(&text.replacen("12:00:00Z", "12:00:00+01:00", 1)), "time");
        assert_eq!(field(&text.replacen("2026-12-02", "2026-13-02", 1)), "time");
        assert_eq!(field(&text.replacen("repository acme/fw\nref", "ref", 1)), "repository");
        assert_eq!(field(&std::format!("{text}extra line\n")), "end");
        assert_eq!(field(text.trim_end()), "time");
        let none = text.replacen("counter 7", "counter none", 1);
        assert_eq!(LogEntry::parse(none.as_bytes()).unwrap().security_counter, "none");
    }
}
