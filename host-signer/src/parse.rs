//! Parsers for the values imgtool's options take, with imgtool's syntax.
//!
//! Each returns a message suitable for "invalid value for OPTION: …"; the command line
//! layer adds the option name.

use verifier_core::{ImageVersion, RevokedKey};

use crate::image::Dependency;

/// Parses an integer as Python's `int(text, 0)` does: decimal, `0x`, `0o` or `0b`,
/// with optional `_` separators.
///
/// # Errors
/// A message naming the text and the expected forms.
pub fn int(text: &str) -> Result<u64, String> {
    let cleaned: String = text.trim().chars().filter(|c| *c != '_').collect();
    let lower = cleaned.to_ascii_lowercase();
    let (digits, radix) = if let Some(rest) = lower.strip_prefix("0x") {
        (rest, 16)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (rest, 8)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (rest, 2)
    } else {
        (lower.as_str(), 10)
    };
    let leading_zero = radix == 10 && digits.len() > 1 && digits.starts_with('0');
    if digits.is_empty() || leading_zero || digits.starts_with('+') || digits.starts_with('-') {
        return Err(format!("'{text}' is not an integer (use decimal, 0x.., 0o.. or 0b..)"));
    }
    u64::from_str_radix(digits, radix)
        .map_err(|e| format!("'{text}' is not an integer (use decimal, 0x.., 0o.. or 0b..): {e}"))
}

/// Parses an integer that must fit in a `u32`.
///
/// # Errors
/// A message naming the text and the range.
pub fn u32_value(text: &str) -> Result<u32, String> {
    let value = int(text)?;
    u32::try_from(value).map_err(|_| format!("{text} does not fit in 32 bits (at most 0xffffffff)"))
}

/// Parses `major[.minor[.revision[+build]]]`, decimal without leading zeros.
///
/// # Errors
/// A message naming the malformed or out-of-range part.
pub fn version(text: &str) -> Result<ImageVersion, String> {
    let malformed = || {
        format!(
            "'{text}' is not a version: expected major[.minor[.revision[+build]]], e.g. 1.2.3+4"
        )
    };
    let (numbers, build) = match text.split_once('+') {
        Some((numbers, build)) => (numbers, Some(build)),
        None => (text, None),
    };
    let parts: Vec<&str> = numbers.split('.').collect();
    if parts.len() > 3 || (build.is_some() && parts.len() != 3) {
        return Err(malformed());
    }
    let number = |part: &str, name: &str, max: u64| -> Result<u64, String> {
        let canonical = !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'));
        if !canonical {
            return Err(malformed());
        }
        let value: u64 = part
            .parse()
            .map_err(|_| format!("{name} {part} in '{text}' is out of range (at most {max})"))?;
        if value > max {
            return Err(format!("{name} {value} in '{text}' is out of range (at most {max})"));
        }
        Ok(value)
    };
    let field = |index: usize, name: &str, max: u64| -> Result<u64, String> {
        parts.get(index).map_or(Ok(0), |part| number(part, name, max))
    };
    let build_num = build.map_or(Ok(0), |b| number(b, "build", u64::from(u32::MAX)))?;
    Ok(ImageVersion {
        major: u8::try_from(field(0, "major", 255)?).map_err(|e| e.to_string())?,
        minor: u8::try_from(field(1, "minor", 255)?).map_err(|e| e.to_string())?,
        revision: u16::try_from(field(2, "revision", 65535)?).map_err(|e| e.to_string())?,
        build_num: u32::try_from(build_num).map_err(|e| e.to_string())?,
    })
}

/// Parses imgtool's dependency list: `"(image_id,version), (image_id,version)"`.
///
/// # Errors
/// A message naming the malformed entry.
pub fn dependencies(text: &str) -> Result<Vec<Dependency>, String> {
    let expected = "expected \"(image_id,version), ...\", e.g. \"(1,2.0.0+0)\"";
    let mut rest = text.trim();
    let mut list = Vec::new();
    while !rest.is_empty() {
        let inner_end =
            rest.find(')').ok_or_else(|| format!("'{text}': missing ')'; {expected}"))?;
        let entry = rest
            .get(..inner_end)
            .and_then(|e| e.trim().strip_prefix('('))
            .ok_or_else(|| format!("'{text}': missing '('; {expected}"))?;
        let (id, min_version) = entry
            .split_once(',')
            .ok_or_else(|| format!("'{text}': entry ({entry}) lacks a ','; {expected}"))?;
        let image_id = id
            .trim()
            .parse::<u8>()
            .map_err(|_| format!("'{text}': image id '{}' is not a number 0..255", id.trim()))?;
        list.push(Dependency { image_id, min_version: version(min_version.trim())? });
        rest = rest.get(inner_end + 1..).unwrap_or("").trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    if list.is_empty() {
        return Err(format!("'{text}': no dependency given; {expected}"));
    }
    Ok(list)
}

/// Parses a `--revoke-key` value: a key slot number (0..=254), or the 64 hex digits of the
/// SHA-256 of the key's SubjectPublicKeyInfo (`fwsign getpub -e hash`).
///
/// # Errors
/// A message saying what was expected.
pub fn revoked_key(text: &str) -> Result<RevokedKey, String> {
    let expected =
        "expected a key slot 0..=254 or the 64 hex digits of a key hash (fwsign getpub -e hash)";
    if text.len() == 64 {
        let bytes =
            custom_tlv_value(&format!("0x{text}")).map_err(|_| format!("'{text}': {expected}"))?;
        let hash = <[u8; 32]>::try_from(bytes).map_err(|_| format!("'{text}': {expected}"))?;
        return Ok(RevokedKey::SpkiSha256(hash));
    }
    match int(text).ok().and_then(|slot| u8::try_from(slot).ok()) {
        Some(slot) if slot != verifier_core::format::REVOKE_BY_HASH => Ok(RevokedKey::Slot(slot)),
        _ => Err(format!("'{text}': {expected}")),
    }
}

/// Parses a custom TLV value as imgtool does: `0x…` is hex bytes, anything else UTF-8 text.
///
/// # Errors
/// A message for an odd-length or non-hex `0x` value.
pub fn custom_tlv_value(text: &str) -> Result<Vec<u8>, String> {
    let Some(hex) = text.strip_prefix("0x") else {
        return Ok(text.as_bytes().to_vec());
    };
    if hex.len() % 2 != 0 {
        return Err(format!("custom TLV value '{text}' has an odd number of hex digits"));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("custom TLV value '{text}' is not hex after 0x"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_python_base_zero() {
        assert_eq!(int("0x10"), Ok(16));
        assert_eq!(int("0o17"), Ok(15));
        assert_eq!(int("0b101"), Ok(5));
        assert_eq!(int("1_000"), Ok(1000));
        assert!(int("010").is_err());
        assert!(int("-1").is_err());
        assert!(u32_value("0x100000000").is_err());
    }

    #[test]
    fn versions() {
        let v = version("1.2.3+4").expect("valid");
        assert_eq!((v.major, v.minor, v.revision, v.build_num), (1, 2, 3, 4));
        assert_eq!(version("7").expect("valid").minor, 0);
        for bad in ["256", "1.2+3", "01.2", "1..2", "", "1.2.3.4", "1.2.65536", "a"] {
            assert!(version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dependency_lists() {
        let list = dependencies("(1,2.0.0+0), (0, 1.2)").expect("valid");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].image_id, 1);
        assert_eq!(list[1].min_version.minor, 2);
        assert!(dependencies("(1 2.0)").is_err());
        assert!(dependencies("").is_err());
    }

    #[test]
    fn revoked_keys() {
        assert_eq!(revoked_key("2"), Ok(RevokedKey::Slot(2)));
        assert_eq!(revoked_key(&"ab".repeat(32)), Ok(RevokedKey::SpkiSha256([0xab; 32])));
        for bad in ["255", "-1", "x", &"zz".repeat(32), &"ab".repeat(31)] {
            assert!(revoked_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn custom_values() {
        assert_eq!(custom_tlv_value("0x0102"), Ok(vec![1, 2]));
        assert_eq!(custom_tlv_value("ab"), Ok(b"ab".to_vec()));
        assert!(custom_tlv_value("0x123").is_err());
    }
}
