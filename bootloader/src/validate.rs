//! Deciding whether a slot holds an image that may boot.
//!
//! The boot logic asks an [`ImageValidator`]; [`SignatureValidator`] is the real one, backed
//! by `verifier_core::verify_image` over the slot through a `FlashReader`. Keeping a trait at
//! this seam lets boards add checks (a hardware key store, a measured-boot hook) without
//! touching the swap logic.

use embedded_storage::nor_flash::ReadNorFlash;
use verifier_core::tlv::TlvLayout;
use verifier_core::{
    Digest, FlashReader, Policy, TrustedKey, VerifiedImage, VerifyError, format, read_header,
    reverify_image, verify_image,
};

use crate::layout::Region;
pub use verifier_core::ImageVersion;

/// What the bootloader needs to know about an image that passed validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Header version.
    pub version: ImageVersion,
    /// Protected security counter (0 when the image has none and none was required).
    pub security_counter: u32,
    /// Offset of the payload (the vector table) from the start of the slot.
    pub header_size: u16,
    /// Bytes the image occupies: header, payload and TLVs.
    pub image_len: u32,
    /// Digest of the hashed region computed by validation; empty when only inspected.
    pub digest: Digest,
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
    /// The security counter is missing or below the device's counter.
    Rollback = 6,
    /// The image does not fit in the slot next to the trailer.
    TooLarge = 7,
    /// The slot could not be read.
    Unreadable = 8,
    /// The two independent checks of the image disagreed: a fault was injected or the
    /// flash changed between them.
    FaultDetected = 9,
}

impl Refusal {
    /// Decodes the byte stored in a boot record.
    pub fn from_u8(byte: u8) -> Option<Self> {
        const ALL: [Refusal; 9] = [
            Refusal::NoImage,
            Refusal::Malformed,
            Refusal::HashMismatch,
            Refusal::BadSignature,
            Refusal::UntrustedKey,
            Refusal::Rollback,
            Refusal::TooLarge,
            Refusal::Unreadable,
            Refusal::FaultDetected,
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
        }
    }
}

impl From<VerifyError> for Refusal {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Header(verifier_core::HeaderError::BadMagic { .. }) => Refusal::NoImage,
            VerifyError::Read(verifier_core::ReadError::OutOfBounds { .. }) => Refusal::TooLarge,
            VerifyError::Read(_) => Refusal::Unreadable,
            VerifyError::HashMismatch => Refusal::HashMismatch,
            VerifyError::SignatureInvalid { .. } | VerifyError::AlgorithmMismatch { .. } => {
                Refusal::BadSignature
            }
            VerifyError::MissingSignature
            | VerifyError::SignatureWithoutKey
            | VerifyError::UnknownKey
            | VerifyError::KeyRevoked { .. } => Refusal::UntrustedKey,
            VerifyError::MissingSecurityCounter | VerifyError::Rollback { .. } => Refusal::Rollback,
            _ => Refusal::Malformed,
        }
    }
}

/// Judges the image in a slot.
pub trait ImageValidator<F: ReadNorFlash> {
    /// Fully validates the image in `slot` (at most `max_len` bytes long): integrity,
    /// signature and a security counter of at least `min_security_counter`.
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

    /// Reads the header and TLV layout without any cryptography: enough to jump into an
    /// image that was validated before, and to size a swap.
    ///
    /// # Errors
    /// The [`Refusal`] naming what is malformed.
    fn inspect(&mut self, flash: &mut F, slot: Region, max_len: u32) -> Result<ImageInfo, Refusal>;
}

/// Signature validation against a set of trusted keys, with anti-rollback enforced.
pub struct SignatureValidator<'k> {
    keys: &'k [TrustedKey],
}

impl<'k> SignatureValidator<'k> {
    /// Accepts images signed by one of `keys`.
    pub const fn new(keys: &'k [TrustedKey]) -> Self {
        Self { keys }
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
        let mut reader = FlashReader::new(flash, slot.offset, max_len);
        let image = verify_image(&mut reader, self.keys, &rollback_policy(min))?;
        Ok(info(&image))
    }

    /// Repeats every check but hashing: the hash TLV is compared with the first digest and the
    /// signature verified again (an Ed25519 pure image is hashed again).
    fn revalidate(
        &mut self,
        flash: &mut F,
        slot: Region,
        max_len: u32,
        min: u32,
        first: &ImageInfo,
    ) -> Result<ImageInfo, Refusal> {
        let mut reader = FlashReader::new(flash, slot.offset, max_len);
        let policy = rollback_policy(min);
        let image = reverify_image(&mut reader, self.keys, &policy, &first.digest)?;
        Ok(info(&image))
    }

    fn inspect(&mut self, flash: &mut F, slot: Region, max_len: u32) -> Result<ImageInfo, Refusal> {
        let mut reader = FlashReader::new(flash, slot.offset, max_len);
        let header = read_header(&mut reader)?;
        header.check_supported().map_err(VerifyError::from)?;
        let layout = TlvLayout::locate(&mut reader, &header)?;
        Ok(ImageInfo {
            version: header.version,
            security_counter: security_counter(&mut reader, &layout)?.unwrap_or(0),
            header_size: header.hdr_size,
            image_len: layout.end,
            digest: Digest::from_slice(&[]),
        })
    }
}

fn rollback_policy(min_security_counter: u32) -> Policy {
    Policy { min_security_counter: Some(min_security_counter) }
}

fn info(image: &VerifiedImage) -> ImageInfo {
    ImageInfo {
        version: image.header.version,
        security_counter: image.security_counter.unwrap_or(0),
        header_size: image.header.hdr_size,
        image_len: image.image_len,
        digest: image.digest,
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
