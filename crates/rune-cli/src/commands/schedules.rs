//! `rune schedules list|create|get|suspend|resume|delete`, through the API only.
//!
//! Schedules fire inside `rune serve` (its embedded scheduler), so they are managed
//! where they run; with `--backend local` every command refuses with exit 2 rather than
//! editing a database a server may be scheduling from.

use super::jobs::{or_dash, print_fields};
use super::remote::{needs_http, Backend, RemoteConfig};
use crate::cli::{GlobalArgs, ScheduleCreateArgs, SchedulesCommand};
use crate::exit::{self, coded};
use crate::output::{print_json, print_table, OutputFormat};
use anyhow::Result;
use rune_client::RuneClient;
use rune_core::api::{ScheduleRequest, ScheduleView};
use serde_json::{json, Value};
use std::io::{Read, Write};

/// Runs one `rune schedules` command.
pub async fn run(global: &GlobalArgs, cmd: SchedulesCommand) -> Result<u8> {
    let remote = match Backend::from_args(global)? {
        Backend::Http(remote) => remote,
        Backend::Local => return Err(needs_http(
            "schedules run inside `rune serve` (its scheduler) and are managed through its API, so `rune schedules`",
            "needs a server",
        )),
    };
    let client = remote.client()?;
    let api = Api { remote: &remote, client: &client };
    match cmd {
        SchedulesCommand::List { output } => list(&api, output).await,
        SchedulesCommand::Create(args) => {
            let output = args.output;
            let created = api.call(client.create_schedule(&create_request(args)?)).await?;
            show(&created, output, Some("created"))
        }
        SchedulesCommand::Get { id, output } => show(&api.call(client.get_schedule(&id)).await?, output, None),
        SchedulesCommand::Suspend { id, output } => {
            show(&api.call(client.suspend_schedule(&id)).await?, output, Some("suspended"))
        }
        SchedulesCommand::Resume { id, output } => {
            show(&api.call(client.resume_schedule(&id)).await?, output, Some("resumed"))
        }
        SchedulesCommand::Delete { id, output } => {
            api.call(client.delete_schedule(&id)).await?;
            if output == OutputFormat::Json {
                print_json(&json!({"schedule_id": id, "deleted": true}))?;
            } else {
                writeln!(std::io::stdout().lock(), "deleted schedule {id} (jobs it started are kept)")?;
            }
            Ok(exit::SUCCESS)
        }
    }
}

/// The client plus what its error messages need.
struct Api<'a> {
    remote: &'a RemoteConfig,
    client: &'a RuneClient,
}

impl Api<'_> {
    async fn call<T>(&self, fut: impl std::future::Future<Output = Result<T, rune_client::ClientError>>) -> Result<T> {
        fut.await.map_err(|e| self.remote.error(e))
    }
}

/// Builds the API request; the job request must be a JSON object (the server validates
/// its fields for the kind). History limits left unset take the contract's defaults.
fn create_request(a: ScheduleCreateArgs) -> Result<ScheduleRequest> {
    let (source, text) = match (&a.request, &a.request_file) {
        (Some(text), _) => ("--request".to_owned(), text.clone()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| coded(exit::BAD_INPUT, format!("--request-file -: cannot read standard input: {e}")))?;
            ("--request-file - (standard input)".to_owned(), text)
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                coded(exit::BAD_INPUT, format!("--request-file {}: cannot read it: {e}", path.display()))
            })?;
            (format!("--request-file {}", path.display()), text)
        }
        (None, None) => {
            return Err(coded(exit::BAD_INPUT, "give the job request with --request JSON or --request-file FILE"))
        }
    };
    let request: Value =
        serde_json::from_str(&text).map_err(|e| coded(exit::BAD_INPUT, format!("{source}: not valid JSON ({e})")))?;
    if !request.is_object() {
        return Err(coded(
            exit::BAD_INPUT,
            format!("{source}: the job request must be a JSON object such as {{\"vastai\": true}}"),
        ));
    }
    let mut body = json!({
        "name": a.name,
        "cron": a.cron,
        "kind": a.kind,
        "request": request,
        "suspended": a.suspended,
        "concurrency_policy": a.concurrency_policy,
        "starting_deadline_seconds": a.starting_deadline_seconds,
    });
    if let Some(n) = a.successful_runs_history_limit {
        body["successful_runs_history_limit"] = json!(n);
    }
    if let Some(n) = a.failed_runs_history_limit {
        body["failed_runs_history_limit"] = json!(n);
    }
    // Through serde so unset limits get the defaults the contract declares.
    Ok(serde_json::from_value(body)?)
}

fn suspended_text(s: &ScheduleView) -> String {
    match (s.suspended, s.suspended_by.as_deref()) {
        (false, _) => "no".into(),
        (true, Some(by)) => format!("yes ({by})"),
        (true, None) => "yes".into(),
    }
}

async fn list(api: &Api<'_>, output: OutputFormat) -> Result<u8> {
    let list = api.call(api.client.list_schedules()).await?;
    if output == OutputFormat::Json {
        print_json(&serde_json::to_value(&list)?)?;
        return Ok(exit::SUCCESS);
    }
    if list.schedules.is_empty() {
        writeln!(std::io::stdout().lock(), "no schedules")?;
        return Ok(exit::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .schedules
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.schedule_id.clone(),
                s.cron.clone(),
                s.kind.to_string(),
                suspended_text(s),
                or_dash(s.next_fire_time.as_deref()),
                or_dash(s.last_job_id.as_deref()),
            ]
        })
        .collect();
    print_table(&["NAME", "SCHEDULE ID", "CRON", "KIND", "SUSPENDED", "NEXT FIRE", "LAST JOB"], &rows)?;
    Ok(exit::SUCCESS)
}

/// Prints one schedule; `done` names what just happened to it.
fn show(s: &ScheduleView, output: OutputFormat, done: Option<&str>) -> Result<u8> {
    if output == OutputFormat::Json {
        print_json(&serde_json::to_value(s)?)?;
        return Ok(exit::SUCCESS);
    }
    if let Some(done) = done {
        writeln!(std::io::stdout().lock(), "{done} schedule {} ({})", s.name, s.schedule_id)?;
    }
    print_fields(&[
        ("schedule id", s.schedule_id.clone()),
        ("name", s.name.clone()),
        ("cron", s.cron.clone()),
        ("kind", s.kind.to_string()),
        ("request", serde_json::to_string(&s.request)?),
        ("suspended", suspended_text(s)),
        ("concurrency policy", s.concurrency_policy.as_str().to_owned()),
        ("starting deadline", s.starting_deadline_seconds.map_or_else(|| "-".into(), |d| format!("{d} s"))),
        (
            "history kept",
            format!("{} succeeded, {} failed", s.successful_runs_history_limit, s.failed_runs_history_limit),
        ),
        ("next fire", or_dash(s.next_fire_time.as_deref())),
        ("last fire", or_dash(s.last_schedule_time.as_deref())),
        ("last job", or_dash(s.last_job_id.as_deref())),
        ("created", s.created_at.clone()),
    ])?;
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rune_core::records::ConcurrencyPolicy;
    use rune_core::JobKind;

    fn flags(request: Option<&str>, file: Option<&str>) -> ScheduleCreateArgs {
        ScheduleCreateArgs {
            name: "nightly".into(),
            cron: "*/5 * * * *".into(),
            kind: JobKind::CostEstimate,
            request: request.map(str::to_owned),
            request_file: file.map(Into::into),
            suspended: true,
            concurrency_policy: ConcurrencyPolicy::Replace,
            starting_deadline_seconds: Some(30),
            successful_runs_history_limit: None,
            failed_runs_history_limit: Some(5),
            output: OutputFormat::Table,
        }
    }

    /// Flags become the contract's request; unset history limits take its defaults.
    #[test]
    fn request_from_flags() {
        let r = create_request(flags(Some(r#"{"vastai": true}"#), None)).unwrap();
        assert_eq!(r.name, "nightly");
        assert_eq!(r.request, json!({"vastai": true}));
        assert!(r.suspended);
        assert_eq!(r.concurrency_policy, ConcurrencyPolicy::Replace);
        assert_eq!(r.starting_deadline_seconds, Some(30));
        assert_eq!((r.successful_runs_history_limit, r.failed_runs_history_limit), (3, 5));
    }

    /// A request file is read; unreadable files, bad JSON and non-objects are exit 2
    /// naming the flag.
    #[test]
    fn request_sources_and_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("req.json");
        std::fs::write(&file, r#"{"vastai": true, "min_dph": 1.0}"#).unwrap();
        let r = create_request(flags(None, Some(file.to_str().unwrap()))).unwrap();
        assert_eq!(r.request["min_dph"], 1.0);
        for (request, file, needle) in [
            (Some("{not json"), None, "--request: not valid JSON"),
            (Some("[1, 2]"), None, "must be a JSON object"),
            (None, Some("/nonexistent/req.json"), "--request-file /nonexistent/req.json"),
        ] {
            let err = create_request(flags(request, file)).unwrap_err();
            assert_eq!(exit::code_for(&err), exit::BAD_INPUT);
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
