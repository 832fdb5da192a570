//! What the pages show, computed from the API's shared contract types: one summary row
//! per run, per-case rows, comparisons with a regression verdict, load-test curves.
//!
//! Everything here is pure (no I/O) and defensive: a result missing a field shows as
//! "—", never as a panic or a made-up zero.

use rune_core::api::JobView;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One run, as the Runs table, the Compare page and exports show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunSummary {
    /// Job id.
    pub id: String,
    /// Job kind (`benchmark`, `suite`, …).
    pub kind: String,
    /// Status (`queued` … `cancelled`).
    pub status: String,
    /// Whether the status can no longer change (live updates stop).
    pub terminal: bool,
    /// Agent(s), comma-separated.
    pub agent: Option<String>,
    /// Model(s), comma-separated.
    pub model: Option<String>,
    /// Suite name or path.
    pub suite: Option<String>,
    /// Accepted at (RFC 3339).
    pub created_at: String,
    /// Seconds from start to finish (or to now's last update while running).
    pub duration_s: Option<f64>,
    /// Mean score over scored attempts, 0..1.
    pub score: Option<f64>,
    /// 95% interval of the mean score.
    pub ci95: Option<[f64; 2]>,
    /// Share of attempts that passed.
    pub pass_rate: Option<f64>,
    /// Share of attempts that errored.
    pub error_rate: Option<f64>,
    /// Prompt + completion tokens.
    pub tokens: Option<u64>,
    /// Total cost in dollars, when any attempt reported one.
    pub cost_usd: Option<f64>,
    /// Latency median, ms.
    pub latency_p50: Option<f64>,
    /// Latency 95th percentile, ms.
    pub latency_p95: Option<f64>,
    /// TTFT median, ms.
    pub ttft_p50: Option<f64>,
    /// Whether the run met its threshold (None: no threshold).
    pub passed: Option<bool>,
    /// Attempts (cases × repetitions × combinations).
    pub attempts: Option<u64>,
    /// Output tokens per second of wall time, when both are known.
    pub throughput_tps: Option<f64>,
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64().filter(|x| x.is_finite())
}

fn join_list(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Array(items) => {
            let parts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        _ => None,
    }
}

/// Seconds between two RFC 3339 times.
pub fn seconds_between(from: &str, to: &str) -> Option<f64> {
    let a = chrono::DateTime::parse_from_rfc3339(from).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(to).ok()?;
    Some((b - a).num_milliseconds() as f64 / 1000.0)
}

/// The summary row of `job`.
pub fn summarize(job: &JobView) -> RunSummary {
    let req = &job.request;
    let result = job.result.as_ref().unwrap_or(&Value::Null);
    let agent = join_list(&req["agents"]).or_else(|| join_list(&req["agent"]));
    let model = join_list(&req["models"]).or_else(|| join_list(&req["model"]));
    let suite = join_list(&req["suite"]);
    let duration_s = match (&job.started_at, &job.finished_at) {
        (Some(s), Some(e)) => seconds_between(s, e),
        (Some(s), None) => seconds_between(s, &job.updated_at),
        _ => None,
    };
    let mut row = RunSummary {
        id: job.job_id.clone(),
        kind: job.kind.to_string(),
        status: job.status.to_string(),
        terminal: job.status.is_terminal(),
        agent,
        model,
        suite,
        created_at: job.created_at.clone(),
        duration_s,
        score: None,
        ci95: None,
        pass_rate: None,
        error_rate: None,
        tokens: None,
        cost_usd: None,
        latency_p50: None,
        latency_p95: None,
        ttft_p50: None,
        passed: result["passed"].as_bool(),
        attempts: None,
        throughput_tps: None,
    };
    let groups = result["summary"]["groups"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !groups.is_empty() {
        aggregate_groups(&mut row, groups);
    } else if let Some(tel) = result.get("telemetry") {
        // agentic-agent: one answer with its own telemetry.
        let p = tel["tokens"]["prompt"].as_u64();
        let o = tel["tokens"]["output"].as_u64();
        row.tokens = match (p, o) {
            (None, None) => None,
            (p, o) => Some(p.unwrap_or(0) + o.unwrap_or(0)),
        };
        row.ttft_p50 = f(&tel["ttft_ms"]);
        row.latency_p50 = tel["latency"].as_array().and_then(|l| l.first()).and_then(|l| f(&l["ms"]));
    }
    if let Some(metrics) = result.get("metrics").filter(|m| m.is_object()) {
        // llm-load: the load generator's own figures.
        row.latency_p50 = row.latency_p50.or_else(|| f(&metrics["e2e_ms"]["p50"]));
        row.latency_p95 = row.latency_p95.or_else(|| f(&metrics["e2e_ms"]["p95"]));
        row.ttft_p50 = row.ttft_p50.or_else(|| f(&metrics["ttft_ms"]["p50"]));
        row.error_rate = row.error_rate.or_else(|| f(&metrics["error_rate"]));
        row.throughput_tps = f(&metrics["output_token_throughput"]);
    }
    if row.cost_usd.is_none() {
        row.cost_usd = f(&result["cost_usd"]).or_else(|| f(&result["projected_cost_usd"]));
    }
    if row.throughput_tps.is_none() {
        if let (Some(d), Some(out)) = (row.duration_s, completion_tokens(result)) {
            if d > 0.0 {
                row.throughput_tps = Some(out as f64 / d);
            }
        }
    }
    row
}

fn completion_tokens(result: &Value) -> Option<u64> {
    let groups = result["summary"]["groups"].as_array()?;
    let total: u64 = groups.iter().filter_map(|g| g["tokens"]["completion_total"].as_u64()).sum();
    (total > 0).then_some(total)
}

/// Folds per-(agent, model) groups into one row: means weighted by scored attempts,
/// the worst percentile across groups, sums of tokens and cost.
fn aggregate_groups(row: &mut RunSummary, groups: &[Value]) {
    let (mut score_sum, mut scored, mut pass_sum, mut n, mut errors) = (0.0, 0.0, 0.0, 0u64, 0u64);
    let mut tokens: Option<u64> = None;
    let mut cost: Option<f64> = None;
    for g in groups {
        let s = g["scored"].as_f64().unwrap_or(0.0);
        if let Some(m) = f(&g["mean_score"]) {
            score_sum += m * s;
            scored += s;
            pass_sum += f(&g["pass_rate"]).unwrap_or(0.0) * s;
        }
        n += g["n"].as_u64().unwrap_or(0);
        errors += g["errors"].as_u64().unwrap_or(0);
        for key in ["prompt_total", "completion_total"] {
            if let Some(t) = g["tokens"][key].as_u64() {
                tokens = Some(tokens.unwrap_or(0) + t);
            }
        }
        if let Some(c) = f(&g["cost_usd"]) {
            cost = Some(cost.unwrap_or(0.0) + c);
        }
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        row.latency_p50 = max(row.latency_p50, f(&g["latency_ms"]["p50"]));
        row.latency_p95 = max(row.latency_p95, f(&g["latency_ms"]["p95"]));
        row.ttft_p50 = max(row.ttft_p50, f(&g["ttft_ms"]["p50"]));
    }
    if scored > 0.0 {
        row.score = Some(score_sum / scored);
        row.pass_rate = Some(pass_sum / scored);
    }
    if groups.len() == 1 {
        row.ci95 = groups[0]["ci95"].as_array().and_then(|a| Some([f(a.first()?)?, f(a.get(1)?)?]));
    }
    if n > 0 {
        row.error_rate = Some(errors as f64 / n as f64);
        row.attempts = Some(n);
    }
    row.tokens = tokens;
    row.cost_usd = cost;
}

/// One attempt of one case, as the run detail page lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CaseRow {
    /// Case id.
    pub case_id: String,
    /// Agent.
    pub agent: String,
    /// Model.
    pub model: String,
    /// Repetition, 0-based.
    pub repetition: u64,
    /// Score 0..1.
    pub score: Option<f64>,
    /// Passed its threshold.
    pub passed: Option<bool>,
    /// Facts found in the answer.
    pub matched: Vec<String>,
    /// Facts missing.
    pub missed: Vec<String>,
    /// Forbidden claims made.
    pub forbidden: Vec<String>,
    /// Wall time, ms.
    pub latency_ms: Option<f64>,
    /// Time to first token, ms.
    pub ttft_ms: Option<f64>,
    /// Prompt tokens.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens.
    pub completion_tokens: Option<u64>,
    /// Cost, dollars.
    pub cost_usd: Option<f64>,
    /// Why the attempt failed.
    pub error: Option<String>,
    /// The agent's answer (rendered as text, never as HTML).
    pub answer: String,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
}

/// The attempts of a benchmark or suite result (empty for other kinds).
pub fn cases(result: Option<&Value>) -> Vec<CaseRow> {
    let Some(items) = result.and_then(|r| r["cases"].as_array()) else { return Vec::new() };
    items
        .iter()
        .map(|c| CaseRow {
            case_id: c["case_id"].as_str().unwrap_or("?").to_owned(),
            agent: c["agent"].as_str().unwrap_or_default().to_owned(),
            model: c["model"].as_str().unwrap_or_default().to_owned(),
            repetition: c["repetition"].as_u64().unwrap_or(0),
            score: f(&c["score"]),
            passed: c["passed"].as_bool(),
            matched: strings(&c["matched"]),
            missed: strings(&c["missed"]),
            forbidden: strings(&c["forbidden"]),
            latency_ms: f(&c["latency_ms"]),
            ttft_ms: f(&c["ttft_ms"]),
            prompt_tokens: c["prompt_tokens"].as_u64(),
            completion_tokens: c["completion_tokens"].as_u64(),
            cost_usd: f(&c["cost_usd"]),
            error: c["error"].as_str().filter(|e| !e.is_empty()).map(str::to_owned),
            answer: c["answer"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}

/// What the comparison concludes about a candidate against the baseline.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse score (beyond noise) or much slower.
    Regression,
    /// Better score beyond noise.
    Improvement,
    /// Within noise.
    NoChange,
    /// Not enough data (a run without a score).
    Unknown,
}

/// A score difference smaller than this is noise when no confidence interval is known.
pub const SCORE_NOISE: f64 = 0.05;

/// A p95 latency more than this factor above the baseline's is a regression.
pub const LATENCY_REGRESSION_FACTOR: f64 = 1.2;

/// One candidate against the baseline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Delta {
    /// Candidate's summary.
    pub run: RunSummary,
    /// Score difference (candidate − baseline).
    pub score: Option<f64>,
    /// p95 latency difference, ms.
    pub latency_p95: Option<f64>,
    /// Cost difference, dollars.
    pub cost_usd: Option<f64>,
    /// Token difference.
    pub tokens: Option<i64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub reason: String,
}

/// Compares `candidate` with `baseline`.
///
/// The score decides first: when both runs have a 95% interval, a regression means the
/// candidate's upper bound is below the baseline's lower bound (and an improvement the
/// mirror image); without intervals, a difference beyond [`SCORE_NOISE`]. A p95 latency
/// more than [`LATENCY_REGRESSION_FACTOR`] times the baseline's is also a regression.
pub fn compare(baseline: &RunSummary, candidate: &RunSummary) -> Delta {
    let sub = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
    let score = sub(candidate.score, baseline.score);
    let latency_p95 = sub(candidate.latency_p95, baseline.latency_p95);
    let cost_usd = sub(candidate.cost_usd, baseline.cost_usd);
    let tokens = match (candidate.tokens, baseline.tokens) {
        (Some(a), Some(b)) => Some(a as i64 - b as i64),
        _ => None,
    };
    let (verdict, reason) = match (baseline.score, candidate.score) {
        (Some(b), Some(c)) => match (baseline.ci95, candidate.ci95) {
            (Some(bi), Some(ci)) if ci[1] < bi[0] => {
                (Verdict::Regression, format!("score {c:.3} vs {b:.3}: the 95% intervals do not overlap"))
            }
            (Some(bi), Some(ci)) if ci[0] > bi[1] => {
                (Verdict::Improvement, format!("score {c:.3} vs {b:.3}: the 95% intervals do not overlap"))
            }
            (Some(_), Some(_)) => (Verdict::NoChange, format!("score {c:.3} vs {b:.3}: the 95% intervals overlap")),
            _ if c < b - SCORE_NOISE => {
                (Verdict::Regression, format!("score {c:.3} vs {b:.3}: more than {SCORE_NOISE} lower"))
            }
            _ if c > b + SCORE_NOISE => {
                (Verdict::Improvement, format!("score {c:.3} vs {b:.3}: more than {SCORE_NOISE} higher"))
            }
            _ => (Verdict::NoChange, format!("score {c:.3} vs {b:.3}: within {SCORE_NOISE}")),
        },
        _ => (Verdict::Unknown, "one of the runs has no score".to_owned()),
    };
    let (verdict, reason) = match (baseline.latency_p95, candidate.latency_p95) {
        (Some(b), Some(c)) if b > 0.0 && c > b * LATENCY_REGRESSION_FACTOR && verdict != Verdict::Regression => (
            Verdict::Regression,
            format!("p95 latency {c:.0} ms vs {b:.0} ms: more than {LATENCY_REGRESSION_FACTOR}× slower"),
        ),
        _ => (verdict, reason),
    };
    Delta { run: candidate.clone(), score, latency_p95, cost_usd, tokens, verdict, reason }
}

/// One agent × model line of the leaderboard.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LeaderRow {
    /// Agent.
    pub agent: String,
    /// Model.
    pub model: String,
    /// Runs counted.
    pub runs: u64,
    /// Mean of the runs' mean scores.
    pub mean_score: Option<f64>,
    /// Best run's score.
    pub best_score: Option<f64>,
    /// Mean p95 latency, ms.
    pub latency_p95: Option<f64>,
    /// Total cost, dollars.
    pub cost_usd: Option<f64>,
}

/// Groups succeeded runs' per-(agent, model) results into a leaderboard, best mean score
/// first.
pub fn leaderboard(jobs: &[JobView]) -> Vec<LeaderRow> {
    #[derive(Default)]
    struct Acc {
        runs: u64,
        scores: Vec<f64>,
        p95: Vec<f64>,
        cost: Option<f64>,
    }
    let mut acc: BTreeMap<(String, String), Acc> = BTreeMap::new();
    for job in jobs {
        let Some(groups) = job.result.as_ref().and_then(|r| r["summary"]["groups"].as_array()) else { continue };
        for g in groups {
            let key = (g["agent"].as_str().unwrap_or("?").to_owned(), g["model"].as_str().unwrap_or("?").to_owned());
            let a = acc.entry(key).or_default();
            a.runs += 1;
            if let Some(s) = f(&g["mean_score"]) {
                a.scores.push(s);
            }
            if let Some(p) = f(&g["latency_ms"]["p95"]) {
                a.p95.push(p);
            }
            if let Some(c) = f(&g["cost_usd"]) {
                a.cost = Some(a.cost.unwrap_or(0.0) + c);
            }
        }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let mut rows: Vec<LeaderRow> = acc
        .into_iter()
        .map(|((agent, model), a)| LeaderRow {
            agent,
            model,
            runs: a.runs,
            mean_score: mean(&a.scores),
            best_score: a.scores.iter().copied().reduce(f64::max),
            latency_p95: mean(&a.p95),
            cost_usd: a.cost,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.mean_score.unwrap_or(-1.0).partial_cmp(&a.mean_score.unwrap_or(-1.0)).unwrap_or(std::cmp::Ordering::Equal)
    });
    rows
}

/// One point of a load-test curve (one offered rate).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoadPoint {
    /// Offered request rate (requests/s), or the step's index when the result names none.
    pub rate: f64,
    /// TTFT percentiles, ms.
    pub ttft: BTreeMap<String, f64>,
    /// Inter-token latency percentiles, ms.
    pub itl: BTreeMap<String, f64>,
    /// Time per output token percentiles, ms.
    pub tpot: BTreeMap<String, f64>,
    /// End-to-end latency percentiles, ms.
    pub e2e: BTreeMap<String, f64>,
    /// Completed requests per second.
    pub request_throughput: Option<f64>,
    /// Output tokens per second.
    pub output_token_throughput: Option<f64>,
    /// Requests per second meeting the SLO.
    pub goodput: Option<f64>,
    /// Share of failed requests.
    pub error_rate: Option<f64>,
}

const RATE_KEYS: [&str; 6] = ["rate", "request_rate", "target_rate", "rps", "qps", "concurrency"];
const STEP_KEYS: [&str; 6] = ["steps", "points", "sweep", "rates", "results", "stages"];

fn stats(v: &Value) -> BTreeMap<String, f64> {
    v.as_object().map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), f(v)?))).collect()).unwrap_or_default()
}

fn point(metrics: &Value, rate: f64) -> LoadPoint {
    LoadPoint {
        rate,
        ttft: stats(&metrics["ttft_ms"]),
        itl: stats(&metrics["itl_ms"]),
        tpot: stats(&metrics["tpot_ms"]),
        e2e: stats(&metrics["e2e_ms"]),
        request_throughput: f(&metrics["request_throughput"]),
        output_token_throughput: f(&metrics["output_token_throughput"]),
        goodput: f(&metrics["goodput"]),
        error_rate: f(&metrics["error_rate"]),
    }
}

fn rate_of(v: &Value) -> Option<f64> {
    RATE_KEYS.iter().find_map(|k| f(&v[*k]))
}

/// The load curve of an `llm-load` result: one point per rate step when the result has
/// steps (`steps`, `points`, `sweep`, … each with a rate and `metrics`), else one point
/// from the top-level `metrics` at the request's rate. Sorted by rate.
pub fn load_points(request: &Value, result: Option<&Value>) -> Vec<LoadPoint> {
    let Some(result) = result else { return Vec::new() };
    for key in STEP_KEYS {
        if let Some(steps) = result[key].as_array() {
            let mut points: Vec<LoadPoint> = steps
                .iter()
                .enumerate()
                .filter(|(_, s)| s["metrics"].is_object())
                .map(|(i, s)| point(&s["metrics"], rate_of(s).unwrap_or(i as f64 + 1.0)))
                .collect();
            if !points.is_empty() {
                points.sort_by(|a, b| a.rate.partial_cmp(&b.rate).unwrap_or(std::cmp::Ordering::Equal));
                return points;
            }
        }
    }
    if result["metrics"].is_object() {
        let rate = rate_of(result).or_else(|| rate_of(request)).unwrap_or(1.0);
        return vec![point(&result["metrics"], rate)];
    }
    Vec::new()
}

/// The CSV export of a run: one line per attempt (or one summary line for other kinds).
pub fn csv(summary: &RunSummary, cases: &[CaseRow]) -> String {
    fn cell(s: &str) -> String {
        // Quote everything; double quotes inside; neutralise spreadsheet formulas.
        let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_owned() };
        format!("\"{}\"", s.replace('"', "\"\""))
    }
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let optu = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
    let mut out = String::new();
    if cases.is_empty() {
        out.push_str("run_id,kind,status,agent,model,suite,score,duration_s,tokens,cost_usd\n");
        let line = [
            cell(&summary.id),
            cell(&summary.kind),
            cell(&summary.status),
            cell(summary.agent.as_deref().unwrap_or("")),
            cell(summary.model.as_deref().unwrap_or("")),
            cell(summary.suite.as_deref().unwrap_or("")),
            opt(summary.score),
            opt(summary.duration_s),
            optu(summary.tokens),
            opt(summary.cost_usd),
        ];
        out.push_str(&line.join(","));
        out.push('\n');
        return out;
    }
    out.push_str("run_id,case_id,agent,model,repetition,score,passed,matched,missed,latency_ms,ttft_ms,prompt_tokens,completion_tokens,cost_usd,error,answer\n");
    for c in cases {
        let line = [
            cell(&summary.id),
            cell(&c.case_id),
            cell(&c.agent),
            cell(&c.model),
            c.repetition.to_string(),
            opt(c.score),
            c.passed.map(|p| p.to_string()).unwrap_or_default(),
            cell(&c.matched.join(" ")),
            cell(&c.missed.join(" ")),
            opt(c.latency_ms),
            opt(c.ttft_ms),
            optu(c.prompt_tokens),
            optu(c.completion_tokens),
            opt(c.cost_usd),
            cell(c.error.as_deref().unwrap_or("")),
            cell(&c.answer),
        ];
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(result: Value, request: Value) -> JobView {
        serde_json::from_value(json!({
            "job_id": "j1", "tenant_id": "t", "kind": "benchmark", "status": "succeeded", "message": null,
            "request": request, "result": result, "error": null,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:10Z",
            "started_at": "2026-01-01T00:00:01Z", "finished_at": "2026-01-01T00:00:11Z", "attempts": 1
        }))
        .expect("job view")
    }

    fn group(agent: &str, model: &str, mean: f64, scored: u64) -> Value {
        json!({"agent": agent, "model": model, "n": scored, "scored": scored, "errors": 1, "mean_score": mean,
               "pass_rate": 0.5, "ci95": [mean / 2.0, mean.midpoint(1.0)], "error_rate": 0.1,
               "latency_ms": {"p50": 100.0, "p95": 200.0, "max": 300.0}, "ttft_ms": {"p50": 5.0, "p95": 9.0},
               "tokens": {"prompt_total": 10, "completion_total": 90}, "cost_usd": 0.25})
    }

    /// A benchmark result folds into one row; a suite's groups are weighted by attempts.
    #[test]
    fn summary_of_benchmark_and_suite() {
        let one = summarize(&job(
            json!({"passed": true, "summary": {"groups": [group("llm", "m", 0.8, 4)]}}),
            json!({"agent": "llm", "model": "m", "suite": "sre-basics"}),
        ));
        assert_eq!(
            (one.score, one.ci95, one.tokens, one.cost_usd),
            (Some(0.8), Some([0.4, 0.9]), Some(100), Some(0.25))
        );
        assert_eq!((one.duration_s, one.passed, one.suite.as_deref()), (Some(10.0), Some(true), Some("sre-basics")));
        assert_eq!(one.throughput_tps, Some(9.0));
        let two = summarize(&job(
            json!({"summary": {"groups": [group("a", "m", 1.0, 3), group("b", "m", 0.0, 1)]}}),
            json!({"agents": ["a", "b"], "models": ["m"]}),
        ));
        assert_eq!(two.score, Some(0.75));
        assert_eq!(two.ci95, None, "no single interval for a matrix");
        assert_eq!(two.agent.as_deref(), Some("a, b"));
        assert_eq!(two.error_rate, Some(0.5));
    }

    /// A result without the expected shape gives empty cells, not a panic.
    #[test]
    fn malformed_results_are_empty() {
        for result in [Value::Null, json!("text"), json!({"summary": {"groups": "x"}}), json!({"cases": [1, "a"]})] {
            let s = summarize(&job(result.clone(), json!([])));
            assert_eq!((s.score, s.tokens, s.cost_usd), (None, None, None));
            for c in cases(Some(&result)) {
                assert_eq!(c.case_id, "?");
            }
        }
        assert!(load_points(&Value::Null, Some(&json!({"metrics": 3}))).is_empty());
    }

    /// Verdicts: overlapping intervals are no change; separated ones regress or improve;
    /// a much slower p95 regresses; a run without score is unknown.
    #[test]
    fn verdicts() {
        let base = summarize(&job(json!({"summary": {"groups": [group("a", "m", 0.8, 4)]}}), json!({})));
        let mut cand = base.clone();
        assert_eq!(compare(&base, &cand).verdict, Verdict::NoChange);
        cand.score = Some(0.3);
        cand.ci95 = Some([0.2, 0.35]);
        assert_eq!(compare(&base, &cand).verdict, Verdict::Regression);
        cand.score = Some(0.99);
        cand.ci95 = Some([0.95, 1.0]);
        assert_eq!(compare(&base, &cand).verdict, Verdict::Improvement);
        let mut slow = base.clone();
        slow.latency_p95 = Some(1000.0);
        let d = compare(&base, &slow);
        assert_eq!(d.verdict, Verdict::Regression, "{}", d.reason);
        assert_eq!(d.latency_p95, Some(800.0));
        let mut none = base.clone();
        none.score = None;
        assert_eq!(compare(&base, &none).verdict, Verdict::Unknown);
        let mut noci = base.clone();
        noci.ci95 = None;
        noci.score = Some(0.7);
        assert_eq!(compare(&base, &noci).verdict, Verdict::Regression);
    }

    /// The leaderboard ranks agent × model by mean score.
    #[test]
    fn leaderboard_ranks() {
        let jobs = vec![
            job(json!({"summary": {"groups": [group("a", "m1", 0.2, 2)]}}), json!({})),
            job(json!({"summary": {"groups": [group("a", "m2", 0.9, 2), group("b", "m1", 0.5, 2)]}}), json!({})),
            job(json!({"summary": {"groups": [group("a", "m1", 0.4, 2)]}}), json!({})),
        ];
        let rows = leaderboard(&jobs);
        let order: Vec<(&str, &str)> = rows.iter().map(|r| (r.agent.as_str(), r.model.as_str())).collect();
        assert_eq!(order, vec![("a", "m2"), ("b", "m1"), ("a", "m1")]);
        assert_eq!(rows[2].runs, 2);
        assert!((rows[2].mean_score.unwrap_or(0.0) - 0.3).abs() < 1e-9);
    }

    /// Load results: steps with rates become a sorted curve; a single `metrics` is one
    /// point at the request's rate.
    #[test]
    fn load_curves() {
        let m = |t: f64| json!({"ttft_ms": {"p50": t, "p99": t * 2.0}, "request_throughput": t / 10.0});
        let steps = json!({"steps": [{"rate": 8, "metrics": m(80.0)}, {"rate": 2, "metrics": m(20.0)}]});
        let pts = load_points(&json!({}), Some(&steps));
        assert_eq!(pts.iter().map(|p| p.rate).collect::<Vec<_>>(), vec![2.0, 8.0]);
        assert_eq!(pts[1].ttft.get("p99"), Some(&160.0));
        let single = load_points(&json!({"rate": 5}), Some(&json!({"metrics": m(10.0)})));
        assert_eq!((single.len(), single[0].rate, single[0].request_throughput), (1, 5.0, Some(1.0)));
        assert!(load_points(&json!({}), None).is_empty());
    }

    /// CSV cells are quoted, quotes doubled, formulas neutralised.
    #[test]
    fn csv_is_safe() {
        let s = summarize(&job(Value::Null, json!({})));
        let row = CaseRow {
            case_id: "c\"1".into(),
            agent: "=cmd()".into(),
            model: "m".into(),
            repetition: 0,
            score: Some(1.0),
            passed: Some(true),
            matched: vec!["a".into(), "b".into()],
            missed: vec![],
            forbidden: vec![],
            latency_ms: None,
            ttft_ms: None,
            prompt_tokens: Some(1),
            completion_tokens: None,
            cost_usd: None,
            error: None,
            answer: "line1\nline2".into(),
        };
        let text = csv(&s, &[row]);
        assert!(text.contains("\"c\"\"1\""));
        assert!(text.contains("\"'=cmd()\""));
        assert!(text.contains("\"a b\""));
        assert!(csv(&s, &[]).starts_with("run_id,kind,status"));
    }
}
