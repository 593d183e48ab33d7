//! The embedded SQLite backend: one file, WAL journal, `synchronous=FULL`.
//!
//! Appends are serialised by a lock held across reading the chain head and inserting, so
//! two requests can never fork the chain; the `seq` primary key would refuse it anyway.

use std::str::FromStr as _;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, SqlitePool};
use tokio::sync::Mutex;

use super::{Storage, StorageError, role_from_name};
use crate::approvals::{PendingRequest, RequestStatus};
use crate::audit::{AuditEntry, AuditRecord, Decision, chain_hash, hash_from_hex};
use crate::tokens::TokenRecord;

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
        let body = entry.canonical_json();
        let _sequencer = self.append.lock().await;
        let mut transaction = self.pool.begin().await.map_err(db)?;
        let head = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *transaction)
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
        .execute(&mut *transaction)
        .await
        .map_err(db)?;
        transaction.commit().await.map_err(db)?;
        Ok(record)
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
