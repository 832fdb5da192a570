//! Typed client for the RUNE HTTP API, used by the CLI (`--backend http`), the UI and
//! the operator. Request and response bodies are the shared types of
//! [`rune_core::api`], so client and server cannot drift.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), rune_client::ClientError> {
//! let client = rune_client::RuneClient::new(rune_client::ClientConfig {
//!     base_url: "http://127.0.0.1:8080".into(),
//!     ..Default::default()
//! })?;
//! let accepted = client.submit("cost-estimate", &serde_json::json!({"vastai": true}), None).await?;
//! let job = client.wait_for_job(&accepted.job_id, std::time::Duration::from_millis(200), std::time::Duration::from_secs(60)).await?;
//! println!("{:?}", job.status);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod sse;

use futures_util::Stream;
use reqwest::{Method, StatusCode};
use rune_core::api::{
    ArtifactList, CancelResponse, ErrorBody, EstopRequest, EstopStatus, EventList, Health, JobList, JobView, Readiness,
    ScheduleList, ScheduleRequest, ScheduleView, SubmitResponse,
};
use rune_core::cost::CostEstimate;
use rune_core::validate::FieldError;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// How to reach the API.
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `http://rune-api.rune:8080`.
    pub base_url: String,
    /// Bearer token (none when the server runs without authentication).
    pub token: Option<String>,
    /// Tenant sent as `X-Tenant-ID`.
    pub tenant: String,
    /// Per-request timeout (streams excepted).
    pub timeout: Duration,
    /// Skip TLS certificate verification.
    pub insecure: bool,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("tenant", &self.tenant)
            .field("timeout", &self.timeout)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8080".into(),
            token: None,
            tenant: "default".into(),
            timeout: Duration::from_secs(30),
            insecure: false,
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("{status}: {message}{}", fields_text(.fields))]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code from the body.
        code: String,
        /// Message from the body.
        message: String,
        /// Field errors, for invalid requests.
        fields: Vec<FieldError>,
    },
    /// The server could not be reached or the connection failed.
    #[error("cannot reach the RUNE API at {url}: {reason}")]
    Transport {
        /// What was called.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from {url}: {reason}")]
    Decode {
        /// What was called.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The configuration is unusable (bad base URL).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// Waiting for a job took longer than allowed.
    #[error("job {job_id} did not finish within {waited_s} s (last status {status})")]
    WaitTimeout {
        /// The job.
        job_id: String,
        /// Seconds waited.
        waited_s: u64,
        /// Last status seen.
        status: String,
    },
}

fn fields_text(fields: &[FieldError]) -> String {
    if fields.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
        format!(" ({})", parts.join("; "))
    }
}

impl ClientError {
    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A connection to one RUNE API as one tenant (its `Debug` never shows the token).
#[derive(Debug, Clone)]
pub struct RuneClient {
    base: String,
    http: reqwest::Client,
    stream_http: reqwest::Client,
    config: ClientConfig,
}

/// Filters for [`RuneClient::list_jobs`] (all optional).
#[derive(Debug, Clone, Default)]
pub struct ListJobs {
    /// Kind.
    pub kind: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Created at or after (RFC 3339).
    pub created_after: Option<String>,
    /// Created before (RFC 3339).
    pub created_before: Option<String>,
    /// `desc` (default) or `asc`.
    pub order: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// `GET /v1/llm/models`: the models a backend has, and those loaded now.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub struct ModelCatalog {
    /// Every model the server offers.
    #[serde(default)]
    pub models: Vec<String>,
    /// Models loaded in memory (Ollama only; empty for OpenAI-compatible servers).
    #[serde(default)]
    pub running_models: Vec<String>,
}

impl RuneClient {
    /// A client for `config.base_url`.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let base = config.base_url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Config(format!(
                "API base URL `{base}` must start with http:// or https:// (e.g. http://127.0.0.1:8080)"
            )));
        }
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("rune-client/", env!("CARGO_PKG_VERSION")))
                .danger_accept_invalid_certs(config.insecure)
                .connect_timeout(Duration::from_secs(10))
        };
        let http = builder().timeout(config.timeout).build().map_err(|e| ClientError::Config(e.to_string()))?;
        let stream_http = builder().build().map_err(|e| ClientError::Config(e.to_string()))?;
        Ok(Self { base, http, stream_http, config })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Builds the URL of `path`, percent-encoding every segment, so an identifier can
    /// never climb out of its route (`../estop` stays one segment).
    fn url(&self, path: &str) -> String {
        let mut out = self.base.clone();
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            out.push('/');
            for b in segment.bytes() {
                if b.is_ascii_alphanumeric()
                    || matches!(b, b'-' | b'_' | b'.' | b'~') && !(segment == "." || segment == "..")
                {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        out
    }

    fn request(&self, client: &reqwest::Client, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = client.request(method, self.url(path)).header("X-Tenant-ID", &self.config.tenant);
        if let Some(t) = &self.config.token {
            req = req.bearer_auth(t);
        }
        req
    }

    async fn call<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let response =
            req.send().await.map_err(|e| ClientError::Transport { url: url.clone(), reason: describe(&e) })?;
        let status = response.status();
        let bytes =
            response.bytes().await.map_err(|e| ClientError::Transport { url: url.clone(), reason: describe(&e) })?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { url, reason: e.to_string() })
    }

    /// `POST /v1/jobs/{kind}`.
    pub async fn submit(
        &self,
        kind: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<SubmitResponse, ClientError> {
        let path = format!("/v1/jobs/{kind}");
        let mut req = self.request(&self.http, Method::POST, &path).json(body);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        self.call(req, &path).await
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn get_job(&self, id: &str) -> Result<JobView, ClientError> {
        let path = format!("/v1/jobs/{id}");
        self.call(self.request(&self.http, Method::GET, &path), &path).await
    }

    /// `GET /v1/jobs` with filters.
    pub async fn list_jobs(&self, filter: &ListJobs) -> Result<JobList, ClientError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        let mut add = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                query.push((k, v.clone()));
            }
        };
        add("kind", &filter.kind);
        add("status", &filter.status);
        add("created_after", &filter.created_after);
        add("created_before", &filter.created_before);
        add("order", &filter.order);
        add("cursor", &filter.cursor);
        if let Some(l) = filter.limit {
            query.push(("limit", l.to_string()));
        }
        let path = "/v1/jobs";
        self.call(self.request(&self.http, Method::GET, path).query(&query), path).await
    }

    /// `DELETE /v1/jobs/{id}`.
    pub async fn cancel_job(&self, id: &str) -> Result<CancelResponse, ClientError> {
        let path = format!("/v1/jobs/{id}");
        self.call(self.request(&self.http, Method::DELETE, &path), &path).await
    }

    /// `GET /v1/jobs/{id}/events?after=`.
    pub async fn events(&self, id: &str, after: i64) -> Result<EventList, ClientError> {
        let path = format!("/v1/jobs/{id}/events");
        self.call(self.request(&self.http, Method::GET, &path).query(&[("after", after)]), &path).await
    }

    /// Polls until the job is terminal or `timeout` passes.
    pub async fn wait_for_job(&self, id: &str, poll: Duration, timeout: Duration) -> Result<JobView, ClientError> {
        let start = std::time::Instant::now();
        loop {
            let job = self.get_job(id).await?;
            if job.status.is_terminal() {
                return Ok(job);
            }
            if start.elapsed() >= timeout {
                return Err(ClientError::WaitTimeout {
                    job_id: id.to_owned(),
                    waited_s: start.elapsed().as_secs(),
                    status: job.status.to_string(),
                });
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// `GET /v1/runs/{id}/trace`: the live event stream, resuming after
    /// `last_event_id`. Ends after the `end` event.
    pub async fn trace(
        &self,
        id: &str,
        last_event_id: Option<i64>,
    ) -> Result<impl Stream<Item = Result<sse::SseEvent, ClientError>>, ClientError> {
        let path = format!("/v1/runs/{id}/trace");
        let url = format!("{}{path}", self.base);
        let mut req = self.request(&self.stream_http, Method::GET, &path).header("Accept", "text/event-stream");
        if let Some(last) = last_event_id {
            req = req.header("Last-Event-ID", last.to_string());
        }
        let response =
            req.send().await.map_err(|e| ClientError::Transport { url: url.clone(), reason: describe(&e) })?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await.unwrap_or_default();
            return Err(api_error(status, &bytes));
        }
        Ok(sse::events(response.bytes_stream(), url))
    }

    /// `GET /v1/schedules`.
    pub async fn list_schedules(&self) -> Result<ScheduleList, ClientError> {
        self.call(self.request(&self.http, Method::GET, "/v1/schedules"), "/v1/schedules").await
    }

    /// `POST /v1/schedules`.
    pub async fn create_schedule(&self, req: &ScheduleRequest) -> Result<ScheduleView, ClientError> {
        self.call(self.request(&self.http, Method::POST, "/v1/schedules").json(req), "/v1/schedules").await
    }

    /// `GET /v1/schedules/{id}`.
    pub async fn get_schedule(&self, id: &str) -> Result<ScheduleView, ClientError> {
        let path = format!("/v1/schedules/{id}");
        self.call(self.request(&self.http, Method::GET, &path), &path).await
    }

    /// `POST /v1/schedules/{id}/suspend`.
    pub async fn suspend_schedule(&self, id: &str) -> Result<ScheduleView, ClientError> {
        let path = format!("/v1/schedules/{id}/suspend");
        self.call(self.request(&self.http, Method::POST, &path), &path).await
    }

    /// `POST /v1/schedules/{id}/resume`.
    pub async fn resume_schedule(&self, id: &str) -> Result<ScheduleView, ClientError> {
        let path = format!("/v1/schedules/{id}/resume");
        self.call(self.request(&self.http, Method::POST, &path), &path).await
    }

    /// `DELETE /v1/schedules/{id}`.
    pub async fn delete_schedule(&self, id: &str) -> Result<(), ClientError> {
        let path = format!("/v1/schedules/{id}");
        let url = format!("{}{path}", self.base);
        let response = self
            .request(&self.http, Method::DELETE, &path)
            .send()
            .await
            .map_err(|e| ClientError::Transport { url, reason: describe(&e) })?;
        if response.status().is_success() {
            Ok(())
        } else {
            let status = response.status();
            Err(api_error(status, &response.bytes().await.unwrap_or_default()))
        }
    }

    /// `GET /v1/estop`.
    pub async fn estop_status(&self) -> Result<EstopStatus, ClientError> {
        self.call(self.request(&self.http, Method::GET, "/v1/estop"), "/v1/estop").await
    }

    /// `POST /v1/estop`.
    pub async fn estop_trigger(&self, req: &EstopRequest) -> Result<EstopStatus, ClientError> {
        self.call(self.request(&self.http, Method::POST, "/v1/estop").json(req), "/v1/estop").await
    }

    /// `DELETE /v1/estop`.
    pub async fn estop_release(&self) -> Result<EstopStatus, ClientError> {
        self.call(self.request(&self.http, Method::DELETE, "/v1/estop"), "/v1/estop").await
    }

    /// `POST /v1/estimates`.
    pub async fn estimate(&self, body: &Value) -> Result<Value, ClientError> {
        self.call(self.request(&self.http, Method::POST, "/v1/estimates").json(body), "/v1/estimates").await
    }

    /// `GET /readyz` (503 is returned as an error carrying the body's message).
    pub async fn ready(&self) -> Result<Readiness, ClientError> {
        self.call(self.request(&self.http, Method::GET, "/readyz"), "/readyz").await
    }

    /// `POST /v1/estimates`, decoded into the shared [`CostEstimate`] (what the spend
    /// gate reads).
    pub async fn cost_estimate(&self, body: &Value) -> Result<CostEstimate, ClientError> {
        self.call(self.request(&self.http, Method::POST, "/v1/estimates").json(body), "/v1/estimates").await
    }

    /// `GET /v1/jobs?schedule_id=`: the runs one schedule fired, newest first.
    pub async fn schedule_jobs(&self, schedule_id: &str, limit: u32) -> Result<JobList, ClientError> {
        let path = "/v1/jobs";
        let query = [("schedule_id", schedule_id.to_owned()), ("limit", limit.to_string())];
        self.call(self.request(&self.http, Method::GET, path).query(&query), path).await
    }

    /// `GET /v1/runs/{id}/artifacts`.
    pub async fn artifacts(&self, run_id: &str) -> Result<ArtifactList, ClientError> {
        let path = format!("/v1/runs/{run_id}/artifacts");
        self.call(self.request(&self.http, Method::GET, &path), &path).await
    }

    /// Downloads one artifact of `run_id`: `(content type, bytes)`. Only the API's own
    /// artifact route is reachable this way (both identifiers are encoded as segments).
    pub async fn artifact(&self, run_id: &str, artifact_id: &str) -> Result<(String, Vec<u8>), ClientError> {
        let path = format!("/v1/runs/{run_id}/artifacts/{artifact_id}");
        let url = format!("{}{path}", self.base);
        let response = self
            .request(&self.http, Method::GET, &path)
            .send()
            .await
            .map_err(|e| ClientError::Transport { url: url.clone(), reason: describe(&e) })?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let bytes = response.bytes().await.map_err(|e| ClientError::Transport { url, reason: describe(&e) })?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        Ok((content_type, bytes.to_vec()))
    }

    /// `GET /v1/llm/models?backend_url=&backend_type=`: what a model server offers.
    pub async fn llm_models(&self, backend_url: &str, backend_type: &str) -> Result<ModelCatalog, ClientError> {
        let path = "/v1/llm/models";
        let query = [("backend_url", backend_url), ("backend_type", backend_type)];
        self.call(self.request(&self.http, Method::GET, path).query(&query), path).await
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.call(self.request(&self.http, Method::GET, "/healthz"), "/healthz").await
    }

    /// `GET /metrics` as Prometheus text (worker pool and queue figures for dashboards).
    pub async fn metrics_text(&self) -> Result<String, ClientError> {
        let url = format!("{}/metrics", self.base);
        let response = self
            .request(&self.http, Method::GET, "/metrics")
            .send()
            .await
            .map_err(|e| ClientError::Transport { url: url.clone(), reason: describe(&e) })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| ClientError::Transport { url, reason: describe(&e) })?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Any JSON GET, for routes without a typed method yet.
    pub async fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        self.call(self.request(&self.http, Method::GET, path), path).await
    }
}

fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => ClientError::Api { status: status.as_u16(), code: e.code, message: e.error, fields: e.fields },
        Err(_) => ClientError::Api {
            status: status.as_u16(),
            code: "unknown".into(),
            message: String::from_utf8_lossy(&body[..body.len().min(500)]).trim().to_owned(),
            fields: Vec::new(),
        },
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> RuneClient {
        RuneClient::new(ClientConfig { token: Some("super-secret-token".into()), ..Default::default() }).unwrap()
    }

    /// Identifiers are encoded as single segments; dot segments cannot climb routes.
    #[test]
    fn path_segments_are_encoded() {
        let c = client();
        assert_eq!(c.url("/v1/jobs/abc-123"), "http://127.0.0.1:8080/v1/jobs/abc-123");
        assert_eq!(c.url("/v1/schedules/../../estop"), "http://127.0.0.1:8080/v1/schedules/%2E%2E/%2E%2E/estop");
        assert_eq!(c.url("/v1/jobs/a b?x"), "http://127.0.0.1:8080/v1/jobs/a%20b?x");
        assert_eq!(c.url("/v1/jobs/a%2Fb"), "http://127.0.0.1:8080/v1/jobs/a%252Fb");
    }

    /// The token never appears in Debug output.
    #[test]
    fn debug_redacts_token() {
        let c = client();
        assert!(!format!("{c:?}").contains("super-secret-token"));
        assert!(format!("{:?}", c.config).contains("[REDACTED]"));
    }

    /// Base URLs must be http(s).
    #[test]
    fn bad_base_url() {
        let err =
            RuneClient::new(ClientConfig { base_url: "localhost:8080".into(), ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("must start with http://"));
    }
}
