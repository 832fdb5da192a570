//! Scripted answers: substring and `re:` patterns, first match wins, cut/pad to the token
//! count, the default answer otherwise.

use crate::harness::{config, Sim};
use rune_sim::{ScriptedAnswer, SimConfig};
use serde_json::{json, Value};

fn scripted(output_tokens: u32) -> SimConfig {
    SimConfig {
        answers: vec![
            ScriptedAnswer::new("CrashLoop", "Pod api-7f9 is in CrashLoopBackOff: the liveness probe fails.").unwrap(),
            ScriptedAnswer::new("re:^What is (un)?healthy", "Deployment web has 0/3 ready replicas.").unwrap(),
            ScriptedAnswer::new("healthy", "Substring fallback answer.").unwrap(),
        ],
        ..config(output_tokens)
    }
}

async fn chat(sim: &Sim, messages: Value) -> String {
    let body: Value = sim
        .post("/v1/chat/completions", json!({"model": "sim-llama", "messages": messages}))
        .await
        .json()
        .await
        .unwrap();
    body["choices"][0]["message"]["content"].as_str().unwrap().to_string()
}

async fn generate(sim: &Sim, prompt: &str) -> String {
    let body: Value = sim
        .post("/api/generate", json!({"model": "sim-llama", "prompt": prompt, "stream": false}))
        .await
        .json()
        .await
        .unwrap();
    body["response"].as_str().unwrap().to_string()
}

/// A substring pattern matches case-insensitively anywhere in the prompt, and the answer
/// is cut to the token count on both APIs.
#[tokio::test]
async fn substring_patterns_match_case_insensitively_and_are_cut() {
    let sim = Sim::start(scripted(4)).await;
    let messages = json!([{"role": "user", "content": "why is my pod in a crashloop?"}]);
    assert_eq!(chat(&sim, messages).await, "Pod api-7f9 is in");
    assert_eq!(generate(&sim, "CRASHLOOP again").await, "Pod api-7f9 is in");
    sim.stop().await;
}

/// A `re:` pattern is a regular expression (case-sensitive here), the first matching
/// entry wins, and a short answer is padded with filler words to the token count.
#[tokio::test]
async fn regex_patterns_match_and_first_match_wins() {
    let sim = Sim::start(scripted(9)).await;
    let answer = generate(&sim, "What is unhealthy in this cluster?").await;
    assert_eq!(answer, "Deployment web has 0/3 ready replicas. lorem ipsum dolor");
    // The regex is anchored and case-sensitive, so this falls through to the substring.
    assert!(generate(&sim, "tell me what is healthy").await.starts_with("Substring fallback answer."));
    sim.stop().await;
}

/// Without a match the default answer (which says it is simulated) is used, padded or cut
/// to exactly the token count.
#[tokio::test]
async fn unmatched_prompts_get_the_default_answer() {
    let sim = Sim::start(scripted(40)).await;
    let answer = generate(&sim, "tell me a story").await;
    assert!(answer.starts_with("This is a simulated answer from rune-sim"), "{answer}");
    assert_eq!(answer.split_whitespace().count(), 40);
    sim.stop().await;
}

/// Chat requests are matched on the last user message only: a pattern in the system
/// prompt or an earlier turn does not select an answer.
#[tokio::test]
async fn chat_matches_the_last_user_message() {
    let sim = Sim::start(scripted(2)).await;
    let messages = json!([
        {"role": "system", "content": "You diagnose CrashLoop errors."},
        {"role": "user", "content": "crashloop?"},
        {"role": "assistant", "content": "Pod api-7f9"},
        {"role": "user", "content": "and now?"},
    ]);
    assert_eq!(chat(&sim, messages).await, "This is");
    sim.stop().await;
}

/// Scripted text keeps its own line breaks and punctuation, and arrives intact through
/// JSON escaping when streamed token by token.
#[tokio::test]
async fn scripted_text_survives_streaming_verbatim() {
    let text = "Root cause:\n\n- \"api\" OOMKilled\t(limit 256Mi)";
    let sim = Sim::start(SimConfig {
        answers: vec![ScriptedAnswer::new("re:.*", text).unwrap()],
        ..config(text.split_whitespace().count() as u32)
    })
    .await;
    let (_, _, body) = sim
        .post_text(
            "/v1/chat/completions",
            json!({"model": "sim-llama", "stream": true, "messages": [crate::harness::user("x")]}),
        )
        .await;
    assert_eq!(crate::harness::chat_content(&crate::harness::sse_events(&body)), text);
    sim.stop().await;
}
