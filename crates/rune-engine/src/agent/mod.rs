//! Agents: the things RUNE benchmarks. One trait ([`Agent`]), one registry
//! ([`agent_by_name`]), one configuration ([`AgentConfig`]) and five kinds:
//!
//! - `llm` ([`LlmAgent`]): asks the model directly; needs nothing but an LLM endpoint.
//! - `holmes` ([`HolmesAgent`]): runs the HolmesGPT CLI with the backend wired through env.
//! - `k8sgpt` ([`K8sGptAgent`]): runs `k8sgpt analyze --explain` and summarises its findings.
//! - `stdio` ([`StdioAgent`]): any program speaking the RUNE driver protocol v1 on stdin/stdout.
//! - `http` ([`HttpDriverAgent`]): a sidecar speaking the submit-and-poll protocol.
//!
//! Agents do not know about jobs, storage or scoring; they take a question and return an
//! answer with whatever usage and timing they could measure. Every process an agent starts
//! dies when the call times out, is cancelled or is dropped.

mod error;
mod holmes;
mod http;
mod k8sgpt;
mod llm;
mod process;
pub mod protocol;
mod stdio;

use std::ffi::OsString;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rune_core::records::ArtifactKind;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub use error::AgentError;
pub use holmes::HolmesAgent;
pub use http::HttpDriverAgent;
pub use k8sgpt::K8sGptAgent;
pub use llm::{render_context, LlmAgent, SRE_SYSTEM_PROMPT};
pub use process::{clamp_subprocess_timeout, MAX_SUBPROCESS_TIMEOUT, MIN_SUBPROCESS_TIMEOUT};
pub use stdio::StdioAgent;

use crate::backend::{BackendKind, BackendOptions, CallTiming, Usage};

/// One piece of evidence attached to a question (captured `kubectl` output, logs, events),
/// so a case is reproducible without a live cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextDoc {
    /// Label shown to the agent (e.g. `kubectl describe pod web-0`).
    pub name: String,
    /// What it is (e.g. `kubectl`, `logs`, `events`).
    pub kind: String,
    /// The text itself.
    pub content: String,
}

/// What an agent is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentQuestion {
    /// The question.
    pub question: String,
    /// Evidence to consider.
    pub context: Vec<ContextDoc>,
    /// Model the agent should use.
    pub model: String,
    /// Base URL of the model server, when the agent needs one.
    pub backend_url: Option<String>,
    /// Protocol of the model server.
    pub backend_type: BackendKind,
    /// Path of a kubeconfig for agents that inspect a live cluster.
    pub kubeconfig: Option<String>,
}

impl AgentQuestion {
    /// The backend URL, validated and normalised, for agents that cannot work without
    /// one; `hint` tells the user why `agent` needs it.
    pub(crate) fn required_backend_url(&self, agent: &str, hint: &str) -> Result<String, AgentError> {
        let raw = self.backend_url.as_deref().filter(|u| !u.trim().is_empty()).ok_or_else(|| {
            AgentError::MissingInput { agent: agent.into(), field: "a backend URL".into(), hint: hint.into() }
        })?;
        crate::backend::normalize_base_url(self.backend_type, raw).map_err(|e| AgentError::backend(agent, e))
    }

    /// The `params` object of the driver protocol's `ask` action. Carries `kubeconfig_path`
    /// too, the name the original RUNE drivers read, so they keep working unchanged.
    pub fn to_params(&self) -> Value {
        json!({
            "question": self.question,
            "model": self.model,
            "backend_url": self.backend_url,
            "backend_type": self.backend_type,
            "context": self.context,
            "kubeconfig": self.kubeconfig,
            "kubeconfig_path": self.kubeconfig,
        })
    }
}

/// Something an agent reports while it works.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentEvent {
    /// A line the agent's process wrote to stderr (ANSI colours removed).
    Stderr {
        /// The line.
        line: String,
    },
    /// A step the agent started (spawning, submitting, polling …).
    Progress {
        /// What is happening.
        message: String,
    },
    /// Something was skipped or degraded but the answer is still usable.
    Warning {
        /// What and why.
        message: String,
    },
}

/// Receives [`AgentEvent`]s; must be cheap and must not block (it is called inline).
pub type EventSink = Arc<dyn Fn(AgentEvent) + Send + Sync>;

/// How one question is run: its cancellation, its time bound and where events go.
#[derive(Clone)]
pub struct AgentContext {
    /// Owned by the caller (e.g. the job); cancelling it stops the call and kills its
    /// processes. The agent only observes it.
    pub cancel: CancellationToken,
    /// Bound on the whole call. Subprocess agents clamp it to [10 s, 1800 s].
    pub timeout: Duration,
    /// Event sink for stderr lines and progress.
    pub on_event: EventSink,
}

impl AgentContext {
    /// A context that drops events.
    pub fn new(cancel: CancellationToken, timeout: Duration) -> Self {
        AgentContext { cancel, timeout, on_event: Arc::new(|_| {}) }
    }

    /// Sends events to `sink`.
    pub fn with_events(mut self, sink: impl Fn(AgentEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Arc::new(sink);
        self
    }

    pub(crate) fn emit(&self, e: AgentEvent) {
        (self.on_event)(e);
    }
}

impl fmt::Debug for AgentContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentContext").field("cancel", &self.cancel).field("timeout", &self.timeout).finish()
    }
}

/// A file an agent produced, with its bytes inline (never read from a path it named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentArtifact {
    /// File name.
    pub name: String,
    /// What it is; decides how it is stored and served.
    pub kind: ArtifactKind,
    /// Content.
    pub bytes: Vec<u8>,
}

/// An agent's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentAnswer {
    /// The answer text, scored against the case's expectations.
    pub text: String,
    /// Token counts, when the agent could report them.
    pub usage: Usage,
    /// Client-side timing of the model call, when the agent made one itself.
    pub timing: Option<CallTiming>,
    /// Everything else the agent returned (driver result, CLI JSON), for reports.
    pub raw: Value,
    /// Files it produced.
    pub artifacts: Vec<AgentArtifact>,
}

/// Something that answers questions about an incident.
#[async_trait]
pub trait Agent: Send + Sync {
    /// Registry name (`llm`, `holmes`, …), used in reports and errors.
    fn name(&self) -> &str;

    /// Answers `q` within `ctx.timeout`, stopping promptly when `ctx.cancel` fires.
    async fn ask(&self, q: &AgentQuestion, ctx: &AgentContext) -> Result<AgentAnswer, AgentError>;
}

/// Names [`agent_by_name`] accepts (aliases aside).
pub const KNOWN_AGENTS: [&str; 5] = ["llm", "holmes", "k8sgpt", "stdio", "http"];

/// The agents RUNE can build, for `--help`, validation messages and the UI.
pub fn known_agents() -> &'static [&'static str] {
    &KNOWN_AGENTS
}

/// Settings of a CLI agent (holmes, k8sgpt).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliAgentConfig {
    /// Program name or path; `None` uses the default name on the PATH.
    pub bin: Option<String>,
    /// Extra arguments appended to every invocation.
    pub args: Vec<String>,
}

/// Settings of the stdio driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdioConfig {
    /// Program and arguments of the driver (`RUNE_STDIO_DRIVER_CMD`, shell-quoted).
    pub command: Vec<String>,
    /// Bound on one response line.
    pub max_line_bytes: usize,
}

impl Default for StdioConfig {
    fn default() -> Self {
        StdioConfig { command: Vec::new(), max_line_bytes: protocol::DEFAULT_MAX_LINE_BYTES }
    }
}

/// Settings of the HTTP sidecar driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpDriverConfig {
    /// Sidecar base URL (`RUNE_HTTP_DRIVER_URL`).
    pub url: Option<String>,
    /// Bearer token sent to the sidecar.
    pub token: Option<String>,
    /// Tenant sent as `X-Tenant-ID`.
    pub tenant: Option<String>,
    /// Pause between job polls.
    pub poll_interval: Duration,
}

impl Default for HttpDriverConfig {
    fn default() -> Self {
        HttpDriverConfig { url: None, token: None, tenant: None, poll_interval: Duration::from_secs(2) }
    }
}

/// Settings of the built-in `llm` agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmConfig {
    /// Cap on answer tokens; `None` lets the server decide.
    pub max_tokens: Option<u32>,
    /// Sampling temperature; `None` uses the server default.
    pub temperature: Option<f32>,
}

/// Everything the registry needs to build agents. Filled by the caller from flags and env
/// ([`AgentConfig::from_env`]), never read from the process environment behind its back.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Backend settings for agents that call the model (llm) or hand keys to CLIs.
    pub backend: BackendOptions,
    /// `PATH` used to find agent programs and passed to them; `None` searches the
    /// process's own `PATH` and lets the programs inherit it.
    pub path: Option<OsString>,
    /// Default bound on one question (`RUNE_DRIVER_INVOCATION_TIMEOUT`, default 180 s).
    pub timeout: Duration,
    /// The `llm` agent.
    pub llm: LlmConfig,
    /// The `holmes` agent.
    pub holmes: CliAgentConfig,
    /// The `k8sgpt` agent.
    pub k8sgpt: CliAgentConfig,
    /// The `stdio` agent.
    pub stdio: StdioConfig,
    /// The `http` agent.
    pub http: HttpDriverConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            backend: BackendOptions::default(),
            path: None,
            timeout: Duration::from_secs(180),
            llm: LlmConfig::default(),
            holmes: CliAgentConfig::default(),
            k8sgpt: CliAgentConfig::default(),
            stdio: StdioConfig::default(),
            http: HttpDriverConfig::default(),
        }
    }
}

impl AgentConfig {
    /// The `PATH` agent programs are looked up in: [`AgentConfig::path`], else the process's.
    pub fn search_path(&self) -> Option<OsString> {
        self.path.clone().or_else(|| std::env::var_os("PATH"))
    }

    /// Reads the configuration through `lookup` (pass `|k| std::env::var(k).ok()` in a
    /// binary, a map in tests):
    ///
    /// | Variable | Meaning |
    /// |---|---|
    /// | `PATH` | where agent programs are found |
    /// | `RUNE_DRIVER_INVOCATION_TIMEOUT` | default per-question bound (`180`, `90s`, `5m`) |
    /// | `RUNE_BACKEND_CONNECT_TIMEOUT`, `RUNE_BACKEND_TIMEOUT` | backend connect / chat bounds |
    /// | `RUNE_BACKEND_API_KEY_ENV` | name of the variable holding the API key (default `OPENAI_API_KEY`) |
    /// | `RUNE_LLM_MAX_TOKENS`, `RUNE_LLM_TEMPERATURE` | `llm` agent sampling |
    /// | `RUNE_HOLMES_BIN`, `RUNE_HOLMES_ARGS` | holmes program and extra arguments |
    /// | `RUNE_K8SGPT_BIN`, `RUNE_K8SGPT_ARGS` | k8sgpt program and extra arguments |
    /// | `RUNE_STDIO_DRIVER_CMD`, `RUNE_STDIO_MAX_LINE_BYTES` | stdio driver command line and line bound |
    /// | `RUNE_HTTP_DRIVER_URL`, `_TOKEN`, `_TENANT`, `_POLL_INTERVAL` | HTTP sidecar |
    ///
    /// Every malformed value is an error naming the variable.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AgentError> {
        let get = |k: &str| lookup(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut c = AgentConfig { path: lookup("PATH").map(OsString::from), ..AgentConfig::default() };
        if let Some(v) = get("RUNE_DRIVER_INVOCATION_TIMEOUT") {
            c.timeout = duration_var("RUNE_DRIVER_INVOCATION_TIMEOUT", &v)?;
        }
        if let Some(v) = get("RUNE_BACKEND_CONNECT_TIMEOUT") {
            c.backend.connect_timeout = duration_var("RUNE_BACKEND_CONNECT_TIMEOUT", &v)?;
        }
        if let Some(v) = get("RUNE_BACKEND_TIMEOUT") {
            c.backend.chat_timeout = duration_var("RUNE_BACKEND_TIMEOUT", &v)?;
        }
        if let Some(v) = get("RUNE_BACKEND_API_KEY_ENV") {
            c.backend.api_key_env = v;
        }
        c.backend.api_key = get(&c.backend.api_key_env);
        if let Some(v) = get("RUNE_LLM_MAX_TOKENS") {
            c.llm.max_tokens = Some(v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| AgentError::Config {
                var: "RUNE_LLM_MAX_TOKENS".into(),
                value: v.clone(),
                reason: "expected a positive whole number of tokens".into(),
            })?);
        }
        if let Some(v) = get("RUNE_LLM_TEMPERATURE") {
            c.llm.temperature =
                Some(v.parse::<f32>().ok().filter(|t| t.is_finite() && (0.0..=2.0).contains(t)).ok_or_else(|| {
                    AgentError::Config {
                        var: "RUNE_LLM_TEMPERATURE".into(),
                        value: v.clone(),
                        reason: "expected a number between 0 and 2".into(),
                    }
                })?);
        }
        c.holmes.bin = get("RUNE_HOLMES_BIN");
        if let Some(v) = get("RUNE_HOLMES_ARGS") {
            c.holmes.args = words_var("RUNE_HOLMES_ARGS", &v)?;
        }
        c.k8sgpt.bin = get("RUNE_K8SGPT_BIN");
        if let Some(v) = get("RUNE_K8SGPT_ARGS") {
            c.k8sgpt.args = words_var("RUNE_K8SGPT_ARGS", &v)?;
        }
        if let Some(v) = get("RUNE_STDIO_DRIVER_CMD") {
            c.stdio.command = words_var("RUNE_STDIO_DRIVER_CMD", &v)?;
        }
        if let Some(v) = get("RUNE_STDIO_MAX_LINE_BYTES") {
            c.stdio.max_line_bytes =
                v.parse::<usize>().ok().filter(|n| (1024..=(256 << 20)).contains(n)).ok_or_else(|| {
                    AgentError::Config {
                        var: "RUNE_STDIO_MAX_LINE_BYTES".into(),
                        value: v.clone(),
                        reason: "expected a byte count between 1024 and 268435456".into(),
                    }
                })?;
        }
        c.http.url = get("RUNE_HTTP_DRIVER_URL");
        c.http.token = get("RUNE_HTTP_DRIVER_TOKEN");
        c.http.tenant = get("RUNE_HTTP_DRIVER_TENANT");
        if let Some(v) = get("RUNE_HTTP_DRIVER_POLL_INTERVAL") {
            c.http.poll_interval = duration_var("RUNE_HTTP_DRIVER_POLL_INTERVAL", &v)?;
        }
        Ok(c)
    }
}

/// Parses a duration: a number with an optional unit `ms`, `s`, `m` or `h` (no unit means
/// seconds), e.g. `180`, `1.5s`, `500ms`, `5m`. Zero, negative and non-finite values are
/// rejected.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 =
        num.trim().parse().map_err(|_| format!("`{s}` is not a number with an optional unit ms, s, m or h"))?;
    let factor = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit `{other}`; use ms, s, m or h")),
    };
    let secs = n * factor;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("`{s}` must be a positive duration"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is too large"))
}

fn duration_var(var: &str, value: &str) -> Result<Duration, AgentError> {
    parse_duration(value).map_err(|reason| AgentError::Config { var: var.into(), value: value.into(), reason })
}

fn words_var(var: &str, value: &str) -> Result<Vec<String>, AgentError> {
    match shlex::split(value) {
        Some(words) if !words.is_empty() => Ok(words),
        _ => Err(AgentError::Config {
            var: var.into(),
            value: value.into(),
            reason: "cannot split it into words: check the quoting (it is parsed like a shell command line)".into(),
        }),
    }
}

/// Maps accepted spellings (any case, catalog names) to registry names.
fn canonical_name(name: &str) -> Option<&'static str> {
    match name.trim().to_ascii_lowercase().as_str() {
        "llm" => Some("llm"),
        "holmes" | "holmesgpt" => Some("holmes"),
        "k8sgpt" => Some("k8sgpt"),
        "stdio" => Some("stdio"),
        "http" => Some("http"),
        _ => None,
    }
}

/// Builds the agent registered as `name` (case-insensitive; `holmesgpt` is accepted for
/// `holmes`). Missing programs or settings are reported here, before any question is
/// asked, with what to install or set.
pub fn agent_by_name(name: &str, config: &AgentConfig) -> Result<Arc<dyn Agent>, AgentError> {
    let unknown = || AgentError::UnknownAgent { name: name.to_owned(), known: KNOWN_AGENTS.join(", ") };
    Ok(match canonical_name(name).ok_or_else(unknown)? {
        "llm" => Arc::new(LlmAgent::new(config)),
        "holmes" => Arc::new(HolmesAgent::new(config)?),
        "k8sgpt" => Arc::new(K8sGptAgent::new(config)?),
        "stdio" => Arc::new(StdioAgent::new("stdio", config)?),
        "http" => Arc::new(HttpDriverAgent::new("http", config)?),
        _ => return Err(unknown()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    /// Durations accept the documented forms and reject the rest with a reason.
    #[test]
    fn durations() {
        assert_eq!(parse_duration("180").unwrap(), Duration::from_secs(180));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration(" 1h ").unwrap(), Duration::from_secs(3600));
        for bad in ["", "abc", "-1", "0", "10x", "1e400", "NaN", "inf"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// The env reader fills every documented field, resolving the key through the
    /// configured variable name.
    #[test]
    fn from_env_reads_everything() {
        let c = AgentConfig::from_env(env(&[
            ("PATH", "/opt/bin:/usr/bin"),
            ("RUNE_DRIVER_INVOCATION_TIMEOUT", "90s"),
            ("RUNE_BACKEND_API_KEY_ENV", "VLLM_KEY"),
            ("VLLM_KEY", "sekret"),
            ("RUNE_LLM_MAX_TOKENS", "512"),
            ("RUNE_HOLMES_BIN", "/opt/holmes"),
            ("RUNE_HOLMES_ARGS", "--max-steps 5 -t 'my tools.yaml'"),
            ("RUNE_STDIO_DRIVER_CMD", "python3 -m rune_bench.drivers.holmes"),
            ("RUNE_HTTP_DRIVER_URL", "http://sidecar:8080"),
            ("RUNE_HTTP_DRIVER_POLL_INTERVAL", "250ms"),
        ]))
        .unwrap();
        assert_eq!(c.path, Some(OsString::from("/opt/bin:/usr/bin")));
        assert_eq!(c.timeout, Duration::from_secs(90));
        assert_eq!(c.backend.api_key_env, "VLLM_KEY");
        assert_eq!(c.backend.api_key.as_deref(), Some("sekret"));
        assert_eq!(c.llm.max_tokens, Some(512));
        assert_eq!(c.holmes.bin.as_deref(), Some("/opt/holmes"));
        assert_eq!(c.holmes.args, vec!["--max-steps", "5", "-t", "my tools.yaml"]);
        assert_eq!(c.stdio.command, vec!["python3", "-m", "rune_bench.drivers.holmes"]);
        assert_eq!(c.http.url.as_deref(), Some("http://sidecar:8080"));
        assert_eq!(c.http.poll_interval, Duration::from_millis(250));
    }

    /// Malformed values are errors that name the variable and the expectation.
    #[test]
    fn from_env_rejects_bad_values() {
        for (k, v, needle) in [
            ("RUNE_DRIVER_INVOCATION_TIMEOUT", "soon", "RUNE_DRIVER_INVOCATION_TIMEOUT"),
            ("RUNE_LLM_MAX_TOKENS", "0", "positive"),
            ("RUNE_LLM_TEMPERATURE", "9", "between 0 and 2"),
            ("RUNE_STDIO_DRIVER_CMD", "python3 'unterminated", "quoting"),
            ("RUNE_STDIO_MAX_LINE_BYTES", "12", "between 1024"),
            ("RUNE_HTTP_DRIVER_POLL_INTERVAL", "-2s", "positive"),
        ] {
            let e = AgentConfig::from_env(env(&[(k, v)])).unwrap_err().to_string();
            assert!(e.contains(k) && e.contains(needle), "{k}={v}: {e}");
        }
    }

    /// Unknown agents list the known ones; aliases and case are accepted; agents that
    /// need settings say which variable to set.
    #[test]
    fn registry() {
        let c = AgentConfig::default();
        let e = agent_by_name("nope", &c).err().unwrap().to_string();
        assert!(e.contains("llm, holmes, k8sgpt, stdio, http"), "{e}");
        assert_eq!(agent_by_name("LLM", &c).unwrap().name(), "llm");
        let e = agent_by_name("stdio", &c).err().unwrap().to_string();
        assert!(e.contains("RUNE_STDIO_DRIVER_CMD"), "{e}");
        let e = agent_by_name("http", &c).err().unwrap().to_string();
        assert!(e.contains("RUNE_HTTP_DRIVER_URL"), "{e}");
        assert_eq!(known_agents().len(), 5);
    }

    /// Driver params carry both the new and the original kubeconfig field names.
    #[test]
    fn params_shape() {
        let q = AgentQuestion {
            question: "why?".into(),
            context: vec![ContextDoc { name: "n".into(), kind: "logs".into(), content: "c".into() }],
            model: "m".into(),
            backend_url: Some("http://o".into()),
            backend_type: BackendKind::Ollama,
            kubeconfig: Some("/k".into()),
        };
        let p = q.to_params();
        assert_eq!(p["kubeconfig"], "/k");
        assert_eq!(p["kubeconfig_path"], "/k");
        assert_eq!(p["backend_type"], "ollama");
        assert_eq!(p["context"][0]["kind"], "logs");
    }
}
