//! Where a trusted or revoked key is: a PEM file, a PKCS#11 object, or only its hash.

use std::path::{Path, PathBuf};

/// A key named by a profile. Loading it is the user's job (host-signer for PEM and PKCS#11,
/// the firmware build for PEM and hashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// A PEM file (private or public key), resolved against the profile's directory.
    Pem(PathBuf),
    /// A PKCS#11 URI (`pkcs11:token=…;object=…`).
    Pkcs11(String),
    /// The SHA-256 of the key's DER SubjectPublicKeyInfo (`fwsign getpub -e hash`), as
    /// provisioned in OTP: images carry the full key (`--public-key-format full`).
    SpkiSha256([u8; 32]),
}

/// Prefix of a key given by its hash.
const HASH_PREFIX: &str = "sha256:";

impl KeySpec {
    /// Parses a profile entry: `pkcs11:…`, `sha256:<64 hex digits>`, or a path.
    pub(crate) fn parse(entry: &str, profile_dir: &Path) -> Result<Self, String> {
        if entry.starts_with("pkcs11:") {
            return Ok(Self::Pkcs11(entry.to_owned()));
        }
        if let Some(hex) = entry.strip_prefix(HASH_PREFIX) {
            return hash(hex).map(Self::SpkiSha256).ok_or_else(|| {
                format!("{entry:?}: expected sha256: and 64 hex digits (fwsign getpub -e hash)")
            });
        }
        if entry.is_empty() {
            return Err("empty key entry: expected a PEM path, pkcs11:… or sha256:…".into());
        }
        Ok(Self::Pem(profile_dir.join(entry)))
    }
}

impl std::fmt::Display for KeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pem(path) => write!(f, "{}", path.display()),
            Self::Pkcs11(uri) => f.write_str(uri),
            Self::SpkiSha256(hash) => {
                f.write_str(HASH_PREFIX)?;
                hash.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
        }
    }
}

fn hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}
