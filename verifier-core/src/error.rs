//! Typed errors: one variant per failed check, so a refusal always says why.

use core::fmt;

/// Reading the image from its storage failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The requested range ends past the end of the image storage.
    OutOfBounds {
        /// First byte requested.
        offset: u32,
        /// Number of bytes requested.
        len: u32,
    },
    /// The underlying flash reported an error.
    Storage,
}

/// The 32-byte image header is malformed or asks for something unsupported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// `ih_magic` is not `0x96f3b83d`.
    BadMagic {
        /// The magic found.
        found: u32,
    },
    /// `ih_hdr_size` is smaller than the 32-byte header.
    HeaderSizeTooSmall {
        /// The header size found.
        hdr_size: u16,
    },
    /// `ih_flags` has bits the format does not define.
    UnknownFlags {
        /// The undefined bits.
        bits: u32,
    },
    /// The image is encrypted; this verifier checks plaintext images only.
    Encrypted,
    /// The image is compressed; this verifier checks uncompressed images only.
    Compressed,
    /// The position-independent flag is set; MCUboot never supported it.
    PositionIndependent,
    /// `hdr_size + img_size + protect_tlv_size` overflows 32 bits.
    SizeOverflow,
}

/// A TLV area or entry is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlvError {
    /// A TLV area's info header has the wrong magic.
    BadAreaMagic {
        /// The magic expected at that offset.
        expected: u16,
        /// The magic found.
        found: u16,
    },
    /// The protected area's total differs from `ih_protect_tlv_size`.
    ProtectedSizeMismatch {
        /// `ih_protect_tlv_size` from the header.
        header: u16,
        /// `it_tlv_tot` from the protected area.
        area: u16,
    },
    /// An area's total size is smaller than its own info header.
    AreaTooSmall {
        /// The total found.
        total: u16,
    },
    /// An entry runs past the end of its area.
    EntryOverrun {
        /// The entry's tag.
        tag: u16,
        /// The entry's declared value length.
        len: u16,
    },
    /// An entry's value has the wrong length for its tag.
    BadLength {
        /// The entry's tag.
        tag: u16,
        /// The length found.
        len: u16,
    },
    /// A tag that may appear once appears again.
    Duplicate {
        /// The repeated tag.
        tag: u16,
    },
    /// A tag appears in an area where it is not allowed (see the `design` module).
    NotAllowed {
        /// The tag.
        tag: u16,
        /// Whether it was found in the protected area.
        protected: bool,
    },
    /// More DEPENDENCY entries than [`crate::MAX_DEPENDENCIES`].
    TooManyDependencies,
    /// The SIG_PURE entry's value is not `0x01`.
    BadPureMarker,
    /// A REVOKE_KEYS entry names a slot but carries a non-zero key hash.
    BadRevocation,
}

/// Why an image was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The image could not be read.
    Read(ReadError),
    /// The header is malformed or unsupported.
    Header(HeaderError),
    /// A TLV area is malformed.
    Tlv(TlvError),
    /// No hash TLV of a supported algorithm.
    MissingHash,
    /// The image's hash algorithm is not compiled in (for example SHA-512 without the `sha512` feature).
    UnsupportedHash {
        /// The hash TLV's tag.
        tag: u16,
    },
    /// The computed digest differs from the hash TLV.
    HashMismatch,
    /// No signature TLV at all.
    MissingSignature,
    /// A signature TLV is not preceded by a KEYHASH or PUBKEY TLV naming its key.
    SignatureWithoutKey,
    /// Signatures exist, but none names a trusted key.
    UnknownKey,
    /// The only trusted keys named by signatures are revoked.
    KeyRevoked {
        /// Index of the revoked key in the trusted key set.
        key_index: usize,
    },
    /// The image's REVOKE_KEYS names the key whose signature verified: applying it would leave
    /// the image unbootable, so it is refused outright.
    RevokesOwnKey {
        /// Index of the signing key in the trusted key set.
        key_index: usize,
    },
    /// The signature's algorithm does not match the key it names, or is not compiled in.
    AlgorithmMismatch {
        /// The signature TLV's tag.
        tag: u16,
    },
    /// A signature by a trusted key does not verify.
    SignatureInvalid {
        /// Index of the key in the trusted key set.
        key_index: usize,
    },
    /// The device requires a protected SEC_CNT TLV and the image has none.
    MissingSecurityCounter,
    /// The image's security counter is below the device's minimum.
    Rollback {
        /// The image's counter.
        image: u32,
        /// The device's minimum.
        minimum: u32,
    },
    /// The image does not fit its slot next to the trailer.
    TooLarge {
        /// Header, payload and TLVs.
        image_len: u32,
        /// The most the device allows: the slot minus its trailer sector.
        max_len: u32,
    },
    /// The image is marked `NON_BOOTABLE` (data only).
    NotBootable,
    /// A header flag the device does not allow (`RAM_LOAD`, `ROM_FIXED`).
    FlagNotAllowed {
        /// The flag.
        flag: u32,
    },
    /// A `ROM_FIXED` image is linked for another address than the slot it runs from.
    WrongLoadAddress {
        /// `ih_load_addr`.
        load_addr: u32,
        /// The primary slot's address.
        run_address: u32,
    },
    /// The transparency-log proof is missing or does not prove the image was logged.
    #[cfg(feature = "tlog")]
    Log(crate::tlog::LogError),
}

#[cfg(feature = "tlog")]
impl From<crate::tlog::LogError> for VerifyError {
    fn from(e: crate::tlog::LogError) -> Self {
        Self::Log(e)
    }
}

impl From<ReadError> for VerifyError {
    fn from(e: ReadError) -> Self {
        Self::Read(e)
    }
}

impl From<HeaderError> for VerifyError {
    fn from(e: HeaderError) -> Self {
        Self::Header(e)
    }
}

impl From<TlvError> for VerifyError {
    fn from(e: TlvError) -> Self {
        Self::Tlv(e)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfBounds { offset, len } => {
                write!(f, "read of {len} bytes at offset {offset:#x} is past the end of the image")
            }
            Self::Storage => f.write_str("flash read failed"),
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic { found } => {
                write!(f, "header: magic is {found:#010x}, expected 0x96f3b83d")
            }
            Self::HeaderSizeTooSmall { hdr_size } => {
                write!(f, "header: ih_hdr_size {hdr_size:#x} is smaller than the 32-byte header")
            }
            Self::UnknownFlags { bits } => write!(f, "header: undefined flag bits {bits:#x}"),
            Self::Encrypted => f.write_str("header: image is encrypted, which is not supported"),
            Self::Compressed => f.write_str("header: image is compressed, which is not supported"),
            Self::PositionIndependent => {
                f.write_str("header: position-independent images are not supported")
            }
            Self::SizeOverflow => f.write_str("header: image sizes overflow 32 bits"),
        }
    }
}

impl fmt::Display for TlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadAreaMagic { expected, found } => {
                write!(f, "TLV area magic is {found:#06x}, expected {expected:#06x}")
            }
            Self::ProtectedSizeMismatch { header, area } => {
                write!(f, "protected TLV area is {area} bytes but the header says {header}")
            }
            Self::AreaTooSmall { total } => {
                write!(f, "TLV area total {total} is smaller than its 4-byte info header")
            }
            Self::EntryOverrun { tag, len } => {
                write!(f, "TLV {tag:#06x} of length {len} runs past the end of its area")
            }
            Self::BadLength { tag, len } => write!(f, "TLV {tag:#06x} has invalid length {len}"),
            Self::Duplicate { tag } => write!(f, "TLV {tag:#06x} appears more than once"),
            Self::NotAllowed { tag, protected: true } => {
                write!(f, "TLV {tag:#06x} is not allowed in the protected area")
            }
            Self::NotAllowed { tag, protected: false } => {
                write!(f, "TLV {tag:#06x} is not allowed in the unprotected area")
            }
            Self::TooManyDependencies => {
                write!(f, "more than {} DEPENDENCY TLVs", crate::MAX_DEPENDENCIES)
            }
            Self::BadPureMarker => f.write_str("SIG_PURE TLV value is not 0x01"),
            Self::BadRevocation => {
                f.write_str("REVOKE_KEYS TLV entry names a slot but its key hash is not zero")
            }
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => e.fmt(f),
            Self::Header(e) => e.fmt(f),
            Self::Tlv(e) => e.fmt(f),
            Self::MissingHash => f.write_str("no image hash TLV"),
            Self::UnsupportedHash { tag } => {
                write!(f, "hash TLV {tag:#06x} uses an algorithm not built into this verifier")
            }
            Self::HashMismatch => f.write_str("image hash does not match the hash TLV"),
            Self::MissingSignature => f.write_str("image is not signed"),
            Self::SignatureWithoutKey => {
                f.write_str("signature TLV is not preceded by a KEYHASH or PUBKEY TLV")
            }
            Self::UnknownKey => f.write_str("no signature by a trusted key"),
            Self::KeyRevoked { key_index } => {
                write!(f, "image is signed only by revoked key #{key_index}")
            }
            Self::RevokesOwnKey { key_index } => write!(
                f,
                "image revokes trusted key #{key_index}, the key that signed it (REVOKE_KEYS)"
            ),
            Self::AlgorithmMismatch { tag } => write!(
                f,
                "signature TLV {tag:#06x} does not match its key's algorithm or is not built in"
            ),
            Self::SignatureInvalid { key_index } => {
                write!(f, "signature by trusted key #{key_index} is invalid")
            }
            Self::MissingSecurityCounter => f.write_str(
                "image has no security counter; this device requires one: sign with -s N",
            ),
            Self::Rollback { image, minimum } => write!(
                f,
                "anti-rollback: security counter {image} is below the device's {minimum} (a downgrade): sign with -s {minimum} or higher"
            ),
            Self::TooLarge { image_len, max_len } => write!(
                f,
                "image is {image_len:#x} bytes; the slot holds at most {max_len:#x} (slot size minus its trailer sector)"
            ),
            Self::NotBootable => f.write_str(
                "image is marked NON_BOOTABLE; this device boots only images signed without --non-bootable",
            ),
            Self::FlagNotAllowed { flag } => write!(
                f,
                "header flag {} ({flag:#x}) is not allowed on this device (its profile's allowed_flags)",
                crate::format::flags::name(*flag)
            ),
            Self::WrongLoadAddress { load_addr, run_address } => write!(
                f,
                "ROM_FIXED image is linked for {load_addr:#010x} but runs from the slot at {run_address:#010x}: sign with -F {run_address:#x} (and link for it)"
            ),
            #[cfg(feature = "tlog")]
            Self::Log(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for ReadError {}
impl core::error::Error for HeaderError {}
impl core::error::Error for TlvError {}
impl core::error::Error for VerifyError {}
