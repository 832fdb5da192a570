//! The stdio driver protocol v1 against a real driver process (a Python script written by
//! the test), including drivers that misbehave, and process cleanup on cancel/timeout.

use std::path::Path;
use std::time::Duration;

use rune_engine::agent::protocol::ProtocolError;
use rune_engine::agent::{Agent, AgentConfig, AgentError, AgentQuestion, ContextDoc, StdioAgent, StdioConfig};
use rune_engine::backend::BackendKind;

use crate::support::{config_with_path_first, read_pid, wait_dead, Events};

/// The fake driver. argv: MODE STARTS_FILE. Appends its pid to STARTS_FILE at start.
const DRIVER: &str = r#"
import json, os, subprocess, sys, time
mode, starts = sys.argv[1], sys.argv[2]
with open(starts, "a") as f:
    f.write(f"{os.getpid()}\n")
def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
for line in sys.stdin:
    req = json.loads(line)
    rid, action, p = req["id"], req["action"], req.get("params", {})
    if action == "info":
        send({"status": "ok", "result": {"name": "fake-driver", "version": "1", "actions": ["info", "ask"]}, "id": rid})
        continue
    sys.stderr.write("thinking about: " + p["question"] + "\n")
    sys.stderr.flush()
    if mode == "good":
        time.sleep(0.2)
        answer = "echo: %s | model=%s | backend=%s %s | kubeconfig=%s | docs=%s" % (
            p["question"], p["model"], p["backend_type"], p["backend_url"], p["kubeconfig_path"],
            ",".join(d["name"] + ":" + d["kind"] for d in p["context"]))
        send({"status": "ok", "id": rid, "result": {
            "answer": answer,
            "usage": {"prompt_tokens": 11, "completion_tokens": 5},
            "artifacts": [{"name": "notes.txt", "kind": "log", "content": "driver notes"},
                          {"name": "x", "kind": "log", "path": "/etc/passwd"}],
            "findings": ["extra fields are kept"]}})
    elif mode == "error":
        send({"status": "error", "error": "cluster unreachable", "id": rid})
    elif mode == "malformed":
        sys.stdout.write("Loading model weights... done\n")
        sys.stdout.flush()
    elif mode == "wrong_id":
        send({"status": "ok", "result": {"answer": "x"}, "id": rid + "0"})
    elif mode == "no_answer_field":
        send({"status": "ok", "result": {"text": "x"}, "id": rid})
    elif mode == "silent":
        child = subprocess.Popen(["sleep", "300"])
        with open(starts + ".child", "w") as f:
            f.write(f"{child.pid}\n")
        time.sleep(3600)
    elif mode == "exit_early":
        sys.stderr.write("fatal: cannot load model\n")
        sys.stderr.flush()
        sys.exit(3)
"#;

fn driver(dir: &Path, mode: &str) -> (StdioAgent, std::path::PathBuf) {
    let script = dir.join("driver.py");
    std::fs::write(&script, DRIVER).unwrap();
    let starts = dir.join("starts");
    let mut config: AgentConfig = config_with_path_first(dir);
    config.stdio = StdioConfig {
        command: vec![
            "python3".into(),
            "-u".into(),
            script.display().to_string(),
            mode.into(),
            starts.display().to_string(),
        ],
        ..StdioConfig::default()
    };
    (StdioAgent::new("stdio", &config).unwrap(), starts)
}

fn question() -> AgentQuestion {
    AgentQuestion {
        question: "Why is web-0 restarting?".into(),
        context: vec![ContextDoc { name: "events".into(), kind: "kubectl".into(), content: "BackOff".into() }],
        model: "llama3.1:8b".into(),
        backend_url: Some("http://127.0.0.1:11434".into()),
        backend_type: BackendKind::Ollama,
        kubeconfig: Some("/tmp/kc".into()),
    }
}

fn starts(path: &Path) -> Vec<u32> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| l.parse().unwrap()).collect()
}

/// A good driver: `info` at start, `ask` with every param, answer/usage/inline artifacts
/// parsed (a path "artifact" is refused with a warning), stderr forwarded as events, and
/// the same long-lived process serves the next question.
#[tokio::test]
async fn stdio_driver_answers_and_stays_alive() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, starts_file) = driver(dir.path(), "good");
    let events = Events::default();
    let (ctx, _) = events.ctx(Duration::from_secs(30));
    let info = agent.info(&ctx).await.unwrap().unwrap();
    assert_eq!(info.name, "fake-driver");
    assert_eq!(info.actions, vec!["info", "ask"]);
    let a = agent.ask(&question(), &ctx).await.unwrap();
    assert_eq!(
        a.text,
        "echo: Why is web-0 restarting? | model=llama3.1:8b | backend=ollama http://127.0.0.1:11434 | \
         kubeconfig=/tmp/kc | docs=events:kubectl"
    );
    assert_eq!(a.usage.prompt_tokens, Some(11));
    assert_eq!(a.artifacts.len(), 1);
    assert_eq!(a.artifacts[0].bytes, b"driver notes");
    assert_eq!(a.raw["findings"][0], "extra fields are kept");
    assert!(events.warnings().iter().any(|w| w.contains("never read")), "{:?}", events.warnings());
    assert!(
        events.stderr_lines().iter().any(|l| l == "thinking about: Why is web-0 restarting?"),
        "{:?}",
        events.all()
    );
    agent.ask(&question(), &ctx).await.unwrap();
    let pids = starts(&starts_file);
    assert_eq!(pids.len(), 1, "one long-lived driver, got starts {pids:?}");
    agent.shutdown().await;
    assert!(wait_dead(pids[0], Duration::from_secs(5)).await);
}

/// `status: "error"` is the driver's answer: reported with its message, driver kept.
#[tokio::test]
async fn stdio_driver_error_status_is_reported_and_driver_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, starts_file) = driver(dir.path(), "error");
    let (ctx, _) = Events::default().ctx(Duration::from_secs(30));
    for _ in 0..2 {
        let e = agent.ask(&question(), &ctx).await.unwrap_err();
        assert!(matches!(&e, AgentError::Driver { message, .. } if message == "cluster unreachable"), "{e:?}");
    }
    assert_eq!(starts(&starts_file).len(), 1);
    agent.shutdown().await;
}

/// A non-JSON stdout line is a protocol error quoting the line; the driver is killed and
/// the next call starts a fresh one.
#[tokio::test]
async fn stdio_driver_malformed_line_is_rejected_and_driver_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, starts_file) = driver(dir.path(), "malformed");
    let (ctx, _) = Events::default().ctx(Duration::from_secs(30));
    let e = agent.ask(&question(), &ctx).await.unwrap_err();
    assert!(matches!(&e, AgentError::Protocol { source: ProtocolError::NotJson { .. }, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("`Loading model weights... done`"), "{msg}");
    assert!(msg.contains("log to stderr"), "{msg}");
    let first = starts(&starts_file)[0];
    assert!(wait_dead(first, Duration::from_secs(5)).await, "driver {first} still alive");
    let _ = agent.ask(&question(), &ctx).await.unwrap_err();
    assert_eq!(starts(&starts_file).len(), 2);
}

/// A response with another request's id is rejected, naming both ids.
#[tokio::test]
async fn stdio_driver_wrong_id_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = driver(dir.path(), "wrong_id");
    let (ctx, _) = Events::default().ctx(Duration::from_secs(30));
    let e = agent.ask(&question(), &ctx).await.unwrap_err();
    assert!(matches!(&e, AgentError::Protocol { source: ProtocolError::IdMismatch { .. }, .. }), "{e:?}");
}

/// An `ok` result without `answer` is a protocol error saying so.
#[tokio::test]
async fn stdio_driver_result_without_answer_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = driver(dir.path(), "no_answer_field");
    let (ctx, _) = Events::default().ctx(Duration::from_secs(30));
    let e = agent.ask(&question(), &ctx).await.unwrap_err();
    assert!(e.to_string().contains("lacks `answer`"), "{e}");
    agent.shutdown().await;
}

/// A driver that exits before answering: the error gives its exit status and last stderr.
#[tokio::test]
async fn stdio_driver_exiting_early_reports_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = driver(dir.path(), "exit_early");
    let (ctx, _) = Events::default().ctx(Duration::from_secs(30));
    let e = agent.ask(&question(), &ctx).await.unwrap_err();
    assert!(matches!(e, AgentError::ProcessFailed { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("exited before answering (exited with status 3)"), "{msg}");
    assert!(msg.contains("fatal: cannot load model"), "{msg}");
}

/// Cancelling during `ask` kills the driver and its whole process group (a grandchild
/// `sleep` dies too) and returns promptly with a cancellation.
#[tokio::test]
async fn stdio_cancel_kills_driver_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, starts_file) = driver(dir.path(), "silent");
    let (ctx, cancel) = Events::default().ctx(Duration::from_secs(600));
    let child_file = dir.path().join("starts.child");
    let watcher = tokio::spawn(async move {
        let child = read_pid(&child_file, Duration::from_secs(20)).await;
        cancel.cancel();
        child
    });
    let e = agent.ask(&question(), &ctx).await.unwrap_err();
    assert!(matches!(e, AgentError::Cancelled { .. }), "{e:?}");
    let grandchild = watcher.await.unwrap();
    let driver_pid = starts(&starts_file)[0];
    assert!(wait_dead(driver_pid, Duration::from_secs(5)).await, "driver {driver_pid} survived cancel");
    assert!(wait_dead(grandchild, Duration::from_secs(5)).await, "grandchild {grandchild} survived cancel");
}

/// A driver that never answers is stopped at the (clamped, 10 s minimum) timeout.
#[tokio::test]
async fn stdio_silent_driver_times_out_and_dies() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, starts_file) = driver(dir.path(), "silent");
    let (ctx, _) = Events::default().ctx(Duration::from_millis(1));
    let started = std::time::Instant::now();
    let e = agent.ask(&question(), &ctx).await.unwrap_err();
    assert!(matches!(e, AgentError::Timeout { after, .. } if after == Duration::from_secs(10)), "{e:?}");
    assert!(started.elapsed() >= Duration::from_secs(10));
    let grandchild = read_pid(&dir.path().join("starts.child"), Duration::from_secs(1)).await;
    assert!(wait_dead(starts(&starts_file)[0], Duration::from_secs(5)).await);
    assert!(wait_dead(grandchild, Duration::from_secs(5)).await);
}

/// A driver command whose program does not exist is refused at construction, naming it
/// and what to fix.
#[test]
fn stdio_missing_program_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_with_path_first(dir.path());
    config.stdio.command = vec!["rune-no-such-driver".into(), "--flag".into()];
    let e = StdioAgent::new("stdio", &config).err().unwrap().to_string();
    assert!(e.starts_with("rune-no-such-driver not found on PATH"), "{e}");
    assert!(e.contains("RUNE_STDIO_DRIVER_CMD"), "{e}");
}
