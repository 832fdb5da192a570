//! The router and the state shared by all handlers: the validated config turned into
//! lookup tables (models, compiled answers, pre-rendered model lists), the request
//! counter that drives the fault draw, and the shutdown token that ends open streams.
//! Also the error bodies of both APIs and the `X-Rune-Simulated` marker on every response.
//! Handlers live in [`crate::openai`] and [`crate::ollama`]; timing in [`crate::generate`].

use crate::clock::{self, KeepAlive};
use crate::config::{FailStatus, ScriptedAnswer, SimConfig, CONTEXT_LENGTH, MAX_OUTPUT_TOKENS};
use crate::tokens::{Script, TokenTable};
use crate::wire::Api;
use crate::{ollama, openai};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use serde_json::json;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The header that marks every response as simulated.
pub const SIMULATED_HEADER: &str = "x-rune-simulated";

/// The header on every generation response giving its request index (the input of the
/// deterministic fault draw, counted from 0 per server).
pub const REQUEST_HEADER: &str = "x-rune-sim-request";

/// The header on every generation response naming the faults injected into it: `none`,
/// `fail`, or `stall`, `malformed`, `drop` comma-separated in the order they strike. It
/// is ground truth for tests and load-generator calibration.
pub const FAULTS_HEADER: &str = "x-rune-sim-faults";

/// Largest request body accepted (16 MiB): room for long-context prompts; larger bodies
/// get a 413 before any work is done.
const MAX_BODY_BYTES: usize = 16 << 20;

/// `Retry-After` seconds on injected 429/503 failures.
const RETRY_AFTER_SECS: &str = "1";

/// Size reported for every simulated model (bytes of weights that do not exist).
pub(crate) const MODEL_SIZE: u64 = 4_920_753_328;

/// One served model and its Ollama "loaded" state.
pub(crate) struct ModelEntry {
    pub(crate) name: String,
    /// `name` as a JSON string, quotes included, rendered once for the hot path.
    pub(crate) json: String,
    /// A stable fake `sha256` digest, so Ollama clients that compare digests work.
    pub(crate) digest: String,
    /// Unix ms until which `/api/ps` lists the model; 0 = not loaded, `i64::MAX` = forever.
    /// Written by every generation request with a plain store (no lock on the hot path);
    /// concurrent requests race benignly: the latest keep-alive wins, as in Ollama.
    expires_at_ms: AtomicI64,
}

impl ModelEntry {
    /// Marks the model loaded (or unloads it for a zero keep-alive).
    pub(crate) fn touch(&self, keep: KeepAlive) {
        let until = match keep {
            KeepAlive::Forever => i64::MAX,
            KeepAlive::For(d) if d.is_zero() => 0,
            KeepAlive::For(d) => {
                clock::now_ms().saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).max(1)
            }
        };
        self.expires_at_ms.store(until, Ordering::Relaxed);
    }

    /// `Some(expiry in unix ms)` while loaded.
    pub(crate) fn loaded_until(&self, now_ms: i64) -> Option<i64> {
        let until = self.expires_at_ms.load(Ordering::Relaxed);
        (until > now_ms).then_some(until)
    }
}

/// Everything handlers share; built once by [`router`], read-only except the atomics.
pub(crate) struct Shared {
    pub(crate) ttft: Duration,
    pub(crate) itl: Duration,
    pub(crate) output_tokens: u32,
    pub(crate) tokens_per_chunk: u32,
    pub(crate) faults: crate::config::Faults,
    answers: Vec<(ScriptedAnswer, TokenTable)>,
    default_answer: TokenTable,
    filler: TokenTable,
    pub(crate) models: Vec<ModelEntry>,
    /// Generation requests seen so far: the index of the deterministic fault draw and the
    /// number in OpenAI ids. Only ever incremented.
    requests: AtomicU64,
    /// Owned by [`crate::serve`], which cancels it when its shutdown future resolves; open
    /// streams watch it and end, so graceful shutdown does not wait for a stalled stream.
    /// Never cancelled when the router is served by someone else.
    pub(crate) shutdown: CancellationToken,
    /// Unix ms of startup: `modified_at` of every model.
    pub(crate) started_ms: i64,
    openai_models: Bytes,
    ollama_tags: Bytes,
}

/// Which answer a prompt selected.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AnswerId {
    Scripted(usize),
    Default,
}

impl Shared {
    fn new(config: SimConfig, shutdown: CancellationToken) -> Shared {
        let started_ms = clock::now_ms();
        let models: Vec<ModelEntry> = config
            .models
            .iter()
            .map(|name| ModelEntry {
                name: name.clone(),
                json: serde_json::Value::from(name.as_str()).to_string(),
                digest: fake_digest(name),
                expires_at_ms: AtomicI64::new(0),
            })
            .collect();
        let openai_models = json!({
            "object": "list",
            "data": models.iter().map(|m| json!({
                "id": m.name, "object": "model", "created": started_ms / 1000, "owned_by": "rune-sim (simulated)",
            })).collect::<Vec<_>>(),
        });
        let modified_at = clock::rfc3339_ms(started_ms);
        let ollama_tags = json!({
            "models": models.iter().map(|m| {
                let mut entry = model_summary(m);
                entry["modified_at"] = json!(modified_at);
                entry
            }).collect::<Vec<_>>(),
        });
        if config.output_tokens > MAX_OUTPUT_TOKENS {
            tracing::warn!(
                output_tokens = config.output_tokens,
                max = MAX_OUTPUT_TOKENS,
                "rune-sim: output_tokens clamped to the maximum"
            );
        }
        Shared {
            ttft: config.ttft,
            itl: config.itl,
            output_tokens: config.output_tokens.min(MAX_OUTPUT_TOKENS),
            tokens_per_chunk: config.tokens_per_chunk.get(),
            faults: config.faults,
            answers: config
                .answers
                .into_iter()
                .map(|a| {
                    let table = TokenTable::new(a.answer());
                    (a, table)
                })
                .collect(),
            default_answer: TokenTable::new(&config.default_answer),
            filler: TokenTable::filler(),
            models,
            requests: AtomicU64::new(0),
            shutdown,
            started_ms,
            openai_models: Bytes::from(openai_models.to_string()),
            ollama_tags: Bytes::from(ollama_tags.to_string()),
        }
    }

    /// The served model called `name` (Ollama's implicit `:latest` tag accepted).
    pub(crate) fn find_model(&self, name: &str) -> Option<&ModelEntry> {
        let bare = name.strip_suffix(":latest").unwrap_or(name);
        self.models.iter().find(|m| m.name == name || m.name == bare)
    }

    /// The first scripted answer `matches` accepts, else the default answer.
    pub(crate) fn select_answer(&self, mut matches: impl FnMut(&ScriptedAnswer) -> bool) -> AnswerId {
        self.answers.iter().position(|(a, _)| matches(a)).map_or(AnswerId::Default, AnswerId::Scripted)
    }

    pub(crate) fn script(&self, id: AnswerId) -> Script<'_> {
        let answer = match id {
            AnswerId::Scripted(i) => self.answers.get(i).map_or(&self.default_answer, |(_, t)| t),
            AnswerId::Default => &self.default_answer,
        };
        Script { answer, filler: &self.filler }
    }

    /// The next generation request's index (fault draw and ids).
    pub(crate) fn next_request(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed)
    }

    /// Completion tokens for a request limit, and whether the limit cut the answer.
    pub(crate) fn completion_tokens(&self, limit: Option<u64>) -> (usize, bool) {
        let configured = u64::from(self.output_tokens);
        match limit {
            Some(l) if l < configured => (l as usize, true),
            _ => (configured as usize, false),
        }
    }
}

/// Name, digest, size and details of a model as Ollama lists it (plus `simulated: true`).
pub(crate) fn model_summary(m: &ModelEntry) -> serde_json::Value {
    json!({
        "name": m.name,
        "model": m.name,
        "size": MODEL_SIZE,
        "digest": m.digest,
        "details": model_details(),
        "simulated": true,
    })
}

/// Ollama's `details` object; the values describe a typical 8B model.
pub(crate) fn model_details() -> serde_json::Value {
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "8.0B",
        "quantization_level": "Q4_0",
    })
}

/// `/api/show`'s `model_info`.
pub(crate) fn model_info(m: &ModelEntry) -> serde_json::Value {
    json!({
        "general.architecture": "llama",
        "general.name": format!("{} (simulated by rune-sim)", m.name),
        "general.parameter_count": 8_030_261_248u64,
        "general.quantization_version": 2,
        "llama.context_length": CONTEXT_LENGTH,
        "llama.embedding_length": 4096,
        "llama.block_count": 32,
        "llama.attention.head_count": 32,
    })
}

/// 64 hex digits derived from the name (FNV-1a then SplitMix-style mixing): stable across
/// runs, different per model.
fn fake_digest(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..4u64)
        .map(|i| {
            let mut z = h.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            format!("{:016x}", z ^ (z >> 31))
        })
        .collect()
}

/// The router serving both APIs for `config`. Streams run to completion on their own;
/// prefer [`crate::serve`], which also ends open streams on shutdown and disables Nagle's
/// algorithm so small chunks are not delayed.
pub fn router(config: SimConfig) -> Router {
    build_router(config, CancellationToken::new())
}

pub(crate) fn build_router(config: SimConfig, shutdown: CancellationToken) -> Router {
    // Owned by the router (one clone per handler call, plus one per open stream); dropped
    // with the last stream after the router is dropped. Read-only but for its atomics, so
    // no lock.
    let shared = Arc::new(Shared::new(config, shutdown));
    Router::new()
        .route("/", get(root))
        .route("/api/version", get(version))
        .route("/v1/models", get(openai_models))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route("/api/tags", get(ollama_tags))
        .route("/api/ps", get(ollama::ps))
        .route("/api/show", post(ollama::show))
        .route("/api/chat", post(ollama::chat))
        .route("/api/generate", post(ollama::generate))
        .route("/api/pull", post(ollama::pull))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(mark_simulated))
        .with_state(shared)
}

async fn mark_simulated(mut response: Response) -> Response {
    response.headers_mut().insert(HeaderName::from_static(SIMULATED_HEADER), HeaderValue::from_static("true"));
    response
}

async fn root() -> &'static str {
    "rune-sim is running (a SIMULATED Ollama/OpenAI-compatible LLM server: no model, scripted answers)\n"
}

async fn version() -> Response {
    json_response(StatusCode::OK, Bytes::from_static(br#"{"version":"0.0.0-rune-sim"}"#))
}

async fn openai_models(axum::extract::State(shared): axum::extract::State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, shared.openai_models.clone())
}

async fn ollama_tags(axum::extract::State(shared): axum::extract::State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, shared.ollama_tags.clone())
}

async fn not_found(uri: axum::http::Uri) -> Response {
    let body = json!({ "error": format!("{} is not served by rune-sim (simulated OpenAI /v1/* and Ollama /api/*)", uri.path()) });
    json_response(StatusCode::NOT_FOUND, Bytes::from(body.to_string()))
}

/// A JSON body with its content type.
pub(crate) fn json_response(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body.into()).into_response()
}

/// An error in OpenAI's shape: `{"error":{"message","type","param","code"}}`.
pub(crate) fn openai_error(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = json!({ "error": { "message": message, "type": kind, "param": param, "code": code } });
    json_response(status, body.to_string())
}

/// An error in Ollama's shape: `{"error": "..."}`.
pub(crate) fn ollama_error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({ "error": message }).to_string())
}

/// The 404 for a model that is not served, in the style of the API called.
pub(crate) fn model_not_found(api: Api, model: &str) -> Response {
    if api.is_ollama() {
        ollama_error(StatusCode::NOT_FOUND, &format!("model '{model}' not found"))
    } else {
        openai_error(
            StatusCode::NOT_FOUND,
            &format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            Some("model"),
            Some("model_not_found"),
        )
    }
}

/// A 400 for a body that is not the expected JSON.
pub(crate) fn bad_request(api: Api, message: &str) -> Response {
    if api.is_ollama() {
        ollama_error(StatusCode::BAD_REQUEST, message)
    } else {
        openai_error(StatusCode::BAD_REQUEST, message, "invalid_request_error", None, None)
    }
}

/// An injected failure, with `Retry-After` where the status calls for it.
pub(crate) fn injected_failure(api: Api, status: FailStatus) -> Response {
    let message = "simulated failure injected by rune-sim (--fail-rate)";
    let mut response = if api.is_ollama() {
        ollama_error(status.status(), message)
    } else {
        let (kind, code) = match status {
            FailStatus::TooManyRequests => ("requests", "rate_limit_exceeded"),
            FailStatus::ServiceUnavailable => ("server_error", "service_unavailable"),
            FailStatus::InternalServerError => ("server_error", "simulated_failure"),
        };
        openai_error(status.status(), message, kind, None, Some(code))
    };
    if status.retry_after() {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    response
}

/// The answer to a request cut short by server shutdown.
pub(crate) fn shutting_down(api: Api) -> Response {
    let message = "rune-sim is shutting down";
    if api.is_ollama() {
        ollama_error(StatusCode::SERVICE_UNAVAILABLE, message)
    } else {
        openai_error(StatusCode::SERVICE_UNAVAILABLE, message, "server_error", None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_stable_hex_and_distinct() {
        let a = fake_digest("sim-llama");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, fake_digest("sim-llama"));
        assert_ne!(a, fake_digest("sim-qwen"));
    }

    #[test]
    fn limits_only_lower_the_token_count() {
        let s = Shared::new(SimConfig { output_tokens: 10, ..SimConfig::default() }, CancellationToken::new());
        assert_eq!(s.completion_tokens(None), (10, false));
        assert_eq!(s.completion_tokens(Some(20)), (10, false));
        assert_eq!(s.completion_tokens(Some(3)), (3, true));
        assert!(s.find_model("sim-llama:latest").is_some());
        assert!(s.find_model("sim-llama:8b").is_none());
    }
}
