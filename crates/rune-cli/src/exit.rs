//! Exit codes and the mapping from errors to them.

use rune_store::StoreError;

/// Everything worked.
pub const SUCCESS: u8 = 0;
/// The operation failed.
pub const FAILURE: u8 = 1;
/// The input (flags, URL, file) is wrong; nothing was changed.
pub const BAD_INPUT: u8 = 2;
/// A check ran and did not pass (e.g. `db verify` found missing jobs).
pub const CHECK_FAILED: u8 = 3;
/// Refused: the database is in use, its schema is newer, or confirmation was declined.
pub const REFUSED: u8 = 4;

/// An error that carries its own exit code (e.g. a declined confirmation).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CodedError {
    /// Exit code.
    pub code: u8,
    /// Message.
    pub message: String,
}

/// Fails with `code` and `message`.
pub fn coded(code: u8, message: impl Into<String>) -> anyhow::Error {
    CodedError { code, message: message.into() }.into()
}

/// The exit code for an error chain.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(c) = cause.downcast_ref::<CodedError>() {
            return c.code;
        }
        if let Some(s) = cause.downcast_ref::<StoreError>() {
            return match s {
                StoreError::InvalidUrl { .. }
                | StoreError::Path { .. }
                | StoreError::BadBackup { .. }
                | StoreError::BadArchive { .. }
                | StoreError::InvalidRollback { .. } => BAD_INPUT,
                StoreError::SchemaTooNew { .. } | StoreError::InUse { .. } | StoreError::SchemaTooOld { .. } => REFUSED,
                _ => FAILURE,
            };
        }
    }
    FAILURE
}

/// Writing to a closed pipe (`rune … | head`) is a normal way to stop.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}
