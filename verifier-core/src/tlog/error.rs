//! Why a transparency-log proof was refused: one variant per failed check.

use core::fmt;

/// A LOG_PROOF that is missing, malformed, or does not prove this image was logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogError {
    /// The image has no LOG_PROOF TLV (0x00a2) in its unprotected area.
    Missing,
    /// The proof or the entry is longer than this verifier accepts.
    TooLong {
        /// What is too long: `"proof"` or `"entry"`.
        what: &'static str,
        /// The largest length accepted.
        max: usize,
    },
    /// The proof is not UTF-8 text without control characters (other than newlines).
    NotText,
    /// The first line is not `c2sp.org/tlog-proof@v1`.
    BadProofHeader,
    /// A line of the proof is malformed.
    BadProofLine {
        /// The line's role: `"extra"`, `"index"`, `"hash"`.
        line: &'static str,
    },
    /// The proof has no `extra` line: it does not carry the entry.
    MissingEntry,
    /// The inclusion proof has more hashes than [`super::MAX_TREE_HEIGHT`].
    TooManyHashes,
    /// The checkpoint is not a well-formed signed note.
    BadNote,
    /// More signature lines than [`super::MAX_NOTE_SIGNATURES`].
    TooManySignatures,
    /// A checkpoint body line is malformed.
    BadCheckpoint {
        /// The field: `"origin"`, `"size"`, `"root hash"` or `"extension"`.
        field: &'static str,
    },
    /// A log verifier key is malformed (`<name>+<8 hex>+<base64(0x01 ‖ key)>`).
    BadLogKey,
    /// No signature on the checkpoint is by a listed log key.
    NoLogSignature,
    /// A signature by a listed log key does not verify.
    LogSignatureInvalid {
        /// Index of the key in the log key list.
        key_index: usize,
    },
    /// The checkpoint's origin is not the name of the log key that signed it.
    OriginMismatch,
    /// The entry index is not inside the checkpointed tree.
    IndexOutOfRange {
        /// The entry's index.
        index: u64,
        /// The checkpoint's tree size.
        size: u64,
    },
    /// The inclusion proof does not lead from the entry to the checkpoint's root hash.
    NotIncluded,
    /// A field of the `fwsign-entry/v1` entry is missing, out of order or malformed.
    BadEntry {
        /// The field (or `"header"`, or `"end"` for text after the last field).
        field: &'static str,
    },
    /// The entry names another image digest: it logs a different image.
    WrongImage,
    /// The entry names another signing key than the one whose signature verified.
    WrongKey,
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("log proof: the image has no LOG_PROOF TLV (0x00a2)"),
            Self::TooLong { what, max } => {
                write!(f, "log proof: the {what} is longer than {max} bytes")
            }
            Self::NotText => f.write_str("log proof: not UTF-8 text without control characters"),
            Self::BadProofHeader => {
                f.write_str("log proof: the first line is not c2sp.org/tlog-proof@v1")
            }
            Self::BadProofLine { line } => write!(f, "log proof: malformed {line} line"),
            Self::MissingEntry => f.write_str("log proof: no `extra` line carrying the log entry"),
            Self::TooManyHashes => {
                write!(f, "log proof: more than {} inclusion proof hashes", super::MAX_TREE_HEIGHT)
            }
            Self::BadNote => f.write_str("log checkpoint: not a well-formed signed note"),
            Self::TooManySignatures => write!(
                f,
                "log checkpoint: more than {} signature lines",
                super::MAX_NOTE_SIGNATURES
            ),
            Self::BadCheckpoint { field } => write!(f, "log checkpoint: malformed {field}"),
            Self::BadLogKey => {
                f.write_str("log key: expected <name>+<8 hex digits>+<base64(0x01 || key)>")
            }
            Self::NoLogSignature => {
                f.write_str("log checkpoint: not signed by any of the given log keys")
            }
            Self::LogSignatureInvalid { key_index } => {
                write!(f, "log checkpoint: the signature by log key #{key_index} is invalid")
            }
            Self::OriginMismatch => {
                f.write_str("log checkpoint: its origin is not the name of the log key")
            }
            Self::IndexOutOfRange { index, size } => {
                write!(f, "log proof: index {index} is outside the tree of {size} entries")
            }
            Self::NotIncluded => {
                f.write_str("log proof: the entry is not included in the checkpointed tree")
            }
            Self::BadEntry { field } => write!(f, "log entry: missing or malformed `{field}`"),
            Self::WrongImage => f.write_str("log entry: names another image digest"),
            Self::WrongKey => f.write_str("log entry: names another signing key"),
        }
    }
}

impl core::error::Error for LogError {}
