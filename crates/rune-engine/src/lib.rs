//! RUNE's engine: the model backends RUNE measures and the agents it benchmarks.
//!
//! A benchmark asks an [`agent::Agent`] a question about an incident; the agent reaches
//! a model through a [`backend::Backend`] (directly, or through a CLI or driver it runs),
//! and the engine records what came back: the answer, token counts and client-side timing
//! taken with monotonic clocks. Scoring, storage and scheduling live elsewhere; this crate
//! only talks to model servers and agent processes, and keeps them on a leash: every call
//! is bounded in time, cancellable, and every process it starts dies with the call.
//!
//! # Layout
//!
//! - [`backend`]: the [`backend::Backend`] trait, [`backend::OllamaBackend`] (native
//!   `/api/*`, NDJSON streaming) and [`backend::OpenAiBackend`] (`/v1/*`, SSE streaming),
//!   built by [`backend::backend_for`]; [`backend::BackendError`] says what to fix.
//! - [`agent`]: the [`agent::Agent`] trait, the registry ([`agent::agent_by_name`],
//!   [`agent::AgentConfig::from_env`]) and the agents `llm`, `holmes`, `k8sgpt`, `stdio`
//!   and `http`; [`agent::protocol`] is the RUNE driver protocol v1 as pure functions.
//! - [`provider`]: where the model server comes from: the [`provider::Provider`] trait,
//!   [`provider::ExistingServer`] and [`provider::VastAiProvider`] (rent a GPU, start
//!   Ollama, pull the model; destroy and verify afterwards), returning a
//!   [`provider::Lease`] with the backend URL and the hourly price.
//! - [`timing`]: [`timing::CallTiming`], the one definition of TTFT and inter-token gaps.
//! - [`workflow`]: what each job kind does (benchmark, agentic-agent, llm-instance), shared
//!   by the CLI's local mode and the API's workers.
//!
//! # Example
//!
//! ```
//! use rune_engine::agent::{agent_by_name, protocol, AgentConfig};
//! use rune_engine::backend::{backend_for, BackendKind, BackendOptions};
//!
//! // Backends validate their URL up front and name the problem.
//! let ollama = backend_for(BackendKind::Ollama, "http://localhost:11434/", BackendOptions::default()).unwrap();
//! assert_eq!(ollama.base_url(), "http://localhost:11434");
//! let err = backend_for(BackendKind::OpenAi, "localhost:8000", BackendOptions::default()).unwrap_err();
//! assert!(err.to_string().contains("http://host:port"));
//!
//! // Agents come from the registry, configured from flags/env by the caller.
//! let config = AgentConfig::from_env(|_| None).unwrap();
//! assert_eq!(agent_by_name("llm", &config).unwrap().name(), "llm");
//! assert!(agent_by_name("stdio", &config).is_err()); // needs RUNE_STDIO_DRIVER_CMD
//!
//! // The driver protocol parser is pure and strict.
//! let ok = protocol::parse_response_line(r#"{"status":"ok","result":{"answer":"OOMKilled"},"id":"1"}"#).unwrap();
//! assert_eq!(ok.id, "1");
//! assert!(protocol::parse_response_line("not json").is_err());
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod agent;
pub mod backend;
pub mod provider;
pub mod timing;
pub mod workflow;
