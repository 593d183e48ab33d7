//! C2SP signed notes: log verifier keys and checkpoint signatures (Ed25519, type 0x01).
//!
//! A note is its text (lines ending in `\n`), an empty line, then signature lines
//! `— <key name> <base64(key id ‖ signature)>`. A signature line naming a key the verifier does
//! not hold is skipped (witnesses and other logs may sign too), but one by a held key must
//! verify: a bad signature by a trusted key means tampering, and refuses the note.

use super::MAX_NOTE_SIGNATURES;
use super::base64;
use super::error::LogError;
use crate::hash::{HashAlgorithm, Hasher};

/// The signature type byte of Ed25519 signed-note keys.
pub const ED25519_KEY_TYPE: u8 = 0x01;

/// A signature line's prefix: U+2014 EM DASH and a space.
pub const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A log's Ed25519 note verifier key: its name, key id and public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogKey<'a> {
    name: &'a str,
    key_id: [u8; 4],
    public_key: [u8; 32],
}

impl<'a> LogKey<'a> {
    /// The key `name` with the Ed25519 `public_key`; its key id is computed.
    ///
    /// # Errors
    /// [`LogError::BadLogKey`] if `name` is empty or has whitespace or `+`.
    pub fn new(name: &'a str, public_key: [u8; 32]) -> Result<Self, LogError> {
        if !is_valid_name(name) {
            return Err(LogError::BadLogKey);
        }
        Ok(Self { name, key_id: key_id(name, &public_key), public_key })
    }

    /// The key `name` with `key_id` and the Ed25519 `public_key`, as [`LogKey::parse`] found
    /// them: for key tables generated at build time. Nothing is checked; a wrong key id only
    /// makes the key match no signature line, so every checkpoint is refused.
    pub const fn from_parts(name: &'a str, key_id: [u8; 4], public_key: [u8; 32]) -> Self {
        Self { name, key_id, public_key }
    }

    /// Parses the verifier key text `<name>+<8 hex key id>+<base64(0x01 ‖ public key)>`.
    ///
    /// # Errors
    /// [`LogError::BadLogKey`] if the text is malformed, not Ed25519, or its key id is not the
    /// one the name and key give.
    pub fn parse(text: &'a str) -> Result<Self, LogError> {
        let bad = LogError::BadLogKey;
        let (name, rest) = text.split_once('+').ok_or(bad)?;
        let (id_hex, key_base64) = rest.split_once('+').ok_or(bad)?;
        let encoded = base64::decode_array::<33>(key_base64.as_bytes()).ok_or(bad)?;
        let (key_type, public_key) = encoded.split_first().ok_or(bad)?;
        let public_key = <[u8; 32]>::try_from(public_key).map_err(|_| bad)?;
        let key = Self::new(name, public_key)?;
        let id = parse_hex_u32(id_hex).ok_or(bad)?;
        if *key_type != ED25519_KEY_TYPE || id.to_be_bytes() != key.key_id {
            return Err(bad);
        }
        Ok(key)
    }

    /// The key name: for a log, its checkpoint origin.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[..4]`.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }
}

/// The key id of an Ed25519 note key: `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[..4]`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut hasher = Hasher::new(HashAlgorithm::Sha256);
    hasher.update(name.as_bytes());
    hasher.update(&[b'\n', ED25519_KEY_TYPE]);
    hasher.update(public_key);
    let digest = hasher.finalize();
    digest.first_chunk::<4>().copied().unwrap_or_default()
}

/// Whether `name` may name a note key: non-empty, no whitespace, no `+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '+')
}

/// The position of a `\n\n` found by a byte search (no substring searcher, whose bounds
/// checks the no-panic check would have to trust).
pub(crate) fn blank_line(position: Option<usize>) -> Result<usize, LogError> {
    position.ok_or(LogError::BadNote)
}

fn parse_hex_u32(text: &str) -> Option<u32> {
    let digits = text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (text.len() == 8 && digits).then(|| u32::from_str_radix(text, 16).ok()).flatten()
}

/// A signed note split into its text and signature lines; nothing verified yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedNote<'a> {
    text: &'a str,
    signatures: &'a str,
}

impl<'a> SignedNote<'a> {
    /// Splits `note` at its last empty line.
    ///
    /// # Errors
    /// [`LogError::BadNote`] if there is no empty line, the text is empty, or the signature
    /// block is empty or not newline-terminated.
    pub fn parse(note: &'a str) -> Result<Self, LogError> {
        let split = blank_line(note.as_bytes().windows(2).rposition(|pair| pair == b"\n\n"))?;
        let text = note.get(..=split).ok_or(LogError::BadNote)?;
        let signatures = note.get(split.saturating_add(2)..).ok_or(LogError::BadNote)?;
        if text.len() < 2 || signatures.is_empty() || !signatures.ends_with('\n') {
            return Err(LogError::BadNote);
        }
        Ok(Self { text, signatures })
    }

    /// The signed text, ending in `\n`.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Checks the signatures against `keys`, returning the index of the first key whose
    /// signature verified.
    ///
    /// # Errors
    /// [`LogError::LogSignatureInvalid`] if any signature by a listed key is bad,
    /// [`LogError::NoLogSignature`] if no listed key signed, [`LogError::BadNote`] or
    /// [`LogError::TooManySignatures`] for malformed signature lines.
    pub fn verify(&self, keys: &[LogKey<'_>]) -> Result<usize, LogError> {
        let mut verified = None;
        for (count, line) in self.signatures.lines().enumerate() {
            if count >= MAX_NOTE_SIGNATURES {
                return Err(LogError::TooManySignatures);
            }
            let (name, key_id, signature) = parse_signature_line(line)?;
            let Some(index) = keys.iter().position(|k| k.name == name && k.key_id == key_id) else {
                continue;
            };
            let key = keys.get(index).ok_or(LogError::NoLogSignature)?;
            let valid = signature.len() == 64
                && crate::signature::ed25519_verify(
                    &key.public_key,
                    self.text.as_bytes(),
                    &signature,
                );
            if !valid {
                return Err(LogError::LogSignatureInvalid { key_index: index });
            }
            verified = verified.or(Some(index));
        }
        verified.ok_or(LogError::NoLogSignature)
    }
}

/// Splits `— <name> <base64>` into the name, key id and signature bytes; the signature bytes
/// are returned in a fixed buffer (Ed25519 signatures are 64 bytes; longer ones are unknown
/// algorithms and have length 0 here so they can never verify).
fn parse_signature_line(line: &str) -> Result<(&str, [u8; 4], SignatureBytes), LogError> {
    let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or(LogError::BadNote)?;
    let (name, encoded) = rest.split_once(' ').ok_or(LogError::BadNote)?;
    if !is_valid_name(name) || encoded.contains(' ') {
        return Err(LogError::BadNote);
    }
    let mut bytes = [0u8; 4 + 64];
    let signature = match base64::decode(encoded.as_bytes(), &mut bytes) {
        Some(decoded) => decoded.len(),
        // Not ours to judge beyond being base64: other key types may have longer signatures.
        None if is_base64_text(encoded) => 0,
        None => return Err(LogError::BadNote),
    };
    if signature != 0 && signature < 5 {
        return Err(LogError::BadNote);
    }
    let key_id = bytes.first_chunk::<4>().copied().unwrap_or_default();
    let len = signature.saturating_sub(4);
    Ok((name, key_id, SignatureBytes { bytes, len }))
}

fn is_base64_text(text: &str) -> bool {
    text.len().is_multiple_of(4)
        && !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// The signature part of a signature line, after the 4-byte key id.
struct SignatureBytes {
    bytes: [u8; 4 + 64],
    len: usize,
}

impl core::ops::Deref for SignatureBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes.get(4..).and_then(|s| s.get(..self.len)).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example key and note of Go's `golang.org/x/mod/sumdb/note` documentation.
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
        then you don't know what your problem is.\n\
        \n\
        \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn go_documentation_note_verifies() {
        let key = LogKey::parse(GO_VKEY).unwrap();
        assert_eq!(key.name(), "PeterNeumann");
        assert_eq!(key.key_id(), [0xc7, 0x4f, 0x20, 0xa3]);
        let note = SignedNote::parse(GO_NOTE).unwrap();
        assert!(note.text().ends_with("problem is.\n"));
        assert_eq!(note.verify(&[key]), Ok(0));
    }

    #[test]
    fn a_key_rebuilt_from_its_parts_verifies_and_a_wrong_key_id_matches_nothing() {
        let key = LogKey::parse(GO_VKEY).unwrap();
        let rebuilt = LogKey::from_parts(key.name(), key.key_id(), *key.public_key());
        assert_eq!(rebuilt, key);
        assert_eq!(SignedNote::parse(GO_NOTE).unwrap().verify(&[rebuilt]), Ok(0));
        let wrong_id = LogKey::from_parts(key.name(), [0; 4], *key.public_key());
        let verdict = SignedNote::parse(GO_NOTE).unwrap().verify(&[wrong_id]);
        assert_eq!(verdict, Err(LogError::NoLogSignature));
    }

    #[test]
    fn unknown_keys_are_skipped_and_bad_signatures_by_known_keys_refuse() {
        let key = LogKey::parse(GO_VKEY).unwrap();
        let other = LogKey::new("other.example", [9; 32]).unwrap();
        assert_eq!(
            SignedNote::parse(GO_NOTE).unwrap().verify(&[other]),
            Err(LogError::NoLogSignature)
        );
        assert_eq!(SignedNote::parse(GO_NOTE).unwrap().verify(&[other, key]), Ok(1));
        let tampered = GO_NOTE.replace("answer", "Answer");
        let verdict = SignedNote::parse(&tampered).unwrap().verify(&[key]);
        assert_eq!(verdict, Err(LogError::LogSignatureInvalid { key_index: 0 }));
        let witnessed = std::format!("{GO_NOTE}\u{2014} witness.example AAAAAAAAAAAA\n");
        assert_eq!(SignedNote::parse(&witnessed).unwrap().verify(&[key]), Ok(0));
    }

    #[test]
    fn malformed_keys_and_notes_are_refused() {
        for bad in [
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+AhpC2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3",
        ] {
            assert_eq!(LogKey::parse(bad), Err(LogError::BadLogKey), "{bad}");
        }
        for bad in
            ["no signatures\n", "text\n\n", "\n\n\u{2014} a AAAA\n", "t\n\n\u{2014} a AAAAAAAA"]
        {
            let verdict = SignedNote::parse(bad).and_then(|n| n.verify(&[]));
            assert_eq!(verdict, Err(LogError::BadNote), "{bad:?}");
        }
        let note = "t\n\n- PeterNeumann AAAAAAAA\n";
        assert_eq!(SignedNote::parse(note).unwrap().verify(&[]), Err(LogError::BadNote));
    }
}
