//! Versioned schema migrations, embedded in the binary and run when the storage opens.
//!
//! Each backend has its list (`signing-service/migrations/{sqlite,postgres}/NNNN_*.sql`); the
//! database's `schema_version` table holds the versions applied. Opening applies the missing
//! ones, in order, in one transaction, and refuses a database whose version is newer than the
//! newest this build knows: an older service must not write to a schema it does not
//! understand (after a rollback of the service, say, while another instance was upgraded).

use super::StorageError;

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its version: the schema's version once it is applied.
    pub version: u32,
    /// Its SQL (several statements).
    pub sql: &'static str,
}

/// SQLite's migrations, oldest first.
pub const SQLITE: &[Migration] = &[
    Migration { version: 1, sql: include_str!("../../migrations/sqlite/0001_initial.sql") },
    Migration { version: 2, sql: include_str!("../../migrations/sqlite/0002_key_states.sql") },
    Migration {
        version: 3,
        sql: include_str!("../../migrations/sqlite/0003_audit_counter_index.sql"),
    },
];

/// PostgreSQL's migrations, oldest first.
pub const POSTGRES: &[Migration] = &[
    Migration { version: 1, sql: include_str!("../../migrations/postgres/0001_initial.sql") },
    Migration { version: 2, sql: include_str!("../../migrations/postgres/0002_key_states.sql") },
    Migration {
        version: 3,
        sql: include_str!("../../migrations/postgres/0003_audit_counter_index.sql"),
    },
];

/// The table of applied versions (the same SQL on both backends).
pub(crate) const CREATE_VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";

/// The newest applied version, 0 for a new database.
pub(crate) const CURRENT_VERSION: &str =
    "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS version FROM schema_version";

/// The migrations of `all` that a database at version `current` lacks.
///
/// # Errors
/// [`StorageError::NewerSchema`] naming `database` if `current` is newer than `all` knows.
pub(crate) fn pending<'m>(
    database: &str,
    current: i64,
    all: &'m [Migration],
) -> Result<&'m [Migration], StorageError> {
    let known = all.last().map_or(0, |m| m.version);
    let current = u32::try_from(current)
        .map_err(|_| StorageError::Corrupt(format!("schema version {current}")))?;
    if current > known {
        return Err(StorageError::NewerSchema {
            database: without_password(database),
            found: current,
            known,
        });
    }
    Ok(&all[all.partition_point(|m| m.version <= current)..])
}

/// `url` with any password in it replaced by `***`, fit for messages.
pub(crate) fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        for all in [SQLITE, POSTGRES] {
            let versions: Vec<u32> = all.iter().map(|m| m.version).collect();
            let expected: Vec<u32> = (1..=u32::try_from(all.len()).unwrap_or(0)).collect();
            assert_eq!(versions, expected);
        }
        assert_eq!(SQLITE.len(), POSTGRES.len(), "both backends know the same versions");
    }

    #[test]
    fn only_missing_migrations_run_and_a_newer_schema_is_refused() {
        assert_eq!(pending("sqlite:x", 0, SQLITE).map(<[_]>::len).ok(), Some(SQLITE.len()));
        assert_eq!(
            pending("sqlite:x", i64::from(SQLITE[SQLITE.len() - 1].version), SQLITE)
                .map(<[_]>::len)
                .ok(),
            Some(0)
        );
        let error = pending("postgres://u:secret@h/db", 99, POSTGRES).unwrap_err().to_string();
        assert!(error.contains("postgres://u:***@h/db"), "{error}");
        let known = format!("version {}", POSTGRES[POSTGRES.len() - 1].version);
        assert!(error.contains("version 99") && error.contains(&known), "{error}");
        assert!(!error.contains("secret"), "{error}");
    }
}
