//! Where the service keeps API tokens and the audit trail, behind one trait.
//!
//! [`Storage`] is all the service asks of a database; [`sqlite::SqliteStorage`] is the
//! embedded default (`database = "sqlite:PATH"`), [`postgres::PostgresStorage`] the one several
//! service instances share (`database = "postgres://…"`). An append returns only once the
//! record is durable (SQLite: WAL with `synchronous=FULL`; PostgreSQL: a synchronous commit),
//! because the service replies with a signature only after that.
//!
//! The transparency log lives here too (its leaves, stored hashes and signed checkpoints), so
//! a signature's audit record and its log leaves commit together or not at all; the log's
//! arithmetic is [`crate::log`]'s, the SQL is the backend's. What does not depend on the SQL
//! (the next chain record, growing the log from stored hashes, reading rows back, which
//! migrations to run) is here, once, for both backends.

mod group_commit;
pub mod migrations;
pub mod postgres;
mod rows;
pub mod sqlite;

use std::future::Future;

use crate::approvals::{PendingRequest, RequestStatus};
use crate::audit::{AuditEntry, AuditRecord, Decision, chain_hash, hash_from_hex};
use crate::key_state::KeyState;
use crate::log::{Growth, HashCache, grow};
use crate::tokens::{Role, TokenRecord};
use fwsign_tlog::note::NoteSigner;
use verifier_core::tlog::TreeHash;

pub(crate) use rows::StoredRow;

/// Which backend a `database` URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:PATH`.
    Sqlite,
    /// `postgres://…` or `postgresql://…`.
    Postgres,
}

impl Backend {
    /// The backend of `url`.
    ///
    /// # Errors
    /// [`StorageError::Database`] if `url` is neither form.
    pub fn of(url: &str) -> Result<Self, StorageError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StorageError::Database(format!(
                "{}: expected sqlite:PATH or postgres://USER@HOST:PORT/DATABASE",
                migrations::without_password(url)
            )))
        }
    }
}

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
    /// The database was migrated by a newer fwsign.
    #[error(
        "database {database} has schema version {found}, newer than version {known} that this fwsign knows: run the fwsign release that migrated it"
    )]
    NewerSchema {
        /// The database (its URL without a password).
        database: String,
        /// Its schema version.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
}

/// The log leaves a signature adds, and the key that signs the log's new checkpoint.
pub struct LogAppend<'a> {
    /// One `fwsign-entry/v1` text per signed image.
    pub entries: &'a [String],
    /// The log key.
    pub signer: &'a (dyn NoteSigner + Sync),
}

/// A backend opened from its `database` URL.
pub trait Open: Storage + Sized {
    /// Opens (creating if needed) the database at `url` and migrates its schema.
    fn open(url: &str) -> impl Future<Output = Result<Self, StorageError>> + Send;
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

pub(crate) fn db(error: sqlx::Error) -> StorageError {
    StorageError::Database(error.to_string())
}

/// Whether moving the key `key` from `current` to `wanted` changes anything: `false` when it
/// is there already; [`StorageError::KeyStateBackwards`] when it is past it. The one rule both
/// backends apply inside their transaction.
pub(crate) fn moves_forward(
    key: &str,
    current: KeyState,
    wanted: KeyState,
) -> Result<bool, StorageError> {
    if current > wanted {
        return Err(StorageError::KeyStateBackwards { key: key.to_owned(), current, wanted });
    }
    Ok(current < wanted)
}

/// Seconds since the Unix epoch, as stored.
pub(crate) fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// An unsigned number as a SQL integer.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The record that follows the chain head `head` (its seq and hash; none for an empty chain),
/// and the security counter stored with it (0 unless it records a signature).
pub(crate) fn next_audit_record(
    head: Option<(i64, String)>,
    entry: &AuditEntry,
) -> Result<(AuditRecord, u32), StorageError> {
    let (seq, prev_hash) = match head {
        None => (1u64, [0u8; 32]),
        Some((seq, hash)) => {
            let hash = hash_from_hex(&hash)
                .ok_or_else(|| StorageError::Corrupt(format!("audit record {seq}: hash")))?;
            let seq = u64::try_from(seq)
                .map_err(|_| StorageError::Corrupt(format!("audit seq {seq}")))?;
            (seq + 1, hash)
        }
    };
    let body = entry.canonical_json();
    let hash = chain_hash(&prev_hash, seq, &body);
    let record = AuditRecord {
        seq,
        prev_hash: fwsign_keys::hex(&prev_hash),
        hash: fwsign_keys::hex(&hash),
        body,
    };
    let counter =
        if entry.decision == Decision::Signed { entry.highest_security_counter() } else { 0 };
    Ok((record, counter))
}

/// Reads a backend's stored log hashes, inside whatever transaction the reader holds.
pub(crate) trait StoredHashes: Send {
    /// The stored hashes at `indexes` (those that exist).
    fn read_hashes(
        &mut self,
        indexes: &[u64],
    ) -> impl Future<Output = Result<Vec<(u64, TreeHash)>, StorageError>> + Send;
}

/// The writes an append makes inside a backend's transaction: the SQL of a batched append,
/// which [`append_audits`] and [`append_logged`] put in order once for both backends.
pub(crate) trait AppendTransaction: StoredHashes {
    /// Appends `entry` to the audit chain after its current head.
    fn insert_audit(
        &mut self,
        entry: &AuditEntry,
    ) -> impl Future<Output = Result<AuditRecord, StorageError>> + Send;

    /// The number of leaves in the log.
    fn log_size(&mut self) -> impl Future<Output = Result<u64, StorageError>> + Send;

    /// Inserts the new leaves (each recorded by the audit record in `seqs`) and their stored
    /// hashes.
    fn insert_growth(
        &mut self,
        growth: &Growth,
        entries: &[String],
        seqs: &[u64],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Stores the signed checkpoint of the log at `size`.
    fn insert_checkpoint(
        &mut self,
        size: u64,
        note: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// Appends `entries` to the audit chain inside the caller's transaction.
pub(crate) async fn append_audits(
    transaction: &mut impl AppendTransaction,
    entries: Vec<AuditEntry>,
) -> Result<Vec<AuditRecord>, StorageError> {
    let mut records = Vec::with_capacity(entries.len());
    for entry in &entries {
        records.push(transaction.insert_audit(entry).await?);
    }
    Ok(records)
}

/// Appends each audit entry of `batch` and its log entries inside the caller's transaction,
/// under one checkpoint signed by `log`; per append, its record and its entries' proofs.
pub(crate) async fn append_logged(
    transaction: &mut impl AppendTransaction,
    batch: Vec<(AuditEntry, Vec<String>)>,
    log: &LogAppend<'_>,
) -> Result<Vec<(AuditRecord, Vec<String>)>, StorageError> {
    let mut records = Vec::with_capacity(batch.len());
    let mut leaves: Vec<(u64, String)> = Vec::new();
    for (entry, entries) in &batch {
        let record = transaction.insert_audit(entry).await?;
        leaves.extend(entries.iter().map(|text| (record.seq, text.clone())));
        records.push(record);
    }
    let (seqs, texts): (Vec<u64>, Vec<String>) = leaves.into_iter().unzip();
    let size = transaction.log_size().await?;
    let growth = grow_from_store(transaction, size, &texts).await?;
    transaction.insert_growth(&growth, &texts, &seqs).await?;
    let checkpoint =
        off_the_workers(|| crate::log::sign_checkpoint(log.signer, growth.size, growth.root))?;
    transaction.insert_checkpoint(growth.size, &checkpoint).await?;
    let mut proofs = crate::log::proofs(&growth, &texts, &checkpoint).into_iter();
    Ok(records
        .into_iter()
        .zip(&batch)
        .map(|(record, (_, entries))| (record, proofs.by_ref().take(entries.len()).collect()))
        .collect())
}

/// Runs a blocking call (a PKCS#11 signature) without stalling the runtime's other tasks:
/// on a multi-threaded runtime the worker hands its tasks to others first.
fn off_the_workers<T>(call: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(call),
        _ => call(),
    }
}

/// Appends `entries` to the log of `size` leaves in memory, reading the stored hashes the
/// computation asks for until it has them all.
pub(crate) async fn grow_from_store(
    store: &mut impl StoredHashes,
    size: u64,
    entries: &[String],
) -> Result<Growth, StorageError> {
    let cache = HashCache::default();
    loop {
        match grow(size, entries, &cache) {
            Ok(growth) => return Ok(growth),
            Err(error) => {
                let missing = cache.take_missing();
                if missing.is_empty() {
                    return Err(error.into());
                }
                let read = store.read_hashes(&missing).await?;
                cache.insert(read);
            }
        }
    }
}

/// The stored hashes at `indexes`, in order, from those `store` holds.
pub(crate) async fn hashes_in_order(
    store: &mut impl StoredHashes,
    indexes: &[u64],
) -> Result<Vec<TreeHash>, StorageError> {
    let read: std::collections::HashMap<u64, TreeHash> =
        store.read_hashes(indexes).await?.into_iter().collect();
    indexes
        .iter()
        .map(|index| {
            read.get(index)
                .copied()
                .ok_or_else(|| StorageError::Corrupt(format!("log hash {index} is missing")))
        })
        .collect()
}

/// Log entries `first..first + count` read back as `rows`, all of them or an error.
pub(crate) fn all_entries(
    first: u64,
    count: u64,
    rows: &[impl StoredRow],
) -> Result<Vec<Vec<u8>>, StorageError> {
    if rows.len() as u64 != count {
        return Err(StorageError::Corrupt(format!(
            "log entries {first}..{}: {} stored",
            first + count,
            rows.len()
        )));
    }
    rows.iter().map(|row| row.bytes("entry")).collect()
}
