//! RUNE's inference load generator: the library behind `rune bench-llm` and the API's
//! `llm-load` jobs. It drives an OpenAI-compatible or Ollama server with streaming
//! requests in a closed loop (fixed concurrency), an open loop (constant or Poisson
//! arrivals, or a replayed trace), sweeps and an automatic saturation sweep, and reports
//! TTFT, ITL, TPOT, E2E, throughput and goodput from HDR histograms, with a calibration
//! block (client CPU, schedule lag, overhead against a simulated server) and an
//! environment fingerprint on every result.
//!
//! The client is built to stay out of the measurement: one pooled hyper client with
//! `TCP_NODELAY`, timestamps taken when each body frame arrives, SSE/NDJSON parsed on byte
//! slices without per-token allocation, workers that own their buffers and histograms and
//! merge once per step.
//!
//! # Layout
//!
//! - [`shape`]: load shapes, bounds, open-loop schedules, duration parsing.
//! - [`workload`]: prompts (synthetic, JSONL, trace), request bodies, dataset hash.
//! - [`sse`]: the streaming parser. [`client`]: the pooled client and one exchange.
//! - [`engine`]: the worker pool that runs one step. [`metrics`]: recorders and formulas.
//! - [`result`]: the result schema. [`compare`]: regression verdicts. [`import`]: GuideLLM
//!   and vLLM result files. [`report`]: table, CSV and Markdown renderings.
//! - [`rng`]: the seeded generator. [`error`]: the error type.
//!
//! # Example
//!
//! ```
//! use rune_loadgen::shape::{open_schedule, Arrivals, Bound};
//! // 100 Poisson arrivals at 10 requests/s, reproducible from seed 42.
//! let schedule = open_schedule(10.0, Arrivals::Poisson, Bound::Requests(100), 42).unwrap();
//! assert_eq!(schedule.len(), 100);
//! assert_eq!(schedule, open_schedule(10.0, Arrivals::Poisson, Bound::Requests(100), 42).unwrap());
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod client;
pub mod compare;
pub mod engine;
pub mod error;
pub mod import;
pub mod metrics;
pub mod report;
pub mod result;
pub mod rng;
pub mod shape;
pub mod sse;
pub mod tokens;
pub mod workload;

pub use engine::Progress;
pub use error::LoadError;
pub use result::LoadResult;

use crate::client::{exchange, http_client};
use crate::engine::{run_step, Plan, StepSpec};
use crate::metrics::{Metrics, Outcome};
use crate::result::{Calibration, Overhead, Saturation, StepResult, SCHEMA};
use crate::shape::{open_schedule, Arrivals, Bound, StepShape};
use crate::sse::StreamParser;
use crate::workload::{Api, BodyBuilder, Workload, SYNTHETIC_POOL};
use http_body_util::BodyExt;
use rune_core::contracts::RunLlmLoadRequest;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// An automatic sweep stops when a step raises request throughput by less than this
/// share over the best step so far.
pub const SATURATION_GAIN: f64 = 0.10;
/// An automatic sweep also stops when a step's SLO attainment falls below this share.
pub const SATURATION_ATTAINMENT: f64 = 0.90;
/// Consecutive failed prompt-length probes before the run is refused.
const MAX_PROBE_FAILURES: u32 = 5;
/// Largest backend info document kept in the environment block, bytes.
const MAX_BACKEND_INFO: usize = 64 * 1024;

/// Runs the load test `req` describes and returns its result. Progress is published in
/// `progress`; `cancel` stops the run early (the steps measured so far are returned).
///
/// # Errors
///
/// Bad settings, an unreadable prompt file, or a backend that cannot be reached before the
/// run starts. Failures of individual requests are results, not errors.
pub async fn run(
    req: &RunLlmLoadRequest,
    progress: &Arc<Progress>,
    cancel: &CancellationToken,
) -> Result<LoadResult, LoadError> {
    let api = match (req.backend_type.as_str(), req.endpoint.as_str()) {
        ("ollama", _) => Api::OllamaChat,
        (_, "completions") => Api::OpenAiCompletions,
        _ => Api::OpenAiChat,
    };
    let base = base_url(&req.backend_url)?;
    let uri: http::Uri = format!("{base}{}", api.path())
        .parse()
        .map_err(|e| LoadError::invalid("backend_url", format!("`{}` is not a valid URL: {e}", req.backend_url)))?;
    let workers = max_workers(req);
    let client = http_client(usize::try_from(workers).unwrap_or(usize::MAX));
    let backend_info = backend_info(&client, &base, api, &req.model).await?;
    let builder =
        BodyBuilder { api, model: req.model.clone(), output_tokens: req.output_tokens, ignore_eos: req.ignore_eos };
    let turns = u32::try_from(req.turns).unwrap_or(u32::MAX);
    let (workload, input_calibration) = match (&req.prompts_file, &req.tokenizer) {
        (Some(path), _) => {
            (Workload::from_jsonl(std::path::Path::new(path), turns, req.replay)?, serde_json::Value::Null)
        }
        (None, Some(path)) => tokenizer_workload(req, std::path::Path::new(path), turns)?,
        (None, None) => synthetic_workload(req, &client, &uri, &builder, turns).await?,
    };
    let bodies = workload.prompts.iter().map(|p| builder.body(p, 0)).collect();
    let plan = Arc::new(Plan {
        client,
        uri,
        framing: client::framing(api),
        workload,
        bodies,
        builder,
        timeout: Duration::from_secs_f64(req.timeout_s),
    });
    let overhead = if req.calibrate { measure_overhead(cancel).await } else { None };

    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut steps = Vec::new();
    let mut saturation = None;
    let bound = match (req.requests, req.duration_s) {
        (Some(n), _) => Bound::Requests(n),
        (None, Some(d)) => Bound::Duration(Duration::from_secs_f64(d)),
        (None, None) => Bound::Requests(plan.workload.prompts.len() as u64),
    };
    let spec = |shape: StepShape| StepSpec {
        shape,
        bound,
        warmup: req.warmup,
        cooldown: req.cooldown,
        cooldown_time: Duration::from_secs_f64(req.cooldown_s),
    };
    let arrivals = Arrivals::parse(&req.arrivals)?;
    let mut shapes: Vec<StepShape> = Vec::new();
    if req.replay {
        let offsets = plan.workload.timestamps.clone().unwrap_or_default();
        shapes.push(StepShape::Open { rate: None, offsets, max_concurrency: req.max_concurrency });
    }
    shapes.extend(req.concurrency.iter().map(|&c| StepShape::Closed { concurrency: c }));
    for (i, &rate) in req.rate.iter().enumerate() {
        let offsets = open_schedule(rate, arrivals, bound, req.seed.wrapping_add(i as u64))?;
        shapes.push(StepShape::Open { rate: Some(rate), offsets, max_concurrency: req.max_concurrency });
    }
    if req.auto_sweep {
        let mut c = 1u64;
        while c <= req.max_concurrency {
            shapes.push(StepShape::Closed { concurrency: c });
            c *= 2;
        }
    }
    for (i, shape) in shapes.into_iter().enumerate() {
        if cancel.is_cancelled() {
            break;
        }
        progress.step.store(i as u64 + 1, std::sync::atomic::Ordering::Relaxed);
        let label = shape.label();
        let (concurrency, rate) = match &shape {
            StepShape::Closed { concurrency } => (Some(*concurrency), None),
            StepShape::Open { rate, .. } => (None, *rate),
        };
        let recorder = run_step(&plan, &spec(shape), progress, cancel).await;
        let metrics = Metrics::compute(&recorder, &req.slo);
        steps.push(StepResult { load: label, concurrency, rate, metrics });
        if req.auto_sweep {
            if let Some(reason) = saturated(&steps, req.slo.ttft_ms.or(req.slo.itl_ms).or(req.slo.e2e_ms).is_some()) {
                saturation = Some(Saturation { best_step: best_step(&steps), reason });
                break;
            }
        }
    }
    if steps.is_empty() {
        return Err(LoadError::Cancelled);
    }
    if req.auto_sweep && saturation.is_none() {
        saturation = Some(Saturation {
            best_step: best_step(&steps),
            reason: format!("reached max_concurrency {} without saturating", req.max_concurrency),
        });
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    let headline = saturation.as_ref().map_or(steps.len() - 1, |s| s.best_step);
    let metrics = steps[headline].metrics.clone();
    let calibration = calibration(&steps, cpu.map(|c| 100.0 * c / wall.max(1e-9)), overhead);
    let environment = serde_json::json!({
        "tool": "rune bench-llm",
        "version": env!("CARGO_PKG_VERSION"),
        "host": hostname(),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "backend_url": req.backend_url,
        "backend_type": req.backend_type,
        "model": req.model,
        "backend_info": backend_info,
        "flags": serde_json::to_value(req).unwrap_or_default(),
        "dataset_sha256": plan.workload.sha256,
        "input_calibration": input_calibration,
        "started_unix_s": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64() - wall)
            .unwrap_or_default(),
    });
    Ok(LoadResult {
        schema: SCHEMA.to_owned(),
        source: "rune".to_owned(),
        metrics,
        steps,
        saturation,
        calibration,
        environment,
    })
}

/// The server's base URL without a trailing slash or `/v1`; only plain HTTP is driven.
fn base_url(url: &str) -> Result<String, LoadError> {
    let trimmed = url.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/v1").unwrap_or(trimmed);
    if trimmed.starts_with("https://") {
        return Err(LoadError::invalid(
            "backend_url",
            "https is not supported by the load generator (TLS would be measured too); use the server's plain \
             http:// port, e.g. through `kubectl port-forward`",
        ));
    }
    if !trimmed.starts_with("http://") || trimmed.len() <= "http://".len() {
        return Err(LoadError::invalid(
            "backend_url",
            format!("`{url}` must be an http:// URL, e.g. http://127.0.0.1:8000"),
        ));
    }
    Ok(trimmed.to_owned())
}

fn max_workers(req: &RunLlmLoadRequest) -> u64 {
    let closed = req.concurrency.iter().copied().max().unwrap_or(1);
    let open = if req.rate.is_empty() && !req.auto_sweep && !req.replay { 1 } else { req.max_concurrency };
    closed.max(open)
}

/// `GET /v1/models` (OpenAI) or `POST /api/show` (Ollama): the backend's self-description
/// for the fingerprint. A server that cannot be reached fails the run here, before any
/// load is sent, with the URL in the message.
async fn backend_info(
    client: &client::HttpClient,
    base: &str,
    api: Api,
    model: &str,
) -> Result<serde_json::Value, LoadError> {
    let request = match api {
        Api::OllamaChat => http::Request::post(format!("{base}/api/show"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(serde_json::json!({"model": model}).to_string()))),
        _ => http::Request::get(format!("{base}/v1/models")).body(http_body_util::Full::new(bytes::Bytes::new())),
    }
    .map_err(|e| LoadError::invalid("backend_url", format!("`{base}`: {e}")))?;
    let unreachable = |message: String| LoadError::Backend { url: base.to_owned(), message };
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| unreachable("no answer within 10 s; is the server up?".into()))?
        .map_err(|e| unreachable(format!("cannot connect ({e}); is the server running and the URL right?")))?;
    let status = response.status();
    let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .ok()
        .and_then(Result::ok)
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    if body.len() > MAX_BACKEND_INFO {
        return Ok(serde_json::json!({"status": status.as_u16(), "note": "info document too large; not kept"}));
    }
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Ok(serde_json::json!({"status": status.as_u16(), "document": doc}))
}

/// Builds synthetic prompts of exactly `input_tokens` by a local tokenizer's count
/// (offline: no probe request), reporting how many came out exact.
fn tokenizer_workload(
    req: &RunLlmLoadRequest,
    path: &std::path::Path,
    turns: u32,
) -> Result<(Workload, serde_json::Value), LoadError> {
    let tokenizer = tokens::LocalTokenizer::load(path)?;
    let pool = match req.requests {
        Some(n) => usize::try_from(n).unwrap_or(SYNTHETIC_POOL).min(SYNTHETIC_POOL),
        None => SYNTHETIC_POOL,
    };
    let (workload, exact) = tokenizer.synthetic(req.input_tokens, pool, turns, req.seed)?;
    let info = serde_json::json!({
        "target_tokens": req.input_tokens,
        "method": "local tokenizer",
        "tokenizer": tokenizer.path(),
        "prompts": workload.prompts.len(),
        "exact_prompts": exact,
        "exact": exact == workload.prompts.len(),
        "note": "counts the prompt text only; the server's prompt_tokens adds its chat template",
    });
    Ok((workload, info))
}

/// Builds synthetic prompts whose length the backend counts as exactly `input_tokens`:
/// one probe request (`max_tokens` 1) reports `prompt_tokens`, and the word count is
/// corrected until it matches (at most 6 probes; the outcome is reported either way).
async fn synthetic_workload(
    req: &RunLlmLoadRequest,
    client: &client::HttpClient,
    uri: &http::Uri,
    builder: &BodyBuilder,
    turns: u32,
) -> Result<(Workload, serde_json::Value), LoadError> {
    let target = req.input_tokens;
    let mut words = target;
    let mut reported = None;
    let mut parser = StreamParser::new(client::framing(builder.api));
    let mut gaps = Vec::new();
    let probe_builder = BodyBuilder { output_tokens: 1, ignore_eos: false, ..builder.clone() };
    let mut failures = 0;
    let mut probes = 0;
    while probes < 6 {
        let probe = Workload::synthetic(words, 1, 1, req.seed);
        let body = probe_builder.body(&probe.prompts[0], 0);
        let deadline = Instant::now() + Duration::from_secs_f64(req.timeout_s.min(120.0));
        let ex = exchange(client, uri, body, &mut parser, &mut gaps, deadline).await;
        if ex.outcome != Outcome::Ok && ex.usage.is_none() {
            // A flaky server is still worth measuring: only consecutive failures stop us.
            failures += 1;
            if failures < MAX_PROBE_FAILURES {
                continue;
            }
            return Err(LoadError::Backend {
                url: req.backend_url.clone(),
                message: format!(
                    "the prompt-length probe failed {failures} times in a row (last: {}); check the model name \
                     `{}` and the backend type",
                    ex.outcome.key(),
                    req.model
                ),
            });
        }
        failures = 0;
        probes += 1;
        let Some(p) = ex.usage.map(|u| u.prompt_tokens).filter(|p| *p > 0) else { break };
        reported = Some(p);
        if p == target {
            break;
        }
        // Scale the word count by the observed tokens per word; at least one word per step.
        let per_word = p as f64 / words as f64;
        let delta = ((target as f64 - p as f64) / per_word).round() as i64;
        let delta = if delta == 0 {
            if target > p {
                1
            } else {
                -1
            }
        } else {
            delta
        };
        words = (words as i64 + delta).max(1) as u64;
    }
    let pool = match req.requests {
        Some(n) => usize::try_from(n).unwrap_or(SYNTHETIC_POOL).min(SYNTHETIC_POOL),
        None => SYNTHETIC_POOL,
    };
    let info = serde_json::json!({
        "target_tokens": target,
        "words": words,
        "backend_reported_tokens": reported,
        "exact": reported == Some(target),
        "method": if reported.is_some() { "backend usage" } else { "words (backend reported no usage)" },
    });
    Ok((Workload::synthetic(words, pool, turns, req.seed), info))
}

/// True TTFT and ITL of the calibration server.
const CALIBRATION_TTFT: Duration = Duration::from_millis(20);
const CALIBRATION_ITL: Duration = Duration::from_millis(2);

/// Measures this client against an in-process `rune-sim` with known timing (20 ms TTFT,
/// 2 ms ITL, 16 tokens, 24 requests at concurrency 4): the added latency is the driver's
/// own overhead on this machine. About half a second; `None` if the simulator cannot bind.
async fn measure_overhead(cancel: &CancellationToken) -> Option<Overhead> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
    let addr = listener.local_addr().ok()?;
    let config =
        rune_sim::SimConfig { ttft: CALIBRATION_TTFT, itl: CALIBRATION_ITL, output_tokens: 16, ..Default::default() };
    let stop = CancellationToken::new();
    let server = {
        let stop = stop.clone();
        tokio::spawn(rune_sim::serve(listener, config, async move { stop.cancelled().await }))
    };
    let builder = BodyBuilder { api: Api::OpenAiChat, model: "sim-llama".into(), output_tokens: 16, ignore_eos: true };
    let workload = Workload::synthetic(16, 8, 1, 1);
    let plan = Arc::new(Plan {
        client: http_client(4),
        uri: format!("http://{addr}/v1/chat/completions").parse().ok()?,
        framing: sse::Framing::Sse,
        bodies: workload.prompts.iter().map(|p| builder.body(p, 0)).collect(),
        workload,
        builder,
        timeout: Duration::from_secs(10),
    });
    let spec = StepSpec {
        shape: StepShape::Closed { concurrency: 4 },
        bound: Bound::Requests(24),
        warmup: 4,
        cooldown: 0,
        cooldown_time: Duration::ZERO,
    };
    let rec = run_step(&plan, &spec, &Arc::new(Progress::default()), cancel).await;
    stop.cancel();
    let _ = server.await;
    let m = Metrics::compute(&rec, &Default::default());
    let true_ttft_ms = CALIBRATION_TTFT.as_secs_f64() * 1e3;
    let true_itl_ms = CALIBRATION_ITL.as_secs_f64() * 1e3;
    Some(Overhead {
        true_ttft_ms,
        true_itl_ms,
        ttft_added_ms: m.ttft_ms.p50? - true_ttft_ms,
        itl_added_ms: m.itl_ms.p50? - true_itl_ms,
        requests: m.requests.succeeded,
    })
}

/// Whether the last sweep step shows saturation; the reason if so.
fn saturated(steps: &[StepResult], has_slo: bool) -> Option<String> {
    let last = steps.last()?;
    let m = &last.metrics;
    if has_slo && m.slo_attainment.unwrap_or(0.0) < SATURATION_ATTAINMENT {
        return Some(format!(
            "{}: SLO attainment {:.1} % fell below {:.0} %",
            last.load,
            100.0 * m.slo_attainment.unwrap_or(0.0),
            100.0 * SATURATION_ATTAINMENT
        ));
    }
    if steps.len() < 2 {
        return None;
    }
    let best_before =
        steps[..steps.len() - 1].iter().filter_map(|s| s.metrics.request_throughput).fold(0.0f64, f64::max);
    let now = m.request_throughput.unwrap_or(0.0);
    (now < best_before * (1.0 + SATURATION_GAIN)).then(|| {
        format!(
            "{}: throughput {now:.2} req/s grew less than {:.0} % over the best earlier step ({best_before:.2} req/s)",
            last.load,
            100.0 * SATURATION_GAIN
        )
    })
}

/// The step with the highest goodput (request throughput when equal).
fn best_step(steps: &[StepResult]) -> usize {
    let key = |s: &StepResult| (s.metrics.goodput.unwrap_or(0.0), s.metrics.request_throughput.unwrap_or(0.0));
    (0..steps.len())
        .max_by(|&a, &b| key(&steps[a]).partial_cmp(&key(&steps[b])).unwrap_or(std::cmp::Ordering::Equal))
        .unwrap_or(0)
}

fn calibration(steps: &[StepResult], cpu_percent: Option<f64>, overhead: Option<Overhead>) -> Calibration {
    let max_lag = steps
        .iter()
        .filter_map(|s| s.metrics.schedule_lag_ms.max)
        .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))));
    let p99_lag = steps
        .iter()
        .filter_map(|s| s.metrics.schedule_lag_ms.p99)
        .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))));
    let cores = std::thread::available_parallelism().map(|n| n.get() as u64).ok();
    let peak_rss_mb = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .ok()
        .map(|u| u.max_rss() as f64 / 1024.0);
    let busy = cpu_percent.zip(cores).is_some_and(|(c, n)| c > 80.0 * n as f64);
    let lagging = p99_lag.is_some_and(|l| l > 10.0);
    let verdict = match (busy, lagging) {
        (false, false) => "ok: client CPU below 80 % of its cores and p99 schedule lag under 10 ms".to_owned(),
        (true, _) => "suspect: the client used over 80 % of its cores; results may describe the client".to_owned(),
        (false, true) => {
            "suspect: p99 schedule lag over 10 ms (in-flight cap reached or client overloaded); open-loop load was \
             lower than intended"
                .to_owned()
        }
    };
    Calibration {
        client_cpu_percent: cpu_percent,
        cores,
        max_schedule_lag_ms: max_lag,
        p99_schedule_lag_ms: p99_lag,
        peak_rss_mb,
        overhead,
        verdict,
    }
}

/// User + system CPU seconds of this process so far (all threads).
fn cpu_seconds() -> Option<f64> {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).ok()?;
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Some(secs(u.user_time()) + secs(u.system_time()))
}

fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(load: &str, rps: f64, attainment: f64) -> StepResult {
        StepResult {
            load: load.into(),
            concurrency: None,
            rate: None,
            metrics: Metrics {
                request_throughput: Some(rps),
                goodput: Some(rps * attainment),
                slo_attainment: Some(attainment),
                ..Default::default()
            },
        }
    }

    /// The sweep stops when throughput stops growing by 10 %, or an SLO breaks.
    #[test]
    fn saturation_rules() {
        let growing = [step("c=1", 10.0, 1.0), step("c=2", 19.0, 1.0)];
        assert_eq!(saturated(&growing, false), None);
        let flat = [step("c=1", 10.0, 1.0), step("c=2", 19.0, 1.0), step("c=4", 20.0, 1.0)];
        assert!(saturated(&flat, false).unwrap().contains("grew less than 10 %"));
        assert_eq!(best_step(&flat), 2);
        let slo = [step("c=1", 10.0, 1.0), step("c=2", 19.0, 0.5)];
        assert!(saturated(&slo, true).unwrap().contains("SLO attainment"));
        assert_eq!(best_step(&slo), 0);
    }

    /// Base URLs: trailing slash and /v1 dropped; https and junk refused naming the field.
    #[test]
    fn base_urls() {
        assert_eq!(base_url("http://h:8000/v1/").unwrap(), "http://h:8000");
        for bad in ["https://h", "ftp://h", "http://", "h:8000"] {
            assert!(base_url(bad).unwrap_err().to_string().starts_with("backend_url:"), "{bad}");
        }
    }
}
