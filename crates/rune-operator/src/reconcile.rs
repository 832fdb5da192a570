//! The `RuneBenchmark` reconciler: observe active runs, [`plan`](crate::plan::plan), carry
//! the plan out (cancel, record, gate, submit), write status, emit events and requeue.
//! Nothing here waits for a run: a running job is polled on the next requeue, so the loop
//! never blocks.

use crate::clock::Clock;
use crate::crd::{
    Condition, RunRecord, RunStatus, RuneBenchmark, RuneBenchmarkSpec, RuneBenchmarkStatus, Trigger, Workflow,
    ESTOP_RELEASED_ANNOTATION,
};
use crate::metrics::Metrics;
use crate::plan::{self, Action, JobObservation, Outcome, PlanInput};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Resource, ResourceExt};
use rune_client::{ClientConfig, ClientError, RuneClient};
use rune_core::{JobStatus, Timestamp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Minimum confidence of a cost estimate before a run may start (fail-closed).
pub const COST_CONFIDENCE_THRESHOLD: f64 = 0.95;
/// How often an unready `infrastructureRef` is checked again.
pub const INFRA_RETRY: Duration = Duration::from_secs(30);
/// Longest stored `result` text.
const MAX_RESULT_CHARS: usize = 1024;

/// Why a reconcile failed; it is retried with per-object exponential backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The RUNE API could not be reached or failed on its side.
    #[error("RUNE API: {0}")]
    Rune(#[from] ClientError),
    /// The token Secret is missing or unusable.
    #[error("{0}")]
    Secret(String),
}

/// Shared state of the controllers.
pub struct Context {
    /// Kubernetes client.
    pub client: kube::Client,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event publisher.
    pub recorder: Recorder,
    /// Set by the E-Stop controller while `rune-estop` is triggered.
    pub estop: Arc<AtomicBool>,
    failures: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("clock", &self.clock).finish_non_exhaustive()
    }
}

impl Context {
    /// A context; `instance` names this replica in events.
    pub fn new(client: kube::Client, clock: Arc<dyn Clock>, metrics: Arc<Metrics>, instance: &str) -> Self {
        let reporter =
            kube::runtime::events::Reporter { controller: "rune-operator".into(), instance: Some(instance.to_owned()) };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            clock,
            metrics,
            estop: Arc::new(AtomicBool::new(false)),
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn key(obj: &RuneBenchmark) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Retry policy: `backoffSeconds` doubled per consecutive error of this object.
pub fn error_policy(obj: Arc<RuneBenchmark>, error: &Error, ctx: Arc<Context>) -> Requeue {
    let n = {
        let mut failures = ctx.failures();
        let n = failures.entry(key(&obj)).or_insert(0);
        *n += 1;
        *n
    };
    let delay = plan::backoff(&obj.spec, n);
    ctx.metrics.reconciled("error");
    tracing::warn!(benchmark = %key(&obj), error = %error, attempt = n, retry_in_s = delay.as_secs(), "reconcile failed");
    // An event, not a status write: status writes would trigger an immediate reconcile and
    // defeat the backoff. Repeats fold into one event series.
    let (recorder, reference) = (ctx.recorder.clone(), obj.object_ref(&()));
    let note = format!("{error}; retry {n} in {}s", delay.as_secs());
    tokio::spawn(async move {
        let ev = Event {
            type_: EventType::Warning,
            reason: "ReconcileError".into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&ev, &reference).await {
            tracing::debug!(error = %e, "could not publish event");
        }
    });
    Requeue::requeue(delay)
}

/// Builds the RUNE API client for `obj`, reading the token Secret when one is referenced.
pub async fn rune_client(client: &kube::Client, obj: &RuneBenchmark) -> Result<RuneClient, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let spec = &obj.spec;
    let token = match spec.api_token_secret_ref.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(reference) => {
            let name = match reference.split_once('/') {
                Some((secret_ns, name)) if secret_ns == ns => name,
                Some((secret_ns, _)) => {
                    return Err(Error::Secret(format!(
                        "spec.apiTokenSecretRef `{reference}` names namespace `{secret_ns}`; the Secret must be in the benchmark's namespace `{ns}`"
                    )))
                }
                None => reference,
            };
            let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
            let secret = secrets.get_opt(name).await?.ok_or_else(|| {
                Error::Secret(format!(
                    "Secret `{ns}/{name}` (spec.apiTokenSecretRef) not found; create it with key `token`"
                ))
            })?;
            let bytes = secret.data.as_ref().and_then(|d| d.get("token")).map(|b| b.0.clone()).ok_or_else(|| {
                Error::Secret(format!("Secret `{ns}/{name}` has no key `token` (spec.apiTokenSecretRef)"))
            })?;
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::Secret(format!("Secret `{ns}/{name}` key `token` is not UTF-8")))?;
            Some(text.trim().to_owned())
        }
    };
    let config = ClientConfig {
        base_url: spec.api_base_url.clone(),
        token,
        tenant: spec.tenant.clone().filter(|t| !t.is_empty()).unwrap_or_else(|| "default".into()),
        timeout: Duration::from_secs(30),
        insecure: spec.insecure_tls,
    };
    Ok(RuneClient::new(config)?)
}

/// The job body for the spec's workflow, in the API's snake_case fields.
pub fn job_payload(spec: &RuneBenchmarkSpec) -> Value {
    let mut body = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            body.insert(k.to_owned(), v);
        }
    };
    let backend_type = spec.backend_type.map(|b| b.as_str());
    let vastai = spec.provisioning.as_ref().and_then(|p| p.vastai.as_ref());
    let provisioning = vastai.map(|v| {
        let mut o = serde_json::Map::new();
        o.insert("template_hash".into(), json!(v.template_hash));
        for (k, val) in [("min_dph", v.min_dph), ("max_dph", v.max_dph), ("reliability", v.reliability)] {
            if let Some(x) = val {
                o.insert(k.into(), json!(x));
            }
        }
        if let Some(s) = v.stop_instance {
            o.insert("stop_instance".into(), json!(s));
        }
        json!({"vastai": Value::Object(o)})
    });
    put("backend_url", json!(spec.backend_url));
    put("backend_type", json!(backend_type));
    match spec.workflow {
        Workflow::LlmInstance => {
            put("provisioning", provisioning.unwrap_or(Value::Null));
        }
        Workflow::AgenticAgent | Workflow::Benchmark => {
            put("question", json!(spec.question));
            put("model", json!(spec.model));
            put("agent", json!(spec.agent));
            put("backend_warmup", json!(spec.backend_warmup));
            put("backend_warmup_timeout", json!(spec.backend_warmup_timeout_seconds));
            put("kubeconfig", json!(spec.kubeconfig));
            if spec.workflow == Workflow::Benchmark {
                put("provisioning", provisioning.unwrap_or(Value::Null));
                put("suite", json!(spec.suite));
                put("attestation_required", json!(spec.attestation_required));
            }
        }
    }
    Value::Object(body)
}

/// The `/v1/estimates` body for the cost gate.
pub fn estimate_payload(spec: &RuneBenchmarkSpec) -> Value {
    let c = spec.cost_estimation.clone().unwrap_or_default();
    let v = spec.provisioning.as_ref().and_then(|p| p.vastai.as_ref());
    let mut body = json!({
        "vastai": c.vastai, "aws": c.aws, "gcp": c.gcp, "azure": c.azure, "local_hardware": c.local_hardware,
        "model": spec.model.clone().unwrap_or_default(),
        "estimated_duration_seconds": plan::timeout(spec).as_secs(),
    });
    let mut num = |k: &str, x: Option<f64>| {
        if let Some(x) = x {
            body[k] = json!(x);
        }
    };
    num("min_dph", v.and_then(|v| v.min_dph));
    num("max_dph", v.and_then(|v| v.max_dph));
    num("local_tdp_watts", c.local_tdp_watts);
    num("local_energy_rate_kwh", c.local_energy_rate_kwh);
    num("local_hardware_purchase_price", c.local_hardware_purchase_price);
    num("local_hardware_lifespan_years", c.local_hardware_lifespan_years);
    body
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn observe(view: &rune_core::api::JobView) -> JobObservation {
    match view.status {
        JobStatus::Queued => JobObservation::Pending { running: false },
        JobStatus::Running => JobObservation::Pending { running: true },
        status => JobObservation::Finished {
            status,
            error: view.error.clone(),
            result: view.result.as_ref().map(|r| {
                let text = r.to_string();
                text.chars().take(MAX_RESULT_CHARS).collect()
            }),
        },
    }
}

fn set_ready(
    status: &mut RuneBenchmarkStatus,
    ready: &str,
    reason: &str,
    message: String,
    gen: Option<i64>,
    now: Timestamp,
) {
    let existing = status.conditions.iter().find(|c| c.type_ == "Ready");
    let transition = match existing {
        Some(c) if c.status == ready => c.last_transition_time.clone(),
        _ => plan::format_time(now),
    };
    status.conditions.retain(|c| c.type_ != "Ready");
    status.conditions.push(Condition {
        type_: "Ready".into(),
        status: ready.into(),
        reason: reason.into(),
        message,
        last_transition_time: transition,
        observed_generation: gen,
    });
}

fn ready_reason(status: &RuneBenchmarkStatus) -> Option<&str> {
    status.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.reason.as_str())
}

/// The Ready condition that reflects the last run (after a gate or suspension clears).
fn ready_from_last_run(status: &mut RuneBenchmarkStatus, gen: Option<i64>, now: Timestamp) {
    match status.last_run.as_ref().map(|r| (r.status, r.error.clone())) {
        Some((RunStatus::Succeeded, _)) => {
            set_ready(status, "True", "RunSucceeded", "workflow run succeeded".into(), gen, now)
        }
        Some((RunStatus::Failed, e)) => {
            set_ready(status, "False", "RunFailed", e.unwrap_or_else(|| "run failed".into()), gen, now)
        }
        Some(_) => set_ready(status, "Unknown", "Running", "a run is in progress".into(), gen, now),
        None => set_ready(status, "Unknown", "Waiting", "no run yet".into(), gen, now),
    }
}

/// The status as a merge patch that also clears fields that became empty.
fn status_patch(status: &RuneBenchmarkStatus) -> Value {
    let mut v = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        for k in [
            "observedGeneration",
            "observedSpecHash",
            "lastScheduleTime",
            "lastSuccessfulTime",
            "nextScheduleTime",
            "lastRun",
        ] {
            o.entry(k).or_insert(Value::Null);
        }
        for k in ["activeRuns", "history", "conditions"] {
            o.entry(k).or_insert(json!([]));
        }
    }
    json!({ "status": v })
}

struct Effects<'a> {
    ctx: &'a Context,
    obj: &'a RuneBenchmark,
    events: Vec<(EventType, &'static str, String)>,
}

impl Effects<'_> {
    fn event(&mut self, type_: EventType, reason: &'static str, note: String) {
        self.events.push((type_, reason, note));
    }

    async fn publish(self) {
        let reference = self.obj.object_ref(&());
        for (type_, reason, note) in self.events {
            let ev =
                Event { type_, reason: reason.into(), note: Some(note), action: "Reconcile".into(), secondary: None };
            if let Err(e) = self.ctx.recorder.publish(&ev, &reference).await {
                tracing::warn!(error = %e, reason, "could not publish event");
            }
        }
    }
}

/// Checks `spec.infrastructureRef`: `Ok(None)` when ready, `Ok(Some(why))` when not.
async fn infrastructure_not_ready(ctx: &Context, obj: &RuneBenchmark) -> Result<Option<String>, Error> {
    let Some(r) = &obj.spec.infrastructure_ref else { return Ok(None) };
    let (group, version) = r.api_version.rsplit_once('/').unwrap_or(("", r.api_version.as_str()));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &r.kind));
    let ns = r.namespace.clone().or_else(|| obj.namespace()).unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &resource);
    let found = match api.get_opt(&r.name).await {
        Ok(found) => found,
        Err(e) => return Ok(Some(format!("cannot read {} {ns}/{}: {e}", r.kind, r.name))),
    };
    let Some(found) = found else { return Ok(Some(format!("{} {ns}/{} not found", r.kind, r.name))) };
    let conditions = found.data.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let is_true = |t: &str| {
        conditions.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some(t) && c.get("status").and_then(Value::as_str) == Some("True")
        })
    };
    if is_true("Synced") && is_true("Ready") {
        Ok(None)
    } else {
        Ok(Some(format!("{} {ns}/{} is not Synced=True and Ready=True yet", r.kind, r.name)))
    }
}

/// Why a gate refused a run: the Ready reason and message.
type Refusal = (&'static str, String);

async fn cost_and_budget_gates(spec: &RuneBenchmarkSpec, rune: &RuneClient) -> Result<Option<Refusal>, Error> {
    if spec.cost_estimation.as_ref().is_some_and(|c| c.any()) {
        match rune.estimate(&estimate_payload(spec)).await {
            Ok(estimate) => {
                let confidence = estimate.get("confidence_score").and_then(Value::as_f64).unwrap_or(0.0);
                if confidence < COST_CONFIDENCE_THRESHOLD {
                    return Ok(Some((
                        "RunFailed",
                        format!("cost estimate: confidence {confidence} below threshold {COST_CONFIDENCE_THRESHOLD} (fail-closed)"),
                    )));
                }
            }
            Err(e @ ClientError::Api { status, .. }) if status < 500 && status != 429 => {
                return Ok(Some(("RunFailed", format!("cost estimate refused: {e}"))));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(max) = spec.budget.as_ref().and_then(|b| b.max_cost_usd) {
        let mut query = Vec::new();
        if let Some(m) = &spec.model {
            query.push(format!("model={}", percent_encode(m)));
        }
        if let Some(a) = spec.agent.as_ref().filter(|_| spec.workflow != Workflow::LlmInstance) {
            query.push(format!("agent={}", percent_encode(a)));
        }
        if let Some(g) = spec.budget.as_ref().and_then(|b| b.gpu.as_ref()) {
            query.push(format!("gpu={}", percent_encode(g)));
        }
        let path = format!("/v1/finops/simulate?{}", query.join("&"));
        let projection = match rune.get_json(&path).await {
            Ok(p) => p,
            Err(e @ ClientError::Api { status, .. }) if status < 500 && status != 429 => {
                return Ok(Some((
                    "BudgetExceeded",
                    format!("FinOps projection refused, cannot check the budget: {e}"),
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let cost = projection
            .get("cost_high_usd")
            .and_then(Value::as_f64)
            .or_else(|| projection.get("projected_cost_usd").and_then(Value::as_f64));
        match cost {
            Some(c) if c > max => {
                return Ok(Some((
                    "BudgetExceeded",
                    format!("projected cost ${c:.4} per run exceeds budget.maxCostUSD ${max}"),
                )))
            }
            Some(_) => {}
            None => {
                return Ok(Some(("BudgetExceeded", "FinOps projection has no cost; refusing (fail-closed)".into())))
            }
        }
    }
    Ok(None)
}

/// One reconcile of one benchmark.
pub async fn reconcile(obj: Arc<RuneBenchmark>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let result = reconcile_inner(&obj, &ctx).await;
    if let Ok((_, outcome)) = &result {
        ctx.failures().remove(&key(&obj));
        ctx.metrics.reconciled(outcome);
    }
    result.map(|(requeue, _)| requeue)
}

async fn reconcile_inner(obj: &RuneBenchmark, ctx: &Context) -> Result<(Requeue, &'static str), Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;
    let old = obj.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let generation = obj.meta().generation;
    let now = ctx.clock.now();
    let mut fx = Effects { ctx, obj, events: Vec::new() };
    let created_at =
        obj.meta().creation_timestamp.as_ref().and_then(|t| Timestamp::parse(&t.0.to_rfc3339()).ok()).unwrap_or(now);
    let released_at = obj.annotations().get(ESTOP_RELEASED_ANNOTATION).and_then(|t| Timestamp::parse(t).ok());

    let mut rune: Option<RuneClient> = None;
    let mut observations = Vec::new();
    if !status.active_runs.is_empty() {
        let client = rune_client(&ctx.client, obj).await?;
        for run in &status.active_runs {
            let observation = match client.get_job(&run.run_id).await {
                Ok(view) => observe(&view),
                Err(ClientError::Api { status: 404, .. }) => JobObservation::Finished {
                    status: JobStatus::Failed,
                    error: Some("job no longer exists at the RUNE API".into()),
                    result: None,
                },
                Err(e) => {
                    tracing::warn!(benchmark = %key(obj), run = %run.run_id, error = %e, "cannot poll run; will retry");
                    JobObservation::Unknown
                }
            };
            observations.push((run.run_id.clone(), observation));
        }
        rune = Some(client);
    }
    let input = PlanInput {
        spec,
        status: &old,
        created_at,
        estop_engaged: ctx.estop.load(Ordering::SeqCst),
        released_at,
        observations: &observations,
        now,
    };
    let p = plan::plan(&input);
    status.observed_generation = generation;

    // Mark polled runs as running.
    for (id, o) in &observations {
        if let (Some(run), JobObservation::Pending { running: true }) =
            (status.active_runs.iter_mut().find(|r| &r.run_id == id), o)
        {
            run.status = RunStatus::Running;
        }
    }
    for (id, why) in &p.cancel {
        if let Some(client) = &rune {
            match client.cancel_job(id).await {
                Ok(_) | Err(ClientError::Api { status: 404 | 409, .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        fx.event(EventType::Warning, "RunCancelled", format!("run {id} cancelled: {why}"));
    }
    for (id, outcome) in &p.finished {
        let Some(pos) = status.active_runs.iter().position(|r| &r.run_id == id) else { continue };
        let mut record = status.active_runs.remove(pos);
        record.completed_at = Some(plan::format_time(now));
        let started = Timestamp::parse(&record.submitted_at).unwrap_or(now);
        let millis = (now.as_micros() - started.as_micros()).max(0) / 1000;
        record.duration_millis = Some(millis);
        ctx.metrics.run_duration_seconds.observe(millis as f64 / 1000.0);
        match outcome {
            Outcome::Succeeded(result) => {
                record.status = RunStatus::Succeeded;
                record.result = result.clone();
                status.consecutive_failures = 0;
                status.last_successful_time = Some(plan::format_time(now));
                set_ready(&mut status, "True", "RunSucceeded", "workflow run succeeded".into(), generation, now);
                fx.event(EventType::Normal, "RunSucceeded", format!("run {id} succeeded in {millis} ms"));
            }
            Outcome::Failed(why) => {
                record.status = RunStatus::Failed;
                record.error = Some(why.clone());
                status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                set_ready(&mut status, "False", "RunFailed", why.clone(), generation, now);
                fx.event(EventType::Warning, "RunFailed", format!("run {id} failed: {why}"));
            }
        }
        status.last_run = Some(record.clone());
        plan::push_history(&mut status, record, spec);
    }

    let mut requeue = p.requeue_after;
    let outcome: &'static str = match &p.action {
        Action::Suspended => {
            let why = if spec.suspend { "spec.suspend is true" } else { "the E-Stop is engaged" };
            if ready_reason(&status) != Some("Suspended") {
                fx.event(EventType::Normal, "Suspended", format!("scheduling stopped: {why}"));
            }
            set_ready(&mut status, "False", "Suspended", format!("scheduling stopped: {why}"), generation, now);
            "suspended"
        }
        Action::InvalidSchedule(msg) => {
            if ready_reason(&status) != Some("InvalidSchedule") {
                fx.event(EventType::Warning, "InvalidSchedule", msg.clone());
            }
            set_ready(&mut status, "False", "InvalidSchedule", msg.clone(), generation, now);
            "invalid_schedule"
        }
        Action::Skip { scheduled_time, code, message } => {
            status.last_schedule_time = Some(plan::format_time(*scheduled_time));
            fx.event(
                EventType::Warning,
                "RunSkipped",
                format!("fire at {} skipped ({code}): {message}", plan::format_time(*scheduled_time)),
            );
            "skipped"
        }
        Action::AlreadyStarted { scheduled_time } => {
            status.last_schedule_time = Some(plan::format_time(*scheduled_time));
            "followed"
        }
        Action::Idle => {
            if matches!(ready_reason(&status), Some("Suspended" | "InvalidSchedule" | "InfrastructureNotReady") | None)
            {
                ready_from_last_run(&mut status, generation, now);
            }
            if status.active_runs.is_empty() {
                "idle"
            } else {
                "followed"
            }
        }
        Action::Start { scheduled_time, trigger, missed } => {
            let hash = plan::spec_hash(spec);
            if let Some(why) = infrastructure_not_ready(ctx, obj).await? {
                if ready_reason(&status) != Some("InfrastructureNotReady") {
                    fx.event(EventType::Warning, "InfrastructureNotReady", why.clone());
                }
                set_ready(&mut status, "False", "InfrastructureNotReady", why, generation, now);
                requeue = Some(requeue.map_or(INFRA_RETRY, |r| r.min(INFRA_RETRY)));
                "gated"
            } else {
                let client = match rune.take() {
                    Some(c) => c,
                    None => rune_client(&ctx.client, obj).await?,
                };
                if let Some((reason, why)) = cost_and_budget_gates(spec, &client).await? {
                    status.last_schedule_time = Some(plan::format_time(*scheduled_time));
                    status.observed_spec_hash = Some(hash);
                    set_ready(&mut status, "False", reason, why.clone(), generation, now);
                    fx.event(EventType::Warning, reason, why);
                    "gated"
                } else {
                    let idempotency_key =
                        rune_core::schedule::fire_key(&ns, &name, generation.unwrap_or(0), *scheduled_time);
                    let submitted =
                        client.submit(spec.workflow.as_str(), &job_payload(spec), Some(&idempotency_key)).await;
                    status.last_schedule_time = Some(plan::format_time(*scheduled_time));
                    status.observed_spec_hash = Some(hash);
                    let mut record = RunRecord {
                        run_id: String::new(),
                        schedule_time: plan::format_time(*scheduled_time),
                        trigger: *trigger,
                        submitted_at: plan::format_time(now),
                        completed_at: None,
                        duration_millis: None,
                        status: RunStatus::Submitted,
                        error: None,
                        result: None,
                    };
                    match submitted {
                        Ok(accepted) => {
                            record.run_id = accepted.job_id.clone();
                            status.active_runs.push(record.clone());
                            status.last_run = Some(record);
                            if status.conditions.is_empty()
                                || matches!(
                                    ready_reason(&status),
                                    Some("Suspended" | "InvalidSchedule" | "InfrastructureNotReady")
                                )
                            {
                                set_ready(
                                    &mut status,
                                    "Unknown",
                                    "Running",
                                    format!("run {} in progress", accepted.job_id),
                                    generation,
                                    now,
                                );
                            }
                            let extra = if *missed > 0 {
                                format!(" ({missed} missed fires collapsed into this one)")
                            } else {
                                String::new()
                            };
                            let why = match trigger {
                                Trigger::Created => "created",
                                Trigger::SpecChanged => "spec changed",
                                Trigger::Schedule => "scheduled",
                            };
                            fx.event(
                                EventType::Normal,
                                "RunSubmitted",
                                format!("run {} submitted ({why}){extra}", accepted.job_id),
                            );
                            requeue =
                                Some(requeue.map_or(plan::poll_interval(spec), |r| r.min(plan::poll_interval(spec))));
                            "started"
                        }
                        Err(e @ ClientError::Api { status: code, .. })
                            if code < 500 && !matches!(code, 401 | 403 | 429) =>
                        {
                            // The API refused the request itself: retrying cannot help.
                            // (401/403 are retried: fixing the token Secret must be enough.)
                            record.run_id = format!("refused-{}", plan::format_time(*scheduled_time));
                            record.status = RunStatus::Failed;
                            record.error = Some(e.to_string());
                            record.completed_at = Some(plan::format_time(now));
                            status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                            status.last_run = Some(record.clone());
                            plan::push_history(&mut status, record, spec);
                            set_ready(
                                &mut status,
                                "False",
                                "RunFailed",
                                format!("submission refused: {e}"),
                                generation,
                                now,
                            );
                            fx.event(EventType::Warning, "RunFailed", format!("submission refused: {e}"));
                            "error"
                        }
                        Err(e) => {
                            fx.publish().await;
                            return Err(e.into());
                        }
                    }
                }
            }
        }
    };
    status.next_schedule_time = p.next_fire.map(plan::format_time);
    if status != old {
        let api: Api<RuneBenchmark> = Api::namespaced(ctx.client.clone(), &ns);
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status_patch(&status))).await?;
    }
    fx.publish().await;
    Ok((requeue.map_or_else(Requeue::await_change, Requeue::requeue), outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rune_core::contracts::JobRequest;
    use rune_core::JobKind;

    fn spec(extra: Value) -> RuneBenchmarkSpec {
        let mut s =
            json!({"apiBaseUrl": "http://api:8080", "workflow": "agentic-agent", "backendUrl": "http://llm:11434"});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        serde_json::from_value(s).unwrap()
    }

    /// What the operator submits for each workflow is a body the API accepts, with the
    /// spec's values in the API's field names.
    #[test]
    fn payloads_are_valid_api_requests() {
        let full = json!({
            "agent": "k8sgpt", "question": "why?", "model": "llama3.1:8b", "backendType": "openai",
            "backendWarmup": false, "backendWarmupTimeoutSeconds": 30, "kubeconfig": "/kube/config",
            "suite": "smoke", "attestationRequired": true,
            "provisioning": {"vastai": {"templateHash": "abc", "minDph": 1.0, "maxDph": 2.0, "reliability": 0.9, "stopInstance": true}},
        });
        for (workflow, kind) in [
            ("agentic-agent", JobKind::AgenticAgent),
            ("benchmark", JobKind::Benchmark),
            ("llm-instance", JobKind::LlmInstance),
        ] {
            let mut extra = full.clone();
            extra["workflow"] = json!(workflow);
            let body = job_payload(&spec(extra));
            let parsed = JobRequest::parse(kind, &body).unwrap_or_else(|e| panic!("{workflow}: {e:?} for {body}"));
            match parsed {
                JobRequest::AgenticAgent(r) => {
                    assert_eq!(
                        (r.agent.as_str(), r.question.as_str(), r.backend_type.as_str()),
                        ("k8sgpt", "why?", "openai")
                    );
                    assert_eq!((r.backend_warmup, r.backend_warmup_timeout), (false, 30));
                }
                JobRequest::Benchmark(r) => {
                    assert!(r.attestation_required);
                    assert_eq!(r.suite.as_deref(), Some("smoke"));
                    let vastai = r.provisioning.and_then(|p| p.vastai).unwrap();
                    assert_eq!(
                        (vastai.template_hash.as_str(), vastai.max_dph, vastai.stop_instance),
                        ("abc", 2.0, true)
                    );
                }
                JobRequest::LlmInstance(r) => assert!(r.provisioning.is_some()),
                other => panic!("unexpected {other:?}"),
            }
        }
        // A minimal spec sends only what it sets; the API fills its defaults.
        let minimal = job_payload(&spec(json!({})));
        assert_eq!(minimal, json!({"backend_url": "http://llm:11434"}));
        JobRequest::parse(JobKind::AgenticAgent, &minimal).unwrap();
    }

    /// The cost-gate body is a valid `/v1/estimates` request carrying the spec's figures.
    #[test]
    fn estimate_payload_is_a_valid_estimate_request() {
        let s = spec(json!({
            "model": "m", "timeoutSeconds": 600,
            "costEstimation": {"localHardware": true, "localTdpWatts": 300.0, "localEnergyRateKwh": 0.2},
        }));
        let body = estimate_payload(&s);
        assert_eq!(body["estimated_duration_seconds"], 600);
        let JobRequest::CostEstimate(r) = JobRequest::parse(JobKind::CostEstimate, &body).unwrap() else { panic!() };
        assert!(r.local_hardware && !r.vastai);
        assert_eq!(r.local_tdp_watts, 300.0);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(percent_encode("llama3.1:8b"), "llama3.1%3A8b");
        assert_eq!(percent_encode("a&b=c d"), "a%26b%3Dc%20d");
    }
}
