//! `rune run-benchmark`, `run-agentic-agent`, `run-llm-instance`, `ollama-list-models`,
//! `vastai-list-models`, `info`: the benchmark engine from the command line.
//!
//! Local mode records the run as a job in the local database (so `rune jobs list` and
//! the UI show it) and runs it in this process with the same workflow code the API's
//! workers use; `--backend http` submits it to a server and follows its events.

use super::remote::Backend;
use super::Environment;
use crate::cli::{BackendArgs, GlobalArgs, RunAgenticArgs, RunBenchmarkArgs};
use crate::exit::{self, coded};
use crate::output::{print_json, print_table, ReportFormat};
use anyhow::{Context, Result};
use async_trait::async_trait;
use rune_core::contracts::JobRequest;
use rune_core::records::NewJobEvent;
use rune_core::scoring::CaseResult;
use rune_core::{JobKind, JobStatus};
use rune_engine::workflow::{BenchmarkReport, RunSink};
use rune_store::{CreateOutcome, NewJob, StatusUpdate, Store};
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::sync::Arc;

/// Records events in the local database and shows progress on stderr.
struct LocalSink {
    store: Arc<dyn Store>,
    job: rune_core::JobId,
    bar: Option<indicatif::ProgressBar>,
}

#[async_trait]
impl RunSink for LocalSink {
    async fn event(&self, event: NewJobEvent) {
        let _ = self.store.append_event(&self.job, event).await;
    }
    async fn progress(&self, message: &str) {
        let _ = self.store.set_message(&self.job, message).await;
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_owned());
        }
    }
    fn cases_done(&self, done: usize, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    }
}

fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

fn validate(kind: JobKind, body: &Value) -> Result<JobRequest> {
    JobRequest::parse(kind, body).map_err(|e| coded(exit::BAD_INPUT, format!("invalid request: {e}")))
}

/// Runs a job of `kind` locally: stored as a job, executed here, outcome recorded.
async fn run_local(
    env: &Environment,
    kind: JobKind,
    request: &JobRequest,
) -> Result<(rune_core::JobId, Result<Value, String>)> {
    let url = rune_store::DatabaseUrl::parse(
        &env.database_url,
        &std::env::current_dir().unwrap_or_else(|_| env.home.clone()),
    )?;
    let store = rune_store::open_parsed(&url, &env.open_options(&url)).await?;
    let created = store
        .create_job(NewJob {
            tenant_id: rune_core::TenantId::default_tenant(),
            kind,
            request_json: request.to_canonical_json(),
            idempotency_key: None,
            schedule_id: None,
        })
        .await?;
    let CreateOutcome::Created(job) = created else { anyhow::bail!("could not record the run as a job") };
    let mut running = StatusUpdate::to(JobStatus::Running);
    running.message = Some("running locally".into());
    store.update_status(&job.job_id, running).await?;
    let engine_env = crate::runner::engine_env(true)?;
    let sink = LocalSink { store: store.clone(), job: job.job_id.clone(), bar: progress_bar() };
    let cancel = tokio_util::sync::CancellationToken::new();
    let ctrl_c = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        })
    };
    let outcome = crate::runner::run_request(kind, &request.to_canonical_json(), &engine_env, &sink, &cancel).await;
    ctrl_c.abort();
    if let Some(bar) = &sink.bar {
        bar.finish_and_clear();
    }
    let update = match &outcome {
        Ok(result) => {
            let mut u = StatusUpdate::to(JobStatus::Succeeded);
            u.result_json = Some(result.to_string());
            u
        }
        Err(e) if cancel.is_cancelled() => {
            let mut u = StatusUpdate::to(JobStatus::Cancelled);
            u.error = Some(format!("interrupted: {e}"));
            u
        }
        Err(e) => {
            let mut u = StatusUpdate::to(JobStatus::Failed);
            u.error = Some(e.0.clone());
            u
        }
    };
    store.update_status(&job.job_id, update).await?;
    Ok((job.job_id, outcome.map_err(|e| e.0)))
}

/// Submits to the API and waits for the outcome, showing progress messages.
async fn run_remote(
    remote: &super::remote::RemoteConfig,
    kind: JobKind,
    body: &Value,
    key: Option<&str>,
) -> Result<(String, Result<Value, String>)> {
    let client = remote.client()?;
    let accepted = client.submit(kind.as_str(), body, key).await.map_err(|e| remote.error(e))?;
    eprintln!("submitted job {} to {}", accepted.job_id, client.base_url());
    let job = client
        .wait_for_job(
            &accepted.job_id,
            std::time::Duration::from_millis(500),
            std::time::Duration::from_secs(7 * 86_400),
        )
        .await
        .map_err(|e| remote.error(e))?;
    let outcome = match job.status {
        JobStatus::Succeeded => Ok(job.result.unwrap_or(Value::Null)),
        other => Err(job.error.unwrap_or_else(|| format!("job ended {other}"))),
    };
    Ok((accepted.job_id, outcome))
}

fn benchmark_body(args: &RunBenchmarkArgs) -> Value {
    json!({
        "backend_url": args.backend.backend_url,
        "backend_type": args.backend.backend_type,
        "model": args.model,
        "question": args.question,
        "suite": args.suite,
        "agent": args.agent,
        "repetitions": args.repetitions,
        "threshold": args.threshold,
        "backend_warmup": args.backend_warmup,
        "backend_warmup_timeout": args.backend_warmup_timeout,
        "kubeconfig": args.kubeconfig.clone().unwrap_or_default(),
        "judge_model": args.judge_model,
        "vastai": args.vastai,
        "template_hash": args.vastai_template,
        "min_dph": args.vastai_min_dph,
        "max_dph": args.vastai_max_dph,
        "reliability": args.vastai_reliability,
        "vastai_stop_instance": !args.keep_vastai_instance,
    })
}

/// The fail-closed spend gate before renting: an estimate below 0.95 confidence or over
/// `RUNE_SPEND_WARNING_THRESHOLD` (default $5) needs `--yes` or an interactive yes; in CI
/// (`CI=true`) without `--yes` it blocks.
fn spend_gate(args: &RunBenchmarkArgs) -> Result<()> {
    use rune_core::cost::{self, GateDecision, GatePolicy};
    let req = rune_core::contracts::CostEstimationRequest {
        vastai: true,
        aws: false,
        gcp: false,
        azure: false,
        min_dph: args.vastai_min_dph,
        max_dph: args.vastai_max_dph,
        local_hardware: false,
        local_tdp_watts: 0.0,
        local_energy_rate_kwh: 0.0,
        local_hardware_purchase_price: 0.0,
        local_hardware_lifespan_years: 0.0,
        model: args.model.clone(),
        estimated_duration_seconds: 3600,
    };
    let estimate = cost::estimate(&req)
        .map_err(|e| coded(exit::REFUSED, format!("cost estimate failed, refusing to rent (fail-closed): {e}")))?;
    let threshold = cost::parse_spend_threshold(std::env::var("RUNE_SPEND_WARNING_THRESHOLD").ok().as_deref())
        .map_err(|e| coded(exit::BAD_INPUT, e.to_string()))?;
    let policy = GatePolicy {
        spend_threshold_usd: threshold,
        confirmed: args.yes,
        ci: cost::parse_ci_env(std::env::var("CI").ok().as_deref()),
    };
    eprintln!(
        "pre-flight estimate: ${:.2} for one hour on Vast.ai (confidence {:.2}, {})",
        estimate.projected_cost_usd, estimate.confidence_score, estimate.price_source
    );
    match cost::gate(&estimate, &policy) {
        GateDecision::Proceed => Ok(()),
        GateDecision::Blocked { reasons } => Err(coded(
            exit::REFUSED,
            format!("spend gate blocked the run: {}; pass --yes to accept", reasons.join("; ")),
        )),
        GateDecision::NeedsConfirmation { reasons } => {
            super::db::confirm(&format!("Rent a GPU? {}", reasons.join("; ")), false)
        }
    }
}

/// `rune run-benchmark`.
pub async fn benchmark(env: &Environment, global: &GlobalArgs, args: RunBenchmarkArgs) -> Result<u8> {
    let body = benchmark_body(&args);
    let request = validate(JobKind::Benchmark, &body)?;
    if args.vastai {
        spend_gate(&args)?;
    }
    let (job_id, outcome) = match Backend::from_args(global)? {
        Backend::Local => {
            let (id, o) = run_local(env, JobKind::Benchmark, &request).await?;
            (id.to_string(), o)
        }
        Backend::Http(remote) => {
            run_remote(&remote, JobKind::Benchmark, &body, args.idempotency_key.as_deref()).await?
        }
    };
    let result = match outcome {
        Ok(v) => v,
        Err(e) => {
            eprintln!("rune: benchmark job {job_id} failed: {e}");
            return Ok(exit::FAILURE);
        }
    };
    let report: BenchmarkReport =
        serde_json::from_value(result).context("the job's result is not a benchmark report")?;
    print_report(&report, &job_id, args.backend.output)?;
    if !report.cases.is_empty() && report.cases.iter().all(|c| c.error.is_some()) {
        eprintln!(
            "rune: every case failed (first error: {}); nothing was measured",
            report.cases[0].error.as_deref().unwrap_or("?")
        );
        return Ok(exit::FAILURE);
    }
    Ok(if report.passed { exit::SUCCESS } else { exit::CHECK_FAILED })
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "-".into())
}

fn case_row(c: &CaseResult) -> Vec<String> {
    let score = c.score.as_ref();
    vec![
        c.case_id.clone(),
        c.repetition.to_string(),
        fmt_opt(score.map(|s| s.score), 2),
        score.map(|s| if s.passed { "yes" } else { "no" }).unwrap_or("-").into(),
        format!("{:.0}", c.latency_ms),
        fmt_opt(c.ttft_ms, 0),
        c.prompt_tokens.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
        c.completion_tokens.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
        fmt_opt(c.cost_usd, 5),
        score.map(|s| s.missed.join(" ")).unwrap_or_default(),
        c.error.clone().unwrap_or_default(),
    ]
}

const CASE_HEADERS: [&str; 11] = [
    "CASE",
    "REP",
    "SCORE",
    "PASSED",
    "LATENCY_MS",
    "TTFT_MS",
    "PROMPT_TOK",
    "COMPL_TOK",
    "COST_USD",
    "MISSED",
    "ERROR",
];
const SUMMARY_HEADERS: [&str; 10] =
    ["AGENT", "MODEL", "N", "MEAN_SCORE", "CI95", "PASS_RATE", "P50_MS", "P95_MS", "COST_USD", "ERROR_RATE"];

fn summary_rows(report: &BenchmarkReport) -> Vec<Vec<String>> {
    report
        .summary
        .groups
        .iter()
        .map(|g| {
            vec![
                g.agent.clone(),
                g.model.clone(),
                g.n.to_string(),
                fmt_opt(g.mean_score, 3),
                g.ci95.map(|[a, b]| format!("[{a:.2}, {b:.2}]")).unwrap_or_else(|| "-".into()),
                fmt_opt(g.pass_rate, 2),
                fmt_opt(g.latency_ms.as_ref().map(|l| l.p50), 0),
                fmt_opt(g.latency_ms.as_ref().map(|l| l.p95), 0),
                fmt_opt(g.cost_usd, 5),
                format!("{:.2}", g.error_rate),
            ]
        })
        .collect()
}

fn print_report(report: &BenchmarkReport, job_id: &str, format: ReportFormat) -> Result<()> {
    match format {
        ReportFormat::Json => {
            let mut v = serde_json::to_value(report)?;
            v["job_id"] = json!(job_id);
            print_json(&v)
        }
        ReportFormat::Csv => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", CASE_HEADERS.join(",").to_lowercase())?;
            for c in &report.cases {
                let row: Vec<String> = case_row(c).into_iter().map(|f| csv_field(&f)).collect();
                writeln!(out, "{}", row.join(","))?;
            }
            Ok(())
        }
        ReportFormat::Markdown => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "## {} × {} on `{}` ({})\n", report.agent, report.model_name, report.suite, job_id)?;
            md_table(&mut out, &SUMMARY_HEADERS, &summary_rows(report))?;
            writeln!(out)?;
            md_table(&mut out, &CASE_HEADERS, &report.cases.iter().map(case_row).collect::<Vec<_>>())?;
            Ok(())
        }
        ReportFormat::Table => {
            println!(
                "job {job_id}: suite {} · agent {} · model {} · {}",
                report.suite, report.agent, report.model_name, report.backend_url
            );
            println!();
            print_table(&CASE_HEADERS, &report.cases.iter().map(case_row).collect::<Vec<_>>())?;
            println!();
            print_table(&SUMMARY_HEADERS, &summary_rows(report))?;
            if let Some(th) = report.threshold {
                println!("\nthreshold {th}: {}", if report.passed { "PASS" } else { "FAIL (exit code 3)" });
            }
            Ok(())
        }
    }
}

fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_owned()
    }
}

fn md_table(out: &mut impl Write, headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
    writeln!(out, "| {} |", headers.join(" | "))?;
    writeln!(out, "|{}", "---|".repeat(headers.len()))?;
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|").replace('\n', " ")).collect();
        writeln!(out, "| {} |", cells.join(" | "))?;
    }
    Ok(())
}

/// `rune run-agentic-agent`.
pub async fn agentic(env: &Environment, global: &GlobalArgs, args: RunAgenticArgs) -> Result<u8> {
    let body = json!({
        "question": args.question,
        "model": args.model,
        "backend_url": args.backend.backend_url,
        "backend_type": args.backend.backend_type,
        "backend_warmup": args.backend_warmup,
        "backend_warmup_timeout": args.backend_warmup_timeout,
        "kubeconfig": args.kubeconfig,
        "agent": args.agent,
    });
    let request = validate(JobKind::AgenticAgent, &body)?;
    let (job_id, outcome) = match Backend::from_args(global)? {
        Backend::Local => {
            let (id, o) = run_local(env, JobKind::AgenticAgent, &request).await?;
            (id.to_string(), o)
        }
        Backend::Http(remote) => run_remote(&remote, JobKind::AgenticAgent, &body, None).await?,
    };
    match outcome {
        Ok(v) => {
            if args.backend.output == ReportFormat::Json {
                let mut v = v;
                v["job_id"] = json!(job_id);
                print_json(&v)?;
            } else {
                println!("{}", v["answer"].as_str().unwrap_or_default());
            }
            Ok(exit::SUCCESS)
        }
        Err(e) => {
            eprintln!("rune: job {job_id} failed: {e}");
            Ok(exit::FAILURE)
        }
    }
}

fn backend_of(args: &BackendArgs) -> Result<Arc<dyn rune_engine::backend::Backend>> {
    let url = args.backend_url.as_deref().ok_or_else(|| {
        coded(exit::BAD_INPUT, "--backend-url (or RUNE_BACKEND_URL) is required, e.g. http://localhost:11434")
    })?;
    let kind: rune_engine::backend::BackendKind = args
        .backend_type
        .parse()
        .map_err(|e: rune_engine::backend::UnknownBackendKind| coded(exit::BAD_INPUT, e.to_string()))?;
    rune_engine::backend::backend_for(kind, url, rune_engine::backend::BackendOptions::default())
        .map_err(|e| coded(exit::BAD_INPUT, e.to_string()))
}

/// `rune run-llm-instance` (existing server).
pub async fn llm_instance(args: BackendArgs) -> Result<u8> {
    list_models(args).await
}

/// `rune ollama-list-models`.
pub async fn list_models(args: BackendArgs) -> Result<u8> {
    let backend = backend_of(&args)?;
    let models = backend.list_models().await?;
    if args.output == ReportFormat::Json {
        print_json(
            &json!({"backend_url": backend.base_url(), "models": models.models, "running_models": models.running_models}),
        )?;
    } else {
        let rows: Vec<Vec<String>> = models
            .models
            .iter()
            .map(|m| vec![m.clone(), if models.running_models.contains(m) { "running".into() } else { String::new() }])
            .collect();
        print_table(&["MODEL", "STATE"], &rows)?;
    }
    Ok(exit::SUCCESS)
}

/// `rune vastai-list-models`.
pub fn vastai_models() -> Result<u8> {
    let rows: Vec<Vec<String>> = rune_api::routes::catalog::VASTAI_MODELS
        .iter()
        .map(|(n, vram, disk)| vec![(*n).into(), vram.to_string(), disk.to_string()])
        .collect();
    print_table(&["MODEL", "VRAM_MB", "DISK_GB"], &rows)?;
    Ok(exit::SUCCESS)
}

/// `rune info`.
pub fn info() -> Result<u8> {
    println!("rune {} (schema version {})", env!("CARGO_PKG_VERSION"), rune_store::migrations::latest_version());
    println!("job kinds: benchmark, agentic-agent, llm-instance, cost-estimate");
    println!("agents: {}", rune_engine::agent::known_agents().join(", "));
    println!("backends: ollama, openai");
    let suites: Vec<&str> = rune_core::suite::builtin_suites().iter().map(|(n, _)| *n).collect();
    println!("built-in suites: {}", suites.join(", "));
    Ok(exit::SUCCESS)
}

/// `rune suites list|show|validate`.
pub fn suites(cmd: crate::cli::SuitesCommand) -> Result<u8> {
    use crate::cli::SuitesCommand;
    use crate::output::OutputFormat;
    let env = crate::runner::engine_env(true)?;
    match cmd {
        SuitesCommand::List { output } => {
            let mut rows = Vec::new();
            let mut list = Vec::new();
            for (name, _) in rune_core::suite::builtin_suites() {
                let suite = rune_core::suite::load_builtin(name)?;
                let judge_only = suite.cases.iter().filter(|c| c.is_judge_only()).count();
                rows.push(vec![
                    name.to_owned(),
                    suite.cases.len().to_string(),
                    judge_only.to_string(),
                    suite.description.clone(),
                ]);
                list.push(json!({"name": name, "cases": suite.cases.len(), "judge_only_cases": judge_only, "description": suite.description}));
            }
            if output == OutputFormat::Json {
                print_json(&json!({"suites": list}))?;
            } else {
                print_table(&["SUITE", "CASES", "JUDGE_ONLY", "DESCRIPTION"], &rows)?;
            }
            Ok(exit::SUCCESS)
        }
        SuitesCommand::Show { suite, output } => {
            let s =
                rune_engine::workflow::load_suite(&suite, &env).map_err(|e| coded(exit::BAD_INPUT, e.to_string()))?;
            if output == OutputFormat::Json {
                let cases: Vec<Value> = s
                    .cases
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "question": c.question, "scope": c.scope.as_str(), "tags": c.tags,
                                    "facts": c.expected.facts.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
                                    "forbidden": c.expected.forbidden.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
                                    "context": c.context.iter().map(|x| x.name.clone()).collect::<Vec<_>>()})
                    })
                    .collect();
                print_json(
                    &json!({"name": s.name, "description": s.description, "version": s.version, "cases": cases}),
                )?;
            } else {
                println!("{} (version {}): {}\n", s.name, s.version, s.description);
                let rows: Vec<Vec<String>> = s
                    .cases
                    .iter()
                    .map(|c| {
                        vec![
                            c.id.clone(),
                            c.context.len().to_string(),
                            c.expected.facts.iter().map(|f| f.id.as_str()).collect::<Vec<_>>().join(" "),
                            c.expected.forbidden.iter().map(|f| f.id.as_str()).collect::<Vec<_>>().join(" "),
                        ]
                    })
                    .collect();
                print_table(&["CASE", "CONTEXT", "FACTS", "FORBIDDEN"], &rows)?;
            }
            Ok(exit::SUCCESS)
        }
        SuitesCommand::Validate { suite } => match rune_engine::workflow::load_suite(&suite, &env) {
            Ok(s) => {
                println!("{}: valid ({} cases)", suite, s.cases.len());
                Ok(exit::SUCCESS)
            }
            Err(e) => Err(coded(exit::BAD_INPUT, e.to_string())),
        },
    }
}
