//! RUNE's web UI: server-rendered HTML over the typed API client.
//!
//! The UI holds no data of its own. Every page is rendered on the server from calls to
//! the RUNE API made with [`rune_client::RuneClient`] and decoded into the shared
//! contract types of [`rune_core::api`], so the UI and the API cannot drift. It runs
//! embedded in `rune serve` (mounted at `/`, calling its own API over loopback) or on
//! its own with `rune ui --api-base-url URL`; both are the same code path.
//!
//! # Layout
//!
//! - [`session`]: sessions (the API token never leaves this process), cookies, CSRF.
//! - [`render`]: the embedded templates (minijinja, autoescaped) and their filters.
//! - [`view`]: pure functions turning API answers into what pages show (summaries,
//!   per-case rows, comparisons and verdicts, load curves, CSV).
//! - [`guard`]: the middleware every page passes (session, login redirect, CSRF,
//!   security headers).
//! - [`pages`]: read-only pages; [`actions`]: forms that change something;
//!   [`launch`]: the New run form with its cost estimate and spend gate.
//! - [`assets`]: the vendored htmx and uPlot, the stylesheet and the page script.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = rune_ui::UiConfig { api_base_url: "http://127.0.0.1:8080".into(), ..Default::default() };
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
//! rune_ui::serve(listener, config, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod actions;
pub mod assets;
pub mod guard;
pub mod launch;
pub mod pages;
pub mod render;
pub mod session;
pub mod view;

use axum::routing::{get, post};
use axum::Router;
use rune_client::{ClientError, RuneClient};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the UI reaches the API and serves browsers.
#[derive(Debug, Clone)]
pub struct UiConfig {
    /// Base URL of the RUNE API (loopback when embedded in `rune serve`).
    pub api_base_url: String,
    /// Mark the session cookie `Secure` (the UI is reached over HTTPS, e.g. behind an
    /// ingress that terminates TLS).
    pub secure_cookies: bool,
    /// Timeout of each API call made while rendering a page.
    pub api_timeout: Duration,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            api_base_url: "http://127.0.0.1:8080".into(),
            secure_cookies: false,
            api_timeout: Duration::from_secs(15),
        }
    }
}

/// Why the UI could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UiError {
    /// The API base URL is unusable.
    #[error("--api-base-url: {0}")]
    Client(#[from] ClientError),
    /// An embedded template does not compile (a bug caught by the unit tests).
    #[error("UI template error: {0}")]
    Template(#[from] minijinja::Error),
    /// Serving HTTP failed.
    #[error("serving the UI failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared state of every handler (cheap to clone).
#[derive(Clone)]
pub struct UiState {
    inner: Arc<Inner>,
}

struct Inner {
    config: UiConfig,
    sessions: session::Sessions,
    templates: minijinja::Environment<'static>,
    /// A client without credentials, for the probe and the open endpoints.
    anonymous: RuneClient,
    /// Whether the API wants a token; learnt from the first answer, then cached.
    auth_required: Mutex<Option<bool>>,
}

impl UiState {
    /// State for `config`; fails on a bad base URL or a template that does not compile.
    pub fn new(config: UiConfig) -> Result<Self, UiError> {
        let anonymous = session::client_for(&config.api_base_url, "default", None, config.api_timeout)?;
        let templates = render::environment()?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                sessions: session::Sessions::default(),
                templates,
                anonymous,
                auth_required: Mutex::new(None),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &UiConfig {
        &self.inner.config
    }

    /// Live sessions.
    pub fn sessions(&self) -> &session::Sessions {
        &self.inner.sessions
    }

    /// The compiled templates.
    pub fn templates(&self) -> &minijinja::Environment<'static> {
        &self.inner.templates
    }

    /// A client without credentials (probes, `/healthz`, `/readyz`, `/metrics`).
    pub fn anonymous(&self) -> &RuneClient {
        &self.inner.anonymous
    }

    /// Whether the API requires a token: an unauthenticated `GET /v1/estop` answering 401
    /// means yes. Cached once known; an unreachable API is an error (not cached).
    pub async fn auth_required(&self) -> Result<bool, ClientError> {
        if let Some(known) = *self.inner.auth_required.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(known);
        }
        let required = match self.inner.anonymous.estop_status().await {
            Ok(_) => false,
            Err(e) if e.status() == Some(401) => true,
            Err(e) => return Err(e),
        };
        *self.inner.auth_required.lock().unwrap_or_else(|p| p.into_inner()) = Some(required);
        Ok(required)
    }

    /// A client acting as `tenant` with `token`.
    pub fn client(&self, tenant: &str, token: Option<String>) -> Result<RuneClient, ClientError> {
        session::client_for(&self.inner.config.api_base_url, tenant, token, self.inner.config.api_timeout)
    }
}

/// The UI's routes, to merge into another router (what `rune serve` does). It defines
/// no fallback and no route under `/v1`, `/healthz`, `/readyz`, `/metrics` or
/// `/openapi.json`, so it merges with the API router without overlap.
pub fn router(config: UiConfig) -> Result<Router, UiError> {
    let state = UiState::new(config)?;
    Ok(routes(state))
}

/// The routes over an existing state (tests use it to inspect sessions).
pub fn routes(state: UiState) -> Router {
    let pages = Router::new()
        .route("/", get(pages::home))
        .route("/login", get(actions::login_form).post(actions::login))
        .route("/logout", post(actions::logout))
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(pages::run))
        .route("/runs/{id}/live", get(pages::live))
        .route("/runs/{id}/export.json", get(pages::export_json))
        .route("/runs/{id}/export.csv", get(pages::export_csv))
        .route("/runs/{id}/artifacts/{artifact_id}", get(pages::artifact))
        .route("/runs/{id}/cancel", post(actions::cancel))
        .route("/runs/{id}/rerun", post(actions::rerun))
        .route("/compare", get(pages::compare))
        .route("/new", get(launch::form).post(launch::submit))
        .route("/new/models", get(launch::models))
        .route("/schedules", get(pages::schedules).post(actions::create_schedule))
        .route("/schedules/{id}/suspend", post(actions::suspend_schedule))
        .route("/schedules/{id}/resume", post(actions::resume_schedule))
        .route("/schedules/{id}/delete", post(actions::delete_schedule))
        .route("/estop", get(pages::estop).post(actions::estop_trigger))
        .route("/estop/release", post(actions::estop_release))
        .route("/load", get(pages::load_list))
        .route("/load/{id}", get(pages::load))
        .route("/system", get(pages::system))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard))
        .with_state(state);
    Router::new().route("/static/{file}", get(assets::serve)).merge(pages)
}

/// Serves the UI alone on `listener` (`rune ui`) until `shutdown` completes. Adds
/// `GET /healthz` for the pod's probes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: UiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), UiError> {
    let app = router(config)?.route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }));
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
