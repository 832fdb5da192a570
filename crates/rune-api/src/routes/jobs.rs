//! `/v1/jobs`: submit (validated, idempotent), list, get, cancel, events.

use crate::error::{ApiError, ApiResult};
use crate::middleware::{JsonBody, Tenant};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use rune_core::api::{CancelResponse, ErrorBody, EventList, JobList, JobView, SubmitResponse};
use rune_core::contracts::JobRequest;
use rune_core::validate::FieldError;
use rune_core::{JobId, JobKind, JobStatus, Timestamp, ValidationErrors};
use rune_store::{CreateOutcome, Cursor, JobQuery, NewJob, SortOrder, StatusUpdate, UpdateOutcome};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// Longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Parses a kind from the URL, accepting the 0.0.0a5 alias `ollama-instance`.
pub(crate) fn parse_kind(raw: &str) -> ApiResult<JobKind> {
    match raw {
        "ollama-instance" => Ok(JobKind::LlmInstance),
        other => other.parse().map_err(|e: rune_core::job::UnknownJobKind| ApiError::UnknownKind(e.to_string())),
    }
}

pub(crate) fn parse_job_id(raw: &str) -> ApiResult<JobId> {
    raw.parse().map_err(|_| ApiError::NotFound(format!("job {raw}")))
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let raw = headers.get("idempotency-key").or_else(|| headers.get("x-idempotency-key"));
    let Some(raw) = raw else { return Ok(None) };
    let key = raw.to_str().map_err(|_| ApiError::BadRequest("Idempotency-Key must be printable ASCII".into()))?.trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(ApiError::BadRequest(format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters")));
    }
    Ok(Some(key.to_owned()))
}

/// `POST /v1/jobs/{kind}` → 202 `{"job_id", "status": "accepted"}`.
#[utoipa::path(post, path = "/v1/jobs/{kind}", tag = "jobs",
    params(("kind" = String, Path, description = "benchmark, agentic-agent, llm-instance (alias ollama-instance), cost-estimate"),
           ("Idempotency-Key" = Option<String>, Header, description = "replays return the original job; also X-Idempotency-Key")),
    request_body(content = Object, description = "the kind's request (see RunBenchmarkRequest, RunAgenticAgentRequest, RunLlmInstanceRequest, CostEstimationRequest)"),
    responses((status = 202, body = SubmitResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "idempotency key reused with another body, or E-Stop engaged"),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody, description = "field errors")))]
pub async fn submit(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<SubmitResponse>)> {
    let kind = parse_kind(&kind)?;
    if state.estop_active.load(Ordering::Relaxed) {
        return Err(ApiError::EstopActive("submissions are refused".into()));
    }
    let key = idempotency_key(&headers)?;
    let request = JobRequest::parse(kind, &body).map_err(ApiError::Invalid)?;
    let outcome = state
        .store
        .create_job(NewJob {
            tenant_id: tenant.clone(),
            kind,
            request_json: request.to_canonical_json(),
            idempotency_key: key,
            schedule_id: None,
        })
        .await?;
    match outcome {
        CreateOutcome::Created(job) => {
            state.engine.notify_submitted();
            tracing::debug!(job_id = %job.job_id, %kind, tenant = %tenant, "job accepted");
            Ok((
                StatusCode::ACCEPTED,
                Json(SubmitResponse { job_id: job.job_id.to_string(), status: "accepted".into() }),
            ))
        }
        CreateOutcome::Replayed(job) => Ok((
            StatusCode::ACCEPTED,
            Json(SubmitResponse { job_id: job.job_id.to_string(), status: "accepted".into() }),
        )),
        CreateOutcome::KeyConflict { existing } => Err(ApiError::Conflict(format!(
            "this Idempotency-Key was already used for job {existing} with a different request; use a new key"
        ))),
    }
}

/// `GET /v1/jobs/{id}`.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    let id = parse_job_id(&id)?;
    let job = state.store.get_job(Some(&tenant), &id).await?.ok_or_else(|| ApiError::NotFound(format!("job {id}")))?;
    Ok(Json(JobView::from_record(&job)))
}

/// `GET /v1/jobs`: filters `kind`, `status`, `created_after`, `created_before`,
/// `schedule_id`; `order=desc|asc` (newest first by default); `limit` (1–500, default
/// 50); `cursor` from the previous page.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs",
    params(("kind" = Option<String>, Query), ("status" = Option<String>, Query), ("created_after" = Option<String>, Query),
           ("created_before" = Option<String>, Query), ("schedule_id" = Option<String>, Query),
           ("order" = Option<String>, Query, description = "desc (default) or asc"), ("limit" = Option<u32>, Query, description = "1-500, default 50"),
           ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = JobList), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Query(params): Query<BTreeMap<String, String>>,
) -> ApiResult<Json<JobList>> {
    let query = parse_list_query(&params, tenant)?;
    let page = state.store.list_jobs(&query).await?;
    Ok(Json(JobList {
        jobs: page.jobs.iter().map(JobView::from_record).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

pub(crate) fn parse_list_query(params: &BTreeMap<String, String>, tenant: rune_core::TenantId) -> ApiResult<JobQuery> {
    let mut errors = Vec::new();
    let mut err = |field: &str, message: String| errors.push(FieldError { field: field.into(), message });
    let mut q = JobQuery { tenant_id: Some(tenant), limit: 50, ..Default::default() };
    for (key, value) in params {
        match key.as_str() {
            "kind" => match value.parse() {
                Ok(k) => q.kind = Some(k),
                Err(e) => err("kind", format!("{e}")),
            },
            "status" => match value.parse() {
                Ok(s) => q.status = Some(s),
                Err(e) => err("status", format!("{e}")),
            },
            "created_after" | "created_from" => match Timestamp::parse(value) {
                Ok(t) => q.created_from = Some(t),
                Err(e) => err(key, e.to_string()),
            },
            "created_before" | "created_to" => match Timestamp::parse(value) {
                Ok(t) => q.created_to = Some(t),
                Err(e) => err(key, e.to_string()),
            },
            "schedule_id" => q.schedule_id = Some(value.clone()),
            "order" | "sort" => match value.as_str() {
                "desc" | "-created_at" => q.order = SortOrder::Desc,
                "asc" | "created_at" => q.order = SortOrder::Asc,
                other => err(key, format!("`{other}` is not an order; use desc (newest first) or asc")),
            },
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=rune_store::MAX_PAGE_SIZE).contains(&n) => q.limit = n,
                _ => err("limit", format!("`{value}` is not a page size; use 1 to {}", rune_store::MAX_PAGE_SIZE)),
            },
            "cursor" => match Cursor::decode(value) {
                Some(c) => q.cursor = Some(c),
                None => err("cursor", "not a cursor returned by this API (pass next_cursor unchanged)".into()),
            },
            other => err(
                other,
                "unknown parameter; expected kind, status, created_after, created_before, schedule_id, order, limit, cursor"
                    .into(),
            ),
        }
    }
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(ApiError::Invalid(validation(errors)))
    }
}

pub(crate) fn validation(errors: Vec<FieldError>) -> ValidationErrors {
    let mut iter = errors.into_iter();
    let first = iter.next().unwrap_or(FieldError { field: "$".into(), message: "invalid".into() });
    let mut v = ValidationErrors::single(first.field, first.message);
    for e in iter {
        v.push(e);
    }
    v
}

/// `DELETE /v1/jobs/{id}`: cancels a queued or running job (running work is stopped,
/// subprocesses die); a job already finished is left as it is.
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = CancelResponse), (status = 404, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
) -> ApiResult<Json<CancelResponse>> {
    let id = parse_job_id(&id)?;
    let job = state.store.get_job(Some(&tenant), &id).await?.ok_or_else(|| ApiError::NotFound(format!("job {id}")))?;
    let status = cancel_job(&state, &id, job.status, &format!("cancelled by tenant {tenant}")).await?;
    Ok(Json(CancelResponse { job_id: id.to_string(), status }))
}

/// Cancels `id` (currently `current`) and stops it if it runs here; returns the status
/// the job ends with.
pub(crate) async fn cancel_job(
    state: &AppState,
    id: &JobId,
    mut current: JobStatus,
    why: &str,
) -> ApiResult<JobStatus> {
    // Retry once: a job can move queued → running between our read and the update.
    for _ in 0..3 {
        if current.is_terminal() {
            return Ok(current);
        }
        let mut update = StatusUpdate::to(JobStatus::Cancelled);
        update.error = Some(why.to_owned());
        update.message = Some("cancelled".into());
        match state.store.update_status(id, update).await? {
            UpdateOutcome::Updated(_) => {
                state.engine.cancel_local(id);
                tracing::info!(job_id = %id, reason = why, "job cancelled");
                return Ok(JobStatus::Cancelled);
            }
            UpdateOutcome::Rejected { current: now } => current = now,
            UpdateOutcome::NotFound => return Err(ApiError::NotFound(format!("job {id}"))),
        }
    }
    Ok(current)
}

/// `GET /v1/jobs/{id}/events?after=N&limit=M`.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs",
    params(("id" = String, Path), ("after" = Option<i64>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = EventList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
) -> ApiResult<Json<EventList>> {
    let id = parse_job_id(&id)?;
    state.store.get_job(Some(&tenant), &id).await?.ok_or_else(|| ApiError::NotFound(format!("job {id}")))?;
    let after = match params.get("after") {
        Some(v) => v.parse::<i64>().map_err(|_| ApiError::BadRequest(format!("after=`{v}` is not an event id")))?,
        None => 0,
    };
    let limit = match params.get("limit") {
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::BadRequest(format!("limit=`{v}`: use 1 to 1000")))?,
        None => 500,
    };
    Ok(Json(EventList { events: state.store.events_after(&id, after, limit).await? }))
}
