//! One error type for every refusal: an HTTP status and a reason the client can act on.
//!
//! A failure of something the service depends on (its database full or gone, its HSM token
//! unreadable) is a 503 with `Retry-After`, not a 500: the request was fine, nothing was
//! signed without a record, and the same request may be sent again once the fault clears.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};

use crate::audit::Decision;
use crate::key_state::KeyState;
use crate::storage::StorageError;

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
    /// The body's `Content-Type` is not one the route takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
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
    /// The database, a key's signer or the time-stamping authority failed: worth retrying
    /// after [`RETRY_AFTER_UNAVAILABLE`].
    #[error("{0}")]
    Unavailable(String),
    /// The caller or the key is over its rate limit; retry after the duration.
    #[error("rate limit: {0}")]
    RateLimited(String, Duration),
    /// Too many requests are in progress; retry after the duration.
    #[error("overloaded: {0}")]
    Overloaded(String, Duration),
    /// The service failed in a way a retry does not mend.
    #[error("{0}")]
    Internal(String),
}

/// How long a client waits before retrying after [`ApiError::Unavailable`].
pub(crate) const RETRY_AFTER_UNAVAILABLE: Duration = Duration::from_secs(1);

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
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::UnknownKey(_) | Self::UnknownRequest(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Expired(_) => StatusCode::GONE,
            Self::Unavailable(_) | Self::Overloaded(..) => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited(..) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// How the audit trail records it.
    pub fn decision(&self) -> Decision {
        match self {
            Self::PolicyDenied(_) => Decision::Denied,
            Self::Unavailable(_) | Self::Internal(_) => Decision::Failed,
            Self::Expired(_) => Decision::Expired,
            _ => Decision::Refused,
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Database(_) | StorageError::Log(_) => {
                Self::Unavailable(format!("audit trail unavailable: {error}"))
            }
            StorageError::DuplicateToken(_)
            | StorageError::KeyStateBackwards { .. }
            | StorageError::Corrupt(_)
            | StorageError::NewerSchema { .. } => Self::Internal(error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let reply = (self.status(), Json(serde_json::json!({ "error": self.to_string() })));
        match self.retry_after() {
            Some(after) => ([(RETRY_AFTER, retry_after_seconds(after))], reply).into_response(),
            None => reply.into_response(),
        }
    }
}

impl ApiError {
    /// How long the client should wait before trying again, for a refusal that passes.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited(_, after) | Self::Overloaded(_, after) => Some(*after),
            Self::Unavailable(_) => Some(RETRY_AFTER_UNAVAILABLE),
            _ => None,
        }
    }
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
fn retry_after_seconds(after: Duration) -> String {
    let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    seconds.max(1).to_string()
}
