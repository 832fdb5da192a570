//! Workflows: what a job of each kind does, run by the same code in the CLI's local mode
//! and in the API's workers.
//!
//! `benchmark`: check the backend → warm up → agent × cases × repetitions → score →
//! cost → report. `agentic-agent`: one question to one agent. `llm-instance`: check (or
//! provision) a model server. Progress goes to a [`RunSink`] as job events (phase spans
//! with durations), so it streams live over SSE and feeds metrics.

use crate::agent::{agent_by_name, AgentConfig, AgentContext, AgentEvent, AgentQuestion, ContextDoc};
use crate::backend::{backend_for, Backend, BackendKind, BackendOptions, WarmUpOptions};
use async_trait::async_trait;
use rune_core::contracts::{RunAgenticAgentRequest, RunBenchmarkRequest, RunLlmInstanceRequest, RunSuiteRequest};
use rune_core::cost::{run_cost, MeasuredUsage};
use rune_core::records::NewJobEvent;
use rune_core::scoring::{self, CaseResult, Summary};
use rune_core::suite::{Case, Suite};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Where a run reports what it does. Implemented by the API worker (job events in the
/// database) and the CLI (events in the local database plus a progress bar).
#[async_trait]
pub trait RunSink: Send + Sync {
    /// Records an event (a phase span with its duration, or a log line).
    async fn event(&self, event: NewJobEvent);
    /// Updates the human-readable progress message.
    async fn progress(&self, message: &str);
    /// `done` of `total` cases finished (for progress bars); default: nothing.
    fn cases_done(&self, _done: usize, _total: usize) {}
}

/// A sink that drops everything (tests, one-off calls).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

#[async_trait]
impl RunSink for NullSink {
    async fn event(&self, _event: NewJobEvent) {}
    async fn progress(&self, _message: &str) {}
}

/// What the workflows need besides the request.
#[derive(Debug, Clone)]
pub struct EngineEnv {
    /// Agent settings (binaries, timeouts, drivers).
    pub agents: AgentConfig,
    /// Backend settings.
    pub backend: BackendOptions,
    /// Where suite files may be read from. `None`: built-in suites only (the API's
    /// default, so a request cannot make the server read arbitrary files). The CLI allows
    /// any path the user names.
    pub suite_dir: Option<PathBuf>,
    /// Allow suite paths anywhere (the CLI, run by the user on their own files).
    pub allow_any_suite_path: bool,
    /// Local power draw used to price self-hosted runs (`RUNE_LOCAL_POWER_WATTS`).
    pub local_power_watts: f64,
    /// Local energy price (`RUNE_ENERGY_RATE_KWH`).
    pub energy_rate_kwh: f64,
}

impl Default for EngineEnv {
    fn default() -> Self {
        Self {
            agents: AgentConfig::default(),
            backend: BackendOptions::default(),
            suite_dir: None,
            allow_any_suite_path: false,
            local_power_watts: 300.0,
            energy_rate_kwh: 0.15,
        }
    }
}

/// Why a workflow failed; the message becomes the job's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The backend could not be used.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// The agent could not be built.
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
    /// The suite could not be loaded.
    #[error("suite: {0}")]
    Suite(String),
    /// Something the request asks for that this build cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// Cancelled by the user, the E-Stop or a timeout.
    #[error("cancelled")]
    Cancelled,
    /// Provisioning or tearing down the model server failed.
    #[error(transparent)]
    Provider(#[from] crate::provider::ProviderError),
}

/// Loads the suite a benchmark names: a built-in name, or a YAML file (within
/// `env.suite_dir`, or anywhere when `env.allow_any_suite_path`).
pub fn load_suite(name_or_path: &str, env: &EngineEnv) -> Result<Suite, WorkflowError> {
    if let Ok(suite) = rune_core::suite::load_builtin(name_or_path) {
        return Ok(suite);
    }
    let looks_like_path =
        name_or_path.ends_with(".yaml") || name_or_path.ends_with(".yml") || name_or_path.contains('/');
    if !looks_like_path {
        let names: Vec<&str> = rune_core::suite::builtin_suites().iter().map(|(n, _)| *n).collect();
        return Err(WorkflowError::Suite(format!(
            "no built-in suite `{name_or_path}`; built-in suites: {} (or give a path to a suite YAML file)",
            names.join(", ")
        )));
    }
    let path = PathBuf::from(name_or_path);
    let path = match (&env.suite_dir, env.allow_any_suite_path) {
        (_, true) => path,
        (Some(dir), false) => {
            let joined = dir.join(&path);
            let canon =
                joined.canonicalize().map_err(|e| WorkflowError::Suite(format!("{}: {e}", joined.display())))?;
            let root = dir.canonicalize().map_err(|e| WorkflowError::Suite(format!("{}: {e}", dir.display())))?;
            if !canon.starts_with(&root) {
                return Err(WorkflowError::Suite(format!(
                    "`{name_or_path}` is outside the suite directory {} (RUNE_SUITE_DIR)",
                    root.display()
                )));
            }
            canon
        }
        (None, false) => {
            return Err(WorkflowError::Suite(format!(
                "`{name_or_path}`: this server runs built-in suites only; set RUNE_SUITE_DIR to serve suite files"
            )))
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| WorkflowError::Suite(format!("{}: {e}", path.display())))?;
    let file = path.display().to_string();
    let mut suite = Suite::parse(&file, &text).map_err(|e| WorkflowError::Suite(e.to_string()))?;
    let base = path.parent().map(PathBuf::from).unwrap_or_default();
    let root = base.canonicalize().unwrap_or_else(|_| base.clone());
    let loader = |rel: &str| -> Result<String, String> {
        let p = base.join(rel);
        let canon = p.canonicalize().map_err(|e| format!("{}: {e}", p.display()))?;
        if !canon.starts_with(&root) {
            return Err(format!("{rel} is outside the suite's directory"));
        }
        std::fs::read_to_string(&canon).map_err(|e| format!("{}: {e}", p.display()))
    };
    suite.resolve_context(&file, &loader).map_err(|e| WorkflowError::Suite(e.to_string()))?;
    Ok(suite)
}

/// A one-case suite for a benchmark without `suite`: the single question, unscored.
fn single_question_suite(question: &str) -> Result<Suite, WorkflowError> {
    let yaml = serde_json::json!({
        "name": "single-question",
        "description": "the request's question, with no ground truth",
        "version": "1",
        "cases": [{"id": "question", "question": question, "expected": {"judge_rubric": "no ground truth"}, "scope": "sre"}],
    });
    Suite::from_value("request", &yaml).map_err(|e| WorkflowError::Suite(e.to_string()))
}

/// The report stored as a benchmark job's result (and printed by `run-benchmark`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchmarkReport {
    /// The first answer (the original RUNE's single `answer`).
    pub answer: String,
    /// Always `report`.
    pub result_type: String,
    /// Suite run.
    pub suite: String,
    /// Agent.
    pub agent: String,
    /// Model.
    pub model_name: String,
    /// Backend base URL.
    pub backend_url: String,
    /// Backend protocol.
    pub backend_type: String,
    /// Repetitions per case.
    pub repetitions: u64,
    /// Pass mark of the mean score, if one was set.
    pub threshold: Option<f64>,
    /// `false` when a threshold was set and the mean score is below it (or nothing
    /// could be scored); `true` otherwise.
    pub passed: bool,
    /// One entry per case and repetition.
    pub cases: Vec<CaseResult>,
    /// Aggregates per agent × model.
    pub summary: Summary,
    /// Phases and their durations.
    pub telemetry: Value,
}

fn span(name: &str, started: Instant, ok: bool, labels: Value) -> NewJobEvent {
    let mut e = NewJobEvent::ok(name);
    e.duration_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    if !ok {
        e.status = "error".into();
        e.error_type = Some(name.to_owned());
    }
    e.labels = labels;
    e
}

fn backend_kind(s: &str) -> Result<BackendKind, WorkflowError> {
    s.parse().map_err(|e: crate::backend::UnknownBackendKind| WorkflowError::Unsupported(e.to_string()))
}

fn existing_url(url: Option<&str>) -> Result<String, WorkflowError> {
    url.map(str::to_owned)
        .ok_or_else(|| WorkflowError::Unsupported("backend_url is required unless provisioning.vastai is set".into()))
}

/// Bound on renting and preparing a GPU server.
const PROVISION_TIMEOUT: Duration = Duration::from_secs(1800);

/// Model an `llm-instance` job prepares on a rented server (its request names none).
const DEFAULT_INSTANCE_MODEL: &str = "llama3.1:8b";

/// Rents a server when the request asks for one; the lease must be torn down after.
async fn provision(
    vastai: Option<&rune_core::contracts::VastAiProvisioning>,
    model: &str,
    sink: &dyn RunSink,
    cancel: &CancellationToken,
) -> Result<Option<(crate::provider::VastAiProvider, crate::provider::Lease)>, WorkflowError> {
    use crate::provider::{Provider, ProvisionContext, ProvisionSpec, VastAiProvider};
    let Some(vastai) = vastai else { return Ok(None) };
    let provider = VastAiProvider::from_env()?;
    sink.progress(&format!("renting a GPU on Vast.ai for {model}")).await;
    let t = Instant::now();
    let ctx = ProvisionContext::new(cancel.clone(), PROVISION_TIMEOUT);
    let lease = provider.provision(&ProvisionSpec::new(model, vastai), &ctx).await;
    let labels = match &lease {
        Ok(l) => json!({"provider": "vastai", "contract_id": l.contract_id, "backend_url": l.backend_url,
                        "hourly_usd": l.hourly_usd, "reused": l.reused}),
        Err(e) => json!({"provider": "vastai", "error": e.to_string(), "stranded_contract": e.stranded_contract()}),
    };
    sink.event(span("provision", t, lease.is_ok(), labels)).await;
    Ok(Some((provider, lease?)))
}

/// Tears a rented server down (always, whatever happened to the run) and records it.
async fn teardown(rented: Option<(crate::provider::VastAiProvider, crate::provider::Lease)>, sink: &dyn RunSink) {
    use crate::provider::Provider;
    let Some((provider, lease)) = rented else { return };
    sink.progress("tearing down the rented server").await;
    let t = Instant::now();
    let report = provider.teardown(&lease).await;
    let labels = match &report {
        Ok(r) => {
            json!({"contract_id": lease.contract_id, "outcome": format!("{:?}", r.outcome), "verified": r.verified})
        }
        Err(e) => json!({"contract_id": lease.contract_id, "error": e.to_string()}),
    };
    sink.event(span("teardown", t, report.is_ok(), labels)).await;
}

/// Runs a `benchmark` job: on an existing server, or on a rented one that is torn down
/// afterwards whether the run succeeded, failed or was cancelled.
pub async fn run_benchmark(
    req: &RunBenchmarkRequest,
    env: &EngineEnv,
    sink: &dyn RunSink,
    cancel: &CancellationToken,
) -> Result<BenchmarkReport, WorkflowError> {
    let vastai = req.provisioning.as_ref().and_then(|p| p.vastai.as_ref());
    let rented = provision(vastai, &req.model, sink, cancel).await?;
    let url = match &rented {
        Some((_, lease)) => lease.backend_url.clone(),
        None => existing_url(req.backend_url.as_deref())?,
    };
    let gpu_hourly = rented.as_ref().and_then(|(_, l)| l.hourly_usd);
    let outcome = benchmark_on(req, &url, gpu_hourly, env, sink, cancel).await;
    teardown(rented, sink).await;
    outcome
}

async fn benchmark_on(
    req: &RunBenchmarkRequest,
    url: &str,
    gpu_hourly: Option<f64>,
    env: &EngineEnv,
    sink: &dyn RunSink,
    cancel: &CancellationToken,
) -> Result<BenchmarkReport, WorkflowError> {
    let url = url.to_owned();
    let kind = backend_kind(&req.backend_type)?;
    let suite = match &req.suite {
        Some(s) => load_suite(s, env)?,
        None => single_question_suite(&req.question)?,
    };
    let backend = backend_for(kind, &url, env.backend.clone())?;
    let started = Instant::now();
    sink.progress("checking the backend").await;
    let models = backend.list_models().await;
    sink.event(span("backend.check", started, models.is_ok(), json!({"backend_url": backend.base_url()}))).await;
    let models = models?;
    if !models.models.iter().any(|m| same_model(m, &req.model)) {
        return Err(WorkflowError::Backend(crate::backend::BackendError::UnknownModel {
            model: req.model.clone(),
            url: backend.base_url().to_owned(),
            available: models.models.clone(),
            hint: match kind {
                BackendKind::Ollama => format!("pull it first: ollama pull {}", req.model),
                BackendKind::OpenAi => "start the server with this model, or pick one it lists".into(),
            },
        }));
    }
    let context_length = backend.model_info(&req.model).await.ok().and_then(|i| i.context_length);
    if req.backend_warmup && kind == BackendKind::Ollama {
        sink.progress(&format!("warming up {}", req.model)).await;
        let t = Instant::now();
        let opts = WarmUpOptions { timeout: Duration::from_secs(req.backend_warmup_timeout), ..Default::default() };
        let warm = backend.warm_up(&req.model, &opts, cancel).await;
        sink.event(span("warmup", t, warm.is_ok(), json!({"model": req.model}))).await;
        warm?;
    }
    let agent = agent_by_name(&req.agent, &env.agents)?;
    let mut results = Vec::new();
    let total = suite.cases.len() * req.repetitions as usize;
    let mut phases = vec![json!({"phase": "backend.check+warmup", "ms": started.elapsed().as_secs_f64() * 1000.0})];
    for case in &suite.cases {
        for repetition in 1..=req.repetitions as u32 {
            if cancel.is_cancelled() {
                return Err(WorkflowError::Cancelled);
            }
            sink.progress(&format!("{} ({}/{}) with {}", case.id, results.len() + 1, total, agent.name())).await;
            let result =
                ask_case(&*agent, case, repetition, req, &url, kind, env, sink, cancel, (context_length, gpu_hourly))
                    .await?;
            results.push(result);
            sink.cases_done(results.len(), total);
        }
    }
    let t = Instant::now();
    let summary = scoring::summarize(&results);
    sink.event(span("score", t, true, json!({"cases": results.len()}))).await;
    phases.push(json!({"phase": "cases", "ms": results.iter().map(|r| r.latency_ms).sum::<f64>()}));
    let mean = summary.groups.first().and_then(|g| g.mean_score);
    // A run in which every case errored measured nothing: it never passes, threshold or not.
    let all_errored = !results.is_empty() && results.iter().all(|r| r.error.is_some());
    let passed = !all_errored
        && match req.threshold {
            Some(th) => mean.is_some_and(|m| m >= th),
            None => true,
        };
    let tokens_prompt: u64 = results.iter().filter_map(|r| r.prompt_tokens).sum();
    let tokens_completion: u64 = results.iter().filter_map(|r| r.completion_tokens).sum();
    let cost: f64 = results.iter().filter_map(|r| r.cost_usd).sum();
    Ok(BenchmarkReport {
        answer: results.first().map(|r| r.answer.clone()).unwrap_or_default(),
        result_type: "report".into(),
        suite: suite.name.clone(),
        agent: agent.name().to_owned(),
        model_name: req.model.clone(),
        backend_url: backend.base_url().to_owned(),
        backend_type: kind.as_str().into(),
        repetitions: req.repetitions,
        threshold: req.threshold,
        passed,
        cases: results,
        summary,
        telemetry: json!({
            "tokens": {"prompt": tokens_prompt, "output": tokens_completion, "total": tokens_prompt + tokens_completion},
            "latency": phases,
            "cost_estimate_usd": cost,
            "duration_s": started.elapsed().as_secs_f64(),
        }),
    })
}

fn same_model(listed: &str, wanted: &str) -> bool {
    listed == wanted || listed.strip_suffix(":latest") == Some(wanted) || wanted.strip_suffix(":latest") == Some(listed)
}

#[allow(clippy::too_many_arguments)]
async fn ask_case(
    agent: &dyn crate::agent::Agent,
    case: &Case,
    repetition: u32,
    req: &RunBenchmarkRequest,
    url: &str,
    kind: BackendKind,
    env: &EngineEnv,
    sink: &dyn RunSink,
    cancel: &CancellationToken,
    (_context_length, gpu_hourly): (Option<u64>, Option<f64>),
) -> Result<CaseResult, WorkflowError> {
    let question = AgentQuestion {
        question: case.question.clone(),
        context: case
            .context
            .iter()
            .map(|c| ContextDoc {
                name: c.name.clone(),
                kind: c.kind.as_str().into(),
                content: c.content.clone().unwrap_or_default(),
            })
            .collect(),
        model: req.model.clone(),
        backend_url: Some(url.to_owned()),
        backend_type: kind,
        kubeconfig: Some(req.kubeconfig.clone()).filter(|k| !k.is_empty()),
    };
    let events: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let collected = events.clone();
    let ctx = AgentContext::new(cancel.child_token(), env.agents.timeout).with_events(move |e| {
        if let (
            AgentEvent::Stderr { line }
            | AgentEvent::Progress { message: line }
            | AgentEvent::Warning { message: line },
            Ok(mut v),
        ) = (e, collected.lock())
        {
            if v.len() < 200 {
                v.push(line);
            }
        }
    });
    let started = Instant::now();
    let outcome = agent.ask(&question, &ctx).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let lines: Vec<String> = events.lock().map(|v| v.clone()).unwrap_or_default();
    for line in lines {
        let mut e = NewJobEvent::ok("agent.log");
        e.labels = json!({"case": case.id, "line": line});
        sink.event(e).await;
    }
    if cancel.is_cancelled() {
        return Err(WorkflowError::Cancelled);
    }
    let labels = json!({"case": case.id, "repetition": repetition, "agent": agent.name()});
    match outcome {
        Ok(answer) => {
            sink.event(span("agent.ask", started, true, labels)).await;
            let mut score = scoring::score_case(case, &answer.text, req.threshold);
            if let (Some(judge), Some(prompt)) = (&req.judge_model, scoring::judge_prompt(case, &answer.text)) {
                let t = Instant::now();
                match judge_answer(url, kind, judge, &prompt, env, cancel).await {
                    Ok(verdict) => {
                        score = Some(scoring::score_case_with_judge(case, &answer.text, &verdict, req.threshold));
                        sink.event(span("judge", t, true, json!({"case": case.id, "judge": judge}))).await;
                    }
                    Err(e) => {
                        // A failed judge leaves the deterministic score; it never invents one.
                        sink.event(span("judge", t, false, json!({"case": case.id, "error": e}))).await;
                    }
                }
            }
            let measured = match kind {
                // A rented GPU: what the rental cost while this case ran.
                _ if gpu_hourly.is_some() => MeasuredUsage {
                    prompt_tokens: answer.usage.prompt_tokens,
                    completion_tokens: answer.usage.completion_tokens,
                    model: None,
                    duration_seconds: Some(latency_ms / 1000.0),
                    gpu_hourly_usd: gpu_hourly,
                    ..Default::default()
                },
                BackendKind::Ollama => MeasuredUsage {
                    prompt_tokens: answer.usage.prompt_tokens,
                    completion_tokens: answer.usage.completion_tokens,
                    model: None,
                    duration_seconds: Some(latency_ms / 1000.0),
                    local_power_watts: Some(env.local_power_watts),
                    energy_rate_kwh: Some(env.energy_rate_kwh),
                    ..Default::default()
                },
                BackendKind::OpenAi => MeasuredUsage {
                    prompt_tokens: answer.usage.prompt_tokens,
                    completion_tokens: answer.usage.completion_tokens,
                    model: Some(req.model.clone()),
                    duration_seconds: Some(latency_ms / 1000.0),
                    ..Default::default()
                },
            };
            Ok(CaseResult {
                case_id: case.id.clone(),
                agent: agent.name().to_owned(),
                model: req.model.clone(),
                repetition,
                score,
                latency_ms,
                ttft_ms: answer.timing.as_ref().and_then(|t| t.ttft_ms),
                prompt_tokens: answer.usage.prompt_tokens,
                completion_tokens: answer.usage.completion_tokens,
                cost_usd: run_cost(&measured).total_usd,
                error: None,
                answer: answer.text,
            })
        }
        Err(e) => {
            sink.event(span("agent.ask", started, false, json!({"case": case.id, "error": e.to_string()}))).await;
            Ok(CaseResult {
                case_id: case.id.clone(),
                agent: agent.name().to_owned(),
                model: req.model.clone(),
                repetition,
                score: None,
                latency_ms,
                ttft_ms: None,
                prompt_tokens: None,
                completion_tokens: None,
                cost_usd: None,
                error: Some(e.to_string()),
                answer: String::new(),
            })
        }
    }
}

/// Asks the judge model to grade an answer; its reply must carry a score in [0, 1].
async fn judge_answer(
    url: &str,
    kind: BackendKind,
    model: &str,
    prompt: &str,
    env: &EngineEnv,
    cancel: &CancellationToken,
) -> Result<rune_core::scoring::JudgeVerdict, String> {
    let backend = backend_for(kind, url, env.backend.clone()).map_err(|e| e.to_string())?;
    let request = crate::backend::ChatRequest {
        model: model.to_owned(),
        messages: vec![crate::backend::ChatMessage::user(prompt)],
        max_tokens: Some(400),
        temperature: Some(0.0),
        ..Default::default()
    };
    let reply = backend.chat(&request, cancel).await.map_err(|e| e.to_string())?;
    scoring::parse_judge_reply(&reply.text).map_err(|e| format!("judge reply unusable: {e}"))
}

/// Runs an `agentic-agent` job: one question, one agent, the answer with its telemetry.
pub async fn run_agentic(
    req: &RunAgenticAgentRequest,
    env: &EngineEnv,
    sink: &dyn RunSink,
    cancel: &CancellationToken,
) -> Result<Value, WorkflowError> {
    let url = existing_url(req.backend_url.as_deref())?;
    let kind = backend_kind(&req.backend_type)?;
    if req.backend_warmup && kind == BackendKind::Ollama {
        let backend: Arc<dyn Backend> = backend_for(kind, &url, env.backend.clone())?;
        let t = Instant::now();
        let opts = WarmUpOptions { timeout: Duration::from_secs(req.backend_warmup_timeout), ..Default::default() };
        let warm = backend.warm_up(&req.model, &opts, cancel).await;
        sink.event(span("warmup", t, warm.is_ok(), json!({"model": req.model}))).await;
        warm?;
    }
    let agent = agent_by_name(&req.agent, &env.agents)?;
    let question = AgentQuestion {
        question: req.question.clone(),
        context: Vec::new(),
        model: req.model.clone(),
        backend_url: Some(url),
        backend_type: kind,
        kubeconfig: req.kubeconfig.clone(),
    };
    sink.progress(&format!("asking {}", agent.name())).await;
    let t = Instant::now();
    let ctx = AgentContext::new(cancel.child_token(), env.agents.timeout);
    let answer = agent.ask(&question, &ctx).await;
    sink.event(span("agent.ask", t, answer.is_ok(), json!({"agent": agent.name()}))).await;
    if cancel.is_cancelled() {
        return Err(WorkflowError::Cancelled);
    }
    let answer = answer?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    Ok(json!({
        "answer": answer.text,
        "result_type": "text",
        "artifacts": answer.artifacts.iter().map(|a| json!({"name": a.name, "kind": a.kind, "size_bytes": a.bytes.len()})).collect::<Vec<_>>(),
        "metadata": {"agent": agent.name(), "model": req.model, "duration_s": ms / 1000.0},
        "telemetry": {
            "tokens": {"prompt": answer.usage.prompt_tokens, "output": answer.usage.completion_tokens},
            "latency": [{"phase": "agent.ask", "ms": ms}],
            "ttft_ms": answer.timing.as_ref().and_then(|t| t.ttft_ms),
        },
        "raw": answer.raw,
    }))
}

/// Runs an `llm-instance` job: checks an existing server (Vast.ai provisioning is not in
/// this build) and reports what it serves.
pub async fn run_llm_instance(
    req: &RunLlmInstanceRequest,
    env: &EngineEnv,
    sink: &dyn RunSink,
) -> Result<Value, WorkflowError> {
    if let Some(vastai) = req.provisioning.as_ref().and_then(|p| p.vastai.as_ref()) {
        // An instance job rents the server and leaves it running for later jobs (teardown
        // happens when a benchmark with stop_instance ends, or by hand).
        let cancel = CancellationToken::new();
        let Some((_, lease)) = provision(Some(vastai), DEFAULT_INSTANCE_MODEL, sink, &cancel).await? else {
            return Err(WorkflowError::Unsupported("provisioning returned no server".into()));
        };
        return Ok(json!({"mode": "vastai", "backend_url": lease.backend_url, "contract_id": lease.contract_id,
                         "hourly_usd": lease.hourly_usd, "model_name": lease.model, "reused": lease.reused}));
    }
    let url = existing_url(req.backend_url.as_deref())?;
    let kind = backend_kind(&req.backend_type)?;
    let backend = backend_for(kind, &url, env.backend.clone())?;
    let t = Instant::now();
    let models = backend.list_models().await;
    sink.event(span("backend.check", t, models.is_ok(), json!({"backend_url": backend.base_url()}))).await;
    let models = models?;
    Ok(json!({"mode": "existing", "backend_url": backend.base_url(), "backend_type": kind.as_str(),
              "models": models.models, "running_models": models.running_models}))
}

/// Runs a `suite` job: every agent × model over one suite, in one report with a
/// leaderboard (best mean score first). Each combination runs as a benchmark would; one
/// combination failing (e.g. a model the server lacks) is reported, not fatal.
pub async fn run_suite(
    req: &RunSuiteRequest,
    env: &EngineEnv,
    sink: &dyn RunSink,
    cancel: &CancellationToken,
) -> Result<Value, WorkflowError> {
    let mut cases = Vec::new();
    let mut failures = Vec::new();
    for model in &req.models {
        for agent in &req.agents {
            if cancel.is_cancelled() {
                return Err(WorkflowError::Cancelled);
            }
            sink.progress(&format!("{agent} × {model}")).await;
            let one = RunBenchmarkRequest {
                provisioning: None,
                backend_url: Some(req.backend_url.clone()),
                question: String::new(),
                model: model.clone(),
                backend_warmup: req.backend_warmup,
                backend_warmup_timeout: req.backend_warmup_timeout,
                kubeconfig: req.kubeconfig.clone(),
                attestation_required: false,
                backend_type: req.backend_type.clone(),
                agent: agent.clone(),
                suite: Some(req.suite.clone()),
                repetitions: req.repetitions,
                threshold: req.threshold,
                judge_model: req.judge_model.clone(),
            };
            match run_benchmark(&one, env, sink, cancel).await {
                Ok(report) => cases.extend(report.cases),
                Err(WorkflowError::Cancelled) => return Err(WorkflowError::Cancelled),
                Err(e) => failures.push(json!({"agent": agent, "model": model, "error": e.to_string()})),
            }
        }
    }
    let summary = scoring::summarize(&cases);
    let mut leaderboard: Vec<Value> = summary
        .groups
        .iter()
        .map(|g| {
            json!({"agent": g.agent, "model": g.model, "mean_score": g.mean_score, "ci95": g.ci95,
                   "pass_rate": g.pass_rate, "error_rate": g.error_rate, "cost_usd": g.cost_usd,
                   "passed": req.threshold.map(|t| g.mean_score.is_some_and(|m| m >= t))})
        })
        .collect();
    leaderboard.sort_by(|a, b| {
        let score = |v: &Value| v["mean_score"].as_f64().unwrap_or(-1.0);
        score(b).partial_cmp(&score(a)).unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(json!({
        "result_type": "report",
        "suite": req.suite,
        "agents": req.agents,
        "models": req.models,
        "cases": cases,
        "summary": summary,
        "leaderboard": leaderboard,
        "failed_combinations": failures,
    }))
}
