//! `fwsign policy check`: the service's decision for a claim set and an image, offline.
//!
//! Policies can be tested in CI before they are deployed: the same configuration, the same
//! Cedar policies and schema, the same image parsing as the running service, with the facts
//! only the service knows (highest counter signed, approvals) given on the command line.

use std::path::Path;

use verifier_core::{HashAlgorithm, SliceReader, read_header};

use crate::config::ServiceConfig;
use crate::policy::{ImageFacts, PolicyEngine, Principal, Verdict};
use crate::server::ServerError;
use crate::tbs;

/// What the service would know besides the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct KnownFacts {
    /// The highest security counter already signed with the key.
    pub highest_security_counter: u32,
    /// Approvals so far.
    pub approvals: u32,
}

/// Why a check could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The configuration or policy.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A file named on the command line.
    #[error("{file}: {reason}")]
    Input {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
}

fn input(file: &Path, reason: impl ToString) -> CheckError {
    CheckError::Input { file: file.display().to_string(), reason: reason.to_string() }
}

/// Decides whether the identity in `claims_file` (an OIDC claim set as JSON) may sign the
/// image in `image_file` (signed or not) with `key`.
///
/// # Errors
/// [`CheckError`] naming the file at fault.
pub fn check(
    config_file: &Path,
    claims_file: &Path,
    image_file: &Path,
    key: &str,
    known: KnownFacts,
) -> Result<Verdict, CheckError> {
    let config = ServiceConfig::load(config_file).map_err(ServerError::from)?;
    let names: Vec<&str> = config.keys.keys().map(String::as_str).collect();
    if !names.contains(&key) {
        return Err(input(
            config_file,
            format!("no key named \"{key}\" (keys: {})", names.join(", ")),
        ));
    }
    let policy = PolicyEngine::load(&config.policy, &names).map_err(ServerError::from)?;
    let text = std::fs::read_to_string(claims_file).map_err(|e| input(claims_file, e))?;
    let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .map_err(|e| input(claims_file, format!("not a JSON object: {e}")))?;
    let iss = claims.get("iss").and_then(|v| v.as_str()).unwrap_or("");
    let issuer_name = config
        .issuers
        .iter()
        .find(|(_, issuer)| issuer.issuer == iss)
        .map(|(name, _)| name.clone())
        .ok_or_else(|| input(claims_file, format!("iss \"{iss}\" is not a configured issuer")))?;
    let image = std::fs::read(image_file).map_err(|e| input(image_file, e))?;
    let header = read_header(&mut SliceReader::new(&image)).map_err(|e| input(image_file, e))?;
    let region = header
        .hashed_len()
        .and_then(|len| image.get(..usize::try_from(len).ok()?))
        .ok_or_else(|| input(image_file, "shorter than its header says"))?;
    let parsed = tbs::parse(region, HashAlgorithm::Sha256).map_err(|e| input(image_file, e))?;
    let facts = ImageFacts::of(&parsed, known.highest_security_counter, known.approvals);
    Ok(policy.decide(&Principal::Workload { issuer_name, claims }, key, &facts))
}
