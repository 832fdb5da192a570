//! Baseline-relative regression verdicts: per-metric deltas between two results with a
//! tolerance per metric, and one overall verdict a CI job can gate on.

use crate::error::LoadError;
use crate::metrics::Metrics;
use crate::result::LoadResult;
use serde::Serialize;
use std::collections::BTreeMap;

/// Tolerance when none is given for a metric, percent.
pub const DEFAULT_TOLERANCE_PCT: f64 = 5.0;

/// Whether a metric is better when lower (latencies, errors) or higher (throughput).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Latencies and error rates.
    Lower,
    /// Throughput and goodput.
    Higher,
}

/// The metrics compared, in report order.
pub const COMPARED: &[(&str, Better)] = &[
    ("ttft_ms.p50", Better::Lower),
    ("ttft_ms.p99", Better::Lower),
    ("itl_ms.p50", Better::Lower),
    ("itl_ms.p99", Better::Lower),
    ("tpot_ms.p50", Better::Lower),
    ("tpot_ms.p99", Better::Lower),
    ("e2e_ms.p50", Better::Lower),
    ("e2e_ms.p99", Better::Lower),
    ("request_throughput", Better::Higher),
    ("output_token_throughput", Better::Higher),
    ("goodput", Better::Higher),
    ("error_rate", Better::Lower),
];

/// Per-metric tolerances in percent; a family name (`ttft_ms`) covers all its statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerances {
    /// For metrics without their own entry.
    pub default_pct: f64,
    /// `metric` or `family` → percent.
    pub per_metric: BTreeMap<String, f64>,
}

impl Default for Tolerances {
    fn default() -> Self {
        Self { default_pct: DEFAULT_TOLERANCE_PCT, per_metric: BTreeMap::new() }
    }
}

impl Tolerances {
    /// Parses `metric=pct` pairs (comma-separated, repeatable); `default=pct` sets the
    /// default. Unknown metric names are refused with the list of known ones.
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, LoadError> {
        let mut t = Tolerances::default();
        for item in items.into_iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
            let Some((name, pct)) = item.split_once('=') else {
                return Err(LoadError::invalid(
                    "--tolerance",
                    format!("`{item}` is not metric=percent, e.g. ttft_ms.p99=10"),
                ));
            };
            let pct: f64 =
                pct.trim().trim_end_matches('%').parse().ok().filter(|p: &f64| p.is_finite() && *p >= 0.0).ok_or_else(
                    || LoadError::invalid("--tolerance", format!("`{item}`: the percent must be a number >= 0")),
                )?;
            let name = name.trim();
            if name == "default" {
                t.default_pct = pct;
                continue;
            }
            let known = COMPARED.iter().any(|(m, _)| *m == name || m.split('.').next() == Some(name));
            if !known {
                let names: Vec<&str> = COMPARED.iter().map(|(m, _)| *m).collect();
                return Err(LoadError::invalid(
                    "--tolerance",
                    format!("unknown metric `{name}`; known: default, {}", names.join(", ")),
                ));
            }
            t.per_metric.insert(name.to_owned(), pct);
        }
        Ok(t)
    }

    /// The tolerance of `metric`, in percent.
    pub fn for_metric(&self, metric: &str) -> f64 {
        self.per_metric
            .get(metric)
            .or_else(|| metric.split('.').next().and_then(|f| self.per_metric.get(f)))
            .copied()
            .unwrap_or(self.default_pct)
    }
}

/// The verdict on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Within tolerance.
    Ok,
    /// Worse by more than the tolerance.
    Regression,
    /// Better by more than the tolerance.
    Improvement,
    /// Missing in one of the results.
    NotComparable,
}

/// One compared metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Metric name (`ttft_ms.p99`).
    pub metric: String,
    /// Baseline value.
    pub baseline: Option<f64>,
    /// Candidate value.
    pub candidate: Option<f64>,
    /// Relative change in percent (for `error_rate`: change in percentage points).
    pub delta_pct: Option<f64>,
    /// Tolerance applied, percent.
    pub tolerance_pct: f64,
    /// Better direction.
    pub better: Better,
    /// Verdict.
    pub verdict: Verdict,
}

/// A whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Per-metric rows.
    pub rows: Vec<Row>,
    /// Whether any metric regressed.
    pub regression: bool,
}

/// A metric's value by name (`ttft_ms.p99`, `goodput`).
pub fn metric_value(m: &Metrics, name: &str) -> Option<f64> {
    match name.split_once('.') {
        Some((family, stat)) => {
            let summary = match family {
                "ttft_ms" => &m.ttft_ms,
                "itl_ms" => &m.itl_ms,
                "itl_per_token_ms" => &m.itl_per_token_ms,
                "tpot_ms" => &m.tpot_ms,
                "e2e_ms" => &m.e2e_ms,
                "schedule_lag_ms" => &m.schedule_lag_ms,
                _ => return None,
            };
            summary.get(stat)
        }
        None => match name {
            "request_throughput" => m.request_throughput,
            "output_token_throughput" => m.output_token_throughput,
            "goodput" => m.goodput,
            "error_rate" => m.error_rate,
            _ => None,
        },
    }
}

/// Compares `candidate` against `baseline`. A latency regresses when it grows by more
/// than its tolerance, a throughput when it falls by more; `error_rate` compares
/// percentage points (0.02 → 0.05 is +3 points) because relative change from 0 is
/// undefined.
pub fn compare(baseline: &LoadResult, candidate: &LoadResult, tol: &Tolerances) -> Comparison {
    let rows: Vec<Row> = COMPARED
        .iter()
        .map(|&(metric, better)| {
            let b = metric_value(&baseline.metrics, metric);
            let c = metric_value(&candidate.metrics, metric);
            let tolerance_pct = tol.for_metric(metric);
            let delta_pct = match (b, c) {
                (Some(b), Some(c)) if metric == "error_rate" => Some(100.0 * (c - b)),
                (Some(b), Some(c)) if b != 0.0 => Some(100.0 * (c - b) / b.abs()),
                (Some(_), Some(c)) => Some(if c == 0.0 { 0.0 } else { f64::INFINITY.copysign(c) }),
                _ => None,
            };
            let verdict = match delta_pct {
                None => Verdict::NotComparable,
                Some(d) => {
                    let worse = match better {
                        Better::Lower => d,
                        Better::Higher => -d,
                    };
                    if worse > tolerance_pct {
                        Verdict::Regression
                    } else if -worse > tolerance_pct {
                        Verdict::Improvement
                    } else {
                        Verdict::Ok
                    }
                }
            };
            Row { metric: metric.to_owned(), baseline: b, candidate: c, delta_pct, tolerance_pct, better, verdict }
        })
        .collect();
    let regression = rows.iter().any(|r| r.verdict == Verdict::Regression);
    Comparison { rows, regression }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Summary;

    fn result(ttft_p99: f64, rps: f64, errors: f64) -> LoadResult {
        LoadResult {
            schema: crate::result::SCHEMA.into(),
            source: "rune".into(),
            metrics: Metrics {
                ttft_ms: Summary { p50: Some(50.0), p99: Some(ttft_p99), ..Default::default() },
                request_throughput: Some(rps),
                error_rate: Some(errors),
                ..Default::default()
            },
            steps: vec![],
            saturation: None,
            calibration: Default::default(),
            environment: serde_json::Value::Null,
        }
    }

    fn verdict(c: &Comparison, metric: &str) -> Verdict {
        c.rows.iter().find(|r| r.metric == metric).unwrap().verdict
    }

    /// Worse latency and lower throughput beyond tolerance regress; within tolerance is
    /// ok; better beyond tolerance is an improvement; missing metrics are not comparable.
    #[test]
    fn verdicts() {
        let base = result(100.0, 10.0, 0.0);
        let c = compare(&base, &result(104.0, 9.6, 0.0), &Tolerances::default());
        assert!(!c.regression);
        assert_eq!(verdict(&c, "ttft_ms.p99"), Verdict::Ok);
        let c = compare(&base, &result(120.0, 10.0, 0.0), &Tolerances::default());
        assert!(c.regression);
        assert_eq!(verdict(&c, "ttft_ms.p99"), Verdict::Regression);
        let c = compare(&base, &result(100.0, 8.0, 0.0), &Tolerances::default());
        assert_eq!(verdict(&c, "request_throughput"), Verdict::Regression);
        let c = compare(&base, &result(80.0, 12.0, 0.0), &Tolerances::default());
        assert_eq!(verdict(&c, "ttft_ms.p99"), Verdict::Improvement);
        assert_eq!(verdict(&c, "request_throughput"), Verdict::Improvement);
        assert_eq!(verdict(&c, "itl_ms.p50"), Verdict::NotComparable);
        // Error rate: percentage points.
        let c = compare(&base, &result(100.0, 10.0, 0.06), &Tolerances::default());
        assert_eq!(verdict(&c, "error_rate"), Verdict::Regression);
        // A wider per-family tolerance absorbs the latency change.
        let wide = Tolerances::parse(["ttft_ms=25"]).unwrap();
        assert!(!compare(&base, &result(120.0, 10.0, 0.0), &wide).regression);
    }

    /// Tolerance syntax and its negative cases.
    #[test]
    fn tolerance_parsing() {
        let t = Tolerances::parse(["ttft_ms.p99=10, request_throughput=2%", "default=3"]).unwrap();
        assert_eq!(t.for_metric("ttft_ms.p99"), 10.0);
        assert_eq!(t.for_metric("ttft_ms.p50"), 3.0);
        assert_eq!(t.for_metric("request_throughput"), 2.0);
        for bad in ["ttft_ms.p99", "nope=3", "ttft_ms=-1", "ttft_ms=x"] {
            assert!(Tolerances::parse([bad]).unwrap_err().to_string().starts_with("--tolerance:"), "{bad}");
        }
    }
}
