//! The holmes and k8sgpt agents with stand-in executables placed first on the PATH: each
//! records its argv, environment and input files, then prints a canned answer.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rune_engine::agent::{agent_by_name, AgentConfig, AgentError, AgentQuestion, ContextDoc};
use rune_engine::backend::BackendKind;

use crate::support::{config_with_path_first, read_pid, script, wait_dead, Events};

/// Records argv (one per line), env, and the files passed with `--file`/`--config` into
/// the script's own directory, then runs the given tail.
fn recorder(tail: &str) -> String {
    format!(
        r#"#!/bin/sh
d=$(dirname "$0")
printf '%s\n' "$@" > "$d/argv"
env > "$d/env"
while [ $# -gt 0 ]; do
  case "$1" in
    --file) shift; cat "$1" >> "$d/files";;
    --config) shift; cat "$1" > "$d/config";;
    --json-output-file) shift; echo "$1" > "$d/json_path";;
  esac
  shift
done
echo "stand-in working" >&2
{tail}
"#
    )
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn env_of(dir: &Path) -> HashMap<String, String> {
    read(dir, "env").lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn question(kind: BackendKind, url: &str) -> AgentQuestion {
    AgentQuestion {
        question: "Why is web-0 restarting?".into(),
        context: vec![
            ContextDoc { name: "describe".into(), kind: "kubectl".into(), content: "Last State: OOMKilled\n".into() },
            ContextDoc { name: "logs".into(), kind: "logs".into(), content: "java.lang.OutOfMemoryError\n".into() },
        ],
        model: "llama3.1:8b".into(),
        backend_url: Some(url.into()),
        backend_type: kind,
        kubeconfig: Some("/tmp/test-kubeconfig".into()),
    }
}

/// holmes on Ollama: `holmes ask "<q>" --model ollama/<m> --no-interactive` with the
/// evidence as `--file`s, `OLLAMA_API_BASE` and `KUBECONFIG` in its env; the answer is
/// read from stdout after the `AI:` marker; stderr lines become events.
#[tokio::test]
async fn holmes_wires_ollama_through_env_and_reads_stdout() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "holmes",
        &recorder("printf 'User: question\\nAI: web-0 is OOMKilled; raise its memory limit.\\n'"),
    );
    let agent = agent_by_name("holmes", &config_with_path_first(dir.path())).unwrap();
    let events = Events::default();
    let (ctx, _) = events.ctx(Duration::from_secs(30));
    let a = agent.ask(&question(BackendKind::Ollama, "http://127.0.0.1:11434/"), &ctx).await.unwrap();
    assert_eq!(a.text, "web-0 is OOMKilled; raise its memory limit.");
    let argv: Vec<String> = read(dir.path(), "argv").lines().map(str::to_owned).collect();
    assert_eq!(&argv[..5], ["ask", "Why is web-0 restarting?", "--model", "ollama/llama3.1:8b", "--no-interactive"]);
    assert_eq!(argv.iter().filter(|a| *a == "--file").count(), 2);
    assert!(argv.contains(&"--json-output-file".to_owned()));
    assert_eq!(read(dir.path(), "files"), "Last State: OOMKilled\njava.lang.OutOfMemoryError\n");
    let env = env_of(dir.path());
    assert_eq!(env["OLLAMA_API_BASE"], "http://127.0.0.1:11434");
    assert_eq!(env["KUBECONFIG"], "/tmp/test-kubeconfig");
    assert!(env["PATH"].starts_with(dir.path().to_str().unwrap()));
    assert!(events.stderr_lines().contains(&"stand-in working".to_owned()), "{:?}", events.all());
}

/// holmes on an OpenAI-compatible server: `openai/<m>`, `OPENAI_API_BASE=<url>/v1` and the
/// configured key in env (never on argv); the answer comes from `--json-output-file`.
#[tokio::test]
async fn holmes_wires_openai_and_prefers_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let tail = r#"jf=$(cat "$d/json_path"); printf '{"result": "answer from json", "tool_calls": []}' > "$jf"; echo "AI: stdout answer""#;
    script(dir.path(), "holmes", &recorder(tail));
    let mut config: AgentConfig = config_with_path_first(dir.path());
    config.backend.api_key = Some("sk-secret".into());
    let agent = agent_by_name("holmesgpt", &config).unwrap();
    let (ctx, _) = Events::default().ctx(Duration::from_secs(30));
    let a = agent.ask(&question(BackendKind::OpenAi, "http://vllm:8000/v1"), &ctx).await.unwrap();
    assert_eq!(a.text, "answer from json");
    assert_eq!(a.raw["holmes"]["result"], "answer from json");
    let argv = read(dir.path(), "argv");
    assert!(argv.contains("openai/llama3.1:8b"), "{argv}");
    assert!(!argv.contains("sk-secret"), "key leaked to argv: {argv}");
    let env = env_of(dir.path());
    assert_eq!(env["OPENAI_API_BASE"], "http://vllm:8000/v1");
    assert_eq!(env["OPENAI_API_KEY"], "sk-secret");
}

/// A failing holmes run reports its exit status and the tail of its stderr.
#[tokio::test]
async fn holmes_failure_reports_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "holmes", &recorder("echo 'litellm.APIConnectionError: connection refused' >&2; exit 2"));
    let agent = agent_by_name("holmes", &config_with_path_first(dir.path())).unwrap();
    let (ctx, _) = Events::default().ctx(Duration::from_secs(30));
    let e = agent.ask(&question(BackendKind::Ollama, "http://127.0.0.1:11434"), &ctx).await.unwrap_err();
    assert!(matches!(e, AgentError::ProcessFailed { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("exited with status 2"), "{msg}");
    assert!(msg.contains("litellm.APIConnectionError"), "{msg}");
}

/// Cancelling a running CLI agent kills it and the processes it started.
#[tokio::test]
async fn holmes_cancel_kills_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "holmes", &recorder(r#"echo $$ > "$d/pid"; sleep 300 & echo $! > "$d/child"; wait"#));
    let agent = agent_by_name("holmes", &config_with_path_first(dir.path())).unwrap();
    let (ctx, cancel) = Events::default().ctx(Duration::from_secs(600));
    let child_file = dir.path().join("child");
    let watcher = tokio::spawn(async move {
        let pid = read_pid(&child_file, Duration::from_secs(20)).await;
        cancel.cancel();
        pid
    });
    let e = agent.ask(&question(BackendKind::Ollama, "http://127.0.0.1:11434"), &ctx).await.unwrap_err();
    assert!(matches!(e, AgentError::Cancelled { .. }), "{e:?}");
    let grandchild = watcher.await.unwrap();
    let pid = read_pid(&dir.path().join("pid"), Duration::from_secs(1)).await;
    assert!(wait_dead(pid, Duration::from_secs(5)).await, "holmes {pid} survived cancel");
    assert!(wait_dead(grandchild, Duration::from_secs(5)).await, "its child {grandchild} survived cancel");
}

/// Missing programs are named with what to install and which variable to set.
#[test]
fn missing_cli_programs_say_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let config = AgentConfig { path: Some(dir.path().as_os_str().to_owned()), ..AgentConfig::default() };
    let e = agent_by_name("holmes", &config).err().unwrap().to_string();
    assert_eq!(e, "holmes not found on PATH: install HolmesGPT (pipx install holmesgpt) or set RUNE_HOLMES_BIN");
    let e = agent_by_name("k8sgpt", &config).err().unwrap().to_string();
    assert!(e.starts_with("k8sgpt not found on PATH: install k8sgpt"), "{e}");
    assert!(e.ends_with("or set RUNE_K8SGPT_BIN"), "{e}");
}

/// k8sgpt: `analyze --explain --output json --no-cache --backend ollama --config <file>
/// --kubeconfig <kc>`, a throw-away config naming the model and server, and its JSON
/// findings rendered as the answer.
#[tokio::test]
async fn k8sgpt_wires_config_and_renders_findings() {
    let dir = tempfile::tempdir().unwrap();
    let canned = r#"{"provider":"ollama","errors":null,"status":"ProblemDetected","problems":1,"results":[{"kind":"Pod","name":"default/web-0","error":[{"Text":"back-off restarting failed container","Sensitive":[]}],"details":"The container exceeds its memory limit.","parentObject":"Deployment/web"}]}"#;
    script(dir.path(), "k8sgpt", &recorder(&format!("echo '{canned}'")));
    let agent = agent_by_name("k8sgpt", &config_with_path_first(dir.path())).unwrap();
    let events = Events::default();
    let (ctx, _) = events.ctx(Duration::from_secs(30));
    let a = agent.ask(&question(BackendKind::Ollama, "http://127.0.0.1:11434"), &ctx).await.unwrap();
    assert!(a.text.contains("1. Pod default/web-0 (parent: Deployment/web)"), "{}", a.text);
    assert!(a.text.contains("back-off restarting failed container"), "{}", a.text);
    assert!(a.text.contains("Explanation: The container exceeds its memory limit."), "{}", a.text);
    assert_eq!(a.raw["problems"], 1);
    let argv: Vec<String> = read(dir.path(), "argv").lines().map(str::to_owned).collect();
    assert_eq!(&argv[..7], ["analyze", "--explain", "--output", "json", "--no-cache", "--backend", "ollama"]);
    let kc = argv.iter().position(|a| a == "--kubeconfig").unwrap();
    assert_eq!(argv[kc + 1], "/tmp/test-kubeconfig");
    let config = read(dir.path(), "config");
    assert!(config.contains("name: \"ollama\""), "{config}");
    assert!(config.contains("model: \"llama3.1:8b\""), "{config}");
    assert!(config.contains("baseurl: \"http://127.0.0.1:11434\""), "{config}");
    assert!(config.contains("defaultprovider: \"ollama\""), "{config}");
    assert!(events.warnings().iter().any(|w| w.contains("not passed")), "{:?}", events.warnings());
}

/// k8sgpt on an OpenAI-compatible server uses the `localai` provider at `<url>/v1`.
#[tokio::test]
async fn k8sgpt_openai_uses_localai_provider() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "k8sgpt", &recorder(r#"echo '{"status":"OK","problems":0,"results":null}'"#));
    let agent = agent_by_name("k8sgpt", &config_with_path_first(dir.path())).unwrap();
    let (ctx, _) = Events::default().ctx(Duration::from_secs(30));
    let a = agent.ask(&question(BackendKind::OpenAi, "http://vllm:8000"), &ctx).await.unwrap();
    assert_eq!(a.text, "k8sgpt found no problems in the cluster.");
    let config = read(dir.path(), "config");
    assert!(config.contains("name: \"localai\""), "{config}");
    assert!(config.contains("baseurl: \"http://vllm:8000/v1\""), "{config}");
}
