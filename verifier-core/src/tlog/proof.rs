//! The C2SP `tlog-proof@v1` text: entry, index, inclusion proof and checkpoint in one bundle.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 entry>
//! index <decimal>
//! <base64 hash>          (0 to MAX_TREE_HEIGHT lines, from the leaf's sibling upward)
//!
//! <checkpoint signed note, verbatim>
//! ```
//!
//! fwsign requires the `extra` line: it carries the `fwsign-entry/v1` entry that is the leaf.

use super::base64;
use super::checkpoint::parse_decimal;
use super::error::LogError;
use super::merkle::TreeHash;
use super::note::blank_line;
use super::{MAX_ENTRY_LEN, MAX_TREE_HEIGHT};

/// The first line of a proof.
pub const PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A parsed proof; the checkpoint's signature and the inclusion are not checked yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogProof<'a> {
    extra: &'a str,
    /// The entry's index in the log.
    pub index: u64,
    hashes: &'a str,
    hash_count: usize,
    checkpoint: &'a str,
}

impl<'a> LogProof<'a> {
    /// Parses the proof text; every line is checked, the hashes decoded once here.
    ///
    /// # Errors
    /// The [`LogError`] naming the malformed part.
    pub fn parse(text: &'a [u8]) -> Result<Self, LogError> {
        let text = core::str::from_utf8(text).map_err(|_| LogError::NotText)?;
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(LogError::NotText);
        }
        let (header, rest) = text.split_once('\n').ok_or(LogError::BadProofHeader)?;
        if header != PROOF_HEADER {
            return Err(LogError::BadProofHeader);
        }
        let (line, rest) = rest.split_once('\n').ok_or(LogError::MissingEntry)?;
        let extra = line.strip_prefix("extra ").ok_or(LogError::MissingEntry)?;
        let (line, rest) = rest.split_once('\n').ok_or(bad_line("index"))?;
        let index = line.strip_prefix("index ").and_then(parse_decimal).ok_or(bad_line("index"))?;
        let (hashes, checkpoint) = split_hashes(rest)?;
        if checkpoint.is_empty() {
            return Err(LogError::BadNote);
        }
        let proof = Self { extra, index, hashes, hash_count: 0, checkpoint };
        let mut hash_count = 0usize;
        for hash in proof.hashes() {
            hash?;
            hash_count = hash_count.saturating_add(1);
        }
        if hash_count > MAX_TREE_HEIGHT {
            return Err(LogError::TooManyHashes);
        }
        Ok(Self { hash_count, ..proof })
    }

    /// Decodes the entry (the `extra` line) into `buffer`.
    ///
    /// # Errors
    /// [`LogError::TooLong`] over [`MAX_ENTRY_LEN`] bytes; [`LogError::BadProofLine`] if not base64.
    pub fn entry<'b>(&self, buffer: &'b mut [u8; MAX_ENTRY_LEN]) -> Result<&'b [u8], LogError> {
        let padding = self.extra.bytes().rev().take_while(|b| *b == b'=').count();
        let decoded_len = (self.extra.len() / 4).saturating_mul(3).saturating_sub(padding);
        if decoded_len > MAX_ENTRY_LEN {
            return Err(LogError::TooLong { what: "entry", max: MAX_ENTRY_LEN });
        }
        base64::decode(self.extra.as_bytes(), buffer).ok_or(bad_line("extra"))
    }

    /// The inclusion proof, from the leaf's sibling upward.
    pub fn hashes(&self) -> impl Iterator<Item = Result<TreeHash, LogError>> + 'a {
        self.hashes
            .lines()
            .map(|line| base64::decode_array::<32>(line.as_bytes()).ok_or(bad_line("hash")))
    }

    /// Number of hashes in the inclusion proof.
    pub fn hash_count(&self) -> usize {
        self.hash_count
    }

    /// The checkpoint, a signed note, verbatim.
    pub fn checkpoint(&self) -> &'a str {
        self.checkpoint
    }
}

/// Splits the hash lines from the checkpoint after the empty line that ends them.
fn split_hashes(rest: &str) -> Result<(&str, &str), LogError> {
    if let Some(checkpoint) = rest.strip_prefix('\n') {
        return Ok(("", checkpoint));
    }
    let end = blank_line(rest.as_bytes().windows(2).position(|pair| pair == b"\n\n"))?;
    let hashes = rest.get(..end).ok_or(LogError::BadNote)?;
    let checkpoint = rest.get(end.saturating_add(2)..).ok_or(LogError::BadNote)?;
    Ok((hashes, checkpoint))
}

fn bad_line(line: &'static str) -> LogError {
    LogError::BadProofLine { line }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=";
    const CHECKPOINT: &str =
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} o AAAAAAAA\n";

    fn proof(hashes: &str) -> std::string::String {
        std::format!("{PROOF_HEADER}\nextra Zm9v\nindex 5\n{hashes}\n{CHECKPOINT}")
    }

    #[test]
    fn parses_entry_index_hashes_and_checkpoint() {
        let text = proof(&std::format!("{HASH}\n{HASH}\n"));
        let parsed = LogProof::parse(text.as_bytes()).unwrap();
        assert_eq!(parsed.index, 5);
        assert_eq!(parsed.hash_count(), 2);
        assert_eq!(parsed.checkpoint(), CHECKPOINT);
        let mut buffer = [0u8; MAX_ENTRY_LEN];
        assert_eq!(parsed.entry(&mut buffer), Ok(&b"foo"[..]));
        let empty = proof("");
        assert_eq!(LogProof::parse(empty.as_bytes()).unwrap().hash_count(), 0);
    }

    #[test]
    fn refuses_malformed_proofs() {
        let verdict = |text: &str| LogProof::parse(text.as_bytes()).map(|_| ());
        let good = proof(&std::format!("{HASH}\n"));
        assert_eq!(verdict(&good.replacen("@v1", "@v2", 1)), Err(LogError::BadProofHeader));
        assert_eq!(verdict(&good.replacen("extra Zm9v\n", "", 1)), Err(LogError::MissingEntry));
        assert_eq!(verdict(&good.replacen("index 5", "index 05", 1)), Err(bad_line("index")));
        assert_eq!(verdict(&good.replacen(HASH, "AAAA", 1)), Err(bad_line("hash")));
        assert_eq!(verdict(&good.replacen("\n\no\n", "\no\n", 1)), Err(bad_line("hash")));
        assert_eq!(verdict(&good.replacen("index 5", "index\t5", 1)), Err(LogError::NotText));
        assert_eq!(
            verdict(&std::format!("{PROOF_HEADER}\nextra Zm9v\nindex 1\n")),
            Err(LogError::BadNote)
        );
        let tall = proof(&std::format!("{HASH}\n").repeat(MAX_TREE_HEIGHT + 1));
        assert_eq!(verdict(&tall), Err(LogError::TooManyHashes));
        let long = proof("").replacen("Zm9v", &"Zm9v".repeat(MAX_ENTRY_LEN / 3 + 1), 1);
        let parsed = LogProof::parse(long.as_bytes()).unwrap();
        let mut buffer = [0u8; MAX_ENTRY_LEN];
        assert_eq!(
            parsed.entry(&mut buffer),
            Err(LogError::TooLong { what: "entry", max: MAX_ENTRY_LEN })
        );
    }
}
