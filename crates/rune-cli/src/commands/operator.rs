//! `rune operator`: the Kubernetes operator for `RuneBenchmark` (`run`), and the manifests
//! generated from its code (`crd`, `rbac`).

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::time::Duration;

/// `rune operator …`.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Print the RuneBenchmark CRD (bench.rune.ai/v1alpha1) generated from the operator's
    /// Rust types; the Helm chart ships exactly this file.
    Crd,
    /// Print the ClusterRole (cluster-wide rules) and Role (operator namespace: Lease,
    /// E-Stop ConfigMap) holding exactly the permissions the operator's code uses.
    Rbac(RbacArgs),
    /// Run the operator against the current cluster (in-cluster config or KUBECONFIG)
    /// until SIGTERM.
    Run(OperatorRunArgs),
}

/// Options of `rune operator rbac`.
#[derive(Debug, Args)]
pub struct RbacArgs {
    /// Name of the ClusterRole and Role.
    #[arg(long, default_value = "rune-operator")]
    pub name: String,
    /// Namespace of the Role (where the operator runs).
    #[arg(long, default_value = "rune")]
    pub namespace: String,
    /// Print only the rules list of one role (`cluster` or `namespace`), e.g. for a chart
    /// to embed or compare.
    #[arg(long, value_parser = ["cluster", "namespace"])]
    pub rules_only: Option<String>,
}

/// Options of `rune operator run`.
#[derive(Debug, Args)]
pub struct OperatorRunArgs {
    /// Prometheus /metrics address.
    #[arg(long, env = "RUNE_OPERATOR_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_bind_address: SocketAddr,
    /// /healthz and /readyz address.
    #[arg(long, env = "RUNE_OPERATOR_HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    pub health_probe_bind_address: SocketAddr,
    /// Namespace of the leader Lease and the E-Stop ConfigMap (default: the pod's
    /// namespace from POD_NAMESPACE, else `rune`).
    #[arg(long, env = "POD_NAMESPACE", default_value = "rune")]
    pub namespace: String,
    /// This replica's identity in the Lease (default: the pod name from POD_NAME/HOSTNAME).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Elect one leader among replicas with a coordination.k8s.io Lease.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Lease duration in seconds (renewed every third of it).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=300))]
    pub lease_duration_seconds: u64,
    /// Watch the E-Stop ConfigMap.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub estop_enabled: bool,
    /// Name of the E-Stop ConfigMap (`data.triggered: "true"` engages it).
    #[arg(long, default_value = "rune-estop")]
    pub estop_configmap_name: String,
    /// Reconciles running at once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub max_concurrent_reconciles: u16,
}

/// Writes a manifest to stdout; a closed pipe (`| head`) surfaces as an io error that the
/// caller treats as a normal stop, never a panic.
fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Runs `rune operator …`.
pub async fn run(cmd: OperatorCommand) -> Result<u8> {
    match cmd {
        OperatorCommand::Crd => {
            write_stdout(&rune_operator::crd::crd_yaml().context("serializing the CRD")?)?;
            Ok(0)
        }
        OperatorCommand::Rbac(args) => {
            let text = match args.rules_only.as_deref() {
                Some("cluster") => rune_operator::rbac::rules_yaml(false),
                Some(_) => rune_operator::rbac::rules_yaml(true),
                None => rune_operator::rbac::roles_yaml(&args.name, &args.namespace),
            };
            write_stdout(&text)?;
            Ok(0)
        }
        OperatorCommand::Run(args) => {
            let client = kube::Client::try_default().await.context(
                "cannot configure a Kubernetes client: run in a pod with a service account, or set KUBECONFIG",
            )?;
            let identity = args
                .identity
                .or_else(|| std::env::var("HOSTNAME").ok())
                .filter(|i| !i.trim().is_empty())
                .unwrap_or_else(|| format!("rune-operator-{}", std::process::id()));
            let options = rune_operator::runtime::OperatorOptions {
                metrics_addr: args.metrics_bind_address,
                health_addr: args.health_probe_bind_address,
                namespace: args.namespace,
                identity,
                leader_elect: args.leader_elect,
                lease_duration: Duration::from_secs(args.lease_duration_seconds),
                estop_enabled: args.estop_enabled,
                estop_configmap: args.estop_configmap_name,
                concurrency: args.max_concurrent_reconciles,
            };
            rune_operator::runtime::run(client, options, super::serve::shutdown_signal()).await?;
            Ok(0)
        }
    }
}
