//! Run views: the live trace (SSE), artifacts, chain state and the metrics summary.

use crate::error::{ApiError, ApiResult};
use crate::middleware::Tenant;
use crate::routes::jobs::parse_job_id;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::stream::Stream;
use rune_core::api::{ArtifactList, ArtifactSummary, ArtifactView, ErrorBody};
use rune_core::{JobId, TenantId};
use serde_json::json;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

/// How often the trace stream looks for new events (events may come from any replica,
/// so the database is the source of truth).
const TRACE_POLL: Duration = Duration::from_millis(250);
/// Events sent per poll at most.
const TRACE_BATCH: u32 = 200;

async fn owned_job(state: &AppState, tenant: &TenantId, id: &str) -> ApiResult<JobId> {
    let id = parse_job_id(id)?;
    state.store.get_job(Some(tenant), &id).await?.ok_or_else(|| ApiError::NotFound(format!("run {id}")))?;
    Ok(id)
}

/// `GET /v1/runs/{id}/trace`: Server-Sent Events. Each recorded event is sent as
/// `event: log` with its id (so a reconnect with `Last-Event-ID` resumes where it
/// stopped); when the job is finished and every event was sent, `event: end` carries the
/// final status and the stream closes.
#[utoipa::path(get, path = "/v1/runs/{id}/trace", tag = "runs",
    params(("id" = String, Path), ("Last-Event-ID" = Option<String>, Header)),
    responses((status = 200, content_type = "text/event-stream", description = "`log` events, then `end`"), (status = 404, body = ErrorBody)))]
pub async fn trace(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let id = owned_job(&state, &tenant, &id).await?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let stream = async_stream(state, tenant, id, resume);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn async_stream(
    state: AppState,
    tenant: TenantId,
    id: JobId,
    resume: i64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(
        (state, tenant, id, resume, false, Vec::<Event>::new()),
        |(state, tenant, id, mut last, mut done, mut pending)| async move {
            loop {
                if let Some(ev) = pending.pop() {
                    return Some((Ok(ev), (state, tenant, id, last, done, pending)));
                }
                if done || state.shutdown.is_cancelled() {
                    return None;
                }
                // Read the status before the events: if it is terminal, every event
                // was written before it, so one more read drains them all.
                let (status, error) = match state.store.get_job(Some(&tenant), &id).await {
                    Ok(Some(job)) => (job.status, job.error),
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::warn!(job_id = %id, error = %e, "trace: reading the job failed");
                        tokio::time::sleep(TRACE_POLL).await;
                        continue;
                    }
                };
                match state.store.events_after(&id, last, TRACE_BATCH).await {
                    Ok(events) => {
                        let full = events.len() as u32 == TRACE_BATCH;
                        let mut batch = Vec::with_capacity(events.len() + 1);
                        for e in events {
                            last = e.id;
                            let data = serde_json::to_string(&e).unwrap_or_default();
                            batch.push(Event::default().event("log").id(e.id.to_string()).data(data));
                        }
                        if status.is_terminal() && !full {
                            batch.push(
                                Event::default()
                                    .event("end")
                                    .data(json!({"status": status, "error": error}).to_string()),
                            );
                            done = true;
                        }
                        batch.reverse();
                        pending = batch;
                        if pending.is_empty() {
                            tokio::time::sleep(TRACE_POLL).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(job_id = %id, error = %e, "trace: reading events failed");
                        tokio::time::sleep(TRACE_POLL).await;
                    }
                }
            }
        },
    )
}

/// `GET /v1/runs/{id}/artifacts` (and `/v1/audits/…`).
#[utoipa::path(get, path = "/v1/runs/{id}/artifacts", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, body = ArtifactList), (status = 404, body = ErrorBody)))]
pub async fn artifacts(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<ArtifactList>> {
    let id = owned_job(&state, &tenant, &id).await?;
    let base = uri.path().trim_end_matches('/').to_owned();
    let metas = state.store.list_artifacts(&id).await?;
    let mut kinds: Vec<String> = metas.iter().map(|m| m.kind.to_string()).collect();
    kinds.sort();
    kinds.dedup();
    Ok(Json(ArtifactList {
        run_id: id.to_string(),
        summary: ArtifactSummary { total_count: metas.len(), kinds_present: kinds },
        artifacts: metas.iter().map(|m| ArtifactView::from_meta(m, &base)).collect(),
    }))
}

/// `GET /v1/runs/{id}/artifacts/{artifact_id}`: the bytes, with the kind's content type,
/// served from the database (never from a path named in job output).
#[utoipa::path(get, path = "/v1/runs/{id}/artifacts/{artifact_id}", tag = "runs",
    params(("id" = String, Path), ("artifact_id" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", description = "the bytes, typed by kind"), (status = 404, body = ErrorBody)))]
pub async fn artifact(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path((id, artifact_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = owned_job(&state, &tenant, &id).await?;
    let (meta, bytes) = state
        .store
        .get_artifact(&id, &artifact_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("artifact {artifact_id}")))?;
    let mut response = Body::from(bytes).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(meta.kind.content_type()));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let safe: String = meta.name.chars().filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\').collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `GET /v1/chains/{id}/state`.
#[utoipa::path(get, path = "/v1/chains/{id}/state", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn chain_state(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = owned_job(&state, &tenant, &id).await?;
    Ok(Json(match state.store.get_chain_state(&id).await? {
        Some(chain) => json!({"nodes": chain.nodes, "edges": chain.edges, "overall_status": chain.overall_status()}),
        None => json!({"run_id": id.to_string(), "overall_status": "pending", "nodes": [], "edges": []}),
    }))
}

/// `GET /v1/metrics/summary?job_id=`: per event name, counts and timing. Without
/// `job_id`, over the tenant's 100 most recent jobs.
#[utoipa::path(get, path = "/v1/metrics/summary", tag = "runs", params(("job_id" = Option<String>, Query)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn metrics_summary(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Query(params): Query<BTreeMap<String, String>>,
) -> ApiResult<Json<serde_json::Value>> {
    let ids: Vec<JobId> = match params.get("job_id") {
        Some(id) => vec![owned_job(&state, &tenant, id).await?],
        None => {
            let q = rune_store::JobQuery { tenant_id: Some(tenant.clone()), limit: 100, ..Default::default() };
            state.store.list_jobs(&q).await?.jobs.into_iter().map(|j| j.job_id).collect()
        }
    };
    #[derive(Default)]
    struct Agg {
        total: u64,
        ok: u64,
        error: u64,
        sum: f64,
        timed: u64,
        min: Option<f64>,
        max: Option<f64>,
    }
    let mut aggs: BTreeMap<String, Agg> = BTreeMap::new();
    for id in ids {
        let mut after = 0;
        loop {
            let events = state.store.events_after(&id, after, 1000).await?;
            let Some(last) = events.last() else { break };
            after = last.id;
            for e in &events {
                let a = aggs.entry(e.event.clone()).or_default();
                a.total += 1;
                if e.status == "ok" {
                    a.ok += 1;
                } else {
                    a.error += 1;
                }
                if let Some(ms) = e.duration_ms {
                    a.sum += ms;
                    a.timed += 1;
                    a.min = Some(a.min.map_or(ms, |m| m.min(ms)));
                    a.max = Some(a.max.map_or(ms, |m| m.max(ms)));
                }
            }
        }
    }
    let events: Vec<_> = aggs
        .into_iter()
        .map(|(event, a)| {
            json!({"event": event, "total": a.total, "ok": a.ok, "error": a.error,
                   "avg_ms": (a.timed > 0).then(|| a.sum / a.timed as f64), "min_ms": a.min, "max_ms": a.max})
        })
        .collect();
    Ok(Json(json!({"events": events})))
}
