//! What a monitor checks each time it fetches a log's newest checkpoint: that the log key
//! signed it, that the published tiles match it, and that it extends the last checkpoint the
//! monitor recorded (RFC 9162 consistency). A log that was rewritten (forked) or truncated
//! fails here, loudly, with [`TlogError::Inconsistent`].

use verifier_core::tlog::{LogError, LogKey, TreeHash};

use crate::TlogError;
use crate::checkpoint::CheckpointBody;
use crate::note::open_note;
use crate::tiles::{Tile, TileStore};
use crate::tree::{consistency_proof, tree_hash, verify_consistency};

/// A checkpoint as a monitor records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// The tree size.
    pub size: u64,
    /// The root hash at that size.
    pub root: TreeHash,
}

/// Checks the signed checkpoint `note` against `log_keys` and against `last` (the previous
/// checkpoint recorded, if any), reading the log's tiles through `fetch`; returns what to record.
///
/// # Errors
/// [`TlogError::Format`] for a bad or unknown signature or a malformed checkpoint;
/// [`TlogError::Inconsistent`] if the log shrank, forked, or its tiles disagree with the
/// checkpoint; fetch errors.
pub fn check_checkpoint<F>(
    note: &str,
    log_keys: &[LogKey<'_>],
    last: Option<&Observed>,
    fetch: F,
) -> Result<Observed, TlogError>
where
    F: Fn(&Tile) -> Result<Vec<u8>, TlogError>,
{
    let (text, key_index) = open_note(note, log_keys)?;
    let body = CheckpointBody::parse(text)?;
    if log_keys.get(key_index).map(LogKey::name) != Some(body.origin.as_str()) {
        return Err(LogError::OriginMismatch.into());
    }
    let tiles = TileStore::new(body.size, fetch);
    if tree_hash(body.size, &tiles)? != body.root {
        let reason = "the published tiles do not hash to the checkpoint's root";
        return Err(TlogError::Inconsistent { old: body.size, new: body.size, reason });
    }
    if let Some(last) = last {
        if body.size < last.size {
            let reason = "the log is smaller than before: truncated";
            return Err(TlogError::Inconsistent { old: last.size, new: body.size, reason });
        }
        let proof = consistency_proof(last.size, body.size, &tiles)?;
        verify_consistency(last.size, body.size, &last.root, &body.root, &proof)?;
    }
    Ok(Observed { size: body.size, root: body.root })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalLog;
    use crate::note::Ed25519NoteSigner;

    const ORIGIN: &str = "monitor.example/log";

    fn signer(seed: u8) -> Ed25519NoteSigner {
        let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32]));
        Ed25519NoteSigner::new(ORIGIN, pair).unwrap()
    }

    /// A log in a temporary directory with entries `names`, and a tile fetcher for it.
    fn log(signer: &Ed25519NoteSigner, names: &[&str]) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LocalLog::create(dir.path(), ORIGIN, signer).unwrap();
        for name in names {
            log.append(name.as_bytes(), signer).unwrap();
        }
        let checkpoint = log.checkpoint().unwrap();
        (dir, checkpoint)
    }

    fn fetch(dir: &std::path::Path) -> impl Fn(&Tile) -> Result<Vec<u8>, TlogError> + '_ {
        |tile| std::fs::read(dir.join(tile.path())).map_err(|e| TlogError::Store(e.to_string()))
    }

    #[test]
    fn growth_is_accepted_and_forks_truncations_and_other_keys_are_caught() {
        let log_signer = signer(1);
        let vkey = log_signer.verifier_key();
        let keys = [LogKey::parse(&vkey).unwrap()];
        let (old_dir, old) = log(&log_signer, &["a", "b", "c", "d", "e", "f", "g"]);
        let seen = check_checkpoint(&old, &keys, None, fetch(old_dir.path())).unwrap();
        assert_eq!(seen.size, 7);

        let grown: Vec<&str> = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"].to_vec();
        let (dir, new) = log(&log_signer, &grown);
        let next = check_checkpoint(&new, &keys, Some(&seen), fetch(dir.path())).unwrap();
        assert_eq!(next.size, 10);

        // The same key signs a log whose sixth entry was rewritten: a fork.
        let (fork_dir, fork) =
            log(&log_signer, &["a", "b", "c", "d", "e", "F", "g", "h", "i", "j"]);
        let error =
            check_checkpoint(&fork, &keys, Some(&seen), fetch(fork_dir.path())).unwrap_err();
        assert!(matches!(error, TlogError::Inconsistent { old: 7, new: 10, .. }), "{error}");

        // A log cut back to five entries.
        let (short_dir, short) = log(&log_signer, &["a", "b", "c", "d", "e"]);
        let error =
            check_checkpoint(&short, &keys, Some(&seen), fetch(short_dir.path())).unwrap_err();
        assert!(error.to_string().contains("truncated"), "{error}");

        // A checkpoint by another key, and tiles that do not match the checkpoint.
        let (rogue_dir, rogue) = log(&signer(2), &grown);
        let error =
            check_checkpoint(&rogue, &keys, Some(&seen), fetch(rogue_dir.path())).unwrap_err();
        assert!(matches!(error, TlogError::Format(LogError::NoLogSignature)), "{error}");
        let error = check_checkpoint(&new, &keys, Some(&seen), fetch(fork_dir.path())).unwrap_err();
        assert!(error.to_string().contains("tiles do not hash"), "{error}");
    }
}
