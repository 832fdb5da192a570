//! The one error type of this crate: everything that can go wrong while turning flags,
//! an answers file or a listen address into a running simulator. Each message names the
//! flag, file or entry at fault and says what a valid value looks like.
//!
//! Request-time problems (unknown model, bad JSON, injected faults) are not errors here:
//! they are HTTP responses in the style of the API that was called.

use std::path::PathBuf;

/// Why a simulator could not be configured or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A command-line flag has a value out of range; `flag` is spelled as on the command
    /// line (`--fail-rate`) so the user can find it.
    #[error("{flag}: {message}")]
    InvalidFlag {
        /// The flag, e.g. `--fail-rate`.
        flag: &'static str,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// A scripted-answer pattern is empty or not a valid regular expression.
    #[error("answer pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as written (with its `re:` prefix, if any).
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The answers file could not be read.
    #[error("--answers {}: cannot read the file: {source}", .path.display())]
    AnswersRead {
        /// The file given to `--answers`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The answers file is not YAML/JSON, or not a list.
    #[error("--answers {}: {message}", .path.display())]
    AnswersParse {
        /// The file given to `--answers`.
        path: PathBuf,
        /// The parser's message, with a hint at the expected shape.
        message: String,
    },
    /// One entry of the answers file is invalid; `entry` counts from 1.
    #[error("--answers {}: entry {entry}: {message}", .path.display())]
    AnswersEntry {
        /// The file given to `--answers`.
        path: PathBuf,
        /// The entry's position in the list, counting from 1.
        entry: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another server using the port? try --port)")]
    Bind {
        /// `host:port` as given.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
