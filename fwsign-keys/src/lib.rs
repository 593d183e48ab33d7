//! fwsign's key backends: whatever holds a private key, behind one [`Signer`] trait.
//!
//! This crate is what both the `fwsign` command line and the signing service (the
//! `signing-service` crate) use to reach a key: PEM key files, keys in a PKCS#11 token (the
//! private key never leaves it), and external signing commands (a KMS or an HSM vendor's
//! tool). It also holds the RFC 3161 timestamp client, since a timestamp is requested over a
//! signature right after it is made. It knows nothing about image layout: building, padding
//! and writing images is `host-signer`'s job, deciding who may sign is the service's.
//!
//! - [`keys`]: PEM key files (PKCS#8, encrypted PKCS#8, SEC1, SubjectPublicKeyInfo);
//! - [`pkcs11`]: keys in an HSM, named by RFC 7512 URIs ([`pkcs11::uri`]);
//! - [`key_ref`]: what `-k` names, a key file or a token key;
//! - [`signer`]: the [`Signer`] trait; [`command_signer`]: an external command as a signer;
//! - [`timestamp`]: RFC 3161 timestamp requests and token checks;
//! - [`profile_keys`]: the trusted and revoked keys a device profile names, loaded.
//!
//! [`Signer`]: signer::Signer

#![forbid(unsafe_code)]

pub mod command_signer;
pub mod key_ref;
pub mod keys;
pub mod pkcs11;
pub mod profile_keys;
pub mod signer;
pub mod timestamp;

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}
