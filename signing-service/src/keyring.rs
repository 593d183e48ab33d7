//! The service's named keys, each opened once at start-up.
//!
//! A key is whatever `-k` takes: a PKCS#11 URI (the private key stays in the token) or a key
//! file for development. Signers are blocking and are called from blocking worker threads.
//!
//! A PKCS#11 session signs one thing at a time, and a token (a network HSM above all) takes
//! milliseconds per signature; with one session, every request for a key would queue behind
//! the one signing. So each key holds a small pool of signers, each with its own session
//! (`sessions = N`, by default 4 for a token key and 1 for a key file): a signature takes a
//! free signer and gives it back, and waits only when all are busy. A dead token session is
//! re-opened by its signer, as in the CLI.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use fwsign_keys::keys::{KeyError, NoPassword, PasswordSource};
use fwsign_keys::signer::{SignError, Signer};
use verifier_core::{HashAlgorithm, PublicKey};

use crate::config::KeyConfig;

type BoxedSigner = Box<dyn Signer + Send>;

/// A key's open signers, each used by one thread at a time.
struct SignerPool {
    free: Mutex<Vec<BoxedSigner>>,
    returned: Condvar,
}

impl SignerPool {
    /// Takes a free signer, waiting while all are busy.
    fn take(&self) -> PooledSigner<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(signer) = free.pop() {
                return PooledSigner { pool: self, signer: Some(signer) };
            }
            free = self.returned.wait(free).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A signer out of its pool; it goes back when dropped.
struct PooledSigner<'a> {
    pool: &'a SignerPool,
    signer: Option<BoxedSigner>,
}

impl Drop for PooledSigner<'_> {
    fn drop(&mut self) {
        if let Some(signer) = self.signer.take() {
            self.pool.free.lock().unwrap_or_else(PoisonError::into_inner).push(signer);
            self.pool.returned.notify_one();
        }
    }
}

/// One named key.
pub struct NamedKey {
    signers: SignerPool,
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

    /// Signs with a free signer, waiting for one while all are busy (blocking: call from a
    /// blocking thread).
    ///
    /// # Errors
    /// The signer's [`SignError`].
    pub fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>, SignError> {
        let pooled = self.signers.take();
        let Some(signer) = pooled.signer.as_deref() else {
            return Err(SignError::Backend {
                key_id: self.key_id(),
                message: "no signer in the pool".into(),
            });
        };
        match input {
            SignInput::Digest(digest) => signer.sign_digest(digest),
            SignInput::Message(message) => signer.sign_message(message),
        }
    }
}

/// Every configured key, by name.
pub type Keyring = BTreeMap<String, Arc<NamedKey>>;

/// Opens every configured key, each with its `sessions` signers (keys with a PIN read it from
/// the URI's `pin-source` or the environment, as the CLI does; an encrypted key file's
/// password comes from the environment variable its `password_env` names).
///
/// # Errors
/// The first key that cannot be opened, by name.
pub fn open(keys: &BTreeMap<String, KeyConfig>) -> Result<Keyring, KeyringError> {
    keys.iter()
        .map(|(name, config)| Ok((name.clone(), Arc::new(open_key(name, config)?))))
        .collect()
}

fn open_key(name: &str, config: &KeyConfig) -> Result<NamedKey, KeyringError> {
    let from_env = config.password_env.as_deref().map(|var| PasswordFromEnv { name, var });
    let passwords: &dyn PasswordSource = match &from_env {
        Some(source) => source,
        None => &NoPassword,
    };
    let open = || {
        config
            .key
            .signer(passwords)
            .map_err(|source| KeyringError { name: name.to_owned(), source })
    };
    let first = open()?;
    let public_key = first.public_key();
    let mut signers = vec![first];
    for _ in 1..config.sessions {
        signers.push(open()?);
    }
    Ok(NamedKey {
        signers: SignerPool { free: Mutex::new(signers), returned: Condvar::new() },
        public_key,
        approvals: config.approvals,
        approvers: config.approvers.clone(),
    })
}

/// An encrypted key file's password, from the environment variable `password_env` names.
struct PasswordFromEnv<'a> {
    name: &'a str,
    var: &'a str,
}

impl PasswordSource for PasswordFromEnv<'_> {
    fn password(&self, path: &Path) -> Result<Vec<u8>, KeyError> {
        std::env::var(self.var).map(String::into_bytes).map_err(|_| KeyError::PasswordRequired {
            path: path.to_owned(),
            hint: format!(
                "the environment variable {} (keys.{}.password_env) is not set",
                self.var, self.name
            ),
        })
    }
}
