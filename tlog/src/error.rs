//! The crate's error type.

use verifier_core::tlog::LogError;

/// What went wrong in the log library.
#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    /// A proof, checkpoint, note, key or entry failed a check of the verifier.
    #[error(transparent)]
    Format(#[from] LogError),
    /// A tree position that does not exist.
    #[error("tree: {0}")]
    Range(String),
    /// The two checkpoints are not consistent: the log was rewritten or truncated.
    #[error("consistency proof from size {old} to size {new} does not verify: {reason}")]
    Inconsistent {
        /// The older tree size.
        old: u64,
        /// The newer tree size.
        new: u64,
        /// What did not match.
        reason: &'static str,
    },
    /// The hash store failed or misses a hash it should hold.
    #[error("hash store: {0}")]
    Store(String),
    /// A signing key could not be read or used.
    #[error("log key: {0}")]
    Key(String),
    /// An entry bundle (tile data) is malformed.
    #[error("entry bundle: {0}")]
    Bundle(String),
}
