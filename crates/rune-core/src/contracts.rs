//! Request bodies of RUNE's job kinds, with the original field names and defaults.
//!
//! Two generations of the original client exist: rune-bench 0.0.0a5 sends flat
//! provisioning fields (`vastai`, `template_hash`, `min_dph`, …) and later versions send
//! `provisioning: {vastai: {…}}`. Both are accepted and normalised into one shape, so a
//! stored request always reads the same. Every request is validated in full at submit
//! time and every problem is reported at once (see [`crate::validate`]).

use crate::job::JobKind;
use crate::validate::{FieldReader, ValidationErrors};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Maximum model name length.
pub const MAX_MODEL_LEN: usize = 128;
/// Maximum question length, in characters.
pub const MAX_QUESTION_LEN: usize = 100_000;
/// Maximum backend URL length.
pub const MAX_BACKEND_URL_LEN: usize = 2048;
/// Maximum Vast.ai template hash length.
pub const MAX_TEMPLATE_HASH_LEN: usize = 256;
/// Maximum kubeconfig path length.
pub const MAX_KUBECONFIG_LEN: usize = 4096;
/// Maximum agent name length.
pub const MAX_AGENT_LEN: usize = 64;
/// Maximum backend type length.
pub const MAX_BACKEND_TYPE_LEN: usize = 64;
/// Maximum suite name or path length.
pub const MAX_SUITE_LEN: usize = 256;

/// The question asked when none is given (the original's default).
pub const DEFAULT_QUESTION: &str = "What is unhealthy in this Kubernetes cluster?";
/// The model used when none is given (the original's default).
pub const DEFAULT_MODEL: &str = "llama3.1:8b";
/// The original's default Vast.ai template.
pub const DEFAULT_TEMPLATE_HASH: &str = "c166c11f035d3a97871a23bd32ca6aba";
/// Backend protocols RUNE speaks.
pub const BACKEND_TYPES: [&str; 2] = ["ollama", "openai"];

/// Vast.ai provisioning parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VastAiProvisioning {
    /// Vast.ai template to start.
    pub template_hash: String,
    /// Lowest acceptable price, dollars per hour.
    pub min_dph: f64,
    /// Highest acceptable price, dollars per hour.
    pub max_dph: f64,
    /// Minimum host reliability, 0..1.
    pub reliability: f64,
    /// Destroy the instance when the job ends.
    pub stop_instance: bool,
}

/// Where the model runs when it is not an existing server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Provisioning {
    /// Rent a GPU on Vast.ai.
    pub vastai: Option<VastAiProvisioning>,
}

/// `agentic-agent`: ask one agent one question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunAgenticAgentRequest {
    /// The question.
    pub question: String,
    /// Model name as the backend knows it.
    pub model: String,
    /// Backend base URL.
    pub backend_url: Option<String>,
    /// Load the model before asking.
    pub backend_warmup: bool,
    /// Seconds to wait for warm-up.
    pub backend_warmup_timeout: u64,
    /// Backend protocol.
    pub backend_type: String,
    /// Kubeconfig path for agents that inspect a cluster.
    pub kubeconfig: Option<String>,
    /// Agent name.
    pub agent: String,
}

/// `benchmark`: provision or reuse a backend, run an agent, score, tear down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunBenchmarkRequest {
    /// Provisioning, when the backend is not an existing server.
    pub provisioning: Option<Provisioning>,
    /// Backend base URL (required without provisioning).
    pub backend_url: Option<String>,
    /// The single question asked when no suite is given.
    pub question: String,
    /// Model name.
    pub model: String,
    /// Load the model before asking.
    pub backend_warmup: bool,
    /// Seconds to wait for warm-up.
    pub backend_warmup_timeout: u64,
    /// Kubeconfig path.
    pub kubeconfig: String,
    /// Require hardware attestation before running.
    pub attestation_required: bool,
    /// Backend protocol.
    pub backend_type: String,
    /// Agent name (the original always used holmes).
    pub agent: String,
    /// Suite name or path; without it the single `question` is asked.
    pub suite: Option<String>,
    /// How many times each case runs.
    pub repetitions: u64,
    /// Pass mark for the mean score, 0..1.
    pub threshold: Option<f64>,
    /// Model (on the same backend) that grades answers against each case's rubric: an
    /// LLM judge, on top of the deterministic score. None: rubric-only cases stay unscored.
    pub judge_model: Option<String>,
}

/// `llm-instance`: provision or check an LLM server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunLlmInstanceRequest {
    /// Provisioning, when the backend is not an existing server.
    pub provisioning: Option<Provisioning>,
    /// Backend base URL (required without provisioning).
    pub backend_url: Option<String>,
    /// Backend protocol.
    pub backend_type: String,
}

/// `cost-estimate`: pre-flight cost estimate (the original's fields and defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CostEstimationRequest {
    /// Price a Vast.ai rental.
    pub vastai: bool,
    /// Price AWS.
    pub aws: bool,
    /// Price GCP.
    pub gcp: bool,
    /// Price Azure.
    pub azure: bool,
    /// Lowest Vast.ai price, $/h.
    pub min_dph: f64,
    /// Highest Vast.ai price, $/h.
    pub max_dph: f64,
    /// Price local hardware (energy + amortisation).
    pub local_hardware: bool,
    /// Local GPU power draw, watts.
    pub local_tdp_watts: f64,
    /// Local energy price, $/kWh.
    pub local_energy_rate_kwh: f64,
    /// Local hardware purchase price, $.
    pub local_hardware_purchase_price: f64,
    /// Local hardware lifespan, years.
    pub local_hardware_lifespan_years: f64,
    /// Model to price.
    pub model: String,
    /// Expected run length, seconds.
    pub estimated_duration_seconds: u64,
}

/// `suite`: a matrix of agents × models over one suite, compared in one report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunSuiteRequest {
    /// Suite name or path (required).
    pub suite: String,
    /// Agents compared (default `["llm"]`).
    pub agents: Vec<String>,
    /// Models compared (at least one).
    pub models: Vec<String>,
    /// Backend base URL.
    pub backend_url: String,
    /// Backend protocol.
    pub backend_type: String,
    /// Runs of each case per agent × model.
    pub repetitions: u64,
    /// Pass mark of each combination's mean score.
    pub threshold: Option<f64>,
    /// Load each model before measuring it.
    pub backend_warmup: bool,
    /// Seconds allowed for each warm-up.
    pub backend_warmup_timeout: u64,
    /// Kubeconfig for agents that inspect a cluster.
    pub kubeconfig: String,
    /// LLM judge model (see [`RunBenchmarkRequest::judge_model`]).
    pub judge_model: Option<String>,
}

/// Most agents or models in one suite job (the matrix runs them all).
pub const MAX_MATRIX_AXIS: usize = 10;

/// Highest `concurrency` (and `max_concurrency`) of an `llm-load` job: beyond it a
/// single client host runs out of ports and file descriptors long before the server.
pub const MAX_LOAD_CONCURRENCY: u64 = 100_000;
/// Most steps of an `llm-load` sweep (`rate` or `concurrency` list).
pub const MAX_SWEEP_STEPS: usize = 64;
/// Highest target request rate of an `llm-load` job, requests per second.
pub const MAX_LOAD_RATE: f64 = 1_000_000.0;
/// Arrival processes of an open-loop `llm-load` job.
pub const ARRIVALS: [&str; 2] = ["constant", "poisson"];
/// Generation endpoints an `llm-load` job can drive.
pub const LOAD_ENDPOINTS: [&str; 2] = ["chat", "completions"];

/// Per-request service-level objectives of an `llm-load` job: a request is "good" when it
/// succeeded and meets every objective given (DistServe goodput).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoadSlo {
    /// Highest acceptable time to first token, ms.
    pub ttft_ms: Option<f64>,
    /// Highest acceptable mean inter-token latency of the request (its TPOT), ms.
    pub itl_ms: Option<f64>,
    /// Highest acceptable end-to-end latency, ms.
    pub e2e_ms: Option<f64>,
}

/// `llm-load`: an inference load test (`rune bench-llm`). Exactly one of `concurrency`
/// (closed loop), `rate` (open loop) or `auto_sweep` picks the load shape; exactly one of
/// `requests` or `duration_s` bounds each step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunLlmLoadRequest {
    /// Server base URL (`http://host:port`, without `/v1`).
    pub backend_url: String,
    /// Backend protocol: `openai` (SSE) or `ollama` (NDJSON).
    pub backend_type: String,
    /// Model name as the server knows it.
    pub model: String,
    /// OpenAI endpoint: `chat` (`/v1/chat/completions`) or `completions`.
    pub endpoint: String,
    /// Closed-loop concurrencies, one step each (a sweep when several).
    pub concurrency: Vec<u64>,
    /// Open-loop target rates in requests/s, one step each (a sweep when several).
    pub rate: Vec<f64>,
    /// Double the concurrency from 1 until throughput stops growing or an SLO breaks.
    pub auto_sweep: bool,
    /// Arrival process of open-loop steps: `constant` or `poisson`.
    pub arrivals: String,
    /// In-flight cap of open-loop steps (and the top of an automatic sweep).
    pub max_concurrency: u64,
    /// Requests per step (warm-up and cool-down included).
    pub requests: Option<u64>,
    /// Length of each step in seconds.
    pub duration_s: Option<f64>,
    /// Requests at the start of each step left out of the results.
    pub warmup: u64,
    /// Requests at the end of a `requests`-bounded step left out of the results.
    pub cooldown: u64,
    /// Seconds at the end of a `duration_s`-bounded step whose requests are left out.
    pub cooldown_s: f64,
    /// Prompt length in tokens of synthetic prompts.
    pub input_tokens: u64,
    /// Completion tokens asked of every request (`max_tokens`, with `ignore_eos`).
    pub output_tokens: u64,
    /// Send `ignore_eos`/`min_tokens` so the output length is exact where supported.
    pub ignore_eos: bool,
    /// JSONL prompt file (`{"prompt": ...}` per line, optional `timestamp_ms` to replay).
    pub prompts_file: Option<String>,
    /// A Hugging Face `tokenizer.json` (or its directory): synthetic prompts are built to
    /// exactly `input_tokens` by its count instead of the backend's reported usage.
    pub tokenizer: Option<String>,
    /// Replay the prompt file's `timestamp_ms` as the arrival schedule.
    pub replay: bool,
    /// Turns per session: each turn resends the history plus a new question.
    pub turns: u64,
    /// Seed of prompts and Poisson arrivals.
    pub seed: u64,
    /// Per-request timeout, seconds.
    pub timeout_s: f64,
    /// Goodput objectives.
    pub slo: LoadSlo,
    /// Measure the client's own overhead against an in-process simulated server first.
    pub calibrate: bool,
}

/// A validated request of any kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum JobRequest {
    /// `benchmark`.
    Benchmark(RunBenchmarkRequest),
    /// `agentic-agent`.
    AgenticAgent(RunAgenticAgentRequest),
    /// `llm-instance`.
    LlmInstance(RunLlmInstanceRequest),
    /// `cost-estimate`.
    CostEstimate(CostEstimationRequest),
    /// `suite`.
    Suite(RunSuiteRequest),
    /// `llm-load`.
    LlmLoad(RunLlmLoadRequest),
}

impl JobRequest {
    /// Parses and validates the body of a `kind` job, reporting every problem at once.
    pub fn parse(kind: JobKind, body: &Value) -> Result<Self, ValidationErrors> {
        match kind {
            JobKind::Benchmark => parse_benchmark(body).map(JobRequest::Benchmark),
            JobKind::AgenticAgent => parse_agentic(body).map(JobRequest::AgenticAgent),
            JobKind::LlmInstance => parse_llm_instance(body).map(JobRequest::LlmInstance),
            JobKind::CostEstimate => parse_cost(body).map(JobRequest::CostEstimate),
            JobKind::Suite => parse_suite(body).map(JobRequest::Suite),
            JobKind::LlmLoad => parse_llm_load(body).map(JobRequest::LlmLoad),
        }
    }

    /// The canonical JSON text stored in `jobs.request_json` (keys sorted).
    pub fn to_canonical_json(&self) -> String {
        // Serialising a typed struct cannot fail: no maps with non-string keys, no
        // non-finite floats (validation rejected them).
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        value.to_string()
    }
}

fn check_backend_url(r: &mut FieldReader<'_>, url: &Option<String>, required: bool) {
    match url {
        None if required => r.error(
            "backend_url",
            "is required unless provisioning.vastai is set; give the server's base URL, e.g. http://localhost:11434",
        ),
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() <= "http://".len() => {
            r.error("backend_url", "must be an http:// or https:// URL, e.g. http://localhost:11434")
        }
        // Requests are stored, listed, exported and echoed in events: a password here
        // would end up in all of them. The value is not repeated in the message.
        Some(u) if crate::config::url_has_password(u) => r.error(
            "backend_url",
            "contains a password (user:password@host); secrets are never accepted in job requests. Remove it and \
             give the key to the RUNE server in its environment instead (OPENAI_API_KEY, or the variable named by \
             RUNE_BACKEND_API_KEY_ENV)",
        ),
        _ => {}
    }
}

fn backend_type(r: &mut FieldReader<'_>) -> String {
    let t = r.string("backend_type", "ollama", MAX_BACKEND_TYPE_LEN, true);
    if !t.is_empty() && !BACKEND_TYPES.contains(&t.as_str()) {
        r.error("backend_type", format!("`{t}` is not supported; expected one of: {}", BACKEND_TYPES.join(", ")));
    }
    t
}

fn agent_name(r: &mut FieldReader<'_>) -> String {
    let agent = r.string("agent", "holmes", MAX_AGENT_LEN, true);
    if !agent.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        r.error("agent", "may contain only letters, digits, '-', '_' and '.'");
    }
    agent
}

fn vastai_fields(r: &mut FieldReader<'_>, stop_field: &'static str, stop_default: bool) -> VastAiProvisioning {
    let template_hash = r.string("template_hash", DEFAULT_TEMPLATE_HASH, MAX_TEMPLATE_HASH_LEN, true);
    let min_dph = r.f64_in("min_dph", 2.3, 0.0, 1_000.0);
    let max_dph = r.f64_in("max_dph", 3.0, 0.0, 1_000.0);
    let reliability = r.f64_in("reliability", 0.99, 0.0, 1.0);
    let stop_instance = r.bool(stop_field, stop_default);
    if min_dph > max_dph {
        r.error("min_dph", format!("{min_dph} is above max_dph {max_dph}; swap them or widen the range"));
    }
    VastAiProvisioning { template_hash, min_dph, max_dph, reliability, stop_instance }
}

/// Reads `provisioning` (nested form) or the 0.0.0a5 flat fields; both at once is an
/// error because they could disagree.
fn provisioning(r: &mut FieldReader<'_>, flat_stop_field: Option<&'static str>) -> Option<Provisioning> {
    let nested = r.raw("provisioning");
    let flat_vastai = r.bool("vastai", false);
    if let Some(nested) = nested {
        let mut p = FieldReader::new(nested, "provisioning");
        let vastai = p.raw("vastai").map(|v| {
            let mut vr = FieldReader::new(v, "provisioning.vastai");
            let out = vastai_fields(&mut vr, "stop_instance", false);
            p.absorb(vr);
            out
        });
        r.absorb(p);
        if flat_vastai {
            r.error("vastai", "give either `provisioning.vastai` or the flat `vastai` fields, not both");
        }
        return Some(Provisioning { vastai });
    }
    // Flat 0.0.0a5 form: the fields are present even when vastai is false; read them so
    // they are validated and not reported as unknown, but only keep them when enabled.
    let stop_field = flat_stop_field.unwrap_or("stop_instance");
    let fields = vastai_fields(r, stop_field, true);
    flat_vastai.then_some(Provisioning { vastai: Some(fields) })
}

fn needs_backend_url(p: &Option<Provisioning>) -> bool {
    !matches!(p, Some(Provisioning { vastai: Some(_) }))
}

fn parse_agentic(body: &Value) -> Result<RunAgenticAgentRequest, ValidationErrors> {
    let mut r = FieldReader::new(body, "");
    let question = r.string("question", DEFAULT_QUESTION, MAX_QUESTION_LEN, true);
    let model = r.string("model", DEFAULT_MODEL, MAX_MODEL_LEN, true);
    let backend_url = r.opt_string("backend_url", MAX_BACKEND_URL_LEN);
    check_backend_url(&mut r, &backend_url, true);
    let backend_warmup = r.bool("backend_warmup", true);
    let backend_warmup_timeout = r.u64_in("backend_warmup_timeout", 90, 1, 86_400);
    let backend_type = backend_type(&mut r);
    let kubeconfig = r.opt_string("kubeconfig", MAX_KUBECONFIG_LEN);
    let agent = agent_name(&mut r);
    r.finish()?;
    Ok(RunAgenticAgentRequest {
        question,
        model,
        backend_url,
        backend_warmup,
        backend_warmup_timeout,
        backend_type,
        kubeconfig,
        agent,
    })
}

fn parse_benchmark(body: &Value) -> Result<RunBenchmarkRequest, ValidationErrors> {
    let mut r = FieldReader::new(body, "");
    let provisioning = provisioning(&mut r, Some("vastai_stop_instance"));
    let backend_url = r.opt_string("backend_url", MAX_BACKEND_URL_LEN);
    check_backend_url(&mut r, &backend_url, needs_backend_url(&provisioning));
    let question = r.string("question", DEFAULT_QUESTION, MAX_QUESTION_LEN, true);
    let model = r.string("model", DEFAULT_MODEL, MAX_MODEL_LEN, true);
    let backend_warmup = r.bool("backend_warmup", true);
    let backend_warmup_timeout = r.u64_in("backend_warmup_timeout", 90, 1, 86_400);
    let kubeconfig = r.string("kubeconfig", "", MAX_KUBECONFIG_LEN, false);
    let attestation_required = r.bool("attestation_required", false);
    let backend_type = backend_type(&mut r);
    let agent = agent_name(&mut r);
    let suite = r.opt_string("suite", MAX_SUITE_LEN);
    let repetitions = r.u64_in("repetitions", 1, 1, 100);
    let threshold = r.raw("threshold").map(|_| r.f64_in("threshold", 0.0, 0.0, 1.0));
    let judge_model = r.opt_string("judge_model", MAX_MODEL_LEN).filter(|m| !m.trim().is_empty());
    r.finish()?;
    Ok(RunBenchmarkRequest {
        provisioning,
        backend_url,
        question,
        model,
        backend_warmup,
        backend_warmup_timeout,
        kubeconfig,
        attestation_required,
        backend_type,
        agent,
        suite,
        repetitions,
        threshold,
        judge_model,
    })
}

fn parse_llm_instance(body: &Value) -> Result<RunLlmInstanceRequest, ValidationErrors> {
    let mut r = FieldReader::new(body, "");
    let provisioning = provisioning(&mut r, None);
    let backend_url = r.opt_string("backend_url", MAX_BACKEND_URL_LEN);
    check_backend_url(&mut r, &backend_url, needs_backend_url(&provisioning));
    let backend_type = backend_type(&mut r);
    r.finish()?;
    Ok(RunLlmInstanceRequest { provisioning, backend_url, backend_type })
}

fn string_list(r: &mut FieldReader<'_>, name: &'static str, default: &[&str], max_len: usize) -> Vec<String> {
    let Some(raw) = r.raw(name) else {
        if default.is_empty() {
            // No default means the list is required: an empty matrix would run nothing
            // and "pass". (Found by the api_json fuzz target.)
            r.error(name, "is required: list at least one entry, e.g. [\"llama3.1:8b\"]");
        }
        return default.iter().map(|s| (*s).to_owned()).collect();
    };
    let Some(items) = raw.as_array() else {
        r.error(name, "expected a list of strings");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(s) if !s.trim().is_empty() && s.chars().count() <= max_len => out.push(s.to_owned()),
            _ => r.error(name, format!("entry {i} must be a non-empty string of at most {max_len} characters")),
        }
    }
    if out.is_empty() && items.is_empty() {
        r.error(name, "must list at least one entry");
    } else if out.len() > MAX_MATRIX_AXIS {
        r.error(
            name,
            format!(
                "lists {} entries; the most is {MAX_MATRIX_AXIS} (split the comparison into several jobs)",
                out.len()
            ),
        );
    }
    let mut seen = std::collections::HashSet::new();
    if out.iter().any(|x| !seen.insert(x.clone())) {
        r.error(name, "lists the same entry twice");
    }
    out
}

fn parse_suite(body: &Value) -> Result<RunSuiteRequest, ValidationErrors> {
    let mut r = FieldReader::new(body, "");
    let suite = r.string("suite", "", MAX_SUITE_LEN, true);
    let agents = string_list(&mut r, "agents", &["llm"], MAX_AGENT_LEN);
    let models = string_list(&mut r, "models", &[], MAX_MODEL_LEN);
    let backend_url = r.opt_string("backend_url", MAX_BACKEND_URL_LEN);
    check_backend_url(&mut r, &backend_url, true);
    let backend_type = backend_type(&mut r);
    let repetitions = r.u64_in("repetitions", 1, 1, 100);
    let threshold = r.raw("threshold").map(|_| r.f64_in("threshold", 0.0, 0.0, 1.0));
    let backend_warmup = r.bool("backend_warmup", true);
    let backend_warmup_timeout = r.u64_in("backend_warmup_timeout", 90, 1, 86_400);
    let kubeconfig = r.string("kubeconfig", "", MAX_KUBECONFIG_LEN, false);
    let judge_model = r.opt_string("judge_model", MAX_MODEL_LEN).filter(|m| !m.trim().is_empty());
    r.finish()?;
    Ok(RunSuiteRequest {
        suite,
        agents,
        models,
        backend_url: backend_url.unwrap_or_default(),
        backend_type,
        repetitions,
        threshold,
        backend_warmup,
        backend_warmup_timeout,
        kubeconfig,
        judge_model,
    })
}

fn parse_cost(body: &Value) -> Result<CostEstimationRequest, ValidationErrors> {
    let mut r = FieldReader::new(body, "");
    let req = CostEstimationRequest {
        vastai: r.bool("vastai", false),
        aws: r.bool("aws", false),
        gcp: r.bool("gcp", false),
        azure: r.bool("azure", false),
        min_dph: r.f64_in("min_dph", 0.0, 0.0, 1_000.0),
        max_dph: r.f64_in("max_dph", 0.0, 0.0, 1_000.0),
        local_hardware: r.bool("local_hardware", false),
        local_tdp_watts: r.f64_in("local_tdp_watts", 0.0, 0.0, 100_000.0),
        local_energy_rate_kwh: r.f64_in("local_energy_rate_kwh", 0.0, 0.0, 100.0),
        local_hardware_purchase_price: r.f64_in("local_hardware_purchase_price", 0.0, 0.0, 10_000_000.0),
        local_hardware_lifespan_years: r.f64_in("local_hardware_lifespan_years", 0.0, 0.0, 50.0),
        model: r.string("model", "", MAX_MODEL_LEN, false),
        estimated_duration_seconds: r.u64_in("estimated_duration_seconds", 3600, 1, 30 * 86_400),
    };
    if req.min_dph > req.max_dph {
        r.error("min_dph", format!("{} is above max_dph {}; swap them", req.min_dph, req.max_dph));
    }
    if req.local_hardware && req.local_hardware_lifespan_years == 0.0 && req.local_hardware_purchase_price > 0.0 {
        r.error("local_hardware_lifespan_years", "must be above 0 when a purchase price is given");
    }
    r.finish()?;
    Ok(req)
}

fn number_list(r: &mut FieldReader<'_>, name: &'static str, min: f64, max: f64, integer: bool) -> Vec<f64> {
    let Some(raw) = r.raw(name) else { return Vec::new() };
    let items: Vec<&Value> = match raw {
        Value::Array(items) => items.iter().collect(),
        Value::Number(_) => vec![raw],
        _ => {
            r.error(name, "expected a number or a list of numbers");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_f64() {
            Some(x) if x >= min && x <= max && (!integer || x.fract() == 0.0) => out.push(x),
            _ => r.error(
                name,
                format!(
                    "entry {i} must be {} between {min} and {max}, got {item}",
                    if integer { "a whole number" } else { "a number" }
                ),
            ),
        }
    }
    if out.len() > MAX_SWEEP_STEPS {
        r.error(name, format!("lists {} steps; the most is {MAX_SWEEP_STEPS}", out.len()));
    }
    out
}

fn parse_slo(r: &mut FieldReader<'_>) -> LoadSlo {
    let Some(raw) = r.raw("slo") else { return LoadSlo::default() };
    let mut s = FieldReader::new(raw, "slo");
    let objective = |s: &mut FieldReader<'_>, name: &'static str| {
        s.raw(name).is_some().then(|| s.f64_in(name, 1.0, 0.001, 86_400_000.0))
    };
    let ttft_ms = objective(&mut s, "ttft_ms");
    let itl_ms = objective(&mut s, "itl_ms");
    let e2e_ms = objective(&mut s, "e2e_ms");
    let slo = LoadSlo { ttft_ms, itl_ms, e2e_ms };
    r.absorb(s);
    slo
}

fn parse_llm_load(body: &Value) -> Result<RunLlmLoadRequest, ValidationErrors> {
    let mut r = FieldReader::new(body, "");
    let backend_url = r.opt_string("backend_url", MAX_BACKEND_URL_LEN);
    check_backend_url(&mut r, &backend_url, true);
    let backend_type = r.string("backend_type", "openai", MAX_BACKEND_TYPE_LEN, true);
    if !BACKEND_TYPES.contains(&backend_type.as_str()) {
        r.error(
            "backend_type",
            format!("`{backend_type}` is not supported; expected one of: {}", BACKEND_TYPES.join(", ")),
        );
    }
    let model = r.string("model", "", MAX_MODEL_LEN, true);
    let endpoint = r.string("endpoint", "chat", 32, true);
    if !LOAD_ENDPOINTS.contains(&endpoint.as_str()) {
        r.error("endpoint", format!("`{endpoint}` is not supported; expected one of: {}", LOAD_ENDPOINTS.join(", ")));
    }
    let concurrency: Vec<u64> = number_list(&mut r, "concurrency", 1.0, MAX_LOAD_CONCURRENCY as f64, true)
        .into_iter()
        .map(|x| x as u64)
        .collect();
    let rate = number_list(&mut r, "rate", f64::MIN_POSITIVE, MAX_LOAD_RATE, false);
    let auto_sweep = r.bool("auto_sweep", false);
    let arrivals = r.string("arrivals", "constant", 16, true);
    if !ARRIVALS.contains(&arrivals.as_str()) {
        r.error("arrivals", format!("`{arrivals}` is not supported; expected one of: {}", ARRIVALS.join(", ")));
    }
    let max_concurrency = r.u64_in("max_concurrency", 1024, 1, MAX_LOAD_CONCURRENCY);
    let requests = r.raw("requests").map(|_| r.u64_in("requests", 1, 1, 100_000_000));
    let duration_s = r.raw("duration_s").map(|_| r.f64_in("duration_s", 1.0, 0.001, 30.0 * 86_400.0));
    let warmup = r.u64_in("warmup", 0, 0, 100_000_000);
    let cooldown = r.u64_in("cooldown", 0, 0, 100_000_000);
    let cooldown_s = r.f64_in("cooldown_s", 0.0, 0.0, 30.0 * 86_400.0);
    let input_tokens = r.u64_in("input_tokens", 128, 1, 1_000_000);
    let output_tokens = r.u64_in("output_tokens", 128, 1, 1_000_000);
    let ignore_eos = r.bool("ignore_eos", true);
    let prompts_file = r.opt_string("prompts_file", MAX_KUBECONFIG_LEN).filter(|p| !p.trim().is_empty());
    let tokenizer = r.opt_string("tokenizer", MAX_KUBECONFIG_LEN).filter(|p| !p.trim().is_empty());
    let replay = r.bool("replay", false);
    let turns = r.u64_in("turns", 1, 1, 1_000);
    let seed = r.u64_in("seed", 42, 0, u64::MAX);
    let timeout_s = r.f64_in("timeout_s", 300.0, 0.001, 86_400.0);
    let slo = parse_slo(&mut r);
    let calibrate = r.bool("calibrate", true);
    let shapes = usize::from(!concurrency.is_empty()) + usize::from(!rate.is_empty()) + usize::from(auto_sweep);
    let replay_shape = replay && shapes == 0;
    if shapes != 1 && !replay_shape {
        r.error(
            "concurrency",
            "give exactly one load shape: `concurrency` (closed loop), `rate` (open loop) or `auto_sweep`",
        );
    }
    if tokenizer.is_some() && prompts_file.is_some() {
        r.error("tokenizer", "sizes synthetic prompts; a `prompts_file` brings its own, so give one or the other");
    }
    if replay && prompts_file.is_none() {
        r.error("replay", "needs `prompts_file` with a `timestamp_ms` on every line");
    }
    if replay && shapes != 0 {
        r.error("replay", "takes its arrival times from the trace; drop `concurrency`, `rate` and `auto_sweep`");
    }
    match (requests, duration_s) {
        (Some(_), Some(_)) => r.error("requests", "give either `requests` or `duration_s`, not both"),
        (None, None) if !replay => r.error("requests", "give `requests` (a count) or `duration_s` (seconds)"),
        _ => {}
    }
    if requests.is_some_and(|n| warmup.saturating_add(cooldown) >= n) {
        r.error("warmup", "warmup + cooldown must leave at least one measured request; raise `requests`");
    }
    if duration_s.is_some() && cooldown > 0 {
        r.error("cooldown", "counts requests; with `duration_s` use `cooldown_s`");
    }
    if duration_s.is_some_and(|d| cooldown_s >= d) {
        r.error("cooldown_s", "must be shorter than `duration_s`");
    }
    if backend_type == "ollama" && endpoint != "chat" {
        r.error("endpoint", "Ollama is driven through /api/chat; use `chat`");
    }
    r.finish()?;
    Ok(RunLlmLoadRequest {
        backend_url: backend_url.unwrap_or_default(),
        backend_type,
        model,
        endpoint,
        concurrency,
        rate,
        auto_sweep,
        arrivals,
        max_concurrency,
        requests,
        duration_s,
        warmup,
        cooldown,
        cooldown_s,
        input_tokens,
        output_tokens,
        ignore_eos,
        prompts_file,
        tokenizer,
        replay,
        turns,
        seed,
        timeout_s,
        slo,
        calibrate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(kind: JobKind, body: Value) -> Vec<String> {
        JobRequest::parse(kind, &body).unwrap_err().fields().iter().map(|e| e.field.clone()).collect()
    }

    /// Defaults match the original contracts when only the required field is given.
    #[test]
    fn agentic_defaults() {
        let JobRequest::AgenticAgent(r) =
            JobRequest::parse(JobKind::AgenticAgent, &json!({"backend_url": "http://o:11434"})).unwrap()
        else {
            panic!("wrong kind")
        };
        assert_eq!(r.question, DEFAULT_QUESTION);
        assert_eq!(r.model, DEFAULT_MODEL);
        assert!(r.backend_warmup);
        assert_eq!(r.backend_warmup_timeout, 90);
        assert_eq!(r.backend_type, "ollama");
        assert_eq!(r.agent, "holmes");
    }

    /// Length limits: model 128, question 100 000, backend_url 2048; all reported at once.
    #[test]
    fn length_limits_all_reported() {
        let body = json!({
            "model": "m".repeat(129),
            "question": "q".repeat(100_001),
            "backend_url": format!("http://{}", "h".repeat(2048)),
        });
        assert_eq!(fields(JobKind::AgenticAgent, body), ["question", "model", "backend_url", "backend_url"]);
        let ok = json!({"model": "m".repeat(128), "question": "q".repeat(100_000), "backend_url": "http://x"});
        assert!(JobRequest::parse(JobKind::AgenticAgent, &ok).is_ok());
    }

    /// The 0.0.0a5 flat body (as its CLI sends it) is accepted and normalised.
    #[test]
    fn benchmark_flat_0_0_0a5_form() {
        let body = json!({
            "vastai": true, "template_hash": "abc", "min_dph": 1.0, "max_dph": 2.0, "reliability": 0.9,
            "backend_url": null, "question": "q", "model": "m", "backend_warmup": false,
            "backend_warmup_timeout": 5, "kubeconfig": "/k", "vastai_stop_instance": true,
            "attestation_required": false, "backend_type": "ollama"
        });
        let JobRequest::Benchmark(r) = JobRequest::parse(JobKind::Benchmark, &body).unwrap() else { panic!() };
        let v = r.provisioning.unwrap().vastai.unwrap();
        assert_eq!((v.template_hash.as_str(), v.min_dph, v.max_dph, v.stop_instance), ("abc", 1.0, 2.0, true));
        // Flat form with vastai off needs a URL and keeps no provisioning.
        let off = json!({"vastai": false, "template_hash": "abc", "min_dph": 1.0, "max_dph": 2.0,
                         "reliability": 0.9, "backend_url": "http://o:11434"});
        let JobRequest::Benchmark(r) = JobRequest::parse(JobKind::Benchmark, &off).unwrap() else { panic!() };
        assert!(r.provisioning.is_none());
    }

    /// The nested form validates inside `provisioning.vastai` with full paths.
    #[test]
    fn benchmark_nested_errors_have_paths() {
        let body = json!({"provisioning": {"vastai": {"min_dph": 5.0, "max_dph": 1.0, "reliability": 2, "x": 1}}});
        let f = fields(JobKind::Benchmark, body);
        assert_eq!(f, ["provisioning.vastai.reliability", "provisioning.vastai.min_dph", "provisioning.vastai.x"]);
    }

    /// Missing backend URL, unknown backend type, bad agent and unknown fields together.
    #[test]
    fn benchmark_many_errors() {
        let body = json!({"backend_type": "bedrock", "agent": "a b", "repetitions": 0, "threshold": 1.5, "nope": 1});
        assert_eq!(
            fields(JobKind::Benchmark, body),
            ["backend_url", "backend_type", "agent", "repetitions", "threshold", "nope"]
        );
    }

    /// Wrong JSON types name the expected type.
    #[test]
    fn wrong_types() {
        let errs = JobRequest::parse(
            JobKind::AgenticAgent,
            &json!({"backend_url": 3, "backend_warmup": "yes", "backend_warmup_timeout": -1}),
        )
        .unwrap_err();
        let text = errs.to_string();
        assert!(text.contains("backend_url: expected a string, found a number"), "{text}");
        assert!(text.contains("backend_warmup: expected true or false"), "{text}");
        assert!(text.contains("backend_warmup_timeout: -1 is out of range"), "{text}");
    }

    /// A password in a backend URL is refused without being repeated, for every kind
    /// that takes one; a user name alone is not a secret.
    #[test]
    fn backend_url_with_password_is_refused_without_echo() {
        let secret = "http://admin:hunter2-pass@llm.internal:8000";
        for kind in [JobKind::Benchmark, JobKind::AgenticAgent, JobKind::LlmInstance] {
            let errs = JobRequest::parse(kind, &json!({"backend_url": secret, "question": "q", "model": "m"}))
                .expect_err("refused");
            let text = errs.to_string();
            assert!(text.contains("backend_url: contains a password"), "{kind}: {text}");
            assert!(!text.contains("hunter2"), "{kind} echoes the secret: {text}");
        }
        let user_only = json!({"backend_url": "http://admin@llm.internal:8000"});
        assert!(JobRequest::parse(JobKind::LlmInstance, &user_only).is_ok());
    }

    /// Cost requests accept the original's all-default body and reject bad numbers.
    #[test]
    fn cost_estimate() {
        assert!(JobRequest::parse(JobKind::CostEstimate, &json!({})).is_ok());
        assert_eq!(
            fields(JobKind::CostEstimate, json!({"min_dph": 3, "max_dph": 1, "estimated_duration_seconds": 0})),
            ["estimated_duration_seconds", "min_dph"]
        );
    }

    /// Canonical JSON has sorted keys, so equal requests hash equally.
    #[test]
    fn canonical_json_sorted() {
        let r = JobRequest::parse(JobKind::LlmInstance, &json!({"backend_url": "http://o"})).unwrap();
        assert_eq!(r.to_canonical_json(), r#"{"backend_type":"ollama","backend_url":"http://o","provisioning":null}"#);
    }

    /// Suite matrices: models required, agents default to llm, bounds and duplicates
    /// reported with the field.
    #[test]
    fn suite_matrix() {
        let ok = json!({"suite": "sre-basics", "models": ["a", "b"], "backend_url": "http://o:11434"});
        let JobRequest::Suite(r) = JobRequest::parse(JobKind::Suite, &ok).unwrap() else { panic!() };
        assert_eq!(r.agents, ["llm"]);
        assert_eq!(r.models, ["a", "b"]);
        let many: Vec<String> = (0..11).map(|i| format!("m{i}")).collect();
        assert_eq!(
            fields(JobKind::Suite, json!({"models": many, "agents": ["x", "x"], "backend_url": "http://o"})),
            ["suite", "agents", "models"]
        );
        assert_eq!(fields(JobKind::Suite, json!({"suite": "s", "models": [], "backend_url": "http://o"})), ["models"]);
        assert_eq!(fields(JobKind::Suite, json!({"suite": "s", "models": "m", "backend_url": "http://o"})), ["models"]);
        // Missing is not empty-and-fine: a matrix without models would run nothing.
        assert_eq!(fields(JobKind::Suite, json!({"suite": "s", "backend_url": "http://o"})), ["models"]);
    }

    /// An `llm-load` body with only the required fields gets the documented defaults.
    #[test]
    fn llm_load_defaults() {
        let body = json!({"backend_url": "http://127.0.0.1:8000", "model": "m", "concurrency": 4, "requests": 10});
        let JobRequest::LlmLoad(r) = JobRequest::parse(JobKind::LlmLoad, &body).unwrap() else { panic!("wrong kind") };
        assert_eq!(r.concurrency, [4]);
        assert!(r.rate.is_empty());
        assert_eq!((r.backend_type.as_str(), r.endpoint.as_str(), r.arrivals.as_str()), ("openai", "chat", "constant"));
        assert_eq!((r.input_tokens, r.output_tokens, r.turns, r.seed), (128, 128, 1, 42));
        assert_eq!(r.requests, Some(10));
        assert!(r.ignore_eos && r.calibrate);
        assert_eq!(r.slo, LoadSlo::default());
        let sweep = json!({"backend_url": "http://o", "model": "m", "rate": [1, 2.5], "duration_s": 5,
                           "arrivals": "poisson", "slo": {"ttft_ms": 200, "e2e_ms": 1000}});
        let JobRequest::LlmLoad(r) = JobRequest::parse(JobKind::LlmLoad, &sweep).unwrap() else { panic!() };
        assert_eq!(r.rate, [1.0, 2.5]);
        assert_eq!(r.slo, LoadSlo { ttft_ms: Some(200.0), itl_ms: None, e2e_ms: Some(1000.0) });
    }

    /// Load shape and bound must each be given exactly once; every problem is named.
    #[test]
    fn llm_load_shape_and_bound_errors() {
        assert_eq!(fields(JobKind::LlmLoad, json!({})), ["backend_url", "model", "concurrency", "requests"]);
        assert_eq!(
            fields(
                JobKind::LlmLoad,
                json!({"backend_url": "http://o", "model": "m", "concurrency": 2, "rate": 3, "requests": 5, "duration_s": 2})
            ),
            ["concurrency", "requests"]
        );
        assert_eq!(
            fields(
                JobKind::LlmLoad,
                json!({"backend_url": "http://o", "model": "m", "concurrency": 1, "requests": 4,
                                            "warmup": 2, "cooldown": 2})
            ),
            ["warmup"]
        );
        assert_eq!(
            fields(JobKind::LlmLoad, json!({"backend_url": "http://o", "model": "m", "replay": true})),
            ["replay"]
        );
        assert_eq!(
            fields(
                JobKind::LlmLoad,
                json!({"backend_url": "http://o", "model": "m", "concurrency": 1, "requests": 4,
                       "tokenizer": "tok.json", "prompts_file": "p.jsonl"})
            ),
            ["tokenizer"]
        );
    }

    /// Bad values in lists, enums and the SLO object are reported with their field path.
    #[test]
    fn llm_load_value_errors() {
        let body = json!({"backend_url": "ftp://o", "model": "m", "backend_type": "grpc", "endpoint": "embed",
                          "concurrency": [0, 2.5, "x"], "arrivals": "gamma", "requests": 3,
                          "slo": {"ttft_ms": "fast", "p99": 1}});
        let f = fields(JobKind::LlmLoad, body);
        assert_eq!(
            f,
            [
                "backend_url",
                "backend_type",
                "endpoint",
                "concurrency",
                "concurrency",
                "concurrency",
                "arrivals",
                "slo.ttft_ms",
                "slo.p99",
                "concurrency"
            ]
        );
        let text = JobRequest::parse(
            JobKind::LlmLoad,
            &json!({"backend_url": "http://o", "model": "m", "rate": -1, "duration_s": 1}),
        )
        .unwrap_err()
        .to_string();
        assert!(text.contains("rate: entry 0 must be a number between"), "{text}");
        assert!(text.contains("concurrency: give exactly one load shape"), "{text}");
    }
}
