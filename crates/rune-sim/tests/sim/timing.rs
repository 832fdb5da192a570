//! Timing: the first chunk arrives no earlier than TTFT after the request, chunk `i` no
//! earlier than `TTFT + i * ITL`, and not absurdly later. Only lower bounds are exact on a
//! shared, noisy machine; upper bounds use generous margins.

use crate::harness::{config, user, Sim};
use rune_sim::SimConfig;
use serde_json::json;
use std::time::{Duration, Instant};

/// The margin for upper bounds: a loaded CI machine can pause a process for a while.
const MARGIN: Duration = Duration::from_secs(2);

/// Arrival time (since the request was sent) of each content event, parsing SSE events as
/// the bytes arrive.
async fn event_arrivals(sim: &Sim, path: &str, body: serde_json::Value) -> Vec<Duration> {
    let sent = Instant::now();
    let mut r = sim.post(path, body).await;
    let mut arrivals = Vec::new();
    let mut pending = String::new();
    while let Some(chunk) = r.chunk().await.unwrap() {
        let at = sent.elapsed();
        pending.push_str(std::str::from_utf8(&chunk).unwrap());
        let sep = if path.starts_with("/v1") { "\n\n" } else { "\n" };
        while let Some(end) = pending.find(sep) {
            let event: String = pending.drain(..end + sep.len()).collect();
            let data = event.trim().trim_start_matches("data: ");
            if data == "[DONE]" {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(data).unwrap();
            let content = v["choices"][0]["delta"]["content"]
                .as_str()
                .or(v["message"]["content"].as_str())
                .or(v["response"].as_str());
            if content.is_some_and(|c| !c.is_empty()) {
                arrivals.push(at);
            }
        }
    }
    arrivals
}

fn check_schedule(arrivals: &[Duration], ttft: Duration, itl: Duration, n: usize) {
    assert_eq!(arrivals.len(), n);
    assert!(arrivals[0] >= ttft, "first chunk at {:?}, before TTFT", arrivals[0]);
    assert!(arrivals[0] < ttft + MARGIN, "first chunk at {:?}", arrivals[0]);
    for (i, at) in arrivals.iter().enumerate() {
        let due = ttft + itl * i as u32;
        assert!(*at >= due, "chunk {i} at {at:?}, due at {due:?}: {arrivals:?}");
    }
    let last_due = ttft + itl * (n as u32 - 1);
    assert!(arrivals[n - 1] < last_due + MARGIN, "last chunk at {:?}", arrivals[n - 1]);
}

/// With TTFT 50 ms and ITL 10 ms, the client sees the first token at ≥ 50 ms (and well
/// under 50 ms + margin), and token `i` at ≥ 50 + 10·i ms — the schedule's absolute
/// deadlines, which imply the gaps average at least the ITL — on both APIs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_chunk_after_ttft_then_one_chunk_per_itl() {
    let (ttft, itl) = (Duration::from_millis(50), Duration::from_millis(10));
    let sim = Sim::start(SimConfig { ttft, itl, ..config(12) }).await;
    let openai = event_arrivals(
        &sim,
        "/v1/chat/completions",
        json!({"model": "sim-llama", "stream": true, "messages": [user("x")]}),
    )
    .await;
    check_schedule(&openai, ttft, itl, 12);
    let ollama = event_arrivals(&sim, "/api/generate", json!({"model": "sim-llama", "prompt": "x"})).await;
    check_schedule(&ollama, ttft, itl, 12);
    sim.stop().await;
}

/// A non-streaming answer arrives when its last token would have: no earlier than
/// `TTFT + (n-1)·ITL`.
#[tokio::test]
async fn non_streaming_answers_arrive_when_the_last_token_is_due() {
    let (ttft, itl) = (Duration::from_millis(30), Duration::from_millis(5));
    let sim = Sim::start(SimConfig { ttft, itl, ..config(9) }).await;
    let sent = Instant::now();
    let r = sim.post("/v1/chat/completions", json!({"model": "sim-llama", "messages": [user("x")]})).await;
    r.bytes().await.unwrap();
    let took = sent.elapsed();
    assert!(took >= ttft + itl * 8 && took < ttft + itl * 8 + MARGIN, "{took:?}");
    sim.stop().await;
}

/// With zero TTFT and ITL the simulator answers many requests quickly (loose bound: it
/// is used to measure the maximum request rate of load generators).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_latency_answers_are_fast() {
    let sim = Sim::start(config(64)).await;
    let body = json!({"model": "sim-llama", "stream": true, "messages": [user("x")]});
    let started = Instant::now();
    for _ in 0..300 {
        let r = sim.post("/v1/chat/completions", body.clone()).await;
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(15), "300 requests took {:?}", started.elapsed());
    sim.stop().await;
}

/// Shutdown ends a stream that is stalled far in the future instead of waiting for it.
#[tokio::test]
async fn shutdown_ends_open_streams() {
    let sim = Sim::start(SimConfig { ttft: Duration::from_secs(3600), ..config(3) }).await;
    let mut r = sim.post("/api/chat", json!({"model": "sim-llama", "messages": [user("x")]})).await;
    let reader = tokio::spawn(async move { r.chunk().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    sim.stop().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let read = tokio::time::timeout(Duration::from_secs(10), reader).await.unwrap().unwrap();
    assert!(read.is_err() || read.unwrap().is_none(), "the stream ends without content");
}
