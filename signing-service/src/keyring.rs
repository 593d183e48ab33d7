//! The service's named keys, each opened once at start-up.
//!
//! A key is whatever `-k` takes: a PKCS#11 URI (the private key stays in the token) or a key
//! file for development. Signers are blocking and a PKCS#11 session must not be used by two
//! threads at once, so each key's signer sits behind a mutex and is called from a blocking
//! worker thread; a dead token session is re-opened by the signer itself, as in the CLI.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use fwsign_keys::keys::NoPassword;
use fwsign_keys::signer::{SignError, Signer};
use verifier_core::{HashAlgorithm, PublicKey};

use crate::config::KeyConfig;

/// One named key.
pub struct NamedKey {
    signer: Mutex<Box<dyn Signer + Send>>,
    public_key: PublicKey,
    /// Approvals needed.
    pub approvals: u32,
    /// The approving group.
    pub approvers: Option<String>,
}

impl std::fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedKey").field("key_id", &self.key_id()).finish_non_exhaustive()
    }
}

/// A key that could not be opened at start-up.
#[derive(Debug, thiserror::Error)]
#[error("key \"{name}\": {source}")]
pub struct KeyringError {
    /// The key's name.
    pub name: String,
    /// Why.
    pub source: fwsign_keys::key_ref::KeyRefError,
}

/// What signing one image asks of a key.
#[derive(Debug, Clone, Copy)]
pub enum SignInput<'a> {
    /// An image digest.
    Digest(&'a [u8]),
    /// The whole hashed region (Ed25519 "pure" images).
    Message(&'a [u8]),
}

impl NamedKey {
    /// The key's id: SHA-256 of its SubjectPublicKeyInfo (the KEYHASH MCUboot matches), hex.
    pub fn key_id(&self) -> String {
        fwsign_keys::hex(&self.public_key.key_hash(HashAlgorithm::Sha256))
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// Signs (blocking: call from a blocking thread).
    ///
    /// # Errors
    /// The signer's [`SignError`].
    pub fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>, SignError> {
        let signer = self.signer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match input {
            SignInput::Digest(digest) => signer.sign_digest(digest),
            SignInput::Message(message) => signer.sign_message(message),
        }
    }
}

/// Every configured key, by name.
pub type Keyring = BTreeMap<String, Arc<NamedKey>>;

/// Opens every configured key (keys with a PIN read it from the URI's `pin-source` or the
/// environment, as the CLI does; encrypted key files are not supported by the service).
///
/// # Errors
/// The first key that cannot be opened, by name.
pub fn open(keys: &BTreeMap<String, KeyConfig>) -> Result<Keyring, KeyringError> {
    keys.iter()
        .map(|(name, config)| {
            let signer = config
                .key
                .signer(&NoPassword)
                .map_err(|source| KeyringError { name: name.clone(), source })?;
            let public_key = signer.public_key();
            let key = NamedKey {
                signer: Mutex::new(signer),
                public_key,
                approvals: config.approvals,
                approvers: config.approvers.clone(),
            };
            Ok((name.clone(), Arc::new(key)))
        })
        .collect()
}
