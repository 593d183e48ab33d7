//! Who is asking: the `Authorization: Bearer` credential, resolved to a policy principal.

use axum::http::HeaderMap;

use super::AppState;
use super::error::ApiError;
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
/// [`ApiError::Unauthenticated`] saying what is wrong; [`ApiError::Unavailable`] if storage fails.
pub(super) async fn authenticate<S: Storage>(
    headers: &HeaderMap,
    state: &AppState<S>,
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
        return workload(credential, state).await;
    }
    let record = state
        .storage
        .find_token(&tokens::hash(credential))
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("unknown or revoked API token".into()))?;
    let groups = state.config.groups_of(&record.name, record.group.as_deref());
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

/// A CI job, by its OIDC identity token.
async fn workload<S: Storage>(token: &str, state: &AppState<S>) -> Result<Caller, ApiError> {
    let issuers = state.issuers.clone();
    let token = token.to_owned();
    let identity = tokio::task::spawn_blocking(move || issuers.verify(&token))
        .await
        .map_err(|e| ApiError::Internal(format!("identity check: {e}")))?
        .map_err(|e| ApiError::Unauthenticated(e.to_string()))?;
    let audit = serde_json::json!({
        "kind": "oidc",
        "issuer_name": identity.issuer_name,
        "claims": identity.claims,
    });
    Ok(Caller {
        principal: Principal::Workload {
            issuer_name: identity.issuer_name,
            claims: identity.claims,
        },
        role: Role::Submitter,
        identity: audit,
    })
}
