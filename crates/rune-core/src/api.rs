//! The HTTP API's wire contracts, shared by the server, the typed client, the UI and
//! the operator so they cannot drift.
//!
//! Field names follow the original RUNE API where it had the route (`job_id`, `status`,
//! `kind`, `result`, `error`); what the original lacked (listing, schedules, E-Stop)
//! follows the same snake_case style. Times are RFC 3339 strings in UTC.

use crate::job::{JobKind, JobRecord, JobStatus};
use crate::records::{ArtifactMeta, ConcurrencyPolicy, JobEvent, ScheduleRecord};
use crate::validate::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Body of `202 Accepted` after `POST /v1/jobs/{kind}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubmitResponse {
    /// The job (new, or the original one on an idempotent replay).
    pub job_id: String,
    /// Always `accepted` (the original's spelling).
    pub status: String,
}

/// Every error answer: `{"error": "...", "code": "..."}`, plus field errors on 400/422.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// Stable machine code (`invalid_request`, `not_found`, `rate_limited`, …).
    pub code: String,
    /// Per-field problems, when the request body was invalid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// A job as the API shows it (`GET /v1/jobs/{id}` and list entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    /// Identifier.
    pub job_id: String,
    /// Owner.
    pub tenant_id: String,
    /// Kind.
    pub kind: JobKind,
    /// Status.
    pub status: JobStatus,
    /// Last progress message.
    pub message: Option<String>,
    /// The validated request.
    pub request: Value,
    /// The result, once succeeded.
    pub result: Option<Value>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// Accepted at.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// First started.
    pub started_at: Option<String>,
    /// Reached a terminal status.
    pub finished_at: Option<String>,
    /// Claims by workers so far.
    pub attempts: u32,
    /// Schedule that fired it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<String>,
}

impl JobView {
    /// Builds the view of a stored job (JSON columns parsed; unparsable text is shown as
    /// a string rather than dropped).
    pub fn from_record(job: &JobRecord) -> Self {
        let parse = |s: &str| serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()));
        Self {
            job_id: job.job_id.to_string(),
            tenant_id: job.tenant_id.to_string(),
            kind: job.kind,
            status: job.status,
            message: job.message.clone(),
            request: parse(&job.request_json),
            result: job.result_json.as_deref().map(parse),
            error: job.error.clone(),
            created_at: job.created_at.to_rfc3339(),
            updated_at: job.updated_at.to_rfc3339(),
            started_at: job.started_at.map(|t| t.to_rfc3339()),
            finished_at: job.finished_at.map(|t| t.to_rfc3339()),
            attempts: job.attempts,
            schedule_id: job.schedule_id.clone(),
        }
    }
}

/// `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobList {
    /// This page.
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `DELETE /v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CancelResponse {
    /// The job.
    pub job_id: String,
    /// Its status after the request (`cancelled`, or the terminal status it already had).
    pub status: JobStatus,
}

/// `GET /v1/jobs/{id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventList {
    /// Events after `after`, oldest first.
    pub events: Vec<JobEvent>,
}

/// One artifact in a listing, with where to download it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArtifactView {
    /// Identifier.
    pub artifact_id: String,
    /// Kind.
    pub kind: String,
    /// File name.
    pub name: String,
    /// Size.
    pub size_bytes: u64,
    /// Hex SHA-256.
    pub sha256: String,
    /// Stored at.
    pub created_at: String,
    /// Relative download URL.
    pub download_url: String,
}

impl ArtifactView {
    /// The view of `meta` under `base` (`/v1/runs/{id}/artifacts`).
    pub fn from_meta(meta: &ArtifactMeta, base: &str) -> Self {
        Self {
            artifact_id: meta.artifact_id.clone(),
            kind: meta.kind.to_string(),
            name: meta.name.clone(),
            size_bytes: meta.size_bytes,
            sha256: meta.sha256.clone(),
            created_at: meta.created_at.to_rfc3339(),
            download_url: format!("{base}/{}", meta.artifact_id),
        }
    }
}

/// `GET /v1/runs/{id}/artifacts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArtifactList {
    /// The run.
    pub run_id: String,
    /// Its artifacts.
    pub artifacts: Vec<ArtifactView>,
    /// Totals.
    pub summary: ArtifactSummary,
}

/// Totals of an artifact listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArtifactSummary {
    /// Artifacts.
    pub total_count: usize,
    /// Kinds present, sorted.
    pub kinds_present: Vec<String>,
}

/// Body of `POST /v1/schedules` and `PUT /v1/schedules/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleRequest {
    /// Unique name within the tenant.
    pub name: String,
    /// Cron expression (5 fields, optional `TZ=` prefix).
    pub cron: String,
    /// Job kind submitted when it fires.
    pub kind: JobKind,
    /// Request body for that kind (validated like a submission).
    pub request: Value,
    /// Create suspended.
    #[serde(default)]
    pub suspended: bool,
    /// Overlap policy (default Forbid).
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// Skip a fire more than this late.
    #[serde(default)]
    pub starting_deadline_seconds: Option<u64>,
    /// Succeeded runs kept in the schedule's history (default 3).
    #[serde(default = "default_success_history")]
    pub successful_runs_history_limit: u32,
    /// Failed runs kept (default 1).
    #[serde(default = "default_failed_history")]
    pub failed_runs_history_limit: u32,
}

fn default_success_history() -> u32 {
    3
}

fn default_failed_history() -> u32 {
    1
}

/// A schedule as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleView {
    /// Identifier.
    pub schedule_id: String,
    /// Name.
    pub name: String,
    /// Cron expression.
    pub cron: String,
    /// Kind.
    pub kind: JobKind,
    /// Request submitted on each fire.
    pub request: Value,
    /// Suspended schedules never fire.
    pub suspended: bool,
    /// Who suspended it (`user` or `estop`).
    pub suspended_by: Option<String>,
    /// Overlap policy.
    pub concurrency_policy: ConcurrencyPolicy,
    /// Starting deadline.
    pub starting_deadline_seconds: Option<u64>,
    /// History limits.
    pub successful_runs_history_limit: u32,
    /// History limits.
    pub failed_runs_history_limit: u32,
    /// Last fire acted on.
    pub last_schedule_time: Option<String>,
    /// Job of the last fire.
    pub last_job_id: Option<String>,
    /// Next fire (absent while suspended).
    pub next_fire_time: Option<String>,
    /// Created.
    pub created_at: String,
}

impl ScheduleView {
    /// The view of a stored schedule; `next_fire_time` is filled by the caller.
    pub fn from_record(s: &ScheduleRecord, next_fire_time: Option<String>) -> Self {
        Self {
            schedule_id: s.schedule_id.clone(),
            name: s.name.clone(),
            cron: s.cron.clone(),
            kind: s.kind,
            request: serde_json::from_str(&s.request_json).unwrap_or(Value::Null),
            suspended: s.suspended,
            suspended_by: s.suspended_by.clone(),
            concurrency_policy: s.concurrency_policy,
            starting_deadline_seconds: s.starting_deadline_seconds,
            successful_runs_history_limit: s.successful_runs_history_limit,
            failed_runs_history_limit: s.failed_runs_history_limit,
            last_schedule_time: s.last_schedule_time.map(|t| t.to_rfc3339()),
            last_job_id: s.last_job_id.as_ref().map(|j| j.to_string()),
            next_fire_time,
            created_at: s.created_at.to_rfc3339(),
        }
    }
}

/// `GET /v1/schedules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleList {
    /// Schedules, by name.
    pub schedules: Vec<ScheduleView>,
}

/// Body of `POST /v1/estop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct EstopRequest {
    /// Why (shown in status, logs and the UI banner).
    #[serde(default)]
    pub reason: Option<String>,
    /// Who (defaults to the tenant).
    #[serde(default)]
    pub actor: Option<String>,
}

/// `GET /v1/estop` and the answer to trigger/release. The lists show only the caller's
/// own schedules and jobs; the totals count every tenant's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct EstopStatus {
    /// Whether the E-Stop is engaged.
    pub active: bool,
    /// Who engaged it (the last time).
    pub actor: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// When it was engaged.
    pub triggered_at: Option<String>,
    /// Who released it (the last time).
    pub released_by: Option<String>,
    /// When it was last released.
    pub released_at: Option<String>,
    /// The caller's schedules the last stop suspended (resumed on release).
    pub suspended_schedules: Vec<String>,
    /// The caller's jobs the last stop cancelled.
    pub cancelled_jobs: Vec<String>,
    /// Schedules the last stop suspended, all tenants.
    pub suspended_schedules_total: usize,
    /// Jobs the last stop cancelled, all tenants.
    pub cancelled_jobs_total: usize,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    pub status: String,
    /// Named checks and their outcome.
    pub checks: std::collections::BTreeMap<String, String>,
    /// Schema version of the database.
    pub schema_version: Option<i64>,
    /// Database engine (`sqlite` or `postgres`).
    pub database: String,
    /// Server version.
    pub version: String,
}
