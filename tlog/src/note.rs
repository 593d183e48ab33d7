//! Signing C2SP signed notes, and the verifier key text that names a note key.
//!
//! Verifying is `verifier-core`'s [`SignedNote`]; signing goes through [`NoteSigner`], so a key
//! in a file ([`Ed25519NoteSigner`]) and, later, a key in an HSM sign the same way.

use std::path::Path;

use verifier_core::tlog::{
    ED25519_KEY_TYPE, LogKey, SIGNATURE_PREFIX, SignedNote, is_valid_name, key_id,
};

use crate::{TlogError, base64_encode};

/// A key that signs notes.
pub trait NoteSigner {
    /// The key name (for a log: its origin).
    fn name(&self) -> &str;
    /// The key's 4-byte key id.
    fn key_id(&self) -> [u8; 4];
    /// Signs `message`, returning the signature bytes (64 for Ed25519).
    ///
    /// # Errors
    /// [`TlogError::Key`] if the key cannot sign.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TlogError>;
}

/// An Ed25519 note key held in memory.
pub struct Ed25519NoteSigner {
    name: String,
    key_pair: ed25519_compact::KeyPair,
}

impl Ed25519NoteSigner {
    /// The key `key_pair` under `name`.
    ///
    /// # Errors
    /// [`TlogError::Key`] if `name` is not a valid key name (empty, whitespace or `+`).
    pub fn new(name: &str, key_pair: ed25519_compact::KeyPair) -> Result<Self, TlogError> {
        if !is_valid_name(name) {
            return Err(TlogError::Key(format!("{name:?} is not a valid note key name")));
        }
        Ok(Self { name: name.to_owned(), key_pair })
    }

    /// Reads an Ed25519 private key from a PKCS#8 PEM file (`fwsign keygen -t ed25519`).
    ///
    /// # Errors
    /// [`TlogError::Key`] naming the file and the problem.
    pub fn from_pem_file(name: &str, path: &Path) -> Result<Self, TlogError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TlogError::Key(format!("{}: {e}", path.display())))?;
        let secret = ed25519_compact::SecretKey::from_pem(&text).map_err(|e| {
            TlogError::Key(format!(
                "{}: not an unencrypted Ed25519 PKCS#8 PEM key: {e}",
                path.display()
            ))
        })?;
        let key_pair = ed25519_compact::KeyPair::from_seed(secret.seed());
        Self::new(name, key_pair)
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        *self.key_pair.pk
    }

    /// The verifier key text of this key.
    pub fn verifier_key(&self) -> String {
        verifier_key(&self.name, &self.public_key())
    }
}

impl NoteSigner for Ed25519NoteSigner {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> [u8; 4] {
        key_id(&self.name, &self.public_key())
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TlogError> {
        Ok(self.key_pair.sk.sign(message, None).to_vec())
    }
}

/// The verifier key text `<name>+<8 hex key id>+<base64(0x01 ‖ public key)>`.
pub fn verifier_key(name: &str, public_key: &[u8; 32]) -> String {
    let id = key_id(name, public_key);
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let mut encoded = vec![ED25519_KEY_TYPE];
    encoded.extend_from_slice(public_key);
    format!("{name}+{hex}+{}", base64_encode(&encoded))
}

/// Parses verifier keys, one per line (empty lines and `#` comments skipped).
///
/// # Errors
/// [`TlogError::Format`] for a malformed line.
pub fn parse_verifier_keys(text: &str) -> Result<Vec<LogKey<'_>>, TlogError> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| LogKey::parse(line).map_err(TlogError::from))
        .collect()
}

/// Signs the note `text` (which must end in `\n`) with `signer`, appending to the note's
/// existing signatures if `text` is already a signed note's text.
///
/// # Errors
/// [`TlogError::Format`] if `text` is empty or does not end in a newline; signer errors.
pub fn sign_note(text: &str, signer: &dyn NoteSigner) -> Result<String, TlogError> {
    if text.is_empty() || !text.ends_with('\n') || text.contains("\n\n") {
        return Err(verifier_core::tlog::LogError::BadNote.into());
    }
    let signature = signer.sign(text.as_bytes())?;
    let mut encoded = signer.key_id().to_vec();
    encoded.extend_from_slice(&signature);
    Ok(format!("{text}\n{SIGNATURE_PREFIX}{} {}\n", signer.name(), base64_encode(&encoded)))
}

/// Verifies `note` against `keys`, returning its text and the index of the verifying key.
///
/// # Errors
/// [`TlogError::Format`] with the verifier's reason.
pub fn open_note<'n>(note: &'n str, keys: &[LogKey<'_>]) -> Result<(&'n str, usize), TlogError> {
    let parsed = SignedNote::parse(note)?;
    let index = parsed.verify(keys)?;
    Ok((parsed.text(), index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use verifier_core::tlog::LogError;

    fn signer(name: &str, seed: u8) -> Ed25519NoteSigner {
        let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32]));
        Ed25519NoteSigner::new(name, pair).unwrap()
    }

    #[test]
    fn signed_notes_open_with_the_verifier_key_only() {
        let log = signer("example.com/log", 1);
        let vkey = log.verifier_key();
        let key_file = format!("# the log\n{vkey}\n\n");
        let keys = parse_verifier_keys(&key_file).unwrap();
        assert_eq!(keys.len(), 1);
        let note = sign_note("example.com/log\n1\nAAAA\n", &log).unwrap();
        assert_eq!(open_note(&note, &keys).unwrap(), ("example.com/log\n1\nAAAA\n", 0));
        let other = signer("example.com/log", 2);
        let other_key = other.verifier_key();
        let other_keys = parse_verifier_keys(&other_key).unwrap();
        assert!(matches!(
            open_note(&note, &other_keys),
            Err(TlogError::Format(LogError::NoLogSignature))
        ));
        assert!(sign_note("no newline", &log).is_err());
        assert!(
            Ed25519NoteSigner::new(
                "two words",
                ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([3; 32]))
            )
            .is_err()
        );
    }
}
