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
//! A session dies when the HSM or the proxy in front of it restarts. A signing call that
//! fails that way re-initialises the module, opens a new session, finds the key again (it
//! must still have the same public key) and retries once.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::Decode as _;
use der::asn1::OctetStringRef;
use verifier_core::PublicKey;

use crate::keys::Algorithm;
use crate::pkcs11_uri::{ObjectType, Pkcs11Uri};
use crate::signer::{SignError, Signer, ecdsa_raw_to_der, signature_verifies};

/// Environment variable naming the PKCS#11 module when the URI has no `module-path`.
pub const MODULE_ENV: &str = "FWSIGN_PKCS11_MODULE";
/// Environment variable holding the token PIN when the URI has no `pin-source`.
pub const PIN_ENV: &str = "FWSIGN_PKCS11_PIN";

/// `CKA_EC_PARAMS` of P-256: the OID prime256v1.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `CKA_EC_PARAMS` of Ed25519: the OID id-Ed25519 (RFC 8410).
const ED25519_OID_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// `CKA_EC_PARAMS` of Ed25519 as pkcs11-tool writes it: PrintableString "edwards25519".
const ED25519_NAME_PARAMS: &[u8] = b"\x13\x0cedwards25519";

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
    /// Whether the error means the session (or the module behind it) is gone, so that
    /// reconnecting may help.
    pub fn is_session_lost(&self) -> bool {
        let Self::Call { source: CkError::Pkcs11(rv, _), .. } = self else {
            return false;
        };
        matches!(
            rv,
            RvError::DeviceError
                | RvError::DeviceRemoved
                | RvError::SessionClosed
                | RvError::SessionHandleInvalid
                | RvError::CryptokiNotInitialized
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::UserNotLoggedIn
        )
    }
}

/// A URI resolved against the environment: which module, which PIN.
struct Target {
    uri: Pkcs11Uri,
    name: String,
    module: PathBuf,
    pin: Option<AuthPin>,
}

impl Target {
    fn resolve(uri: &Pkcs11Uri) -> Result<Self, Pkcs11Error> {
        let name = uri.to_string();
        let module = uri
            .module_path
            .clone()
            .or_else(|| std::env::var_os(MODULE_ENV).map(PathBuf::from))
            .ok_or_else(|| Pkcs11Error::NoModule { uri: name.clone() })?;
        let pin = match &uri.pin_source {
            Some(source) => Some(read_pin_file(&name, &pin_source_path(source))?),
            None => std::env::var(PIN_ENV).ok(),
        };
        Ok(Self { uri: uri.clone(), name, module, pin: pin.map(AuthPin::from) })
    }

    fn call<T>(
        &self,
        operation: &'static str,
        result: cryptoki::error::Result<T>,
    ) -> Result<T, Pkcs11Error> {
        result.map_err(|source| Pkcs11Error::Call { uri: self.name.clone(), operation, source })
    }

    /// Loads the module, finds the token, opens a session and logs in if there is a PIN.
    fn connect(&self, read_write: bool) -> Result<Connection, Pkcs11Error> {
        let module_error =
            |reason: String| Pkcs11Error::Module { module: self.module.clone(), reason };
        let pkcs11 = Pkcs11::new(&self.module).map_err(|e| module_error(e.to_string()))?;
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => {}
            Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(module_error(format!("C_Initialize failed: {e}"))),
        }
        let slot = self.find_slot(&pkcs11)?;
        let session = if read_write {
            self.call("C_OpenSession", pkcs11.open_rw_session(slot))?
        } else {
            self.call("C_OpenSession", pkcs11.open_ro_session(slot))?
        };
        if let Some(pin) = &self.pin {
            match session.login(UserType::User, Some(pin)) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
                    return Err(Pkcs11Error::WrongPin { uri: self.name.clone() });
                }
                Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                    return Err(Pkcs11Error::PinLocked { uri: self.name.clone() });
                }
                Err(e) => return Err(self.call("C_Login", Err(e))?),
            }
        }
        Ok(Connection { pkcs11, session })
    }

    fn find_slot(&self, pkcs11: &Pkcs11) -> Result<Slot, Pkcs11Error> {
        let slots = self.call("C_GetSlotList", pkcs11.get_slots_with_initialized_token())?;
        let mut labels = Vec::new();
        let mut matching = Vec::new();
        for slot in slots {
            let info = self.call("C_GetTokenInfo", pkcs11.get_token_info(slot))?;
            labels.push(format!("'{}'", info.label().trim_end()));
            let fits = |wanted: &Option<String>, actual: &str| {
                wanted.as_deref().is_none_or(|w| w == actual.trim_end())
            };
            if fits(&self.uri.token, info.label())
                && fits(&self.uri.serial, info.serial_number())
                && fits(&self.uri.manufacturer, info.manufacturer_id())
                && fits(&self.uri.model, info.model())
                && self.uri.slot_id.is_none_or(|id| id == slot.id())
            {
                matching.push(slot);
            }
        }
        match matching.as_slice() {
            [slot] => Ok(*slot),
            [] => Err(Pkcs11Error::TokenNotFound {
                uri: self.name.clone(),
                available: if labels.is_empty() { "none".into() } else { labels.join(", ") },
            }),
            many => Err(Pkcs11Error::TokenAmbiguous { uri: self.name.clone(), count: many.len() }),
        }
    }

    /// The one object of `class` the URI's label and id select.
    fn find_object(
        &self,
        session: &Session,
        class: ObjectClass,
    ) -> Result<ObjectHandle, Pkcs11Error> {
        let mut template = vec![Attribute::Class(class)];
        if let Some(label) = &self.uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &self.uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        let what = if class == ObjectClass::PRIVATE_KEY { "private key" } else { "public key" };
        let found = self.call("C_FindObjects", session.find_objects(&template))?;
        match found.as_slice() {
            [handle] => Ok(*handle),
            [] => Err(Pkcs11Error::ObjectNotFound {
                uri: self.name.clone(),
                what,
                hint: if self.pin.is_none() && class == ObjectClass::PRIVATE_KEY {
                    " (no PIN was given, so private objects are hidden: use pin-source= or FWSIGN_PKCS11_PIN)"
                } else {
                    ""
                },
            }),
            many => Err(Pkcs11Error::ObjectAmbiguous {
                uri: self.name.clone(),
                what,
                count: many.len(),
            }),
        }
    }

    /// Finds the private key and its public key (the public object with the same id).
    fn find_key_pair(&self, session: &Session) -> Result<(ObjectHandle, PublicKey), Pkcs11Error> {
        let private = self.find_object(session, ObjectClass::PRIVATE_KEY)?;
        let attributes = self.call(
            "C_GetAttributeValue",
            session.get_attributes(private, &[AttributeType::Id, AttributeType::Label]),
        )?;
        let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
        for attribute in attributes {
            match attribute {
                Attribute::Id(id) if !id.is_empty() => template.push(Attribute::Id(id)),
                Attribute::Label(label) if self.uri.id.is_none() && !label.is_empty() => {
                    template.push(Attribute::Label(label));
                }
                _ => {}
            }
        }
        let found = self.call("C_FindObjects", session.find_objects(&template))?;
        let [public] = found.as_slice() else {
            return Err(Pkcs11Error::ObjectNotFound {
                uri: self.name.clone(),
                what: "public key with the private key's id",
                hint: "",
            });
        };
        Ok((private, self.read_public_key(session, *public)?))
    }

    fn read_public_key(
        &self,
        session: &Session,
        handle: ObjectHandle,
    ) -> Result<PublicKey, Pkcs11Error> {
        let attributes = self.call(
            "C_GetAttributeValue",
            session.get_attributes(
                handle,
                &[AttributeType::KeyType, AttributeType::EcParams, AttributeType::EcPoint],
            ),
        )?;
        let (mut key_type, mut params, mut point) = (None, None, None);
        for attribute in attributes {
            match attribute {
                Attribute::KeyType(value) => key_type = Some(value),
                Attribute::EcParams(value) => params = Some(value),
                Attribute::EcPoint(value) => point = Some(value),
                _ => {}
            }
        }
        let unsupported =
            |reason: String| Pkcs11Error::UnsupportedKey { uri: self.name.clone(), reason };
        let key_type = key_type.ok_or_else(|| unsupported("the key has no CKA_KEY_TYPE".into()))?;
        if key_type != KeyType::EC && key_type != KeyType::EC_EDWARDS {
            return Err(unsupported(format!("key type {key_type}")));
        }
        let (Some(params), Some(point)) = (params, point) else {
            return Err(unsupported("the public key has no CKA_EC_PARAMS/CKA_EC_POINT".into()));
        };
        public_key_from_token(&params, &point).map_err(unsupported)
    }
}

/// Reads the PIN: the first line of the file.
fn read_pin_file(uri: &str, path: &Path) -> Result<String, Pkcs11Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Pkcs11Error::PinSource {
        uri: uri.to_owned(),
        source_path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}

/// The file a `pin-source` names: `file:///p`, `file:/p`, `file:p` or a plain path.
fn pin_source_path(source: &str) -> PathBuf {
    let path =
        source.strip_prefix("file://").or_else(|| source.strip_prefix("file:")).unwrap_or(source);
    PathBuf::from(path)
}

/// Decodes `CKA_EC_PARAMS` and `CKA_EC_POINT` (DER OCTET STRING, or raw on some tokens).
fn public_key_from_token(params: &[u8], point: &[u8]) -> Result<PublicKey, String> {
    let point = <&OctetStringRef>::from_der(point).map(OctetStringRef::as_bytes).unwrap_or(point);
    if params == ED25519_OID_PARAMS || params == ED25519_NAME_PARAMS {
        let bytes = <[u8; 32]>::try_from(point)
            .map_err(|_| format!("Ed25519 CKA_EC_POINT is {} bytes, not 32", point.len()))?;
        return Ok(PublicKey::Ed25519(bytes));
    }
    if params == P256_PARAMS {
        return match <[u8; 65]>::try_from(point) {
            Ok(bytes) if bytes[0] == 0x04 => Ok(PublicKey::P256(bytes)),
            _ => Err("P-256 CKA_EC_POINT is not an uncompressed point".into()),
        };
    }
    Err(format!("curve with CKA_EC_PARAMS {}", crate::pubkey_export::hex(params)))
}

/// An open session on the token.
struct Connection {
    pkcs11: Pkcs11,
    session: Session,
}

impl Connection {
    /// Closes the session and finalises the module (errors ignored: it may be gone already).
    fn close(self) {
        drop(self.session);
        let _ = self.pkcs11.finalize();
    }
}

/// A session with the key found in it.
struct KeySession {
    connection: Connection,
    key: ObjectHandle,
}

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
            Some(open) => open.connection.session.sign(mechanism, open.key, data),
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

fn open_key_session(target: &Target) -> Result<(KeySession, PublicKey), Pkcs11Error> {
    let connection = target.connect(false)?;
    let (key, public_key) = target.find_key_pair(&connection.session)?;
    Ok((KeySession { connection, key }, public_key))
}

/// Runs `attempt`; if it fails because the session was lost, runs `reconnect` and
/// `attempt` once more.
fn retry_once_on_session_loss<T>(
    mut attempt: impl FnMut() -> Result<T, Pkcs11Error>,
    reconnect: impl FnOnce() -> Result<(), Pkcs11Error>,
) -> Result<T, Pkcs11Error> {
    match attempt() {
        Err(error) if error.is_session_lost() => {
            reconnect()?;
            attempt()
        }
        other => other,
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

/// Reads the public key the URI names (a public key object, found by label and id).
///
/// # Errors
/// Any [`Pkcs11Error`].
pub fn read_public_key(uri: &Pkcs11Uri) -> Result<PublicKey, Pkcs11Error> {
    let target = Target::resolve(uri)?;
    let connection = target.connect(false)?;
    let result = target
        .find_object(&connection.session, ObjectClass::PUBLIC_KEY)
        .and_then(|handle| target.read_public_key(&connection.session, handle));
    connection.close();
    result
}

/// A key pair made in a token.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// The URI that names the new private key (with its id).
    pub uri: Pkcs11Uri,
    /// Its public key.
    pub public_key: PublicKey,
}

/// Generates a key pair inside the token: the private half is sensitive and not
/// extractable, so it can never be read out. The URI must give `object=` (the label);
/// without `id=` a random 8-byte id is chosen.
///
/// # Errors
/// [`Pkcs11Error::NoLabel`], [`Pkcs11Error::AlreadyExists`] or any token error.
pub fn generate_key_pair(
    uri: &Pkcs11Uri,
    algorithm: Algorithm,
) -> Result<GeneratedKey, Pkcs11Error> {
    let mut target = Target::resolve(uri)?;
    let Some(label) = uri.object.clone() else {
        return Err(Pkcs11Error::NoLabel { uri: target.name });
    };
    let connection = target.connect(true)?;
    let result = generate_in_session(&mut target, &connection.session, label, algorithm);
    connection.close();
    result
}

fn generate_in_session(
    target: &mut Target,
    session: &Session,
    label: String,
    algorithm: Algorithm,
) -> Result<GeneratedKey, Pkcs11Error> {
    let label = label.into_bytes();
    let taken = |attribute: Attribute| -> Result<bool, Pkcs11Error> {
        Ok(!target.call("C_FindObjects", session.find_objects(&[attribute]))?.is_empty())
    };
    let id_taken = match &target.uri.id {
        Some(id) => taken(Attribute::Id(id.clone()))?,
        None => false,
    };
    if id_taken || taken(Attribute::Label(label.clone()))? {
        return Err(Pkcs11Error::AlreadyExists { uri: target.name.clone() });
    }
    let id = match target.uri.id.clone() {
        Some(id) => id,
        None => {
            let mut id = vec![0u8; 8];
            getrandom::fill(&mut id).map_err(|e| Pkcs11Error::Module {
                module: target.module.clone(),
                reason: format!("random number generator failed: {e}"),
            })?;
            id
        }
    };
    let (mechanism, params) = match algorithm {
        Algorithm::Ed25519 => (Mechanism::EccEdwardsKeyPairGen, ED25519_OID_PARAMS),
        Algorithm::EcdsaP256 => (Mechanism::EccKeyPairGen, P256_PARAMS),
    };
    let public_template = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(params.to_vec()),
        Attribute::Label(label.clone()),
        Attribute::Id(id.clone()),
    ];
    let private_template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label),
        Attribute::Id(id.clone()),
    ];
    let (public, _) = target.call(
        "C_GenerateKeyPair",
        session.generate_key_pair(&mechanism, &public_template, &private_template),
    )?;
    let public_key = target.read_public_key(session, public)?;
    target.uri.id = Some(id);
    target.uri.object_type = Some(ObjectType::Private);
    Ok(GeneratedKey { uri: target.uri.clone(), public_key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_error(rv: RvError) -> Pkcs11Error {
        Pkcs11Error::Call {
            uri: "pkcs11:token=t".into(),
            operation: "C_Sign",
            source: CkError::Pkcs11(rv, Function::Sign),
        }
    }

    #[test]
    fn a_lost_session_is_reopened_and_the_call_retried_once() {
        let mut attempts = 0;
        let mut reconnects = 0;
        let result = retry_once_on_session_loss(
            || {
                attempts += 1;
                if attempts == 1 {
                    Err(call_error(RvError::SessionHandleInvalid))
                } else {
                    Ok(attempts)
                }
            },
            || {
                reconnects += 1;
                Ok(())
            },
        );
        assert_eq!(result.ok(), Some(2));
        assert_eq!(reconnects, 1);
    }

    #[test]
    fn a_second_loss_or_another_error_is_reported() {
        let mut attempts = 0;
        let result: Result<(), _> = retry_once_on_session_loss(
            || {
                attempts += 1;
                Err(call_error(RvError::DeviceError))
            },
            || Ok(()),
        );
        assert!(result.is_err_and(|e| e.is_session_lost()));
        assert_eq!(attempts, 2);

        let mut reconnected = false;
        let result: Result<(), _> = retry_once_on_session_loss(
            || Err(call_error(RvError::KeyFunctionNotPermitted)),
            || {
                reconnected = true;
                Ok(())
            },
        );
        assert!(result.is_err());
        assert!(!reconnected);
    }

    #[test]
    fn token_public_keys_in_both_ed25519_encodings() {
        let mut point = vec![0x04, 0x20];
        point.extend([7u8; 32]);
        for params in [ED25519_OID_PARAMS, ED25519_NAME_PARAMS] {
            assert_eq!(public_key_from_token(params, &point), Ok(PublicKey::Ed25519([7; 32])));
        }
        assert_eq!(
            public_key_from_token(ED25519_OID_PARAMS, &[7; 32]),
            Ok(PublicKey::Ed25519([7; 32]))
        );
        let mut p256 = vec![0x04, 0x41, 0x04];
        p256.extend([1u8; 64]);
        assert!(matches!(public_key_from_token(P256_PARAMS, &p256), Ok(PublicKey::P256(_))));
        assert!(public_key_from_token(&[0x06, 0x01, 0x00], &p256).is_err());
    }

    #[test]
    fn pin_sources() {
        assert_eq!(pin_source_path("file:///run/pin"), PathBuf::from("/run/pin"));
        assert_eq!(pin_source_path("file:/run/pin"), PathBuf::from("/run/pin"));
        assert_eq!(pin_source_path("pin.txt"), PathBuf::from("pin.txt"));
    }
}
