//! The body of `POST /v1/sign`, decoded: the one place the request format is read.
//!
//! A request comes in one of two encodings:
//! - **binary** (`Content-Type: application/octet-stream`): the body is one to-be-signed
//!   region as it is, and the key and mode are the query string, `?key=NAME&hash=sha256|sha512
//!   &pure=true|false` ([`SignOptions`]). Nothing is escaped or re-encoded, so this is what a
//!   client signing one image sends ([`decode_binary`]).
//! - **JSON**: `{"key": NAME, "images": [base64 to-be-signed region, …], "hash":
//!   "sha256"|"sha512" (optional), "pure": bool (optional)}` ([`SignRequest`]), for several
//!   images decided and signed together ([`decode_json`]). It is also the form a request
//!   waiting for approval is stored and shown in ([`encode_json`]).
//!
//! Unknown fields are refused in both. Every image is parsed with [`tbs::parse`]. This module
//! needs no server, so it is fuzzed on its own (`fuzz/fuzz_targets/service_request.rs`).

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
    /// The query string of a binary request is not what the API defines.
    #[error(
        "query string: {0} (expected key=NAME, and optionally hash=sha256|sha512, pure=true|false)"
    )]
    Query(String),
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

/// The key and mode a request names: the query string of a binary request, and the JSON
/// body's fields besides `images`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOptions {
    /// The key's name.
    pub key: String,
    /// The image hash (default SHA-256; SHA-512 for pure).
    #[serde(default)]
    pub hash: Option<String>,
    /// Ed25519 "pure": sign the whole region instead of the digest.
    #[serde(default)]
    pub pure: bool,
}

impl SignOptions {
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

/// A signing request as JSON.
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
    /// Decodes every image and parses it.
    ///
    /// # Errors
    /// [`RequestError`] naming the field or the image.
    pub fn decode(self) -> Result<(SignOptions, Vec<SubmittedImage>), RequestError> {
        let Self { key, images, hash, pure } = self;
        if images.is_empty() {
            return Err(RequestError::NoImages);
        }
        let options = SignOptions { key, hash, pure };
        let hash = options.hash_algorithm()?;
        let images = images
            .iter()
            .enumerate()
            .map(|(index, encoded)| {
                let region = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|e| RequestError::Base64 { index, reason: e.to_string() })?;
                submitted(index, region, hash)
            })
            .collect::<Result<_, _>>()?;
        Ok((options, images))
    }
}

/// Decodes a JSON body and parses every image.
///
/// # Errors
/// [`RequestError`] naming the field or the image.
pub fn decode_json(body: &[u8]) -> Result<(SignOptions, Vec<SubmittedImage>), RequestError> {
    let request: SignRequest =
        serde_json::from_slice(body).map_err(|e| RequestError::Json(e.to_string()))?;
    request.decode()
}

/// Decodes a binary request: `query` (without the `?`) names the key and mode, `region` is
/// the one to-be-signed region.
///
/// # Errors
/// [`RequestError`] naming the query field or the image (as `images[0]`).
pub fn decode_binary(
    query: &str,
    region: Vec<u8>,
) -> Result<(SignOptions, Vec<SubmittedImage>), RequestError> {
    let options: SignOptions =
        serde_urlencoded::from_str(query).map_err(|e| RequestError::Query(e.to_string()))?;
    let hash = options.hash_algorithm()?;
    let image = submitted(0, region, hash)?;
    Ok((options, vec![image]))
}

/// The JSON form of a decoded request, which [`decode_json`] decodes to the same request.
pub fn encode_json(options: &SignOptions, images: &[SubmittedImage]) -> String {
    let base64 = &base64::engine::general_purpose::STANDARD;
    let request = SignRequest {
        key: options.key.clone(),
        images: images.iter().map(|image| base64.encode(&image.region)).collect(),
        hash: options.hash.clone(),
        pure: options.pure,
    };
    serde_json::to_string(&request).unwrap_or_default()
}

/// Image number `index` of a request, parsed.
fn submitted(
    index: usize,
    region: Vec<u8>,
    hash: HashAlgorithm,
) -> Result<SubmittedImage, RequestError> {
    let parsed = tbs::parse(&region, hash).map_err(|error| RequestError::Image { index, error })?;
    Ok(SubmittedImage { region, parsed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tbs::tests::region;

    #[test]
    fn both_encodings_decode_to_the_same_request() {
        let image = region(100, 7);
        let (binary, from_binary) =
            decode_binary("key=release&hash=sha512&pure=true", image.clone()).expect("binary");
        let json = encode_json(&binary, &from_binary);
        let (options, from_json) = decode_json(json.as_bytes()).expect("JSON");
        assert_eq!(options, binary);
        assert_eq!(options.hash_algorithm().ok(), Some(HashAlgorithm::Sha512));
        assert_eq!(from_json[0].region, image);
        assert_eq!(from_json[0].parsed, from_binary[0].parsed);
    }

    #[test]
    fn a_bad_query_string_is_refused_naming_what_is_wrong() {
        let image = region(100, 7);
        for (query, expected) in [
            ("", "missing field `key`"),
            ("key=dev&digest=00", "unknown field `digest`"),
            ("key=dev&pure=yes", "query string"),
            ("key=dev&hash=md5", "field hash"),
        ] {
            let error = decode_binary(query, image.clone()).map(|_| ()).unwrap_err().to_string();
            assert!(error.contains(expected), "{query}: {error}");
        }
        let error = decode_binary("key=dev", image[..40].to_vec()).map(|_| ()).unwrap_err();
        assert!(error.to_string().starts_with("images[0]: "), "{error}");
    }
}
