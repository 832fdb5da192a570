//! rune-engine over real loopback HTTP and real subprocesses: backends against a fake
//! model server (Ollama NDJSON and OpenAI SSE), the agents against fake drivers, stand-in
//! CLIs and a fake sidecar.

mod backends;
mod cli_agents;
mod llm_agent;
mod provider;
mod sidecar;
mod stdio_driver;
mod support;
