//! Strict standard base64 (RFC 4648 §4, padded) decoding into a caller's buffer.
//!
//! Strict because a proof must have one encoding only: non-canonical padding bits, missing
//! padding and characters outside the alphabet are all refused.

/// Decodes `text` into the start of `out`, returning the decoded part; `None` if `text` is not
/// canonical padded base64 or does not fit.
pub(crate) fn decode<'o>(text: &[u8], out: &'o mut [u8]) -> Option<&'o [u8]> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let quads = text.len() / 4;
    let mut written = 0usize;
    let mut slots = out.iter_mut();
    for (position, quad) in text.chunks_exact(4).enumerate() {
        let last = position.checked_add(1) == Some(quads);
        let bytes = decode_quad(quad, last)?;
        for byte in bytes.iter().take(bytes_in_quad(quad)) {
            *slots.next()? = *byte;
            written = written.checked_add(1)?;
        }
    }
    out.get(..written)
}

/// Decodes exactly `N` bytes.
pub(crate) fn decode_array<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    let decoded = decode(text, &mut out)?.len();
    (decoded == N).then_some(out)
}

/// How many bytes a quad holds: 3, or fewer when it ends in padding.
fn bytes_in_quad(quad: &[u8]) -> usize {
    match quad {
        [_, _, b'=', b'='] => 1,
        [_, _, _, b'='] => 2,
        _ => 3,
    }
}

fn decode_quad(quad: &[u8], last: bool) -> Option<[u8; 3]> {
    let [a, b, c, d] = *quad else { return None };
    let (a, b) = (sextet(a)?, sextet(b)?);
    let (c, d) = match (c, d) {
        (b'=', b'=') if last && b & 0x0f == 0 => (0, 0),
        (c, b'=') if last => {
            let c = sextet(c)?;
            if c & 0x03 != 0 {
                return None;
            }
            (c, 0)
        }
        (c, d) => (sextet(c)?, sextet(d)?),
    };
    Some([a << 2 | b >> 4, (b & 0x0f) << 4 | c >> 2, (c & 0x03) << 6 | d])
}

fn sextet(symbol: u8) -> Option<u8> {
    match symbol {
        b'A'..=b'Z' => Some(symbol.wrapping_sub(b'A')),
        b'a'..=b'z' => Some(symbol.wrapping_sub(b'a').wrapping_add(26)),
        b'0'..=b'9' => Some(symbol.wrapping_sub(b'0').wrapping_add(52)),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(text: &str) -> Option<std::vec::Vec<u8>> {
        let mut out = [0u8; 64];
        decode(text.as_bytes(), &mut out).map(<[u8]>::to_vec)
    }

    #[test]
    fn decodes_rfc4648_vectors() {
        for (text, plain) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(decoded(text).as_deref(), Some(plain.as_bytes()), "{text}");
        }
        assert_eq!(decoded("+/+/"), Some(std::vec![0xfb, 0xff, 0xbf]));
    }

    #[test]
    fn refuses_non_canonical_text() {
        for text in [
            "Zg", "Zg=", "Zh==", "Zm9=", "Zg==Zg==", "Zm9v\n", "Zm-v", "Zm_v", "=Zg=", "Z===",
            " Zg=",
        ] {
            assert_eq!(decoded(text), None, "{text:?}");
        }
        let mut small = [0u8; 2];
        assert_eq!(decode(b"Zm9v", &mut small), None);
        assert_eq!(decode_array::<2>(b"Zm9v"), None);
        assert_eq!(decode_array::<3>(b"Zm9v"), Some(*b"foo"));
    }
}
