//! The embedded scheduler: fires stored schedules (cron) as jobs.
//!
//! One replica schedules at a time: each tick, a replica takes or renews the
//! `scheduler` lease in the store; only the holder fires. A fire is submitted with a
//! deterministic idempotency key (`tenant/schedule/0/<fire time>`), so even two
//! schedulers racing (a lease handed over mid-tick) create one job per fire. What to do
//! at each tick (fire, catch up once, skip past the deadline, respect the concurrency
//! policy) is decided by [`rune_core::schedule::decide`], the same code the operator
//! uses.

use crate::routes::jobs::cancel_job;
use crate::state::AppState;
use rune_core::cron::CronSchedule;
use rune_core::records::ScheduleRecord;
use rune_core::schedule::{self, ActiveRun, Decision, ScheduleState};
use rune_core::{JobStatus, Timestamp};
use rune_store::{CreateOutcome, JobQuery, NewJob};
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

/// Name of the leadership lease in the store.
const LEASE_NAME: &str = "scheduler";

/// Runs until `shutdown`: every tick, refresh the E-Stop cache, take the lease, fire due
/// schedules.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let owner = state.config.worker_id.clone();
    let tick = state.config.scheduler_tick;
    // The lease outlives a few missed ticks, so a slow tick does not flap leadership.
    let ttl = tick * 4;
    loop {
        if let Ok(Some(v)) = state.store.get_setting(crate::estop::ESTOP_KEY).await {
            let active = v.get("active").and_then(|a| a.as_bool()).unwrap_or(false);
            state.estop_active.store(active, Ordering::SeqCst);
        }
        match state.store.try_lease(LEASE_NAME, &owner, ttl).await {
            Ok(true) if !state.estop_active.load(Ordering::SeqCst) => {
                if let Err(e) = tick_once(&state, Timestamp::now()).await {
                    tracing::error!(error = %e, "scheduler tick failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "scheduler could not take its lease"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Looks at every schedule once at `now` and acts on what is due.
pub async fn tick_once(state: &AppState, now: Timestamp) -> Result<(), rune_store::StoreError> {
    for s in state.store.list_schedules(None).await? {
        if s.suspended {
            continue;
        }
        if let Err(e) = fire_if_due(state, &s, now).await {
            tracing::error!(schedule = %s.schedule_id, error = %e, "schedule fire failed");
        }
    }
    Ok(())
}

async fn fire_if_due(state: &AppState, s: &ScheduleRecord, now: Timestamp) -> Result<(), rune_store::StoreError> {
    let cron = match CronSchedule::parse(&s.cron) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(schedule = %s.schedule_id, error = %e, "schedule has an invalid cron expression; skipped");
            return Ok(());
        }
    };
    let mut active = Vec::new();
    for status in [JobStatus::Queued, JobStatus::Running] {
        let page = state
            .store
            .list_jobs(&JobQuery {
                schedule_id: Some(s.schedule_id.clone()),
                status: Some(status),
                limit: 100,
                ..Default::default()
            })
            .await?;
        active.extend(page.jobs.into_iter().map(|j| ActiveRun { job_id: j.job_id, scheduled_time: j.created_at }));
    }
    let decision = schedule::decide(&ScheduleState::from_record(s, &cron, &active), now);
    match decision {
        Decision::Fire { scheduled_time, cancel, .. } => {
            // Submit first (idempotent on the fire's key): after a crash between submit
            // and record, the same fire replays its job instead of starting another, and
            // that job is never among those a Replace cancels.
            let key = schedule::fire_key(s.tenant_id.as_str(), &s.schedule_id, 0, scheduled_time);
            let outcome = state
                .store
                .create_job(NewJob {
                    tenant_id: s.tenant_id.clone(),
                    kind: s.kind,
                    request_json: s.request_json.clone(),
                    idempotency_key: Some(key),
                    schedule_id: Some(s.schedule_id.clone()),
                })
                .await?;
            let job = match outcome {
                CreateOutcome::Created(j) | CreateOutcome::Replayed(j) => j.job_id,
                CreateOutcome::KeyConflict { existing } => existing,
            };
            for id in cancel.into_iter().filter(|id| *id != job) {
                let why = format!("replaced by a newer run of schedule {}", s.name);
                if let Err(e) = cancel_job(state, &id, JobStatus::Running, &why).await {
                    tracing::warn!(job_id = %id, error = %e, "could not cancel the replaced run");
                }
            }
            state.store.record_schedule_fire(&s.schedule_id, scheduled_time, Some(&job)).await?;
            state.engine.notify_submitted();
            tracing::info!(schedule = %s.schedule_id, name = %s.name, fire = %scheduled_time, job_id = %job, "schedule fired");
        }
        Decision::Skip { scheduled_time, reason, .. } => {
            state.store.record_schedule_fire(&s.schedule_id, scheduled_time, None).await?;
            tracing::info!(schedule = %s.schedule_id, fire = %scheduled_time, reason = %reason, "schedule fire skipped");
        }
        Decision::AlreadyStarted { scheduled_time, job_id, .. } => {
            state.store.record_schedule_fire(&s.schedule_id, scheduled_time, Some(&job_id)).await?;
        }
        Decision::Wait { .. } | Decision::Suspended => {}
    }
    Ok(())
}
