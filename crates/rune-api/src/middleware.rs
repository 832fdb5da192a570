//! Request pipeline pieces: authentication + rate limiting, request metrics, and the
//! JSON body extractor with RUNE's error shapes.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rune_core::TenantId;
use std::net::SocketAddr;
use std::time::Instant;

/// The authenticated tenant of a request (inserted by [`authenticate`]).
#[derive(Debug, Clone)]
pub struct Tenant(pub TenantId);

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Authenticates (`Authorization: Bearer` + `X-Tenant-ID`), throttles addresses that
/// keep failing, and applies the tenant's rate limit.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let now = Instant::now();
    let addr = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if let Some(ip) = addr {
        if let Some(wait) = state.auth_throttle.blocked(ip, now) {
            return ApiError::RateLimited { retry_after_s: wait.as_secs().max(1) }.into_response();
        }
    }
    let headers = req.headers();
    let bearer = header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let tenant = state.config.auth.authenticate(header(headers, "x-tenant-id"), bearer);
    let Some(tenant) = tenant else {
        if let Some(ip) = addr {
            state.auth_throttle.record_failure(ip, now);
        }
        tracing::warn!(client = ?addr, "authentication failed");
        return ApiError::Unauthorized.into_response();
    };
    if let Err(wait) = state.limiter.check(tenant.as_str(), now) {
        return ApiError::RateLimited { retry_after_s: wait.as_secs_f64().ceil() as u64 }.into_response();
    }
    tracing::Span::current().record("tenant", tenant.as_str());
    req.extensions_mut().insert(Tenant(tenant));
    next.run(req).await
}

/// Records request count and latency by matched route.
pub async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let response = next.run(req).await;
    state.metrics.request(&route, &method, response.status().as_u16(), start.elapsed().as_secs_f64());
    response
}

/// A JSON request body, parsed to a value (typed validation happens in the handler so
/// every field error is reported at once). Refuses bodies over the limit with 413 and
/// non-JSON with 400.
pub struct JsonBody(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::BadRequest(rejection.body_text())
            }
        })?;
        if bytes.is_empty() {
            return Ok(JsonBody(serde_json::Value::Object(Default::default())));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("request body is not valid JSON: {e}")))
    }
}
