//! Read-only pages: Runs, Run detail (with the live event proxy, exports and artifact
//! downloads), Compare, Schedules, E-Stop, Load results and System.

use crate::guard::Ctx;
use crate::view::{self, RunSummary};
use crate::UiState;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use futures_util::StreamExt;
use minijinja::{context, Value};
use rune_client::{ClientError, ListJobs};
use rune_core::api::JobView;
use serde::Deserialize;
use std::collections::HashSet;

/// Rows per Runs page unless `limit` says otherwise.
pub const DEFAULT_PAGE: u32 = 50;

/// API pages scanned at most when filtering by agent, model or suite (the API cannot
/// filter on request fields, so the UI filters what it reads).
pub const MAX_SCAN_PAGES: usize = 10;

/// Most runs on one Compare page.
pub const MAX_COMPARE: usize = 10;

/// Renders `name` as a whole page (with the E-Stop banner), or only the block named by
/// the htmx target when the request came from htmx.
pub async fn page(ui: &UiState, ctx: &Ctx, name: &str, active: &str, vars: Value) -> Response {
    let estop = match (&ctx.hx_target, ctx.client()) {
        (None, Ok(client)) => client.estop_status().await.ok(),
        _ => None,
    };
    let all = context! {
        csrf => ctx.session.csrf,
        tenant => ctx.session.tenant,
        auth_required => ctx.auth_required,
        active => active,
        estop => estop,
        version => env!("CARGO_PKG_VERSION"),
        ..vars
    };
    let rendered = ui.templates().get_template(name).and_then(|tmpl| {
        if let Some(target) = &ctx.hx_target {
            let block = target.replace('-', "_");
            let mut captured = tmpl.render_captured(all.clone())?;
            if let Ok(html) = captured.with_state_mut(|state| state.render_block(&block)) {
                return Ok(html);
            }
        }
        tmpl.render(all)
    });
    match rendered {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered; see the UI server log").into_response()
        }
    }
}

/// The error page for a failed API call; a 401 (token revoked) sends the user to log in.
pub fn fail(ui: &UiState, ctx: &Ctx, err: ClientError) -> Response {
    let status = match err.status() {
        Some(401) => {
            ui.sessions().remove(&ctx.session.id);
            return crate::guard::redirect(ctx.hx_target.is_some(), "/login");
        }
        Some(404) => StatusCode::NOT_FOUND,
        Some(s) if (400..500).contains(&s) => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_GATEWAY,
    };
    error_page(ui, ctx.session.csrf.as_str(), status, &err.to_string())
}

/// The page shown when the API cannot be reached at all.
pub fn api_down(ui: &UiState, err: &ClientError) -> Response {
    let message = format!("{err}. Check that the RUNE API is running at {}.", ui.config().api_base_url);
    error_page(ui, "", StatusCode::BAD_GATEWAY, &message)
}

fn error_page(ui: &UiState, csrf: &str, status: StatusCode, message: &str) -> Response {
    let html = ui
        .templates()
        .get_template("error.html")
        .and_then(|t| t.render(context! { status => status.as_u16(), message => message, csrf => csrf }))
        .unwrap_or_else(|_| "error".to_owned());
    (status, Html(html)).into_response()
}

/// `GET /`: the runs list.
pub async fn home() -> Response {
    crate::guard::redirect(false, "/runs")
}

/// Filters of the Runs page (every one optional; empty means unset).
#[derive(Debug, Default, Deserialize, Clone, serde::Serialize)]
pub struct RunsQuery {
    /// Job kind.
    pub kind: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Agent (substring).
    pub agent: Option<String>,
    /// Model (substring).
    pub model: Option<String>,
    /// Suite (substring).
    pub suite: Option<String>,
    /// Created on or after (date or RFC 3339).
    pub from: Option<String>,
    /// Created before.
    pub to: Option<String>,
    /// Sort column: created (default), score, duration, tokens, cost.
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    pub dir: Option<String>,
    /// Page cursor from the API.
    pub cursor: Option<String>,
    /// Rows per page.
    pub limit: Option<u32>,
}

fn set(v: &Option<String>) -> Option<String> {
    v.as_ref().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn contains(hay: &Option<String>, needle: &Option<String>) -> bool {
    match needle {
        None => true,
        Some(n) => hay.as_ref().is_some_and(|h| h.to_lowercase().contains(&n.to_lowercase())),
    }
}

/// Sorts summaries in place by `column` (missing values last).
pub fn sort_rows(rows: &mut [RunSummary], column: &str, asc: bool) {
    let key = |r: &RunSummary| -> Option<f64> {
        match column {
            "score" => r.score,
            "duration" => r.duration_s,
            "tokens" => r.tokens.map(|t| t as f64),
            "cost" => r.cost_usd,
            _ => None,
        }
    };
    if !matches!(column, "score" | "duration" | "tokens" | "cost") {
        return;
    }
    rows.sort_by(|a, b| match (key(a), key(b)) {
        (Some(x), Some(y)) => {
            let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
            if asc {
                o
            } else {
                o.reverse()
            }
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

/// `GET /runs`: filter, sort, paginate by cursor.
pub async fn runs(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>, Query(q): Query<RunsQuery>) -> Response {
    let client = match ctx.client() {
        Ok(c) => c,
        Err(e) => return fail(&ui, &ctx, e),
    };
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, 500);
    let (agent, model, suite) = (set(&q.agent), set(&q.model), set(&q.suite));
    let local_filter = agent.is_some() || model.is_some() || suite.is_some();
    let asc = q.dir.as_deref() == Some("asc");
    let mut filter = ListJobs {
        kind: set(&q.kind),
        status: set(&q.status),
        created_after: set(&q.from),
        created_before: set(&q.to),
        order: Some(if asc && set(&q.sort).is_none_or(|s| s == "created") { "asc" } else { "desc" }.into()),
        limit: Some(if local_filter { (limit * 4).clamp(100, 500) } else { limit }),
        cursor: set(&q.cursor),
    };
    let mut rows = Vec::new();
    let mut next_cursor = None;
    for _ in 0..MAX_SCAN_PAGES {
        let page = match client.list_jobs(&filter).await {
            Ok(p) => p,
            Err(e) if e.status() == Some(422) || e.status() == Some(400) => {
                let vars = context! { error => e.to_string(), q => q, rows => Vec::<RunSummary>::new() };
                return page(&ui, &ctx, "runs.html", "runs", vars).await;
            }
            Err(e) => return fail(&ui, &ctx, e),
        };
        for job in &page.jobs {
            let row = view::summarize(job);
            if contains(&row.agent, &agent) && contains(&row.model, &model) && contains(&row.suite, &suite) {
                rows.push(row);
            }
        }
        next_cursor = page.next_cursor;
        if !local_filter || rows.len() >= limit as usize || next_cursor.is_none() {
            break;
        }
        filter.cursor = next_cursor.clone();
    }
    if let Some(col) = set(&q.sort) {
        sort_rows(&mut rows, &col, asc);
    }
    let kinds: Vec<String> = rune_core::JobKind::ALL.iter().map(|k| k.to_string()).collect();
    let vars = context! { q => q, rows => rows, next_cursor => next_cursor, kinds => kinds,
    statuses => ["queued", "running", "succeeded", "failed", "cancelled"] };
    page(&ui, &ctx, "runs.html", "runs", vars).await
}

/// Loads one job, mapping errors to the error page.
async fn load_job(ui: &UiState, ctx: &Ctx, id: &str) -> Result<JobView, Response> {
    let client = ctx.client().map_err(|e| fail(ui, ctx, e))?;
    client.get_job(id).await.map_err(|e| fail(ui, ctx, e))
}

/// `GET /runs/{id}`: status timeline, live events, per-case scores, charts, cost,
/// errors, artifacts, the config used and the actions.
pub async fn run(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    let job = match load_job(&ui, &ctx, &id).await {
        Ok(j) => j,
        Err(resp) => return resp,
    };
    let Ok(client) = ctx.client() else { return fail(&ui, &ctx, ClientError::Config("no session".into())) };
    let (events, artifacts) = tokio::join!(client.events(&id, 0), client.artifacts(&id));
    let events = events.map(|e| e.events).unwrap_or_default();
    let artifacts = artifacts.map(|a| a.artifacts).unwrap_or_default();
    let summary = view::summarize(&job);
    let cases = view::cases(job.result.as_ref());
    let chart = serde_json::json!({
        "labels": cases.iter().map(|c| format!("{}#{}", c.case_id, c.repetition)).collect::<Vec<_>>(),
        "latency_ms": cases.iter().map(|c| c.latency_ms).collect::<Vec<_>>(),
        "ttft_ms": cases.iter().map(|c| c.ttft_ms).collect::<Vec<_>>(),
        "prompt_tokens": cases.iter().map(|c| c.prompt_tokens).collect::<Vec<_>>(),
        "completion_tokens": cases.iter().map(|c| c.completion_tokens).collect::<Vec<_>>(),
    });
    let request_text = serde_json::to_string_pretty(&job.request).unwrap_or_default();
    let answer = job.result.as_ref().and_then(|r| r["answer"].as_str()).filter(|a| !a.is_empty());
    let timeline = timeline(&job);
    let vars = context! { job => job, summary => summary, cases => cases, events => events,
    artifacts => artifacts, chart => chart, request_text => request_text,
    answer => answer, timeline => timeline,
    last_event_id => events_last_id(&events) };
    page(&ui, &ctx, "run.html", "runs", vars).await
}

fn events_last_id(events: &[rune_core::records::JobEvent]) -> i64 {
    events.last().map(|e| e.id).unwrap_or(0)
}

/// The status timeline: each step reached, when, and how long after the previous.
fn timeline(job: &JobView) -> Vec<serde_json::Value> {
    let mut steps = vec![serde_json::json!({"status": "queued", "at": job.created_at, "after_s": null})];
    let mut prev = job.created_at.clone();
    if let Some(s) = &job.started_at {
        steps.push(serde_json::json!({"status": "running", "at": s, "after_s": view::seconds_between(&prev, s)}));
        prev = s.clone();
    }
    if let Some(f) = &job.finished_at {
        steps.push(
            serde_json::json!({"status": job.status.to_string(), "at": f, "after_s": view::seconds_between(&prev, f)}),
        );
    }
    steps
}

/// `GET /runs/{id}/live`: the API's trace stream, proxied with the user's token (the
/// browser never sees it). Resumes after `Last-Event-ID` on reconnect; ends after the
/// `end` event.
pub async fn live(
    State(ui): State<UiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let last = headers.get("Last-Event-ID").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let client = match ctx.client() {
        Ok(c) => c.clone(),
        Err(e) => return fail(&ui, &ctx, e),
    };
    let stream = match client.trace(&id, last).await {
        Ok(s) => s,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let events = stream.map(|item| {
        let ev = match item {
            Ok(ev) => {
                let mut out = Event::default().event(ev.event).data(ev.data);
                if let Some(id) = ev.id.filter(|i| !i.contains(['\n', '\r'])) {
                    out = out.id(id);
                }
                out
            }
            Err(e) => Event::default().event("problem").data(e.to_string()),
        };
        Ok::<_, std::convert::Infallible>(ev)
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

fn download(name: &str, content_type: &str, body: Vec<u8>) -> Response {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{safe}\"")),
        ],
        body,
    )
        .into_response()
}

/// `GET /runs/{id}/export.json`: the job as the API returns it.
pub async fn export_json(
    State(ui): State<UiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    match load_job(&ui, &ctx, &id).await {
        Ok(job) => download(
            &format!("rune-run-{id}.json"),
            "application/json",
            serde_json::to_vec_pretty(&job).unwrap_or_default(),
        ),
        Err(resp) => resp,
    }
}

/// `GET /runs/{id}/export.csv`: one line per attempt.
pub async fn export_csv(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    match load_job(&ui, &ctx, &id).await {
        Ok(job) => {
            let text = view::csv(&view::summarize(&job), &view::cases(job.result.as_ref()));
            download(&format!("rune-run-{id}.csv"), "text/csv; charset=utf-8", text.into_bytes())
        }
        Err(resp) => resp,
    }
}

/// `GET /runs/{id}/artifacts/{artifact_id}`: downloads an artifact through the API.
pub async fn artifact(
    State(ui): State<UiState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, artifact_id)): Path<(String, String)>,
) -> Response {
    let client = match ctx.client() {
        Ok(c) => c,
        Err(e) => return fail(&ui, &ctx, e),
    };
    let name = client
        .artifacts(&id)
        .await
        .ok()
        .and_then(|l| l.artifacts.into_iter().find(|a| a.artifact_id == artifact_id).map(|a| a.name))
        .unwrap_or_else(|| artifact_id.clone());
    match client.artifact(&id, &artifact_id).await {
        // Served as a download, never rendered inline: an HTML artifact cannot run here.
        Ok((_, bytes)) => download(&name, "application/octet-stream", bytes),
        Err(e) => fail(&ui, &ctx, e),
    }
}

/// `GET /compare?ids=A&ids=B…`: side by side with deltas against the first run and a
/// verdict; without ids, the agent × model leaderboard of recent runs.
pub async fn compare(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>, RawQuery(raw): RawQuery) -> Response {
    let client = match ctx.client() {
        Ok(c) => c,
        Err(e) => return fail(&ui, &ctx, e),
    };
    let mut ids: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for pair in raw.as_deref().unwrap_or("").split('&') {
        if let Some(("ids", v)) = pair.split_once('=') {
            let v = v.trim().to_owned();
            if !v.is_empty() && seen.insert(v.clone()) && ids.len() < MAX_COMPARE {
                ids.push(v);
            }
        }
    }
    let mut jobs = Vec::new();
    for id in &ids {
        match client.get_job(id).await {
            Ok(j) => jobs.push(j),
            Err(e) => return fail(&ui, &ctx, e),
        }
    }
    let leader_source = if jobs.is_empty() {
        let mut recent = Vec::new();
        for kind in ["benchmark", "suite"] {
            let filter = ListJobs {
                kind: Some(kind.into()),
                status: Some("succeeded".into()),
                limit: Some(100),
                ..Default::default()
            };
            if let Ok(page) = client.list_jobs(&filter).await {
                recent.extend(page.jobs);
            }
        }
        recent
    } else {
        jobs.clone()
    };
    let leaderboard = view::leaderboard(&leader_source);
    let summaries: Vec<RunSummary> = jobs.iter().map(view::summarize).collect();
    let deltas: Vec<view::Delta> = match summaries.split_first() {
        Some((base, rest)) => rest.iter().map(|c| view::compare(base, c)).collect(),
        None => Vec::new(),
    };
    let max = |f: fn(&RunSummary) -> Option<f64>| summaries.iter().filter_map(f).fold(0.0_f64, f64::max);
    let maxima = context! {
        score => 1.0,
        latency => max(|r| r.latency_p95.or(r.latency_p50)),
        tokens => max(|r| r.tokens.map(|t| t as f64)),
        cost => max(|r| r.cost_usd),
        throughput => max(|r| r.throughput_tps),
    };
    let regression = deltas.iter().any(|d| d.verdict == view::Verdict::Regression);
    let vars = context! { runs => summaries, deltas => deltas, leaderboard => leaderboard, maxima => maxima,
    regression => regression, ids => ids };
    page(&ui, &ctx, "compare.html", "compare", vars).await
}

/// `GET /schedules`: every schedule with its last runs, and the create form.
pub async fn schedules(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>) -> Response {
    schedules_page(&ui, &ctx, None, Value::UNDEFINED).await
}

/// The Schedules page, optionally with a form error and the values to keep.
pub async fn schedules_page(ui: &UiState, ctx: &Ctx, error: Option<String>, form: Value) -> Response {
    let client = match ctx.client() {
        Ok(c) => c,
        Err(e) => return fail(ui, ctx, e),
    };
    let list = match client.list_schedules().await {
        Ok(l) => l.schedules,
        Err(e) => return fail(ui, ctx, e),
    };
    let mut rows = Vec::new();
    for s in list {
        let runs = client.schedule_jobs(&s.schedule_id, 5).await.map(|p| p.jobs).unwrap_or_default();
        let runs: Vec<RunSummary> = runs.iter().map(view::summarize).collect();
        rows.push(context! { s => s, runs => runs });
    }
    let kinds: Vec<String> = rune_core::JobKind::ALL.iter().map(|k| k.to_string()).collect();
    let vars = context! { schedules => rows, error => error, form => form, kinds => kinds };
    page(ui, ctx, "schedules.html", "schedules", vars).await
}

/// `GET /estop`: status and the trigger/release forms.
pub async fn estop(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>) -> Response {
    let status = match ctx.client() {
        Ok(c) => c.estop_status().await,
        Err(e) => Err(e),
    };
    match status {
        Ok(s) => page(&ui, &ctx, "estop.html", "estop", context! { status => s }).await,
        Err(e) => fail(&ui, &ctx, e),
    }
}

/// `GET /load`: the `llm-load` runs.
pub async fn load_list(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>) -> Response {
    let client = match ctx.client() {
        Ok(c) => c,
        Err(e) => return fail(&ui, &ctx, e),
    };
    let filter = ListJobs { kind: Some("llm-load".into()), limit: Some(100), ..Default::default() };
    let (rows, error) = match client.list_jobs(&filter).await {
        Ok(p) => (p.jobs.iter().map(view::summarize).collect::<Vec<_>>(), None),
        Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => (Vec::new(), Some(e.to_string())),
        Err(e) => return fail(&ui, &ctx, e),
    };
    page(&ui, &ctx, "load_list.html", "load", context! { rows => rows, error => error }).await
}

/// `GET /load/{id}`: TTFT, ITL and throughput against the offered rate.
pub async fn load(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    let job = match load_job(&ui, &ctx, &id).await {
        Ok(j) => j,
        Err(resp) => return resp,
    };
    let points = view::load_points(&job.request, job.result.as_ref());
    let pick = |f: fn(&view::LoadPoint) -> Option<f64>| points.iter().map(f).collect::<Vec<_>>();
    let chart = serde_json::json!({
        "rate": points.iter().map(|p| p.rate).collect::<Vec<_>>(),
        "ttft_p50": pick(|p| p.ttft.get("p50").copied()),
        "ttft_p99": pick(|p| p.ttft.get("p99").copied()),
        "itl_p50": pick(|p| p.itl.get("p50").copied()),
        "itl_p99": pick(|p| p.itl.get("p99").copied()),
        "request_throughput": pick(|p| p.request_throughput),
        "output_token_throughput": pick(|p| p.output_token_throughput),
        "goodput": pick(|p| p.goodput),
    });
    let summary = view::summarize(&job);
    let vars = context! { job => job, summary => summary, points => points, chart => chart };
    page(&ui, &ctx, "load.html", "load", vars).await
}

/// Reads `name`'s value (summed over label sets) from Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else { continue };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            total = Some(total.unwrap_or(0.0) + v);
        }
    }
    total
}

/// `GET /system`: API health and readiness, schema version, database engine, worker
/// pool, E-Stop, versions.
pub async fn system(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>) -> Response {
    let anon = ui.anonymous();
    let (health, ready, metrics) = tokio::join!(anon.health(), anon.ready(), anon.metrics_text());
    let metrics = metrics.ok();
    let m = |name: &str| metrics.as_deref().and_then(|t| metric(t, name));
    let pool = context! {
        workers => m("rune_workers"),
        busy => m("rune_workers_busy"),
        queue => m("rune_queue_depth"),
        estop => m("rune_estop_active"),
    };
    let vars = context! {
        health => health.as_ref().map(|h| h.status.clone()).map_err(|e| e.to_string()),
        health_ok => health.is_ok(),
        ready => ready.as_ref().ok(),
        ready_error => ready.as_ref().err().map(|e| e.to_string()),
        pool => pool,
        api_base_url => ui.config().api_base_url,
        sessions => ui.sessions().len(),
    };
    page(&ui, &ctx, "system.html", "system", vars).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prometheus values are summed over label sets; prefixes of other names are ignored.
    #[test]
    fn metric_parsing() {
        let text = "# HELP rune_workers x\nrune_workers 4\nrune_workers_busy 1\nrune_jobs{kind=\"a\"} 2\nrune_jobs{kind=\"b\"} 3\n";
        assert_eq!(metric(text, "rune_workers"), Some(4.0));
        assert_eq!(metric(text, "rune_workers_busy"), Some(1.0));
        assert_eq!(metric(text, "rune_jobs"), Some(5.0));
        assert_eq!(metric(text, "rune_missing"), None);
        assert_eq!(metric("rune_workers not-a-number", "rune_workers"), None);
    }

    /// Sorting puts missing values last in either direction.
    #[test]
    fn sorting() {
        let mk = |id: &str, score: Option<f64>| RunSummary {
            id: id.into(),
            kind: "benchmark".into(),
            status: "succeeded".into(),
            terminal: true,
            agent: None,
            model: None,
            suite: None,
            created_at: String::new(),
            duration_s: None,
            score,
            ci95: None,
            pass_rate: None,
            error_rate: None,
            tokens: None,
            cost_usd: None,
            latency_p50: None,
            latency_p95: None,
            ttft_p50: None,
            passed: None,
            attempts: None,
            throughput_tps: None,
        };
        let mut rows = vec![mk("a", Some(0.5)), mk("b", None), mk("c", Some(0.9))];
        sort_rows(&mut rows, "score", false);
        assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<String>(), "cab");
        sort_rows(&mut rows, "score", true);
        assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<String>(), "acb");
        sort_rows(&mut rows, "bogus", true);
        assert_eq!(rows.len(), 3);
    }
}
