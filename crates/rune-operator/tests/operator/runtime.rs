//! The E-Stop controller, leader election and the whole runtime (probes, metrics,
//! controllers) against the fake API server.

use crate::harness::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rune_operator::crd::{RuneBenchmark, ESTOP_RELEASED_ANNOTATION, ESTOP_SUSPENDED_ANNOTATION};
use rune_operator::leader::LeaseLock;
use rune_operator::runtime::OperatorOptions;
use rune_operator::testing::FakeKube;
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

async fn wait_for<F: Fn() -> Fut, Fut: std::future::Future<Output = bool>>(what: &str, f: F) {
    // Generous: CI shares two cores between many test processes.
    for _ in 0..1200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn annotated(rb: &RuneBenchmark) -> bool {
    rb.metadata.annotations.as_ref().is_some_and(|a| a.get(ESTOP_SUSPENDED_ANNOTATION).is_some_and(|v| v == "true"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estop_suspends_everything_cancels_runs_and_release_resumes_only_its_own() {
    let env = Env::start().await;
    create(&env.client, "a", spec(&env.api.base, "ok", json!({"schedule": "*/15 * * * *"}))).await;
    create(&env.client, "by-hand", spec(&env.api.base, "ok", json!({"schedule": "*/15 * * * *", "suspend": true})))
        .await;
    create(&env.client, "long", spec(&env.api.base, "slow", json!({}))).await;
    env.reconcile("a").await.unwrap();
    env.settle("a").await;
    env.reconcile("long").await.unwrap();
    let long_job = status(&get(&env.client, "long").await).active_runs[0].run_id.clone();

    let stop = CancellationToken::new();
    let estop = tokio::spawn(rune_operator::estop::run(
        env.ctx.clone(),
        "rune-system".into(),
        "rune-estop".into(),
        stop.clone(),
    ));
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "rune-system");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "rune-estop"}, "data": {"triggered": "true"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();

    let client = env.client.clone();
    wait_for("E-Stop suspends a and long", || {
        let client = client.clone();
        async move {
            let (a, long) = (get(&client, "a").await, get(&client, "long").await);
            a.spec.suspend && long.spec.suspend && annotated(&a) && annotated(&long)
        }
    })
    .await;
    assert!(!annotated(&get(&env.client, "by-hand").await), "a benchmark suspended by hand is not the E-Stop's");
    let api_client = env.api.client();
    wait_for("the RUNE API E-Stop engages", || {
        let c = api_client.clone();
        async move { c.estop_status().await.unwrap().active }
    })
    .await;
    let job = env.api.wait_terminal(&long_job).await;
    assert_eq!(job.status, rune_core::JobStatus::Cancelled, "the API's E-Stop cancels running work");
    env.reconcile("long").await.unwrap();
    let long = get(&env.client, "long").await;
    assert_eq!(ready(&long).1, "Suspended");
    assert_eq!(status(&long).history[0].status, rune_operator::crd::RunStatus::Failed);
    // Nothing fires while engaged, whatever the clock says.
    env.clock.set(t(100));
    env.reconcile("a").await.unwrap();
    let jobs_before = env.api.jobs().await.len();

    cms.patch("rune-estop", &PatchParams::default(), &Patch::Merge(json!({"data": {"triggered": "false"}})))
        .await
        .unwrap();
    wait_for("release resumes a and long", || {
        let client = client.clone();
        async move {
            let (a, long) = (get(&client, "a").await, get(&client, "long").await);
            !a.spec.suspend && !long.spec.suspend && !annotated(&a) && !annotated(&long)
        }
    })
    .await;
    assert!(get(&env.client, "by-hand").await.spec.suspend, "release leaves the hand-suspended benchmark alone");
    let a = get(&env.client, "a").await;
    assert!(a.metadata.annotations.unwrap().contains_key(ESTOP_RELEASED_ANNOTATION));
    wait_for("the RUNE API E-Stop releases", || {
        let c = api_client.clone();
        async move { !c.estop_status().await.unwrap().active }
    })
    .await;
    // Release does not replay the fires missed while stopped.
    env.reconcile("a").await.unwrap();
    assert_eq!(env.api.jobs().await.len(), jobs_before, "no catch-up burst after an E-Stop");
    stop.cancel();
    estop.await.unwrap();
    env.assert_rbac_covers_calls();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time() {
    let kube = FakeKube::start().await;
    let operator = kube.operator_client();
    let lease = |id: &str| LeaseLock::new(operator.clone(), "rune-system", "lease", id, Duration::from_secs(15));
    let (a, b) = (lease("a"), lease("b"));
    let now = k8s_openapi::chrono::Utc::now();
    assert!(a.try_acquire_or_renew(now).await.unwrap());
    assert!(!b.try_acquire_or_renew(now).await.unwrap(), "b cannot take a held lease");
    assert!(a.try_acquire_or_renew(now + k8s_openapi::chrono::Duration::seconds(5)).await.unwrap(), "a renews");
    // a stops renewing: after the lease duration b takes over, and a has lost it.
    let later = now + k8s_openapi::chrono::Duration::seconds(21);
    assert!(b.try_acquire_or_renew(later).await.unwrap());
    assert!(!a.try_acquire_or_renew(later).await.unwrap());
    let stored = kube.object("coordination.k8s.io", "leases", "rune-system", "lease").unwrap();
    assert_eq!(stored["spec"]["holderIdentity"], "b");
    assert_eq!(stored["spec"]["leaseTransitions"], 1);
    // A graceful release hands over at once.
    b.release().await.unwrap();
    assert!(a.try_acquire_or_renew(later).await.unwrap());
    assert_rbac(&kube);
}

async fn http_get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_runs_end_to_end_with_probes_metrics_and_leader_lease() {
    let kube = FakeKube::start_with(Some(crate::crd_schema::validator())).await;
    let client = kube.client();
    create_token_secret(&client).await;
    let api = RuneApi::start().await;
    let options = OperatorOptions {
        metrics_addr: free_addr().await,
        health_addr: free_addr().await,
        namespace: "rune-system".into(),
        identity: "operator-0".into(),
        lease_duration: Duration::from_secs(3),
        ..Default::default()
    };
    let stop = CancellationToken::new();
    let operator = {
        let (client, options, stop) = (kube.operator_client(), options.clone(), stop.clone());
        tokio::spawn(async move { rune_operator::runtime::run(client, options, stop.cancelled_owned()).await })
    };
    let health = format!("http://{}", options.health_addr);
    wait_for("/readyz", || {
        let url = format!("{health}/readyz");
        async move { http_get(&url).await.0 == 200 }
    })
    .await;
    assert_eq!(http_get(&format!("{health}/healthz")).await, (200, "ok".into()));

    create(&client, "live", spec(&api.base, "ok", json!({}))).await;
    let c = client.clone();
    wait_for("the run to succeed through the controller", || {
        let c = c.clone();
        async move {
            let rb = get(&c, "live").await;
            status(&rb).last_run.is_some_and(|r| r.status == rune_operator::crd::RunStatus::Succeeded)
        }
    })
    .await;
    assert_eq!(api.jobs().await.len(), 1);
    // kubectl patch ... suspend: true takes effect without any other trigger.
    kubectl_patch(&client, "live", json!({"spec": {"suspend": true}})).await;
    wait_for("Suspended condition", || {
        let c = c.clone();
        async move { get(&c, "live").await.status.is_some_and(|s| s.conditions.iter().any(|x| x.reason == "Suspended")) }
    })
    .await;

    let (code, metrics) = http_get(&format!("http://{}/metrics", options.metrics_addr)).await;
    assert_eq!(code, 200);
    assert!(metrics.contains("rune_operator_reconcile_total{result=\"started\"}"), "{metrics}");
    assert!(metrics.contains("rune_operator_run_duration_seconds_count 1"), "{metrics}");
    assert!(metrics.contains("rune_operator_active_schedules"), "{metrics}");
    let lease = kube.object("coordination.k8s.io", "leases", "rune-system", rune_operator::leader::LEASE_NAME).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "operator-0");

    stop.cancel();
    operator.await.unwrap().unwrap();
    let lease = kube.object("coordination.k8s.io", "leases", "rune-system", rune_operator::leader::LEASE_NAME).unwrap();
    assert!(lease["spec"].get("holderIdentity").is_none_or(|h| h.is_null()), "lease released on shutdown: {lease}");
    assert_eq!(http_get(&format!("{health}/healthz")).await.0, 0, "probe server stopped");
    assert_rbac(&kube);
    api.stop().await;
}
