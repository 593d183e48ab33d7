//! Finding a token, opening a session on it and finding a key in it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::Decode as _;
use der::asn1::OctetStringRef;
use verifier_core::PublicKey;

use super::uri::Pkcs11Uri;
use super::{MODULE_ENV, PIN_ENV, Pkcs11Error};

/// `CKA_EC_PARAMS` of P-256: the OID prime256v1.
pub(super) const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `CKA_EC_PARAMS` of Ed25519: the OID id-Ed25519 (RFC 8410).
pub(super) const ED25519_OID_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// `CKA_EC_PARAMS` of Ed25519 as pkcs11-tool writes it: PrintableString "edwards25519".
pub(super) const ED25519_NAME_PARAMS: &[u8] = b"\x13\x0cedwards25519";
/// A URI resolved against the environment: which module, which PIN.
pub(super) struct Target {
    pub(super) uri: Pkcs11Uri,
    pub(super) name: String,
    pub(super) module: PathBuf,
    pin: Option<AuthPin>,
}

impl Target {
    pub(super) fn resolve(uri: &Pkcs11Uri) -> Result<Self, Pkcs11Error> {
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

    pub(super) fn call<T>(
        &self,
        operation: &'static str,
        result: cryptoki::error::Result<T>,
    ) -> Result<T, Pkcs11Error> {
        result.map_err(|source| Pkcs11Error::Call { uri: self.name.clone(), operation, source })
    }

    /// Loads the module, finds the token, opens a session and logs in if there is a PIN.
    ///
    /// If the token cannot be found or opened, the module is initialised afresh and the
    /// token looked for once more: a module keeps the tokens it found at initialisation, so a
    /// token that went away and came back is found only by a new initialisation.
    pub(super) fn connect(&self, read_write: bool) -> Result<Connection, Pkcs11Error> {
        let module = self.loaded()?;
        match self.connect_to(&module, read_write) {
            Err(error)
                if !matches!(
                    error,
                    Pkcs11Error::WrongPin { .. } | Pkcs11Error::PinLocked { .. }
                ) =>
            {
                reinitialise(&module).map_err(|reason| Pkcs11Error::Module {
                    module: self.module.clone(),
                    reason,
                })?;
                self.connect_to(&self.loaded()?, read_write).map_err(|_| error)
            }
            result => result,
        }
    }

    fn loaded(&self) -> Result<LoadedModule, Pkcs11Error> {
        loaded_module(&self.module)
            .map_err(|reason| Pkcs11Error::Module { module: self.module.clone(), reason })
    }

    fn connect_to(
        &self,
        module: &LoadedModule,
        read_write: bool,
    ) -> Result<Connection, Pkcs11Error> {
        let _calls = CALLS.read().unwrap_or_else(PoisonError::into_inner);
        if !module.is_current() {
            return Err(self.call("C_OpenSession", Err(stale(Function::OpenSession)))?);
        }
        let slot = self.find_slot(&module.context)?;
        let session = if read_write {
            self.call("C_OpenSession", module.context.open_rw_session(slot))?
        } else {
            self.call("C_OpenSession", module.context.open_ro_session(slot))?
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
        Ok(Connection { session: Some(session), module: module.clone() })
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
    pub(super) fn find_object(
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
    pub(super) fn find_key_pair(
        &self,
        session: &Session,
    ) -> Result<(ObjectHandle, PublicKey), Pkcs11Error> {
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

    pub(super) fn read_public_key(
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
    Err(format!("curve with CKA_EC_PARAMS {}", crate::hex(params)))
}

/// Held (shared) by every call into a module, and exclusively by a re-initialisation, so a
/// module is never finalised under a call in flight.
///
/// PKCS#11 has one initialisation per process, which every session shares (a signer pool's
/// sessions, a service's signing and log keys): finalising it while another thread is inside
/// the module would pull it from under that call.
static CALLS: RwLock<()> = RwLock::new(());

/// The modules this process has loaded, kept loaded until it ends.
static LOADED: Mutex<Vec<LoadedModule>> = Mutex::new(Vec::new());

/// A loaded module and its initialisation: sessions opened under an earlier one are gone.
#[derive(Clone)]
struct LoadedModule {
    path: PathBuf,
    context: Pkcs11,
    generation: u64,
}

impl LoadedModule {
    /// Whether no re-initialisation has happened since this one.
    fn is_current(&self) -> bool {
        let loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
        loaded.iter().any(|m| m.path == self.path && m.generation == self.generation)
    }
}

/// The module at `path`, loaded and initialised on first use.
fn loaded_module(path: &Path) -> Result<LoadedModule, String> {
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(module) = loaded.iter().find(|module| module.path == path) {
        return Ok(module.clone());
    }
    let context = Pkcs11::new(path).map_err(|e| e.to_string())?;
    initialise(&context)?;
    let module = LoadedModule { path: path.to_owned(), context, generation: 0 };
    loaded.push(module.clone());
    Ok(module)
}

fn initialise(context: &Pkcs11) -> Result<(), String> {
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(format!("C_Initialize failed: {e}")),
    }
}

/// Finalises and initialises `module` again, unless another connection already did since
/// `module` was read; waits for the calls in flight.
fn reinitialise(module: &LoadedModule) -> Result<(), String> {
    let _calls = CALLS.write().unwrap_or_else(PoisonError::into_inner);
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(current) = loaded.iter_mut().find(|m| m.path == module.path) else { return Ok(()) };
    if current.generation != module.generation {
        return Ok(());
    }
    // Errors ignored: the token may be gone already.
    let _ = current.context.clone().finalize();
    current.generation += 1;
    initialise(&current.context)
}

/// The error a session opened under an earlier initialisation reports, so its owner
/// reconnects ([`super::Pkcs11Error::is_session_lost`]).
fn stale(function: Function) -> CkError {
    CkError::Pkcs11(RvError::SessionHandleInvalid, function)
}

/// An open session on the token, valid while its module's initialisation lasts.
pub(super) struct Connection {
    /// Always `Some` until dropped.
    session: Option<Session>,
    module: LoadedModule,
}

impl Connection {
    /// The session, for calls made while the returned guard lives (re-initialisation waits
    /// for it). A session of an earlier initialisation reports `CKR_SESSION_HANDLE_INVALID`
    /// for `function` instead, without calling the module: its handle may name another
    /// session now.
    pub(super) fn session(&self, function: Function) -> Result<InFlight<'_>, CkError> {
        let calls = CALLS.read().unwrap_or_else(PoisonError::into_inner);
        match &self.session {
            Some(session) if self.module.is_current() => Ok(InFlight { _calls: calls, session }),
            _ => Err(stale(function)),
        }
    }

    /// Closes the session (errors ignored: the token may be gone already).
    pub(super) fn close(self) {
        drop(self);
    }
}

/// A session in use: the module is not re-initialised while this lives.
pub(super) struct InFlight<'a> {
    _calls: RwLockReadGuard<'static, ()>,
    session: &'a Session,
}

impl std::ops::Deref for InFlight<'_> {
    type Target = Session;

    fn deref(&self) -> &Session {
        self.session
    }
}

impl Drop for Connection {
    /// Closes the session, unless it belongs to an earlier initialisation: it is gone, and
    /// its handle may name another session now.
    fn drop(&mut self) {
        let _calls = CALLS.read().unwrap_or_else(PoisonError::into_inner);
        let session = self.session.take();
        if !self.module.is_current() {
            std::mem::forget(session);
        }
    }
}

/// A session with the key found in it.
pub(super) struct KeySession {
    pub(super) connection: Connection,
    pub(super) key: ObjectHandle,
}

pub(super) fn open_key_session(target: &Target) -> Result<(KeySession, PublicKey), Pkcs11Error> {
    let connection = target.connect(false)?;
    let (key, public_key) = {
        let session = target.call("C_FindObjects", connection.session(Function::FindObjects))?;
        target.find_key_pair(&session)?
    };
    Ok((KeySession { connection, key }, public_key))
}

/// Runs `attempt`; if it fails because the session was lost, runs `reconnect` and
/// `attempt` once more.
pub(super) fn retry_once_on_session_loss<T>(
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
/// Reads the public key the URI names (a public key object, found by label and id).
///
/// # Errors
/// Any [`Pkcs11Error`].
pub fn read_public_key(uri: &Pkcs11Uri) -> Result<PublicKey, Pkcs11Error> {
    let target = Target::resolve(uri)?;
    let connection = target.connect(false)?;
    let result = target.call("C_FindObjects", connection.session(Function::FindObjects)).and_then(
        |session| {
            target
                .find_object(&session, ObjectClass::PUBLIC_KEY)
                .and_then(|handle| target.read_public_key(&session, handle))
        },
    );
    connection.close();
    result
}
#[cfg(test)]
mod tests {
    use cryptoki::context::Function;

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
    fn a_stale_key_handle_counts_as_a_lost_session() {
        for rv in [RvError::ObjectHandleInvalid, RvError::KeyHandleInvalid] {
            assert!(call_error(rv).is_session_lost(), "{rv:?}");
        }
        assert!(!call_error(RvError::KeyFunctionNotPermitted).is_session_lost());
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
