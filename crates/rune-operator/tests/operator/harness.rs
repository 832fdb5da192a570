//! A real RUNE API server (rune_api::serve over a temp SQLite file) and helpers shared by
//! the operator's integration tests.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use rune_api::runner::{BuiltinRunner, JobContext, JobFailure, JobRunner};
use rune_core::{JobKind, JobRecord, Timestamp};
use rune_operator::clock::ManualClock;
use rune_operator::crd::{RuneBenchmark, RuneBenchmarkStatus};
use rune_operator::metrics::Metrics;
use rune_operator::reconcile::{reconcile, Context};
use rune_operator::testing::FakeKube;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub const TOKEN: &str = "alpha-token-0123456789abcdef0123456789";
pub const NS: &str = "bench";

/// Agent jobs behave by question: `ok` succeeds, `fail` fails, `slow` runs until cancelled.
pub struct TestRunner;

#[async_trait::async_trait]
impl JobRunner for TestRunner {
    fn supports(&self, kind: JobKind) -> bool {
        matches!(kind, JobKind::CostEstimate | JobKind::AgenticAgent)
    }

    async fn run(&self, job: &JobRecord, ctx: JobContext) -> Result<Value, JobFailure> {
        if job.kind != JobKind::AgenticAgent {
            return BuiltinRunner.run(job, ctx).await;
        }
        let request: Value = serde_json::from_str(&job.request_json).unwrap_or(Value::Null);
        match request["question"].as_str().unwrap_or("") {
            "fail" => Err(JobFailure("agent failed on purpose".into())),
            "slow" => {
                tokio::select! {
                    _ = ctx.cancel.cancelled() => Err(JobFailure("cancelled".into())),
                    _ = tokio::time::sleep(Duration::from_secs(600)) => Ok(json!({"answer": "late"})),
                }
            }
            _ => Ok(json!({"answer": "ok", "prompt_tokens": 10, "completion_tokens": 5})),
        }
    }
}

pub struct RuneApi {
    pub base: String,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl RuneApi {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener).await
    }

    pub async fn start_on(listener: tokio::net::TcpListener) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_url = format!("sqlite://{}/jobs.db", dir.path().display());
        let store = rune_store::open(&db_url, &Default::default()).await.unwrap();
        let env: HashMap<&str, String> = [
            ("RUNE_API_TOKENS", format!("alpha:{TOKEN}")),
            ("RUNE_SCHEDULER_TICK_SECONDS", "0.1".into()),
            ("RUNE_RATE_LIMIT_RPS", "0".into()),
            ("RUNE_SHUTDOWN_GRACE_SECONDS", "1".into()),
        ]
        .into_iter()
        .collect();
        let addr = listener.local_addr().unwrap();
        let config = rune_api::ServerConfig::from_env(addr, false, |k| env.get(k).cloned()).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            rune_api::serve(listener, config, store, Arc::new(TestRunner), async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { base: format!("http://{addr}"), _dir: dir, stop: Some(stop), handle: Some(handle) }
    }

    pub fn client(&self) -> rune_client::RuneClient {
        rune_client::RuneClient::new(rune_client::ClientConfig {
            base_url: self.base.clone(),
            token: Some(TOKEN.into()),
            tenant: "alpha".into(),
            ..Default::default()
        })
        .unwrap()
    }

    /// Every job of tenant alpha, oldest first.
    pub async fn jobs(&self) -> Vec<rune_core::api::JobView> {
        let list = self
            .client()
            .list_jobs(&rune_client::ListJobs { order: Some("asc".into()), limit: Some(200), ..Default::default() })
            .await
            .unwrap();
        list.jobs
    }

    pub async fn wait_terminal(&self, id: &str) -> rune_core::api::JobView {
        self.client().wait_for_job(id, Duration::from_millis(50), Duration::from_secs(30)).await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

/// A port nothing listens on (bound, then released).
pub async fn free_addr() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// The token Secret `rune-token` in [`NS`].
pub async fn create_token_secret(client: &kube::Client) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "rune-token", "namespace": NS},
        "data": {"token": base64_encode(TOKEN.as_bytes())}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();
}

/// [`TOKEN`] as Secret data.
pub fn rune_token_b64() -> String {
    base64_encode(TOKEN.as_bytes())
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A spec for an agent benchmark against `api`, with `extra` merged in.
pub fn spec(api: &str, question: &str, extra: Value) -> Value {
    let mut s = json!({
        "apiBaseUrl": api, "apiTokenSecretRef": "rune-token", "tenant": "alpha",
        "workflow": "agentic-agent", "agent": "holmes", "question": question, "model": "llama3.1:8b",
        "backendUrl": "http://127.0.0.1:11434", "backendType": "ollama", "backendWarmup": false,
        "pollIntervalSeconds": 2, "backoffSeconds": 1,
    });
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s
}

pub async fn create(client: &kube::Client, name: &str, spec: Value) -> RuneBenchmark {
    let api: Api<RuneBenchmark> = Api::namespaced(client.clone(), NS);
    let obj: RuneBenchmark = serde_json::from_value(json!({
        "apiVersion": "bench.rune.ai/v1alpha1", "kind": "RuneBenchmark",
        "metadata": {"name": name, "namespace": NS}, "spec": spec
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap()
}

pub async fn get(client: &kube::Client, name: &str) -> RuneBenchmark {
    Api::<RuneBenchmark>::namespaced(client.clone(), NS).get(name).await.unwrap()
}

pub fn status(rb: &RuneBenchmark) -> RuneBenchmarkStatus {
    rb.status.clone().unwrap_or_default()
}

pub fn ready(rb: &RuneBenchmark) -> (String, String) {
    let st = status(rb);
    let c = st.conditions.iter().find(|c| c.type_ == "Ready").expect("Ready condition");
    (c.status.clone(), c.reason.clone())
}

/// `kubectl patch runebenchmark NAME --type merge -p PATCH`.
pub async fn kubectl_patch(client: &kube::Client, name: &str, patch: Value) {
    let api: Api<RuneBenchmark> = Api::namespaced(client.clone(), NS);
    api.patch(name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
}

/// 2030-01-01T00:00:00Z plus `minutes`.
pub fn t(minutes: i64) -> Timestamp {
    Timestamp::from_millis(1_893_456_000_000 + minutes * 60_000)
}

pub struct Env {
    pub kube: FakeKube,
    pub client: kube::Client,
    pub api: RuneApi,
    pub clock: Arc<ManualClock>,
    pub ctx: Arc<Context>,
}

impl Env {
    pub async fn start() -> Self {
        let kube = FakeKube::start_with(Some(crate::crd_schema::validator())).await;
        let client = kube.client();
        create_token_secret(&client).await;
        let api = RuneApi::start().await;
        let clock = Arc::new(ManualClock::new(t(7)));
        let ctx = Arc::new(Context::new(kube.operator_client(), clock.clone(), Arc::new(Metrics::new()), "test-0"));
        Self { kube, client, api, clock, ctx }
    }

    /// One reconcile of `name` as the controller would run it.
    pub async fn reconcile(
        &self,
        name: &str,
    ) -> Result<kube::runtime::controller::Action, rune_operator::reconcile::Error> {
        let obj = get(&self.client, name).await;
        reconcile(Arc::new(obj), self.ctx.clone()).await
    }

    /// Reconciles until no run is active (jobs finish in the real API meanwhile).
    pub async fn settle(&self, name: &str) -> RuneBenchmark {
        for _ in 0..600 {
            self.reconcile(name).await.unwrap();
            let rb = get(&self.client, name).await;
            if status(&rb).active_runs.is_empty() {
                return rb;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{name} still has active runs");
    }

    /// Reasons of the events recorded for `name`.
    pub fn event_reasons(&self, name: &str) -> Vec<String> {
        self.kube
            .objects("events.k8s.io", "events", NS)
            .iter()
            .filter(|e| e["regarding"]["name"] == name)
            .map(|e| e["reason"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Every call the operator made is allowed by `rbac::RULES`.
    pub fn assert_rbac_covers_calls(&self) {
        assert_rbac(&self.kube);
    }
}

/// Every request the operator made is allowed by its RBAC rules.
pub fn assert_rbac(kube: &FakeKube) {
    kube.assert_operator_calls_allowed();
}
