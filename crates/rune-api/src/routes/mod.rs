//! The `/v1` router: which handler answers which path, and which middleware wraps it.

pub mod catalog;
pub mod control;
pub mod estimates;
pub mod jobs;
pub mod runs;
pub mod schedules;
pub mod settings;
pub mod system;

use crate::config::MAX_BODY_BYTES;
use crate::middleware::{authenticate, record_metrics};
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Builds the whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let timeout = TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, state.config.request_timeout);
    // Authenticated API, with a whole-request timeout.
    let api = Router::new()
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/jobs/{kind_or_id}", post(jobs::submit).get(jobs::get).delete(jobs::cancel))
        .route("/v1/jobs/{id}/events", get(jobs::events))
        .route("/v1/runs/{id}/artifacts", get(runs::artifacts))
        .route("/v1/runs/{id}/artifacts/{artifact_id}", get(runs::artifact))
        .route("/v1/audits/{id}/artifacts", get(runs::artifacts))
        .route("/v1/audits/{id}/artifacts/{artifact_id}", get(runs::artifact))
        .route("/v1/chains/{id}/state", get(runs::chain_state))
        .route("/v1/metrics/summary", get(runs::metrics_summary))
        .route("/v1/catalog/vastai-models", get(catalog::vastai_models))
        .route("/v1/llm/models", get(catalog::llm_models))
        .route("/v1/catalog/models", get(catalog::llm_models))
        .route("/v1/ollama/models", get(catalog::llm_models))
        .route("/v1/estimates", post(estimates::estimate))
        .route("/v1/finops/simulate", get(estimates::finops).post(estimates::finops))
        .route("/v1/settings", get(settings::get).put(settings::update).patch(settings::update).post(settings::update))
        .route("/v1/settings/export", get(settings::export))
        .route("/v1/settings/profiles", post(settings::create_profile))
        .route(
            "/v1/settings/profiles/{name}",
            get(settings::get_profile).put(settings::put_profile).delete(settings::delete_profile),
        )
        .route("/v1/schedules", get(schedules::list).post(schedules::create))
        .route("/v1/schedules/{id}", get(schedules::get).put(schedules::update).delete(schedules::delete))
        .route("/v1/schedules/{id}/suspend", post(schedules::suspend))
        .route("/v1/schedules/{id}/resume", post(schedules::resume))
        .route("/v1/estop", get(control::estop_status).post(control::estop_trigger).delete(control::estop_release))
        .route("/v1/system/job-digests", get(system::job_digests))
        .layer(timeout)
        // Streams are long-lived by design: no request timeout.
        .route("/v1/runs/{id}/trace", get(runs::trace))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authenticate));
    // Unauthenticated: probes, metrics, the API description.
    let open = Router::new()
        .route("/healthz", get(control::healthz))
        .route("/v1/healthz", get(control::healthz))
        .route("/readyz", get(control::readyz))
        .route("/metrics", get(control::metrics))
        .route("/openapi.json", get(crate::openapi::document));
    api.merge(open)
        .fallback(|| async { crate::error::ApiError::NotFound("route".into()) })
        .layer(axum::middleware::from_fn_with_state(state.clone(), record_metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id, tenant = tracing::field::Empty)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
