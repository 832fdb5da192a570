//! Inputs and outputs of [`crate::Store`] operations that are not stored records.

use rune_core::records::ConcurrencyPolicy;
use rune_core::{JobId, JobKind, JobRecord, JobStatus, TenantId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest page [`crate::Store::list_jobs`] returns.
pub const MAX_PAGE_SIZE: u32 = 500;

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Owner.
    pub tenant_id: TenantId,
    /// Kind.
    pub kind: JobKind,
    /// Canonical request JSON (already validated).
    pub request_json: String,
    /// Idempotency key, if the client sent one.
    pub idempotency_key: Option<String>,
    /// Schedule that fired it, if any.
    pub schedule_id: Option<String>,
}

/// What [`crate::Store::create_job`] did.
#[allow(clippy::large_enum_variant)] // as for UpdateOutcome
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    /// A new job was stored.
    Created(JobRecord),
    /// The idempotency key was seen before with the same payload: the original job.
    Replayed(JobRecord),
    /// The idempotency key was seen before with a different payload.
    KeyConflict {
        /// The job the key belongs to.
        existing: JobId,
    },
}

/// A compare-and-set status change.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// New status; must be a legal successor of the current one.
    pub status: JobStatus,
    /// Result JSON (for `succeeded`).
    pub result_json: Option<String>,
    /// Error text (for `failed`/`cancelled`).
    pub error: Option<String>,
    /// Progress message.
    pub message: Option<String>,
    /// Only apply if this worker holds the lease (for updates from a worker).
    pub lease_owner: Option<String>,
}

impl StatusUpdate {
    /// A bare status change.
    pub fn to(status: JobStatus) -> Self {
        Self { status, result_json: None, error: None, message: None, lease_owner: None }
    }
}

/// What [`crate::Store::update_status`] did.
// Returned once per call and matched at once, never stored in bulk: boxing the record
// would cost an allocation on every update for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOutcome {
    /// Applied; the record after the change.
    Updated(JobRecord),
    /// Not applied: the job's current status does not allow it (e.g. already terminal),
    /// or the lease belongs to another worker.
    Rejected {
        /// The job's current status.
        current: JobStatus,
    },
    /// No such job.
    NotFound,
}

/// Sort order of job listings (by creation time, then id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Newest first.
    #[default]
    Desc,
    /// Oldest first.
    Asc,
}

/// Filters and position for [`crate::Store::list_jobs`].
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// Only this tenant's jobs (`None`: all tenants, for administration).
    pub tenant_id: Option<TenantId>,
    /// Only this kind.
    pub kind: Option<JobKind>,
    /// Only this status.
    pub status: Option<JobStatus>,
    /// Created at or after.
    pub created_from: Option<Timestamp>,
    /// Created strictly before.
    pub created_to: Option<Timestamp>,
    /// Only jobs fired by this schedule.
    pub schedule_id: Option<String>,
    /// Order.
    pub order: SortOrder,
    /// Page size (clamped to 1..=[`MAX_PAGE_SIZE`]).
    pub limit: u32,
    /// Continue after this cursor (from a previous page's `next_cursor`).
    pub cursor: Option<Cursor>,
}

/// An opaque pagination cursor (`<micros>.<job id>`), stable across inserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Creation time of the last row returned.
    pub created_at: Timestamp,
    /// Id of the last row returned.
    pub job_id: String,
}

impl Cursor {
    /// The text form handed to clients.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at.as_micros(), self.job_id)
    }

    /// Parses a cursor from a client.
    pub fn decode(s: &str) -> Option<Self> {
        let (micros, id) = s.split_once('.')?;
        let micros: i64 = micros.parse().ok()?;
        let job_id: JobId = id.parse().ok()?;
        Some(Self { created_at: Timestamp::from_micros(micros), job_id: job_id.into() })
    }
}

/// One page of jobs.
#[derive(Debug, Clone)]
pub struct JobPage {
    /// The rows.
    pub jobs: Vec<JobRecord>,
    /// Cursor for the next page, if there may be one.
    pub next_cursor: Option<Cursor>,
}

/// Job counts by status and kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobCounts {
    /// Total jobs.
    pub total: u64,
    /// By status.
    pub by_status: BTreeMap<String, u64>,
    /// By kind.
    pub by_kind: BTreeMap<String, u64>,
    /// By kind, then status.
    pub by_kind_status: BTreeMap<String, BTreeMap<String, u64>>,
}

/// What lease recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Jobs put back in the queue.
    pub requeued: Vec<JobId>,
    /// Jobs failed because they used up their attempts.
    pub failed: Vec<JobId>,
}

/// Fields of a schedule to create or replace.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    /// Owner.
    pub tenant_id: TenantId,
    /// Unique name within the tenant.
    pub name: String,
    /// Cron expression (validated by the caller).
    pub cron: String,
    /// Kind of job it submits.
    pub kind: JobKind,
    /// Canonical request JSON.
    pub request_json: String,
    /// Start suspended.
    pub suspended: bool,
    /// Overlap policy.
    pub concurrency_policy: ConcurrencyPolicy,
    /// Starting deadline.
    pub starting_deadline_seconds: Option<u64>,
    /// Succeeded runs to keep.
    pub successful_runs_history_limit: u32,
    /// Failed runs to keep.
    pub failed_runs_history_limit: u32,
}

/// Schema state of a database.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaStatus {
    /// Applied version (0: empty database).
    pub schema_version: i64,
    /// Newest version this binary knows.
    pub binary_schema_version: i64,
    /// Versions this binary would apply.
    pub pending: Vec<i64>,
    /// Applied migrations as recorded.
    pub applied: Vec<crate::migrations::AppliedMigration>,
    /// Whether the tables of an original (Python) RUNE were found without RUNE's
    /// bookkeeping (adoption pending).
    pub original_detected: bool,
    /// Stable identity of this database (set on first migration).
    pub database_id: Option<String>,
}
