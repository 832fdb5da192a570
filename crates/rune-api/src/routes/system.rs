//! `GET /v1/system/job-digests`: the job-history digests a backup manifest holds, computed
//! live, so `rune health-check --manifest` can prove "job history intact" through the API
//! without access to the database file.
//!
//! It is read-only and reveals only job ids and 64-bit digests, of every tenant (a manifest
//! covers the whole database), so it is limited to the tenants allowed to operate the
//! E-Stop (`RUNE_ESTOP_TENANTS`; all tenants when unset).

use crate::error::{ApiError, ApiResult};
use crate::middleware::Tenant;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use rune_core::digest::{job_digest, DigestMode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Jobs per page unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 1_000;
/// Largest page (a page of digests is ~60 bytes per job).
const MAX_PAGE: u32 = 10_000;

/// One page of digests, in job-id order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobDigestPage {
    /// Identity of the database (a manifest from another database does not apply).
    pub database_id: Option<String>,
    /// Schema version of the database.
    pub schema_version: i64,
    /// Schema version this server's binary knows.
    pub binary_schema_version: i64,
    /// `job_id → {"t": full digest, "i": identity digest}`; a manifest entry `t:…` is
    /// compared with `t`, `i:…` with `i` (see `rune_core::digest`).
    #[schema(value_type = Object)]
    pub jobs: BTreeMap<String, BTreeMap<char, String>>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// `GET /v1/system/job-digests?after=&limit=`.
#[utoipa::path(get, path = "/v1/system/job-digests", tag = "system",
    params(("after" = Option<String>, Query, description = "next_after of the previous page"),
           ("limit" = Option<u32>, Query, description = "1-10000, default 1000")),
    responses((status = 200, body = JobDigestPage), (status = 403, body = rune_core::api::ErrorBody)))]
pub async fn job_digests(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    // A map, not a typed struct: a repeated or malformed parameter then gets this API's
    // JSON error rather than the extractor's plain-text rejection.
    Query(q): Query<BTreeMap<String, String>>,
) -> ApiResult<Json<JobDigestPage>> {
    if let Some(allowed) = &state.config.estop_tenants {
        if !allowed.iter().any(|t| t == tenant.as_str()) {
            return Err(ApiError::Forbidden(format!(
                "tenant {tenant} may not read the whole job history's digests (RUNE_ESTOP_TENANTS)"
            )));
        }
    }
    let limit = match q.get("limit").map(String::as_str) {
        None => DEFAULT_PAGE,
        Some(text) => text.parse::<u32>().ok().filter(|l| (1..=MAX_PAGE).contains(l)).ok_or_else(|| {
            ApiError::BadRequest(format!("limit must be a whole number from 1 to {MAX_PAGE}, got `{text}`"))
        })?,
    };
    let status = state.store.schema_status().await?;
    let page = state.store.scan_jobs(q.get("after").map(String::as_str), limit).await?;
    let next_after = (page.len() as u32 == limit).then(|| page.last().map(|j| j.job_id.to_string())).flatten();
    let jobs = page
        .iter()
        .map(|job| {
            let both = [DigestMode::Full, DigestMode::Identity]
                .into_iter()
                .map(|mode| (mode.tag(), job_digest(job, mode)))
                .collect();
            (job.job_id.to_string(), both)
        })
        .collect();
    Ok(Json(JobDigestPage {
        database_id: status.database_id,
        schema_version: status.schema_version,
        binary_schema_version: status.binary_schema_version,
        jobs,
        next_after,
    }))
}
