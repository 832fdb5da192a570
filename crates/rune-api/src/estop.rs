//! The emergency stop: suspends every schedule, cancels every queued and running job,
//! refuses new submissions, and on release resumes exactly the schedules it suspended.
//!
//! State lives in the `estop` setting, so every replica sees it; each replica caches it
//! in [`AppState::estop_active`] (refreshed by the scheduler tick).

use crate::error::ApiResult;
use crate::routes::jobs::cancel_job;
use crate::state::AppState;
use rune_core::api::EstopStatus;
use rune_core::{JobStatus, Timestamp};
use rune_store::JobQuery;
use std::sync::atomic::Ordering;

/// Setting key of the E-Stop state.
pub const ESTOP_KEY: &str = "estop";
/// `suspended_by` marker on schedules the E-Stop suspended.
pub const ESTOP_SUSPENDER: &str = "estop";

/// Current state (inactive when never triggered).
pub async fn status(state: &AppState) -> ApiResult<EstopStatus> {
    Ok(state.store.get_setting(ESTOP_KEY).await?.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default())
}

/// Engages the E-Stop. Idempotent: triggering again re-cancels anything that slipped in.
pub async fn trigger(state: &AppState, actor: &str, reason: Option<String>) -> ApiResult<EstopStatus> {
    let mut current = status(state).await?;
    // Flip the cached flag first: submissions stop at once on this replica.
    state.estop_active.store(true, Ordering::SeqCst);
    if !current.active {
        current = EstopStatus {
            active: true,
            actor: Some(actor.to_owned()),
            reason: reason.clone(),
            triggered_at: Some(Timestamp::now().to_rfc3339()),
            released_at: current.released_at,
            suspended_schedules: Vec::new(),
            cancelled_jobs: Vec::new(),
        };
    }
    // Persist before acting, so a crash half-way leaves the stop engaged.
    state.store.put_setting(ESTOP_KEY, &serde_json::to_value(&current).unwrap_or_default()).await?;
    for schedule in state.store.list_schedules(None).await? {
        if !schedule.suspended {
            state.store.set_schedule_suspended(&schedule.schedule_id, Some(ESTOP_SUSPENDER), None).await?;
            current.suspended_schedules.push(schedule.schedule_id);
        }
    }
    let why = format!("cancelled by the emergency stop ({})", reason.as_deref().unwrap_or("no reason given"));
    for status in [JobStatus::Queued, JobStatus::Running] {
        loop {
            let page =
                state.store.list_jobs(&JobQuery { status: Some(status), limit: 200, ..Default::default() }).await?;
            if page.jobs.is_empty() {
                break;
            }
            let mut progressed = false;
            for job in page.jobs {
                if cancel_job(state, &job.job_id, job.status, &why).await? == JobStatus::Cancelled {
                    current.cancelled_jobs.push(job.job_id.to_string());
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
    }
    state.store.put_setting(ESTOP_KEY, &serde_json::to_value(&current).unwrap_or_default()).await?;
    tracing::warn!(actor, reason = ?reason, schedules = current.suspended_schedules.len(), jobs = current.cancelled_jobs.len(), "EMERGENCY STOP engaged");
    Ok(current)
}

/// Releases the E-Stop and resumes the schedules it suspended (and only those).
pub async fn release(state: &AppState, actor: &str) -> ApiResult<EstopStatus> {
    let mut current = status(state).await?;
    for schedule in state.store.list_schedules(None).await? {
        if schedule.suspended && schedule.suspended_by.as_deref() == Some(ESTOP_SUSPENDER) {
            // Resume from now: fires missed during the stop are not caught up, so a
            // release never starts a burst of work.
            state.store.record_schedule_fire(&schedule.schedule_id, Timestamp::now(), None).await?;
            state.store.set_schedule_suspended(&schedule.schedule_id, None, Some(ESTOP_SUSPENDER)).await?;
        }
    }
    current.active = false;
    current.released_at = Some(Timestamp::now().to_rfc3339());
    current.actor = Some(actor.to_owned());
    state.store.put_setting(ESTOP_KEY, &serde_json::to_value(&current).unwrap_or_default()).await?;
    state.estop_active.store(false, Ordering::SeqCst);
    tracing::warn!(actor, "emergency stop released");
    Ok(current)
}
