//! The Kubernetes checks and the E-Stop ConfigMap through the real kube-rs client,
//! against the fake API server of `rune_health::testing` reached via a kubeconfig file.

use rune_health::testing::FakeCluster;
use rune_health::{HealthConfig, Report, Status};
use serde_json::{json, Value};
use std::time::Duration;

fn deployment(ns: &str, name: &str, replicas: i64, available: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "generation": 2},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"observedGeneration": 2, "replicas": replicas, "updatedReplicas": available, "availableReplicas": available}})
}

fn pod(ns: &str, name: &str, phase: &str, ready: bool, restarts: i64) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u"}]},
        "spec": {"containers": [{"name": "rune", "image": "i"}]},
        "status": {"phase": phase,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "containerStatuses": [{"name": "rune", "image": "i", "imageID": "", "ready": ready, "restartCount": restarts,
                "state": if phase == "Running" { json!({"running": {}}) } else { json!({"waiting": {"reason": "CrashLoopBackOff"}}) },
                "lastState": if restarts > 0 { json!({"terminated": {"exitCode": 101, "reason": "Error"}}) } else { json!({}) }}]}})
}

fn hook_pod(ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rune-api-backup-x", "namespace": ns,
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "rune-api-backup", "uid": "j"}]},
        "spec": {"containers": [{"name": "backup", "image": "i"}]},
        "status": {"phase": "Failed"}})
}

fn lease(ns: &str, holder: &str, renewed_secs_ago: i64) -> Value {
    let renew = k8s_openapi::chrono::Utc::now() - k8s_openapi::chrono::Duration::seconds(renewed_secs_ago);
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "rune-operator.bench.rune.ai", "namespace": ns},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                 "renewTime": renew.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}})
}

fn benchmark(ns: &str, name: &str, suspended: bool, by_estop: bool) -> Value {
    let mut annotations = serde_json::Map::new();
    if by_estop {
        annotations.insert("bench.rune.ai/estop-suspended".into(), json!("true"));
    }
    json!({"apiVersion": "bench.rune.ai/v1alpha1", "kind": "RuneBenchmark",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {"suspend": suspended, "workflow": "benchmark", "schedule": "0 * * * *"}})
}

/// A healthy installation: API in `rune`, operator in `rune-system`.
fn healthy() -> FakeCluster {
    let fake = FakeCluster::default();
    fake.put("deployments", deployment("rune", "rune-api", 1, 1))
        .put("deployments", deployment("rune", "rune-ui", 1, 1))
        .put("pods", pod("rune", "rune-api-7d9f-abcde", "Running", true, 0))
        .put("pods", pod("rune", "rune-ui-5c4b-fghij", "Running", true, 0))
        .put("deployments", deployment("rune-system", "rune-operator", 1, 1))
        .put("pods", pod("rune-system", "rune-operator-6b7c-klmno", "Running", true, 0))
        .put("leases", lease("rune-system", "rune-operator-6b7c-klmno", 3))
        .put("runebenchmarks", benchmark("team-a", "nightly", false, false))
        .put("runebenchmarks", benchmark("team-b", "paused-by-hand", true, false))
        .proxy("rune", "rune-api", "healthz", 200, r#"{"status":"ok"}"#)
        .proxy("rune", "rune-api", "readyz", 200, r#"{"status":"ok"}"#);
    fake
}

struct Running {
    fake: FakeCluster,
    config: HealthConfig,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn start(fake: FakeCluster) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (url, task) = fake
            .serve(async move {
                let _ = rx.await;
            })
            .await
            .expect("bind the fake API server");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = FakeCluster::kubeconfig(&url, dir.path()).expect("write kubeconfig");
        let config = HealthConfig {
            namespace: Some("rune".into()),
            kubeconfig: Some(kubeconfig),
            timeout: Duration::from_secs(5),
            ..Default::default()
        };
        Self { fake, config, _dir: dir, stop: Some(tx), task: Some(task) }
    }

    async fn run(&self) -> Report {
        tokio::time::timeout(Duration::from_secs(30), rune_health::run(&self.config)).await.expect("checks finish")
    }

    /// Stops the API server but keeps the kubeconfig pointing at its (now closed) port.
    async fn halt(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    async fn stop(mut self) {
        self.halt().await;
    }
}

fn status_of(report: &Report, name: &str) -> Status {
    report.get(name).unwrap_or_else(|| panic!("no check {name} in {report:#?}")).status
}

/// Everything healthy: every Kubernetes check passes, the API probes go through the
/// service proxy, a benchmark suspended by hand is left alone, and only known calls are made.
#[tokio::test]
async fn healthy_cluster_passes() {
    let env = Running::start(healthy()).await;
    let report = env.run().await;
    for name in [
        "rollout-complete",
        "pods-running",
        "pod-restarts",
        "operator-ready",
        "operator-leader",
        "api-healthz",
        "api-readyz",
        "benchmarks-resumed",
    ] {
        assert_eq!(status_of(&report, name), Status::Pass, "{name}: {report:#?}");
    }
    assert_eq!(status_of(&report, "schedules-resumed"), Status::Skip, "no API base URL given");
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    let leader = report.get("operator-leader").unwrap();
    assert!(leader.reason.contains("rune-operator-6b7c-klmno"), "{}", leader.reason);
    let bench = report.get("benchmarks-resumed").unwrap();
    assert!(bench.reason.contains("team-b/paused-by-hand"), "{}", bench.reason);
    let paths: Vec<String> = env.fake.seen().into_iter().map(|s| s.path).collect();
    assert!(paths
        .contains(&"/apis/coordination.k8s.io/v1/namespaces/rune-system/leases/rune-operator.bench.rune.ai".into()));
    assert!(paths.contains(&"/apis/bench.rune.ai/v1alpha1/runebenchmarks".into()), "{paths:?}");
    assert!(paths.contains(&"/api/v1/namespaces/rune-system/configmaps/rune-estop".into()), "{paths:?}");
    assert_eq!(env.fake.unexpected(), vec![]);
    env.stop().await;
}

/// A crash-looping pod, an expired leader Lease and a benchmark the released E-Stop still
/// holds each fail with a reason naming the object; a failed hook Job's pod is ignored.
#[tokio::test]
async fn broken_cluster_fails_with_reasons() {
    let fake = healthy();
    fake.put("pods", pod("rune", "rune-api-7d9f-abcde", "Pending", false, 3))
        .put("pods", hook_pod("rune"))
        .put("deployments", deployment("rune", "rune-api", 1, 0))
        .put("leases", lease("rune-system", "rune-operator-old", 120))
        .put("runebenchmarks", benchmark("team-a", "nightly", true, true));
    let env = Running::start(fake).await;
    let report = env.run().await;
    let reason = |n: &str| report.get(n).map(|c| c.reason.clone()).unwrap_or_default();
    assert_eq!(status_of(&report, "pods-running"), Status::Fail);
    assert!(
        reason("pods-running").contains("rune-api-7d9f-abcde Pending (CrashLoopBackOff)"),
        "{}",
        reason("pods-running")
    );
    assert!(!reason("pods-running").contains("backup"), "Job pods are not serving pods");
    assert_eq!(status_of(&report, "pod-restarts"), Status::Fail);
    assert!(reason("pod-restarts").contains("rune-api-7d9f-abcde/rune restarted 3x, last exit: Error code 101"));
    assert_eq!(status_of(&report, "rollout-complete"), Status::Fail);
    assert_eq!(status_of(&report, "operator-leader"), Status::Fail);
    assert!(reason("operator-leader").contains("rune-operator-old"), "{}", reason("operator-leader"));
    assert_eq!(status_of(&report, "benchmarks-resumed"), Status::Fail);
    assert!(reason("benchmarks-resumed").contains("team-a/nightly"));
    assert_eq!(report.exit_code(), 1);
    env.stop().await;
}

/// While the E-Stop ConfigMap is triggered, suspended benchmarks are expected (SKIP);
/// without the CRD the check is skipped too; an operator namespace named explicitly but
/// empty fails.
#[tokio::test]
async fn estop_engaged_crd_missing_and_missing_operator() {
    let fake = healthy();
    fake.put("runebenchmarks", benchmark("team-a", "nightly", true, true)).put(
        "configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rune-estop", "namespace": "rune-system"},
            "data": {"triggered": "true", "reason": "drill"}}),
    );
    let env = Running::start(fake).await;
    let report = env.run().await;
    assert_eq!(status_of(&report, "benchmarks-resumed"), Status::Skip);
    assert!(report.get("benchmarks-resumed").unwrap().reason.contains("drill"));
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    env.stop().await;

    let fake = healthy();
    fake.without_resource("runebenchmarks");
    let mut env = Running::start(fake).await;
    let report = env.run().await;
    assert_eq!(status_of(&report, "benchmarks-resumed"), Status::Skip);
    assert!(report.get("benchmarks-resumed").unwrap().reason.contains("not installed"));
    env.config.operator_namespace = Some("ops".into());
    let report = env.run().await;
    assert_eq!(status_of(&report, "operator-ready"), Status::Fail, "{report:#?}");
    assert_eq!(report.exit_code(), 1);
    env.stop().await;
}

/// No API server behind the kubeconfig: exit 2, naming the cluster.
#[tokio::test]
async fn unreachable_cluster_exits_2() {
    let mut env = Running::start(healthy()).await;
    env.halt().await;
    let report = env.run().await;
    assert_eq!(status_of(&report, "kubernetes"), Status::Fail);
    let reason = &report.get("kubernetes").unwrap().reason;
    assert!(reason.contains("cannot reach the Kubernetes API server"), "{reason}");
    assert_eq!(report.exit_code(), 2);
}

/// trigger/release/status write and read the ConfigMap with server-side apply (field
/// manager rune-estop, forced), creating it when missing.
#[tokio::test]
async fn estop_configmap_round_trip() {
    let env = Running::start(FakeCluster::default()).await;
    let client = rune_health::cluster::client(env.config.kubeconfig.as_deref(), Duration::from_secs(5)).await.unwrap();
    let before = rune_health::estop::status(&client, "rune-system", "rune-estop").await.unwrap();
    assert!(!before.triggered, "a missing ConfigMap means released");
    let on = rune_health::estop::trigger(&client, "rune-system", "rune-estop", Some("drill"), "alice").await.unwrap();
    assert!(on.triggered);
    assert_eq!((on.reason.as_deref(), on.actor.as_deref()), (Some("drill"), Some("alice")));
    let stored = env.fake.get("/api/v1/namespaces/rune-system/configmaps/rune-estop").expect("created");
    assert_eq!(stored["data"]["triggered"], "true");
    let off = rune_health::estop::release(&client, "rune-system", "rune-estop", "bob").await.unwrap();
    assert!(!off.triggered);
    assert_eq!(off.reason.as_deref(), Some("drill"), "release keeps why it was engaged");
    assert!(off.released_at.is_some());
    let patches: Vec<_> = env.fake.seen().into_iter().filter(|s| s.method == "PATCH").collect();
    assert_eq!(patches.len(), 2);
    for p in &patches {
        assert_eq!(p.content_type.as_deref(), Some("application/apply-patch+yaml"));
        assert!(p.query.contains("fieldManager=rune-estop") && p.query.contains("force=true"), "{}", p.query);
    }
    assert_eq!(env.fake.unexpected(), vec![]);
    env.stop().await;
}
