//! Conversions between database values and core records, shared by both engines.

use crate::error::StoreError;
use rune_core::{JobId, JobKind, JobStatus, TenantId, Timestamp};

/// Column list of `jobs` in the order every engine selects it.
pub(crate) const JOB_COLUMNS: &str = "job_id, tenant_id, kind, status, request_json, result_json, error, message, \
     created_at, updated_at, attempts, lease_owner, lease_expires_at, started_at, finished_at, schedule_id";

/// Parses the typed columns of a job row, naming the row when one is corrupt.
pub(crate) fn job_ids(
    job_id: String,
    tenant_id: String,
    kind: &str,
    status: &str,
) -> Result<(JobId, TenantId, JobKind, JobStatus), StoreError> {
    let corrupt = |reason: String, key: &str| StoreError::CorruptRow { table: "jobs", key: key.to_owned(), reason };
    let kind_v: JobKind = kind.parse().map_err(|e: rune_core::job::UnknownJobKind| corrupt(e.to_string(), &job_id))?;
    let status_v: JobStatus =
        status.parse().map_err(|e: rune_core::job::UnknownJobStatus| corrupt(e.to_string(), &job_id))?;
    let tenant: TenantId = tenant_id.parse().map_err(|e: rune_core::job::InvalidId| corrupt(e.to_string(), &job_id))?;
    let id: JobId =
        job_id.clone().try_into().map_err(|e: rune_core::job::InvalidId| corrupt(e.to_string(), &job_id))?;
    Ok((id, tenant, kind_v, status_v))
}

/// Optional float seconds to a timestamp.
pub(crate) fn ts_opt(v: Option<f64>) -> Option<Timestamp> {
    v.map(Timestamp::from_epoch_seconds)
}

/// Hex SHA-256 of bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Checks an artifact file name: a plain name, never a path.
pub(crate) fn check_artifact_name(name: &str) -> Result<(), StoreError> {
    let bad = name.is_empty()
        || name.len() > 255
        || name.contains('/')
        || name.contains('\\')
        || name == "."
        || name == ".."
        || name.chars().any(|c| c.is_control());
    if bad {
        return Err(StoreError::Conflict(format!(
            "artifact name `{}` is not a plain file name (no slashes, no control characters, 1-255 bytes)",
            name.escape_debug()
        )));
    }
    Ok(())
}
