//! The OpenAI-compatible surface: `/v1/models`, `/v1/chat/completions`, `/v1/completions`.

use crate::harness::{chat_content, config, sse_events, user, words, Sim};
use rune_sim::SimConfig;
use serde_json::json;
use std::num::NonZeroU32;

/// A streamed chat answer has exactly `output_tokens` tokens in SSE `chat.completion.chunk`
/// events (one token each, the first with the assistant role), a `stop` finish, a usage
/// chunk with exact counts when `include_usage` is set, and ends with `[DONE]`.
#[tokio::test]
async fn chat_stream_returns_exactly_n_tokens_and_a_usage_chunk() {
    let sim = Sim::start(config(17)).await;
    let r = sim
        .post(
            "/v1/chat/completions",
            json!({
                "model": "sim-llama", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "system", "content": "be brief"}, user("what is unhealthy here?")],
            }),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["x-rune-simulated"], "true");
    let events = sse_events(&r.text().await.unwrap());
    let content: Vec<_> = events.iter().filter(|e| e["choices"][0]["delta"]["content"].is_string()).collect();
    assert_eq!(content.len(), 17, "one token per chunk");
    assert_eq!(content[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(events.iter().all(|e| e["object"] == "chat.completion.chunk" && e["model"] == "sim-llama"));
    assert_eq!(words(&chat_content(&events)), 17);
    let finish = &events[events.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &events[events.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], json!({"prompt_tokens": 6, "completion_tokens": 17, "total_tokens": 23}));
    sim.stop().await;
}

/// `tokens_per_chunk` groups tokens (the last chunk carries the rest), `max_tokens` below
/// `output_tokens` lowers the count and makes the finish reason `length`, and without
/// `include_usage` no usage chunk is sent.
#[tokio::test]
async fn tokens_per_chunk_groups_tokens_and_max_tokens_lowers_the_count() {
    let sim = Sim::start(SimConfig { tokens_per_chunk: NonZeroU32::new(3).unwrap(), ..config(10) }).await;
    let (_, _, body) = sim
        .post_text(
            "/v1/chat/completions",
            json!({"model": "sim-qwen", "stream": true, "max_tokens": 7, "messages": [user("hi")]}),
        )
        .await;
    let events = sse_events(&body);
    let per_chunk: Vec<usize> =
        events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).map(words).collect();
    assert_eq!(per_chunk, vec![3, 3, 1]);
    assert_eq!(events.last().unwrap()["choices"][0]["finish_reason"], "length");
    assert!(events.iter().all(|e| e.get("usage").is_none()));
    sim.stop().await;
}

/// A non-streaming chat answer carries the whole content in `choices[0].message.content`
/// and exact usage; `max_completion_tokens` is honoured like `max_tokens`.
#[tokio::test]
async fn chat_non_stream_returns_content_and_usage() {
    let sim = Sim::start(config(12)).await;
    let r = sim.post("/v1/chat/completions", json!({"model": "sim-llama", "messages": [user("one two three")]})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(words(body["choices"][0]["message"]["content"].as_str().unwrap()), 12);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"], json!({"prompt_tokens": 3, "completion_tokens": 12, "total_tokens": 15}));

    let body: serde_json::Value = sim
        .post(
            "/v1/chat/completions",
            json!({"model": "sim-llama", "max_completion_tokens": 2, "messages": [user("x")]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["usage"]["completion_tokens"], 2);
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    sim.stop().await;
}

/// Content given as a list of typed parts is counted by its text parts.
#[tokio::test]
async fn content_parts_are_counted() {
    let sim = Sim::start(config(1)).await;
    let content = json!([{"type": "text", "text": "a b"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "c"}]);
    let body: serde_json::Value = sim
        .post("/v1/chat/completions", json!({"model": "sim-llama", "messages": [{"role": "user", "content": content}]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    sim.stop().await;
}

/// `/v1/completions` streams `text_completion` chunks ending in a usage chunk and `[DONE]`,
/// and answers non-streaming requests with `choices[0].text` and usage.
#[tokio::test]
async fn completions_stream_and_non_stream() {
    let sim = Sim::start(config(5)).await;
    let (status, _, body) = sim
        .post_text(
            "/v1/completions",
            json!({"model": "sim-llama", "prompt": "once upon a time", "stream": true, "stream_options": {"include_usage": true}}),
        )
        .await;
    assert_eq!(status, 200);
    let events = sse_events(&body);
    assert!(events.iter().all(|e| e["object"] == "text_completion"));
    let text: String = events.iter().filter_map(|e| e["choices"][0]["text"].as_str()).collect();
    assert_eq!(words(&text), 5);
    assert_eq!(events.last().unwrap()["usage"], json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}));

    let body: serde_json::Value =
        sim.post("/v1/completions", json!({"model": "sim-qwen", "prompt": ["a b", "c"]})).await.json().await.unwrap();
    assert_eq!(words(body["choices"][0]["text"].as_str().unwrap()), 5);
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    sim.stop().await;
}

/// `/v1/models` lists the configured models in OpenAI's list shape, each owned by
/// "rune-sim (simulated)".
#[tokio::test]
async fn models_list_is_labelled_simulated() {
    let sim = Sim::start(SimConfig { models: vec!["a".into(), "b:7b".into()], ..SimConfig::default() }).await;
    let r = sim.get("/v1/models").await;
    assert_eq!(r.headers()["x-rune-simulated"], "true");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<_> = body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b:7b"]);
    for m in body["data"].as_array().unwrap() {
        assert_eq!(m["object"], "model");
        assert_eq!(m["owned_by"], "rune-sim (simulated)");
    }
    sim.stop().await;
}

/// An unknown model is a 404 with OpenAI's error object (`model_not_found`), on both
/// generation endpoints and whether streaming or not.
#[tokio::test]
async fn unknown_model_is_a_404_in_openai_style() {
    let sim = Sim::start(config(3)).await;
    for (path, body) in [
        ("/v1/chat/completions", json!({"model": "gpt-9", "messages": [user("hi")], "stream": true})),
        ("/v1/completions", json!({"model": "gpt-9", "prompt": "hi"})),
    ] {
        let r = sim.post(path, body).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.headers()["x-rune-simulated"], "true");
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "model_not_found");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert!(e["error"]["message"].as_str().unwrap().contains("gpt-9"));
    }
    sim.stop().await;
}

/// A body that is not the expected JSON is a 400 in OpenAI's error shape that says why.
#[tokio::test]
async fn bad_json_is_a_400_in_openai_style() {
    let sim = Sim::start(config(3)).await;
    let r = sim.http.post(sim.url("/v1/chat/completions")).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "invalid_request_error");
    let r = sim.post("/v1/chat/completions", json!({"model": "sim-llama"})).await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert!(e["error"]["message"].as_str().unwrap().contains("messages"), "{e}");
    sim.stop().await;
}
