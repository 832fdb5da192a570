//! `rune serve`: open (and migrate) the database, then run the API server until SIGTERM
//! or SIGINT.

use super::Environment;
use crate::cli::ServeArgs;
use crate::exit;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::Arc;

/// Runs the server; returns when it has drained after a signal.
pub async fn run(env: &Environment, args: ServeArgs) -> Result<u8> {
    let addr = SocketAddr::new(args.host, args.port);
    let config = rune_api::ServerConfig::from_env(addr, args.allow_unauthenticated, |k| std::env::var(k).ok())
        .map_err(|e| exit::coded(exit::BAD_INPUT, e.to_string()))?;
    let url = rune_store::DatabaseUrl::parse(
        &env.database_url,
        &std::env::current_dir().unwrap_or_else(|_| env.home.clone()),
    )?;
    let store = rune_store::open_parsed(&url, &env.open_options(&url)).await?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    eprintln!("rune serve: listening on http://{local} (database {url})");
    let runner = crate::runner::EngineRunner::from_env()?;
    // The embedded UI calls this same server over loopback with each user's token.
    let ui = if args.no_ui {
        None
    } else {
        let ui_config = rune_ui::UiConfig {
            api_base_url: format!("http://{}", loopback(local)),
            secure_cookies: args.secure_cookies,
            ..Default::default()
        };
        Some(rune_ui::router(ui_config).map_err(|e| anyhow::anyhow!("cannot build the web UI: {e}"))?)
    };
    rune_api::serve_with(listener, config, store, Arc::new(runner), ui, shutdown_signal()).await?;
    Ok(exit::SUCCESS)
}

/// The address to reach a server listening on `addr` from this host: a wildcard
/// address (`0.0.0.0`, `::`) is reached on loopback.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// Completes on SIGINT or SIGTERM (what Kubernetes sends before killing a pod).
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
