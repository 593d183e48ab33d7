//! Image digests: SHA-256, and SHA-512 with the `sha512` feature.

#[cfg(any(not(feature = "thumb2-sha256"), feature = "sha512"))]
use sha2::Digest as _;

use crate::bytes::InlineBytes;
use crate::format::tlv;

/// The hash algorithm of an image, named by its hash TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-256, TLV 0x10: the default.
    Sha256,
    /// SHA-512, TLV 0x12: `imgtool --sha 512` and Ed25519 `--pure` images.
    #[cfg(feature = "sha512")]
    Sha512,
}

impl HashAlgorithm {
    /// The algorithm whose hash TLV has `tag`, if it is built in.
    pub fn from_tlv_tag(tag: u16) -> Option<Self> {
        match tag {
            tlv::SHA256 => Some(Self::Sha256),
            #[cfg(feature = "sha512")]
            tlv::SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The algorithm whose digests are `len` bytes long, if it is built in.
    pub fn from_digest_len(len: usize) -> Option<Self> {
        match len {
            32 => Some(Self::Sha256),
            #[cfg(feature = "sha512")]
            64 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The tag of this algorithm's hash TLV.
    pub fn tlv_tag(self) -> u16 {
        match self {
            Self::Sha256 => tlv::SHA256,
            #[cfg(feature = "sha512")]
            Self::Sha512 => tlv::SHA512,
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            #[cfg(feature = "sha512")]
            Self::Sha512 => 64,
        }
    }

    /// Hashes `data` in one call.
    pub fn digest(self, data: &[u8]) -> Digest {
        let mut hasher = Hasher::new(self);
        hasher.update(data);
        hasher.finalize()
    }
}

/// A digest: 32 bytes for SHA-256, 64 for SHA-512.
pub type Digest = InlineBytes<64>;

/// The SHA-256 implementation: `sha256-armv7m` with the `thumb2-sha256` feature, else `sha2`.
#[cfg(feature = "thumb2-sha256")]
type Sha256State = sha256_armv7m::Sha256;
#[cfg(not(feature = "thumb2-sha256"))]
type Sha256State = sha2::Sha256;

/// An incremental hasher for a [`HashAlgorithm`].
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256 state.
    Sha256(Sha256State),
    /// SHA-512 state.
    #[cfg(feature = "sha512")]
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: HashAlgorithm) -> Self {
        match algorithm {
            HashAlgorithm::Sha256 => Self::Sha256(Sha256State::new()),
            #[cfg(feature = "sha512")]
            HashAlgorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
        }
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            #[cfg(feature = "sha512")]
            Self::Sha512(h) => h.update(data),
        }
    }

    /// Returns the digest of everything absorbed.
    pub fn finalize(self) -> Digest {
        match self {
            Self::Sha256(h) => Digest::from_slice(&h.finalize()),
            #[cfg(feature = "sha512")]
            Self::Sha512(h) => Digest::from_slice(&h.finalize()),
        }
    }
}
