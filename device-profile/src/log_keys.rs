//! The verifier keys of the transparency logs a device requires images to be logged in.
//!
//! A profile lists them under `[keys] transparency_log`, each entry either a C2SP note verifier
//! key (`<name>+<8 hex key id>+<base64(0x01 ‖ key)>`, what `fwsign log verifier-key` prints) or
//! a file holding such keys, one a line. Unlike signing keys they are read and checked when the
//! profile is loaded: they are short texts, and a device built with a key it cannot parse would
//! refuse every image.

use std::path::{Path, PathBuf};

use verifier_core::tlog::LogKey;

/// One log verifier key named by a profile, validated when the profile was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKeyText {
    text: String,
    file: Option<PathBuf>,
}

impl LogKeyText {
    /// The key text, `<name>+<key id>+<base64 key>`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The file it was read from, if the profile entry named one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The parsed key (every `LogKeyText` holds a valid one).
    pub fn key(&self) -> Option<LogKey<'_>> {
        LogKey::parse(&self.text).ok()
    }
}

/// What a verifier key looks like, for error messages.
const EXPECTED: &str =
    "<name>+<8 hex digits>+<base64(0x01 || Ed25519 key)> (fwsign log verifier-key)";

/// Parses a profile entry: a verifier key text, or a file of them resolved against
/// `profile_dir`.
pub(crate) fn parse(entry: &str, profile_dir: &Path) -> Result<Vec<LogKeyText>, String> {
    if LogKey::parse(entry).is_ok() {
        return Ok(vec![LogKeyText { text: entry.to_owned(), file: None }]);
    }
    if entry.is_empty() {
        return Err(format!("empty entry: expected a verifier key {EXPECTED} or a file of them"));
    }
    let path = profile_dir.join(entry);
    let text = std::fs::read_to_string(&path).map_err(|io| {
        format!("{entry:?} is neither a verifier key {EXPECTED} nor a readable file: {io}")
    })?;
    let keys = text
        .lines()
        .enumerate()
        .map(|(number, line)| (number, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(number, line)| match LogKey::parse(line) {
            Ok(_) => Ok(LogKeyText { text: line.to_owned(), file: Some(path.clone()) }),
            Err(_) => Err(format!(
                "{}:{}: {line:?} is not a verifier key: expected {EXPECTED}",
                path.display(),
                number + 1
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(format!("{} holds no verifier key", path.display()));
    }
    Ok(keys)
}
