//! `GET /openapi.json`: the API description, generated from the handlers'
//! `#[utoipa::path]` annotations and the shared contract types, so it cannot drift from
//! the code (a test also checks that every documented route is served).

use crate::routes::{catalog, control, estimates, jobs, runs, schedules, settings, system};
use axum::Json;
use rune_core::api::{
    ArtifactList, ArtifactSummary, ArtifactView, CancelResponse, ErrorBody, EstopRequest, EstopStatus, EventList,
    Health, JobList, JobView, Readiness, ScheduleList, ScheduleRequest, ScheduleView, SubmitResponse,
};
use rune_core::contracts::{
    CostEstimationRequest, Provisioning, RunAgenticAgentRequest, RunBenchmarkRequest, RunLlmInstanceRequest,
    VastAiProvisioning,
};
use rune_core::cost::{CostDriver, CostEstimate, ResourceImpact};
use rune_core::records::{ConcurrencyPolicy, JobEvent};
use rune_core::validate::FieldError;
use rune_core::{JobKind, JobStatus};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "RUNE API", description = "Reliability Use-case Numeric Evaluator: jobs, runs, schedules, E-Stop, cost."),
    paths(
        jobs::submit, jobs::list, jobs::get, jobs::cancel, jobs::events,
        runs::trace, runs::artifacts, runs::artifact, runs::chain_state, runs::metrics_summary,
        catalog::vastai_models, catalog::llm_models,
        estimates::estimate, estimates::finops,
        settings::get, settings::update, settings::export, settings::create_profile, settings::get_profile,
        settings::put_profile, settings::delete_profile,
        schedules::create, schedules::list, schedules::get, schedules::update, schedules::delete,
        schedules::suspend, schedules::resume,
        control::estop_status, control::estop_trigger, control::estop_release,
        control::healthz, control::readyz, control::metrics,
        system::job_digests,
    ),
    components(schemas(
        SubmitResponse, ErrorBody, FieldError, JobView, JobList, CancelResponse, EventList, JobEvent, ArtifactView,
        ArtifactList, ArtifactSummary, ScheduleRequest, ScheduleView, ScheduleList, EstopRequest, EstopStatus, Health,
        Readiness, JobKind, JobStatus, ConcurrencyPolicy, RunBenchmarkRequest, RunAgenticAgentRequest,
        RunLlmInstanceRequest, CostEstimationRequest, Provisioning, VastAiProvisioning, CostEstimate, CostDriver,
        ResourceImpact, system::JobDigestPage,
    )),
    modifiers(&Security, &CommonResponses),
    security(("bearer" = [], "tenant" = [])),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components
            .add_security_scheme("tenant", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Tenant-ID"))));
        openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    }
}

/// Documents the answers every route can give besides its own: the middleware's
/// refusals (authentication, rate limit, body size, malformed JSON, timeouts) and
/// server-side failures, so a client generated from the document handles them and a
/// contract tester does not see them as undocumented.
struct CommonResponses;

/// Routes that take no credentials and have no body (probes, metrics, the document).
const UNAUTHENTICATED: &[&str] = &["/healthz", "/readyz", "/metrics", "/openapi.json"];

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                    )
                    .build(),
            )
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let open = UNAUTHENTICATED.contains(&path.as_str());
            let operations = [
                (&mut item.get, false, false),
                (&mut item.delete, false, true),
                (&mut item.post, true, false),
                (&mut item.put, true, false),
                (&mut item.patch, true, false),
            ];
            for (operation, has_body, is_delete) in operations {
                let Some(operation) = operation.as_mut() else { continue };
                let responses = &mut operation.responses.responses;
                let mut add = |code: &str, description: &str| {
                    responses.entry(code.to_owned()).or_insert_with(|| error(description));
                };
                if !open {
                    add("401", "missing or wrong credentials (`Authorization: Bearer`, `X-Tenant-ID`)");
                    add("429", "rate limit or authentication-failure throttle; see `Retry-After`");
                    add("400", "malformed request (path, query or body)");
                    add("503", "the database is unavailable or the server is shutting down");
                }
                if has_body {
                    add("413", "request body over the configured limit");
                }
                if !open && (has_body || is_delete) {
                    add("507", "the job database has no space left; nothing was stored");
                }
                add("500", "unexpected server error (logged with the request id)");
                add("504", "the request took longer than the configured timeout");
            }
        }
        // `POST /v1/estop` works without a body (the reason is optional).
        if let Some(body) =
            openapi.paths.paths.get_mut("/v1/estop").and_then(|i| i.post.as_mut()).and_then(|o| o.request_body.as_mut())
        {
            body.required = Some(utoipa::openapi::Required::False);
        }
    }
}

/// `GET /openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
