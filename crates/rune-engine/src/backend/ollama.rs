//! The Ollama backend: `/api/tags`, `/api/ps`, `/api/show`, `/api/generate` (load and
//! unload), `/api/pull` and streamed `/api/chat` (NDJSON).
//!
//! Only Ollama's wire format lives here; retries, deadlines and error mapping come from
//! the shared transport.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{json, Map, Value};
use tokio::time::Instant as Deadline;
use tokio_util::sync::CancellationToken;

use super::error::excerpt;
use super::transport::{json_error_message, Flow, StatusFailure, Transport};
use super::{
    normalize_base_url, ollama_model_name, Backend, BackendError, BackendKind, BackendOptions, ChatRequest,
    ChatResponse, ModelInfo, ModelList, PullProgress, ServerTiming, TimeoutPhase, Usage, WarmUpOptions, WarmUpReport,
};
use crate::timing::StreamClock;

/// Bound on the model listing done to enrich an unknown-model error.
const LISTING_FOR_ERROR_BOUND: Duration = Duration::from_secs(5);

/// Talks to an Ollama server's native API.
#[derive(Debug)]
pub struct OllamaBackend {
    t: Transport,
}

impl OllamaBackend {
    /// A backend for the Ollama server at `base_url` (validated; no request is made).
    pub fn new(base_url: &str, options: BackendOptions) -> Result<Self, BackendError> {
        let base = normalize_base_url(BackendKind::Ollama, base_url)?;
        Ok(OllamaBackend { t: Transport::new(BackendKind::Ollama, base, options)? })
    }

    async fn names(&self, path: &str, cancel: &CancellationToken) -> Result<Vec<String>, BackendError> {
        let endpoint = self.t.endpoint(path);
        let v =
            self.t.call_json(Method::GET, path, None, cancel).await?.map_err(|f| self.t.status_error(&endpoint, f))?;
        model_names(&v).ok_or_else(|| BackendError::BadResponse {
            endpoint,
            detail: format!("expected {{\"models\": [{{\"name\": …}}]}}, got {}", excerpt(&v.to_string())),
        })
    }

    /// Builds the unknown-model error, listing what the server offers when that is quick.
    async fn unknown_model(&self, model: &str) -> BackendError {
        let cancel = CancellationToken::new();
        let listing = tokio::time::timeout(LISTING_FOR_ERROR_BOUND, self.names("/api/tags", &cancel)).await;
        let mut available = match listing {
            Ok(Ok(names)) => names,
            _ => Vec::new(),
        };
        available.sort();
        BackendError::UnknownModel {
            model: model.to_owned(),
            url: self.t.base().to_owned(),
            available,
            hint: format!("pull it on the server with `ollama pull {model}`, or choose an available model"),
        }
    }

    async fn map_failure(&self, endpoint: &str, model: &str, f: StatusFailure) -> BackendError {
        if f.status == 404 || looks_like_missing_model(&f.message) {
            self.unknown_model(model).await
        } else {
            self.t.status_error(endpoint, f)
        }
    }

    async fn generate(
        &self,
        body: &Value,
        bound: Duration,
        model: &str,
        cancel: &CancellationToken,
    ) -> Result<(), BackendError> {
        let path = "/api/generate";
        match self.t.call_json_within(Method::POST, path, Some(body), bound, cancel).await? {
            Ok(_) => Ok(()),
            Err(f) => Err(self.map_failure(&self.t.endpoint(path), model, f).await),
        }
    }
}

/// `{"models": [{"name": …}]}` → sorted names.
fn model_names(v: &Value) -> Option<Vec<String>> {
    let mut names = v
        .get("models")?
        .as_array()?
        .iter()
        .map(|m| m.get("name").or_else(|| m.get("model")).and_then(Value::as_str).map(str::to_owned))
        .collect::<Option<Vec<_>>>()?;
    names.sort();
    Some(names)
}

fn looks_like_missing_model(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("model") && (m.contains("not found") || m.contains("does not exist"))
}

/// Whether `running` lists `model` (Ollama reports `name:latest` for an untagged name).
fn is_running(running: &[String], model: &str) -> bool {
    running.iter().any(|r| {
        r == model || r.strip_suffix(":latest") == Some(model) || model.strip_suffix(":latest") == Some(r.as_str())
    })
}

fn ns_to_ms(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_u64).map(|ns| ns as f64 / 1e6)
}

/// Parses `/api/show` output into [`ModelInfo`].
fn parse_show(model: &str, v: &Value) -> ModelInfo {
    let context_length = v
        .get("model_info")
        .and_then(Value::as_object)
        .and_then(|info| info.iter().find(|(k, _)| k.ends_with(".context_length")).and_then(|(_, v)| v.as_u64()));
    let detail = |k: &str| v.get("details").and_then(|d| d.get(k)).and_then(Value::as_str).map(str::to_owned);
    ModelInfo {
        name: model.to_owned(),
        context_length,
        family: detail("family"),
        parameter_size: detail("parameter_size"),
        quantization: detail("quantization_level"),
    }
}

/// The state of one streamed `/api/chat`, fed line by line.
#[derive(Debug)]
struct ChatStream {
    clock: StreamClock,
    text: String,
    usage: Usage,
    server: Option<ServerTiming>,
    model: Option<String>,
    finish_reason: Option<String>,
}

/// What a stream line meant, beyond the state it updated.
#[derive(Debug)]
enum LineOutcome {
    Flow(Flow),
    ServerError(String),
}

impl ChatStream {
    fn line(&mut self, line: &str, at: std::time::Instant) -> Result<LineOutcome, String> {
        if line.trim().is_empty() {
            return Ok(LineOutcome::Flow(Flow::Continue));
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("stream line is not JSON ({e}): {}", excerpt(line)))?;
        if !v.is_object() {
            return Err(format!("stream line is not a JSON object: {}", excerpt(line)));
        }
        if let Some(msg) = json_error_message(&v) {
            return Ok(LineOutcome::ServerError(msg));
        }
        if let Some(m) = v.get("model").and_then(Value::as_str) {
            if self.model.is_none() {
                self.model = Some(m.to_owned());
            }
        }
        let message = v.get("message");
        let content = message.and_then(|m| m.get("content")).and_then(Value::as_str).unwrap_or("");
        let thinking = message.and_then(|m| m.get("thinking")).and_then(Value::as_str).unwrap_or("");
        if !content.is_empty() || !thinking.is_empty() {
            self.clock.token_at(at);
            self.text.push_str(content);
        }
        match v.get("done") {
            Some(Value::Bool(true)) => {
                self.usage = Usage {
                    prompt_tokens: v.get("prompt_eval_count").and_then(Value::as_u64),
                    completion_tokens: v.get("eval_count").and_then(Value::as_u64),
                };
                self.server = Some(ServerTiming {
                    total_ms: ns_to_ms(&v, "total_duration"),
                    load_ms: ns_to_ms(&v, "load_duration"),
                    prompt_eval_ms: ns_to_ms(&v, "prompt_eval_duration"),
                    eval_ms: ns_to_ms(&v, "eval_duration"),
                });
                self.finish_reason = v.get("done_reason").and_then(Value::as_str).map(str::to_owned);
                Ok(LineOutcome::Flow(Flow::Done))
            }
            Some(Value::Bool(false)) | None => Ok(LineOutcome::Flow(Flow::Continue)),
            Some(other) => Err(format!("`done` is {other}, expected true or false")),
        }
    }
}

/// Runs raw bytes, split at the given points, through the line splitter and the
/// NDJSON chunk decoding a streamed `/api/chat` uses; returns the text decoded. For
/// fuzzing and property tests: it must never panic, whatever the bytes.
pub(crate) fn decode_stream(chunks: &[&[u8]], max_line: usize) -> String {
    let start = std::time::Instant::now();
    let mut lines = super::lines::LineBuffer::new(max_line);
    let mut stream = ChatStream {
        clock: StreamClock::new(start),
        text: String::new(),
        usage: Usage::default(),
        server: None,
        model: None,
        finish_reason: None,
    };
    let feed = |line: &str, stream: &mut ChatStream| {
        !matches!(stream.line(line, start), Ok(LineOutcome::Flow(Flow::Continue)))
    };
    for chunk in chunks {
        lines.push(chunk);
        loop {
            match lines.next_line() {
                Ok(Some(line)) => {
                    if feed(&line, &mut stream) {
                        return stream.text;
                    }
                }
                Ok(None) => break,
                Err(_) => return stream.text,
            }
        }
    }
    if let Some(line) = lines.finish() {
        feed(&line, &mut stream);
    }
    stream.text
}

#[async_trait]
impl Backend for OllamaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Ollama
    }

    fn base_url(&self) -> &str {
        self.t.base()
    }

    async fn list_models(&self) -> Result<ModelList, BackendError> {
        let cancel = CancellationToken::new();
        let models = self.names("/api/tags", &cancel).await?;
        let running_models = self.names("/api/ps", &cancel).await?;
        Ok(ModelList { models, running_models })
    }

    async fn model_info(&self, model: &str) -> Result<ModelInfo, BackendError> {
        let model = ollama_model_name(model);
        let path = "/api/show";
        let cancel = CancellationToken::new();
        let body = json!({ "model": model });
        match self.t.call_json(Method::POST, path, Some(&body), &cancel).await? {
            Ok(v) => Ok(parse_show(model, &v)),
            Err(f) => Err(self.map_failure(&self.t.endpoint(path), model, f).await),
        }
    }

    async fn warm_up(
        &self,
        model: &str,
        opts: &WarmUpOptions,
        cancel: &CancellationToken,
    ) -> Result<WarmUpReport, BackendError> {
        let model = ollama_model_name(model);
        let started = std::time::Instant::now();
        let deadline = Deadline::now() + opts.timeout;
        let remaining = || deadline.saturating_duration_since(Deadline::now()).max(Duration::from_millis(1));
        let mut unloaded = Vec::new();
        if opts.unload_others {
            for other in self.names("/api/ps", cancel).await? {
                if is_running(std::slice::from_ref(&other), model) {
                    continue;
                }
                self.generate(&json!({ "model": other, "keep_alive": 0 }), remaining(), &other, cancel).await?;
                unloaded.push(other);
            }
        }
        let load = json!({ "model": model, "prompt": "", "keep_alive": opts.keep_alive, "stream": false });
        self.generate(&load, remaining(), model, cancel).await?;
        loop {
            if is_running(&self.names("/api/ps", cancel).await?, model) {
                return Ok(WarmUpReport { elapsed_ms: started.elapsed().as_secs_f64() * 1000.0, unloaded });
            }
            if Deadline::now() + opts.poll_interval >= deadline {
                return Err(BackendError::Timeout {
                    endpoint: self.t.endpoint("/api/ps"),
                    phase: TimeoutPhase::WarmUp,
                    after: opts.timeout,
                });
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(BackendError::Cancelled { endpoint: self.t.endpoint("/api/ps") }),
                _ = tokio::time::sleep(opts.poll_interval) => {}
            }
        }
    }

    async fn pull(
        &self,
        model: &str,
        progress: &(dyn for<'p> Fn(&'p PullProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<(), BackendError> {
        let model = ollama_model_name(model);
        let path = "/api/pull";
        let endpoint = self.t.endpoint(path);
        let bound = self.t.opts().pull_timeout;
        let deadline = Deadline::now() + bound;
        let body = json!({ "model": model, "stream": true });
        let (mut resp, _) = self.t.send(Method::POST, path, Some(&body), deadline, bound, cancel).await?;
        if !resp.status().is_success() {
            let f = self.t.read_failure(&mut resp, &endpoint, deadline, bound, cancel).await?;
            return Err(
                if f.status == 404 || looks_like_missing_model(&f.message) || f.message.contains("file does not exist")
                {
                    BackendError::UnknownModel {
                        model: model.to_owned(),
                        url: self.t.base().to_owned(),
                        available: Vec::new(),
                        hint: "check the model name and tag in the Ollama library".to_owned(),
                    }
                } else {
                    self.t.status_error(&endpoint, f)
                },
            );
        }
        let mut server_error: Option<String> = None;
        let mut bad: Option<String> = None;
        let finished = self
            .t
            .stream_lines(&mut resp, &endpoint, deadline, bound, cancel, |line, _| {
                if line.trim().is_empty() {
                    return Ok(Flow::Continue);
                }
                let v: Value = match serde_json::from_str(line) {
                    Ok(v) => v,
                    Err(e) => {
                        bad = Some(format!("progress line is not JSON ({e}): {}", excerpt(line)));
                        return Ok(Flow::Done);
                    }
                };
                if let Some(msg) = json_error_message(&v) {
                    server_error = Some(msg);
                    return Ok(Flow::Done);
                }
                let p = PullProgress {
                    status: v.get("status").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    digest: v.get("digest").and_then(Value::as_str).map(str::to_owned),
                    total: v.get("total").and_then(Value::as_u64),
                    completed: v.get("completed").and_then(Value::as_u64),
                };
                progress(&p);
                Ok(if p.status == "success" { Flow::Done } else { Flow::Continue })
            })
            .await?;
        if let Some(detail) = bad {
            return Err(BackendError::BadResponse { endpoint, detail });
        }
        if let Some(msg) = server_error {
            if looks_like_missing_model(&msg) || msg.contains("file does not exist") {
                return Err(BackendError::UnknownModel {
                    model: model.to_owned(),
                    url: self.t.base().to_owned(),
                    available: Vec::new(),
                    hint: format!("the registry does not have it ({msg}); check the model name and tag"),
                });
            }
            return Err(BackendError::BadResponse { endpoint, detail: format!("the pull failed: {msg}") });
        }
        if !finished {
            return Err(BackendError::BadResponse {
                endpoint,
                detail: "the pull stream ended before reporting `success`".to_owned(),
            });
        }
        Ok(())
    }

    async fn chat(&self, req: &ChatRequest, cancel: &CancellationToken) -> Result<ChatResponse, BackendError> {
        let model = ollama_model_name(&req.model);
        let path = "/api/chat";
        let endpoint = self.t.endpoint(path);
        let mut options = Map::new();
        if let Some(n) = req.max_tokens {
            options.insert("num_predict".into(), json!(n));
        }
        if let Some(t) = req.temperature {
            options.insert("temperature".into(), json!(t));
        }
        if let Some(s) = req.seed {
            options.insert("seed".into(), json!(s));
        }
        if let Some(c) = req.context_window {
            options.insert("num_ctx".into(), json!(c));
        }
        let mut body = json!({ "model": model, "messages": req.messages, "stream": true });
        if !options.is_empty() {
            body["options"] = Value::Object(options);
        }
        let bound = self.t.opts().chat_timeout;
        let deadline = Deadline::now() + bound;
        let (mut resp, sent) = self.t.send(Method::POST, path, Some(&body), deadline, bound, cancel).await?;
        if !resp.status().is_success() {
            let f = self.t.read_failure(&mut resp, &endpoint, deadline, bound, cancel).await?;
            return Err(self.map_failure(&endpoint, model, f).await);
        }
        let mut st = ChatStream {
            clock: StreamClock::new(sent),
            text: String::new(),
            usage: Usage::default(),
            server: None,
            model: None,
            finish_reason: None,
        };
        let mut server_error: Option<String> = None;
        let mut bad: Option<String> = None;
        let finished = self
            .t
            .stream_lines(&mut resp, &endpoint, deadline, bound, cancel, |line, at| match st.line(line, at) {
                Ok(LineOutcome::Flow(f)) => Ok(f),
                Ok(LineOutcome::ServerError(m)) => {
                    server_error = Some(m);
                    Ok(Flow::Done)
                }
                Err(detail) => {
                    bad = Some(detail);
                    Ok(Flow::Done)
                }
            })
            .await?;
        let end = std::time::Instant::now();
        drop(resp);
        if let Some(detail) = bad {
            return Err(BackendError::BadResponse { endpoint, detail });
        }
        if let Some(msg) = server_error {
            if looks_like_missing_model(&msg) {
                return Err(self.unknown_model(model).await);
            }
            return Err(BackendError::BadResponse {
                endpoint,
                detail: format!("the server reported an error mid-stream: {msg}"),
            });
        }
        if !finished {
            return Err(BackendError::BadResponse {
                endpoint,
                detail: format!(
                    "the stream ended before the final `done` message, after {} token chunk(s): the server closed \
                     the connection mid-stream",
                    st.clock.finish(end).chunks
                ),
            });
        }
        Ok(ChatResponse {
            text: st.text,
            usage: st.usage,
            timing: st.clock.finish(end),
            server_timing: st.server,
            model: st.model.unwrap_or_else(|| model.to_owned()),
            finish_reason: st.finish_reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/api/show` yields the context length from whichever architecture key carries it.
    #[test]
    fn show_parsing() {
        let v = json!({
            "details": {"family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_K_M"},
            "model_info": {"general.architecture": "llama", "llama.context_length": 131072}
        });
        let i = parse_show("llama3.1:8b", &v);
        assert_eq!(i.context_length, Some(131_072));
        assert_eq!(i.family.as_deref(), Some("llama"));
        assert_eq!(i.quantization.as_deref(), Some("Q4_K_M"));
        assert_eq!(parse_show("m", &json!({})).context_length, None);
    }

    /// An untagged name matches its `:latest` entry and vice versa, nothing looser.
    #[test]
    fn running_matches_latest() {
        let r = vec!["llama3:latest".to_owned(), "qwen3:8b".to_owned()];
        assert!(is_running(&r, "llama3"));
        assert!(is_running(&r, "llama3:latest"));
        assert!(is_running(&r, "qwen3:8b"));
        assert!(!is_running(&r, "qwen3"));
        assert!(is_running(&["phi".to_owned()], "phi:latest"));
    }

    /// Listing rejects shapes without names rather than inventing empty lists.
    #[test]
    fn names_shape() {
        assert_eq!(model_names(&json!({"models": [{"name": "b"}, {"name": "a"}]})), Some(vec!["a".into(), "b".into()]));
        assert_eq!(model_names(&json!({"models": [{"size": 1}]})), None);
        assert_eq!(model_names(&json!({"data": []})), None);
    }

    /// Stream lines: tokens time the clock, the final object carries counts and durations,
    /// malformed lines are errors and error objects are surfaced.
    #[test]
    fn chat_stream_lines() {
        let t0 = std::time::Instant::now();
        let mut st = ChatStream {
            clock: StreamClock::new(t0),
            text: String::new(),
            usage: Usage::default(),
            server: None,
            model: None,
            finish_reason: None,
        };
        assert!(matches!(
            st.line(r#"{"model":"m","message":{"role":"assistant","content":"Hi"},"done":false}"#, t0),
            Ok(LineOutcome::Flow(Flow::Continue))
        ));
        let last = r#"{"model":"m","message":{"content":""},"done":true,"done_reason":"stop","prompt_eval_count":7,"eval_count":3,"total_duration":2000000,"eval_duration":1000000}"#;
        assert!(matches!(st.line(last, t0), Ok(LineOutcome::Flow(Flow::Done))));
        assert_eq!(st.text, "Hi");
        assert_eq!(st.usage, Usage { prompt_tokens: Some(7), completion_tokens: Some(3) });
        assert_eq!(st.server.unwrap().total_ms, Some(2.0));
        assert_eq!(st.finish_reason.as_deref(), Some("stop"));
        assert!(st.line("{not json", t0).unwrap_err().contains("not JSON"));
        assert!(st.line("[1]", t0).unwrap_err().contains("not a JSON object"));
        assert!(st.line(r#"{"done":"yes"}"#, t0).unwrap_err().contains("`done`"));
        assert!(matches!(st.line(r#"{"error":"boom"}"#, t0), Ok(LineOutcome::ServerError(m)) if m == "boom"));
    }
}
