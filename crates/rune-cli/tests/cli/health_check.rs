//! `rune health-check` end to end: against a live `rune serve` (healthy, tampered job
//! history, API down, bad manifest), `GET /v1/system/job-digests` itself, and the
//! Kubernetes checks plus `rune estop --kubernetes` through the real kube client against
//! the fake API server of `rune_health::testing`.

use crate::http_mode::{http, Server, TENANT, TOKEN};
use crate::util::{Home, Run};
use rune_health::testing::FakeCluster;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const COST_ESTIMATE: &str = r#"{"vastai": true, "min_dph": 1.0, "max_dph": 2.0}"#;

/// Submits a cost estimate and waits until it has succeeded; returns its id.
fn finished_job(server: &Server) -> String {
    let (status, answer) = http(&server.addr, "POST", "/v1/jobs/cost-estimate", Some(TOKEN), Some(COST_ESTIMATE));
    assert_eq!(status, 202, "{answer}");
    let id = answer["job_id"].as_str().expect("job_id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, job) = http(&server.addr, "GET", &format!("/v1/jobs/{id}"), Some(TOKEN), None);
        if job["status"] == "succeeded" {
            return id;
        }
        assert!(Instant::now() < deadline, "job {id} did not succeed: {job}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn health(server: &Server, extra: &[&str]) -> Run {
    let mut args = vec!["--api-base-url", &server.base, "--api-token", TOKEN, "--api-tenant", TENANT, "health-check"];
    args.extend_from_slice(extra);
    server.home.run(&args)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

/// Healthy: every API check passes against a backup manifest (exit 0). Then one job's
/// result is altered and another deleted in the database behind the server's back:
/// `job-history` fails naming both (exit 1), and the table output says UNHEALTHY.
#[test]
fn live_server_healthy_then_tampered_history() {
    let server = Server::start_with(&[]);
    let changed = finished_job(&server);
    let deleted = finished_job(&server);
    let backup = server.home.path().join("before-upgrade.db");
    server.home.run(&["db", "backup", "--output", backup.to_str().unwrap()]).expect_code(0);
    let manifest = format!("{}.manifest.json", backup.display());
    let _newer = finished_job(&server);

    let ok = health(&server, &["--manifest", &manifest, "--output", "json"]).expect_code(0).json();
    for name in ["api-healthz", "api-readyz", "schema-version", "job-history", "schedules-resumed"] {
        assert_eq!(check(&ok, name)["status"], "PASS", "{name}: {ok}");
    }
    assert_eq!(check(&ok, "kubernetes")["status"], "SKIP");
    let reason = check(&ok, "job-history")["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("all 2 jobs") && reason.contains("1 newer job"), "{reason}");
    assert_eq!(ok["exit_code"], 0);

    let db = rusqlite::Connection::open(server.home.db()).expect("open the live database");
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute("UPDATE jobs SET result_json = '{\"tampered\": true}' WHERE job_id = ?1", [&changed]).unwrap();
    db.execute("DELETE FROM jobs WHERE job_id = ?1", [&deleted]).unwrap();
    drop(db);

    let bad = health(&server, &["--manifest", &manifest, "--output", "json"]).expect_code(1).json();
    let history = check(&bad, "job-history");
    assert_eq!(history["status"], "FAIL");
    let reason = history["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("1 missing: {deleted}")), "{reason}");
    assert!(reason.contains(&format!("1 changed: {changed}")), "{reason}");
    assert_eq!(check(&bad, "api-healthz")["status"], "PASS", "only the history is wrong");
    let table = health(&server, &["--manifest", &manifest]).expect_code(1).stdout();
    assert!(table.contains("job-history") && table.contains("UNHEALTHY (exit 1)"), "{table}");
}

/// The API down: exit 2 and the reason names the address; a manifest that is not one is
/// refused up front (exit 2, naming --manifest).
#[test]
fn api_down_and_bad_manifest() {
    let home = Home::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let down = home.run(&["--api-base-url", &base, "health-check", "--timeout", "2s", "--output", "json"]);
    let down = down.expect_code(2).json();
    let healthz = check(&down, "api-healthz");
    assert_eq!(healthz["status"], "FAIL");
    assert_eq!(healthz["unreachable"], true);
    assert!(healthz["reason"].as_str().unwrap().contains(&base), "{down}");

    let junk = home.path().join("not-a-manifest.json");
    std::fs::write(&junk, "{\"format\": \"something else\"}").unwrap();
    let run = home.run(&["--api-base-url", &base, "health-check", "--manifest", junk.to_str().unwrap()]);
    let err = run.expect_code(2).stderr();
    assert!(err.contains("--manifest") && err.contains("rune db backup"), "{err}");
}

/// While the E-Stop is engaged, schedules are expected to be suspended (SKIP, exit 0);
/// after release they pass again.
#[test]
fn schedules_check_follows_the_estop() {
    let server = Server::start_with(&[]);
    let base = ["--backend", "http", "--api-base-url", &server.base, "--api-token", TOKEN, "--api-tenant", TENANT];
    let run = |extra: &[&str]| server.home.run(&[&base[..], extra].concat());
    run(&[
        "schedules",
        "create",
        "--name",
        "hourly",
        "--cron",
        "@hourly",
        "--kind",
        "cost-estimate",
        "--request",
        COST_ESTIMATE,
    ])
    .expect_code(0);
    run(&["estop", "trigger", "--reason", "drill"]).expect_code(0);
    let engaged = health(&server, &["--output", "json"]).expect_code(0).json();
    let s = check(&engaged, "schedules-resumed");
    assert_eq!(s["status"], "SKIP");
    assert!(s["reason"].as_str().unwrap().contains("drill"), "{s}");
    run(&["estop", "release"]).expect_code(0);
    let released = health(&server, &["--output", "json"]).expect_code(0).json();
    let s = check(&released, "schedules-resumed");
    assert_eq!(s["status"], "PASS");
    assert!(s["reason"].as_str().unwrap().contains("1 schedule(s) active"), "{s}");
}

/// `GET /v1/system/job-digests`: pages in id order with a cursor, both digests per job,
/// limits checked, and closed to tenants outside RUNE_ESTOP_TENANTS.
#[test]
fn job_digests_route() {
    let server = Server::start_with(&[]);
    let mut ids = [finished_job(&server), finished_job(&server)];
    ids.sort();
    let (status, page) = http(&server.addr, "GET", "/v1/system/job-digests?limit=1", Some(TOKEN), None);
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["schema_version"], page["binary_schema_version"]);
    assert!(page["database_id"].is_string());
    let first = page["jobs"].as_object().unwrap();
    assert_eq!(first.keys().collect::<Vec<_>>(), vec![&ids[0]]);
    assert_eq!(first[&ids[0]]["t"].as_str().unwrap().len(), 16);
    assert_ne!(first[&ids[0]]["t"], first[&ids[0]]["i"], "full and identity digests differ for a finished job");
    let next = page["next_after"].as_str().unwrap();
    let (_, page) =
        http(&server.addr, "GET", &format!("/v1/system/job-digests?limit=1&after={next}"), Some(TOKEN), None);
    assert_eq!(page["jobs"].as_object().unwrap().keys().collect::<Vec<_>>(), vec![&ids[1]]);
    let (_, last) = http(&server.addr, "GET", &format!("/v1/system/job-digests?after={}", ids[1]), Some(TOKEN), None);
    assert_eq!((last["jobs"].as_object().unwrap().len(), &last["next_after"]), (0, &Value::Null));
    let (status, err) = http(&server.addr, "GET", "/v1/system/job-digests?limit=0", Some(TOKEN), None);
    assert_eq!(status, 400, "{err}");
    assert!(err["error"].as_str().unwrap().contains("limit"), "{err}");
    let (status, _) = http(&server.addr, "GET", "/v1/system/job-digests", None, None);
    assert_eq!(status, 401, "authentication is required like on every /v1 route");
    drop(server);

    let restricted = Server::start_with(&[("RUNE_ESTOP_TENANTS", "ops")]);
    let (status, err) = http(&restricted.addr, "GET", "/v1/system/job-digests", Some(TOKEN), None);
    assert_eq!(status, 403, "{err}");
    assert!(err["error"].as_str().unwrap().contains("RUNE_ESTOP_TENANTS"), "{err}");
}

fn fake_cluster() -> FakeCluster {
    let fake = FakeCluster::default();
    let deployment = |ns: &str, name: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns, "generation": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 1}})
    };
    let pod = |ns: &str, name: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 0}]}})
    };
    let renew = k8s_openapi::chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    fake.put("deployments", deployment("rune", "rune-api"))
        .put("pods", pod("rune", "rune-api-1"))
        .put("deployments", deployment("rune-system", "rune-operator"))
        .put("pods", pod("rune-system", "rune-operator-1"))
        .put(
            "leases",
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "rune-operator.bench.rune.ai", "namespace": "rune-system"},
                "spec": {"holderIdentity": "rune-operator-1", "leaseDurationSeconds": 15, "renewTime": renew}}),
        )
        .put(
            "runebenchmarks",
            json!({"apiVersion": "bench.rune.ai/v1alpha1", "kind": "RuneBenchmark",
                "metadata": {"name": "nightly", "namespace": "rune", "annotations": {"bench.rune.ai/estop-suspended": "true"}},
                "spec": {"suspend": true}}),
        )
        .proxy("rune", "rune-api", "healthz", 200, "{\"status\":\"ok\"}")
        .proxy("rune", "rune-api", "readyz", 200, "{\"status\":\"ok\"}");
    fake
}

/// `rune health-check --namespace rune` (the runbook's verification) through a
/// kubeconfig: a benchmark the E-Stop suspended fails the run while the stop is released;
/// `rune estop trigger --kubernetes` writes the ConfigMap, after which that check is a
/// SKIP and the run passes; `status` and `release` read and write the same ConfigMap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_checks_and_estop_configmap() {
    let fake = fake_cluster();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (url, task) = fake
        .serve(async move {
            let _ = stopped.await;
        })
        .await
        .expect("fake API server");
    let home = std::sync::Arc::new(Home::new());
    let kubeconfig = FakeCluster::kubeconfig(&url, home.path()).unwrap();
    let kc = kubeconfig.to_str().unwrap().to_owned();
    // The CLI blocks; run it off the runtime so the fake server keeps answering.
    let run = |args: Vec<String>| {
        let home = home.clone();
        async move {
            tokio::task::spawn_blocking(move || home.run(&args.iter().map(String::as_str).collect::<Vec<_>>()))
                .await
                .unwrap()
        }
    };
    let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let first = run(argv(&["health-check", "--namespace", "rune", "--kubeconfig", &kc, "--output", "json"])).await;
    let first = first.expect_code(1).json();
    assert_eq!(check(&first, "benchmarks-resumed")["status"], "FAIL", "{first}");
    for name in ["pods-running", "pod-restarts", "rollout-complete", "operator-ready", "operator-leader", "api-healthz"]
    {
        assert_eq!(check(&first, name)["status"], "PASS", "{name}: {first}");
    }

    let on =
        run(argv(&["estop", "trigger", "--kubernetes", "--kubeconfig", &kc, "--reason", "drill", "--actor", "ci"]))
            .await;
    assert!(on.expect_code(0).stdout().contains("E-Stop engaged"));
    let cm = fake.get("/api/v1/namespaces/rune-system/configmaps/rune-estop").expect("ConfigMap written");
    assert_eq!((cm["data"]["triggered"].as_str(), cm["data"]["actor"].as_str()), (Some("true"), Some("ci")));
    let status = run(argv(&["estop", "status", "--kubernetes", "--kubeconfig", &kc, "--output", "json"])).await;
    let status = status.expect_code(0).json();
    assert_eq!((status["triggered"].as_bool(), status["reason"].as_str()), (Some(true), Some("drill")));

    let during = run(argv(&["health-check", "--namespace", "rune", "--kubeconfig", &kc, "--output", "json"])).await;
    let during = during.expect_code(0).json();
    assert_eq!(check(&during, "benchmarks-resumed")["status"], "SKIP", "{during}");

    run(argv(&["estop", "release", "--kubernetes", "--kubeconfig", &kc])).await.expect_code(0);
    let cm = fake.get("/api/v1/namespaces/rune-system/configmaps/rune-estop").unwrap();
    assert_eq!(cm["data"]["triggered"], "false");
    assert_eq!(fake.unexpected(), vec![]);

    let _ = stop.send(());
    let _ = task.await;
    let gone = run(argv(&["health-check", "--namespace", "rune", "--kubeconfig", &kc, "--timeout", "2s"])).await;
    assert!(gone.expect_code(2).stdout().contains("could not reach"));
}
