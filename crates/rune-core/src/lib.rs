//! Domain types and pure logic shared by every RUNE component.
//!
//! `rune-core` owns the contracts that the CLI, the API server, the UI and the operator
//! agree on. It performs no I/O: no sockets, no files, no database, no async runtime, so
//! every rule here can be tested exhaustively and reused anywhere.
//!
//! # Layout
//!
//! - [`job`]: job kinds, the [`JobStatus`] state machine, identifiers and the stored job
//!   record.
//! - [`api`]: the HTTP API's request and response bodies, shared by server and clients.
//! - [`contracts`]: request bodies of the four RUNE job kinds, with the original field
//!   names and defaults, validated all at once.
//! - [`validate`]: field-level error collection used by the contracts.
//! - [`time`]: the millisecond-exact [`Timestamp`] stored as epoch seconds.
//! - [`records`]: events, artifacts, chain state, schedules and settings as stored.
//! - [`digest`]: the engine-neutral job-history digest used by backups and `verify`.
//! - [`cron`]: cron expressions (5 fields, `TZ=`/`CRON_TZ=`) and their next fire times.
//! - [`schedule`]: what a scheduler should do now (fire, catch up, skip, wait).
//! - [`cost`]: pre-flight cost estimates, the fail-closed spend gate, FinOps projection.
//! - [`suite`]: benchmark suites (cases, captured context, ground truth), validated in full.
//! - [`scoring`]: deterministic answer scoring, per agent × model aggregates, judge hook.
//! - [`config`]: `rune.yaml` / `$RUNE_HOME/config.yaml`: schema, validation (secrets
//!   refused), deep merge with a profile, and the key → environment variable table.
//!
//! # Example
//!
//! ```
//! use rune_core::{contracts::JobRequest, JobKind, JobStatus};
//!
//! let body = serde_json::json!({"question": "", "model": "llama3.1:8b"});
//! let err = JobRequest::parse(JobKind::AgenticAgent, &body).unwrap_err();
//! // Every problem is reported at once, each naming its field.
//! assert!(err.fields().iter().any(|e| e.field == "question"));
//! assert!(err.fields().iter().any(|e| e.field == "backend_url"));
//! assert!(JobStatus::Queued.can_transition_to(JobStatus::Running));
//! assert!(!JobStatus::Succeeded.can_transition_to(JobStatus::Failed));
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod config;
pub mod contracts;
pub mod cost;
pub mod cron;
pub mod digest;
pub mod job;
pub mod records;
pub mod schedule;
pub mod scoring;
pub mod suite;
pub mod time;
pub mod validate;

pub use job::{JobId, JobKind, JobRecord, JobStatus, TenantId};
pub use time::Timestamp;
pub use validate::{FieldError, ValidationErrors};
