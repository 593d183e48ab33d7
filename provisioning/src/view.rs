//! Reading a record: [`Record::parse`] checks it whole and returns a [`RecordView`].

use verifier_core::{HashAlgorithm, TrustedKey};

use crate::error::{Field, RecordError};
use crate::format::{
    self, DIGEST, ERASED, FLAG_LOG_KEY, FLAGS, FORMAT_VERSION, IDENTITY, IDENTITY_LEN, KEY_COUNT,
    KEY_HASH_LEN, LOG_KEY_NAME, LOG_KEY_NAME_LEN, LOG_PUBLIC_KEY, MAGIC, MAGIC_FIELD, MAX_KEYS,
    RECORD_LEN, RESERVED, REVOKED, SEALED_LEN, SECURITY_COUNTER, VERSION,
};

/// The provisioning record format (see [`crate::format`]).
pub struct Record;

/// The state of a key slot's revoked word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Erased: the key is trusted.
    Valid,
    /// [`format::REVOKED`] is written: the key is revoked for good.
    Revoked,
    /// Neither erased nor fully written (a torn write): the key is revoked, and writing
    /// [`format::REVOKED`] again completes the revocation.
    Incomplete,
}

impl SlotState {
    fn of(word: u32) -> Self {
        match word {
            ERASED => Self::Valid,
            REVOKED => Self::Revoked,
            _ => Self::Incomplete,
        }
    }
}

/// A record that passed [`Record::parse`]: every field checked, the digest matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    identity: &'a [u8],
    key_hashes: &'a [u8],
    security_counter: u32,
    log_key: Option<(&'a str, [u8; 32])>,
    revoked_words: [u32; MAX_KEYS],
}

impl Record {
    /// Parses and checks the record at the start of `bytes` (at least [`RECORD_LEN`] long).
    ///
    /// # Errors
    /// A [`RecordError`] naming the first check that failed: an erased region is
    /// [`RecordError::NotProvisioned`], any change to the sealed part is
    /// [`RecordError::DigestMismatch`].
    pub fn parse(bytes: &[u8]) -> Result<RecordView<'_>, RecordError> {
        let truncated = RecordError::Truncated { len: bytes.len() };
        let record = bytes.get(..RECORD_LEN).ok_or(truncated)?;
        let field = |range: core::ops::Range<usize>| record.get(range).ok_or(truncated);
        let byte = |offset: usize| record.get(offset).copied().ok_or(truncated);

        let magic = field(MAGIC_FIELD)?;
        if magic.iter().all(|&b| b == 0xff) {
            return Err(RecordError::NotProvisioned);
        }
        if magic != MAGIC {
            return Err(RecordError::BadMagic);
        }
        let version = u16::from_le_bytes(array(field(VERSION)?)?);
        if version != FORMAT_VERSION {
            return Err(RecordError::UnsupportedVersion(version));
        }
        let sealed = field(0..SEALED_LEN)?;
        if *HashAlgorithm::Sha256.digest(sealed) != *field(DIGEST)? {
            return Err(RecordError::DigestMismatch);
        }

        let key_count = byte(KEY_COUNT)?;
        let keys = usize::from(key_count);
        if !(1..=MAX_KEYS).contains(&keys) {
            return Err(RecordError::KeyCount(key_count));
        }
        let flags = byte(FLAGS)?;
        if flags & !FLAG_LOG_KEY != 0 {
            return Err(RecordError::UnknownFlags(flags));
        }
        zero(field(RESERVED)?, Field::Reserved)?;
        let identity_len = byte(IDENTITY_LEN)?;
        let (identity, padding) = split(field(IDENTITY)?, identity_len)
            .ok_or(RecordError::IdentityLength(identity_len))?;
        zero(padding, Field::Identity)?;
        let all_hashes = field(format::KEY_HASHES)?;
        let used = keys.checked_mul(KEY_HASH_LEN).ok_or(truncated)?;
        let (key_hashes, unused) = all_hashes.split_at_checked(used).ok_or(truncated)?;
        zero(unused, Field::UnusedKeyHash)?;
        let log_key =
            log_key(flags, byte(LOG_KEY_NAME_LEN)?, field(LOG_PUBLIC_KEY)?, field(LOG_KEY_NAME)?)?;

        let mut revoked_words = [ERASED; MAX_KEYS];
        for (slot, word) in revoked_words.iter_mut().enumerate() {
            let range = format::revoked_word(slot).ok_or(truncated)?;
            *word = u32::from_le_bytes(array(field(range)?)?);
        }
        Ok(RecordView {
            identity,
            key_hashes,
            security_counter: u32::from_le_bytes(array(field(SECURITY_COUNTER)?)?),
            log_key,
            revoked_words,
        })
    }
}

impl<'a> RecordView<'a> {
    /// The device identity the factory recorded (on the nRF52840, FICR DEVICEID).
    pub fn identity(&self) -> &'a [u8] {
        self.identity
    }

    /// The initial security counter: the device's minimum until the trailer holds a higher one.
    pub fn security_counter(&self) -> u32 {
        self.security_counter
    }

    /// The trusted key hashes, one per key slot, revoked ones included (see
    /// [`Self::is_revoked`]): SHA-256 of each key's DER SubjectPublicKeyInfo.
    pub fn trusted_key_hashes(&self) -> impl ExactSizeIterator<Item = [u8; 32]> + 'a {
        self.key_hashes.chunks_exact(KEY_HASH_LEN).map(|hash| array(hash).unwrap_or([0; 32]))
    }

    /// How many key slots the record uses.
    pub fn key_count(&self) -> usize {
        self.key_hashes.len() / KEY_HASH_LEN
    }

    /// The state of key slot `slot`'s revoked word.
    pub fn slot_state(&self, slot: usize) -> SlotState {
        self.revoked_words.get(slot).map_or(SlotState::Revoked, |&word| SlotState::of(word))
    }

    /// Whether key slot `slot` may not be used: revoked, torn, or past the key count.
    pub fn is_revoked(&self, slot: usize) -> bool {
        slot >= self.key_count() || self.slot_state(slot) != SlotState::Valid
    }

    /// The keys for `verifier_core`: each slot's hash, marked revoked as [`Self::is_revoked`]
    /// says.
    pub fn trusted_keys(&self) -> TrustedKeys {
        let mut table =
            TrustedKeys { keys: [TrustedKey::from_spki_sha256([0; 32]); MAX_KEYS], len: 0 };
        for (slot, (hash, entry)) in self.trusted_key_hashes().zip(&mut table.keys).enumerate() {
            let key = TrustedKey::from_spki_sha256(hash);
            *entry = if self.is_revoked(slot) { key.into_revoked() } else { key };
            table.len = slot.saturating_add(1);
        }
        table
    }

    /// The transparency-log verifier key's name and Ed25519 public key, if the record has one.
    pub fn log_key_parts(&self) -> Option<(&'a str, [u8; 32])> {
        self.log_key
    }

    /// The transparency-log verifier key, if the record has one.
    #[cfg(feature = "tlog")]
    pub fn log_key(&self) -> Option<verifier_core::tlog::LogKey<'a>> {
        let (name, public_key) = self.log_key?;
        verifier_core::tlog::LogKey::new(name, public_key).ok()
    }
}

/// The trusted keys of a record, at most [`MAX_KEYS`], without allocating.
#[derive(Debug, Clone, Copy)]
pub struct TrustedKeys {
    keys: [TrustedKey; MAX_KEYS],
    len: usize,
}

impl TrustedKeys {
    /// The keys, in slot order.
    pub fn as_slice(&self) -> &[TrustedKey] {
        self.keys.get(..self.len).unwrap_or(&[])
    }
}

/// The log key fields: present when the flags say so, all zero otherwise.
fn log_key<'a>(
    flags: u8,
    name_len: u8,
    public_key: &'a [u8],
    name_field: &'a [u8],
) -> Result<Option<(&'a str, [u8; 32])>, RecordError> {
    if flags & FLAG_LOG_KEY == 0 {
        zero(public_key, Field::LogKey)?;
        zero(name_field, Field::LogKey)?;
        return if name_len == 0 {
            Ok(None)
        } else {
            Err(RecordError::NonZeroPadding(Field::LogKey))
        };
    }
    let (name, padding) = split(name_field, name_len).ok_or(RecordError::LogKeyName)?;
    let name = core::str::from_utf8(name).map_err(|_| RecordError::LogKeyName)?;
    if !is_note_key_name(name) {
        return Err(RecordError::LogKeyName);
    }
    zero(padding, Field::LogKeyName)?;
    Ok(Some((name, array(public_key)?)))
}

/// The C2SP signed-note key name rule (`verifier_core::tlog::note::is_valid_name`, which is
/// only built with its `tlog` feature): non-empty, no whitespace, no `+`.
pub(crate) fn is_note_key_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '+')
}

/// `field` split after `len` bytes, or `None` if it is shorter.
fn split(field: &[u8], len: u8) -> Option<(&[u8], &[u8])> {
    field.split_at_checked(usize::from(len))
}

fn zero(bytes: &[u8], field: Field) -> Result<(), RecordError> {
    if bytes.iter().all(|&b| b == 0) { Ok(()) } else { Err(RecordError::NonZeroPadding(field)) }
}

fn array<const N: usize>(bytes: &[u8]) -> Result<[u8; N], RecordError> {
    bytes.try_into().map_err(|_| RecordError::Truncated { len: bytes.len() })
}
