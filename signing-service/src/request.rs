//! The body of `POST /v1/sign`, decoded: the one place the request format is read.
//!
//! `{"key": NAME, "images": [base64 to-be-signed region, …], "hash": "sha256"|"sha512"
//! (optional), "pure": bool (optional)}`; unknown fields are refused. Every image is parsed
//! with [`tbs::parse`]. This module needs no server, so it is fuzzed on its own
//! (`fuzz/fuzz_targets/service_request.rs`).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use verifier_core::HashAlgorithm;

use crate::tbs::{self, ParsedImage, TbsError};

/// Why a request body was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Not the JSON the API defines.
    #[error("request body: {0}")]
    Json(String),
    /// No image.
    #[error("field images: at least one image is needed")]
    NoImages,
    /// An unsupported hash.
    #[error(
        "field hash: \"{0}\" is not supported (expected sha256 or sha512; pure images use sha512)"
    )]
    Hash(String),
    /// An image is not base64.
    #[error("images[{index}]: not base64 ({reason})")]
    Base64 {
        /// Which image.
        index: usize,
        /// The decoder's reason.
        reason: String,
    },
    /// An image is not a valid to-be-signed region.
    #[error("images[{index}]: {error}")]
    Image {
        /// Which image.
        index: usize,
        /// What is wrong with it.
        error: TbsError,
    },
}

/// A signing request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The key's name.
    pub key: String,
    /// The to-be-signed regions, base64.
    pub images: Vec<String>,
    /// The image hash (default SHA-256; SHA-512 for pure).
    #[serde(default)]
    pub hash: Option<String>,
    /// Ed25519 "pure": sign the whole region instead of the digest.
    #[serde(default)]
    pub pure: bool,
}

/// One image of a request: the region sent and what was parsed from it.
#[derive(Debug, Clone)]
pub struct SubmittedImage {
    /// The to-be-signed region.
    pub region: Vec<u8>,
    /// What the service parsed from it.
    pub parsed: ParsedImage,
}

impl SignRequest {
    /// The image hash the request names (SHA-256 by default, SHA-512 for pure).
    ///
    /// # Errors
    /// [`RequestError::Hash`] for another name.
    pub fn hash_algorithm(&self) -> Result<HashAlgorithm, RequestError> {
        match (self.hash.as_deref(), self.pure) {
            (None, false) | (Some("sha256"), false) => Ok(HashAlgorithm::Sha256),
            (None, true) | (Some("sha512"), _) => Ok(HashAlgorithm::Sha512),
            (Some(other), _) => Err(RequestError::Hash(other.to_owned())),
        }
    }
}

/// Decodes the JSON body and parses every image.
///
/// # Errors
/// [`RequestError`] naming the field or the image.
pub fn decode(body: &[u8]) -> Result<(SignRequest, Vec<SubmittedImage>), RequestError> {
    let request: SignRequest =
        serde_json::from_slice(body).map_err(|e| RequestError::Json(e.to_string()))?;
    if request.images.is_empty() {
        return Err(RequestError::NoImages);
    }
    let hash = request.hash_algorithm()?;
    let mut images = Vec::with_capacity(request.images.len());
    for (index, encoded) in request.images.iter().enumerate() {
        let region = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| RequestError::Base64 { index, reason: e.to_string() })?;
        let parsed =
            tbs::parse(&region, hash).map_err(|error| RequestError::Image { index, error })?;
        images.push(SubmittedImage { region, parsed });
    }
    Ok((request, images))
}
