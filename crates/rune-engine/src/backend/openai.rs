//! The OpenAI-compatible backend (vLLM, llama.cpp server, TGI, LM Studio, Ollama's `/v1`):
//! `/v1/models` and streamed `/v1/chat/completions` (server-sent events).
//!
//! Only the OpenAI wire format and SSE framing live here; retries, deadlines and error
//! mapping come from the shared transport.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::time::Instant as Deadline;
use tokio_util::sync::CancellationToken;

use super::error::excerpt;
use super::transport::{json_error_message, Flow, StatusFailure, Transport, MAX_JSON_BODY};
use super::{
    normalize_base_url, Backend, BackendError, BackendKind, BackendOptions, ChatMessage, ChatRequest, ChatResponse,
    ModelInfo, ModelList, PullProgress, Usage, WarmUpOptions, WarmUpReport,
};
use crate::timing::StreamClock;

/// Bound on the model listing done to enrich an unknown-model error.
const LISTING_FOR_ERROR_BOUND: Duration = Duration::from_secs(5);

/// Talks to an OpenAI-compatible server.
#[derive(Debug)]
pub struct OpenAiBackend {
    t: Transport,
}

impl OpenAiBackend {
    /// A backend for the server at `base_url` (validated; a trailing `/v1` is accepted).
    /// The API key is taken from `options.api_key` as given.
    pub fn new(base_url: &str, options: BackendOptions) -> Result<Self, BackendError> {
        let base = normalize_base_url(BackendKind::OpenAi, base_url)?;
        Ok(OpenAiBackend { t: Transport::new(BackendKind::OpenAi, base, options)? })
    }

    async fn models_json(&self, cancel: &CancellationToken) -> Result<Vec<Value>, BackendError> {
        let path = "/v1/models";
        let endpoint = self.t.endpoint(path);
        let v =
            self.t.call_json(Method::GET, path, None, cancel).await?.map_err(|f| self.t.status_error(&endpoint, f))?;
        match v.get("data").and_then(Value::as_array) {
            Some(items) if items.iter().all(|m| m.get("id").is_some_and(Value::is_string)) => Ok(items.clone()),
            _ => Err(BackendError::BadResponse {
                endpoint,
                detail: format!("expected {{\"data\": [{{\"id\": …}}]}}, got {}", excerpt(&v.to_string())),
            }),
        }
    }

    async fn model_ids(&self, cancel: &CancellationToken) -> Result<Vec<String>, BackendError> {
        let mut ids: Vec<String> =
            self.models_json(cancel).await?.iter().filter_map(|m| m.get("id")?.as_str().map(str::to_owned)).collect();
        ids.sort();
        Ok(ids)
    }

    async fn unknown_model(&self, model: &str) -> BackendError {
        let cancel = CancellationToken::new();
        let available = match tokio::time::timeout(LISTING_FOR_ERROR_BOUND, self.model_ids(&cancel)).await {
            Ok(Ok(ids)) => ids,
            _ => Vec::new(),
        };
        BackendError::UnknownModel {
            model: model.to_owned(),
            url: self.t.base().to_owned(),
            available,
            hint: "start the server with this model (e.g. `vllm serve <model>`), or choose an available model"
                .to_owned(),
        }
    }

    async fn map_failure(&self, endpoint: &str, model: &str, f: StatusFailure) -> BackendError {
        if f.status == 404 || (f.status == 400 && looks_like_missing_model(&f.message)) {
            self.unknown_model(model).await
        } else {
            self.t.status_error(endpoint, f)
        }
    }

    async fn chat_within(
        &self,
        req: &ChatRequest,
        bound: Duration,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, BackendError> {
        let path = "/v1/chat/completions";
        let endpoint = self.t.endpoint(path);
        let mut body = json!({
            "model": req.model,
            "messages": req.messages,
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        if let Some(n) = req.max_tokens {
            body["max_tokens"] = json!(n);
        }
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(s) = req.seed {
            body["seed"] = json!(s);
        }
        let deadline = Deadline::now() + bound;
        let (mut resp, sent) = self.t.send(Method::POST, path, Some(&body), deadline, bound, cancel).await?;
        if !resp.status().is_success() {
            let f = self.t.read_failure(&mut resp, &endpoint, deadline, bound, cancel).await?;
            return Err(self.map_failure(&endpoint, &req.model, f).await);
        }
        let is_json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if is_json {
            return self.whole_completion(&mut resp, &endpoint, req, sent, deadline, bound, cancel).await;
        }
        let mut st = ChatStream::new(StreamClock::new(sent));
        let mut sse = SseParser::default();
        let finished = self
            .t
            .stream_lines(&mut resp, &endpoint, deadline, bound, cancel, |line, at| {
                Ok(match sse.line(line) {
                    Some(event) => st.event(&event, at),
                    None => Flow::Continue,
                })
            })
            .await?;
        if !finished {
            if let Some(event) = sse.flush() {
                st.event(&event, std::time::Instant::now());
            }
        }
        let end = std::time::Instant::now();
        drop(resp);
        if let Some(detail) = st.bad {
            return Err(BackendError::BadResponse { endpoint, detail });
        }
        if let Some(msg) = st.server_error {
            if looks_like_missing_model(&msg) {
                return Err(self.unknown_model(&req.model).await);
            }
            return Err(BackendError::BadResponse {
                endpoint,
                detail: format!("the server reported an error mid-stream: {msg}"),
            });
        }
        if !st.done && st.finish_reason.is_none() {
            return Err(BackendError::BadResponse {
                endpoint,
                detail: format!(
                    "the stream ended before `data: [DONE]` or a finish_reason, after {} token chunk(s): the server \
                     closed the connection mid-stream",
                    st.clock.finish(end).chunks
                ),
            });
        }
        Ok(ChatResponse {
            timing: st.clock.finish(end),
            text: st.text,
            usage: st.usage,
            server_timing: None,
            model: st.model.unwrap_or_else(|| req.model.clone()),
            finish_reason: st.finish_reason,
        })
    }
}

impl OpenAiBackend {
    /// A server that ignored `stream: true` and sent one JSON completion: its text and
    /// usage are kept, but there is no TTFT or inter-token timing to report.
    #[allow(clippy::too_many_arguments)]
    async fn whole_completion(
        &self,
        resp: &mut reqwest::Response,
        endpoint: &str,
        req: &ChatRequest,
        sent: std::time::Instant,
        deadline: Deadline,
        bound: Duration,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, BackendError> {
        tracing::warn!(endpoint, "server ignored stream=true; no TTFT or inter-token timing for this call");
        let bytes = self.t.read_body(resp, endpoint, MAX_JSON_BODY, deadline, bound, cancel).await?;
        let end = std::time::Instant::now();
        let bad = |detail: String| BackendError::BadResponse { endpoint: endpoint.to_owned(), detail };
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("completion is not JSON ({e}): {}", excerpt(&String::from_utf8_lossy(&bytes)))))?;
        if let Some(msg) = json_error_message(&v) {
            return Err(bad(format!("the server reported an error: {msg}")));
        }
        let choice = v.get("choices").and_then(Value::as_array).and_then(|c| c.first());
        let text =
            choice.and_then(|c| c.get("message")).and_then(|m| m.get("content")).and_then(Value::as_str).ok_or_else(
                || bad(format!("completion lacks choices[0].message.content: {}", excerpt(&v.to_string()))),
            )?;
        let usage = v.get("usage").map_or_else(Usage::default, |u| Usage {
            prompt_tokens: u.get("prompt_tokens").and_then(Value::as_u64),
            completion_tokens: u.get("completion_tokens").and_then(Value::as_u64),
        });
        Ok(ChatResponse {
            text: text.to_owned(),
            usage,
            timing: StreamClock::new(sent).finish(end),
            server_timing: None,
            model: v.get("model").and_then(Value::as_str).map_or_else(|| req.model.clone(), str::to_owned),
            finish_reason: choice.and_then(|c| c.get("finish_reason")).and_then(Value::as_str).map(str::to_owned),
        })
    }
}

fn looks_like_missing_model(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("model") && (m.contains("does not exist") || m.contains("not found"))
}

/// The context window an OpenAI-compatible model entry advertises, under the names
/// servers use for it.
fn context_from_entry(entry: &Value) -> Option<u64> {
    ["max_model_len", "context_length", "context_window", "max_context_length"]
        .iter()
        .find_map(|k| entry.get(*k).and_then(Value::as_u64))
}

/// Server-sent-events framing: `data:` lines accumulate until a blank line ends the event.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    data: String,
    has_data: bool,
    /// An `error:` field (llama.cpp) seen in the current event.
    error: Option<String>,
}

/// One dispatched SSE event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SseEvent {
    /// The joined `data:` payload.
    Data(String),
    /// An `error:` field's payload.
    Error(String),
}

impl SseParser {
    /// Feeds one line; returns an event when a blank line completes one.
    pub(crate) fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.flush();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "error" => self.error = Some(value.to_owned()),
            _ => {}
        }
        None
    }

    /// Ends the pending event (at a blank line or end of stream).
    pub(crate) fn flush(&mut self) -> Option<SseEvent> {
        if let Some(e) = self.error.take() {
            self.data.clear();
            self.has_data = false;
            return Some(SseEvent::Error(e));
        }
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent::Data(std::mem::take(&mut self.data)))
    }
}

/// The state of one streamed chat completion, fed event by event.
#[derive(Debug)]
struct ChatStream {
    clock: StreamClock,
    text: String,
    usage: Usage,
    model: Option<String>,
    finish_reason: Option<String>,
    done: bool,
    server_error: Option<String>,
    bad: Option<String>,
}

impl ChatStream {
    fn new(clock: StreamClock) -> Self {
        ChatStream {
            clock,
            text: String::new(),
            usage: Usage::default(),
            model: None,
            finish_reason: None,
            done: false,
            server_error: None,
            bad: None,
        }
    }

    fn event(&mut self, event: &SseEvent, at: std::time::Instant) -> Flow {
        let data = match event {
            SseEvent::Error(e) => {
                self.server_error = Some(
                    serde_json::from_str::<Value>(e).ok().and_then(|v| json_error_message(&v)).unwrap_or(e.clone()),
                );
                return Flow::Done;
            }
            SseEvent::Data(d) => d.trim(),
        };
        if data == "[DONE]" {
            self.done = true;
            return Flow::Done;
        }
        let v: Value = match serde_json::from_str(data) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                self.bad = Some(format!("SSE data is not a JSON object: {}", excerpt(data)));
                return Flow::Done;
            }
            Err(e) => {
                self.bad = Some(format!("SSE data is not JSON ({e}): {}", excerpt(data)));
                return Flow::Done;
            }
        };
        if let Some(msg) = json_error_message(&v) {
            self.server_error = Some(msg);
            return Flow::Done;
        }
        if self.model.is_none() {
            self.model = v.get("model").and_then(Value::as_str).map(str::to_owned);
        }
        if let Some(choice) = v.get("choices").and_then(Value::as_array).and_then(|c| c.first()) {
            let delta = choice.get("delta");
            let field = |k: &str| delta.and_then(|d| d.get(k)).and_then(Value::as_str).unwrap_or("");
            let content = field("content");
            let reasoning =
                if field("reasoning_content").is_empty() { field("reasoning") } else { field("reasoning_content") };
            if !content.is_empty() || !reasoning.is_empty() {
                self.clock.token_at(at);
                self.text.push_str(content);
            }
            if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(r.to_owned());
            }
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Usage {
                prompt_tokens: u.get("prompt_tokens").and_then(Value::as_u64),
                completion_tokens: u.get("completion_tokens").and_then(Value::as_u64),
            };
        }
        Flow::Continue
    }
}

/// Runs raw bytes, split at the given points as a network might, through the same
/// line splitter, SSE framing and chunk decoding a streamed chat uses; returns the text
/// decoded. For fuzzing and property tests: it must never panic, whatever the bytes.
pub(crate) fn decode_stream(chunks: &[&[u8]], max_line: usize) -> String {
    let start = std::time::Instant::now();
    let mut lines = super::lines::LineBuffer::new(max_line);
    let mut parser = SseParser { data: String::new(), has_data: false, error: None };
    let mut stream = ChatStream::new(StreamClock::new(start));
    for chunk in chunks {
        lines.push(chunk);
        loop {
            match lines.next_line() {
                Ok(Some(line)) => {
                    if let Some(event) = parser.line(&line) {
                        if matches!(stream.event(&event, start), Flow::Done) {
                            return stream.text;
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => return stream.text,
            }
        }
    }
    if let Some(event) = lines.finish().and_then(|l| parser.line(&l)).or_else(|| parser.flush()) {
        stream.event(&event, start);
    }
    stream.text
}

#[async_trait]
impl Backend for OpenAiBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::OpenAi
    }

    fn base_url(&self) -> &str {
        self.t.base()
    }

    async fn list_models(&self) -> Result<ModelList, BackendError> {
        let models = self.model_ids(&CancellationToken::new()).await?;
        Ok(ModelList { running_models: models.clone(), models })
    }

    async fn model_info(&self, model: &str) -> Result<ModelInfo, BackendError> {
        let entries = self.models_json(&CancellationToken::new()).await?;
        match entries.iter().find(|m| m.get("id").and_then(Value::as_str) == Some(model)) {
            Some(entry) => Ok(ModelInfo {
                name: model.to_owned(),
                context_length: context_from_entry(entry),
                ..ModelInfo::default()
            }),
            None => {
                let mut available: Vec<String> =
                    entries.iter().filter_map(|m| m.get("id")?.as_str().map(str::to_owned)).collect();
                available.sort();
                Err(BackendError::UnknownModel {
                    model: model.to_owned(),
                    url: self.t.base().to_owned(),
                    available,
                    hint: "start the server with this model (e.g. `vllm serve <model>`), or choose an available model"
                        .to_owned(),
                })
            }
        }
    }

    async fn warm_up(
        &self,
        model: &str,
        opts: &WarmUpOptions,
        cancel: &CancellationToken,
    ) -> Result<WarmUpReport, BackendError> {
        let started = std::time::Instant::now();
        self.model_info(model).await?;
        let req = ChatRequest {
            model: model.to_owned(),
            messages: vec![ChatMessage::user("ping")],
            max_tokens: Some(1),
            ..ChatRequest::default()
        };
        let remaining = opts.timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(1));
        self.chat_within(&req, remaining, cancel).await?;
        Ok(WarmUpReport { elapsed_ms: started.elapsed().as_secs_f64() * 1000.0, unloaded: Vec::new() })
    }

    async fn pull(
        &self,
        _model: &str,
        _progress: &(dyn for<'p> Fn(&'p PullProgress) + Send + Sync),
        _cancel: &CancellationToken,
    ) -> Result<(), BackendError> {
        Err(BackendError::Unsupported {
            backend: BackendKind::OpenAi,
            operation: "pulling a model",
            hint: "OpenAI-compatible servers load their models at start; start the server with the model \
                   (e.g. `vllm serve <model>`)",
        })
    }

    async fn chat(&self, req: &ChatRequest, cancel: &CancellationToken) -> Result<ChatResponse, BackendError> {
        self.chat_within(req, self.t.opts().chat_timeout, cancel).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(lines: &[&str]) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        let mut out: Vec<SseEvent> = lines.iter().filter_map(|l| p.line(l)).collect();
        out.extend(p.flush());
        out
    }

    /// SSE framing: comments and unknown fields are skipped, multi-line data is joined,
    /// `data:` with or without a space works, and a final event without a blank line counts.
    #[test]
    fn sse_framing() {
        assert_eq!(
            events(&[
                ": keep-alive",
                "data: {\"a\":1}",
                "",
                "event: x",
                "data:{\"b\":",
                "data: 2}",
                "",
                "data: [DONE]"
            ]),
            vec![
                SseEvent::Data("{\"a\":1}".into()),
                SseEvent::Data("{\"b\":\n2}".into()),
                SseEvent::Data("[DONE]".into())
            ]
        );
        assert_eq!(
            events(&["error: {\"message\":\"boom\"}", ""]),
            vec![SseEvent::Error("{\"message\":\"boom\"}".into())]
        );
        assert!(events(&["", "", "id: 3"]).is_empty());
    }

    /// Chunks: content and reasoning time the clock but only content is answer text; the
    /// usage chunk (empty choices) sets the token counts; malformed data is a bad response.
    #[test]
    fn chunk_handling() {
        let t0 = std::time::Instant::now();
        let mut st = ChatStream::new(StreamClock::new(t0));
        let ev = |s: &str| SseEvent::Data(s.to_owned());
        st.event(&ev(r#"{"model":"m","choices":[{"delta":{"role":"assistant"}}]}"#), t0);
        st.event(&ev(r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#), t0);
        st.event(&ev(r#"{"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}"#), t0);
        st.event(&ev(r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#), t0);
        st.event(&ev(r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#), t0);
        assert_eq!(st.event(&ev("[DONE]"), t0), Flow::Done);
        assert_eq!(st.text, "Hi");
        assert_eq!(st.clock.finish(t0).chunks, 2);
        assert_eq!(st.usage, Usage { prompt_tokens: Some(5), completion_tokens: Some(2) });
        assert_eq!(st.finish_reason.as_deref(), Some("stop"));
        assert_eq!(st.model.as_deref(), Some("m"));

        let mut st = ChatStream::new(StreamClock::new(t0));
        assert_eq!(st.event(&ev("{oops"), t0), Flow::Done);
        assert!(st.bad.unwrap().contains("not JSON"));
        let mut st = ChatStream::new(StreamClock::new(t0));
        st.event(&ev(r#"{"error":{"message":"overloaded"}}"#), t0);
        assert_eq!(st.server_error.as_deref(), Some("overloaded"));
    }

    /// Context windows are read under each server's field name.
    #[test]
    fn context_fields() {
        assert_eq!(context_from_entry(&json!({"id": "m", "max_model_len": 8192})), Some(8192));
        assert_eq!(context_from_entry(&json!({"id": "m", "context_length": 4096})), Some(4096));
        assert_eq!(context_from_entry(&json!({"id": "m"})), None);
    }
}
