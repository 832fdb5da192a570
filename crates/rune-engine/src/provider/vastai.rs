//! Renting an Ollama server on Vast.ai, and giving it back.
//!
//! Provisioning: reuse a running instance of the account that carries this spec's label,
//! or search offers (GPU RAM for the model, reliability floor, price range, verified,
//! rentable; cheapest first), rent the cheapest, wait (bounded) until it runs with
//! Ollama's port 11434 published, derive the service URL from the public IP and the
//! host port, then make sure the model is on the server (pulling it through Ollama's own
//! API). Any failure after renting destroys what was rented before the error is returned,
//! so a failed or cancelled provisioning never leaves an instance billing unseen.
//!
//! Teardown: list the volumes attached to the instance, destroy the instance, poll the
//! instance list until it is gone (bounded), then delete the volumes. Destroying
//! something already gone is success, so teardown is idempotent.
//!
//! This module decides the order of the calls; `vastai_api.rs` makes them. The spend gate
//! (asking before renting) belongs to the caller; what this module guarantees is that it
//! never rents above `max_dph`.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::models::{model_sizing, ModelSizing};
use super::vastai_api::{Instance, Offer, VastClient};
use super::{
    Cleanup, Lease, OfferSummary, Provider, ProviderError, ProviderKind, ProvisionContext, ProvisionSpec,
    TeardownOutcome, TeardownReport,
};
use crate::backend::{
    normalize_base_url, Backend, BackendError, BackendKind, BackendOptions, ModelList, OllamaBackend, PullProgress,
};

/// Environment variable that holds the Vast.ai API key.
pub const VAST_API_KEY_ENV: &str = "VAST_API_KEY";
/// Environment variable that overrides the API base URL (a proxy, a test double).
pub const VAST_API_URL_ENV: &str = "RUNE_VASTAI_API_URL";
/// The public Vast.ai REST API.
pub const DEFAULT_VASTAI_API_URL: &str = "https://console.vast.ai/api/v0";
/// The container port Ollama listens on; Vast.ai publishes it on a random host port.
pub const OLLAMA_PORT: u16 = 11434;

/// Instance states from which Vast.ai documents that `running` is never reached.
const DEAD_STATES: [&str; 3] = ["exited", "offline", "unknown"];

/// Started on the instance after Vast.ai's entrypoint: installs Ollama if the image lacks
/// it and starts it on all interfaces unless it already runs. The model is pulled later
/// through the API, so progress and failures are seen by RUNE.
const ONSTART: &str = "export OLLAMA_HOST=0.0.0.0:11434; \
command -v ollama >/dev/null 2>&1 || (curl -fsSL https://ollama.com/install.sh | sh); \
pgrep -x ollama >/dev/null 2>&1 || (nohup ollama serve >/var/log/ollama.log 2>&1 &)";

/// A Vast.ai API key. `Debug` prints `<redacted>` so configs and providers can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; surrounding whitespace (a trailing newline from a file) is removed.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into().trim().to_owned())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Where the Vast.ai API is, the key, and every bound the provider keeps.
///
/// Fields are public so tests and callers can shorten bounds with
/// `VastAiConfig { poll_interval, ..VastAiConfig::default() }`.
#[derive(Debug, Clone)]
pub struct VastAiConfig {
    /// API base URL, e.g. [`DEFAULT_VASTAI_API_URL`].
    pub base_url: String,
    /// The API key; [`VastAiProvider::new`] refuses to start without one.
    pub api_key: Option<ApiKey>,
    /// Name of the variable the key came from, named in auth errors.
    pub api_key_env: String,
    /// Bound on establishing one connection.
    pub connect_timeout: Duration,
    /// Bound on one API request, connection to last byte.
    pub request_timeout: Duration,
    /// Tries per API call (≥ 1). Connect failures are retried for every call; timeouts,
    /// 429 and 502-504 for every call but the renting PUT (a repeat could rent twice).
    pub api_attempts: u32,
    /// Pause before the first retry; doubles per retry up to 4 s.
    pub retry_backoff: Duration,
    /// Pause between instance status checks while waiting for it to run.
    pub poll_interval: Duration,
    /// Bound on waiting for a rented instance to run with Ollama answering.
    pub ready_timeout: Duration,
    /// Bound on one model pull.
    pub pull_timeout: Duration,
    /// Pause between checks that a destroyed instance is gone.
    pub verify_interval: Duration,
    /// Bound on verifying that a destroyed instance is gone.
    pub verify_timeout: Duration,
    /// How many offers one search asks for (the cheapest is taken).
    pub offer_limit: u32,
}

impl Default for VastAiConfig {
    fn default() -> Self {
        VastAiConfig {
            base_url: DEFAULT_VASTAI_API_URL.to_owned(),
            api_key: None,
            api_key_env: VAST_API_KEY_ENV.to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            api_attempts: 3,
            retry_backoff: Duration::from_millis(500),
            poll_interval: Duration::from_secs(10),
            ready_timeout: Duration::from_secs(15 * 60),
            pull_timeout: Duration::from_secs(60 * 60),
            verify_interval: Duration::from_secs(5),
            verify_timeout: Duration::from_secs(120),
            offer_limit: 16,
        }
    }
}

impl VastAiConfig {
    /// Defaults plus [`VAST_API_KEY_ENV`] and [`VAST_API_URL_ENV`] read through `lookup`
    /// (pass `|k| std::env::var(k).ok()`). Validation happens in [`VastAiProvider::new`].
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| lookup(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut c = VastAiConfig { api_key: get(VAST_API_KEY_ENV).map(ApiKey::new), ..VastAiConfig::default() };
        if let Some(url) = get(VAST_API_URL_ENV) {
            c.base_url = url;
        }
        c
    }
}

/// Rents Ollama servers on Vast.ai through its REST API.
#[derive(Debug)]
pub struct VastAiProvider {
    client: VastClient,
    config: VastAiConfig,
}

impl VastAiProvider {
    /// A provider for `config`; fails without an API key or with an unusable base URL.
    /// No request is made here.
    pub fn new(config: VastAiConfig) -> Result<Self, ProviderError> {
        let key = config
            .api_key
            .clone()
            .filter(|k| !k.expose().is_empty())
            .ok_or_else(|| ProviderError::MissingApiKey { env_var: config.api_key_env.clone() })?;
        let base =
            normalize_base_url(BackendKind::Ollama, &config.base_url).map_err(|e| ProviderError::InvalidSpec {
                field: VAST_API_URL_ENV.to_owned(),
                reason: match e {
                    BackendError::InvalidUrl { reason, .. } => format!("`{}`: {reason}", config.base_url),
                    other => other.to_string(),
                },
            })?;
        let client = VastClient::new(&config, base, key)?;
        Ok(VastAiProvider { client, config })
    }

    /// A provider configured from the process environment (see [`VastAiConfig::from_env`]).
    pub fn from_env() -> Result<Self, ProviderError> {
        Self::new(VastAiConfig::from_env(|k| std::env::var(k).ok()))
    }

    /// The validated API base URL in use.
    pub fn base_url(&self) -> &str {
        self.client.base()
    }

    /// Destroys instance `contract_id`, verifies it is gone and deletes its volumes,
    /// whatever the lease says: the way to clean up after a crash, or to retry a
    /// [`ProviderError::stranded_contract`]. An instance that is already gone is success.
    pub async fn teardown_contract(&self, contract_id: &str) -> Result<TeardownReport, ProviderError> {
        let id = contract_id.trim().parse::<u64>().map_err(|_| ProviderError::InvalidSpec {
            field: "contract_id".to_owned(),
            reason: format!("`{contract_id}` is not a Vast.ai instance id (a whole number)"),
        })?;
        self.destroy_and_verify(id).await
    }

    /// Rents the cheapest fitting offer; on failure after renting, destroys it.
    async fn rent_new(
        &self,
        spec: &ProvisionSpec,
        sizing: &ModelSizing,
        label: &str,
        ctx: &ProvisionContext,
        deadline: Instant,
    ) -> Result<Lease, ProviderError> {
        let disk_gb = spec.disk_gb.unwrap_or(sizing.disk_gb);
        let offer = self.choose_offer(spec, sizing, disk_gb, ctx).await?;
        ctx.report(&format!(
            "renting Vast.ai offer {} ({}, ${:.3}/h, {disk_gb} GB disk) for {}",
            offer.id, offer.gpu_name, offer.dph_total, sizing.name
        ));
        let body = json!({
            "client_id": "me",
            "template_hash_id": spec.template_hash,
            "label": label,
            "disk": disk_gb,
            "runtype": "ssh_direct",
            "env": {
                format!("-p {OLLAMA_PORT}:{OLLAMA_PORT}"): "1",
                "OLLAMA_HOST": format!("0.0.0.0:{OLLAMA_PORT}"),
            },
            "onstart": ONSTART,
        });
        let id = self.client.create_instance(offer.id, &body).await.map_err(|e| match e {
            ProviderError::Unreachable { endpoint, attempts, detail } => ProviderError::Unreachable {
                endpoint,
                attempts,
                detail: format!("{detail}; check `vastai show instances` for an instance labelled `{label}`"),
            },
            other => other,
        })?;
        tracing::info!(instance = id, offer = offer.id, dph = offer.dph_total, "rented Vast.ai instance");
        ctx.report(&format!("rented Vast.ai instance {id}; waiting for it to start"));
        let mut lease = Lease {
            provider: ProviderKind::VastAi,
            backend_url: String::new(),
            contract_id: Some(id.to_string()),
            instance_label: Some(label.to_owned()),
            hourly_usd: Some(offer.dph_total),
            reused: false,
            stop_instance: spec.stop_instance,
            model: sizing.name.to_owned(),
            gpu_name: Some(offer.gpu_name.clone()),
        };
        let ready = async {
            if ctx.cancel.is_cancelled() {
                return Err(ProviderError::Cancelled { phase: "renting the instance" });
            }
            let ready_by = deadline.min(Instant::now() + self.config.ready_timeout);
            let url = self.wait_running(id, ctx, ready_by).await?;
            self.ensure_model(id, &url, sizing.name, ctx, ready_by, deadline).await?;
            Ok(url)
        };
        match ready.await {
            Ok(url) => {
                lease.backend_url = url;
                Ok(lease)
            }
            Err(e) => Err(self.abandon(id, true, spec.stop_instance, e).await),
        }
    }

    /// Searches offers in the price range; when there is none, searches again without
    /// the price bounds so the error can name the cheapest offer that would fit.
    async fn choose_offer(
        &self,
        spec: &ProvisionSpec,
        sizing: &ModelSizing,
        disk_gb: u32,
        ctx: &ProvisionContext,
    ) -> Result<Offer, ProviderError> {
        ctx.report(&format!(
            "searching Vast.ai offers: GPU RAM >= {} MB, reliability >= {}, ${:.2}-${:.2}/h",
            sizing.vram_mb, spec.reliability, spec.min_dph, spec.max_dph
        ));
        let mut query = offer_query(spec, sizing, disk_gb, self.config.offer_limit);
        query["dph_total"] = json!({ "gte": spec.min_dph, "lte": spec.max_dph });
        let offers = self.client.search_offers(&query, &ctx.cancel).await?;
        // Re-check locally: renting something outside the request is never acceptable,
        // whatever the search endpoint did with the filters.
        let fits = |o: &&Offer| {
            o.dph_total >= spec.min_dph
                && o.dph_total <= spec.max_dph
                && o.gpu_ram_mb.is_none_or(|r| r >= f64::from(sizing.vram_mb))
                && o.reliability.is_none_or(|r| r >= spec.reliability)
        };
        if let Some(best) = offers.iter().filter(fits).min_by(|a, b| a.dph_total.total_cmp(&b.dph_total)) {
            return Ok(best.clone());
        }
        let any_price = offer_query(spec, sizing, disk_gb, 1);
        let cheapest = self
            .client
            .search_offers(&any_price, &ctx.cancel)
            .await?
            .into_iter()
            .min_by(|a, b| a.dph_total.total_cmp(&b.dph_total));
        Err(ProviderError::NoOffer {
            model: sizing.name.to_owned(),
            vram_mb: sizing.vram_mb,
            disk_gb,
            reliability: spec.reliability,
            min_dph: spec.min_dph,
            max_dph: spec.max_dph,
            cheapest: cheapest.map(|o| OfferSummary { id: o.id, dph_total: o.dph_total, gpu_name: o.gpu_name }),
        })
    }

    /// Polls the instance until it runs with port 11434 published (at most until
    /// `bound`); returns the URL.
    async fn wait_running(&self, id: u64, ctx: &ProvisionContext, bound: Instant) -> Result<String, ProviderError> {
        let start = Instant::now();
        let mut last: Option<String> = None;
        loop {
            let Some(inst) = self.client.show_instance(id, &ctx.cancel).await? else {
                return Err(ProviderError::NotReady {
                    contract_id: id.to_string(),
                    state: "gone".to_owned(),
                    detail: "Vast.ai no longer lists it; the host may have refused it, try again".to_owned(),
                    waited: start.elapsed(),
                });
            };
            let (state, detail) = describe(&inst);
            if last.as_deref() != Some(state.as_str()) {
                ctx.report(&format!("Vast.ai instance {id}: {state}{}", paren(&detail)));
            }
            if let Some(url) = inst.service_url(OLLAMA_PORT).filter(|_| state == "running") {
                ctx.report(&format!("Vast.ai instance {id} is running; Ollama at {url}"));
                return Ok(url);
            }
            if DEAD_STATES.contains(&state.as_str()) || Instant::now() >= bound {
                return Err(ProviderError::NotReady {
                    contract_id: id.to_string(),
                    state,
                    detail,
                    waited: start.elapsed(),
                });
            }
            last = Some(state);
            pause(
                self.config.poll_interval.min(bound.saturating_duration_since(Instant::now())),
                &ctx.cancel,
                "waiting for the instance",
            )
            .await?;
        }
    }

    /// Waits until Ollama at `url` answers (at most until `ready_by`), then pulls `model`
    /// unless listed (the pull ends at `deadline` at the latest).
    async fn ensure_model(
        &self,
        id: u64,
        url: &str,
        model: &str,
        ctx: &ProvisionContext,
        ready_by: Instant,
        deadline: Instant,
    ) -> Result<(), ProviderError> {
        let model_err = |e: BackendError| ProviderError::Model {
            model: model.to_owned(),
            url: url.to_owned(),
            source: Box::new(e),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let options = BackendOptions {
            connect_timeout: self.config.connect_timeout,
            request_timeout: self.config.request_timeout,
            pull_timeout: self.config.pull_timeout.min(remaining).max(Duration::from_millis(1)),
            connect_attempts: 1,
            ..BackendOptions::default()
        };
        let ollama = OllamaBackend::new(url, options).map_err(model_err)?;
        let listed = self.wait_for_ollama(id, &ollama, url, ctx, ready_by).await?;
        if has_model(&listed, model) {
            ctx.report(&format!("{model} is already on the server"));
            return Ok(());
        }
        ctx.report(&format!("pulling {model} onto {url}"));
        // std Mutex: touched only inside the synchronous progress callback, never held
        // across an await; it only remembers the last status to report changes once.
        let last_status = Mutex::new(String::new());
        let progress = |p: &PullProgress| {
            if let Ok(mut last) = last_status.lock() {
                if *last != p.status {
                    ctx.report(&format!("pull {model}: {}", p.status));
                    last.clone_from(&p.status);
                }
            }
        };
        ollama.pull(model, &progress, &ctx.cancel).await.map_err(|e| match e {
            BackendError::Cancelled { .. } => ProviderError::Cancelled { phase: "pulling the model" },
            other => model_err(other),
        })?;
        let after = cancellable(ollama.list_models(), &ctx.cancel, "checking the model").await?.map_err(model_err)?;
        if !has_model(&after, model) {
            return Err(model_err(BackendError::UnknownModel {
                model: model.to_owned(),
                url: url.to_owned(),
                available: after.models,
                hint: "the pull reported success but the server does not list the model; check the Ollama log on \
                       the instance (/var/log/ollama.log)"
                    .to_owned(),
            }));
        }
        Ok(())
    }

    /// Lists models until the server answers; a server that never answers is not ready.
    async fn wait_for_ollama(
        &self,
        id: u64,
        ollama: &OllamaBackend,
        url: &str,
        ctx: &ProvisionContext,
        bound: Instant,
    ) -> Result<ModelList, ProviderError> {
        let start = Instant::now();
        loop {
            let err = match cancellable(ollama.list_models(), &ctx.cancel, "waiting for Ollama").await? {
                Ok(list) => return Ok(list),
                Err(e) => e,
            };
            if Instant::now() >= bound {
                return Err(ProviderError::NotReady {
                    contract_id: id.to_string(),
                    state: format!("running, but Ollama at {url} does not answer"),
                    detail: err.to_string(),
                    waited: start.elapsed(),
                });
            }
            let left = bound.saturating_duration_since(Instant::now());
            pause(self.config.poll_interval.min(left), &ctx.cancel, "waiting for Ollama").await?;
        }
    }

    /// Wraps a failure after renting (or reusing) instance `id`, destroying the instance
    /// first when RUNE rented it or the spec asks to stop it.
    async fn abandon(&self, id: u64, rented: bool, stop_instance: bool, cause: ProviderError) -> ProviderError {
        let cleanup = if rented || stop_instance {
            tracing::warn!(instance = id, error = %cause, "provisioning failed; destroying the instance");
            match self.destroy_and_verify(id).await {
                Ok(_) => Cleanup::Destroyed,
                Err(e) => Cleanup::Failed(e.to_string()),
            }
        } else {
            Cleanup::Kept
        };
        ProviderError::AfterRent { contract_id: id.to_string(), cause: Box::new(cause), cleanup }
    }

    /// Volumes snapshot → destroy → verify gone → delete volumes. Never cancelled: it
    /// runs after cancellation too, bounded by the request and verification timeouts.
    async fn destroy_and_verify(&self, id: u64) -> Result<TeardownReport, ProviderError> {
        // Snapshot first: once the instance is gone, the volume no longer names it.
        let (volumes, volume_note) = match self.client.list_volumes().await {
            Ok(all) => (all.into_iter().filter(|v| v.instance_ids.contains(&id)).map(|v| v.id).collect(), None),
            Err(e) => (Vec::new(), Some(format!("; attached volumes were not checked ({e})"))),
        };
        let mut destroy_error = None;
        let existed = match self.client.destroy_instance(id).await {
            Ok(existed) => existed,
            Err(e) => {
                destroy_error = Some(e);
                true
            }
        };
        let checks = self.verify_gone(id, destroy_error).await?;
        let mut deleted = Vec::new();
        let mut failed = Vec::new();
        let mut first_failure = None;
        for v in volumes {
            match self.client.delete_volume(v).await {
                Ok(()) => deleted.push(v.to_string()),
                Err(e) => {
                    failed.push(v.to_string());
                    first_failure.get_or_insert_with(|| e.to_string());
                }
            }
        }
        if let Some(detail) = first_failure {
            return Err(ProviderError::VolumeCleanup { contract_id: id.to_string(), volume_ids: failed, detail });
        }
        let (outcome, what) = if existed {
            (TeardownOutcome::Destroyed, "destroyed")
        } else {
            (TeardownOutcome::AlreadyGone, "found already destroyed")
        };
        let volumes_text =
            if deleted.is_empty() { String::new() } else { format!("; deleted volume(s) {}", deleted.join(", ")) };
        let message = format!(
            "Vast.ai instance {id} {what}; verified gone after {checks} check(s){volumes_text}{}",
            volume_note.unwrap_or_default()
        );
        tracing::info!(instance = id, %message, "Vast.ai teardown");
        Ok(TeardownReport {
            provider: ProviderKind::VastAi,
            contract_id: Some(id.to_string()),
            outcome,
            deleted_volume_ids: deleted,
            verified: true,
            verification_checks: checks,
            message,
        })
    }

    /// Polls the instance list until `id` is absent; returns the number of checks. When
    /// the destroy request failed, it is re-sent while the instance is still listed.
    async fn verify_gone(&self, id: u64, mut destroy_error: Option<ProviderError>) -> Result<u32, ProviderError> {
        let start = Instant::now();
        let bound = start + self.config.verify_timeout;
        let mut checks = 0;
        loop {
            checks += 1;
            let seen = match self.client.list_instances(None, "verifying the teardown").await {
                Ok(list) => match list.iter().find(|i| i.id == id) {
                    None => return Ok(checks),
                    Some(i) => format!("still listed with state `{}`", describe(i).0),
                },
                Err(e @ ProviderError::Auth { .. }) => {
                    return Err(unverified(id, start, format!("listing instances failed: {e}"), destroy_error))
                }
                Err(e) => format!("listing instances failed: {e}"),
            };
            if Instant::now() >= bound {
                return Err(unverified(id, start, seen, destroy_error));
            }
            if destroy_error.is_some() {
                destroy_error = self.client.destroy_instance(id).await.err();
            }
            tokio::time::sleep(self.config.verify_interval.min(bound.saturating_duration_since(Instant::now()))).await;
        }
    }
}

#[async_trait]
impl Provider for VastAiProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::VastAi
    }

    async fn provision(&self, spec: &ProvisionSpec, ctx: &ProvisionContext) -> Result<Lease, ProviderError> {
        spec.validate()?;
        let sizing = model_sizing(&spec.model)?;
        let label = spec.instance_label();
        let deadline = Instant::now() + ctx.timeout;
        ctx.report(&format!("looking for a running Vast.ai instance labelled `{label}`"));
        let instances = self.client.list_instances(Some(&ctx.cancel), "looking for a reusable instance").await?;
        let Some((inst, url)) = reusable(&instances, &label, ctx) else {
            return self.rent_new(spec, sizing, &label, ctx, deadline).await;
        };
        ctx.report(&format!("reusing Vast.ai instance {} at {url}", inst.id));
        let ready_by = deadline.min(Instant::now() + self.config.ready_timeout);
        match self.ensure_model(inst.id, &url, sizing.name, ctx, ready_by, deadline).await {
            Ok(()) => Ok(Lease {
                provider: ProviderKind::VastAi,
                backend_url: url,
                contract_id: Some(inst.id.to_string()),
                instance_label: Some(label),
                hourly_usd: inst.dph_total,
                reused: true,
                stop_instance: spec.stop_instance,
                model: sizing.name.to_owned(),
                gpu_name: inst.gpu_name.clone(),
            }),
            Err(e) => Err(self.abandon(inst.id, false, spec.stop_instance, e).await),
        }
    }

    async fn teardown(&self, lease: &Lease) -> Result<TeardownReport, ProviderError> {
        if lease.provider != ProviderKind::VastAi {
            return Err(ProviderError::LeaseMismatch { lease: lease.provider, provider: ProviderKind::VastAi });
        }
        let Some(id) = lease.contract_id.as_deref() else {
            return Ok(TeardownReport::nothing(ProviderKind::VastAi, "no Vast.ai instance was rented"));
        };
        if !lease.stop_instance {
            let rate = lease.hourly_usd.map(|r| format!(" at ${r:.3}/h")).unwrap_or_default();
            return Ok(TeardownReport {
                provider: ProviderKind::VastAi,
                contract_id: Some(id.to_owned()),
                outcome: TeardownOutcome::Kept,
                deleted_volume_ids: Vec::new(),
                verified: false,
                verification_checks: 0,
                message: format!(
                    "Vast.ai instance {id} left running (stop_instance is false); it keeps billing{rate} until \
                     destroyed with `vastai destroy instance {id}`"
                ),
            });
        }
        self.teardown_contract(id).await
    }
}

/// The query for offers that fit the model, reliability and disk (no price bounds).
fn offer_query(spec: &ProvisionSpec, sizing: &ModelSizing, disk_gb: u32, limit: u32) -> Value {
    json!({
        "verified": { "eq": true },
        "rentable": { "eq": true },
        "gpu_ram": { "gte": sizing.vram_mb },
        "reliability": { "gte": spec.reliability },
        "disk_space": { "gte": disk_gb },
        "direct_port_count": { "gte": 1 },
        "type": "on-demand",
        "allocated_storage": disk_gb,
        "order": [["dph_total", "asc"]],
        "limit": limit,
    })
}

/// A running instance with `label` and Ollama's port published, with its URL.
fn reusable<'a>(instances: &'a [Instance], label: &str, ctx: &ProvisionContext) -> Option<(&'a Instance, String)> {
    let mut found = None;
    for inst in instances.iter().filter(|i| i.label.as_deref() == Some(label)) {
        let (state, _) = describe(inst);
        match inst.service_url(OLLAMA_PORT).filter(|_| state == "running") {
            Some(url) if found.is_none() => found = Some((inst, url)),
            Some(_) => {}
            None => ctx.report(&format!(
                "Vast.ai instance {} is labelled `{label}` but is `{state}` without port {OLLAMA_PORT} published; \
                 not reusing it",
                inst.id
            )),
        }
    }
    found
}

/// The instance's state (`provisioning` while Vast.ai reports none) and status message.
fn describe(inst: &Instance) -> (String, String) {
    let state = inst.actual_status.clone().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "provisioning".into());
    let detail = inst.status_msg.clone().unwrap_or_default();
    let detail = match inst.host_port(OLLAMA_PORT) {
        None if state == "running" => format!("port {OLLAMA_PORT} not published yet{}", paren(&detail)),
        _ => detail,
    };
    (state, detail)
}

fn paren(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

fn has_model(list: &ModelList, model: &str) -> bool {
    list.models.iter().any(|m| m == model || m.strip_suffix(":latest") == Some(model))
}

fn unverified(id: u64, start: Instant, seen: String, destroy_error: Option<ProviderError>) -> ProviderError {
    let detail = match destroy_error {
        Some(e) => format!("{seen}; the destroy request failed: {e}"),
        None => seen,
    };
    ProviderError::TeardownUnverified { contract_id: id.to_string(), waited: start.elapsed(), detail }
}

/// Sleeps for `d` unless `cancel` fires first.
async fn pause(d: Duration, cancel: &CancellationToken, phase: &'static str) -> Result<(), ProviderError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(ProviderError::Cancelled { phase }),
        _ = tokio::time::sleep(d) => Ok(()),
    }
}

/// Runs `fut` unless `cancel` fires first.
async fn cancellable<T>(
    fut: impl std::future::Future<Output = T>,
    cancel: &CancellationToken,
    phase: &'static str,
) -> Result<T, ProviderError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(ProviderError::Cancelled { phase }),
        v = fut => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key never shows in `Debug` output of the key, the config or the provider.
    #[test]
    fn api_key_is_redacted() {
        let config = VastAiConfig { api_key: Some(ApiKey::new("sekrit-123\n")), ..VastAiConfig::default() };
        assert_eq!(config.api_key.as_ref().map(ApiKey::expose), Some("sekrit-123"));
        let provider = VastAiProvider::new(config.clone()).unwrap();
        for shown in [format!("{config:?}"), format!("{provider:?}")] {
            assert!(!shown.contains("sekrit"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
    }

    /// The environment supplies the key and an optional base URL; a bad URL is refused
    /// by name.
    #[test]
    fn config_from_env() {
        let c = VastAiConfig::from_env(|k| match k {
            "VAST_API_KEY" => Some(" k ".into()),
            "RUNE_VASTAI_API_URL" => Some("http://127.0.0.1:9/api/v0/".into()),
            _ => None,
        });
        assert_eq!(VastAiProvider::new(c).unwrap().base_url(), "http://127.0.0.1:9/api/v0");
        let bad =
            VastAiConfig { api_key: Some(ApiKey::new("k")), base_url: "console.vast.ai".into(), ..Default::default() };
        let e = VastAiProvider::new(bad).unwrap_err().to_string();
        assert!(e.contains("RUNE_VASTAI_API_URL") && e.contains("scheme"), "{e}");
    }

    /// The offer query asks for the model's GPU RAM, the reliability floor, the disk,
    /// verified and rentable hosts, cheapest first.
    #[test]
    fn offer_query_shape() {
        let spec = ProvisionSpec {
            model: "qwen2.5:32b".into(),
            template_hash: "abc".into(),
            min_dph: 0.1,
            max_dph: 0.5,
            reliability: 0.98,
            disk_gb: None,
            stop_instance: true,
        };
        let q = offer_query(&spec, model_sizing("qwen2.5:32b").unwrap(), 80, 16);
        assert_eq!(q["gpu_ram"], json!({"gte": 24576}));
        assert_eq!(q["reliability"], json!({"gte": 0.98}));
        assert_eq!(q["verified"], json!({"eq": true}));
        assert_eq!(q["rentable"], json!({"eq": true}));
        assert_eq!(q["order"], json!([["dph_total", "asc"]]));
        assert!(q.get("dph_total").is_none());
    }
}
