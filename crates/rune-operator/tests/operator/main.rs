//! The operator through the real kube-rs client against an in-process fake Kubernetes API
//! server, submitting to a real RUNE API server (SQLite in a temp dir) over loopback.

mod crd_schema;
mod harness;
mod reconciler;
mod runtime;
