//! Reading stored rows back, the same for every backend: a column's text, number or bytes,
//! and the records built from them.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{StorageError, db, role_from_name};
use crate::approvals::{PendingRequest, RequestStatus};
use crate::audit::AuditRecord;
use crate::key_state::KeyState;
use crate::tokens::TokenRecord;
use verifier_core::tlog::TreeHash;

/// A row of any backend whose columns hold text, integers and bytes.
pub(crate) trait StoredRow {
    /// A text column.
    fn text(&self, column: &str) -> Result<String, StorageError>;
    /// A text column that may be NULL.
    fn optional_text(&self, column: &str) -> Result<Option<String>, StorageError>;
    /// An integer column.
    fn integer(&self, column: &str) -> Result<i64, StorageError>;
    /// A byte column.
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StorageError>;

    /// A non-negative integer column.
    fn unsigned(&self, column: &str) -> Result<u64, StorageError> {
        let value = self.integer(column)?;
        u64::try_from(value).map_err(|_| StorageError::Corrupt(format!("{column} {value}")))
    }
}

impl<R> StoredRow for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String, StorageError> {
        self.try_get(column).map_err(db)
    }

    fn optional_text(&self, column: &str) -> Result<Option<String>, StorageError> {
        self.try_get(column).map_err(db)
    }

    fn integer(&self, column: &str) -> Result<i64, StorageError> {
        self.try_get(column).map_err(db)
    }

    fn bytes(&self, column: &str) -> Result<Vec<u8>, StorageError> {
        self.try_get(column).map_err(db)
    }
}

/// The highest security counter signed, from the row with `security_counter` found for it
/// (0 when none was found).
pub(crate) fn highest_security_counter(row: Option<&impl StoredRow>) -> Result<u32, StorageError> {
    let highest = row.map_or(Ok(0), |row| row.integer("security_counter"))?;
    u32::try_from(highest).map_err(|_| StorageError::Corrupt(format!("security counter {highest}")))
}

/// An audit record from a row with `seq, prev_hash, hash, body`.
pub(crate) fn audit_record(row: &impl StoredRow) -> Result<AuditRecord, StorageError> {
    Ok(AuditRecord {
        seq: row.unsigned("seq")?,
        prev_hash: row.text("prev_hash")?,
        hash: row.text("hash")?,
        body: row.text("body")?,
    })
}

/// A request from a row with [`REQUEST_COLUMNS`] and its `approvers`.
pub(crate) fn pending_request(
    row: &impl StoredRow,
    approvers: Vec<String>,
) -> Result<PendingRequest, StorageError> {
    let id = row.text("id")?;
    let status = row.text("status")?;
    Ok(PendingRequest {
        key: row.text("key")?,
        requester: row.text("requester")?,
        principal: row.text("principal")?,
        body: row.text("body")?,
        fingerprint: row.text("fingerprint")?,
        status: RequestStatus::from_name(&status)
            .ok_or_else(|| StorageError::Corrupt(format!("request {id}: status {status}")))?,
        created: row.unsigned("created")?,
        expires: row.unsigned("expires")?,
        result: row.optional_text("result")?,
        approvers,
        id,
    })
}

/// The columns of a request row.
pub(crate) const REQUEST_COLUMNS: &str =
    "id, key, requester, principal, body, fingerprint, status, created, expires, result";

/// A stored log hash from a row with `idx, hash`.
pub(crate) fn log_hash(row: &impl StoredRow) -> Result<(u64, TreeHash), StorageError> {
    let index = row.unsigned("idx")?;
    let hash = row.bytes("hash")?;
    let hash = TreeHash::try_from(hash.as_slice())
        .map_err(|_| StorageError::Corrupt(format!("log hash {index}")))?;
    Ok((index, hash))
}

/// A token from a row with `name, role, grp`.
pub(crate) fn token_record(row: &impl StoredRow) -> Result<TokenRecord, StorageError> {
    Ok(TokenRecord {
        name: row.text("name")?,
        role: role_from_name(&row.text("role")?)?,
        group: row.optional_text("grp")?,
    })
}

/// The state of the key named `key` from its `key_states` row.
pub(crate) fn key_state(row: &impl StoredRow, key: &str) -> Result<KeyState, StorageError> {
    let state = row.text("state")?;
    KeyState::from_name(&state)
        .ok_or_else(|| StorageError::Corrupt(format!("key {key}: state \"{state}\"")))
}

/// The audit chain's head (its `seq` and `hash`) from the newest record's row.
pub(crate) fn chain_head(row: &impl StoredRow) -> Result<(i64, String), StorageError> {
    Ok((row.integer("seq")?, row.text("hash")?))
}
