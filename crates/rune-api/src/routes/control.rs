//! `/v1/estop` routes and the health, readiness, metrics and OpenAPI endpoints.

use crate::error::{ApiError, ApiResult};
use crate::estop;
use crate::middleware::{JsonBody, Tenant};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rune_core::api::{EstopRequest, EstopStatus, Health, Readiness};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// `GET /v1/estop`.
#[utoipa::path(get, path = "/v1/estop", tag = "estop", responses((status = 200, body = EstopStatus)))]
pub async fn estop_status(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
) -> ApiResult<Json<EstopStatus>> {
    Ok(Json(estop::status(&state, &tenant).await?))
}

/// `POST /v1/estop` with `{"reason"?, "actor"?}`.
#[utoipa::path(post, path = "/v1/estop", tag = "estop", request_body = EstopRequest,
    responses((status = 200, body = EstopStatus), (status = 403, body = rune_core::api::ErrorBody)))]
pub async fn estop_trigger(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<EstopStatus>> {
    let req: EstopRequest =
        serde_json::from_value(body).map_err(|e| ApiError::BadRequest(format!("invalid E-Stop request: {e}")))?;
    let actor = req.actor.filter(|a| !a.trim().is_empty()).unwrap_or_else(|| format!("tenant {tenant}"));
    Ok(Json(estop::trigger(&state, &tenant, &actor, req.reason).await?))
}

/// `DELETE /v1/estop`.
#[utoipa::path(delete, path = "/v1/estop", tag = "estop", responses((status = 200, body = EstopStatus)))]
pub async fn estop_release(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
) -> ApiResult<Json<EstopStatus>> {
    Ok(Json(estop::release(&state, &tenant, &format!("tenant {tenant}")).await?))
}

/// `GET /healthz`: the process answers. Cheap, no database.
#[utoipa::path(get, path = "/healthz", tag = "probes", security(), responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// `GET /readyz`: the database answers at a schema this binary knows, and workers run.
#[utoipa::path(get, path = "/readyz", tag = "probes", security(), responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = BTreeMap::new();
    let mut ok = true;
    let mut schema_version = None;
    match state.store.schema_status().await {
        Ok(s) if s.schema_version == s.binary_schema_version => {
            schema_version = Some(s.schema_version);
            checks.insert("database".into(), "ok".into());
        }
        Ok(s) => {
            ok = false;
            schema_version = Some(s.schema_version);
            checks.insert(
                "database".into(),
                format!("schema {} but binary needs {}", s.schema_version, s.binary_schema_version),
            );
        }
        Err(e) => {
            ok = false;
            checks.insert("database".into(), format!("unreachable: {e}"));
        }
    }
    checks.insert("workers".into(), format!("{} of {} busy", state.engine.busy(), state.engine.capacity()));
    checks.insert(
        "estop".into(),
        if state.estop_active.load(Ordering::Relaxed) { "engaged".into() } else { "released".into() },
    );
    let body = Readiness {
        status: if ok { "ok".into() } else { "unavailable".into() },
        checks,
        schema_version,
        database: format!("{:?}", state.store.engine()).to_lowercase(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "probes", security(), responses((status = 200, content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let counts = state.metrics.job_counts(state.store.as_ref()).await?;
    let text = state.metrics.render(
        &counts,
        state.engine.busy(),
        state.engine.capacity(),
        state.estop_active.load(Ordering::Relaxed),
    );
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}
