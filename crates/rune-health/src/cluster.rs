//! Checks through the Kubernetes API (kube-rs; in-cluster or kubeconfig): pods running,
//! restarts since the rollout, rollouts complete, the operator ready and leading, and
//! RuneBenchmarks resumed after an E-Stop. Everything here only reads.

use crate::estop::{self, EstopConfigMap};
use crate::report::{Check, Report};
use crate::{HealthConfig, ESTOP_CONFIGMAP, OPERATOR_DEPLOYMENT, OPERATOR_LEASE};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Annotation the operator puts on a RuneBenchmark it suspended for the E-Stop.
pub const ESTOP_SUSPENDED_ANNOTATION: &str = "bench.rune.ai/estop-suspended";
/// Names listed in a reason before "and N more".
const LIST_MAX: usize = 10;

/// Why the cluster could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No kubeconfig and not in a cluster, or the kubeconfig is unusable.
    #[error("no usable Kubernetes configuration ({0}); pass --kubeconfig or set KUBECONFIG, or drop --namespace")]
    Config(String),
    /// The API server did not answer.
    #[error("cannot reach the Kubernetes API server: {0}")]
    Unreachable(String),
}

/// Builds a client from `config.kubeconfig` (or the usual inference) and proves the API
/// server answers.
pub async fn connect(config: &HealthConfig) -> Result<kube::Client, ClusterError> {
    client(config.kubeconfig.as_deref(), config.timeout).await
}

/// A client from `kubeconfig` (or `$KUBECONFIG`, `~/.kube/config`, in-cluster), with
/// `timeout` on every call, once the API server has answered.
pub async fn client(
    kubeconfig: Option<&std::path::Path>,
    timeout: std::time::Duration,
) -> Result<kube::Client, ClusterError> {
    let mut kube_config = match kubeconfig {
        Some(path) => {
            let kc =
                Kubeconfig::read_from(path).map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?
        }
        None => kube::Config::infer().await.map_err(|e| ClusterError::Config(e.to_string()))?,
    };
    kube_config.connect_timeout = Some(timeout);
    kube_config.read_timeout = Some(timeout);
    kube_config.write_timeout = Some(timeout);
    let url = kube_config.cluster_url.to_string();
    let client = kube::Client::try_from(kube_config).map_err(|e| ClusterError::Config(e.to_string()))?;
    client.apiserver_version().await.map_err(|e| ClusterError::Unreachable(format!("{url}: {e}")))?;
    Ok(client)
}

/// A failed read: unreachable when the transport failed, a plain failure otherwise
/// (for example 403: the credentials may not read this).
fn read_failed(name: &str, what: &str, e: &kube::Error) -> Check {
    match e {
        kube::Error::Api(resp) => Check::fail(name, format!("cannot read {what}: {} ({})", resp.message, resp.code)),
        other => Check::unreachable(name, format!("cannot read {what}: {other}")),
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(resp) if resp.code == 404)
}

fn list(items: &[String]) -> String {
    let shown: Vec<&str> = items.iter().take(LIST_MAX).map(String::as_str).collect();
    if items.len() > LIST_MAX {
        format!("{} and {} more", shown.join(", "), items.len() - LIST_MAX)
    } else {
        shown.join(", ")
    }
}

/// `rollout-complete`, `pods-running` and `pod-restarts` for the workloads of `ns`.
pub async fn workload_checks(client: &kube::Client, ns: &str, report: &mut Report) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    match deployments.list(&ListParams::default()).await {
        Ok(list) => report.push(rollout_check(ns, &list.items)),
        Err(e) => report.push(read_failed("rollout-complete", &format!("Deployments in {ns}"), &e)),
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    match pods.list(&ListParams::default()).await {
        Ok(list) => {
            // Hook and benchmark Jobs come and go; the long-running pods are what must run.
            let serving: Vec<&Pod> = list.items.iter().filter(|p| !owned_by_job(p)).collect();
            report.push(pods_running(ns, &serving));
            report.push(pod_restarts(ns, &serving));
        }
        Err(e) => {
            report.push(read_failed("pods-running", &format!("pods in {ns}"), &e));
            report.push(read_failed("pod-restarts", &format!("pods in {ns}"), &e));
        }
    }
}

fn owned_by_job(p: &Pod) -> bool {
    p.metadata.owner_references.as_deref().unwrap_or_default().iter().any(|o| o.kind == "Job")
}

fn name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_else(|| "<unnamed>".into())
}

/// Each Deployment has rolled out: the controller saw the latest spec and every replica
/// is updated and available.
fn rollout_check(ns: &str, deployments: &[Deployment]) -> Check {
    const NAME: &str = "rollout-complete";
    if deployments.is_empty() {
        return Check::fail(NAME, format!("no Deployments in namespace {ns} (is the release installed there?)"));
    }
    let mut bad = Vec::new();
    let mut good = Vec::new();
    for d in deployments {
        let n = name(&d.metadata);
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let st = d.status.clone().unwrap_or_default();
        let observed = st.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
        let updated = st.updated_replicas.unwrap_or(0);
        let available = st.available_replicas.unwrap_or(0);
        if want == 0 {
            bad.push(format!("{n} is scaled to 0 (scale it back: kubectl scale deploy/{n} -n {ns} --replicas=1)"));
        } else if !observed || updated < want || available < want {
            bad.push(format!("{n} {available}/{want} available, {updated} updated"));
        } else {
            good.push(format!("{n} {available}/{want}"));
        }
    }
    if bad.is_empty() {
        Check::pass(NAME, good.join(", "))
    } else {
        Check::fail(NAME, format!("{} (watch: kubectl rollout status deploy -n {ns})", bad.join("; ")))
    }
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pods_running(ns: &str, pods: &[&Pod]) -> Check {
    const NAME: &str = "pods-running";
    if pods.is_empty() {
        return Check::fail(NAME, format!("no pods in namespace {ns}"));
    }
    let mut bad = Vec::new();
    for p in pods {
        let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Unknown".into());
        if phase != "Running" {
            let waiting = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.iter().find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone()));
            bad.push(format!(
                "{} {phase}{}",
                name(&p.metadata),
                waiting.map(|w| format!(" ({w})")).unwrap_or_default()
            ));
        } else if !pod_ready(p) {
            bad.push(format!("{} Running but not Ready", name(&p.metadata)));
        }
    }
    if bad.is_empty() {
        Check::pass(NAME, format!("{} pod(s) Running and Ready in {ns}", pods.len()))
    } else {
        Check::fail(NAME, format!("{} (kubectl describe pod -n {ns} <pod>)", list(&bad)))
    }
}

/// Pods are replaced by a rollout, so a pod's restart count is its restarts since then.
fn pod_restarts(ns: &str, pods: &[&Pod]) -> Check {
    const NAME: &str = "pod-restarts";
    let mut bad = Vec::new();
    for p in pods {
        let statuses = p.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
        for c in statuses.iter().filter(|c| c.restart_count > 0) {
            let last = c
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| format!(", last exit: {} code {}", t.reason.as_deref().unwrap_or("?"), t.exit_code))
                .unwrap_or_default();
            bad.push(format!("{}/{} restarted {}x{last}", name(&p.metadata), c.name, c.restart_count));
        }
    }
    if bad.is_empty() {
        Check::pass(NAME, format!("no container restarted since the rollout in {ns}"))
    } else {
        Check::fail(NAME, format!("{} (kubectl logs -n {ns} <pod> --previous)", list(&bad)))
    }
}

/// `operator-ready` and `operator-leader`; returns the E-Stop ConfigMap for the
/// RuneBenchmark check. A missing operator fails only when its namespace was named.
pub async fn operator_checks(
    client: &kube::Client,
    ns: &str,
    explicit: bool,
    report: &mut Report,
) -> Option<EstopConfigMap> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    match deployments.get_opt(OPERATOR_DEPLOYMENT).await {
        Ok(Some(d)) => {
            let c = rollout_check(ns, std::slice::from_ref(&d));
            report.push(Check { name: "operator-ready".into(), ..c });
            report.push(leader_check(client, ns).await);
        }
        Ok(None) => {
            let why = format!("no Deployment {OPERATOR_DEPLOYMENT} in namespace {ns}");
            if explicit {
                report.push(Check::fail("operator-ready", format!("{why} (helm status rune-operator -n {ns})")));
            } else {
                report.push(Check::skip("operator-ready", format!("{why}: the operator is not installed there")));
            }
            return None;
        }
        Err(e) => {
            report.push(read_failed("operator-ready", &format!("Deployment {OPERATOR_DEPLOYMENT} in {ns}"), &e));
            return None;
        }
    }
    match estop::status(client, ns, ESTOP_CONFIGMAP).await {
        Ok(s) => Some(s),
        Err(e) => {
            report.push(read_failed("estop", &format!("ConfigMap {ESTOP_CONFIGMAP} in {ns}"), &e));
            None
        }
    }
}

/// The leader-election Lease has a holder whose lease has not expired.
async fn leader_check(client: &kube::Client, ns: &str) -> Check {
    const NAME: &str = "operator-leader";
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let lease = match leases.get_opt(OPERATOR_LEASE).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Check::fail(NAME, format!("no Lease {OPERATOR_LEASE} in {ns}: no operator replica has led yet"))
        }
        Err(e) => return read_failed(NAME, &format!("Lease {OPERATOR_LEASE}"), &e),
    };
    let spec = lease.spec.unwrap_or_default();
    let Some(holder) = spec.holder_identity.filter(|h| !h.is_empty()) else {
        return Check::fail(NAME, format!("Lease {OPERATOR_LEASE} has no holder: no leader elected"));
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let Some(renewed) = spec.renew_time.or(spec.acquire_time) else {
        return Check::fail(NAME, format!("Lease {OPERATOR_LEASE} held by {holder} was never renewed"));
    };
    let age = (k8s_openapi::chrono::Utc::now() - renewed.0).num_seconds();
    if age > duration {
        Check::fail(
            NAME,
            format!("leader {holder} last renewed its Lease {age} s ago (longer than its {duration} s): it is gone"),
        )
    } else {
        Check::pass(NAME, format!("{holder} leads (Lease renewed {} s ago, lasts {duration} s)", age.max(0)))
    }
}

/// RuneBenchmarks the E-Stop suspended run again once it is released (benchmarks
/// suspended by hand are left alone). Skipped while the stop is engaged or without the CRD.
pub async fn benchmarks_resumed(client: &kube::Client, estop: Option<EstopConfigMap>, report: &mut Report) {
    const NAME: &str = "benchmarks-resumed";
    if let Some(e) = estop.as_ref().filter(|e| e.triggered) {
        return report.push(Check::skip(
            NAME,
            format!(
                "the E-Stop ConfigMap {}/{} is triggered ({}): benchmarks stay suspended until \
                 `rune estop release --kubernetes`",
                e.namespace,
                e.name,
                e.reason.as_deref().unwrap_or("no reason given")
            ),
        ));
    }
    let resource = ApiResource {
        group: "bench.rune.ai".into(),
        version: "v1alpha1".into(),
        api_version: "bench.rune.ai/v1alpha1".into(),
        kind: "RuneBenchmark".into(),
        plural: "runebenchmarks".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let items = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) if is_not_found(&e) => {
            return report.push(Check::skip(NAME, "the RuneBenchmark CRD is not installed"));
        }
        Err(e) => return report.push(read_failed(NAME, "RuneBenchmarks", &e)),
    };
    let mut stuck = Vec::new();
    let mut by_hand = Vec::new();
    for rb in &items {
        let suspended = rb.data.get("spec").and_then(|s| s.get("suspend")).and_then(|v| v.as_bool()).unwrap_or(false);
        if !suspended {
            continue;
        }
        let id = format!("{}/{}", rb.metadata.namespace.as_deref().unwrap_or("?"), name(&rb.metadata));
        let by_estop = rb.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(ESTOP_SUSPENDED_ANNOTATION));
        if by_estop {
            stuck.push(id);
        } else {
            by_hand.push(id);
        }
    }
    let hand_note = if by_hand.is_empty() {
        String::new()
    } else {
        format!("; suspended by hand, left as they are: {}", list(&by_hand))
    };
    if stuck.is_empty() {
        report.push(Check::pass(
            NAME,
            format!("{} RuneBenchmark(s), none held by a released E-Stop{hand_note}", items.len()),
        ));
    } else {
        report.push(Check::fail(
            NAME,
            format!(
                "E-Stop released but still suspended by it: {} (is the operator running? \
                 kubectl logs -n rune-system deploy/rune-operator){hand_note}",
                list(&stuck)
            ),
        ));
    }
}

/// `api-healthz` and `api-readyz` through the API server's service proxy, for a run
/// without --api-base-url (no port-forward needed; needs `get` on `services/proxy`).
pub async fn proxied_probes(client: &kube::Client, ns: &str, service: &str, report: &mut Report) {
    for (name, path) in [("api-healthz", "healthz"), ("api-readyz", "readyz")] {
        let url = format!("/api/v1/namespaces/{ns}/services/{service}:http/proxy/{path}");
        let request = match http::Request::get(&url).body(Vec::new()) {
            Ok(r) => r,
            Err(e) => return report.push(Check::fail(name, e.to_string())),
        };
        report.push(match client.request_text(request).await {
            Ok(body) => Check::pass(
                name,
                format!("{service}.{ns} /{path} answered 200 through the service proxy: {}", body.trim()),
            ),
            Err(kube::Error::Api(resp)) => Check::fail(
                name,
                format!("{service}.{ns} /{path} through the service proxy: {} ({})", resp.message, resp.code),
            ),
            Err(e) => Check::unreachable(name, format!("{service}.{ns} /{path} through the service proxy: {e}")),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn deployment(name: &str, replicas: i32, available: i32, generation: i64, observed: i64) -> Deployment {
        Deployment {
            metadata: ObjectMeta { name: Some(name.into()), generation: Some(generation), ..Default::default() },
            spec: Some(DeploymentSpec { replicas: Some(replicas), ..Default::default() }),
            status: Some(DeploymentStatus {
                observed_generation: Some(observed),
                updated_replicas: Some(available),
                available_replicas: Some(available),
                ..Default::default()
            }),
        }
    }

    /// A rollout is complete only when observed, updated and available all match; a
    /// Deployment scaled to 0 (emergency shutdown) fails with the command that undoes it.
    #[test]
    fn rollout_states() {
        use crate::Status::*;
        assert_eq!(rollout_check("rune", &[deployment("rune-api", 1, 1, 3, 3)]).status, Pass);
        assert_eq!(rollout_check("rune", &[deployment("rune-api", 1, 1, 4, 3)]).status, Fail, "spec not seen yet");
        assert_eq!(rollout_check("rune", &[deployment("rune-api", 2, 1, 1, 1)]).status, Fail);
        let zero = rollout_check("rune", &[deployment("rune-api", 0, 0, 1, 1)]);
        assert_eq!(zero.status, Fail);
        assert!(zero.reason.contains("kubectl scale deploy/rune-api"), "{}", zero.reason);
        assert_eq!(rollout_check("rune", &[]).status, Fail);
    }
}
