//! RFC 3161 trusted timestamps: proof that an image's signature existed at a given time.
//!
//! After signing, `fwsign sign --timestamp-url` sends the SHA-256 of the signature (the
//! signature TLV's value, exactly as the image stores it) to a time-stamping authority and
//! stores the token it returns in the unprotected vendor TLV
//! [`TIMESTAMP_TOKEN`](verifier_core::format::tlv::TIMESTAMP_TOKEN) (`0x00a1`), after the
//! signature. It has to be unprotected: the token covers the signature, which covers the
//! protected area. The bootloader skips the TLV; the rest of the image is byte for byte the
//! image without a timestamp.
//!
//! The token is a CMS SignedData whose content is a `TSTInfo`. [`verify`] checks it the way
//! `openssl ts -verify` does, against a CA the user trusts: the imprint, the TSA's signature,
//! the certificate chain at the token's time, and the time-stamping key usage.
//!
//! - [`client`]: the HTTP request (with nonce, timeout and retries);
//! - [`verify`]: checking a token;
//! - [`asn1`]: the protocol's ASN.1 types.

pub mod asn1;
pub mod client;
pub mod verify;

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::{Decode as _, Tagged as _};
use verifier_core::format::tlv;
use verifier_core::tlv::TlvLayout;
use verifier_core::{SliceReader, read_header};

use asn1::{SHA256, SHA384, SHA512, SIGNED_DATA, TST_INFO, TstInfo};

/// A decoded token: its signed content and what it says.
#[derive(Debug, Clone)]
pub struct Token {
    /// The CMS SignedData.
    pub signed_data: SignedData,
    /// The encapsulated content, as signed.
    pub content: Vec<u8>,
    /// The decoded `TSTInfo`.
    pub info: TstInfo,
    /// `genTime` in seconds since the Unix epoch.
    pub gen_time: u64,
}

impl Token {
    /// Decodes a token (a CMS `ContentInfo` holding a SignedData over a `TSTInfo`).
    ///
    /// # Errors
    /// A message naming what is malformed.
    pub fn decode(der: &[u8]) -> Result<Self, String> {
        let info = ContentInfo::from_der(der).map_err(|e| format!("not a CMS ContentInfo: {e}"))?;
        if info.content_type != SIGNED_DATA {
            return Err(format!("content type {} is not SignedData", info.content_type));
        }
        let signed_data = info
            .content
            .decode_as::<SignedData>()
            .map_err(|e| format!("malformed SignedData: {e}"))?;
        let encapsulated = &signed_data.encap_content_info;
        if encapsulated.econtent_type != TST_INFO {
            return Err(format!(
                "signed content type {} is not TSTInfo",
                encapsulated.econtent_type
            ));
        }
        let content = encapsulated
            .econtent
            .as_ref()
            .ok_or("the SignedData carries no TSTInfo")?
            .decode_as::<der::asn1::OctetString>()
            .map_err(|e| format!("TSTInfo is not in an OCTET STRING: {e}"))?
            .into_bytes()
            .into_vec();
        let tst_info =
            TstInfo::from_der(&content).map_err(|e| format!("malformed TSTInfo: {e}"))?;
        let gen_time = gen_time_seconds(&tst_info.gen_time)?;
        Ok(Self { signed_data, content, info: tst_info, gen_time })
    }

    /// `genTime` as RFC 3339 UTC text, to the second.
    pub fn gen_time_text(&self) -> String {
        let time = std::time::Duration::from_secs(self.gen_time);
        der::DateTime::from_unix_duration(time).map_or_else(
            |_| self.gen_time.to_string(),
            |t| {
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    t.year(),
                    t.month(),
                    t.day(),
                    t.hour(),
                    t.minutes(),
                    t.seconds()
                )
            },
        )
    }

    /// The TSA's name from the token (`tsa` field), if it gives one.
    pub fn tsa_name(&self) -> Option<String> {
        use x509_cert::ext::pkix::name::GeneralName;
        Some(match self.info.tsa.as_ref()? {
            GeneralName::DirectoryName(name) => name.to_string(),
            GeneralName::DnsName(name) => name.to_string(),
            GeneralName::UniformResourceIdentifier(uri) => uri.to_string(),
            GeneralName::Rfc822Name(mail) => mail.to_string(),
            other => format!("{other:?}"),
        })
    }

    /// The imprint's hash algorithm by name.
    pub fn imprint_hash_name(&self) -> String {
        hash_name(&self.info.message_imprint.hash_algorithm.oid)
            .map_or_else(|| self.info.message_imprint.hash_algorithm.oid.to_string(), str::to_owned)
    }

    /// The serial number, hex.
    pub fn serial_hex(&self) -> String {
        crate::hex(self.info.serial_number.as_bytes())
    }
}

/// The name of a hash OID fwsign knows.
pub fn hash_name(oid: &der::asn1::ObjectIdentifier) -> Option<&'static str> {
    match *oid {
        SHA256 => Some("sha256"),
        SHA384 => Some("sha384"),
        SHA512 => Some("sha512"),
        _ => None,
    }
}

/// Hashes `data` with the algorithm `oid` names.
pub fn hash(oid: &der::asn1::ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest as _;
    match *oid {
        SHA256 => Some(sha2::Sha256::digest(data).to_vec()),
        SHA384 => Some(sha2::Sha384::digest(data).to_vec()),
        SHA512 => Some(sha2::Sha512::digest(data).to_vec()),
        _ => None,
    }
}

/// Parses a GeneralizedTime `YYYYMMDDHHMMSS[.f*]Z` (the fraction is dropped: tokens are
/// compared with certificate validity, which has whole seconds).
fn gen_time_seconds(value: &der::asn1::Any) -> Result<u64, String> {
    let malformed = || "genTime is not a GeneralizedTime YYYYMMDDHHMMSS[.fff]Z".to_owned();
    if value.tag() != der::Tag::GeneralizedTime {
        return Err(malformed());
    }
    let text = std::str::from_utf8(value.value()).map_err(|_| malformed())?;
    let digits = text.get(..14).ok_or_else(malformed)?;
    let rest = &text[14..];
    let fraction_ok = match rest.strip_prefix('.') {
        Some(fraction) => fraction
            .strip_suffix('Z')
            .is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit())),
        None => rest == "Z",
    };
    if !fraction_ok || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let field =
        |range: std::ops::Range<usize>| digits[range].parse::<u8>().map_err(|_| malformed());
    let year: u16 = digits[..4].parse().map_err(|_| malformed())?;
    let time = der::DateTime::new(
        year,
        field(4..6)?,
        field(6..8)?,
        field(8..10)?,
        field(10..12)?,
        field(12..14)?,
    )
    .map_err(|_| malformed())?;
    Ok(time.unix_duration().as_secs())
}

/// A timestamp token as an image carries it, with the signature it stamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampedSignature {
    /// The signature TLV value.
    pub signature: Vec<u8>,
    /// The token's DER.
    pub token: Vec<u8>,
}

/// The timestamp token of an image, if it carries one, and the signature it stamps (the
/// last signature TLV before it).
///
/// # Errors
/// A message when the image is malformed, has several tokens, or a token with no
/// signature before it.
pub fn find_in_image(image: &[u8]) -> Result<Option<StampedSignature>, String> {
    let mut reader = SliceReader::new(image);
    let header = read_header(&mut reader).map_err(|e| e.to_string())?;
    let layout = TlvLayout::locate(&mut reader, &header).map_err(|e| e.to_string())?;
    let mut signature: Option<Vec<u8>> = None;
    let mut found = None;
    for entry in layout.entries(&mut reader) {
        let entry = entry.map_err(|e| e.to_string())?;
        let start = entry.value_offset as usize;
        let value = image
            .get(start..start + usize::from(entry.len))
            .ok_or("TLV beyond the end of the image")?;
        match entry.tag {
            tlv::ED25519 | tlv::ECDSA_SIG => signature = Some(value.to_vec()),
            tlv::TIMESTAMP_TOKEN
                if matches!(entry.area, verifier_core::tlv::TlvArea::Unprotected) =>
            {
                if found.is_some() {
                    return Err("the image carries more than one timestamp token".into());
                }
                let stamped =
                    signature.clone().ok_or("the timestamp token does not follow a signature")?;
                found = Some(StampedSignature { signature: stamped, token: value.to_vec() });
            }
            _ => {}
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generalized(text: &str) -> der::asn1::Any {
        der::asn1::Any::new(der::Tag::GeneralizedTime, text.as_bytes()).expect("any")
    }

    #[test]
    fn gen_time_with_and_without_a_fraction() {
        assert_eq!(gen_time_seconds(&generalized("19700102000000Z")), Ok(86_400));
        assert_eq!(gen_time_seconds(&generalized("19700102000000.25Z")), Ok(86_400));
        for bad in ["19700102000000", "19700102000000.Z", "1970010200000Z", "19701302000000Z"] {
            assert!(gen_time_seconds(&generalized(bad)).is_err(), "{bad}");
        }
        let utc = der::asn1::Any::new(der::Tag::UtcTime, b"700102000000Z".as_slice()).expect("any");
        assert!(gen_time_seconds(&utc).is_err());
    }
}
