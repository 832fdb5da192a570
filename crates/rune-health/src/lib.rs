//! Health checks of a RUNE installation, run after every deploy, upgrade and rollback:
//! named checks that each end PASS, FAIL or SKIP with a reason a person can act on.
//! `rune health-check` and `scripts/health-check.sh` are thin fronts over [`run`].
//!
//! # Layout
//!
//! - [`report`]: [`Check`], [`Status`], [`Report`] and the exit-code contract (0 all
//!   passed, 1 a check failed, 2 the cluster or the API could not be reached).
//! - [`api`]: checks through the RUNE API with [`rune_client`]: `/healthz`, `/readyz`,
//!   the schema version, the job history against a backup manifest, schedules resumed.
//! - [`cluster`]: checks through the Kubernetes API with kube-rs (in-cluster or
//!   kubeconfig): pods running, restarts, rollouts, the operator and its leader Lease,
//!   RuneBenchmarks resumed.
//! - [`estop`]: the `rune-estop` ConfigMap the operator watches (read, trigger, release).
//! - `testing` (feature `test-support`): a fake Kubernetes API server for tests.
//!
//! This crate never changes anything except through [`estop`]; checks only read.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() {
//! let config = rune_health::HealthConfig {
//!     api: Some(rune_client::ClientConfig { base_url: "http://127.0.0.1:8080".into(), ..Default::default() }),
//!     ..Default::default()
//! };
//! let report = rune_health::run(&config).await;
//! for check in &report.checks {
//!     println!("{:<20} {:<4} {}", check.name, check.status, check.reason);
//! }
//! std::process::exit(report.exit_code());
//! # }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod cluster;
pub mod estop;
pub mod report;
#[cfg(feature = "test-support")]
pub mod testing;

pub use report::{Check, Report, Status};

use rune_store::backup::Manifest;
use std::path::PathBuf;
use std::time::Duration;

/// Name of the operator's leader-election Lease.
pub const OPERATOR_LEASE: &str = "rune-operator.bench.rune.ai";
/// Name of the operator Deployment (the `rune-operator` chart's default).
pub const OPERATOR_DEPLOYMENT: &str = "rune-operator";
/// Namespace of the operator when none is given.
pub const DEFAULT_OPERATOR_NAMESPACE: &str = "rune-system";
/// Name of the E-Stop ConfigMap (the chart's `estop.configMapName` default).
pub const ESTOP_CONFIGMAP: &str = "rune-estop";

/// What to check and where.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// Namespace of the API (and UI) pods; Kubernetes checks run when this or
    /// `operator_namespace` is set.
    pub namespace: Option<String>,
    /// Namespace of the operator; `None` with `namespace` set means
    /// [`DEFAULT_OPERATOR_NAMESPACE`], where a missing operator is a SKIP, not a FAIL.
    pub operator_namespace: Option<String>,
    /// Kubeconfig file; `None` infers (`$KUBECONFIG`, `~/.kube/config`, in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// The RUNE API; `None` skips the API checks that need a token and a route, while
    /// `/healthz` and `/readyz` then go through the Kubernetes service proxy if a
    /// namespace is set.
    pub api: Option<rune_client::ClientConfig>,
    /// Name of the API Service for the service-proxy probes (`rune-api`).
    pub api_service: String,
    /// A manifest written by `rune db backup`: the job history must still match it.
    pub manifest: Option<Manifest>,
    /// Where `manifest` was read from (named in reasons).
    pub manifest_path: Option<PathBuf>,
    /// Limit for each call to the cluster or the API.
    pub timeout: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            operator_namespace: None,
            kubeconfig: None,
            api: None,
            api_service: "rune-api".into(),
            manifest: None,
            manifest_path: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Runs every check that applies to `config`, in a fixed order, and reports them all
/// (one check's failure never stops the others).
pub async fn run(config: &HealthConfig) -> Report {
    let mut report = Report::default();
    let kube_wanted = config.namespace.is_some() || config.operator_namespace.is_some();
    let kube = if kube_wanted { Some(cluster::connect(config).await) } else { None };
    match &kube {
        None => report.push(Check::skip(
            "kubernetes",
            "no --namespace or --operator-namespace given: pod, rollout and operator checks not run",
        )),
        Some(Err(e)) => report.push(Check::unreachable("kubernetes", e.to_string())),
        Some(Ok(_)) => {}
    }
    let kube = kube.and_then(Result::ok);
    if let (Some(client), Some(ns)) = (&kube, &config.namespace) {
        cluster::workload_checks(client, ns, &mut report).await;
    }
    let estop_cm = match &kube {
        Some(client) => {
            let (op_ns, explicit) = match &config.operator_namespace {
                Some(ns) => (ns.as_str(), true),
                None => (DEFAULT_OPERATOR_NAMESPACE, false),
            };
            cluster::operator_checks(client, op_ns, explicit, &mut report).await
        }
        None => None,
    };
    match &config.api {
        Some(api) => api::checks(api, config, &mut report).await,
        None => {
            match (&kube, &config.namespace) {
                (Some(client), Some(ns)) => cluster::proxied_probes(client, ns, &config.api_service, &mut report).await,
                _ => report.push(Check::skip("api-healthz", "no --api-base-url given")),
            }
            let why = "needs --api-base-url (e.g. after `kubectl port-forward -n rune svc/rune-api 8080:8080`)";
            if config.manifest.is_some() {
                report.push(Check::skip("job-history", why));
            }
            report.push(Check::skip("schedules-resumed", why));
        }
    }
    if let Some(client) = &kube {
        cluster::benchmarks_resumed(client, estop_cm, &mut report).await;
    }
    report
}
