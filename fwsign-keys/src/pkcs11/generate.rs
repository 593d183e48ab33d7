//! Making a key pair inside a token.

use cryptoki::context::Function;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::Session;
use verifier_core::PublicKey;

use super::Pkcs11Error;
use super::session::{ED25519_OID_PARAMS, P256_PARAMS, Target};
use super::uri::{ObjectType, Pkcs11Uri};
use crate::keys::Algorithm;

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
    let result = target
        .call("C_GenerateKeyPair", connection.session(Function::GenerateKeyPair))
        .and_then(|session| generate_in_session(&mut target, &session, label, algorithm));
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
