//! The embedded SQLite backend: one file, WAL journal, `synchronous=FULL`.
//!
//! Appends are serialised by a lock held across reading the chain head and inserting, so
//! two requests can never fork the chain; the `seq` primary key would refuse it anyway. The
//! transparency log's leaves are appended under the same lock, in the audit record's
//! transaction: its size is read and its leaves, hashes and checkpoint inserted by one writer.
//! Appends that queue up meanwhile are written together ([`super::group_commit`]): one
//! transaction, one fsync and one checkpoint signature for the whole batch.

use std::str::FromStr as _;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::Mutex;

use super::group_commit::GroupCommit;
use super::rows::{
    REQUEST_COLUMNS, audit_record, chain_head, highest_security_counter, key_state, log_hash,
    pending_request, token_record,
};
use super::{
    AppendTransaction, LogAppend, Open, Storage, StorageError, StoredHashes, StoredRow as _,
    all_entries, append_audits, append_logged, db, hashes_in_order, migrations, moves_forward,
    next_audit_record, now, to_i64,
};
use crate::approvals::{PendingRequest, RequestStatus};
use crate::audit::{AuditEntry, AuditRecord};
use crate::key_state::KeyState;
use crate::log::Growth;
use crate::tokens::TokenRecord;
use verifier_core::tlog::TreeHash;

/// Audit and tokens in a SQLite file.
#[derive(Debug)]
pub struct SqliteStorage {
    pool: SqlitePool,
    /// Held by the one writer of audit records and log leaves.
    append: Mutex<()>,
    audit_queue: GroupCommit<AuditEntry, AuditRecord>,
    logged_queue: GroupCommit<(AuditEntry, Vec<String>), (AuditRecord, Vec<String>)>,
}

impl Open for SqliteStorage {
    /// Opens (creating if needed) the database `url` (`sqlite:PATH`) and migrates it.
    async fn open(url: &str) -> Result<Self, StorageError> {
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
        migrate(&pool, url).await?;
        Ok(Self {
            pool,
            append: Mutex::new(()),
            audit_queue: GroupCommit::default(),
            logged_queue: GroupCommit::default(),
        })
    }
}

/// Applies the migrations `url`'s database lacks.
async fn migrate(pool: &SqlitePool, url: &str) -> Result<(), StorageError> {
    let mut transaction = pool.begin().await.map_err(db)?;
    sqlx::query(migrations::CREATE_VERSION_TABLE).execute(&mut *transaction).await.map_err(db)?;
    let row =
        sqlx::query(migrations::CURRENT_VERSION).fetch_one(&mut *transaction).await.map_err(db)?;
    for migration in migrations::pending(url, row.integer("version")?, migrations::SQLITE)? {
        sqlx::raw_sql(migration.sql).execute(&mut *transaction).await.map_err(db)?;
        sqlx::query("INSERT INTO schema_version (version) VALUES (?)")
            .bind(i64::from(migration.version))
            .execute(&mut *transaction)
            .await
            .map_err(db)?;
    }
    transaction.commit().await.map_err(db)
}

impl SqliteStorage {
    async fn approvers(&self, id: &str) -> Result<Vec<String>, StorageError> {
        let rows = sqlx::query("SELECT approver FROM approvals WHERE request = ? ORDER BY rowid")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(|row| row.text("approver")).collect()
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
            Some(row) => Ok(Some(pending_request(&row, self.approvers(&row.text("id")?).await?)?)),
            None => Ok(None),
        }
    }
}

impl SqliteStorage {
    /// Appends `entries` to the audit chain in one transaction.
    async fn write_audit(
        &self,
        entries: Vec<AuditEntry>,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let mut transaction = self.pool.begin().await.map_err(db)?;
        let records = append_audits(&mut *transaction, entries).await?;
        transaction.commit().await.map_err(db)?;
        Ok(records)
    }

    /// Appends a batch of logged appends in one transaction, under one signed
    /// checkpoint.
    async fn write_logged(
        &self,
        batch: Vec<(AuditEntry, Vec<String>)>,
        log: &LogAppend<'_>,
    ) -> Result<Vec<(AuditRecord, Vec<String>)>, StorageError> {
        let mut transaction = self.pool.begin().await.map_err(db)?;
        let appended = append_logged(&mut *transaction, batch, log).await?;
        transaction.commit().await.map_err(db)?;
        Ok(appended)
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
        self.approvers(id).await
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
        row.as_ref().map(token_record).transpose()
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
        self.audit_queue
            .append(&self.append, entry.clone(), |entries| self.write_audit(entries))
            .await
    }

    async fn append_audit_logged(
        &self,
        entry: &AuditEntry,
        log: &LogAppend<'_>,
    ) -> Result<(AuditRecord, Vec<String>), StorageError> {
        let append = (entry.clone(), log.entries.to_vec());
        self.logged_queue.append(&self.append, append, |batch| self.write_logged(batch, log)).await
    }

    async fn log_checkpoint(&self) -> Result<Option<String>, StorageError> {
        let row = sqlx::query("SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|row| row.text("note")).transpose()
    }

    async fn insert_log_checkpoint(&self, size: u64, note: &str) -> Result<(), StorageError> {
        let mut connection = self.pool.acquire().await.map_err(db)?;
        connection.insert_checkpoint(size, note).await
    }

    async fn log_hashes(&self, indexes: &[u64]) -> Result<Vec<TreeHash>, StorageError> {
        let mut connection = self.pool.acquire().await.map_err(db)?;
        hashes_in_order(&mut *connection, indexes).await
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
        all_entries(first, count, &rows)
    }

    async fn audit_records(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT seq, prev_hash, hash, body FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(to_i64(after))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(audit_record).collect()
    }

    async fn key_state(&self, key: &str) -> Result<KeyState, StorageError> {
        let mut connection = self.pool.acquire().await.map_err(db)?;
        stored_key_state(&mut connection, key).await
    }

    /// Read and written in one transaction, under the writer's lock: an admin command in
    /// another process that changes the key meanwhile makes this one fail, not go backwards.
    async fn set_key_state(&self, key: &str, state: KeyState) -> Result<(), StorageError> {
        let _sequencer = self.append.lock().await;
        let mut transaction = self.pool.begin().await.map_err(db)?;
        let current = stored_key_state(&mut transaction, key).await?;
        if !moves_forward(key, current, state)? {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO key_states (name, state, changed) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET state = excluded.state, changed = excluded.changed",
        )
        .bind(key)
        .bind(state.name())
        .bind(now())
        .execute(&mut *transaction)
        .await
        .map_err(db)?;
        transaction.commit().await.map_err(db)
    }

    async fn highest_security_counter(&self, key: &str) -> Result<u32, StorageError> {
        let row = sqlx::query(HIGHEST_SECURITY_COUNTER)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        highest_security_counter(row.as_ref())
    }
}

/// The highest security counter key `?` has signed: read before every signature, from the
/// index `audit_signed_counter`.
const HIGHEST_SECURITY_COUNTER: &str = "SELECT security_counter FROM audit
    WHERE key = ? AND decision = 'signed' ORDER BY security_counter DESC LIMIT 1";

/// The state of the key named `key`, read on `connection`.
async fn stored_key_state(
    connection: &mut sqlx::SqliteConnection,
    key: &str,
) -> Result<KeyState, StorageError> {
    let row = sqlx::query("SELECT state FROM key_states WHERE name = ?")
        .bind(key)
        .fetch_optional(&mut *connection)
        .await
        .map_err(db)?;
    row.map_or(Ok(KeyState::Active), |row| key_state(&row, key))
}

/// The appends' SQL; SQLite runs one write transaction at a time.
impl AppendTransaction for sqlx::SqliteConnection {
    async fn insert_audit(&mut self, entry: &AuditEntry) -> Result<AuditRecord, StorageError> {
        let head = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *self)
            .await
            .map_err(db)?;
        let (record, counter) =
            next_audit_record(head.as_ref().map(chain_head).transpose()?, entry)?;
        sqlx::query(
            "INSERT INTO audit (seq, prev_hash, hash, body, key, decision, security_counter)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(to_i64(record.seq))
        .bind(&record.prev_hash)
        .bind(&record.hash)
        .bind(&record.body)
        .bind(&entry.key)
        .bind(entry.decision.name())
        .bind(i64::from(counter))
        .execute(&mut *self)
        .await
        .map_err(db)?;
        Ok(record)
    }

    async fn log_size(&mut self) -> Result<u64, StorageError> {
        let row = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) AS size FROM log_leaves")
            .fetch_one(&mut *self)
            .await
            .map_err(db)?;
        row.unsigned("size")
    }

    async fn insert_growth(
        &mut self,
        growth: &Growth,
        entries: &[String],
        seqs: &[u64],
    ) -> Result<(), StorageError> {
        for ((index, entry), seq) in (growth.first..).zip(entries).zip(seqs) {
            sqlx::query("INSERT INTO log_leaves (idx, entry, audit_seq) VALUES (?, ?, ?)")
                .bind(to_i64(index))
                .bind(entry.as_bytes())
                .bind(to_i64(*seq))
                .execute(&mut *self)
                .await
                .map_err(db)?;
        }
        for (index, hash) in &growth.hashes {
            sqlx::query("INSERT INTO log_hashes (idx, hash) VALUES (?, ?)")
                .bind(to_i64(*index))
                .bind(&hash[..])
                .execute(&mut *self)
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    async fn insert_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StorageError> {
        sqlx::query("INSERT INTO log_checkpoints (size, note) VALUES (?, ?)")
            .bind(to_i64(size))
            .bind(note)
            .execute(&mut *self)
            .await
            .map_err(db)?;
        Ok(())
    }
}

impl StoredHashes for sqlx::SqliteConnection {
    async fn read_hashes(&mut self, indexes: &[u64]) -> Result<Vec<(u64, TreeHash)>, StorageError> {
        let mut read = Vec::with_capacity(indexes.len());
        for chunk in indexes.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            let sql = format!("SELECT idx, hash FROM log_hashes WHERE idx IN ({placeholders})");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for index in chunk {
                query = query.bind(to_i64(*index));
            }
            for row in query.fetch_all(&mut *self).await.map_err(db)? {
                read.push(log_hash(&row)?);
            }
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::AssertSqlSafe;

    #[tokio::test]
    async fn the_highest_security_counter_is_read_from_an_index_not_the_trail() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("audit.db").display());
        let storage = SqliteStorage::open(&url).await.expect("open");
        let plan =
            sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {HIGHEST_SECURITY_COUNTER}")))
                .bind("dev")
                .fetch_all(&storage.pool)
                .await
                .expect("plan");
        let steps: Vec<String> =
            plan.iter().map(|row| row.text("detail").expect("detail")).collect();
        assert!(
            steps.iter().any(|step| step.contains("COVERING INDEX audit_signed_counter")),
            "{steps:?}"
        );
    }
}
