//! `rune jobs list|get|cancel|watch`, against the local job database (`--backend
//! local`, the default) or a RUNE API server (`--backend http`).
//!
//! Both backends show the API's [`JobView`] shape, so `--output json` is the same
//! whichever way the jobs were read. No SQL here (the store does it); the local backend
//! never migrates or creates a database.

use super::remote::{Backend, RemoteConfig};
use super::Environment;
use crate::cli::{GlobalArgs, JobsCommand, JobsListArgs};
use crate::exit::{self, coded};
use crate::output::{print_json, print_table, OutputFormat};
use anyhow::{Context, Result};
use futures_util::StreamExt;
use rune_client::{ClientError, ListJobs, RuneClient};
use rune_core::api::{CancelResponse, JobList, JobView};
use rune_core::records::JobEvent;
use rune_core::{JobId, JobKind, JobStatus, Timestamp};
use rune_store::{Cursor, JobQuery, SortOrder, StatusUpdate, Store, UpdateOutcome};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Jobs shown by `jobs list` without --limit or --all (the API's default page).
const DEFAULT_LIST_LIMIT: u32 = 50;
/// How often `jobs watch` looks at the local database for new events.
const LOCAL_POLL: Duration = Duration::from_millis(500);
/// Events read from the local database per query.
const LOCAL_EVENT_BATCH: u32 = 200;
/// Times `jobs watch` reconnects a broken event stream in a row before giving up.
const MAX_RECONNECTS: u32 = 5;
/// Pause before reconnecting the event stream.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Longest DETAIL cell in `jobs list`.
const DETAIL_WIDTH: usize = 60;

/// Runs one `rune jobs` command.
pub async fn run(env: &Environment, global: &GlobalArgs, cmd: JobsCommand) -> Result<u8> {
    let source = Source::open(env, Backend::from_args(global)?).await?;
    match cmd {
        JobsCommand::List(args) => list(&source, ListRequest::from_args(args)?).await,
        JobsCommand::Get { id, output } => get(&source, &id, output).await,
        JobsCommand::Cancel { id, output } => cancel(&source, &id, output).await,
        JobsCommand::Watch { id, output } => watch(&source, &id, output).await,
    }
}

/// Where the jobs are read.
enum Source {
    /// The job database (all tenants: whoever holds the file sees every job).
    Local(Arc<dyn Store>),
    /// The API, as one tenant.
    Http { remote: RemoteConfig, client: RuneClient },
}

impl Source {
    async fn open(env: &Environment, backend: Backend) -> Result<Self> {
        match backend {
            Backend::Http(remote) => Ok(Source::Http { client: remote.client()?, remote }),
            Backend::Local => {
                let cwd = std::env::current_dir().unwrap_or_else(|_| env.home.clone());
                let url = rune_store::DatabaseUrl::parse(&env.database_url, &cwd)?;
                // Reading and cancelling must not migrate (or create) a database behind a
                // server's back: that is `rune db migrate`'s job.
                let options = rune_store::OpenOptions { migrate: false, ..env.open_options(&url) };
                let store = rune_store::open_parsed(&url, &options).await.with_context(|| {
                    format!("cannot open the local job database {url} (--backend local; use --backend http to ask a server)")
                })?;
                Ok(Source::Local(store))
            }
        }
    }

    fn is_local(&self) -> bool {
        matches!(self, Source::Local(_))
    }

    async fn page(&self, req: &ListRequest, limit: u32, cursor: Option<String>) -> Result<JobList> {
        match self {
            Source::Http { remote, client } => {
                let filter = ListJobs {
                    kind: req.kind.map(|k| k.to_string()),
                    status: req.status.map(|s| s.to_string()),
                    created_after: req.since.map(Timestamp::to_rfc3339),
                    created_before: req.until.map(Timestamp::to_rfc3339),
                    order: None,
                    limit: Some(limit),
                    cursor,
                };
                client.list_jobs(&filter).await.map_err(|e| remote.error(e))
            }
            Source::Local(store) => {
                let cursor = match cursor {
                    Some(c) => Some(Cursor::decode(&c).context("the store returned an unreadable page cursor")?),
                    None => None,
                };
                let query = JobQuery {
                    tenant_id: None,
                    kind: req.kind,
                    status: req.status,
                    created_from: req.since,
                    created_to: req.until,
                    schedule_id: None,
                    order: SortOrder::Desc,
                    limit,
                    cursor,
                };
                let page = store.list_jobs(&query).await?;
                Ok(JobList {
                    jobs: page.jobs.iter().map(JobView::from_record).collect(),
                    next_cursor: page.next_cursor.map(|c| c.encode()),
                })
            }
        }
    }

    async fn get(&self, id: &JobId) -> Result<JobView> {
        match self {
            Source::Http { remote, client } => client.get_job(id.as_str()).await.map_err(|e| remote.error(e)),
            Source::Local(store) => match store.get_job(None, id).await? {
                Some(job) => Ok(JobView::from_record(&job)),
                None => Err(not_found_locally(id)),
            },
        }
    }
}

fn not_found_locally(id: &JobId) -> anyhow::Error {
    coded(
        exit::FAILURE,
        format!("job {id} not found in the local job database (is it on a server? try --backend http)"),
    )
}

/// `jobs list`, validated.
#[derive(Debug)]
struct ListRequest {
    kind: Option<JobKind>,
    status: Option<JobStatus>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    /// Most jobs to show; `None` shows every match.
    take: Option<u32>,
    /// Whether the limit is the default one (a hint is printed when more exist).
    default_limit: bool,
    output: OutputFormat,
}

impl ListRequest {
    fn from_args(a: JobsListArgs) -> Result<Self> {
        if let (Some(since), Some(until)) = (a.since, a.until) {
            if since >= until {
                return Err(coded(
                    exit::BAD_INPUT,
                    format!("--since {since} is not before --until {until}; nothing could match"),
                ));
            }
        }
        let take = if a.all { None } else { Some(a.limit.unwrap_or(DEFAULT_LIST_LIMIT)) };
        Ok(Self {
            kind: a.kind,
            status: a.status,
            since: a.since,
            until: a.until,
            take,
            default_limit: !a.all && a.limit.is_none(),
            output: a.output,
        })
    }
}

async fn list(source: &Source, req: ListRequest) -> Result<u8> {
    let mut jobs = Vec::new();
    let mut cursor = None;
    loop {
        let want = match req.take {
            Some(n) => (n as usize).saturating_sub(jobs.len()),
            None => rune_store::MAX_PAGE_SIZE as usize,
        };
        let limit = want.min(rune_store::MAX_PAGE_SIZE as usize) as u32;
        let page = source.page(&req, limit, cursor.take()).await?;
        let got = page.jobs.len();
        jobs.extend(page.jobs);
        cursor = page.next_cursor;
        let full = req.take.is_some_and(|n| jobs.len() >= n as usize);
        if cursor.is_none() || got == 0 || full {
            break;
        }
    }
    if req.output == OutputFormat::Json {
        print_json(&serde_json::to_value(JobList { jobs, next_cursor: cursor.clone() })?)?;
        return Ok(exit::SUCCESS);
    }
    let local = source.is_local();
    let mut headers = vec!["JOB ID", "KIND", "STATUS", "CREATED", "FINISHED", "DETAIL"];
    if local {
        headers.insert(0, "TENANT");
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            // The message often just repeats the status; an error says more.
            let message = j.message.as_deref().filter(|m| *m != j.status.as_str());
            let detail = j.error.as_deref().or(message).unwrap_or("-");
            let mut row = vec![
                j.job_id.clone(),
                j.kind.to_string(),
                j.status.to_string(),
                j.created_at.clone(),
                j.finished_at.clone().unwrap_or_else(|| "-".into()),
                one_line(detail, DETAIL_WIDTH),
            ];
            if local {
                row.insert(0, j.tenant_id.clone());
            }
            row
        })
        .collect();
    if rows.is_empty() {
        writeln!(std::io::stdout().lock(), "no jobs match")?;
    } else {
        print_table(&headers, &rows)?;
    }
    if cursor.is_some() && req.default_limit {
        eprintln!("(showing the newest {DEFAULT_LIST_LIMIT}; use --limit N or --all for more)");
    }
    Ok(exit::SUCCESS)
}

/// The text on one line, cut to `width` characters with an ellipsis.
fn one_line(text: &str, width: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= width {
        flat
    } else {
        let mut cut: String = flat.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Prints `label: value` lines with the values aligned.
pub(super) fn print_fields(fields: &[(&str, String)]) -> Result<()> {
    let width = fields.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0) + 2;
    let mut out = std::io::stdout().lock();
    for (k, v) in fields {
        let label = format!("{k}:");
        writeln!(out, "{label:<width$}{v}")?;
    }
    Ok(())
}

/// `value` or `-`.
pub(super) fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

async fn get(source: &Source, id: &JobId, output: OutputFormat) -> Result<u8> {
    let job = source.get(id).await?;
    if output == OutputFormat::Json {
        print_json(&serde_json::to_value(&job)?)?;
        return Ok(exit::SUCCESS);
    }
    print_fields(&[
        ("job id", job.job_id.clone()),
        ("tenant", job.tenant_id.clone()),
        ("kind", job.kind.to_string()),
        ("status", job.status.to_string()),
        ("message", or_dash(job.message.as_deref())),
        ("error", or_dash(job.error.as_deref())),
        ("attempts", job.attempts.to_string()),
        ("schedule", or_dash(job.schedule_id.as_deref())),
        ("created", job.created_at.clone()),
        ("started", or_dash(job.started_at.as_deref())),
        ("updated", job.updated_at.clone()),
        ("finished", or_dash(job.finished_at.as_deref())),
        ("request", serde_json::to_string(&job.request)?),
    ])?;
    if let Some(result) = &job.result {
        let mut out = std::io::stdout().lock();
        writeln!(out, "result:")?;
        serde_json::to_writer_pretty(&mut out, result)?;
        writeln!(out)?;
    }
    Ok(exit::SUCCESS)
}

async fn cancel(source: &Source, id: &JobId, output: OutputFormat) -> Result<u8> {
    let response = match source {
        Source::Http { remote, client } => client.cancel_job(id.as_str()).await.map_err(|e| remote.error(e))?,
        Source::Local(store) => cancel_local(store.as_ref(), id).await?,
    };
    if output == OutputFormat::Json {
        print_json(&serde_json::to_value(&response)?)?;
        return Ok(exit::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    match response.status {
        JobStatus::Cancelled => writeln!(out, "job {id}: cancelled")?,
        s if s.is_terminal() => writeln!(out, "job {id} had already finished: {s}; nothing to cancel")?,
        s => writeln!(out, "job {id} is {s}; the cancellation did not take, try again")?,
    }
    Ok(exit::SUCCESS)
}

/// Compare-and-set to `cancelled`, re-reading when the job moved (queued → running)
/// in between. A server running the job sees the change at its next heartbeat and stops.
async fn cancel_local(store: &dyn Store, id: &JobId) -> Result<CancelResponse> {
    let mut current = store.get_job(None, id).await?.ok_or_else(|| not_found_locally(id))?.status;
    for _ in 0..3 {
        if current.is_terminal() {
            break;
        }
        let mut update = StatusUpdate::to(JobStatus::Cancelled);
        update.error = Some("cancelled from the command line (rune jobs cancel)".into());
        update.message = Some("cancelled".into());
        match store.update_status(id, update).await? {
            UpdateOutcome::Updated(job) => {
                current = job.status;
                break;
            }
            UpdateOutcome::Rejected { current: now } => current = now,
            UpdateOutcome::NotFound => return Err(not_found_locally(id)),
        }
    }
    Ok(CancelResponse { job_id: id.to_string(), status: current })
}

/// Prints trace events as they arrive.
struct EventPrinter<'a> {
    id: &'a JobId,
    output: OutputFormat,
}

impl EventPrinter<'_> {
    /// One event: `raw` is the server's JSON, printed as it came in JSON mode.
    fn event(&self, event: &JobEvent, raw: &Value) -> Result<()> {
        let mut out = std::io::stdout().lock();
        if self.output == OutputFormat::Json {
            serde_json::to_writer(&mut out, raw)?;
            writeln!(out)?;
        } else {
            let duration = event.duration_ms.map_or_else(|| "-".to_owned(), format_ms);
            let mut line =
                format!("{}  {:<24}  {:<5}  {}", event.recorded_at.to_rfc3339(), event.event, event.status, duration);
            if let Some(t) = &event.error_type {
                line.push_str(&format!("  ({t})"));
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        out.flush()?;
        Ok(())
    }

    /// The job ended: print its outcome and return the exit code.
    fn end(&self, status: JobStatus, error: Option<&str>) -> Result<u8> {
        let mut out = std::io::stdout().lock();
        if self.output == OutputFormat::Json {
            let mut line = json!({"job_id": self.id, "event": "end", "status": status});
            if let Some(e) = error {
                line["error"] = json!(e);
            }
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
        } else {
            match error {
                Some(e) if status != JobStatus::Succeeded => writeln!(out, "job {} {status}: {e}", self.id)?,
                _ => writeln!(out, "job {} {status}", self.id)?,
            }
        }
        Ok(if status == JobStatus::Succeeded { exit::SUCCESS } else { exit::FAILURE })
    }
}

fn format_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

async fn watch(source: &Source, id: &JobId, output: OutputFormat) -> Result<u8> {
    let printer = EventPrinter { id, output };
    match source {
        Source::Http { remote, client } => watch_http(remote, client, id, &printer).await,
        Source::Local(store) => watch_local(store.as_ref(), id, &printer).await,
    }
}

/// Follows the SSE trace, resuming after the last event seen when the stream breaks.
async fn watch_http(remote: &RemoteConfig, client: &RuneClient, id: &JobId, printer: &EventPrinter<'_>) -> Result<u8> {
    let mut last: Option<i64> = None;
    let mut failures = 0u32;
    loop {
        let stream = match client.trace(id.as_str(), last).await {
            Ok(s) => s,
            // Only a stream that worked before is retried: a server that is down, or a
            // job that does not exist, is reported at once.
            Err(e @ ClientError::Transport { .. }) if last.is_some() && failures < MAX_RECONNECTS => {
                failures += 1;
                eprintln!("rune: reconnecting to the event stream of job {id} ({e})");
                tokio::time::sleep(RECONNECT_DELAY).await;
                continue;
            }
            Err(e) => return Err(remote.error(e)),
        };
        let mut stream = std::pin::pin!(stream);
        let mut broken = None;
        while let Some(item) = stream.next().await {
            let ev = match item {
                Ok(ev) => ev,
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            };
            match ev.event.as_str() {
                "log" => {
                    let raw: Value = serde_json::from_str(&ev.data)
                        .with_context(|| format!("event stream of job {id} sent an event that is not JSON"))?;
                    let event: JobEvent = serde_json::from_value(raw.clone())
                        .with_context(|| format!("event stream of job {id} sent an event of unknown shape: {raw}"))?;
                    last = Some(event.id);
                    failures = 0;
                    printer.event(&event, &raw)?;
                }
                "end" => {
                    let end: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
                    let status: JobStatus = serde_json::from_value(end["status"].clone())
                        .with_context(|| format!("event stream of job {id} ended without a job status: {}", ev.data))?;
                    // The error text is not in the stream; a failed read only loses it.
                    let error = match status {
                        JobStatus::Succeeded => None,
                        _ => client.get_job(id.as_str()).await.ok().and_then(|j| j.error),
                    };
                    return printer.end(status, error.as_deref());
                }
                _ => {}
            }
        }
        failures += 1;
        let reason = broken.map_or_else(|| "the server closed it".to_owned(), |e| e.to_string());
        if failures > MAX_RECONNECTS {
            return Err(coded(
                exit::FAILURE,
                format!("the event stream of job {id} broke {MAX_RECONNECTS} times in a row ({reason}); giving up"),
            ));
        }
        eprintln!("rune: the event stream of job {id} was interrupted ({reason}); reconnecting");
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// Prints stored events, then polls until the job is finished.
async fn watch_local(store: &dyn Store, id: &JobId, printer: &EventPrinter<'_>) -> Result<u8> {
    let mut last = 0i64;
    loop {
        // Status before events: once terminal, every event was written before it, so
        // draining the events afterwards misses none.
        let job = store.get_job(None, id).await?.ok_or_else(|| not_found_locally(id))?;
        loop {
            let events = store.events_after(id, last, LOCAL_EVENT_BATCH).await?;
            for e in &events {
                last = e.id;
                printer.event(e, &serde_json::to_value(e)?)?;
            }
            if events.len() < LOCAL_EVENT_BATCH as usize {
                break;
            }
        }
        if job.status.is_terminal() {
            return printer.end(job.status, job.error.as_deref());
        }
        tokio::time::sleep(LOCAL_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(all: bool, limit: Option<u32>) -> JobsListArgs {
        JobsListArgs { kind: None, status: None, since: None, until: None, limit, all, output: OutputFormat::Table }
    }

    /// Default shows 50 with a hint, --limit N shows N, --all has no cap.
    #[test]
    fn list_take() {
        let d = ListRequest::from_args(args(false, None)).unwrap();
        assert_eq!((d.take, d.default_limit), (Some(DEFAULT_LIST_LIMIT), true));
        let l = ListRequest::from_args(args(false, Some(7))).unwrap();
        assert_eq!((l.take, l.default_limit), (Some(7), false));
        let a = ListRequest::from_args(args(true, None)).unwrap();
        assert_eq!((a.take, a.default_limit), (None, false));
    }

    /// An empty time window is bad input, not an empty listing.
    #[test]
    fn list_window_must_be_open() {
        let mut a = args(false, None);
        a.since = Some(Timestamp::parse("2026-01-02").unwrap());
        a.until = Some(Timestamp::parse("2026-01-01").unwrap());
        let err = ListRequest::from_args(a).unwrap_err();
        assert_eq!(exit::code_for(&err), exit::BAD_INPUT);
        assert!(err.to_string().contains("--since"), "{err}");
    }

    /// Details are flattened to one line and cut with an ellipsis.
    #[test]
    fn detail_cell() {
        assert_eq!(one_line("a\n  b", 10), "a b");
        assert_eq!(one_line("abcdefghijk", 5), "abcd…");
        assert_eq!(format_ms(12.345), "12.3 ms");
        assert_eq!(format_ms(1500.0), "1.50 s");
    }
}
