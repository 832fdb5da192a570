//! The durable job engine: a bounded pool of workers that claim jobs from the store's
//! queue under a lease, run them, and record the outcome.
//!
//! Durability comes from the store: a job is claimed with a lease (owner + expiry) that a
//! heartbeat renews; if this process dies, the lease lapses and any replica's recovery
//! loop requeues the job (up to `max_attempts`, then fails it with the reason). A worker
//! finishes a job with a compare-and-set that names its lease, so a worker that lost its
//! lease can never overwrite what happened since (e.g. a cancel).
//!
//! Cancellation: `DELETE /v1/jobs/{id}` marks the job cancelled in the store and fires
//! the local [`CancellationToken`]; a job running on another replica notices at its next
//! heartbeat (the store refuses to renew a lease on a job that is no longer running).

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::runner::{JobContext, JobRunner};
use rune_core::records::NewJobEvent;
use rune_core::{JobId, JobRecord, JobStatus, Timestamp};
use rune_store::{StatusUpdate, Store, UpdateOutcome};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long an idle worker waits before polling the queue again (submissions to this
/// process wake it at once; this bounds the delay for jobs submitted to other replicas).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Longest wait between heartbeats, whatever the lease length: bounds how long a job
/// cancelled on another replica keeps running here.
const MAX_HEARTBEAT: Duration = Duration::from_secs(2);

/// Test aid for crash tests: `RUNE_TEST_JOB_DELAY_MS` holds every job in `running` that
/// long before it executes, so a test can kill the server while jobs run. Unset in
/// production (read once).
fn test_job_delay() -> Option<Duration> {
    static DELAY: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        std::env::var("RUNE_TEST_JOB_DELAY_MS").ok().and_then(|v| v.parse().ok()).map(Duration::from_millis)
    })
}

/// Why a running job was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    /// A user or the E-Stop cancelled it (the store already says `cancelled`).
    Cancelled,
    /// The server is shutting down: give the job back to the queue.
    Shutdown,
}

struct RunningJob {
    token: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
}

/// The worker pool of one server process.
pub struct JobEngine {
    store: Arc<dyn Store>,
    runner: Arc<dyn JobRunner>,
    config: Arc<ServerConfig>,
    metrics: Arc<Metrics>,
    /// Jobs running in this process, by id: lets a cancel reach the worker at once.
    /// A `std` mutex: only inserts, removals and lookups, never held across `.await`.
    running: Mutex<HashMap<JobId, RunningJob>>,
    /// Wakes idle workers when a job is submitted to this process.
    wake: Notify,
    /// Workers currently executing a job (for /metrics and /readyz).
    busy: AtomicUsize,
}

impl JobEngine {
    /// A pool that will run jobs with `runner`.
    pub fn new(
        store: Arc<dyn Store>,
        runner: Arc<dyn JobRunner>,
        config: Arc<ServerConfig>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            runner,
            config,
            metrics,
            running: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            busy: AtomicUsize::new(0),
        }
    }

    /// Starts `max_concurrent_jobs` workers and the lease-recovery loop on `tracker`.
    /// When `shutdown` fires, workers stop claiming and finish the job in hand; the
    /// server then waits up to the grace period and calls [`Self::requeue_running`].
    pub fn start(self: &Arc<Self>, tracker: &TaskTracker, shutdown: CancellationToken) {
        for index in 0..self.config.max_concurrent_jobs {
            let (engine, shutdown) = (self.clone(), shutdown.clone());
            tracker.spawn(async move { engine.worker(index, shutdown).await });
        }
        let (engine, stop) = (self.clone(), shutdown);
        tracker.spawn(async move { engine.recovery_loop(stop).await });
    }

    /// Stops every job still running here and gives it back to the queue, for another
    /// replica or the next start (used when the shutdown grace period runs out).
    pub fn requeue_running(&self) {
        self.stop_all(StopReason::Shutdown);
    }

    /// Workers configured.
    pub fn capacity(&self) -> usize {
        self.config.max_concurrent_jobs
    }

    /// Workers executing a job right now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Tells idle workers a job is waiting.
    pub fn notify_submitted(&self) {
        self.wake.notify_one();
    }

    /// Stops the job if it runs in this process (its status was already set to
    /// `cancelled` in the store).
    pub fn cancel_local(&self, id: &JobId) {
        if let Ok(running) = self.running.lock() {
            if let Some(job) = running.get(id) {
                if let Ok(mut r) = job.reason.lock() {
                    r.get_or_insert(StopReason::Cancelled);
                }
                job.token.cancel();
            }
        }
    }

    fn stop_all(&self, reason: StopReason) {
        if let Ok(running) = self.running.lock() {
            for job in running.values() {
                if let Ok(mut r) = job.reason.lock() {
                    r.get_or_insert(reason);
                }
                job.token.cancel();
            }
        }
    }

    async fn worker(self: Arc<Self>, index: usize, shutdown: CancellationToken) {
        let owner = format!("{}/w{index}", self.config.worker_id);
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            match self.store.claim_next_job(&owner, self.config.lease).await {
                Ok(Some(job)) => {
                    backoff = Duration::from_millis(100);
                    self.execute(job, &owner).await;
                }
                Ok(None) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
                Err(e) => {
                    tracing::error!(worker = %owner, error = %e, "claiming a job failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    async fn execute(&self, job: JobRecord, owner: &str) {
        let id = job.job_id.clone();
        let token = CancellationToken::new();
        let reason = Arc::new(Mutex::new(None));
        if let Ok(mut running) = self.running.lock() {
            running.insert(id.clone(), RunningJob { token: token.clone(), reason: reason.clone() });
        }
        self.busy.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        tracing::debug!(job_id = %id, kind = %job.kind, tenant = %job.tenant_id, attempt = job.attempts, "job started");
        let ctx = JobContext::new(self.store.clone(), id.clone(), token.clone());
        ctx.event(NewJobEvent::ok("job.start")).await;

        let heartbeat = {
            let (store, id, owner, lease, token) =
                (self.store.clone(), id.clone(), owner.to_owned(), self.config.lease, token.clone());
            let every = (lease / 3).min(MAX_HEARTBEAT);
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    match store.heartbeat(&id, &owner, lease).await {
                        Ok(true) => {}
                        // No longer ours or no longer running: cancelled elsewhere, or
                        // the lease lapsed and the job was recovered. Stop working on it.
                        Ok(false) => {
                            token.cancel();
                            return;
                        }
                        Err(e) => tracing::warn!(job_id = %id, error = %e, "heartbeat failed"),
                    }
                }
            }
        };
        let runner = self.runner.clone();
        let job_ref = &job;
        let ctx_run = ctx.clone();
        let run = tokio::time::timeout(self.config.job_timeout, async move {
            if let Some(delay) = test_job_delay() {
                tokio::time::sleep(delay).await;
            }
            runner.run(job_ref, ctx_run).await
        });
        let outcome = tokio::select! {
            r = run => Some(r),
            _ = token.cancelled() => None,
            _ = heartbeat => None,
        };
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let stop = reason.lock().ok().and_then(|r| *r);
        let mut update = match outcome {
            Some(Ok(Ok(result))) => {
                let mut u = StatusUpdate::to(JobStatus::Succeeded);
                u.result_json = Some(result.to_string());
                u.message = Some("succeeded".into());
                u
            }
            Some(Ok(Err(failure))) => {
                let mut u = StatusUpdate::to(JobStatus::Failed);
                u.error = Some(failure.0.clone());
                u.message = Some("failed".into());
                u
            }
            Some(Err(_elapsed)) => {
                token.cancel();
                let mut u = StatusUpdate::to(JobStatus::Failed);
                u.error =
                    Some(format!("timed out after {} s (RUNE_JOB_TIMEOUT_SECONDS)", self.config.job_timeout.as_secs()));
                u.message = Some("timed out".into());
                u
            }
            None if stop == Some(StopReason::Shutdown) => {
                match self.store.release_lease(&id, owner, "requeued: the server shut down while it ran").await {
                    Ok(true) => tracing::info!(job_id = %id, "job requeued for another worker (shutdown)"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(job_id = %id, error = %e, "could not requeue on shutdown; its lease will expire and recovery will requeue it")
                    }
                }
                self.finish_local(&id);
                return;
            }
            // Cancelled: the store already holds the terminal status.
            None => {
                let mut ev = NewJobEvent::ok("job.cancelled");
                ev.duration_ms = Some(elapsed_ms);
                ctx.event(ev).await;
                self.finish_local(&id);
                self.metrics.job_finished(job.kind, JobStatus::Cancelled, elapsed_ms / 1000.0);
                return;
            }
        };
        update.lease_owner = Some(owner.to_owned());
        let final_status = update.status;
        let mut ev = NewJobEvent::ok("job.end");
        ev.duration_ms = Some(elapsed_ms);
        if final_status == JobStatus::Failed {
            ev.status = "error".into();
            ev.error_type = Some("job_failed".into());
        }
        ctx.event(ev).await;
        match self.store.update_status(&id, update).await {
            Ok(UpdateOutcome::Updated(_)) => {
                tracing::info!(job_id = %id, status = %final_status, elapsed_ms, "job finished");
                self.metrics.job_finished(job.kind, final_status, elapsed_ms / 1000.0);
            }
            Ok(UpdateOutcome::Rejected { current }) => {
                tracing::info!(job_id = %id, %current, "job outcome not recorded: its status changed meanwhile (cancelled or recovered)");
            }
            Ok(UpdateOutcome::NotFound) => tracing::warn!(job_id = %id, "job vanished while running"),
            Err(e) => {
                tracing::error!(job_id = %id, error = %e, "recording the job outcome failed; the lease will expire and the job will be retried")
            }
        }
        self.finish_local(&id);
    }

    fn finish_local(&self, id: &JobId) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(id);
        }
        self.busy.fetch_sub(1, Ordering::Relaxed);
    }

    async fn recovery_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let every = (self.config.lease / 2).max(Duration::from_millis(200));
        loop {
            match self.store.recover_expired_leases(Timestamp::now(), self.config.max_attempts).await {
                Ok(report) => {
                    for id in &report.requeued {
                        tracing::warn!(job_id = %id, "recovered a job whose worker was lost; requeued");
                    }
                    for id in &report.failed {
                        tracing::error!(job_id = %id, "job failed after exhausting its attempts");
                    }
                    if !report.requeued.is_empty() {
                        self.wake.notify_waiters();
                    }
                }
                Err(e) => tracing::error!(error = %e, "lease recovery failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}
