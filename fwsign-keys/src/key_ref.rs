//! What `-k/--key` names: a key file or a key in a PKCS#11 token.
//!
//! Every command that takes a key takes either; a `pkcs11:` prefix selects the token.

use std::fmt;
use std::path::PathBuf;

use verifier_core::PublicKey;

use crate::keys::{KeyError, PasswordSource, load_key, load_private_key};
use crate::pkcs11::uri::{Pkcs11Uri, UriError};
use crate::pkcs11::{Pkcs11Error, Pkcs11Signer, read_public_key};
use crate::signer::{KeyFileSigner, Signer};

/// A key named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A PEM key file.
    File(PathBuf),
    /// A key in a PKCS#11 token.
    Pkcs11(Pkcs11Uri),
}

/// Why a named key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyRefError {
    /// A key file problem.
    #[error(transparent)]
    File(#[from] KeyError),
    /// A token problem.
    #[error(transparent)]
    Pkcs11(#[from] Pkcs11Error),
}

impl std::str::FromStr for KeyRef {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if Pkcs11Uri::is_uri(text) {
            Pkcs11Uri::parse(text).map(Self::Pkcs11)
        } else {
            Ok(Self::File(PathBuf::from(text)))
        }
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Pkcs11(uri) => write!(f, "{uri}"),
        }
    }
}

impl KeyRef {
    /// The public key: from a private or public key file, or the token's public key object.
    ///
    /// # Errors
    /// [`KeyRefError`] naming the file or URI.
    pub fn public_key(&self, passwords: &dyn PasswordSource) -> Result<PublicKey, KeyRefError> {
        match self {
            Self::File(path) => Ok(load_key(path, passwords)?.public_key()),
            Self::Pkcs11(uri) => Ok(read_public_key(uri)?),
        }
    }

    /// A signer for the private key; it may be moved to another thread (a service's worker).
    ///
    /// # Errors
    /// [`KeyRefError`] naming the file or URI.
    pub fn signer(
        &self,
        passwords: &dyn PasswordSource,
    ) -> Result<Box<dyn Signer + Send>, KeyRefError> {
        match self {
            Self::File(path) => {
                let key = load_private_key(path, passwords)?;
                Ok(Box::new(KeyFileSigner::new(path, key)))
            }
            Self::Pkcs11(uri) => Ok(Box::new(Pkcs11Signer::open(uri)?)),
        }
    }
}
