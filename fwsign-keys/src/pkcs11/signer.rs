//! [`Pkcs11Signer`]: a [`Signer`] whose key stays in the token.

use std::cell::RefCell;

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use verifier_core::PublicKey;

use super::Pkcs11Error;
use super::session::{KeySession, Target, open_key_session, retry_once_on_session_loss};
use super::uri::{ObjectType, Pkcs11Uri};
use crate::keys::Algorithm;
use crate::signer::{SignError, Signer, ecdsa_raw_to_der, signature_verifies};

/// A [`Signer`] whose private key is in a PKCS#11 token.
pub struct Pkcs11Signer {
    target: Target,
    public_key: PublicKey,
    state: RefCell<Option<KeySession>>,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Signer").field("key", &self.target.name).finish_non_exhaustive()
    }
}

impl Pkcs11Signer {
    /// Opens the token and finds the key the URI names.
    ///
    /// # Errors
    /// Any [`Pkcs11Error`]: module, token, PIN, key.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self, Pkcs11Error> {
        let target = Target::resolve(uri)?;
        if let Some(kind) = uri.object_type.filter(|t| *t != ObjectType::Private) {
            return Err(Pkcs11Error::NotAPrivateKey {
                uri: target.name.clone(),
                found: match kind {
                    ObjectType::Public => "public",
                    ObjectType::Cert => "cert",
                    ObjectType::SecretKey => "secret-key",
                    ObjectType::Data => "data",
                    ObjectType::Private => "private",
                },
            });
        }
        let (session, public_key) = open_key_session(&target)?;
        Ok(Self { target, public_key, state: RefCell::new(Some(session)) })
    }

    /// Signs `data` with `mechanism`, reconnecting once if the session was lost.
    fn sign_raw(&self, mechanism: &Mechanism<'_>, data: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        retry_once_on_session_loss(|| self.sign_in_session(mechanism, data), || self.reconnect())
    }

    fn sign_in_session(
        &self,
        mechanism: &Mechanism<'_>,
        data: &[u8],
    ) -> Result<Vec<u8>, Pkcs11Error> {
        let state = self.state.borrow();
        // No session means an earlier reconnection failed: report it as lost, so the
        // caller reconnects.
        let result = match state.as_ref() {
            Some(open) => open
                .connection
                .session(Function::Sign)
                .and_then(|session| session.sign(mechanism, open.key, data)),
            None => Err(CkError::Pkcs11(RvError::SessionClosed, Function::Sign)),
        };
        self.target.call("C_Sign", result)
    }

    fn reconnect(&self) -> Result<(), Pkcs11Error> {
        if let Some(old) = self.state.borrow_mut().take() {
            old.connection.close();
        }
        let (session, public_key) = open_key_session(&self.target)?;
        if public_key != self.public_key {
            return Err(Pkcs11Error::KeyChanged { uri: self.target.name.clone() });
        }
        *self.state.borrow_mut() = Some(session);
        Ok(())
    }

    fn backend_error(&self, error: &Pkcs11Error) -> SignError {
        SignError::Backend { key_id: self.target.name.clone(), message: error.to_string() }
    }

    /// Signs and checks the result against the public key.
    fn sign_checked(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature = match self.public_key {
            PublicKey::Ed25519(_) => {
                let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
                self.sign_raw(&mechanism, message).map_err(|e| self.backend_error(&e))?
            }
            PublicKey::P256(_) => {
                let raw = self
                    .sign_raw(&Mechanism::Ecdsa, message)
                    .map_err(|e| self.backend_error(&e))?;
                ecdsa_raw_to_der(&raw).ok_or_else(|| SignError::Backend {
                    key_id: self.target.name.clone(),
                    message: format!(
                        "the token returned a {}-byte ECDSA signature, expected 64 (r ‖ s)",
                        raw.len()
                    ),
                })?
            }
        };
        if !signature_verifies(&self.public_key, message, &signature) {
            return Err(SignError::Backend {
                key_id: self.target.name.clone(),
                message: "the token's signature does not verify with its public key".into(),
            });
        }
        Ok(signature)
    }
}

impl Drop for Pkcs11Signer {
    fn drop(&mut self) {
        if let Some(open) = self.state.get_mut().take() {
            open.connection.close();
        }
    }
}
impl Signer for Pkcs11Signer {
    fn key_id(&self) -> &str {
        &self.target.name
    }

    fn public_key(&self) -> PublicKey {
        self.public_key
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, SignError> {
        if matches!(self.public_key, PublicKey::P256(_)) && digest.len() != 32 {
            return Err(SignError::DigestLength {
                key_id: self.target.name.clone(),
                algorithm: Algorithm::EcdsaP256,
                len: digest.len(),
            });
        }
        self.sign_checked(digest)
    }

    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match self.public_key {
            PublicKey::Ed25519(_) => self.sign_checked(message),
            PublicKey::P256(_) => Err(SignError::Unsupported {
                key_id: self.target.name.clone(),
                algorithm: Algorithm::EcdsaP256,
                what: "a pure signature over the whole image",
            }),
        }
    }
}
