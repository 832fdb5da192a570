//! `rune serve` killed with `SIGKILL` while jobs are queued and running, then started
//! again: every job that got a 202 exists and finishes, and none ran twice at once.

use crate::util::Home;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn start_server(home: &Home, port: u16) -> Child {
    let child = home
        .cmd(&["serve", "--port", &port.to_string()])
        .env("RUNE_API_AUTH_DISABLED", "1")
        .env("RUNE_JOB_LEASE_SECONDS", "2")
        .env("RUNE_MAX_CONCURRENT_JOBS", "2")
        .env("RUNE_TEST_JOB_DELAY_MS", "400")
        .env("RUNE_RATE_LIMIT_RPS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rune serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// The restart drill.
#[test]
fn sigkill_with_jobs_in_flight_then_restart_finishes_every_job() {
    let home = Home::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(&home, port);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let http = reqwest::Client::new();
    let mut accepted = Vec::new();
    rt.block_on(async {
        for i in 0..30 {
            let r = http
                .post(format!("{base}/v1/jobs/cost-estimate"))
                .json(&serde_json::json!({"vastai": true, "max_dph": 1.0 + i as f64}))
                .send()
                .await
                .expect("submit");
            assert_eq!(r.status(), 202);
            let v: serde_json::Value = r.json().await.expect("json");
            accepted.push(v["job_id"].as_str().expect("id").to_owned());
        }
        // Wait until some jobs are running, then kill the server mid-flight.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v: serde_json::Value = http
                .get(format!("{base}/v1/jobs?status=running"))
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("json");
            if v["jobs"].as_array().is_some_and(|a| !a.is_empty()) {
                break;
            }
            assert!(Instant::now() < deadline, "no job ever ran");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    server.kill().expect("SIGKILL");
    server.wait().expect("reap");
    let killed_at = rune_core::Timestamp::now();
    let store_url = format!("sqlite://{}", home.db().display());
    let (running_at_kill, queued_at_kill) = rt.block_on(async {
        let store = rune_store::open(&store_url, &Default::default()).await.expect("open");
        let c = store.count_jobs(None).await.expect("count");
        (c.by_status.get("running").copied().unwrap_or(0), c.by_status.get("queued").copied().unwrap_or(0))
    });
    assert!(
        running_at_kill > 0 && queued_at_kill > 0,
        "the kill must catch jobs running ({running_at_kill}) and queued ({queued_at_kill})"
    );
    let mut server = start_server(&home, port);
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        for id in &accepted {
            loop {
                let v: serde_json::Value =
                    http.get(format!("{base}/v1/jobs/{id}")).send().await.expect("get").json().await.expect("json");
                assert_ne!(v["status"], serde_json::Value::Null, "job {id} lost: {v}");
                if v["status"] == "succeeded" {
                    break;
                }
                assert!(v["status"] == "queued" || v["status"] == "running", "job {id} ended badly: {v}");
                assert!(Instant::now() < deadline, "job {id} never finished: {v}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Exactly one completed run per job; a second start only after the kill.
        let store = rune_store::open(&store_url, &rune_store::OpenOptions { migrate: false, ..Default::default() })
            .await
            .expect("open");
        let mut restarted = 0;
        for id in &accepted {
            let events = store.events_after(&id.parse().expect("id"), 0, 100).await.expect("events");
            let starts: Vec<_> = events.iter().filter(|e| e.event == "job.start").collect();
            let ends = events.iter().filter(|e| e.event == "job.end").count();
            assert_eq!(ends, 1, "job {id} completed {ends} times");
            if starts.len() > 1 {
                restarted += 1;
                assert!(starts[1].recorded_at > killed_at, "a second run of {id} began before the first process died");
            }
            assert!(starts.len() <= 2, "job {id} started {} times", starts.len());
        }
        assert!(restarted as u64 >= running_at_kill, "jobs running at the kill were run again after recovery");
    });
    server.kill().expect("kill");
    let _ = server.wait();
}
