//! The emergency stop: suspends every schedule, cancels every queued and running job,
//! refuses new submissions, and on release resumes exactly the schedules it suspended.
//!
//! State lives in the `estop` setting, so every replica sees it; each replica caches the
//! `active` flag in [`AppState::estop_active`] (refreshed by the scheduler tick). The
//! stop is global; `RUNE_ESTOP_TENANTS` limits which tenants may engage or release it.
//! What each tenant sees of it is limited to its own schedules and jobs.

use crate::error::{ApiError, ApiResult};
use crate::routes::jobs::cancel_job;
use crate::state::AppState;
use rune_core::api::EstopStatus;
use rune_core::{JobStatus, TenantId, Timestamp};
use rune_store::JobQuery;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// Setting key of the E-Stop state.
pub const ESTOP_KEY: &str = "estop";
/// `suspended_by` marker on schedules the E-Stop suspended.
pub const ESTOP_SUSPENDER: &str = "estop";

/// A schedule or job the stop acted on, with its owner.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Owned {
    tenant: String,
    id: String,
}

/// The stored state (all tenants).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct EstopState {
    active: bool,
    actor: Option<String>,
    reason: Option<String>,
    triggered_at: Option<String>,
    released_by: Option<String>,
    released_at: Option<String>,
    #[serde(default)]
    suspended: Vec<Owned>,
    #[serde(default)]
    cancelled: Vec<Owned>,
}

impl EstopState {
    fn view_for(&self, tenant: &TenantId) -> EstopStatus {
        let mine = |v: &[Owned]| v.iter().filter(|o| o.tenant == tenant.as_str()).map(|o| o.id.clone()).collect();
        EstopStatus {
            active: self.active,
            actor: self.actor.clone(),
            reason: self.reason.clone(),
            triggered_at: self.triggered_at.clone(),
            released_by: self.released_by.clone(),
            released_at: self.released_at.clone(),
            suspended_schedules: mine(&self.suspended),
            cancelled_jobs: mine(&self.cancelled),
            suspended_schedules_total: self.suspended.len(),
            cancelled_jobs_total: self.cancelled.len(),
        }
    }
}

async fn load(state: &AppState) -> ApiResult<EstopState> {
    Ok(state.store.get_setting(ESTOP_KEY).await?.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default())
}

async fn save(state: &AppState, s: &EstopState) -> ApiResult<()> {
    let value = serde_json::to_value(s).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(state.store.put_setting(ESTOP_KEY, &value).await?)
}

/// Whether `tenant` may engage or release the stop (`RUNE_ESTOP_TENANTS`, default all).
fn may_control(state: &AppState, tenant: &TenantId) -> ApiResult<()> {
    match &state.config.estop_tenants {
        Some(allowed) if !allowed.iter().any(|t| t == tenant.as_str()) => {
            Err(ApiError::Forbidden(format!("tenant {tenant} may not operate the emergency stop (RUNE_ESTOP_TENANTS)")))
        }
        _ => Ok(()),
    }
}

/// Current state as `tenant` sees it.
pub async fn status(state: &AppState, tenant: &TenantId) -> ApiResult<EstopStatus> {
    Ok(load(state).await?.view_for(tenant))
}

/// Whether the stored state says the stop is engaged.
pub async fn is_active(store: &dyn rune_store::Store) -> Result<bool, rune_store::StoreError> {
    Ok(store.get_setting(ESTOP_KEY).await?.and_then(|v| v.get("active").and_then(|a| a.as_bool())).unwrap_or(false))
}

/// Engages the E-Stop. Idempotent: triggering again re-cancels anything that slipped in.
pub async fn trigger(
    state: &AppState,
    tenant: &TenantId,
    actor: &str,
    reason: Option<String>,
) -> ApiResult<EstopStatus> {
    may_control(state, tenant)?;
    let mut current = load(state).await?;
    // Flip the cached flag first: submissions stop at once on this replica.
    state.estop_active.store(true, Ordering::SeqCst);
    if !current.active {
        current = EstopState {
            active: true,
            actor: Some(actor.to_owned()),
            reason: reason.clone(),
            triggered_at: Some(Timestamp::now().to_rfc3339()),
            released_by: None,
            released_at: None,
            suspended: Vec::new(),
            cancelled: Vec::new(),
        };
    }
    // Persist before acting, so a crash half-way leaves the stop engaged.
    save(state, &current).await?;
    for schedule in state.store.list_schedules(None).await? {
        if !schedule.suspended {
            state.store.set_schedule_suspended(&schedule.schedule_id, Some(ESTOP_SUSPENDER), None).await?;
            current.suspended.push(Owned { tenant: schedule.tenant_id.to_string(), id: schedule.schedule_id });
        }
    }
    let why = format!("cancelled by the emergency stop ({})", current.reason.as_deref().unwrap_or("no reason given"));
    for status in [JobStatus::Queued, JobStatus::Running] {
        loop {
            let page =
                state.store.list_jobs(&JobQuery { status: Some(status), limit: 200, ..Default::default() }).await?;
            let mut progressed = false;
            for job in page.jobs {
                if cancel_job(state, &job.job_id, job.status, &why).await? == JobStatus::Cancelled {
                    current.cancelled.push(Owned { tenant: job.tenant_id.to_string(), id: job.job_id.to_string() });
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
    }
    save(state, &current).await?;
    tracing::warn!(actor, reason = ?current.reason, schedules = current.suspended.len(), jobs = current.cancelled.len(), "EMERGENCY STOP engaged");
    Ok(current.view_for(tenant))
}

/// Releases the E-Stop and resumes the schedules it suspended (and only those).
pub async fn release(state: &AppState, tenant: &TenantId, actor: &str) -> ApiResult<EstopStatus> {
    may_control(state, tenant)?;
    let mut current = load(state).await?;
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
    current.released_by = Some(actor.to_owned());
    save(state, &current).await?;
    state.estop_active.store(false, Ordering::SeqCst);
    tracing::warn!(actor, "emergency stop released");
    Ok(current.view_for(tenant))
}
