//! `rune jobs|schedules|estop` end to end: against a real `rune serve` subprocess
//! (`--backend http`) and against the local job database (`--backend local`), with the
//! documented exit codes and hints on bad input, bad credentials and a server that is down.

use crate::util::{Home, Run};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const TENANT: &str = "alpha";
pub(crate) const TOKEN: &str = "alpha-token-0123456789abcdef0123456789";
const COST_ESTIMATE: &str = r#"{"vastai": true, "min_dph": 1.0, "max_dph": 2.0}"#;
const BENCHMARK: &str = r#"{"backend_url": "http://127.0.0.1:9"}"#;

/// A `rune serve --port 0` subprocess with its own home, killed on drop.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, read from the server's "listening on" line.
    pub(crate) base: String,
    pub(crate) addr: String,
    /// Everything the server wrote on stderr, for failure messages.
    log: Arc<Mutex<String>>,
    pub(crate) home: Home,
}

impl Server {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server as tenant alpha's, with extra environment variables.
    pub(crate) fn start_with(env: &[(&str, &str)]) -> Self {
        let home = Home::new();
        let mut cmd = home.cmd(&["serve", "--port", "0"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .env("RUNE_API_TOKENS", format!("{TENANT}:{TOKEN}"))
            .env("RUNE_SHUTDOWN_GRACE_SECONDS", "0")
            .env_remove("RUNE_API_HOST")
            .env_remove("RUNE_API_PORT")
            .env_remove("RUNE_API_AUTH_DISABLED")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rune serve");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        // Drains stderr for the server's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
                }
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = Server { child, base: String::new(), addr: String::new(), log, home };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(addr) => {
                server.base = format!("http://{addr}");
                server.addr = addr;
            }
            Err(_) => panic!("rune serve did not report its address\n{}", server.log()),
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while http(&server.addr, "GET", "/healthz", None, None).0 != 200 {
            assert!(Instant::now() < deadline, "GET /healthz never answered 200\n{}", server.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// SIGTERM, wait for the drain, and return everything the server logged.
    pub(crate) fn stop(mut self) -> String {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        // The stderr reader thread finishes once the pipe closes.
        std::thread::sleep(Duration::from_millis(200));
        self.log()
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// `rune --backend http … ARGS` as tenant alpha with its token.
    fn cli(&self, args: &[&str]) -> Run {
        self.cli_as(TOKEN, TENANT, args)
    }

    fn cli_as(&self, token: &str, tenant: &str, args: &[&str]) -> Run {
        let mut argv =
            vec!["--backend", "http", "--api-base-url", &self.base, "--api-token", token, "--api-tenant", tenant];
        argv.extend_from_slice(args);
        self.home.run(&argv)
    }

    /// `POST /v1/jobs/{kind}` as alpha; returns the job id.
    fn submit(&self, kind: &str, body: &str) -> String {
        let (status, answer) = http(&self.addr, "POST", &format!("/v1/jobs/{kind}"), Some(TOKEN), Some(body));
        assert_eq!(status, 202, "submit {kind}: {answer}\n{}", self.log());
        answer["job_id"].as_str().expect("job_id").to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and the JSON body
/// (`Null` when there is none).
pub(crate) fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let Ok(mut stream) = TcpStream::connect(addr) else { return (0, Value::Null) };
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let body = body.unwrap_or("");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nX-Tenant-ID: {TENANT}\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    if stream.write_all(req.as_bytes()).is_err() {
        return (0, Value::Null);
    }
    let mut raw = Vec::new();
    if stream.read_to_end(&mut raw).is_err() {
        return (0, Value::Null);
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A cost estimate submitted over the API runs to `succeeded`: `jobs watch` streams its
/// events and exits 0; `jobs list`, `jobs get` (table and JSON) show it; cancelling it
/// afterwards reports its terminal status; an unknown job is exit 1.
#[test]
fn cost_estimate_watch_list_get_cancel() {
    let server = Server::start();
    let id = server.submit("cost-estimate", COST_ESTIMATE);
    let watch = server.cli(&["jobs", "watch", &id]).expect_code(0);
    let out = watch.stdout();
    for needle in ["job.start", "cost.estimate", "job.end", &format!("job {id} succeeded")] {
        assert!(out.contains(needle), "missing {needle}:\n{out}");
    }
    // Each event line starts with its RFC 3339 time.
    let first = out.lines().next().expect("a line");
    assert!(first.len() > 24 && first.as_bytes()[10] == b'T' && first[..24].ends_with('Z'), "{first}");

    let list = server.cli(&["jobs", "list", "--output", "json"]).expect_code(0).json();
    let jobs = list["jobs"].as_array().expect("jobs array");
    let job = jobs.iter().find(|j| j["job_id"] == id.as_str()).expect("listed");
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["kind"], "cost-estimate");
    assert_eq!(job["tenant_id"], TENANT);
    let none = server.cli(&["jobs", "list", "--kind", "benchmark", "--output", "json"]).expect_code(0).json();
    assert_eq!(none["jobs"], json!([]));
    let table = server.cli(&["jobs", "list", "--status", "succeeded"]).expect_code(0).stdout();
    assert!(table.starts_with("JOB ID") && table.contains(&id), "{table}");

    let got = server.cli(&["jobs", "get", &id, "--output", "json"]).expect_code(0).json();
    assert_eq!(got["status"], "succeeded");
    assert!(got["result"].is_object(), "{got}");
    assert!(got["finished_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{got}");
    let table = server.cli(&["jobs", "get", &id]).expect_code(0).stdout();
    assert!(table.contains("status:") && table.contains("succeeded") && table.contains("result:"), "{table}");

    let cancel = server.cli(&["jobs", "cancel", &id]).expect_code(0);
    assert!(cancel.stdout().contains("already finished: succeeded"), "{}", cancel.stdout());
    let cancel = server.cli(&["jobs", "cancel", &id, "--output", "json"]).expect_code(0).json();
    assert_eq!(cancel, json!({"job_id": id, "status": "succeeded"}));

    let missing = server.cli(&["jobs", "get", "no-such-job"]).expect_code(1);
    assert!(missing.stderr().contains("not found"), "{}", missing.stderr());
}

/// A benchmark against a model server that is not there is accepted, then fails:
/// `jobs watch` exits 1 with the reason; with `--output json` every line is JSON and the
/// last one is the end.
#[test]
fn failed_benchmark_watch_exits_1() {
    let server = Server::start();
    let id = server.submit("benchmark", BENCHMARK);
    let watch = server.cli(&["jobs", "watch", &id]).expect_code(1);
    let out = watch.stdout();
    assert!(out.contains(&format!("job {id} failed")) && out.contains("cannot reach the ollama server"), "{out}");

    let watch = server.cli(&["jobs", "watch", &id, "--output", "json"]).expect_code(1);
    let lines: Vec<Value> = watch
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(lines.iter().any(|l| l["event"] == "job.end" && l["status"] == "error"), "{lines:?}");
    let end = lines.last().expect("end line");
    assert_eq!((end["event"].as_str(), end["status"].as_str()), (Some("end"), Some("failed")), "{end}");
    assert_eq!(end["job_id"], id.as_str());
}

/// A wrong token or a tenant the token does not belong to is exit 2 with a hint naming
/// the flags; the token is never echoed.
#[test]
fn bad_credentials_exit_2_with_hint() {
    let server = Server::start();
    let wrong = "wrong-token-0123456789abcdef0123456789";
    for (token, tenant) in [(wrong, TENANT), (TOKEN, "beta")] {
        let run = server.cli_as(token, tenant, &["jobs", "list"]).expect_code(2);
        let err = run.stderr();
        assert!(err.contains("401") && err.contains("--api-token") && err.contains("--api-tenant"), "{err}");
        assert!(!err.contains(token), "token echoed: {err}");
    }
}

/// With no server at the URL, every http command is exit 1 naming the URL and saying
/// what to check.
#[test]
fn server_down_exit_1_names_url() {
    let home = Home::new();
    let base = format!("http://127.0.0.1:{}", closed_port());
    for args in [&["jobs", "list"][..], &["schedules", "list"], &["estop", "status"], &["jobs", "watch", "j1"]] {
        let mut argv = vec!["--backend", "http", "--api-base-url", &base];
        argv.extend_from_slice(args);
        let run = home.run(&argv).expect_code(1);
        let err = run.stderr();
        assert!(err.contains(&base) && err.contains("--api-base-url") && err.contains("rune serve"), "{args:?}: {err}");
    }
    let run = home.run(&["--backend", "http", "--api-base-url", "localhost:8080", "jobs", "list"]).expect_code(2);
    assert!(run.stderr().contains("http://host:port"), "{}", run.stderr());
}

/// Schedules: create (from a file), list, get, suspend, resume, delete; a name reused is
/// exit 4, an invalid request exit 2 with its field errors, a deleted schedule exit 1.
#[test]
fn schedules_lifecycle() {
    let server = Server::start();
    let file = server.home.path().join("request.json");
    std::fs::write(&file, COST_ESTIMATE).expect("write request");
    let file = file.to_str().expect("utf8");
    let create = ["schedules", "create", "--name", "every-5", "--cron", "*/5 * * * *", "--kind", "cost-estimate"];
    let created =
        server.cli(&[&create[..], &["--request-file", file, "--output", "json"]].concat()).expect_code(0).json();
    let id = created["schedule_id"].as_str().expect("schedule_id").to_owned();
    assert_eq!((created["suspended"].as_bool(), created["cron"].as_str()), (Some(false), Some("*/5 * * * *")));
    assert_eq!(created["concurrency_policy"], "Forbid");
    assert!(created["next_fire_time"].as_str().is_some_and(|t| t.ends_with('Z')), "{created}");

    let again = server.cli(&[&create[..], &["--request", COST_ESTIMATE]].concat()).expect_code(4);
    assert!(again.stderr().contains("409"), "{}", again.stderr());
    let invalid = server
        .cli(&[&create[..], &["--request", r#"{"vastai": true, "min_dph": 3.0, "max_dph": 1.0}"#]].concat())
        .expect_code(2);
    assert!(invalid.stderr().contains("request.min_dph"), "{}", invalid.stderr());

    let list = server.cli(&["schedules", "list", "--output", "json"]).expect_code(0).json();
    assert!(list["schedules"].as_array().expect("array").iter().any(|s| s["schedule_id"] == id.as_str()), "{list}");
    let table = server.cli(&["schedules", "list"]).expect_code(0).stdout();
    assert!(table.starts_with("NAME") && table.contains("every-5") && table.contains(&id), "{table}");

    let suspended = server.cli(&["schedules", "suspend", &id, "--output", "json"]).expect_code(0).json();
    assert_eq!((suspended["suspended"].as_bool(), suspended["suspended_by"].as_str()), (Some(true), Some("user")));
    assert!(suspended["next_fire_time"].is_null());
    let got = server.cli(&["schedules", "get", &id]).expect_code(0).stdout();
    assert!(got.contains("yes (user)"), "{got}");
    let resumed = server.cli(&["schedules", "resume", &id]).expect_code(0).stdout();
    assert!(resumed.starts_with("resumed schedule every-5"), "{resumed}");
    assert_eq!(server.cli(&["schedules", "get", &id, "--output", "json"]).json()["suspended"], false);

    let deleted = server.cli(&["schedules", "delete", &id]).expect_code(0).stdout();
    assert!(deleted.contains(&id), "{deleted}");
    server.cli(&["schedules", "get", &id]).expect_code(1);
    server.cli(&["schedules", "delete", &id]).expect_code(1);
}

/// E-Stop: trigger shows it engaged and suspends schedules; while engaged, submissions
/// and resuming a schedule are refused (409 → exit 4); release clears it.
#[test]
fn estop_trigger_status_release() {
    let server = Server::start();
    let create = ["schedules", "create", "--name", "s", "--cron", "@hourly", "--kind", "cost-estimate"];
    let schedule = server.cli(&[&create[..], &["--request", COST_ESTIMATE, "--output", "json"]].concat()).json();
    let schedule_id = schedule["schedule_id"].as_str().expect("id").to_owned();

    let trigger = server.cli(&["estop", "trigger", "--reason", "drill"]).expect_code(0).stdout();
    assert!(trigger.contains("E-Stop engaged") && trigger.contains("ACTIVE"), "{trigger}");
    let status = server.cli(&["estop", "status", "--output", "json"]).expect_code(0).json();
    assert_eq!((status["active"].as_bool(), status["reason"].as_str()), (Some(true), Some("drill")));
    assert!(status["suspended_schedules"].as_array().expect("array").iter().any(|s| s == schedule_id.as_str()));
    let (code, body) = http(&server.addr, "POST", "/v1/jobs/cost-estimate", Some(TOKEN), Some(COST_ESTIMATE));
    assert_eq!(code, 409, "{body}");
    let resume = server.cli(&["schedules", "resume", &schedule_id]).expect_code(4);
    assert!(resume.stderr().contains("rune estop release"), "{}", resume.stderr());

    let release = server.cli(&["estop", "release", "--output", "json"]).expect_code(0).json();
    assert_eq!(release["active"], false);
    let table = server.cli(&["estop", "status"]).expect_code(0).stdout();
    assert!(table.contains("released"), "{table}");
    server.submit("cost-estimate", COST_ESTIMATE);
}

/// Without a server: `rune jobs list/get/cancel/watch` work on the local database (every
/// tenant, a TENANT column); cancel is a compare-and-set and idempotent; schedules and
/// E-Stop refuse with exit 2 naming --backend http; --kubernetes needs a kubeconfig.
#[test]
fn local_mode_without_server() {
    let home = Home::new();
    let ids: Vec<String> = home
        .run(&["db", "write-test-jobs", "--count", "3"])
        .expect_code(0)
        .stdout()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 3);

    let list = home.run(&["jobs", "list", "--output", "json"]).expect_code(0).json();
    let mut listed: Vec<String> =
        list["jobs"].as_array().expect("array").iter().map(|j| j["job_id"].as_str().expect("id").to_owned()).collect();
    listed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed, expected);
    assert!(list["jobs"].as_array().expect("array").iter().all(|j| j["status"] == "queued"));
    let table = home.run(&["jobs", "list"]).expect_code(0).stdout();
    assert!(
        table.starts_with("TENANT") && table.contains("default") && ids.iter().all(|i| table.contains(i)),
        "{table}"
    );
    let two = home.run(&["jobs", "list", "--limit", "2", "--output", "json"]).expect_code(0).json();
    assert_eq!(two["jobs"].as_array().expect("array").len(), 2);
    assert!(two["next_cursor"].is_string(), "{two}");

    let got = home.run(&["jobs", "get", &ids[0], "--output", "json"]).expect_code(0).json();
    assert_eq!((got["job_id"].as_str(), got["status"].as_str()), (Some(ids[0].as_str()), Some("queued")));

    let cancel = home.run(&["jobs", "cancel", &ids[0]]).expect_code(0).stdout();
    assert!(cancel.contains("cancelled"), "{cancel}");
    let again = home.run(&["jobs", "cancel", &ids[0], "--output", "json"]).expect_code(0).json();
    assert_eq!(again["status"], "cancelled");
    let cancelled = home.run(&["jobs", "list", "--status", "cancelled", "--output", "json"]).expect_code(0).json();
    assert_eq!(cancelled["jobs"].as_array().expect("array").len(), 1);
    let watch = home.run(&["jobs", "watch", &ids[0]]).expect_code(1);
    assert!(watch.stdout().contains("cancelled"), "{}", watch.stdout());
    home.run(&["jobs", "get", "no-such-job"]).expect_code(1);

    let sched = home.run(&["schedules", "list"]).expect_code(2);
    assert!(sched.stderr().contains("rune serve") && sched.stderr().contains("--backend http"), "{}", sched.stderr());
    let estop = home.run(&["estop", "status"]).expect_code(2);
    assert!(estop.stderr().contains("--backend http"), "{}", estop.stderr());
    // --kubernetes writes the operator's ConfigMap (tests in health_check.rs); without a
    // usable kubeconfig it fails naming the fix.
    let missing = home.path().join("no-kubeconfig");
    let k8s = home.run(&["estop", "trigger", "--kubernetes", "--kubeconfig", missing.to_str().unwrap()]).expect_code(1);
    assert!(k8s.stderr().contains("no usable Kubernetes configuration"), "{}", k8s.stderr());
}

/// Local `jobs watch` polls: it follows a queued job and exits 1 once another process
/// cancels it.
#[test]
fn local_watch_polls_until_terminal() {
    let home = Home::new();
    let id = home.run(&["db", "write-test-jobs", "--count", "1"]).expect_code(0).stdout().trim().to_owned();
    let mut watcher =
        home.cmd(&["jobs", "watch", &id]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn watch");
    std::thread::sleep(Duration::from_millis(700));
    assert!(watcher.try_wait().expect("try_wait").is_none(), "watch must wait for a queued job");
    home.run(&["jobs", "cancel", &id]).expect_code(0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while watcher.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = watcher.kill();
            panic!("jobs watch did not notice the cancellation within 5 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = Run(watcher.wait_with_output().expect("watch output")).expect_code(1);
    assert!(run.stdout().contains(&format!("job {id} cancelled")), "{}", run.stdout());
}

/// On a home without a database, local job commands are exit 2 and create nothing.
#[test]
fn local_mode_missing_database() {
    let home = Home::new();
    let run = home.run(&["jobs", "list"]).expect_code(2);
    assert!(run.stderr().contains("no database here"), "{}", run.stderr());
    assert!(!home.db().exists());
}
