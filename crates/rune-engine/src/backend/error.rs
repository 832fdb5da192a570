//! Backend failures, each phrased so the reader knows what to fix.
//!
//! This module only defines the error type; it decides nothing about retries (that is
//! the transport's job) and performs no I/O.

use std::fmt;
use std::time::Duration;

use super::BackendKind;

/// Which part of a call ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Establishing the connection.
    Connect,
    /// Waiting for the response status and headers.
    Response,
    /// Reading the response body or stream.
    Stream,
    /// Waiting for a model to be listed as loaded.
    WarmUp,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Connect => "connecting to",
            TimeoutPhase::Response => "waiting for the response from",
            TimeoutPhase::Stream => "reading the response stream from",
            TimeoutPhase::WarmUp => "waiting for the model to load on",
        })
    }
}

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The base URL cannot be used.
    #[error("invalid backend URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made (after the bounded retries).
    #[error(
        "cannot reach the {backend} server at {url} ({attempts} attempt(s)): {detail}; check that the server is \
         running and that the URL and port are right"
    )]
    Unreachable {
        /// Backend protocol.
        backend: BackendKind,
        /// Full URL that was tried.
        url: String,
        /// Connection attempts made.
        attempts: u32,
        /// The last connect error.
        detail: String,
    },
    /// The connection broke after the request was sent (never retried).
    #[error("connection to {endpoint} failed after the request was sent: {detail}")]
    Connection {
        /// Endpoint that was called.
        endpoint: String,
        /// What the transport reported.
        detail: String,
    },
    /// The server does not serve this model.
    #[error("model `{model}` is not available on {url}{}; {hint}", available_suffix(.available))]
    UnknownModel {
        /// The model asked for.
        model: String,
        /// Server base URL.
        url: String,
        /// Models the server does offer (may be empty if listing failed).
        available: Vec<String>,
        /// How to make it available.
        hint: String,
    },
    /// The server rejected the credentials.
    #[error("{endpoint} rejected the request with HTTP {status}: {detail}; set {env_var} to a valid API key")]
    Auth {
        /// Endpoint that was called.
        endpoint: String,
        /// 401 or 403.
        status: u16,
        /// Environment variable that should hold the key.
        env_var: String,
        /// The server's message, truncated.
        detail: String,
    },
    /// The server answered with an error status.
    #[error("{endpoint} answered HTTP {status}: {body}")]
    Http {
        /// Endpoint that was called.
        endpoint: String,
        /// HTTP status code.
        status: u16,
        /// Response body, truncated.
        body: String,
    },
    /// The server answered something RUNE cannot use.
    #[error("bad response from {endpoint}: {detail}")]
    BadResponse {
        /// Endpoint that was called.
        endpoint: String,
        /// What was wrong.
        detail: String,
    },
    /// A time bound ran out.
    #[error("timed out after {after:?} {phase} {endpoint}")]
    Timeout {
        /// Endpoint that was called.
        endpoint: String,
        /// Which part of the call ran out of time.
        phase: TimeoutPhase,
        /// The bound that was exceeded.
        after: Duration,
    },
    /// The caller cancelled the call.
    #[error("call to {endpoint} was cancelled")]
    Cancelled {
        /// Endpoint that was being called.
        endpoint: String,
    },
    /// The backend cannot do this.
    #[error("{operation} is not supported by {backend} backends: {hint}")]
    Unsupported {
        /// Backend protocol.
        backend: BackendKind,
        /// The operation asked for.
        operation: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// How many available models an error message lists before eliding the rest.
const MAX_LISTED_MODELS: usize = 20;

fn available_suffix(available: &[String]) -> String {
    if available.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = available.iter().take(MAX_LISTED_MODELS).map(String::as_str).collect();
    let more = available.len().saturating_sub(MAX_LISTED_MODELS);
    if more > 0 {
        format!(" (available: {}, and {more} more)", shown.join(", "))
    } else {
        format!(" (available: {})", shown.join(", "))
    }
}

/// Longest response-body excerpt put into an error message.
pub(crate) const MAX_BODY_EXCERPT: usize = 500;

/// Truncates `s` to at most [`MAX_BODY_EXCERPT`] bytes on a character boundary.
pub(crate) fn excerpt(s: &str) -> String {
    let s = s.trim();
    if s.len() <= MAX_BODY_EXCERPT {
        return s.to_owned();
    }
    let mut end = MAX_BODY_EXCERPT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unknown-model message names the model, the server, the alternatives and the fix.
    #[test]
    fn unknown_model_message() {
        let e = BackendError::UnknownModel {
            model: "llama9".into(),
            url: "http://o:11434".into(),
            available: vec!["a".into(), "b".into()],
            hint: "run `ollama pull llama9`".into(),
        };
        assert_eq!(
            e.to_string(),
            "model `llama9` is not available on http://o:11434 (available: a, b); run `ollama pull llama9`"
        );
    }

    /// Long bodies are cut on a character boundary and say how long they were.
    #[test]
    fn excerpt_truncates() {
        let long = "é".repeat(400);
        let e = excerpt(&long);
        assert!(e.ends_with("(800 bytes)"));
        assert!(e.len() < 520);
        assert_eq!(excerpt(" short "), "short");
    }
}
