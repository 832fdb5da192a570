//! API cases; each `pub async fn` runs against a fresh server per engine.

use crate::harness::{pid_file, TestServer, ALPHA_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const COST_BODY: &str = r#"{"vastai": true, "min_dph": 1.0, "max_dph": 2.0, "estimated_duration_seconds": 7200}"#;

async fn json_of(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, v)
}

async fn submit(s: &TestServer, kind: &str, body: &str) -> String {
    let (status, v) = json_of(
        s.alpha(Method::POST, &format!("/v1/jobs/{kind}"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "accepted");
    v["job_id"].as_str().expect("job_id").to_owned()
}

async fn wait_terminal(s: &TestServer, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, v) = json_of(s.alpha(Method::GET, &format!("/v1/jobs/{id}")).send().await.expect("get")).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        if ["succeeded", "failed", "cancelled"].contains(&v["status"].as_str().unwrap_or("")) {
            return v;
        }
        assert!(Instant::now() < deadline, "job {id} never finished: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_status(s: &TestServer, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = json_of(s.alpha(Method::GET, &format!("/v1/jobs/{id}")).send().await.expect("get")).await.1;
        if v["status"] == want {
            return v;
        }
        assert!(Instant::now() < deadline, "job {id} never reached {want}: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A cost estimate is accepted with 202, run by a worker, and its result is the estimate.
pub async fn submit_runs_cost_estimate_to_success(s: &TestServer) {
    let id = submit(s, "cost-estimate", COST_BODY).await;
    let job = wait_terminal(s, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["kind"], "cost-estimate");
    assert_eq!(job["tenant_id"], "alpha");
    assert_eq!(job["result"]["cost_driver"], "vastai");
    assert!((job["result"]["projected_cost_usd"].as_f64().expect("cost") - 3.0).abs() < 1e-9, "midpoint 1.5 $/h × 2 h");
    assert_eq!(job["attempts"], 1);
    for k in ["created_at", "updated_at", "started_at", "finished_at"] {
        assert!(job[k].as_str().is_some_and(|t| t.ends_with('Z')), "{k}: {job}");
    }
    // The typed client reads the same job.
    let view = s.client().get_job(&id).await.expect("client get");
    assert_eq!(view.status, rune_core::JobStatus::Succeeded);
}

/// Kinds whose engine is not in this build are accepted (valid) and then fail with a
/// clear reason, never left queued.
pub async fn unavailable_kind_fails_with_clear_error(s: &TestServer) {
    let id = submit(s, "benchmark", r#"{"backend_url": "http://127.0.0.1:9", "model": "m"}"#).await;
    let job = wait_terminal(s, &id).await;
    assert_eq!(job["status"], "failed");
    assert!(job["error"].as_str().is_some_and(|e| e.contains("not available in this build")), "{job}");
    // The 0.0.0a5 kind alias is understood.
    let id = submit(s, "ollama-instance", r#"{"vastai": false, "template_hash": "x", "min_dph": 1, "max_dph": 2, "reliability": 0.9, "backend_url": "http://o:11434"}"#).await;
    assert_eq!(wait_terminal(s, &id).await["kind"], "llm-instance");
}

/// Bad input never becomes a job: 422 with every field error, 400 for non-JSON, 404 for
/// an unknown kind, 413 over 10 MiB, and the error envelope everywhere.
pub async fn invalid_requests_are_rejected_with_field_errors(s: &TestServer) {
    let post = |kind: &str, body: Vec<u8>| s.alpha(Method::POST, &format!("/v1/jobs/{kind}")).body(body).send();
    let (status, v) =
        json_of(post("agentic-agent", br#"{"question": "", "model": 5, "extra": 1}"#.to_vec()).await.expect("send"))
            .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["code"], "invalid_request");
    let fields: Vec<&str> =
        v["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
    for f in ["question", "model", "backend_url", "extra"] {
        assert!(fields.contains(&f), "missing field error for {f}: {v}");
    }
    let (status, v) = json_of(post("cost-estimate", b"{not json".to_vec()).await.expect("send")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().is_some_and(|e| e.contains("not valid JSON")), "{v}");
    let (status, v) = json_of(post("teleport", b"{}".to_vec()).await.expect("send")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().is_some_and(|e| e.contains("unknown job kind")), "{v}");
    let big = vec![b' '; 10 * 1024 * 1024 + 10];
    let (status, v) = json_of(post("cost-estimate", big).await.expect("send")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["code"], "too_large");
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, _) = json_of(post("cost-estimate", nested.into_bytes()).await.expect("send")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "deeply nested JSON is refused, not a crash");
    let (status, v) = json_of(s.alpha(Method::GET, "/v1/nowhere").send().await.expect("send")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["code"], "not_found");
    assert_eq!(s.store.count_jobs(None).await.expect("count").total, 0, "nothing was created");
}

/// No or wrong credentials are 401; another tenant's job reads, cancels and lists as
/// absent.
pub async fn authentication_and_tenant_isolation(s: &TestServer) {
    let (status, v) = json_of(s.http.get(s.url("/v1/jobs")).send().await.expect("send")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["code"], "unauthorized");
    let wrong = s
        .http
        .get(s.url("/v1/jobs"))
        .bearer_auth(ALPHA_TOKEN)
        .header("X-Tenant-ID", "beta")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "alpha's token is not beta's");
    let id = submit(s, "cost-estimate", COST_BODY).await;
    for (method, path) in [
        (Method::GET, format!("/v1/jobs/{id}")),
        (Method::DELETE, format!("/v1/jobs/{id}")),
        (Method::GET, format!("/v1/jobs/{id}/events")),
        (Method::GET, format!("/v1/runs/{id}/artifacts")),
        (Method::GET, format!("/v1/chains/{id}/state")),
        (Method::GET, format!("/v1/runs/{id}/trace")),
    ] {
        let r = s.beta(method.clone(), &path).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path} must be 404 for another tenant");
    }
    let (_, list) = json_of(s.beta(Method::GET, "/v1/jobs").send().await.expect("send")).await;
    assert_eq!(list["jobs"], json!([]));
    // Probes need no credentials.
    assert_eq!(s.http.get(s.url("/healthz")).send().await.expect("send").status(), StatusCode::OK);
}

/// Same key + same body → same job; different body → 409; 32 concurrent identical
/// submissions → exactly one job.
pub async fn idempotency_replay_conflict_and_race(s: &TestServer) {
    let send = |key: &'static str, header: &'static str, body: &'static str| {
        s.alpha(Method::POST, "/v1/jobs/cost-estimate").header(header, key).body(body).send()
    };
    let (st, first) = json_of(send("k-1", "Idempotency-Key", COST_BODY).await.expect("send")).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, again) = json_of(send("k-1", "X-Idempotency-Key", COST_BODY).await.expect("send")).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(again, first, "replay returns the original body");
    let (st, conflict) = json_of(send("k-1", "Idempotency-Key", r#"{"vastai": true}"#).await.expect("send")).await;
    assert_eq!(st, StatusCode::CONFLICT, "{conflict}");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let req = s.alpha(Method::POST, "/v1/jobs/cost-estimate").header("Idempotency-Key", "race").body(COST_BODY);
        tasks.spawn(async move { req.send().await.expect("send").json::<Value>().await.expect("json") });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(r) = tasks.join_next().await {
        ids.insert(r.expect("join")["job_id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids.len(), 1, "one job for 32 identical submissions");
    let list = s.client().list_jobs(&Default::default()).await.expect("list");
    assert_eq!(list.jobs.len(), 2);
}

/// Listing filters by kind and status, pages with cursors, rejects bad parameters.
pub async fn list_filters_and_pagination(s: &TestServer) {
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(submit(s, "cost-estimate", COST_BODY).await);
    }
    let failed = submit(s, "benchmark", r#"{"backend_url": "http://127.0.0.1:9"}"#).await;
    wait_terminal(s, &failed).await;
    for id in &ids {
        wait_terminal(s, id).await;
    }
    let client = s.client();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .list_jobs(&rune_client::ListJobs { limit: Some(3), cursor: cursor.clone(), ..Default::default() })
            .await
            .expect("list");
        assert!(page.jobs.len() <= 3);
        seen.extend(page.jobs.into_iter().map(|j| j.job_id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    assert_eq!(seen[0], failed, "newest first");
    let only_failed = client
        .list_jobs(&rune_client::ListJobs { status: Some("failed".into()), ..Default::default() })
        .await
        .expect("list");
    assert_eq!(only_failed.jobs.iter().map(|j| j.job_id.clone()).collect::<Vec<_>>(), vec![failed.clone()]);
    let asc = client
        .list_jobs(&rune_client::ListJobs {
            kind: Some("cost-estimate".into()),
            order: Some("asc".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(asc.jobs.first().map(|j| j.job_id.clone()), Some(ids[0].clone()));
    let future = client
        .list_jobs(&rune_client::ListJobs { created_after: Some("2999-01-01".into()), ..Default::default() })
        .await
        .expect("list");
    assert!(future.jobs.is_empty());
    let (st, v) =
        json_of(s.alpha(Method::GET, "/v1/jobs?status=done&limit=0&colour=red").send().await.expect("send")).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> =
        v["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
    assert_eq!(fields, ["colour", "limit", "status"], "{v}");
}

/// Events are listed after an id; the SSE trace streams `log` events then `end`, and a
/// reconnect with Last-Event-ID resumes after the last one seen.
pub async fn events_and_sse_trace_with_resume(s: &TestServer) {
    use futures_util::StreamExt;
    let id = submit(s, "cost-estimate", COST_BODY).await;
    wait_terminal(s, &id).await;
    let client = s.client();
    let events = client.events(&id, 0).await.expect("events").events;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["job.start", "cost.estimate", "job.end"]);
    let stream = client.trace(&id, None).await.expect("trace");
    let all: Vec<_> = stream.collect::<Vec<_>>().await.into_iter().map(|e| e.expect("event")).collect();
    assert_eq!(all.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(), ["log", "log", "log", "end"]);
    assert!(all[3].data.contains("succeeded"));
    let second_id: i64 = all[1].id.as_deref().expect("id").parse().expect("numeric id");
    let resumed: Vec<_> = client.trace(&id, Some(second_id)).await.expect("trace").collect::<Vec<_>>().await;
    assert_eq!(resumed.len(), 2, "one remaining log event, then end");
    // A live stream: start watching before the job exists in a terminal state.
    let live = submit(s, "agentic-agent", r#"{"backend_url": "http://127.0.0.1:9", "agent": "sleeper"}"#).await;
    let mut stream = Box::pin(client.trace(&live, None).await.expect("trace"));
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("an event arrives live");
    assert_eq!(first.expect("some").expect("ok").event, "log");
    client.cancel_job(&live).await.expect("cancel");
    let rest: Vec<_> =
        tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>()).await.expect("stream ends");
    assert_eq!(rest.last().expect("end").as_ref().expect("ok").event, "end");
}

/// Cancelling a running job stops it: the status becomes and stays `cancelled`, and the
/// subprocess it started is killed. Cancelling a finished job changes nothing.
pub async fn cancel_stops_running_work_and_kills_subprocess(s: &TestServer) {
    let id = submit(s, "agentic-agent", r#"{"backend_url": "http://127.0.0.1:9"}"#).await;
    wait_status(s, &id, "running").await;
    let pid_path = pid_file(&id);
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Ok(p) = std::fs::read_to_string(&pid_path) {
            break p.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "subprocess never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "subprocess alive before cancel");
    let (st, v) = json_of(s.alpha(Method::DELETE, &format!("/v1/jobs/{id}")).send().await.expect("send")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["status"], "cancelled");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| !st.contains(") Z ")) {
        assert!(Instant::now() < deadline, "subprocess {pid} still alive after cancel");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let job = wait_terminal(s, &id).await;
    assert_eq!(job["status"], "cancelled", "the worker's own outcome never overwrites a cancel");
    assert!(job["error"].as_str().is_some_and(|e| e.contains("cancelled by tenant alpha")));
    let _ = std::fs::remove_file(pid_path);
    // Queued → cancelled, and finished jobs stay as they are.
    let done = submit(s, "cost-estimate", COST_BODY).await;
    wait_terminal(s, &done).await;
    let (_, v) = json_of(s.alpha(Method::DELETE, &format!("/v1/jobs/{done}")).send().await.expect("send")).await;
    assert_eq!(v["status"], "succeeded");
}

/// Artifacts list with sha256 and download with their kind's content type, as
/// attachments; other tenants see nothing.
pub async fn artifacts_are_tenant_scoped_with_content_types(s: &TestServer) {
    let id = submit(s, "cost-estimate", COST_BODY).await;
    wait_terminal(s, &id).await;
    let job_id: rune_core::JobId = id.parse().expect("id");
    let png = b"\x89PNG\r\n\x1a\nfake".to_vec();
    let meta = s
        .store
        .put_artifact(&job_id, rune_core::records::ArtifactKind::Screenshot, "shot.png", png.clone())
        .await
        .expect("put");
    s.store
        .put_artifact(&job_id, rune_core::records::ArtifactKind::Sbom, "sbom.json", b"{}".to_vec())
        .await
        .expect("put");
    for prefix in ["/v1/runs", "/v1/audits"] {
        let (st, list) =
            json_of(s.alpha(Method::GET, &format!("{prefix}/{id}/artifacts")).send().await.expect("send")).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(list["summary"]["total_count"], 2);
        assert_eq!(list["summary"]["kinds_present"], json!(["sbom", "screenshot"]));
        let shot =
            list["artifacts"].as_array().expect("arr").iter().find(|a| a["name"] == "shot.png").expect("shot").clone();
        assert_eq!(shot["sha256"], meta.sha256);
        let url = shot["download_url"].as_str().expect("url");
        assert!(url.starts_with(prefix), "{url}");
        let r = s.alpha(Method::GET, url).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "image/png");
        assert_eq!(r.headers()["content-disposition"], "attachment; filename=\"shot.png\"");
        assert_eq!(r.bytes().await.expect("bytes").to_vec(), png);
        assert_eq!(s.beta(Method::GET, url).send().await.expect("send").status(), StatusCode::NOT_FOUND);
    }
    let missing =
        s.alpha(Method::GET, &format!("/v1/runs/{id}/artifacts/../../etc/passwd")).send().await.expect("send");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// Schedules: create (cron validated), list with next fire, suspend/resume, a due
/// schedule fires exactly one job, delete.
pub async fn schedules_crud_and_firing(s: &TestServer) {
    let create = |body: Value| s.alpha(Method::POST, "/v1/schedules").json(&body).send();
    let (st, v) = json_of(
        create(
            json!({"name": "bad", "cron": "61 * * * *", "kind": "cost-estimate", "request": {"vastai": true, "zz": 1}}),
        )
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields: Vec<&str> = v["fields"].as_array().expect("f").iter().filter_map(|f| f["field"].as_str()).collect();
    assert_eq!(fields, ["cron", "request.zz"], "{v}");
    // Daily at midnight: after the catch-up fire the next one is hours away, so the test
    // cannot straddle a second legitimate fire (as an every-minute cron could).
    let body = json!({"name": "nightly", "cron": "0 0 * * *", "kind": "cost-estimate", "request": {"vastai": true, "min_dph": 1, "max_dph": 1}});
    let (st, created) = json_of(create(body.clone()).await.expect("send")).await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let sid = created["schedule_id"].as_str().expect("id").to_owned();
    assert!(created["next_fire_time"].as_str().is_some());
    let (st, _) = json_of(create(body).await.expect("send")).await;
    assert_eq!(st, StatusCode::CONFLICT, "names are unique per tenant");
    assert_eq!(
        s.beta(Method::GET, &format!("/v1/schedules/{sid}")).send().await.expect("send").status(),
        StatusCode::NOT_FOUND
    );
    // Make it due: pretend it was created three days ago (three missed fires). The scheduler
    // ticks every 0.1 s.
    let days_ago = rune_core::Timestamp::now().plus_millis(-3 * 86_400_000).as_epoch_seconds();
    s.exec(&format!("UPDATE schedules SET created_at = {days_ago} WHERE schedule_id = '{sid}'")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let fired = loop {
        let list = s
            .store
            .list_jobs(&rune_store::JobQuery { schedule_id: Some(sid.clone()), limit: 10, ..Default::default() })
            .await
            .expect("l");
        if !list.jobs.is_empty() {
            break list.jobs;
        }
        assert!(Instant::now() < deadline, "schedule never fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = s
        .store
        .list_jobs(&rune_store::JobQuery { schedule_id: Some(sid.clone()), limit: 10, ..Default::default() })
        .await
        .expect("l");
    assert_eq!(again.jobs.len(), 1, "missed fires collapse into one run");
    assert_eq!(fired[0].tenant_id.as_str(), "alpha");
    let (_, v) = json_of(s.alpha(Method::GET, &format!("/v1/schedules/{sid}")).send().await.expect("send")).await;
    assert_eq!(v["last_job_id"], fired[0].job_id.to_string());
    let (_, v) =
        json_of(s.alpha(Method::POST, &format!("/v1/schedules/{sid}/suspend")).send().await.expect("send")).await;
    assert_eq!(v["suspended"], true);
    assert_eq!(v["suspended_by"], "user");
    assert!(v["next_fire_time"].is_null());
    let (_, v) =
        json_of(s.alpha(Method::POST, &format!("/v1/schedules/{sid}/resume")).send().await.expect("send")).await;
    assert_eq!(v["suspended"], false);
    let (_, list) = json_of(s.alpha(Method::GET, "/v1/schedules").send().await.expect("send")).await;
    assert_eq!(list["schedules"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        s.alpha(Method::DELETE, &format!("/v1/schedules/{sid}")).send().await.expect("send").status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.alpha(Method::GET, &format!("/v1/schedules/{sid}")).send().await.expect("send").status(),
        StatusCode::NOT_FOUND
    );
}

/// The E-Stop cancels running and queued jobs, suspends schedules, refuses
/// submissions; release resumes exactly the schedules it suspended.
pub async fn estop_stops_everything_and_release_resumes(s: &TestServer) {
    let running = submit(s, "agentic-agent", r#"{"backend_url": "http://127.0.0.1:9"}"#).await;
    wait_status(s, &running, "running").await;
    let mk =
        |name: &str| json!({"name": name, "cron": "0 3 * * *", "kind": "cost-estimate", "request": {"vastai": true}});
    let (_, a) = json_of(s.alpha(Method::POST, "/v1/schedules").json(&mk("a")).send().await.expect("send")).await;
    let (_, b) = json_of(s.alpha(Method::POST, "/v1/schedules").json(&mk("b")).send().await.expect("send")).await;
    let (a, b) = (a["schedule_id"].as_str().expect("a").to_owned(), b["schedule_id"].as_str().expect("b").to_owned());
    s.alpha(Method::POST, &format!("/v1/schedules/{b}/suspend")).send().await.expect("send");
    let (st, v) = json_of(
        s.alpha(Method::POST, "/v1/estop").json(&json!({"reason": "runaway costs"})).send().await.expect("send"),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["active"], true);
    assert_eq!(v["reason"], "runaway costs");
    assert_eq!(v["suspended_schedules"], json!([a.clone()]));
    assert!(v["cancelled_jobs"].as_array().expect("arr").iter().any(|j| j == &json!(running)));
    let job = wait_terminal(s, &running).await;
    assert_eq!(job["status"], "cancelled");
    assert!(job["error"].as_str().is_some_and(|e| e.contains("emergency stop")), "{job}");
    let (st, v) =
        json_of(s.alpha(Method::POST, "/v1/jobs/cost-estimate").body(COST_BODY).send().await.expect("send")).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(v["code"], "estop_active");
    assert_eq!(
        s.alpha(Method::POST, &format!("/v1/schedules/{a}/resume")).send().await.expect("send").status(),
        StatusCode::CONFLICT
    );
    let (_, status) = json_of(s.beta(Method::GET, "/v1/estop").send().await.expect("send")).await;
    assert_eq!(status["active"], true, "every tenant sees the stop");
    assert_eq!(status["suspended_schedules"], json!([]), "but not another tenant's schedules");
    assert_eq!(status["cancelled_jobs"], json!([]));
    assert_eq!(status["suspended_schedules_total"], 1);
    let (_, v) = json_of(s.alpha(Method::DELETE, "/v1/estop").send().await.expect("send")).await;
    assert_eq!(v["active"], false);
    assert_eq!(v["actor"], "tenant alpha");
    assert_eq!(v["released_by"], "tenant alpha");
    let (_, sa) = json_of(s.alpha(Method::GET, &format!("/v1/schedules/{a}")).send().await.expect("send")).await;
    let (_, sb) = json_of(s.alpha(Method::GET, &format!("/v1/schedules/{b}")).send().await.expect("send")).await;
    assert_eq!(sa["suspended"], false, "the E-Stop's suspension is lifted");
    assert_eq!(sb["suspended"], true, "the user's own suspension stays");
    submit(s, "cost-estimate", COST_BODY).await;
}

/// Settings: GET reads, PUT/PATCH merge, profiles are created with POST, read with GET,
/// deleted with DELETE (never by GET); secrets are redacted.
pub async fn settings_and_profiles_use_the_right_verbs(s: &TestServer) {
    let (st, v) = json_of(s.alpha(Method::GET, "/v1/settings").send().await.expect("send")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["defaults"], json!({}));
    let r = s
        .alpha(Method::PUT, "/v1/settings")
        .json(&json!({"settings": {"model": "llama3.1:8b", "api_token": "s3cret-value"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .alpha(Method::POST, "/v1/settings/profiles")
        .json(&json!({"name": "ci", "settings": {"model": "tiny"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s.alpha(Method::PATCH, "/v1/settings").json(&json!({"active_profile": "ci"})).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let (_, v) = json_of(s.alpha(Method::GET, "/v1/settings").send().await.expect("send")).await;
    assert_eq!(v["defaults"]["api_token"], "[REDACTED]");
    assert_eq!(v["effective_config"]["model"], "tiny");
    assert!(!v.to_string().contains("s3cret-value"));
    let (st, p) = json_of(s.alpha(Method::GET, "/v1/settings/profiles/ci").send().await.expect("send")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(p["settings"]["model"], "tiny");
    let (st, _) = json_of(s.alpha(Method::GET, "/v1/settings/profiles/ci").send().await.expect("send")).await;
    assert_eq!(st, StatusCode::OK, "GET twice: reading never deletes");
    let r = s.alpha(Method::GET, "/v1/settings/export?profile=ci").send().await.expect("send");
    assert_eq!(r.headers()["content-type"], "text/yaml; charset=utf-8");
    let text = r.text().await.expect("text");
    assert!(text.contains("tiny") && !text.contains("s3cret-value"));
    let (_, other) = json_of(s.beta(Method::GET, "/v1/settings").send().await.expect("send")).await;
    assert_eq!(other["profiles"], json!({}), "settings are per tenant");
    assert_eq!(
        s.alpha(Method::DELETE, "/v1/settings/profiles/ci").send().await.expect("send").status(),
        StatusCode::OK
    );
    assert_eq!(
        s.alpha(Method::GET, "/v1/settings/profiles/ci").send().await.expect("send").status(),
        StatusCode::NOT_FOUND
    );
    let r = s.alpha(Method::PUT, "/v1/settings").json(&json!({"colour": 1})).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // An update that names nothing to change is a mistake, not a silent success.
    let (st, v) = json_of(s.alpha(Method::PUT, "/v1/settings").send().await.expect("send")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap_or_default().contains("nothing to update"), "{v}");
}

/// Estimates answer the original's fields and refuse (fail-closed) a request with no
/// cost driver; FinOps projects from history with validated parameters.
pub async fn estimates_and_finops(s: &TestServer) {
    let (st, v) = json_of(s.alpha(Method::POST, "/v1/estimates").body(COST_BODY).send().await.expect("send")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    for k in ["projected_cost_usd", "cost_driver", "resource_impact", "local_energy_kwh", "confidence_score", "warning"]
    {
        assert!(v.get(k).is_some(), "{k} missing: {v}");
    }
    let (st, v) = json_of(s.alpha(Method::POST, "/v1/estimates").body("{}").send().await.expect("send")).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "no driver is refused, never priced: {v}");
    assert!(v["error"].as_str().is_some_and(|e| e.contains("no cost driver")), "{v}");
    let (st, v) = json_of(
        s.alpha(Method::GET, "/v1/finops/simulate?suite=sre-basics&runs_per_period=4&period_days=7")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["runs_per_period"], 4);
    assert_eq!(v["historical_basis"], false);
    let (st, v) =
        json_of(s.alpha(Method::POST, "/v1/finops/simulate?runs_per_period=0").send().await.expect("send")).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

/// /healthz is cheap and open, /readyz checks the database, /metrics exposes request and
/// job metrics, /openapi.json describes the API.
pub async fn probes_metrics_and_openapi(s: &TestServer) {
    let (st, v) = json_of(s.http.get(s.url("/healthz")).send().await.expect("send")).await;
    assert_eq!((st, v), (StatusCode::OK, json!({"status": "ok"})));
    let (st, v) = json_of(s.http.get(s.url("/readyz")).send().await.expect("send")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["checks"]["database"], "ok");
    assert_eq!(v["schema_version"], rune_store::migrations::latest_version());
    let id = submit(s, "cost-estimate", COST_BODY).await;
    wait_terminal(s, &id).await;
    let text = s.http.get(s.url("/metrics")).send().await.expect("send").text().await.expect("text");
    for needle in [
        "rune_http_requests_total{route=\"/v1/jobs/{kind_or_id}\",method=\"POST\",status=\"202\"}",
        "rune_jobs{kind=\"cost-estimate\",status=\"succeeded\"} 1",
        "rune_queue_depth",
        "rune_workers_busy",
        "rune_http_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    let (st, doc) = json_of(s.http.get(s.url("/openapi.json")).send().await.expect("send")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    // Every documented operation is served (no drift between the document and the router).
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 25, "{}", paths.len());
    for (path, ops) in paths {
        let concrete =
            path.split('/').map(|seg| if seg.starts_with('{') { "x" } else { seg }).collect::<Vec<_>>().join("/");
        for method in ops.as_object().expect("ops").keys() {
            let m: Method = method.to_uppercase().parse().expect("method");
            let r = s
                .alpha(m.clone(), &concrete)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("send");
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} documented but not routed");
            assert!(!body.contains("route not found"), "{method} {path} documented but not routed");
            // The answer's status is one the document lists for this operation.
            let documented = ops[method]["responses"].as_object().expect("responses");
            assert!(
                documented.contains_key(status.as_str()),
                "{method} {path} answered {status}, which /openapi.json does not document ({:?}): {body}",
                documented.keys().collect::<Vec<_>>()
            );
        }
    }
}

/// Tenant budget exhausted → 429 with Retry-After; the other tenant is unaffected.
pub async fn rate_limited(s: &TestServer) {
    let mut limited = None;
    for _ in 0..20 {
        let r = s.alpha(Method::GET, "/v1/jobs").send().await.expect("send");
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("a 429 within 20 requests at burst 5");
    let retry: u64 = r.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=2).contains(&retry));
    assert_eq!(r.json::<Value>().await.expect("json")["code"], "rate_limited");
    assert_eq!(s.beta(Method::GET, "/v1/jobs").send().await.expect("send").status(), StatusCode::OK);
}

/// After repeated bad tokens an address is throttled, even with a good token after.
pub async fn auth_throttled(s: &TestServer) {
    for _ in 0..3 {
        let r = s
            .http
            .get(s.url("/v1/jobs"))
            .bearer_auth("x".repeat(40))
            .header("X-Tenant-ID", "alpha")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = s.alpha(Method::GET, "/v1/jobs").send().await.expect("send");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
}

/// rune-bench 0.0.0a5's own `RuneApiClient` (Python) submits, polls, waits and
/// estimates against this server. Needs `RUNE_TEST_ORIGINAL_PYTHON` (a python with
/// rune-bench 0.0.0a5 installed; `.ci/run` sets it up); skipped locally without it.
pub async fn original_python_client(s: &TestServer) {
    let python = match std::env::var("RUNE_TEST_ORIGINAL_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            assert!(std::env::var("CI").map(|v| v != "true").unwrap_or(true), "CI must set RUNE_TEST_ORIGINAL_PYTHON");
            eprintln!("skipping: RUNE_TEST_ORIGINAL_PYTHON is not set");
            return;
        }
    };
    let script = r#"
import json, sys
from rune_bench.api_client import RuneApiClient
c = RuneApiClient(base_url=sys.argv[1], api_token=sys.argv[2], tenant_id="alpha")
est = c.get_cost_estimate({"vastai": True, "min_dph": 1.0, "max_dph": 2.0})
job_id = c.submit_benchmark_job({"vastai": False, "template_hash": "t", "min_dph": 1.0, "max_dph": 2.0,
    "reliability": 0.9, "backend_url": "http://127.0.0.1:9", "question": "q", "model": "m",
    "backend_warmup": False, "backend_warmup_timeout": 5, "kubeconfig": "", "vastai_stop_instance": False,
    "attestation_required": False, "backend_type": "ollama"}, idempotency_key="py-1")
again = c.submit_benchmark_job({"vastai": False, "template_hash": "t", "min_dph": 1.0, "max_dph": 2.0,
    "reliability": 0.9, "backend_url": "http://127.0.0.1:9", "question": "q", "model": "m",
    "backend_warmup": False, "backend_warmup_timeout": 5, "kubeconfig": "", "vastai_stop_instance": False,
    "attestation_required": False, "backend_type": "ollama"}, idempotency_key="py-1")
status = c.get_job_status(job_id)
try:
    c.wait_for_job(job_id, timeout_seconds=20, poll_interval_seconds=0.2)
    outcome = "succeeded"
except Exception as e:
    outcome = "failed: " + str(e)
models = c.get_vastai_models()
print(json.dumps({"estimate": est, "job_id": job_id, "again": again, "status": status["status"], "outcome": outcome, "models": len(models)}))
"#;
    let out = tokio::process::Command::new(&python)
        .args(["-c", script, &s.base, ALPHA_TOKEN])
        .output()
        .await
        .expect("run python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python client failed: {stderr}");
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["estimate"]["cost_driver"], "vastai");
    assert_eq!(v["job_id"], v["again"], "idempotent replay through the original client");
    assert!(["queued", "running", "failed"].contains(&v["status"].as_str().unwrap_or("")), "{v}");
    assert!(v["outcome"].as_str().is_some_and(|o| o.contains("not available in this build")), "{v}");
    assert!(v["models"].as_u64().is_some_and(|n| n > 0));
}

/// Jobs submitted alternately to two replicas all finish exactly once (one `job.end`
/// each); a due schedule fires one job although both replicas run a scheduler.
pub async fn replicas_share_queue(a: &TestServer, b: &TestServer) {
    let mut ids = Vec::new();
    for i in 0..40 {
        let s = if i % 2 == 0 { a } else { b };
        ids.push(submit(s, "cost-estimate", COST_BODY).await);
    }
    for id in &ids {
        let job = wait_terminal(a, id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "claimed once: {job}");
        let events = a.client().events(id, 0).await.expect("events").events;
        assert_eq!(events.iter().filter(|e| e.event == "job.end").count(), 1, "ran once: {id}");
    }
    let body = json!({"name": "shared", "cron": "0 0 * * *", "kind": "cost-estimate", "request": {"vastai": true}});
    let (_, created) = json_of(a.alpha(Method::POST, "/v1/schedules").json(&body).send().await.expect("send")).await;
    let sid = created["schedule_id"].as_str().expect("id").to_owned();
    let past = rune_core::Timestamp::now().plus_millis(-3 * 86_400_000).as_epoch_seconds();
    a.exec(&format!("UPDATE schedules SET created_at = {past} WHERE schedule_id = '{sid}'")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fired = a
        .store
        .list_jobs(&rune_store::JobQuery { schedule_id: Some(sid), limit: 10, ..Default::default() })
        .await
        .expect("l");
    assert_eq!(fired.jobs.len(), 1, "one fire despite two schedulers");
}

/// With RUNE_ESTOP_TENANTS, other tenants may read the E-Stop but not operate it.
pub async fn estop_restricted(s: &TestServer) {
    let r = s.beta(Method::POST, "/v1/estop").json(&json!({"reason": "x"})).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.beta(Method::DELETE, "/v1/estop").send().await.expect("send").status(), StatusCode::FORBIDDEN);
    assert_eq!(s.beta(Method::GET, "/v1/estop").send().await.expect("send").status(), StatusCode::OK);
    assert_eq!(
        s.alpha(Method::POST, "/v1/estop").json(&json!({})).send().await.expect("send").status(),
        StatusCode::OK
    );
}

/// Abuse: another tenant cannot see or touch a schedule through any schedule route;
/// deeply nested and oversized (over 10 MiB) bodies get 400/413 (never a crash or a 5xx); artifact
/// names cannot carry paths or header-splitting characters; credentials in a backend URL
/// are refused and never echoed.
pub async fn abuse_is_refused_cleanly(s: &TestServer) {
    let body = json!({"name": "mine", "cron": "0 0 * * *", "kind": "cost-estimate", "request": {"vastai": true}});
    let (st, created) = json_of(s.alpha(Method::POST, "/v1/schedules").json(&body).send().await.expect("send")).await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let sid = created["schedule_id"].as_str().expect("id").to_owned();
    for (method, path) in [
        (Method::GET, format!("/v1/schedules/{sid}")),
        (Method::PUT, format!("/v1/schedules/{sid}")),
        (Method::DELETE, format!("/v1/schedules/{sid}")),
        (Method::POST, format!("/v1/schedules/{sid}/suspend")),
        (Method::POST, format!("/v1/schedules/{sid}/resume")),
    ] {
        let r = s.beta(method.clone(), &path).json(&body).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path} must be 404 for another tenant");
    }
    let (_, list) = json_of(s.beta(Method::GET, "/v1/schedules").send().await.expect("send")).await;
    assert_eq!(list["schedules"], json!([]), "{list}");
    let (st, mine) = json_of(s.alpha(Method::GET, &format!("/v1/schedules/{sid}")).send().await.expect("send")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(mine["suspended"], false, "beta's suspend must not have reached alpha's schedule: {mine}");

    // 100 000 nested arrays: the JSON parser's depth limit answers, the server survives.
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for path in ["/v1/jobs/benchmark", "/v1/schedules", "/v1/estimates", "/v1/estop"] {
        let r = s.alpha(Method::POST, path).header("content-type", "application/json").body(nested.clone());
        let (st, v) = json_of(r.send().await.expect("send")).await;
        assert!(st == StatusCode::BAD_REQUEST || st == StatusCode::PAYLOAD_TOO_LARGE, "{path}: {st} {v}");
        assert!(v["code"].is_string(), "{path}: errors keep their shape: {v}");
    }
    // Over the 10 MiB body limit: refused before it is parsed.
    let huge = format!(r#"{{"backend_url": "http://o", "question": "{}"}}"#, "x".repeat(11 * 1024 * 1024));
    let r = s.alpha(Method::POST, "/v1/jobs/agentic-agent").header("content-type", "application/json").body(huge);
    let (st, v) = json_of(r.send().await.expect("send")).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["code"], "too_large");

    // Artifact names are plain file names: no traversal, no CR/LF for header splitting.
    let id = submit(s, "cost-estimate", COST_BODY).await;
    wait_terminal(s, &id).await;
    let job_id: rune_core::JobId = id.parse().expect("id");
    for name in ["../../etc/passwd", "a/b.txt", "evil\r\nSet-Cookie: x=1.txt", "..", ""] {
        let put = s.store.put_artifact(&job_id, rune_core::records::ArtifactKind::Log, name, b"x".to_vec()).await;
        assert!(put.is_err(), "artifact name {name:?} must be refused");
    }
    let meta = s
        .store
        .put_artifact(&job_id, rune_core::records::ArtifactKind::Log, "quote\"semi;colon.txt", b"x".to_vec())
        .await
        .expect("a name with quotes is stored");
    let r = s.alpha(Method::GET, &format!("/v1/runs/{id}/artifacts/{}", meta.artifact_id)).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let disposition = r.headers()["content-disposition"].to_str().expect("ascii").to_owned();
    assert_eq!(disposition.matches('"').count(), 2, "the quote cannot break out of the filename: {disposition}");

    // A password in a backend URL: refused, and the secret is not repeated anywhere.
    let secret = "hunter2-do-not-echo";
    let body = format!(r#"{{"backend_url": "http://admin:{secret}@llm:8000", "question": "q", "model": "m"}}"#);
    let (st, v) = json_of(
        s.alpha(Method::POST, "/v1/jobs/agentic-agent")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(!v.to_string().contains(secret), "{v}");
    let (_, all) = json_of(s.alpha(Method::GET, "/v1/jobs?limit=500").send().await.expect("send")).await;
    assert!(!all.to_string().contains(secret), "refused requests are not stored");
}
