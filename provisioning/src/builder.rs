//! Encoding a record on the host (the factory station and tests).
// Host code: every range indexed is a `format` constant inside a `RECORD_LEN` buffer, and each
// variable-length field was checked against its maximum first.
#![allow(clippy::indexing_slicing)]

use verifier_core::HashAlgorithm;

use crate::format::{
    self, DIGEST, FLAG_LOG_KEY, FLAGS, FORMAT_VERSION, IDENTITY, IDENTITY_LEN, KEY_COUNT,
    LOG_KEY_NAME, LOG_KEY_NAME_LEN, LOG_PUBLIC_KEY, MAGIC, MAGIC_FIELD, MAX_IDENTITY_LEN, MAX_KEYS,
    MAX_LOG_KEY_NAME_LEN, RECORD_LEN, REVOKED, SEALED_LEN, SECURITY_COUNTER, VERSION,
};

/// Builds the bytes of a provisioning record.
///
/// ```
/// use provisioning::{Record, RecordBuilder};
///
/// let bytes = RecordBuilder::new(b"device-0001")
///     .trusted_key_hash([0x11; 32])
///     .security_counter(3)
///     .build()
///     .unwrap();
/// let record = Record::parse(&bytes).unwrap();
/// assert_eq!(record.identity(), b"device-0001");
/// assert!(!record.is_revoked(0));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RecordBuilder {
    identity: Vec<u8>,
    key_hashes: Vec<[u8; 32]>,
    revoked: Vec<usize>,
    security_counter: u32,
    log_key: Option<(String, [u8; 32])>,
}

/// Why [`RecordBuilder::build`] cannot encode a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// No key hash, or more than [`MAX_KEYS`].
    KeyCount(usize),
    /// The identity is longer than [`MAX_IDENTITY_LEN`].
    IdentityLength(usize),
    /// The log key name is not a note key name of at most [`MAX_LOG_KEY_NAME_LEN`] bytes.
    LogKeyName(String),
    /// A slot to revoke past the key count.
    RevokedSlot(usize),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::KeyCount(n) => {
                write!(f, "{n} trusted key hashes: a record holds 1 to {MAX_KEYS}")
            }
            Self::IdentityLength(n) => {
                write!(f, "device identity of {n} bytes: a record holds at most {MAX_IDENTITY_LEN}")
            }
            Self::LogKeyName(name) => write!(
                f,
                "log key name {name:?}: expected 1 to {MAX_LOG_KEY_NAME_LEN} bytes, no space or '+'"
            ),
            Self::RevokedSlot(slot) => write!(f, "cannot revoke key slot {slot}: no key there"),
        }
    }
}

impl std::error::Error for BuildError {}

impl RecordBuilder {
    /// A record for the device `identity`, with no key yet and security counter 0.
    pub fn new(identity: &[u8]) -> Self {
        Self { identity: identity.to_vec(), ..Self::default() }
    }

    /// Adds a trusted key hash (SHA-256 of the key's DER SubjectPublicKeyInfo) in the next
    /// slot.
    pub fn trusted_key_hash(mut self, hash: [u8; 32]) -> Self {
        self.key_hashes.push(hash);
        self
    }

    /// Marks key slot `slot` revoked in the encoded record (a spare slot revoked at the
    /// factory, or test records).
    pub fn revoked_slot(mut self, slot: usize) -> Self {
        self.revoked.push(slot);
        self
    }

    /// The initial security counter.
    pub fn security_counter(mut self, counter: u32) -> Self {
        self.security_counter = counter;
        self
    }

    /// The transparency-log verifier key: its note key name and Ed25519 public key.
    pub fn log_key(mut self, name: &str, public_key: [u8; 32]) -> Self {
        self.log_key = Some((name.to_owned(), public_key));
        self
    }

    /// The record's [`RECORD_LEN`] bytes: sealed part, digest, then the revoked words, erased
    /// except for the slots marked revoked.
    ///
    /// # Errors
    /// A [`BuildError`] naming the value the format cannot hold.
    pub fn build(&self) -> Result<Vec<u8>, BuildError> {
        let key_count = u8::try_from(self.key_hashes.len())
            .ok()
            .filter(|n| (1..=MAX_KEYS).contains(&usize::from(*n)))
            .ok_or(BuildError::KeyCount(self.key_hashes.len()))?;
        let identity_len = u8::try_from(self.identity.len())
            .ok()
            .filter(|n| usize::from(*n) <= MAX_IDENTITY_LEN)
            .ok_or(BuildError::IdentityLength(self.identity.len()))?;
        let mut record = vec![0xff; RECORD_LEN];
        record[..SEALED_LEN].fill(0);
        record[MAGIC_FIELD].copy_from_slice(&MAGIC);
        record[VERSION].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        record[KEY_COUNT] = key_count;
        record[IDENTITY_LEN] = identity_len;
        record[SECURITY_COUNTER].copy_from_slice(&self.security_counter.to_le_bytes());
        record[IDENTITY][..self.identity.len()].copy_from_slice(&self.identity);
        for (slot, hash) in self.key_hashes.iter().enumerate() {
            let range = format::key_hash(slot).ok_or(BuildError::KeyCount(slot))?;
            record[range].copy_from_slice(hash);
        }
        if let Some((name, public_key)) = &self.log_key {
            let name_len = u8::try_from(name.len())
                .ok()
                .filter(|n| usize::from(*n) <= MAX_LOG_KEY_NAME_LEN)
                .filter(|_| crate::view::is_note_key_name(name))
                .ok_or_else(|| BuildError::LogKeyName(name.clone()))?;
            record[FLAGS] = FLAG_LOG_KEY;
            record[LOG_KEY_NAME_LEN] = name_len;
            record[LOG_PUBLIC_KEY].copy_from_slice(public_key);
            record[LOG_KEY_NAME][..name.len()].copy_from_slice(name.as_bytes());
        }
        let digest = HashAlgorithm::Sha256.digest(&record[..SEALED_LEN]);
        record[DIGEST].copy_from_slice(&digest);
        for &slot in &self.revoked {
            let word = format::revoked_word(slot)
                .filter(|_| slot < self.key_hashes.len())
                .ok_or(BuildError::RevokedSlot(slot))?;
            record[word].copy_from_slice(&REVOKED.to_le_bytes());
        }
        Ok(record)
    }
}
