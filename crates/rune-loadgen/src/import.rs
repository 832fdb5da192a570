//! Importers: GuideLLM (0.7/0.8 `benchmarks.json`) and `vllm bench serve` (`--save-result`)
//! files turned into the [`LoadResult`] schema, mapping each tool's names onto RUNE's
//! definitions (see `docs/metrics.md`):
//!
//! - GuideLLM `inter_token_latency_ms` excludes the first token per request: that is
//!   RUNE's `tpot_ms`. GuideLLM's `time_per_output_token_ms` includes it and has no RUNE
//!   counterpart; GuideLLM reports no per-chunk gap distribution, so `itl_ms` stays empty.
//!   `request_latency` is in seconds and becomes `e2e_ms`.
//! - vLLM `ttft`, `tpot`, `itl` (per chunk) and `e2el` map to `ttft_ms`, `tpot_ms`,
//!   `itl_ms` and `e2e_ms`; percentiles exist only for those the run asked for.

use crate::error::LoadError;
use crate::metrics::{Counts, Metrics, Summary};
use crate::result::{LoadResult, StepResult, SCHEMA};
use serde_json::Value;
use std::path::Path;

/// Tools whose results can be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// GuideLLM.
    GuideLlm,
    /// `vllm bench serve`.
    Vllm,
}

impl Source {
    /// Reads `guidellm` or `vllm`.
    pub fn parse(s: &str) -> Result<Self, LoadError> {
        match s {
            "guidellm" => Ok(Source::GuideLlm),
            "vllm" => Ok(Source::Vllm),
            other => Err(LoadError::invalid("--from", format!("`{other}` is not guidellm or vllm"))),
        }
    }
}

/// Reads and converts a result file.
pub fn import_file(source: Source, path: &Path) -> Result<LoadResult, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::Read { path: path.to_path_buf(), source: e })?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| LoadError::Parse { path: path.to_path_buf(), message: format!("not JSON: {e}") })?;
    let converted = match source {
        Source::GuideLlm => from_guidellm(&doc),
        Source::Vllm => from_vllm(&doc),
    };
    converted.map_err(|message| LoadError::Parse { path: path.to_path_buf(), message })
}

/// Reads a result file of any known kind: RUNE's own schema, or (detected by its keys) a
/// GuideLLM or vLLM file.
pub fn load_any(path: &Path) -> Result<LoadResult, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::Read { path: path.to_path_buf(), source: e })?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| LoadError::Parse { path: path.to_path_buf(), message: format!("not JSON: {e}") })?;
    let parse = |m: String| LoadError::Parse { path: path.to_path_buf(), message: m };
    if doc.get("schema").and_then(Value::as_str) == Some(SCHEMA) {
        return serde_json::from_value(doc).map_err(|e| parse(format!("not a valid {SCHEMA} result: {e}")));
    }
    if doc.get("benchmarks").is_some() {
        return from_guidellm(&doc).map_err(parse);
    }
    if doc.get("median_ttft_ms").is_some() {
        return from_vllm(&doc).map_err(parse);
    }
    Err(parse(format!(
        "not a {SCHEMA} result, a GuideLLM benchmarks file or a vLLM bench serve result; \
         produce one with `rune bench-llm --output json`"
    )))
}

fn imported(source: &str, steps: Vec<StepResult>, environment: Value) -> Result<LoadResult, String> {
    let metrics = steps.last().map(|s| s.metrics.clone()).ok_or("holds no benchmark")?;
    Ok(LoadResult {
        schema: SCHEMA.to_owned(),
        source: source.to_owned(),
        metrics,
        steps,
        saturation: None,
        calibration: crate::result::Calibration {
            verdict: format!("imported from {source}: client calibration not available"),
            ..Default::default()
        },
        environment,
    })
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// A GuideLLM `StatusDistributionSummary`'s successful part, scaled to ms.
fn guidellm_summary(v: &Value, scale: f64) -> Summary {
    let s = &v["successful"];
    if !s.is_object() {
        return Summary::default();
    }
    let p = &s["percentiles"];
    let x = |v: &Value| f(v).map(|x| x * scale);
    Summary {
        count: s["count"].as_u64().unwrap_or(0),
        mean: x(&s["mean"]),
        p50: x(&s["median"]).or_else(|| x(&p["p50"])),
        p90: x(&p["p90"]),
        p95: x(&p["p95"]),
        p99: x(&p["p99"]),
        p999: x(&p["p999"]),
        min: x(&s["min"]),
        max: x(&s["max"]),
    }
}

/// Converts a GuideLLM report (`{"benchmarks": [...]}`), one step per benchmark.
pub fn from_guidellm(doc: &Value) -> Result<LoadResult, String> {
    let benchmarks = doc["benchmarks"].as_array().ok_or("`benchmarks` is missing or not a list")?;
    let mut steps = Vec::new();
    for (i, b) in benchmarks.iter().enumerate() {
        let m = &b["metrics"];
        if !m.is_object() {
            return Err(format!("benchmarks[{i}].metrics is missing"));
        }
        let totals = &m["request_totals"];
        let count = |k: &str| totals[k].as_u64().or_else(|| b["request_totals"][k].as_u64()).unwrap_or(0);
        let (ok, errored, incomplete) = (count("successful"), count("errored"), count("incomplete"));
        let measured = ok + errored + incomplete;
        let rate = |k: &str| f(&m[k]["successful"]["mean"]);
        // Whole-run rates (count / duration) when GuideLLM gives both: its
        // `requests_per_second` is a mean of instantaneous rates.
        let duration = f(&b["duration"]).filter(|d| *d > 0.0);
        let output_tokens = f(&m["output_token_count"]["successful"]["total_sum"]);
        let metrics = Metrics {
            ttft_ms: guidellm_summary(&m["time_to_first_token_ms"], 1.0),
            tpot_ms: guidellm_summary(&m["inter_token_latency_ms"], 1.0),
            e2e_ms: guidellm_summary(&m["request_latency"], 1000.0),
            request_throughput: duration.map(|d| ok as f64 / d).or_else(|| rate("requests_per_second")),
            output_token_throughput: duration
                .zip(output_tokens)
                .map(|(d, t)| t / d)
                .or_else(|| rate("output_tokens_per_second")),
            duration_s: duration,
            error_rate: (measured > 0).then(|| (errored + incomplete) as f64 / measured as f64),
            requests: Counts {
                sent: measured,
                measured,
                succeeded: ok,
                failed: errored + incomplete,
                ..Default::default()
            },
            ..Default::default()
        };
        let profile = &b["config"]["strategy"];
        let load = profile["type_"].as_str().or(profile["type"].as_str()).unwrap_or("benchmark").to_owned();
        let concurrency = profile["streams"].as_u64().or(profile["max_concurrency"].as_u64());
        let rate = profile["rate"].as_f64();
        steps.push(StepResult { load, concurrency, rate, metrics });
    }
    imported("guidellm", steps, serde_json::json!({"tool": "guidellm", "metadata": doc.get("metadata")}))
}

/// Converts a `vllm bench serve --save-result` file.
pub fn from_vllm(doc: &Value) -> Result<LoadResult, String> {
    if !doc.is_object() {
        return Err("expected a JSON object".into());
    }
    let summary = |name: &str| {
        let g = |k: String| f(&doc[k.as_str()]);
        Summary {
            count: 0,
            mean: g(format!("mean_{name}_ms")),
            p50: g(format!("median_{name}_ms")).or_else(|| g(format!("p50_{name}_ms"))),
            p90: g(format!("p90_{name}_ms")),
            p95: g(format!("p95_{name}_ms")),
            p99: g(format!("p99_{name}_ms")),
            p999: g(format!("p99.9_{name}_ms")),
            min: None,
            max: None,
        }
    };
    let completed = doc["completed"].as_u64().ok_or("`completed` is missing: not a vllm bench serve result")?;
    let failed = doc["failed"].as_u64().or_else(|| doc["num_failed"].as_u64()).unwrap_or(0);
    let measured = completed + failed;
    let metrics = Metrics {
        ttft_ms: summary("ttft"),
        itl_ms: summary("itl"),
        tpot_ms: summary("tpot"),
        e2e_ms: summary("e2el"),
        request_throughput: f(&doc["request_throughput"]),
        output_token_throughput: f(&doc["output_throughput"]),
        goodput: f(&doc["request_goodput"]),
        error_rate: (measured > 0).then(|| failed as f64 / measured as f64),
        duration_s: f(&doc["duration"]),
        requests: Counts { sent: measured, measured, succeeded: completed, failed, ..Default::default() },
        ..Default::default()
    };
    let concurrency = doc["max_concurrency"].as_u64();
    let rate = doc["request_rate"].as_f64();
    let step = StepResult { load: "vllm bench serve".into(), concurrency, rate, metrics };
    imported(
        "vllm",
        vec![step],
        serde_json::json!({"tool": "vllm bench serve", "model": doc.get("model_id"), "date": doc.get("date")}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// vLLM's flat keys map onto the schema; `itl` is per chunk, `tpot` per token.
    #[test]
    fn vllm_mapping() {
        let doc = json!({"completed": 98, "failed": 2, "duration": 10.0, "request_throughput": 9.8,
            "output_throughput": 1254.4, "request_goodput": 9.0, "mean_ttft_ms": 51.0, "median_ttft_ms": 50.5,
            "p99_ttft_ms": 60.0, "p99.9_ttft_ms": 70.0, "median_itl_ms": 10.1, "median_tpot_ms": 10.0,
            "median_e2el_ms": 1320.0, "max_concurrency": 16, "request_rate": "inf"});
        let r = from_vllm(&doc).unwrap();
        assert_eq!(r.source, "vllm");
        assert_eq!(r.metrics.ttft_ms.p50, Some(50.5));
        assert_eq!(r.metrics.ttft_ms.p999, Some(70.0));
        assert_eq!(r.metrics.itl_ms.p50, Some(10.1));
        assert_eq!(r.metrics.tpot_ms.p50, Some(10.0));
        assert_eq!(r.metrics.e2e_ms.p50, Some(1320.0));
        assert_eq!(r.metrics.error_rate, Some(0.02));
        assert_eq!(r.steps[0].concurrency, Some(16));
        assert!(from_vllm(&json!({"mean_ttft_ms": 1})).unwrap_err().contains("completed"));
    }

    /// GuideLLM's ITL becomes TPOT, its latency in seconds becomes e2e in ms.
    #[test]
    fn guidellm_mapping() {
        let dist = |median: f64| {
            json!({"successful": {"mean": median, "median": median, "count": 10,
            "percentiles": {"p90": median, "p95": median, "p99": median * 2.0, "p999": median * 3.0}}})
        };
        let doc = json!({"benchmarks": [{
        "config": {"strategy": {"type_": "concurrent", "streams": 16}},
        "metrics": {
            "request_totals": {"successful": 9, "errored": 1, "incomplete": 0, "total": 10},
            "time_to_first_token_ms": dist(50.0), "inter_token_latency_ms": dist(10.0),
            "request_latency": dist(1.32),
            "requests_per_second": {"successful": {"mean": 12.0}},
            "output_tokens_per_second": {"successful": {"mean": 1536.0}}
        }}]});
        let r = from_guidellm(&doc).unwrap();
        assert_eq!(r.metrics.tpot_ms.p50, Some(10.0));
        assert_eq!(r.metrics.itl_ms, Summary::default());
        assert_eq!(r.metrics.e2e_ms.p50, Some(1320.0));
        assert_eq!(r.metrics.ttft_ms.p99, Some(100.0));
        assert_eq!(r.metrics.request_throughput, Some(12.0));
        assert_eq!(r.metrics.error_rate, Some(0.1));
        assert_eq!(r.steps[0].concurrency, Some(16));
        assert!(from_guidellm(&json!({"benchmarks": []})).unwrap_err().contains("no benchmark"));
        assert!(from_guidellm(&json!({})).unwrap_err().contains("benchmarks"));
        assert!(Source::parse("aiperf").is_err());
    }
}
