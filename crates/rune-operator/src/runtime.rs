//! `rune operator run`: probes, metrics, leader election, the two controllers and a
//! graceful shutdown, wired together.

use crate::clock::{Clock, SystemClock};
use crate::crd::RuneBenchmark;
use crate::leader::LeaseLock;
use crate::metrics::Metrics;
use crate::reconcile::{error_policy, reconcile, Context};
use axum::http::StatusCode;
use axum::routing::get;
use futures_util::StreamExt;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::Api;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Settings of a running operator.
#[derive(Debug, Clone)]
pub struct OperatorOptions {
    /// Where `/metrics` is served.
    pub metrics_addr: SocketAddr,
    /// Where `/healthz` and `/readyz` are served.
    pub health_addr: SocketAddr,
    /// Namespace of the Lease and the E-Stop ConfigMap.
    pub namespace: String,
    /// This replica's identity (pod name).
    pub identity: String,
    /// Take part in leader election (off: always lead; for a single replica).
    pub leader_elect: bool,
    /// Lease duration.
    pub lease_duration: Duration,
    /// Run the E-Stop controller.
    pub estop_enabled: bool,
    /// Name of the E-Stop ConfigMap.
    pub estop_configmap: String,
    /// Reconciles running at once.
    pub concurrency: u16,
}

impl Default for OperatorOptions {
    fn default() -> Self {
        Self {
            metrics_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            health_addr: SocketAddr::from(([0, 0, 0, 0], 8081)),
            namespace: "rune".into(),
            identity: "rune-operator".into(),
            leader_elect: true,
            lease_duration: Duration::from_secs(15),
            estop_enabled: true,
            estop_configmap: crate::estop::DEFAULT_CONFIGMAP.into(),
            concurrency: 3,
        }
    }
}

/// Why the operator stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A probe or metrics port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Leadership was lost; the process must restart so two leaders never overlap.
    #[error("lost the leader lease {0}; exiting so a fresh replica takes over")]
    LostLease(String),
}

async fn serve_http(
    addr: SocketAddr,
    app: axum::Router,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, RunError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| RunError::Bind { addr, source })?;
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    }))
}

/// Updates the active-schedules gauge from the reflector's view.
fn count_active(store: &Store<RuneBenchmark>, metrics: &Metrics) {
    let n = store
        .state()
        .iter()
        .filter(|b| !b.spec.suspend && b.spec.schedule.as_deref().is_some_and(|s| !s.trim().is_empty()))
        .count();
    metrics.active_schedules.set(i64::try_from(n).unwrap_or(i64::MAX));
}

/// Runs the controllers (no leader election, no servers) until `stop`: what the leader
/// does, and what tests drive directly.
pub async fn run_controllers(ctx: Arc<Context>, options: &OperatorOptions, stop: CancellationToken) {
    let api: Api<RuneBenchmark> = Api::all(ctx.client.clone());
    // Status writes re-trigger a reconcile; it computes the same status and writes
    // nothing, so the loop settles. Polls and fires come from requeues.
    let controller = Controller::new(api, watcher::Config::default().any_semantic())
        .with_config(controller::Config::default().concurrency(options.concurrency));
    let reader = controller.store();
    let estop = if options.estop_enabled {
        let (ctx, ns, name, stop) =
            (ctx.clone(), options.namespace.clone(), options.estop_configmap.clone(), stop.clone());
        Some(tokio::spawn(crate::estop::run(ctx, ns, name, stop)))
    } else {
        None
    };
    let gauge_reader = reader.clone();
    let gauge_ctx = ctx.clone();
    let gauge_stop = stop.clone();
    let gauge = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = gauge_stop.cancelled() => return,
                _ = tick.tick() => count_active(&gauge_reader, &gauge_ctx.metrics),
            }
        }
    });
    controller
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile error (retried with backoff)");
            }
        })
        .await;
    stop.cancel();
    let _ = gauge.await;
    if let Some(handle) = estop {
        let _ = handle.await;
    }
}

/// Runs the operator until `shutdown` completes (or leadership is lost).
pub async fn run(
    client: kube::Client,
    options: OperatorOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    run_with_clock(client, options, Arc::new(SystemClock), shutdown).await
}

/// [`run`] with an injected clock.
pub async fn run_with_clock(
    client: kube::Client,
    options: OperatorOptions,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::new());
    let stop = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let metrics_app = {
        let metrics = metrics.clone();
        axum::Router::new().route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
    };
    let health_app = {
        let ready = ready.clone();
        axum::Router::new().route("/healthz", get(|| async { "ok" })).route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.load(Ordering::SeqCst) {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not connected to the Kubernetes API yet")
                    }
                }
            }),
        )
    };
    let servers = [
        serve_http(options.metrics_addr, metrics_app, stop.clone()).await?,
        serve_http(options.health_addr, health_app, stop.clone()).await?,
    ];
    tracing::info!(metrics = %options.metrics_addr, health = %options.health_addr, identity = %options.identity, "rune operator starting");
    let shutdown_stop = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested");
        shutdown_stop.cancel();
    });

    let ctx = Arc::new(Context::new(client.clone(), clock, metrics, &options.identity));
    let lease = LeaseLock::new(
        client,
        &options.namespace,
        crate::leader::LEASE_NAME,
        &options.identity,
        options.lease_duration,
    );
    let renew_every = (options.lease_duration / 3).max(Duration::from_millis(200));
    let result = if options.leader_elect {
        // Wait to become leader.
        loop {
            match lease.try_acquire_or_renew(k8s_openapi::chrono::Utc::now()).await {
                Ok(true) => {
                    ready.store(true, Ordering::SeqCst);
                    break;
                }
                Ok(false) => ready.store(true, Ordering::SeqCst),
                Err(e) => tracing::warn!(error = %e, "cannot reach the lease; retrying"),
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(renew_every) => {}
            }
        }
        if stop.is_cancelled() {
            Ok(())
        } else {
            tracing::info!(lease = crate::leader::LEASE_NAME, "became leader");
            let controllers = {
                let (ctx, options, stop) = (ctx.clone(), options.clone(), stop.child_token());
                let token = stop.clone();
                (tokio::spawn(async move { run_controllers(ctx, &options, stop).await }), token)
            };
            let mut last_renewal = tokio::time::Instant::now();
            let outcome = loop {
                tokio::select! {
                    _ = stop.cancelled() => break Ok(()),
                    _ = tokio::time::sleep(renew_every) => {}
                }
                match lease.try_acquire_or_renew(k8s_openapi::chrono::Utc::now()).await {
                    Ok(true) => last_renewal = tokio::time::Instant::now(),
                    Ok(false) => break Err(RunError::LostLease(crate::leader::LEASE_NAME.into())),
                    Err(e) => {
                        tracing::warn!(error = %e, "lease renewal failed");
                        if last_renewal.elapsed() >= options.lease_duration {
                            break Err(RunError::LostLease(crate::leader::LEASE_NAME.into()));
                        }
                    }
                }
            };
            controllers.1.cancel();
            let _ = controllers.0.await;
            if outcome.is_ok() {
                if let Err(e) = lease.release().await {
                    tracing::warn!(error = %e, "could not release the lease");
                }
            }
            outcome
        }
    } else {
        ready.store(true, Ordering::SeqCst);
        run_controllers(ctx, &options, stop.child_token()).await;
        Ok(())
    };
    stop.cancel();
    for s in servers {
        let _ = s.await;
    }
    tracing::info!("rune operator stopped");
    result
}
