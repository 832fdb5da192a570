//! `rune estop trigger|release|status`: the emergency stop, through the API server, or
//! with `--kubernetes` through the `rune-estop` ConfigMap the operator watches.
//!
//! The API's stop lives in the server (it refuses submissions, cancels jobs and suspends
//! schedules), so `--backend local` refuses with exit 2 rather than writing a flag a
//! running server would not see. [`Target::Kubernetes`] writes the ConfigMap (server-side
//! apply, see `rune_health::estop`); the operator then suspends every RuneBenchmark.

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
    /// The ConfigMap the Kubernetes operator watches.
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
        Target::Kubernetes => return kubernetes(args).await,
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

/// Seconds allowed for each call to the Kubernetes API.
const KUBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// `--kubernetes`: reads or writes the ConfigMap.
async fn kubernetes(args: EstopArgs) -> Result<u8> {
    let client = rune_health::cluster::client(args.kubeconfig.as_deref(), KUBE_TIMEOUT)
        .await
        .map_err(|e| coded(exit::FAILURE, e.to_string()))?;
    let (ns, name) = (args.namespace.as_str(), args.configmap.as_str());
    let whoami = || std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "rune-cli".into());
    let (result, output, done) = match args.command {
        EstopCommand::Trigger { reason, actor, output } => {
            let actor = actor.unwrap_or_else(whoami);
            (
                rune_health::estop::trigger(&client, ns, name, reason.as_deref(), &actor).await,
                output,
                Some("E-Stop engaged"),
            )
        }
        EstopCommand::Release { output } => {
            (rune_health::estop::release(&client, ns, name, &whoami()).await, output, Some("E-Stop released"))
        }
        EstopCommand::Status { output } => (rune_health::estop::status(&client, ns, name).await, output, None),
    };
    let state = result.map_err(|e| coded(exit::FAILURE, format!("ConfigMap {ns}/{name}: {e}")))?;
    if output == OutputFormat::Json {
        print_json(&serde_json::to_value(&state)?)?;
        return Ok(exit::SUCCESS);
    }
    if let Some(done) = done {
        writeln!(
            std::io::stdout().lock(),
            "{done} (ConfigMap {ns}/{name}; the operator suspends or resumes every RuneBenchmark)"
        )?;
    }
    print_fields(&[
        ("E-Stop", if state.triggered { "ACTIVE".into() } else { "released".into() }),
        ("ConfigMap", format!("{ns}/{name}")),
        (if state.triggered { "engaged by" } else { "last changed by" }, or_dash(state.actor.as_deref())),
        ("reason", or_dash(state.reason.as_deref())),
        ("triggered at", or_dash(state.triggered_at.as_deref())),
        ("released at", or_dash(state.released_at.as_deref())),
    ])?;
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
