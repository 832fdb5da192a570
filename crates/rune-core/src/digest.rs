//! The job-history digest: how a backup manifest proves, later, that no job was lost or
//! altered.
//!
//! The digest of a job depends only on values that mean the same on every engine:
//! identifiers, kind, request text and creation time in whole milliseconds; for a job
//! that had reached a terminal status, also its status, result, error and message.
//! A job that was still queued or running when the manifest was written is allowed to
//! progress afterwards, so only its identity is digested (its `mode` is `Identity`).

use crate::job::{JobRecord, JobStatus};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What part of a job a digest covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DigestMode {
    /// Identity and outcome: for jobs that were terminal.
    Full,
    /// Identity only: for jobs that could still legitimately change.
    Identity,
}

impl DigestMode {
    /// The mode a manifest uses for a job in `status`.
    pub fn for_status(status: JobStatus) -> Self {
        if status.is_terminal() {
            DigestMode::Full
        } else {
            DigestMode::Identity
        }
    }

    /// One-letter tag used in manifests (`t` terminal, `i` identity).
    pub const fn tag(self) -> char {
        match self {
            DigestMode::Full => 't',
            DigestMode::Identity => 'i',
        }
    }

    /// Parses a manifest tag.
    pub fn from_tag(c: char) -> Option<Self> {
        match c {
            't' => Some(DigestMode::Full),
            'i' => Some(DigestMode::Identity),
            _ => None,
        }
    }
}

fn field(h: &mut Sha256, value: Option<&str>) {
    match value {
        // Length-prefixed so no two field sequences hash alike.
        Some(v) => {
            h.update((v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
        None => h.update(u64::MAX.to_le_bytes()),
    }
}

/// The first 16 hex digits (64 bits) of the job's SHA-256 digest in `mode`.
pub fn job_digest(job: &JobRecord, mode: DigestMode) -> String {
    let mut h = Sha256::new();
    field(&mut h, Some(job.job_id.as_str()));
    field(&mut h, Some(job.tenant_id.as_str()));
    field(&mut h, Some(job.kind.as_str()));
    field(&mut h, Some(&job.request_json));
    h.update(job.created_at.as_millis().to_le_bytes());
    if mode == DigestMode::Full {
        field(&mut h, Some(job.status.as_str()));
        field(&mut h, job.result_json.as_deref());
        field(&mut h, job.error.as_deref());
        field(&mut h, job.message.as_deref());
    }
    let out = h.finalize();
    out.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Folds per-job entries (already sorted by job id) into one history checksum.
#[derive(Debug, Default, Clone)]
pub struct HistoryHasher(Sha256);

impl HistoryHasher {
    /// Adds one job's manifest entry.
    pub fn add(&mut self, job_id: &str, mode: DigestMode, digest: &str) {
        self.0.update(job_id.as_bytes());
        self.0.update([0, mode.tag() as u8, 0]);
        self.0.update(digest.as_bytes());
        self.0.update([b'\n']);
    }

    /// The hex SHA-256 of everything added.
    pub fn finish(self) -> String {
        self.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobKind, JobStatus};
    use crate::time::Timestamp;

    fn job(status: JobStatus) -> JobRecord {
        JobRecord {
            job_id: "j1".parse().unwrap(),
            tenant_id: "t".parse().unwrap(),
            kind: JobKind::Benchmark,
            status,
            request_json: "{}".into(),
            result_json: None,
            error: None,
            message: Some("accepted".into()),
            created_at: Timestamp::from_micros(1_000_123),
            updated_at: Timestamp::from_micros(5),
            attempts: 0,
            lease_owner: None,
            lease_expires_at: None,
            started_at: None,
            finished_at: None,
            schedule_id: None,
        }
    }

    /// Identity digests ignore progress; full digests see every outcome change; neither
    /// sees bookkeeping (updated_at, leases) or sub-millisecond float noise.
    #[test]
    fn digest_covers_what_it_claims() {
        let a = job(JobStatus::Queued);
        let mut b = a.clone();
        b.status = JobStatus::Running;
        b.updated_at = Timestamp::from_micros(99);
        b.attempts = 2;
        b.created_at = Timestamp::from_micros(1_000_900);
        assert_eq!(job_digest(&a, DigestMode::Identity), job_digest(&b, DigestMode::Identity));
        assert_ne!(job_digest(&a, DigestMode::Full), job_digest(&b, DigestMode::Full));
        let mut c = a.clone();
        c.request_json = "{ }".into();
        assert_ne!(job_digest(&a, DigestMode::Identity), job_digest(&c, DigestMode::Identity));
        let mut d = a.clone();
        d.result_json = Some(String::new());
        assert_ne!(job_digest(&a, DigestMode::Full), job_digest(&d, DigestMode::Full), "None differs from empty");
        assert_eq!(job_digest(&a, DigestMode::Full).len(), 16);
    }
}
