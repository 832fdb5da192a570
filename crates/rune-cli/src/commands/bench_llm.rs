//! `rune bench-llm` (inference load test, job kind `llm-load`), `rune bench-llm import`
//! (GuideLLM / vLLM result files into RUNE's schema) and `rune compare` (regression
//! verdict between two results). The measuring is done by `rune-loadgen`; this module
//! turns flags into an `llm-load` request, records the run as a job (local store, or the
//! API with `--backend http`), shows progress on stderr and renders the result.

use super::remote::Backend;
use super::Environment;
use crate::cli::GlobalArgs;
use crate::exit::{self, coded};
use crate::output::print_json;
use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use rune_core::contracts::JobRequest;
use rune_core::{JobKind, JobStatus};
use rune_loadgen::compare::{compare, Tolerances};
use rune_loadgen::import::{import_file, load_any, Source};
use rune_loadgen::{report, LoadResult, Progress};
use rune_store::{CreateOutcome, NewJob, StatusUpdate};
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Output formats of `bench-llm` and `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LoadFormat {
    /// Aligned tables.
    #[default]
    Table,
    /// The full `rune.llm-load/v1` result.
    Json,
    /// One row per step.
    Csv,
    /// Markdown tables.
    Markdown,
}

/// `rune bench-llm`: flags of the load test (or the `import` subcommand).
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BenchLlmArgs {
    /// Convert another tool's result file instead of running a test.
    #[command(subcommand)]
    pub action: Option<BenchLlmAction>,
    /// Model server base URL (plain http), e.g. http://127.0.0.1:8000.
    #[arg(long, required = true)]
    pub backend_url: Option<String>,
    /// Model name as the server knows it.
    #[arg(long, required = true)]
    pub model: Option<String>,
    /// Server protocol.
    #[arg(long, value_parser = ["openai", "ollama"], default_value = "openai")]
    pub backend_type: String,
    /// OpenAI endpoint: chat (/v1/chat/completions) or completions (/v1/completions).
    #[arg(long, value_parser = ["chat", "completions"], default_value = "chat")]
    pub endpoint: String,
    /// Closed loop: requests kept in flight; a comma list runs a sweep (1,8,64).
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["rate", "sweep"])]
    pub concurrency: Vec<u64>,
    /// Open loop: target requests/s; a comma list runs a sweep (1,2,4).
    #[arg(long, value_delimiter = ',', conflicts_with = "sweep")]
    pub rate: Vec<f64>,
    /// Automatic sweep: double the concurrency from 1 until throughput stops growing by
    /// 10 % or SLO attainment drops below 90 %.
    #[arg(long)]
    pub sweep: bool,
    /// Arrival process of --rate: constant or poisson.
    #[arg(long, value_parser = ["constant", "poisson"], default_value = "constant")]
    pub arrivals: String,
    /// In-flight cap of --rate (late arrivals show as schedule lag) and top of --sweep.
    #[arg(long, default_value_t = 1024)]
    pub max_concurrency: u64,
    /// Requests per step (sessions with --turns).
    #[arg(long, conflicts_with = "duration")]
    pub requests: Option<u64>,
    /// Length of each step, e.g. 60s, 2m.
    #[arg(long, value_parser = rune_loadgen::shape::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Requests at the start of each step left out of the results.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// Left out at the end: a request count (with --requests) or a time like 5s (with --duration).
    #[arg(long)]
    pub cooldown: Option<String>,
    /// Prompt length in tokens (synthetic prompts; matched to the server's usage count).
    #[arg(long, default_value_t = 128)]
    pub input_tokens: u64,
    /// Completion tokens per request (max_tokens, with ignore_eos/min_tokens).
    #[arg(long, default_value_t = 128)]
    pub output_tokens: u64,
    /// Do not send ignore_eos/min_tokens (servers that reject them).
    #[arg(long)]
    pub no_ignore_eos: bool,
    /// JSONL prompts: {"prompt": "...", "output_tokens": N, "timestamp_ms": T} per line.
    #[arg(long, value_name = "FILE")]
    pub prompts: Option<PathBuf>,
    /// A Hugging Face tokenizer.json (or its directory): synthetic prompts get exactly
    /// --input-tokens by its count, offline, instead of matching the server's usage.
    #[arg(long, value_name = "PATH", conflicts_with = "prompts")]
    pub tokenizer: Option<PathBuf>,
    /// Replay --prompts at their timestamp_ms (open loop, no --concurrency/--rate).
    #[arg(long, requires = "prompts", conflicts_with_all = ["concurrency", "rate", "sweep"])]
    pub replay: bool,
    /// Turns per session (each turn resends the history).
    #[arg(long, default_value_t = 1)]
    pub turns: u64,
    /// Seed of prompts and Poisson arrivals.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Per-request timeout, e.g. 60s.
    #[arg(long, value_parser = rune_loadgen::shape::parse_duration, default_value = "300s")]
    pub timeout: std::time::Duration,
    /// Goodput objectives, e.g. ttft_ms=200,itl_ms=50,e2e_ms=5000 (itl_ms is per request: its TPOT).
    #[arg(long)]
    pub slo: Option<String>,
    /// Skip the half-second overhead measurement against an in-process simulated server.
    #[arg(long)]
    pub no_calibrate: bool,
    /// Do not record the run as a job (local mode only).
    #[arg(long)]
    pub no_store: bool,
    /// Also write the JSON result to this file.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: LoadFormat,
}

/// Subcommands of `rune bench-llm`.
#[derive(Debug, Subcommand)]
pub enum BenchLlmAction {
    /// Convert a GuideLLM or `vllm bench serve` JSON result into RUNE's llm-load schema.
    Import(ImportArgs),
}

/// `rune bench-llm import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tool that wrote FILE.
    #[arg(long, value_parser = ["guidellm", "vllm"])]
    pub from: String,
    /// The result file.
    pub file: PathBuf,
    /// Output format (json to save it for `rune compare`).
    #[arg(long, value_enum, default_value = "json")]
    pub output: LoadFormat,
}

/// `rune compare`: baseline vs candidate.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Baseline: an llm-load job id, or a result file (RUNE, GuideLLM or vLLM JSON).
    pub baseline: String,
    /// Candidate: an llm-load job id, or a result file.
    pub candidate: String,
    /// Allowed worsening per metric in percent, e.g. ttft_ms.p99=10,request_throughput=3;
    /// `default=N` for all others (5 unless set).
    #[arg(long)]
    pub tolerance: Vec<String>,
    /// Output format (csv is not offered).
    #[arg(long, value_enum, default_value_t)]
    pub output: LoadFormat,
}

/// Parses `--slo ttft_ms=..,itl_ms=..,e2e_ms=..` into the request's `slo` object.
fn parse_slo(text: &str) -> Result<Value> {
    let mut slo = serde_json::Map::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| coded(exit::BAD_INPUT, format!("--slo: `{part}` is not name=ms, e.g. ttft_ms=200")))?;
        let name = name.trim();
        if !["ttft_ms", "itl_ms", "e2e_ms"].contains(&name) {
            return Err(coded(
                exit::BAD_INPUT,
                format!("--slo: unknown objective `{name}`; use ttft_ms, itl_ms or e2e_ms"),
            ));
        }
        let ms: f64 = value.trim().parse().ok().filter(|x: &f64| x.is_finite() && *x > 0.0).ok_or_else(|| {
            coded(exit::BAD_INPUT, format!("--slo: `{part}` needs a positive number of milliseconds"))
        })?;
        slo.insert(name.to_owned(), json!(ms));
    }
    Ok(Value::Object(slo))
}

/// The `llm-load` request body the flags describe.
fn request_body(a: &BenchLlmArgs) -> Result<Value> {
    let mut body = json!({
        "backend_url": a.backend_url,
        "model": a.model,
        "backend_type": a.backend_type,
        "endpoint": a.endpoint,
        "arrivals": a.arrivals,
        "max_concurrency": a.max_concurrency,
        "warmup": a.warmup,
        "input_tokens": a.input_tokens,
        "output_tokens": a.output_tokens,
        "ignore_eos": !a.no_ignore_eos,
        "turns": a.turns,
        "seed": a.seed,
        "timeout_s": a.timeout.as_secs_f64(),
        "calibrate": !a.no_calibrate,
        "replay": a.replay,
        "auto_sweep": a.sweep,
    });
    if !a.concurrency.is_empty() {
        body["concurrency"] = json!(a.concurrency);
    }
    if !a.rate.is_empty() {
        body["rate"] = json!(a.rate);
    }
    if let Some(n) = a.requests {
        body["requests"] = json!(n);
    }
    if let Some(d) = a.duration {
        body["duration_s"] = json!(d.as_secs_f64());
    }
    if let Some(c) = &a.cooldown {
        match c.trim().parse::<u64>() {
            Ok(n) => body["cooldown"] = json!(n),
            Err(_) => {
                let d = rune_loadgen::shape::parse_duration(c)
                    .map_err(|e| coded(exit::BAD_INPUT, format!("--cooldown: {e}, or a request count")))?;
                body["cooldown_s"] = json!(d.as_secs_f64());
            }
        }
    }
    if let Some(p) = &a.prompts {
        let abs = std::fs::canonicalize(p)
            .with_context(|| format!("--prompts {}: cannot open the file", p.display()))
            .map_err(|e| coded(exit::BAD_INPUT, format!("{e:#}")))?;
        body["prompts_file"] = json!(abs.display().to_string());
    }
    if let Some(t) = &a.tokenizer {
        let abs = std::fs::canonicalize(t)
            .with_context(|| format!("--tokenizer {}: cannot open it", t.display()))
            .map_err(|e| coded(exit::BAD_INPUT, format!("{e:#}")))?;
        body["tokenizer"] = json!(abs.display().to_string());
    }
    if let Some(s) = &a.slo {
        body["slo"] = parse_slo(s)?;
    }
    Ok(body)
}

/// A stderr progress bar fed from the load generator's atomic counters (terminals only).
fn progress_task(progress: Arc<Progress>) -> Option<tokio::task::JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        loop {
            tick.tick().await;
            let planned = progress.planned.load(Ordering::Relaxed);
            bar.set_length(planned.max(progress.done.load(Ordering::Relaxed)));
            bar.set_position(progress.done.load(Ordering::Relaxed));
            bar.set_message(format!(
                "step {}  sent {}  failed {}",
                progress.step.load(Ordering::Relaxed),
                progress.sent.load(Ordering::Relaxed),
                progress.failed.load(Ordering::Relaxed)
            ));
            bar.tick();
        }
    }))
}

/// Runs the load test in this process, recording it as a job unless `store` is false.
async fn run_local(env: &Environment, request: &JobRequest, store: bool) -> Result<(Option<String>, LoadResult)> {
    let JobRequest::LlmLoad(req) = request else { anyhow::bail!("not an llm-load request") };
    let recorded = if store {
        let url = rune_store::DatabaseUrl::parse(
            &env.database_url,
            &std::env::current_dir().unwrap_or_else(|_| env.home.clone()),
        )?;
        let store = rune_store::open_parsed(&url, &env.open_options(&url)).await?;
        let created = store
            .create_job(NewJob {
                tenant_id: rune_core::TenantId::default_tenant(),
                kind: JobKind::LlmLoad,
                request_json: request.to_canonical_json(),
                idempotency_key: None,
                schedule_id: None,
            })
            .await?;
        let CreateOutcome::Created(job) = created else { anyhow::bail!("could not record the run as a job") };
        let mut running = StatusUpdate::to(JobStatus::Running);
        running.message = Some("running locally".into());
        store.update_status(&job.job_id, running).await?;
        Some((store, job.job_id))
    } else {
        None
    };
    let progress = Arc::new(Progress::default());
    let cancel = tokio_util::sync::CancellationToken::new();
    let ctrl_c = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        })
    };
    let ticker = progress_task(Arc::clone(&progress));
    let outcome = rune_loadgen::run(req, &progress, &cancel).await;
    ctrl_c.abort();
    if let Some(t) = ticker {
        t.abort();
        let _ = t.await;
        eprint!("\r\x1b[2K");
    }
    if let Some((store, id)) = &recorded {
        let update = match &outcome {
            Ok(result) => {
                let mut u = StatusUpdate::to(JobStatus::Succeeded);
                u.result_json = Some(serde_json::to_string(result)?);
                u
            }
            Err(e) => {
                let mut u =
                    StatusUpdate::to(if cancel.is_cancelled() { JobStatus::Cancelled } else { JobStatus::Failed });
                u.error = Some(e.to_string());
                u
            }
        };
        store.update_status(id, update).await?;
    }
    let id = recorded.map(|(_, id)| id.to_string());
    match outcome {
        Ok(r) => Ok((id, r)),
        Err(
            e @ (rune_loadgen::LoadError::Invalid { .. }
            | rune_loadgen::LoadError::Read { .. }
            | rune_loadgen::LoadError::Parse { .. }),
        ) => Err(coded(exit::BAD_INPUT, e.to_string())),
        Err(e) => Err(anyhow::Error::new(e).context(match &id {
            Some(id) => format!("load test job {id} failed"),
            None => "load test failed".to_owned(),
        })),
    }
}

/// Submits to the API and waits for the result.
async fn run_remote(remote: &super::remote::RemoteConfig, body: &Value) -> Result<(Option<String>, LoadResult)> {
    let client = remote.client()?;
    let accepted = client.submit(JobKind::LlmLoad.as_str(), body, None).await.map_err(|e| remote.error(e))?;
    eprintln!("submitted llm-load job {} to {}", accepted.job_id, client.base_url());
    let job = client
        .wait_for_job(
            &accepted.job_id,
            std::time::Duration::from_millis(500),
            std::time::Duration::from_secs(7 * 86_400),
        )
        .await
        .map_err(|e| remote.error(e))?;
    if job.status != JobStatus::Succeeded {
        return Err(anyhow::anyhow!(
            "llm-load job {} ended {}: {}",
            accepted.job_id,
            job.status,
            job.error.unwrap_or_default()
        ));
    }
    let result: LoadResult = serde_json::from_value(job.result.unwrap_or(Value::Null))
        .context("the job's result is not an llm-load result")?;
    Ok((Some(accepted.job_id), result))
}

fn print_result(r: &LoadResult, format: LoadFormat) -> Result<()> {
    let text = match format {
        LoadFormat::Json => return print_json(&serde_json::to_value(r)?),
        LoadFormat::Table => report::table(r),
        LoadFormat::Csv => report::csv(r),
        LoadFormat::Markdown => report::markdown(r),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// `rune bench-llm`.
pub async fn run(env: &Environment, global: &GlobalArgs, args: BenchLlmArgs) -> Result<u8> {
    if let Some(BenchLlmAction::Import(import)) = args.action {
        return import_cmd(import);
    }
    let body = request_body(&args)?;
    let request = JobRequest::parse(JobKind::LlmLoad, &body)
        .map_err(|e| coded(exit::BAD_INPUT, format!("invalid load test: {e}")))?;
    let (job_id, result) = match Backend::from_args(global)? {
        Backend::Local => run_local(env, &request, !args.no_store).await?,
        Backend::Http(remote) => run_remote(&remote, &body).await?,
    };
    if let Some(path) = &args.save {
        std::fs::write(path, serde_json::to_string_pretty(&result)?)
            .with_context(|| format!("--save {}: cannot write", path.display()))?;
    }
    print_result(&result, args.output)?;
    if let Some(id) = job_id {
        eprintln!("recorded as llm-load job {id} (rune jobs get {id}; rune compare {id} <other>)");
    }
    if result.steps.iter().all(|s| s.metrics.requests.succeeded == 0) {
        eprintln!("rune: no request succeeded; see the failures above");
        return Ok(exit::FAILURE);
    }
    Ok(exit::SUCCESS)
}

fn import_cmd(args: ImportArgs) -> Result<u8> {
    let source = Source::parse(&args.from).map_err(|e| coded(exit::BAD_INPUT, e.to_string()))?;
    let result = import_file(source, &args.file).map_err(|e| coded(exit::BAD_INPUT, e.to_string()))?;
    print_result(&result, args.output)?;
    Ok(exit::SUCCESS)
}

/// A result by job id (local store or API) or by file path.
async fn load_result(env: &Environment, global: &GlobalArgs, what: &str) -> Result<LoadResult> {
    let path = std::path::Path::new(what);
    if path.exists() {
        return load_any(path).map_err(|e| coded(exit::BAD_INPUT, e.to_string()));
    }
    let not_found = || {
        coded(
            exit::BAD_INPUT,
            format!("`{what}` is neither a result file nor an llm-load job id; give a path or a job id from `rune jobs list`"),
        )
    };
    let value: Value = match Backend::from_args(global)? {
        Backend::Local => {
            let id: rune_core::JobId = what.parse().map_err(|_| not_found())?;
            let url = rune_store::DatabaseUrl::parse(
                &env.database_url,
                &std::env::current_dir().unwrap_or_else(|_| env.home.clone()),
            )?;
            let store = rune_store::open_parsed(&url, &env.open_options(&url)).await?;
            let job = store.get_job(None, &id).await?.ok_or_else(not_found)?;
            if job.kind != JobKind::LlmLoad {
                return Err(coded(exit::BAD_INPUT, format!("job {what} is a {} job, not llm-load", job.kind)));
            }
            let text = job
                .result_json
                .ok_or_else(|| coded(exit::BAD_INPUT, format!("job {what} has no result (status {})", job.status)))?;
            serde_json::from_str(&text).context("stored result is not JSON")?
        }
        Backend::Http(remote) => {
            let client = remote.client()?;
            let job = client.get_job(what).await.map_err(|e| remote.error(e))?;
            job.result
                .ok_or_else(|| coded(exit::BAD_INPUT, format!("job {what} has no result (status {})", job.status)))?
        }
    };
    serde_json::from_value(value)
        .map_err(|e| coded(exit::BAD_INPUT, format!("job {what}: not an llm-load result: {e}")))
}

/// `rune compare`: exit 0 without regression, 3 with one.
pub async fn compare_cmd(env: &Environment, global: &GlobalArgs, args: CompareArgs) -> Result<u8> {
    let tol = Tolerances::parse(args.tolerance.iter().map(String::as_str))
        .map_err(|e| coded(exit::BAD_INPUT, e.to_string()))?;
    let baseline = load_result(env, global, &args.baseline).await?;
    let candidate = load_result(env, global, &args.candidate).await?;
    let c = compare(&baseline, &candidate, &tol);
    match args.output {
        LoadFormat::Json => print_json(&serde_json::to_value(&c)?)?,
        LoadFormat::Markdown => print!("{}", report::comparison_table(&c, true)),
        LoadFormat::Table | LoadFormat::Csv => print!("{}", report::comparison_table(&c, false)),
    }
    Ok(if c.regression { exit::CHECK_FAILED } else { exit::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SLO flags: names, numbers and their negative cases.
    #[test]
    fn slo_flag() {
        assert_eq!(parse_slo("ttft_ms=200, e2e_ms=1500.5").unwrap(), json!({"ttft_ms": 200.0, "e2e_ms": 1500.5}));
        for bad in ["ttft=1", "ttft_ms", "ttft_ms=0", "itl_ms=x", "e2e_ms=-3"] {
            assert!(parse_slo(bad).is_err(), "{bad}");
        }
    }
}
