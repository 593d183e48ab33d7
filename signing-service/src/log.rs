//! The transparency log the service keeps: every signature it issues becomes one
//! `fwsign-entry/v1` leaf, appended in the same database transaction as the audit record that
//! holds the signature, so a signature the service returned is always in the log.
//!
//! This module is the log's logic without SQL: the log key ([`LogSigner`]), the entry of an
//! image ([`entry_for`]), and what appending leaves computes ([`grow`], [`proofs`]) over the
//! hashes the storage reads for it ([`HashCache`]). The storage backend runs these inside its
//! transaction; the HTTP layer serves the result as C2SP tiles (`GET /log/…`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;

use fwsign_keys::key_ref::KeyRef;
use fwsign_keys::keys::NoPassword;
use fwsign_keys::signer::Signer;
use fwsign_tlog::TlogError;
use fwsign_tlog::checkpoint::CheckpointBody;
use fwsign_tlog::entry::{Entry, entry_text, rfc3339_utc};
use fwsign_tlog::note::{NoteSigner, verifier_key};
use fwsign_tlog::proof::proof_text;
use fwsign_tlog::tree::{HashStore, hashes_to_store, inclusion_proof, tree_hash};
use verifier_core::PublicKey;
use verifier_core::tlog::{TreeHash, leaf_hash};

use crate::config::LogConfig;
use crate::policy::Principal;
use crate::tbs::ParsedImage;

/// The log key: an Ed25519 key (file or PKCS#11 token) that signs checkpoints as notes named
/// after the log's origin.
pub struct LogSigner {
    origin: String,
    public_key: [u8; 32],
    signer: Mutex<Box<dyn Signer + Send>>,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSigner").field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl LogSigner {
    /// Opens the configured log key.
    ///
    /// # Errors
    /// [`TlogError::Key`] naming the key if it cannot be opened or is not Ed25519.
    pub fn open(config: &LogConfig) -> Result<Self, TlogError> {
        let signer = config
            .key
            .signer(&NoPassword)
            .map_err(|e| TlogError::Key(format!("[log] key {}: {e}", config.key)))?;
        Self::new(&config.origin, &config.key, signer)
    }

    fn new(origin: &str, key: &KeyRef, signer: Box<dyn Signer + Send>) -> Result<Self, TlogError> {
        let PublicKey::Ed25519(public_key) = signer.public_key() else {
            return Err(TlogError::Key(format!(
                "[log] key {key}: the log key must be Ed25519 (signed-note type 0x01)"
            )));
        };
        if !verifier_core::tlog::is_valid_name(origin) {
            return Err(TlogError::Key(format!("{origin:?} is not a valid note key name")));
        }
        Ok(Self { origin: origin.to_owned(), public_key, signer: Mutex::new(signer) })
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier key text (`<origin>+<key id>+<base64 key>`), for `verify --log-key`.
    pub fn verifier_key(&self) -> String {
        verifier_key(&self.origin, &self.public_key)
    }

    /// Checks that `note` is a checkpoint of this log signed by this key.
    ///
    /// # Errors
    /// [`TlogError::Format`] naming what does not match.
    pub fn check_checkpoint(&self, note: &str) -> Result<CheckpointBody, TlogError> {
        let vkey = self.verifier_key();
        let keys = [verifier_core::tlog::LogKey::parse(&vkey)?];
        let (text, _) = fwsign_tlog::note::open_note(note, &keys)?;
        let body = CheckpointBody::parse(text)?;
        if body.origin != self.origin {
            return Err(verifier_core::tlog::LogError::OriginMismatch.into());
        }
        Ok(body)
    }
}

impl NoteSigner for LogSigner {
    fn name(&self) -> &str {
        &self.origin
    }

    fn key_id(&self) -> [u8; 4] {
        verifier_core::tlog::key_id(&self.origin, &self.public_key)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TlogError> {
        let signer = self.signer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        signer.sign_message(message).map_err(|e| TlogError::Key(e.to_string()))
    }
}

/// The entry logging the signature of `image` by the key `key_name` (SubjectPublicKeyInfo
/// SHA-256 `key_hash`, hex) for `requester` (who asked, not who approved), at `time`.
///
/// # Errors
/// [`TlogError::Format`] if the entry cannot be written (never for parsed images).
pub fn entry_for(
    requester: &Principal,
    key_name: &str,
    key_hash: &str,
    image: &ParsedImage,
    time: u64,
) -> Result<String, TlogError> {
    let who = Who::of(requester);
    entry_text(&Entry {
        image_digest: fwsign_keys::hex(&image.digest),
        key_hash: key_hash.to_owned(),
        key_name: value(Some(key_name)),
        version: image.header.version.to_string(),
        security_counter: image.security_counter.map_or_else(|| "none".into(), |c| c.to_string()),
        issuer: value(who.issuer),
        subject: value(who.subject),
        repository: value(who.repository),
        git_ref: value(who.git_ref),
        commit: value(who.commit),
        time: rfc3339_utc(time),
    })
}

/// Who asked, in the entry's terms.
#[derive(Default)]
struct Who<'a> {
    issuer: Option<&'a str>,
    subject: Option<&'a str>,
    repository: Option<&'a str>,
    git_ref: Option<&'a str>,
    commit: Option<&'a str>,
}

impl<'a> Who<'a> {
    /// A CI job by its OIDC claims (GitHub Actions or GitLab CI names), or an API client
    /// (issuer `api-token`, subject its name).
    fn of(principal: &'a Principal) -> Self {
        match principal {
            Principal::Workload { claims, .. } => {
                let claim = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
                Self {
                    issuer: claim("iss"),
                    subject: claim("sub"),
                    repository: claim("repository").or(claim("project_path")),
                    git_ref: claim("ref"),
                    commit: claim("sha"),
                }
            }
            Principal::Client { name, .. } => {
                Self { issuer: Some("api-token"), subject: Some(name), ..Self::default() }
            }
        }
    }
}

/// An entry value: control characters replaced, `-` when there is nothing to say.
fn value(text: Option<&str>) -> String {
    let cleaned: String =
        text.unwrap_or_default().chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if cleaned.trim().is_empty() { "-".into() } else { cleaned }
}

/// The stored hashes the storage has read so far, plus the ones an append computes; a read of
/// a hash not yet read is noted, so the storage reads it and the computation runs again.
#[derive(Debug, Default)]
pub struct HashCache {
    known: RefCell<HashMap<u64, TreeHash>>,
    missing: RefCell<Vec<u64>>,
}

impl HashCache {
    /// The stored indexes a computation asked for and did not find (and forgets them).
    pub fn take_missing(&self) -> Vec<u64> {
        let mut missing = self.missing.take();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    /// Adds hashes read from the store.
    pub fn insert(&self, hashes: impl IntoIterator<Item = (u64, TreeHash)>) {
        self.known.borrow_mut().extend(hashes);
    }
}

impl HashStore for HashCache {
    fn read_hash(&self, index: u64) -> Result<TreeHash, TlogError> {
        self.read_hashes(&[index]).map(|hashes| hashes[0])
    }

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<TreeHash>, TlogError> {
        let known = self.known.borrow();
        let found: Vec<Option<TreeHash>> = indexes.iter().map(|i| known.get(i).copied()).collect();
        if found.iter().all(Option::is_some) {
            return Ok(found.into_iter().flatten().collect());
        }
        let absent = indexes.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(i, _)| *i);
        self.missing.borrow_mut().extend(absent);
        Err(TlogError::Store(format!("{} stored hashes not read yet", indexes.len())))
    }
}

/// What appending leaves to a tree computes before the checkpoint is signed.
#[derive(Debug)]
pub struct Growth {
    /// The index of the first new leaf.
    pub first: u64,
    /// The new stored hashes, by stored index.
    pub hashes: Vec<(u64, TreeHash)>,
    /// The new tree size.
    pub size: u64,
    /// The new root.
    pub root: TreeHash,
    /// Each new leaf's inclusion proof in the new tree.
    pub inclusion: Vec<Vec<TreeHash>>,
}

/// Appends `entries` to the tree of `size` leaves whose hashes `cache` holds (or notes as
/// missing: then the caller reads them and calls again).
///
/// # Errors
/// [`TlogError::Store`] while hashes are missing.
pub fn grow(size: u64, entries: &[String], cache: &HashCache) -> Result<Growth, TlogError> {
    let mut hashes = Vec::new();
    for (offset, entry) in (0u64..).zip(entries) {
        let index = size + offset;
        let first_stored = fwsign_tlog::tree::stored_hash_index(0, index);
        let new = hashes_to_store(index, leaf_hash(entry.as_bytes()), cache)?;
        let new: Vec<(u64, TreeHash)> = (first_stored..).zip(new).collect();
        cache.insert(new.iter().copied());
        hashes.extend(new);
    }
    let new_size = size + entries.len() as u64;
    let root = tree_hash(new_size, cache)?;
    let inclusion = (size..new_size)
        .map(|index| inclusion_proof(index, new_size, cache))
        .collect::<Result<_, _>>()?;
    Ok(Growth { first: size, hashes, size: new_size, root, inclusion })
}

/// The checkpoint of the tree of `size` leaves with root `root`, signed by the log key
/// `signer` (named after the log's origin).
///
/// # Errors
/// Signer errors.
pub fn sign_checkpoint(
    signer: &dyn NoteSigner,
    size: u64,
    root: TreeHash,
) -> Result<String, TlogError> {
    CheckpointBody { origin: signer.name().to_owned(), size, root, extensions: Vec::new() }
        .sign(signer)
}

/// The `tlog-proof@v1` texts of the new leaves against `checkpoint`, the signed checkpoint of
/// `growth`.
pub fn proofs(growth: &Growth, entries: &[String], checkpoint: &str) -> Vec<String> {
    (growth.first..)
        .zip(entries.iter().zip(&growth.inclusion))
        .map(|(index, (entry, path))| proof_text(entry.as_bytes(), index, path, checkpoint))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fwsign_tlog::tree::MemoryStore;

    /// Runs `grow` the way a storage does: read what is missing, run again.
    fn grow_from(store: &MemoryStore, entries: &[String]) -> Growth {
        let cache = HashCache::default();
        loop {
            match grow(store.size(), entries, &cache) {
                Ok(growth) => return growth,
                Err(_) => {
                    let missing = cache.take_missing();
                    assert!(!missing.is_empty());
                    let read = missing.iter().map(|i| (*i, store.read_hash(*i).unwrap()));
                    cache.insert(read.collect::<Vec<_>>());
                }
            }
        }
    }

    #[test]
    fn growth_matches_the_reference_tree() {
        let mut store = MemoryStore::new();
        for i in 0..300u32 {
            store.append(format!("leaf {i}").as_bytes()).unwrap();
        }
        let entries: Vec<String> = (300..303).map(|i| format!("leaf {i}")).collect();
        let growth = grow_from(&store, &entries);
        for entry in &entries {
            store.append(entry.as_bytes()).unwrap();
        }
        assert_eq!(growth.size, 303);
        assert_eq!(growth.root, tree_hash(303, &store).unwrap());
        let stored: Vec<TreeHash> = growth.hashes.iter().map(|(_, h)| *h).collect();
        let first = usize::try_from(growth.hashes[0].0).unwrap();
        assert_eq!(stored, store.hashes()[first..]);
        assert_eq!(growth.inclusion[1], inclusion_proof(301, 303, &store).unwrap());
    }

    #[test]
    fn identities_become_entry_fields() {
        let claims = serde_json::json!({
            "iss": "https://gitlab.example.com", "sub": "project_path:acme/fw:ref_type:branch:ref:main",
            "project_path": "acme/fw", "ref": "main", "sha": "0123abcd"});
        let oidc = Principal::Workload {
            issuer_name: "gitlab".into(),
            claims: claims.as_object().cloned().unwrap_or_default(),
        };
        let who = Who::of(&oidc);
        assert_eq!(who.issuer, Some("https://gitlab.example.com"));
        assert_eq!(who.repository, Some("acme/fw"));
        assert_eq!(who.commit, Some("0123abcd"));
        let client = Principal::Client {
            name: "station-1".into(),
            role: "submitter".into(),
            groups: Vec::new(),
        };
        assert_eq!(Who::of(&client).subject, Some("station-1"));
        assert_eq!(value(Some("a\nb")), "a?b");
        assert_eq!(value(None), "-");
        assert_eq!(value(Some(" ")), "-");
    }
}
