//! RUNE's HTTP API server.
//!
//! # Layout
//!
//! - [`serve`]: runs the server until a shutdown signal, then drains.
//! - [`config`]: [`ServerConfig`], read and validated from the environment.
//! - [`auth`], [`limits`], [`middleware`]: tenants, tokens, rate limits, body limits.
//! - [`routes`]: the `/v1` handlers, `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.
//! - [`engine`]: the durable worker pool (claims, leases, heartbeats, recovery).
//! - [`runner`]: the [`JobRunner`] trait through which jobs execute.
//! - [`scheduler`]: the embedded cron scheduler (one leader across replicas).
//! - [`estop`]: the emergency stop.
//! - [`metrics`], [`openapi`], [`error`].
//!
//! No SQL here: everything persistent goes through [`rune_store::Store`].
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let store = rune_store::open("sqlite:///tmp/rune/jobs.db", &Default::default()).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let config = rune_api::ServerConfig::from_env(listener.local_addr()?, false, |k| std::env::var(k).ok())?;
//! rune_api::serve(listener, config, store, Arc::new(rune_api::runner::BuiltinRunner), async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod auth;
pub mod config;
pub mod engine;
pub mod error;
pub mod estop;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod runner;
pub mod scheduler;
pub mod state;

pub use config::ServerConfig;
pub use runner::JobRunner;

use state::AppState;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Accepting connections failed.
    #[error("serving HTTP failed: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed during start-up.
    #[error(transparent)]
    Store(#[from] rune_store::StoreError),
}

/// Serves the API on `listener` until `shutdown` completes, then stops accepting, lets
/// running jobs finish for the grace period, gives the rest back to the queue, and
/// returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    store: Arc<dyn rune_store::Store>,
    runner: Arc<dyn JobRunner>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with(listener, config, store, runner, None, shutdown).await
}

/// [`serve`], also answering the routes of `extra` (the web UI that `rune serve` embeds
/// at `/`). `extra` must not define a fallback nor any of the API's paths; it gets none
/// of the API's middleware (authentication, rate limits), so it must guard itself.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    store: Arc<dyn rune_store::Store>,
    runner: Arc<dyn JobRunner>,
    extra: Option<axum::Router>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = Arc::new(config);
    let metrics = Arc::new(metrics::Metrics::new());
    let engine = Arc::new(engine::JobEngine::new(store.clone(), runner, config.clone(), metrics.clone()));
    let stop = CancellationToken::new();
    let estop_now = estop_active_in_db(store.as_ref()).await?;
    let state = AppState {
        store: store.clone(),
        config: config.clone(),
        engine: engine.clone(),
        metrics,
        limiter: Arc::new(limits::RateLimiter::new(config.rate_limit_rps, config.rate_limit_burst)),
        auth_throttle: Arc::new(limits::AuthThrottle::new(config.auth_failures_per_minute)),
        estop_active: Arc::new(AtomicBool::new(estop_now)),
        http: reqwest::Client::builder()
            .user_agent(concat!("rune/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| std::io::Error::other(e.to_string()))?,
        shutdown: stop.clone(),
    };
    // Every background task lives in this tracker and is joined before returning.
    let tracker = TaskTracker::new();
    engine.start(&tracker, stop.clone());
    if config.scheduler {
        let (state, stop) = (state.clone(), stop.clone());
        tracker.spawn(async move { scheduler::run(state, stop).await });
    }
    if !config.auth.enabled() {
        tracing::warn!(address = %config.listen, "authentication is disabled: every request acts as tenant `default` (set RUNE_API_TOKENS to require tokens)");
    }
    let app = match extra {
        Some(extra) => routes::router(state).merge(extra),
        None => routes::router(state),
    };
    tracing::info!(address = %config.listen, database = ?store.engine(), workers = config.max_concurrent_jobs, auth = config.auth.enabled(), "RUNE API listening");
    let stop_http = stop.clone();
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutdown requested: no new requests, draining jobs");
            stop_http.cancel();
        })
        .await;
    stop.cancel();
    tracker.close();
    if tokio::time::timeout(config.shutdown_grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            grace_s = config.shutdown_grace.as_secs(),
            "jobs still running after the grace period; requeueing them"
        );
        engine.requeue_running();
        tracker.wait().await;
    }
    tracing::info!("RUNE API stopped");
    served.map_err(ServeError::Io)
}

async fn estop_active_in_db(store: &dyn rune_store::Store) -> Result<bool, rune_store::StoreError> {
    estop::is_active(store).await
}
