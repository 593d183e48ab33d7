//! The PostgreSQL backend: one database that several service instances share.
//!
//! The audit chain and the transparency log are each one linear sequence, whoever appends: an
//! append takes a transaction-scoped advisory lock ([`SEQUENCER_LOCK`]) before it reads the
//! chain head and the log size, so appends from every instance on the database run one after
//! another, and no two of them get the same `seq` or log index, or sign diverging
//! checkpoints (the primary keys would refuse it anyway). The lock ends with the transaction,
//! so a killed instance cannot hold it. Migrations take another advisory lock, so instances
//! that start together migrate once, and a key's state changes under a third, so two admin
//! commands cannot move it backwards between them. A commit is durable (PostgreSQL's default
//! `synchronous_commit = on`) before a signature is returned.
//!
//! Each instance groups the appends that queue up while it waits or writes
//! ([`super::group_commit`]): one transaction, one commit and one checkpoint signature per
//! batch, as on SQLite.

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::Mutex;

use super::group_commit::GroupCommit;
use super::migrations::{self, without_password};
use super::rows::{
    REQUEST_COLUMNS, audit_record, chain_head, highest_security_counter, key_state, log_hash,
    pending_request, token_record,
};
use super::{
    AppendTransaction, LogAppend, Open, Storage, StorageError, StoredHashes, StoredRow as _,
    all_entries, append_audits, append_logged, db, hashes_in_order, moves_forward,
    next_audit_record, now, to_i64,
};
use crate::approvals::{PendingRequest, RequestStatus};
use crate::audit::{AuditEntry, AuditRecord};
use crate::key_state::KeyState;
use crate::log::Growth;
use crate::tokens::TokenRecord;
use verifier_core::tlog::TreeHash;

/// The advisory lock every append to the audit chain and the log holds until it commits.
pub const SEQUENCER_LOCK: i64 = 0x6677_7369_676e_0001;
/// The advisory lock a migration holds.
const MIGRATION_LOCK: i64 = 0x6677_7369_676e_0002;
/// The advisory lock a change of a key's state holds.
const KEY_STATE_LOCK: i64 = 0x6677_7369_676e_0003;
/// Connections per instance.
const POOL_SIZE: u32 = 8;

/// Audit, tokens, requests and the log in a PostgreSQL database.
#[derive(Debug)]
pub struct PostgresStorage {
    pool: PgPool,
    /// Held by the one append of this instance that is writing: the others queue behind it
    /// rather than each holding a connection while it waits for [`SEQUENCER_LOCK`].
    append: Mutex<()>,
    audit_queue: GroupCommit<AuditEntry, AuditRecord>,
    logged_queue: GroupCommit<(AuditEntry, Vec<String>), (AuditRecord, Vec<String>)>,
}

impl Open for PostgresStorage {
    /// Connects to `url` (`postgres://USER@HOST:PORT/DATABASE`) and migrates the database.
    async fn open(url: &str) -> Result<Self, StorageError> {
        let named =
            |e: sqlx::Error| StorageError::Database(format!("{}: {e}", without_password(url)));
        let options: PgConnectOptions = url.parse().map_err(named)?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(options)
            .await
            .map_err(named)?;
        migrate(&pool, url).await?;
        Ok(Self {
            pool,
            append: Mutex::new(()),
            audit_queue: GroupCommit::default(),
            logged_queue: GroupCommit::default(),
        })
    }
}

/// Applies the migrations `url`'s database lacks, one instance at a time.
async fn migrate(pool: &PgPool, url: &str) -> Result<(), StorageError> {
    let mut transaction = pool.begin().await.map_err(db)?;
    lock(&mut transaction, MIGRATION_LOCK).await?;
    sqlx::query(migrations::CREATE_VERSION_TABLE).execute(&mut *transaction).await.map_err(db)?;
    let row =
        sqlx::query(migrations::CURRENT_VERSION).fetch_one(&mut *transaction).await.map_err(db)?;
    for migration in migrations::pending(url, row.integer("version")?, migrations::POSTGRES)? {
        sqlx::raw_sql(migration.sql).execute(&mut *transaction).await.map_err(db)?;
        sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
            .bind(i64::from(migration.version))
            .execute(&mut *transaction)
            .await
            .map_err(db)?;
    }
    transaction.commit().await.map_err(db)
}

/// Takes the advisory lock `key` until the transaction ends.
async fn lock(connection: &mut sqlx::PgConnection, key: i64) -> Result<(), StorageError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(&mut *connection)
        .await
        .map_err(db)?;
    Ok(())
}

impl PostgresStorage {
    async fn approvers(&self, id: &str) -> Result<Vec<String>, StorageError> {
        let rows = sqlx::query("SELECT approver FROM approvals WHERE request = $1 ORDER BY pos")
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

impl PostgresStorage {
    /// Appends `entries` to the audit chain in one transaction holding [`SEQUENCER_LOCK`].
    async fn write_audit(
        &self,
        entries: Vec<AuditEntry>,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let mut transaction = self.pool.begin().await.map_err(db)?;
        lock(&mut transaction, SEQUENCER_LOCK).await?;
        let records = append_audits(&mut *transaction, entries).await?;
        transaction.commit().await.map_err(db)?;
        Ok(records)
    }

    /// Appends a batch of logged appends in one transaction holding [`SEQUENCER_LOCK`], under one signed
    /// checkpoint.
    async fn write_logged(
        &self,
        batch: Vec<(AuditEntry, Vec<String>)>,
        log: &LogAppend<'_>,
    ) -> Result<Vec<(AuditRecord, Vec<String>)>, StorageError> {
        let mut transaction = self.pool.begin().await.map_err(db)?;
        lock(&mut transaction, SEQUENCER_LOCK).await?;
        let appended = append_logged(&mut *transaction, batch, log).await?;
        transaction.commit().await.map_err(db)?;
        Ok(appended)
    }
}

impl Storage for PostgresStorage {
    async fn create_request(&self, request: &PendingRequest) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO requests (id, key, requester, principal, body, fingerprint, status, created, expires)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
        self.request_where("id = $1", id).await
    }

    async fn find_request_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<PendingRequest>, StorageError> {
        self.request_where("fingerprint = $1 AND status IN ('pending', 'signed')", fingerprint)
            .await
    }

    async fn add_approval(&self, id: &str, approver: &str) -> Result<Vec<String>, StorageError> {
        sqlx::query(
            "INSERT INTO approvals (request, approver) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
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
            "UPDATE requests SET status = $1, result = $2 WHERE id = $3 AND status = 'pending'",
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
            "INSERT INTO api_tokens (name, role, grp, hash, created) VALUES ($1, $2, $3, $4, $5)",
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
            "SELECT name, role, grp FROM api_tokens WHERE hash = $1 AND revoked IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(token_record).transpose()
    }

    async fn revoke_token(&self, name: &str) -> Result<bool, StorageError> {
        let result =
            sqlx::query("UPDATE api_tokens SET revoked = $1 WHERE name = $2 AND revoked IS NULL")
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

    /// Two instances starting on a new database both store the empty log's checkpoint: the
    /// log key's signature is deterministic (Ed25519), so the second insert is the same note
    /// and is skipped.
    async fn insert_log_checkpoint(&self, size: u64, note: &str) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO log_checkpoints (size, note) VALUES ($1, $2) ON CONFLICT (size) DO NOTHING",
        )
        .bind(to_i64(size))
        .bind(note)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn log_hashes(&self, indexes: &[u64]) -> Result<Vec<TreeHash>, StorageError> {
        let mut connection = self.pool.acquire().await.map_err(db)?;
        hashes_in_order(&mut *connection, indexes).await
    }

    async fn log_entries(&self, first: u64, count: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        let rows = sqlx::query(
            "SELECT idx, entry FROM log_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx",
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
            "SELECT seq, prev_hash, hash, body FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
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

    async fn set_key_state(&self, key: &str, state: KeyState) -> Result<(), StorageError> {
        let mut transaction = self.pool.begin().await.map_err(db)?;
        lock(&mut transaction, KEY_STATE_LOCK).await?;
        let current = stored_key_state(&mut transaction, key).await?;
        if !moves_forward(key, current, state)? {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO key_states (name, state, changed) VALUES ($1, $2, $3)
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
        // ORDER BY … LIMIT 1, not MAX: the planner reads one index entry for it whatever its
        // statistics say, where MAX on a table it has not analysed yet visited every row.
        let row = sqlx::query(
            "SELECT security_counter FROM audit WHERE key = $1 AND decision = 'signed'
             ORDER BY security_counter DESC LIMIT 1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        highest_security_counter(row.as_ref())
    }
}

/// The state of the key named `key`, read on `connection`.
async fn stored_key_state(
    connection: &mut sqlx::PgConnection,
    key: &str,
) -> Result<KeyState, StorageError> {
    let row = sqlx::query("SELECT state FROM key_states WHERE name = $1")
        .bind(key)
        .fetch_optional(&mut *connection)
        .await
        .map_err(db)?;
    row.map_or(Ok(KeyState::Active), |row| key_state(&row, key))
}

/// The appends' SQL; the caller's transaction holds [`SEQUENCER_LOCK`].
impl AppendTransaction for sqlx::PgConnection {
    async fn insert_audit(&mut self, entry: &AuditEntry) -> Result<AuditRecord, StorageError> {
        let head = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *self)
            .await
            .map_err(db)?;
        let (record, counter) =
            next_audit_record(head.as_ref().map(chain_head).transpose()?, entry)?;
        sqlx::query(
            "INSERT INTO audit (seq, prev_hash, hash, body, key, decision, security_counter)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
        let indexes: Vec<i64> = (growth.first..).take(entries.len()).map(to_i64).collect();
        let leaves: Vec<&[u8]> = entries.iter().map(String::as_bytes).collect();
        let seqs: Vec<i64> = seqs.iter().copied().map(to_i64).collect();
        sqlx::query(
            "INSERT INTO log_leaves (idx, entry, audit_seq)
             SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[], $3::BIGINT[])",
        )
        .bind(&indexes)
        .bind(&leaves)
        .bind(&seqs)
        .execute(&mut *self)
        .await
        .map_err(db)?;
        let indexes: Vec<i64> = growth.hashes.iter().map(|(index, _)| to_i64(*index)).collect();
        let hashes: Vec<&[u8]> = growth.hashes.iter().map(|(_, hash)| &hash[..]).collect();
        sqlx::query(
            "INSERT INTO log_hashes (idx, hash) SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[])",
        )
        .bind(&indexes)
        .bind(&hashes)
        .execute(&mut *self)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn insert_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StorageError> {
        sqlx::query("INSERT INTO log_checkpoints (size, note) VALUES ($1, $2)")
            .bind(to_i64(size))
            .bind(note)
            .execute(&mut *self)
            .await
            .map_err(db)?;
        Ok(())
    }
}

impl StoredHashes for sqlx::PgConnection {
    async fn read_hashes(&mut self, indexes: &[u64]) -> Result<Vec<(u64, TreeHash)>, StorageError> {
        let indexes: Vec<i64> = indexes.iter().copied().map(to_i64).collect();
        let rows = sqlx::query("SELECT idx, hash FROM log_hashes WHERE idx = ANY($1)")
            .bind(&indexes)
            .fetch_all(&mut *self)
            .await
            .map_err(db)?;
        rows.iter().map(log_hash).collect()
    }
}
