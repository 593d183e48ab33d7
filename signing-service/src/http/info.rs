//! `GET /v1/info`: what a client needs to know before it asks, such as which audience to
//! request an identity token for.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::storage::Storage;

/// The service as the API describes it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// The trusted OIDC issuers, by name.
    pub issuers: Vec<IssuerInfo>,
}

/// One trusted OIDC issuer.
#[derive(Debug, Serialize, Deserialize)]
pub struct IssuerInfo {
    /// The configured name (`[issuers.NAME]`).
    pub name: String,
    /// The exact `iss` an identity token must carry.
    pub issuer: String,
    /// The exact `aud` an identity token must carry.
    pub audience: String,
}

pub(super) async fn service_info<S: Storage>(
    State(state): State<Arc<AppState<S>>>,
) -> Json<ServiceInfo> {
    let issuers = state.config.issuers.iter().map(|(name, issuer)| IssuerInfo {
        name: name.clone(),
        issuer: issuer.issuer.clone(),
        audience: issuer.audience.clone(),
    });
    Json(ServiceInfo { issuers: issuers.collect() })
}
