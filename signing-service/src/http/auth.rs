//! Who is asking: the `Authorization: Bearer` credential, resolved to a policy principal.

use axum::http::HeaderMap;

use super::error::ApiError;
use crate::config::ServiceConfig;
use crate::policy::Principal;
use crate::storage::Storage;
use crate::tokens::{self, Role, TOKEN_PREFIX};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    /// What the policy sees.
    pub(super) principal: Principal,
    /// The API role (workloads are submitters).
    pub(super) role: Role,
    /// Every verified attribute, for the audit record.
    pub(super) identity: serde_json::Value,
}

impl Caller {
    /// Refuses unless the caller's role includes `wanted`.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`].
    pub(super) fn require(&self, wanted: Role) -> Result<(), ApiError> {
        if self.role.allows(wanted) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {wanted} role; the token's role is {}",
                self.role
            )))
        }
    }
}

/// Authenticates the request's bearer credential.
///
/// # Errors
/// [`ApiError::Unauthenticated`] saying what is wrong; [`ApiError::Internal`] if storage fails.
pub(super) async fn authenticate<S: Storage>(
    headers: &HeaderMap,
    storage: &S,
    config: &ServiceConfig,
) -> Result<Caller, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthenticated("no Authorization: Bearer header".into()))?;
    let credential = header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::Unauthenticated("expected Authorization: Bearer TOKEN".into()))?;
    if !credential.starts_with(TOKEN_PREFIX) {
        return Err(ApiError::Unauthenticated(
            "OIDC identity tokens are not accepted by this version of the service; use an API token (fwsign token create)".into(),
        ));
    }
    let record = storage
        .find_token(&tokens::hash(credential))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| ApiError::Unauthenticated("unknown or revoked API token".into()))?;
    let groups = config.groups_of(&record.name, record.group.as_deref());
    let identity = serde_json::json!({
        "kind": "api-token",
        "name": record.name,
        "role": record.role.name(),
        "groups": groups,
    });
    Ok(Caller {
        principal: Principal::Client {
            name: record.name,
            role: record.role.name().to_owned(),
            groups,
        },
        role: record.role,
        identity,
    })
}
