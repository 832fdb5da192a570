//! Ollama-compatible handlers: `POST /api/chat` and `/api/generate` (NDJSON streaming by
//! default), warm-up requests (no messages / empty prompt) that only load or unload a
//! model, `GET /api/ps` (models loaded by a request and not yet expired), `POST /api/show`
//! and `POST /api/pull` (progress lines; an unknown model errors inside the stream, as
//! Ollama does). `GET /api/tags` is pre-rendered in [`crate::server`].

use crate::clock::{self, parse_keep_alive, KeepAlive};
use crate::generate::{self, Request};
use crate::openai::{conversation_answer, conversation_tokens, Message};
use crate::server::{
    bad_request, json_response, model_details, model_info, model_not_found, model_summary, ollama_error, ModelEntry,
    Shared, MODEL_SIZE,
};
use crate::tokens::count_words;
use crate::wire::Api;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;
use std::sync::Arc;
use tokio::time::Instant;

#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(default, borrow)]
    messages: Vec<Message<'a>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    options: Option<Options>,
    #[serde(default)]
    keep_alive: serde_json::Value,
}

#[derive(Deserialize)]
struct GenerateRequest<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(default, borrow)]
    prompt: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    system: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    options: Option<Options>,
    #[serde(default)]
    keep_alive: serde_json::Value,
}

#[derive(Deserialize, Default)]
struct Options {
    /// Negative means "no limit" in Ollama.
    #[serde(default)]
    num_predict: Option<i64>,
}

impl Options {
    fn limit(options: Option<Options>) -> Option<u64> {
        options.and_then(|o| o.num_predict).and_then(|n| u64::try_from(n).ok())
    }
}

/// `/api/show` and `/api/pull` name the model as `model` (current) or `name` (legacy).
#[derive(Deserialize)]
struct ModelRef {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
}

impl ModelRef {
    fn parse(body: &[u8]) -> Result<(String, bool), String> {
        let r: ModelRef = serde_json::from_slice(body).map_err(|e| format!("invalid request body: {e}"))?;
        let stream = r.stream.unwrap_or(true);
        r.model.or(r.name).filter(|m| !m.is_empty()).map(|m| (m, stream)).ok_or_else(|| "model is required".into())
    }
}

/// `POST /api/chat`.
pub(crate) async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let received = Instant::now();
    let api = Api::OllamaChat;
    let req: ChatRequest<'_> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(api, &format!("invalid request body: {e}")),
    };
    let Some(model) = shared.find_model(&req.model) else {
        return model_not_found(api, &req.model);
    };
    let keep = match parse_keep_alive(&req.keep_alive) {
        Ok(k) => k,
        Err(e) => return bad_request(api, &e),
    };
    model.touch(keep);
    if req.messages.is_empty() {
        return warm_up(api, model, keep);
    }
    let request = Request {
        api,
        stream: req.stream.unwrap_or(true),
        model,
        prompt_tokens: conversation_tokens(&req.messages),
        answer: conversation_answer(&shared, &req.messages),
        limit: Options::limit(req.options),
        include_usage: false,
        received,
    };
    generate::answer(&shared, request).await
}

/// `POST /api/generate`.
pub(crate) async fn generate(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let received = Instant::now();
    let api = Api::OllamaGenerate;
    let req: GenerateRequest<'_> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(api, &format!("invalid request body: {e}")),
    };
    let Some(model) = shared.find_model(&req.model) else {
        return model_not_found(api, &req.model);
    };
    let keep = match parse_keep_alive(&req.keep_alive) {
        Ok(k) => k,
        Err(e) => return bad_request(api, &e),
    };
    model.touch(keep);
    let prompt = req.prompt.as_deref().unwrap_or("");
    if prompt.is_empty() {
        return warm_up(api, model, keep);
    }
    let system_words = req.system.as_deref().map_or(0, count_words);
    let request = Request {
        api,
        stream: req.stream.unwrap_or(true),
        model,
        prompt_tokens: (count_words(prompt) + system_words).max(1),
        answer: shared.select_answer(|a| a.matches(prompt)),
        limit: Options::limit(req.options),
        include_usage: false,
        received,
    };
    generate::answer(&shared, request).await
}

/// Ollama's answer to a request without input: the model is loaded (or, with a zero
/// keep-alive, unloaded) and a single `done` object says which. No faults apply.
fn warm_up(api: Api, model: &ModelEntry, keep: KeepAlive) -> Response {
    let reason = if keep == KeepAlive::For(std::time::Duration::ZERO) { "unload" } else { "load" };
    let mut body = json!({
        "model": model.name,
        "created_at": clock::rfc3339_ms(clock::now_ms()),
        "done_reason": reason,
        "done": true,
    });
    if api == Api::OllamaChat {
        body["message"] = json!({ "role": "assistant", "content": "" });
    } else {
        body["response"] = json!("");
    }
    json_response(StatusCode::OK, body.to_string())
}

/// `GET /api/ps`: models loaded by a request whose keep-alive has not expired.
pub(crate) async fn ps(State(shared): State<Arc<Shared>>) -> Response {
    let now = clock::now_ms();
    let models: Vec<_> = shared
        .models
        .iter()
        .filter_map(|m| {
            let until = m.loaded_until(now)?;
            let mut entry = model_summary(m);
            entry["expires_at"] = json!(clock::rfc3339_ms(until));
            entry["size_vram"] = json!(MODEL_SIZE);
            Some(entry)
        })
        .collect();
    json_response(StatusCode::OK, json!({ "models": models }).to_string())
}

/// `POST /api/show`: details, `model_info` (with `llama.context_length`) and a modelfile
/// that says the model is simulated.
pub(crate) async fn show(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let api = Api::OllamaChat;
    let name = match ModelRef::parse(&body) {
        Ok((name, _)) => name,
        Err(e) => return bad_request(api, &e),
    };
    let Some(model) = shared.find_model(&name) else {
        return model_not_found(api, &name);
    };
    let body = json!({
        "license": "none: simulated model served by rune-sim (no weights)",
        "modelfile": format!("# SIMULATED by rune-sim: no weights, scripted answers\nFROM {}\n", model.name),
        "parameters": "",
        "template": "{{ .Prompt }}",
        "details": model_details(),
        "model_info": model_info(model),
        "capabilities": ["completion"],
        "modified_at": clock::rfc3339_ms(shared.started_ms),
        "simulated": true,
    });
    json_response(StatusCode::OK, body.to_string())
}

/// `POST /api/pull`: known models "download" at once; unknown ones fail like Ollama's
/// registry miss (inside the stream when streaming, else a 404).
pub(crate) async fn pull(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let api = Api::OllamaChat;
    let (name, stream) = match ModelRef::parse(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(api, &e),
    };
    const MISSING: &str = "pull model manifest: file does not exist";
    let model = shared.find_model(&name);
    if !stream {
        return match model {
            Some(_) => json_response(StatusCode::OK, Bytes::from_static(br#"{"status":"success"}"#)),
            None => ollama_error(StatusCode::NOT_FOUND, MISSING),
        };
    }
    let mut lines = vec![json!({ "status": "pulling manifest" })];
    match model {
        Some(m) => {
            let short = m.digest.get(..12).unwrap_or(&m.digest);
            for completed in [0, MODEL_SIZE / 2, MODEL_SIZE] {
                lines.push(json!({
                    "status": format!("pulling {short}"),
                    "digest": format!("sha256:{}", m.digest),
                    "total": MODEL_SIZE,
                    "completed": completed,
                }));
            }
            lines.push(json!({ "status": "verifying sha256 digest" }));
            lines.push(json!({ "status": "writing manifest" }));
            lines.push(json!({ "status": "success" }));
        }
        None => lines.push(json!({ "error": MISSING })),
    }
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"))], body).into_response()
}
