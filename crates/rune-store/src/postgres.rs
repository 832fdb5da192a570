//! The PostgreSQL engine (placeholder until implemented).

use crate::error::{Result, StoreError};
use crate::url::DatabaseUrl;
use crate::OpenOptions;

/// A [`crate::Store`] on a PostgreSQL server.
pub struct PgStore;

impl PgStore {
    /// Connects without version checks.
    pub async fn open_raw(url: &DatabaseUrl, _options: &OpenOptions) -> Result<Self> {
        Err(StoreError::InvalidUrl { url: url.to_string(), reason: "PostgreSQL support is not built yet".into() })
    }
}
