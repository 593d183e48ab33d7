//! One error type for every refusal: an HTTP status and a reason the client can act on.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::audit::Decision;
use crate::key_state::KeyState;

/// Why a request was not answered with a signature.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// No credential, or one the service does not accept.
    #[error("{0}")]
    Unauthenticated(String),
    /// The credential's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The policy refused.
    #[error("policy denied: {0}")]
    PolicyDenied(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the configured limit.
    #[error("request body exceeds the limit of {0} bytes")]
    TooLarge(usize),
    /// The key is not configured.
    #[error("no key named \"{0}\" on this service")]
    UnknownKey(String),
    /// The key was retired or revoked (`fwsign key retire|revoke`).
    #[error("key \"{key}\" is {state}: the service signs nothing more with it")]
    KeyOutOfService {
        /// The key's name.
        key: String,
        /// Its state.
        state: KeyState,
    },
    /// No request with this id.
    #[error("no request {0}")]
    UnknownRequest(String),
    /// The request is no longer pending.
    #[error("{0}")]
    Conflict(String),
    /// The request expired before it was approved.
    #[error("{0}")]
    Expired(String),
    /// The service failed (signer, storage).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::PolicyDenied(_) | Self::KeyOutOfService { .. } => {
                StatusCode::FORBIDDEN
            }
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnknownKey(_) | Self::UnknownRequest(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Expired(_) => StatusCode::GONE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// How the audit trail records it.
    pub fn decision(&self) -> Decision {
        match self {
            Self::PolicyDenied(_) => Decision::Denied,
            Self::Internal(_) => Decision::Failed,
            Self::Expired(_) => Decision::Expired,
            _ => Decision::Refused,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}
