//! `GET /openapi.json`: the API description, generated from the handlers'
//! `#[utoipa::path]` annotations and the shared contract types, so it cannot drift from
//! the code (a test also checks that every documented route is served).

use crate::routes::{catalog, control, estimates, jobs, runs, schedules, settings};
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
    ),
    components(schemas(
        SubmitResponse, ErrorBody, FieldError, JobView, JobList, CancelResponse, EventList, JobEvent, ArtifactView,
        ArtifactList, ArtifactSummary, ScheduleRequest, ScheduleView, ScheduleList, EstopRequest, EstopStatus, Health,
        Readiness, JobKind, JobStatus, ConcurrencyPolicy, RunBenchmarkRequest, RunAgenticAgentRequest,
        RunLlmInstanceRequest, CostEstimationRequest, Provisioning, VastAiProvisioning, CostEstimate, CostDriver,
        ResourceImpact,
    )),
    modifiers(&Security),
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

/// `GET /openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
