//! API contract test: Schemathesis (property-based, from `/openapi.json`) against a live
//! `rune serve`, with authentication on. Every generated request must get a documented
//! status, a response that matches its schema, the documented content type, and never a
//! 5xx. The seed is fixed so a failure reproduces; `st replay` ids are in the output.
//!
//! Needs `RUNE_TEST_SCHEMATHESIS` (the path of the `schemathesis` executable; `.ci/run`
//! installs it in a virtualenv). Skipped with a message when unset, except in CI.

use crate::util::Home;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const TOKEN: &str = "contract-token-0123456789abcdef0123456789";

#[test]
fn openapi_contract_holds_under_schemathesis() {
    let Some(st) = std::env::var_os("RUNE_TEST_SCHEMATHESIS") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "RUNE_TEST_SCHEMATHESIS is not set; CI must install schemathesis (see .ci/run)"
        );
        eprintln!("SKIPPED: set RUNE_TEST_SCHEMATHESIS=/path/to/schemathesis to run the API contract test");
        return;
    };
    let home = Home::new();
    let mut server = home
        .cmd(&["serve", "--port", "0"])
        .env("RUNE_API_TOKENS", format!("acme:{TOKEN}"))
        // The contract, not the throttles, is under test: thousands of requests in seconds.
        .env("RUNE_RATE_LIMIT_RPS", "1000000")
        .env("RUNE_RATE_LIMIT_BURST", "1000000")
        .env("RUNE_AUTH_FAILURES_PER_MINUTE", "1000000")
        .env("RUNE_SHUTDOWN_GRACE_SECONDS", "0")
        .env_remove("RUNE_API_PORT")
        .env_remove("RUNE_API_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rune serve");
    let stderr = server.stderr.take().expect("stderr piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
            }
            if line.contains("panicked") || line.contains("ERROR") {
                eprintln!("server: {line}");
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(20)).expect("rune serve reports its address");
    // Schemathesis keeps a cache in its working directory; keep it out of the tree.
    let out = Command::new(st)
        .current_dir(home.path())
        .args([
            "run",
            &format!("http://{addr}/openapi.json"),
            "-H",
            &format!("Authorization: Bearer {TOKEN}"),
            "-H",
            "X-Tenant-ID: acme",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,\
             response_headers_conformance",
            "--max-examples",
            "40",
            "--seed",
            "20261127",
            "--no-color",
        ])
        .output()
        .expect("run schemathesis");
    let _ = server.kill();
    let _ = server.wait();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found contract violations:\n{report}");
    assert!(report.contains("passed"), "schemathesis ran no test cases:\n{report}");
}
