//! Job kinds, the job status state machine, identifiers and the stored job record.
//!
//! One [`JobStatus`] enum with one spelling is used everywhere (database, API, CLI, UI,
//! operator). Its transition table is the single source of truth for what a store may
//! accept: terminal states never change.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Maximum length of a tenant or job identifier.
pub const MAX_ID_LEN: usize = 64;

/// What a job does. The first four exist in the original RUNE; the last two are new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// Provision or reuse a backend, run an agent over a question or suite, score it.
    Benchmark,
    /// Ask one agent one question against an existing backend.
    AgenticAgent,
    /// Provision (or check) an LLM serving instance.
    LlmInstance,
    /// Pre-flight cost estimate.
    CostEstimate,
    /// Inference load test (`rune bench-llm`).
    LlmLoad,
    /// Matrix of agents × models over a suite.
    Suite,
}

impl JobKind {
    /// Every kind, in a stable order.
    pub const ALL: [JobKind; 6] = [
        JobKind::Benchmark,
        JobKind::AgenticAgent,
        JobKind::LlmInstance,
        JobKind::CostEstimate,
        JobKind::LlmLoad,
        JobKind::Suite,
    ];

    /// The spelling used in URLs, the database and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobKind::Benchmark => "benchmark",
            JobKind::AgenticAgent => "agentic-agent",
            JobKind::LlmInstance => "llm-instance",
            JobKind::CostEstimate => "cost-estimate",
            JobKind::LlmLoad => "llm-load",
            JobKind::Suite => "suite",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job kind name that RUNE does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown job kind `{0}`; expected one of: benchmark, agentic-agent, llm-instance, cost-estimate, llm-load, suite"
)]
pub struct UnknownJobKind(pub String);

impl FromStr for JobKind {
    type Err = UnknownJobKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownJobKind(s.to_owned()))
    }
}

/// Where a job is in its life.
///
/// ```text
/// queued ──▶ running ──▶ succeeded | failed | cancelled
///    └──────────────────────────────────────▶ cancelled
/// ```
///
/// The only other movement is lease recovery (`running → queued` after the worker that
/// held the job died), which stores perform explicitly and never through a status update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Accepted and waiting for a worker.
    Queued,
    /// Claimed by a worker that holds its lease.
    Running,
    /// Finished with a result.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Stopped at a user's or the E-Stop's request.
    Cancelled,
}

impl JobStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [JobStatus; 5] =
        [JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded, JobStatus::Failed, JobStatus::Cancelled];

    /// The spelling used in the database and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Terminal statuses never change again.
    pub const fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled)
    }

    /// Whether a status update from `self` to `next` is legal.
    pub const fn can_transition_to(self, next: JobStatus) -> bool {
        matches!(
            (self, next),
            (JobStatus::Queued, JobStatus::Running)
                | (JobStatus::Queued, JobStatus::Cancelled)
                | (JobStatus::Running, JobStatus::Succeeded)
                | (JobStatus::Running, JobStatus::Failed)
                | (JobStatus::Running, JobStatus::Cancelled)
        )
    }

    /// The statuses a job must currently have for an update to `next` to be legal.
    pub fn legal_predecessors(next: JobStatus) -> Vec<JobStatus> {
        JobStatus::ALL.into_iter().filter(|s| s.can_transition_to(next)).collect()
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that RUNE does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job status `{0}`; expected one of: queued, running, succeeded, failed, cancelled")]
pub struct UnknownJobStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownJobStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownJobStatus(s.to_owned()))
    }
}

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    /// Empty string.
    #[error("{what} must not be empty")]
    Empty {
        /// `tenant id` or `job id`.
        what: &'static str,
    },
    /// Over [`MAX_ID_LEN`] characters.
    #[error("{what} is {len} characters long; the maximum is {MAX_ID_LEN}")]
    TooLong {
        /// `tenant id` or `job id`.
        what: &'static str,
        /// Length found.
        len: usize,
    },
    /// A character outside `[A-Za-z0-9._-]`.
    #[error("{what} may contain only letters, digits, '.', '_' and '-'")]
    BadCharacter {
        /// `tenant id` or `job id`.
        what: &'static str,
    },
}

fn check_id(what: &'static str, s: &str) -> Result<(), InvalidId> {
    if s.is_empty() {
        return Err(InvalidId::Empty { what });
    }
    if s.len() > MAX_ID_LEN {
        return Err(InvalidId::TooLong { what, len: s.chars().count() });
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(InvalidId::BadCharacter { what });
    }
    Ok(())
}

/// A tenant: the unit of isolation for jobs, schedules and artifacts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// The tenant used when authentication is disabled.
    pub fn default_tenant() -> Self {
        Self("default".to_owned())
    }
    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        check_id("tenant id", &s)?;
        Ok(Self(s))
    }
}

impl FromStr for TenantId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<TenantId> for String {
    fn from(t: TenantId) -> String {
        t.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job identifier (a UUIDv4 for jobs RUNE creates; any valid id for adopted rows).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    /// A fresh random identifier.
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JobId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        check_id("job id", &s)?;
        Ok(Self(s))
    }
}

impl FromStr for JobId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<JobId> for String {
    fn from(t: JobId) -> String {
        t.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job as stored: the original RUNE columns plus RUNE's queue bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Identifier.
    pub job_id: JobId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// What the job does.
    pub kind: JobKind,
    /// Where it is in its life.
    pub status: JobStatus,
    /// The validated request, as canonical (sorted-key) JSON text.
    pub request_json: String,
    /// The result, as JSON text, once succeeded.
    pub result_json: Option<String>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// Last human-readable progress message.
    pub message: Option<String>,
    /// When it was accepted.
    pub created_at: Timestamp,
    /// When any column last changed.
    pub updated_at: Timestamp,
    /// How many times a worker has claimed it (recovery retries count).
    pub attempts: u32,
    /// Worker that holds the lease while running.
    pub lease_owner: Option<String>,
    /// When the lease lapses unless renewed by a heartbeat.
    pub lease_expires_at: Option<Timestamp>,
    /// When a worker first started it.
    pub started_at: Option<Timestamp>,
    /// When it reached a terminal status.
    pub finished_at: Option<Timestamp>,
    /// The schedule that fired it, if any.
    pub schedule_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transition table is exactly the documented one: five legal moves, and none
    /// out of a terminal state.
    #[test]
    fn transition_table_is_exact() {
        let legal: Vec<_> = JobStatus::ALL
            .iter()
            .flat_map(|a| JobStatus::ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_transition_to(*b))
            .collect();
        assert_eq!(
            legal,
            [
                (JobStatus::Queued, JobStatus::Running),
                (JobStatus::Queued, JobStatus::Cancelled),
                (JobStatus::Running, JobStatus::Succeeded),
                (JobStatus::Running, JobStatus::Failed),
                (JobStatus::Running, JobStatus::Cancelled),
            ]
        );
        for s in JobStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(JobStatus::ALL.iter().all(|n| !s.can_transition_to(*n)), "{s} must be final");
        }
    }

    /// Names round-trip through text and JSON with one spelling.
    #[test]
    fn names_round_trip() {
        for k in JobKind::ALL {
            assert_eq!(k.as_str().parse::<JobKind>().unwrap(), k);
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!("canceled".parse::<JobStatus>().is_err());
        assert!("bench".parse::<JobKind>().unwrap_err().to_string().contains("expected one of"));
    }

    /// Identifiers are bounded and restricted to a safe alphabet.
    #[test]
    fn ids_are_checked() {
        assert!("team-a_1.x".parse::<TenantId>().is_ok());
        assert_eq!("".parse::<TenantId>().unwrap_err(), InvalidId::Empty { what: "tenant id" });
        assert!(matches!("a".repeat(65).parse::<JobId>(), Err(InvalidId::TooLong { len: 65, .. })));
        assert!("a/../b".parse::<JobId>().is_err());
        assert!(serde_json::from_str::<TenantId>("\"bad tenant\"").is_err());
        assert_eq!(JobId::new_random().as_str().len(), 36);
    }
}
