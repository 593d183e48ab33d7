//! Transparency-log proofs: refuse an image that was signed but never logged.
//!
//! A signing service appends every signature it issues to a public, append-only Merkle log and
//! returns, with the signature, a proof that it did: a C2SP `tlog-proof@v1` text that fwsign
//! stores in the unprotected vendor TLV 0x00a2 (LOG_PROOF). The proof is self-authenticating
//! (a checkpoint signed by the log, and a Merkle path from the entry to the checkpoint's root),
//! so it needs no signature of its own, and it can only exist after the image signature does,
//! which is why it sits outside the signed region.
//!
//! [`check_log_proof`], called after [`crate::verify_image`] accepted the image, checks in this
//! order, cheapest first, and refuses with the [`LogError`] of the first failure:
//! 1. the image has exactly one LOG_PROOF TLV of at most [`MAX_PROOF_LEN`] bytes;
//! 2. the proof parses ([`LogProof`]): header, `extra` entry, index, at most
//!    [`MAX_TREE_HEIGHT`] hashes, a checkpoint that is a signed note;
//! 3. the entry ([`LogEntry`], at most [`MAX_ENTRY_LEN`] bytes) names this image's digest and
//!    the key whose image signature verified;
//! 4. the checkpoint body parses ([`Checkpoint`]) and the entry's leaf hash
//!    `SHA-256(0x00 ‖ entry)` is included at the index in its tree (RFC 9162 §2.1.3.2);
//! 5. the checkpoint is signed by one of the listed log keys ([`LogKey`]), no listed key's
//!    signature on it is bad, and its origin is that key's name.
//!
//! A proof against an older checkpoint of the same log is as good as one against the newest:
//! the log is append-only, so what was included once stays included.
//!
//! Bounds: proofs up to [`MAX_PROOF_LEN`] bytes, entries up to [`MAX_ENTRY_LEN`], trees up to
//! 2^[`MAX_TREE_HEIGHT`] entries, at most [`MAX_NOTE_SIGNATURES`] checkpoint signatures. Every
//! loop runs over the bounded proof text; nothing recurses and nothing allocates. The buffers
//! live in a [`ProofBuffer`] the caller owns (a bootloader can keep it in a static).

mod base64;
mod checkpoint;
mod entry;
mod error;
mod merkle;
mod note;
mod proof;

pub use checkpoint::Checkpoint;
pub use entry::{ENTRY_FIELDS, ENTRY_HEADER, LogEntry};
pub use error::LogError;
pub use merkle::{TreeHash, leaf_hash, node_hash, verify_inclusion};
pub use note::{ED25519_KEY_TYPE, LogKey, SIGNATURE_PREFIX, SignedNote, is_valid_name, key_id};
pub use proof::{LogProof, PROOF_HEADER};

use crate::error::{TlvError, VerifyError};
use crate::format::tlv;
use crate::keys::TrustedKey;
use crate::reader::ImageReader;
use crate::tlv::{TlvArea, TlvLayout};
use crate::verify::{VerifiedImage, read_header};

/// The longest LOG_PROOF TLV value accepted, in bytes.
pub const MAX_PROOF_LEN: usize = 6144;
/// The longest entry accepted, in bytes (before base64).
pub const MAX_ENTRY_LEN: usize = 1024;
/// The most inclusion proof hashes accepted: trees of up to 2^63 entries.
pub const MAX_TREE_HEIGHT: usize = 63;
/// The most signature lines accepted on a checkpoint (the log's and its witnesses').
pub const MAX_NOTE_SIGNATURES: usize = 8;

/// What a valid log proof showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogInclusion {
    /// The entry's index in the log.
    pub index: u64,
    /// The size of the tree the checkpoint commits to.
    pub tree_size: u64,
    /// Index, in the log key list, of the key that signed the checkpoint.
    pub log_key_index: usize,
}

/// Space for a proof and its decoded entry while they are checked.
pub struct ProofBuffer {
    proof: [u8; MAX_PROOF_LEN],
    entry: [u8; MAX_ENTRY_LEN],
}

impl ProofBuffer {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self { proof: [0; MAX_PROOF_LEN], entry: [0; MAX_ENTRY_LEN] }
    }
}

impl Default for ProofBuffer {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks that the image `verify_image` accepted as `verified` (with the trusted `keys` it was
/// given) carries a valid proof that its signature was logged, by a log with one of `log_keys`.
/// See the [module documentation](self) for the checks.
///
/// # Errors
/// [`VerifyError::Log`] with the failed check; read and TLV errors.
pub fn check_log_proof<R: ImageReader>(
    reader: &mut R,
    verified: &VerifiedImage,
    keys: &[TrustedKey],
    log_keys: &[LogKey<'_>],
    buffer: &mut ProofBuffer,
) -> Result<LogInclusion, VerifyError> {
    let key = keys.get(verified.key_index()).ok_or(VerifyError::UnknownKey)?;
    let proof = read_log_proof(reader, &mut buffer.proof)?.ok_or(LogError::Missing)?;
    let inclusion =
        check_proof(proof, verified.digest(), &key.spki_sha256(), log_keys, &mut buffer.entry)?;
    Ok(inclusion)
}

/// Checks a proof text for the image with `image_digest` signed by the key whose
/// SubjectPublicKeyInfo hashes to `key_hash`; the core of [`check_log_proof`].
///
/// # Errors
/// The [`LogError`] of the first failed check.
pub fn check_proof(
    proof: &[u8],
    image_digest: &[u8],
    key_hash: &[u8; 32],
    log_keys: &[LogKey<'_>],
    entry_buffer: &mut [u8; MAX_ENTRY_LEN],
) -> Result<LogInclusion, LogError> {
    let proof = LogProof::parse(proof)?;
    let entry_text = proof.entry(entry_buffer)?;
    let entry = LogEntry::parse(entry_text)?;
    if !entry.names_digest(image_digest) {
        return Err(LogError::WrongImage);
    }
    if !entry.names_key(key_hash) {
        return Err(LogError::WrongKey);
    }
    let note = SignedNote::parse(proof.checkpoint())?;
    let checkpoint = Checkpoint::parse(note.text())?;
    let leaf = leaf_hash(entry_text);
    verify_inclusion(proof.index, checkpoint.size, &leaf, proof.hashes(), &checkpoint.root)?;
    let log_key_index = note.verify(log_keys)?;
    let signer = log_keys.get(log_key_index).ok_or(LogError::NoLogSignature)?;
    if signer.name() != checkpoint.origin {
        return Err(LogError::OriginMismatch);
    }
    Ok(LogInclusion { index: proof.index, tree_size: checkpoint.size, log_key_index })
}

/// Reads the image's LOG_PROOF TLV value into `buffer`; `None` if it has none.
///
/// # Errors
/// [`LogError::TooLong`], a duplicate LOG_PROOF, read and TLV errors.
pub fn read_log_proof<'b, R: ImageReader>(
    reader: &mut R,
    buffer: &'b mut [u8; MAX_PROOF_LEN],
) -> Result<Option<&'b [u8]>, VerifyError> {
    let header = read_header(reader)?;
    let layout = TlvLayout::locate(reader, &header)?;
    let mut found = None;
    let mut entries = layout.entries(reader);
    for entry in entries.by_ref() {
        let entry = entry?;
        if entry.tag != tlv::LOG_PROOF || entry.area != TlvArea::Unprotected {
            continue;
        }
        if found.is_some() {
            return Err(TlvError::Duplicate { tag: entry.tag }.into());
        }
        found = Some(entry);
    }
    let Some(entry) = found else { return Ok(None) };
    if usize::from(entry.len) > MAX_PROOF_LEN {
        return Err(LogError::TooLong { what: "proof", max: MAX_PROOF_LEN }.into());
    }
    entries.read_value(&entry, buffer).map(Some)
}
