//! The CRD: the chart's copy matches the generator, the schema is structural, the sample
//! validates, and invalid benchmarks are rejected by the schema itself.

use rune_operator::crd::{crd_value, crd_yaml};
use serde_json::{json, Value};
use std::sync::Arc;

const CHART_CRD: &str = "../../deploy/helm/rune-operator/crds/runebenchmarks.bench.rune.ai.yaml";
const SAMPLE: &str = "../../deploy/samples/runebenchmark.yaml";

/// The openAPIV3Schema of v1alpha1.
pub fn openapi_schema() -> Value {
    crd_value()["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// OpenAPI v3 (Kubernetes flavour) to JSON Schema: `nullable: true` becomes a `null` type.
fn to_json_schema(node: &Value) -> Value {
    match node {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                if k.starts_with("x-kubernetes-") || k == "nullable" {
                    continue;
                }
                out.insert(k.clone(), to_json_schema(v));
            }
            if map.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(t)) = out.get("type").cloned() {
                    out.insert("type".into(), json!([t, "null"]));
                }
                if let Some(Value::Array(e)) = out.get_mut("enum") {
                    e.push(Value::Null);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

/// Validates a whole RuneBenchmark object against the CRD schema, as the API server's
/// schema check would (CEL rules excepted).
pub fn validator() -> rune_operator::testing::Validator {
    let schema = to_json_schema(&openapi_schema());
    let compiled = jsonschema::validator_for(&schema).expect("CRD schema compiles as JSON Schema");
    Arc::new(move |obj: &Value| {
        let errors: Vec<String> = compiled.iter_errors(obj).map(|e| format!("{}: {}", e.instance_path(), e)).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    })
}

/// Kubernetes' structural-schema rules that a generator can break: every node has a type
/// (or says it preserves unknown fields / is int-or-string); nothing but value constraints
/// inside anyOf/allOf/oneOf/not; no $ref or definitions.
fn assert_structural(node: &Value, path: &str) {
    let map = node.as_object().unwrap_or_else(|| panic!("{path} is not an object"));
    assert!(
        !map.contains_key("$ref") && !map.contains_key("definitions") && !map.contains_key("$defs"),
        "{path} uses $ref/definitions"
    );
    let typed = map.contains_key("type")
        || map.get("x-kubernetes-int-or-string") == Some(&json!(true))
        || map.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    assert!(typed, "{path} has no type");
    for junction in ["anyOf", "allOf", "oneOf", "not"] {
        if let Some(branches) = map.get(junction) {
            let list = branches.as_array().cloned().unwrap_or_else(|| vec![branches.clone()]);
            for b in list {
                for forbidden in ["type", "description", "default", "nullable", "additionalProperties"] {
                    assert!(b.get(forbidden).is_none(), "{path}.{junction} sets `{forbidden}` (not structural)");
                }
            }
        }
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        assert_eq!(map.get("type"), Some(&json!("object")), "{path} has properties but is not an object");
        for (k, v) in props {
            assert_structural(v, &format!("{path}.{k}"));
        }
    }
    if let Some(items) = map.get("items") {
        assert_structural(items, &format!("{path}[]"));
    }
}

fn sample() -> Value {
    let text = std::fs::read_to_string(SAMPLE).expect("deploy/samples/runebenchmark.yaml exists");
    serde_norway::from_str(&text).expect("sample is YAML")
}

#[test]
fn chart_crd_matches_the_generator() {
    let generated = crd_yaml().unwrap();
    let shipped = std::fs::read_to_string(CHART_CRD).unwrap_or_default();
    assert!(
        shipped == generated,
        "{CHART_CRD} differs from the CRD generated from crates/rune-operator/src/crd.rs; regenerate it with:\n  cargo run -p rune-cli -- operator crd > deploy/helm/rune-operator/crds/runebenchmarks.bench.rune.ai.yaml"
    );
}

#[test]
fn crd_identity_and_structural_schema() {
    let crd = crd_value();
    assert_eq!(crd["metadata"]["name"], "runebenchmarks.bench.rune.ai");
    assert_eq!(crd["spec"]["group"], "bench.rune.ai");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["rbm"]));
    assert_eq!(crd["spec"]["names"]["plural"], "runebenchmarks");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["served"], true);
    assert_eq!(version["storage"], true);
    assert_eq!(version["subresources"]["status"], json!({}));
    let columns: Vec<&str> =
        version["additionalPrinterColumns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(columns, ["Workflow", "Schedule", "Suspended", "Ready", "LastRun", "Age"]);
    let schema = openapi_schema();
    assert_structural(&schema, "openAPIV3Schema");
    let spec_props = schema["properties"]["spec"]["properties"].as_object().unwrap();
    for field in [
        "apiBaseUrl",
        "apiTokenSecretRef",
        "tenant",
        "workflow",
        "agent",
        "suite",
        "question",
        "model",
        "backendUrl",
        "backendType",
        "region",
        "insecureTls",
        "schedule",
        "suspend",
        "timeoutSeconds",
        "backoffSeconds",
        "backendWarmup",
        "backendWarmupTimeoutSeconds",
        "pollIntervalSeconds",
        "kubeconfig",
        "provisioning",
        "costEstimation",
        "budget",
        "attestationRequired",
        "infrastructureRef",
        "concurrencyPolicy",
        "startingDeadlineSeconds",
        "successfulRunsHistoryLimit",
        "failedRunsHistoryLimit",
    ] {
        assert!(spec_props.contains_key(field), "spec.{field} missing from the CRD");
    }
    assert!(spec_props["provisioning"]["properties"]["vastai"]["properties"].get("templateHash").is_some());
    assert!(schema["properties"]["spec"]["x-kubernetes-validations"].as_array().is_some_and(|r| !r.is_empty()));
}

#[test]
fn sample_validates_and_its_schedule_parses() {
    let sample = sample();
    validator()(&sample).unwrap();
    let parsed: rune_operator::crd::RuneBenchmark = serde_json::from_value(sample.clone()).unwrap();
    rune_core::cron::CronSchedule::parse(parsed.spec.schedule.as_deref().unwrap()).unwrap();
}

#[test]
fn invalid_benchmarks_are_rejected_by_the_schema() {
    let v = validator();
    let cases: &[(&str, Value, &str)] = &[
        ("bad cron (4 fields)", json!({"schedule": "*/5 * * *"}), "/spec/schedule"),
        ("bad cron (words)", json!({"schedule": "every five minutes please"}), "/spec/schedule"),
        ("bad cron (unknown macro)", json!({"schedule": "@every 5m"}), "/spec/schedule"),
        ("negative budget", json!({"budget": {"maxCostUSD": -1.0}}), "/spec/budget/maxCostUSD"),
        ("unknown workflow", json!({"workflow": "mine-bitcoin"}), "/spec/workflow"),
        ("unknown backend", json!({"backendType": "vllm"}), "/spec/backendType"),
        ("poll too fast", json!({"pollIntervalSeconds": 1}), "/spec/pollIntervalSeconds"),
        ("bad concurrency", json!({"concurrencyPolicy": "Sometimes"}), "/spec/concurrencyPolicy"),
        ("api url without scheme", json!({"apiBaseUrl": "rune-api:8080"}), "/spec/apiBaseUrl"),
        (
            "reliability above 1",
            json!({"provisioning": {"vastai": {"templateHash": "x", "reliability": 1.5}}}),
            "/spec/provisioning/vastai/reliability",
        ),
        ("negative timeout", json!({"timeoutSeconds": -5}), "/spec/timeoutSeconds"),
    ];
    for (what, patch, path) in cases {
        let mut obj = sample();
        for (k, val) in patch.as_object().unwrap() {
            obj["spec"][k] = val.clone();
        }
        let err = v(&obj).expect_err(what);
        assert!(err.contains(path), "{what}: error should name {path}, got {err}");
    }
    let mut missing = sample();
    missing["spec"].as_object_mut().unwrap().remove("workflow");
    assert!(v(&missing).unwrap_err().contains("workflow"));
}

/// Every schedule shape the pattern admits that rune-core accepts, and the pattern's
/// rejections are schedules rune-core rejects too (the pattern never blocks a valid one).
#[test]
fn cron_pattern_agrees_with_rune_core() {
    let re = regex::Regex::new(rune_operator::crd::CRON_PATTERN).unwrap();
    for ok in [
        "*/15 * * * *",
        "0 3 * * MON-FRI",
        "TZ=Europe/Rome 30 2 1 * *",
        "CRON_TZ=UTC 0 0 * JAN,JUL 0",
        "@hourly",
        "TZ=UTC @daily",
    ] {
        assert!(re.is_match(ok), "pattern rejects {ok}");
        rune_core::cron::CronSchedule::parse(ok).unwrap();
    }
    for bad in ["* * * *", "@every 5m", "every day", "* * * * * *", ""] {
        assert!(!re.is_match(bad), "pattern admits {bad}");
        assert!(rune_core::cron::CronSchedule::parse(bad).is_err(), "rune-core accepts {bad}");
    }
}

/// The CRD's enums are the API's: a backend type or workflow the API does not know cannot
/// be applied, and one it knows is not refused.
#[test]
fn enums_match_the_api() {
    let spec = &openapi_schema()["properties"]["spec"]["properties"];
    let backends: Vec<&str> =
        spec["backendType"]["enum"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(backends, rune_core::contracts::BACKEND_TYPES);
    for workflow in spec["workflow"]["enum"].as_array().unwrap() {
        let kind: rune_core::JobKind = workflow.as_str().unwrap().parse().expect("workflow is an API job kind");
        assert_ne!(kind, rune_core::JobKind::CostEstimate);
    }
}
