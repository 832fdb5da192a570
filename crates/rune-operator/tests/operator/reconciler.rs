//! Reconcile scenarios driven one reconcile at a time with a manual clock.

use crate::harness::*;
use kube::runtime::controller::Action;
use rune_operator::crd::{RunStatus, Trigger};
use rune_operator::plan::format_time;
use rune_operator::reconcile::error_policy;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_submits_follows_and_writes_status() {
    let env = Env::start().await;
    let rb = create(&env.client, "smoke", spec(&env.api.base, "ok", json!({}))).await;
    // The first reconcile submits; replaying it on the same (stale) object sends the same
    // Idempotency-Key and gets the same job back, not a second run.
    let stale = Arc::new(rb);
    rune_operator::reconcile::reconcile(stale.clone(), env.ctx.clone()).await.unwrap();
    let after = get(&env.client, "smoke").await;
    let st = status(&after);
    assert_eq!(st.active_runs.len(), 1);
    let run = &st.active_runs[0];
    assert_eq!(run.trigger, Trigger::Created);
    assert_eq!(run.schedule_time, format_time(t(7)));
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!(st.last_schedule_time.as_deref(), Some(format_time(t(7)).as_str()));
    rune_operator::reconcile::reconcile(stale, env.ctx.clone()).await.unwrap();
    let jobs = env.api.jobs().await;
    assert_eq!(jobs.len(), 1, "a replayed fire must not start a second job");
    assert_eq!(jobs[0].job_id, run.run_id);
    assert_eq!(jobs[0].tenant_id, "alpha");
    assert_eq!(jobs[0].request["question"], "ok");
    assert_eq!(jobs[0].request["agent"], "holmes");

    env.api.wait_terminal(&run.run_id).await;
    env.clock.advance_secs(3);
    let done = env.settle("smoke").await;
    let st = status(&done);
    assert_eq!(st.history.len(), 1);
    assert_eq!(st.history[0].status, RunStatus::Succeeded);
    assert!(st.history[0].result.as_deref().unwrap().contains("\"answer\":\"ok\""));
    assert_eq!(st.history[0].duration_millis, Some(3000));
    assert_eq!(st.last_run.as_ref().unwrap().status, RunStatus::Succeeded);
    assert_eq!(st.consecutive_failures, 0);
    assert!(st.last_successful_time.is_some());
    assert_eq!(ready(&done), ("True".into(), "RunSucceeded".into()));
    // Without a schedule it waits for a spec change.
    let action = env.reconcile("smoke").await.unwrap();
    assert_eq!(action, Action::await_change());
    assert_eq!(env.api.jobs().await.len(), 1);
    let reasons = env.event_reasons("smoke");
    assert!(
        reasons.contains(&"RunSubmitted".to_string()) && reasons.contains(&"RunSucceeded".to_string()),
        "{reasons:?}"
    );
    env.assert_rbac_covers_calls();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_fires_at_the_right_times_and_history_is_bounded() {
    let env = Env::start().await;
    let extra = json!({"schedule": "*/15 * * * *", "successfulRunsHistoryLimit": 2});
    create(&env.client, "cron", spec(&env.api.base, "ok", extra)).await;
    env.reconcile("cron").await.unwrap(); // creation run at 00:07
    let st = status(&env.settle("cron").await);
    assert_eq!(st.next_schedule_time.as_deref(), Some(format_time(t(15)).as_str()));

    env.clock.set(t(14));
    let action = env.reconcile("cron").await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(60)), "sleeps exactly until 00:15");
    assert_eq!(env.api.jobs().await.len(), 1);

    env.clock.set(t(15));
    env.reconcile("cron").await.unwrap();
    let st = status(&get(&env.client, "cron").await);
    assert_eq!(st.active_runs[0].schedule_time, format_time(t(15)));
    assert_eq!(st.active_runs[0].trigger, Trigger::Schedule);
    env.settle("cron").await;
    assert_eq!(env.api.jobs().await.len(), 2);

    // Away for an hour: the missed fires collapse into one run for 01:00.
    env.clock.set(t(67));
    env.reconcile("cron").await.unwrap();
    let st = status(&get(&env.client, "cron").await);
    assert_eq!(st.active_runs[0].schedule_time, format_time(t(60)));
    let st = status(&env.settle("cron").await);
    assert_eq!(env.api.jobs().await.len(), 3);
    env.reconcile("cron").await.unwrap();
    assert_eq!(env.api.jobs().await.len(), 3, "no second catch-up");
    // successfulRunsHistoryLimit: 2 of the 3 succeeded runs are kept, newest first.
    assert_eq!(st.history.len(), 2);
    assert_eq!(st.history[0].schedule_time, format_time(t(60)));
    assert_eq!(st.history[1].schedule_time, format_time(t(15)));
    // Every job carries the idempotency key ns/name/generation/scheduleTime (checked by
    // resubmitting it: the API answers with the existing job).
    let key = rune_core::schedule::fire_key(NS, "cron", 1, t(60));
    let again = env
        .api
        .client()
        .submit(
            "agentic-agent",
            &rune_operator::reconcile::job_payload(&get(&env.client, "cron").await.spec),
            Some(&key),
        )
        .await
        .unwrap();
    assert_eq!(again.job_id, st.history[0].run_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_stops_scheduling_and_resume_catches_up_once() {
    let env = Env::start().await;
    create(&env.client, "pausable", spec(&env.api.base, "ok", json!({"schedule": "*/15 * * * *"}))).await;
    env.reconcile("pausable").await.unwrap();
    env.settle("pausable").await;
    // kubectl patch runebenchmark --all --type merge -p '{"spec":{"suspend":true}}'
    kubectl_patch(&env.client, "pausable", json!({"spec": {"suspend": true}})).await;
    env.clock.set(t(50));
    let action = env.reconcile("pausable").await.unwrap();
    assert_eq!(action, Action::await_change());
    let rb = get(&env.client, "pausable").await;
    assert_eq!(ready(&rb), ("False".into(), "Suspended".into()));
    assert_eq!(env.api.jobs().await.len(), 1, "suspended: nothing fires");
    assert!(env.event_reasons("pausable").contains(&"Suspended".to_string()));

    kubectl_patch(&env.client, "pausable", json!({"spec": {"suspend": false}})).await;
    env.reconcile("pausable").await.unwrap();
    let st = status(&get(&env.client, "pausable").await);
    assert_eq!(st.active_runs.len(), 1);
    assert_eq!(st.active_runs[0].trigger, Trigger::Schedule, "unsuspending is not a spec change");
    assert_eq!(st.active_runs[0].schedule_time, format_time(t(45)));
    env.settle("pausable").await;
    env.reconcile("pausable").await.unwrap();
    assert_eq!(env.api.jobs().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_change_reruns_with_a_new_generation() {
    let env = Env::start().await;
    create(&env.client, "edit", spec(&env.api.base, "ok", json!({}))).await;
    env.reconcile("edit").await.unwrap();
    env.settle("edit").await;
    kubectl_patch(&env.client, "edit", json!({"spec": {"model": "qwen2.5:7b"}})).await;
    env.clock.advance_secs(60);
    env.reconcile("edit").await.unwrap();
    let rb = get(&env.client, "edit").await;
    let st = status(&rb);
    assert_eq!(rb.metadata.generation, Some(2));
    assert_eq!(st.observed_generation, Some(2));
    assert_eq!(st.active_runs[0].trigger, Trigger::SpecChanged);
    let jobs = env.api.jobs().await;
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[1].request["model"], "qwen2.5:7b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_down_backs_off_exponentially_and_recovers() {
    let env = Env::start().await;
    let down = free_addr().await;
    create(&env.client, "flaky", spec(&format!("http://{down}"), "ok", json!({"backoffSeconds": 2}))).await;
    let obj = Arc::new(get(&env.client, "flaky").await);
    let mut delays = Vec::new();
    for _ in 0..3 {
        let err = env.reconcile("flaky").await.unwrap_err();
        assert!(err.to_string().contains("cannot reach the RUNE API"), "{err}");
        delays.push(error_policy(obj.clone(), &err, env.ctx.clone()));
    }
    assert_eq!(
        delays,
        vec![
            Action::requeue(Duration::from_secs(2)),
            Action::requeue(Duration::from_secs(4)),
            Action::requeue(Duration::from_secs(8))
        ]
    );
    let st = status(&get(&env.client, "flaky").await);
    assert!(st.last_schedule_time.is_none(), "a fire that could not be submitted is not consumed");
    for _ in 0..100 {
        if env.kube.objects("events.k8s.io", "events", NS).iter().any(|e| e["reason"] == "ReconcileError") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(env.event_reasons("flaky").contains(&"ReconcileError".to_string()), "errors are visible as events");

    // The API comes back on the same address: the next reconcile submits and the backoff resets.
    let listener = tokio::net::TcpListener::bind(down).await.unwrap();
    let api = RuneApi::start_on(listener).await;
    env.reconcile("flaky").await.unwrap();
    let st = status(&get(&env.client, "flaky").await);
    assert_eq!(st.active_runs.len(), 1);
    let err = rune_operator::reconcile::Error::Secret("x".into());
    assert_eq!(
        error_policy(obj, &err, env.ctx.clone()),
        Action::requeue(Duration::from_secs(2)),
        "backoff reset after success"
    );
    let text = env.ctx.metrics.render();
    assert!(text.contains("rune_operator_reconcile_total{result=\"error\"} 4"), "{text}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_count_and_timeouts_cancel() {
    let env = Env::start().await;
    create(&env.client, "bad", spec(&env.api.base, "fail", json!({}))).await;
    env.reconcile("bad").await.unwrap();
    let rb = env.settle("bad").await;
    let st = status(&rb);
    assert_eq!(st.consecutive_failures, 1);
    assert_eq!(st.history[0].status, RunStatus::Failed);
    assert!(st.history[0].error.as_deref().unwrap().contains("agent failed on purpose"));
    assert_eq!(ready(&rb), ("False".into(), "RunFailed".into()));
    assert!(env.event_reasons("bad").contains(&"RunFailed".to_string()));

    create(&env.client, "slow", spec(&env.api.base, "slow", json!({"timeoutSeconds": 30}))).await;
    env.reconcile("slow").await.unwrap();
    let id = status(&get(&env.client, "slow").await).active_runs[0].run_id.clone();
    env.clock.advance_secs(10);
    env.reconcile("slow").await.unwrap();
    assert_eq!(status(&get(&env.client, "slow").await).active_runs.len(), 1, "still within its timeout");
    env.clock.advance_secs(25);
    env.reconcile("slow").await.unwrap();
    let st = status(&get(&env.client, "slow").await);
    assert!(st.active_runs.is_empty());
    assert!(st.history[0].error.as_deref().unwrap().contains("timed out after 30s"));
    let job = env.api.wait_terminal(&id).await;
    assert_eq!(job.status, rune_core::JobStatus::Cancelled, "the timed-out job is cancelled at the API");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_cost_and_infrastructure_gates() {
    let env = Env::start().await;
    // Budget: any projection exceeds $0.
    create(&env.client, "cheap", spec(&env.api.base, "ok", json!({"budget": {"maxCostUSD": 0.0, "gpu": "a100"}})))
        .await;
    env.reconcile("cheap").await.unwrap();
    let rb = get(&env.client, "cheap").await;
    assert_eq!(ready(&rb), ("False".into(), "BudgetExceeded".into()));
    assert!(env.event_reasons("cheap").contains(&"BudgetExceeded".to_string()));
    // A generous budget passes.
    create(&env.client, "rich", spec(&env.api.base, "ok", json!({"budget": {"maxCostUSD": 1000.0, "gpu": "a100"}})))
        .await;
    env.reconcile("rich").await.unwrap();
    assert_eq!(status(&get(&env.client, "rich").await).active_runs.len(), 1);

    // Cost gate: a Vast.ai estimate without a price range has low confidence: refused.
    let vast = |range: bool| {
        let mut v = json!({"templateHash": "abc"});
        if range {
            v["minDph"] = json!(2.0);
            v["maxDph"] = json!(3.0);
        }
        json!({"costEstimation": {"vastai": true}, "provisioning": {"vastai": v}})
    };
    create(&env.client, "unsure", spec(&env.api.base, "ok", vast(false))).await;
    env.reconcile("unsure").await.unwrap();
    let rb = get(&env.client, "unsure").await;
    assert_eq!(ready(&rb).1, "RunFailed");
    let msg = status(&rb).conditions[0].message.clone();
    assert!(msg.contains("below threshold 0.95"), "{msg}");
    create(&env.client, "sure", spec(&env.api.base, "ok", vast(true))).await;
    env.reconcile("sure").await.unwrap();
    assert_eq!(status(&get(&env.client, "sure").await).active_runs.len(), 1);
    assert_eq!(env.api.jobs().await.len(), 2, "only the two admitted benchmarks ran");

    // infrastructureRef: waits (30 s requeue) until the claim is Synced and Ready.
    let infra = json!({"infrastructureRef": {"apiVersion": "database.infra.rune.ai/v1alpha1", "kind": "RuneDatabase", "name": "db"}});
    create(&env.client, "infra", spec(&env.api.base, "ok", infra)).await;
    let action = env.reconcile("infra").await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(30)));
    assert_eq!(ready(&get(&env.client, "infra").await), ("False".into(), "InfrastructureNotReady".into()));
    let ar = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        "database.infra.rune.ai",
        "v1alpha1",
        "RuneDatabase",
    ));
    let dbs: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(env.client.clone(), NS, &ar);
    let db = kube::api::DynamicObject::new("db", &ar);
    dbs.create(&Default::default(), &db).await.unwrap();
    let set_status = |ready: &str| {
        serde_json::to_vec(&json!({"status": {"conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": ready}]}})).unwrap()
    };
    dbs.replace_status("db", &Default::default(), set_status("False")).await.unwrap();
    env.reconcile("infra").await.unwrap();
    assert_eq!(ready(&get(&env.client, "infra").await).1, "InfrastructureNotReady");
    dbs.replace_status("db", &Default::default(), set_status("True")).await.unwrap();
    env.reconcile("infra").await.unwrap();
    let rb = get(&env.client, "infra").await;
    assert_eq!(status(&rb).active_runs.len(), 1, "{:?}", rb.status);
    env.assert_rbac_covers_calls();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_schedule_is_a_condition_and_an_event() {
    let env = Env::start().await;
    // Shape-valid (passes the schema), semantically invalid (minute 61).
    create(&env.client, "typo", spec(&env.api.base, "ok", json!({"schedule": "61 * * * *"}))).await;
    env.reconcile("typo").await.unwrap();
    let rb = get(&env.client, "typo").await;
    assert_eq!(ready(&rb), ("False".into(), "InvalidSchedule".into()));
    assert!(env.event_reasons("typo").contains(&"InvalidSchedule".to_string()));
    assert!(env.api.jobs().await.is_empty());
}

/// A bad `apiTokenSecretRef` is an error that names the field and the fix, retried with
/// backoff (the Secret may be created later); nothing is submitted meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_secret_refs_are_reported() {
    let env = Env::start().await;
    let cases = [
        ("other-ns", "elsewhere/rune-token", "must be in the benchmark's namespace"),
        ("missing", "no-such-secret", "not found"),
        ("no-key", "keyless", "has no key `token`"),
    ];
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = kube::Api::namespaced(env.client.clone(), NS);
    let keyless: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(json!({"metadata": {"name": "keyless"}, "data": {"password": "eA=="}})).unwrap();
    secrets.create(&Default::default(), &keyless).await.unwrap();
    for (name, reference, expected) in cases {
        create(&env.client, name, spec(&env.api.base, "ok", json!({"apiTokenSecretRef": reference}))).await;
        let err = env.reconcile(name).await.unwrap_err().to_string();
        assert!(err.contains(expected) && err.contains("apiTokenSecretRef"), "{name}: {err}");
    }
    // A wrong token is retried with backoff (fixing the Secret is enough), not recorded as
    // a run.
    let wrong: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(json!({"metadata": {"name": "wrong"}, "data": {"token": "d3Jvbmc="}})).unwrap();
    secrets.create(&Default::default(), &wrong).await.unwrap();
    create(&env.client, "wrong-token", spec(&env.api.base, "ok", json!({"apiTokenSecretRef": "wrong"}))).await;
    let err = env.reconcile("wrong-token").await.unwrap_err().to_string();
    assert!(err.contains("401"), "{err}");
    assert!(status(&get(&env.client, "wrong-token").await).last_schedule_time.is_none());
    let fixed = json!({"data": {"token": rune_token_b64()}});
    secrets.patch("wrong", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&fixed)).await.unwrap();
    env.reconcile("wrong-token").await.unwrap();
    assert_eq!(status(&get(&env.client, "wrong-token").await).active_runs.len(), 1, "runs once the Secret is fixed");
    assert_eq!(env.api.jobs().await.len(), 1);
}
