//! Decides whether an MCUboot-format firmware image may boot.
//!
//! `verifier-core` is the one implementation of the image rules shared by the bootloader on the
//! device and by `fwsign verify` on the host. It parses the image header and both TLV areas,
//! hashes the signed region while streaming it from flash, checks the signature against a set
//! of trusted keys selected by KEYHASH, and enforces the anti-rollback security counter.
//!
//! It is `no_std`, allocates nothing, has no `unsafe` and is written so that no input can make
//! it panic: every size field goes through checked arithmetic and every read is bounds-checked.
//! Anything it cannot prove valid is refused with a [`VerifyError`] naming the failed check.
//!
//! What it does not do: decrypt or decompress images, RSA or P-384 signatures, or touch flash
//! trailers and swap state (the bootloader's job; their layouts are defined once in
//! [`format`] so that the bootloader and the host tools read them alike).
//!
//! ```
//! use verifier_core::{verify_image, Policy, PublicKey, SliceReader, TrustedKey, VerifyError};
//!
//! const KEYS: [TrustedKey; 1] = [TrustedKey::new(PublicKey::Ed25519([0x42; 32]))];
//!
//! let not_an_image = [0xffu8; 64];
//! let result = verify_image(&mut SliceReader::new(&not_an_image), &KEYS, &Policy::default());
//! assert!(matches!(result, Err(VerifyError::Header(_))));
//! ```
//!
//! # Features
//! - `ed25519` (default): Ed25519 signatures, over the digest or, with `sha512`, pure.
//! - `p256` (default): ECDSA P-256 signatures over the SHA-256 digest.
//! - `sha512`: SHA-512 image digests (`--sha 512`, `--pure`).
//! - `opt-size`: smaller, slower Ed25519.
//! - `embedded-storage`: [`FlashReader`] over a `ReadNorFlash`.
//! - `tlog`: `tlog::check_log_proof`, transparency-log proofs carried in the image.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::cast_possible_truncation
    )
)]

#[cfg(test)]
extern crate std;

#[cfg(not(any(feature = "ed25519", feature = "p256")))]
compile_error!("verifier-core needs at least one signature algorithm: enable `ed25519` or `p256`");

mod bytes;
pub mod design;
mod error;
pub mod format;
mod hash;
mod header;
mod keys;
mod policy;
mod reader;
pub mod revocation;
pub mod signature;
#[cfg(feature = "tlog")]
pub mod tlog;
pub mod tlv;
mod verify;

pub use bytes::InlineBytes;
pub use error::{HeaderError, ReadError, TlvError, VerifyError};
pub use hash::{Digest, HashAlgorithm, Hasher};
pub use header::{ImageHeader, ImageVersion};
pub use keys::{PublicKey, SpkiDer, TrustedKey};
pub use policy::{DeviceRules, Policy, max_image_len};
#[cfg(feature = "embedded-storage")]
pub use reader::FlashReader;
pub use reader::{ImageReader, SliceReader};
pub use revocation::{Revocations, RevokedKey};
pub use verify::{
    Dependency, MAX_DEPENDENCIES, VerifiedImage, read_header, reverify_image, verify_image,
};
