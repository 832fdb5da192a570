//! The one error type of the load generator. Failures of individual requests are *not*
//! errors: they are recorded in the results (see [`crate::metrics::Outcome`]). Only
//! problems that make the whole run meaningless (bad input, unreachable backend before
//! the run starts, unreadable files) end up here.

use std::path::PathBuf;

/// Why a load run, an import or a comparison could not be done at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A setting is invalid; the message names the field and the fix.
    #[error("{field}: {message}")]
    Invalid {
        /// The flag or request field.
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file's content is not what was expected; the message names the line or key.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line or key.
        message: String,
    },
    /// The backend could not be reached or refused the probe request before the run.
    #[error("backend {url}: {message}")]
    Backend {
        /// The backend URL.
        url: String,
        /// What happened, with a hint.
        message: String,
    },
    /// The run was cancelled before it produced any result.
    #[error("the load run was cancelled")]
    Cancelled,
}

impl LoadError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        LoadError::Invalid { field, message: message.into() }
    }
}
