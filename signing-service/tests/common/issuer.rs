//! Keys of a test OIDC issuer and the tokens they mint.

use base64::Engine as _;
use fwsign_keys::keys::{Algorithm as KeyAlgorithm, PrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A signing key of the test issuer, with its JWK.
pub struct IssuerKey {
    pub kid: &'static str,
    pub algorithm: Algorithm,
    pub encoding: EncodingKey,
    pub public_pem: Vec<u8>,
    pub jwk: Value,
}

/// Unpadded base64url.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A P-256 (ES256) issuer key named `kid`.
pub fn ec_key(kid: &'static str) -> IssuerKey {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let verifier_core::PublicKey::P256(point) = key.public_key() else { unreachable!() };
    let jwk = json!({ "kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
        "x": b64url(&point[1..33]), "y": b64url(&point[33..]) });
    IssuerKey {
        kid,
        algorithm: Algorithm::ES256,
        encoding: EncodingKey::from_ec_pem(key.to_pkcs8_pem(None).expect("pem").as_bytes())
            .expect("ec pem"),
        public_pem: Vec::new(),
        jwk,
    }
}

/// A token with `claims`, signed by `key`.
pub fn mint(key: &IssuerKey, claims: &Value) -> String {
    let mut header = Header::new(key.algorithm);
    header.kid = Some(key.kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("mint")
}
