//! What executes a claimed job: the [`JobRunner`] trait, and the runner this build
//! ships.
//!
//! The engine crate (backends, agents, suites) plugs in here with its own runner; the
//! API server only knows the trait. [`BuiltinRunner`] runs `cost-estimate` jobs for
//! real and fails every other kind with a clear "not available in this build" error, so
//! no job is ever left waiting for code that does not exist.

use async_trait::async_trait;
use rune_core::contracts::JobRequest;
use rune_core::records::NewJobEvent;
use rune_core::{JobId, JobKind, JobRecord};
use rune_store::Store;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why a job failed; becomes the job's `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JobFailure(pub String);

/// What a running job can use: its cancellation signal and its event log.
#[derive(Clone)]
pub struct JobContext {
    /// Fires when the job is cancelled (user, E-Stop, timeout, shutdown). Runners must
    /// stop promptly and kill any subprocess they started.
    pub cancel: CancellationToken,
    store: Arc<dyn Store>,
    job_id: JobId,
}

impl JobContext {
    /// A context for `job_id`.
    pub fn new(store: Arc<dyn Store>, job_id: JobId, cancel: CancellationToken) -> Self {
        Self { cancel, store, job_id }
    }

    /// Records an event (phase span or log line); failures to record are logged, not
    /// fatal to the job.
    pub async fn event(&self, event: NewJobEvent) {
        if let Err(e) = self.store.append_event(&self.job_id, event).await {
            tracing::warn!(job_id = %self.job_id, error = %e, "could not record a job event");
        }
    }

    /// Updates the job's progress message.
    pub async fn progress(&self, message: &str) {
        if let Err(e) = self.store.set_message(&self.job_id, message).await {
            tracing::warn!(job_id = %self.job_id, error = %e, "could not update the job message");
        }
    }
}

/// Executes jobs of some kinds.
#[async_trait]
pub trait JobRunner: Send + Sync + 'static {
    /// Whether this runner executes `kind` (others fail with a clear error).
    fn supports(&self, kind: JobKind) -> bool;

    /// Runs the job to completion; the value becomes the job's `result`.
    async fn run(&self, job: &JobRecord, ctx: JobContext) -> Result<serde_json::Value, JobFailure>;
}

/// The runner of this build: cost estimates only.
#[derive(Debug, Default, Clone)]
pub struct BuiltinRunner;

#[async_trait]
impl JobRunner for BuiltinRunner {
    fn supports(&self, kind: JobKind) -> bool {
        kind == JobKind::CostEstimate
    }

    async fn run(&self, job: &JobRecord, ctx: JobContext) -> Result<serde_json::Value, JobFailure> {
        if job.kind != JobKind::CostEstimate {
            return Err(JobFailure(format!(
                "job kind `{}` is not available in this build of RUNE (no benchmark engine is linked); \
                 this server runs cost-estimate jobs only",
                job.kind
            )));
        }
        let body: serde_json::Value = serde_json::from_str(&job.request_json)
            .map_err(|e| JobFailure(format!("stored request is not JSON: {e}")))?;
        let JobRequest::CostEstimate(req) = JobRequest::parse(JobKind::CostEstimate, &body)
            .map_err(|e| JobFailure(format!("stored request is invalid: {e}")))?
        else {
            return Err(JobFailure("stored request has the wrong kind".into()));
        };
        let started = std::time::Instant::now();
        let estimate = rune_core::cost::estimate(&req).map_err(|e| JobFailure(e.to_string()))?;
        let mut event = NewJobEvent::ok("cost.estimate");
        event.duration_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        ctx.event(event).await;
        serde_json::to_value(estimate).map_err(|e| JobFailure(e.to_string()))
    }
}
