//! C2SP `tlog-checkpoint` bodies: origin, tree size, root hash, optional extension lines.

use super::base64;
use super::error::LogError;
use super::merkle::TreeHash;

/// A checkpoint body, parsed; its signature is checked separately (see [`super::SignedNote`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint<'a> {
    /// The log's origin line (also the name of its signing key).
    pub origin: &'a str,
    /// Number of leaves in the tree.
    pub size: u64,
    /// The tree's root hash.
    pub root: TreeHash,
}

impl<'a> Checkpoint<'a> {
    /// Parses a note text: `<origin>\n<size>\n<base64 root>\n` then non-empty extension lines.
    ///
    /// # Errors
    /// [`LogError::BadCheckpoint`] naming the malformed field.
    pub fn parse(text: &'a str) -> Result<Self, LogError> {
        let bad = |field| LogError::BadCheckpoint { field };
        let body = text.strip_suffix('\n').ok_or(bad("extension"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or(bad("origin"))?;
        let size = lines.next().and_then(parse_decimal).ok_or(bad("size"))?;
        let root = lines.next().ok_or(bad("root hash"))?;
        let root = base64::decode_array::<32>(root.as_bytes()).ok_or(bad("root hash"))?;
        if lines.any(str::is_empty) {
            return Err(bad("extension"));
        }
        Ok(Self { origin, size, root })
    }
}

/// A decimal `u64` without sign or leading zeros (`0` itself allowed).
pub(crate) fn parse_decimal(text: &str) -> Option<u64> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let canonical = text == "0" || !text.starts_with('0');
    (digits && canonical).then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

    #[test]
    fn parses_the_c2sp_example_and_extensions() {
        let text = std::format!("example.com/behind-the-sofa\n20852163\n{ROOT}\n");
        let checkpoint = Checkpoint::parse(&text).unwrap();
        assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
        assert_eq!(checkpoint.size, 20_852_163);
        assert_eq!(checkpoint.root[..2], [0x0a, 0xc5]);
        let extended = std::format!("{text}extension line\n");
        assert_eq!(Checkpoint::parse(&extended), Ok(checkpoint));
    }

    #[test]
    fn refuses_each_malformed_field() {
        let field = |text: &str| match Checkpoint::parse(text) {
            Err(LogError::BadCheckpoint { field }) => field,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(field(&std::format!("\n1\n{ROOT}\n")), "origin");
        for size in ["", "01", "-1", "+1", "1 ", "18446744073709551616", "0x10"] {
            assert_eq!(field(&std::format!("o\n{size}\n{ROOT}\n")), "size", "{size:?}");
        }
        assert_eq!(field("o\n1\nAAAA\n"), "root hash");
        assert_eq!(field("o\n1\n"), "root hash");
        assert_eq!(field(&std::format!("o\n1\n{ROOT}")), "extension");
        assert_eq!(field(&std::format!("o\n1\n{ROOT}\n\nx\n")), "extension");
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
    }
}
