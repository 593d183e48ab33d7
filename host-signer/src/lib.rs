//! `fwsign`: signs, verifies and inspects MCUboot-format firmware images.
//!
//! The library behind the `fwsign` command, usable in-process by build tooling and tests.
//! Images are byte-identical to what MCUboot's imgtool 2.5.0 writes for the same key,
//! input and options (Ed25519 signatures are deterministic, so this is testable exactly).
//!
//! The pieces, in the order a signing run uses them:
//! - [`input`]: reads raw, Intel HEX or ELF firmware into the image buffer;
//! - [`keys`]: PEM key files (PKCS#8, encrypted PKCS#8, SEC1, SubjectPublicKeyInfo);
//! - [`pkcs11`] and [`pkcs11_uri`]: keys in an HSM, named by RFC 7512 URIs; [`key_ref`]
//!   tells the two kinds apart on the command line;
//! - [`signer`]: the [`Signer`](signer::Signer) trait that key files, tokens and external
//!   commands ([`command_signer`]) implement, so the image writer never touches key material;
//! - [`image`]: header, TLVs, hashing and signing;
//! - [`trailer`] and [`output`]: padding, the swap trailer and the output file;
//! - [`device`]: the keys of a device profile (`--device`).
//!
//! Verification is [`verifier_core`]'s, the same code the bootloader runs.

#![forbid(unsafe_code)]

pub mod command_signer;
pub mod device;
pub mod image;
pub mod input;
pub mod key_ref;
pub mod keys;
pub mod output;
pub mod parse;
pub mod pkcs11;
pub mod pkcs11_uri;
pub mod pubkey_export;
pub mod signer;
pub mod timestamp;
pub mod trailer;
