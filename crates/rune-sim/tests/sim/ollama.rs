//! The Ollama-compatible surface: `/api/chat`, `/api/generate`, `/api/tags`, `/api/ps`,
//! `/api/show`, `/api/pull`.

use crate::harness::{config, ndjson, user, words, Sim};
use rune_sim::SimConfig;
use serde_json::{json, Value};
use std::time::Duration;

/// `/api/chat` streams NDJSON by default: one `done:false` object per token, then a
/// `done:true` object with exact `prompt_eval_count`/`eval_count` and nanosecond durations
/// consistent with the configured TTFT and ITL.
#[tokio::test]
async fn chat_ndjson_final_object_has_counts_and_durations() {
    let sim =
        Sim::start(SimConfig { ttft: Duration::from_millis(20), itl: Duration::from_millis(2), ..config(5) }).await;
    let r = sim.post("/api/chat", json!({"model": "sim-llama", "messages": [user("why is the pod pending")]})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson(&r.text().await.unwrap());
    assert_eq!(lines.len(), 6);
    let content: String = lines[..5]
        .iter()
        .map(|l| {
            assert_eq!(l["done"], false);
            assert_eq!(l["model"], "sim-llama");
            assert!(l["created_at"].as_str().unwrap().ends_with('Z'));
            l["message"]["content"].as_str().unwrap()
        })
        .collect();
    assert_eq!(words(&content), 5);
    let last = &lines[5];
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["prompt_eval_count"], 5);
    assert_eq!(last["eval_count"], 5);
    let ns = |k: &str| last[k].as_u64().unwrap_or_else(|| panic!("{k} is a u64: {last}"));
    let ms = 1_000_000;
    assert!(ns("load_duration") > 0 && ns("eval_duration") > 0);
    assert!(ns("load_duration") + ns("prompt_eval_duration") >= 20 * ms, "{last}");
    // The last token is due at 20 + 4 * 2 ms; deadlines are absolute, so a late first
    // token shortens eval_duration rather than delaying the end.
    assert!(ns("load_duration") + ns("prompt_eval_duration") + ns("eval_duration") >= 28 * ms, "{last}");
    assert!(ns("total_duration") >= 28 * ms);
    assert!(ns("total_duration") >= ns("load_duration") + ns("prompt_eval_duration") + ns("eval_duration") - 1000);
    sim.stop().await;
}

/// `/api/generate` with `stream:false` returns one object with the whole `response`;
/// `options.num_predict` lowers the token count and makes `done_reason` `length`; the
/// system prompt counts towards `prompt_eval_count`.
#[tokio::test]
async fn generate_non_stream_honours_num_predict() {
    let sim = Sim::start(config(9)).await;
    let r = sim
        .post(
            "/api/generate",
            json!({"model": "sim-qwen", "prompt": "a b c", "system": "d e", "stream": false, "options": {"num_predict": 3}}),
        )
        .await;
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["done"], true);
    assert_eq!(body["done_reason"], "length");
    assert_eq!(words(body["response"].as_str().unwrap()), 3);
    assert_eq!(body["eval_count"], 3);
    assert_eq!(body["prompt_eval_count"], 5);
    assert!(body["total_duration"].as_u64().unwrap() > 0);

    let lines = ndjson(&sim.post_text("/api/generate", json!({"model": "sim-qwen", "prompt": "x"})).await.2);
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[9]["eval_count"], 9);
    assert_eq!(lines[9]["response"], "");
    sim.stop().await;
}

/// `/api/ps` is empty until a model is used; a warm-up (empty prompt or no messages, with
/// `keep_alive`) loads it without generating, and `keep_alive: 0` unloads it.
#[tokio::test]
async fn ps_lists_models_after_warm_up_until_unloaded() {
    let sim = Sim::start(config(4)).await;
    let ps = || async { sim.get("/api/ps").await.json::<Value>().await.unwrap()["models"].as_array().unwrap().clone() };
    assert!(ps().await.is_empty());

    let warm: Value =
        sim.post("/api/generate", json!({"model": "sim-qwen", "keep_alive": "10m"})).await.json().await.unwrap();
    assert_eq!(warm["done"], true);
    assert_eq!(warm["done_reason"], "load");
    assert_eq!(warm["response"], "");
    let loaded = ps().await;
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0]["name"], "sim-qwen");
    assert!(loaded[0]["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(loaded[0]["size_vram"].as_u64().unwrap() > 0);

    let warm: Value = sim
        .post("/api/chat", json!({"model": "sim-llama", "messages": [], "keep_alive": -1}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(warm["message"]["content"], "");
    assert_eq!(ps().await.len(), 2);

    let unload: Value =
        sim.post("/api/generate", json!({"model": "sim-qwen", "keep_alive": 0})).await.json().await.unwrap();
    assert_eq!(unload["done_reason"], "unload");
    let names: Vec<_> = ps().await.iter().map(|m| m["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["sim-llama"]);

    let r = sim.post("/api/generate", json!({"model": "sim-qwen", "keep_alive": "soon"})).await;
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("keep_alive"));
    sim.stop().await;
}

/// A generation request (OpenAI's too) also loads its model, as in Ollama.
#[tokio::test]
async fn generation_loads_the_model() {
    let sim = Sim::start(config(1)).await;
    sim.post("/v1/chat/completions", json!({"model": "sim-llama", "messages": [user("x")]})).await;
    let ps: Value = sim.get("/api/ps").await.json().await.unwrap();
    assert_eq!(ps["models"][0]["name"], "sim-llama");
    sim.stop().await;
}

/// `/api/show` returns details and `model_info` with the architecture's context length,
/// and a modelfile that says the model is simulated; `name` works as the legacy key.
#[tokio::test]
async fn show_reports_context_length_and_simulation() {
    let sim = Sim::start(config(1)).await;
    for key in ["model", "name"] {
        let body: Value = sim.post("/api/show", json!({ key: "sim-llama" })).await.json().await.unwrap();
        let arch = body["model_info"]["general.architecture"].as_str().unwrap();
        assert_eq!(body["model_info"][format!("{arch}.context_length")], 8192);
        assert_eq!(body["details"]["family"], "llama");
        assert!(body["modelfile"].as_str().unwrap().contains("SIMULATED"));
    }
    sim.stop().await;
}

/// `/api/pull` streams progress from `pulling manifest` to `success` for a served model;
/// for an unknown one the stream ends with an `error` line (a 404 when not streaming).
#[tokio::test]
async fn pull_streams_progress_and_fails_unknown_models() {
    let sim = Sim::start(config(1)).await;
    let (status, headers, body) = sim.post_text("/api/pull", json!({"model": "sim-qwen"})).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/x-ndjson");
    let lines = ndjson(&body);
    assert_eq!(lines[0]["status"], "pulling manifest");
    assert_eq!(lines.last().unwrap()["status"], "success");
    let progress: Vec<_> = lines.iter().filter(|l| l["total"].is_u64()).collect();
    assert!(progress.len() >= 2);
    assert_eq!(progress.last().unwrap()["completed"], progress.last().unwrap()["total"]);
    assert!(lines.iter().all(|l| l.get("error").is_none()));

    let lines = ndjson(&sim.post_text("/api/pull", json!({"model": "nope"})).await.2);
    assert!(lines.last().unwrap()["error"].as_str().unwrap().contains("does not exist"));
    assert!(lines.iter().all(|l| l["status"] != "success"));

    let r = sim.post("/api/pull", json!({"name": "nope", "stream": false})).await;
    assert_eq!(r.status(), 404);
    let ok: Value = sim.post("/api/pull", json!({"name": "sim-qwen", "stream": false})).await.json().await.unwrap();
    assert_eq!(ok, json!({"status": "success"}));
    sim.stop().await;
}

/// `/api/tags` lists the configured models, each marked `simulated`, with Ollama's fields.
#[tokio::test]
async fn tags_are_labelled_simulated() {
    let sim = Sim::start(config(1)).await;
    let body: Value = sim.get("/api/tags").await.json().await.unwrap();
    let models = body["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    for m in models {
        assert_eq!(m["simulated"], true);
        assert_eq!(m["digest"].as_str().unwrap().len(), 64);
        assert!(m["modified_at"].is_string() && m["size"].is_u64() && m["details"]["family"].is_string());
    }
    assert_eq!(models[0]["name"], "sim-llama");
    sim.stop().await;
}

/// An unknown model is a 404 `{"error":"model 'x' not found"}` on every Ollama endpoint,
/// and `name:latest` is accepted for a served `name`.
#[tokio::test]
async fn unknown_model_is_a_404_in_ollama_style() {
    let sim = Sim::start(config(1)).await;
    for (path, body) in [
        ("/api/chat", json!({"model": "llama3", "messages": [user("x")]})),
        ("/api/chat", json!({"model": "llama3", "messages": []})),
        ("/api/generate", json!({"model": "llama3", "prompt": "x"})),
        ("/api/show", json!({"model": "llama3"})),
    ] {
        let r = sim.post(path, body).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.headers()["x-rune-simulated"], "true");
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"error": "model 'llama3' not found"}));
    }
    let r = sim.post("/api/generate", json!({"model": "sim-llama:latest", "prompt": "x", "stream": false})).await;
    assert_eq!(r.status(), 200);
    sim.stop().await;
}

/// Every response, including version, root and unknown paths, carries
/// `X-Rune-Simulated: true`.
#[tokio::test]
async fn every_response_is_marked_simulated() {
    let sim = Sim::start(config(1)).await;
    for path in ["/", "/api/version", "/api/tags", "/api/ps", "/v1/models", "/nope"] {
        let r = sim.get(path).await;
        assert_eq!(r.headers()["x-rune-simulated"], "true", "{path}");
    }
    assert_eq!(sim.get("/nope").await.status(), 404);
    assert!(sim.get("/").await.text().await.unwrap().contains("SIMULATED"));
    sim.stop().await;
}
