//! `POST /v1/sign`: parse, decide, sign, record, reply — in that order.
//!
//! The body is one to-be-signed region (`application/octet-stream`, the key and mode in the
//! query string) or JSON naming several (`application/json`); [`crate::request`] defines
//! both. Several images are decided and signed together: if any is refused, none is signed.
//! The reply is sent only after the audit record holding the signatures is durable.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::in_flight::Reservation;
use super::requests::RequestView;
use super::{AppState, RequestContext};
use crate::audit::{Decision, ImageRecord};
use crate::keyring::SignInput;
use crate::log::entry_for;
use crate::policy::{ImageFacts, Principal};
use crate::request::{self, SignOptions, SubmittedImage};
use crate::storage::Storage;
use crate::tbs::ParsedImage;
use crate::tokens::Role;

/// One signature in the reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct ImageSignature {
    /// The digest the service computed, hex.
    pub digest: String,
    /// The signature in the image's TLV encoding, base64.
    pub signature: String,
    /// The RFC 3161 token over the signature (base64 DER) when the service has a TSA; it
    /// goes into the image's unprotected TLV 0x00a1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The `tlog-proof@v1` text proving the signature is in the service's transparency log,
    /// when it keeps one; it goes into the image's unprotected TLV 0x00a2 (LOG_PROOF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_proof: Option<String>,
}

/// The reply to a granted request.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignResponse {
    /// The key's name.
    pub key: String,
    /// SHA-256 of the key's SubjectPublicKeyInfo, hex.
    pub key_id: String,
    /// The audit record holding this signature.
    pub audit_seq: u64,
    /// One per image, in request order.
    pub signatures: Vec<ImageSignature>,
}

/// A request body as read, in the encoding its `Content-Type` names.
#[derive(Debug)]
pub enum RequestBody {
    /// `application/json`, or no `Content-Type`.
    Json(Vec<u8>),
    /// `application/octet-stream`: one region, the key and mode in `query`.
    Binary {
        /// The query string, without the `?`.
        query: String,
        /// The to-be-signed region.
        region: Vec<u8>,
    },
}

impl RequestBody {
    /// Sorts a body by its media type (`content_type`, parameters ignored).
    ///
    /// # Errors
    /// [`ApiError::UnsupportedMediaType`] for another type, [`ApiError::BadRequest`] for a
    /// JSON body with a query string (JSON names its key in the body).
    pub fn new(
        content_type: Option<&str>,
        query: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Self, ApiError> {
        let media_type = content_type.map(|t| t.split(';').next().unwrap_or(t).trim());
        match media_type.map(str::to_ascii_lowercase).as_deref() {
            None | Some("application/json") if query.is_none_or(str::is_empty) => Ok(Self::Json(body)),
            None | Some("application/json") => Err(ApiError::BadRequest(
                "query string: a JSON request names its key in the body; the query string is for application/octet-stream".into(),
            )),
            Some("application/octet-stream") => {
                Ok(Self::Binary { query: query.unwrap_or_default().to_owned(), region: body })
            }
            Some(other) => Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type {other} is not accepted (expected application/octet-stream or application/json)"
            ))),
        }
    }

    /// Decodes the body and parses every image.
    ///
    /// # Errors
    /// [`ApiError::BadRequest`] naming the field or the image.
    pub fn decode(self) -> Result<(SignOptions, Vec<SubmittedImage>), ApiError> {
        match self {
            Self::Json(body) => request::decode_json(&body),
            Self::Binary { query, region } => request::decode_binary(&query, region),
        }
        .map_err(|e| ApiError::BadRequest(e.to_string()))
    }
}

/// What the trail records of an image before it is signed.
pub(super) fn image_record(parsed: &ParsedImage) -> ImageRecord {
    ImageRecord {
        digest: fwsign_keys::hex(&parsed.digest),
        version: parsed.header.version.to_string(),
        security_counter: parsed.security_counter,
        image_size: parsed.header.img_size,
        signature: None,
        timestamp: None,
    }
}

/// What a signing request came to.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Signed now (200).
    Signed(SignResponse),
    /// Waiting for approvals (202).
    Pending(RequestView),
}

/// Handles a signing request whose body has been read.
pub(super) async fn sign<S: Storage>(
    state: &AppState<S>,
    context: &mut RequestContext,
    body: RequestBody,
) -> Result<Outcome, ApiError> {
    let caller = state.caller(context).await?;
    caller.require(Role::Submitter)?;
    let (request, images) = body.decode()?;
    context.key = Some(request.key.clone());
    context.images = images.iter().map(|image| image_record(&image.parsed)).collect();
    within_limits(state, &caller.principal, &request.key)?;
    let key =
        state.keys.get(&request.key).ok_or_else(|| ApiError::UnknownKey(request.key.clone()))?;
    if key.approvals > 0 {
        // Decided as if approved; decided again with the real count when it is.
        context.reason =
            decide(state, &caller.principal, &request.key, &images, key.approvals).await?;
        return super::requests::submit(state, context, &caller, &request, &images).await;
    }
    let lock = state
        .key_locks
        .get(&request.key)
        .ok_or_else(|| ApiError::UnknownKey(request.key.clone()))?;
    // One decision at a time per key, each seeing the counters of those still signing.
    let _reserved = {
        let _serialised = lock.lock().await;
        context.reason = decide(state, &caller.principal, &request.key, &images, 0).await?;
        reserve(state, &request.key, &images)
    };
    sign_and_record(state, context, &caller.principal, &request, images).await.map(Outcome::Signed)
}

/// Takes a token from the caller's and the key's rate limits (known keys only).
///
/// # Errors
/// [`ApiError::RateLimited`] naming the limit and when to retry.
fn within_limits<S>(state: &AppState<S>, principal: &Principal, key: &str) -> Result<(), ApiError> {
    let limits = &state.limits;
    if let Some(limiter) = &limits.per_identity {
        let who = principal.label();
        limiter.take(&who).map_err(|after| {
            ApiError::RateLimited(format!("{who} is over the per-identity limit"), after)
        })?;
    }
    if let Some(limiter) = limits.per_key.as_ref().filter(|_| state.keys.contains_key(key)) {
        limiter.take(key).map_err(|after| {
            ApiError::RateLimited(format!("key \"{key}\" is over the per-key limit"), after)
        })?;
    }
    Ok(())
}

/// Reserves the highest security counter of `images` until they are recorded (or fail).
fn reserve<'a, S>(state: &'a AppState<S>, key: &str, images: &[SubmittedImage]) -> Reservation<'a> {
    let highest = images.iter().filter_map(|i| i.parsed.security_counter).max().unwrap_or(0);
    state.in_flight.reserve(key, highest)
}

/// Asks the policy about every image; the deciding policies, or the first refusal.
pub(super) async fn decide<S: Storage>(
    state: &AppState<S>,
    principal: &Principal,
    key: &str,
    images: &[SubmittedImage],
    approvals: u32,
) -> Result<String, ApiError> {
    let key_state = state.storage.key_state(key).await?;
    if !key_state.may_sign() {
        return Err(ApiError::KeyOutOfService { key: key.to_owned(), state: key_state });
    }
    let recorded = state.storage.highest_security_counter(key).await?;
    let highest = recorded.max(state.in_flight.highest(key));
    let mut reasons = Vec::new();
    for (index, SubmittedImage { parsed, .. }) in images.iter().enumerate() {
        let facts = ImageFacts::of(parsed, highest, approvals);
        let verdict = state.policy.decide(principal, key, &facts);
        if !verdict.allowed {
            return Err(ApiError::PolicyDenied(format!("images[{index}]: {}", verdict.reason)));
        }
        reasons.push(verdict.reason);
    }
    Ok(reasons.join("; "))
}

/// Signs every image (and stamps it), records the signatures durably (and logs them for
/// `requester`, when the service keeps a log), then returns them.
pub(super) async fn sign_and_record<S: Storage>(
    state: &AppState<S>,
    context: &mut RequestContext,
    requester: &Principal,
    request: &SignOptions,
    images: Vec<SubmittedImage>,
) -> Result<SignResponse, ApiError> {
    let key =
        state.keys.get(&request.key).ok_or_else(|| ApiError::UnknownKey(request.key.clone()))?;
    let key = key.clone();
    let pure = request.pure;
    let tsa = state.tsa.clone();
    let made = tokio::task::spawn_blocking(move || {
        images
            .into_iter()
            .map(|SubmittedImage { region, parsed }| {
                let input = if pure {
                    SignInput::Message(&region)
                } else {
                    SignInput::Digest(&parsed.digest)
                };
                let signature = key.sign(input).map_err(|e| format!("signing failed: {e}"))?;
                let timestamp = match &tsa {
                    Some(tsa) => Some(
                        tsa.stamp(&signature).map_err(|e| format!("time-stamping failed: {e}"))?,
                    ),
                    None => None,
                };
                Ok(Signed { parsed, signature, timestamp })
            })
            .collect::<Result<Vec<_>, String>>()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("signing worker: {e}")))?
    .map_err(ApiError::Unavailable)?;
    context.images = made.iter().map(Signed::record).collect();
    let key_id = state.keys.get(&request.key).map(|k| k.key_id()).unwrap_or_default();
    let (record, proofs) = match &state.log {
        Some(log) => {
            let time = super::unix_now();
            let entries = made
                .iter()
                .map(|signed| entry_for(requester, &request.key, &key_id, &signed.parsed, time))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::Internal(format!("log entry: {e}")))?;
            let (record, proofs) = state.record_logged(context, log, &entries, time).await?;
            (record, proofs.into_iter().map(Some).collect())
        }
        None => {
            let record = state.record(context, Decision::Signed, context.reason.clone()).await?;
            (record, vec![None; made.len()])
        }
    };
    Ok(SignResponse {
        key: request.key.clone(),
        key_id,
        audit_seq: record.seq,
        signatures: made.iter().zip(proofs).map(|(signed, proof)| signed.reply(proof)).collect(),
    })
}

/// One image signed (and stamped), not yet recorded.
struct Signed {
    parsed: ParsedImage,
    signature: Vec<u8>,
    timestamp: Option<Vec<u8>>,
}

impl Signed {
    fn record(&self) -> ImageRecord {
        ImageRecord {
            signature: Some(fwsign_keys::hex(&self.signature)),
            timestamp: self
                .timestamp
                .as_deref()
                .map(|t| base64::engine::general_purpose::STANDARD.encode(t)),
            ..image_record(&self.parsed)
        }
    }

    fn reply(&self, log_proof: Option<String>) -> ImageSignature {
        let base64 = &base64::engine::general_purpose::STANDARD;
        ImageSignature {
            digest: fwsign_keys::hex(&self.parsed.digest),
            signature: base64.encode(&self.signature),
            timestamp: self.timestamp.as_deref().map(|t| base64.encode(t)),
            log_proof,
        }
    }
}
