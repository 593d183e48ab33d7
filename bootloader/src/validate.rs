//! Deciding whether a slot holds an image that may boot.
//!
//! The boot logic asks an [`ImageValidator`]; [`SignatureValidator`] is the real one, backed
//! by `verifier_core::verify_image` over the slot through a `FlashReader`. Keeping a trait at
//! this seam lets boards add checks (a hardware key store, a measured-boot hook) without
//! touching the swap logic.
//!
//! With the `tlog` feature, a device whose profile names transparency-log keys also requires
//! each image to carry a log proof ([`SignatureValidator::requiring_log_proof`]): checked in
//! the same validation, right after the signature, so an unlogged image is refused wherever a
//! signature would be checked (before a swap, before every boot, in the second check). The
//! proof is read into a [`ProofBuffer`](verifier_core::tlog::ProofBuffer) the caller owns.

use embedded_storage::nor_flash::ReadNorFlash;
#[cfg(feature = "tlog")]
use verifier_core::tlog::{LogKey, ProofBuffer, check_log_proof};
use verifier_core::tlv::TlvLayout;
use verifier_core::{
    DeviceRules, Digest, FlashReader, Policy, TrustedKey, VerifiedImage, VerifyError, format,
    read_header, reverify_image, verify_image,
};

use crate::layout::Region;
use crate::revoke::KeySlots;
pub use verifier_core::ImageVersion;

/// What the bootloader knows about an image: verified by [`SignatureValidator::validate`], or
/// only inspected ([`ImageValidator::inspect`]).
///
/// Built only inside this crate, from verifier-core's results: an [`ImageValidator`] written
/// elsewhere can hand out only what [`SignatureValidator`] produced, and the boot logic
/// refuses an inspected image where a verified one is required, so it cannot be made to boot
/// through an always-accept validator (the `sim-flash` test support aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub(crate) version: ImageVersion,
    pub(crate) security_counter: u32,
    pub(crate) header_size: u16,
    pub(crate) image_len: u32,
    pub(crate) digest: Digest,
    pub(crate) verified: bool,
    pub(crate) signer: u8,
    pub(crate) revokes: KeySlots,
}

impl ImageInfo {
    /// Header version.
    pub fn version(&self) -> ImageVersion {
        self.version
    }

    /// Protected security counter (0 when the image has none and none was required);
    /// unverified unless [`ImageInfo::is_verified`].
    pub fn security_counter(&self) -> u32 {
        self.security_counter
    }

    /// Offset of the payload (the vector table) from the start of the slot.
    pub fn header_size(&self) -> u16 {
        self.header_size
    }

    /// Bytes the image occupies: header, payload and TLVs.
    pub fn image_len(&self) -> u32 {
        self.image_len
    }

    /// Digest of the hashed region computed by validation; empty when only inspected.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Whether the image passed full validation (not only inspection).
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// The slot, in the trusted key set, of the key whose signature verified (0 when only
    /// inspected).
    pub fn signer(&self) -> u8 {
        self.signer
    }

    /// The trusted-key slots the image's REVOKE_KEYS names, by slot or by key hash (none when
    /// only inspected).
    pub fn revoked_slots(&self) -> KeySlots {
        self.revokes
    }

    /// Test support: `info` as a first check would report it had its digest comparison been
    /// skipped by a fault (`digest` the one it computed), to test the second check.
    #[cfg(feature = "sim-flash")]
    pub fn skipped_comparison(info: &Self, digest: Digest) -> Self {
        Self { digest, verified: true, ..*info }
    }
}

/// Why a slot's image may not boot. Recorded as one byte in the boot record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Refusal {
    /// The slot holds no image header.
    NoImage = 1,
    /// The header or a TLV area is malformed or unsupported.
    Malformed = 2,
    /// The digest does not match the hash TLV.
    HashMismatch = 3,
    /// A signature by a trusted key does not verify.
    BadSignature = 4,
    /// The image is unsigned or signed only by unknown or revoked keys.
    UntrustedKey = 5,
    /// The security counter is below the device's counter.
    Rollback = 6,
    /// The image does not fit in the slot next to the trailer.
    TooLarge = 7,
    /// The slot could not be read.
    Unreadable = 8,
    /// The two independent checks of the image disagreed (a fault was injected or the flash
    /// changed between them), or a validator reported an image it had not verified.
    FaultDetected = 9,
    /// The image has no security counter and the device requires one.
    NoSecurityCounter = 10,
    /// The image is marked `NON_BOOTABLE`.
    NotBootable = 11,
    /// A header flag the device does not allow, or a `ROM_FIXED` image linked for another
    /// address.
    FlagNotAllowed = 12,
    /// The device requires a transparency-log proof and the image's LOG_PROOF is missing,
    /// malformed, not signed by a listed log, or does not log this image and key.
    NotLogged = 13,
    /// The image's REVOKE_KEYS names the key that signed it.
    RevokesOwnKey = 14,
}

impl Refusal {
    /// Decodes the byte stored in a boot record.
    pub fn from_u8(byte: u8) -> Option<Self> {
        const ALL: [Refusal; 14] = [
            Refusal::NoImage,
            Refusal::Malformed,
            Refusal::HashMismatch,
            Refusal::BadSignature,
            Refusal::UntrustedKey,
            Refusal::Rollback,
            Refusal::TooLarge,
            Refusal::Unreadable,
            Refusal::FaultDetected,
            Refusal::NoSecurityCounter,
            Refusal::NotBootable,
            Refusal::FlagNotAllowed,
            Refusal::NotLogged,
            Refusal::RevokesOwnKey,
        ];
        ALL.into_iter().find(|r| *r as u8 == byte)
    }

    /// A short lower-case description for logs and reports.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::NoImage => "no image",
            Refusal::Malformed => "malformed image",
            Refusal::HashMismatch => "hash mismatch (tampered or corrupted)",
            Refusal::BadSignature => "invalid signature",
            Refusal::UntrustedKey => "not signed by a trusted key",
            Refusal::Rollback => "security counter below the device's (downgrade)",
            Refusal::TooLarge => "image too large for the slot",
            Refusal::Unreadable => "slot unreadable",
            Refusal::FaultDetected => "the two checks of the image disagree (fault injection?)",
            Refusal::NoSecurityCounter => "no security counter; this device requires one (-s N)",
            Refusal::NotBootable => "image marked non-bootable",
            Refusal::FlagNotAllowed => "header flag not allowed (RAM_LOAD, or ROM_FIXED elsewhere)",
            Refusal::NotLogged => "no valid transparency-log proof (LOG_PROOF)",
            Refusal::RevokesOwnKey => "revokes the key that signed it (REVOKE_KEYS)",
        }
    }
}

impl From<VerifyError> for Refusal {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Header(verifier_core::HeaderError::BadMagic { .. }) => Refusal::NoImage,
            VerifyError::Read(verifier_core::ReadError::OutOfBounds { .. })
            | VerifyError::TooLarge { .. } => Refusal::TooLarge,
            VerifyError::Read(_) => Refusal::Unreadable,
            VerifyError::HashMismatch => Refusal::HashMismatch,
            VerifyError::SignatureInvalid { .. } | VerifyError::AlgorithmMismatch { .. } => {
                Refusal::BadSignature
            }
            VerifyError::MissingSignature
            | VerifyError::SignatureWithoutKey
            | VerifyError::UnknownKey
            | VerifyError::KeyRevoked { .. } => Refusal::UntrustedKey,
            VerifyError::RevokesOwnKey { .. } => Refusal::RevokesOwnKey,
            VerifyError::MissingSecurityCounter => Refusal::NoSecurityCounter,
            VerifyError::Rollback { .. } => Refusal::Rollback,
            VerifyError::NotBootable => Refusal::NotBootable,
            VerifyError::FlagNotAllowed { .. } | VerifyError::WrongLoadAddress { .. } => {
                Refusal::FlagNotAllowed
            }
            #[cfg(feature = "tlog")]
            VerifyError::Log(_) => Refusal::NotLogged,
            _ => Refusal::Malformed,
        }
    }
}

/// Judges the image in a slot.
pub trait ImageValidator<F: ReadNorFlash> {
    /// Fully validates the image in `slot` (at most `max_len` bytes long): the device's rules,
    /// integrity, signature and a security counter of at least `min_security_counter`.
    ///
    /// # Errors
    /// The [`Refusal`] naming the failed check.
    fn validate(
        &mut self,
        flash: &mut F,
        slot: Region,
        max_len: u32,
        min_security_counter: u32,
    ) -> Result<ImageInfo, Refusal>;

    /// Validates the image in `slot` again for the fault-injection double check, given what
    /// [`ImageValidator::validate`] returned for it: the default validates from scratch.
    ///
    /// # Errors
    /// The [`Refusal`] naming the failed check.
    fn revalidate(
        &mut self,
        flash: &mut F,
        slot: Region,
        max_len: u32,
        min_security_counter: u32,
        first: &ImageInfo,
    ) -> Result<ImageInfo, Refusal> {
        let _ = first;
        self.validate(flash, slot, max_len, min_security_counter)
    }

    /// Reads the header and TLV layout without any cryptography, applying the device's
    /// flag and size rules: enough to jump into an image that was validated before, and to
    /// size a swap. Its security counter is unverified and must not be trusted.
    ///
    /// # Errors
    /// The [`Refusal`] naming what is malformed.
    fn inspect(&mut self, flash: &mut F, slot: Region, max_len: u32) -> Result<ImageInfo, Refusal>;
}

/// Signature validation against a set of trusted keys, under the device's rules.
pub struct SignatureValidator<'k> {
    keys: &'k [TrustedKey],
    rules: DeviceRules,
    #[cfg(feature = "tlog")]
    log: Option<LogRequirement<'k>>,
}

/// The logs an image must be logged in, and where its proof is read to.
#[cfg(feature = "tlog")]
struct LogRequirement<'k> {
    keys: &'k [LogKey<'k>],
    buffer: &'k mut ProofBuffer,
}

impl<'k> SignatureValidator<'k> {
    /// Accepts images signed by one of `keys` that keep the device's `rules`.
    pub const fn new(keys: &'k [TrustedKey], rules: DeviceRules) -> Self {
        Self {
            keys,
            rules,
            #[cfg(feature = "tlog")]
            log: None,
        }
    }

    /// Also requires every validated image to carry a LOG_PROOF by one of `log_keys` that logs
    /// its digest and the key whose signature verified (an empty list refuses every image).
    /// The proof is read into `buffer` (7 KiB: a bootloader keeps it in a static).
    #[cfg(feature = "tlog")]
    pub fn requiring_log_proof(
        self,
        log_keys: &'k [LogKey<'k>],
        buffer: &'k mut ProofBuffer,
    ) -> Self {
        Self { log: Some(LogRequirement { keys: log_keys, buffer }), ..self }
    }

    /// The log proof check, if this device requires one.
    #[cfg(feature = "tlog")]
    fn check_logged<F: ReadNorFlash>(
        &mut self,
        reader: &mut FlashReader<'_, F>,
        image: &VerifiedImage,
    ) -> Result<(), VerifyError> {
        if let Some(log) = &mut self.log {
            check_log_proof(reader, image, self.keys, log.keys, log.buffer)?;
        }
        Ok(())
    }

    /// Without the `tlog` feature no device requires a log proof.
    #[cfg(not(feature = "tlog"))]
    fn check_logged<F: ReadNorFlash>(
        &mut self,
        _: &mut FlashReader<'_, F>,
        _: &VerifiedImage,
    ) -> Result<(), VerifyError> {
        Ok(())
    }

    /// The policy for a slot: the image may take `max_len` bytes of it.
    fn policy(&self, max_len: u32, min_security_counter: u32) -> Policy {
        self.rules.policy(min_security_counter, max_len)
    }
}

impl<F: ReadNorFlash> ImageValidator<F> for SignatureValidator<'_> {
    fn validate(
        &mut self,
        flash: &mut F,
        slot: Region,
        max_len: u32,
        min: u32,
    ) -> Result<ImageInfo, Refusal> {
        let mut reader = FlashReader::new(flash, slot.offset, slot.size);
        let image = verify_image(&mut reader, self.keys, &self.policy(max_len, min))?;
        self.check_logged(&mut reader, &image)?;
        Ok(info(&image, self.keys))
    }

    /// Repeats every check but hashing: the hash TLV is compared with the first digest, the
    /// signature verified again (an Ed25519 pure image is hashed again), and the log proof
    /// checked again.
    fn revalidate(
        &mut self,
        flash: &mut F,
        slot: Region,
        max_len: u32,
        min: u32,
        first: &ImageInfo,
    ) -> Result<ImageInfo, Refusal> {
        let policy = self.policy(max_len, min);
        let mut reader = FlashReader::new(flash, slot.offset, slot.size);
        let image = reverify_image(&mut reader, self.keys, &policy, &first.digest)?;
        self.check_logged(&mut reader, &image)?;
        Ok(info(&image, self.keys))
    }

    fn inspect(&mut self, flash: &mut F, slot: Region, max_len: u32) -> Result<ImageInfo, Refusal> {
        let policy = self.policy(max_len, 0);
        let mut reader = FlashReader::new(flash, slot.offset, slot.size);
        let header = read_header(&mut reader)?;
        header.check_supported().map_err(VerifyError::from)?;
        policy.check_flags(&header)?;
        let layout = TlvLayout::locate(&mut reader, &header)?;
        policy.check_fits(layout.end)?;
        Ok(ImageInfo {
            version: header.version,
            security_counter: security_counter(&mut reader, &layout)?.unwrap_or(0),
            header_size: header.hdr_size,
            image_len: layout.end,
            digest: Digest::from_slice(&[]),
            verified: false,
            signer: 0,
            revokes: KeySlots::NONE,
        })
    }
}

fn info(image: &VerifiedImage, keys: &[TrustedKey]) -> ImageInfo {
    let revokes = keys
        .iter()
        .enumerate()
        .filter(|(slot, key)| image.revocations().revokes(*slot, key))
        .fold(KeySlots::NONE, |slots, (slot, _)| slots.with(slot));
    ImageInfo {
        version: image.header().version,
        security_counter: image.security_counter().unwrap_or(0),
        header_size: image.header().hdr_size,
        image_len: image.image_len(),
        digest: *image.digest(),
        verified: true,
        signer: u8::try_from(image.key_index()).unwrap_or(u8::MAX),
        revokes,
    }
}

/// The protected SEC_CNT value, if any.
fn security_counter<F: ReadNorFlash>(
    reader: &mut FlashReader<'_, F>,
    layout: &TlvLayout,
) -> Result<Option<u32>, VerifyError> {
    let mut entries = layout.entries(reader);
    while let Some(entry) = entries.next().transpose()? {
        if entry.area == verifier_core::tlv::TlvArea::Protected && entry.tag == format::tlv::SEC_CNT
        {
            let mut value = [0u8; format::SEC_CNT_LEN];
            entries.read_value(&entry, &mut value)?;
            return Ok(Some(u32::from_le_bytes(value)));
        }
    }
    Ok(None)
}
