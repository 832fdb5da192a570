//! The `k8sgpt` agent: runs `k8sgpt analyze --explain --output json` against the cluster in
//! the question's kubeconfig and turns its findings into an answer.
//!
//! The backend is configured through a throw-away k8sgpt config file passed with
//! `--config` (provider `ollama` for Ollama, `localai` with `<url>/v1` for
//! OpenAI-compatible servers), so the user's own k8sgpt configuration is never changed and
//! cached explanations from earlier runs are not reused (`--no-cache`). k8sgpt analyses the
//! live cluster: it takes no free-form question and no attached evidence.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::process::Command;

use super::process::{clamp_subprocess_timeout, describe_exit, resolve_program, run_to_completion, strip_ansi};
use super::protocol::excerpt_line;
use super::{Agent, AgentAnswer, AgentConfig, AgentContext, AgentError, AgentEvent, AgentQuestion};
use crate::backend::{ollama_model_name, BackendKind, Usage};

const INSTALL_HINT: &str =
    "install k8sgpt (a release from github.com/k8sgpt-ai/k8sgpt, or `brew install k8sgpt`) or set RUNE_K8SGPT_BIN";

/// The `k8sgpt` agent.
#[derive(Debug)]
pub struct K8sGptAgent {
    program: PathBuf,
    args: Vec<String>,
    path: Option<OsString>,
    api_key: Option<String>,
}

/// YAML double-quoted scalar (JSON string syntax is valid YAML).
fn yaml_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

impl K8sGptAgent {
    /// A k8sgpt agent; the program (`RUNE_K8SGPT_BIN`, default `k8sgpt`) is looked up on
    /// the PATH now ([`AgentConfig::search_path`]), so a missing install is reported before any question.
    pub fn new(config: &AgentConfig) -> Result<Self, AgentError> {
        let bin = config.k8sgpt.bin.clone().unwrap_or_else(|| "k8sgpt".to_owned());
        let program = resolve_program(&bin, config.search_path().as_deref())
            .ok_or_else(|| AgentError::BinaryNotFound { program: bin.clone(), hint: INSTALL_HINT.to_owned() })?;
        Ok(K8sGptAgent {
            program,
            args: config.k8sgpt.args.clone(),
            path: config.path.clone(),
            api_key: config.backend.api_key.clone(),
        })
    }

    /// The provider name and the config file text for `q`'s backend.
    pub(crate) fn provider_config(&self, q: &AgentQuestion, backend_url: &str) -> (&'static str, String) {
        let (name, model, baseurl) = match q.backend_type {
            BackendKind::Ollama => ("ollama", ollama_model_name(&q.model).to_owned(), backend_url.to_owned()),
            BackendKind::OpenAi => ("localai", q.model.clone(), format!("{backend_url}/v1")),
        };
        let mut yaml = format!(
            "ai:\n  providers:\n    - name: {}\n      model: {}\n      baseurl: {}\n",
            yaml_str(name),
            yaml_str(&model),
            yaml_str(&baseurl)
        );
        if let (BackendKind::OpenAi, Some(key)) = (q.backend_type, &self.api_key) {
            yaml.push_str(&format!("      password: {}\n", yaml_str(key)));
        }
        yaml.push_str(&format!("  defaultprovider: {}\n", yaml_str(name)));
        (name, yaml)
    }

    pub(crate) fn args_for(&self, q: &AgentQuestion, provider: &str, config_file: &Path) -> Vec<String> {
        let mut args: Vec<String> =
            ["analyze", "--explain", "--output", "json", "--no-cache", "--backend", provider, "--config"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
        args.push(config_file.display().to_string());
        if let Some(k) = &q.kubeconfig {
            args.push("--kubeconfig".to_owned());
            args.push(k.clone());
        }
        args.extend(self.args.iter().cloned());
        args
    }
}

/// Renders k8sgpt's JSON output (one document with `results`, or one JSON object per line
/// from older versions) as answer text; returns the text and the parsed document.
pub(crate) fn render_findings(stdout: &str) -> Result<(String, Value), String> {
    let text = strip_ansi(stdout);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("k8sgpt printed nothing on stdout".to_owned());
    }
    let doc = match serde_json::from_str::<Value>(trimmed) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let items: Vec<Value> = trimmed
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
                .filter(Value::is_object)
                .collect();
            if items.is_empty() {
                return Err(format!("k8sgpt printed no JSON: {}", excerpt_line(trimmed)));
            }
            match items.as_slice() {
                [only] if only.get("results").is_some() || only.get("status").is_some() => only.clone(),
                _ => json!({ "results": items }),
            }
        }
    };
    let results = doc.get("results").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = String::new();
    if results.is_empty() {
        out.push_str("k8sgpt found no problems in the cluster.\n");
    } else {
        out.push_str(&format!("k8sgpt found {} problem(s):\n", results.len()));
        for (i, r) in results.iter().enumerate() {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").trim().to_owned();
            out.push_str(&format!("\n{}. {} {}", i + 1, s("kind"), s("name")));
            let parent = s("parentObject");
            if !parent.is_empty() {
                out.push_str(&format!(" (parent: {parent})"));
            }
            out.push('\n');
            for e in r.get("error").and_then(Value::as_array).into_iter().flatten() {
                let msg = e.get("Text").or_else(|| e.get("text")).and_then(Value::as_str).or_else(|| e.as_str());
                if let Some(m) = msg {
                    out.push_str(&format!("   - {}\n", m.trim()));
                }
            }
            let details = s("details");
            if !details.is_empty() {
                out.push_str(&format!("   Explanation: {details}\n"));
            }
        }
    }
    let errors: Vec<&str> =
        doc.get("errors").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    if !errors.is_empty() {
        out.push_str("\nAnalyzer errors:\n");
        for e in errors {
            out.push_str(&format!("- {e}\n"));
        }
    }
    Ok((out.trim_end().to_owned(), doc))
}

#[async_trait]
impl Agent for K8sGptAgent {
    fn name(&self) -> &str {
        "k8sgpt"
    }

    async fn ask(&self, q: &AgentQuestion, ctx: &AgentContext) -> Result<AgentAnswer, AgentError> {
        let agent = "k8sgpt";
        let url = q.required_backend_url(agent, "pass --backend-url; k8sgpt explains its findings through it")?;
        if !q.context.is_empty() {
            ctx.emit(AgentEvent::Warning {
                message: format!(
                    "k8sgpt analyses the live cluster; the {} attached evidence document(s) are not passed to it",
                    q.context.len()
                ),
            });
        }
        let io = |context: &str, source| AgentError::Io { agent: agent.into(), context: context.into(), source };
        let dir = tempfile::Builder::new()
            .prefix("rune-k8sgpt-")
            .tempdir()
            .map_err(|e| io("creating a temporary directory", e))?;
        let (provider, yaml) = self.provider_config(q, &url);
        let config_file = dir.path().join("k8sgpt.yaml");
        tokio::fs::write(&config_file, yaml).await.map_err(|e| io("writing the k8sgpt config", e))?;
        let args = self.args_for(q, provider, &config_file);
        let mut cmd = Command::new(&self.program);
        cmd.args(&args);
        if let Some(k) = &q.kubeconfig {
            cmd.env("KUBECONFIG", k);
        }
        if let Some(p) = &self.path {
            cmd.env("PATH", p);
        }
        ctx.emit(AgentEvent::Progress { message: format!("running {} analyze --explain", self.program.display()) });
        let timeout = clamp_subprocess_timeout(ctx.timeout);
        let done = run_to_completion(agent, &self.program, INSTALL_HINT, cmd, ctx, timeout).await?;
        if !done.status.success() {
            return Err(AgentError::ProcessFailed {
                agent: agent.into(),
                program: self.program.display().to_string(),
                status: describe_exit(&done.status),
                stderr_tail: done.stderr_tail,
            });
        }
        let stdout = String::from_utf8_lossy(&done.stdout);
        let (text, doc) = render_findings(&stdout).map_err(|why| AgentError::EmptyAnswer {
            agent: agent.into(),
            hint: format!("{why}; last stderr lines:\n{}", done.stderr_tail),
        })?;
        Ok(AgentAnswer { text, usage: Usage::default(), timing: None, raw: doc, artifacts: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The current single-document output renders every finding, error and explanation.
    #[test]
    fn renders_document() {
        let out = r#"{"provider":"ollama","errors":["RBAC: cannot list secrets"],"status":"ProblemDetected","problems":1,
            "results":[{"kind":"Pod","name":"default/web-0","error":[{"Text":"Back-off restarting failed container","Sensitive":[]}],
            "details":"The container is OOMKilled; raise its memory limit.","parentObject":"Deployment/web"}]}"#;
        let (text, doc) = render_findings(out).unwrap();
        assert!(text.starts_with("k8sgpt found 1 problem(s):"));
        assert!(text.contains("1. Pod default/web-0 (parent: Deployment/web)"));
        assert!(text.contains("   - Back-off restarting failed container"));
        assert!(text.contains("Explanation: The container is OOMKilled"));
        assert!(text.contains("Analyzer errors:\n- RBAC: cannot list secrets"));
        assert_eq!(doc["problems"], 1);
    }

    /// Older versions print one object per line (with noise around); no results means
    /// a clean cluster; no JSON at all is an error quoting the output.
    #[test]
    fn renders_other_shapes() {
        let ndjson = "progress 1/2\n{\"kind\":\"Service\",\"name\":\"a\",\"error\":[\"no endpoints\"],\"details\":\"\"}\n{\"kind\":\"Pod\",\"name\":\"b\",\"error\":[],\"details\":\"x\"}\n";
        let (text, _) = render_findings(ndjson).unwrap();
        assert!(text.contains("found 2 problem(s)"));
        assert!(text.contains("   - no endpoints"));
        let (text, _) = render_findings("{ \"status\": \"OK\" }").unwrap();
        assert_eq!(text, "k8sgpt found no problems in the cluster.");
        assert!(render_findings("Error: no backend").unwrap_err().contains("no JSON"));
        assert!(render_findings("  ").is_err());
    }
}
