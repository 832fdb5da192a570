//! The `http` agent: the RUNE driver sidecar's submit-and-poll protocol.
//!
//! `POST {base}/v1/actions/ask` with `{"params": {...}}` returns `{"job_id": "..."}`; then
//! `GET {base}/v1/jobs/{id}` is polled every `poll_interval` until the job is terminal
//! (`{"status": "succeeded", "result": {...}}` or `{"status": "failed", "error": "..."}`) or
//! the call's timeout passes. Results have the same shape as the stdio protocol's `ask`
//! results. The bearer token and tenant, when configured, go with every request.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::time::Instant as Deadline;

use super::protocol::{excerpt_line, parse_ask_result};
use super::{Agent, AgentAnswer, AgentConfig, AgentContext, AgentError, AgentEvent, AgentQuestion};
use crate::backend::transport::{error_message, root_cause};

/// Bound on one HTTP request to the sidecar (the job as a whole is bounded by the call).
const REQUEST_BOUND: Duration = Duration::from_secs(30);
/// Consecutive failed polls (connection errors, 5xx) tolerated before giving up.
const MAX_POLL_FAILURES: u32 = 3;
/// Floor on the poll interval, so a misconfiguration cannot hammer the sidecar.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Job statuses that mean "not finished yet".
const PENDING: [&str; 7] = ["queued", "pending", "running", "in_progress", "accepted", "submitted", "started"];
/// Job statuses that mean success.
const SUCCEEDED: [&str; 5] = ["succeeded", "success", "completed", "done", "ok"];
/// Job statuses that mean failure.
const FAILED: [&str; 4] = ["failed", "error", "cancelled", "canceled"];

/// The `http` agent.
#[derive(Debug)]
pub struct HttpDriverAgent {
    name: String,
    base: String,
    client: reqwest::Client,
    token: Option<String>,
    tenant: Option<String>,
    poll_interval: Duration,
}

/// What one HTTP exchange with the sidecar produced.
enum Reply {
    Json(Value),
    /// A failure worth retrying while polling (connect error, timeout, 5xx).
    Transient(String),
}

impl HttpDriverAgent {
    /// An HTTP sidecar agent for `config.http.url` (`RUNE_HTTP_DRIVER_URL`), validated now.
    pub fn new(name: &str, config: &AgentConfig) -> Result<Self, AgentError> {
        let raw = config.http.url.as_deref().ok_or_else(|| AgentError::NotConfigured {
            agent: name.to_owned(),
            what: "the sidecar URL".to_owned(),
            var: "RUNE_HTTP_DRIVER_URL".to_owned(),
        })?;
        let bad = |reason: &str| AgentError::Config {
            var: "RUNE_HTTP_DRIVER_URL".to_owned(),
            value: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let url =
            reqwest::Url::parse(raw.trim()).map_err(|e| bad(&format!("{e}; expected e.g. http://localhost:8080")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(bad("expected an http:// or https:// URL with a host"));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.backend.connect_timeout)
            .build()
            .map_err(|e| bad(&format!("cannot build an HTTP client: {e}")))?;
        Ok(HttpDriverAgent {
            name: name.to_owned(),
            base: url.as_str().trim_end_matches('/').to_owned(),
            client,
            token: config.http.token.clone(),
            tenant: config.http.tenant.clone(),
            poll_interval: config.http.poll_interval.max(MIN_POLL_INTERVAL),
        })
    }

    fn sidecar(&self, url: &str, detail: String) -> AgentError {
        AgentError::Sidecar { agent: self.name.clone(), url: url.to_owned(), detail }
    }

    /// One request with the configured headers, bounded by [`REQUEST_BOUND`] and `deadline`.
    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        ctx: &AgentContext,
        deadline: Deadline,
    ) -> Result<Reply, AgentError> {
        let mut rb = self.client.request(method, url).timeout(REQUEST_BOUND);
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        if let Some(t) = &self.tenant {
            rb = rb.header("X-Tenant-ID", t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let exchange = async {
            let resp = rb.send().await?;
            let status = resp.status();
            let text = resp.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        };
        let outcome = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return Err(AgentError::Cancelled { agent: self.name.clone() }),
            _ = tokio::time::sleep_until(deadline) => {
                return Err(AgentError::Timeout { agent: self.name.clone(), after: ctx.timeout });
            }
            r = exchange => r,
        };
        let (status, text) = match outcome {
            Ok(x) => x,
            Err(e) if e.is_connect() => {
                return Ok(Reply::Transient(format!(
                    "cannot connect ({}); check that the sidecar is running and RUNE_HTTP_DRIVER_URL is right",
                    root_cause(&e)
                )))
            }
            Err(e) => return Ok(Reply::Transient(root_cause(&e))),
        };
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.sidecar(
                url,
                format!(
                    "HTTP {}: {}; set RUNE_HTTP_DRIVER_TOKEN (and RUNE_HTTP_DRIVER_TENANT) to credentials it accepts",
                    status.as_u16(),
                    error_message(&text)
                ),
            ));
        }
        if status.is_server_error() {
            return Ok(Reply::Transient(format!("HTTP {}: {}", status.as_u16(), error_message(&text))));
        }
        if !status.is_success() {
            return Err(self.sidecar(url, format!("HTTP {}: {}", status.as_u16(), error_message(&text))));
        }
        serde_json::from_str(&text)
            .map(Reply::Json)
            .map_err(|e| self.sidecar(url, format!("answer is not JSON ({e}): {}", excerpt_line(&text))))
    }
}

#[async_trait]
impl Agent for HttpDriverAgent {
    fn name(&self) -> &str {
        &self.name
    }

    async fn ask(&self, q: &AgentQuestion, ctx: &AgentContext) -> Result<AgentAnswer, AgentError> {
        let deadline = Deadline::now() + ctx.timeout;
        let submit_url = format!("{}/v1/actions/ask", self.base);
        ctx.emit(AgentEvent::Progress { message: format!("submitting to {submit_url}") });
        let body = json!({ "params": q.to_params() });
        let submitted = match self.call(Method::POST, &submit_url, Some(&body), ctx, deadline).await? {
            Reply::Json(v) => v,
            Reply::Transient(detail) => return Err(self.sidecar(&submit_url, detail)),
        };
        let job_id = match submitted.get("job_id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(self.sidecar(
                    &submit_url,
                    format!("answer lacks a `job_id`: {}", excerpt_line(&submitted.to_string())),
                ))
            }
        };
        let poll_url = format!("{}/v1/jobs/{}", self.base, job_id);
        let mut failures = 0;
        let mut last_status = String::new();
        loop {
            tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => return Err(AgentError::Cancelled { agent: self.name.clone() }),
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(AgentError::Timeout { agent: self.name.clone(), after: ctx.timeout });
                }
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
            let job = match self.call(Method::GET, &poll_url, None, ctx, deadline).await? {
                Reply::Json(v) => {
                    failures = 0;
                    v
                }
                Reply::Transient(detail) => {
                    failures += 1;
                    if failures >= MAX_POLL_FAILURES {
                        return Err(
                            self.sidecar(&poll_url, format!("{failures} polls in a row failed; last: {detail}"))
                        );
                    }
                    ctx.emit(AgentEvent::Warning {
                        message: format!("poll of {poll_url} failed ({detail}); retrying"),
                    });
                    continue;
                }
            };
            let status = job.get("status").and_then(Value::as_str).map(str::to_ascii_lowercase).ok_or_else(|| {
                self.sidecar(&poll_url, format!("job lacks a string `status`: {}", excerpt_line(&job.to_string())))
            })?;
            if status != last_status {
                ctx.emit(AgentEvent::Progress { message: format!("job {job_id} is {status}") });
                last_status.clone_from(&status);
            }
            if PENDING.contains(&status.as_str()) {
                continue;
            }
            if FAILED.contains(&status.as_str()) {
                let message = job
                    .get("error")
                    .and_then(Value::as_str)
                    .filter(|m| !m.trim().is_empty())
                    .map_or_else(|| format!("job {job_id} ended as {status} without a message"), str::to_owned);
                return Err(AgentError::Driver { agent: self.name.clone(), message });
            }
            if !SUCCEEDED.contains(&status.as_str()) {
                return Err(self.sidecar(
                    &poll_url,
                    format!(
                        "job status `{status}` is not one of {}, {} or {}",
                        PENDING.join("|"),
                        SUCCEEDED.join("|"),
                        FAILED.join("|")
                    ),
                ));
            }
            let result = job.get("result").cloned().unwrap_or(Value::Null);
            let parsed = parse_ask_result(&result)
                .map_err(|source| AgentError::Protocol { agent: self.name.clone(), source })?;
            for w in parsed.warnings {
                ctx.emit(AgentEvent::Warning { message: w });
            }
            return Ok(AgentAnswer {
                text: parsed.answer,
                usage: parsed.usage,
                timing: None,
                raw: result,
                artifacts: parsed.artifacts,
            });
        }
    }
}
