//! Building a signed MCUboot image, field for field as imgtool 2.5.0 does.
//!
//! Signing happens in three steps, so that the private key can live elsewhere:
//!
//! 1. [`prepare`] lays out header, payload and protected TLVs (the hashed region) and
//!    hashes them. The result, an [`UnsignedImage`], can be exported for offline signing
//!    ([`UnsignedImage::vector`]).
//! 2. A [`Signer`] signs the digest (or, for `--pure`, the region itself); or a signature
//!    made elsewhere is attached with [`UnsignedImage::attach_signature`].
//! 3. The unprotected TLVs are appended (hash, `SIG_PURE`, KEYHASH or PUBKEY, signature)
//!    and the image is checked to leave room for the trailer in the slot.
//!
//! The payload buffer is the one the input was read into: the header is written in
//! place and TLVs are appended, so signing a large image copies nothing.

use verifier_core::format::{self, tlv};
use verifier_core::{
    Digest, HashAlgorithm, Hasher, ImageHeader, ImageVersion, PublicKey, RevokedKey,
};

use crate::trailer::TrailerLayout;
use fwsign_keys::keys::Algorithm;
use fwsign_keys::signer::{SignError, Signer, signature_verifies};

pub use verifier_core::Dependency;

/// The security counter to record (SEC_CNT TLV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityCounter {
    /// This exact value.
    Value(u32),
    /// Derived from the version: `major << 24 | minor << 16 | revision`.
    Auto,
}

/// Where the image runs from, if not in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadAddress {
    /// Executes in place in its slot.
    #[default]
    InPlace,
    /// Copied to RAM at this address (`-L`, RAM_LOAD flag).
    Ram(u32),
    /// Linked for this flash address (`-F`, ROM_FIXED flag).
    RomFixed(u32),
}

/// The image hash the user asked for (`--sha`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashChoice {
    /// The key's default: SHA-256 (SHA-512 for pure Ed25519).
    #[default]
    Auto,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

/// How the signing key is named in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublicKeyFormat {
    /// KEYHASH: the hash of the key's DER.
    #[default]
    Hash,
    /// PUBKEY: the whole DER.
    Full,
}

/// What to export for offline signing (`--vector-to-sign`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningVector {
    /// The whole hashed region.
    Payload,
    /// The image digest.
    Digest,
}

/// Everything about the image except its payload and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOptions {
    /// Image version.
    pub version: ImageVersion,
    /// Header size including padding (`-H`), at least 32.
    pub header_size: u16,
    /// The slot size (`-S`); image plus trailer must fit.
    pub slot_size: u32,
    /// Trailer geometry.
    pub trailer: TrailerLayout,
    /// SEC_CNT to record, if any.
    pub security_counter: Option<SecurityCounter>,
    /// DEPENDENCY TLVs.
    pub dependencies: Vec<Dependency>,
    /// Key slots the image revokes once confirmed (protected REVOKE_KEYS TLV when any).
    pub revoked_keys: Vec<RevokedKey>,
    /// Custom protected TLVs, in order.
    pub custom_tlvs: Vec<(u16, Vec<u8>)>,
    /// Load address and its flag.
    pub load: LoadAddress,
    /// Set the NON_BOOTABLE flag.
    pub non_bootable: bool,
    /// Image hash requested.
    pub hash: HashChoice,
    /// Ed25519 over the whole hashed region instead of its digest.
    pub pure: bool,
    /// KEYHASH or PUBKEY.
    pub public_key_format: PublicKeyFormat,
}

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The input is shorter than the header it must reserve.
    #[error(
        "input is {len} bytes, shorter than the header size -H 0x{header_size:x}; pass --pad-header to add the header"
    )]
    ShorterThanHeader {
        /// Input length.
        len: usize,
        /// Header size.
        header_size: u16,
    },
    /// The header area of the input holds data.
    #[error(
        "the first 0x{header_size:x} bytes of the input (the header area, -H) are not zero: reserve the header in the build or pass --pad-header"
    )]
    HeaderNotZero {
        /// Header size.
        header_size: u16,
    },
    /// The payload does not fit the 32-bit size field.
    #[error("payload of {len} bytes does not fit the 32-bit image size field")]
    PayloadTooLarge {
        /// Payload length.
        len: usize,
    },
    /// The protected TLVs exceed the 16-bit size field.
    #[error("protected TLVs take {len} bytes, more than the 65535 the header can describe")]
    ProtectedTlvsTooLarge {
        /// Their size.
        len: usize,
    },
    /// A custom TLV tag is not allowed.
    #[error("--custom-tlv tag 0x{tag:04x}: {reason}")]
    CustomTag {
        /// The tag.
        tag: u16,
        /// Why.
        reason: &'static str,
    },
    /// More keys to revoke than one REVOKE_KEYS TLV holds.
    #[error(
        "--revoke-key is given more than {} times (the key slots of a device)",
        format::MAX_REVOKED_KEYS
    )]
    TooManyRevokedKeys,
    /// A transparency-log proof that a device would not read.
    #[error("LOG_PROOF (TLV 0x00a2): {0}")]
    BadLogProof(String),
    /// The bytes given are not a finished image ending with its TLV areas.
    #[error("not a finished image: {0}")]
    NotAnImage(String),
    /// A TLV value exceeds 65535 bytes.
    #[error("TLV 0x{tag:04x} value is {len} bytes, more than 65535")]
    TlvTooLong {
        /// The tag.
        tag: u16,
        /// Its length.
        len: usize,
    },
    /// The hash requested does not go with the key.
    #[error("--sha {requested} cannot be used with a {algorithm} key (allowed: {allowed})")]
    HashNotAllowed {
        /// The key algorithm.
        algorithm: Algorithm,
        /// The hash asked for.
        requested: &'static str,
        /// What the key allows.
        allowed: &'static str,
    },
    /// `--pure` without an Ed25519 key.
    #[error("--pure needs an Ed25519 key{found}")]
    PureNeedsEd25519 {
        /// What was given instead, if anything.
        found: String,
    },
    /// `--pure` with `--sha`.
    #[error("--pure always hashes with SHA-512; drop --sha")]
    PureWithSha,
    /// The signing key differs in type from the one the image was prepared for.
    #[error("the image was prepared for a {expected} signature, but the key is {found}")]
    KeyMismatch {
        /// Algorithm the hash was chosen for.
        expected: String,
        /// Algorithm of the key given.
        found: Algorithm,
    },
    /// An externally made signature does not verify.
    #[error("the signature does not verify with the given public key over this image")]
    BadFixedSignature,
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// Image and trailer do not fit the slot.
    #[error(
        "image size (0x{image:x}) + trailer (0x{trailer:x}) exceeds the slot size -S 0x{slot:x}"
    )]
    TooLarge {
        /// Image length (header to end of TLVs).
        image: usize,
        /// Trailer size.
        trailer: u64,
        /// Slot size.
        slot: u32,
    },
}

/// TLV tags imgtool defines; custom TLVs may not reuse them.
const PREDEFINED_TAGS: [u16; 24] = [
    tlv::KEYHASH,
    tlv::PUBKEY,
    tlv::SHA256,
    tlv::SHA384,
    tlv::SHA512,
    tlv::RSA2048_PSS,
    tlv::ECDSA_SIG,
    tlv::RSA3072_PSS,
    tlv::ED25519,
    tlv::SIG_PURE,
    tlv::ENC_RSA2048,
    tlv::ENC_KW,
    tlv::ENC_EC256,
    tlv::ENC_X25519,
    tlv::ENC_X25519_SHA512,
    tlv::DEPENDENCY,
    tlv::SEC_CNT,
    tlv::BOOT_RECORD,
    tlv::DECOMP_SIZE,
    tlv::DECOMP_SHA,
    tlv::DECOMP_SIGNATURE,
    tlv::COMP_DEC_SIZE,
    tlv::UUID_VID,
    tlv::UUID_CID,
];

/// Checks a custom TLV tag the way imgtool does: 0x00a0..=0xfffe and not predefined.
///
/// # Errors
/// [`ImageError::CustomTag`].
pub fn check_custom_tag(tag: u16) -> Result<(), ImageError> {
    if !(0x00a0..=0xfffe).contains(&tag) {
        return Err(ImageError::CustomTag { tag, reason: "must lie in 0x00a0..=0xfffe" });
    }
    if tag == tlv::TIMESTAMP_TOKEN {
        return Err(ImageError::CustomTag {
            tag,
            reason: "is reserved for the RFC 3161 timestamp token (--timestamp-url)",
        });
    }
    if tag == tlv::REVOKE_KEYS {
        return Err(ImageError::CustomTag {
            tag,
            reason: "is the key revocation TLV (--revoke-key)",
        });
    }
    if PREDEFINED_TAGS.contains(&tag) {
        return Err(ImageError::CustomTag { tag, reason: "conflicts with a predefined TLV" });
    }
    Ok(())
}

/// Appends TLV entries to a buffer, then closes the area with its info header.
struct TlvArea {
    magic: u16,
    entries: Vec<u8>,
}

impl TlvArea {
    fn new(magic: u16) -> Self {
        Self { magic, entries: Vec::new() }
    }

    fn add(&mut self, tag: u16, value: &[u8]) -> Result<(), ImageError> {
        let len = u16::try_from(value.len())
            .map_err(|_| ImageError::TlvTooLong { tag, len: value.len() })?;
        self.entries.extend_from_slice(&tag.to_le_bytes());
        self.entries.extend_from_slice(&len.to_le_bytes());
        self.entries.extend_from_slice(value);
        Ok(())
    }

    /// The whole area (empty if it has no entries).
    fn encode(&self) -> Result<Vec<u8>, ImageError> {
        if self.entries.is_empty() {
            return Ok(Vec::new());
        }
        let total = format::TLV_INFO_SIZE + self.entries.len();
        let total_u16 =
            u16::try_from(total).map_err(|_| ImageError::ProtectedTlvsTooLarge { len: total })?;
        let mut area = Vec::with_capacity(total);
        area.extend_from_slice(&self.magic.to_le_bytes());
        area.extend_from_slice(&total_u16.to_le_bytes());
        area.extend_from_slice(&self.entries);
        Ok(area)
    }
}

/// Header, payload and protected TLVs, hashed and ready to be signed.
#[derive(Debug)]
pub struct UnsignedImage {
    bytes: Vec<u8>,
    hash: HashAlgorithm,
    digest: Digest,
    pure: bool,
    key_algorithm: Option<Algorithm>,
    public_key_format: PublicKeyFormat,
    slot_size: u32,
    trailer: TrailerLayout,
}

/// A finished image: everything from the header to the end of the unprotected TLVs.
#[derive(Debug)]
pub struct SignedImage {
    /// The image bytes.
    pub bytes: Vec<u8>,
    /// The signature TLV value, if signed.
    pub signature: Option<Vec<u8>>,
    /// The image digest.
    pub digest: Digest,
    unprotected_start: usize,
    slot_size: u32,
    trailer_size: u64,
}

impl SignedImage {
    /// Appends an entry to the unprotected TLV area (after the signature), updating the
    /// area's total. Nothing else changes, so the hash and signature still hold.
    ///
    /// # Errors
    /// [`ImageError::TlvTooLong`] or [`ImageError::TooLarge`]; the image is then unchanged.
    pub fn append_unprotected(&mut self, tag: u16, value: &[u8]) -> Result<(), ImageError> {
        if value.len() > usize::from(u16::MAX) {
            return Err(ImageError::TlvTooLong { tag, len: value.len() });
        }
        let new_len = self.bytes.len() + 4 + value.len();
        check_fits(new_len, self.trailer_size, self.slot_size)?;
        push_unprotected(&mut self.bytes, self.unprotected_start, tag, value)
    }
}

impl SignedImage {
    /// Adds the `tlog-proof@v1` text `proof` as the LOG_PROOF TLV (0x00a2).
    ///
    /// # Errors
    /// [`ImageError::BadLogProof`] if a device would not read it; as
    /// [`SignedImage::append_unprotected`].
    pub fn attach_log_proof(&mut self, proof: &[u8]) -> Result<(), ImageError> {
        self.append_unprotected(tlv::LOG_PROOF, checked_log_proof(proof)?)
    }
}

/// Adds the `tlog-proof@v1` text `proof` as the LOG_PROOF TLV (0x00a2) of the finished image
/// `image`.
///
/// # Errors
/// [`ImageError::BadLogProof`] if a device would not read it; as [`append_unprotected_tlv`].
pub fn attach_log_proof(image: &mut Vec<u8>, proof: &[u8]) -> Result<(), ImageError> {
    append_unprotected_tlv(image, tlv::LOG_PROOF, checked_log_proof(proof)?)
}

/// `proof`, if it parses as a device parses it, within the length a device reads.
fn checked_log_proof(proof: &[u8]) -> Result<&[u8], ImageError> {
    use verifier_core::tlog::{LogProof, MAX_PROOF_LEN};
    if proof.len() > MAX_PROOF_LEN {
        return Err(ImageError::BadLogProof(format!(
            "{} bytes, more than the {MAX_PROOF_LEN} a device reads",
            proof.len()
        )));
    }
    LogProof::parse(proof).map_err(|e| ImageError::BadLogProof(e.to_string()))?;
    Ok(proof)
}

/// Appends an entry to the unprotected TLV area of a finished image held in `image` (header
/// to the end of the unprotected TLVs, nothing after), updating the area's total. The hash and
/// signature still hold.
///
/// # Errors
/// [`ImageError::NotAnImage`] if `image` is not a well-formed image ending with its TLVs;
/// [`ImageError::TlvTooLong`]. The image is unchanged on error.
pub fn append_unprotected_tlv(
    image: &mut Vec<u8>,
    tag: u16,
    value: &[u8],
) -> Result<(), ImageError> {
    let mut reader = verifier_core::SliceReader::new(image);
    let layout = verifier_core::read_header(&mut reader)
        .and_then(|header| verifier_core::tlv::TlvLayout::locate(&mut reader, &header))
        .map_err(|e| ImageError::NotAnImage(e.to_string()))?;
    if layout.end as usize != image.len() {
        return Err(ImageError::NotAnImage(format!(
            "{} bytes follow the TLVs (padding or a trailer): add TLVs before padding",
            image.len() - layout.end as usize
        )));
    }
    push_unprotected(image, layout.unprotected_start as usize, tag, value)
}

/// Appends a TLV at the end of `bytes`, whose unprotected area starts at `unprotected_start`
/// and ends at the end of `bytes`.
fn push_unprotected(
    bytes: &mut Vec<u8>,
    unprotected_start: usize,
    tag: u16,
    value: &[u8],
) -> Result<(), ImageError> {
    let too_long = || ImageError::TlvTooLong { tag, len: value.len() };
    let len = u16::try_from(value.len()).map_err(|_| too_long())?;
    let total_at = unprotected_start + 2;
    let total =
        bytes.get(total_at..total_at + 2).map(|b| u16::from_le_bytes([b[0], b[1]])).unwrap_or(0);
    let new_total = total.checked_add(4).and_then(|t| t.checked_add(len)).ok_or_else(too_long)?;
    bytes[total_at..total_at + 2].copy_from_slice(&new_total.to_le_bytes());
    bytes.extend_from_slice(&tag.to_le_bytes());
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(value);
    Ok(())
}

/// Checks that an image of `len` bytes leaves room for the trailer in the slot.
fn check_fits(len: usize, trailer: u64, slot: u32) -> Result<(), ImageError> {
    let fits = (len as u64).checked_add(trailer).is_some_and(|end| end <= u64::from(slot));
    if fits { Ok(()) } else { Err(ImageError::TooLarge { image: len, trailer, slot }) }
}

/// Picks the image hash for a key, as imgtool's rules do.
///
/// # Errors
/// [`ImageError::HashNotAllowed`], [`ImageError::PureNeedsEd25519`], [`ImageError::PureWithSha`].
pub fn choose_hash(
    key: Option<Algorithm>,
    choice: HashChoice,
    pure: bool,
) -> Result<HashAlgorithm, ImageError> {
    if pure {
        if choice != HashChoice::Auto {
            return Err(ImageError::PureWithSha);
        }
        return match key {
            Some(Algorithm::Ed25519) => Ok(HashAlgorithm::Sha512),
            Some(other) => Err(ImageError::PureNeedsEd25519 { found: format!(", got {other}") }),
            None => Err(ImageError::PureNeedsEd25519 { found: String::new() }),
        };
    }
    match (key, choice) {
        (_, HashChoice::Auto | HashChoice::Sha256) => Ok(HashAlgorithm::Sha256),
        (Some(Algorithm::EcdsaP256), HashChoice::Sha512) => Err(ImageError::HashNotAllowed {
            algorithm: Algorithm::EcdsaP256,
            requested: "512",
            allowed: "256",
        }),
        (_, HashChoice::Sha512) => Ok(HashAlgorithm::Sha512),
    }
}

/// Lays out and hashes an image.
///
/// `body` is the input as imgtool sees it after loading: it starts with the header area
/// (`header_size` bytes, zero, or erased bytes when the caller added them for
/// `--pad-header`) followed by the payload. `key` is the algorithm that will sign, if any.
///
/// # Errors
/// Any [`ImageError`] about the options or the input.
pub fn prepare(
    options: &ImageOptions,
    mut body: Vec<u8>,
    header_prepended: bool,
    key: Option<Algorithm>,
) -> Result<UnsignedImage, ImageError> {
    let header_size = usize::from(options.header_size);
    let header_area = body.get(..header_size).ok_or(ImageError::ShorterThanHeader {
        len: body.len(),
        header_size: options.header_size,
    })?;
    if !header_prepended && header_area.iter().any(|b| *b != 0) {
        return Err(ImageError::HeaderNotZero { header_size: options.header_size });
    }
    let hash = choose_hash(key, options.hash, options.pure)?;
    let payload_len = body.len() - header_size;
    let img_size =
        u32::try_from(payload_len).map_err(|_| ImageError::PayloadTooLarge { len: payload_len })?;

    let protected = protected_tlvs(options)?;
    let protect_tlv_size = u16::try_from(protected.len())
        .map_err(|_| ImageError::ProtectedTlvsTooLarge { len: protected.len() })?;
    let header = ImageHeader {
        load_addr: match options.load {
            LoadAddress::InPlace => 0,
            LoadAddress::Ram(addr) | LoadAddress::RomFixed(addr) => addr,
        },
        hdr_size: options.header_size,
        protect_tlv_size,
        img_size,
        flags: header_flags(options),
        version: options.version,
    };
    if let Some(area) = body.get_mut(..format::HEADER_SIZE) {
        area.copy_from_slice(&header.to_bytes());
    }
    body.extend_from_slice(&protected);

    let mut hasher = Hasher::new(hash);
    hasher.update(&body);
    Ok(UnsignedImage {
        digest: hasher.finalize(),
        bytes: body,
        hash,
        pure: options.pure,
        key_algorithm: key,
        public_key_format: options.public_key_format,
        slot_size: options.slot_size,
        trailer: options.trailer,
    })
}

fn header_flags(options: &ImageOptions) -> u32 {
    let mut flags = 0;
    match options.load {
        LoadAddress::Ram(addr) if addr != 0 => flags |= format::flags::RAM_LOAD,
        LoadAddress::RomFixed(addr) if addr != 0 => flags |= format::flags::ROM_FIXED,
        _ => {}
    }
    if options.non_bootable {
        flags |= format::flags::NON_BOOTABLE;
    }
    flags
}

/// SEC_CNT, DEPENDENCY×n, then custom TLVs (imgtool's order), REVOKE_KEYS among the latter.
fn protected_tlvs(options: &ImageOptions) -> Result<Vec<u8>, ImageError> {
    let mut area = TlvArea::new(format::PROTECTED_TLV_MAGIC);
    if let Some(counter) = options.security_counter {
        let value = match counter {
            SecurityCounter::Value(value) => value,
            SecurityCounter::Auto => {
                let v = options.version;
                (u32::from(v.major) << 24) | (u32::from(v.minor) << 16) | u32::from(v.revision)
            }
        };
        area.add(tlv::SEC_CNT, &value.to_le_bytes())?;
    }
    for dependency in &options.dependencies {
        let mut value = [0u8; format::DEPENDENCY_LEN];
        value[0] = dependency.image_id;
        value[4..].copy_from_slice(&dependency.min_version.to_bytes());
        area.add(tlv::DEPENDENCY, &value)?;
    }
    if !options.revoked_keys.is_empty() {
        let value: Vec<u8> = options.revoked_keys.iter().flat_map(RevokedKey::encode).collect();
        verifier_core::Revocations::parse(&value).map_err(|_| ImageError::TooManyRevokedKeys)?;
        area.add(tlv::REVOKE_KEYS, &value)?;
    }
    for (tag, value) in &options.custom_tlvs {
        check_custom_tag(*tag)?;
        area.add(*tag, value)?;
    }
    area.encode()
}

impl UnsignedImage {
    /// An image prepared earlier, from its to-be-signed region (header, payload, protected
    /// TLVs) as a signing service stored it: finished like a fresh one once it is signed.
    pub fn from_region(
        region: Vec<u8>,
        hash: HashAlgorithm,
        pure: bool,
        key: Algorithm,
        public_key_format: PublicKeyFormat,
        slot_size: u32,
        trailer: TrailerLayout,
    ) -> Self {
        let mut hasher = Hasher::new(hash);
        hasher.update(&region);
        Self {
            digest: hasher.finalize(),
            bytes: region,
            hash,
            pure,
            key_algorithm: Some(key),
            public_key_format,
            slot_size,
            trailer,
        }
    }

    /// The image digest.
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// The hash algorithm chosen.
    pub fn hash_algorithm(&self) -> HashAlgorithm {
        self.hash
    }

    /// The hashed region: header, payload, protected TLVs.
    pub fn hashed_region(&self) -> &[u8] {
        &self.bytes
    }

    /// What an offline signer needs (`--vector-to-sign`).
    pub fn vector(&self, vector: SigningVector) -> &[u8] {
        match vector {
            SigningVector::Payload => self.hashed_region(),
            SigningVector::Digest => self.digest(),
        }
    }

    /// Signs with `signer` and finishes the image.
    ///
    /// # Errors
    /// [`ImageError::KeyMismatch`], [`ImageError::Sign`], [`ImageError::TooLarge`].
    pub fn sign(self, signer: &dyn Signer) -> Result<SignedImage, ImageError> {
        let public_key = signer.public_key();
        self.check_key(&public_key)?;
        let signature = if self.pure {
            signer.sign_message(&self.bytes)?
        } else {
            signer.sign_digest(&self.digest)?
        };
        self.finish(Some((public_key, signature)))
    }

    /// Finishes the image with a signature made elsewhere, after checking it.
    ///
    /// # Errors
    /// [`ImageError::BadFixedSignature`] if it does not verify, or as [`UnsignedImage::sign`].
    pub fn attach_signature(
        self,
        public_key: PublicKey,
        signature: Vec<u8>,
    ) -> Result<SignedImage, ImageError> {
        self.check_key(&public_key)?;
        let message = if self.pure { &self.bytes[..] } else { &self.digest[..] };
        if !signature_verifies(&public_key, message, &signature) {
            return Err(ImageError::BadFixedSignature);
        }
        self.finish(Some((public_key, signature)))
    }

    /// Finishes an unsigned image (hash TLV only).
    ///
    /// # Errors
    /// [`ImageError::TooLarge`].
    pub fn without_signature(self) -> Result<SignedImage, ImageError> {
        self.finish(None)
    }

    fn check_key(&self, key: &PublicKey) -> Result<(), ImageError> {
        let found = Algorithm::of(key);
        match self.key_algorithm {
            Some(expected) if expected == found => Ok(()),
            expected => Err(ImageError::KeyMismatch {
                expected: expected.map_or_else(|| "unsigned".into(), |a| a.to_string()),
                found,
            }),
        }
    }

    fn finish(self, signature: Option<(PublicKey, Vec<u8>)>) -> Result<SignedImage, ImageError> {
        let mut area = TlvArea::new(format::UNPROTECTED_TLV_MAGIC);
        area.add(self.hash.tlv_tag(), &self.digest)?;
        if self.pure {
            area.add(tlv::SIG_PURE, &[1])?;
        }
        if let Some((key, value)) = &signature {
            match self.public_key_format {
                PublicKeyFormat::Hash => area.add(tlv::KEYHASH, &key.key_hash(self.hash))?,
                PublicKeyFormat::Full => area.add(tlv::PUBKEY, &key.spki_der())?,
            }
            let tag = match key {
                PublicKey::Ed25519(_) => tlv::ED25519,
                PublicKey::P256(_) => tlv::ECDSA_SIG,
            };
            area.add(tag, value)?;
        }
        let mut bytes = self.bytes;
        let unprotected_start = bytes.len();
        bytes.extend_from_slice(&area.encode()?);
        let trailer_size = self.trailer.size();
        check_fits(bytes.len(), trailer_size, self.slot_size)?;
        Ok(SignedImage {
            bytes,
            signature: signature.map(|(_, value)| value),
            digest: self.digest,
            unprotected_start,
            slot_size: self.slot_size,
            trailer_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fwsign_keys::keys::PrivateKey;
    use fwsign_keys::signer::KeyFileSigner;

    fn options() -> ImageOptions {
        ImageOptions {
            version: ImageVersion { major: 1, minor: 2, revision: 3, build_num: 4 },
            header_size: 0x200,
            slot_size: 0x10000,
            trailer: TrailerLayout::for_align(1),
            security_counter: None,
            dependencies: Vec::new(),
            revoked_keys: Vec::new(),
            custom_tlvs: Vec::new(),
            load: LoadAddress::InPlace,
            non_bootable: false,
            hash: HashChoice::Auto,
            pure: false,
            public_key_format: PublicKeyFormat::Hash,
        }
    }

    fn body(payload: usize) -> Vec<u8> {
        let mut body = vec![0xff; 0x200];
        body.extend((0..payload).map(|i| u8::try_from(i % 251).unwrap_or(0)));
        body
    }

    #[test]
    fn protected_tlvs_match_the_documented_dump() {
        let mut options = options();
        options.security_counter = Some(SecurityCounter::Value(7));
        options.dependencies = vec![Dependency {
            image_id: 1,
            min_version: ImageVersion { major: 2, ..Default::default() },
        }];
        options.custom_tlvs = vec![(0xa0, vec![1, 2])];
        let area = protected_tlvs(&options).expect("tlvs");
        assert_eq!(area.len(), 34);
        assert_eq!(&area[4..12], &[0x50, 0, 4, 0, 7, 0, 0, 0]);
        assert_eq!(&area[12..28], &[0x40, 0, 12, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&area[28..], &[0xa0, 0, 2, 0, 1, 2]);
    }

    #[test]
    fn header_must_be_zero_unless_prepended() {
        let result = prepare(&options(), body(10), false, None);
        assert!(matches!(result, Err(ImageError::HeaderNotZero { .. })));
    }

    #[test]
    fn signed_image_verifies_with_verifier_core() {
        let key = PrivateKey::generate(Algorithm::Ed25519).expect("key");
        let public = key.public_key();
        let signer = KeyFileSigner::new(std::path::Path::new("k"), key);
        let image = prepare(&options(), body(1000), true, Some(Algorithm::Ed25519))
            .and_then(|image| image.sign(&signer))
            .expect("sign");
        let mut reader = verifier_core::SliceReader::new(&image.bytes);
        let keys = [verifier_core::TrustedKey::new(public)];
        verifier_core::verify_image(&mut reader, &keys, &verifier_core::Policy::default())
            .expect("valid");
    }

    #[test]
    fn an_appended_unprotected_tlv_changes_only_the_area_total() {
        let key = PrivateKey::generate(Algorithm::Ed25519).expect("key");
        let public = key.public_key();
        let signer = KeyFileSigner::new(std::path::Path::new("k"), key);
        let plain = prepare(&options(), body(500), true, Some(Algorithm::Ed25519))
            .and_then(|image| image.sign(&signer))
            .expect("sign");
        let mut stamped = prepare(&options(), body(500), true, Some(Algorithm::Ed25519))
            .and_then(|image| image.sign(&signer))
            .expect("sign");
        stamped.append_unprotected(tlv::TIMESTAMP_TOKEN, &[9; 10]).expect("append");
        let total_at = plain.unprotected_start + 2;
        assert_eq!(stamped.bytes.len(), plain.bytes.len() + 14);
        assert_eq!(stamped.bytes[..total_at], plain.bytes[..total_at]);
        assert_eq!(stamped.bytes[total_at + 2..plain.bytes.len()], plain.bytes[total_at + 2..]);
        let total = |b: &[u8]| u16::from_le_bytes([b[total_at], b[total_at + 1]]);
        assert_eq!(total(&stamped.bytes), total(&plain.bytes) + 14);
        let mut reader = verifier_core::SliceReader::new(&stamped.bytes);
        let keys = [verifier_core::TrustedKey::new(public)];
        verifier_core::verify_image(&mut reader, &keys, &verifier_core::Policy::default())
            .expect("a vendor TLV after the signature is tolerated");
        let mut small = options();
        small.slot_size =
            u32::try_from(plain.bytes.len() as u64 + options().trailer.size()).expect("fits");
        let mut full = prepare(&small, body(500), true, Some(Algorithm::Ed25519))
            .and_then(|image| image.sign(&signer))
            .expect("sign");
        let before = full.bytes.clone();
        assert!(matches!(
            full.append_unprotected(tlv::TIMESTAMP_TOKEN, &[1]),
            Err(ImageError::TooLarge { .. })
        ));
        assert_eq!(full.bytes, before);
    }

    #[test]
    fn too_large_for_slot() {
        let mut options = options();
        options.slot_size = 0x400;
        let error =
            prepare(&options, body(0x100), true, None).and_then(UnsignedImage::without_signature);
        assert!(matches!(error, Err(ImageError::TooLarge { .. })));
    }

    #[test]
    fn ecdsa_refuses_sha512() {
        assert!(choose_hash(Some(Algorithm::EcdsaP256), HashChoice::Sha512, false).is_err());
        assert!(choose_hash(Some(Algorithm::EcdsaP256), HashChoice::Auto, true).is_err());
        assert_eq!(
            choose_hash(Some(Algorithm::Ed25519), HashChoice::Auto, true).ok(),
            Some(HashAlgorithm::Sha512)
        );
    }
}
