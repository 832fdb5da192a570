//! A fake Kubernetes API server on loopback, for tests only (feature `fake-api-server`):
//! no Kubernetes API server can run in CI, so the operator's tests (and the CLI's) run the
//! real kube-rs client, watcher and controller against this. It serves enough of the REST
//! API: list, get, watch with resourceVersion, create, replace with optimistic
//! concurrency, merge patch, the status subresource (for `runebenchmarks`), delete, and
//! optional schema validation of `RuneBenchmark` writes. Every request is logged in RBAC
//! terms so tests can prove the operator's roles cover what it calls. Test code: it panics
//! on setup failures instead of returning errors.
#![allow(clippy::unwrap_used, missing_docs)]

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Header the test's own client sends, so its requests are not counted as the operator's.
const TEST_HEADER: &str = "x-fake-kube-test-client";

/// One logged request, mapped onto RBAC terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Made by the test's own client ([`FakeKube::client`]), not the operator's.
    pub by_test: bool,
    pub group: String,
    pub resource: String,
    pub verb: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Key {
    group: String,
    version: String,
    resource: String,
    namespace: String,
    name: String,
}

#[derive(Clone)]
struct Change {
    rv: u64,
    key: Key,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    log: Vec<Change>,
    calls: Vec<Call>,
    uid: u64,
}

pub type Validator = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    tx: broadcast::Sender<Change>,
    validator: Option<Validator>,
}

pub struct FakeKube {
    pub addr: SocketAddr,
    shared: Shared,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

struct Target {
    group: String,
    version: String,
    namespace: Option<String>,
    resource: String,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match *segs.first()? {
        "api" => (String::new(), segs.get(1)?.to_string(), &segs[2..]),
        "apis" => (segs.get(1)?.to_string(), segs.get(2)?.to_string(), &segs[3..]),
        _ => return None,
    };
    let (namespace, rest) = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    Some(Target {
        group,
        version,
        namespace,
        resource: rest.first()?.to_string(),
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
    })
}

fn status_error(code: u16, reason: &str, message: String) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn query_map(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3D", "=").replace("%2F", "/").replace("%2C", ",")))
        .collect()
}

fn matches(key: &Key, t: &Target, field_name: Option<&str>) -> bool {
    key.group == t.group
        && key.resource == t.resource
        && t.namespace.as_ref().is_none_or(|ns| *ns == key.namespace)
        && field_name.is_none_or(|n| n == key.name)
}

impl FakeKube {
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A server that validates RuneBenchmark writes with `validator` (the CRD schema).
    pub async fn start_with(validator: Option<Validator>) -> Self {
        let (tx, _) = broadcast::channel(4096);
        let shared = Shared { inner: Arc::default(), tx, validator };
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, shared, handle }
    }

    /// The test's own kube client (default namespace `default`): its requests are marked
    /// so RBAC checks can tell them from the operator's.
    pub fn client(&self) -> kube::Client {
        self.make_client(true)
    }

    /// A client for the operator under test (its requests count for RBAC checks).
    pub fn operator_client(&self) -> kube::Client {
        self.make_client(false)
    }

    /// A kubeconfig for this server, for running the `rune` binary against it.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\nusers:\n- name: operator\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: operator\n    namespace: default\ncurrent-context: fake\n",
            self.addr
        )
    }

    fn make_client(&self, by_test: bool) -> kube::Client {
        let mut config = kube::Config::new(format!("http://{}", self.addr).parse().unwrap());
        config.default_namespace = "default".into();
        config.read_timeout = Some(std::time::Duration::from_secs(300));
        if by_test {
            config.headers.push((TEST_HEADER.parse().unwrap(), "1".parse().unwrap()));
        }
        kube::Client::try_from(config).unwrap()
    }

    /// Every operator request is allowed by [`crate::rbac::RULES`]; returns them.
    pub fn assert_operator_calls_allowed(&self) -> Vec<Call> {
        let calls: Vec<Call> = self.calls().into_iter().filter(|c| !c.by_test).collect();
        assert!(!calls.is_empty(), "the operator made no request");
        for c in &calls {
            assert!(
                crate::rbac::allows(&c.group, &c.resource, &c.verb),
                "the operator called {} on {}/{} but rbac::RULES does not allow it",
                c.verb,
                c.group,
                c.resource
            );
        }
        calls
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.inner.lock().unwrap().calls.clone()
    }

    /// The stored object, as JSON.
    pub fn object(&self, group: &str, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let inner = self.shared.inner.lock().unwrap();
        inner
            .objects
            .iter()
            .find(|(k, _)| k.group == group && k.resource == resource && k.namespace == ns && k.name == name)
            .map(|(_, v)| v.clone())
    }

    /// All stored objects of a resource in a namespace.
    pub fn objects(&self, group: &str, resource: &str, ns: &str) -> Vec<Value> {
        let inner = self.shared.inner.lock().unwrap();
        inner
            .objects
            .iter()
            .filter(|(k, _)| k.group == group && k.resource == resource && k.namespace == ns)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn record(inner: &mut Inner, tx: &broadcast::Sender<Change>, key: Key, kind: &'static str, object: Value) {
    let change = Change { rv: inner.rv, key, kind, object };
    inner.log.push(change.clone());
    let _ = tx.send(change);
}

async fn handle(State(s): State<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = query_map(req.uri().query());
    let by_test = req.headers().contains_key(TEST_HEADER);
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = axum::body::to_bytes(req.into_body(), 16 << 20).await.unwrap_or_default();
    let Some(t) = parse_path(&path) else { return status_error(404, "NotFound", format!("no route {path}")) };
    let watch = query.get("watch").is_some_and(|v| v == "true" || v == "1");
    let verb = match (&method, t.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "unknown",
    };
    let resource = match &t.sub {
        Some(sub) => format!("{}/{sub}", t.resource),
        None => t.resource.clone(),
    };
    let field_name = query.get("fieldSelector").and_then(|f| f.strip_prefix("metadata.name=")).map(str::to_string);
    let mut inner = s.inner.lock().unwrap();
    inner.calls.push(Call {
        by_test,
        group: t.group.clone(),
        resource,
        verb: verb.into(),
        namespace: t.namespace.clone(),
        name: t.name.clone(),
    });
    let ns = t.namespace.clone().unwrap_or_default();
    match (verb, &t.name) {
        ("list", _) => {
            let items: Vec<Value> = inner
                .objects
                .iter()
                .filter(|(k, _)| matches(k, &t, field_name.as_deref()))
                .map(|(_, v)| v.clone())
                .collect();
            let gv = if t.group.is_empty() { t.version.clone() } else { format!("{}/{}", t.group, t.version) };
            axum::Json(json!({"apiVersion": gv, "kind": "List", "metadata": {"resourceVersion": inner.rv.to_string()}, "items": items}))
                .into_response()
        }
        ("watch", _) => {
            let since: u64 = query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
            let replay: Vec<Change> = inner
                .log
                .iter()
                .filter(|c| c.rv > since && matches(&c.key, &t, field_name.as_deref()))
                .cloned()
                .collect();
            let rx = s.tx.subscribe();
            drop(inner);
            let live = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |c| {
                let keep = c.ok().filter(|c| c.rv > since && matches(&c.key, &t, field_name.as_deref()));
                async move { keep }
            });
            let stream = futures_util::stream::iter(replay).chain(live).map(|c| {
                let line = format!("{}\n", json!({"type": c.kind, "object": c.object}));
                Ok::<_, std::convert::Infallible>(Bytes::from(line))
            });
            Response::builder().header("content-type", "application/json").body(Body::from_stream(stream)).unwrap()
        }
        ("get", Some(name)) => {
            let key = Key {
                group: t.group.clone(),
                version: t.version.clone(),
                resource: t.resource.clone(),
                namespace: ns,
                name: name.clone(),
            };
            match inner.objects.get(&key) {
                Some(v) => axum::Json(v.clone()).into_response(),
                None => status_error(404, "NotFound", format!("{} \"{name}\" not found", t.resource)),
            }
        }
        ("create", _) => {
            let mut obj: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return status_error(400, "BadRequest", e.to_string()),
            };
            let name = obj.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| {
                let prefix =
                    obj.pointer("/metadata/generateName").and_then(Value::as_str).unwrap_or("obj-").to_string();
                format!("{prefix}{}", inner.uid + 1)
            });
            let key = Key {
                group: t.group.clone(),
                version: t.version.clone(),
                resource: t.resource.clone(),
                namespace: ns.clone(),
                name: name.clone(),
            };
            if inner.objects.contains_key(&key) {
                return status_error(409, "AlreadyExists", format!("{} \"{name}\" already exists", t.resource));
            }
            if let (Some(v), "runebenchmarks") = (&s.validator, t.resource.as_str()) {
                if let Err(e) = v(&obj) {
                    return status_error(422, "Invalid", e);
                }
            }
            inner.rv += 1;
            inner.uid += 1;
            let (rv, uid) = (inner.rv, inner.uid);
            let meta = obj["metadata"].as_object_mut().unwrap();
            meta.insert("name".into(), json!(name));
            if !ns.is_empty() {
                meta.insert("namespace".into(), json!(ns));
            }
            meta.insert("uid".into(), json!(format!("uid-{uid}")));
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
            meta.insert("generation".into(), json!(1));
            meta.entry("creationTimestamp")
                .or_insert(json!(k8s_openapi::chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()));
            if t.resource == "runebenchmarks" {
                obj.as_object_mut().unwrap().remove("status");
            }
            inner.objects.insert(key.clone(), obj.clone());
            record(&mut inner, &s.tx, key, "ADDED", obj.clone());
            (StatusCode::CREATED, axum::Json(obj)).into_response()
        }
        ("update" | "patch", Some(name)) => {
            let key = Key {
                group: t.group.clone(),
                version: t.version.clone(),
                resource: t.resource.clone(),
                namespace: ns,
                name: name.clone(),
            };
            let Some(old) = inner.objects.get(&key).cloned() else {
                return status_error(404, "NotFound", format!("{} \"{name}\" not found", t.resource));
            };
            let incoming: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return status_error(400, "BadRequest", e.to_string()),
            };
            if verb == "patch" && content_type.contains("json-patch") {
                return status_error(415, "UnsupportedMediaType", "fake server: JSON patch not supported".into());
            }
            let status_sub = t.sub.as_deref() == Some("status");
            let mut new = old.clone();
            if verb == "update" {
                if let Some(rv) = incoming.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
                    if rv != old["metadata"]["resourceVersion"].as_str().unwrap_or("") {
                        return status_error(
                            409,
                            "Conflict",
                            format!("the object has been modified; resourceVersion {rv} is stale"),
                        );
                    }
                }
                if status_sub {
                    new["status"] = incoming.get("status").cloned().unwrap_or(Value::Null);
                } else {
                    new = incoming.clone();
                    new["metadata"] = old["metadata"].clone();
                    if let Some(a) = incoming.pointer("/metadata/annotations") {
                        new["metadata"]["annotations"] = a.clone();
                    }
                    if let Some(st) = old.get("status") {
                        new["status"] = st.clone();
                    }
                }
            } else if status_sub {
                let mut st = old.get("status").cloned().unwrap_or(json!({}));
                merge(&mut st, incoming.get("status").unwrap_or(&json!({})));
                new["status"] = st;
            } else {
                let mut patch = incoming.clone();
                if t.resource == "runebenchmarks" {
                    patch.as_object_mut().map(|o| o.remove("status"));
                }
                merge(&mut new, &patch);
            }
            if let (Some(v), "runebenchmarks", false) = (&s.validator, t.resource.as_str(), status_sub) {
                if let Err(e) = v(&new) {
                    return status_error(422, "Invalid", e);
                }
            }
            inner.rv += 1;
            let rv = inner.rv;
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            let spec_changed = old.get("spec") != new.get("spec");
            new["metadata"]["resourceVersion"] = json!(rv.to_string());
            new["metadata"]["generation"] = json!(if spec_changed { generation + 1 } else { generation });
            inner.objects.insert(key.clone(), new.clone());
            record(&mut inner, &s.tx, key, "MODIFIED", new.clone());
            axum::Json(new).into_response()
        }
        ("delete", Some(name)) => {
            let key = Key {
                group: t.group.clone(),
                version: t.version.clone(),
                resource: t.resource.clone(),
                namespace: ns,
                name: name.clone(),
            };
            match inner.objects.remove(&key) {
                Some(obj) => {
                    inner.rv += 1;
                    record(&mut inner, &s.tx, key, "DELETED", obj.clone());
                    axum::Json(obj).into_response()
                }
                None => status_error(404, "NotFound", format!("{} \"{name}\" not found", t.resource)),
            }
        }
        _ => status_error(405, "MethodNotAllowed", format!("{method} {path}")),
    }
}
