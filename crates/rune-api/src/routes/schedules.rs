//! `/v1/schedules`: cron-scheduled jobs, run by the embedded scheduler.

use crate::error::{ApiError, ApiResult};
use crate::middleware::{JsonBody, Tenant};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use rune_core::api::{ErrorBody, ScheduleList, ScheduleRequest, ScheduleView};
use rune_core::contracts::JobRequest;
use rune_core::cron::CronSchedule;
use rune_core::records::ScheduleRecord;
use rune_core::validate::FieldError;
use rune_core::{TenantId, Timestamp};
use rune_store::ScheduleSpec;

/// `suspended_by` marker for schedules a user suspended.
pub const USER_SUSPENDER: &str = "user";

fn view(s: &ScheduleRecord) -> ScheduleView {
    let next = if s.suspended {
        None
    } else {
        CronSchedule::parse(&s.cron).ok().and_then(|c| c.next_after(Timestamp::now())).map(|t| t.to_rfc3339())
    };
    ScheduleView::from_record(s, next)
}

fn spec_from(tenant: &TenantId, body: serde_json::Value) -> ApiResult<ScheduleSpec> {
    let req: ScheduleRequest =
        serde_json::from_value(body).map_err(|e| ApiError::BadRequest(format!("invalid schedule: {e}")))?;
    let mut errors = Vec::new();
    if req.name.trim().is_empty() || req.name.len() > 128 {
        errors.push(FieldError { field: "name".into(), message: "must be 1 to 128 characters".into() });
    }
    if let Err(e) = CronSchedule::parse(&req.cron) {
        errors.push(FieldError { field: "cron".into(), message: e.to_string() });
    }
    let request = match JobRequest::parse(req.kind, &req.request) {
        Ok(r) => Some(r),
        Err(v) => {
            errors.extend(
                v.fields()
                    .iter()
                    .map(|f| FieldError { field: format!("request.{}", f.field), message: f.message.clone() }),
            );
            None
        }
    };
    if let Some(d) = req.starting_deadline_seconds {
        if d == 0 {
            errors.push(FieldError {
                field: "starting_deadline_seconds".into(),
                message: "must be at least 1 (or absent)".into(),
            });
        }
    }
    match (errors.is_empty(), request) {
        (true, Some(request)) => Ok(ScheduleSpec {
            tenant_id: tenant.clone(),
            name: req.name.trim().to_owned(),
            cron: req.cron.trim().to_owned(),
            kind: req.kind,
            request_json: request.to_canonical_json(),
            suspended: req.suspended,
            concurrency_policy: req.concurrency_policy,
            starting_deadline_seconds: req.starting_deadline_seconds,
            successful_runs_history_limit: req.successful_runs_history_limit,
            failed_runs_history_limit: req.failed_runs_history_limit,
        }),
        _ => Err(ApiError::Invalid(crate::routes::jobs::validation(errors))),
    }
}

fn conflict(e: rune_store::StoreError) -> ApiError {
    match e {
        rune_store::StoreError::Conflict(m) => ApiError::Conflict(m),
        other => other.into(),
    }
}

/// `POST /v1/schedules` → 201 with the schedule.
#[utoipa::path(post, path = "/v1/schedules", tag = "schedules", request_body = ScheduleRequest,
    responses((status = 201, body = ScheduleView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<ScheduleView>)> {
    let spec = spec_from(&tenant, body)?;
    let created = state.store.create_schedule(spec).await.map_err(conflict)?;
    Ok((StatusCode::CREATED, Json(view(&created))))
}

/// `GET /v1/schedules`.
#[utoipa::path(get, path = "/v1/schedules", tag = "schedules", responses((status = 200, body = ScheduleList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
) -> ApiResult<Json<ScheduleList>> {
    let schedules = state.store.list_schedules(Some(&tenant)).await?;
    Ok(Json(ScheduleList { schedules: schedules.iter().map(view).collect() }))
}

async fn owned(state: &AppState, tenant: &TenantId, id: &str) -> ApiResult<ScheduleRecord> {
    state.store.get_schedule(Some(tenant), id).await?.ok_or_else(|| ApiError::NotFound(format!("schedule {id}")))
}

/// `GET /v1/schedules/{id}`.
#[utoipa::path(get, path = "/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    Ok(Json(view(&owned(&state, &tenant, &id).await?)))
}

/// `PUT /v1/schedules/{id}`: replaces the spec (suspension and history are kept).
#[utoipa::path(put, path = "/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)), request_body = ScheduleRequest,
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<ScheduleView>> {
    owned(&state, &tenant, &id).await?;
    let spec = spec_from(&tenant, body)?;
    let updated = state.store.update_schedule(&id, spec).await.map_err(conflict)?;
    updated.map(|s| Json(view(&s))).ok_or_else(|| ApiError::NotFound(format!("schedule {id}")))
}

/// `DELETE /v1/schedules/{id}` (jobs it started are kept).
#[utoipa::path(delete, path = "/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.store.delete_schedule(Some(&tenant), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("schedule {id}")))
    }
}

/// `POST /v1/schedules/{id}/suspend`.
#[utoipa::path(post, path = "/v1/schedules/{id}/suspend", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn suspend(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    let current = owned(&state, &tenant, &id).await?;
    if current.suspended {
        return Ok(Json(view(&current)));
    }
    let s = state.store.set_schedule_suspended(&id, Some(USER_SUSPENDER), None).await?;
    s.map(|s| Json(view(&s))).ok_or_else(|| ApiError::NotFound(format!("schedule {id}")))
}

/// `POST /v1/schedules/{id}/resume`. While the E-Stop is engaged, schedules stay
/// suspended (409): release the E-Stop first.
#[utoipa::path(post, path = "/v1/schedules/{id}/resume", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    owned(&state, &tenant, &id).await?;
    if state.estop_active.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ApiError::EstopActive("schedules stay suspended".into()));
    }
    let s = state.store.set_schedule_suspended(&id, None, None).await?;
    s.map(|s| Json(view(&s))).ok_or_else(|| ApiError::NotFound(format!("schedule {id}")))
}
