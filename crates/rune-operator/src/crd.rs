//! The `RuneBenchmark` custom resource (`bench.rune.ai/v1alpha1`), defined once in Rust:
//! the CRD YAML, the chart's copy and the controller's types all come from these structs,
//! so the three copies the original shipped can no longer disagree.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every RUNE operator resource; RBAC must name exactly this group.
pub const GROUP: &str = "bench.rune.ai";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";
/// The resource name used in URLs and RBAC rules.
pub const PLURAL: &str = "runebenchmarks";
/// Annotation the E-Stop controller puts on each benchmark it suspended, so release
/// resumes exactly those and never one a user suspended by hand.
pub const ESTOP_SUSPENDED_ANNOTATION: &str = "bench.rune.ai/estop-suspended";
/// Annotation holding when the E-Stop released a benchmark: fires missed before it are not
/// caught up (an emergency stop must not end in a burst of runs).
pub const ESTOP_RELEASED_ANNOTATION: &str = "bench.rune.ai/estop-released-at";

/// Five cron fields or an `@daily`-style macro, optionally prefixed by `TZ=Zone` or
/// `CRON_TZ=Zone`. Full validation
/// (ranges, names, zones) happens in the controller with `rune-core`'s parser, which sets
/// `Ready=False InvalidSchedule` with the parser's message.
pub const CRON_PATTERN: &str = r"^\s*((CRON_)?TZ=[A-Za-z0-9_+/-]+\s+)?(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[0-9A-Za-z*?,/-]+(\s+[0-9A-Za-z*?,/-]+){4})\s*$";

/// What a `RuneBenchmark` asks for: which workflow to run against which RUNE API, when,
/// and under which gates.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "bench.rune.ai",
    version = "v1alpha1",
    kind = "RuneBenchmark",
    plural = "runebenchmarks",
    singular = "runebenchmark",
    shortname = "rbm",
    category = "rune",
    namespaced,
    status = "RuneBenchmarkStatus",
    printcolumn = r#"{"name":"Workflow","type":"string","jsonPath":".spec.workflow"}"#,
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Suspended","type":"boolean","jsonPath":".spec.suspend"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"LastRun","type":"string","jsonPath":".status.lastRun.status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.workflow != 'agentic-agent' || has(self.backendUrl)",
     "message": "agentic-agent needs backendUrl (the LLM server the agent talks to)"},
    {"rule": "!has(self.provisioning) || !has(self.provisioning.vastai) || !has(self.provisioning.vastai.minDph) || !has(self.provisioning.vastai.maxDph) || self.provisioning.vastai.minDph <= self.provisioning.vastai.maxDph",
     "message": "provisioning.vastai.minDph must not exceed maxDph"}
]))]
pub struct RuneBenchmarkSpec {
    /// RUNE API base URL, e.g. http://rune-api.rune.svc:8080.
    #[schemars(extend("pattern" = "^https?://.+"))]
    pub api_base_url: String,
    /// Secret holding the API token under key `token`: `name` or `namespace/name` (the
    /// namespace must be the benchmark's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token_secret_ref: Option<String>,
    /// Tenant sent as X-Tenant-ID (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The RUNE job kind to submit.
    pub workflow: Workflow,
    /// Agent for agentic-agent and benchmark (e.g. holmes, k8sgpt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Suite name for the benchmark workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// Question put to the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// Model, e.g. llama3.1:8b.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// LLM backend URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = "^https?://.+"))]
    pub backend_url: Option<String>,
    /// LLM backend protocol (default ollama).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_type: Option<BackendType>,
    /// Cloud region (Bedrock-style backends, cost estimates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Skip TLS verification toward the RUNE API (test clusters only).
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_tls: bool,
    /// Five-field cron (optionally `TZ=Zone ` first). Without it the benchmark runs once on
    /// creation and again on every spec change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = CRON_PATTERN))]
    pub schedule: Option<String>,
    /// Stop scheduling new runs (running ones are still followed).
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
    /// What to do when a fire is due while a run is active (default Forbid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    /// A fire more than this many seconds late is skipped instead of started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub starting_deadline_seconds: Option<u64>,
    /// Succeeded runs kept in status.history (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub successful_runs_history_limit: Option<u32>,
    /// Failed runs kept in status.history (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub failed_runs_history_limit: Option<u32>,
    /// A run still going after this many seconds is cancelled and recorded as timed out
    /// (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800))]
    pub timeout_seconds: Option<u64>,
    /// First retry delay after an error; doubles per consecutive error up to one hour
    /// (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub backoff_seconds: Option<u64>,
    /// Warm the model before the run (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_warmup: Option<bool>,
    /// Warmup timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub backend_warmup_timeout_seconds: Option<u64>,
    /// How often a running job is polled (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 60))]
    pub poll_interval_seconds: Option<u64>,
    /// Kubeconfig path passed to agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// Provision a GPU backend before the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<Provisioning>,
    /// Pre-flight cost estimate; the run is refused when the API's confidence is below 0.95.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_estimation: Option<CostEstimation>,
    /// Spending cap checked against the API's FinOps projection before each run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Require SLSA provenance (benchmark workflow).
    #[serde(default, skip_serializing_if = "is_false")]
    pub attestation_required: bool,
    /// An object (e.g. a Crossplane claim) that must be Synced=True and Ready=True first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_ref: Option<InfrastructureRef>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The RUNE job kinds a benchmark may submit; anything else is rejected at admission.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Workflow {
    /// One agent, one question.
    #[serde(rename = "agentic-agent")]
    AgenticAgent,
    /// A scored benchmark.
    #[serde(rename = "benchmark")]
    Benchmark,
    /// Provision or check an LLM instance.
    #[serde(rename = "llm-instance")]
    LlmInstance,
}

impl Workflow {
    /// The job kind in `POST /v1/jobs/{kind}`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Workflow::AgenticAgent => "agentic-agent",
            Workflow::Benchmark => "benchmark",
            Workflow::LlmInstance => "llm-instance",
        }
    }
}

/// LLM backend protocols the API accepts (`rune_core::contracts::BACKEND_TYPES`).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendType {
    /// Ollama's API.
    Ollama,
    /// OpenAI-compatible API.
    Openai,
}

impl BackendType {
    /// The API's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            BackendType::Ollama => "ollama",
            BackendType::Openai => "openai",
        }
    }
}

/// Kubernetes CronJob's concurrency policies, with the same meaning.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum ConcurrencyPolicy {
    /// Skip a fire while a run is active.
    #[default]
    Forbid,
    /// Run alongside active runs.
    Allow,
    /// Cancel active runs, then start.
    Replace,
}

impl From<ConcurrencyPolicy> for rune_core::records::ConcurrencyPolicy {
    fn from(p: ConcurrencyPolicy) -> Self {
        match p {
            ConcurrencyPolicy::Forbid => rune_core::records::ConcurrencyPolicy::Forbid,
            ConcurrencyPolicy::Allow => rune_core::records::ConcurrencyPolicy::Allow,
            ConcurrencyPolicy::Replace => rune_core::records::ConcurrencyPolicy::Replace,
        }
    }
}

/// Backend provisioning options.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
pub struct Provisioning {
    /// Rent a Vast.ai instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vastai: Option<VastAiProvisioning>,
}

/// Vast.ai offer filter.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VastAiProvisioning {
    /// Vast.ai template hash.
    #[schemars(length(min = 1))]
    pub template_hash: String,
    /// Lowest dollars per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1000.0))]
    pub min_dph: Option<f64>,
    /// Highest dollars per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1000.0))]
    pub max_dph: Option<f64>,
    /// Minimum host reliability, 0..1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub reliability: Option<f64>,
    /// Destroy the instance after the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_instance: Option<bool>,
}

/// Which cost drivers the pre-flight estimate prices.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct CostEstimation {
    /// Price Vast.ai.
    #[serde(default)]
    pub vastai: bool,
    /// Price AWS.
    #[serde(default)]
    pub aws: bool,
    /// Price GCP.
    #[serde(default)]
    pub gcp: bool,
    /// Price Azure.
    #[serde(default)]
    pub azure: bool,
    /// Price local hardware.
    #[serde(default)]
    pub local_hardware: bool,
    /// Local hardware power draw, watts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub local_tdp_watts: Option<f64>,
    /// Energy price, dollars per kWh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub local_energy_rate_kwh: Option<f64>,
    /// Hardware purchase price, dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub local_hardware_purchase_price: Option<f64>,
    /// Hardware lifespan, years.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub local_hardware_lifespan_years: Option<f64>,
}

impl CostEstimation {
    /// Whether any driver is selected (the gate only runs then).
    pub fn any(&self) -> bool {
        self.vastai || self.aws || self.gcp || self.azure || self.local_hardware
    }
}

/// Spending cap per run.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
pub struct Budget {
    /// Largest projected cost of one run, dollars; a run projected above it is refused
    /// with `Ready=False BudgetExceeded`.
    #[serde(default, rename = "maxCostUSD", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max_cost_usd: Option<f64>,
    /// GPU class the projection prices, e.g. a100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
}

/// Reference to the infrastructure object a run waits for.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfrastructureRef {
    /// e.g. database.infra.rune.ai/v1alpha1.
    #[schemars(length(min = 1))]
    pub api_version: String,
    /// e.g. RuneDatabase.
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Object name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Namespace (default: the benchmark's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What the controller observed and did, newest first where it is a list.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RuneBenchmarkStatus {
    /// The generation this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Hash of the spec (without `suspend`) the last creation/spec-change run was started
    /// for; a different hash means "spec changed, run now". Suspend toggles are not spec
    /// changes, so E-Stop release does not start a surprise run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_spec_hash: Option<String>,
    /// The last fire acted on (started or skipped), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<String>,
    /// When a run last succeeded, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<String>,
    /// The next fire, RFC 3339, when scheduled and not suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<String>,
    /// Failed runs in a row; 0 after a success.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// The most recent run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunRecord>,
    /// Runs submitted and not finished yet (followed by polling).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_runs: Vec<RunRecord>,
    /// Finished runs, newest first, bounded by the history limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RunRecord>,
    /// Only `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One run.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// The API's job id.
    pub run_id: String,
    /// The fire it was started for, RFC 3339 (also in the Idempotency-Key).
    pub schedule_time: String,
    /// Why it started.
    pub trigger: Trigger,
    /// When it was submitted, RFC 3339.
    pub submitted_at: String,
    /// When it finished, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Submission to completion, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_millis: Option<i64>,
    /// Where it is.
    pub status: RunStatus,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The job result as JSON text (first 1 KiB; the API has all of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// Why a run started.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Trigger {
    /// First reconcile of a new benchmark.
    Created,
    /// The spec changed.
    SpecChanged,
    /// A cron fire.
    Schedule,
}

/// Lifecycle of a run.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RunStatus {
    /// Accepted by the API.
    Submitted,
    /// Running.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Failed, cancelled or timed out.
    Failed,
}

/// A status condition (metav1.Condition's shape).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Always `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// RunSucceeded, RunFailed, BudgetExceeded, InvalidSchedule, InfrastructureNotReady,
    /// Suspended, Waiting or Running.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
    /// When status last changed, RFC 3339.
    pub last_transition_time: String,
    /// The generation it was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The CRD manifest as JSON, with the schema made structural: schemars renders an
/// optional enum as `anyOf: [enum, null]`, which the API server refuses (no `type` or
/// `description` inside `anyOf`), so such nodes are folded into one nullable enum.
pub fn crd_value() -> serde_json::Value {
    use kube::CustomResourceExt;
    let mut v = serde_json::to_value(RuneBenchmark::crd()).unwrap_or_default();
    if let Some(versions) = v.pointer_mut("/spec/versions").and_then(serde_json::Value::as_array_mut) {
        for version in versions {
            if let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") {
                fold_nullable_any_of(schema);
                schema["description"] = serde_json::json!(
                    "A benchmark the RUNE operator runs through the RUNE API on creation, on spec change and on a cron schedule."
                );
            }
        }
    }
    v
}

fn fold_nullable_any_of(node: &mut serde_json::Value) {
    use serde_json::Value;
    if let Some(obj) = node.as_object_mut() {
        let fold = obj.get("anyOf").and_then(Value::as_array).and_then(|branches| {
            let is_null =
                |b: &Value| b.get("enum").and_then(Value::as_array).is_some_and(|e| e.len() == 1 && e[0].is_null());
            match branches.as_slice() {
                [a, b] if is_null(b) => Some(a.clone()),
                [a, b] if is_null(a) => Some(b.clone()),
                _ => None,
            }
        });
        if let Some(Value::Object(branch)) = fold {
            obj.remove("anyOf");
            for (k, val) in branch {
                if k != "description" || !obj.contains_key("description") {
                    obj.insert(k, val);
                }
            }
            obj.insert("nullable".into(), Value::Bool(true));
        }
        for child in obj.values_mut() {
            fold_nullable_any_of(child);
        }
    } else if let Some(items) = node.as_array_mut() {
        for child in items {
            fold_nullable_any_of(child);
        }
    }
}

/// The CRD manifest as YAML, exactly what `rune operator crd` prints and the chart ships.
pub fn crd_yaml() -> Result<String, serde_norway::Error> {
    let body = serde_norway::to_string(&crd_value())?;
    Ok(format!(
        "# Generated by `rune operator crd` from crates/rune-operator/src/crd.rs. Do not edit:\n# regenerate with `cargo run -p rune-cli -- operator crd > deploy/helm/rune-operator/crds/runebenchmarks.bench.rune.ai.yaml`.\n{body}"
    ))
}
