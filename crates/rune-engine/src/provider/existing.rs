//! The provider for a model server that already runs: nothing to rent, nothing to give
//! back.
//!
//! Provisioning only validates and normalises the URL (no request is made; warm-up and
//! model checks are the workflow's job), and teardown does nothing, because RUNE does
//! not own the server.

use async_trait::async_trait;

use super::{Lease, Provider, ProviderError, ProviderKind, ProvisionContext, ProvisionSpec, TeardownReport};
use crate::backend::{normalize_base_url, BackendError, BackendKind};

/// A server at a URL the user gave (`backend_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingServer {
    url: String,
    kind: BackendKind,
}

impl ExistingServer {
    /// The server at `url`, speaking `kind` (which decides URL normalisation, e.g. a
    /// trailing `/v1` is dropped for OpenAI-compatible servers). Validated on provision.
    pub fn new(url: impl Into<String>, kind: BackendKind) -> Self {
        ExistingServer { url: url.into(), kind }
    }
}

#[async_trait]
impl Provider for ExistingServer {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Existing
    }

    async fn provision(&self, spec: &ProvisionSpec, ctx: &ProvisionContext) -> Result<Lease, ProviderError> {
        if ctx.cancel.is_cancelled() {
            return Err(ProviderError::Cancelled { phase: "checking the backend URL" });
        }
        let backend_url = normalize_base_url(self.kind, &self.url).map_err(|e| match e {
            BackendError::InvalidUrl { url, reason } => ProviderError::InvalidBackendUrl { url, reason },
            other => ProviderError::InvalidBackendUrl { url: self.url.clone(), reason: other.to_string() },
        })?;
        ctx.report(&format!("using the existing {} server at {backend_url}", self.kind));
        Ok(Lease {
            provider: ProviderKind::Existing,
            backend_url,
            contract_id: None,
            instance_label: None,
            hourly_usd: None,
            reused: true,
            stop_instance: false,
            model: spec.model.clone(),
            gpu_name: None,
        })
    }

    async fn teardown(&self, lease: &Lease) -> Result<TeardownReport, ProviderError> {
        if lease.provider != ProviderKind::Existing {
            return Err(ProviderError::LeaseMismatch { lease: lease.provider, provider: ProviderKind::Existing });
        }
        Ok(TeardownReport::nothing(ProviderKind::Existing, "the existing server is not RUNE's to stop"))
    }
}
