//! Keys held in a PKCS#11 token (an HSM, a smart card, SoftHSM), through `cryptoki`.
//!
//! The private key never leaves the token: fwsign finds it by its `pkcs11:` URI, hands the
//! token the bytes to sign and gets a signature back. What is signed is what MCUboot
//! verifies, and small enough for any token:
//! - Ed25519 (`CKM_EDDSA`, pure): the image digest as the message; for `--pure` images the
//!   whole hashed region, which tokens accept in a single `C_Sign` call.
//! - ECDSA P-256 (raw `CKM_ECDSA`): the SHA-256 image digest, computed on the host (tokens such
//!   as SoftHSM lack `CKM_ECDSA_SHA256`). The token returns `r ‖ s`; the image stores DER.
//!
//! Each signature is checked against the token's public key before it is used, so a key
//! pair whose halves do not match, or a misbehaving token, cannot produce a broken image.
//!
//! The module comes from the URI's `module-path` or [`MODULE_ENV`]; the PIN from the URI's
//! `pin-source` or [`PIN_ENV`]. Without a PIN fwsign does not log in, so only public
//! objects are visible.
//!
//! A module is initialised once per process and shared by every session: signers on several
//! threads (a service's pool) never finalise it under each other. A session dies when the HSM
//! or the proxy in front of it restarts. A signing call that fails that way opens a new
//! session, finds the key again (it must still have the same public key) and retries once;
//! if the token cannot be found, the module is re-initialised first, once all calls in flight
//! have returned, and the sessions of the old initialisation are left stale.

mod generate;
mod session;
mod signer;
pub mod uri;

use std::path::PathBuf;

use cryptoki::error::{Error as CkError, RvError};

pub use generate::{GeneratedKey, generate_key_pair};
pub use session::read_public_key;
pub use signer::Pkcs11Signer;
pub use uri::{ObjectType, Pkcs11Uri, UriError};

/// Environment variable naming the PKCS#11 module when the URI has no `module-path`.
pub const MODULE_ENV: &str = "FWSIGN_PKCS11_MODULE";
/// Environment variable holding the token PIN when the URI has no `pin-source`.
pub const PIN_ENV: &str = "FWSIGN_PKCS11_PIN";
/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Error {
    /// No module was named.
    #[error(
        "{uri}: no PKCS#11 module: add ?module-path=/path/to/module.so to the URI or set {MODULE_ENV}"
    )]
    NoModule {
        /// The key's URI.
        uri: String,
    },
    /// The module could not be loaded or initialised.
    #[error("PKCS#11 module {module}: {reason}")]
    Module {
        /// The module path.
        module: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The PIN file could not be read.
    #[error("{uri}: pin-source {source_path}: {reason}")]
    PinSource {
        /// The key's URI.
        uri: String,
        /// The file.
        source_path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// No token matches the URI.
    #[error("{uri}: no token matches (tokens present: {available})")]
    TokenNotFound {
        /// The key's URI.
        uri: String,
        /// Labels of the tokens seen.
        available: String,
    },
    /// Several tokens match the URI.
    #[error("{uri}: {count} tokens match; add token=, serial= or slot-id= to choose one")]
    TokenAmbiguous {
        /// The key's URI.
        uri: String,
        /// How many matched.
        count: usize,
    },
    /// The PIN was refused.
    #[error("{uri}: the token refused the PIN (wrong PIN)")]
    WrongPin {
        /// The key's URI.
        uri: String,
    },
    /// The PIN is locked after too many failures.
    #[error("{uri}: the token's user PIN is locked")]
    PinLocked {
        /// The key's URI.
        uri: String,
    },
    /// No object matches.
    #[error("{uri}: no {what} matches{hint}")]
    ObjectNotFound {
        /// The key's URI.
        uri: String,
        /// What was looked for.
        what: &'static str,
        /// A hint when no PIN was given.
        hint: &'static str,
    },
    /// Several objects match.
    #[error("{uri}: {count} {what}s match; add object= or id= to choose one")]
    ObjectAmbiguous {
        /// The key's URI.
        uri: String,
        /// What was looked for.
        what: &'static str,
        /// How many matched.
        count: usize,
    },
    /// The URI names an object that cannot sign.
    #[error("{uri}: type={found} cannot sign; name the private key (type=private)")]
    NotAPrivateKey {
        /// The key's URI.
        uri: String,
        /// The type given.
        found: &'static str,
    },
    /// The key is of a kind fwsign does not sign with.
    #[error("{uri}: {reason} (expected an Ed25519 or P-256 key)")]
    UnsupportedKey {
        /// The key's URI.
        uri: String,
        /// What was found.
        reason: String,
    },
    /// A key to be generated already exists.
    #[error("{uri}: the token already holds an object with this label or id")]
    AlreadyExists {
        /// The key's URI.
        uri: String,
    },
    /// Generating needs a label.
    #[error("{uri}: name the new key with object=LABEL")]
    NoLabel {
        /// The key's URI.
        uri: String,
    },
    /// After reconnecting, the key found is a different one.
    #[error("{uri}: after reconnecting to the token the key has a different public key")]
    KeyChanged {
        /// The key's URI.
        uri: String,
    },
    /// A PKCS#11 call failed.
    #[error("{uri}: {operation} failed: {source}")]
    Call {
        /// The key's URI.
        uri: String,
        /// What fwsign was doing.
        operation: &'static str,
        /// The token's error.
        source: CkError,
    },
}

impl Pkcs11Error {
    /// Whether the error means the session (or the module behind it, or the key handle found
    /// in it) is gone, so that reconnecting, which finds the key again, may help. A token
    /// whose storage went away and came back (SoftHSM2's token directory) keeps refusing the
    /// old handle; only a new search finds the key.
    pub fn is_session_lost(&self) -> bool {
        let Self::Call { source: CkError::Pkcs11(rv, _), .. } = self else {
            return false;
        };
        matches!(
            rv,
            RvError::DeviceError
                | RvError::DeviceRemoved
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::SessionClosed
                | RvError::SessionHandleInvalid
                | RvError::CryptokiNotInitialized
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::UserNotLoggedIn
        )
    }
}
