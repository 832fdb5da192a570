//! Provisioning failures, each phrased so the reader knows what to fix, and, when money
//! may still be spent, what to run by hand.
//!
//! Only the error type lives here; no I/O. The API key never appears in a message.

use std::fmt;
use std::time::Duration;

use super::ProviderKind;
use crate::backend::BackendError;

/// What became of a rented instance when provisioning failed after renting it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cleanup {
    /// Destroyed, and verified gone from the account: nothing is billing any more.
    Destroyed,
    /// Left running on purpose: it was reused and the spec does not ask to stop it.
    Kept,
    /// Destroying or verifying failed; the text says why and what to run by hand.
    Failed(String),
}

impl fmt::Display for Cleanup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cleanup::Destroyed => f.write_str("was destroyed (verified gone)"),
            Cleanup::Kept => f.write_str("was left running because it was reused and stop_instance is false"),
            Cleanup::Failed(why) => write!(f, "could NOT be cleaned up: {why}"),
        }
    }
}

/// The cheapest offer seen when none fitted the price range (for the error message).
#[derive(Debug, Clone, PartialEq)]
pub struct OfferSummary {
    /// Vast.ai offer (ask) id.
    pub id: u64,
    /// Total price in dollars per hour, disk included.
    pub dph_total: f64,
    /// GPU model as Vast.ai names it.
    pub gpu_name: String,
}

/// Why provisioning or teardown failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// No Vast.ai API key is configured.
    #[error(
        "{env_var} is not set; create an API key at https://cloud.vast.ai/manage-keys/ and export \
         {env_var}=<key>, or run against an existing server with backend_url"
    )]
    MissingApiKey {
        /// The environment variable that should hold the key.
        env_var: String,
    },
    /// A provisioning or provider setting cannot be used.
    #[error("invalid provisioning setting `{field}`: {reason}")]
    InvalidSpec {
        /// The setting (request field or environment variable).
        field: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// The model has no entry in the sizing table, so the GPU RAM to rent is unknown.
    #[error("model `{model}` has no Vast.ai sizing (GPU RAM and disk); choose one of: {}", .known.join(", "))]
    UnknownModel {
        /// The model asked for.
        model: String,
        /// Models the table knows.
        known: Vec<String>,
    },
    /// The existing server's URL cannot be used.
    #[error("invalid backend URL `{url}`: {reason}")]
    InvalidBackendUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Vast.ai rejected the API key (HTTP 401/403).
    #[error(
        "Vast.ai rejected the API key at {endpoint} (HTTP {status}): {detail}; check that {env_var} holds a \
         current key from https://cloud.vast.ai/manage-keys/ that may search offers and rent instances"
    )]
    Auth {
        /// Endpoint that was called.
        endpoint: String,
        /// 401 or 403.
        status: u16,
        /// The server's message, truncated.
        detail: String,
        /// The environment variable that holds the key.
        env_var: String,
    },
    /// Vast.ai answered with another error status.
    #[error("Vast.ai answered HTTP {status} at {endpoint}: {detail}")]
    Api {
        /// Endpoint that was called.
        endpoint: String,
        /// HTTP status code.
        status: u16,
        /// The server's message, truncated.
        detail: String,
    },
    /// No answer from the Vast.ai API (after the bounded retries).
    #[error(
        "cannot reach the Vast.ai API at {endpoint} ({attempts} attempt(s)): {detail}; check the network and \
         the API base URL"
    )]
    Unreachable {
        /// Endpoint that was called.
        endpoint: String,
        /// Attempts made.
        attempts: u32,
        /// The last transport error.
        detail: String,
    },
    /// Vast.ai answered something RUNE cannot use.
    #[error("unexpected answer from {endpoint}: {detail}")]
    BadResponse {
        /// Endpoint that was called.
        endpoint: String,
        /// What was wrong.
        detail: String,
    },
    /// No offer fits the model's GPU RAM, the reliability floor and the price range.
    #[error("{}", no_offer_message(.model, *.vram_mb, *.disk_gb, *.reliability, *.min_dph, *.max_dph, .cheapest.as_ref()))]
    NoOffer {
        /// The model to serve.
        model: String,
        /// GPU RAM asked for, MB.
        vram_mb: u32,
        /// Disk asked for, GB.
        disk_gb: u32,
        /// Reliability floor.
        reliability: f64,
        /// Lowest acceptable price, $/h.
        min_dph: f64,
        /// Highest acceptable price, $/h.
        max_dph: f64,
        /// The cheapest offer meeting everything but the price, if any.
        cheapest: Option<OfferSummary>,
    },
    /// The instance (or the Ollama server on it) was not ready within the bound.
    #[error(
        "Vast.ai instance {contract_id} was not ready after {waited:?}: last state `{state}`{}",
        detail_suffix(.detail)
    )]
    NotReady {
        /// The instance (contract) id.
        contract_id: String,
        /// The last `actual_status` seen (or what was missing).
        state: String,
        /// Vast.ai's status message or the last connection error, if any.
        detail: String,
        /// How long RUNE waited.
        waited: Duration,
    },
    /// The model could not be listed or pulled on the provisioned Ollama server.
    #[error("cannot get model `{model}` onto the Ollama server at {url}: {source}")]
    Model {
        /// The model.
        model: String,
        /// The server's base URL.
        url: String,
        /// What the backend reported.
        source: Box<BackendError>,
    },
    /// The caller cancelled provisioning.
    #[error("provisioning was cancelled while {phase}")]
    Cancelled {
        /// What was being done.
        phase: &'static str,
    },
    /// Provisioning failed after an instance was rented (or reused); says what became of it.
    #[error("{cause}; Vast.ai instance {contract_id} {cleanup}")]
    AfterRent {
        /// The instance (contract) id.
        contract_id: String,
        /// Why provisioning failed.
        cause: Box<ProviderError>,
        /// What became of the instance.
        cleanup: Cleanup,
    },
    /// Teardown could not confirm that the instance is gone; it may still be billing.
    #[error(
        "could not verify that Vast.ai instance {contract_id} is gone after {waited:?}: {detail}; it may still \
         be billing: destroy it by hand with `vastai destroy instance {contract_id}` and check \
         https://cloud.vast.ai/instances/"
    )]
    TeardownUnverified {
        /// The instance (contract) id.
        contract_id: String,
        /// How long verification ran.
        waited: Duration,
        /// What was seen (still listed, or why the listing failed).
        detail: String,
    },
    /// The instance is gone but volumes attached to it could not be deleted.
    #[error(
        "Vast.ai instance {contract_id} is gone, but volume(s) {} could not be deleted: {detail}; delete them \
         by hand with `vastai delete volume <id>`",
        .volume_ids.join(", ")
    )]
    VolumeCleanup {
        /// The instance (contract) id.
        contract_id: String,
        /// Volumes left behind.
        volume_ids: Vec<String>,
        /// The first failure.
        detail: String,
    },
    /// A lease was handed to a provider that did not make it.
    #[error(
        "this lease belongs to the `{lease}` provider, not `{provider}`; tear it down with the provider that made it"
    )]
    LeaseMismatch {
        /// Provider named in the lease.
        lease: ProviderKind,
        /// Provider asked to tear it down.
        provider: ProviderKind,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl ProviderError {
    /// The underlying failure, looking through [`ProviderError::AfterRent`].
    pub fn cause(&self) -> &ProviderError {
        match self {
            ProviderError::AfterRent { cause, .. } => cause.cause(),
            other => other,
        }
    }

    /// Whether provisioning stopped because the caller cancelled it.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.cause(), ProviderError::Cancelled { .. })
    }

    /// The instance that may still be billing because cleanup failed: record it and
    /// retry with `VastAiProvider::teardown_contract` or destroy it by hand.
    pub fn stranded_contract(&self) -> Option<&str> {
        match self {
            ProviderError::AfterRent { contract_id, cleanup: Cleanup::Failed(_), .. }
            | ProviderError::TeardownUnverified { contract_id, .. } => Some(contract_id),
            _ => None,
        }
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

fn no_offer_message(
    model: &str,
    vram_mb: u32,
    disk_gb: u32,
    reliability: f64,
    min_dph: f64,
    max_dph: f64,
    cheapest: Option<&OfferSummary>,
) -> String {
    let head = format!(
        "no verified, rentable Vast.ai offer for `{model}` (GPU RAM >= {vram_mb} MB, reliability >= {reliability}, \
         disk >= {disk_gb} GB) costs between ${min_dph:.2}/h and ${max_dph:.2}/h"
    );
    match cheapest {
        None => format!(
            "{head}, and none matches even at any price; lower `reliability` or choose a model that needs less GPU RAM"
        ),
        Some(c) if c.dph_total > max_dph => format!(
            "{head}; the cheapest matching offer costs ${:.3}/h ({}, offer {}): raise max_dph to at least {:.3}",
            c.dph_total, c.gpu_name, c.id, c.dph_total
        ),
        Some(c) => format!(
            "{head}; the cheapest matching offer costs ${:.3}/h ({}, offer {}): lower min_dph to at most {:.3}",
            c.dph_total, c.gpu_name, c.id, c.dph_total
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The no-offer message states the range and the cheapest offer, and points at the
    /// bound to move.
    #[test]
    fn no_offer_names_range_and_cheapest() {
        let e = |cheapest| ProviderError::NoOffer {
            model: "llama3.1:8b".into(),
            vram_mb: 8192,
            disk_gb: 40,
            reliability: 0.99,
            min_dph: 0.1,
            max_dph: 0.2,
            cheapest,
        };
        let above = e(Some(OfferSummary { id: 7, dph_total: 0.35, gpu_name: "RTX 4090".into() })).to_string();
        assert!(above.contains("between $0.10/h and $0.20/h"), "{above}");
        assert!(above.contains("$0.350/h (RTX 4090, offer 7)"), "{above}");
        assert!(above.contains("raise max_dph"), "{above}");
        let below = e(Some(OfferSummary { id: 8, dph_total: 0.05, gpu_name: "T4".into() })).to_string();
        assert!(below.contains("lower min_dph"), "{below}");
        let none = e(None).to_string();
        assert!(none.contains("lower `reliability`"), "{none}");
    }

    /// `cause` and `is_cancelled` look through the after-rent wrapper; only a failed
    /// cleanup reports a stranded instance.
    #[test]
    fn after_rent_wrapper() {
        let wrapped = |cleanup| ProviderError::AfterRent {
            contract_id: "42".into(),
            cause: Box::new(ProviderError::Cancelled { phase: "waiting for the instance" }),
            cleanup,
        };
        let ok = wrapped(Cleanup::Destroyed);
        assert!(ok.is_cancelled());
        assert_eq!(ok.stranded_contract(), None);
        assert!(ok.to_string().ends_with("Vast.ai instance 42 was destroyed (verified gone)"), "{ok}");
        let bad = wrapped(Cleanup::Failed("HTTP 500".into()));
        assert_eq!(bad.stranded_contract(), Some("42"));
    }
}
