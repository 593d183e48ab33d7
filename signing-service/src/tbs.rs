//! The to-be-signed region a client sends: header, payload and protected TLVs.
//!
//! The service signs only what it has parsed itself, with verifier-core's parser (the code the
//! bootloader runs): a region whose header lies about its sizes, whose TLVs run past their
//! area, or that carries anything after the protected area is refused. The digest is computed
//! here, never taken from the client, so the policy decides on what is really signed.

use verifier_core::format::{TLV_INFO_SIZE, UNPROTECTED_TLV_MAGIC, tlv};
use verifier_core::tlv::{TlvArea, TlvLayout};
use verifier_core::{
    HashAlgorithm, ImageHeader, ImageReader, ReadError, Revocations, TlvError, VerifyError,
    read_header,
};

/// What the service learnt from one image's to-be-signed region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedImage {
    /// The header.
    pub header: ImageHeader,
    /// The protected security counter, if the image has one.
    pub security_counter: Option<u32>,
    /// The keys the image revokes (its protected REVOKE_KEYS TLV): a rotation image.
    pub revocations: Revocations,
    /// The digest the signature covers.
    pub digest: Vec<u8>,
    /// The hash algorithm of the digest.
    pub hash: HashAlgorithm,
}

/// Why a region was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TbsError {
    /// verifier-core refused the header or a TLV.
    #[error("not a valid to-be-signed image region: {0}")]
    Malformed(VerifyError),
    /// The region is longer or shorter than its header says.
    #[error(
        "the header says the signed region is {expected} bytes (header + payload + protected TLVs), but {actual} were sent"
    )]
    LengthMismatch {
        /// `hdr_size + img_size + protect_tlv_size`.
        expected: u64,
        /// The bytes received.
        actual: usize,
    },
    /// The security counter TLV is not 4 bytes.
    #[error("the security counter TLV is {0} bytes, expected 4")]
    BadSecurityCounter(u16),
}

impl From<VerifyError> for TbsError {
    fn from(error: VerifyError) -> Self {
        Self::Malformed(error)
    }
}

/// Parses a to-be-signed region and computes its digest with `hash`.
///
/// # Errors
/// [`TbsError`] naming the problem.
pub fn parse(region: &[u8], hash: HashAlgorithm) -> Result<ParsedImage, TbsError> {
    let mut reader = RegionReader::new(region);
    let header = read_header(&mut reader)?;
    header.check_supported().map_err(VerifyError::Header)?;
    let expected = header.hashed_len().map_or(u64::MAX, u64::from);
    if u64::try_from(region.len()).ok() != Some(expected) {
        return Err(TbsError::LengthMismatch { expected, actual: region.len() });
    }
    let layout = TlvLayout::locate(&mut reader, &header)?;
    let mut security_counter = None;
    let mut revocations = Revocations::default();
    let mut entries = layout.entries(&mut reader);
    while let Some(entry) = entries.next() {
        let entry = entry?;
        if entry.area == TlvArea::Protected && entry.tag == tlv::REVOKE_KEYS {
            let mut value = [0u8; verifier_core::revocation::MAX_VALUE_LEN];
            let value = entries.read_value(&entry, &mut value)?;
            if !revocations.is_empty() {
                return Err(VerifyError::Tlv(TlvError::Duplicate { tag: entry.tag }).into());
            }
            revocations = Revocations::parse(value).map_err(VerifyError::Tlv)?;
        }
        if entry.area == TlvArea::Protected && entry.tag == tlv::SEC_CNT {
            let mut value = [0u8; 4];
            let bytes = entries
                .read_value(&entry, &mut value)
                .map_err(|_| TbsError::BadSecurityCounter(entry.len))?;
            let bytes: [u8; 4] =
                bytes.try_into().map_err(|_| TbsError::BadSecurityCounter(entry.len))?;
            security_counter = Some(u32::from_le_bytes(bytes));
        }
    }
    let digest = hash.digest(region).to_vec();
    Ok(ParsedImage { header, security_counter, revocations, digest, hash })
}

/// A to-be-signed region followed by an empty unprotected TLV area, so that the parser walks
/// the protected area exactly as it does in a complete image, without copying the region.
struct RegionReader<'a> {
    region: &'a [u8],
    empty_area: [u8; TLV_INFO_SIZE],
}

impl<'a> RegionReader<'a> {
    fn new(region: &'a [u8]) -> Self {
        let [magic_low, magic_high] = UNPROTECTED_TLV_MAGIC.to_le_bytes();
        let [size_low, size_high] = u16::try_from(TLV_INFO_SIZE).unwrap_or(0).to_le_bytes();
        Self { region, empty_area: [magic_low, magic_high, size_low, size_high] }
    }
}

impl ImageReader for RegionReader<'_> {
    fn size(&self) -> u32 {
        u32::try_from(self.region.len() + TLV_INFO_SIZE).unwrap_or(u32::MAX)
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), ReadError> {
        let out_of_bounds =
            ReadError::OutOfBounds { offset, len: u32::try_from(buf.len()).unwrap_or(u32::MAX) };
        let start = usize::try_from(offset).map_err(|_| out_of_bounds)?;
        let mut bytes = self.region.iter().chain(&self.empty_area).skip(start);
        for byte in buf.iter_mut() {
            *byte = *bytes.next().ok_or(out_of_bounds)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A region with a 32-byte header, `payload` bytes of payload and a security counter.
    pub(crate) fn region(payload: u32, counter: u32) -> Vec<u8> {
        let protected: Vec<u8> =
            [&[0x08, 0x69, 12, 0][..], &[0x50, 0, 4, 0], &counter.to_le_bytes()].concat();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0x96f3_b83d_u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&32u16.to_le_bytes());
        bytes.extend_from_slice(&12u16.to_le_bytes());
        bytes.extend_from_slice(&payload.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3, 0, 4, 0, 0, 0]);
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.resize(32 + payload as usize, 0xa5);
        bytes.extend_from_slice(&protected);
        bytes
    }

    #[test]
    fn a_well_formed_region_is_parsed_and_hashed() {
        let bytes = region(100, 7);
        let parsed = parse(&bytes, HashAlgorithm::Sha256).expect("parses");
        assert_eq!(parsed.security_counter, Some(7));
        assert_eq!(parsed.header.img_size, 100);
        assert_eq!(parsed.digest, HashAlgorithm::Sha256.digest(&bytes).to_vec());
    }

    #[test]
    fn truncated_extended_and_lying_regions_are_refused() {
        let bytes = region(100, 7);
        for len in [0, 10, 31, 32, 131, bytes.len() - 1] {
            assert!(parse(&bytes[..len], HashAlgorithm::Sha256).is_err(), "length {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            parse(&longer, HashAlgorithm::Sha256),
            Err(TbsError::LengthMismatch { .. })
        ));
        let mut lying = bytes.clone();
        lying[14] = 0xff; // img_size grows past the bytes sent
        assert!(parse(&lying, HashAlgorithm::Sha256).is_err());
        let mut overrun = bytes;
        let tlv_len_at = 32 + 100 + 4 + 2;
        overrun[tlv_len_at] = 200; // the security counter TLV runs past its area
        assert!(matches!(parse(&overrun, HashAlgorithm::Sha256), Err(TbsError::Malformed(_))));
    }
}
