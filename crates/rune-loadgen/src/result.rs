//! The `llm-load` result schema (`rune.llm-load/v1`): what `rune bench-llm --output json`
//! prints, what is stored as the job's result, and what importers produce from GuideLLM
//! and vLLM files so every source compares the same way.

use crate::metrics::Metrics;
use serde::{Deserialize, Serialize};

/// Schema tag of every result.
pub const SCHEMA: &str = "rune.llm-load/v1";

/// One run: the headline metrics, every step, how trustworthy the client was, and where
/// it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadResult {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Who measured: `rune`, or `guidellm`/`vllm` for imported files.
    pub source: String,
    /// The headline metrics: the only step's, the last step's of a list, or the best step's
    /// of an automatic sweep (see `saturation`).
    pub metrics: Metrics,
    /// Every step, in order.
    #[serde(default)]
    pub steps: Vec<StepResult>,
    /// Where an automatic sweep stopped, and why.
    #[serde(default)]
    pub saturation: Option<Saturation>,
    /// Was the client the bottleneck?
    #[serde(default)]
    pub calibration: Calibration,
    /// Tool, host, backend and dataset fingerprint.
    #[serde(default)]
    pub environment: serde_json::Value,
}

/// One step of a run (one concurrency or rate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// `concurrency=8`, `rate=4/s`, `trace replay`.
    pub load: String,
    /// Closed-loop concurrency.
    pub concurrency: Option<u64>,
    /// Open-loop target rate, requests/s.
    pub rate: Option<f64>,
    /// What it measured.
    pub metrics: Metrics,
}

/// Where an automatic sweep found saturation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    /// Index of the best step in `steps`.
    pub best_step: usize,
    /// Why the sweep stopped.
    pub reason: String,
}

/// The client's own cost and accuracy: every result carries it, so a reader can tell
/// whether the numbers describe the server or the load generator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Client CPU time (user + system, all threads) over wall time of the steps, in
    /// percent of one core.
    pub client_cpu_percent: Option<f64>,
    /// CPU cores available to the client.
    pub cores: Option<u64>,
    /// Largest schedule lag of any measured request, ms.
    pub max_schedule_lag_ms: Option<f64>,
    /// 99th percentile schedule lag, ms.
    pub p99_schedule_lag_ms: Option<f64>,
    /// Peak resident memory of the client process, MB.
    pub peak_rss_mb: Option<f64>,
    /// Overhead measured against an in-process simulated server with known timing.
    pub overhead: Option<Overhead>,
    /// A one-line judgement.
    pub verdict: String,
}

/// Measured minus true latency against the simulated server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    /// The simulated server's TTFT, ms.
    pub true_ttft_ms: f64,
    /// The simulated server's ITL, ms.
    pub true_itl_ms: f64,
    /// Median measured TTFT minus the truth, ms.
    pub ttft_added_ms: f64,
    /// Median measured ITL minus the truth, ms.
    pub itl_added_ms: f64,
    /// Requests measured.
    pub requests: u64,
}
