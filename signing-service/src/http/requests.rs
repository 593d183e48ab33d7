//! Requests that wait for approval: submit (from `POST /v1/sign`), `GET /v1/requests/ID`,
//! `GET /v1/requests/ID/images` (the regions submitted, to finish the images later),
//! `POST /v1/requests/ID/approve`, `POST /v1/requests/ID/deny`.
//!
//! Rules: approvers hold the approver role and are members of the key's `approvers` group;
//! the requester never approves its own request; an approver counts once; one deny ends the
//! request; a request not approved before it expires is dead. When the last approval arrives
//! the policy is asked again with the real count, then the images are signed and recorded.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::sign::{Outcome, SignResponse, decide, sign_and_record};
use super::{ApiError, AppState, RequestContext, context, unix_now};
use crate::approvals::{PendingRequest, RequestStatus, fingerprint, new_id};
use crate::audit::Decision;
use crate::policy::Principal;
use crate::request::{self, SignOptions, SubmittedImage};
use crate::storage::Storage;
use crate::tokens::Role;

/// A request as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestView {
    /// The request id.
    pub request: String,
    /// The key.
    pub key: String,
    /// Where it stands.
    pub status: RequestStatus,
    /// Who approved so far.
    pub approvals: Vec<String>,
    /// How many approvals the key needs.
    pub needed: u32,
    /// The group that approves.
    pub approvers: String,
    /// When it expires, Unix seconds.
    pub expires: u64,
    /// The signatures, once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<SignResponse>,
}

fn internal(error: impl ToString) -> ApiError {
    ApiError::Internal(error.to_string())
}

impl<S: Storage> AppState<S> {
    fn view(&self, request: &PendingRequest) -> RequestView {
        let key = self.keys.get(&request.key);
        RequestView {
            request: request.id.clone(),
            key: request.key.clone(),
            status: request.status,
            approvals: request.approvers.clone(),
            needed: key.map_or(0, |k| k.approvals),
            approvers: key.and_then(|k| k.approvers.clone()).unwrap_or_default(),
            expires: request.expires,
            result: request.result.as_deref().and_then(|r| serde_json::from_str(r).ok()),
        }
    }

    /// The request, marked expired (and refused) if its time is up.
    async fn live_request(
        &self,
        context: &mut RequestContext,
        id: &str,
    ) -> Result<PendingRequest, ApiError> {
        let request = self
            .storage
            .find_request(id)
            .await?
            .ok_or_else(|| ApiError::UnknownRequest(id.to_owned()))?;
        context.key = Some(request.key.clone());
        if request.status == RequestStatus::Pending && unix_now() > request.expires {
            self.storage.finish_request(id, RequestStatus::Expired, None).await?;
            return Err(ApiError::Expired(format!("request {id} expired before it was approved")));
        }
        if request.status != RequestStatus::Pending {
            return Err(ApiError::Conflict(format!("request {id} is {}", request.status.name())));
        }
        Ok(request)
    }
}

/// Stores a permitted request for a key that needs approvals, or attaches to the same one.
pub(super) async fn submit<S: Storage>(
    state: &AppState<S>,
    context: &mut RequestContext,
    caller: &Caller,
    request: &SignOptions,
    images: &[SubmittedImage],
) -> Result<Outcome, ApiError> {
    let requester = caller.principal.label();
    let digests: Vec<&[u8]> = images.iter().map(|i| i.parsed.digest.as_slice()).collect();
    let fingerprint = fingerprint(&requester, &request.key, &digests);
    if let Some(existing) = state.storage.find_request_by_fingerprint(&fingerprint).await? {
        let live = existing.status == RequestStatus::Pending && unix_now() <= existing.expires;
        if existing.status == RequestStatus::Signed {
            let view = state.view(&existing);
            let reply =
                view.result.ok_or_else(|| internal("a signed request without its reply"))?;
            let reason =
                format!("re-run: request {} is signed; its signatures were returned", existing.id);
            state.record(context, Decision::Fetched, reason).await?;
            return Ok(Outcome::Signed(reply));
        }
        if live {
            let reason = format!("re-run attached to pending request {}", existing.id);
            state.record(context, Decision::Pending, reason).await?;
            return Ok(Outcome::Pending(state.view(&existing)));
        }
    }
    let now = unix_now();
    let pending = PendingRequest {
        id: new_id().map_err(internal)?,
        key: request.key.clone(),
        requester,
        principal: serde_json::to_string(&caller.principal).map_err(internal)?,
        body: request::encode_json(request, images),
        fingerprint,
        status: RequestStatus::Pending,
        created: now,
        expires: now.saturating_add(state.config.pending_expiry.as_secs()),
        approvers: Vec::new(),
        result: None,
    };
    state.storage.create_request(&pending).await?;
    let view = state.view(&pending);
    let reason = format!(
        "request {} waits for {} approvals from {} ({})",
        pending.id, view.needed, view.approvers, context.reason
    );
    state.record(context, Decision::Pending, reason).await?;
    Ok(Outcome::Pending(view))
}

/// Checks that `caller` may act on `request` as an approver.
fn check_approver<S: Storage>(
    state: &AppState<S>,
    caller: &Caller,
    request: &PendingRequest,
) -> Result<(), ApiError> {
    caller.require(Role::Approver)?;
    let group = state.keys.get(&request.key).and_then(|k| k.approvers.clone()).unwrap_or_default();
    if caller.principal.label() == request.requester {
        return Err(ApiError::Forbidden(format!(
            "request {}: the requester cannot approve or deny its own request",
            request.id
        )));
    }
    if !caller.principal.in_group(&group) {
        return Err(ApiError::Forbidden(format!(
            "request {}: approvals for key \"{}\" come from group {group}, and {} is not in it",
            request.id,
            request.key,
            caller.principal.label()
        )));
    }
    Ok(())
}

async fn approve<S: Storage>(
    state: &AppState<S>,
    context: &mut RequestContext,
    id: &str,
) -> Result<RequestView, ApiError> {
    let caller = state.caller(context).await?;
    let mut request = state.live_request(context, id).await?;
    check_approver(state, &caller, &request)?;
    request.approvers = state.storage.add_approval(id, &caller.principal.label()).await?;
    let needed = state.keys.get(&request.key).map_or(0, |k| k.approvals);
    let count = u32::try_from(request.approvers.len()).unwrap_or(u32::MAX);
    if count < needed {
        let reason = format!("request {id}: approval {count} of {needed}");
        state.record(context, Decision::Approved, reason).await?;
        return Ok(state.view(&request));
    }
    let (sign_request, images) = request::decode_json(request.body.as_bytes())
        .map_err(|e| internal(format!("request {id} as stored: {e}")))?;
    context.images = images.iter().map(|i| super::sign::image_record(&i.parsed)).collect();
    let principal: Principal = serde_json::from_str(&request.principal).map_err(internal)?;
    let lock = state
        .key_locks
        .get(&request.key)
        .ok_or_else(|| ApiError::UnknownKey(request.key.clone()))?;
    let _serialised = lock.lock().await;
    let decided = decide(state, &principal, &request.key, &images, count).await;
    let policies = match decided {
        Ok(policies) => policies,
        Err(refusal) => {
            state.storage.finish_request(id, RequestStatus::Denied, None).await?;
            return Err(refusal);
        }
    };
    context.reason = format!(
        "request {id} of {} approved by {}; {policies}",
        request.requester,
        request.approvers.join(", ")
    );
    let reply = sign_and_record(state, context, &principal, &sign_request, images).await?;
    let stored = serde_json::to_string(&reply).map_err(internal)?;
    state.storage.finish_request(id, RequestStatus::Signed, Some(&stored)).await?;
    request.status = RequestStatus::Signed;
    request.result = Some(stored);
    Ok(state.view(&request))
}

async fn deny<S: Storage>(
    state: &AppState<S>,
    context: &mut RequestContext,
    id: &str,
) -> Result<RequestView, ApiError> {
    let caller = state.caller(context).await?;
    let mut request = state.live_request(context, id).await?;
    check_approver(state, &caller, &request)?;
    state.storage.finish_request(id, RequestStatus::Denied, None).await?;
    let reason = format!("request {id} denied by {}", caller.principal.label());
    state.record(context, Decision::Denied, reason).await?;
    request.status = RequestStatus::Denied;
    Ok(state.view(&request))
}

async fn show<S: Storage>(
    state: &AppState<S>,
    context: &mut RequestContext,
    id: &str,
) -> Result<RequestView, ApiError> {
    Ok(state.view(&visible_request(state, context, id).await?))
}

/// The request, whatever its status, if the caller is its requester, an approver or an auditor.
async fn visible_request<S: Storage>(
    state: &AppState<S>,
    context: &mut RequestContext,
    id: &str,
) -> Result<PendingRequest, ApiError> {
    let caller = state.caller(context).await?;
    let request = match state.live_request(context, id).await {
        Ok(request) => request,
        Err(ApiError::Conflict(_) | ApiError::Expired(_)) => state
            .storage
            .find_request(id)
            .await?
            .ok_or_else(|| ApiError::UnknownRequest(id.to_owned()))?,
        Err(other) => return Err(other),
    };
    let entitled = caller.principal.label() == request.requester
        || caller.role.allows(Role::Approver)
        || caller.role.allows(Role::Auditor);
    if !entitled {
        return Err(ApiError::Forbidden(format!("request {id} is not yours")));
    }
    Ok(request)
}

/// `GET /v1/requests/ID/images`: the sign request as submitted (JSON, as `POST /v1/sign`
/// took it), so that its images can be finished once it is signed.
pub(super) async fn images<S: Storage>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(source): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut context = context(headers, source);
    match visible_request(&state, &mut context, &id).await {
        Ok(request) => ([("content-type", "application/json")], request.body).into_response(),
        Err(error) => state.refuse(&context, error).await,
    }
}

/// Which action a route performs on a request.
#[derive(Debug, Clone, Copy)]
pub(super) enum Action {
    Show,
    Approve,
    Deny,
}

pub(super) async fn handler<S: Storage>(
    action: Action,
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(source): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    _body: Body,
) -> Response {
    let mut context = context(headers, source);
    let result = match action {
        Action::Show => show(&state, &mut context, &id).await,
        Action::Approve => approve(&state, &mut context, &id).await,
        Action::Deny => deny(&state, &mut context, &id).await,
    };
    match result {
        Ok(view) => Json(view).into_response(),
        Err(error) => state.refuse(&context, error).await,
    }
}
