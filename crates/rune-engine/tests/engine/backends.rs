//! Ollama and OpenAI-compatible backends against the fake model server: parsing, token
//! counts, client-side timing (lower bounds only), errors, retries, timeouts, cancellation.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rune_engine::backend::{
    backend_for, BackendError, BackendKind, BackendOptions, ChatMessage, ChatRequest, OllamaBackend, OpenAiBackend,
    PullProgress, TimeoutPhase, WarmUpOptions,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::{FakeLlm, Fault, TestServer};
use rune_engine::backend::Backend as _;

fn req(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![ChatMessage::system("be brief"), ChatMessage::user("why?")],
        ..ChatRequest::default()
    }
}

fn quick() -> BackendOptions {
    BackendOptions { connect_attempts: 1, ..BackendOptions::default() }
}

fn ollama(url: &str, opts: BackendOptions) -> OllamaBackend {
    OllamaBackend::new(url, opts).unwrap()
}

fn openai(url: &str, opts: BackendOptions) -> OpenAiBackend {
    OpenAiBackend::new(url, opts).unwrap()
}

/// Ollama NDJSON streaming: text is reassembled, token counts and server durations come
/// from the final object, TTFT is at least the fake's delay, and the request carries the
/// streaming flag and sampling options.
#[tokio::test]
async fn ollama_chat_streams_text_counts_and_timing() {
    let fake = FakeLlm { ttft: Duration::from_millis(150), itl: Duration::from_millis(20), ..FakeLlm::default() }
        .start()
        .await;
    let b = ollama(&fake.url, quick());
    let mut r = req("ollama/llama3.1:8b");
    r.max_tokens = Some(64);
    r.context_window = Some(4096);
    r.seed = Some(7);
    let resp = b.chat(&r, &CancellationToken::new()).await.unwrap();
    assert_eq!(resp.text, "The pod is OOMKilled.");
    assert_eq!(resp.usage.prompt_tokens, Some(42));
    assert_eq!(resp.usage.completion_tokens, Some(4));
    assert_eq!(resp.model, "llama3.1:8b");
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
    let st = resp.server_timing.unwrap();
    assert_eq!(st.total_ms, Some(5.0));
    assert_eq!(st.eval_ms, Some(3.0));
    let t = resp.timing;
    assert!(t.ttft_ms.unwrap() >= 150.0, "{t:?}");
    assert!(t.total_ms >= 150.0 + 4.0 * 20.0, "{t:?}");
    assert_eq!(t.chunks, 4);
    assert!(t.mean_itl_ms.is_some() && t.max_gap_ms.is_some());
    let sent = &fake.requests_to("/api/chat")[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["model"], "llama3.1:8b");
    assert_eq!(sent.body["messages"][1], json!({"role": "user", "content": "why?"}));
    assert_eq!(sent.body["options"], json!({"num_predict": 64, "num_ctx": 4096, "seed": 7}));
}

/// An unknown model names the model, lists what the server has and suggests `ollama pull`.
#[tokio::test]
async fn ollama_unknown_model_lists_available_and_suggests_pull() {
    let fake = FakeLlm::default().start().await;
    let b = ollama(&fake.url, quick());
    let e = b.chat(&req("llama9:70b"), &CancellationToken::new()).await.unwrap_err();
    assert!(matches!(e, BackendError::UnknownModel { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("`llama9:70b`"), "{msg}");
    assert!(msg.contains("available: llama3.1:8b, qwen3:8b"), "{msg}");
    assert!(msg.contains("ollama pull llama9:70b"), "{msg}");
    let e = b.model_info("llama9:70b").await.unwrap_err();
    assert!(matches!(e, BackendError::UnknownModel { .. }), "{e:?}");
}

/// Listing sorts names and reports running models; model info reads the context length.
#[tokio::test]
async fn ollama_lists_models_and_reads_context_length() {
    let fake = FakeLlm { running: Arc::new(Mutex::new(vec!["qwen3:8b".into()])), ..FakeLlm::default() };
    let server = fake.start().await;
    let b = ollama(&server.url, quick());
    let list = b.list_models().await.unwrap();
    assert_eq!(list.models, vec!["llama3.1:8b", "qwen3:8b"]);
    assert_eq!(list.running_models, vec!["qwen3:8b"]);
    let info = b.model_info("llama3.1:8b").await.unwrap();
    assert_eq!(info.context_length, Some(8192));
    assert_eq!(info.quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!(server.requests_to("/api/show")[0].body["model"], "llama3.1:8b");
}

/// Warm-up unloads the other running models (`keep_alive: 0`), loads the target with an
/// empty prompt and the requested keep-alive, and returns once `/api/ps` lists it.
#[tokio::test]
async fn ollama_warm_up_unloads_others_and_waits_until_listed() {
    let running = Arc::new(Mutex::new(vec!["qwen3:8b".to_owned()]));
    let server = FakeLlm { running: running.clone(), ..FakeLlm::default() }.start().await;
    let b = ollama(&server.url, quick());
    let opts = WarmUpOptions {
        unload_others: true,
        poll_interval: Duration::from_millis(20),
        keep_alive: "10m".into(),
        ..WarmUpOptions::default()
    };
    let report = b.warm_up("llama3.1:8b", &opts, &CancellationToken::new()).await.unwrap();
    assert_eq!(report.unloaded, vec!["qwen3:8b"]);
    assert_eq!(*running.lock().unwrap(), vec!["llama3.1:8b"]);
    let gens = server.requests_to("/api/generate");
    assert_eq!(gens[0].body, json!({"model": "qwen3:8b", "keep_alive": 0}));
    assert_eq!(gens[1].body, json!({"model": "llama3.1:8b", "prompt": "", "keep_alive": "10m", "stream": false}));
}

/// A model that never shows up as running ends the warm-up with a timeout in the warm-up phase.
#[tokio::test]
async fn ollama_warm_up_times_out_when_model_never_loads() {
    let server = FakeLlm { loads: false, ..FakeLlm::default() }.start().await;
    let b = ollama(&server.url, quick());
    let opts = WarmUpOptions {
        timeout: Duration::from_millis(300),
        poll_interval: Duration::from_millis(50),
        ..WarmUpOptions::default()
    };
    let e = b.warm_up("llama3.1:8b", &opts, &CancellationToken::new()).await.unwrap_err();
    assert!(matches!(e, BackendError::Timeout { phase: TimeoutPhase::WarmUp, .. }), "{e:?}");
    assert!(e.to_string().contains("waiting for the model to load"), "{e}");
}

/// Pull streams NDJSON progress to the callback until `success`; a registry error for a
/// missing model is an unknown-model error.
#[tokio::test]
async fn ollama_pull_reports_progress_and_errors() {
    let server = FakeLlm::default().start().await;
    let b = ollama(&server.url, quick());
    let seen: Arc<Mutex<Vec<PullProgress>>> = Arc::default();
    let sink = seen.clone();
    b.pull("llama3.1:8b", &move |p: &PullProgress| sink.lock().unwrap().push(p.clone()), &CancellationToken::new())
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[1].completed, Some(50));
    assert_eq!(seen[1].total, Some(100));
    assert_eq!(seen.last().unwrap().status, "success");
    assert_eq!(server.requests_to("/api/pull")[0].body, json!({"model": "llama3.1:8b", "stream": true}));
    let e = b.pull("missing:tag", &|_: &PullProgress| {}, &CancellationToken::new()).await.unwrap_err();
    assert!(matches!(e, BackendError::UnknownModel { .. }), "{e:?}");
    assert!(e.to_string().contains("file does not exist"), "{e}");
}

/// Streams that break are bad responses saying so, for both formats: a connection dropped
/// mid-stream, a clean end without the final message, a malformed line, an error object.
#[tokio::test]
async fn broken_streams_are_reported() {
    for kind in [BackendKind::Ollama, BackendKind::OpenAi] {
        for (fault, needle) in [
            (Fault::CloseMidStream, "broke before it was complete"),
            (Fault::NoFinalMessage, "closed the connection mid-stream"),
            (Fault::Malformed, "not JSON"),
            (Fault::ErrorMidStream, "GPU fell off the bus"),
        ] {
            let server = FakeLlm { fault, ..FakeLlm::default() }.start().await;
            let b = backend_for(kind, &server.url, quick()).unwrap();
            let e = b.chat(&req("llama3.1:8b"), &CancellationToken::new()).await.unwrap_err();
            assert!(matches!(e, BackendError::BadResponse { .. }), "{kind} {fault:?}: {e:?}");
            let msg = e.to_string();
            assert!(msg.contains(needle), "{kind} {fault:?}: {msg}");
            assert!(msg.contains(&server.url), "{kind} {fault:?}: names the endpoint: {msg}");
        }
    }
}

/// OpenAI SSE streaming: text from deltas (the role-only first chunk is not a token), usage
/// from the final usage chunk, TTFT at least the fake's delay, the key sent as Bearer, and
/// `stream_options.include_usage` requested.
#[tokio::test]
async fn openai_chat_streams_sse_with_usage_and_timing() {
    let fake = FakeLlm {
        ttft: Duration::from_millis(120),
        itl: Duration::from_millis(15),
        api_key: Some("sk-test".into()),
        ..FakeLlm::default()
    }
    .start()
    .await;
    let b = openai(&format!("{}/v1/", fake.url), BackendOptions { api_key: Some("sk-test".into()), ..quick() });
    let resp = b.chat(&req("qwen3:8b"), &CancellationToken::new()).await.unwrap();
    assert_eq!(resp.text, "The pod is OOMKilled.");
    assert_eq!(resp.usage.prompt_tokens, Some(42));
    assert_eq!(resp.usage.completion_tokens, Some(4));
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
    assert!(resp.server_timing.is_none());
    assert!(resp.timing.ttft_ms.unwrap() >= 120.0, "{:?}", resp.timing);
    assert_eq!(resp.timing.chunks, 4);
    let sent = &fake.requests_to("/v1/chat/completions")[0];
    assert_eq!(sent.headers["authorization"], "Bearer sk-test");
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["stream_options"], json!({"include_usage": true}));
}

/// A rejected key is an auth error that names the environment variable to set.
#[tokio::test]
async fn openai_auth_failure_names_the_env_var() {
    let fake = FakeLlm { api_key: Some("right".into()), ..FakeLlm::default() }.start().await;
    let opts = BackendOptions { api_key: Some("wrong".into()), api_key_env: "VLLM_API_KEY".into(), ..quick() };
    let b = openai(&fake.url, opts);
    for e in
        [b.chat(&req("qwen3:8b"), &CancellationToken::new()).await.unwrap_err(), b.list_models().await.unwrap_err()]
    {
        assert!(matches!(e, BackendError::Auth { status: 401, .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("set VLLM_API_KEY"), "{msg}");
        assert!(msg.contains("Incorrect API key"), "{msg}");
    }
}

/// OpenAI-compatible servers: unknown models list the served ones; model info reads
/// `max_model_len`; pulling is unsupported with a hint; warm-up sends a one-token request.
#[tokio::test]
async fn openai_models_info_unknown_and_warm_up() {
    let fake = FakeLlm::default().start().await;
    let b = openai(&fake.url, quick());
    let e = b.chat(&req("gpt-9"), &CancellationToken::new()).await.unwrap_err();
    assert!(matches!(e, BackendError::UnknownModel { .. }), "{e:?}");
    assert!(e.to_string().contains("available: llama3.1:8b, qwen3:8b"), "{e}");
    assert!(e.to_string().contains("vllm serve"), "{e}");
    assert_eq!(b.model_info("qwen3:8b").await.unwrap().context_length, Some(8192));
    assert!(matches!(b.model_info("gpt-9").await.unwrap_err(), BackendError::UnknownModel { .. }));
    let list = b.list_models().await.unwrap();
    assert_eq!(list.models, list.running_models);
    let e = b.pull("x", &|_: &PullProgress| {}, &CancellationToken::new()).await.unwrap_err();
    assert!(matches!(e, BackendError::Unsupported { .. }), "{e:?}");
    b.warm_up("qwen3:8b", &WarmUpOptions::default(), &CancellationToken::new()).await.unwrap();
    assert_eq!(fake.requests_to("/v1/chat/completions").last().unwrap().body["max_tokens"], 1);
}

/// Connect errors are retried with back-off: a server that starts late is reached.
#[tokio::test]
async fn connect_errors_are_retried_until_the_server_starts() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let starter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        TestServer::start_on(listener, FakeLlm::default().router())
    });
    let opts =
        BackendOptions { connect_attempts: 10, retry_backoff: Duration::from_millis(100), ..BackendOptions::default() };
    let b = ollama(&format!("http://{addr}"), opts);
    let list = b.list_models().await.unwrap();
    assert_eq!(list.models.len(), 2);
    let server = starter.await.unwrap();
    assert_eq!(server.requests_to("/api/tags").len(), 1);
}

/// A 500 is never retried: the server sees exactly one request and the error names the
/// status and the endpoint.
#[tokio::test]
async fn server_errors_are_not_retried() {
    let fake = FakeLlm { fault: Fault::Status(500), ..FakeLlm::default() }.start().await;
    let opts = BackendOptions { connect_attempts: 5, ..BackendOptions::default() };
    let b = ollama(&fake.url, opts);
    let e = b.chat(&req("llama3.1:8b"), &CancellationToken::new()).await.unwrap_err();
    assert!(matches!(e, BackendError::Http { status: 500, .. }), "{e:?}");
    assert!(e.to_string().contains("/api/chat answered HTTP 500: fake server failure"), "{e}");
    assert_eq!(fake.requests_to("/api/chat").len(), 1);
}

/// Nothing listening: after the bounded attempts the error names the URL and says to
/// check that the server is running.
#[tokio::test]
async fn unreachable_server_says_what_to_check() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", probe.local_addr().unwrap());
    drop(probe);
    let opts =
        BackendOptions { connect_attempts: 2, retry_backoff: Duration::from_millis(10), ..BackendOptions::default() };
    let e = backend_for(BackendKind::OpenAi, &url, opts).unwrap().list_models().await.unwrap_err();
    assert!(matches!(e, BackendError::Unreachable { attempts: 2, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("{url}/v1/models")), "{msg}");
    assert!(msg.contains("check that the server is running"), "{msg}");
}

/// Time bounds name their phase: slow headers time out waiting for the response, a slow
/// first token times out reading the stream.
#[tokio::test]
async fn timeouts_name_their_phase() {
    let fake = FakeLlm { fault: Fault::SlowHeaders(5_000), ..FakeLlm::default() }.start().await;
    let b = ollama(&fake.url, BackendOptions { chat_timeout: Duration::from_millis(200), ..quick() });
    let e = b.chat(&req("llama3.1:8b"), &CancellationToken::new()).await.unwrap_err();
    assert!(matches!(e, BackendError::Timeout { phase: TimeoutPhase::Response, .. }), "{e:?}");
    let fake = FakeLlm { ttft: Duration::from_secs(5), ..FakeLlm::default() }.start().await;
    let b = openai(&fake.url, BackendOptions { chat_timeout: Duration::from_millis(200), ..quick() });
    let e = b.chat(&req("llama3.1:8b"), &CancellationToken::new()).await.unwrap_err();
    assert!(matches!(e, BackendError::Timeout { phase: TimeoutPhase::Stream, .. }), "{e:?}");
    assert!(e.to_string().contains("reading the response stream"), "{e}");
}

/// Cancelling the token drops an in-flight stream promptly with a cancellation error.
#[tokio::test]
async fn cancellation_drops_the_request() {
    let fake = FakeLlm { ttft: Duration::from_secs(30), ..FakeLlm::default() }.start().await;
    let b = ollama(&fake.url, quick());
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.cancel();
    });
    let started = Instant::now();
    let e = b.chat(&req("llama3.1:8b"), &cancel).await.unwrap_err();
    canceller.await.unwrap();
    assert!(matches!(e, BackendError::Cancelled { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "cancellation took {:?}", started.elapsed());
}

/// Bad URLs are rejected by the factory with the reason, before any request.
#[tokio::test]
async fn factory_validates_urls() {
    for bad in ["", "11434", "ftp://x", "http://h:1/?q=1"] {
        let e = backend_for(BackendKind::Ollama, bad, BackendOptions::default()).unwrap_err();
        assert!(matches!(e, BackendError::InvalidUrl { .. }), "{bad:?}: {e:?}");
    }
}

/// A server that ignores `stream: true` still yields text and usage, but no TTFT or
/// inter-token figures (they cannot be measured from one body).
#[tokio::test]
async fn openai_non_streaming_reply_is_accepted_without_ttft() {
    let fake = FakeLlm { fault: Fault::NonStreaming, ..FakeLlm::default() }.start().await;
    let resp = openai(&fake.url, quick()).chat(&req("qwen3:8b"), &CancellationToken::new()).await.unwrap();
    assert_eq!(resp.text, "The pod is OOMKilled.");
    assert_eq!(resp.usage.completion_tokens, Some(4));
    assert_eq!(resp.timing.ttft_ms, None);
    assert_eq!(resp.timing.chunks, 0);
}
