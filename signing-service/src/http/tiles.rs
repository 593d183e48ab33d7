//! The transparency log's public read API (C2SP `tlog-tiles`), unauthenticated:
//!
//! - `GET /log/checkpoint`: the newest signed checkpoint;
//! - `GET /log/tile/<L>/<N>[.p/<W>]`: hash tiles;
//! - `GET /log/tile/entries/<N>[.p/<W>]`: entry bundles.
//!
//! A full tile never changes, so it is cached for a year (`immutable`); a partial tile and
//! the checkpoint change as the log grows, so they are cached briefly. A tile past the newest
//! checkpoint's tree is 404, as is everything when the service keeps no log.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fwsign_tlog::checkpoint::CheckpointBody;
use fwsign_tlog::tiles::{TILE_HEIGHT, TILE_WIDTH, Tile, TileKind, encode_bundle};
use fwsign_tlog::tree::stored_hash_index;
use verifier_core::tlog::SignedNote;

use super::AppState;
use crate::storage::Storage;

/// `Cache-Control` of a full tile.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of a partial tile and of the checkpoint.
const SHORT_LIVED: &str = "public, max-age=5";

/// `GET /log/checkpoint`.
pub(super) async fn checkpoint<S: Storage>(State(state): State<Arc<AppState<S>>>) -> Response {
    match newest_checkpoint(&state).await {
        Ok((note, _)) => reply(note.into_bytes(), "text/plain; charset=utf-8", SHORT_LIVED),
        Err(response) => response,
    }
}

/// `GET /log/tile/{*path}`.
pub(super) async fn tile<S: Storage>(
    State(state): State<Arc<AppState<S>>>,
    Path(path): Path<String>,
) -> Response {
    let (_, size) = match newest_checkpoint(&state).await {
        Ok(newest) => newest,
        Err(response) => return response,
    };
    let tile = match Tile::parse_path(&format!("tile/{path}")) {
        Ok(tile) => tile,
        Err(e) => return (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
    };
    let end = tile.index * TILE_WIDTH + u64::from(tile.width);
    let available = match tile.kind {
        TileKind::Hashes { level } => size >> (u32::from(level) * TILE_HEIGHT),
        TileKind::Entries => size,
    };
    if end > available {
        let reason = format!("{}: past the log's {size} entries\n", tile.path());
        return (StatusCode::NOT_FOUND, reason).into_response();
    }
    let data = match tile.kind {
        TileKind::Hashes { level } => {
            let tree_level = u32::from(level) * TILE_HEIGHT;
            let indexes: Vec<u64> =
                (tile.index * TILE_WIDTH..end).map(|n| stored_hash_index(tree_level, n)).collect();
            state.storage.log_hashes(&indexes).await.map(|hashes| hashes.concat())
        }
        TileKind::Entries => {
            let first = tile.index * TILE_WIDTH;
            match state.storage.log_entries(first, end - first).await {
                Ok(entries) => encode_bundle(&entries).map_err(Into::into),
                Err(e) => Err(e),
            }
        }
    };
    let cache = if tile.is_full() { IMMUTABLE } else { SHORT_LIVED };
    match data {
        Ok(data) => reply(data, "application/octet-stream", cache),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// The newest checkpoint and its tree size; a 404 reply without a log.
async fn newest_checkpoint<S: Storage>(state: &AppState<S>) -> Result<(String, u64), Response> {
    let not_found = || (StatusCode::NOT_FOUND, "this service keeps no transparency log\n");
    if state.log.is_none() {
        return Err(not_found().into_response());
    }
    let internal = |e: String| (StatusCode::INTERNAL_SERVER_ERROR, e).into_response();
    let note = state
        .storage
        .log_checkpoint()
        .await
        .map_err(|e| internal(e.to_string()))?
        .ok_or_else(|| not_found().into_response())?;
    let size = SignedNote::parse(&note)
        .map_err(|e| e.to_string())
        .and_then(|parsed| CheckpointBody::parse(parsed.text()).map_err(|e| e.to_string()))
        .map_err(internal)?
        .size;
    Ok((note, size))
}

fn reply(body: Vec<u8>, content_type: &'static str, cache: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
