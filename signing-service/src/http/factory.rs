//! `POST /v1/factory/devices`: a factory station records a device it provisioned
//! ([`ProvisionedDevice`]) as a record of the audit trail. Station role only; a record that
//! is not well formed is refused with the field named, and the refusal is recorded too.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, RequestContext, context, unread_body};
use crate::audit::{AuditRecord, Decision};
use crate::factory::ProvisionedDevice;
use crate::storage::Storage;
use crate::tokens::Role;

/// The largest device record accepted: a few kilobytes of text at most.
const BODY_LIMIT: usize = 64 * 1024;

/// The reply: where the record sits in the audit trail.
#[derive(Debug, Serialize, Deserialize)]
pub struct Recorded {
    /// The audit record's sequence number.
    pub seq: u64,
}

/// Records the device in the body; 201 with its audit sequence number.
pub(super) async fn record_device<S: Storage>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut context = context(headers, source);
    match record(&state, &mut context, body).await {
        Ok(record) => (StatusCode::CREATED, Json(Recorded { seq: record.seq })).into_response(),
        Err(error) => state.refuse(&context, error).await,
    }
}

async fn record<S: Storage>(
    state: &AppState<S>,
    context: &mut RequestContext,
    body: Body,
) -> Result<AuditRecord, ApiError> {
    state.caller(context).await?.require(Role::Station)?;
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|error| unread_body(error, BODY_LIMIT))?;
    let device: ProvisionedDevice = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("device record: {e}")))?;
    device.check().map_err(|e| ApiError::BadRequest(format!("device record: {e}")))?;
    let reason = format!("station {} recorded device {}", device.station, device.identity);
    context.device = Some(device);
    state.record(context, Decision::Provisioned, reason).await
}
