//! The benchmark engine end to end: `rune sim-llm` (a separate process) serves scripted
//! answers, `rune serve` runs `sre-basics` through the API (and the CLI runs it locally),
//! and the scores follow the ground truth: known-correct answers score high, known-wrong
//! ones low, injected faults become recorded errors, never crashes.

use crate::util::{spawn, Home, Proc};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Scripted answers for every sre-basics case (the suite's own reference answers, proven
/// to score ≥ 0.8 / ≤ 0.2 in rune-core's tests), keyed by the case's question.
fn answers_file(home: &Home, correct: bool) -> std::path::PathBuf {
    let suite = rune_core::suite::load_builtin("sre-basics").expect("built-in suite");
    let mut questions = std::collections::HashSet::new();
    let entries: Vec<Value> = suite
        .cases
        .iter()
        .map(|case| {
            assert!(questions.insert(case.question.clone()), "questions must be unique to script answers");
            let (_, right, wrong) = rune_core::suite::SRE_BASICS_REFERENCE_ANSWERS
                .iter()
                .find(|(id, _, _)| *id == case.id)
                .unwrap_or_else(|| panic!("no reference answer for {}", case.id));
            json!({"pattern": case.question, "answer": if correct { *right } else { *wrong }})
        })
        .collect();
    let path = home.path().join(if correct { "correct.json" } else { "wrong.json" });
    std::fs::write(&path, serde_json::to_string(&entries).expect("json")).expect("write answers");
    path
}

fn sim(home: &Home, extra: &[&str]) -> Proc {
    let mut cmd = home.cmd(&["sim-llm", "--port", "0", "--ttft-ms", "5", "--itl-ms", "0"]);
    if !extra.contains(&"--output-tokens") {
        cmd.args(["--output-tokens", "400"]);
    }
    cmd.args(extra);
    spawn(cmd)
}

fn server(home: &Home) -> Proc {
    let mut cmd = home.cmd(&["serve", "--port", "0"]);
    cmd.env("RUNE_RATE_LIMIT_RPS", "0");
    spawn(cmd)
}

fn request(method: &str, url: &str, body: Option<&Value>) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.request(method.parse().expect("method"), url);
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.expect("send").json::<Value>().await.expect("json")
    })
}

fn run_via_api(api: &Proc, sim: &Proc, extra: Value) -> Value {
    let mut body = json!({"backend_url": format!("http://{}", sim.addr), "model": "sim-llama", "suite": "sre-basics",
                          "agent": "llm", "backend_warmup": false});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let accepted = request("POST", &format!("http://{}/v1/jobs/benchmark", api.addr), Some(&body));
    let id = accepted["job_id"].as_str().unwrap_or_else(|| panic!("not accepted: {accepted}")).to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = request("GET", &format!("http://{}/v1/jobs/{id}", api.addr), None);
        if ["succeeded", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or("")) {
            return job;
        }
        assert!(Instant::now() < deadline, "benchmark never finished: {job}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Known-correct answers score high and pass; known-wrong answers score low and fail;
/// every case is reported with score, matched/missed facts, latency, TTFT and tokens.
#[test]
fn sre_basics_through_the_api_scores_follow_ground_truth() {
    let home = Home::new();
    let api = server(&home);
    let good = sim(&home, &["--answers", answers_file(&home, true).to_str().expect("utf8")]);
    let bad = sim(&home, &["--answers", answers_file(&home, false).to_str().expect("utf8")]);
    let job = run_via_api(&api, &good, json!({"threshold": 0.8}));
    assert_eq!(job["status"], "succeeded", "{job}");
    let result = &job["result"];
    let cases = result["cases"].as_array().expect("cases");
    assert!(cases.len() >= 12, "{}", cases.len());
    for c in cases {
        for key in [
            "case_id",
            "agent",
            "model",
            "score",
            "passed",
            "matched",
            "missed",
            "latency_ms",
            "ttft_ms",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "error",
        ] {
            assert!(c.get(key).is_some(), "case lacks {key}: {c}");
        }
        assert!(c["score"].as_f64().expect("score") >= 0.8, "correct answer scored low: {c}");
        assert!(c["ttft_ms"].as_f64().expect("ttft") >= 5.0);
        assert!(c["completion_tokens"].as_u64().expect("tokens") > 0);
    }
    let group = &result["summary"]["groups"][0];
    assert!(group["mean_score"].as_f64().expect("mean") >= 0.8, "{group}");
    assert_eq!(group["error_rate"], 0.0);
    assert_eq!(result["passed"], true);
    let job = run_via_api(&api, &bad, json!({"threshold": 0.8}));
    let group = &job["result"]["summary"]["groups"][0];
    assert!(group["mean_score"].as_f64().expect("mean") <= 0.2, "{group}");
    assert_eq!(job["result"]["passed"], false);
    assert!(
        job["result"]["cases"][0]["forbidden"].as_array().is_some_and(|f| !f.is_empty()),
        "the wrong diagnosis is named"
    );
    // Phase spans were recorded as job events.
    let events =
        request("GET", &format!("http://{}/v1/jobs/{}/events", api.addr, job["job_id"].as_str().expect("id")), None);
    let names: Vec<&str> =
        events["events"].as_array().expect("events").iter().filter_map(|e| e["event"].as_str()).collect();
    for phase in ["backend.check", "agent.ask", "score", "job.end"] {
        assert!(names.contains(&phase), "no {phase} event in {names:?}");
    }
}

/// A backend that fails every request: each case records the error, the job still
/// completes with error_rate 1 (never a crash or a hang).
#[test]
fn faults_become_recorded_errors() {
    let home = Home::new();
    let api = server(&home);
    let faulty = sim(&home, &["--fail-rate", "1.0", "--fail-status", "500"]);
    let job = run_via_api(&api, &faulty, json!({"suite": "sre-basics"}));
    assert_eq!(job["status"], "succeeded", "{job}");
    let cases = job["result"]["cases"].as_array().expect("cases");
    assert!(cases.iter().all(|c| c["error"].as_str().is_some_and(|e| !e.is_empty())), "every case records its error");
    assert_eq!(job["result"]["summary"]["groups"][0]["error_rate"], 1.0);
    let flaky = sim(&home, &["--drop-rate", "0.5", "--seed", "7"]);
    let job = run_via_api(&api, &flaky, json!({}));
    assert_eq!(job["status"], "succeeded", "{job}");
    let rate = job["result"]["summary"]["groups"][0]["error_rate"].as_f64().expect("rate");
    assert!(rate > 0.0 && rate < 1.0, "dropped streams are errors, the rest answer: {rate}");
}

/// The CLI's local mode: a table report, JSON with `cases` and `summary`, exit code 3
/// below the threshold, and the run stored as a job.
#[test]
fn run_benchmark_locally_with_exit_codes() {
    let home = Home::new();
    let good = sim(&home, &["--answers", answers_file(&home, true).to_str().expect("utf8")]);
    let url = format!("http://{}", good.addr);
    let base = [
        "run-benchmark",
        "--backend-url",
        url.as_str(),
        "--model",
        "sim-llama",
        "--suite",
        "sre-basics",
        "--agent",
        "llm",
    ];
    let json_run = home.run(&[&base[..], &["--output", "json", "--threshold", "0.8"]].concat()).expect_code(0).json();
    assert!(json_run["cases"].as_array().is_some_and(|c| c.len() >= 12));
    assert!(json_run["summary"]["groups"][0]["ci95"].is_array());
    let table = home.run(&base).expect_code(0).stdout();
    assert!(table.contains("MEAN_SCORE") && table.contains("crashloop"), "{table}");
    home.run(&[&base[..], &["--threshold", "1.01"]].concat()).expect_code(2);
    let bad = sim(&home, &["--answers", answers_file(&home, false).to_str().expect("utf8")]);
    let bad_url = format!("http://{}", bad.addr);
    let run = home.run(&[
        "run-benchmark",
        "--backend-url",
        &bad_url,
        "--model",
        "sim-llama",
        "--suite",
        "sre-basics",
        "--agent",
        "llm",
        "--threshold",
        "0.5",
        "--output",
        "csv",
    ]);
    let run = run.expect_code(3);
    assert!(run.stdout().lines().count() >= 13, "csv header + a row per case");
    let md = home
        .run(&[
            "run-benchmark",
            "--backend-url",
            &bad_url,
            "--model",
            "sim-llama",
            "--suite",
            "sre-basics",
            "--output",
            "markdown",
        ])
        .expect_code(0);
    assert!(md.stdout().contains("| CASE |"));
    let jobs = home.run(&["jobs", "list", "--output", "json"]).expect_code(0).json();
    assert!(jobs["jobs"].as_array().is_some_and(|j| j.len() >= 3), "local runs are stored as jobs: {jobs}");
    // A backend that fails every request: the report shows each error and the exit code is 1.
    let broken = sim(&home, &["--fail-rate", "1.0"]);
    let broken_url = format!("http://{}", broken.addr);
    let run =
        home.run(&["run-benchmark", "--backend-url", &broken_url, "--model", "sim-llama", "--suite", "sre-basics"]);
    let run = run.expect_code(1);
    assert!(run.stderr().contains("every case failed"), "{}", run.stderr());
    let missing_model =
        home.run(&["run-benchmark", "--backend-url", &url, "--model", "no-such-model", "--suite", "sre-basics"]);
    let missing_model = missing_model.expect_code(1);
    assert!(missing_model.stderr().contains("no-such-model"), "{}", missing_model.stderr());
}

/// Against a real OpenAI-compatible server (e.g. llama.cpp's server with a small GGUF
/// model, see docs/benchmarks.md), when `RUNE_TEST_OPENAI_URL` and `RUNE_TEST_OPENAI_MODEL`
/// are set. Skipped with a message otherwise.
#[test]
fn real_openai_compatible_server_when_available() {
    let (Ok(url), Ok(model)) = (std::env::var("RUNE_TEST_OPENAI_URL"), std::env::var("RUNE_TEST_OPENAI_MODEL")) else {
        eprintln!("skipping: set RUNE_TEST_OPENAI_URL and RUNE_TEST_OPENAI_MODEL to run against a real server");
        return;
    };
    let home = Home::new();
    let out = home
        .run(&[
            "run-benchmark",
            "--backend-type",
            "openai",
            "--backend-url",
            &url,
            "--model",
            &model,
            "--suite",
            "sre-basics",
            "--agent",
            "llm",
            "--output",
            "json",
        ])
        .expect_code(0)
        .json();
    let group = &out["summary"]["groups"][0];
    assert_eq!(group["error_rate"], 0.0, "{out}");
    // Servers that do not report usage in streams (llama-cpp-python) leave tokens null;
    // the answers and the timings are always there.
    for c in out["cases"].as_array().expect("cases") {
        assert!(c["answer"].as_str().is_some_and(|a| !a.trim().is_empty()), "{c}");
        assert!(c["ttft_ms"].as_f64().is_some_and(|t| t > 0.0), "{c}");
        assert!(c["score"].is_number(), "{c}");
    }
}

/// A `suite` job compares agents × models in one report: a leaderboard row per working
/// combination, and a combination whose model the server lacks is reported, not fatal.
#[test]
fn suite_matrix_job_builds_a_leaderboard() {
    let home = Home::new();
    let api = server(&home);
    let good = sim(&home, &["--answers", answers_file(&home, true).to_str().expect("utf8")]);
    let body = json!({"suite": "sre-basics", "models": ["sim-llama", "sim-qwen", "missing-model"], "agents": ["llm"],
                      "backend_url": format!("http://{}", good.addr), "backend_warmup": false, "threshold": 0.8});
    let accepted = request("POST", &format!("http://{}/v1/jobs/suite", api.addr), Some(&body));
    let id = accepted["job_id"].as_str().unwrap_or_else(|| panic!("{accepted}")).to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    let job = loop {
        let job = request("GET", &format!("http://{}/v1/jobs/{id}", api.addr), None);
        if job["status"] == "succeeded" || job["status"] == "failed" {
            break job;
        }
        assert!(Instant::now() < deadline, "{job}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(job["status"], "succeeded", "{job}");
    let board = job["result"]["leaderboard"].as_array().expect("leaderboard");
    assert_eq!(board.len(), 2, "{board:?}");
    assert!(board.iter().all(|row| row["mean_score"].as_f64().is_some_and(|m| m >= 0.8) && row["passed"] == true));
    let failed = job["result"]["failed_combinations"].as_array().expect("failures");
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["error"].as_str().is_some_and(|e| e.contains("missing-model")), "{failed:?}");
    let invalid = request("POST", &format!("http://{}/v1/jobs/suite", api.addr), Some(&json!({"suite": "sre-basics"})));
    assert_eq!(invalid["code"], "invalid_request", "{invalid}");
}

/// With `judge_model`, judge-only cases are scored by the judge model's verdict (here a
/// scripted "SCORE: 0.9"); without it they stay unscored (`null`, never a made-up 0).
#[test]
fn llm_judge_scores_rubric_only_cases() {
    let home = Home::new();
    let api = server(&home);
    let answers = home.path().join("judge.json");
    std::fs::write(
        &answers,
        r#"[{"pattern": "You are grading one answer", "answer": "The answer follows the rubric.\nSCORE: 0.9"}]"#,
    )
    .expect("write");
    // Exactly the verdict's 7 words, so the simulator adds no filler after the score line.
    let sim = sim(&home, &["--answers", answers.to_str().expect("utf8"), "--output-tokens", "7"]);
    let judged = run_via_api(&api, &sim, json!({"suite": "catalog-creative", "judge_model": "sim-qwen"}));
    assert_eq!(judged["status"], "succeeded", "{judged}");
    let events =
        request("GET", &format!("http://{}/v1/jobs/{}/events", api.addr, judged["job_id"].as_str().expect("id")), None);
    for c in judged["result"]["cases"].as_array().expect("cases") {
        assert!((c["score"].as_f64().unwrap_or(-1.0) - 0.9).abs() < 1e-9, "{c}\n{events}");
        assert_eq!(c["judge_score"], 0.9);
    }
    let unjudged = run_via_api(&api, &sim, json!({"suite": "catalog-creative"}));
    for c in unjudged["result"]["cases"].as_array().expect("cases") {
        assert!(c["score"].is_null(), "no judge, no score: {c}");
    }
}

/// Renting is gated: an hour over the $5 threshold in CI without --yes is blocked (exit 4)
/// before anything is rented; with --yes (or a price under the threshold) it proceeds, and
/// without VAST_API_KEY fails naming the variable.
#[test]
fn vastai_spend_gate_fails_closed() {
    let home = Home::new();
    let run = home
        .cmd(&[
            "run-benchmark",
            "--vastai",
            "--vastai-min-dph",
            "6",
            "--vastai-max-dph",
            "8",
            "--model",
            "llama3.1:8b",
            "--suite",
            "sre-basics",
        ])
        .env("CI", "true")
        .env_remove("VAST_API_KEY")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("spend gate blocked") && stderr.contains("--yes"), "{stderr}");
    let run = home
        .cmd(&[
            "run-benchmark",
            "--vastai",
            "--vastai-min-dph",
            "6",
            "--vastai-max-dph",
            "8",
            "--yes",
            "--model",
            "llama3.1:8b",
            "--suite",
            "sre-basics",
        ])
        .env("CI", "true")
        .env_remove("VAST_API_KEY")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("VAST_API_KEY"), "{stderr}");
}
