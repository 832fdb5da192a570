//! The HTTP plumbing both backends share: connect retries, deadlines, cancellation,
//! bounded body reads and the mapping of HTTP failures to [`BackendError`].
//!
//! It knows nothing about Ollama or OpenAI payloads. The one rule it enforces for
//! everyone: only connect errors are retried; once any byte has come back, never again.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use tokio::time::Instant as Deadline;
use tokio_util::sync::CancellationToken;

use super::error::excerpt;
use super::lines::LineBuffer;
use super::{BackendError, BackendKind, BackendOptions, TimeoutPhase, MAX_RETRY_BACKOFF};

/// Largest non-streamed JSON body accepted (model lists and `show` output are far smaller).
pub(crate) const MAX_JSON_BODY: usize = 16 << 20;
/// Largest error body read to build a message.
const MAX_ERROR_BODY: usize = 64 << 10;

/// Whether a stream consumer wants more lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Keep reading.
    Continue,
    /// The final message arrived; stop reading and drop the connection.
    Done,
}

/// A reply that was not a success status, kept raw so each endpoint can map it.
#[derive(Debug)]
pub(crate) struct StatusFailure {
    pub(crate) status: u16,
    /// The server's message (from a JSON `error`/`message` field when there is one).
    pub(crate) message: String,
}

/// One HTTP client bound to one server.
#[derive(Debug)]
pub(crate) struct Transport {
    client: reqwest::Client,
    base: String,
    kind: BackendKind,
    opts: BackendOptions,
}

impl Transport {
    pub(crate) fn new(kind: BackendKind, base: String, opts: BackendOptions) -> Result<Self, BackendError> {
        let client = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| BackendError::Client(e.to_string()))?;
        Ok(Transport { client, base, kind, opts })
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn opts(&self) -> &BackendOptions {
        &self.opts
    }

    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends one request, retrying connect errors only (bounded, with back-off).
    ///
    /// Returns the response and the instant the successful attempt started (the "request
    /// sent" time for TTFT, so retries and back-off are not counted).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        deadline: Deadline,
        bound: Duration,
        cancel: &CancellationToken,
    ) -> Result<(Response, std::time::Instant), BackendError> {
        let url = self.endpoint(path);
        let attempts = self.opts.connect_attempts.max(1);
        let mut backoff = self.opts.retry_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut rb = self.client.request(method.clone(), &url);
            if let Some(key) = &self.opts.api_key {
                rb = rb.bearer_auth(key);
            }
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let started = std::time::Instant::now();
            let outcome = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(BackendError::Cancelled { endpoint: url }),
                r = tokio::time::timeout_at(deadline, rb.send()) => r,
            };
            let err = match outcome {
                Err(_) => {
                    return Err(BackendError::Timeout { endpoint: url, phase: TimeoutPhase::Response, after: bound })
                }
                Ok(Ok(resp)) => return Ok((resp, started)),
                Ok(Err(e)) => e,
            };
            if !err.is_connect() {
                return Err(BackendError::Connection { endpoint: url, detail: root_cause(&err) });
            }
            let out_of_time = Deadline::now() + backoff >= deadline;
            if attempt >= attempts || out_of_time {
                if err.is_timeout() {
                    return Err(BackendError::Timeout {
                        endpoint: url,
                        phase: TimeoutPhase::Connect,
                        after: self.opts.connect_timeout,
                    });
                }
                return Err(BackendError::Unreachable {
                    backend: self.kind,
                    url,
                    attempts: attempt,
                    detail: root_cause(&err),
                });
            }
            tracing::debug!(url = %url, attempt, error = %root_cause(&err), "connect failed; retrying");
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(BackendError::Cancelled { endpoint: url }),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
        }
    }

    /// A non-streamed JSON call bounded by `request_timeout`: `Ok(Err(_))` is a non-2xx reply.
    pub(crate) async fn call_json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        cancel: &CancellationToken,
    ) -> Result<Result<Value, StatusFailure>, BackendError> {
        self.call_json_within(method, path, body, self.opts.request_timeout, cancel).await
    }

    /// Like [`Transport::call_json`] with an explicit overall bound.
    pub(crate) async fn call_json_within(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        bound: Duration,
        cancel: &CancellationToken,
    ) -> Result<Result<Value, StatusFailure>, BackendError> {
        let deadline = Deadline::now() + bound;
        let (mut resp, _) = self.send(method, path, body, deadline, bound, cancel).await?;
        let endpoint = self.endpoint(path);
        if !resp.status().is_success() {
            return Ok(Err(self.read_failure(&mut resp, &endpoint, deadline, bound, cancel).await?));
        }
        let bytes = self.read_body(&mut resp, &endpoint, MAX_JSON_BODY, deadline, bound, cancel).await?;
        serde_json::from_slice(&bytes).map(Ok).map_err(|e| BackendError::BadResponse {
            endpoint,
            detail: format!("body is not valid JSON ({e}): {}", excerpt(&String::from_utf8_lossy(&bytes))),
        })
    }

    /// Reads an error reply's message (bounded) without failing on a broken body.
    pub(crate) async fn read_failure(
        &self,
        resp: &mut Response,
        endpoint: &str,
        deadline: Deadline,
        bound: Duration,
        cancel: &CancellationToken,
    ) -> Result<StatusFailure, BackendError> {
        let status = resp.status().as_u16();
        let body = match self.read_body(resp, endpoint, MAX_ERROR_BODY, deadline, bound, cancel).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e @ (BackendError::Cancelled { .. } | BackendError::Timeout { .. })) => return Err(e),
            Err(_) => String::new(),
        };
        Ok(StatusFailure { status, message: error_message(&body) })
    }

    /// Reads a whole body, at most `max` bytes (more is a bad response).
    pub(crate) async fn read_body(
        &self,
        resp: &mut Response,
        endpoint: &str,
        max: usize,
        deadline: Deadline,
        bound: Duration,
        cancel: &CancellationToken,
    ) -> Result<Vec<u8>, BackendError> {
        let mut out = Vec::new();
        loop {
            let chunk = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(BackendError::Cancelled { endpoint: endpoint.to_owned() }),
                r = tokio::time::timeout_at(deadline, resp.chunk()) => r,
            };
            match chunk {
                Err(_) => {
                    return Err(BackendError::Timeout {
                        endpoint: endpoint.to_owned(),
                        phase: TimeoutPhase::Stream,
                        after: bound,
                    })
                }
                Ok(Err(e)) => {
                    return Err(BackendError::Connection { endpoint: endpoint.to_owned(), detail: root_cause(&e) })
                }
                Ok(Ok(None)) => return Ok(out),
                Ok(Ok(Some(bytes))) => {
                    if out.len() + bytes.len() > max {
                        return Err(BackendError::BadResponse {
                            endpoint: endpoint.to_owned(),
                            detail: format!("body exceeds {max} bytes"),
                        });
                    }
                    out.extend_from_slice(&bytes);
                }
            }
        }
    }

    /// Reads the next network chunk of a stream into `lines`; returns its arrival instant,
    /// or `None` at a clean end of stream.
    pub(crate) async fn read_stream_chunk(
        &self,
        resp: &mut Response,
        lines: &mut LineBuffer,
        endpoint: &str,
        deadline: Deadline,
        bound: Duration,
        cancel: &CancellationToken,
    ) -> Result<Option<std::time::Instant>, BackendError> {
        let chunk = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(BackendError::Cancelled { endpoint: endpoint.to_owned() }),
            r = tokio::time::timeout_at(deadline, resp.chunk()) => r,
        };
        match chunk {
            Err(_) => {
                Err(BackendError::Timeout { endpoint: endpoint.to_owned(), phase: TimeoutPhase::Stream, after: bound })
            }
            Ok(Err(e)) => Err(BackendError::BadResponse {
                endpoint: endpoint.to_owned(),
                detail: format!("the stream broke before it was complete: {}", root_cause(&e)),
            }),
            Ok(Ok(None)) => Ok(None),
            Ok(Ok(Some(bytes))) => {
                let at = std::time::Instant::now();
                lines.push(&bytes);
                Ok(Some(at))
            }
        }
    }

    /// Feeds every line of a streamed body to `on_line` until it says [`Flow::Done`] or
    /// the stream ends. Returns whether `on_line` finished the stream (`false`: the server
    /// closed it first, which the caller judges).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn stream_lines(
        &self,
        resp: &mut Response,
        endpoint: &str,
        deadline: Deadline,
        bound: Duration,
        cancel: &CancellationToken,
        mut on_line: impl FnMut(&str, std::time::Instant) -> Result<Flow, BackendError> + Send,
    ) -> Result<bool, BackendError> {
        let mut lines = LineBuffer::new(self.opts.max_line_bytes);
        let too_long = |len: usize| BackendError::BadResponse {
            endpoint: endpoint.to_owned(),
            detail: format!(
                "a stream line is longer than {} bytes ({len} bytes without a newline)",
                self.opts.max_line_bytes
            ),
        };
        loop {
            match self.read_stream_chunk(resp, &mut lines, endpoint, deadline, bound, cancel).await? {
                Some(at) => loop {
                    match lines.next_line() {
                        Ok(Some(line)) => {
                            if on_line(&line, at)? == Flow::Done {
                                return Ok(true);
                            }
                        }
                        Ok(None) => break,
                        Err(e) => return Err(too_long(e.len)),
                    }
                },
                None => {
                    if let Some(last) = lines.finish() {
                        if on_line(&last, std::time::Instant::now())? == Flow::Done {
                            return Ok(true);
                        }
                    }
                    return Ok(false);
                }
            }
        }
    }

    /// Maps a non-2xx reply that has no endpoint-specific meaning.
    pub(crate) fn status_error(&self, endpoint: &str, f: StatusFailure) -> BackendError {
        if f.status == StatusCode::UNAUTHORIZED.as_u16() || f.status == StatusCode::FORBIDDEN.as_u16() {
            BackendError::Auth {
                endpoint: endpoint.to_owned(),
                status: f.status,
                env_var: self.opts.api_key_env.clone(),
                detail: f.message,
            }
        } else {
            BackendError::Http { endpoint: endpoint.to_owned(), status: f.status, body: f.message }
        }
    }
}

/// The innermost cause of a transport error (e.g. "Connection refused (os error 111)").
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let inner = cur.to_string();
    let outer = e.to_string();
    if inner == outer {
        outer
    } else {
        format!("{inner} ({outer})")
    }
}

/// Extracts a human message from an error body: `{"error":"…"}`, `{"error":{"message":"…"}}`,
/// `{"message":"…"}` or the raw text.
pub(crate) fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        if let Some(m) = json_error_message(&v) {
            return excerpt(&m);
        }
    }
    if body.trim().is_empty() {
        "(empty body)".to_owned()
    } else {
        excerpt(body)
    }
}

/// The error message inside a JSON value, if it carries one.
pub(crate) fn json_error_message(v: &Value) -> Option<String> {
    match v.get("error") {
        Some(Value::String(s)) => return Some(s.clone()),
        Some(Value::Object(o)) => {
            if let Some(Value::String(s)) = o.get("message") {
                return Some(s.clone());
            }
            return Some(Value::Object(o.clone()).to_string());
        }
        _ => {}
    }
    if v.get("object").and_then(Value::as_str) == Some("error") {
        if let Some(Value::String(s)) = v.get("message") {
            return Some(s.clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Error bodies of Ollama, OpenAI and vLLM shapes all yield their message.
    #[test]
    fn error_messages() {
        assert_eq!(error_message(r#"{"error":"model 'x' not found"}"#), "model 'x' not found");
        assert_eq!(error_message(r#"{"error":{"message":"bad key","type":"auth"}}"#), "bad key");
        assert_eq!(
            error_message(r#"{"object":"error","message":"The model `x` does not exist."}"#),
            "The model `x` does not exist."
        );
        assert_eq!(error_message("plain text"), "plain text");
        assert_eq!(error_message(""), "(empty body)");
    }
}
