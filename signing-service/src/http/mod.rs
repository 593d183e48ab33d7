//! The HTTP API (axum): routes, shared state, and the audit record every request leaves.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /healthz` | anyone | `ok` |
//! | `GET /metrics` | anyone | Prometheus counters of request outcomes |
//! | `GET /openapi.json` | anyone | the OpenAPI 3.1 description of the API ([`OPENAPI`]) |
//! | `POST /v1/sign` | submitter | sign to-be-signed regions ([`sign`]) |
//! | `GET /v1/audit?after=N&limit=M` | auditor | the hash-chained audit records |
//! | `POST /v1/factory/devices` | station | record a provisioned device in the audit trail ([`factory`]) |
//! | `GET /v1/requests/ID` | requester, approver, auditor | a request waiting for approval ([`requests`]) |
//! | `GET /v1/requests/ID/images` | requester, approver, auditor | the sign request as submitted |
//! | `POST /v1/requests/ID/approve`, `…/deny` | approver in the key's group | approve or deny it |
//! | `GET /v1/keys/NAME` | anyone | the key's algorithm, id and public key ([`keys`]) |
//! | `GET /v1/info` | anyone | the trusted OIDC issuers and their audiences ([`info`]) |
//! | `GET /log/checkpoint`, `GET /log/tile/…` | anyone | the transparency log as C2SP tiles ([`tiles`]) |
//!
//! Request bodies are read up to the configured `body_limit` (default
//! [`DEFAULT_BODY_LIMIT`](crate::config::DEFAULT_BODY_LIMIT), 16 MiB: a few MiB of image, or
//! less in base64 JSON); a larger body is refused with 413 and recorded like every other refusal.
//! `[limits]` ([`crate::limits`]) bounds the signing requests in progress (503 beyond it) and
//! rates them per identity and per key (429); both answers carry `Retry-After`.

mod auth;
mod error;
pub mod factory;
pub mod in_flight;
pub mod info;
pub mod keys;
pub mod requests;
pub mod sign;
pub mod tiles;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
pub use error::ApiError;
use serde::Deserialize;

use crate::audit::{AuditEntry, AuditRecord, Decision, ImageRecord};
use crate::config::ServiceConfig;
use crate::factory::ProvisionedDevice;
use crate::keyring::Keyring;
use crate::limits::{Limits, QUEUE_RETRY_AFTER};
use crate::log::LogSigner;
use crate::metrics::Metrics;
use crate::oidc::IssuerSet;
use crate::policy::PolicyEngine;
use crate::storage::Storage;
use crate::tokens::Role;
use fwsign_keys::timestamp::client::TsaClient;

/// The OpenAPI 3.1 description of this API, served at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Everything a handler needs.
#[derive(Debug)]
pub struct AppState<S> {
    /// The checked configuration.
    pub config: ServiceConfig,
    /// Tokens and audit trail.
    pub storage: S,
    /// The Cedar policies.
    pub policy: PolicyEngine,
    /// The signing keys.
    pub keys: Keyring,
    /// One lock per key: decisions with one key happen one at a time.
    pub key_locks: BTreeMap<String, tokio::sync::Mutex<()>>,
    /// The security counters of decided requests still signing.
    pub in_flight: in_flight::InFlight,
    /// Request counters.
    pub metrics: Metrics,
    /// The trusted OIDC issuers.
    pub issuers: Arc<IssuerSet>,
    /// The time-stamping authority, if one is configured.
    pub tsa: Option<TsaClient>,
    /// The transparency log's key, if signatures are logged (`[log]`).
    pub log: Option<LogSigner>,
    /// Rate limits and the request queue bound (`[limits]`).
    pub limits: Limits,
}

/// What is known about a request so far, for its audit record.
#[derive(Debug)]
pub(crate) struct RequestContext {
    headers: HeaderMap,
    source: SocketAddr,
    identity: serde_json::Value,
    key: Option<String>,
    images: Vec<ImageRecord>,
    reason: String,
    device: Option<ProvisionedDevice>,
}

impl<S: Storage> AppState<S> {
    /// Appends the request's audit record (durably) and counts it.
    async fn record(
        &self,
        context: &RequestContext,
        decision: Decision,
        reason: String,
    ) -> Result<AuditRecord, ApiError> {
        let entry = audit_entry(context, decision, reason, unix_now());
        let record = self.storage.append_audit(&entry).await?;
        self.metrics.count(decision);
        Ok(record)
    }

    /// Appends a signature's audit record and, in the same transaction, its log `entries`
    /// (made at `time`); returns the record and each entry's proof.
    async fn record_logged(
        &self,
        context: &RequestContext,
        log: &LogSigner,
        entries: &[String],
        time: u64,
    ) -> Result<(AuditRecord, Vec<String>), ApiError> {
        let entry = audit_entry(context, Decision::Signed, context.reason.clone(), time);
        let append = crate::storage::LogAppend { entries, signer: log };
        let recorded = self.storage.append_audit_logged(&entry, &append).await?;
        self.metrics.count(Decision::Signed);
        Ok(recorded)
    }

    /// Authenticates the request and notes who it is for the audit record.
    async fn caller(&self, context: &mut RequestContext) -> Result<auth::Caller, ApiError> {
        let caller = auth::authenticate(&context.headers, self).await?;
        context.identity = caller.identity.clone();
        Ok(caller)
    }

    /// Records a refusal and turns it into the reply.
    async fn refuse(&self, context: &RequestContext, error: ApiError) -> Response {
        match self.record(context, error.decision(), error.to_string()).await {
            Ok(_) => error.into_response(),
            Err(audit_failure) => audit_failure.into_response(),
        }
    }
}

fn audit_entry(
    context: &RequestContext,
    decision: Decision,
    reason: String,
    time: u64,
) -> AuditEntry {
    AuditEntry {
        time,
        identity: context.identity.clone(),
        source: context.source.to_string(),
        key: context.key.clone(),
        images: context.images.clone(),
        decision,
        reason,
        device: context.device.clone(),
    }
}

pub(crate) fn unix_now() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_secs())
}

/// The router over `state`.
pub fn router<S: Storage>(state: Arc<AppState<S>>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics::<S>))
        .route("/openapi.json", get(|| async { ([("content-type", "application/json")], OPENAPI) }))
        .route("/v1/sign", post(sign_handler::<S>))
        .route("/v1/audit", get(audit_handler::<S>))
        .route("/v1/factory/devices", post(factory::record_device::<S>))
        .route("/v1/keys/{name}", get(keys::key_info::<S>))
        .route("/v1/info", get(info::service_info::<S>))
        .route("/log/checkpoint", get(tiles::checkpoint::<S>))
        .route("/log/tile/{*path}", get(tiles::tile::<S>))
        .route(
            "/v1/requests/{id}",
            get(|s, c, p, h, b| requests::handler::<S>(requests::Action::Show, s, c, p, h, b)),
        )
        .route("/v1/requests/{id}/images", get(requests::images::<S>))
        .route(
            "/v1/requests/{id}/approve",
            post(|s, c, p, h, b| requests::handler::<S>(requests::Action::Approve, s, c, p, h, b)),
        )
        .route(
            "/v1/requests/{id}/deny",
            post(|s, c, p, h, b| requests::handler::<S>(requests::Action::Deny, s, c, p, h, b)),
        )
        .layer(axum::middleware::from_fn(run_to_completion))
        .with_state(state)
}

/// Runs each request in a task of its own, so a client that hangs up cannot cancel its
/// request half-way: a signature made is recorded, and an audit batch being written for
/// several requests ([`crate::storage`]'s group commit) is never abandoned with it.
async fn run_to_completion(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(e) => ApiError::Internal(format!("request task: {e}")).into_response(),
    }
}

async fn metrics<S: Storage>(State(state): State<Arc<AppState<S>>>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], state.metrics.render())
}

pub(crate) fn context(headers: HeaderMap, source: SocketAddr) -> RequestContext {
    RequestContext {
        headers,
        source,
        identity: serde_json::json!({ "kind": "unauthenticated" }),
        key: None,
        images: Vec::new(),
        reason: String::new(),
        device: None,
    }
}

async fn sign_handler<S: Storage>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut context = context(headers, source);
    let _place = match state.limits.queue.as_ref().map(tokio::sync::Semaphore::try_acquire) {
        Some(Err(_)) => {
            let full = "too many signing requests in progress; try again shortly".to_owned();
            return state.refuse(&context, ApiError::Overloaded(full, QUEUE_RETRY_AFTER)).await;
        }
        place => place,
    };
    let limit = state.config.body_limit;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(body) => Vec::from(body),
        Err(error) => return state.refuse(&context, unread_body(error, limit)).await,
    };
    let content_type = context.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let body = match sign::RequestBody::new(content_type, uri.query(), body) {
        Ok(body) => body,
        Err(error) => return state.refuse(&context, error).await,
    };
    match sign::sign(&state, &mut context, body).await {
        Ok(sign::Outcome::Signed(reply)) => Json(reply).into_response(),
        Ok(sign::Outcome::Pending(view)) => {
            (axum::http::StatusCode::ACCEPTED, Json(view)).into_response()
        }
        Err(error) => state.refuse(&context, error).await,
    }
}

/// Why a body could not be read: over the limit, or the client failed (left mid-body).
fn unread_body(error: axum::Error, limit: usize) -> ApiError {
    let error = error.into_inner();
    if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
        ApiError::TooLarge(limit)
    } else {
        ApiError::BadRequest(format!("the request body could not be read: {error}"))
    }
}

/// The audit query.
#[derive(Debug, Deserialize)]
struct AuditQuery {
    #[serde(default)]
    after: u64,
    #[serde(default)]
    limit: Option<u32>,
}

/// The most records one audit reply carries.
const AUDIT_PAGE: u32 = 1000;

async fn audit_handler<S: Storage>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> Response {
    let mut context = context(headers, source);
    let caller = match state.caller(&mut context).await {
        Ok(caller) => caller,
        Err(error) => return state.refuse(&context, error).await,
    };
    if let Err(error) = caller.require(Role::Auditor) {
        return state.refuse(&context, error).await;
    }
    let limit = query.limit.unwrap_or(AUDIT_PAGE).min(AUDIT_PAGE);
    match state.storage.audit_records(query.after, limit).await {
        Ok(records) => Json(records).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
