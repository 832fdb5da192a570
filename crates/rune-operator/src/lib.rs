//! RUNE's Kubernetes operator for the `RuneBenchmark` custom resource
//! (`bench.rune.ai/v1alpha1`): benchmarks that run through the RUNE API on creation, on
//! spec change and on a cron schedule, with gates, bounded history and an E-Stop.
//!
//! # Layout
//!
//! - [`crd`]: the resource types; the CRD YAML is generated from them.
//! - [`plan`]: the pure decision of one reconcile (unit-tested, no I/O, no clock).
//! - [`reconcile`]: carries a plan out: polls, cancels, gates, submits, writes status and
//!   events; per-object exponential backoff on errors.
//! - [`estop`]: the `rune-estop` ConfigMap controller.
//! - [`leader`]: leader election over a Lease.
//! - [`runtime`]: probes, metrics, leader election and the controllers wired together.
//! - [`rbac`]: the permissions the code uses, printed as roles by `rune operator rbac`.
//! - [`metrics`], [`clock`].
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod clock;
pub mod crd;
pub mod estop;
pub mod leader;
pub mod metrics;
pub mod plan;
pub mod rbac;
pub mod reconcile;
pub mod runtime;
#[cfg(feature = "fake-api-server")]
pub mod testing;
