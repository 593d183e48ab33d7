//! Where the service keeps API tokens and the audit trail, behind one trait.
//!
//! [`Storage`] is all the service asks of a database; [`sqlite::SqliteStorage`] is the
//! embedded default (`database = "sqlite:PATH"`). Another backend (PostgreSQL) implements the
//! same trait. An append returns only once the record is durable (SQLite: WAL with
//! `synchronous=FULL`), because the service replies with a signature only after that.
//!
//! The transparency log lives here too (its leaves, stored hashes and signed checkpoints), so
//! a signature's audit record and its log leaves commit together or not at all; the log's
//! arithmetic is [`crate::log`]'s, the SQL is the backend's.

pub mod sqlite;

use std::future::Future;

use crate::approvals::{PendingRequest, RequestStatus};
use crate::audit::{AuditEntry, AuditRecord};
use crate::key_state::KeyState;
use crate::tokens::{Role, TokenRecord};
use fwsign_tlog::note::NoteSigner;
use verifier_core::tlog::TreeHash;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(String),
    /// A token with this name exists already.
    #[error("an API token named \"{0}\" exists already (revoke it first)")]
    DuplicateToken(String),
    /// A key's state may only move forward (active → retired → revoked).
    #[error("key \"{key}\" is {current} already; it cannot become {wanted}")]
    KeyStateBackwards {
        /// The key's name.
        key: String,
        /// Its stored state.
        current: KeyState,
        /// The state asked for.
        wanted: KeyState,
    },
    /// A stored row could not be read back.
    #[error("database holds an unreadable row: {0}")]
    Corrupt(String),
    /// The transparency log could not be appended to.
    #[error("transparency log: {0}")]
    Log(#[from] fwsign_tlog::TlogError),
}

/// The log leaves a signature adds, and the key that signs the log's new checkpoint.
pub struct LogAppend<'a> {
    /// One `fwsign-entry/v1` text per signed image.
    pub entries: &'a [String],
    /// The log key.
    pub signer: &'a (dyn NoteSigner + Sync),
}

/// What the service stores.
pub trait Storage: Send + Sync + 'static {
    /// Stores a new token (its hash only).
    fn insert_token(
        &self,
        token: &TokenRecord,
        hash: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// The live (not revoked) token with this hash.
    fn find_token(
        &self,
        hash: &str,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StorageError>> + Send;

    /// Revokes the token named `name`; whether there was one.
    fn revoke_token(&self, name: &str) -> impl Future<Output = Result<bool, StorageError>> + Send;

    /// Appends a record to the audit chain, durably, and returns it.
    fn append_audit(
        &self,
        entry: &AuditEntry,
    ) -> impl Future<Output = Result<AuditRecord, StorageError>> + Send;

    /// Appends a record to the audit chain and `log`'s entries to the transparency log in one
    /// transaction (the log's size read and its leaves inserted by one writer), signs the new
    /// checkpoint, and returns the record and each entry's `tlog-proof@v1` text.
    fn append_audit_logged(
        &self,
        entry: &AuditEntry,
        log: &LogAppend<'_>,
    ) -> impl Future<Output = Result<(AuditRecord, Vec<String>), StorageError>> + Send;

    /// The newest signed checkpoint of the transparency log, if it has one.
    fn log_checkpoint(&self) -> impl Future<Output = Result<Option<String>, StorageError>> + Send;

    /// Stores a signed checkpoint (the empty log's, at start-up).
    fn insert_log_checkpoint(
        &self,
        size: u64,
        note: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// The log's stored hashes at `indexes`, in order.
    fn log_hashes(
        &self,
        indexes: &[u64],
    ) -> impl Future<Output = Result<Vec<TreeHash>, StorageError>> + Send;

    /// The log's entries `first..first + count`.
    fn log_entries(
        &self,
        first: u64,
        count: u64,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StorageError>> + Send;

    /// The records with `seq > after`, oldest first, at most `limit`.
    fn audit_records(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StorageError>> + Send;

    /// Stores a new request that waits for approval.
    fn create_request(
        &self,
        request: &PendingRequest,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// The request with this id.
    fn find_request(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<PendingRequest>, StorageError>> + Send;

    /// The newest pending or signed request with this fingerprint.
    fn find_request_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> impl Future<Output = Result<Option<PendingRequest>, StorageError>> + Send;

    /// Records `approver`'s approval (once, however often given); returns every approver.
    fn add_approval(
        &self,
        id: &str,
        approver: &str,
    ) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send;

    /// Ends a pending request: signed (with its reply), denied or expired.
    fn finish_request(
        &self,
        id: &str,
        status: RequestStatus,
        result: Option<&str>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// The life-cycle state of the key named `key` ([`KeyState::Active`] if never changed).
    fn key_state(&self, key: &str) -> impl Future<Output = Result<KeyState, StorageError>> + Send;

    /// Moves the key named `key` to `state`; [`StorageError::KeyStateBackwards`] if it is past
    /// it already. Setting the state it has is a no-op.
    fn set_key_state(
        &self,
        key: &str,
        state: KeyState,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// The highest security counter of any image signed with `key` (0 if none).
    fn highest_security_counter(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<u32, StorageError>> + Send;
}

/// A role name as stored.
pub(crate) fn role_from_name(name: &str) -> Result<Role, StorageError> {
    name.parse().map_err(|_| StorageError::Corrupt(format!("unknown role \"{name}\"")))
}
