//! `rune sim-llm`: the simulated LLM server, until SIGINT/SIGTERM.

use crate::exit;
use anyhow::Result;

/// Validates the flags (before binding anything), binds, and serves until a signal.
pub async fn run(args: rune_sim::SimArgs) -> Result<u8> {
    let config =
        rune_sim::SimConfig::try_from(args.clone()).map_err(|e| exit::coded(exit::BAD_INPUT, e.to_string()))?;
    let listener = args.bind().await?;
    let addr = listener.local_addr()?;
    eprintln!("rune sim-llm: SIMULATED LLM server on http://{addr} (OpenAI /v1/*, Ollama /api/*); answers are not from a model");
    rune_sim::serve(listener, config, super::serve::shutdown_signal()).await?;
    Ok(exit::SUCCESS)
}
