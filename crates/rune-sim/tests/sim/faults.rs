//! Fault injection: each kind happens at its configured rate (0 never, 1 always, 0.5 about
//! half over 200 requests), is deterministic for a seed, and has its effect on the wire.
//! `X-Rune-Sim-Faults` tells which requests were chosen; each test also checks the effect.

use crate::harness::{config, user, Sim};
use rune_sim::{FailStatus, Faults, Rate, SimConfig, FAULTS_HEADER, REQUEST_HEADER};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const REQUESTS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Fail,
    Stall,
    Malformed,
    Drop,
}

fn faults(kind: Kind, rate: f64, seed: u64) -> Faults {
    let rate = Rate::new(rate).unwrap();
    let mut f = Faults { seed, stall: Duration::from_millis(10), ..Faults::default() };
    match kind {
        Kind::Fail => f.fail_rate = rate,
        Kind::Stall => f.stall_rate = rate,
        Kind::Malformed => f.malformed_rate = rate,
        Kind::Drop => f.drop_rate = rate,
    }
    f
}

/// What one request showed: whether the header named the fault and whether the client
/// saw its effect.
struct Seen {
    announced: bool,
    observed: bool,
}

/// Sends one streaming request on alternating APIs and checks what happened.
async fn one(sim: &Sim, kind: Kind, i: usize, stall: Duration) -> Seen {
    let (path, body) = if i % 2 == 1 {
        ("/api/chat", json!({"model": "sim-llama", "messages": [user("hi")]}))
    } else {
        ("/v1/chat/completions", json!({"model": "sim-llama", "stream": true, "messages": [user("hi")]}))
    };
    let started = Instant::now();
    let r = sim.post(path, body).await;
    assert_eq!(r.headers()[REQUEST_HEADER], i.to_string().as_str(), "request index counts from 0");
    let label = r.headers()[FAULTS_HEADER].to_str().unwrap().to_string();
    let announced = match kind {
        Kind::Fail => label == "fail",
        Kind::Stall => label == "stall",
        Kind::Malformed => label == "malformed",
        Kind::Drop => label == "drop",
    };
    assert!(announced || label == "none", "only the configured fault: {label}");
    let status = r.status().as_u16();
    let observed = match kind {
        Kind::Fail => {
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            let failed = status == 429;
            if failed {
                assert_eq!(retry.as_deref(), Some("1"), "429 carries Retry-After");
                let body: Value = r.json().await.unwrap();
                assert!(body["error"].is_object() || body["error"].is_string(), "{body}");
            } else {
                assert_eq!(status, 200);
                r.text().await.unwrap();
            }
            failed
        }
        Kind::Stall => {
            r.text().await.unwrap();
            started.elapsed() >= stall
        }
        Kind::Malformed => {
            let text = r.text().await.unwrap();
            text.lines()
                .map(|l| l.strip_prefix("data: ").unwrap_or(l))
                .filter(|l| !l.is_empty() && *l != "[DONE]")
                .any(|l| serde_json::from_str::<Value>(l).is_err())
        }
        Kind::Drop => {
            assert_eq!(status, 200, "the drop happens mid-stream, after the headers");
            r.bytes().await.is_err()
        }
    };
    Seen { announced, observed }
}

/// Runs `REQUESTS` requests against a fresh server; returns which ones were announced.
async fn run(kind: Kind, rate: f64, seed: u64, requests: usize) -> Vec<bool> {
    let mut f = faults(kind, rate, seed);
    f.fail_status = FailStatus::TooManyRequests;
    let stall = f.stall;
    let sim = Sim::start(SimConfig { faults: f, ..config(6) }).await;
    let mut announced = Vec::with_capacity(requests);
    for i in 0..requests {
        let seen = one(&sim, kind, i, stall).await;
        if kind == Kind::Stall {
            // A stall only has a lower bound: an unannounced request may be slow on a busy machine.
            assert!(!seen.announced || seen.observed, "request {i}: announced stall not observed");
        } else {
            assert_eq!(seen.announced, seen.observed, "request {i}: header and effect agree for {kind:?}");
        }
        announced.push(seen.announced);
    }
    sim.stop().await;
    announced
}

async fn check_rates(kind: Kind) {
    assert!(run(kind, 0.0, 1, 20).await.iter().all(|a| !a), "{kind:?} at rate 0 never happens");
    assert!(run(kind, 1.0, 1, 20).await.iter().all(|a| *a), "{kind:?} at rate 1 always happens");
    let half = run(kind, 0.5, 42, REQUESTS).await;
    let hits = half.iter().filter(|a| **a).count();
    assert!((70..=130).contains(&hits), "{kind:?} at rate 0.5: {hits} of {REQUESTS}");
    assert_eq!(half, run(kind, 0.5, 42, REQUESTS).await, "{kind:?}: the same seed gives the same requests");
    assert_ne!(half, run(kind, 0.5, 43, REQUESTS).await, "{kind:?}: another seed gives other requests");
}

/// Injected failures answer 429 with `Retry-After` (and an API-style error body) at the
/// configured rate, deterministically per seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_happen_at_the_configured_rate() {
    check_rates(Kind::Fail).await;
}

/// Stalls delay the answer by at least the stall duration at the configured rate,
/// deterministically per seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalls_happen_at_the_configured_rate() {
    check_rates(Kind::Stall).await;
}

/// Malformed chunks (a line that is not JSON) appear at the configured rate,
/// deterministically per seed, in both SSE and NDJSON streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunks_happen_at_the_configured_rate() {
    check_rates(Kind::Malformed).await;
}

/// Dropped connections (the body ends in an error after the headers) happen at the
/// configured rate, deterministically per seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_happen_at_the_configured_rate() {
    check_rates(Kind::Drop).await;
}

/// A 500 failure has no `Retry-After`; in Ollama style the body is `{"error": "..."}`.
#[tokio::test]
async fn a_500_failure_has_no_retry_after() {
    let f = Faults { fail_rate: Rate::ALWAYS, ..Faults::default() };
    let sim = Sim::start(SimConfig { faults: f, ..config(3) }).await;
    let r = sim.post("/api/generate", json!({"model": "sim-llama", "prompt": "x"})).await;
    assert_eq!(r.status(), 500);
    assert!(r.headers().get("retry-after").is_none());
    assert!(r.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("simulated"));
    let r = sim.post("/v1/completions", json!({"model": "sim-llama", "prompt": "x"})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["type"], "server_error");
    sim.stop().await;
}

/// Non-streaming answers suffer the same faults: a stall delays the body, a malformed
/// fault truncates it, a drop cuts the connection after the headers.
#[tokio::test]
async fn non_streaming_answers_suffer_faults_too() {
    let all = Faults {
        stall_rate: Rate::ALWAYS,
        stall: Duration::from_millis(40),
        malformed_rate: Rate::ALWAYS,
        ..Faults::default()
    };
    let sim = Sim::start(SimConfig { faults: all, ..config(3) }).await;
    let started = Instant::now();
    let r = sim.post("/v1/chat/completions", json!({"model": "sim-llama", "messages": [user("x")]})).await;
    assert_eq!(r.headers()[FAULTS_HEADER], "stall,malformed");
    assert!(serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err());
    assert!(started.elapsed() >= Duration::from_millis(40));
    sim.stop().await;

    let sim =
        Sim::start(SimConfig { faults: Faults { drop_rate: Rate::ALWAYS, ..Faults::default() }, ..config(3) }).await;
    let r = sim.post("/api/chat", json!({"model": "sim-llama", "stream": false, "messages": [user("x")]})).await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err());
    sim.stop().await;
}

/// Warm-up requests, model lists and unknown models are never faulted and do not use up
/// request indices, so the fault sequence depends only on generation requests.
#[tokio::test]
async fn only_generation_requests_draw_faults() {
    let f = Faults { fail_rate: Rate::ALWAYS, ..Faults::default() };
    let sim = Sim::start(SimConfig { faults: f, ..config(3) }).await;
    assert_eq!(sim.post("/api/generate", json!({"model": "sim-llama"})).await.status(), 200);
    assert_eq!(sim.get("/v1/models").await.status(), 200);
    assert_eq!(sim.post("/api/chat", json!({"model": "x", "messages": [user("x")]})).await.status(), 404);
    let r = sim.post("/api/generate", json!({"model": "sim-llama", "prompt": "x"})).await;
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()[REQUEST_HEADER], "0");
    sim.stop().await;
}
