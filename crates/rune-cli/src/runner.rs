//! The job runner of the `rune` binary: the benchmark engine behind the API's worker
//! pool (and the CLI's local mode). The composition root: rune-api knows only the
//! [`JobRunner`] trait, rune-engine knows nothing of HTTP.

use async_trait::async_trait;
use rune_api::runner::{BuiltinRunner, JobContext, JobFailure, JobRunner};
use rune_core::contracts::JobRequest;
use rune_core::records::NewJobEvent;
use rune_core::{JobKind, JobRecord};
use rune_engine::workflow::{self, EngineEnv, RunSink};
use std::path::PathBuf;

/// Runs every kind this build supports through the engine.
pub struct EngineRunner {
    env: EngineEnv,
}

impl EngineRunner {
    /// A runner configured from the environment (`RUNE_SUITE_DIR`, agent and backend
    /// settings, energy prices).
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self { env: engine_env(false)? })
    }
}

/// Engine settings from the environment; `cli` allows suite files anywhere (the user's
/// own machine), the server only under `RUNE_SUITE_DIR`.
pub fn engine_env(cli: bool) -> anyhow::Result<EngineEnv> {
    let lookup = |k: &str| std::env::var(k).ok();
    let agents = rune_engine::agent::AgentConfig::from_env(lookup)?;
    let number = |name: &str, default: f64| -> anyhow::Result<f64> {
        match std::env::var(name) {
            Ok(v) => v.trim().parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(|| {
                crate::exit::coded(crate::exit::BAD_INPUT, format!("{name}=`{v}` is not a non-negative number"))
            }),
            Err(_) => Ok(default),
        }
    };
    Ok(EngineEnv {
        backend: agents.backend.clone(),
        agents,
        suite_dir: std::env::var_os("RUNE_SUITE_DIR").map(PathBuf::from),
        allow_any_suite_path: cli,
        local_power_watts: number("RUNE_LOCAL_POWER_WATTS", 300.0)?,
        energy_rate_kwh: number("RUNE_ENERGY_RATE_KWH", 0.15)?,
    })
}

struct JobSink<'a>(&'a JobContext);

#[async_trait]
impl RunSink for JobSink<'_> {
    async fn event(&self, event: NewJobEvent) {
        self.0.event(event).await;
    }
    async fn progress(&self, message: &str) {
        self.0.progress(message).await;
    }
}

/// Runs one stored job's request through the matching workflow.
pub async fn run_request(
    kind: JobKind,
    request_json: &str,
    env: &EngineEnv,
    sink: &dyn RunSink,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<serde_json::Value, JobFailure> {
    let body: serde_json::Value =
        serde_json::from_str(request_json).map_err(|e| JobFailure(format!("stored request is not JSON: {e}")))?;
    let request = JobRequest::parse(kind, &body).map_err(|e| JobFailure(format!("stored request is invalid: {e}")))?;
    let out = match request {
        JobRequest::Benchmark(r) => workflow::run_benchmark(&r, env, sink, cancel)
            .await
            .and_then(|rep| serde_json::to_value(rep).map_err(|e| workflow::WorkflowError::Unsupported(e.to_string()))),
        JobRequest::AgenticAgent(r) => workflow::run_agentic(&r, env, sink, cancel).await,
        JobRequest::LlmInstance(r) => workflow::run_llm_instance(&r, env, sink).await,
        JobRequest::Suite(r) => workflow::run_suite(&r, env, sink, cancel).await,
        JobRequest::LlmLoad(r) => return run_llm_load(&r, env, sink, cancel).await,
        JobRequest::CostEstimate(r) => rune_core::cost::estimate(&r)
            .map_err(|e| workflow::WorkflowError::Unsupported(e.to_string()))
            .and_then(|e| serde_json::to_value(e).map_err(|e| workflow::WorkflowError::Unsupported(e.to_string()))),
    };
    out.map_err(|e| JobFailure(e.to_string()))
}

/// Runs an `llm-load` job with `rune-loadgen`, posting progress every few seconds. A
/// server only reads prompt and tokenizer files under `RUNE_SUITE_DIR` (the CLI reads any
/// path).
async fn run_llm_load(
    req: &rune_core::contracts::RunLlmLoadRequest,
    env: &EngineEnv,
    sink: &dyn RunSink,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<serde_json::Value, JobFailure> {
    for (field, path) in [("prompts_file", &req.prompts_file), ("tokenizer", &req.tokenizer)] {
        let Some(path) = path else { continue };
        let allowed = env.allow_any_suite_path
            || env.suite_dir.as_ref().is_some_and(|dir| {
                std::fs::canonicalize(path)
                    .ok()
                    .zip(std::fs::canonicalize(dir).ok())
                    .is_some_and(|(p, d)| p.starts_with(d))
            });
        if !allowed {
            return Err(JobFailure(format!(
                "{field} `{path}` is outside RUNE_SUITE_DIR; the server only reads such files there"
            )));
        }
    }
    let progress = std::sync::Arc::new(rune_loadgen::Progress::default());
    let run = rune_loadgen::run(req, &progress, cancel);
    tokio::pin!(run);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    let outcome = loop {
        tokio::select! {
            out = &mut run => break out,
            _ = tick.tick() => {
                use std::sync::atomic::Ordering::Relaxed;
                let message = format!(
                    "step {}: {} requests done, {} failed",
                    progress.step.load(Relaxed),
                    progress.done.load(Relaxed),
                    progress.failed.load(Relaxed)
                );
                sink.progress(&message).await;
            }
        }
    };
    let result = outcome.map_err(|e| JobFailure(e.to_string()))?;
    serde_json::to_value(result).map_err(|e| JobFailure(format!("cannot serialise the load result: {e}")))
}

#[async_trait]
impl JobRunner for EngineRunner {
    fn supports(&self, kind: JobKind) -> bool {
        matches!(
            kind,
            JobKind::Benchmark
                | JobKind::AgenticAgent
                | JobKind::LlmInstance
                | JobKind::CostEstimate
                | JobKind::Suite
                | JobKind::LlmLoad
        )
    }

    async fn run(&self, job: &JobRecord, ctx: JobContext) -> Result<serde_json::Value, JobFailure> {
        if job.kind == JobKind::CostEstimate {
            return BuiltinRunner.run(job, ctx).await;
        }
        let cancel = ctx.cancel.clone();
        run_request(job.kind, &job.request_json, &self.env, &JobSink(&ctx), &cancel).await
    }
}
