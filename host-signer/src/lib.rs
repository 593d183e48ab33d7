//! `fwsign`: signs, verifies and inspects MCUboot-format firmware images.
//!
//! The library behind the `fwsign` command, usable in-process by build tooling and tests.
//! Images are byte-identical to what MCUboot's imgtool 2.5.0 writes for the same key,
//! input and options (Ed25519 signatures are deterministic, so this is testable exactly).
//!
//! The pieces, in the order a signing run uses them:
//! - [`input`]: reads raw, Intel HEX or ELF firmware into the image buffer;
//! - the keys come from [`fwsign_keys`]: key files, PKCS#11 tokens and external commands
//!   behind its `Signer` trait, so the image writer never touches key material;
//! - [`image`]: header, TLVs, hashing and signing;
//! - [`trailer`] and [`output`]: padding, the swap trailer and the output file;
//! - [`pubkey_export`]: public keys as `getpub` prints them; [`parse`]: option values.
//!
//! Verification is [`verifier_core`]'s, the same code the bootloader runs.

#![forbid(unsafe_code)]

pub mod image;
pub mod input;
pub mod output;
pub mod parse;
pub mod pubkey_export;
pub mod trailer;
