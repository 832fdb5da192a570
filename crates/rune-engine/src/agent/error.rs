//! Agent failures, each phrased so the reader knows what to install, set or fix.
//!
//! Only the error type lives here; no I/O.

use std::time::Duration;

use super::protocol::ProtocolError;
use crate::backend::BackendError;

/// Why an agent could not be built or could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// No agent has this name.
    #[error("unknown agent `{name}`; known agents: {known}")]
    UnknownAgent {
        /// The name asked for.
        name: String,
        /// Comma-separated list of known names.
        known: String,
    },
    /// The agent needs a setting that is missing.
    #[error("agent `{agent}` needs {what}: set {var}")]
    NotConfigured {
        /// Agent name.
        agent: String,
        /// What is missing, in words.
        what: String,
        /// The environment variable (or flag) that provides it.
        var: String,
    },
    /// A configuration value cannot be used.
    #[error("{var}=`{value}` is invalid: {reason}")]
    Config {
        /// Variable name.
        var: String,
        /// The value as given.
        value: String,
        /// Why it is rejected and what is expected.
        reason: String,
    },
    /// The question lacks something this agent needs.
    #[error("agent `{agent}` needs {field}: {hint}")]
    MissingInput {
        /// Agent name.
        agent: String,
        /// The missing field.
        field: String,
        /// How to provide it.
        hint: String,
    },
    /// The agent's program is not installed.
    #[error("{program} not found on PATH: {hint}")]
    BinaryNotFound {
        /// Program name or path.
        program: String,
        /// What to install or set.
        hint: String,
    },
    /// The program exists but could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// Program path.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Local I/O around the agent failed (temporary files, pipes).
    #[error("agent `{agent}`: {context}: {source}")]
    Io {
        /// Agent name.
        agent: String,
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The agent did not answer in time; its processes were killed.
    #[error("agent `{agent}` did not answer within {after:?}")]
    Timeout {
        /// Agent name.
        agent: String,
        /// The bound that was exceeded.
        after: Duration,
    },
    /// The caller cancelled the question; the agent's processes were killed.
    #[error("agent `{agent}` was cancelled")]
    Cancelled {
        /// Agent name.
        agent: String,
    },
    /// The model backend failed.
    #[error("agent `{agent}`: {source}")]
    Backend {
        /// Agent name.
        agent: String,
        /// The backend's error.
        source: Box<BackendError>,
    },
    /// A driver broke the protocol; it was stopped and will be restarted on the next call.
    #[error("agent `{agent}`: the driver broke protocol v1: {source}")]
    Protocol {
        /// Agent name.
        agent: String,
        /// What was wrong.
        source: ProtocolError,
    },
    /// The agent's program exited unsuccessfully or before answering.
    #[error("agent `{agent}`: {program} {status}{}", stderr_suffix(.stderr_tail))]
    ProcessFailed {
        /// Agent name.
        agent: String,
        /// Program that ran.
        program: String,
        /// How it ended (e.g. "exited with status 2", "exited before answering").
        status: String,
        /// Last lines of its stderr.
        stderr_tail: String,
    },
    /// The driver or sidecar reported that the question failed.
    #[error("agent `{agent}` reported an error: {message}")]
    Driver {
        /// Agent name.
        agent: String,
        /// The reported message.
        message: String,
    },
    /// The HTTP sidecar could not be used.
    #[error("agent `{agent}`: sidecar {url}: {detail}")]
    Sidecar {
        /// Agent name.
        agent: String,
        /// URL that was called.
        url: String,
        /// What went wrong and how to fix it.
        detail: String,
    },
    /// The agent ran but produced nothing usable.
    #[error("agent `{agent}` produced no answer: {hint}")]
    EmptyAnswer {
        /// Agent name.
        agent: String,
        /// Where to look.
        hint: String,
    },
}

fn stderr_suffix(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("; last stderr lines:\n{tail}")
    }
}

impl AgentError {
    /// Wraps a backend error, keeping cancellation a cancellation.
    pub(crate) fn backend(agent: &str, e: BackendError) -> Self {
        match e {
            BackendError::Cancelled { .. } => AgentError::Cancelled { agent: agent.to_owned() },
            other => AgentError::Backend { agent: agent.to_owned(), source: Box::new(other) },
        }
    }
}
