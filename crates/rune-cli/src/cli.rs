//! The command line, as clap types. Only parsing and validation of flag shapes here; no
//! I/O (so `--help` always works).

use crate::output::OutputFormat;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// RUNE: benchmark AI models, inference endpoints and agents on reliability use cases.
#[derive(Debug, Parser)]
#[command(name = "rune", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses `std::env::args`, with a `--version` that also names the schema version
    /// this binary knows (what `rune db rollback --to` needs after a downgrade).
    pub fn parse_with_version() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let version =
            format!("{} (schema version {})", env!("CARGO_PKG_VERSION"), rune_store::migrations::latest_version());
        let matches = Self::command().version(version).get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// Flags every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Job database: sqlite:///path/jobs.db or postgres://user@host:5432/db.
    /// Default: sqlite://$RUNE_HOME/jobs.db.
    #[arg(long, global = true, env = "RUNE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// RUNE's home directory (default ~/.rune).
    #[arg(long, global = true, env = "RUNE_HOME")]
    pub rune_home: Option<PathBuf>,
    /// Where automatic pre-migration backups go (default: backups/ beside an SQLite
    /// database, $RUNE_HOME/backups for PostgreSQL).
    #[arg(long, global = true, env = "RUNE_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Log as JSON lines on stderr.
    #[arg(long, global = true, env = "RUNE_LOG_JSON")]
    pub log_json: bool,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect, migrate, roll back, back up, verify and restore the job database.
    #[command(subcommand)]
    Db(DbCommand),
}

/// `rune db …`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Schema version, pending migrations and row counts.
    Status {
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Apply pending migrations (an automatic, verified backup is taken first).
    Migrate {
        /// Stop at this schema version (default: the newest this binary knows).
        #[arg(long)]
        to: Option<i64>,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Roll the schema back to version N using the down SQL stored in the database
    /// (works for versions newer than this binary). Takes a backup first.
    Rollback {
        /// Target schema version.
        #[arg(long)]
        to: i64,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Online, consistent backup plus PATH.manifest.json.
    Backup {
        /// Backup file (default: $RUNE_HOME/backups/jobs-<time>.db, or .jsonl for PostgreSQL).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check integrity; with --against, prove every job in a manifest is present and
    /// unchanged (exit 3 listing what is missing or changed).
    Verify {
        /// Manifest written by `rune db backup` (PATH.manifest.json).
        #[arg(long)]
        against: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Verify a backup, then atomically replace the database with it (refuses while a
    /// server or CLI has the database open; keeps the replaced file aside).
    Restore {
        /// Backup file written by `rune db backup`.
        path: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Write an engine-neutral archive (JSON Lines) of every table.
    Export {
        /// Archive file.
        #[arg(long)]
        output: PathBuf,
    },
    /// Load an archive written by `rune db export` (rows already present are skipped).
    Import {
        /// Archive file.
        file: PathBuf,
    },
    /// Test aid (hidden): creates COUNT jobs one at a time, printing each id only after
    /// its commit, so crash tests know exactly which jobs were acknowledged.
    #[command(hide = true)]
    WriteTestJobs {
        /// Jobs to create.
        #[arg(long, default_value_t = 1000)]
        count: u64,
    },
    /// Copy everything from an SQLite database into PostgreSQL (re-runnable).
    MigrateToPostgres {
        /// Source (default: the configured database).
        #[arg(long)]
        source: Option<String>,
        /// Target PostgreSQL URL.
        #[arg(long)]
        target: String,
        /// Only count what would be copied.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The clap definition is internally consistent.
    #[test]
    fn cli_debug_assert() {
        Cli::command().debug_assert();
    }

    /// Rollback needs a target; a non-numeric one is a usage error naming the flag.
    #[test]
    fn rollback_requires_numeric_target() {
        assert!(Cli::try_parse_from(["rune", "db", "rollback"]).is_err());
        let err = Cli::try_parse_from(["rune", "db", "rollback", "--to", "two"]).unwrap_err().to_string();
        assert!(err.contains("--to"), "{err}");
        assert!(Cli::try_parse_from(["rune", "db", "rollback", "--to", "1", "--yes"]).is_ok());
    }
}
