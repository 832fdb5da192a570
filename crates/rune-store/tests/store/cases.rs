//! Engine-independent cases; each `pub async fn` is one test run on both engines.

use crate::harness::Harness;
use rune_core::records::{ArtifactKind, ChainEdge, ChainNode, ChainState, ConcurrencyPolicy, NewJobEvent};
use rune_core::{JobId, JobKind, JobRecord, JobStatus, TenantId, Timestamp};
use rune_store::backup::{self, Manifest};
use rune_store::{
    CreateOutcome, Cursor, JobQuery, NewJob, OpenOptions, ScheduleSpec, SortOrder, StatusUpdate, Store, StoreError,
    UpdateOutcome,
};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn tenant(s: &str) -> TenantId {
    s.parse().expect("tenant")
}

fn new_job(t: &str, kind: JobKind, body: &str) -> NewJob {
    NewJob { tenant_id: tenant(t), kind, request_json: body.into(), idempotency_key: None, schedule_id: None }
}

async fn create(store: &dyn Store, t: &str, kind: JobKind, body: &str) -> JobRecord {
    match store.create_job(new_job(t, kind, body)).await.expect("create") {
        CreateOutcome::Created(j) => j,
        other => panic!("expected Created, got {other:?}"),
    }
}

/// Moves a fresh job to `status` through legal transitions only.
async fn job_in(store: &dyn Store, status: JobStatus) -> JobRecord {
    let job = create(store, "t1", JobKind::Benchmark, "{}").await;
    let to = |s| StatusUpdate::to(s);
    let updated = |o: UpdateOutcome| match o {
        UpdateOutcome::Updated(j) => j,
        other => panic!("setup transition failed: {other:?}"),
    };
    match status {
        JobStatus::Queued => job,
        JobStatus::Running => updated(store.update_status(&job.job_id, to(JobStatus::Running)).await.expect("u")),
        JobStatus::Cancelled => updated(store.update_status(&job.job_id, to(JobStatus::Cancelled)).await.expect("u")),
        terminal => {
            store.update_status(&job.job_id, to(JobStatus::Running)).await.expect("u");
            updated(store.update_status(&job.job_id, to(terminal)).await.expect("u"))
        }
    }
}

/// A job reads back as created; another tenant sees nothing.
pub async fn create_get_and_tenant_isolation(h: &Harness) {
    let s = h.store.as_ref();
    let job = create(s, "alpha", JobKind::CostEstimate, r#"{"a":1}"#).await;
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.message.as_deref(), Some("accepted"));
    assert_eq!(job.attempts, 0);
    let got = s.get_job(Some(&tenant("alpha")), &job.job_id).await.expect("get").expect("present");
    assert_eq!(got, job);
    assert!(
        s.get_job(Some(&tenant("beta")), &job.job_id).await.expect("get").is_none(),
        "cross-tenant read must be absent"
    );
    assert!(s.get_job(None, &job.job_id).await.expect("get").is_some(), "admin read sees every tenant");
    let missing: JobId = "no-such-job".parse().expect("id");
    assert!(s.get_job(None, &missing).await.expect("get").is_none());
}

/// Every filter works, and walking pages in both orders returns each row exactly once.
pub async fn list_filters_and_cursor_pagination(h: &Harness) {
    let s = h.store.as_ref();
    let mut ids = Vec::new();
    for i in 0..23 {
        let kind = if i % 3 == 0 { JobKind::CostEstimate } else { JobKind::Benchmark };
        let t = if i % 2 == 0 { "a" } else { "b" };
        ids.push((t, kind, create(s, t, kind, &format!("{{\"i\":{i}}}")).await));
    }
    // Fail two of tenant a's benchmark jobs.
    let a_bench: Vec<_> = ids.iter().filter(|(t, k, _)| *t == "a" && *k == JobKind::Benchmark).collect();
    for (_, _, j) in a_bench.iter().take(2) {
        s.update_status(&j.job_id, StatusUpdate::to(JobStatus::Running)).await.expect("run");
        s.update_status(&j.job_id, StatusUpdate::to(JobStatus::Failed)).await.expect("fail");
    }
    for order in [SortOrder::Desc, SortOrder::Asc] {
        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let q = JobQuery {
                tenant_id: Some(tenant("a")),
                order,
                limit: 5,
                cursor: cursor.clone(),
                ..Default::default()
            };
            let page = s.list_jobs(&q).await.expect("list");
            assert!(page.jobs.len() <= 5);
            seen.extend(page.jobs.iter().map(|j| (j.created_at, j.job_id.clone())));
            match page.next_cursor {
                Some(c) => {
                    // Cursors survive a text round trip (clients hold them as strings).
                    cursor = Some(Cursor::decode(&c.encode()).expect("cursor decodes"));
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), 12, "tenant a has 12 jobs");
        let unique: HashSet<_> = seen.iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(unique.len(), 12, "no duplicates across pages");
        let mut sorted = seen.clone();
        sorted.sort();
        if order == SortOrder::Desc {
            sorted.reverse();
        }
        assert_eq!(seen, sorted, "{order:?} order holds across pages");
    }
    let failed = s
        .list_jobs(&JobQuery {
            tenant_id: Some(tenant("a")),
            status: Some(JobStatus::Failed),
            limit: 50,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(failed.jobs.len(), 2);
    assert!(failed.next_cursor.is_none());
    let kinds = s
        .list_jobs(&JobQuery { kind: Some(JobKind::CostEstimate), limit: 50, ..Default::default() })
        .await
        .expect("list");
    assert_eq!(kinds.jobs.len(), 8);
    assert!(kinds.jobs.iter().all(|j| j.kind == JobKind::CostEstimate));
    // Created-time range: [third job, tenth job) in creation order.
    let all_asc =
        s.list_jobs(&JobQuery { order: SortOrder::Asc, limit: 100, ..Default::default() }).await.expect("list");
    let from = all_asc.jobs[2].created_at;
    let to = all_asc.jobs[9].created_at;
    let ranged = s
        .list_jobs(&JobQuery { created_from: Some(from), created_to: Some(to), limit: 100, ..Default::default() })
        .await
        .expect("list");
    assert!(ranged.jobs.iter().all(|j| j.created_at >= from && j.created_at < to));
    assert!(ranged.jobs.len() >= 7 - 1, "range returns the jobs inside it");
}

/// Counts group by status and kind, per tenant and overall.
pub async fn counts_by_status_and_kind(h: &Harness) {
    let s = h.store.as_ref();
    create(s, "a", JobKind::Benchmark, "{}").await;
    create(s, "a", JobKind::CostEstimate, "{}").await;
    let j = create(s, "b", JobKind::Benchmark, "{}").await;
    s.update_status(&j.job_id, StatusUpdate::to(JobStatus::Cancelled)).await.expect("cancel");
    let all = s.count_jobs(None).await.expect("count");
    assert_eq!(all.total, 3);
    assert_eq!(all.by_status.get("queued"), Some(&2));
    assert_eq!(all.by_status.get("cancelled"), Some(&1));
    assert_eq!(all.by_kind.get("benchmark"), Some(&2));
    let a = s.count_jobs(Some(&tenant("a"))).await.expect("count");
    assert_eq!(a.total, 2);
}

/// Every (from, to) pair: the store accepts exactly the legal transitions, and a
/// rejected update changes nothing.
pub async fn state_machine_exhaustive(h: &Harness) {
    let s = h.store.as_ref();
    for from in JobStatus::ALL {
        for to in JobStatus::ALL {
            let job = job_in(s, from).await;
            let mut update = StatusUpdate::to(to);
            update.error = Some("x".into());
            let outcome = s.update_status(&job.job_id, update).await.expect("update");
            let after = s.get_job(None, &job.job_id).await.expect("get").expect("present");
            if from.can_transition_to(to) {
                assert!(
                    matches!(outcome, UpdateOutcome::Updated(ref j) if j.status == to),
                    "{from}→{to} must be accepted"
                );
                assert_eq!(after.status, to);
                assert_eq!(after.finished_at.is_some(), to.is_terminal());
            } else {
                assert_eq!(outcome, UpdateOutcome::Rejected { current: from }, "{from}→{to} must be rejected");
                assert_eq!(after, job, "a rejected update changes nothing");
            }
        }
    }
    let missing: JobId = "missing".parse().expect("id");
    assert_eq!(
        s.update_status(&missing, StatusUpdate::to(JobStatus::Running)).await.expect("u"),
        UpdateOutcome::NotFound
    );
}

/// Random sequences of updates: the store always agrees with the pure state machine,
/// and once terminal a job never changes again.
pub async fn state_machine_random_sequences(h: &Harness) {
    use proptest::prelude::*;
    let store = h.store.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
            cases: 24,
            failure_persistence: None,
            ..Default::default()
        });
        let strategy = proptest::collection::vec(proptest::sample::select(JobStatus::ALL.to_vec()), 1..8);
        runner
            .run(&strategy, |seq| {
                handle.block_on(async {
                    let job = create(store.as_ref(), "p", JobKind::Benchmark, "{}").await;
                    let mut model = JobStatus::Queued;
                    for next in seq {
                        let out = store.update_status(&job.job_id, StatusUpdate::to(next)).await.expect("update");
                        if model.can_transition_to(next) {
                            prop_assert!(matches!(out, UpdateOutcome::Updated(_)));
                            model = next;
                        } else {
                            prop_assert_eq!(out, UpdateOutcome::Rejected { current: model });
                        }
                        let stored = store.get_job(None, &job.job_id).await.expect("get").expect("present").status;
                        prop_assert_eq!(stored, model);
                    }
                    Ok(())
                })
            })
            .expect("store agrees with the state machine");
    });
}

/// Same key + same payload replays; a different payload conflicts; keys are scoped by
/// tenant and kind.
pub async fn idempotency_replay_and_conflict(h: &Harness) {
    let s = h.store.as_ref();
    let with_key =
        |t: &str, kind, body: &str, key: &str| NewJob { idempotency_key: Some(key.into()), ..new_job(t, kind, body) };
    let CreateOutcome::Created(first) =
        s.create_job(with_key("a", JobKind::Benchmark, "{\"q\":1}", "k1")).await.expect("c")
    else {
        panic!("first create")
    };
    let replay = s.create_job(with_key("a", JobKind::Benchmark, "{\"q\":1}", "k1")).await.expect("c");
    assert_eq!(replay, CreateOutcome::Replayed(first.clone()));
    let conflict = s.create_job(with_key("a", JobKind::Benchmark, "{\"q\":2}", "k1")).await.expect("c");
    assert_eq!(conflict, CreateOutcome::KeyConflict { existing: first.job_id.clone() });
    assert!(matches!(
        s.create_job(with_key("b", JobKind::Benchmark, "{\"q\":1}", "k1")).await.expect("c"),
        CreateOutcome::Created(_)
    ));
    assert!(matches!(
        s.create_job(with_key("a", JobKind::CostEstimate, "{\"q\":1}", "k1")).await.expect("c"),
        CreateOutcome::Created(_)
    ));
    assert_eq!(s.count_jobs(None).await.expect("count").total, 3);
}

/// Many concurrent identical submissions create exactly one job.
pub async fn idempotency_race_creates_exactly_one(h: &Harness) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let store = h.store.clone();
        tasks.spawn(async move {
            store
                .create_job(NewJob { idempotency_key: Some("race".into()), ..new_job("r", JobKind::Benchmark, "{}") })
                .await
                .expect("create")
        });
    }
    let mut created = 0;
    let mut ids = HashSet::new();
    while let Some(res) = tasks.join_next().await {
        match res.expect("join") {
            CreateOutcome::Created(j) => {
                created += 1;
                ids.insert(j.job_id);
            }
            CreateOutcome::Replayed(j) => {
                ids.insert(j.job_id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(h.store.count_jobs(None).await.expect("count").total, 1);
}

/// Claims take the oldest queued job; concurrent claimers never share a job.
pub async fn claim_is_oldest_first_and_exclusive(h: &Harness) {
    let s = h.store.as_ref();
    let first = create(s, "q", JobKind::Benchmark, "{}").await;
    for _ in 0..19 {
        create(s, "q", JobKind::Benchmark, "{}").await;
    }
    let claimed = s.claim_next_job("w0", Duration::from_secs(30)).await.expect("claim").expect("a job");
    assert_eq!(claimed.job_id, first.job_id);
    assert_eq!(claimed.status, JobStatus::Running);
    assert_eq!(claimed.attempts, 1);
    assert_eq!(claimed.lease_owner.as_deref(), Some("w0"));
    assert!(claimed.lease_expires_at.expect("lease") > claimed.updated_at);
    assert!(claimed.started_at.is_some());
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..8 {
        let store = h.store.clone();
        tasks.spawn(async move {
            let mut got = Vec::new();
            while let Some(j) = store.claim_next_job(&format!("w{w}"), Duration::from_secs(30)).await.expect("claim") {
                got.push(j.job_id);
            }
            got
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.expect("join"));
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), 19, "every remaining job claimed once");
    assert_eq!(unique.len(), 19, "no job claimed twice");
    assert!(s.claim_next_job("late", Duration::from_secs(1)).await.expect("claim").is_none());
}

/// Heartbeats extend only the holder's lease; expired leases are requeued, then failed
/// with a reason after the attempt limit; a lost worker cannot finish the job.
pub async fn lease_heartbeat_and_recovery(h: &Harness) {
    let s = h.store.as_ref();
    let job = create(s, "l", JobKind::Benchmark, "{}").await;
    let c = s.claim_next_job("w1", Duration::from_millis(1)).await.expect("claim").expect("job");
    assert!(!s.heartbeat(&c.job_id, "intruder", Duration::from_secs(5)).await.expect("hb"));
    assert!(s.heartbeat(&c.job_id, "w1", Duration::from_millis(1)).await.expect("hb"));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = s.recover_expired_leases(Timestamp::now(), 2).await.expect("recover");
    assert_eq!(report.requeued, vec![job.job_id.clone()]);
    let requeued = s.get_job(None, &job.job_id).await.expect("g").expect("p");
    assert_eq!(requeued.status, JobStatus::Queued);
    assert!(requeued.lease_owner.is_none());
    assert!(requeued.message.as_deref().is_some_and(|m| m.contains("w1")));
    // The old worker comes back and tries to finish: refused.
    let mut late = StatusUpdate::to(JobStatus::Succeeded);
    late.lease_owner = Some("w1".into());
    assert!(matches!(s.update_status(&job.job_id, late).await.expect("u"), UpdateOutcome::Rejected { .. }));
    // Second attempt also expires: the limit of 2 is reached, the job fails with a reason.
    let again = s.claim_next_job("w2", Duration::from_millis(1)).await.expect("claim").expect("job");
    assert_eq!(again.attempts, 2);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = s.recover_expired_leases(Timestamp::now(), 2).await.expect("recover");
    assert_eq!(report.failed, vec![job.job_id.clone()]);
    let failed = s.get_job(None, &job.job_id).await.expect("g").expect("p");
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.error.as_deref().is_some_and(|e| e.contains("gave up after 2 attempt")), "{:?}", failed.error);
    assert!(failed.finished_at.is_some());
    // A live lease is not touched.
    create(s, "l", JobKind::Benchmark, "{}").await;
    s.claim_next_job("w3", Duration::from_secs(60)).await.expect("claim").expect("job");
    assert_eq!(s.recover_expired_leases(Timestamp::now(), 2).await.expect("r"), Default::default());
    // The holder finishes normally with its lease.
    let mut done = StatusUpdate::to(JobStatus::Succeeded);
    done.lease_owner = Some("w3".into());
    done.result_json = Some("{\"ok\":true}".into());
    let running =
        s.list_jobs(&JobQuery { status: Some(JobStatus::Running), limit: 5, ..Default::default() }).await.expect("l");
    let UpdateOutcome::Updated(fin) = s.update_status(&running.jobs[0].job_id, done).await.expect("u") else {
        panic!("finish")
    };
    assert!(fin.lease_owner.is_none() && fin.lease_expires_at.is_none());
}

/// Events come back in order, resumable after any id, and only for their job.
pub async fn events_are_ordered_and_resumable(h: &Harness) {
    let s = h.store.as_ref();
    let a = create(s, "e", JobKind::Benchmark, "{}").await;
    let b = create(s, "e", JobKind::Benchmark, "{}").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut ev = NewJobEvent::ok(format!("phase.{i}"));
        ev.duration_ms = Some(i as f64 * 1.5);
        ev.labels = serde_json::json!({"i": i});
        ids.push(s.append_event(&a.job_id, ev).await.expect("append"));
        s.append_event(&b.job_id, NewJobEvent::ok("other")).await.expect("append");
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let all = s.events_after(&a.job_id, 0, 100).await.expect("events");
    assert_eq!(
        all.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        ["phase.0", "phase.1", "phase.2", "phase.3", "phase.4"]
    );
    assert_eq!(all[3].labels, serde_json::json!({"i": 3}));
    assert_eq!(all[2].duration_ms, Some(3.0));
    let rest = s.events_after(&a.job_id, ids[2], 100).await.expect("events");
    assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), ids[3..].to_vec());
    assert_eq!(s.events_after(&a.job_id, ids[0], 2).await.expect("events").len(), 2);
}

/// Chain state is stored whole and replaced on update.
pub async fn chain_state_round_trip(h: &Harness) {
    let s = h.store.as_ref();
    let job = create(s, "c", JobKind::Benchmark, "{}").await;
    assert!(s.get_chain_state(&job.job_id).await.expect("get").is_none());
    let node = |id: &str, status: &str| ChainNode {
        id: id.into(),
        agent_name: "holmes".into(),
        status: status.into(),
        started_at: Some(Timestamp::from_millis(5)),
        finished_at: None,
        error: None,
    };
    let mut state = ChainState {
        nodes: vec![node("a", "success"), node("b", "running")],
        edges: vec![ChainEdge { from: "a".into(), to: "b".into() }],
    };
    s.put_chain_state(&job.job_id, &state).await.expect("put");
    assert_eq!(s.get_chain_state(&job.job_id).await.expect("get"), Some(state.clone()));
    state.nodes[1].status = "failed".into();
    s.put_chain_state(&job.job_id, &state).await.expect("put");
    let got = s.get_chain_state(&job.job_id).await.expect("get").expect("present");
    assert_eq!(got.overall_status(), "failed");
}

/// Artifacts keep content, size and SHA-256; names that are paths are refused.
pub async fn artifacts_round_trip_and_names_checked(h: &Harness) {
    let s = h.store.as_ref();
    let job = create(s, "x", JobKind::Benchmark, "{}").await;
    let content = b"\x89PNG\r\n\x1a\n\x00binary\xff".to_vec();
    let meta = s.put_artifact(&job.job_id, ArtifactKind::Screenshot, "shot.png", content.clone()).await.expect("put");
    assert_eq!(meta.size_bytes, content.len() as u64);
    assert_eq!(meta.sha256, sha256_hex(&content));
    let (got_meta, got) = s.get_artifact(&job.job_id, &meta.artifact_id).await.expect("get").expect("present");
    assert_eq!(got, content);
    assert_eq!(got_meta, meta);
    assert_eq!(s.list_artifacts(&job.job_id).await.expect("list"), vec![meta.clone()]);
    let other = create(s, "x", JobKind::Benchmark, "{}").await;
    assert!(s.get_artifact(&other.job_id, &meta.artifact_id).await.expect("get").is_none(), "scoped to its job");
    for bad in ["../etc/passwd", "a/b", "", "..", "x\ny"] {
        let err = s.put_artifact(&job.job_id, ArtifactKind::Log, bad, vec![1]).await.expect_err(bad).to_string();
        assert!(err.contains("plain file name"), "{bad}: {err}");
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Settings: put, overwrite, list, delete.
pub async fn settings_crud(h: &Harness) {
    let s = h.store.as_ref();
    assert!(s.get_setting("rune_config").await.expect("get").is_none());
    s.put_setting("rune_config", &serde_json::json!({"defaults": {"model": "m"}})).await.expect("put");
    s.put_setting("rune_config", &serde_json::json!({"defaults": {"model": "n"}})).await.expect("put");
    s.put_setting("estop", &serde_json::json!({"active": false})).await.expect("put");
    assert_eq!(s.get_setting("rune_config").await.expect("get"), Some(serde_json::json!({"defaults": {"model": "n"}})));
    assert_eq!(s.list_settings().await.expect("list").keys().cloned().collect::<Vec<_>>(), ["estop", "rune_config"]);
    assert!(s.delete_setting("estop").await.expect("delete"));
    assert!(!s.delete_setting("estop").await.expect("delete"));
}

/// Schedules: create, unique names per tenant, update, suspend by owner, fire record,
/// tenant-scoped reads and deletes.
pub async fn schedules_crud_and_suspend(h: &Harness) {
    let s = h.store.as_ref();
    let spec = |t: &str, name: &str| ScheduleSpec {
        tenant_id: tenant(t),
        name: name.into(),
        cron: "*/5 * * * *".into(),
        kind: JobKind::Benchmark,
        request_json: "{}".into(),
        suspended: false,
        concurrency_policy: ConcurrencyPolicy::Forbid,
        starting_deadline_seconds: Some(120),
        successful_runs_history_limit: 3,
        failed_runs_history_limit: 1,
    };
    let a = s.create_schedule(spec("a", "nightly")).await.expect("create");
    assert!(!a.suspended);
    assert_eq!(a.starting_deadline_seconds, Some(120));
    let dup = s.create_schedule(spec("a", "nightly")).await.expect_err("duplicate");
    assert!(matches!(dup, StoreError::Conflict(ref m) if m.contains("nightly")), "{dup}");
    s.create_schedule(spec("b", "nightly")).await.expect("same name, other tenant");
    let mut changed = spec("a", "nightly");
    changed.cron = "0 3 * * *".into();
    changed.concurrency_policy = ConcurrencyPolicy::Replace;
    let updated = s.update_schedule(&a.schedule_id, changed).await.expect("update").expect("present");
    assert_eq!(updated.cron, "0 3 * * *");
    assert_eq!(updated.concurrency_policy, ConcurrencyPolicy::Replace);
    let est = s.set_schedule_suspended(&a.schedule_id, Some("estop"), None).await.expect("s").expect("p");
    assert!(est.suspended && est.suspended_by.as_deref() == Some("estop"));
    // A release by `user` does not resume what the E-Stop suspended.
    let still = s.set_schedule_suspended(&a.schedule_id, None, Some("user")).await.expect("s").expect("p");
    assert!(still.suspended);
    let resumed = s.set_schedule_suspended(&a.schedule_id, None, Some("estop")).await.expect("s").expect("p");
    assert!(!resumed.suspended && resumed.suspended_by.is_none());
    let job = create(s, "a", JobKind::Benchmark, "{}").await;
    s.record_schedule_fire(&a.schedule_id, Timestamp::from_millis(1_000), Some(&job.job_id)).await.expect("fire");
    let fired = s.get_schedule(Some(&tenant("a")), &a.schedule_id).await.expect("g").expect("p");
    assert_eq!(fired.last_schedule_time, Some(Timestamp::from_millis(1_000)));
    assert_eq!(fired.last_job_id, Some(job.job_id));
    assert!(s.get_schedule(Some(&tenant("b")), &a.schedule_id).await.expect("g").is_none());
    assert_eq!(s.list_schedules(Some(&tenant("a"))).await.expect("l").len(), 1);
    assert_eq!(s.list_schedules(None).await.expect("l").len(), 2);
    assert!(!s.delete_schedule(Some(&tenant("b")), &a.schedule_id).await.expect("d"), "other tenant cannot delete");
    assert!(s.delete_schedule(Some(&tenant("a")), &a.schedule_id).await.expect("d"));
}

/// Timestamps survive storage at microsecond precision on both engines.
pub async fn timestamps_keep_microseconds(h: &Harness) {
    let s = h.store.as_ref();
    let a = create(s, "t", JobKind::Benchmark, "{}").await;
    let b = create(s, "t", JobKind::Benchmark, "{}").await;
    let got = s.get_job(None, &a.job_id).await.expect("g").expect("p");
    assert_eq!(got.created_at, a.created_at);
    assert!(b.created_at > a.created_at, "sub-millisecond ordering is kept");
    assert!(a.created_at.as_micros() % 1000 != 0 || b.created_at.as_micros() % 1000 != 0, "not truncated to ms");
    let now = Timestamp::now();
    assert!((now.as_micros() - a.created_at.as_micros()).abs() < 60_000_000, "wall clock, seconds since epoch");
}

async fn seed_history(s: &dyn Store, n: usize) -> Vec<JobRecord> {
    let mut out = Vec::new();
    for i in 0..n {
        let job = create(s, "h", JobKind::Benchmark, &format!("{{\"n\":{i}}}")).await;
        if i % 3 == 0 {
            s.update_status(&job.job_id, StatusUpdate::to(JobStatus::Running)).await.expect("run");
            let mut done = StatusUpdate::to(JobStatus::Succeeded);
            done.result_json = Some(format!("{{\"score\":{i}}}"));
            s.update_status(&job.job_id, done).await.expect("done");
        }
        out.push(job);
    }
    out
}

/// Latest → jobs → backup → rollback to 1 → migrate again → verify against the
/// manifest passes; deleting or changing a job makes it fail and name the job.
pub async fn migrations_round_trip_with_verify(h: &Harness) {
    let s = h.store.as_ref();
    let jobs = seed_history(s, 12).await;
    let bpath = h.dir.path().join("manual.bak");
    let manifest = backup::backup(s, &bpath).await.expect("backup");
    assert_eq!(manifest.job_history.count, 12);
    let latest = rune_store::migrations::latest_version();
    let (undone, auto) =
        backup::rollback_with_backup(s, 1, Some(&h.dir.path().join("backups"))).await.expect("rollback");
    assert_eq!(undone, (2..=latest).rev().collect::<Vec<_>>());
    assert!(auto.expect("automatic backup before rollback").exists());
    assert_eq!(s.schema_status().await.expect("status").schema_version, 1);
    assert_eq!(s.table_counts().await.expect("counts").get("jobs"), Some(&12), "rollback keeps the job history");
    let (applied, auto) =
        backup::migrate_with_backup(s, None, Some(&h.dir.path().join("backups"))).await.expect("migrate");
    assert_eq!(applied, (2..=latest).collect::<Vec<_>>());
    assert!(auto.is_some());
    let mpath = backup::manifest_path(&bpath);
    let m = Manifest::load(&mpath).expect("manifest");
    let report = backup::verify(s, Some((&m, &mpath))).await.expect("verify");
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.checked_jobs, 12);
    // The store still works at the latest schema after the round trip.
    create(s, "h", JobKind::Benchmark, "{}").await;
    let report = backup::verify(s, Some((&m, &mpath))).await.expect("verify");
    assert!(report.ok() && report.new_jobs == 1);
    // Tamper: delete one job, change another's result.
    let deleted = &jobs[1].job_id;
    let changed = &jobs[3].job_id; // succeeded (3 % 3 == 0)
    h.exec(&format!("DELETE FROM jobs WHERE job_id = '{deleted}'")).await;
    h.exec(&format!("UPDATE jobs SET result_json = '{{\"score\":1000}}' WHERE job_id = '{changed}'")).await;
    let report = backup::verify(s, Some((&m, &mpath))).await.expect("verify");
    assert!(!report.ok());
    assert_eq!(report.missing_jobs, vec![deleted.to_string()]);
    assert_eq!(report.changed_jobs, vec![changed.to_string()]);
}

/// A schema newer than the binary is refused with the exact fix; the older binary rolls
/// it back with the down SQL the newer one stored.
pub async fn newer_schema_is_refused_and_rolled_back_by_stored_sql(h: &Harness) {
    let latest = rune_store::migrations::latest_version();
    let future = latest + 1;
    h.exec(&format!(
        "CREATE TABLE future_feature (id INTEGER PRIMARY KEY); \
         INSERT INTO rune_migrations (version, name, checksum, up_sql, down_sql, applied_at, applied_by) \
         VALUES ({future}, 'future_feature', 'abc', 'CREATE TABLE future_feature (id INTEGER PRIMARY KEY)', \
         'DROP TABLE future_feature', 1.0, 'rune 9.9.9')"
    ))
    .await;
    let err = h.reopen(&h.options()).await.err().expect("must refuse a newer schema").to_string();
    assert!(err.contains(&format!("schema version {future} is newer")), "{err}");
    assert!(err.contains(&format!("rune db rollback --to {latest}")), "{err}");
    let inspect =
        h.reopen(&OpenOptions { allow_newer_schema: true, migrate: false, ..h.options() }).await.expect("inspect");
    let (undone, _) = backup::rollback_with_backup(inspect.as_ref(), latest, Some(&h.dir.path().join("backups")))
        .await
        .expect("rollback");
    assert_eq!(undone, vec![future]);
    drop(inspect);
    let reopened = h.reopen(&h.options()).await.expect("opens after rollback");
    assert_eq!(reopened.schema_status().await.expect("s").schema_version, latest);
    // The stored down SQL really ran: the table can be created again.
    h.exec("CREATE TABLE future_feature (id INTEGER PRIMARY KEY)").await;
}

/// A migration whose recorded checksum differs from the binary's is reported.
pub async fn edited_migration_is_detected(h: &Harness) {
    h.exec("UPDATE rune_migrations SET checksum = 'tampered' WHERE version = 2").await;
    let err = h.reopen(&h.options()).await.err().expect("refused").to_string();
    assert!(err.contains("migration 2") && err.contains("tampered"), "{err}");
}

/// Export then import into a fresh database of the same engine: every table's rows
/// arrive, the import can be re-run, and the job history verifies.
pub async fn export_import_round_trip(h: &Harness) {
    let s = h.store.as_ref();
    seed_history(s, 7).await;
    let job = create(s, "h", JobKind::Benchmark, "{}").await;
    s.append_event(&job.job_id, NewJobEvent::ok("provision")).await.expect("ev");
    s.put_artifact(&job.job_id, ArtifactKind::Log, "run.log", b"\x00\x01log".to_vec()).await.expect("art");
    s.put_setting("k", &serde_json::json!([1, 2])).await.expect("set");
    let archive = h.dir.path().join("export.jsonl");
    let counts = rune_store::archive::export(s, &archive).await.expect("export");
    assert_eq!(counts.get("jobs"), Some(&8));
    let target = if h.is_pg {
        crate::harness::Harness::postgres().await.expect("pg")
    } else {
        crate::harness::Harness::sqlite().await
    };
    let report = rune_store::archive::import(target.store.as_ref(), &archive).await.expect("import");
    assert_eq!(report.get("jobs").map(|c| c.inserted), Some(8));
    assert_eq!(report.get("audit_artifact").map(|c| c.inserted), Some(1));
    let again = rune_store::archive::import(target.store.as_ref(), &archive).await.expect("re-import");
    assert_eq!(again.get("jobs").map(|c| c.inserted), Some(0), "re-running inserts nothing twice");
    let src_counts = s.table_counts().await.expect("c");
    let dst_counts = target.store.table_counts().await.expect("c");
    assert_eq!(src_counts, dst_counts);
    let (_, bytes) = target
        .store
        .get_artifact(&job.job_id, &s.list_artifacts(&job.job_id).await.expect("l")[0].artifact_id)
        .await
        .expect("g")
        .expect("p");
    assert_eq!(bytes, b"\x00\x01log");
    let m = backup::compute_manifest(s).await.expect("m");
    let report =
        backup::verify(target.store.as_ref(), Some((&m, std::path::Path::new("source")))).await.expect("verify");
    assert!(report.ok(), "{report:?}");
    assert_eq!(target.store.schema_status().await.expect("s").database_id, m.database_id, "same database, moved");
    // Truncated archive is refused before anything is written.
    let text = std::fs::read_to_string(&archive).expect("read");
    let cut: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
    let truncated = h.dir.path().join("cut.jsonl");
    std::fs::write(&truncated, cut).expect("write");
    let fresh = if h.is_pg {
        crate::harness::Harness::postgres().await.expect("pg")
    } else {
        crate::harness::Harness::sqlite().await
    };
    let err = rune_store::archive::import(fresh.store.as_ref(), &truncated).await.expect_err("truncated").to_string();
    assert!(err.contains("truncated"), "{err}");
    assert_eq!(fresh.store.count_jobs(None).await.expect("c").total, 0, "nothing imported");
}

/// A backup verifies against its manifest; a corrupted file or a foreign manifest is
/// refused with a clear reason.
pub async fn backup_verify_and_tamper_detection(h: &Harness) {
    let s = h.store.as_ref();
    seed_history(s, 5).await;
    let bpath = h.dir.path().join("b1.bak");
    let m = backup::backup(s, &bpath).await.expect("backup");
    let engine = s.engine();
    assert_eq!(backup::verify_backup_file(engine, &bpath).await.expect("verify file"), m);
    let again = backup::backup(s, &bpath).await.expect_err("never overwrites").to_string();
    assert!(again.contains("already exists"), "{again}");
    // Foreign manifest: another database's.
    let other = if h.is_pg {
        crate::harness::Harness::postgres().await.expect("pg")
    } else {
        crate::harness::Harness::sqlite().await
    };
    create(other.store.as_ref(), "o", JobKind::Benchmark, "{}").await;
    let mpath = backup::manifest_path(&bpath);
    let err = backup::verify(other.store.as_ref(), Some((&m, &mpath))).await.expect_err("foreign").to_string();
    assert!(err.contains("belongs to database"), "{err}");
    // Corrupt the backup file: flip bytes in the middle.
    let mut bytes = std::fs::read(&bpath).expect("read");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&bpath, &bytes).expect("write");
    let err = backup::verify_backup_file(engine, &bpath).await.expect_err("corrupt").to_string();
    assert!(err.contains("does not match the manifest"), "{err}");
    let _ = Arc::clone(&h.store);
}
