//! UI render benchmark (run by `bench/ui.sh`): a real API on a real SQLite database
//! holding `BENCH_JOBS` (default 100 000) finished benchmark jobs, the UI in front of
//! it, and the time each page takes from request to last byte, measured at the UI's
//! HTTP port (so it includes the UI's API calls over loopback). The baseline, measured
//! in the same run, is the API call each page cannot avoid (`GET /v1/jobs?limit=50`,
//! `GET /v1/jobs/{id}`). Prints a Markdown report with medians and p95s.

use rune_core::{JobKind, JobStatus};
use rune_store::{NewJob, StatusUpdate, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token-0123456789abcdef0123456789";

/// Request headers of one measured page.
type Headers<'a> = &'a [(&'a str, &'a str)];

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn result_json(i: u64) -> String {
    let score = (i % 100) as f64 / 100.0;
    let cases: Vec<serde_json::Value> = (0..12)
        .map(|c| {
            serde_json::json!({"case_id": format!("case-{c}"), "agent": "llm", "model": "llama3.1:8b", "repetition": 0,
                "score": score, "passed": score >= 0.5, "matched": ["a", "b"], "missed": ["c"], "forbidden": [],
                "latency_ms": 900.0 + c as f64, "ttft_ms": 80.0, "prompt_tokens": 120, "completion_tokens": 300,
                "cost_usd": 0.001, "error": null, "answer": "The pod is crash-looping because its liveness probe fails."})
        })
        .collect();
    serde_json::json!({"result_type": "report", "passed": score >= 0.5, "cases": cases,
        "summary": {"groups": [{"agent": "llm", "model": "llama3.1:8b", "n": 12, "scored": 12, "unscored": 0, "errors": 0,
            "mean_score": score, "ci95": [score * 0.9, score], "pass_rate": 0.5, "error_rate": 0.0,
            "latency_ms": {"p50": 900.0, "p95": 911.0, "max": 912.0}, "ttft_ms": {"p50": 80.0, "p95": 82.0},
            "tokens": {"prompt_total": 1440, "completion_total": 3600, "prompt_mean": 120.0, "completion_mean": 300.0},
            "cost_usd": 0.012}]}})
    .to_string()
}

async fn fill(store: Arc<dyn Store>, jobs: u64) -> Vec<String> {
    let workers = 16;
    let mut handles = Vec::new();
    for w in 0..workers {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut i = w;
            while i < jobs {
                let job = NewJob {
                    tenant_id: "bench".parse().expect("tenant"),
                    kind: JobKind::Benchmark,
                    request_json: format!(
                        "{{\"agent\":\"llm\",\"model\":\"llama3.1:8b\",\"suite\":\"sre-basics\",\"backend_url\":\"http://127.0.0.1:11434\",\"n\":{i}}}"
                    ),
                    idempotency_key: None,
                    schedule_id: None,
                };
                let rune_store::CreateOutcome::Created(rec) = store.create_job(job).await.expect("insert") else {
                    panic!("not created")
                };
                store.update_status(&rec.job_id, StatusUpdate::to(JobStatus::Running)).await.expect("running");
                let done = StatusUpdate {
                    result_json: Some(result_json(i)),
                    ..StatusUpdate::to(JobStatus::Succeeded)
                };
                store.update_status(&rec.job_id, done).await.expect("succeeded");
                ids.push(rec.job_id.to_string());
                i += workers;
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.extend(h.await.expect("worker"));
    }
    ids
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let median = v[v.len() / 2];
    let p95 = v[((v.len() as f64 * 0.95).ceil() as usize).saturating_sub(1).min(v.len() - 1)];
    (median, p95)
}

async fn time(http: &reqwest::Client, url: &str, headers: &[(&str, &str)], runs: usize) -> (f64, f64) {
    let get = || {
        let mut req = http.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req
    };
    for _ in 0..5 {
        let r = get().send().await.expect("warm-up");
        assert!(r.status().is_success(), "{url}: {}", r.status());
        let _ = r.bytes().await;
    }
    let mut ms = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let r = get().send().await.expect("request");
        let _ = r.bytes().await.expect("body");
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    stats(ms)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let jobs = env_num("BENCH_JOBS", 100_000);
    let runs = env_num("BENCH_RUNS", 50) as usize;
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite://{}/jobs.db", dir.path().display());
    let store = rune_store::open(&db, &Default::default()).await.expect("store");
    let t = Instant::now();
    let ids = fill(store.clone(), jobs).await;
    eprintln!("ui_bench: {jobs} jobs stored in {:.1} s", t.elapsed().as_secs_f64());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let env = |k: &str| match k {
        "RUNE_API_TOKENS" => Some(format!("bench:{TOKEN}")),
        "RUNE_RATE_LIMIT_RPS" => Some("0".into()),
        "RUNE_SCHEDULER" => Some("0".into()),
        _ => None,
    };
    let config = rune_api::ServerConfig::from_env(addr, false, env).expect("config");
    let api = format!("http://{addr}");
    let ui = rune_ui::router(rune_ui::UiConfig { api_base_url: api.clone(), ..Default::default() }).expect("ui");
    let runner = Arc::new(rune_api::runner::BuiltinRunner);
    tokio::spawn(async move {
        let _ = rune_api::serve_with(listener, config, store, runner, Some(ui), std::future::pending()).await;
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Log in through the form, as a browser would.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let page = http.get(format!("{api}/login")).send().await.expect("login page");
    let pre = page.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("cookie");
    let pre = pre.split(';').next().expect("cookie").to_owned();
    let html = page.text().await.expect("body");
    let marker = "name=\"_csrf\" value=\"";
    let at = html.find(marker).expect("csrf") + marker.len();
    let csrf = html[at..at + 64].to_owned();
    let resp = http
        .post(format!("{api}/login"))
        .header("cookie", &pre)
        .form(&[("_csrf", csrf.as_str()), ("tenant", "bench"), ("token", TOKEN), ("next", "/runs")])
        .send()
        .await
        .expect("login");
    let cookie = resp.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("session");
    let cookie = cookie.split(';').next().expect("cookie").to_owned();

    let (a, b) = (&ids[ids.len() - 1], &ids[ids.len() - 2]);
    let auth = [("authorization", format!("Bearer {TOKEN}")), ("x-tenant-id", "bench".to_owned())];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ui_h = [("cookie", cookie.as_str())];
    let rows: Vec<(String, String, Headers)> = vec![
        ("baseline: API `GET /v1/jobs?limit=50`".into(), format!("{api}/v1/jobs?limit=50"), &auth),
        ("baseline: API `GET /v1/jobs/{id}`".into(), format!("{api}/v1/jobs/{a}"), &auth),
        ("UI `/runs` (50 rows)".into(), format!("{api}/runs"), &ui_h),
        ("UI `/runs?sort=score&status=succeeded`".into(), format!("{api}/runs?sort=score&status=succeeded"), &ui_h),
        ("UI `/runs?model=llama` (filtered in the UI)".into(), format!("{api}/runs?model=llama"), &ui_h),
        ("UI `/runs/{id}` (12 cases)".into(), format!("{api}/runs/{a}"), &ui_h),
        ("UI `/compare?ids=A&ids=B`".into(), format!("{api}/compare?ids={a}&ids={b}"), &ui_h),
        ("UI `/compare` (leaderboard of 200 runs)".into(), format!("{api}/compare"), &ui_h),
        ("UI `/system`".into(), format!("{api}/system"), &ui_h),
    ];
    println!("# UI render benchmark\n");
    println!(
        "{jobs} finished benchmark jobs in one tenant (SQLite); {runs} sequential requests per page after 5 \
         warm-ups; time from request to last byte at the UI's port, including its API calls over loopback. \
         {} cores. Built with `cargo build --release` (bench/ui.sh).\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!("| page | median | p95 |");
    println!("|---|---|---|");
    for (name, url, headers) in rows {
        let (median, p95) = time(&http, &url, headers, runs).await;
        println!("| {name} | {median:.1} ms | {p95:.1} ms |");
    }
}
