//! Making and signing C2SP `tlog-checkpoint`s.

use verifier_core::tlog::TreeHash;

use crate::note::{NoteSigner, sign_note};
use crate::{TlogError, base64_encode};

/// A checkpoint body: the log's origin, the tree size and root hash, optional extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointBody {
    /// The origin line: the log's name, also its key's name.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Root hash of the tree of `size` leaves.
    pub root: TreeHash,
    /// Extension lines (without newlines), usually none.
    pub extensions: Vec<String>,
}

impl CheckpointBody {
    /// The note text: `<origin>\n<size>\n<base64 root>\n` and the extension lines.
    pub fn text(&self) -> String {
        let mut text = format!("{}\n{}\n{}\n", self.origin, self.size, base64_encode(&self.root));
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// The checkpoint signed by `signer`, as a signed note.
    ///
    /// # Errors
    /// [`TlogError::Key`] if the signer's name is not the origin (C2SP: the log key is named
    /// after the origin); a malformed body; signer errors.
    pub fn sign(&self, signer: &dyn NoteSigner) -> Result<String, TlogError> {
        if signer.name() != self.origin {
            return Err(TlogError::Key(format!(
                "the log key is named {:?} but the checkpoint origin is {:?}",
                signer.name(),
                self.origin
            )));
        }
        let text = self.text();
        verifier_core::tlog::Checkpoint::parse(&text)?;
        sign_note(&text, signer)
    }

    /// Parses a checkpoint's note text (signature not checked: see [`crate::note::open_note`]).
    ///
    /// # Errors
    /// [`TlogError::Format`] naming the malformed field.
    pub fn parse(text: &str) -> Result<Self, TlogError> {
        let parsed = verifier_core::tlog::Checkpoint::parse(text)?;
        let extensions = text.lines().skip(3).map(str::to_owned).collect();
        Ok(Self {
            origin: parsed.origin.to_owned(),
            size: parsed.size,
            root: parsed.root,
            extensions,
        })
    }
}
