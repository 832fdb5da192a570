//! Shared test fixtures: a recording HTTP server on 127.0.0.1:0, a fake model server that
//! speaks Ollama NDJSON and OpenAI SSE with controllable delays and faults, event
//! collectors, executable scripts in temp dirs and process-liveness checks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rune_engine::agent::{AgentConfig, AgentContext, AgentEvent};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// One request the fake saw.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

pub type Log = Arc<Mutex<Vec<Recorded>>>;

/// A server on loopback, stopped when dropped.
pub struct TestServer {
    pub url: String,
    pub log: Log,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Serves `router` on a fresh port, recording every request.
    pub async fn start(router: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, router)
    }

    /// Serves `router` on `listener`, recording every request.
    pub fn start_on(listener: tokio::net::TcpListener, router: Router) -> Self {
        let addr: SocketAddr = listener.local_addr().unwrap();
        let log: Log = Arc::default();
        let router = router.layer(axum::middleware::from_fn_with_state(log.clone(), record));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await.unwrap();
        });
        TestServer { url: format!("http://{addr}"), log, shutdown, task: Some(task) }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn record(State(log): State<Log>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20).await.unwrap();
    let headers =
        parts.headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
    log.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    });
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// A body that sends each chunk after its delay, then optionally breaks the connection.
pub fn delayed_body(chunks: Vec<(Duration, String)>, break_at_end: bool) -> Body {
    let stream = futures_util::stream::unfold((chunks.into_iter(), break_at_end), |(mut it, brk)| async move {
        match it.next() {
            Some((delay, text)) => {
                tokio::time::sleep(delay).await;
                Some((Ok::<_, std::io::Error>(text), (it, brk)))
            }
            None if brk => Some((Err(std::io::Error::other("fake server drops the connection")), (it, false))),
            None => None,
        }
    });
    Body::from_stream(stream)
}

/// How the fake model server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Sends the tokens, then drops the connection before the final message.
    CloseMidStream,
    /// Sends the tokens and ends the body cleanly without the final message.
    NoFinalMessage,
    /// Sends a line that is not JSON after the first token.
    Malformed,
    /// Answers every chat with this status.
    Status(u16),
    /// Waits this long before sending response headers.
    SlowHeaders(u64),
    /// Reports an error object after the first token.
    ErrorMidStream,
    /// Ignores `stream: true` and answers one JSON completion (OpenAI only).
    NonStreaming,
}

/// A fake model server serving both Ollama (`/api/*`) and OpenAI (`/v1/*`) formats.
#[derive(Debug, Clone)]
pub struct FakeLlm {
    pub models: Vec<String>,
    pub running: Arc<Mutex<Vec<String>>>,
    pub tokens: Vec<String>,
    pub ttft: Duration,
    pub itl: Duration,
    pub prompt_tokens: u64,
    pub fault: Fault,
    pub context_length: Option<u64>,
    pub api_key: Option<String>,
    /// Whether `/api/generate` makes a model show up in `/api/ps`.
    pub loads: bool,
}

impl Default for FakeLlm {
    fn default() -> Self {
        FakeLlm {
            models: vec!["llama3.1:8b".into(), "qwen3:8b".into()],
            running: Arc::default(),
            tokens: vec!["The ".into(), "pod ".into(), "is ".into(), "OOMKilled.".into()],
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            prompt_tokens: 42,
            fault: Fault::None,
            context_length: Some(8192),
            api_key: None,
            loads: true,
        }
    }
}

impl FakeLlm {
    pub async fn start(self) -> TestServer {
        TestServer::start(self.router()).await
    }

    pub fn router(self) -> Router {
        let s = Arc::new(self);
        Router::new()
            .route("/api/tags", get(ollama_tags))
            .route("/api/ps", get(ollama_ps))
            .route("/api/show", post(ollama_show))
            .route("/api/generate", post(ollama_generate))
            .route("/api/pull", post(ollama_pull))
            .route("/api/chat", post(ollama_chat))
            .route("/v1/models", get(openai_models))
            .route("/v1/chat/completions", post(openai_chat))
            .with_state(s)
    }

    fn knows(&self, model: &str) -> bool {
        self.models.iter().any(|m| m == model)
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        match &self.api_key {
            None => true,
            Some(k) => headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {k}")),
        }
    }

    /// Token chunks with their delays (TTFT before the first, ITL between the others).
    fn timed<T>(&self, mut render: impl FnMut(&str) -> T) -> Vec<(Duration, T)> {
        self.tokens.iter().enumerate().map(|(i, t)| (if i == 0 { self.ttft } else { self.itl }, render(t))).collect()
    }
}

type S = State<Arc<FakeLlm>>;

fn ollama_models_json(names: &[String]) -> Value {
    json!({ "models": names.iter().map(|n| json!({"name": n, "model": n, "size": 1})).collect::<Vec<_>>() })
}

async fn ollama_tags(State(f): S) -> Json<Value> {
    Json(ollama_models_json(&f.models))
}

async fn ollama_ps(State(f): S) -> Json<Value> {
    Json(ollama_models_json(&f.running.lock().unwrap()))
}

async fn ollama_show(State(f): S, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or_default();
    if !f.knows(model) {
        return (StatusCode::NOT_FOUND, Json(json!({"error": format!("model '{model}' not found")}))).into_response();
    }
    let mut info = json!({"general.architecture": "llama"});
    if let Some(c) = f.context_length {
        info["llama.context_length"] = json!(c);
    }
    Json(json!({
        "details": {"family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_K_M"},
        "model_info": info,
    }))
    .into_response()
}

async fn ollama_generate(State(f): S, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let mut running = f.running.lock().unwrap();
    if body["keep_alive"] == json!(0) {
        running.retain(|m| m != &model);
        return Json(json!({"model": model, "done": true, "done_reason": "unload"})).into_response();
    }
    if !f.knows(&model) {
        return (StatusCode::NOT_FOUND, Json(json!({"error": format!("model '{model}' not found")}))).into_response();
    }
    if f.loads && !running.contains(&model) {
        running.push(model.clone());
    }
    Json(json!({"model": model, "response": "", "done": true})).into_response()
}

async fn ollama_pull(State(_f): S, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or_default();
    let lines: Vec<(Duration, String)> = if model == "missing:tag" {
        vec![
            (Duration::ZERO, "{\"status\":\"pulling manifest\"}\n".into()),
            (Duration::ZERO, "{\"error\":\"pull model manifest: file does not exist\"}\n".into()),
        ]
    } else {
        vec![
            (Duration::ZERO, "{\"status\":\"pulling manifest\"}\n".into()),
            (
                Duration::from_millis(5),
                "{\"status\":\"pulling abc\",\"digest\":\"sha256:abc\",\"total\":100,\"completed\":50}\n".into(),
            ),
            (
                Duration::from_millis(5),
                "{\"status\":\"pulling abc\",\"digest\":\"sha256:abc\",\"total\":100,\"completed\":100}\n".into(),
            ),
            (Duration::from_millis(5), "{\"status\":\"success\"}\n".into()),
        ]
    };
    Response::builder().header("content-type", "application/x-ndjson").body(delayed_body(lines, false)).unwrap()
}

async fn ollama_chat(State(f): S, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if let Fault::Status(code) = f.fault {
        let status = StatusCode::from_u16(code).unwrap();
        return (status, Json(json!({"error": "fake server failure"}))).into_response();
    }
    if let Fault::SlowHeaders(ms) = f.fault {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if !f.knows(&model) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("model \"{model}\" not found, try pulling it first")})),
        )
            .into_response();
    }
    let mut lines = f.timed(|t| {
        format!("{}\n", json!({"model": model, "message": {"role": "assistant", "content": t}, "done": false}))
    });
    match f.fault {
        Fault::Malformed => lines.insert(1, (Duration::ZERO, "this is not json\n".into())),
        Fault::ErrorMidStream => lines.insert(1, (Duration::ZERO, "{\"error\":\"GPU fell off the bus\"}\n".into())),
        _ => {}
    }
    let complete = !matches!(f.fault, Fault::CloseMidStream | Fault::NoFinalMessage);
    if complete {
        lines.push((
            f.itl,
            format!(
                "{}\n",
                json!({"model": model, "message": {"role": "assistant", "content": ""}, "done": true,
                    "done_reason": "stop", "total_duration": 5_000_000_u64, "load_duration": 1_000_000_u64,
                    "prompt_eval_count": f.prompt_tokens, "prompt_eval_duration": 2_000_000_u64,
                    "eval_count": f.tokens.len(), "eval_duration": 3_000_000_u64})
            ),
        ));
    }
    let body = delayed_body(lines, f.fault == Fault::CloseMidStream);
    Response::builder().header("content-type", "application/x-ndjson").body(body).unwrap()
}

async fn openai_models(State(f): S, headers: HeaderMap) -> Response {
    if !f.authorized(&headers) {
        return unauthorized();
    }
    let data: Vec<Value> =
        f.models.iter().map(|m| json!({"id": m, "object": "model", "max_model_len": f.context_length})).collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "Incorrect API key provided", "type": "auth"}})))
        .into_response()
}

async fn openai_chat(State(f): S, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !f.authorized(&headers) {
        return unauthorized();
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if let Fault::Status(code) = f.fault {
        return (StatusCode::from_u16(code).unwrap(), Json(json!({"error": {"message": "fake server failure"}})))
            .into_response();
    }
    if let Fault::SlowHeaders(ms) = f.fault {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if !f.knows(&model) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"object": "error", "message": format!("The model `{model}` does not exist."), "code": 404})),
        )
            .into_response();
    }
    if f.fault == Fault::NonStreaming {
        return Json(json!({
            "id": "c1", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f.tokens.concat()}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": f.prompt_tokens, "completion_tokens": f.tokens.len()}
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut events = vec![(Duration::ZERO, chunk(json!({"role": "assistant", "content": ""}), Value::Null))];
    events.extend(f.timed(|t| chunk(json!({"content": t}), Value::Null)));
    match f.fault {
        Fault::Malformed => events.insert(2, (Duration::ZERO, "data: {broken json\n\n".into())),
        Fault::ErrorMidStream => {
            events.insert(2, (Duration::ZERO, "data: {\"error\":{\"message\":\"GPU fell off the bus\"}}\n\n".into()))
        }
        _ => {}
    }
    let complete = !matches!(f.fault, Fault::CloseMidStream | Fault::NoFinalMessage);
    if complete {
        events.push((f.itl, chunk(json!({}), json!("stop"))));
        events.push((
            Duration::ZERO,
            format!(
                "data: {}\n\n",
                json!({"id": "c1", "object": "chat.completion.chunk", "model": model, "choices": [],
                    "usage": {"prompt_tokens": f.prompt_tokens, "completion_tokens": f.tokens.len(),
                              "total_tokens": f.prompt_tokens + f.tokens.len() as u64}})
            ),
        ));
        events.push((Duration::ZERO, "data: [DONE]\n\n".into()));
    }
    let body = delayed_body(events, f.fault == Fault::CloseMidStream);
    Response::builder().header("content-type", "text/event-stream").body(body).unwrap()
}

/// Collects agent events for assertions.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<AgentEvent>>>);

impl Events {
    pub fn ctx(&self, timeout: Duration) -> (AgentContext, CancellationToken) {
        let cancel = CancellationToken::new();
        let sink = self.0.clone();
        let ctx = AgentContext::new(cancel.clone(), timeout).with_events(move |e| sink.lock().unwrap().push(e));
        (ctx, cancel)
    }

    pub fn all(&self) -> Vec<AgentEvent> {
        self.0.lock().unwrap().clone()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter_map(|e| match e {
                AgentEvent::Stderr { line } => Some(line),
                _ => None,
            })
            .collect()
    }

    pub fn warnings(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter_map(|e| match e {
                AgentEvent::Warning { message } => Some(message),
                _ => None,
            })
            .collect()
    }
}

/// Writes an executable script named `name` into `dir`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// An agent config whose PATH is `first` followed by this process's PATH.
pub fn config_with_path_first(first: &Path) -> AgentConfig {
    let mut dirs = vec![first.to_path_buf()];
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    AgentConfig { path: Some(std::env::join_paths(dirs).unwrap()), ..AgentConfig::default() }
}

/// Whether `pid` no longer runs: gone from /proc, or a zombie waiting for its reaper.
pub fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()) == Some('Z'),
    }
}

/// Waits (bounded) until `pid` is dead; returns whether it died.
pub async fn wait_dead(pid: u32, within: Duration) -> bool {
    let end = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < end {
        if is_dead(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    is_dead(pid)
}

/// Waits (bounded) for a file to hold a pid.
pub async fn read_pid(path: &Path, within: Duration) -> u32 {
    let end = tokio::time::Instant::now() + within;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Some(pid) = s.lines().next().and_then(|l| l.trim().parse().ok()) {
                return pid;
            }
        }
        assert!(tokio::time::Instant::now() < end, "no pid in {} after {within:?}", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
