//! The New run form: benchmark, suite, agentic and load runs; models listed from the
//! backend through the API's catalogue; a pre-flight cost estimate with its confidence;
//! the spend gate's confirmation; the API's field errors shown next to their fields.
//!
//! The whole form is one `<form>`: every step (estimate, confirm, launch) posts every
//! value and the page is re-rendered with them, so nothing is lost between steps. The
//! form carries a random key sent as `Idempotency-Key`, so a double click launches once.

use crate::guard::Ctx;
use crate::pages::{fail, page};
use crate::session::random_token;
use crate::UiState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use minijinja::context;
use rune_core::cost::{self, CostEstimate, GateDecision, GatePolicy};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Kinds the form can launch.
pub const KINDS: [&str; 4] = ["benchmark", "suite", "agentic-agent", "llm-load"];

/// Cost drivers the estimate can price.
pub const DRIVERS: [&str; 5] = ["local_hardware", "vastai", "aws", "gcp", "azure"];

type Fields = BTreeMap<String, String>;

fn defaults() -> Fields {
    [
        ("kind", "benchmark"),
        ("backend_type", "ollama"),
        ("agent", "llm"),
        ("suite", "sre-basics"),
        ("repetitions", "1"),
        ("agents", "llm"),
        ("est_driver", "local_hardware"),
        ("est_duration_s", "600"),
        ("est_min_dph", "0.5"),
        ("est_max_dph", "1.0"),
        ("est_tdp_watts", "350"),
        ("est_energy_rate", "0.30"),
        ("load_request", "{\n  \"backend_url\": \"http://127.0.0.1:11434\",\n  \"model\": \"llama3.1:8b\"\n}"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Fields prefilled from an existing run's request (the Clone action).
fn from_request(kind: &str, req: &Value) -> Fields {
    let mut f = defaults();
    f.insert("kind".into(), kind.to_owned());
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")),
        _ => None,
    };
    if let Some(obj) = req.as_object() {
        for (k, v) in obj {
            if let Some(t) = text(v) {
                f.insert(k.clone(), t);
            }
            if v.as_bool() == Some(true) {
                f.insert(k.clone(), "on".into());
            }
        }
    }
    if kind == "llm-load" {
        f.insert("load_request".into(), serde_json::to_string_pretty(req).unwrap_or_default());
    }
    f
}

/// `?kind=` and `?from=` of the form.
#[derive(Debug, serde::Deserialize)]
pub struct FormQuery {
    /// Kind to start with.
    pub kind: Option<String>,
    /// A run to clone.
    pub from: Option<String>,
}

/// `GET /new` (and `GET /new?from=ID`, the Clone action).
pub async fn form(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>, Query(q): Query<FormQuery>) -> Response {
    let mut fields = defaults();
    if let Some(id) = q.from.as_deref().filter(|s| !s.is_empty()) {
        let job = match ctx.client() {
            Ok(c) => c.get_job(id).await,
            Err(e) => Err(e),
        };
        match job {
            Ok(job) => fields = from_request(job.kind.as_str(), &job.request),
            Err(e) => return fail(&ui, &ctx, e),
        }
    }
    if let Some(kind) = q.kind.filter(|k| KINDS.contains(&k.as_str())) {
        fields.insert("kind".into(), kind);
    }
    fields.insert("submit_key".into(), random_token());
    render(&ui, &ctx, Outcome { fields, ..Default::default() }).await
}

/// Everything the form page shows after a step.
#[derive(Debug, Default)]
struct Outcome {
    fields: Fields,
    errors: BTreeMap<String, String>,
    top_errors: Vec<String>,
    estimate: Option<CostEstimate>,
    gate: Option<GateDecision>,
    status: Option<StatusCode>,
}

async fn render(ui: &UiState, ctx: &Ctx, o: Outcome) -> Response {
    let needs_confirm = matches!(o.gate, Some(GateDecision::NeedsConfirmation { .. }));
    let vars = context! {
        f => o.fields, errors => o.errors, top_errors => o.top_errors, estimate => o.estimate,
        gate => o.gate, needs_confirm => needs_confirm, kinds => KINDS, drivers => DRIVERS,
        agents => ["llm", "holmes", "k8sgpt", "stdio", "http"],
        suites => rune_core::suite::builtin_suites().iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        confidence_threshold => cost::CONFIDENCE_THRESHOLD,
    };
    let mut resp = page(ui, ctx, "new.html", "new", vars).await;
    if let Some(s) = o.status {
        *resp.status_mut() = s;
    }
    resp
}

/// The job body for the form's kind, or per-field problems found before asking the API.
pub fn job_body(f: &Fields) -> Result<(String, Value), BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let get = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let kind = get("kind");
    let mut body = Map::new();
    let put_str = |body: &mut Map<String, Value>, k: &str| {
        let v = get(k);
        if !v.is_empty() {
            body.insert(k.to_owned(), Value::String(v));
        }
    };
    let list = |k: &str| -> Vec<Value> {
        get(k).split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.to_owned())).collect()
    };
    let mut number = |body: &mut Map<String, Value>, k: &str, integer: bool| {
        let v = get(k);
        if v.is_empty() {
            return;
        }
        if integer {
            match v.parse::<u64>() {
                Ok(n) => {
                    body.insert(k.to_owned(), json!(n));
                }
                Err(_) => {
                    errors.insert(k.to_owned(), format!("`{v}` is not a whole number"));
                }
            }
        } else {
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() => {
                    body.insert(k.to_owned(), json!(x));
                }
                _ => {
                    errors.insert(k.to_owned(), format!("`{v}` is not a number"));
                }
            }
        }
    };
    match kind.as_str() {
        "benchmark" => {
            for k in ["backend_url", "backend_type", "model", "agent", "suite", "question", "judge_model"] {
                put_str(&mut body, k);
            }
            number(&mut body, "repetitions", true);
            number(&mut body, "threshold", false);
            body.insert("backend_warmup".into(), json!(f.contains_key("backend_warmup")));
        }
        "suite" => {
            for k in ["backend_url", "backend_type", "suite", "judge_model"] {
                put_str(&mut body, k);
            }
            body.insert("agents".into(), Value::Array(list("agents")));
            body.insert("models".into(), Value::Array(list("models")));
            number(&mut body, "repetitions", true);
            number(&mut body, "threshold", false);
            body.insert("backend_warmup".into(), json!(f.contains_key("backend_warmup")));
        }
        "agentic-agent" => {
            for k in ["backend_url", "backend_type", "model", "agent", "question"] {
                put_str(&mut body, k);
            }
            body.insert("backend_warmup".into(), json!(f.contains_key("backend_warmup")));
        }
        "llm-load" => match serde_json::from_str::<Value>(&get("load_request")) {
            Ok(Value::Object(o)) => body = o,
            _ => {
                errors.insert("load_request".into(), "enter the load test's request as a JSON object".into());
            }
        },
        other => {
            errors
                .insert("kind".into(), format!("`{other}` cannot be launched here; pick one of {}", KINDS.join(", ")));
        }
    }
    if errors.is_empty() {
        Ok((kind, Value::Object(body)))
    } else {
        Err(errors)
    }
}

/// The `POST /v1/estimates` body for the form's cost section.
pub fn estimate_body(f: &Fields) -> Result<Value, BTreeMap<String, String>> {
    let get = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let mut errors = BTreeMap::new();
    let mut num = |k: &str, default: f64| -> f64 {
        let v = get(k);
        if v.is_empty() {
            return default;
        }
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => x,
            _ => {
                errors.insert(k.to_owned(), format!("`{v}` is not a non-negative number"));
                default
            }
        }
    };
    let driver = get("est_driver");
    let model = get("model");
    let model = if model.is_empty() { get("models").split(',').next().unwrap_or("").trim().to_owned() } else { model };
    let mut body = json!({
        "model": model,
        "estimated_duration_seconds": num("est_duration_s", 600.0).round() as u64,
        "min_dph": num("est_min_dph", 0.0),
        "max_dph": num("est_max_dph", 0.0),
        "local_tdp_watts": num("est_tdp_watts", 0.0),
        "local_energy_rate_kwh": num("est_energy_rate", 0.0),
    });
    if DRIVERS.contains(&driver.as_str()) {
        body[driver.as_str()] = json!(true);
    } else {
        errors.insert("est_driver".into(), format!("pick one of {}", DRIVERS.join(", ")));
    }
    if errors.is_empty() {
        Ok(body)
    } else {
        Err(errors)
    }
}

/// Maps the API's field errors onto the form: `model` → the model field, cost fields
/// onto the estimate section, anything else to the top of the form.
fn place(
    errors: &mut BTreeMap<String, String>,
    top: &mut Vec<String>,
    fields: &[rune_core::validate::FieldError],
    estimate: bool,
) {
    const COST: [(&str, &str); 5] = [
        ("estimated_duration_seconds", "est_duration_s"),
        ("min_dph", "est_min_dph"),
        ("max_dph", "est_max_dph"),
        ("local_tdp_watts", "est_tdp_watts"),
        ("local_energy_rate_kwh", "est_energy_rate"),
    ];
    for fe in fields {
        let name = fe.field.trim_start_matches("$.").to_owned();
        let mapped = if estimate {
            COST.iter().find(|(api, _)| *api == name).map(|(_, form)| (*form).to_owned())
        } else if [
            "backend_url",
            "backend_type",
            "model",
            "agent",
            "suite",
            "question",
            "repetitions",
            "threshold",
            "judge_model",
            "agents",
            "models",
        ]
        .contains(&name.as_str())
        {
            Some(name.clone())
        } else {
            None
        };
        match mapped {
            Some(k) => {
                errors.insert(k, fe.message.clone());
            }
            None => top.push(format!("{}: {}", fe.field, fe.message)),
        }
    }
}

/// `POST /new`: `action=estimate` prices the run; `action=launch` prices it, asks the
/// spend gate, and submits it (or shows why it needs confirmation).
pub async fn submit(
    State(ui): State<UiState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut fields: Fields = form.into_iter().filter(|(k, _)| k != crate::guard::CSRF_FIELD).collect();
    if fields.get("submit_key").is_none_or(|k| k.is_empty()) {
        fields.insert("submit_key".into(), random_token());
    }
    let action = fields.remove("action").unwrap_or_else(|| "estimate".into());
    let client = match ctx.client() {
        Ok(c) => c.clone(),
        Err(e) => return fail(&ui, &ctx, e),
    };
    let mut o = Outcome { fields, ..Default::default() };
    let job = job_body(&o.fields);
    let est_body = estimate_body(&o.fields);
    if let Err(e) = &est_body {
        o.errors.extend(e.clone());
    }
    if action == "launch" {
        if let Err(e) = &job {
            o.errors.extend(e.clone());
        }
    }
    if !o.errors.is_empty() {
        o.status = Some(StatusCode::UNPROCESSABLE_ENTITY);
        return render(&ui, &ctx, o).await;
    }
    let Ok(est_body) = est_body else { return render(&ui, &ctx, o).await };
    match client.cost_estimate(&est_body).await {
        Ok(est) => {
            let policy = GatePolicy { confirmed: o.fields.contains_key("confirm"), ..Default::default() };
            o.gate = Some(cost::gate(&est, &policy));
            o.estimate = Some(est);
        }
        Err(rune_client::ClientError::Api { status: 422, fields, message, .. }) => {
            place(&mut o.errors, &mut o.top_errors, &fields, true);
            if fields.is_empty() {
                o.top_errors.push(format!("cost estimate: {message}"));
            }
            o.status = Some(StatusCode::UNPROCESSABLE_ENTITY);
            return render(&ui, &ctx, o).await;
        }
        Err(e) => return fail(&ui, &ctx, e),
    }
    if action != "launch" {
        return render(&ui, &ctx, o).await;
    }
    if !o.gate.as_ref().is_some_and(GateDecision::may_proceed) {
        // The gate wants a human "yes": show its reasons and the confirmation box.
        return render(&ui, &ctx, o).await;
    }
    let Ok((kind, body)) = job else { return render(&ui, &ctx, o).await };
    let key = o.fields.get("submit_key").cloned();
    match client.submit(&kind, &body, key.as_deref()).await {
        Ok(accepted) => crate::guard::redirect(false, &format!("/runs/{}", crate::guard::encode(&accepted.job_id))),
        Err(rune_client::ClientError::Api { status, fields, message, .. })
            if (400..500).contains(&status) && status != 401 =>
        {
            place(&mut o.errors, &mut o.top_errors, &fields, false);
            if fields.is_empty() {
                o.top_errors.push(message);
            }
            // A new key: the corrected request is a different submission.
            o.fields.insert("submit_key".into(), random_token());
            o.status = Some(StatusCode::UNPROCESSABLE_ENTITY);
            render(&ui, &ctx, o).await
        }
        Err(e) => fail(&ui, &ctx, e),
    }
}

/// `?backend_url=&backend_type=` of the model picker.
#[derive(Debug, serde::Deserialize)]
pub struct ModelsQuery {
    /// Model server URL.
    #[serde(default)]
    pub backend_url: String,
    /// `ollama` or `openai`.
    #[serde(default)]
    pub backend_type: String,
}

/// `GET /new/models`: the model picker's options, from the backend via the API.
pub async fn models(
    State(ui): State<UiState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<ModelsQuery>,
) -> Response {
    let url = q.backend_url.trim();
    let kind = if q.backend_type.trim().is_empty() { "ollama" } else { q.backend_type.trim() };
    let (models, running, error) = if url.is_empty() {
        (Vec::new(), Vec::new(), Some("Enter the backend URL to list its models.".to_owned()))
    } else {
        match ctx.client() {
            Ok(c) => match c.llm_models(url, kind).await {
                Ok(cat) => (cat.models, cat.running_models, None),
                Err(e) => (Vec::new(), Vec::new(), Some(e.to_string())),
            },
            Err(e) => (Vec::new(), Vec::new(), Some(e.to_string())),
        }
    };
    let ctx = Ctx { hx_target: Some("picker".into()), ..ctx };
    page(&ui, &ctx, "models.html", "new", context! { models => models, running => running, error => error }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        let mut f = defaults();
        for (k, v) in pairs {
            f.insert((*k).into(), (*v).into());
        }
        f
    }

    /// Each kind's body carries its fields; numbers are typed; empty fields are left out
    /// so the API's defaults apply.
    #[test]
    fn bodies_per_kind() {
        let (kind, body) =
            job_body(&fields(&[("backend_url", "http://x:1"), ("model", "m"), ("threshold", "0.8")])).expect("ok");
        assert_eq!(kind, "benchmark");
        assert_eq!(body["threshold"], 0.8);
        assert_eq!(body["repetitions"], 1);
        assert!(body.get("question").is_none());
        let (_, suite) = job_body(&fields(&[("kind", "suite"), ("models", "a, b,,")])).expect("ok");
        assert_eq!(suite["models"], json!(["a", "b"]));
        let (kind, load) =
            job_body(&fields(&[("kind", "llm-load"), ("load_request", "{\"rate\": [1, 2]}")])).expect("ok");
        assert_eq!((kind.as_str(), &load["rate"]), ("llm-load", &json!([1, 2])));
    }

    /// Local problems are reported per field before anything is sent.
    #[test]
    fn local_field_errors() {
        let e = job_body(&fields(&[("repetitions", "two"), ("threshold", "NaN")])).unwrap_err();
        assert!(e.contains_key("repetitions") && e.contains_key("threshold"), "{e:?}");
        let e = job_body(&fields(&[("kind", "llm-load"), ("load_request", "[1]")])).unwrap_err();
        assert!(e.contains_key("load_request"));
        assert!(job_body(&fields(&[("kind", "cost-estimate")])).unwrap_err().contains_key("kind"));
        let e = estimate_body(&fields(&[("est_driver", "moon"), ("est_min_dph", "-1")])).unwrap_err();
        assert!(e.contains_key("est_driver") && e.contains_key("est_min_dph"), "{e:?}");
    }

    /// The estimate prices the chosen driver for the form's model.
    #[test]
    fn estimate_request() {
        let b = estimate_body(&fields(&[("model", "m"), ("est_driver", "vastai")])).expect("ok");
        assert_eq!((b["vastai"].as_bool(), b["model"].as_str()), (Some(true), Some("m")));
        assert_eq!(b["estimated_duration_seconds"], 600);
        let parsed = rune_core::contracts::JobRequest::parse(rune_core::JobKind::CostEstimate, &b);
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    /// API field errors land next to their fields; unknown ones go to the top.
    #[test]
    fn field_error_placement() {
        let fe = |f: &str| rune_core::validate::FieldError { field: f.into(), message: "bad".into() };
        let (mut errors, mut top) = (BTreeMap::new(), Vec::new());
        place(&mut errors, &mut top, &[fe("backend_url"), fe("provisioning.vastai.min_dph")], false);
        assert_eq!(errors.get("backend_url").map(String::as_str), Some("bad"));
        assert_eq!(top, vec!["provisioning.vastai.min_dph: bad".to_owned()]);
        let (mut errors, mut top) = (BTreeMap::new(), Vec::new());
        place(&mut errors, &mut top, &[fe("max_dph")], true);
        assert!(errors.contains_key("est_max_dph") && top.is_empty());
    }
}
