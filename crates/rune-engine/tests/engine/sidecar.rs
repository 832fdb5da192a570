//! The HTTP sidecar submit-and-poll protocol against a fake sidecar.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rune_engine::agent::{agent_by_name, AgentConfig, AgentError, AgentEvent, AgentQuestion, HttpDriverConfig};
use rune_engine::backend::BackendKind;
use serde_json::{json, Value};

use crate::support::{Events, TestServer};

/// How the fake sidecar's job ends.
#[derive(Clone, Copy)]
enum Outcome {
    Succeed,
    Fail,
    NeverFinish,
    Unauthorized,
    NoJobId,
}

struct Sidecar {
    outcome: Outcome,
    polls: AtomicU32,
}

async fn submit(State(s): State<Arc<Sidecar>>, headers: HeaderMap) -> Response {
    match s.outcome {
        Outcome::Unauthorized => (StatusCode::UNAUTHORIZED, Json(json!({"error": "bad token"}))).into_response(),
        Outcome::NoJobId => Json(json!({"accepted": true})).into_response(),
        _ => {
            assert_eq!(headers["authorization"], "Bearer side-token");
            assert_eq!(headers["x-tenant-id"], "team-a");
            (StatusCode::ACCEPTED, Json(json!({"job_id": "job-1"}))).into_response()
        }
    }
}

async fn poll(State(s): State<Arc<Sidecar>>, Path(id): Path<String>) -> Json<Value> {
    assert_eq!(id, "job-1");
    let n = s.polls.fetch_add(1, Ordering::SeqCst);
    Json(match (s.outcome, n) {
        (_, 0) => json!({"status": "queued"}),
        (Outcome::NeverFinish, _) | (_, 1) => json!({"status": "running"}),
        (Outcome::Fail, _) => json!({"status": "failed", "error": "kubeconfig not readable"}),
        _ => json!({"status": "succeeded", "result": {
            "answer": "web-0 is OOMKilled",
            "usage": {"prompt_tokens": 100, "completion_tokens": 20},
            "artifacts": [{"name": "trace.json", "kind": "report", "content": "{}"}]
        }}),
    })
}

async fn sidecar(outcome: Outcome) -> (TestServer, Arc<Sidecar>) {
    let state = Arc::new(Sidecar { outcome, polls: AtomicU32::new(0) });
    let router = Router::new()
        .route("/v1/actions/ask", post(submit))
        .route("/v1/jobs/{id}", get(poll))
        .with_state(state.clone());
    (TestServer::start(router).await, state)
}

fn config(url: &str) -> AgentConfig {
    AgentConfig {
        http: HttpDriverConfig {
            url: Some(format!("{url}/")),
            token: Some("side-token".into()),
            tenant: Some("team-a".into()),
            poll_interval: Duration::from_millis(20),
        },
        ..AgentConfig::default()
    }
}

fn question() -> AgentQuestion {
    AgentQuestion {
        question: "Why is web-0 restarting?".into(),
        context: vec![],
        model: "llama3.1:8b".into(),
        backend_url: Some("http://ollama:11434".into()),
        backend_type: BackendKind::Ollama,
        kubeconfig: None,
    }
}

/// Submit with `{"params": …}` and the auth headers, poll through queued and running,
/// then take answer, usage and artifacts from the succeeded job.
#[tokio::test]
async fn sidecar_submit_and_poll_until_succeeded() {
    let (server, state) = sidecar(Outcome::Succeed).await;
    let agent = agent_by_name("http", &config(&server.url)).unwrap();
    let events = Events::default();
    let (ctx, _) = events.ctx(Duration::from_secs(30));
    let a = agent.ask(&question(), &ctx).await.unwrap();
    assert_eq!(a.text, "web-0 is OOMKilled");
    assert_eq!(a.usage.completion_tokens, Some(20));
    assert_eq!(a.artifacts[0].name, "trace.json");
    assert_eq!(state.polls.load(Ordering::SeqCst), 3);
    let submitted = &server.requests_to("/v1/actions/ask")[0];
    assert_eq!(submitted.body["params"]["question"], "Why is web-0 restarting?");
    assert_eq!(submitted.body["params"]["backend_type"], "ollama");
    let progress: Vec<String> = events
        .all()
        .into_iter()
        .filter_map(|e| match e {
            AgentEvent::Progress { message } => Some(message),
            _ => None,
        })
        .collect();
    assert!(progress.iter().any(|m| m == "job job-1 is running"), "{progress:?}");
}

/// A failed job is the driver's error, with its message.
#[tokio::test]
async fn sidecar_failed_job_reports_its_error() {
    let (server, _) = sidecar(Outcome::Fail).await;
    let agent = agent_by_name("http", &config(&server.url)).unwrap();
    let (ctx, _) = Events::default().ctx(Duration::from_secs(30));
    let e = agent.ask(&question(), &ctx).await.unwrap_err();
    assert!(matches!(&e, AgentError::Driver { message, .. } if message == "kubeconfig not readable"), "{e:?}");
}

/// A job that never finishes ends at the call's timeout.
#[tokio::test]
async fn sidecar_job_that_never_finishes_times_out() {
    let (server, _) = sidecar(Outcome::NeverFinish).await;
    let agent = agent_by_name("http", &config(&server.url)).unwrap();
    let (ctx, _) = Events::default().ctx(Duration::from_millis(300));
    let e = agent.ask(&question(), &ctx).await.unwrap_err();
    assert!(matches!(e, AgentError::Timeout { .. }), "{e:?}");
}

/// A rejected token says which variables to set; a submit answer without `job_id` is named.
#[tokio::test]
async fn sidecar_auth_and_shape_errors_are_explained() {
    let (server, _) = sidecar(Outcome::Unauthorized).await;
    let agent = agent_by_name("http", &config(&server.url)).unwrap();
    let (ctx, _) = Events::default().ctx(Duration::from_secs(30));
    let e = agent.ask(&question(), &ctx).await.unwrap_err().to_string();
    assert!(e.contains("HTTP 401: bad token") && e.contains("RUNE_HTTP_DRIVER_TOKEN"), "{e}");
    let (server, _) = sidecar(Outcome::NoJobId).await;
    let agent = agent_by_name("http", &config(&server.url)).unwrap();
    let e = agent.ask(&question(), &ctx).await.unwrap_err().to_string();
    assert!(e.contains("lacks a `job_id`"), "{e}");
}

/// A bad sidecar URL is refused at construction, naming the variable.
#[test]
fn sidecar_url_is_validated() {
    let mut c = AgentConfig::default();
    c.http.url = Some("sidecar:8080".into());
    let e = agent_by_name("http", &c).err().unwrap().to_string();
    assert!(e.starts_with("RUNE_HTTP_DRIVER_URL=`sidecar:8080` is invalid"), "{e}");
}
