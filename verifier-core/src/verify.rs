//! The boot decision: is this image intact, signed by a trusted key, and not a rollback?

use crate::error::{TlvError, VerifyError};
use crate::format::{DEPENDENCY_LEN, HEADER_SIZE, SEC_CNT_LEN, tlv};
use crate::hash::{Digest, HashAlgorithm, Hasher};
use crate::header::{ImageHeader, ImageVersion};
use crate::keys::{self, PublicKey, TrustedKey};
use crate::policy::Policy;
use crate::reader::ImageReader;
use crate::revocation::{self, Revocations};
use crate::signature;
use crate::tlv::{TlvArea, TlvEntry, TlvIter, TlvLayout};

/// The most DEPENDENCY TLVs an image may carry.
pub const MAX_DEPENDENCIES: usize = 4;

/// Bytes hashed per flash read.
const CHUNK_SIZE: usize = 1024;

/// The longest signature value read: a DER ECDSA P-256 signature.
const MAX_SIGNATURE_LEN: usize = 72;

/// A DEPENDENCY TLV: this image needs image `image_id` at `min_version` or later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependency {
    /// The image the dependency is on.
    pub image_id: u8,
    /// The lowest acceptable version of that image.
    pub min_version: ImageVersion,
}

/// An image that passed every check, and what was verified.
///
/// Only [`verify_image`] and [`reverify_image`] build one: its fields are private, so holding
/// a `VerifiedImage` proves the checks ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedImage {
    header: ImageHeader,
    hash: HashAlgorithm,
    digest: Digest,
    key_index: usize,
    pure: bool,
    security_counter: Option<u32>,
    dependencies: heapless::Vec<Dependency, MAX_DEPENDENCIES>,
    revocations: Revocations,
    image_len: u32,
}

impl VerifiedImage {
    /// The image header.
    pub fn header(&self) -> &ImageHeader {
        &self.header
    }

    /// The image hash algorithm.
    pub fn hash(&self) -> HashAlgorithm {
        self.hash
    }

    /// The digest of the hashed region, equal to the hash TLV.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Index, in the trusted key set, of the key whose signature verified.
    pub fn key_index(&self) -> usize {
        self.key_index
    }

    /// Whether the signature covers the image itself (Ed25519 pure) rather than its digest.
    pub fn pure(&self) -> bool {
        self.pure
    }

    /// The protected security counter, if the image has one.
    pub fn security_counter(&self) -> Option<u32> {
        self.security_counter
    }

    /// The image's dependencies on other images.
    pub fn dependencies(&self) -> &[Dependency] {
        &self.dependencies
    }

    /// The keys the image revokes once it is confirmed (its protected REVOKE_KEYS TLV).
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Length of the image proper: header, payload and both TLV areas.
    pub fn image_len(&self) -> u32 {
        self.image_len
    }
}

/// Decides whether the image behind `reader` may boot.
///
/// The image is accepted only if its header and every TLV are well-formed, its digest matches
/// the hash TLV, the first signature by a trusted, non-revoked key verifies, and the policy's
/// anti-rollback minimum is met. Everything else is refused with the [`VerifyError`] naming the
/// check that failed. See [`crate::design`] for the rules and why.
///
/// # Errors
/// The first check that failed.
pub fn verify_image<R: ImageReader>(
    reader: &mut R,
    keys: &[TrustedKey],
    policy: &Policy,
) -> Result<VerifiedImage, VerifyError> {
    verify(reader, keys, policy, None)
}

/// Checks an image again, given the digest an earlier [`verify_image`] of it computed.
///
/// Every check of [`verify_image`] is repeated, comparisons and signature included, except
/// hashing the image: the hash TLV is compared with `digest` instead. This is the second,
/// independent check of fault-injection hardening at the cost of a signature check rather than
/// a full validation. An image signed over its bytes (Ed25519 pure) is hashed again.
///
/// # Errors
/// The first check that failed; [`VerifyError::HashMismatch`] if `digest` is not the hash TLV.
pub fn reverify_image<R: ImageReader>(
    reader: &mut R,
    keys: &[TrustedKey],
    policy: &Policy,
    digest: &Digest,
) -> Result<VerifiedImage, VerifyError> {
    verify(reader, keys, policy, Some(digest))
}

fn verify<R: ImageReader>(
    reader: &mut R,
    keys: &[TrustedKey],
    policy: &Policy,
    known_digest: Option<&Digest>,
) -> Result<VerifiedImage, VerifyError> {
    let header = read_header(reader)?;
    header.check_supported()?;
    policy.check_flags(&header)?;
    let layout = TlvLayout::locate(reader, &header)?;
    policy.check_fits(layout.end)?;
    let summary = TlvSummary::scan(reader, &layout, keys)?;
    let security_counter = policy.check_rollback(summary.security_counter)?;
    let (hash, expected_digest) = summary.hash.ok_or(VerifyError::MissingHash)?;
    let candidate = summary.signatures.into_candidate()?;
    let mut check = SignatureCheck::start(&candidate, summary.pure)?;
    let digest = match known_digest {
        Some(digest) if !summary.pure => *digest,
        _ => hash_region(reader, &header, hash, &mut check)?,
    };
    if digest != expected_digest {
        return Err(VerifyError::HashMismatch);
    }
    if !check.finish(&digest) {
        return Err(VerifyError::SignatureInvalid { key_index: candidate.key_index });
    }
    let signer = keys.get(candidate.key_index);
    if signer.is_some_and(|key| summary.revocations.revokes(candidate.key_index, key)) {
        return Err(VerifyError::RevokesOwnKey { key_index: candidate.key_index });
    }
    Ok(VerifiedImage {
        header,
        hash,
        digest,
        key_index: candidate.key_index,
        pure: summary.pure,
        security_counter,
        dependencies: summary.dependencies,
        revocations: summary.revocations,
        image_len: layout.end,
    })
}

/// Reads and parses the 32-byte header at the start of the image.
///
/// # Errors
/// Read errors and [`crate::HeaderError`]s.
pub fn read_header<R: ImageReader>(reader: &mut R) -> Result<ImageHeader, VerifyError> {
    let mut bytes = [0u8; HEADER_SIZE];
    reader.read(0, &mut bytes)?;
    Ok(ImageHeader::parse(&bytes)?)
}

/// Streams the hashed region through the hasher (and, in pure mode, the signature check).
fn hash_region<R: ImageReader>(
    reader: &mut R,
    header: &ImageHeader,
    algorithm: HashAlgorithm,
    check: &mut SignatureCheck,
) -> Result<Digest, VerifyError> {
    let end = header.hashed_len().ok_or(crate::HeaderError::SizeOverflow)?;
    let mut hasher = Hasher::new(algorithm);
    let mut chunk = [0u8; CHUNK_SIZE];
    let mut offset = 0u32;
    while offset < end {
        let remaining = usize::try_from(end.saturating_sub(offset)).unwrap_or(CHUNK_SIZE);
        let part = chunk.get_mut(..remaining.min(CHUNK_SIZE)).unwrap_or(&mut []);
        reader.read(offset, part)?;
        hasher.update(part);
        check.absorb(part);
        offset = offset.saturating_add(u32::try_from(part.len()).unwrap_or(u32::MAX));
    }
    Ok(hasher.finalize())
}

/// Everything the TLV areas say, gathered in one pass.
struct TlvSummary {
    hash: Option<(HashAlgorithm, Digest)>,
    security_counter: Option<u32>,
    dependencies: heapless::Vec<Dependency, MAX_DEPENDENCIES>,
    revocations: Revocations,
    pure: bool,
    signatures: SignatureSearch,
}

impl TlvSummary {
    fn scan<R: ImageReader>(
        reader: &mut R,
        layout: &TlvLayout,
        keys: &[TrustedKey],
    ) -> Result<Self, VerifyError> {
        let mut summary = Self {
            hash: None,
            security_counter: None,
            dependencies: heapless::Vec::new(),
            revocations: Revocations::default(),
            pure: false,
            signatures: SignatureSearch::default(),
        };
        let mut entries = layout.entries(reader);
        while let Some(entry) = entries.next() {
            let entry = entry?;
            match entry.area {
                TlvArea::Protected => summary.protected(&mut entries, &entry)?,
                TlvArea::Unprotected => summary.unprotected(&mut entries, &entry, keys)?,
            }
        }
        Ok(summary)
    }

    fn protected<R: ImageReader>(
        &mut self,
        entries: &mut TlvIter<'_, R>,
        entry: &TlvEntry,
    ) -> Result<(), VerifyError> {
        match entry.tag {
            tlv::SEC_CNT => {
                let mut value = [0u8; SEC_CNT_LEN];
                read_exact(entries, entry, &mut value)?;
                let counter = u32::from_le_bytes(value);
                replace_once(&mut self.security_counter, counter, entry.tag)
            }
            tlv::DEPENDENCY => {
                let mut value = [0u8; DEPENDENCY_LEN];
                read_exact(entries, entry, &mut value)?;
                let dependency = parse_dependency(&value);
                self.dependencies.push(dependency).map_err(|_| TlvError::TooManyDependencies.into())
            }
            tlv::REVOKE_KEYS => self.revocations_tlv(entries, entry),
            tag if is_unprotected_only(tag) => {
                Err(TlvError::NotAllowed { tag, protected: true }.into())
            }
            _ => Ok(()),
        }
    }

    fn unprotected<R: ImageReader>(
        &mut self,
        entries: &mut TlvIter<'_, R>,
        entry: &TlvEntry,
        keys: &[TrustedKey],
    ) -> Result<(), VerifyError> {
        match entry.tag {
            tlv::SHA256 | tlv::SHA384 | tlv::SHA512 => self.hash_tlv(entries, entry),
            tlv::SIG_PURE => {
                let mut value = [0u8; 1];
                read_exact(entries, entry, &mut value)?;
                if value != [1] {
                    return Err(TlvError::BadPureMarker.into());
                }
                if self.pure {
                    return Err(TlvError::Duplicate { tag: entry.tag }.into());
                }
                self.pure = true;
                Ok(())
            }
            tlv::KEYHASH | tlv::PUBKEY => self.signatures.key_tlv(entries, entry, keys),
            tag if is_signature(tag) => self.signatures.signature_tlv(entries, entry, keys),
            tag if tlv::is_vendor(tag) && !is_protected_only(tag) => Ok(()),
            tag => Err(TlvError::NotAllowed { tag, protected: false }.into()),
        }
    }

    fn revocations_tlv<R: ImageReader>(
        &mut self,
        entries: &mut TlvIter<'_, R>,
        entry: &TlvEntry,
    ) -> Result<(), VerifyError> {
        if !self.revocations.is_empty() {
            return Err(TlvError::Duplicate { tag: entry.tag }.into());
        }
        let mut value = [0u8; revocation::MAX_VALUE_LEN];
        let value = entries.read_value(entry, &mut value)?;
        self.revocations = Revocations::parse(value)?;
        Ok(())
    }

    fn hash_tlv<R: ImageReader>(
        &mut self,
        entries: &mut TlvIter<'_, R>,
        entry: &TlvEntry,
    ) -> Result<(), VerifyError> {
        if self.hash.is_some() {
            return Err(TlvError::Duplicate { tag: entry.tag }.into());
        }
        let algorithm = HashAlgorithm::from_tlv_tag(entry.tag)
            .ok_or(VerifyError::UnsupportedHash { tag: entry.tag })?;
        if usize::from(entry.len) != algorithm.digest_len() {
            return Err(TlvError::BadLength { tag: entry.tag, len: entry.len }.into());
        }
        let mut value = [0u8; Digest::MAX_LEN];
        let value = entries.read_value(entry, &mut value)?;
        self.hash = Some((algorithm, Digest::from_slice(value)));
        Ok(())
    }
}

/// The key named by the most recent KEYHASH or PUBKEY entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NamedKey {
    None,
    Unknown,
    Trusted(usize, PublicKey),
}

/// A signature by a trusted, non-revoked key, waiting to be checked.
struct Candidate {
    key_index: usize,
    key: PublicKey,
    tag: u16,
    signature: [u8; MAX_SIGNATURE_LEN],
    len: usize,
}

impl Candidate {
    fn signature(&self) -> &[u8] {
        self.signature.get(..self.len).unwrap_or(&[])
    }
}

/// Pairs each signature with the key named before it and keeps the first trusted one.
struct SignatureSearch {
    named: NamedKey,
    candidate: Option<Candidate>,
    seen_signature: bool,
    seen_unnamed: bool,
    revoked: Option<usize>,
}

impl Default for SignatureSearch {
    fn default() -> Self {
        Self {
            named: NamedKey::None,
            candidate: None,
            seen_signature: false,
            seen_unnamed: false,
            revoked: None,
        }
    }
}

impl SignatureSearch {
    fn key_tlv<R: ImageReader>(
        &mut self,
        entries: &mut TlvIter<'_, R>,
        entry: &TlvEntry,
        keys: &[TrustedKey],
    ) -> Result<(), VerifyError> {
        let mut value = [0u8; crate::keys::SpkiDer::MAX_LEN];
        let found = match entries.read_value(entry, &mut value) {
            Ok(value) if entry.tag == tlv::KEYHASH => keys::find_by_hash(keys, value),
            Ok(value) => keys::find_by_spki(keys, value),
            // A key longer than any trusted key (RSA, say) cannot be trusted.
            Err(VerifyError::Tlv(TlvError::BadLength { .. })) => None,
            Err(e) => return Err(e),
        };
        self.named = found.map_or(NamedKey::Unknown, |(index, key)| NamedKey::Trusted(index, key));
        Ok(())
    }

    fn signature_tlv<R: ImageReader>(
        &mut self,
        entries: &mut TlvIter<'_, R>,
        entry: &TlvEntry,
        keys: &[TrustedKey],
    ) -> Result<(), VerifyError> {
        self.seen_signature = true;
        let named = core::mem::replace(&mut self.named, NamedKey::None);
        let (key_index, key) = match named {
            NamedKey::None => {
                self.seen_unnamed = true;
                return Ok(());
            }
            NamedKey::Unknown => return Ok(()),
            NamedKey::Trusted(index, key) => (index, key),
        };
        if keys.get(key_index).is_none_or(|key| key.revoked) {
            self.revoked = self.revoked.or(Some(key_index));
            return Ok(());
        }
        if self.candidate.is_some() {
            return Ok(());
        }
        let mut signature = [0u8; MAX_SIGNATURE_LEN];
        let len = entries.read_value(entry, &mut signature)?.len();
        self.candidate = Some(Candidate { key_index, key, tag: entry.tag, signature, len });
        Ok(())
    }

    fn into_candidate(self) -> Result<Candidate, VerifyError> {
        if let Some(candidate) = self.candidate {
            return Ok(candidate);
        }
        Err(match (self.revoked, self.seen_unnamed, self.seen_signature) {
            (Some(key_index), _, _) => VerifyError::KeyRevoked { key_index },
            (None, true, _) => VerifyError::SignatureWithoutKey,
            (None, false, true) => VerifyError::UnknownKey,
            (None, false, false) => VerifyError::MissingSignature,
        })
    }
}

/// A signature check in progress: pure Ed25519 absorbs the image, the others wait for the digest.
#[allow(clippy::large_enum_variant, reason = "lives on the stack once per verification")]
enum SignatureCheck<'c> {
    #[cfg(feature = "ed25519")]
    Ed25519Digest { key: [u8; 32], signature: &'c [u8] },
    #[cfg(feature = "ed25519")]
    Ed25519Pure(signature::Ed25519Stream),
    #[cfg(feature = "p256")]
    P256 { key: [u8; 65], signature: &'c [u8] },
}

impl<'c> SignatureCheck<'c> {
    fn start(candidate: &'c Candidate, pure: bool) -> Result<Self, VerifyError> {
        let signature = candidate.signature();
        let mismatch = VerifyError::AlgorithmMismatch { tag: candidate.tag };
        match (&candidate.key, candidate.tag, pure) {
            #[cfg(feature = "ed25519")]
            (PublicKey::Ed25519(key), tlv::ED25519, false) => {
                Ok(Self::Ed25519Digest { key: *key, signature })
            }
            #[cfg(feature = "ed25519")]
            (PublicKey::Ed25519(key), tlv::ED25519, true) => {
                Ok(Self::Ed25519Pure(signature::Ed25519Stream::new(key, signature)))
            }
            #[cfg(feature = "p256")]
            (PublicKey::P256(key), tlv::ECDSA_SIG, false) => {
                Ok(Self::P256 { key: *key, signature })
            }
            _ => Err(mismatch),
        }
    }

    fn absorb(&mut self, chunk: &[u8]) {
        #[cfg(feature = "ed25519")]
        if let Self::Ed25519Pure(stream) = self {
            stream.update(chunk);
        }
        let _ = chunk;
    }

    fn finish(self, digest: &Digest) -> bool {
        match self {
            #[cfg(feature = "ed25519")]
            Self::Ed25519Digest { key, signature } => {
                signature::ed25519_verify(&key, digest, signature)
            }
            #[cfg(feature = "ed25519")]
            Self::Ed25519Pure(stream) => stream.verify(),
            #[cfg(feature = "p256")]
            Self::P256 { key, signature } => match <&[u8; 32]>::try_from(&**digest) {
                Ok(digest) => signature::p256_verify_prehash(&key, digest, signature),
                Err(_) => false,
            },
        }
    }
}

fn read_exact<R: ImageReader, const N: usize>(
    entries: &mut TlvIter<'_, R>,
    entry: &TlvEntry,
    value: &mut [u8; N],
) -> Result<(), VerifyError> {
    if usize::from(entry.len) != N {
        return Err(TlvError::BadLength { tag: entry.tag, len: entry.len }.into());
    }
    entries.read_value(entry, value).map(|_| ())
}

fn replace_once<T>(slot: &mut Option<T>, value: T, tag: u16) -> Result<(), VerifyError>
where
    T: Copy,
{
    match slot.replace(value) {
        None => Ok(()),
        Some(_) => Err(TlvError::Duplicate { tag }.into()),
    }
}

fn parse_dependency(value: &[u8; DEPENDENCY_LEN]) -> Dependency {
    let (image_id, version) = match value.split_first_chunk::<4>() {
        Some(([id, ..], rest)) => (*id, rest.first_chunk::<8>().copied().unwrap_or_default()),
        None => (0, [0; 8]),
    };
    Dependency { image_id, min_version: ImageVersion::from_bytes(&version) }
}

fn is_signature(tag: u16) -> bool {
    matches!(
        tag,
        tlv::ED25519 | tlv::ECDSA_SIG | tlv::RSA2048_PSS | tlv::RSA3072_PSS | tlv::ECDSA224
    )
}

/// Vendor entries that only mean something when signed: refused unprotected rather than
/// ignored, so an added one cannot look as if it were honoured.
fn is_protected_only(tag: u16) -> bool {
    tag == tlv::REVOKE_KEYS
}

fn is_unprotected_only(tag: u16) -> bool {
    matches!(
        tag,
        tlv::KEYHASH | tlv::PUBKEY | tlv::SHA256 | tlv::SHA384 | tlv::SHA512 | tlv::SIG_PURE
    ) || is_signature(tag)
        || (tlv::ENC_RSA2048..=tlv::ENC_X25519_SHA512).contains(&tag)
}
