//! `rune estop trigger|release|status`: the emergency stop, through the API server.
//!
//! The stop lives in the server (it refuses submissions, cancels jobs and suspends
//! schedules), so `--backend local` refuses with exit 2 rather than writing a flag a
//! running server would not see. [`Target::Kubernetes`] is where the operator's
//! ConfigMap mode goes; this build refuses it with exit 2.

use super::jobs::{or_dash, print_fields};
use super::remote::{needs_http, Backend, RemoteConfig};
use crate::cli::{EstopArgs, EstopCommand, GlobalArgs};
use crate::exit::{self, coded};
use crate::output::{print_json, OutputFormat};
use anyhow::Result;
use rune_core::api::{EstopRequest, EstopStatus};
use std::io::Write;

/// Where the E-Stop is set.
#[derive(Debug)]
enum Target {
    /// A RUNE API server (`POST/DELETE/GET /v1/estop`).
    Api(RemoteConfig),
    /// The ConfigMap the Kubernetes operator watches (not in this build).
    Kubernetes,
}

impl Target {
    fn from_args(global: &GlobalArgs, args: &EstopArgs) -> Result<Self> {
        if args.kubernetes {
            return Ok(Target::Kubernetes);
        }
        match Backend::from_args(global)? {
            Backend::Http(remote) => Ok(Target::Api(remote)),
            Backend::Local => Err(needs_http(
                "the E-Stop is held by the API server (it refuses submissions, cancels jobs and suspends \
                 schedules there), so `rune estop`",
                "needs that server",
            )),
        }
    }
}

/// Runs one `rune estop` command.
pub async fn run(global: &GlobalArgs, args: EstopArgs) -> Result<u8> {
    let remote = match Target::from_args(global, &args)? {
        Target::Api(remote) => remote,
        Target::Kubernetes => {
            return Err(coded(
                exit::BAD_INPUT,
                "--kubernetes (the operator's E-Stop ConfigMap) is not available in this build of RUNE; \
                 use --backend http against `rune serve`",
            ))
        }
    };
    let client = remote.client()?;
    let (status, output, done) = match args.command {
        EstopCommand::Trigger { reason, actor, output } => {
            let req = EstopRequest { reason, actor };
            (client.estop_trigger(&req).await, output, Some("E-Stop engaged"))
        }
        EstopCommand::Release { output } => (client.estop_release().await, output, Some("E-Stop released")),
        EstopCommand::Status { output } => (client.estop_status().await, output, None),
    };
    let status = status.map_err(|e| remote.error(e))?;
    show(&status, output, done)?;
    Ok(exit::SUCCESS)
}

fn show(s: &EstopStatus, output: OutputFormat, done: Option<&str>) -> Result<()> {
    if output == OutputFormat::Json {
        return print_json(&serde_json::to_value(s)?);
    }
    if let Some(done) = done {
        writeln!(std::io::stdout().lock(), "{done}")?;
    }
    let list =
        |ids: &[String]| if ids.is_empty() { "none".to_owned() } else { format!("{} ({})", ids.len(), ids.join(", ")) };
    // After a release the server keeps what the last stop did; say so.
    let (schedules, jobs) = if s.active {
        ("suspended schedules", "cancelled jobs")
    } else {
        ("last stop suspended", "last stop cancelled")
    };
    print_fields(&[
        ("E-Stop", if s.active { "ACTIVE".into() } else { "released".into() }),
        (if s.active { "engaged by" } else { "last changed by" }, or_dash(s.actor.as_deref())),
        ("reason", or_dash(s.reason.as_deref())),
        ("triggered at", or_dash(s.triggered_at.as_deref())),
        ("released at", or_dash(s.released_at.as_deref())),
        (schedules, list(&s.suspended_schedules)),
        (jobs, list(&s.cancelled_jobs)),
    ])
}
