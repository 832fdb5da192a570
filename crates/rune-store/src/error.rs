//! The store's one error type.
//!
//! Every variant says what went wrong in terms a user can act on; the ones a user can
//! cause (bad URL, newer schema, corrupt backup, foreign manifest) name the fix.

use std::path::PathBuf;

/// Result alias used throughout the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL could not be understood.
    #[error("invalid database URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given (passwords masked).
        url: String,
        /// What is wrong and how to write it.
        reason: String,
    },
    /// The database file or its directory is missing or unusable.
    #[error("{path}: {reason}")]
    Path {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The database was written by a newer RUNE.
    #[error(
        "database schema version {found} is newer than this binary knows ({known}); it will not be opened for writing.\n\
         Fix: roll the schema back to what this binary knows with `rune db rollback --to {known}` \
         (the newer migrations' down SQL is stored in the database, so this binary can do it){backup_hint}"
    )]
    SchemaTooNew {
        /// Version found in the database.
        found: i64,
        /// Newest version this binary knows.
        known: i64,
        /// Extra sentence naming a backup to restore, or empty.
        backup_hint: String,
    },
    /// The schema is older than this binary needs and migrations were not allowed.
    #[error("database schema version {found} is older than this binary needs ({known}); run `rune db migrate` first")]
    SchemaTooOld {
        /// Version found.
        found: i64,
        /// Version needed.
        known: i64,
    },
    /// An applied migration's checksum differs from this binary's copy.
    #[error("migration {version} ({name}) in the database has checksum {found}, this binary has {expected}: the migration was edited after release; restore a backup or use the matching binary")]
    ChecksumMismatch {
        /// Version.
        version: i64,
        /// Name.
        name: String,
        /// Stored checksum.
        found: String,
        /// This binary's checksum.
        expected: String,
    },
    /// A migration failed; nothing of that migration was applied.
    #[error("migration {version} ({name}) failed and was rolled back: {reason}")]
    MigrationFailed {
        /// Version.
        version: i64,
        /// Name.
        name: String,
        /// Database error.
        reason: String,
    },
    /// A rollback target that cannot be reached.
    #[error("cannot roll back to version {to}: {reason}")]
    InvalidRollback {
        /// Requested target.
        to: i64,
        /// Why not.
        reason: String,
    },
    /// Another process (a running server) holds the database.
    #[error("the database is in use by another RUNE process ({holder}); stop it first (e.g. `kubectl scale deploy/rune-api --replicas=0` or stop `rune serve`), then retry")]
    InUse {
        /// Who holds it, as far as known.
        holder: String,
    },
    /// A backup or manifest is unusable.
    #[error("{path}: {reason}")]
    BadBackup {
        /// The backup or manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An export archive is unusable.
    #[error("{path}, line {line}: {reason}")]
    BadArchive {
        /// The archive.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A stored row could not be read back (corruption or a foreign writer).
    #[error("corrupt row in `{table}` ({key}): {reason}")]
    CorruptRow {
        /// Table.
        table: &'static str,
        /// Row key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A request the store refuses (e.g. a duplicate schedule name).
    #[error("{0}")]
    Conflict(String),
    /// A row that must exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("postgres: {}", pg_describe(.0))]
    Postgres(tokio_postgres::Error),
    /// The PostgreSQL pool failed.
    #[error("postgres pool: {0}")]
    Pool(String),
    /// File I/O failed.
    // The OS error is part of the message rather than a `source`, so `{:#}` chains do
    // not print it twice.
    #[error("{context}: {cause}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The OS error.
        cause: std::io::Error,
    },
    /// A SQLite group commit failed; nothing of the operation was stored.
    #[error("commit failed: {reason}")]
    CommitFailed {
        /// SQLite's message.
        reason: String,
        /// SQLite's primary result code, to tell a full disk or a busy database apart.
        code: Option<rusqlite::ErrorCode>,
    },
    /// A background task died (a bug or a runtime shutting down).
    #[error("store worker stopped: {0}")]
    Worker(String),
}

impl StoreError {
    /// True when the database could not write because its disk or volume is full
    /// (SQLite `SQLITE_FULL`, PostgreSQL `53100 disk_full`, `ENOSPC`): nothing was stored,
    /// and the operator must make room; a client retrying at once would not help.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => e.code == rusqlite::ErrorCode::DiskFull,
            StoreError::CommitFailed { code, .. } => *code == Some(rusqlite::ErrorCode::DiskFull),
            StoreError::Postgres(e) => e.code() == Some(&tokio_postgres::error::SqlState::DISK_FULL),
            StoreError::Io { cause, .. } => cause.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }

    /// True when the database is unreachable for now (connection refused or closed,
    /// pool timed out, server restarting, SQLite busy): the same request can succeed on
    /// retry, so clients get 503 rather than 500.
    pub fn is_transient(&self) -> bool {
        use tokio_postgres::error::SqlState;
        match self {
            StoreError::Pool(_) => true,
            StoreError::Postgres(e) => {
                e.is_closed()
                    || match e.code() {
                        Some(code) => {
                            code.code().starts_with("08")
                                || [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW]
                                    .contains(code)
                        }
                        // No SQLSTATE: the failure was below the protocol (I/O, TLS).
                        None => true,
                    }
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            }
            StoreError::CommitFailed { code, .. } => {
                matches!(code, Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
            }
            _ => false,
        }
    }

    /// Wraps an I/O error with the file or action it concerns.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io { context: context.into(), cause: source }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Pool(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Postgres(e)
    }
}

/// The server's own words for a PostgreSQL error (`db error` alone says nothing).
pub(crate) fn pg_describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.to_string();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None))
    }

    /// Full disks and passing outages are told apart from bugs, so the API can answer
    /// 507 or 503 instead of a bare 500.
    #[test]
    fn classifies_full_and_transient_failures() {
        assert!(sqlite(rusqlite::ffi::SQLITE_FULL).is_storage_full());
        assert!(!sqlite(rusqlite::ffi::SQLITE_FULL).is_transient());
        assert!(sqlite(rusqlite::ffi::SQLITE_BUSY).is_transient());
        assert!(!sqlite(rusqlite::ffi::SQLITE_CORRUPT).is_transient());
        assert!(!sqlite(rusqlite::ffi::SQLITE_CORRUPT).is_storage_full());
        let enospc = StoreError::io("writing jobs.db", std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert!(enospc.is_storage_full());
        let full_commit = StoreError::CommitFailed {
            reason: "database or disk is full".into(),
            code: Some(rusqlite::ErrorCode::DiskFull),
        };
        assert!(full_commit.is_storage_full() && !full_commit.is_transient());
        assert!(StoreError::Pool("timed out waiting for a connection".into()).is_transient());
        assert!(!StoreError::Conflict("duplicate".into()).is_transient());
    }
}
