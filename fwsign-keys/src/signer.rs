//! The seam between the image writer and whatever holds the private key.
//!
//! The writer never sees key material: it asks a [`Signer`] for a signature over the
//! image digest (or, for Ed25519 "pure" images, over the hashed region itself). A key
//! file, a PKCS#11 token or an external command each implement the trait; the image
//! bytes they produce are identical.
//!
//! Signatures are returned in the encoding the image's signature TLV carries: 64 raw
//! bytes for Ed25519, DER `SEQUENCE { r, s }` for ECDSA. A backend that produces raw
//! `r ‖ s` (PKCS#11 `CKM_ECDSA` does) converts with [`ecdsa_raw_to_der`].

use std::path::Path;

use p256::ecdsa::signature::hazmat::PrehashSigner;
use verifier_core::PublicKey;

use crate::keys::{Algorithm, PrivateKey};

/// Why a signer could not sign.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The signer's algorithm cannot make this kind of signature.
    #[error("{key_id}: {what} is not possible with a {algorithm} key")]
    Unsupported {
        /// The signer.
        key_id: String,
        /// Its algorithm.
        algorithm: Algorithm,
        /// What was asked for.
        what: &'static str,
    },
    /// The digest has a length the algorithm cannot sign.
    #[error("{key_id}: cannot sign a {len}-byte digest with a {algorithm} key")]
    DigestLength {
        /// The signer.
        key_id: String,
        /// Its algorithm.
        algorithm: Algorithm,
        /// The digest length given.
        len: usize,
    },
    /// The backend (token, command, …) failed.
    #[error("{key_id}: {message}")]
    Backend {
        /// The signer.
        key_id: String,
        /// What went wrong.
        message: String,
    },
}

/// Something that signs MCUboot images with one private key.
pub trait Signer {
    /// Names the key in messages: a file path, a PKCS#11 URI, a command.
    fn key_id(&self) -> &str;

    /// The public key matching the private key.
    fn public_key(&self) -> PublicKey;

    /// The signature algorithm.
    fn algorithm(&self) -> Algorithm {
        Algorithm::of(&self.public_key())
    }

    /// Signs an image digest the way MCUboot verifies it: Ed25519 over the digest
    /// bytes as the message, ECDSA over the digest as the prehashed value.
    ///
    /// # Errors
    /// [`SignError`] naming the key.
    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, SignError>;

    /// Signs a whole message (the hashed region of an Ed25519 "pure" image).
    ///
    /// # Errors
    /// [`SignError::Unsupported`] for algorithms that only sign digests.
    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// A [`Signer`] over a private key loaded from a file.
#[derive(Debug, Clone)]
pub struct KeyFileSigner {
    key_id: String,
    key: PrivateKey,
}

impl KeyFileSigner {
    /// Wraps a loaded key; `path` names it in messages.
    pub fn new(path: &Path, key: PrivateKey) -> Self {
        Self { key_id: path.display().to_string(), key }
    }
}

impl Signer for KeyFileSigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.key {
            PrivateKey::Ed25519(pair) => Ok(pair.sk.sign(digest, None).to_vec()),
            PrivateKey::P256(key) => {
                if digest.len() != 32 {
                    return Err(SignError::DigestLength {
                        key_id: self.key_id.clone(),
                        algorithm: Algorithm::EcdsaP256,
                        len: digest.len(),
                    });
                }
                let signature: p256::ecdsa::Signature = key.sign_prehash(digest).map_err(|e| {
                    SignError::Backend { key_id: self.key_id.clone(), message: e.to_string() }
                })?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
        }
    }

    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.key {
            PrivateKey::Ed25519(pair) => Ok(pair.sk.sign(message, None).to_vec()),
            PrivateKey::P256(_) => Err(SignError::Unsupported {
                key_id: self.key_id.clone(),
                algorithm: Algorithm::EcdsaP256,
                what: "a pure signature over the whole image",
            }),
        }
    }
}

/// Converts a raw P-256 ECDSA signature (`r ‖ s`, 64 bytes) to the DER the image carries.
///
/// Returns `None` if `raw` is not 64 bytes or `r`/`s` are out of range.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    let signature = p256::ecdsa::Signature::from_slice(raw).ok()?;
    Some(signature.to_der().as_bytes().to_vec())
}

/// Whether `signature` (TLV encoding) is valid for `message` under `key`.
pub fn signature_verifies(key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    match key {
        PublicKey::Ed25519(bytes) => {
            let Ok(signature) = ed25519_compact::Signature::from_slice(signature) else {
                return false;
            };
            ed25519_compact::PublicKey::new(*bytes).verify(message, &signature).is_ok()
        }
        PublicKey::P256(point) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            let (Ok(key), Ok(signature)) = (
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point),
                p256::ecdsa::Signature::from_der(signature),
            ) else {
                return false;
            };
            key.verify_prehash(message, &signature).is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_signature_verifies_over_the_prehash() {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        let key = PrivateKey::generate(Algorithm::EcdsaP256).expect("generate");
        let PrivateKey::P256(signing) = &key else { unreachable!() };
        let signer = KeyFileSigner::new(Path::new("k.pem"), key.clone());
        let digest = [0x5a; 32];
        let der = signer.sign_digest(&digest).expect("sign");
        let signature = p256::ecdsa::Signature::from_der(&der).expect("der");
        signing.verifying_key().verify_prehash(&digest, &signature).expect("verify");
        let raw = signature.to_bytes();
        assert_eq!(ecdsa_raw_to_der(&raw), Some(der));
    }

    #[test]
    fn ecdsa_refuses_pure_and_long_digests() {
        let signer = KeyFileSigner::new(
            Path::new("k.pem"),
            PrivateKey::generate(Algorithm::EcdsaP256).expect("generate"),
        );
        assert!(matches!(signer.sign_message(b"x"), Err(SignError::Unsupported { .. })));
        assert!(matches!(signer.sign_digest(&[0; 64]), Err(SignError::DigestLength { .. })));
    }
}
