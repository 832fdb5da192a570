//! `rune operator`: the manifests it prints are the generated ones, and `run` reconciles
//! against a cluster (the fake Kubernetes API server through a kubeconfig) and stops
//! cleanly on SIGTERM, handing its Lease back.

use crate::util::Home;
use rune_operator::testing::FakeKube;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const CHART_CRD: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/helm/rune-operator/crds/runebenchmarks.bench.rune.ai.yaml");

#[test]
fn crd_and_rbac_are_printed_from_code() {
    let home = Home::new();
    let crd = home.run(&["operator", "crd"]).expect_code(0).stdout();
    let chart = std::fs::read_to_string(CHART_CRD).expect("chart CRD");
    assert!(
        crd == chart,
        "the chart's CRD is stale; regenerate it with: cargo run -p rune-cli -- operator crd > deploy/helm/rune-operator/crds/runebenchmarks.bench.rune.ai.yaml"
    );
    let rbac = home.run(&["operator", "rbac", "--namespace", "rune-system"]).expect_code(0).stdout();
    assert!(rbac.contains("kind: ClusterRole") && rbac.contains("kind: Role"), "{rbac}");
    assert!(rbac.contains("namespace: rune-system") && rbac.contains("\"bench.rune.ai\""), "{rbac}");
    let rules = home.run(&["operator", "rbac", "--rules-only", "namespace"]).expect_code(0).stdout();
    assert!(rules.starts_with("# ") && rules.contains("leases") && !rules.contains("runebenchmarks"), "{rules}");
    let bad = home.run(&["operator", "rbac", "--rules-only", "everything"]).expect_code(2);
    assert!(bad.stderr().contains("cluster"), "{}", bad.stderr());
}

/// `rune operator crd | head -1` stops quietly: a closed pipe is not a crash.
#[test]
fn closed_stdout_is_not_a_crash() {
    let home = Home::new();
    let mut child = home
        .cmd(&["operator", "crd"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn run_without_a_cluster_says_how_to_fix_it() {
    let home = Home::new();
    let out = home
        .cmd(&[
            "operator",
            "run",
            "--metrics-bind-address",
            "127.0.0.1:0",
            "--health-probe-bind-address",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", home.path().join("missing-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("set KUBECONFIG"), "{stderr}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_run_reconciles_and_stops_on_sigterm() {
    let kube = FakeKube::start().await;
    // A real RUNE API (built-in runner: an llm-instance job is accepted, then fails
    // because this build has no provisioning engine, which is an outcome to record).
    let dir = tempfile::tempdir().unwrap();
    let store =
        rune_store::open(&format!("sqlite://{}/jobs.db", dir.path().display()), &Default::default()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = listener.local_addr().unwrap();
    let config =
        rune_api::ServerConfig::from_env(api_addr, false, |k| (k == "RUNE_RATE_LIMIT_RPS").then(|| "0".to_string()))
            .unwrap();
    let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn(async move {
        let runner = Arc::new(rune_api::runner::BuiltinRunner);
        rune_api::serve(listener, config, store, runner, async move {
            let _ = api_stopped.await;
        })
        .await
        .unwrap();
    });

    let home = Home::new();
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kube.kubeconfig()).unwrap();
    let (metrics_port, health_port) = (free_port(), free_port());
    let mut child = home
        .cmd(&[
            "operator",
            "run",
            "--namespace",
            "rune-system",
            "--identity",
            "cli-0",
            "--metrics-bind-address",
            &format!("127.0.0.1:{metrics_port}"),
            "--health-probe-bind-address",
            &format!("127.0.0.1:{health_port}"),
            "--lease-duration-seconds",
            "3",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .spawn()
        .unwrap();

    let client = kube.client();
    let api_rb: kube::Api<rune_operator::crd::RuneBenchmark> = kube::Api::namespaced(client, "default");
    let rb: rune_operator::crd::RuneBenchmark = serde_json::from_value(json!({
        "apiVersion": "bench.rune.ai/v1alpha1", "kind": "RuneBenchmark",
        "metadata": {"name": "probe"},
        "spec": {"apiBaseUrl": format!("http://{api_addr}"), "workflow": "llm-instance",
                 "backendUrl": "http://127.0.0.1:9", "pollIntervalSeconds": 2}
    }))
    .unwrap();
    api_rb.create(&Default::default(), &rb).await.unwrap();

    let mut last = None;
    for _ in 0..1200 {
        let got = api_rb.get("probe").await.unwrap();
        let run = got.status.as_ref().and_then(|s| s.last_run.clone());
        if run.as_ref().is_some_and(|r| r.status == rune_operator::crd::RunStatus::Failed) {
            last = run;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = last.expect("the operator recorded the run's outcome");
    assert!(last.error.as_deref().unwrap_or("").contains("not available"), "{last:?}");

    let ready = reqwest::get(format!("http://127.0.0.1:{health_port}/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("rune_operator_reconcile_total{result=\"started\"} 1"), "{metrics}");
    let lease = kube.object("coordination.k8s.io", "leases", "rune-system", "rune-operator.bench.rune.ai").unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "cli-0");

    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "rune operator run exits 0 on SIGTERM: {status:?}");
    let lease = kube.object("coordination.k8s.io", "leases", "rune-system", "rune-operator.bench.rune.ai").unwrap();
    assert!(lease["spec"].get("holderIdentity").is_none_or(|h| h.is_null()), "lease handed back: {lease}");
    // The binary's requests are all within `rune operator rbac`.
    let calls = kube.assert_operator_calls_allowed();
    assert!(calls.iter().any(|c| c.resource == "runebenchmarks/status" && c.verb == "patch"));
    let _ = api_stop.send(());
    api.await.unwrap();
}
