//! State shared by every request handler.

use crate::config::ServerConfig;
use crate::engine::JobEngine;
use crate::limits::{AuthThrottle, RateLimiter};
use crate::metrics::Metrics;
use rune_store::Store;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Cloned into every handler (all fields are `Arc`s or cheap).
#[derive(Clone)]
pub struct AppState {
    /// The job database.
    pub store: Arc<dyn Store>,
    /// Validated configuration.
    pub config: Arc<ServerConfig>,
    /// The worker pool (for wake-ups, cancellation and utilisation).
    pub engine: Arc<JobEngine>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Per-tenant request budget.
    pub limiter: Arc<RateLimiter>,
    /// Per-address failed-authentication budget.
    pub auth_throttle: Arc<AuthThrottle>,
    /// Cached E-Stop state: set by the E-Stop routes, refreshed from the database by
    /// the scheduler tick (so replicas converge), read on every submission without a
    /// database round trip.
    pub estop_active: Arc<AtomicBool>,
    /// Outbound HTTP client (model listings from backends).
    pub http: reqwest::Client,
    /// Fires when the server shuts down: long-lived responses (SSE) end on it.
    pub shutdown: tokio_util::sync::CancellationToken,
}
