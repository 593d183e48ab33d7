//! The audit trail: one record per request, each holding the hash of the one before.
//!
//! A record is a JSON object (keys sorted, so its bytes are canonical) appended with a
//! sequence number; its hash is `SHA-256("fwsign-audit-v1\n" ‖ previous hash ‖ seq as u64
//! big-endian ‖ JSON)`, the first record's previous hash being 32 zero bytes. Changing,
//! removing or reordering any record breaks every hash after it, which
//! [`verify_chain`] detects. The service replies only after the record is durable.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::factory::ProvisionedDevice;

/// The domain separator of the record hash.
const DOMAIN: &[u8] = b"fwsign-audit-v1\n";

/// What the service decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Signed and answered.
    Signed,
    /// Refused by the policy.
    Denied,
    /// Refused before the policy: authentication, role, malformed request.
    Refused,
    /// Allowed, but signing failed.
    Failed,
    /// Allowed, waiting for approvals.
    Pending,
    /// One approval given (not yet enough).
    Approved,
    /// Not approved in time.
    Expired,
    /// A re-run fetched the stored signature of an approved request.
    Fetched,
    /// A factory station recorded a device it provisioned.
    Provisioned,
}

impl Decision {
    /// Every decision, in the order metrics list them.
    pub const ALL: [Self; 9] = [
        Self::Signed,
        Self::Denied,
        Self::Refused,
        Self::Failed,
        Self::Pending,
        Self::Approved,
        Self::Expired,
        Self::Fetched,
        Self::Provisioned,
    ];

    /// The name stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Self::Signed => "signed",
            Self::Denied => "denied",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Expired => "expired",
            Self::Fetched => "fetched",
            Self::Provisioned => "provisioned",
        }
    }
}

/// One image of a request, as the service parsed it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageRecord {
    /// The digest, hex.
    pub digest: String,
    /// `major.minor.revision+build`.
    pub version: String,
    /// The protected security counter, if any.
    pub security_counter: Option<u32>,
    /// The payload size.
    pub image_size: u32,
    /// The signature, hex, when one was made.
    pub signature: Option<String>,
    /// The RFC 3161 token over the signature, base64, when one was had.
    pub timestamp: Option<String>,
}

/// A request as recorded, before it is chained.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Seconds since the Unix epoch.
    pub time: u64,
    /// Who asked: every verified attribute of the identity, or why none was established.
    pub identity: serde_json::Value,
    /// The peer address.
    pub source: String,
    /// The key named, if the request got that far.
    pub key: Option<String>,
    /// The images, as parsed.
    pub images: Vec<ImageRecord>,
    /// The decision.
    pub decision: Decision,
    /// The policies that decided (their `@id`), or the refusal reason.
    pub reason: String,
    /// The device a factory station reported ([`Decision::Provisioned`] only; absent from the
    /// JSON otherwise, so the records of signatures hash as they always have).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<ProvisionedDevice>,
}

impl AuditEntry {
    /// The highest security counter among the images (0 when none has one).
    pub fn highest_security_counter(&self) -> u32 {
        self.images.iter().filter_map(|image| image.security_counter).max().unwrap_or(0)
    }

    /// The canonical JSON the hash covers.
    pub fn canonical_json(&self) -> String {
        // serde_json's maps are sorted by key: the text is canonical for a given entry.
        serde_json::to_value(self).map(|value| value.to_string()).unwrap_or_default()
    }
}

/// A record as stored: the entry's JSON with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// Position in the trail, from 1.
    pub seq: u64,
    /// The previous record's hash, hex (zeros for the first).
    pub prev_hash: String,
    /// This record's hash, hex.
    pub hash: String,
    /// The entry's canonical JSON.
    pub body: String,
}

/// The hash of the record at `seq` with `body`, chained to `prev_hash`.
pub fn chain_hash(prev_hash: &[u8; 32], seq: u64, body: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(prev_hash);
    hasher.update(seq.to_be_bytes());
    hasher.update(body.as_bytes());
    hasher.finalize().into()
}

/// Where a chain breaks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    /// A sequence number is missing or repeated.
    #[error("audit record {found} follows {previous}: a record is missing or out of order")]
    Gap {
        /// The previous sequence number.
        previous: u64,
        /// The one found.
        found: u64,
    },
    /// A record's hash does not match its contents and predecessor.
    #[error("audit record {0}: its hash does not match its contents and the record before it")]
    BadHash(u64),
}

/// Checks a run of records from the first (`seq` 1) on.
///
/// # Errors
/// The first [`ChainError`].
pub fn verify_chain(records: &[AuditRecord]) -> Result<(), ChainError> {
    let mut previous = (0u64, [0u8; 32]);
    for record in records {
        if record.seq != previous.0 + 1 {
            return Err(ChainError::Gap { previous: previous.0, found: record.seq });
        }
        let hash = chain_hash(&previous.1, record.seq, &record.body);
        if fwsign_keys::hex(&previous.1) != record.prev_hash
            || fwsign_keys::hex(&hash) != record.hash
        {
            return Err(ChainError::BadHash(record.seq));
        }
        previous = (record.seq, hash);
    }
    Ok(())
}

/// Decodes a hex hash as stored.
pub(crate) fn hash_from_hex(text: &str) -> Option<[u8; 32]> {
    let mut hash = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (byte, pair) in hash.iter_mut().zip(text.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(bodies: &[&str]) -> Vec<AuditRecord> {
        let mut previous = [0u8; 32];
        let mut records = Vec::new();
        for (index, body) in bodies.iter().enumerate() {
            let seq = index as u64 + 1;
            let hash = chain_hash(&previous, seq, body);
            records.push(AuditRecord {
                seq,
                prev_hash: fwsign_keys::hex(&previous),
                hash: fwsign_keys::hex(&hash),
                body: (*body).to_owned(),
            });
            previous = hash;
        }
        records
    }

    #[test]
    fn an_intact_chain_verifies_and_any_edit_breaks_it() {
        let records = chain(&["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
        assert_eq!(verify_chain(&records), Ok(()));
        let mut edited = records.clone();
        edited[1].body = "{\"b\":3}".into();
        assert_eq!(verify_chain(&edited), Err(ChainError::BadHash(2)));
        let mut removed = records.clone();
        removed.remove(1);
        assert_eq!(verify_chain(&removed), Err(ChainError::Gap { previous: 1, found: 3 }));
        let mut rehashed = records;
        rehashed[1].body = "{\"b\":3}".into();
        rehashed[1].hash = fwsign_keys::hex(&chain_hash(&[0; 32], 2, &rehashed[1].body));
        assert!(verify_chain(&rehashed).is_err());
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let hash = chain_hash(&[7; 32], 9, "x");
        assert_eq!(hash_from_hex(&fwsign_keys::hex(&hash)), Some(hash));
        assert_eq!(hash_from_hex("zz"), None);
    }
}
