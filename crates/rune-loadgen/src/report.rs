//! Text renderings of results and comparisons: an aligned terminal table, CSV (one row
//! per step, stable column names) and Markdown. JSON is the serde form of the types.

use crate::compare::{Comparison, Verdict};
use crate::metrics::{Metrics, Summary};
use crate::result::LoadResult;
use std::fmt::Write;

fn num(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |v| if v.abs() >= 100.0 { format!("{v:.1}") } else { format!("{v:.3}") })
}

const LATENCIES: [&str; 5] = ["ttft_ms", "itl_ms", "itl_per_token_ms", "tpot_ms", "e2e_ms"];

fn summary<'a>(m: &'a Metrics, name: &str) -> &'a Summary {
    match name {
        "ttft_ms" => &m.ttft_ms,
        "itl_ms" => &m.itl_ms,
        "itl_per_token_ms" => &m.itl_per_token_ms,
        "tpot_ms" => &m.tpot_ms,
        _ => &m.e2e_ms,
    }
}

/// The terminal table: latency percentiles, then rates, then the calibration verdict.
pub fn table(r: &LoadResult) -> String {
    let mut out = String::new();
    for (i, step) in r.steps.iter().enumerate() {
        let m = &step.metrics;
        let _ = writeln!(
            out,
            "step {} ({}): {} ok / {} measured, {:.2} req/s, {:.1} output tok/s, goodput {:.2} req/s, errors {:.2} %",
            i + 1,
            step.load,
            m.requests.succeeded,
            m.requests.measured,
            m.request_throughput.unwrap_or(0.0),
            m.output_token_throughput.unwrap_or(0.0),
            m.goodput.unwrap_or(0.0),
            100.0 * m.error_rate.unwrap_or(0.0)
        );
        if !m.errors.is_empty() {
            let parts: Vec<String> = m.errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(out, "  failures: {}", parts.join(", "));
        }
    }
    let m = &r.metrics;
    let _ = writeln!(
        out,
        "\n{:<18} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "metric (ms)", "mean", "p50", "p90", "p95", "p99", "p99.9"
    );
    for name in LATENCIES {
        let s = summary(m, name);
        let _ = writeln!(
            out,
            "{:<18} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            name,
            num(s.mean),
            num(s.p50),
            num(s.p90),
            num(s.p95),
            num(s.p99),
            num(s.p999)
        );
    }
    let s = &m.schedule_lag_ms;
    let _ = writeln!(
        out,
        "{:<18} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "schedule_lag_ms",
        num(s.mean),
        num(s.p50),
        num(s.p90),
        num(s.p95),
        num(s.p99),
        num(s.p999)
    );
    if let Some(sat) = &r.saturation {
        let _ = writeln!(out, "\nsaturation: best step {} ({})", sat.best_step + 1, sat.reason);
    }
    let c = &r.calibration;
    let _ = writeln!(
        out,
        "\ncalibration: client CPU {} % of one core ({} cores), max schedule lag {} ms, peak RSS {} MB",
        num(c.client_cpu_percent),
        c.cores.map_or("-".into(), |n| n.to_string()),
        num(c.max_schedule_lag_ms),
        num(c.peak_rss_mb)
    );
    if let Some(o) = &c.overhead {
        let _ = writeln!(
            out,
            "  overhead vs simulated server: TTFT +{:.3} ms, ITL +{:.3} ms (truth {} / {} ms)",
            o.ttft_added_ms, o.itl_added_ms, o.true_ttft_ms, o.true_itl_ms
        );
    }
    let _ = writeln!(out, "  {}", c.verdict);
    out
}

/// CSV: one row per step.
pub fn csv(r: &LoadResult) -> String {
    let mut out = String::from(
        "step,load,measured,succeeded,failed,request_throughput,output_token_throughput,goodput,error_rate",
    );
    for name in LATENCIES {
        for stat in ["mean", "p50", "p90", "p95", "p99", "p999"] {
            let _ = write!(out, ",{name}_{stat}");
        }
    }
    out.push('\n');
    let cell = |x: Option<f64>| x.map_or_else(String::new, |v| format!("{v}"));
    for (i, step) in r.steps.iter().enumerate() {
        let m = &step.metrics;
        let _ = write!(
            out,
            "{},\"{}\",{},{},{},{},{},{},{}",
            i + 1,
            step.load.replace('"', "'"),
            m.requests.measured,
            m.requests.succeeded,
            m.requests.failed,
            cell(m.request_throughput),
            cell(m.output_token_throughput),
            cell(m.goodput),
            cell(m.error_rate)
        );
        for name in LATENCIES {
            let s = summary(m, name);
            for stat in ["mean", "p50", "p90", "p95", "p99", "p999"] {
                let _ = write!(out, ",{}", cell(s.get(stat)));
            }
        }
        out.push('\n');
    }
    out
}

/// Markdown: the headline latency table and one line per step.
pub fn markdown(r: &LoadResult) -> String {
    let mut out =
        String::from("| metric (ms) | mean | p50 | p90 | p95 | p99 | p99.9 |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for name in LATENCIES {
        let s = summary(&r.metrics, name);
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            num(s.mean),
            num(s.p50),
            num(s.p90),
            num(s.p95),
            num(s.p99),
            num(s.p999)
        );
    }
    out.push_str(
        "\n| step | load | req/s | output tok/s | goodput req/s | error rate |\n|---:|---|---:|---:|---:|---:|\n",
    );
    for (i, s) in r.steps.iter().enumerate() {
        let m = &s.metrics;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            i + 1,
            s.load,
            num(m.request_throughput),
            num(m.output_token_throughput),
            num(m.goodput),
            num(m.error_rate)
        );
    }
    out
}

/// The comparison table, ending with the verdict line.
pub fn comparison_table(c: &Comparison, markdown: bool) -> String {
    let mut out = String::new();
    if markdown {
        out.push_str(
            "| metric | baseline | candidate | delta % | tolerance % | verdict |\n|---|---:|---:|---:|---:|---|\n",
        );
    } else {
        let _ = writeln!(
            out,
            "{:<24} {:>12} {:>12} {:>9} {:>6}  verdict",
            "metric", "baseline", "candidate", "delta %", "tol %"
        );
    }
    for r in &c.rows {
        let verdict = match r.verdict {
            Verdict::Ok => "ok",
            Verdict::Regression => "REGRESSION",
            Verdict::Improvement => "improvement",
            Verdict::NotComparable => "n/a",
        };
        let delta = r.delta_pct.map_or_else(|| "-".to_owned(), |d| format!("{d:+.2}"));
        if markdown {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {delta} | {} | {verdict} |",
                r.metric,
                num(r.baseline),
                num(r.candidate),
                r.tolerance_pct
            );
        } else {
            let _ = writeln!(
                out,
                "{:<24} {:>12} {:>12} {:>9} {:>6}  {verdict}",
                r.metric,
                num(r.baseline),
                num(r.candidate),
                delta,
                r.tolerance_pct
            );
        }
    }
    let _ = writeln!(out, "\nverdict: {}", if c.regression { "REGRESSION" } else { "no regression" });
    out
}
