//! `rune health-check`: turns the flags into a [`rune_health::HealthConfig`], runs the
//! checks and prints them. The checks themselves live in `rune-health`.
//!
//! The API checks run when an API base URL was given (`--api-base-url`, or
//! `RUNE_API_BASE_URL` from the environment or a configuration file); the Kubernetes
//! checks when `--namespace` or `--operator-namespace` was given. Without `--api-token`,
//! a `RUNE_API_TOKENS` in the environment (the API container's own) provides the token.

use crate::cli::{GlobalArgs, HealthCheckArgs};
use crate::exit::{coded, BAD_INPUT};
use crate::output::{print_json, print_table, OutputFormat};
use anyhow::Result;
use rune_health::{HealthConfig, Status};

/// Inside the API container (`kubectl exec deploy/rune-api -- rune health-check …`) no
/// client token is configured, but the server's own `RUNE_API_TOKENS` is: use the entry of
/// `tenant`, or the first one. Returns `(tenant, token)`.
fn server_token(tenant: &str) -> Option<(String, String)> {
    let tokens = std::env::var("RUNE_API_TOKENS").ok()?;
    let pairs: Vec<(String, String)> = tokens
        .split(',')
        .filter_map(|e| e.trim().split_once(':'))
        .map(|(t, k)| (t.trim().to_owned(), k.trim().to_owned()))
        .filter(|(t, k)| !t.is_empty() && !k.is_empty())
        .collect();
    pairs.iter().find(|(t, _)| t == tenant).or_else(|| pairs.first()).cloned()
}

/// Runs the checks; the exit code is the report's (0, 1 or 2).
pub async fn run(global: &GlobalArgs, args: HealthCheckArgs, config: &crate::config::Report) -> Result<u8> {
    let manifest = match &args.manifest {
        Some(path) => Some(rune_store::backup::Manifest::load(path).map_err(|e| {
            coded(
                BAD_INPUT,
                format!("--manifest {}: {e} (pass PATH.manifest.json written by `rune db backup`)", path.display()),
            )
        })?),
        None => None,
    };
    let api_given = config.flags.contains_key("RUNE_API_BASE_URL") || std::env::var_os("RUNE_API_BASE_URL").is_some();
    let (token, tenant) = match &global.api_token {
        Some(t) => (Some(t.clone()), global.api_tenant.clone()),
        None => server_token(&global.api_tenant).map_or((None, global.api_tenant.clone()), |(t, k)| (Some(k), t)),
    };
    let api = api_given.then(|| rune_client::ClientConfig {
        base_url: global.api_base_url.clone(),
        token,
        tenant,
        timeout: args.timeout,
        insecure: global.insecure,
    });
    let health = HealthConfig {
        namespace: args.namespace,
        operator_namespace: args.operator_namespace,
        kubeconfig: args.kubeconfig,
        api,
        api_service: args.api_service,
        manifest,
        manifest_path: args.manifest,
        timeout: args.timeout,
    };
    let report = rune_health::run(&health).await;
    let code = report.exit_code();
    if args.output == OutputFormat::Json {
        let passed = code == rune_health::report::EXIT_OK;
        print_json(&serde_json::json!({"passed": passed, "exit_code": code, "checks": report.checks}))?;
    } else {
        let rows: Vec<Vec<String>> =
            report.checks.iter().map(|c| vec![c.name.clone(), c.status.to_string(), c.reason.clone()]).collect();
        print_table(&["CHECK", "STATUS", "REASON"], &rows)?;
        let count = |s: Status| report.checks.iter().filter(|c| c.status == s).count();
        println!(
            "\n{} passed, {} failed, {} skipped: {}",
            count(Status::Pass),
            count(Status::Fail),
            count(Status::Skip),
            match code {
                0 => "healthy",
                1 => "UNHEALTHY (exit 1)",
                _ => "could not reach the cluster or the API (exit 2)",
            }
        );
    }
    Ok(u8::try_from(code).unwrap_or(1))
}
