//! CI workload identity: OIDC ID tokens from configured issuers (GitHub Actions, GitLab CI).
//!
//! A token is accepted only if every check passes: its `iss` is exactly a configured issuer;
//! its signing key is in that issuer's JWKS (from a file, or from the issuer's discovery
//! document, cached and refetched at most every [`REFETCH_INTERVAL`] when an unknown `kid`
//! appears); the algorithm is the one the key is for, and on the allowlist (RS256, ES256) —
//! `none` and HS* are never accepted, and the token header cannot choose the key type; `aud`
//! equals the configured audience; `exp`, `nbf` and `iat` hold with [`LEEWAY_SECS`] of leeway.
//! Each refusal says which check failed.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::config::{IssuerConfig, is_loopback_http};

/// Clock leeway for `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 60;
/// The shortest time between two JWKS fetches of one issuer.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// How long a fetched JWKS is used before it is fetched again.
const CACHE_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Why an identity token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// Not three base64url parts with a JSON header and payload.
    #[error("identity token is not a JWT: {0}")]
    Malformed(String),
    /// `iss` names no configured issuer.
    #[error("identity token issuer \"{0}\" is not configured on this service")]
    UnknownIssuer(String),
    /// The algorithm is not allowed.
    #[error("identity token algorithm {0} is not accepted (only RS256 and ES256)")]
    Algorithm(String),
    /// No key with the token's `kid`.
    #[error("identity token key id {0:?} is not in the JWKS of issuer {1}")]
    UnknownKey(Option<String>, String),
    /// The header's algorithm is not the one the key is for.
    #[error("identity token says {header} but key {kid} is a {key} key")]
    AlgorithmMismatch {
        /// The header's algorithm.
        header: String,
        /// The key's algorithm.
        key: String,
        /// The key id.
        kid: String,
    },
    /// Expired.
    #[error("identity token expired {0} s ago")]
    Expired(u64),
    /// `nbf` or `iat` is in the future.
    #[error("identity token is not valid yet ({0} in {1} s)")]
    NotYetValid(&'static str, u64),
    /// `aud` is not the configured audience.
    #[error("identity token audience is not \"{0}\"")]
    Audience(String),
    /// The signature does not verify, or another check failed.
    #[error("identity token refused: {0}")]
    Invalid(String),
    /// The issuer's keys could not be fetched.
    #[error("cannot fetch the keys of issuer {issuer}: {reason}")]
    Fetch {
        /// The issuer.
        issuer: String,
        /// Why.
        reason: String,
    },
}

/// A verified identity.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The configured issuer's name.
    pub issuer_name: String,
    /// Every claim of the token.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// One issuer and its cached keys.
#[derive(Debug)]
struct Issuer {
    name: String,
    config: IssuerConfig,
    cache: Mutex<KeyCache>,
}

#[derive(Debug, Default)]
struct KeyCache {
    keys: Option<JwkSet>,
    fetched: Option<Instant>,
}

/// The configured issuers.
#[derive(Debug)]
pub struct IssuerSet {
    issuers: Vec<Issuer>,
}

fn now() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_secs())
}

/// The token's payload, read before verification only to choose the issuer and explain
/// time refusals; nothing in it is trusted until the signature has been checked.
fn unverified_payload(
    token: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, OidcError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OidcError::Malformed("expected three dot-separated parts".into()));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| OidcError::Malformed(format!("payload: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| OidcError::Malformed(format!("payload: {e}")))
}

/// The algorithm a JWK is for, from its key type (and its `alg`, which must agree).
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return None,
    };
    match (jwk.common.key_algorithm, by_type) {
        (None, _) | (Some(KeyAlgorithm::RS256), Algorithm::RS256) => Some(by_type),
        (Some(KeyAlgorithm::ES256), Algorithm::ES256) => Some(by_type),
        _ => None,
    }
}

impl IssuerSet {
    /// The issuers of the configuration.
    pub fn new(issuers: &BTreeMap<String, IssuerConfig>) -> Self {
        Self {
            issuers: issuers
                .iter()
                .map(|(name, config)| Issuer {
                    name: name.clone(),
                    config: config.clone(),
                    cache: Mutex::new(KeyCache::default()),
                })
                .collect(),
        }
    }

    /// Verifies `token` (blocking: may fetch keys; call from a blocking thread).
    ///
    /// # Errors
    /// The [`OidcError`] of the first failed check.
    pub fn verify(&self, token: &str) -> Result<Identity, OidcError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            let raw = token
                .split('.')
                .next()
                .and_then(|h| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).ok());
            let alg = raw
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .and_then(|json| json["alg"].as_str().map(ToOwned::to_owned));
            match alg {
                Some(alg) => OidcError::Algorithm(alg),
                None => OidcError::Malformed(format!("header: {e}")),
            }
        })?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(OidcError::Algorithm(format!("{:?}", header.alg)));
        }
        let payload = unverified_payload(token)?;
        let iss = payload.get("iss").and_then(|v| v.as_str()).unwrap_or("");
        let issuer = self
            .issuers
            .iter()
            .find(|issuer| issuer.config.issuer == iss)
            .ok_or_else(|| OidcError::UnknownIssuer(iss.to_owned()))?;
        let jwk = issuer.key(header.kid.as_deref())?;
        let kid = header.kid.clone().unwrap_or_default();
        let algorithm = key_algorithm(&jwk).ok_or_else(|| OidcError::AlgorithmMismatch {
            header: format!("{:?}", header.alg),
            key: "unsupported".into(),
            kid: kid.clone(),
        })?;
        if algorithm != header.alg {
            return Err(OidcError::AlgorithmMismatch {
                header: format!("{:?}", header.alg),
                key: format!("{algorithm:?}"),
                kid,
            });
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| OidcError::Invalid(format!("key {kid}: {e}")))?;
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&issuer.config.issuer]);
        validation.set_audience(&[&issuer.config.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(|e| explain(&e, &payload, &issuer.config.audience))?;
        let iat = data.claims.get("iat").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if iat > now() + LEEWAY_SECS {
            return Err(OidcError::NotYetValid("iat", iat - now()));
        }
        Ok(Identity { issuer_name: issuer.name.clone(), claims: data.claims })
    }
}

fn explain(
    error: &jsonwebtoken::errors::Error,
    payload: &serde_json::Map<String, serde_json::Value>,
    audience: &str,
) -> OidcError {
    use jsonwebtoken::errors::ErrorKind;
    let claim = |name: &str| payload.get(name).and_then(serde_json::Value::as_u64).unwrap_or(0);
    match error.kind() {
        ErrorKind::ExpiredSignature => OidcError::Expired(now().saturating_sub(claim("exp"))),
        ErrorKind::ImmatureSignature => {
            OidcError::NotYetValid("nbf", claim("nbf").saturating_sub(now()))
        }
        ErrorKind::InvalidAudience => OidcError::Audience(audience.to_owned()),
        ErrorKind::InvalidSignature => OidcError::Invalid("the signature does not verify".into()),
        _ => OidcError::Invalid(error.to_string()),
    }
}

impl Issuer {
    /// The key with `kid`, fetching the JWKS when it is not cached, stale, or lacks `kid`
    /// (at most once per [`REFETCH_INTERVAL`]).
    fn key(&self, kid: Option<&str>) -> Result<Jwk, OidcError> {
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let find = |keys: &JwkSet| match kid {
            Some(kid) => keys.find(kid).cloned(),
            None => None,
        };
        let stale = cache.fetched.is_none_or(|at| at.elapsed() > CACHE_LIFETIME);
        let found = if stale { None } else { cache.keys.as_ref().and_then(find) };
        if let Some(jwk) = found {
            return Ok(jwk);
        }
        let may_fetch = cache.fetched.is_none_or(|at| at.elapsed() >= REFETCH_INTERVAL) || stale;
        if may_fetch {
            cache.keys = Some(self.fetch()?);
            cache.fetched = Some(Instant::now());
        }
        cache.keys.as_ref().and_then(find).ok_or_else(|| {
            OidcError::UnknownKey(kid.map(ToOwned::to_owned), self.config.issuer.clone())
        })
    }

    fn fetch(&self) -> Result<JwkSet, OidcError> {
        let fail = |reason: String| OidcError::Fetch { issuer: self.config.issuer.clone(), reason };
        if let Some(file) = &self.config.jwks {
            let text = std::fs::read_to_string(file)
                .map_err(|e| fail(format!("{}: {e}", file.display())))?;
            return serde_json::from_str(&text)
                .map_err(|e| fail(format!("{}: {e}", file.display())));
        }
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let discovery: serde_json::Value = get_json(&discovery_url).map_err(fail)?;
        if discovery["issuer"].as_str() != Some(&self.config.issuer) {
            return Err(fail(format!(
                "the discovery document's issuer is {}, not {}",
                discovery["issuer"], self.config.issuer
            )));
        }
        let jwks_uri = discovery["jwks_uri"]
            .as_str()
            .ok_or_else(|| fail("the discovery document has no jwks_uri".into()))?;
        if !jwks_uri.starts_with("https://") && !is_loopback_http(jwks_uri) {
            return Err(fail(format!("jwks_uri {jwks_uri} is not https://")));
        }
        let keys: serde_json::Value = get_json(jwks_uri).map_err(fail)?;
        serde_json::from_value(keys).map_err(|e| fail(format!("{jwks_uri}: {e}")))
    }
}

/// The largest discovery document or JWKS read.
const MAX_DOCUMENT: u64 = 1024 * 1024;

fn get_json(url: &str) -> Result<serde_json::Value, String> {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(10))).build().into();
    let mut response = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_DOCUMENT)
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{url}: {e}"))
}
