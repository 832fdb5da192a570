//! The `holmes` agent: runs the HolmesGPT CLI (`holmes ask "<question>" --model …`) with
//! the model backend wired through the environment LiteLLM reads, attaches the case's
//! evidence as files, and takes the answer from its JSON output (or its stdout).
//!
//! Wiring: Ollama → model `ollama/<model>`, `OLLAMA_API_BASE=<url>`; OpenAI-compatible →
//! model `openai/<model>`, `OPENAI_API_BASE=<url>/v1`, `OPENAI_API_KEY` from the configured
//! key (inherited from RUNE's environment when none is configured). `KUBECONFIG` is set when
//! the question names one. The API key never appears on the command line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::process::Command;

use super::process::{clamp_subprocess_timeout, describe_exit, resolve_program, run_to_completion, strip_ansi};
use super::{Agent, AgentAnswer, AgentConfig, AgentContext, AgentError, AgentEvent, AgentQuestion};
use crate::backend::{ollama_model_name, BackendKind, Usage};

const INSTALL_HINT: &str = "install HolmesGPT (pipx install holmesgpt) or set RUNE_HOLMES_BIN";

/// The `holmes` agent.
#[derive(Debug)]
pub struct HolmesAgent {
    program: PathBuf,
    args: Vec<String>,
    path: Option<OsString>,
    api_key: Option<String>,
}

/// The command line and environment of one `holmes ask`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
}

/// The LiteLLM model name HolmesGPT needs for `model` on `kind`.
fn litellm_model(kind: BackendKind, model: &str) -> String {
    match kind {
        BackendKind::Ollama if model.starts_with("ollama_chat/") => model.to_owned(),
        BackendKind::Ollama => format!("ollama/{}", ollama_model_name(model)),
        BackendKind::OpenAi if model.starts_with("openai/") => model.to_owned(),
        BackendKind::OpenAi => format!("openai/{model}"),
    }
}

impl HolmesAgent {
    /// A holmes agent; the program (`RUNE_HOLMES_BIN`, default `holmes`) is looked up on
    /// the PATH now ([`AgentConfig::search_path`]), so a missing install is reported before any question.
    pub fn new(config: &AgentConfig) -> Result<Self, AgentError> {
        let bin = config.holmes.bin.clone().unwrap_or_else(|| "holmes".to_owned());
        let program = resolve_program(&bin, config.search_path().as_deref())
            .ok_or_else(|| AgentError::BinaryNotFound { program: bin.clone(), hint: INSTALL_HINT.to_owned() })?;
        Ok(HolmesAgent {
            program,
            args: config.holmes.args.clone(),
            path: config.path.clone(),
            api_key: config.backend.api_key.clone(),
        })
    }

    pub(crate) fn invocation(
        &self,
        q: &AgentQuestion,
        backend_url: &str,
        json_out: &Path,
        files: &[PathBuf],
    ) -> Invocation {
        let mut args = vec![
            "ask".to_owned(),
            q.question.clone(),
            "--model".to_owned(),
            litellm_model(q.backend_type, &q.model),
            "--no-interactive".to_owned(),
            "--json-output-file".to_owned(),
            json_out.display().to_string(),
        ];
        for f in files {
            args.push("--file".to_owned());
            args.push(f.display().to_string());
        }
        args.extend(self.args.iter().cloned());
        let mut env = Vec::new();
        match q.backend_type {
            BackendKind::Ollama => env.push(("OLLAMA_API_BASE".to_owned(), backend_url.to_owned())),
            BackendKind::OpenAi => {
                env.push(("OPENAI_API_BASE".to_owned(), format!("{backend_url}/v1")));
                if let Some(k) = &self.api_key {
                    env.push(("OPENAI_API_KEY".to_owned(), k.clone()));
                }
            }
        }
        if let Some(k) = &q.kubeconfig {
            env.push(("KUBECONFIG".to_owned(), k.clone()));
        }
        if let Some(p) = &self.path {
            env.push(("PATH".to_owned(), p.to_string_lossy().into_owned()));
        }
        Invocation { args, env }
    }
}

/// Makes a context document's name safe as a file name.
fn file_name(i: usize, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
        .take(60)
        .collect();
    format!("{:02}-{}.txt", i + 1, clean.trim_matches('.'))
}

/// The answer in HolmesGPT's stdout: the text after the last `AI:` marker, or everything
/// when there is none.
pub(crate) fn parse_stdout(stdout: &str) -> Option<String> {
    let text = strip_ansi(stdout);
    let lines: Vec<&str> = text.lines().collect();
    let answer = match lines.iter().rposition(|l| l.trim_start().starts_with("AI:")) {
        Some(i) => {
            let first = lines[i].trim_start().trim_start_matches("AI:").trim_start();
            std::iter::once(first).chain(lines[i + 1..].iter().copied()).collect::<Vec<_>>().join("\n")
        }
        None => text.clone(),
    };
    let answer = answer.trim();
    (!answer.is_empty()).then(|| answer.to_owned())
}

/// The answer in HolmesGPT's `--json-output-file` document (`result`, or `analysis` in
/// some versions).
pub(crate) fn parse_json_output(v: &Value) -> Option<String> {
    ["result", "analysis"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[async_trait]
impl Agent for HolmesAgent {
    fn name(&self) -> &str {
        "holmes"
    }

    async fn ask(&self, q: &AgentQuestion, ctx: &AgentContext) -> Result<AgentAnswer, AgentError> {
        let agent = "holmes";
        let url = q.required_backend_url(agent, "pass --backend-url; HolmesGPT reaches the model through it")?;
        let io = |context: &str, source| AgentError::Io { agent: agent.into(), context: context.into(), source };
        let dir = tempfile::Builder::new()
            .prefix("rune-holmes-")
            .tempdir()
            .map_err(|e| io("creating a temporary directory", e))?;
        let mut files = Vec::with_capacity(q.context.len());
        for (i, d) in q.context.iter().enumerate() {
            let p = dir.path().join(file_name(i, &d.name));
            tokio::fs::write(&p, &d.content).await.map_err(|e| io("writing an evidence file", e))?;
            files.push(p);
        }
        let json_out = dir.path().join("holmes-output.json");
        let inv = self.invocation(q, &url, &json_out, &files);
        let mut cmd = Command::new(&self.program);
        cmd.args(&inv.args).envs(inv.env.iter().map(|(k, v)| (k, v)));
        ctx.emit(AgentEvent::Progress { message: format!("running {} ask", self.program.display()) });
        let timeout = clamp_subprocess_timeout(ctx.timeout);
        let done = run_to_completion(agent, &self.program, INSTALL_HINT, cmd, ctx, timeout).await?;
        let stdout = String::from_utf8_lossy(&done.stdout).into_owned();
        if !done.status.success() {
            return Err(AgentError::ProcessFailed {
                agent: agent.into(),
                program: self.program.display().to_string(),
                status: describe_exit(&done.status),
                stderr_tail: done.stderr_tail,
            });
        }
        if done.stdout_truncated {
            ctx.emit(AgentEvent::Warning { message: "holmes printed more than 16 MiB; the rest was dropped".into() });
        }
        let json_doc: Option<Value> = match tokio::fs::read(&json_out).await {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(v) => Some(v),
                Err(e) => {
                    ctx.emit(AgentEvent::Warning {
                        message: format!("holmes JSON output unreadable ({e}); using stdout"),
                    });
                    None
                }
            },
            Err(_) => None,
        };
        let text =
            json_doc.as_ref().and_then(parse_json_output).or_else(|| parse_stdout(&stdout)).ok_or_else(|| {
                AgentError::EmptyAnswer {
                    agent: agent.into(),
                    hint: format!(
                        "holmes exited successfully but printed no answer; last stderr lines:\n{}",
                        done.stderr_tail
                    ),
                }
            })?;
        Ok(AgentAnswer {
            text,
            usage: Usage::default(),
            timing: None,
            raw: json!({ "holmes": json_doc, "stdout": strip_ansi(&stdout) }),
            artifacts: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Model names get the LiteLLM provider prefix once.
    #[test]
    fn model_prefixes() {
        assert_eq!(litellm_model(BackendKind::Ollama, "llama3.1:8b"), "ollama/llama3.1:8b");
        assert_eq!(litellm_model(BackendKind::Ollama, "ollama/llama3.1:8b"), "ollama/llama3.1:8b");
        assert_eq!(litellm_model(BackendKind::Ollama, "ollama_chat/qwen3"), "ollama_chat/qwen3");
        assert_eq!(litellm_model(BackendKind::OpenAi, "Qwen/Qwen3-8B"), "openai/Qwen/Qwen3-8B");
        assert_eq!(litellm_model(BackendKind::OpenAi, "openai/x"), "openai/x");
    }

    /// The answer follows the last `AI:` marker; colours and the echoed question are dropped.
    #[test]
    fn stdout_answers() {
        let out = "\u{1b}[1;33mUser:\u{1b}[0m why?\nRunning tool kubectl\n\u{1b}[1;32mAI:\u{1b}[0m The pod is OOMKilled.\nRaise the limit.\n";
        assert_eq!(parse_stdout(out).unwrap(), "The pod is OOMKilled.\nRaise the limit.");
        assert_eq!(parse_stdout("just text\n").unwrap(), "just text");
        assert_eq!(parse_stdout("  \n"), None);
    }

    /// The JSON output's `result` (or `analysis`) is the answer.
    #[test]
    fn json_answers() {
        assert_eq!(parse_json_output(&json!({"result": " x "})).unwrap(), "x");
        assert_eq!(parse_json_output(&json!({"analysis": "y"})).unwrap(), "y");
        assert_eq!(parse_json_output(&json!({"result": ""})), None);
    }

    /// Evidence file names are safe and ordered.
    #[test]
    fn file_names() {
        assert_eq!(file_name(0, "kubectl describe pod/web-0"), "01-kubectl_describe_pod_web-0.txt");
        assert_eq!(file_name(9, "../../etc/passwd"), "10-_.._etc_passwd.txt");
    }
}
