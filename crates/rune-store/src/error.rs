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
    /// A background task died (a bug or a runtime shutting down).
    #[error("store worker stopped: {0}")]
    Worker(String),
}

impl StoreError {
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
