//! LLM inference backends: what RUNE asks of a model server, and two implementations.
//!
//! [`Backend`] is the one trait the rest of the engine uses to list, inspect, load, pull
//! and chat with models. [`OllamaBackend`] speaks Ollama's native API; [`OpenAiBackend`]
//! speaks the OpenAI-compatible API served by vLLM, llama.cpp, TGI, LM Studio and Ollama's
//! `/v1`. Every chat streams, and every call is timed on the client with monotonic clocks
//! ([`CallTiming`]). Construction goes through [`backend_for`], which validates the URL.
//!
//! This module must not know about agents, jobs or storage; it only talks HTTP to a model
//! server and reports what happened.

mod error;
mod lines;
mod ollama;
mod openai;
pub(crate) mod transport;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use error::{BackendError, TimeoutPhase};
pub use ollama::OllamaBackend;
pub use openai::OpenAiBackend;

pub use crate::timing::CallTiming;

/// Decodes a raw streamed chat response of `kind` (bytes split into network chunks)
/// exactly as a live call would, and returns the answer text. Exposed for the fuzz
/// targets under `fuzz/` and for property tests: it must never panic on any input.
#[doc(hidden)]
pub fn decode_stream_for_fuzzing(kind: BackendKind, chunks: &[&[u8]]) -> String {
    const MAX_LINE: usize = 1 << 20;
    match kind {
        BackendKind::Ollama => ollama::decode_stream(chunks, MAX_LINE),
        BackendKind::OpenAi => openai::decode_stream(chunks, MAX_LINE),
    }
}

/// The API protocol a model server speaks; selects the [`Backend`] implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Ollama's native API (`/api/*`).
    Ollama,
    /// The OpenAI-compatible API (`/v1/*`).
    #[serde(rename = "openai")]
    OpenAi,
}

impl BackendKind {
    /// The spelling used in job requests, flags and the driver protocol.
    pub const fn as_str(self) -> &'static str {
        match self {
            BackendKind::Ollama => "ollama",
            BackendKind::OpenAi => "openai",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend type RUNE does not speak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend type `{0}`; expected `ollama` or `openai`")]
pub struct UnknownBackendKind(pub String);

impl FromStr for BackendKind {
    type Err = UnknownBackendKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ollama" => Ok(BackendKind::Ollama),
            "openai" | "openai-compatible" | "vllm" => Ok(BackendKind::OpenAi),
            _ => Err(UnknownBackendKind(s.to_owned())),
        }
    }
}

/// Connection, timeout, retry and credential settings shared by both backends.
///
/// Fields are public so callers can fill them from flags and env with
/// `BackendOptions { chat_timeout, ..Default::default() }`.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    /// Bound on establishing a TCP (and TLS) connection; a slow connect is a connect error.
    pub connect_timeout: Duration,
    /// Overall bound on one non-streaming call (listing, show, warm-up requests).
    pub request_timeout: Duration,
    /// Overall bound on one streamed chat, from sending to the last byte.
    pub chat_timeout: Duration,
    /// Overall bound on one model pull (downloads can take long).
    pub pull_timeout: Duration,
    /// How many times to try connecting before giving up (≥ 1). Only connect errors are
    /// retried: once a server has answered anything, the call is never repeated.
    pub connect_attempts: u32,
    /// Pause before the first connect retry; doubles per retry up to [`MAX_RETRY_BACKOFF`].
    pub retry_backoff: Duration,
    /// Name of the environment variable that holds the API key; named in auth errors.
    pub api_key_env: String,
    /// The API key, sent as `Authorization: Bearer`. When `None`, [`backend_for`] reads
    /// `api_key_env` from the process environment (OpenAI-compatible backends only).
    pub api_key: Option<String>,
    /// Upper bound on one NDJSON/SSE line; a longer line is a bad response, not an OOM.
    pub max_line_bytes: usize,
}

/// Cap on the connect back-off so a retry loop never sleeps for long.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(2);

/// Default bound on one stream line (1 MiB): far above any real token chunk.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            chat_timeout: Duration::from_secs(600),
            pull_timeout: Duration::from_secs(3600),
            connect_attempts: 3,
            retry_backoff: Duration::from_millis(250),
            api_key_env: "OPENAI_API_KEY".to_owned(),
            api_key: None,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// The models a server offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    /// Every model the server can serve, sorted by name.
    pub models: Vec<String>,
    /// Models loaded in memory right now, sorted. OpenAI-compatible servers only list
    /// models they serve, so for them this equals `models`.
    pub running_models: Vec<String>,
}

/// What RUNE needs to know about one model to size prompts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The model name as the server knows it.
    pub name: String,
    /// Maximum context window in tokens, when the server reports it.
    pub context_length: Option<u64>,
    /// Model family (e.g. `llama`), when reported.
    pub family: Option<String>,
    /// Parameter count as the server spells it (e.g. `8.0B`), when reported.
    pub parameter_size: Option<String>,
    /// Quantisation level (e.g. `Q4_K_M`), when reported.
    pub quantization: Option<String>,
}

impl ModelInfo {
    /// Output-token budget to reserve for an answer: `ctx/5` clamped to [1024, 64000], or
    /// `None` when the context length is unknown.
    pub fn output_reserve(&self) -> Option<u64> {
        self.context_length.map(|c| (c / 5).clamp(1024, 64_000))
    }
}

/// How to load a model before measuring it.
#[derive(Debug, Clone)]
pub struct WarmUpOptions {
    /// Bound on the whole warm-up (unloading, loading and polling).
    pub timeout: Duration,
    /// Unload every other running model first (Ollama), so measurements are not skewed
    /// by memory pressure.
    pub unload_others: bool,
    /// How long the server should keep the model loaded afterwards (Ollama `keep_alive`).
    pub keep_alive: String,
    /// Pause between checks that the model is listed as running.
    pub poll_interval: Duration,
}

impl Default for WarmUpOptions {
    fn default() -> Self {
        WarmUpOptions {
            timeout: Duration::from_secs(300),
            unload_others: false,
            keep_alive: "30m".to_owned(),
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// What a warm-up did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmUpReport {
    /// Wall time of the warm-up, in milliseconds (monotonic).
    pub elapsed_ms: f64,
    /// Models that were unloaded first.
    pub unloaded: Vec<String>,
}

/// One progress report of a model pull, as the server sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullProgress {
    /// Phase description (e.g. `pulling manifest`, `success`).
    pub status: String,
    /// Layer being downloaded, when the phase is a download.
    pub digest: Option<String>,
    /// Layer size in bytes, when known.
    pub total: Option<u64>,
    /// Bytes of the layer downloaded so far, when known.
    pub completed: Option<u64>,
}

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    /// Instructions that frame the conversation.
    System,
    /// The question.
    User,
    /// A previous model answer.
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Author.
    pub role: ChatRole,
    /// Text.
    pub content: String,
}

impl ChatMessage {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage { role: ChatRole::System, content: content.into() }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage { role: ChatRole::User, content: content.into() }
    }
}

/// One chat call. Always streamed, so TTFT and inter-token latency can be measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Model to use (Ollama's `ollama/` and `ollama_chat/` prefixes are stripped).
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Cap on generated tokens (`num_predict` / `max_tokens`).
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Sampling seed, for repeatable runs where the server honours it.
    pub seed: Option<u64>,
    /// Context window to allocate (Ollama `num_ctx`; ignored by OpenAI-compatible
    /// servers, whose window is fixed at start). Without it Ollama silently truncates long
    /// prompts to its small default window.
    pub context_window: Option<u64>,
}

/// Token counts reported by the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt, when reported.
    pub prompt_tokens: Option<u64>,
    /// Tokens generated, when reported.
    pub completion_tokens: Option<u64>,
}

/// Ollama's own measurement of a call (from the final stream object), in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerTiming {
    /// `total_duration`.
    pub total_ms: Option<f64>,
    /// `load_duration`: time spent loading the model.
    pub load_ms: Option<f64>,
    /// `prompt_eval_duration`: prompt processing.
    pub prompt_eval_ms: Option<f64>,
    /// `eval_duration`: generation.
    pub eval_ms: Option<f64>,
}

/// The result of one chat call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The generated answer (reasoning/thinking text excluded).
    pub text: String,
    /// Token counts from the server.
    pub usage: Usage,
    /// Client-side timing.
    pub timing: CallTiming,
    /// The server's own timing, when it reports one (Ollama).
    pub server_timing: Option<ServerTiming>,
    /// The model that answered, as the server named it.
    pub model: String,
    /// Why generation stopped (`stop`, `length`, …), when reported.
    pub finish_reason: Option<String>,
}

/// What RUNE asks of a model server. Object-safe so the engine can hold `Arc<dyn Backend>`.
///
/// Every method takes a [`CancellationToken`] where the call can be long; cancelling it
/// drops the in-flight request promptly and yields [`BackendError::Cancelled`].
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// Which protocol this backend speaks.
    fn kind(&self) -> BackendKind;

    /// The validated base URL (no trailing slash, no `/v1`).
    fn base_url(&self) -> &str;

    /// Lists served and running models.
    async fn list_models(&self) -> Result<ModelList, BackendError>;

    /// Describes one model; [`BackendError::UnknownModel`] when it is not served.
    async fn model_info(&self, model: &str) -> Result<ModelInfo, BackendError>;

    /// Loads `model` so the next call does not pay the load time, within `opts.timeout`.
    async fn warm_up(
        &self,
        model: &str,
        opts: &WarmUpOptions,
        cancel: &CancellationToken,
    ) -> Result<WarmUpReport, BackendError>;

    /// Downloads `model` onto the server, reporting each progress message.
    async fn pull(
        &self,
        model: &str,
        progress: &(dyn for<'p> Fn(&'p PullProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<(), BackendError>;

    /// Runs one streamed chat and measures it.
    async fn chat(&self, req: &ChatRequest, cancel: &CancellationToken) -> Result<ChatResponse, BackendError>;
}

/// Builds the backend for `kind` at `base_url`, validating the URL first.
///
/// The URL must be `http://` or `https://` with a host and without query or fragment; a
/// trailing `/` and (for OpenAI-compatible servers) a trailing `/v1` are removed. For
/// OpenAI-compatible servers without an explicit `options.api_key`, the key is read from
/// the environment variable named by `options.api_key_env`. No request is made here.
pub fn backend_for(
    kind: BackendKind,
    base_url: &str,
    mut options: BackendOptions,
) -> Result<Arc<dyn Backend>, BackendError> {
    let base = normalize_base_url(kind, base_url)?;
    if options.api_key.is_none() && kind == BackendKind::OpenAi {
        options.api_key = std::env::var(&options.api_key_env).ok().filter(|k| !k.trim().is_empty());
    }
    Ok(match kind {
        BackendKind::Ollama => Arc::new(OllamaBackend::new(&base, options)?),
        BackendKind::OpenAi => Arc::new(OpenAiBackend::new(&base, options)?),
    })
}

/// Validates and normalises a backend base URL (see [`backend_for`]).
pub fn normalize_base_url(kind: BackendKind, raw: &str) -> Result<String, BackendError> {
    let invalid = |reason: &str| BackendError::InvalidUrl { url: raw.to_owned(), reason: reason.to_owned() };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty; pass e.g. http://localhost:11434"));
    }
    if !trimmed.contains("://") {
        return Err(invalid("it has no scheme; write it as http://host:port"));
    }
    let url = reqwest::Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(&format!("scheme `{}` is not supported; use http:// or https://", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not contain a query string or fragment"));
    }
    let mut s = url.as_str().trim_end_matches('/').to_owned();
    if kind == BackendKind::OpenAi {
        if let Some(stripped) = s.strip_suffix("/v1") {
            s = stripped.to_owned();
        }
    }
    Ok(s)
}

/// Strips the routing prefixes other tools put on Ollama model names.
pub(crate) fn ollama_model_name(model: &str) -> &str {
    model.strip_prefix("ollama_chat/").or_else(|| model.strip_prefix("ollama/")).unwrap_or(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Split anywhere, a stream decodes to the same text (the network decides chunking,
    /// not the server); arbitrary bytes never panic.
    mod stream_decoding {
        use super::*;
        use proptest::prelude::*;

        fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut out = Vec::new();
            let mut at = 0;
            for p in points {
                out.push(&bytes[at..p]);
                at = p;
            }
            out.push(&bytes[at..]);
            out
        }

        fn openai_stream(tokens: &[String]) -> Vec<u8> {
            let mut s = String::new();
            for t in tokens {
                let chunk = serde_json::json!({"choices": [{"delta": {"content": t}}]});
                s.push_str(&format!("data: {chunk}\r\n\r\n"));
            }
            s.push_str("data: [DONE]\n\n");
            s.into_bytes()
        }

        fn ollama_stream(tokens: &[String]) -> Vec<u8> {
            let mut s = String::new();
            for t in tokens {
                s.push_str(&format!("{}\n", serde_json::json!({"message": {"content": t}, "done": false})));
            }
            s.push_str("{\"done\": true, \"eval_count\": 3}\n");
            s.into_bytes()
        }

        proptest! {
            #[test]
            fn split_points_do_not_change_the_text(
                tokens in proptest::collection::vec("[a-zé✓ \\n\"]{0,6}", 0..12),
                cuts in proptest::collection::vec(any::<usize>(), 0..8),
            ) {
                let want: String = tokens.concat();
                let bytes = openai_stream(&tokens);
                prop_assert_eq!(decode_stream_for_fuzzing(BackendKind::OpenAi, &split(&bytes, &cuts)), want.clone());
                let bytes = ollama_stream(&tokens);
                prop_assert_eq!(decode_stream_for_fuzzing(BackendKind::Ollama, &split(&bytes, &cuts)), want);
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                                           cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
                let chunks = split(&bytes, &cuts);
                decode_stream_for_fuzzing(BackendKind::OpenAi, &chunks);
                decode_stream_for_fuzzing(BackendKind::Ollama, &chunks);
            }
        }
    }

    /// Accepted URLs are normalised; rejected ones say what is wrong.
    #[test]
    fn url_validation() {
        assert_eq!(normalize_base_url(BackendKind::Ollama, "http://h:11434/").unwrap(), "http://h:11434");
        assert_eq!(normalize_base_url(BackendKind::OpenAi, "https://h/v1/").unwrap(), "https://h");
        assert_eq!(normalize_base_url(BackendKind::OpenAi, "http://h:8000/proxy").unwrap(), "http://h:8000/proxy");
        for (bad, why) in [
            ("", "empty"),
            ("localhost:11434", "scheme"),
            ("ftp://h", "not supported"),
            ("http://h?x=1", "query"),
            ("http://h#f", "fragment"),
            ("http://", "http://"),
        ] {
            let e = normalize_base_url(BackendKind::Ollama, bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    /// Backend kinds parse case-insensitively; anything else names the choices.
    #[test]
    fn kind_parses() {
        assert_eq!("Ollama".parse::<BackendKind>().unwrap(), BackendKind::Ollama);
        assert_eq!("openai".parse::<BackendKind>().unwrap(), BackendKind::OpenAi);
        assert!("bedrock".parse::<BackendKind>().unwrap_err().to_string().contains("expected `ollama` or `openai`"));
        assert_eq!(serde_json::to_string(&BackendKind::OpenAi).unwrap(), "\"openai\"");
    }

    /// Routing prefixes used by LiteLLM are removed before talking to Ollama.
    #[test]
    fn ollama_prefixes_stripped() {
        assert_eq!(ollama_model_name("ollama/llama3.1:8b"), "llama3.1:8b");
        assert_eq!(ollama_model_name("ollama_chat/qwen3"), "qwen3");
        assert_eq!(ollama_model_name("llama3"), "llama3");
    }

    /// The output reserve follows ctx/5 clamped to [1024, 64000].
    #[test]
    fn output_reserve() {
        let m = |c| ModelInfo { context_length: Some(c), ..Default::default() };
        assert_eq!(m(2048).output_reserve(), Some(1024));
        assert_eq!(m(131_072).output_reserve(), Some(26_214));
        assert_eq!(m(1_000_000).output_reserve(), Some(64_000));
        assert_eq!(ModelInfo::default().output_reserve(), None);
    }
}
