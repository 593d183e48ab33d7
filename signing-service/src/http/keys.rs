//! `GET /v1/keys/NAME`: a key's public half, so a client can build the image for it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::storage::Storage;

/// A key as the API describes it.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key's name.
    pub name: String,
    /// `ed25519` or `ecdsa-p256`.
    pub algorithm: String,
    /// SHA-256 of the SubjectPublicKeyInfo, hex.
    pub key_id: String,
    /// The SubjectPublicKeyInfo DER, base64.
    pub public_key: String,
}

pub(super) async fn key_info<S: Storage>(
    State(state): State<Arc<AppState<S>>>,
    Path(name): Path<String>,
) -> Response {
    let Some(key) = state.keys.get(&name) else {
        return ApiError::UnknownKey(name).into_response();
    };
    let public_key = key.public_key();
    Json(KeyInfo {
        algorithm: fwsign_keys::keys::Algorithm::of(&public_key).name().to_owned(),
        key_id: key.key_id(),
        public_key: base64::engine::general_purpose::STANDARD.encode(&*public_key.spki_der()),
        name,
    })
    .into_response()
}
