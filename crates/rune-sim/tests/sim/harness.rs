//! A simulator on an ephemeral loopback port, a client, and parsers for SSE and NDJSON
//! bodies that fail loudly on anything that is not valid JSON.

use rune_sim::SimConfig;
use serde_json::Value;
use std::time::Duration;

/// How long any one test step may take before the test fails instead of hanging.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running simulator; `stop` shuts it down and checks it stopped cleanly.
pub struct Sim {
    pub base: String,
    pub http: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Sim {
    pub async fn start(config: SimConfig) -> Sim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(rune_sim::serve(listener, config, async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder().timeout(STEP_TIMEOUT).build().unwrap();
        Sim { base, http, stop, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http.post(self.url(path)).json(&body).send().await.unwrap()
    }

    /// POSTs and returns status, headers and the body as text (panics on a body error).
    pub async fn post_text(&self, path: &str, body: Value) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self.post(path, body).await;
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, headers, r.text().await.unwrap())
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(STEP_TIMEOUT, self.task).await.expect("server stops in time").unwrap().unwrap();
    }
}

/// Zero latency, `output_tokens` tokens, no faults.
pub fn config(output_tokens: u32) -> SimConfig {
    SimConfig { output_tokens, ..SimConfig::default() }
}

/// The JSON objects of an SSE body, which must end with `data: [DONE]`.
pub fn sse_events(body: &str) -> Vec<Value> {
    assert!(body.ends_with("data: [DONE]\n\n"), "SSE body must end with [DONE]: {body:?}");
    body.split("\n\n")
        .filter(|e| !e.is_empty() && *e != "data: [DONE]")
        .map(|e| {
            let data = e.strip_prefix("data: ").unwrap_or_else(|| panic!("not an SSE data line: {e:?}"));
            serde_json::from_str(data).unwrap_or_else(|err| panic!("invalid JSON in {data:?}: {err}"))
        })
        .collect()
}

/// The JSON objects of an NDJSON body.
pub fn ndjson(body: &str) -> Vec<Value> {
    assert!(body.ends_with('\n'), "NDJSON ends with a newline: {body:?}");
    body.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON line {l:?}: {e}"))).collect()
}

/// Content of OpenAI chat chunks joined.
pub fn chat_content(events: &[Value]) -> String {
    events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect()
}

pub fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

pub fn user(content: &str) -> Value {
    serde_json::json!({ "role": "user", "content": content })
}
