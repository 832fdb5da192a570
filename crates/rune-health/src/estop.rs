//! The `rune-estop` ConfigMap: the operator's emergency stop. `triggered: "true"` makes
//! the operator suspend every RuneBenchmark (and annotate what it suspended, so release
//! resumes exactly those). `rune estop trigger|release|status --kubernetes` uses this
//! module; writes are server-side apply with field manager [`FIELD_MANAGER`], so they
//! create the ConfigMap when it is missing and never clobber other fields.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use std::collections::BTreeMap;

/// Field manager of the writes.
pub const FIELD_MANAGER: &str = "rune-estop";
/// Data key the operator reads.
pub const TRIGGERED_KEY: &str = "triggered";

/// What the ConfigMap says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EstopConfigMap {
    /// Namespace of the ConfigMap.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Whether the stop is engaged (`triggered: "true"`).
    pub triggered: bool,
    /// Why (`reason`).
    pub reason: Option<String>,
    /// Who (`actor`).
    pub actor: Option<String>,
    /// When it was engaged (`triggeredAt`, RFC 3339).
    pub triggered_at: Option<String>,
    /// When it was released (`releasedAt`, RFC 3339).
    pub released_at: Option<String>,
}

impl EstopConfigMap {
    fn from_configmap(namespace: &str, name: &str, cm: &ConfigMap) -> Self {
        let data = cm.data.clone().unwrap_or_default();
        let get = |k: &str| data.get(k).filter(|v| !v.is_empty()).cloned();
        Self {
            namespace: namespace.into(),
            name: name.into(),
            triggered: data.get(TRIGGERED_KEY).is_some_and(|v| v.trim() == "true"),
            reason: get("reason"),
            actor: get("actor"),
            triggered_at: get("triggeredAt"),
            released_at: get("releasedAt"),
        }
    }

    /// A ConfigMap that does not exist: the stop is not engaged.
    fn absent(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            triggered: false,
            reason: None,
            actor: None,
            triggered_at: None,
            released_at: None,
        }
    }
}

/// Reads the ConfigMap; a missing one means "not engaged".
pub async fn status(client: &kube::Client, namespace: &str, name: &str) -> Result<EstopConfigMap, kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    Ok(match api.get_opt(name).await? {
        Some(cm) => EstopConfigMap::from_configmap(namespace, name, &cm),
        None => EstopConfigMap::absent(namespace, name),
    })
}

/// Engages the stop (creating the ConfigMap if needed).
pub async fn trigger(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    reason: Option<&str>,
    actor: &str,
) -> Result<EstopConfigMap, kube::Error> {
    let data = BTreeMap::from([
        (TRIGGERED_KEY.to_owned(), "true".to_owned()),
        ("reason".to_owned(), reason.unwrap_or_default().to_owned()),
        ("actor".to_owned(), actor.to_owned()),
        ("triggeredAt".to_owned(), rune_core::Timestamp::now().to_rfc3339()),
        ("releasedAt".to_owned(), String::new()),
    ]);
    apply(client, namespace, name, data).await
}

/// Releases the stop: the operator resumes what it suspended.
pub async fn release(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    actor: &str,
) -> Result<EstopConfigMap, kube::Error> {
    let data = BTreeMap::from([
        (TRIGGERED_KEY.to_owned(), "false".to_owned()),
        ("actor".to_owned(), actor.to_owned()),
        ("releasedAt".to_owned(), rune_core::Timestamp::now().to_rfc3339()),
    ]);
    apply(client, namespace, name, data).await
}

async fn apply(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    data: BTreeMap<String, String>,
) -> Result<EstopConfigMap, kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "rune", "app.kubernetes.io/component": "estop"},
        },
        "data": data,
    });
    let cm = api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body)).await?;
    Ok(EstopConfigMap::from_configmap(namespace, name, &cm))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only "true" (surrounding spaces allowed, as the operator reads it) engages; empty
    /// values read as absent.
    #[test]
    fn parse_data() {
        let cm = |v: &str| ConfigMap {
            data: Some(BTreeMap::from([
                (TRIGGERED_KEY.to_owned(), v.to_owned()),
                ("reason".to_owned(), String::new()),
                ("actor".to_owned(), "ops".to_owned()),
            ])),
            ..Default::default()
        };
        let on = EstopConfigMap::from_configmap("ns", "rune-estop", &cm(" true\n"));
        assert!(on.triggered);
        assert_eq!(on.reason, None);
        assert_eq!(on.actor.as_deref(), Some("ops"));
        for off in ["false", "1", "yes", "", "TRUE", "true!"] {
            assert!(!EstopConfigMap::from_configmap("ns", "x", &cm(off)).triggered, "{off}");
        }
        assert!(!EstopConfigMap::from_configmap("ns", "x", &ConfigMap::default()).triggered);
    }
}
