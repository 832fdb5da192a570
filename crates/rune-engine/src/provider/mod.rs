//! Resource providers: where the model server a benchmark talks to comes from, and how it
//! is given back.
//!
//! A [`Provider`] turns a [`ProvisionSpec`] into a [`Lease`] (a backend URL plus what is
//! needed to release it and to price it) and later tears the lease down. Two exist:
//! [`ExistingServer`] (the user's own server; nothing to rent or release) and
//! [`VastAiProvider`] (rents a GPU on Vast.ai, starts Ollama there, pulls the model, and
//! destroys the instance afterwards, verifying that it is gone).
//!
//! Money rules every design choice here: an instance is never rented above `max_dph`;
//! a provisioning that fails or is cancelled after renting destroys what it rented before
//! returning ([`ProviderError::AfterRent`] says what became of it); teardown is idempotent
//! and not cancellable; and any instance that may still be billing is named in the error
//! with the command to destroy it by hand. The spend gate (asking before renting) is the
//! caller's, and so is pricing: [`Lease::hourly_usd`] × the measured hours.
//!
//! This module must not know about jobs, storage or agents.

mod error;
mod existing;
mod models;
mod vastai;
mod vastai_api;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rune_core::contracts::VastAiProvisioning;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use error::{Cleanup, OfferSummary, ProviderError};
pub use existing::ExistingServer;
pub use models::{model_sizing, ModelSizing, VASTAI_MODELS};
pub use vastai::{
    ApiKey, VastAiConfig, VastAiProvider, DEFAULT_VASTAI_API_URL, OLLAMA_PORT, VAST_API_KEY_ENV, VAST_API_URL_ENV,
};

use crate::backend::ollama_model_name;

/// Which provider made a lease; teardown refuses leases of another provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProviderKind {
    /// A server the user runs ([`ExistingServer`]).
    #[serde(rename = "existing")]
    Existing,
    /// A rented Vast.ai instance ([`VastAiProvider`]).
    #[serde(rename = "vastai")]
    VastAi,
}

impl ProviderKind {
    /// The spelling used in reports and job records.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Existing => "existing",
            ProviderKind::VastAi => "vastai",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to provision: the model to serve, and for Vast.ai the template, price range,
/// reliability floor, disk and whether to destroy the instance at teardown.
///
/// Build it with [`ProvisionSpec::new`], or from a request with
/// `ProvisionSpec { model, ..ProvisionSpec::from(&vastai) }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvisionSpec {
    /// Ollama model name with its tag (must be in [`VASTAI_MODELS`] for Vast.ai).
    pub model: String,
    /// Vast.ai template (hash id) the instance starts from.
    pub template_hash: String,
    /// Lowest acceptable price, $/h (filters out suspiciously cheap hosts).
    pub min_dph: f64,
    /// Highest acceptable price, $/h: never exceeded.
    pub max_dph: f64,
    /// Minimum host reliability, 0..1.
    pub reliability: f64,
    /// Disk to rent, GB; `None`: the model's size from [`VASTAI_MODELS`].
    pub disk_gb: Option<u32>,
    /// Destroy the instance at teardown (otherwise it keeps running, and billing, for
    /// reuse by the next run with the same label).
    pub stop_instance: bool,
}

/// Smallest disk accepted, GB (Vast.ai's own default is 8; models need more).
const MIN_DISK_GB: u32 = 10;
/// Largest disk accepted, GB (a typo guard: 10 TB is not a benchmark).
const MAX_DISK_GB: u32 = 10_000;

impl ProvisionSpec {
    /// The spec for serving `model` with the request's Vast.ai settings.
    pub fn new(model: impl Into<String>, vastai: &VastAiProvisioning) -> Self {
        ProvisionSpec { model: model.into(), ..ProvisionSpec::from(vastai) }
    }

    /// The label RUNE puts on the instance and looks for when reusing one:
    /// `rune-<model>-<first 8 characters of the template hash>`, so only an instance
    /// started from the same template for the same model is reused.
    pub fn instance_label(&self) -> String {
        let hash: String = self.template_hash.trim().chars().take(8).collect();
        format!("rune-{}-{hash}", ollama_model_name(self.model.trim()))
    }

    /// Checks the fields a request could get wrong, naming the field and the fix.
    pub fn validate(&self) -> Result<(), ProviderError> {
        let bad = |field: &str, reason: String| Err(ProviderError::InvalidSpec { field: field.to_owned(), reason });
        if self.model.trim().is_empty() {
            return bad("model", "is empty; name the model to serve, e.g. llama3.1:8b".into());
        }
        let hash = self.template_hash.trim();
        if hash.is_empty() || !hash.chars().all(|c| c.is_ascii_alphanumeric()) {
            return bad("template_hash", format!("`{hash}` is not a Vast.ai template hash (letters and digits)"));
        }
        for (field, v) in [("min_dph", self.min_dph), ("max_dph", self.max_dph)] {
            if !v.is_finite() || v < 0.0 {
                return bad(field, format!("{v} is not a price in dollars per hour >= 0"));
            }
        }
        if self.max_dph <= 0.0 {
            return bad("max_dph", "is 0; nothing can be rented for free: set the most you will pay per hour".into());
        }
        if self.min_dph > self.max_dph {
            return bad(
                "min_dph",
                format!("{} is above max_dph {}; swap them or widen the range", self.min_dph, self.max_dph),
            );
        }
        if !self.reliability.is_finite() || !(0.0..=1.0).contains(&self.reliability) {
            return bad("reliability", format!("{} is not between 0 and 1", self.reliability));
        }
        if let Some(d) = self.disk_gb {
            if !(MIN_DISK_GB..=MAX_DISK_GB).contains(&d) {
                return bad("disk_gb", format!("{d} GB is outside {MIN_DISK_GB}..={MAX_DISK_GB} GB"));
            }
        }
        Ok(())
    }
}

/// The request's Vast.ai settings with an empty `model` (the request carries the model
/// separately): fill it with struct-update syntax. [`ProvisionSpec::validate`] rejects
/// an empty model, so forgetting it fails loudly.
impl From<&VastAiProvisioning> for ProvisionSpec {
    fn from(p: &VastAiProvisioning) -> Self {
        ProvisionSpec {
            model: String::new(),
            template_hash: p.template_hash.clone(),
            min_dph: p.min_dph,
            max_dph: p.max_dph,
            reliability: p.reliability,
            disk_gb: None,
            stop_instance: p.stop_instance,
        }
    }
}

/// Progress callback: one human-readable line per step (offer chosen, state changes,
/// pull phases). Called from the provisioning task; must not block.
pub type ProgressFn = Arc<dyn Fn(&str) + Send + Sync>;

/// What a provisioning call needs besides the spec.
#[derive(Clone)]
pub struct ProvisionContext {
    /// Owned by the caller (e.g. the job). Cancelling it stops provisioning at the next
    /// request or pause; anything already rented is then destroyed (not cancellable)
    /// before the call returns [`ProviderError::Cancelled`] inside
    /// [`ProviderError::AfterRent`].
    pub cancel: CancellationToken,
    /// Where progress lines go; shared with the caller, which decides how to show them.
    pub progress: ProgressFn,
    /// Bound on the whole provisioning: waiting for the instance and Ollama and the model
    /// pull stop at it (each Vast.ai request is also bounded by the provider's own
    /// request timeout).
    pub timeout: Duration,
}

impl ProvisionContext {
    /// A context that drops progress lines.
    pub fn new(cancel: CancellationToken, timeout: Duration) -> Self {
        ProvisionContext { cancel, progress: Arc::new(|_| {}), timeout }
    }

    /// Sends progress lines to `sink`.
    pub fn with_progress(mut self, sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.progress = Arc::new(sink);
        self
    }

    pub(crate) fn report(&self, line: &str) {
        (self.progress)(line);
    }
}

impl fmt::Debug for ProvisionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvisionContext").field("cancel", &self.cancel).field("timeout", &self.timeout).finish()
    }
}

/// A provisioned model server: where to reach it, and what teardown and pricing need.
///
/// Serializable so a worker can persist it and tear it down after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// Which provider made it (and must tear it down).
    pub provider: ProviderKind,
    /// Base URL of the Ollama (or OpenAI-compatible) server.
    pub backend_url: String,
    /// Vast.ai instance (contract) id; `None` for an existing server.
    pub contract_id: Option<String>,
    /// The label on the Vast.ai instance, which later runs look for to reuse it.
    pub instance_label: Option<String>,
    /// What the instance costs, $/h (the rented offer's `dph_total`, disk included);
    /// `None` for an existing server. GPU cost = this × the hours the run held it.
    pub hourly_usd: Option<f64>,
    /// Whether the server existed before this provisioning (no rental started now).
    pub reused: bool,
    /// Whether teardown destroys the instance.
    pub stop_instance: bool,
    /// The model made available on the server.
    pub model: String,
    /// GPU model of the instance, when known (for reports).
    pub gpu_name: Option<String>,
}

/// What teardown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeardownOutcome {
    /// Nothing was RUNE's to release (existing server, nothing rented).
    NothingToDo,
    /// The instance was left running because the spec said not to stop it.
    Kept,
    /// The instance was destroyed and verified gone.
    Destroyed,
    /// The instance was already gone (a repeated teardown); verified absent.
    AlreadyGone,
}

/// The result of a teardown, for the job record and the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeardownReport {
    /// The provider that tore down.
    pub provider: ProviderKind,
    /// The Vast.ai instance concerned, if any.
    pub contract_id: Option<String>,
    /// What happened to it.
    pub outcome: TeardownOutcome,
    /// Volumes that were attached to the instance and are now deleted.
    pub deleted_volume_ids: Vec<String>,
    /// Whether the instance's absence was confirmed by listing the account's instances.
    pub verified: bool,
    /// How many listings verification took (0 when nothing was verified).
    pub verification_checks: u32,
    /// One line saying what was done, for humans.
    pub message: String,
}

impl TeardownReport {
    pub(crate) fn nothing(provider: ProviderKind, why: &str) -> Self {
        TeardownReport {
            provider,
            contract_id: None,
            outcome: TeardownOutcome::NothingToDo,
            deleted_volume_ids: Vec::new(),
            verified: false,
            verification_checks: 0,
            message: format!("nothing to tear down: {why}"),
        }
    }
}

/// Provides a model server for a run and releases it afterwards. Object-safe, so the
/// workflow can hold a `Box<dyn Provider>` chosen from the request.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    /// Which provider this is; recorded in every lease it makes.
    fn kind(&self) -> ProviderKind;

    /// Makes a server for `spec` available. On failure nothing this call rented is left
    /// running unless the error says so ([`ProviderError::stranded_contract`]).
    async fn provision(&self, spec: &ProvisionSpec, ctx: &ProvisionContext) -> Result<Lease, ProviderError>;

    /// Releases what `lease` holds, as the lease asks (`stop_instance`). Idempotent, not
    /// cancellable, bounded; safe to call again after a failure.
    async fn teardown(&self, lease: &Lease) -> Result<TeardownReport, ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ProvisionSpec {
        ProvisionSpec {
            model: "llama3.1:8b".into(),
            template_hash: "c166c11f035d3a97871a23bd32ca6aba".into(),
            min_dph: 0.1,
            max_dph: 0.5,
            reliability: 0.99,
            disk_gb: None,
            stop_instance: true,
        }
    }

    /// A request's Vast.ai block converts field for field; the model comes separately
    /// and an omitted model fails validation by name.
    #[test]
    fn from_request() {
        let p = VastAiProvisioning {
            template_hash: "abc123".into(),
            min_dph: 0.2,
            max_dph: 0.4,
            reliability: 0.95,
            stop_instance: false,
        };
        let s = ProvisionSpec::new("qwen2.5:7b", &p);
        assert_eq!((s.model.as_str(), s.template_hash.as_str()), ("qwen2.5:7b", "abc123"));
        assert_eq!((s.min_dph, s.max_dph, s.reliability, s.stop_instance), (0.2, 0.4, 0.95, false));
        assert_eq!(s.disk_gb, None);
        let e = ProvisionSpec::from(&p).validate().unwrap_err().to_string();
        assert!(e.contains("`model`") && e.contains("empty"), "{e}");
    }

    /// Each invalid field is rejected with its name.
    #[test]
    fn validation_names_the_field() {
        assert!(spec().validate().is_ok());
        let cases: Vec<(ProvisionSpec, &str)> = vec![
            (ProvisionSpec { min_dph: 0.6, ..spec() }, "min_dph"),
            (ProvisionSpec { max_dph: 0.0, min_dph: 0.0, ..spec() }, "max_dph"),
            (ProvisionSpec { max_dph: f64::NAN, ..spec() }, "max_dph"),
            (ProvisionSpec { reliability: 1.5, ..spec() }, "reliability"),
            (ProvisionSpec { template_hash: "a/b".into(), ..spec() }, "template_hash"),
            (ProvisionSpec { disk_gb: Some(2), ..spec() }, "disk_gb"),
        ];
        for (s, field) in cases {
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(&format!("`{field}`")), "{field}: {e}");
        }
    }

    /// The label ties model and template together, without routing prefixes.
    #[test]
    fn label() {
        assert_eq!(spec().instance_label(), "rune-llama3.1:8b-c166c11f");
        assert_eq!(
            ProvisionSpec { model: "ollama/llama3.1:8b".into(), ..spec() }.instance_label(),
            spec().instance_label()
        );
    }

    /// Provider kinds serialise to the names job records use.
    #[test]
    fn kind_names() {
        assert_eq!(serde_json::to_string(&ProviderKind::VastAi).unwrap(), "\"vastai\"");
        assert_eq!(ProviderKind::Existing.to_string(), "existing");
    }
}
