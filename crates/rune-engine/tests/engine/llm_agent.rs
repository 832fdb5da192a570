//! The built-in `llm` agent against the fake model server.

use std::time::Duration;

use rune_engine::agent::{agent_by_name, AgentConfig, AgentError, AgentQuestion, ContextDoc, SRE_SYSTEM_PROMPT};
use rune_engine::backend::{BackendKind, BackendOptions};

use crate::support::{Events, FakeLlm};

fn question(url: &str, kind: BackendKind, context: Vec<ContextDoc>) -> AgentQuestion {
    AgentQuestion {
        question: "Why is web-0 restarting?".into(),
        context,
        model: "llama3.1:8b".into(),
        backend_url: Some(url.into()),
        backend_type: kind,
        kubeconfig: None,
    }
}

fn config() -> AgentConfig {
    AgentConfig {
        backend: BackendOptions { connect_attempts: 1, ..BackendOptions::default() },
        ..AgentConfig::default()
    }
}

/// Through Ollama: the model gets the SRE system prompt and the evidence as labelled
/// sections; the answer carries the text, token counts, timing and a sized context window.
#[tokio::test]
async fn llm_agent_answers_through_ollama() {
    let fake = FakeLlm { ttft: Duration::from_millis(50), ..FakeLlm::default() }.start().await;
    let agent = agent_by_name("llm", &config()).unwrap();
    let events = Events::default();
    let (ctx, _) = events.ctx(Duration::from_secs(30));
    let docs = vec![ContextDoc {
        name: "kubectl describe pod web-0".into(),
        kind: "kubectl".into(),
        content: "Last State: OOMKilled".into(),
    }];
    let a = agent.ask(&question(&fake.url, BackendKind::Ollama, docs), &ctx).await.unwrap();
    assert_eq!(a.text, "The pod is OOMKilled.");
    assert_eq!(a.usage.prompt_tokens, Some(42));
    assert!(a.timing.unwrap().ttft_ms.unwrap() >= 50.0);
    assert_eq!(a.raw["context_length"], 8192);
    let chat = &fake.requests_to("/api/chat")[0];
    assert_eq!(chat.body["messages"][0]["content"], SRE_SYSTEM_PROMPT);
    let user = chat.body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("## Question\nWhy is web-0 restarting?"), "{user}");
    assert!(user.contains("### kubectl describe pod web-0 (kubectl)"), "{user}");
    assert!(user.contains("Last State: OOMKilled"), "{user}");
    assert_eq!(chat.body["options"]["num_ctx"], 4096);
    assert!(events.warnings().is_empty(), "{:?}", events.warnings());
}

/// Evidence larger than the model's window is shortened to fit, keeping its end, and the
/// agent warns about it.
#[tokio::test]
async fn llm_agent_truncates_context_to_the_window() {
    let fake = FakeLlm { context_length: Some(2048), ..FakeLlm::default() }.start().await;
    let agent = agent_by_name("llm", &config()).unwrap();
    let events = Events::default();
    let (ctx, _) = events.ctx(Duration::from_secs(30));
    let log = format!("{}\nFATAL: out of memory", "noise line\n".repeat(5_000));
    let docs = vec![ContextDoc { name: "logs".into(), kind: "logs".into(), content: log }];
    agent.ask(&question(&fake.url, BackendKind::Ollama, docs), &ctx).await.unwrap();
    let chat = &fake.requests_to("/api/chat")[0];
    let user = chat.body["messages"][1]["content"].as_str().unwrap();
    assert!(user.len() < (2048 - 1024) * 3, "user message is {} bytes", user.len());
    assert!(user.contains("FATAL: out of memory"));
    assert!(user.contains("bytes omitted"));
    assert!(events.warnings().iter().any(|w| w.contains("shortened")), "{:?}", events.warnings());
}

/// Through an OpenAI-compatible server the same agent works with nothing else configured.
#[tokio::test]
async fn llm_agent_answers_through_openai() {
    let fake = FakeLlm::default().start().await;
    let agent = agent_by_name("llm", &config()).unwrap();
    let (ctx, _) = Events::default().ctx(Duration::from_secs(30));
    let a = agent.ask(&question(&format!("{}/v1", fake.url), BackendKind::OpenAi, vec![]), &ctx).await.unwrap();
    assert_eq!(a.text, "The pod is OOMKilled.");
    assert_eq!(a.usage.completion_tokens, Some(4));
}

/// Without a backend URL, or with an unknown model, the error says what to pass.
#[tokio::test]
async fn llm_agent_reports_missing_url_and_unknown_model() {
    let agent = agent_by_name("llm", &config()).unwrap();
    let (ctx, _) = Events::default().ctx(Duration::from_secs(30));
    let mut q = question("", BackendKind::Ollama, vec![]);
    q.backend_url = None;
    let e = agent.ask(&q, &ctx).await.unwrap_err();
    assert!(matches!(e, AgentError::MissingInput { .. }), "{e:?}");
    assert!(e.to_string().contains("--backend-url"), "{e}");
    let fake = FakeLlm::default().start().await;
    let mut q = question(&fake.url, BackendKind::Ollama, vec![]);
    q.model = "nope:1b".into();
    let e = agent.ask(&q, &ctx).await.unwrap_err();
    assert!(e.to_string().contains("ollama pull nope:1b"), "{e}");
}
