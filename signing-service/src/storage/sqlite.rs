//! The embedded SQLite backend: one file, WAL journal, `synchronous=FULL`.
//!
//! Appends are serialised by a lock held across reading the chain head and inserting, so
//! two requests can never fork the chain; the `seq` primary key would refuse it anyway. The
//! transparency log's leaves are appended under the same lock, in the audit record's
//! transaction: its size is read and its leaves, hashes and checkpoint inserted by one writer.

use std::str::FromStr as _;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, SqlitePool};
use tokio::sync::Mutex;

use super::{LogAppend, Storage, StorageError, role_from_name};
use crate::approvals::{PendingRequest, RequestStatus};
use crate::audit::{AuditEntry, AuditRecord, Decision, chain_hash, hash_from_hex};
use crate::key_state::KeyState;
use crate::log::{Growth, HashCache, grow, proofs};
use crate::tokens::TokenRecord;
use verifier_core::tlog::TreeHash;

/// The schema, created on first use.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS api_tokens (
        name TEXT NOT NULL, role TEXT NOT NULL, grp TEXT, hash TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL, revoked INTEGER)",
    "CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_live_name ON api_tokens(name) WHERE revoked IS NULL",
    "CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, body TEXT NOT NULL,
        key TEXT, decision TEXT NOT NULL, security_counter INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS requests (
        id TEXT PRIMARY KEY, key TEXT NOT NULL, requester TEXT NOT NULL, principal TEXT NOT NULL,
        body TEXT NOT NULL, fingerprint TEXT NOT NULL, status TEXT NOT NULL,
        created INTEGER NOT NULL, expires INTEGER NOT NULL, result TEXT)",
    "CREATE INDEX IF NOT EXISTS requests_fingerprint ON requests(fingerprint)",
    "CREATE TABLE IF NOT EXISTS approvals (
        request TEXT NOT NULL, approver TEXT NOT NULL, PRIMARY KEY (request, approver))",
    "CREATE TABLE IF NOT EXISTS log_leaves (
        idx INTEGER PRIMARY KEY, entry BLOB NOT NULL, audit_seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS log_hashes (idx INTEGER PRIMARY KEY, hash BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS log_checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS key_states (
        name TEXT PRIMARY KEY, state TEXT NOT NULL, changed INTEGER NOT NULL)",
];

/// The columns of a request row.
const REQUEST_COLUMNS: &str =
    "id, key, requester, principal, body, fingerprint, status, created, expires, result";

/// Audit and tokens in a SQLite file.
#[derive(Debug)]
pub struct SqliteStorage {
    pool: SqlitePool,
    append: Mutex<()>,
}

fn db(error: sqlx::Error) -> StorageError {
    StorageError::Database(error.to_string())
}

fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl SqliteStorage {
    /// Opens (creating if needed) the database `url` (`sqlite:PATH`).
    ///
    /// # Errors
    /// [`StorageError::Database`] naming the failure.
    pub async fn open(url: &str) -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StorageError::Database(format!("{url}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| StorageError::Database(format!("{url}: {e}")))?;
        for statement in SCHEMA.iter().copied() {
            sqlx::query(statement).execute(&pool).await.map_err(db)?;
        }
        Ok(Self { pool, append: Mutex::new(()) })
    }
}

fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<AuditRecord, StorageError> {
    let seq: i64 = row.try_get("seq").map_err(db)?;
    Ok(AuditRecord {
        seq: u64::try_from(seq).map_err(|_| StorageError::Corrupt(format!("audit seq {seq}")))?,
        prev_hash: row.try_get("prev_hash").map_err(db)?,
        hash: row.try_get("hash").map_err(db)?,
        body: row.try_get("body").map_err(db)?,
    })
}

fn seconds(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<u64, StorageError> {
    let value: i64 = row.try_get(column).map_err(db)?;
    u64::try_from(value).map_err(|_| StorageError::Corrupt(format!("{column} {value}")))
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl SqliteStorage {
    async fn request_from_row(
        &self,
        row: &sqlx::sqlite::SqliteRow,
    ) -> Result<PendingRequest, StorageError> {
        let id: String = row.try_get("id").map_err(db)?;
        let status: String = row.try_get("status").map_err(db)?;
        let approvers =
            sqlx::query("SELECT approver FROM approvals WHERE request = ? ORDER BY rowid")
                .bind(&id)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.try_get("approver").map_err(db))
                .collect::<Result<Vec<String>, _>>()?;
        Ok(PendingRequest {
            key: row.try_get("key").map_err(db)?,
            requester: row.try_get("requester").map_err(db)?,
            principal: row.try_get("principal").map_err(db)?,
            body: row.try_get("body").map_err(db)?,
            fingerprint: row.try_get("fingerprint").map_err(db)?,
            status: RequestStatus::from_name(&status)
                .ok_or_else(|| StorageError::Corrupt(format!("request {id}: status {status}")))?,
            created: seconds(row, "created")?,
            expires: seconds(row, "expires")?,
            result: row.try_get("result").map_err(db)?,
            approvers,
            id,
        })
    }

    async fn request_where(
        &self,
        condition: &'static str,
        value: &str,
    ) -> Result<Option<PendingRequest>, StorageError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE {condition} ORDER BY created DESC LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        match row {
            Some(row) => Ok(Some(self.request_from_row(&row).await?)),
            None => Ok(None),
        }
    }
}

impl Storage for SqliteStorage {
    async fn create_request(&self, request: &PendingRequest) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO requests (id, key, requester, principal, body, fingerprint, status, created, expires)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&request.id)
        .bind(&request.key)
        .bind(&request.requester)
        .bind(&request.principal)
        .bind(&request.body)
        .bind(&request.fingerprint)
        .bind(request.status.name())
        .bind(to_i64(request.created))
        .bind(to_i64(request.expires))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn find_request(&self, id: &str) -> Result<Option<PendingRequest>, StorageError> {
        self.request_where("id = ?", id).await
    }

    async fn find_request_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<PendingRequest>, StorageError> {
        self.request_where("fingerprint = ? AND status IN ('pending', 'signed')", fingerprint).await
    }

    async fn add_approval(&self, id: &str, approver: &str) -> Result<Vec<String>, StorageError> {
        sqlx::query("INSERT OR IGNORE INTO approvals (request, approver) VALUES (?, ?)")
            .bind(id)
            .bind(approver)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        let rows = sqlx::query("SELECT approver FROM approvals WHERE request = ? ORDER BY rowid")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(|r| r.try_get("approver").map_err(db)).collect()
    }

    async fn finish_request(
        &self,
        id: &str,
        status: RequestStatus,
        result: Option<&str>,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE requests SET status = ?, result = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(status.name())
        .bind(result)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn insert_token(&self, token: &TokenRecord, hash: &str) -> Result<(), StorageError> {
        let result = sqlx::query(
            "INSERT INTO api_tokens (name, role, grp, hash, created) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&token.name)
        .bind(token.role.name())
        .bind(&token.group)
        .bind(hash)
        .bind(now())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StorageError::DuplicateToken(token.name.clone()))
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>, StorageError> {
        let row = sqlx::query(
            "SELECT name, role, grp FROM api_tokens WHERE hash = ? AND revoked IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get("role").map_err(db)?;
        Ok(Some(TokenRecord {
            name: row.try_get("name").map_err(db)?,
            role: role_from_name(&role)?,
            group: row.try_get("grp").map_err(db)?,
        }))
    }

    async fn revoke_token(&self, name: &str) -> Result<bool, StorageError> {
        let result =
            sqlx::query("UPDATE api_tokens SET revoked = ? WHERE name = ? AND revoked IS NULL")
                .bind(now())
                .bind(name)
                .execute(&self.pool)
                .await
                .map_err(db)?;
        Ok(result.rows_affected() > 0)
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<AuditRecord, StorageError> {
        let _sequencer = self.append.lock().await;
        let mut transaction = self.pool.begin().await.map_err(db)?;
        let record = insert_audit(&mut transaction, entry).await?;
        transaction.commit().await.map_err(db)?;
        Ok(record)
    }

    async fn append_audit_logged(
        &self,
        entry: &AuditEntry,
        log: &LogAppend<'_>,
    ) -> Result<(AuditRecord, Vec<String>), StorageError> {
        let _sequencer = self.append.lock().await;
        let mut transaction = self.pool.begin().await.map_err(db)?;
        let record = insert_audit(&mut transaction, entry).await?;
        let size = log_size(&mut transaction).await?;
        let growth = grow_from_store(&mut transaction, size, log.entries).await?;
        insert_growth(&mut transaction, &growth, log.entries, record.seq).await?;
        let checkpoint = crate::log::sign_checkpoint(log.signer, growth.size, growth.root)?;
        insert_checkpoint(&mut transaction, growth.size, &checkpoint).await?;
        transaction.commit().await.map_err(db)?;
        Ok((record, proofs(&growth, log.entries, &checkpoint)))
    }

    async fn log_checkpoint(&self) -> Result<Option<String>, StorageError> {
        let row = sqlx::query("SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|row| row.try_get("note").map_err(db)).transpose()
    }

    async fn insert_log_checkpoint(&self, size: u64, note: &str) -> Result<(), StorageError> {
        let mut connection = self.pool.acquire().await.map_err(db)?;
        insert_checkpoint(&mut connection, size, note).await
    }

    async fn log_hashes(&self, indexes: &[u64]) -> Result<Vec<TreeHash>, StorageError> {
        let mut connection = self.pool.acquire().await.map_err(db)?;
        let read: std::collections::HashMap<u64, TreeHash> =
            read_hashes(&mut connection, indexes).await?.into_iter().collect();
        indexes
            .iter()
            .map(|index| {
                read.get(index)
                    .copied()
                    .ok_or_else(|| StorageError::Corrupt(format!("log hash {index} is missing")))
            })
            .collect()
    }

    async fn log_entries(&self, first: u64, count: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        let rows = sqlx::query(
            "SELECT idx, entry FROM log_leaves WHERE idx >= ? AND idx < ? ORDER BY idx",
        )
        .bind(to_i64(first))
        .bind(to_i64(first.saturating_add(count)))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        if rows.len() as u64 != count {
            return Err(StorageError::Corrupt(format!(
                "log entries {first}..{}: {} stored",
                first + count,
                rows.len()
            )));
        }
        rows.iter().map(|row| row.try_get("entry").map_err(db)).collect()
    }

    async fn audit_records(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT seq, prev_hash, hash, body FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn key_state(&self, key: &str) -> Result<KeyState, StorageError> {
        let row = sqlx::query("SELECT state FROM key_states WHERE name = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let Some(row) = row else { return Ok(KeyState::Active) };
        let state: String = row.try_get("state").map_err(db)?;
        KeyState::from_name(&state)
            .ok_or_else(|| StorageError::Corrupt(format!("key {key}: state \"{state}\"")))
    }

    async fn set_key_state(&self, key: &str, state: KeyState) -> Result<(), StorageError> {
        let _sequencer = self.append.lock().await;
        let current = self.key_state(key).await?;
        if current == state {
            return Ok(());
        }
        if current > state {
            return Err(StorageError::KeyStateBackwards {
                key: key.to_owned(),
                current,
                wanted: state,
            });
        }
        sqlx::query(
            "INSERT INTO key_states (name, state, changed) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET state = excluded.state, changed = excluded.changed",
        )
        .bind(key)
        .bind(state.name())
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn highest_security_counter(&self, key: &str) -> Result<u32, StorageError> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(security_counter), 0) AS highest FROM audit
             WHERE key = ? AND decision = 'signed'",
        )
        .bind(key)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let highest: i64 = row.try_get("highest").map_err(db)?;
        u32::try_from(highest)
            .map_err(|_| StorageError::Corrupt(format!("security counter {highest}")))
    }
}

/// Appends `entry` to the audit chain inside the caller's transaction.
async fn insert_audit(
    connection: &mut sqlx::SqliteConnection,
    entry: &AuditEntry,
) -> Result<AuditRecord, StorageError> {
    let body = entry.canonical_json();
    let head = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *connection)
        .await
        .map_err(db)?;
    let (seq, prev_hash) = match head {
        None => (1u64, [0u8; 32]),
        Some(row) => {
            let seq: i64 = row.try_get("seq").map_err(db)?;
            let hash: String = row.try_get("hash").map_err(db)?;
            let hash = hash_from_hex(&hash)
                .ok_or_else(|| StorageError::Corrupt(format!("audit record {seq}: hash")))?;
            (u64::try_from(seq).unwrap_or(0) + 1, hash)
        }
    };
    let hash = chain_hash(&prev_hash, seq, &body);
    let record = AuditRecord {
        seq,
        prev_hash: fwsign_keys::hex(&prev_hash),
        hash: fwsign_keys::hex(&hash),
        body,
    };
    let counter =
        if entry.decision == Decision::Signed { entry.highest_security_counter() } else { 0 };
    sqlx::query(
        "INSERT INTO audit (seq, prev_hash, hash, body, key, decision, security_counter)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(i64::try_from(seq).map_err(|_| StorageError::Corrupt("audit seq".into()))?)
    .bind(&record.prev_hash)
    .bind(&record.hash)
    .bind(&record.body)
    .bind(&entry.key)
    .bind(entry.decision.name())
    .bind(i64::from(counter))
    .execute(&mut *connection)
    .await
    .map_err(db)?;
    Ok(record)
}

/// The number of leaves in the log.
async fn log_size(connection: &mut sqlx::SqliteConnection) -> Result<u64, StorageError> {
    let row = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) AS size FROM log_leaves")
        .fetch_one(&mut *connection)
        .await
        .map_err(db)?;
    let size: i64 = row.try_get("size").map_err(db)?;
    u64::try_from(size).map_err(|_| StorageError::Corrupt(format!("log size {size}")))
}

/// Appends `entries` to the log of `size` leaves in memory, reading the stored hashes the
/// computation asks for until it has them all.
async fn grow_from_store(
    connection: &mut sqlx::SqliteConnection,
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
                let read = read_hashes(connection, &missing).await?;
                cache.insert(read);
            }
        }
    }
}

/// Inserts the new leaves (recorded by audit record `seq`) and their stored hashes.
async fn insert_growth(
    connection: &mut sqlx::SqliteConnection,
    growth: &Growth,
    entries: &[String],
    seq: u64,
) -> Result<(), StorageError> {
    for (index, entry) in (growth.first..).zip(entries) {
        sqlx::query("INSERT INTO log_leaves (idx, entry, audit_seq) VALUES (?, ?, ?)")
            .bind(to_i64(index))
            .bind(entry.as_bytes())
            .bind(to_i64(seq))
            .execute(&mut *connection)
            .await
            .map_err(db)?;
    }
    for (index, hash) in &growth.hashes {
        sqlx::query("INSERT INTO log_hashes (idx, hash) VALUES (?, ?)")
            .bind(to_i64(*index))
            .bind(&hash[..])
            .execute(&mut *connection)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// Reads the stored log hashes at `indexes` (those that exist).
async fn read_hashes(
    connection: &mut sqlx::SqliteConnection,
    indexes: &[u64],
) -> Result<Vec<(u64, TreeHash)>, StorageError> {
    let mut read = Vec::with_capacity(indexes.len());
    for chunk in indexes.chunks(500) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let sql = format!("SELECT idx, hash FROM log_hashes WHERE idx IN ({placeholders})");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for index in chunk {
            query = query.bind(to_i64(*index));
        }
        for row in query.fetch_all(&mut *connection).await.map_err(db)? {
            let index: i64 = row.try_get("idx").map_err(db)?;
            let hash: Vec<u8> = row.try_get("hash").map_err(db)?;
            let hash = TreeHash::try_from(hash.as_slice())
                .map_err(|_| StorageError::Corrupt(format!("log hash {index}")))?;
            read.push((u64::try_from(index).unwrap_or(u64::MAX), hash));
        }
    }
    Ok(read)
}

async fn insert_checkpoint(
    connection: &mut sqlx::SqliteConnection,
    size: u64,
    note: &str,
) -> Result<(), StorageError> {
    sqlx::query("INSERT INTO log_checkpoints (size, note) VALUES (?, ?)")
        .bind(to_i64(size))
        .bind(note)
        .execute(&mut *connection)
        .await
        .map_err(db)?;
    Ok(())
}
