//! Resource providers against a fake Vast.ai API on loopback: offer search, renting,
//! reuse by label, waiting for the instance (bounded, cancellable), the model pull through
//! the derived Ollama URL, and teardown with verification.
//!
//! The fake keeps instances, offers and volumes in memory, serves Ollama's `/api/tags`,
//! `/api/ps` and `/api/pull` on the same port (the "public IP and mapped port" of every
//! instance is the fake itself), records every call, and answers anything else with a
//! 500 that the exact call-list assertions then report.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rune_engine::backend::BackendKind;
use rune_engine::provider::{
    ApiKey, Cleanup, ExistingServer, Lease, Provider, ProviderError, ProviderKind, ProvisionContext, ProvisionSpec,
    TeardownOutcome, VastAiConfig, VastAiProvider,
};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::support::{Recorded, TestServer};

const KEY: &str = "test-key-5f3a";
const MODEL: &str = "llama3.1:8b";
const TEMPLATE: &str = "c166c11f035d3a97871a23bd32ca6aba";
const LABEL: &str = "rune-llama3.1:8b-c166c11f";
/// Bound on every scenario, so a hang fails the test instead of the run.
const SCENARIO_BOUND: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// The fake Vast.ai API (plus the Ollama server "on" every instance)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct FakeInstance {
    label: String,
    /// States reported by successive `GET /instances/{id}/`; the last one repeats.
    boot: VecDeque<Option<String>>,
    state: Option<String>,
    dph_total: f64,
    gpu_name: String,
    destroyed: bool,
    /// How many more `GET /instances/` still list it after it was destroyed.
    linger: u32,
}

#[derive(Debug, Default)]
struct Vast {
    /// The port of the fake itself: every running instance publishes 11434 on it.
    port: u16,
    offers: Vec<Value>,
    instances: BTreeMap<u64, FakeInstance>,
    /// (volume id, instance id it is attached to).
    volumes: Vec<(u64, u64)>,
    next_id: u64,
    /// States a newly rented instance goes through.
    boot: Vec<Option<String>>,
    /// How many listings a destroyed instance lingers in.
    linger_after_destroy: u32,
    /// Models the Ollama server has.
    ollama_models: Vec<String>,
    /// Whether `/api/pull` reports an error instead of pulling.
    pull_fails: bool,
}

type Shared = Arc<Mutex<Vast>>;

impl Vast {
    fn new() -> Self {
        Vast { next_id: 4242, boot: vec![None, Some("loading".into()), Some("running".into())], ..Vast::default() }
    }

    fn offer(mut self, id: u64, dph: f64, gpu_ram: u32, reliability: f64, verified: bool) -> Self {
        self.offers.push(json!({
            "id": id, "dph_total": dph, "gpu_ram": gpu_ram, "reliability": reliability, "verified": verified,
            "rentable": true, "disk_space": 500, "direct_port_count": 8, "gpu_name": format!("GPU-{id}"),
        }));
        self
    }

    fn running_instance(mut self, id: u64, label: &str, dph: f64) -> Self {
        self.instances.insert(
            id,
            FakeInstance {
                label: label.into(),
                boot: VecDeque::new(),
                state: Some("running".into()),
                dph_total: dph,
                gpu_name: "RTX 4090".into(),
                destroyed: false,
                linger: 0,
            },
        );
        self
    }

    fn instance_json(&self, id: u64, i: &FakeInstance) -> Value {
        let running = i.state.as_deref() == Some("running");
        json!({
            "id": id, "label": i.label, "actual_status": i.state, "status_msg": if running { "" } else { "pulling image" },
            "public_ipaddr": "127.0.0.1\n", "dph_total": i.dph_total, "gpu_name": i.gpu_name,
            "ports": if running {
                json!({"22/tcp": [{"HostIp": "0.0.0.0", "HostPort": "40022"}],
                       "11434/tcp": [{"HostIp": "0.0.0.0", "HostPort": self.port.to_string()}]})
            } else { json!({}) },
        })
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {KEY}"))
}

fn denied() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"success": false, "error": "invalid_user_key", "msg": "bad api key"})))
        .into_response()
}

async fn list_instances(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return denied();
    }
    let mut v = s.lock().unwrap();
    let mut out = Vec::new();
    let ids: Vec<u64> = v.instances.keys().copied().collect();
    for id in ids {
        let inst = v.instances.get_mut(&id).unwrap();
        if inst.destroyed {
            if inst.linger == 0 {
                continue;
            }
            inst.linger -= 1;
        }
        let inst = inst.clone();
        out.push(v.instance_json(id, &inst));
    }
    Json(json!({"instances_found": out.len(), "instances": out})).into_response()
}

async fn show_instance(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    if !authorized(&headers) {
        return denied();
    }
    let mut v = s.lock().unwrap();
    let Some(inst) = v.instances.get_mut(&id).filter(|i| !i.destroyed) else {
        return (StatusCode::NOT_FOUND, Json(json!({"success": false, "msg": "no such instance"}))).into_response();
    };
    if let Some(next) = inst.boot.pop_front() {
        inst.state = next;
    }
    let inst = inst.clone();
    Json(json!({"instances": v.instance_json(id, &inst)})).into_response()
}

/// Applies the documented filter operators to the fake's offers, cheapest first.
async fn search_offers(State(s): State<Shared>, headers: HeaderMap, Json(q): Json<Value>) -> Response {
    if !authorized(&headers) {
        return denied();
    }
    let v = s.lock().unwrap();
    let passes = |offer: &Value| {
        q.as_object().unwrap().iter().filter(|(_, f)| f.is_object()).all(|(field, filter)| {
            let have = &offer[field.as_str()];
            filter.as_object().unwrap().iter().all(|(op, want)| match op.as_str() {
                "eq" => have == want,
                "gte" => have.as_f64().unwrap() >= want.as_f64().unwrap(),
                "lte" => have.as_f64().unwrap() <= want.as_f64().unwrap(),
                other => panic!("fake Vast.ai does not know operator {other}"),
            })
        })
    };
    let mut offers: Vec<Value> = v.offers.iter().filter(|o| passes(o)).cloned().collect();
    offers.sort_by(|a, b| a["dph_total"].as_f64().unwrap().total_cmp(&b["dph_total"].as_f64().unwrap()));
    offers.truncate(q["limit"].as_u64().unwrap() as usize);
    Json(json!({"offers": offers})).into_response()
}

async fn rent(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(offer): Path<u64>,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&headers) {
        return denied();
    }
    let mut v = s.lock().unwrap();
    let Some(o) = v.offers.iter().find(|o| o["id"] == json!(offer)).cloned() else {
        return (StatusCode::NOT_FOUND, Json(json!({"success": false, "msg": "no such ask"}))).into_response();
    };
    let id = v.next_id;
    v.next_id += 1;
    let boot: VecDeque<_> = v.boot.iter().cloned().collect();
    v.instances.insert(
        id,
        FakeInstance {
            label: body["label"].as_str().unwrap().into(),
            boot,
            state: None,
            dph_total: o["dph_total"].as_f64().unwrap(),
            gpu_name: o["gpu_name"].as_str().unwrap().into(),
            destroyed: false,
            linger: 0,
        },
    );
    Json(json!({"success": true, "new_contract": id})).into_response()
}

async fn destroy(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    if !authorized(&headers) {
        return denied();
    }
    let mut v = s.lock().unwrap();
    let linger = v.linger_after_destroy;
    match v.instances.get_mut(&id).filter(|i| !i.destroyed) {
        Some(inst) => {
            inst.destroyed = true;
            inst.linger = linger;
            Json(json!({"success": true})).into_response()
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"success": false, "msg": "no such instance"}))).into_response(),
    }
}

async fn list_volumes(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return denied();
    }
    let v = s.lock().unwrap();
    let vols: Vec<Value> = v.volumes.iter().map(|(vid, iid)| json!({"id": vid, "instances": [iid]})).collect();
    Json(json!({"volumes": vols})).into_response()
}

async fn delete_volume(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !authorized(&headers) {
        return denied();
    }
    let mut v = s.lock().unwrap();
    let id = body["id"].as_u64().unwrap();
    v.volumes.retain(|(vid, _)| *vid != id);
    Json(json!({"success": true})).into_response()
}

async fn ollama_tags(State(s): State<Shared>) -> Json<Value> {
    let v = s.lock().unwrap();
    Json(json!({"models": v.ollama_models.iter().map(|m| json!({"name": m, "model": m})).collect::<Vec<_>>()}))
}

async fn ollama_ps() -> Json<Value> {
    Json(json!({"models": []}))
}

async fn ollama_pull(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut v = s.lock().unwrap();
    let lines = if v.pull_fails {
        "{\"status\":\"pulling manifest\"}\n{\"error\":\"write /root/.ollama/models: no space left on device\"}\n"
    } else {
        v.ollama_models.push(body["model"].as_str().unwrap().to_owned());
        "{\"status\":\"pulling manifest\"}\n{\"status\":\"pulling abc\",\"total\":10,\"completed\":5}\n\
                 {\"status\":\"pulling abc\",\"total\":10,\"completed\":10}\n{\"status\":\"success\"}\n"
    };
    Response::builder().header("content-type", "application/x-ndjson").body(Body::from(lines)).unwrap()
}

async fn unexpected(method: Method, uri: Uri) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("fake Vast.ai: unexpected call {method} {uri}")).into_response()
}

/// The fake on a fresh loopback port, with its shared state.
async fn start(vast: Vast) -> (TestServer, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let state: Shared = Arc::new(Mutex::new(Vast { port: listener.local_addr().unwrap().port(), ..vast }));
    let router = Router::new()
        .route("/api/v0/instances/", get(list_instances))
        .route("/api/v0/instances/{id}/", get(show_instance).delete(destroy))
        .route("/api/v0/bundles/", post(search_offers))
        .route("/api/v0/asks/{id}/", put(rent))
        .route("/api/v0/volumes/", get(list_volumes).delete(delete_volume))
        .route("/api/tags", get(ollama_tags))
        .route("/api/ps", get(ollama_ps))
        .route("/api/pull", post(ollama_pull))
        .fallback(unexpected)
        .with_state(state.clone());
    (TestServer::start_on(listener, router), state)
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn config(server: &TestServer) -> VastAiConfig {
    VastAiConfig {
        base_url: format!("{}/api/v0", server.url),
        api_key: Some(ApiKey::new(KEY)),
        request_timeout: Duration::from_secs(5),
        retry_backoff: Duration::from_millis(10),
        poll_interval: Duration::from_millis(10),
        ready_timeout: Duration::from_secs(5),
        verify_interval: Duration::from_millis(10),
        verify_timeout: Duration::from_secs(2),
        ..VastAiConfig::default()
    }
}

fn spec() -> ProvisionSpec {
    ProvisionSpec {
        model: MODEL.into(),
        template_hash: TEMPLATE.into(),
        min_dph: 0.10,
        max_dph: 0.50,
        reliability: 0.99,
        disk_gb: None,
        stop_instance: true,
    }
}

/// A context whose progress lines are collected.
fn ctx(cancel: CancellationToken) -> (ProvisionContext, Arc<Mutex<Vec<String>>>) {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = lines.clone();
    let c = ProvisionContext::new(cancel, Duration::from_secs(15))
        .with_progress(move |l| sink.lock().unwrap().push(l.to_owned()));
    (c, lines)
}

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(SCENARIO_BOUND, f).await.expect("scenario did not finish in time")
}

/// `METHOD path` of every call the fake saw, in order.
fn calls(server: &TestServer) -> Vec<String> {
    server.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

fn call<'a>(reqs: &'a [Recorded], method: &str, path: &str) -> &'a Recorded {
    reqs.iter().find(|r| r.method == method && r.path == path).unwrap_or_else(|| panic!("no {method} {path}"))
}

fn lease(id: u64, stop_instance: bool) -> Lease {
    Lease {
        provider: ProviderKind::VastAi,
        backend_url: "http://127.0.0.1:1".into(),
        contract_id: Some(id.to_string()),
        instance_label: Some(LABEL.into()),
        hourly_usd: Some(0.3),
        reused: false,
        stop_instance,
        model: MODEL.into(),
        gpu_name: None,
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// Happy path: no reusable instance → search (with the model's GPU RAM, reliability and
/// price bounds) → rent the cheapest fitting offer with the template, label, disk, port
/// and onstart → poll until running → Ollama URL = public IP + mapped port → model pulled
/// through it → teardown destroys, verifies it is gone and deletes the attached volume.
/// The API key goes to Vast.ai on every call and never to the instance.
#[tokio::test]
async fn happy_path_rents_cheapest_fit_then_tears_down_and_verifies() {
    let fake = Vast::new()
        .offer(10, 0.05, 24_576, 0.999, true) // below min_dph
        .offer(11, 0.20, 4_096, 0.999, true) // too little GPU RAM
        .offer(12, 0.22, 24_576, 0.95, true) // unreliable
        .offer(13, 0.24, 24_576, 0.999, false) // unverified
        .offer(14, 0.45, 24_576, 0.999, true)
        .offer(15, 0.30, 24_576, 0.995, true) // the one
        .offer(16, 0.80, 81_920, 0.999, true); // above max_dph
    let (server, state) = start(fake).await;
    state.lock().unwrap().volumes = vec![(77, 4242), (78, 9)];
    let provider = VastAiProvider::new(config(&server)).unwrap();
    let (c, progress) = ctx(CancellationToken::new());

    let lease = bounded(provider.provision(&spec(), &c)).await.unwrap();

    assert_eq!(lease.provider, ProviderKind::VastAi);
    assert_eq!(lease.backend_url, server.url);
    assert_eq!(lease.contract_id.as_deref(), Some("4242"));
    assert_eq!(lease.instance_label.as_deref(), Some(LABEL));
    assert_eq!(lease.hourly_usd, Some(0.30));
    assert!(!lease.reused && lease.stop_instance);
    assert_eq!(lease.gpu_name.as_deref(), Some("GPU-15"));
    assert_eq!(
        calls(&server),
        [
            "GET /api/v0/instances/",
            "POST /api/v0/bundles/",
            "PUT /api/v0/asks/15/",
            "GET /api/v0/instances/4242/",
            "GET /api/v0/instances/4242/",
            "GET /api/v0/instances/4242/",
            "GET /api/tags",
            "GET /api/ps",
            "POST /api/pull",
            "GET /api/tags",
            "GET /api/ps",
        ]
    );
    let reqs = server.requests();
    let search = &call(&reqs, "POST", "/api/v0/bundles/").body;
    assert_eq!(search["gpu_ram"], json!({"gte": 8192}));
    assert_eq!(search["reliability"], json!({"gte": 0.99}));
    assert_eq!(search["dph_total"], json!({"gte": 0.10, "lte": 0.50}));
    assert_eq!(search["verified"], json!({"eq": true}));
    assert_eq!(search["rentable"], json!({"eq": true}));
    assert_eq!(search["disk_space"], json!({"gte": 40}));
    assert_eq!(search["order"], json!([["dph_total", "asc"]]));
    let create = &call(&reqs, "PUT", "/api/v0/asks/15/").body;
    assert_eq!(create["template_hash_id"], TEMPLATE);
    assert_eq!(create["label"], LABEL);
    assert_eq!(create["disk"], 40);
    assert_eq!(create["env"]["-p 11434:11434"], "1");
    assert!(create["onstart"].as_str().unwrap().contains("ollama serve"), "{create}");
    assert_eq!(call(&reqs, "POST", "/api/pull").body, json!({"model": MODEL, "stream": true}));
    for r in &reqs {
        let auth = r.headers.get("authorization").map(String::as_str);
        if r.path.starts_with("/api/v0/") {
            assert_eq!(auth, Some(format!("Bearer {KEY}").as_str()), "{} {}", r.method, r.path);
        } else {
            assert_eq!(auth, None, "the Vast.ai key must not reach the instance: {} {}", r.method, r.path);
        }
    }
    let lines = progress.lock().unwrap().join("\n");
    assert!(lines.contains("renting Vast.ai offer 15 (GPU-15, $0.300/h"), "{lines}");
    assert!(lines.contains("pull llama3.1:8b: success"), "{lines}");
    assert!(!lines.contains(KEY), "{lines}");

    let before = server.requests().len();
    let report = bounded(provider.teardown(&lease)).await.unwrap();
    assert_eq!(report.outcome, TeardownOutcome::Destroyed);
    assert!(report.verified);
    assert_eq!(report.verification_checks, 1);
    assert_eq!(report.deleted_volume_ids, vec!["77"]);
    assert!(report.message.contains("4242"), "{}", report.message);
    let teardown_calls: Vec<String> = calls(&server)[before..].to_vec();
    assert_eq!(
        teardown_calls,
        ["GET /api/v0/volumes/", "DELETE /api/v0/instances/4242/", "GET /api/v0/instances/", "DELETE /api/v0/volumes/"]
    );
    assert_eq!(server.requests().last().unwrap().body, json!({"id": 77}));
    let s = state.lock().unwrap();
    assert!(s.instances[&4242].destroyed);
    assert_eq!(s.volumes, vec![(78, 9)]);
}

/// A running instance carrying this spec's label is reused: no search, no rental; the
/// model is already there so nothing is pulled; the lease prices it at the instance's
/// rate; with stop_instance false, teardown leaves it running and calls nothing.
#[tokio::test]
async fn running_instance_with_same_label_is_reused() {
    let fake = Vast::new()
        .offer(15, 0.30, 24_576, 0.995, true)
        .running_instance(300, "someone-else", 0.10)
        .running_instance(555, LABEL, 0.42);
    let (server, state) = start(fake).await;
    state.lock().unwrap().ollama_models = vec![MODEL.into()];
    let provider = VastAiProvider::new(config(&server)).unwrap();
    let (c, _) = ctx(CancellationToken::new());

    let lease = bounded(provider.provision(&ProvisionSpec { stop_instance: false, ..spec() }, &c)).await.unwrap();

    assert!(lease.reused);
    assert_eq!(lease.contract_id.as_deref(), Some("555"));
    assert_eq!(lease.hourly_usd, Some(0.42));
    assert_eq!(lease.backend_url, server.url);
    assert_eq!(calls(&server), ["GET /api/v0/instances/", "GET /api/tags", "GET /api/ps"]);

    let report = bounded(provider.teardown(&lease)).await.unwrap();
    assert_eq!(report.outcome, TeardownOutcome::Kept);
    assert!(report.message.contains("vastai destroy instance 555"), "{}", report.message);
    assert_eq!(calls(&server).len(), 3, "teardown of a kept instance calls nothing");
    assert!(!state.lock().unwrap().instances[&555].destroyed);
}

/// No offer in the price range: a clear error naming the range and the cheapest offer
/// that would otherwise fit (found by a second search without price bounds), and nothing
/// is rented.
#[tokio::test]
async fn no_offer_in_range_is_a_clear_error_and_rents_nothing() {
    let fake = Vast::new().offer(20, 0.80, 24_576, 0.999, true).offer(21, 0.95, 49_152, 0.999, true);
    let (server, state) = start(fake).await;
    let provider = VastAiProvider::new(config(&server)).unwrap();
    let (c, _) = ctx(CancellationToken::new());

    let err = bounded(provider.provision(&spec(), &c)).await.unwrap_err();

    assert!(matches!(err, ProviderError::NoOffer { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("between $0.10/h and $0.50/h"), "{msg}");
    assert!(msg.contains("cheapest matching offer costs $0.800/h (GPU-20, offer 20)"), "{msg}");
    assert!(msg.contains("raise max_dph to at least 0.800"), "{msg}");
    assert_eq!(calls(&server), ["GET /api/v0/instances/", "POST /api/v0/bundles/", "POST /api/v0/bundles/"]);
    let reqs = server.requests();
    assert!(reqs[1].body.get("dph_total").is_some());
    assert!(reqs[2].body.get("dph_total").is_none(), "the second search drops the price bounds");
    assert_eq!(reqs[2].body["limit"], 1);
    assert!(state.lock().unwrap().instances.is_empty());
}

/// An instance that never runs: the wait is bounded by ready_timeout, the error names
/// the instance, the last state and the wait, and the instance is destroyed and verified
/// gone before the error is returned.
#[tokio::test]
async fn instance_never_ready_times_out_and_is_destroyed() {
    let mut fake = Vast::new().offer(15, 0.30, 24_576, 0.995, true);
    fake.boot = vec![None, Some("loading".into())];
    let (server, state) = start(fake).await;
    let provider =
        VastAiProvider::new(VastAiConfig { ready_timeout: Duration::from_millis(300), ..config(&server) }).unwrap();
    let (c, _) = ctx(CancellationToken::new());

    let started = Instant::now();
    let err = bounded(provider.provision(&spec(), &c)).await.unwrap_err();
    let took = started.elapsed();

    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(5), "{took:?}");
    let ProviderError::AfterRent { contract_id, cause, cleanup } = &err else { panic!("{err:?}") };
    assert_eq!(contract_id, "4242");
    assert_eq!(cleanup, &Cleanup::Destroyed);
    let ProviderError::NotReady { state: seen, waited, .. } = cause.as_ref() else { panic!("{cause:?}") };
    assert_eq!(seen, "loading");
    assert!(*waited >= Duration::from_millis(300), "{waited:?}");
    assert_eq!(err.stranded_contract(), None);
    let msg = err.to_string();
    assert!(msg.contains("instance 4242 was not ready after") && msg.contains("`loading`"), "{msg}");
    assert!(msg.ends_with("Vast.ai instance 4242 was destroyed (verified gone)"), "{msg}");
    let seen_calls = calls(&server);
    let polls = seen_calls.iter().filter(|c| *c == "GET /api/v0/instances/4242/").count();
    assert!((2..=40).contains(&polls), "{polls} polls");
    assert_eq!(
        seen_calls[seen_calls.len() - 3..],
        ["GET /api/v0/volumes/", "DELETE /api/v0/instances/4242/", "GET /api/v0/instances/"]
    );
    assert!(state.lock().unwrap().instances[&4242].destroyed);
}

/// Cancelling while waiting for the instance stops the wait promptly, and the rented
/// instance is still destroyed (cleanup ignores the cancellation) before the call returns.
#[tokio::test]
async fn cancel_while_waiting_destroys_the_instance() {
    let mut fake = Vast::new().offer(15, 0.30, 24_576, 0.995, true);
    fake.boot = vec![Some("loading".into())];
    let (server, state) = start(fake).await;
    let provider = Arc::new(
        VastAiProvider::new(VastAiConfig { ready_timeout: Duration::from_secs(60), ..config(&server) }).unwrap(),
    );
    let cancel = CancellationToken::new();
    let (c, _) = ctx(cancel.clone());

    let task = {
        let provider = provider.clone();
        tokio::spawn(async move { provider.provision(&spec(), &c).await })
    };
    bounded(async {
        while server.requests_to("/api/v0/instances/4242/").len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let cancelled_at = Instant::now();
    cancel.cancel();
    let err = bounded(task).await.unwrap().unwrap_err();

    assert!(cancelled_at.elapsed() < Duration::from_secs(5));
    assert!(err.is_cancelled(), "{err:?}");
    assert!(matches!(&err, ProviderError::AfterRent { cleanup: Cleanup::Destroyed, .. }), "{err:?}");
    let seen = calls(&server);
    assert!(seen.iter().any(|c| c == "DELETE /api/v0/instances/4242/"), "{seen:?}");
    assert_eq!(seen.last().unwrap(), "GET /api/v0/instances/");
    assert!(state.lock().unwrap().instances[&4242].destroyed);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(calls(&server).len(), seen.len(), "nothing polls after the call returned");
}

/// A model pull that fails on the fresh instance fails provisioning with the server's
/// reason, and the rented instance is destroyed rather than left billing.
#[tokio::test]
async fn failed_model_pull_destroys_the_rented_instance() {
    let mut fake = Vast::new().offer(15, 0.30, 24_576, 0.995, true);
    fake.pull_fails = true;
    let (server, state) = start(fake).await;
    let provider = VastAiProvider::new(config(&server)).unwrap();
    let (c, _) = ctx(CancellationToken::new());

    let err = bounded(provider.provision(&spec(), &c)).await.unwrap_err();

    assert!(matches!(err.cause(), ProviderError::Model { .. }), "{err:?}");
    assert!(matches!(&err, ProviderError::AfterRent { cleanup: Cleanup::Destroyed, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("no space left on device") && msg.contains(&server.url), "{msg}");
    let seen = calls(&server);
    assert_eq!(
        seen[seen.len() - 4..],
        ["POST /api/pull", "GET /api/v0/volumes/", "DELETE /api/v0/instances/4242/", "GET /api/v0/instances/"]
    );
    assert!(state.lock().unwrap().instances[&4242].destroyed);
}

/// Verification keeps listing instances while Vast.ai still reports the destroyed one,
/// and succeeds once it is absent.
#[tokio::test]
async fn teardown_polls_until_the_instance_is_absent() {
    let mut fake = Vast::new().running_instance(555, LABEL, 0.3);
    fake.linger_after_destroy = 2;
    let (server, state) = start(fake).await;
    let provider = VastAiProvider::new(config(&server)).unwrap();

    let report = bounded(provider.teardown(&lease(555, true))).await.unwrap();

    assert_eq!(report.outcome, TeardownOutcome::Destroyed);
    assert!(report.verified);
    assert_eq!(report.verification_checks, 3);
    assert!(report.deleted_volume_ids.is_empty());
    assert_eq!(
        calls(&server),
        [
            "GET /api/v0/volumes/",
            "DELETE /api/v0/instances/555/",
            "GET /api/v0/instances/",
            "GET /api/v0/instances/",
            "GET /api/v0/instances/",
        ]
    );
    assert!(state.lock().unwrap().instances[&555].destroyed);
}

/// When the instance never disappears, verification gives up after verify_timeout with
/// an error naming the instance and the command to destroy it by hand.
#[tokio::test]
async fn teardown_that_cannot_verify_says_what_to_do_by_hand() {
    let mut fake = Vast::new().running_instance(555, LABEL, 0.3);
    fake.linger_after_destroy = u32::MAX;
    let (server, _state) = start(fake).await;
    let provider =
        VastAiProvider::new(VastAiConfig { verify_timeout: Duration::from_millis(200), ..config(&server) }).unwrap();

    let started = Instant::now();
    let err = bounded(provider.teardown(&lease(555, true))).await.unwrap_err();

    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, ProviderError::TeardownUnverified { .. }), "{err:?}");
    assert_eq!(err.stranded_contract(), Some("555"));
    let msg = err.to_string();
    assert!(msg.contains("still listed with state `running`"), "{msg}");
    assert!(msg.contains("`vastai destroy instance 555`"), "{msg}");
    assert!(calls(&server).iter().filter(|c| *c == "GET /api/v0/instances/").count() >= 2);
}

/// Teardown is idempotent: the second call finds the instance already gone (DELETE
/// answers 404), verifies its absence and succeeds; so does tearing down an id Vast.ai
/// never had.
#[tokio::test]
async fn teardown_of_an_already_gone_instance_is_ok() {
    let (server, _state) = start(Vast::new().running_instance(555, LABEL, 0.3)).await;
    let provider = VastAiProvider::new(config(&server)).unwrap();

    let first = bounded(provider.teardown(&lease(555, true))).await.unwrap();
    let second = bounded(provider.teardown(&lease(555, true))).await.unwrap();
    let never = bounded(provider.teardown_contract("999")).await.unwrap();

    assert_eq!(first.outcome, TeardownOutcome::Destroyed);
    assert_eq!(second.outcome, TeardownOutcome::AlreadyGone);
    assert!(second.verified);
    assert_eq!(never.outcome, TeardownOutcome::AlreadyGone);
    let seen = calls(&server);
    assert_eq!(
        seen[3..],
        [
            "GET /api/v0/volumes/",
            "DELETE /api/v0/instances/555/",
            "GET /api/v0/instances/",
            "GET /api/v0/volumes/",
            "DELETE /api/v0/instances/999/",
            "GET /api/v0/instances/",
        ]
    );
    let e = provider.teardown_contract("55; rm").await.unwrap_err();
    assert!(e.to_string().contains("not a Vast.ai instance id"), "{e}");
}

/// Without VAST_API_KEY the provider is not built, and the error says where to get a key.
#[test]
fn missing_api_key_is_refused_before_any_call() {
    let config = VastAiConfig::from_env(|k| (k == "RUNE_VASTAI_API_URL").then(|| "http://127.0.0.1:9".to_owned()));
    let err = VastAiProvider::new(config).unwrap_err();
    assert!(matches!(err, ProviderError::MissingApiKey { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("VAST_API_KEY is not set") && msg.contains("https://cloud.vast.ai/manage-keys/"), "{msg}");
    let blank = VastAiConfig::from_env(|k| (k == "VAST_API_KEY").then(|| "  ".to_owned()));
    assert!(matches!(VastAiProvider::new(blank), Err(ProviderError::MissingApiKey { .. })));
}

/// A rejected key (401) fails at the first call without retrying, names the variable to
/// fix and never echoes the key.
#[tokio::test]
async fn rejected_api_key_is_an_auth_error() {
    let (server, state) = start(Vast::new().offer(15, 0.30, 24_576, 0.995, true)).await;
    let provider =
        VastAiProvider::new(VastAiConfig { api_key: Some(ApiKey::new("revoked-key-0000")), ..config(&server) })
            .unwrap();
    let (c, _) = ctx(CancellationToken::new());

    let err = bounded(provider.provision(&spec(), &c)).await.unwrap_err();

    assert!(matches!(err, ProviderError::Auth { status: 401, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("HTTP 401") && msg.contains("VAST_API_KEY") && msg.contains("bad api key"), "{msg}");
    assert!(!msg.contains("revoked-key-0000") && !format!("{err:?}").contains("revoked-key-0000"), "{msg}");
    assert_eq!(calls(&server), ["GET /api/v0/instances/"]);
    assert!(state.lock().unwrap().instances.is_empty());
}

/// An existing server: provisioning only normalises the URL (no request), an invalid
/// URL is refused by name, teardown does nothing, and a Vast.ai lease is refused.
#[tokio::test]
async fn existing_server_validates_url_and_tears_down_nothing() {
    let (c, _) = ctx(CancellationToken::new());
    let p = ExistingServer::new("http://gpu-box:11434/", BackendKind::Ollama);
    let lease = p.provision(&spec(), &c).await.unwrap();
    assert_eq!(lease.provider, ProviderKind::Existing);
    assert_eq!(lease.backend_url, "http://gpu-box:11434");
    assert_eq!((lease.contract_id.clone(), lease.hourly_usd), (None, None));
    let report = p.teardown(&lease).await.unwrap();
    assert_eq!(report.outcome, TeardownOutcome::NothingToDo);
    assert!(matches!(p.teardown(&self::lease(1, true)).await, Err(ProviderError::LeaseMismatch { .. })));

    let err = ExistingServer::new("gpu-box:11434", BackendKind::Ollama).provision(&spec(), &c).await.unwrap_err();
    assert!(matches!(err, ProviderError::InvalidBackendUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("http://host:port"), "{err}");
}
