//! A fake Kubernetes API server for tests (feature `test-support`): real HTTP on
//! loopback, spoken to by the real kube-rs client through a kubeconfig file, so the
//! checks' requests, URLs and decoding are exercised as in a cluster. Only what the
//! checks and the E-Stop use is served: GET of objects and lists (namespaced and
//! cluster-wide), server-side-apply PATCH, the service proxy and `/version`. Every
//! request is recorded; a request the fake does not know is answered 404 and recorded in
//! [`FakeCluster::unexpected`], so a test can assert nothing unplanned was asked.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// One recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Content type of the body, if any.
    pub content_type: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Object path (`/apis/apps/v1/namespaces/rune/deployments/rune-api`) → object.
    objects: BTreeMap<String, Value>,
    /// Resource plurals whose API is not installed (404 on any request).
    missing: BTreeSet<String>,
    /// Service-proxy path → (status, body).
    proxy: BTreeMap<String, (u16, String)>,
    seen: Vec<Seen>,
    unexpected: Vec<Seen>,
}

/// The fake's state, shared between the test and the server task. A std mutex: it is
/// never held across an await.
#[derive(Debug, Clone, Default)]
pub struct FakeCluster(Arc<Mutex<Inner>>);

impl FakeCluster {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another test thread panicked; the data is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `object` at its canonical path (from apiVersion, kind's `plural`,
    /// namespace and name).
    pub fn put(&self, plural: &str, object: Value) -> &Self {
        let path = object_path(&object, plural);
        self.lock().objects.insert(path, object);
        self
    }

    /// Makes every request for `plural` answer 404 (a CRD that is not installed).
    pub fn without_resource(&self, plural: &str) -> &Self {
        self.lock().missing.insert(plural.into());
        self
    }

    /// What the service proxy answers for `/api/v1/namespaces/{ns}/services/{svc}:http/proxy/{path}`.
    pub fn proxy(&self, ns: &str, svc: &str, path: &str, status: u16, body: &str) -> &Self {
        let key = format!("/api/v1/namespaces/{ns}/services/{svc}:http/proxy/{path}");
        self.lock().proxy.insert(key, (status, body.into()));
        self
    }

    /// The object stored at `path`, if any.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Requests the fake did not know how to answer.
    pub fn unexpected(&self) -> Vec<Seen> {
        self.lock().unexpected.clone()
    }

    /// Serves on 127.0.0.1 (a free port) until `shutdown` completes; returns the base URL
    /// and the server task.
    pub async fn serve(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = Router::new().fallback(handle).with_state(self.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        });
        Ok((url, task))
    }

    /// Writes a kubeconfig pointing at `url` into `dir` and returns its path.
    pub fn kubeconfig(url: &str, dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
                 users:\n- name: tester\n  user:\n    token: fake-token\n\
                 contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n\
                 current-context: fake\n"
            ),
        )?;
        Ok(path)
    }
}

fn object_path(object: &Value, plural: &str) -> String {
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let prefix = if api_version.contains('/') { format!("/apis/{api_version}") } else { format!("/api/{api_version}") };
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{prefix}/namespaces/{ns}/{plural}/{name}"),
        None => format!("{prefix}/{plural}/{name}"),
    }
}

fn status(code: u16, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": if code == 404 { "NotFound" } else { "Invalid" }, "code": code});
    (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response()
}

/// The plural of a request path: the segment after `namespaces/{ns}` or after the group
/// version.
fn plural_of(segments: &[&str]) -> Option<String> {
    let start = if segments.first() == Some(&"api") { 2 } else { 3 };
    let rest = segments.get(start..)?;
    let rest = if rest.first() == Some(&"namespaces") && rest.len() >= 3 { &rest[2..] } else { rest };
    rest.first().map(|s| (*s).to_owned())
}

async fn handle(
    State(fake): State<FakeCluster>,
    method: Method,
    headers: HeaderMap,
    uri: axum::http::Uri,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let seen = Seen {
        method: method.to_string(),
        path: path.clone(),
        query: query.unwrap_or_default(),
        content_type: headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned),
    };
    let mut inner = fake.lock();
    inner.seen.push(seen.clone());
    if path == "/version" {
        return axum::Json(json!({"major": "1", "minor": "30", "gitVersion": "v1.30.0-fake", "gitCommit": "",
            "gitTreeState": "clean", "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64"}))
        .into_response();
    }
    if let Some((code, text)) = inner.proxy.get(&path).cloned() {
        return (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), text).into_response();
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let Some(plural) = plural_of(&segments) {
        if inner.missing.contains(&plural) {
            return status(404, &format!("the server could not find the requested resource ({plural})"));
        }
    }
    match method {
        Method::GET => {
            if let Some(obj) = inner.objects.get(&path) {
                return axum::Json(obj.clone()).into_response();
            }
            // A collection: namespaced (`…/namespaces/ns/plural`) or cluster-wide (`…/plural`).
            let items: Vec<Value> = inner
                .objects
                .iter()
                .filter(|(k, _)| {
                    let rest = k.strip_prefix(&path).and_then(|r| r.strip_prefix('/'));
                    let direct = rest.is_some_and(|r| !r.contains('/'));
                    direct || cluster_wide_member(&path, k)
                })
                .map(|(_, v)| v.clone())
                .collect();
            let is_collection = segments.len() % 2 == if segments[0] == "api" { 1 } else { 0 };
            if is_collection {
                return axum::Json(json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"},
                    "items": items}))
                .into_response();
            }
            status(404, &format!("{path} not found"))
        }
        Method::PATCH if seen.content_type.as_deref() == Some("application/apply-patch+yaml") => {
            let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "apply patch is not JSON");
            };
            let mut object = inner.objects.get(&path).cloned().unwrap_or_else(|| patch.clone());
            if let (Some(dst), Some(src)) =
                (object.get_mut("data").and_then(Value::as_object_mut), patch["data"].as_object())
            {
                for (k, v) in src {
                    dst.insert(k.clone(), v.clone());
                }
            }
            object["metadata"]["resourceVersion"] = json!("2");
            inner.objects.insert(path, object.clone());
            axum::Json(object).into_response()
        }
        _ => {
            inner.unexpected.push(seen);
            status(404, "the fake API server does not serve this")
        }
    }
}

/// `/apis/g/v/plural` lists `/apis/g/v/namespaces/*/plural/*` too.
fn cluster_wide_member(collection: &str, key: &str) -> bool {
    let c: Vec<&str> = collection.trim_matches('/').split('/').collect();
    let k: Vec<&str> = key.trim_matches('/').split('/').collect();
    let base = if c.first() == Some(&"api") { 2 } else { 3 };
    c.len() == base + 1
        && k.len() == base + 4
        && k[..base] == c[..base]
        && k[base] == "namespaces"
        && k[base + 2] == c[base]
}
