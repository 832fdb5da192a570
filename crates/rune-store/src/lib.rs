//! RUNE's job store: one [`Store`] trait, two real engines, and the tools that keep a
//! job database safe across upgrades, rollbacks, crashes and restores.
//!
//! # Layout
//!
//! - [`Store`]: every operation the server, workers and CLI need (jobs with
//!   compare-and-set status, idempotency, leases, events, chain state, artifacts,
//!   settings, schedules).
//! - [`sqlite`]: the default engine. WAL mode, one writer thread with group commit,
//!   a small pool of readers.
//! - [`postgres`]: for teams on several replicas; `FOR UPDATE SKIP LOCKED` queue.
//! - [`migrations`]: numbered up/down SQL per dialect, recorded with the down SQL.
//! - [`backup`]: online backups with manifests, `verify`, `restore`.
//! - [`archive`]: engine-neutral export/import and SQLite → PostgreSQL copy.
//! - [`url`]: database URL parsing.
//!
//! No SQL lives outside this crate.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> rune_store::Result<()> {
//! use rune_store::{open, NewJob, OpenOptions, CreateOutcome};
//! use rune_core::JobKind;
//!
//! let store = open("sqlite:///tmp/rune-demo/jobs.db", &OpenOptions::default()).await?;
//! let outcome = store.create_job(NewJob {
//!     tenant_id: "default".parse().unwrap(),
//!     kind: JobKind::CostEstimate,
//!     request_json: "{}".into(),
//!     idempotency_key: None,
//!     schedule_id: None,
//! }).await?;
//! assert!(matches!(outcome, CreateOutcome::Created(_)));
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod archive;
pub mod backup;
mod error;
pub mod lock;
pub mod migrations;
mod model;
pub mod postgres;
mod rows;
pub mod sqlite;
pub mod testhooks;
pub mod url;

pub use error::{Result, StoreError};
pub use model::*;
pub use url::DatabaseUrl;

use async_trait::async_trait;
use rune_core::records::{ArtifactKind, ArtifactMeta, ChainState, JobEvent, NewJobEvent, ScheduleRecord};
use rune_core::{JobId, JobRecord, TenantId, Timestamp};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The RUNE version recorded in migrations and manifests.
pub const RUNE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Apply pending migrations (after an automatic backup). When false, a database
    /// that is behind fails with [`StoreError::SchemaTooOld`].
    pub migrate: bool,
    /// Open even when the schema is newer than this binary knows, for read-only
    /// inspection and for `rune db rollback`. Writes must not be attempted.
    pub allow_newer_schema: bool,
    /// Where automatic pre-migration backups go (default: `backups/` beside an SQLite
    /// file; required for PostgreSQL).
    pub backup_dir: Option<PathBuf>,
    /// Directory relative SQLite paths resolve against.
    pub base_dir: PathBuf,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            migrate: true,
            allow_newer_schema: false,
            backup_dir: None,
            base_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        }
    }
}

/// Every persistent operation RUNE performs.
///
/// Implementations must make each method atomic. Status changes are compare-and-set
/// against [`rune_core::JobStatus::can_transition_to`]: an illegal change is reported as
/// [`UpdateOutcome::Rejected`] and changes nothing, on every engine.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The engine behind this store.
    fn engine(&self) -> Engine;

    /// The SQL dialect of the engine.
    fn dialect(&self) -> migrations::Dialect {
        match self.engine() {
            Engine::Sqlite => migrations::Dialect::Sqlite,
            Engine::Postgres => migrations::Dialect::Postgres,
        }
    }

    /// Creates a job in `queued` status, honouring its idempotency key: a key already
    /// used by the same tenant for the same kind returns the original job when the
    /// request is identical, and a conflict otherwise. Safe under concurrent calls.
    async fn create_job(&self, job: NewJob) -> Result<CreateOutcome>;

    /// Reads one job; with `tenant`, a job of another tenant reads as absent.
    async fn get_job(&self, tenant: Option<&TenantId>, id: &JobId) -> Result<Option<JobRecord>>;

    /// Changes a job's status if the transition is legal (and, with
    /// `update.lease_owner`, if that worker holds the lease). Sets `finished_at` on
    /// terminal statuses and clears the lease.
    async fn update_status(&self, id: &JobId, update: StatusUpdate) -> Result<UpdateOutcome>;

    /// Sets the progress message of a non-terminal job; returns false if the job is
    /// terminal or absent.
    async fn set_message(&self, id: &JobId, message: &str) -> Result<bool>;

    /// One page of jobs matching `query`.
    async fn list_jobs(&self, query: &JobQuery) -> Result<JobPage>;

    /// Counts by status and kind (of one tenant, or all).
    async fn count_jobs(&self, tenant: Option<&TenantId>) -> Result<JobCounts>;

    /// Claims the oldest queued job: it becomes `running`, leased to `owner` until
    /// `now + lease`, with `attempts` incremented. `None` when the queue is empty.
    /// Several claimers never get the same job.
    async fn claim_next_job(&self, owner: &str, lease: Duration) -> Result<Option<JobRecord>>;

    /// Extends the lease of a running job held by `owner`; false if the job is no
    /// longer running or leased to someone else (the worker should stop).
    async fn heartbeat(&self, id: &JobId, owner: &str, lease: Duration) -> Result<bool>;

    /// Gives a running job back to the queue because its worker is shutting down
    /// (`running → queued`, only while `owner` holds the lease). The claim is not counted
    /// as an attempt. False if the job is no longer this worker's.
    async fn release_lease(&self, id: &JobId, owner: &str, message: &str) -> Result<bool>;

    /// Takes or renews a named lease (e.g. the scheduler's leadership) for `ttl`: true
    /// when `owner` now holds it, false when another live owner does. Atomic across
    /// processes and replicas.
    async fn try_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool>;

    /// Puts running jobs whose lease expired before `now` back in the queue, or fails
    /// them with a clear reason once they used `max_attempts` attempts.
    async fn recover_expired_leases(&self, now: Timestamp, max_attempts: u32) -> Result<RecoveryReport>;

    /// Appends an event to a job's history; returns its id.
    async fn append_event(&self, job: &JobId, event: NewJobEvent) -> Result<i64>;

    /// Events of a job with id greater than `after_id`, oldest first, at most `limit`.
    async fn events_after(&self, job: &JobId, after_id: i64, limit: u32) -> Result<Vec<JobEvent>>;

    /// Replaces a job's chain state.
    async fn put_chain_state(&self, job: &JobId, state: &ChainState) -> Result<()>;

    /// A job's chain state, if any.
    async fn get_chain_state(&self, job: &JobId) -> Result<Option<ChainState>>;

    /// Stores an artifact's content, computing its size and SHA-256.
    async fn put_artifact(&self, job: &JobId, kind: ArtifactKind, name: &str, content: Vec<u8>)
        -> Result<ArtifactMeta>;

    /// A job's artifacts (metadata only), oldest first.
    async fn list_artifacts(&self, job: &JobId) -> Result<Vec<ArtifactMeta>>;

    /// One artifact of a job with its content.
    async fn get_artifact(&self, job: &JobId, artifact_id: &str) -> Result<Option<(ArtifactMeta, Vec<u8>)>>;

    /// A setting's JSON value.
    async fn get_setting(&self, key: &str) -> Result<Option<serde_json::Value>>;

    /// Creates or replaces a setting.
    async fn put_setting(&self, key: &str, value: &serde_json::Value) -> Result<()>;

    /// Deletes a setting; false if absent.
    async fn delete_setting(&self, key: &str) -> Result<bool>;

    /// Every setting.
    async fn list_settings(&self) -> Result<BTreeMap<String, serde_json::Value>>;

    /// Creates a schedule; a duplicate name within the tenant is a conflict.
    async fn create_schedule(&self, spec: ScheduleSpec) -> Result<ScheduleRecord>;

    /// One schedule (of `tenant`, when given).
    async fn get_schedule(&self, tenant: Option<&TenantId>, id: &str) -> Result<Option<ScheduleRecord>>;

    /// Schedules of one tenant, or all, by name.
    async fn list_schedules(&self, tenant: Option<&TenantId>) -> Result<Vec<ScheduleRecord>>;

    /// Replaces a schedule's spec (keeps its id, history and last fire).
    async fn update_schedule(&self, id: &str, spec: ScheduleSpec) -> Result<Option<ScheduleRecord>>;

    /// Suspends (`Some(by)`) or resumes (`None`) a schedule. When resuming with
    /// `only_if_suspended_by`, schedules suspended by someone else stay suspended.
    async fn set_schedule_suspended(
        &self,
        id: &str,
        suspended_by: Option<&str>,
        only_if_suspended_by: Option<&str>,
    ) -> Result<Option<ScheduleRecord>>;

    /// Records that a schedule fired at `fire_time` and started `job` (if any).
    async fn record_schedule_fire(&self, id: &str, fire_time: Timestamp, job: Option<&JobId>) -> Result<()>;

    /// Deletes a schedule; false if absent.
    async fn delete_schedule(&self, tenant: Option<&TenantId>, id: &str) -> Result<bool>;

    /// Schema version, pending migrations and history.
    async fn schema_status(&self) -> Result<SchemaStatus>;

    /// Row counts of every data table present.
    async fn table_counts(&self) -> Result<BTreeMap<String, u64>>;

    /// Jobs ordered by id after `after` (exclusive), for manifests and exports.
    async fn scan_jobs(&self, after: Option<&str>, limit: u32) -> Result<Vec<JobRecord>>;

    /// Engine-level integrity problems (empty when healthy).
    async fn integrity_check(&self) -> Result<Vec<String>>;

    /// Applies migrations up to `target` (latest when `None`), each in its own
    /// transaction under the migration lock. Returns the versions applied. This is the
    /// raw step: [`backup::migrate_with_backup`] is the safe path that backs up first.
    async fn migrate_to(&self, target: Option<i64>) -> Result<Vec<i64>>;

    /// Rolls the schema back to `target` using the down SQL recorded in the database.
    /// Returns the versions undone. [`backup::rollback_with_backup`] backs up first.
    async fn rollback_to(&self, target: i64) -> Result<Vec<i64>>;

    /// Writes an online, consistent backup to `dest` (SQLite: a database file;
    /// PostgreSQL: a logical archive). The caller writes the manifest.
    async fn backup_to(&self, dest: &std::path::Path) -> Result<()>;

    /// Streams every row of a data table, ordered by its key, as JSON objects keyed by
    /// column (blobs as `{"$base64": …}`), through a bounded channel.
    fn export_stream(
        &self,
        table: &str,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<serde_json::Map<String, serde_json::Value>>>>;

    /// Inserts exported rows into a table, ignoring rows whose key already exists;
    /// returns how many were inserted.
    async fn import_rows(&self, table: &str, rows: Vec<serde_json::Map<String, serde_json::Value>>) -> Result<u64>;

    /// Reads a `rune_meta` value.
    async fn get_meta(&self, key: &str) -> Result<Option<String>>;

    /// Sets a `rune_meta` value.
    async fn set_meta(&self, key: &str, value: &str) -> Result<()>;
}

/// Opens the store at `url` (see [`DatabaseUrl`]), migrating it when allowed.
pub async fn open(url: &str, options: &OpenOptions) -> Result<Arc<dyn Store>> {
    let parsed = DatabaseUrl::parse(url, &options.base_dir)?;
    open_parsed(&parsed, options).await
}

/// Opens an already parsed URL: connects, refuses a schema newer than this binary
/// (unless `allow_newer_schema`), checks the recorded checksums, and migrates (after an
/// automatic backup) or refuses a schema that is behind.
pub async fn open_parsed(url: &DatabaseUrl, options: &OpenOptions) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match url {
        DatabaseUrl::Sqlite { .. } => Arc::new(sqlite::SqliteStore::open_raw(url, options).await?),
        DatabaseUrl::Postgres { .. } => Arc::new(postgres::PgStore::open_raw(url, options).await?),
    };
    if options.allow_newer_schema {
        return Ok(store);
    }
    let status = store.schema_status().await?;
    let known = migrations::latest_version();
    if status.schema_version > known {
        let backup_dir = backup::backup_dir(url, options);
        let backup_hint = match backup_dir.as_deref().and_then(|d| backup::newest_backup_at_or_below(d, known)) {
            Some(path) => {
                format!(", or restore the backup taken before the upgrade: `rune db restore {}`", path.display())
            }
            None => String::new(),
        };
        return Err(StoreError::SchemaTooNew { found: status.schema_version, known, backup_hint });
    }
    for applied in &status.applied {
        if let Some(m) = migrations::by_version(applied.version) {
            let expected = m.checksum(store.dialect());
            if applied.checksum != expected {
                return Err(StoreError::ChecksumMismatch {
                    version: applied.version,
                    name: applied.name.clone(),
                    found: applied.checksum.clone(),
                    expected,
                });
            }
        }
    }
    if status.schema_version < known {
        if !options.migrate {
            return Err(StoreError::SchemaTooOld { found: status.schema_version, known });
        }
        backup::migrate_with_backup(store.as_ref(), None, backup::backup_dir(url, options).as_deref()).await?;
    }
    Ok(store)
}
