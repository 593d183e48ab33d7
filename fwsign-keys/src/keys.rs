//! Key files: the PEM encodings imgtool reads and writes.
//!
//! imgtool stores private keys as PKCS#8 PEM (`PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY`
//! when a password protects them) and public keys as SubjectPublicKeyInfo PEM
//! (`PUBLIC KEY`). OpenSSL's SEC1 `EC PRIVATE KEY` is read too, since imgtool accepts it.
//! Encrypted keys use PBES2; new ones are written with PBKDF2-HMAC-SHA256 and
//! AES-256-CBC, the scheme imgtool's own keys use, so both tools read each other's files.

use std::fmt;
use std::path::{Path, PathBuf};

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use pkcs8::der::asn1::OctetStringRef;
use pkcs8::der::pem::LineEnding;
use pkcs8::der::{Decode, Encode};
use pkcs8::{
    AlgorithmIdentifierRef, EncryptedPrivateKeyInfoRef, ObjectIdentifier, PrivateKeyInfoRef,
    pkcs5::pbes2,
};
use verifier_core::PublicKey;

/// OID of Ed25519 (RFC 8410).
const ED25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// OID of an elliptic-curve public key (RFC 5480); the curve is the parameter.
const EC_PUBLIC_KEY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// OID of rsaEncryption, recognised only to name it in an error.
const RSA_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// OID of X25519, recognised only to name it in an error.
const X25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
/// PBKDF2 iteration count for keys fwsign encrypts.
const PBKDF2_ITERATIONS: u32 = 100_000;

/// The signature algorithms fwsign signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Ed25519, TLV 0x24.
    Ed25519,
    /// ECDSA over NIST P-256, TLV 0x22.
    EcdsaP256,
}

impl Algorithm {
    /// The name used on the command line (`-t`), as imgtool spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256 => "ecdsa-p256",
        }
    }

    /// The algorithm of a public key.
    pub fn of(key: &PublicKey) -> Self {
        match key {
            PublicKey::Ed25519(_) => Self::Ed25519,
            PublicKey::P256(_) => Self::EcdsaP256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key could not be read, written or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a PEM document of a supported kind.
    #[error("{path}: not a PEM key file ({reason})")]
    NotPem {
        /// The key file.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },
    /// The DER inside the PEM is malformed.
    #[error("{path}: malformed {label}: {reason}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// The PEM label.
        label: String,
        /// What the decoder reported.
        reason: String,
    },
    /// The key is of an algorithm fwsign does not sign with.
    #[error("{path}: {algorithm} keys are not supported (expected ed25519 or ecdsa-p256)")]
    UnsupportedAlgorithm {
        /// The key file.
        path: PathBuf,
        /// The algorithm found.
        algorithm: String,
    },
    /// The key is encrypted and no password was available.
    #[error("{path}: the key is encrypted; {hint}")]
    PasswordRequired {
        /// The key file.
        path: PathBuf,
        /// How to supply one.
        hint: String,
    },
    /// The password did not decrypt the key.
    #[error("{path}: wrong password (the key did not decrypt)")]
    WrongPassword {
        /// The key file.
        path: PathBuf,
    },
    /// A private key was needed but the file holds only a public key.
    #[error("{path}: holds only a public key; signing needs the private key")]
    PublicOnly {
        /// The key file.
        path: PathBuf,
    },
    /// The system random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
    /// Encoding or encrypting a new key failed.
    #[error("encoding the key failed: {0}")]
    Encode(String),
}

/// A private signing key held in memory.
#[derive(Clone)]
pub enum PrivateKey {
    /// An Ed25519 key pair.
    Ed25519(ed25519_compact::KeyPair),
    /// A P-256 ECDSA key.
    P256(SigningKey),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.algorithm())
    }
}

impl PrivateKey {
    /// Generates a new key from the operating system's random number generator.
    ///
    /// # Errors
    /// [`KeyError::Random`] if the generator fails.
    pub fn generate(algorithm: Algorithm) -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        loop {
            getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
            let key = match algorithm {
                Algorithm::Ed25519 => Some(Self::Ed25519(ed25519_compact::KeyPair::from_seed(
                    ed25519_compact::Seed::new(seed),
                ))),
                // A scalar of zero or ≥ n is rejected; draw again (probability ~2^-32).
                Algorithm::EcdsaP256 => SigningKey::from_slice(&seed).ok().map(Self::P256),
            };
            seed.fill(0);
            if let Some(key) = key {
                return Ok(key);
            }
        }
    }

    /// The signature algorithm of this key.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Ed25519(_) => Algorithm::Ed25519,
            Self::P256(_) => Algorithm::EcdsaP256,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Ed25519(pair) => PublicKey::Ed25519(*pair.pk),
            Self::P256(key) => {
                let point = key.verifying_key().as_affine().to_sec1_point(false);
                let mut bytes = [0u8; 65];
                bytes.copy_from_slice(point.as_bytes());
                PublicKey::P256(bytes)
            }
        }
    }

    /// Encodes the key as PKCS#8 PEM, encrypted with `password` if one is given.
    ///
    /// # Errors
    /// [`KeyError::Encode`] or [`KeyError::Random`].
    pub fn to_pkcs8_pem(&self, password: Option<&[u8]>) -> Result<String, KeyError> {
        let encode = |e: &dyn fmt::Display| KeyError::Encode(e.to_string());
        let der = match self {
            Self::Ed25519(pair) => {
                let seed = pair.sk.seed();
                let inner = OctetStringRef::new(seed.as_ref())
                    .and_then(|octets| octets.to_der())
                    .map_err(|e| encode(&e))?;
                let algorithm = AlgorithmIdentifierRef { oid: ED25519_OID, parameters: None };
                let private_key = OctetStringRef::new(&inner).map_err(|e| encode(&e))?;
                let info = PrivateKeyInfoRef::new(algorithm, private_key);
                pkcs8::SecretDocument::try_from(info).map_err(|e| encode(&e))?
            }
            Self::P256(key) => key.to_pkcs8_der().map_err(|e| encode(&e))?,
        };
        let Some(password) = password else {
            return der
                .to_pem("PRIVATE KEY", LineEnding::LF)
                .map(|pem| pem.to_string())
                .map_err(|e| encode(&e));
        };
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| KeyError::Random(e.to_string()))?;
        getrandom::fill(&mut iv).map_err(|e| KeyError::Random(e.to_string()))?;
        let params =
            pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, iv)
                .map_err(|e| encode(&e))?;
        let info = PrivateKeyInfoRef::try_from(der.as_bytes()).map_err(|e| encode(&e))?;
        let encrypted = info.encrypt_with_params(params, password).map_err(|e| encode(&e))?;
        encrypted
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| encode(&e))
    }
}

/// What a key file holds.
#[derive(Debug, Clone)]
pub enum KeyMaterial {
    /// A private key (its public key is derived from it).
    Private(PrivateKey),
    /// Only a public key.
    Public(PublicKey),
}

impl KeyMaterial {
    /// The public key, whichever kind of file it came from.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Private(key) => key.public_key(),
            Self::Public(key) => *key,
        }
    }
}

/// Supplies the password of an encrypted key, asked for only when one is needed.
pub trait PasswordSource {
    /// Returns the password for the key at `path`.
    ///
    /// # Errors
    /// [`KeyError::PasswordRequired`] when none can be had.
    fn password(&self, path: &Path) -> Result<Vec<u8>, KeyError>;
}

/// A [`PasswordSource`] for contexts that never have a password.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPassword;

impl PasswordSource for NoPassword {
    fn password(&self, path: &Path) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::PasswordRequired {
            path: path.to_owned(),
            hint: "no password source was given".into(),
        })
    }
}

/// Reads a key file (private or public PEM).
///
/// # Errors
/// Any [`KeyError`] naming the file.
pub fn load_key(path: &Path, passwords: &dyn PasswordSource) -> Result<KeyMaterial, KeyError> {
    let bytes =
        std::fs::read(path).map_err(|source| KeyError::Io { path: path.to_owned(), source })?;
    parse_pem(path, &bytes, passwords)
}

/// Reads a key file that must hold a private key.
///
/// # Errors
/// [`KeyError::PublicOnly`] for a public key file, or any error of [`load_key`].
pub fn load_private_key(
    path: &Path,
    passwords: &dyn PasswordSource,
) -> Result<PrivateKey, KeyError> {
    match load_key(path, passwords)? {
        KeyMaterial::Private(key) => Ok(key),
        KeyMaterial::Public(_) => Err(KeyError::PublicOnly { path: path.to_owned() }),
    }
}

/// Parses PEM text of a key; `path` only names the source in errors.
///
/// # Errors
/// Any [`KeyError`] naming `path`.
pub fn parse_pem(
    path: &Path,
    pem: &[u8],
    passwords: &dyn PasswordSource,
) -> Result<KeyMaterial, KeyError> {
    let not_pem = |reason: String| KeyError::NotPem { path: path.to_owned(), reason };
    let (label, der) = pkcs8::der::pem::decode_vec(pem).map_err(|e| not_pem(e.to_string()))?;
    let malformed = |reason: &dyn fmt::Display| KeyError::Malformed {
        path: path.to_owned(),
        label: label.to_owned(),
        reason: reason.to_string(),
    };
    match label {
        "PRIVATE KEY" => parse_pkcs8(path, &der).map(KeyMaterial::Private),
        "ENCRYPTED PRIVATE KEY" => {
            let encrypted =
                EncryptedPrivateKeyInfoRef::from_der(&der).map_err(|e| malformed(&e))?;
            let password = passwords.password(path)?;
            let document = encrypted
                .decrypt(&password)
                .map_err(|_| KeyError::WrongPassword { path: path.to_owned() })?;
            // A wrong password can decrypt (padding happens to check out) to garbage.
            parse_pkcs8(path, document.as_bytes())
                .map_err(|error| match error {
                    KeyError::Malformed { .. } => KeyError::WrongPassword { path: path.to_owned() },
                    other => other,
                })
                .map(KeyMaterial::Private)
        }
        "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&der)
            .map(|key| KeyMaterial::Private(PrivateKey::P256(SigningKey::from(key))))
            .map_err(|_| KeyError::UnsupportedAlgorithm {
                path: path.to_owned(),
                algorithm: "EC keys on curves other than P-256".into(),
            }),
        "PUBLIC KEY" => PublicKey::from_spki_der(&der).map(KeyMaterial::Public).ok_or_else(|| {
            KeyError::UnsupportedAlgorithm { path: path.to_owned(), algorithm: describe_spki(&der) }
        }),
        other => Err(not_pem(format!(
            "PEM label \"{other}\", expected PRIVATE KEY, ENCRYPTED PRIVATE KEY, EC PRIVATE KEY or PUBLIC KEY"
        ))),
    }
}

fn parse_pkcs8(path: &Path, der: &[u8]) -> Result<PrivateKey, KeyError> {
    let malformed = |reason: &dyn fmt::Display| KeyError::Malformed {
        path: path.to_owned(),
        label: "PRIVATE KEY".into(),
        reason: reason.to_string(),
    };
    let unsupported = |algorithm: &str| KeyError::UnsupportedAlgorithm {
        path: path.to_owned(),
        algorithm: algorithm.into(),
    };
    let info = PrivateKeyInfoRef::from_der(der).map_err(|e| malformed(&e))?;
    match info.algorithm.oid {
        ED25519_OID => {
            let seed = <&OctetStringRef>::from_der(info.private_key.as_bytes())
                .map_err(|e| malformed(&e))?;
            let seed =
                ed25519_compact::Seed::from_slice(seed.as_bytes()).map_err(|e| malformed(&e))?;
            Ok(PrivateKey::Ed25519(ed25519_compact::KeyPair::from_seed(seed)))
        }
        EC_PUBLIC_KEY_OID => SigningKey::from_pkcs8_der(der)
            .map(PrivateKey::P256)
            .map_err(|_| unsupported("EC keys on curves other than P-256")),
        RSA_OID => Err(unsupported("RSA")),
        X25519_OID => Err(unsupported("X25519 (an encryption key)")),
        other => Err(unsupported(&format!("OID {other}"))),
    }
}

fn describe_spki(der: &[u8]) -> String {
    match pkcs8::spki::SubjectPublicKeyInfoRef::from_der(der) {
        Ok(spki) if spki.algorithm.oid == RSA_OID => "RSA".into(),
        Ok(spki) if spki.algorithm.oid == EC_PUBLIC_KEY_OID => {
            "EC keys on curves other than P-256".into()
        }
        Ok(spki) => format!("OID {}", spki.algorithm.oid),
        Err(e) => format!("malformed public key ({e})"),
    }
}

/// Encodes a public key as SubjectPublicKeyInfo PEM, as `imgtool getpub -e pem` prints it.
pub fn public_key_pem(key: &PublicKey) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&*key.spki_der());
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str);
    impl PasswordSource for Fixed {
        fn password(&self, _: &Path) -> Result<Vec<u8>, KeyError> {
            Ok(self.0.as_bytes().to_vec())
        }
    }

    fn round_trip(algorithm: Algorithm, password: Option<&'static str>) {
        let key = PrivateKey::generate(algorithm).expect("generate");
        let pem = key.to_pkcs8_pem(password.map(str::as_bytes)).expect("encode");
        let source = Fixed(password.unwrap_or(""));
        let back = parse_pem(Path::new("k.pem"), pem.as_bytes(), &source).expect("parse");
        assert_eq!(back.public_key(), key.public_key());
    }

    #[test]
    fn keys_round_trip_plain_and_encrypted() {
        round_trip(Algorithm::Ed25519, None);
        round_trip(Algorithm::EcdsaP256, None);
        round_trip(Algorithm::Ed25519, Some("pw"));
        round_trip(Algorithm::EcdsaP256, Some("pw"));
    }

    #[test]
    fn wrong_password_is_named() {
        let key = PrivateKey::generate(Algorithm::Ed25519).expect("generate");
        let pem = key.to_pkcs8_pem(Some(b"right")).expect("encode");
        let result = parse_pem(Path::new("k.pem"), pem.as_bytes(), &Fixed("wrong"));
        assert!(matches!(result, Err(KeyError::WrongPassword { .. })), "{result:?}");
    }

    #[test]
    fn public_pem_parses_back() {
        let key = PrivateKey::generate(Algorithm::EcdsaP256).expect("generate").public_key();
        let pem = public_key_pem(&key);
        let back = parse_pem(Path::new("p.pem"), pem.as_bytes(), &NoPassword).expect("parse");
        assert!(matches!(back, KeyMaterial::Public(k) if k == key));
    }
}
