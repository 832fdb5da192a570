//! The E-Stop controller: while the ConfigMap `rune-estop` in the operator namespace has
//! `data.triggered: "true"`, every `RuneBenchmark` is suspended (and annotated as suspended
//! by the E-Stop), and the RUNE APIs they use are told to engage their E-Stop, which
//! cancels running jobs. On release it resumes exactly the benchmarks it suspended, marks
//! when, so missed fires are not caught up, and releases the APIs' E-Stop.

use crate::crd::{RuneBenchmark, ESTOP_RELEASED_ANNOTATION, ESTOP_SUSPENDED_ANNOTATION};
use crate::reconcile::{rune_client, Context};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use rune_core::api::EstopRequest;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Default ConfigMap name.
pub const DEFAULT_CONFIGMAP: &str = "rune-estop";
/// How often the E-Stop state is re-applied (benchmarks created while engaged, API errors).
pub const REAPPLY_EVERY: Duration = Duration::from_secs(10);

/// Whether a ConfigMap says the E-Stop is triggered.
pub fn is_triggered(cm: Option<&ConfigMap>) -> bool {
    cm.and_then(|c| c.data.as_ref()).and_then(|d| d.get("triggered")).is_some_and(|v| v.trim() == "true")
}

/// What one application of the E-Stop state did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EstopReport {
    /// Benchmarks suspended now (`ns/name`).
    pub suspended: Vec<String>,
    /// Benchmarks resumed now.
    pub resumed: Vec<String>,
    /// RUNE APIs whose E-Stop was called (base URL and tenant), or why not.
    pub api_calls: Vec<String>,
}

/// Applies the E-Stop state once: suspends (or resumes) benchmarks and calls the APIs.
/// `api_engaged` remembers which APIs were already told, so they are called once per
/// transition.
pub async fn apply(
    ctx: &Context,
    triggered: bool,
    api_engaged: &mut BTreeSet<String>,
) -> Result<EstopReport, kube::Error> {
    ctx.estop.store(triggered, Ordering::SeqCst);
    let all: Api<RuneBenchmark> = Api::all(ctx.client.clone());
    let list = all.list(&ListParams::default()).await?;
    let mut report = EstopReport::default();
    let now = crate::plan::format_time(ctx.clock.now());
    for rb in &list.items {
        let ns = rb.namespace().unwrap_or_default();
        let name = rb.name_any();
        let api: Api<RuneBenchmark> = Api::namespaced(ctx.client.clone(), &ns);
        let ours = rb.annotations().get(ESTOP_SUSPENDED_ANNOTATION).is_some_and(|v| v == "true");
        if triggered && !rb.spec.suspend {
            let patch =
                json!({"metadata": {"annotations": {ESTOP_SUSPENDED_ANNOTATION: "true"}}, "spec": {"suspend": true}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            report.suspended.push(format!("{ns}/{name}"));
        } else if !triggered && ours {
            let patch = json!({
                "metadata": {"annotations": {ESTOP_SUSPENDED_ANNOTATION: null, ESTOP_RELEASED_ANNOTATION: now}},
                "spec": {"suspend": false}
            });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            report.resumed.push(format!("{ns}/{name}"));
        }
    }
    // Tell each distinct RUNE API (base URL + tenant) once per transition: engage the APIs
    // of every benchmark; release those this process engaged or whose benchmarks it just
    // resumed (after a restart while engaged, the annotations are the memory).
    let target_of = |rb: &RuneBenchmark| {
        format!("{} tenant={}", rb.spec.api_base_url, rb.spec.tenant.clone().unwrap_or_else(|| "default".into()))
    };
    let mut targets = std::collections::BTreeMap::new();
    for rb in &list.items {
        let name = format!("{}/{}", rb.namespace().unwrap_or_default(), rb.name_any());
        let wanted = if triggered {
            !api_engaged.contains(&target_of(rb))
        } else {
            api_engaged.contains(&target_of(rb)) || report.resumed.contains(&name)
        };
        if wanted {
            targets.entry(target_of(rb)).or_insert(rb);
        }
    }
    for (target, rb) in targets {
        let result = match rune_client(&ctx.client, rb).await {
            Ok(client) if triggered => {
                let req = EstopRequest {
                    reason: Some("rune-estop ConfigMap triggered".into()),
                    actor: Some("rune-operator".into()),
                };
                client.estop_trigger(&req).await.map(|_| ()).map_err(|e| e.to_string())
            }
            Ok(client) => client.estop_release().await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => {
                if triggered {
                    api_engaged.insert(target.clone());
                } else {
                    api_engaged.remove(&target);
                }
                report.api_calls.push(format!("{target}: {}", if triggered { "engaged" } else { "released" }));
            }
            Err(e) => {
                tracing::error!(target = %target, error = %e, "E-Stop call to the RUNE API failed; retrying");
                if !triggered {
                    // Remember it so the release is retried on the next pass.
                    api_engaged.insert(target.clone());
                }
                report.api_calls.push(format!("{target}: {e}"));
            }
        }
    }
    if !report.suspended.is_empty() || !report.resumed.is_empty() {
        tracing::warn!(triggered, suspended = ?report.suspended, resumed = ?report.resumed, "E-Stop applied");
    }
    Ok(report)
}

/// Watches the ConfigMap until `stop`, applying its state on every change and every
/// [`REAPPLY_EVERY`].
pub async fn run(ctx: Arc<Context>, namespace: String, configmap: String, stop: CancellationToken) {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={configmap}"));
    let mut events = watcher::watcher(api, config).boxed();
    let mut tick = tokio::time::interval(REAPPLY_EVERY);
    let mut triggered: Option<bool> = None;
    let mut api_engaged = BTreeSet::new();
    let mut init_state: Option<bool> = None;
    loop {
        let mut pending: Option<bool> = None;
        tokio::select! {
            _ = stop.cancelled() => return,
            event = events.next() => match event {
                Some(Ok(watcher::Event::Apply(cm))) => pending = Some(is_triggered(Some(&cm))),
                Some(Ok(watcher::Event::Delete(_))) => pending = Some(false),
                // A (re)list: decide only once it is complete, so a restart while engaged
                // never resumes benchmarks for a moment.
                Some(Ok(watcher::Event::Init)) => init_state = Some(false),
                Some(Ok(watcher::Event::InitApply(cm))) => init_state = Some(is_triggered(Some(&cm))),
                Some(Ok(watcher::Event::InitDone)) => pending = init_state.take(),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "E-Stop ConfigMap watch failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                None => return,
            },
            _ = tick.tick() => {}
        }
        if let Some(state) = pending {
            triggered = Some(state);
        }
        if let Some(state) = triggered {
            if let Err(e) = apply(&ctx, state, &mut api_engaged).await {
                tracing::warn!(error = %e, "applying the E-Stop failed; retrying");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(data: Option<&[(&str, &str)]>) -> ConfigMap {
        ConfigMap {
            data: data.map(|d| d.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
            ..Default::default()
        }
    }

    /// Only `triggered: "true"` engages; anything else (missing map, other values, other
    /// keys) does not.
    #[test]
    fn only_triggered_true_engages() {
        assert!(is_triggered(Some(&cm(Some(&[("triggered", "true")])))));
        assert!(is_triggered(Some(&cm(Some(&[("triggered", " true\n")])))));
        assert!(!is_triggered(None));
        assert!(!is_triggered(Some(&cm(None))));
        assert!(!is_triggered(Some(&cm(Some(&[("triggered", "false")])))));
        assert!(!is_triggered(Some(&cm(Some(&[("triggered", "TRUE!")])))));
        assert!(!is_triggered(Some(&cm(Some(&[("reason", "true")])))));
    }
}
