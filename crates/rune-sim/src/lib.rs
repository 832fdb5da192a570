//! A **simulated** OpenAI- and Ollama-compatible LLM server: the engine behind
//! `rune sim-llm`. It runs no model. It answers with scripted or filler text, exactly as
//! many tokens as configured, on an exact schedule (time to first token, then one chunk
//! per inter-token latency), and injects faults (error statuses, stalls, malformed chunks,
//! dropped connections) at configured rates drawn deterministically from a seed. Tests,
//! load-generator calibration and demos use it because its ground truth is known.
//!
//! Every response carries `X-Rune-Simulated: true`; model lists say `rune-sim (simulated)`.
//! Generation responses also carry [`REQUEST_HEADER`] and [`FAULTS_HEADER`]: the request's
//! index and the faults injected into it, as ground truth for the client's own accounting.
//!
//! Token accounting: a token is a whitespace-separated word. Prompt tokens are the words of
//! all messages (or of the prompt), at least 1; completion tokens are exactly
//! `output_tokens`, or the request's `max_tokens`/`num_predict` if smaller, the answer
//! being cut or padded with filler words to that count.
//!
//! # Layout
//!
//! - [`config`]: [`SimConfig`] and its parts ([`Faults`], [`Rate`], [`FailStatus`],
//!   [`ScriptedAnswer`]) — validated values only.
//! - [`args`]: [`SimArgs`], the clap flags, and `TryFrom<SimArgs> for SimConfig`; the
//!   answers-file reader [`load_answers_file`].
//! - [`error`]: [`SimError`], the one error type.
//! - [`router`] and [`serve`]: the HTTP surface (`server`, private).
//! - Private: `openai` and `ollama` (handlers), `generate` (deadlines, streaming, faults),
//!   `wire` (hand-written JSON chunks), `tokens`, `faults` (the seeded draw), `clock`,
//!   `precise` (sub-millisecond deadlines on a dedicated timer thread).
//!
//! Endpoints: `GET /v1/models`, `POST /v1/chat/completions`, `POST /v1/completions`;
//! `GET /api/tags`, `GET /api/ps`, `POST /api/show`, `POST /api/chat`,
//! `POST /api/generate`, `POST /api/pull`; `GET /api/version`, `GET /`.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! let config = rune_sim::SimConfig {
//!     ttft: Duration::from_millis(5),
//!     itl: Duration::from_millis(1),
//!     output_tokens: 8,
//!     ..Default::default()
//! };
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(rune_sim::serve(listener, config, async {
//!     let _ = stopped.await;
//! }));
//!
//! let response = reqwest::Client::new()
//!     .post(format!("http://{addr}/v1/chat/completions"))
//!     .json(&serde_json::json!({"model": "sim-llama", "messages": [{"role": "user", "content": "hi"}]}))
//!     .send()
//!     .await?;
//! assert_eq!(response.headers()["x-rune-simulated"], "true");
//! let body: serde_json::Value = response.json().await?;
//! assert_eq!(body["usage"]["completion_tokens"], 8);
//!
//! let _ = stop.send(());
//! server.await??;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod args;
mod clock;
pub mod config;
pub mod error;
mod faults;
mod generate;
mod ollama;
mod openai;
mod precise;
mod server;
mod tokens;
mod wire;

pub use args::{load_answers_file, SimArgs};
pub use config::{FailStatus, Faults, Rate, ScriptedAnswer, SimConfig};
pub use error::SimError;
pub use server::{router, FAULTS_HEADER, REQUEST_HEADER, SIMULATED_HEADER};

use axum::serve::ListenerExt as _;
use std::future::Future;
use tokio_util::sync::CancellationToken;

/// Serves `config` on `listener` until `shutdown` resolves, then stops accepting, ends open
/// streams (they close with an error rather than finishing a long stall) and waits for
/// connections to close. Sets `TCP_NODELAY` so each chunk leaves as soon as it is written.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = CancellationToken::new();
    let app = server::build_router(config, token.clone());
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "rune-sim listening: a SIMULATED OpenAI/Ollama-compatible LLM server");
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "rune-sim: cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            token.cancel();
        })
        .await
}
