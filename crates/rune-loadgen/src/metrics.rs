//! What one step measured: per-worker [`Recorder`]s (HDR histograms plus one fixed-size
//! record per request, owned by the worker, merged once at the end) and the [`Metrics`]
//! computed from them. Formulas are documented in `docs/metrics.md`; in short:
//!
//! - TTFT = first output event − send; E2E = end of stream − send;
//! - ITL (per chunk) = gap between consecutive output events; ITL per token = that gap
//!   divided by the tokens per chunk (server-reported completion tokens / output events);
//! - TPOT = (last output event − first output event) / (output tokens − 1), per request;
//! - throughput = measured successful requests (or their output tokens) / measured window;
//! - goodput = measured requests that succeeded and met every SLO / measured window.

use hdrhistogram::Histogram;
use rune_core::contracts::LoadSlo;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Significant figures of every histogram: 0.1 % relative resolution (50 µs at 50 ms).
const SIGFIGS: u8 = 3;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The stream ended normally with output.
    Ok,
    /// The server answered with this non-2xx status.
    Http(u16),
    /// No connection or no response head.
    Connect,
    /// The connection broke mid-stream.
    Disconnect,
    /// A stream line was not valid JSON, or the server sent an in-stream error.
    Malformed,
    /// The stream ended cleanly but without any output.
    Empty,
    /// The per-request timeout struck.
    Timeout,
}

impl Outcome {
    /// The key under which this outcome is counted in `errors`.
    pub fn key(self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Http(s) => format!("http_{s}"),
            Outcome::Connect => "connect".into(),
            Outcome::Disconnect => "disconnect".into(),
            Outcome::Malformed => "malformed".into(),
            Outcome::Empty => "empty".into(),
            Outcome::Timeout => "timeout".into(),
        }
    }
}

/// One request, in a fixed-size record (no heap): times are nanoseconds from the step's
/// start, durations nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord {
    /// Session index within the step (the unit of warm-up/cool-down).
    pub session: u64,
    /// Turn within the session.
    pub turn: u32,
    /// When it should have been sent.
    pub intended_ns: u64,
    /// When it was sent.
    pub sent_ns: u64,
    /// Time to first output event.
    pub ttft_ns: Option<u64>,
    /// Send to the end of the stream (or to the failure).
    pub e2e_ns: u64,
    /// First to last output event.
    pub decode_ns: u64,
    /// Output events seen.
    pub chunks: u32,
    /// Server-reported completion tokens (falls back to output events).
    pub output_tokens: u64,
    /// Server-reported prompt tokens (0 if not reported).
    pub input_tokens: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Inside the measured window (not warm-up or cool-down).
    pub measured: bool,
}

impl RequestRecord {
    /// Schedule lag: actual minus intended send time.
    pub fn lag_ns(&self) -> u64 {
        self.sent_ns.saturating_sub(self.intended_ns)
    }

    /// The request's time per output token after the first, if it had two or more.
    pub fn tpot_ns(&self) -> Option<u64> {
        (self.output_tokens >= 2).then(|| self.decode_ns / (self.output_tokens - 1))
    }

    /// Whether it succeeded and met every objective in `slo`.
    pub fn is_good(&self, slo: &LoadSlo) -> bool {
        let within = |limit: Option<f64>, value: Option<u64>| match (limit, value) {
            (Some(ms), Some(ns)) => ns as f64 / 1e6 <= ms,
            (Some(_), None) => true,
            (None, _) => true,
        };
        self.outcome == Outcome::Ok
            && within(slo.ttft_ms, self.ttft_ns)
            && within(slo.itl_ms, self.tpot_ns())
            && within(slo.e2e_ms, Some(self.e2e_ns))
    }
}

/// Measurements of a step (or of one shard of it, merged after the step).
#[derive(Debug, Clone)]
pub struct Recorder {
    pub(crate) ttft: Histogram<u64>,
    pub(crate) itl_chunk: Histogram<u64>,
    pub(crate) itl_token: Histogram<u64>,
    pub(crate) tpot: Histogram<u64>,
    pub(crate) e2e: Histogram<u64>,
    pub(crate) lag: Histogram<u64>,
    pub(crate) records: Vec<RequestRecord>,
}

fn histogram() -> Histogram<u64> {
    // Auto-resizing: the range grows with the values seen, so no value is ever dropped.
    let mut h = Histogram::new(SIGFIGS).expect("3 significant figures is a valid HDR histogram precision");
    h.auto(true);
    h
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self {
            ttft: histogram(),
            itl_chunk: histogram(),
            itl_token: histogram(),
            tpot: histogram(),
            e2e: histogram(),
            lag: histogram(),
            records: Vec::new(),
        }
    }

    /// Records one finished request; `gaps_ns` are its inter-chunk gaps. Only measured
    /// requests reach the latency histograms; every request is kept as a record.
    pub fn record(&mut self, rec: RequestRecord, gaps_ns: &[u64]) {
        if rec.measured {
            let _ = self.lag.record(rec.lag_ns());
            if rec.outcome == Outcome::Ok {
                if let Some(t) = rec.ttft_ns {
                    let _ = self.ttft.record(t);
                }
                let _ = self.e2e.record(rec.e2e_ns);
                if let Some(t) = rec.tpot_ns() {
                    let _ = self.tpot.record(t);
                }
                // Tokens per chunk: the first chunk is assumed to carry as many as the rest.
                let per_chunk =
                    if rec.chunks > 0 { (rec.output_tokens as f64 / f64::from(rec.chunks)).max(1.0) } else { 1.0 };
                let whole = per_chunk.round().max(1.0) as u64;
                for &g in gaps_ns {
                    let _ = self.itl_chunk.record(g);
                    let _ = self.itl_token.record_n((g as f64 / per_chunk) as u64, whole);
                }
            }
        }
        self.records.push(rec);
    }

    /// Adds another worker's measurements.
    pub fn merge(&mut self, other: Recorder) {
        let _ = self.ttft.add(&other.ttft);
        let _ = self.itl_chunk.add(&other.itl_chunk);
        let _ = self.itl_token.add(&other.itl_token);
        let _ = self.tpot.add(&other.tpot);
        let _ = self.e2e.add(&other.e2e);
        let _ = self.lag.add(&other.lag);
        self.records.extend(other.records);
    }

    /// All request records, for reports and goodput.
    pub fn records(&self) -> &[RequestRecord] {
        &self.records
    }
}

/// Distribution of one latency, in milliseconds. Fields are optional because imported
/// results (GuideLLM, vLLM) may lack some percentiles; RUNE's own runs fill all of them
/// (with zeros when nothing was measured: see `count`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples.
    #[serde(default)]
    pub count: u64,
    /// Arithmetic mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// 99.9th percentile.
    pub p999: Option<f64>,
    /// Smallest sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Summary {
    /// Summarises a nanosecond histogram in milliseconds.
    pub fn from_ns(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Summary::default();
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        let q = |p: f64| Some(ms(h.value_at_quantile(p)));
        Summary {
            count: h.len(),
            mean: Some(h.mean() / 1e6),
            p50: q(0.5),
            p90: q(0.9),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
            min: Some(ms(h.min())),
            max: Some(ms(h.max())),
        }
    }

    /// A statistic by name (`mean`, `p50`, … `p999`, `min`, `max`).
    pub fn get(&self, stat: &str) -> Option<f64> {
        match stat {
            "mean" => self.mean,
            "p50" => self.p50,
            "p90" => self.p90,
            "p95" => self.p95,
            "p99" => self.p99,
            "p999" => self.p999,
            "min" => self.min,
            "max" => self.max,
            _ => None,
        }
    }
}

/// Request counts of a step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Requests sent (warm-up and cool-down included).
    pub sent: u64,
    /// Requests inside the measured window.
    pub measured: u64,
    /// Measured requests that succeeded.
    pub succeeded: u64,
    /// Measured requests that failed (timeouts included).
    pub failed: u64,
    /// Measured requests that timed out.
    pub timed_out: u64,
    /// Measured requests meeting every SLO.
    pub good: u64,
}

/// The `metrics` object of a result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Time to first token.
    pub ttft_ms: Summary,
    /// Inter-token latency per chunk (gap between output events), pooled over requests.
    pub itl_ms: Summary,
    /// Inter-token latency per token (chunk gap / tokens per chunk).
    #[serde(default)]
    pub itl_per_token_ms: Summary,
    /// Time per output token after the first, per request.
    pub tpot_ms: Summary,
    /// End-to-end request latency.
    pub e2e_ms: Summary,
    /// Actual minus intended send time.
    #[serde(default)]
    pub schedule_lag_ms: Summary,
    /// Successful measured requests per second of the measured window.
    pub request_throughput: Option<f64>,
    /// Output tokens of successful measured requests per second.
    pub output_token_throughput: Option<f64>,
    /// Prompt tokens of successful measured requests per second.
    #[serde(default)]
    pub input_token_throughput: Option<f64>,
    /// Measured requests per second that succeeded and met every SLO (all successful
    /// requests when no SLO is set).
    pub goodput: Option<f64>,
    /// Share of measured requests meeting every SLO, 0..1.
    #[serde(default)]
    pub slo_attainment: Option<f64>,
    /// Share of measured requests that failed, 0..1.
    pub error_rate: Option<f64>,
    /// Share of measured requests that timed out, 0..1.
    #[serde(default)]
    pub timeout_rate: Option<f64>,
    /// Length of the measured window, seconds.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Request counts.
    #[serde(default)]
    pub requests: Counts,
    /// Failed measured requests by cause (`http_500`, `disconnect`, `timeout`, …).
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
}

impl Metrics {
    /// Computes the metrics of a merged recorder under `slo`.
    pub fn compute(rec: &Recorder, slo: &LoadSlo) -> Self {
        let measured: Vec<&RequestRecord> = rec.records.iter().filter(|r| r.measured).collect();
        let start = measured.iter().map(|r| r.intended_ns.min(r.sent_ns)).min().unwrap_or(0);
        let end = measured.iter().map(|r| r.sent_ns + r.e2e_ns).max().unwrap_or(0);
        let window = end.saturating_sub(start) as f64 / 1e9;
        let ok: Vec<&&RequestRecord> = measured.iter().filter(|r| r.outcome == Outcome::Ok).collect();
        let mut errors = BTreeMap::new();
        for r in measured.iter().filter(|r| r.outcome != Outcome::Ok) {
            *errors.entry(r.outcome.key()).or_insert(0u64) += 1;
        }
        let counts = Counts {
            sent: rec.records.len() as u64,
            measured: measured.len() as u64,
            succeeded: ok.len() as u64,
            failed: (measured.len() - ok.len()) as u64,
            timed_out: measured.iter().filter(|r| r.outcome == Outcome::Timeout).count() as u64,
            good: measured.iter().filter(|r| r.is_good(slo)).count() as u64,
        };
        let per_s = |x: f64| (window > 0.0).then(|| x / window);
        let share = |x: u64| (counts.measured > 0).then(|| x as f64 / counts.measured as f64);
        Metrics {
            ttft_ms: Summary::from_ns(&rec.ttft),
            itl_ms: Summary::from_ns(&rec.itl_chunk),
            itl_per_token_ms: Summary::from_ns(&rec.itl_token),
            tpot_ms: Summary::from_ns(&rec.tpot),
            e2e_ms: Summary::from_ns(&rec.e2e),
            schedule_lag_ms: Summary::from_ns(&rec.lag),
            request_throughput: per_s(counts.succeeded as f64),
            output_token_throughput: per_s(ok.iter().map(|r| r.output_tokens as f64).sum()),
            input_token_throughput: per_s(ok.iter().map(|r| r.input_tokens as f64).sum()),
            goodput: per_s(counts.good as f64),
            slo_attainment: share(counts.good),
            error_rate: share(counts.failed),
            timeout_rate: share(counts.timed_out),
            duration_s: (window > 0.0).then_some(window),
            requests: counts,
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u64, ttft_ms: u64, e2e_ms: u64, tokens: u64, outcome: Outcome) -> RequestRecord {
        RequestRecord {
            session: i,
            turn: 0,
            intended_ns: i * 100_000_000,
            sent_ns: i * 100_000_000 + 1_000_000,
            ttft_ns: Some(ttft_ms * 1_000_000),
            e2e_ns: e2e_ms * 1_000_000,
            decode_ns: (e2e_ms - ttft_ms) * 1_000_000,
            chunks: tokens as u32,
            output_tokens: tokens,
            input_tokens: 10,
            outcome,
            measured: true,
        }
    }

    /// Goodput counts only successful requests meeting every objective; attainment and
    /// error rate are shares of the measured requests; throughput uses the window.
    #[test]
    fn goodput_and_rates() {
        let mut r = Recorder::new();
        // ttft 50 / tpot 10 (good), ttft 300 (bad TTFT), tpot 30 (bad ITL), failed.
        r.record(rec(0, 50, 140, 10, Outcome::Ok), &[10_000_000; 9]);
        r.record(rec(1, 300, 390, 10, Outcome::Ok), &[]);
        r.record(rec(2, 50, 320, 10, Outcome::Ok), &[]);
        r.record(rec(3, 50, 100, 10, Outcome::Http(500)), &[]);
        let slo = LoadSlo { ttft_ms: Some(100.0), itl_ms: Some(20.0), e2e_ms: None };
        let m = Metrics::compute(&r, &slo);
        assert_eq!(m.requests.good, 1);
        assert_eq!(m.requests.succeeded, 3);
        assert_eq!(m.slo_attainment, Some(0.25));
        assert_eq!(m.error_rate, Some(0.25));
        assert_eq!(m.errors.get("http_500"), Some(&1));
        // Window: first intended 0 ms to the last end (request 2: sent 201 ms + 320 ms).
        let window = 0.521;
        assert!((m.goodput.unwrap() - 1.0 / window).abs() < 1e-9);
        assert!((m.request_throughput.unwrap() - 3.0 / window).abs() < 1e-9);
        assert!((m.output_token_throughput.unwrap() - 30.0 / window).abs() < 1e-9);
        // No SLO: every success is good.
        assert_eq!(Metrics::compute(&r, &LoadSlo::default()).requests.good, 3);
        // Failures never reach the latency histograms.
        assert_eq!(m.ttft_ms.count, 3);
        assert_eq!(m.itl_ms.count, 9);
    }

    /// Per-token ITL divides chunk gaps by tokens per chunk and weights them by it.
    #[test]
    fn per_token_itl() {
        let mut r = Recorder::new();
        let mut x = rec(0, 50, 80, 16, Outcome::Ok);
        x.chunks = 4;
        r.record(x, &[10_000_000; 3]);
        let m = Metrics::compute(&r, &LoadSlo::default());
        assert_eq!(m.itl_ms.count, 3);
        assert_eq!(m.itl_per_token_ms.count, 12);
        assert!((m.itl_per_token_ms.p50.unwrap() - 2.5).abs() < 0.01);
        assert!((m.tpot_ms.p50.unwrap() - 2.0).abs() < 0.01, "30 ms / 15 tokens");
    }

    /// Unmeasured (warm-up) requests are kept as records but excluded from metrics.
    #[test]
    fn warmup_excluded() {
        let mut r = Recorder::new();
        let mut w = rec(0, 500, 900, 10, Outcome::Ok);
        w.measured = false;
        r.record(w, &[]);
        r.record(rec(1, 50, 140, 10, Outcome::Ok), &[]);
        let m = Metrics::compute(&r, &LoadSlo::default());
        assert_eq!((m.requests.sent, m.requests.measured), (2, 1));
        assert_eq!(m.ttft_ms.count, 1);
        assert!((m.ttft_ms.p50.unwrap() - 50.0).abs() < 0.1);
    }

    /// Nothing measured: empty summaries and no rates, never a division by zero.
    #[test]
    fn empty() {
        let m = Metrics::compute(&Recorder::new(), &LoadSlo::default());
        assert_eq!(m.ttft_ms, Summary::default());
        assert_eq!((m.request_throughput, m.error_rate), (None, None));
    }
}
