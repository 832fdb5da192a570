//! API errors: one enum, each variant with its HTTP status and stable `code`, rendered
//! as `{"error": "...", "code": "..."}` (plus `fields` for invalid bodies).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rune_core::api::ErrorBody;
use rune_core::ValidationErrors;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The body is not JSON or not the right shape (400).
    #[error("{0}")]
    BadRequest(String),
    /// The body is JSON but its fields are invalid (422).
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    /// No or wrong credentials (401).
    #[error("authentication required: send `Authorization: Bearer <token>` and `X-Tenant-ID: <tenant>`")]
    Unauthorized,
    /// The tenant may not do this (403; e.g. operate the E-Stop).
    #[error("{0}")]
    Forbidden(String),
    /// An unknown job kind in the URL (404).
    #[error("{0}")]
    UnknownKind(String),
    /// Absent, or another tenant's (404; never 403, so ids do not leak).
    #[error("{0} not found")]
    NotFound(String),
    /// Idempotency key reused with another payload, or a name taken (409).
    #[error("{0}")]
    Conflict(String),
    /// Body over the limit (413).
    #[error("request too large (exceeds maximum size of 10 MiB)")]
    TooLarge,
    /// Rate limited (429).
    #[error("rate limit exceeded; retry after {retry_after_s} s")]
    RateLimited {
        /// Seconds until a request would be accepted.
        retry_after_s: u64,
    },
    /// The E-Stop is engaged (409 on submissions).
    #[error("the emergency stop is engaged ({0}); release it with `rune estop release` before submitting jobs")]
    EstopActive(String),
    /// The server is not ready (503).
    #[error("{0}")]
    Unavailable(String),
    /// The store failed (500, logged).
    #[error("internal error: {0}")]
    Store(#[from] rune_store::StoreError),
    /// Anything else unexpected (500, logged).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::UnknownKind(_) => (StatusCode::NOT_FOUND, "unknown_kind"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::EstopActive(_) => (StatusCode::CONFLICT, "estop_active"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Store(e) if e.is_storage_full() => (StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
            ApiError::Store(e) if e.is_transient() => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Store(_) | ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// Seconds a client should wait before retrying a 503 caused by the database.
const DATABASE_RETRY_AFTER_S: u64 = 2;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let fields = match &self {
            ApiError::Invalid(v) => v.fields().to_vec(),
            _ => Vec::new(),
        };
        // Internal details stay in the log; the client gets a stable message.
        let message = match &self {
            ApiError::Store(e) if e.is_storage_full() => "the job database has no space left, so nothing was stored; \
                free disk space or grow the volume that holds it, then retry"
                .to_owned(),
            ApiError::Store(e) if e.is_transient() => {
                "the job database is unavailable right now, so nothing was stored; retry shortly".to_owned()
            }
            ApiError::Store(_) | ApiError::Internal(_) => "internal error; see the server log".to_owned(),
            other => other.to_string(),
        };
        let mut response = (status, Json(ErrorBody { error: message, code: code.into(), fields })).into_response();
        let retry_after = match &self {
            ApiError::RateLimited { retry_after_s } => Some((*retry_after_s).max(1)),
            ApiError::Store(e) if status == StatusCode::SERVICE_UNAVAILABLE && e.is_transient() => {
                Some(DATABASE_RETRY_AFTER_S)
            }
            _ => None,
        };
        if let Some(v) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        // The rest of an over-limit body is never read, so the connection cannot carry
        // another request; saying so stops clients from reusing it and failing.
        if matches!(self, ApiError::TooLarge) {
            response.headers_mut().insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
