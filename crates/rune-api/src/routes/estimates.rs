//! Cost: `POST /v1/estimates` (pre-flight, fail-closed) and `/v1/finops/simulate`
//! (projection from the tenant's history).

use crate::error::{ApiError, ApiResult};
use crate::middleware::{JsonBody, Tenant};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use rune_core::api::ErrorBody;
use rune_core::contracts::{CostEstimationRequest, JobRequest};
use rune_core::cost::{self, CostEstimate, FinOpsQuery, HistorySample};
use rune_core::{JobKind, JobStatus};
use rune_store::JobQuery;
use serde_json::Value;
use std::collections::BTreeMap;

/// Most recent succeeded jobs read as FinOps evidence.
const FINOPS_HISTORY_LIMIT: usize = 5_000;

/// `POST /v1/estimates`: the original's request fields; a request that selects no cost
/// driver is refused (422), never answered with a made-up driver.
#[utoipa::path(post, path = "/v1/estimates", tag = "cost", request_body = CostEstimationRequest,
    responses((status = 200, body = CostEstimate), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody, description = "no cost driver selected (fail-closed)")))]
pub async fn estimate(JsonBody(body): JsonBody) -> ApiResult<Json<Value>> {
    let JobRequest::CostEstimate(req) = JobRequest::parse(JobKind::CostEstimate, &body).map_err(ApiError::Invalid)?
    else {
        return Err(ApiError::Internal("parser returned another kind".into()));
    };
    let estimate =
        cost::estimate(&req).map_err(|e| ApiError::Invalid(rune_core::ValidationErrors::single("$", e.to_string())))?;
    serde_json::to_value(estimate).map(Json).map_err(|e| ApiError::Internal(e.to_string()))
}

/// `GET|POST /v1/finops/simulate?agent=&model=&gpu=&suite=&runs_per_period=&period_days=`.
#[utoipa::path(get, path = "/v1/finops/simulate", tag = "cost",
    params(("agent" = Option<String>, Query), ("model" = Option<String>, Query), ("gpu" = Option<String>, Query), ("suite" = Option<String>, Query),
           ("runs_per_period" = Option<u64>, Query), ("period_days" = Option<u64>, Query)),
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
pub async fn finops(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Query(params): Query<BTreeMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let query = FinOpsQuery::from_params(&params).map_err(ApiError::Invalid)?;
    let mut history = Vec::new();
    let mut cursor = None;
    'pages: loop {
        let page = state
            .store
            .list_jobs(&JobQuery {
                tenant_id: Some(tenant.clone()),
                status: Some(JobStatus::Succeeded),
                limit: rune_store::MAX_PAGE_SIZE,
                cursor,
                ..Default::default()
            })
            .await?;
        for job in &page.jobs {
            if !matches!(job.kind, JobKind::Benchmark | JobKind::AgenticAgent | JobKind::Suite) {
                continue;
            }
            let request: Value = serde_json::from_str(&job.request_json).unwrap_or(Value::Null);
            let field = |k: &str| request.get(k).and_then(Value::as_str);
            if query.agent.as_deref().is_some_and(|a| field("agent") != Some(a))
                || query.model.as_deref().is_some_and(|m| field("model") != Some(m))
                || query.suite.as_deref().is_some_and(|s| field("suite") != Some(s))
            {
                continue;
            }
            let (Some(start), Some(end)) = (job.started_at, job.finished_at) else { continue };
            let result: Value =
                job.result_json.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
            let tokens = |names: &[&str]| names.iter().find_map(|n| find_number(&result, n));
            history.push(HistorySample {
                duration_seconds: (end.as_micros() - start.as_micros()).max(0) as f64 / 1e6,
                input_tokens: tokens(&["prompt_tokens", "prompt_eval_count"]),
                output_tokens: tokens(&["completion_tokens", "eval_count"]),
            });
            if history.len() >= FINOPS_HISTORY_LIMIT {
                break 'pages;
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    serde_json::to_value(cost::simulate(&query, &history)).map(Json).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The first number under `key` anywhere in `v` (results nest usage differently per
/// backend).
fn find_number(v: &Value, key: &str) -> Option<u64> {
    match v {
        Value::Object(m) => m.get(key).and_then(Value::as_u64).or_else(|| m.values().find_map(|c| find_number(c, key))),
        Value::Array(a) => a.iter().find_map(|c| find_number(c, key)),
        _ => None,
    }
}
