//! `rune ui`: the web UI as its own server, talking to the RUNE API at `--api-base-url`
//! with each user's own token (the deployment of the `rune-ui` chart). `rune serve`
//! embeds the same UI at `/`.

use crate::cli::{GlobalArgs, UiArgs};
use crate::exit;
use anyhow::{Context, Result};
use std::net::SocketAddr;

/// Serves the UI until SIGINT or SIGTERM.
pub async fn run(global: &GlobalArgs, args: UiArgs) -> Result<u8> {
    let config = rune_ui::UiConfig {
        api_base_url: global.api_base_url.clone(),
        secure_cookies: args.secure_cookies,
        ..Default::default()
    };
    // Fail fast on a malformed URL; an API that is down is shown on the pages instead.
    rune_ui::UiState::new(config.clone()).map_err(|e| exit::coded(exit::BAD_INPUT, e.to_string()))?;
    let addr = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    eprintln!("rune ui: listening on http://{local} (API {})", config.api_base_url);
    rune_ui::serve(listener, config, super::serve::shutdown_signal()).await?;
    Ok(exit::SUCCESS)
}
