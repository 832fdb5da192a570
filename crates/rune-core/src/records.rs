//! Stored records other than jobs: events, artifacts, chain state and schedules.
//!
//! These are the shapes the store persists and the API returns; they carry no behaviour
//! beyond small pure helpers (the chain's overall status, artifact content types).

use crate::job::{JobId, JobKind, TenantId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One recorded step of a job (a phase span or a log line), in `workflow_events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobEvent {
    /// Monotonic id, the SSE `Last-Event-ID`.
    pub id: i64,
    /// The job it belongs to.
    #[schema(value_type = String)]
    pub job_id: JobId,
    /// Event name, e.g. `agent.ask`, `provision`, `log`.
    pub event: String,
    /// `ok` or `error`.
    pub status: String,
    /// Span duration, when the event is a span.
    pub duration_ms: Option<f64>,
    /// Error class, when `status` is `error`.
    pub error_type: Option<String>,
    /// Free-form labels (JSON object).
    pub labels: serde_json::Value,
    /// When it was recorded.
    pub recorded_at: Timestamp,
}

/// An event to append; the store assigns `id` and `recorded_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJobEvent {
    /// Event name.
    pub event: String,
    /// `ok` or `error`.
    pub status: String,
    /// Span duration.
    pub duration_ms: Option<f64>,
    /// Error class.
    pub error_type: Option<String>,
    /// Labels (JSON object).
    pub labels: serde_json::Value,
}

impl NewJobEvent {
    /// A successful event with no duration or labels.
    pub fn ok(event: impl Into<String>) -> Self {
        Self {
            event: event.into(),
            status: "ok".into(),
            duration_ms: None,
            error_type: None,
            labels: serde_json::Value::Object(Default::default()),
        }
    }
}

/// What an artifact is; decides its download content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// SLSA provenance (JSON).
    SlsaProvenance,
    /// Software bill of materials (JSON).
    Sbom,
    /// TLA+ model-checker report (text).
    TlaReport,
    /// Sigstore bundle.
    SigstoreBundle,
    /// Rekor transparency-log entry (JSON).
    RekorEntry,
    /// TPM attestation.
    TpmAttestation,
    /// Log output (text).
    Log,
    /// Screenshot (PNG).
    Screenshot,
    /// Benchmark report (JSON).
    Report,
}

impl ArtifactKind {
    /// Every kind.
    pub const ALL: [ArtifactKind; 9] = [
        ArtifactKind::SlsaProvenance,
        ArtifactKind::Sbom,
        ArtifactKind::TlaReport,
        ArtifactKind::SigstoreBundle,
        ArtifactKind::RekorEntry,
        ArtifactKind::TpmAttestation,
        ArtifactKind::Log,
        ArtifactKind::Screenshot,
        ArtifactKind::Report,
    ];

    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::SlsaProvenance => "slsa_provenance",
            ArtifactKind::Sbom => "sbom",
            ArtifactKind::TlaReport => "tla_report",
            ArtifactKind::SigstoreBundle => "sigstore_bundle",
            ArtifactKind::RekorEntry => "rekor_entry",
            ArtifactKind::TpmAttestation => "tpm_attestation",
            ArtifactKind::Log => "log",
            ArtifactKind::Screenshot => "screenshot",
            ArtifactKind::Report => "report",
        }
    }

    /// HTTP content type for downloads.
    pub const fn content_type(self) -> &'static str {
        match self {
            ArtifactKind::Screenshot => "image/png",
            ArtifactKind::Sbom | ArtifactKind::SlsaProvenance | ArtifactKind::RekorEntry | ArtifactKind::Report => {
                "application/json"
            }
            ArtifactKind::TlaReport | ArtifactKind::Log => "text/plain; charset=utf-8",
            ArtifactKind::SigstoreBundle | ArtifactKind::TpmAttestation => "application/octet-stream",
        }
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An artifact kind RUNE does not store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown artifact kind `{0}`; expected one of: slsa_provenance, sbom, tla_report, sigstore_bundle, rekor_entry, tpm_attestation, log, screenshot, report")]
pub struct UnknownArtifactKind(pub String);

impl FromStr for ArtifactKind {
    type Err = UnknownArtifactKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ArtifactKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownArtifactKind(s.to_owned()))
    }
}

/// An artifact's metadata (content is fetched separately).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// Identifier (UUIDv4).
    pub artifact_id: String,
    /// Owning job.
    pub job_id: JobId,
    /// What it is.
    pub kind: ArtifactKind,
    /// File name offered on download (never a path).
    pub name: String,
    /// Content length.
    pub size_bytes: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// When it was stored.
    pub created_at: Timestamp,
}

/// One agent's node in a multi-agent chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainNode {
    /// Node id.
    pub id: String,
    /// Agent that runs at this node.
    pub agent_name: String,
    /// `pending`, `running`, `success`, `failed` or `skipped`.
    pub status: String,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// Failure reason.
    pub error: Option<String>,
}

/// A directed edge between chain nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainEdge {
    /// Upstream node id.
    pub from: String,
    /// Downstream node id.
    pub to: String,
}

/// The state of a multi-agent chain run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ChainState {
    /// Nodes.
    pub nodes: Vec<ChainNode>,
    /// Edges.
    pub edges: Vec<ChainEdge>,
}

impl ChainState {
    /// The chain's overall status: any failed → failed; else any running → running;
    /// else any pending → pending; all skipped → skipped; empty → pending; else success.
    pub fn overall_status(&self) -> &'static str {
        let any = |s: &str| self.nodes.iter().any(|n| n.status == s);
        if self.nodes.is_empty() {
            "pending"
        } else if any("failed") {
            "failed"
        } else if any("running") {
            "running"
        } else if any("pending") {
            "pending"
        } else if self.nodes.iter().all(|n| n.status == "skipped") {
            "skipped"
        } else {
            "success"
        }
    }
}

/// What a scheduler does when a run is due while the previous one is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub enum ConcurrencyPolicy {
    /// Skip the new run.
    #[default]
    Forbid,
    /// Run both.
    Allow,
    /// Cancel the old run and start the new one.
    Replace,
}

impl ConcurrencyPolicy {
    /// The stored spelling (Kubernetes CronJob's).
    pub const fn as_str(self) -> &'static str {
        match self {
            ConcurrencyPolicy::Forbid => "Forbid",
            ConcurrencyPolicy::Allow => "Allow",
            ConcurrencyPolicy::Replace => "Replace",
        }
    }
}

impl FromStr for ConcurrencyPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Forbid" => Ok(Self::Forbid),
            "Allow" => Ok(Self::Allow),
            "Replace" => Ok(Self::Replace),
            other => Err(format!("unknown concurrency policy `{other}`; expected Forbid, Allow or Replace")),
        }
    }
}

/// A stored schedule: a job template fired by a cron expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// Identifier.
    pub schedule_id: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Human name, unique per tenant.
    pub name: String,
    /// Five-field cron, optionally prefixed with `TZ=`/`CRON_TZ=`.
    pub cron: String,
    /// Kind of job submitted when it fires.
    pub kind: JobKind,
    /// Canonical request JSON submitted when it fires.
    pub request_json: String,
    /// Suspended schedules never fire.
    pub suspended: bool,
    /// Who suspended it (`user`, `estop`), so a release resumes only its own.
    pub suspended_by: Option<String>,
    /// Overlap policy.
    pub concurrency_policy: ConcurrencyPolicy,
    /// A fire later than this many seconds after its time is skipped.
    pub starting_deadline_seconds: Option<u64>,
    /// Succeeded runs kept in history.
    pub successful_runs_history_limit: u32,
    /// Failed runs kept in history.
    pub failed_runs_history_limit: u32,
    /// Time of the last fire that was acted on.
    pub last_schedule_time: Option<Timestamp>,
    /// Job started by the last fire.
    pub last_job_id: Option<JobId>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}
