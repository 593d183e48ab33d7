//! Building the C2SP `tlog-proof@v1` text that goes into an image's LOG_PROOF TLV.

use verifier_core::tlog::{PROOF_HEADER, TreeHash};

use crate::base64_encode;

/// The proof text for the entry `entry` at `index`, with its inclusion proof against the
/// signed checkpoint `checkpoint` (a signed note, copied verbatim).
pub fn proof_text(entry: &[u8], index: u64, inclusion: &[TreeHash], checkpoint: &str) -> String {
    let mut text = format!("{PROOF_HEADER}\nextra {}\nindex {index}\n", base64_encode(entry));
    for hash in inclusion {
        text.push_str(&base64_encode(hash));
        text.push('\n');
    }
    text.push('\n');
    text.push_str(checkpoint);
    text
}
