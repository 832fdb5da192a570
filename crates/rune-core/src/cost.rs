//! Cost model: pre-flight estimates, the fail-closed spend gate, post-run cost and the
//! FinOps projection.
//!
//! This module owns the arithmetic and the price tables, nothing else. It does no I/O: no
//! network price lookups, no files, no environment reads, no clock. Callers pass in what
//! they know (the request, the measured usage, the job history, the `CI` variable's value)
//! and get plain values back, so every rule here is tested exhaustively.
//!
//! # Why every price is dated
//!
//! The prices below are static tables, not live quotes. Cloud and marketplace prices
//! change, so a static table silently goes stale. Each table therefore carries the date its
//! figures were taken from their source (`as_of`) and the source's name, and every estimate
//! or projection reports the table and date it used (`price_source`). A user reading
//! "cloud-gpu-on-demand as of 2026-05-01" can judge for themselves how much to trust it.
//! The figures were carried over from the original RUNE (rune-bench, snapshot of
//! 2026-05-01) and were not re-checked against the providers.
//!
//! # Fail-closed
//!
//! An estimate either names a real cost driver or is an error ([`CostError`]); there is no
//! "error" driver and no $0 placeholder. Static prices get a confidence below
//! [`CONFIDENCE_THRESHOLD`], so [`gate`] never lets them through without an explicit
//! confirmation.
//!
//! # Example
//!
//! ```
//! use rune_core::contracts::CostEstimationRequest;
//! use rune_core::cost::{estimate, gate, CostDriver, GateDecision, GatePolicy};
//!
//! let req = CostEstimationRequest {
//!     vastai: true, aws: false, gcp: false, azure: false,
//!     min_dph: 2.0, max_dph: 3.0,
//!     local_hardware: false, local_tdp_watts: 0.0, local_energy_rate_kwh: 0.0,
//!     local_hardware_purchase_price: 0.0, local_hardware_lifespan_years: 0.0,
//!     model: String::new(), estimated_duration_seconds: 3600,
//! };
//! let est = estimate(&req)?;
//! assert_eq!(est.cost_driver, CostDriver::Vastai);
//! assert_eq!(est.projected_cost_usd, 2.5); // midpoint of the user's bid range, one hour
//! assert_eq!(gate(&est, &GatePolicy::default()), GateDecision::Proceed);
//! # Ok::<(), rune_core::cost::CostError>(())
//! ```

use crate::contracts::{CostEstimationRequest, MAX_AGENT_LEN, MAX_MODEL_LEN, MAX_SUITE_LEN};
use crate::validate::{FieldReader, ValidationErrors};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

// ---------------------------------------------------------------------------------------
// Price tables
// ---------------------------------------------------------------------------------------

/// Where a static price table came from and how old its figures are; shown to users so
/// they can judge staleness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PriceSource {
    /// Short stable name of the table, e.g. `cloud-gpu-on-demand`.
    pub table: &'static str,
    /// Who published the figures and how they reached this table.
    pub source: &'static str,
    /// Date (`YYYY-MM-DD`) the figures were taken from their source.
    pub as_of: &'static str,
}

impl PriceSource {
    /// The one-line label reported in `price_source` fields.
    pub fn label(&self) -> String {
        format!("{} as of {} ({})", self.table, self.as_of, self.source)
    }
}

impl fmt::Display for PriceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// On-demand price of one cloud GPU instance type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GpuInstancePrice {
    /// Provider: `azure`, `aws`, `gcp` or `vastai`.
    pub provider: &'static str,
    /// Instance type (SKU) the price is for.
    pub instance: &'static str,
    /// GPU model in that instance, for humans.
    pub gpu: &'static str,
    /// On-demand list price, dollars per hour.
    pub usd_per_hour: f64,
}

/// A dated table of GPU instance prices.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GpuInstanceTable {
    /// Provenance and date of every price in the table.
    pub source: PriceSource,
    /// The prices.
    pub prices: &'static [GpuInstancePrice],
}

const AZURE_NC6S_V3: GpuInstancePrice =
    GpuInstancePrice { provider: "azure", instance: "Standard_NC6s_v3", gpu: "V100", usd_per_hour: 3.06 };
const AWS_G4DN_XLARGE: GpuInstancePrice =
    GpuInstancePrice { provider: "aws", instance: "g4dn.xlarge", gpu: "T4", usd_per_hour: 0.526 };
const AWS_G5_XLARGE: GpuInstancePrice =
    GpuInstancePrice { provider: "aws", instance: "g5.xlarge", gpu: "A10G", usd_per_hour: 1.21 };
const AWS_P4D_24XLARGE: GpuInstancePrice =
    GpuInstancePrice { provider: "aws", instance: "p4d.24xlarge", gpu: "8x A100", usd_per_hour: 12.0 };
const GCP_T4: GpuInstancePrice =
    GpuInstancePrice { provider: "gcp", instance: "n1-standard + nvidia-tesla-t4", gpu: "T4", usd_per_hour: 0.70 };
const GCP_A2_HIGHGPU_1G: GpuInstancePrice =
    GpuInstancePrice { provider: "gcp", instance: "a2-highgpu-1g", gpu: "A100", usd_per_hour: 3.67 };
const VASTAI_TYPICAL: GpuInstancePrice =
    GpuInstancePrice { provider: "vastai", instance: "any offer", gpu: "unspecified", usd_per_hour: 2.50 };

/// Cloud on-demand GPU prices used by the Azure, AWS and GCP drivers. They are list prices,
/// not quotes for the user's account or region, hence the sub-threshold confidence.
pub static CLOUD_GPU_PRICES: GpuInstanceTable = GpuInstanceTable {
    source: PriceSource {
        table: "cloud-gpu-on-demand",
        source: "public on-demand list prices, carried over from rune-bench common/costs.py",
        as_of: "2026-05-01",
    },
    prices: &[AZURE_NC6S_V3, AWS_G4DN_XLARGE, AWS_G5_XLARGE, AWS_P4D_24XLARGE, GCP_T4, GCP_A2_HIGHGPU_1G],
};

/// The assumed Vast.ai rate when the user gave no bid range: a typical marketplace price,
/// not a quote, so estimates using it get a low confidence.
pub static VASTAI_FALLBACK_PRICES: GpuInstanceTable = GpuInstanceTable {
    source: PriceSource {
        table: "vastai-typical-rate",
        source: "assumed typical Vast.ai marketplace rate, carried over from rune-bench common/costs.py",
        as_of: "2026-05-01",
    },
    prices: &[VASTAI_TYPICAL],
};

/// Hourly price of a GPU class, matched by name ("RTX 4090" → `4090`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GpuClassPrice {
    /// Name fragment that identifies the GPU class (`a100`, `4090`).
    pub gpu: &'static str,
    /// Dollars per hour.
    pub usd_per_hour: f64,
}

/// A dated table of GPU class prices with a default for unknown GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GpuClassTable {
    /// Provenance and date of every price in the table.
    pub source: PriceSource,
    /// The prices.
    pub prices: &'static [GpuClassPrice],
    /// Price used for a GPU that matches no entry.
    pub default_usd_per_hour: f64,
}

impl GpuClassTable {
    /// The entry whose name matches `gpu` (see [`names_match`]), preferring the most
    /// specific one.
    pub fn find(&self, gpu: &str) -> Option<GpuClassPrice> {
        best_match(self.prices, |p| p.gpu, gpu).copied()
    }

    /// The matching entry, or a `default` entry priced at the table's default.
    pub fn find_or_default(&self, gpu: &str) -> (GpuClassPrice, bool) {
        match self.find(gpu) {
            Some(p) => (p, true),
            None => (GpuClassPrice { gpu: "default", usd_per_hour: self.default_usd_per_hour }, false),
        }
    }
}

/// GPU prices used by the FinOps projection, by GPU class rather than instance type
/// because the projection is asked about GPUs ("RTX 4090"), not SKUs.
pub static GPU_CLASS_PRICES: GpuClassTable = GpuClassTable {
    source: PriceSource {
        table: "gpu-class-hourly",
        source: "rune-bench metrics/pricing.py fallback table (marketplace and cloud rates)",
        as_of: "2026-05-01",
    },
    prices: &[
        GpuClassPrice { gpu: "4090", usd_per_hour: 0.40 },
        GpuClassPrice { gpu: "a100", usd_per_hour: 3.67 },
        GpuClassPrice { gpu: "h100", usd_per_hour: 12.0 },
        GpuClassPrice { gpu: "3090", usd_per_hour: 0.25 },
        GpuClassPrice { gpu: "l40", usd_per_hour: 1.2 },
        GpuClassPrice { gpu: "v100", usd_per_hour: 3.06 },
        GpuClassPrice { gpu: "t4", usd_per_hour: 0.52 },
    ],
    default_usd_per_hour: 0.50,
};

/// Price of a hosted model's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TokenPrice {
    /// Canonical model name (`llama-3.1-8b`); user spellings are matched by [`names_match`].
    pub model: &'static str,
    /// Dollars per million input (prompt) tokens.
    pub input_usd_per_million: f64,
    /// Dollars per million output (completion) tokens.
    pub output_usd_per_million: f64,
}

impl TokenPrice {
    /// Cost of the given token counts at this price.
    pub fn cost(&self, input_tokens: f64, output_tokens: f64) -> f64 {
        input_tokens / 1e6 * self.input_usd_per_million + output_tokens / 1e6 * self.output_usd_per_million
    }
}

/// A dated table of token prices with a default for unknown models.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TokenPriceTable {
    /// Provenance and date of every price in the table.
    pub source: PriceSource,
    /// The prices.
    pub prices: &'static [TokenPrice],
    /// Price assumed for a model that matches no entry (projections only; post-run cost
    /// never invents a price).
    pub default: TokenPrice,
}

impl TokenPriceTable {
    /// The entry whose name matches `model` (see [`names_match`]), preferring the most
    /// specific one (`gpt-4o-mini` over `gpt-4o`).
    pub fn find(&self, model: &str) -> Option<TokenPrice> {
        best_match(self.prices, |p| p.model, model).copied()
    }

    /// The matching entry, or the table's default; the flag says whether it matched.
    pub fn find_or_default(&self, model: &str) -> (TokenPrice, bool) {
        match self.find(model) {
            Some(p) => (p, true),
            None => (self.default, false),
        }
    }
}

/// Hosted-model token prices, used for AWS token pricing, post-run token cost and FinOps.
pub static LLM_TOKEN_PRICES: TokenPriceTable = TokenPriceTable {
    source: PriceSource {
        table: "llm-token-prices",
        source: "providers' published per-token API prices, carried over from rune-bench metrics/pricing.py",
        as_of: "2026-05-01",
    },
    prices: &[
        TokenPrice { model: "gpt-4o", input_usd_per_million: 2.5, output_usd_per_million: 10.0 },
        TokenPrice { model: "gpt-4o-mini", input_usd_per_million: 0.15, output_usd_per_million: 0.6 },
        TokenPrice { model: "gpt-4-turbo", input_usd_per_million: 10.0, output_usd_per_million: 30.0 },
        TokenPrice { model: "claude-3-5-sonnet", input_usd_per_million: 3.0, output_usd_per_million: 15.0 },
        TokenPrice { model: "claude-3-opus", input_usd_per_million: 15.0, output_usd_per_million: 75.0 },
        TokenPrice { model: "claude-3-haiku", input_usd_per_million: 0.25, output_usd_per_million: 1.25 },
        TokenPrice { model: "llama-3.1-405b", input_usd_per_million: 5.0, output_usd_per_million: 15.0 },
        TokenPrice { model: "llama-3.1-70b", input_usd_per_million: 0.6, output_usd_per_million: 0.8 },
        TokenPrice { model: "llama-3.1-8b", input_usd_per_million: 0.1, output_usd_per_million: 0.2 },
    ],
    default: TokenPrice { model: "default", input_usd_per_million: 0.5, output_usd_per_million: 1.5 },
};

/// Splits a name into lowercase tokens at every non-alphanumeric character and at every
/// letter/digit boundary: `llama3.1:8b` → `llama 3 1 8 b`.
fn name_tokens(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut current_is_digit = false;
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            let is_digit = c.is_ascii_digit();
            if !current.is_empty() && is_digit != current_is_digit {
                out.push(std::mem::take(&mut current));
            }
            current_is_digit = is_digit;
            current.push(c);
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether the canonical name `key` occurs in the user's `name`, comparing normalised
/// tokens so spelling differences do not matter: `llama3.1:8b`, `Llama-3.1-8B-Instruct` and
/// `meta-llama/llama-3.1-8b` all match `llama-3.1-8b`, while `llama3.1:80b` does not.
pub fn names_match(key: &str, name: &str) -> bool {
    let key = name_tokens(key);
    let name = name_tokens(name);
    !key.is_empty() && name.windows(key.len()).any(|w| w == key.as_slice())
}

/// The entry matching `name` with the most tokens (the most specific); ties go to the
/// earlier entry.
fn best_match<'t, T>(items: &'t [T], key: impl Fn(&T) -> &str, name: &str) -> Option<&'t T> {
    let mut best: Option<(&T, usize)> = None;
    for item in items {
        let k = key(item);
        if names_match(k, name) {
            let len = name_tokens(k).len();
            if best.is_none_or(|(_, best_len)| len > best_len) {
                best = Some((item, len));
            }
        }
    }
    best.map(|(item, _)| item)
}

// ---------------------------------------------------------------------------------------
// Pre-flight estimate
// ---------------------------------------------------------------------------------------

/// Confidence at or above which an estimate may proceed without confirmation (the
/// `FailClosedEstimation` spec's threshold of 95/100).
pub const CONFIDENCE_THRESHOLD: f64 = 0.95;

/// Spend above which the gate asks for confirmation, dollars; the original's
/// `RUNE_SPEND_WARNING_THRESHOLD` default.
pub const DEFAULT_SPEND_THRESHOLD_USD: f64 = 5.00;

/// Local hardware: the TDP is a ceiling and utilisation is unknown, so the energy figure
/// is an upper bound, not a measurement.
const LOCAL_CONFIDENCE: f64 = 0.8;
/// A static list price: right order of magnitude, not a quote for this account/region.
const STATIC_TABLE_CONFIDENCE: f64 = 0.8;
/// The user's own Vast.ai bid cap bounds what can be rented.
const USER_RANGE_CONFIDENCE: f64 = 1.0;
/// Only a lower bid bound: the rental can cost more than estimated.
const LOWER_BOUND_CONFIDENCE: f64 = 0.7;
/// Token pricing that rests on an assumed throughput.
const ASSUMED_THROUGHPUT_CONFIDENCE: f64 = 0.6;
/// A price that is a guess (no bid range, no price for the model).
const ASSUMED_PRICE_CONFIDENCE: f64 = 0.5;

/// Throughput assumed when AWS-hosted models are priced per token: one million tokens per
/// hour of run time. Real agent runs vary widely; this is why such estimates carry a low
/// confidence and a warning.
pub const AWS_ASSUMED_TOKENS_PER_HOUR: f64 = 1_000_000.0;
/// Share of the assumed tokens that are input (prompt) tokens; the rest are output. 0.8
/// matches the 4:1 prompt-to-completion ratio of the SRE scope defaults.
pub const AWS_ASSUMED_INPUT_SHARE: f64 = 0.8;
/// Model-name fragments that mean "a model hosted by AWS, billed per token".
const AWS_TOKEN_MODEL_MARKERS: [&str; 5] = ["bedrock/", "aws/", "claude", "titan", "llama"];

/// Projected spend above which a run's impact is `high`, dollars.
pub const HIGH_IMPACT_USD: f64 = 20.0;
/// Projected spend above which a run's impact is `medium`, dollars.
pub const MEDIUM_IMPACT_USD: f64 = 5.0;

/// What a pre-flight estimate prices; the wire spelling is the original's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CostDriver {
    /// The user's own hardware: energy plus amortised purchase price.
    Local,
    /// A Vast.ai rental.
    Vastai,
    /// Azure on-demand GPU.
    Azure,
    /// AWS: EC2 GPU instance, or per-token pricing for AWS-hosted models.
    Aws,
    /// GCP on-demand GPU.
    Gcp,
}

impl CostDriver {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CostDriver::Local => "local",
            CostDriver::Vastai => "vastai",
            CostDriver::Azure => "azure",
            CostDriver::Aws => "aws",
            CostDriver::Gcp => "gcp",
        }
    }
}

impl fmt::Display for CostDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How heavy a run is on money or hardware, for at-a-glance display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResourceImpact {
    /// Projected spend of at most [`MEDIUM_IMPACT_USD`].
    Low,
    /// Above [`MEDIUM_IMPACT_USD`], or any local-hardware run (it occupies the machine).
    Medium,
    /// Above [`HIGH_IMPACT_USD`].
    High,
}

impl ResourceImpact {
    /// The impact class of a projected spend.
    pub fn from_cost(usd: f64) -> Self {
        if usd > HIGH_IMPACT_USD {
            ResourceImpact::High
        } else if usd > MEDIUM_IMPACT_USD {
            ResourceImpact::Medium
        } else {
            ResourceImpact::Low
        }
    }
}

/// A pre-flight estimate. The first six fields keep the original `CostEstimationResponse`
/// names, which the original Python client and UI read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CostEstimate {
    /// Projected cost of the whole run, dollars.
    pub projected_cost_usd: f64,
    /// What was priced; never a placeholder.
    pub cost_driver: CostDriver,
    /// At-a-glance impact class.
    pub resource_impact: ResourceImpact,
    /// Energy the local hardware draws at most; 0 for rented drivers.
    pub local_energy_kwh: f64,
    /// 0..1; below [`CONFIDENCE_THRESHOLD`] the gate requires confirmation.
    pub confidence_score: f64,
    /// What the user should know about this estimate (assumptions, stale prices).
    pub warning: Option<String>,
    /// The table and date (or "user-supplied") the price came from.
    pub price_source: String,
    /// The rate the projection used, dollars per hour.
    pub hourly_rate_usd: f64,
    /// The run length the projection used.
    pub duration_seconds: u64,
}

/// Why no estimate could be made. Each message says how to fix the request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CostError {
    /// No driver flag was set; an estimate without a driver would be a guess.
    #[error("no cost driver selected: set one of local_hardware, vastai, aws, gcp, azure")]
    NoDriver,
    /// A request number the arithmetic cannot use (only reachable when the request was
    /// built without the contract's validation).
    #[error("{field} {reason}")]
    InvalidInput {
        /// The request field.
        field: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// The arithmetic overflowed or produced NaN.
    #[error("the computed {quantity} is not a finite number; use smaller values for the duration and prices")]
    NonFinite {
        /// Which result was not finite.
        quantity: &'static str,
    },
    /// `RUNE_SPEND_WARNING_THRESHOLD` is not a usable amount.
    #[error("spend threshold `{value}` is not a number of dollars >= 0; set RUNE_SPEND_WARNING_THRESHOLD to e.g. 5.00 or unset it")]
    InvalidThreshold {
        /// The rejected text.
        value: String,
    },
}

/// The driver a request selects: the first set flag in the order local_hardware → vastai →
/// azure → aws → gcp (the original's precedence), or `None`.
pub fn select_driver(req: &CostEstimationRequest) -> Option<CostDriver> {
    [
        (req.local_hardware, CostDriver::Local),
        (req.vastai, CostDriver::Vastai),
        (req.azure, CostDriver::Azure),
        (req.aws, CostDriver::Aws),
        (req.gcp, CostDriver::Gcp),
    ]
    .into_iter()
    .find_map(|(on, driver)| on.then_some(driver))
}

/// A priced hour, before it is multiplied out.
struct Priced {
    hourly_rate_usd: f64,
    confidence: f64,
    warning: Option<String>,
    price_source: String,
    energy_kw: f64,
    impact: Option<ResourceImpact>,
}

/// Estimates what a run will cost before it starts.
///
/// Fails with [`CostError::NoDriver`] when no driver is selected rather than inventing one,
/// so callers can never mistake a failure for a cheap run.
pub fn estimate(req: &CostEstimationRequest) -> Result<CostEstimate, CostError> {
    let driver = select_driver(req).ok_or(CostError::NoDriver)?;
    let priced = match driver {
        CostDriver::Local => price_local(req)?,
        CostDriver::Vastai => price_vastai(req)?,
        CostDriver::Azure => price_table(AZURE_NC6S_V3, None),
        CostDriver::Aws => price_aws(&req.model),
        CostDriver::Gcp => price_gcp(&req.model),
    };
    let hours = req.estimated_duration_seconds as f64 / 3600.0;
    let projected = finite("projected cost", priced.hourly_rate_usd * hours)?;
    let energy = finite("local energy", priced.energy_kw * hours)?;
    Ok(CostEstimate {
        projected_cost_usd: projected,
        cost_driver: driver,
        resource_impact: priced.impact.unwrap_or_else(|| ResourceImpact::from_cost(projected)),
        local_energy_kwh: energy,
        confidence_score: priced.confidence,
        warning: priced.warning,
        price_source: priced.price_source,
        hourly_rate_usd: finite("hourly rate", priced.hourly_rate_usd)?,
        duration_seconds: req.estimated_duration_seconds,
    })
}

fn finite(quantity: &'static str, value: f64) -> Result<f64, CostError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(CostError::NonFinite { quantity })
    }
}

fn non_negative(field: &'static str, value: f64) -> Result<f64, CostError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(CostError::InvalidInput { field, reason: format!("is {value}; expected a finite number >= 0") })
    }
}

/// Energy at the TDP plus straight-line amortisation over the lifespan (8760 h a year).
fn price_local(req: &CostEstimationRequest) -> Result<Priced, CostError> {
    let watts = non_negative("local_tdp_watts", req.local_tdp_watts)?;
    let rate = non_negative("local_energy_rate_kwh", req.local_energy_rate_kwh)?;
    let purchase = non_negative("local_hardware_purchase_price", req.local_hardware_purchase_price)?;
    let lifespan = non_negative("local_hardware_lifespan_years", req.local_hardware_lifespan_years)?;
    let amortisation_per_hour = if purchase == 0.0 {
        0.0
    } else if lifespan > 0.0 {
        purchase / (lifespan * 8760.0)
    } else {
        return Err(CostError::InvalidInput {
            field: "local_hardware_lifespan_years",
            reason: "must be above 0 when a purchase price is given".to_owned(),
        });
    };
    let kw = watts / 1000.0;
    let mut warnings =
        vec!["energy assumes the GPU draws its full TDP the whole time; real use is usually lower".to_owned()];
    if watts == 0.0 || rate == 0.0 {
        warnings.push(
            "local_tdp_watts or local_energy_rate_kwh is 0, so energy costs nothing here; give both for a real figure"
                .to_owned(),
        );
    }
    Ok(Priced {
        hourly_rate_usd: kw * rate + amortisation_per_hour,
        confidence: LOCAL_CONFIDENCE,
        warning: Some(warnings.join("; ")),
        price_source: "user-supplied: local_tdp_watts, local_energy_rate_kwh, local_hardware_purchase_price, \
                       local_hardware_lifespan_years"
            .to_owned(),
        energy_kw: kw,
        impact: Some(ResourceImpact::Medium),
    })
}

/// The user's bid range when given, else the typical marketplace rate.
fn price_vastai(req: &CostEstimationRequest) -> Result<Priced, CostError> {
    let min = non_negative("min_dph", req.min_dph)?;
    let max = non_negative("max_dph", req.max_dph)?;
    let (rate, confidence, price_source, warning) = match (min > 0.0, max > 0.0) {
        (true, true) => (
            (min + max) / 2.0,
            USER_RANGE_CONFIDENCE,
            format!("user-supplied Vast.ai bid range ${min}/h to ${max}/h (midpoint)"),
            None,
        ),
        (false, true) => {
            (max, USER_RANGE_CONFIDENCE, format!("user-supplied Vast.ai max_dph ${max}/h (upper bound)"), None)
        }
        (true, false) => (
            min,
            LOWER_BOUND_CONFIDENCE,
            format!("user-supplied Vast.ai min_dph ${min}/h (lower bound)"),
            Some("only min_dph was given, so the rental may cost more than this; give max_dph to bound it".to_owned()),
        ),
        (false, false) => {
            let source = VASTAI_FALLBACK_PRICES.source;
            (
                VASTAI_TYPICAL.usd_per_hour,
                ASSUMED_PRICE_CONFIDENCE,
                source.label(),
                Some(format!(
                    "no min_dph/max_dph given: assumed a typical ${:.2}/h from {} as of {}; give your bid range for a firm estimate",
                    VASTAI_TYPICAL.usd_per_hour, source.table, source.as_of
                )),
            )
        }
    };
    Ok(Priced { hourly_rate_usd: rate, confidence, warning, price_source, energy_kw: 0.0, impact: None })
}

/// A static cloud list price; `note` adds a driver-specific caveat to the warning.
fn price_table(price: GpuInstancePrice, note: Option<String>) -> Priced {
    let source = CLOUD_GPU_PRICES.source;
    let mut warning = format!(
        "{} {} at ${}/h is a static list price from {} as of {}, not a live quote; your price may differ",
        price.provider, price.instance, price.usd_per_hour, source.table, source.as_of
    );
    if let Some(note) = note {
        warning = format!("{note}; {warning}");
    }
    Priced {
        hourly_rate_usd: price.usd_per_hour,
        confidence: STATIC_TABLE_CONFIDENCE,
        warning: Some(warning),
        price_source: format!("{} ({} {})", source.label(), price.provider, price.instance),
        energy_kw: 0.0,
        impact: None,
    }
}

/// AWS-hosted models per token at [`AWS_ASSUMED_TOKENS_PER_HOUR`]; anything else as an
/// EC2 GPU instance chosen by the instance family the model field names.
fn price_aws(model: &str) -> Priced {
    let lower = model.to_lowercase();
    if AWS_TOKEN_MODEL_MARKERS.iter().any(|m| lower.contains(m)) {
        let (price, known) = LLM_TOKEN_PRICES.find_or_default(model);
        let hourly = price.cost(
            AWS_ASSUMED_TOKENS_PER_HOUR * AWS_ASSUMED_INPUT_SHARE,
            AWS_ASSUMED_TOKENS_PER_HOUR * (1.0 - AWS_ASSUMED_INPUT_SHARE),
        );
        let source = LLM_TOKEN_PRICES.source;
        let mut warning = format!(
            "priced per token assuming {} tokens per hour ({}% input); real throughput varies widely",
            AWS_ASSUMED_TOKENS_PER_HOUR,
            AWS_ASSUMED_INPUT_SHARE * 100.0
        );
        if !known {
            warning.push_str(&format!(
                "; `{model}` has no entry in {} as of {}, so the default ${}/${} per million tokens was assumed",
                source.table, source.as_of, price.input_usd_per_million, price.output_usd_per_million
            ));
        }
        return Priced {
            hourly_rate_usd: hourly,
            confidence: if known { ASSUMED_THROUGHPUT_CONFIDENCE } else { ASSUMED_PRICE_CONFIDENCE },
            warning: Some(warning),
            price_source: format!("{} ({})", source.label(), price.model),
            energy_kw: 0.0,
            impact: None,
        };
    }
    let family = |prefixes: &[&str]| prefixes.iter().any(|p| lower.starts_with(p));
    if family(&["p3", "p4", "p5"]) {
        let note = (!lower.starts_with("p4d")).then(|| format!("`{model}` is priced as a p4d.24xlarge"));
        price_table(AWS_P4D_24XLARGE, note)
    } else if family(&["g5", "g6"]) {
        let note = (!lower.starts_with("g5.xlarge")).then(|| format!("`{model}` is priced as a g5.xlarge"));
        price_table(AWS_G5_XLARGE, note)
    } else {
        price_table(AWS_G4DN_XLARGE, None)
    }
}

/// An A2 (A100) machine when the model field names one, else a T4.
fn price_gcp(model: &str) -> Priced {
    if model.to_lowercase().starts_with("a2-") {
        price_table(GCP_A2_HIGHGPU_1G, None)
    } else {
        price_table(GCP_T4, None)
    }
}

// ---------------------------------------------------------------------------------------
// Spend gate
// ---------------------------------------------------------------------------------------

/// What the gate is allowed to do, from the caller's environment and flags.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GatePolicy {
    /// Spend above which confirmation is needed, dollars.
    pub spend_threshold_usd: f64,
    /// The user accepted the spend up front (`--yes`).
    pub confirmed: bool,
    /// Running in CI: nobody can answer a prompt, so anything needing one is blocked.
    pub ci: bool,
}

impl Default for GatePolicy {
    fn default() -> Self {
        Self { spend_threshold_usd: DEFAULT_SPEND_THRESHOLD_USD, confirmed: false, ci: false }
    }
}

/// Whether a run may start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum GateDecision {
    /// Start the run.
    Proceed,
    /// Ask the user (interactive only); a "no" or no answer means do not start.
    NeedsConfirmation {
        /// Why, one sentence each, naming the numbers and the thresholds.
        reasons: Vec<String>,
    },
    /// Do not start: confirmation was needed and nobody can give it.
    Blocked {
        /// Why, one sentence each, ending with how to accept the spend.
        reasons: Vec<String>,
    },
}

impl GateDecision {
    /// Whether the run may start now.
    pub fn may_proceed(&self) -> bool {
        matches!(self, GateDecision::Proceed)
    }

    /// The reasons given, empty for [`GateDecision::Proceed`].
    pub fn reasons(&self) -> &[String] {
        match self {
            GateDecision::Proceed => &[],
            GateDecision::NeedsConfirmation { reasons } | GateDecision::Blocked { reasons } => reasons,
        }
    }
}

/// Formats dollars with cents, or with four decimals when cents would hide the amount.
fn usd(x: f64) -> String {
    if ((x * 100.0).round() - x * 100.0).abs() < 1e-9 {
        format!("${x:.2}")
    } else {
        format!("${x:.4}")
    }
}

/// Decides whether a run may start on this estimate: the fail-closed rule of the
/// `FailClosedEstimation` spec plus the original's spend threshold.
///
/// An estimate whose confidence is below [`CONFIDENCE_THRESHOLD`] (or is not a number) is
/// "halted": it never proceeds on its own, however cheap it looks. The only way past is an
/// explicit human confirmation, which plays the role of the spec's operator resume; in CI,
/// where nobody can confirm, it is blocked. The same applies to a projected cost above the
/// spend threshold. The gate is stateless: it judges each estimate afresh, so a later
/// high-confidence estimate is a new decision, not a resumption of an earlier one.
pub fn gate(estimate: &CostEstimate, policy: &GatePolicy) -> GateDecision {
    let mut reasons = Vec::new();
    let confidence = estimate.confidence_score;
    if confidence.is_nan() {
        reasons.push("the estimate's confidence is not a number, so it cannot be trusted".to_owned());
    } else if confidence < CONFIDENCE_THRESHOLD {
        reasons.push(format!(
            "the estimate's confidence is {confidence:.2}, below the {CONFIDENCE_THRESHOLD:.2} needed to start without confirmation (price source: {})",
            estimate.price_source
        ));
    }
    let cost = estimate.projected_cost_usd;
    let threshold = policy.spend_threshold_usd;
    if !cost.is_finite() {
        reasons.push(format!("the projected cost ({cost}) is not a finite number of dollars"));
    } else if !threshold.is_finite() {
        reasons.push(format!("the spend threshold ({threshold}) is not a finite number of dollars"));
    } else if cost > threshold {
        reasons.push(format!(
            "the projected cost {} is above the spend threshold {} (RUNE_SPEND_WARNING_THRESHOLD)",
            usd(cost),
            usd(threshold)
        ));
    }
    if reasons.is_empty() || policy.confirmed {
        GateDecision::Proceed
    } else if policy.ci {
        reasons.push("this is a CI run (CI is set), where RUNE never prompts: re-run with --yes to accept".to_owned());
        GateDecision::Blocked { reasons }
    } else {
        GateDecision::NeedsConfirmation { reasons }
    }
}

/// Whether the `CI` environment variable's value means "running in CI": `1`, `true` or
/// `yes`, any case, surrounding blanks ignored. Anything else, or unset, is interactive.
pub fn parse_ci_env(value: Option<&str>) -> bool {
    value.map(str::trim).is_some_and(|v| ["1", "true", "yes"].iter().any(|t| v.eq_ignore_ascii_case(t)))
}

/// Reads `RUNE_SPEND_WARNING_THRESHOLD`: unset or blank means the default; anything that
/// is not a finite amount >= 0 is an error rather than a silent default, because a typo
/// must not switch the gate off.
pub fn parse_spend_threshold(value: Option<&str>) -> Result<f64, CostError> {
    let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_SPEND_THRESHOLD_USD);
    };
    match text.trim_start_matches('$').parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(CostError::InvalidThreshold { value: text.to_owned() }),
    }
}

// ---------------------------------------------------------------------------------------
// Post-run cost
// ---------------------------------------------------------------------------------------

/// What a finished run actually used, as far as it was measured. Supply token counts only
/// for models billed per token (hosted APIs) and GPU or energy figures only for hardware
/// the run occupied; every supplied component is priced and added.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MeasuredUsage {
    /// Prompt tokens reported by the backend.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens reported by the backend.
    pub completion_tokens: Option<u64>,
    /// Model name as the backend knows it.
    pub model: Option<String>,
    /// Wall-clock run time, seconds.
    pub duration_seconds: Option<f64>,
    /// What the rented GPU cost, dollars per hour.
    pub gpu_hourly_usd: Option<f64>,
    /// Local hardware power draw, watts.
    pub local_power_watts: Option<f64>,
    /// Local energy price, dollars per kWh.
    pub energy_rate_kwh: Option<f64>,
}

/// One priced part of a run's cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostComponent {
    /// Dollars.
    pub usd: f64,
    /// How the figure was computed and which price (table and date) it used.
    pub basis: String,
}

/// What a finished run cost, by component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCost {
    /// Sum of the priced components; `None` when nothing could be priced, so an unknown
    /// cost is never shown as $0.
    pub total_usd: Option<f64>,
    /// Tokens × the model's price.
    pub tokens: Option<CostComponent>,
    /// GPU hours × the rental rate.
    pub gpu: Option<CostComponent>,
    /// Local energy × the energy rate.
    pub energy: Option<CostComponent>,
    /// Local energy used, kWh.
    pub local_energy_kwh: Option<f64>,
    /// Measurements that were present but could not be priced, and why.
    pub unpriced: Vec<String>,
}

/// Prices a finished run from what was measured.
pub fn run_cost(measured: &MeasuredUsage) -> RunCost {
    let mut unpriced = Vec::new();
    let hours = match measured.duration_seconds {
        Some(d) if d.is_finite() && d >= 0.0 => Some(d / 3600.0),
        Some(d) => {
            unpriced.push(format!("duration_seconds is {d}; GPU and energy cost need a finite duration >= 0"));
            None
        }
        None => None,
    };
    let tokens = token_component(measured, &mut unpriced);
    let gpu = gpu_component(measured.gpu_hourly_usd, hours, measured.duration_seconds.is_some(), &mut unpriced);
    let (energy, local_energy_kwh) = energy_component(measured, hours, &mut unpriced);
    let parts: Vec<f64> = [&tokens, &gpu, &energy].into_iter().flatten().map(|c| c.usd).collect();
    let total_usd = (!parts.is_empty()).then(|| parts.iter().sum());
    if total_usd.is_none() && unpriced.is_empty() {
        unpriced.push(
            "nothing to price: give token counts with a model, gpu_hourly_usd with duration_seconds, or \
             local_power_watts and energy_rate_kwh with duration_seconds"
                .to_owned(),
        );
    }
    RunCost { total_usd, tokens, gpu, energy, local_energy_kwh, unpriced }
}

fn token_component(m: &MeasuredUsage, unpriced: &mut Vec<String>) -> Option<CostComponent> {
    let has_tokens = m.prompt_tokens.is_some() || m.completion_tokens.is_some();
    let source = LLM_TOKEN_PRICES.source;
    match (m.model.as_deref(), has_tokens) {
        (_, false) => {
            if m.model.is_some() && m.gpu_hourly_usd.is_none() && m.local_power_watts.is_none() {
                unpriced.push("the backend reported no token counts, so tokens were not priced".to_owned());
            }
            None
        }
        (None, true) => {
            unpriced.push("token counts were given without a model name, so they were not priced".to_owned());
            None
        }
        (Some(model), true) => {
            let Some(price) = LLM_TOKEN_PRICES.find(model) else {
                unpriced.push(format!(
                    "`{model}` has no price in {} as of {}, so its tokens were not priced",
                    source.table, source.as_of
                ));
                return None;
            };
            let prompt = m.prompt_tokens.unwrap_or(0);
            let completion = m.completion_tokens.unwrap_or(0);
            let mut basis = format!(
                "{prompt} prompt tokens × ${}/M + {completion} completion tokens × ${}/M ({} from {})",
                price.input_usd_per_million,
                price.output_usd_per_million,
                price.model,
                source.label()
            );
            for (name, v) in [("prompt", m.prompt_tokens), ("completion", m.completion_tokens)] {
                if v.is_none() {
                    basis.push_str(&format!("; {name} tokens were not reported and count as 0"));
                }
            }
            Some(CostComponent { usd: price.cost(prompt as f64, completion as f64), basis })
        }
    }
}

fn gpu_component(
    rate: Option<f64>,
    hours: Option<f64>,
    duration_given: bool,
    unpriced: &mut Vec<String>,
) -> Option<CostComponent> {
    let rate = rate?;
    if !(rate.is_finite() && rate >= 0.0) {
        unpriced.push(format!("gpu_hourly_usd is {rate}; expected a finite number >= 0"));
        return None;
    }
    let Some(hours) = hours else {
        if !duration_given {
            unpriced.push("gpu_hourly_usd was given without duration_seconds, so GPU time was not priced".to_owned());
        }
        return None;
    };
    Some(CostComponent {
        usd: hours * rate,
        basis: format!("{:.4} GPU hours × ${rate}/h (the rate supplied for this run)", hours),
    })
}

fn energy_component(
    m: &MeasuredUsage,
    hours: Option<f64>,
    unpriced: &mut Vec<String>,
) -> (Option<CostComponent>, Option<f64>) {
    let (watts, rate) = match (m.local_power_watts, m.energy_rate_kwh) {
        (None, None) => return (None, None),
        (Some(w), Some(r)) => (w, r),
        (Some(_), None) => {
            unpriced.push("local_power_watts was given without energy_rate_kwh, so energy was not priced".to_owned());
            return (None, None);
        }
        (None, Some(_)) => {
            unpriced.push("energy_rate_kwh was given without local_power_watts, so energy was not priced".to_owned());
            return (None, None);
        }
    };
    for (name, v) in [("local_power_watts", watts), ("energy_rate_kwh", rate)] {
        if !(v.is_finite() && v >= 0.0) {
            unpriced.push(format!("{name} is {v}; expected a finite number >= 0"));
            return (None, None);
        }
    }
    let Some(hours) = hours else {
        if m.duration_seconds.is_none() {
            unpriced.push("local energy needs duration_seconds, so it was not priced".to_owned());
        }
        return (None, None);
    };
    let kwh = watts / 1000.0 * hours;
    let basis = format!("{watts} W × {hours:.4} h = {kwh:.4} kWh × ${rate}/kWh (rates supplied for this run)");
    (Some(CostComponent { usd: kwh * rate, basis }), Some(kwh))
}

// ---------------------------------------------------------------------------------------
// FinOps projection
// ---------------------------------------------------------------------------------------

/// GPU assumed by a projection when none is named (the original's default).
pub const DEFAULT_FINOPS_GPU: &str = "RTX 4090";
/// Longest accepted GPU name.
pub const MAX_GPU_LEN: usize = 64;
/// Most runs per period a projection accepts; beyond this the question is a typo.
pub const MAX_RUNS_PER_PERIOD: u64 = 1_000_000;
/// Longest projection period accepted, days (ten years).
pub const MAX_PERIOD_DAYS: u64 = 3_660;
/// Without history, the low/high band is this fraction/multiple of the point projection:
/// defaults are guesses, so the band is wide on purpose.
const NO_HISTORY_LOW_FACTOR: f64 = 0.5;
/// See [`NO_HISTORY_LOW_FACTOR`].
const NO_HISTORY_HIGH_FACTOR: f64 = 2.0;
/// History this large, with this many token samples, supports a `high` confidence.
const HIGH_CONFIDENCE_MIN_SAMPLES: usize = 5;
/// See [`HIGH_CONFIDENCE_MIN_SAMPLES`].
const HIGH_CONFIDENCE_MIN_TOKEN_SAMPLES: usize = 3;

/// What to project: which runs, on what hardware, how often. History is selected by the
/// caller (the store) using `agent`, `suite` and `model`; the projection uses them only to
/// pick prices and scope defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinOpsQuery {
    /// Agent whose runs are projected.
    pub agent: Option<String>,
    /// Model the agent uses; priced per token.
    pub model: Option<String>,
    /// GPU the model runs on; priced per hour.
    pub gpu: String,
    /// Suite whose runs are projected.
    pub suite: Option<String>,
    /// Runs per day (at least 1).
    pub runs_per_period: u64,
    /// Days projected (at least 1).
    pub period_days: u64,
}

impl Default for FinOpsQuery {
    fn default() -> Self {
        Self {
            agent: None,
            model: None,
            gpu: DEFAULT_FINOPS_GPU.to_owned(),
            suite: None,
            runs_per_period: 1,
            period_days: 1,
        }
    }
}

impl FinOpsQuery {
    /// Parses `/v1/finops/simulate` query parameters, reporting every bad or unknown
    /// parameter at once by name. Empty values mean "not given" (HTML forms send
    /// `agent=&suite=`).
    pub fn from_params(params: &BTreeMap<String, String>) -> Result<FinOpsQuery, ValidationErrors> {
        let object: Map<String, Value> = params
            .iter()
            .map(|(k, v)| {
                let v = v.trim();
                (k.clone(), if v.is_empty() { Value::Null } else { Value::String(v.to_owned()) })
            })
            .collect();
        let body = Value::Object(object);
        let mut r = FieldReader::new(&body, "");
        let agent = r.opt_string("agent", MAX_AGENT_LEN);
        let model = r.opt_string("model", MAX_MODEL_LEN);
        let gpu = r.opt_string("gpu", MAX_GPU_LEN).unwrap_or_else(|| DEFAULT_FINOPS_GPU.to_owned());
        let suite = r.opt_string("suite", MAX_SUITE_LEN);
        let runs_per_period = count_param(&mut r, "runs_per_period", MAX_RUNS_PER_PERIOD);
        let period_days = count_param(&mut r, "period_days", MAX_PERIOD_DAYS);
        r.finish()?;
        Ok(FinOpsQuery { agent, model, gpu, suite, runs_per_period, period_days })
    }
}

/// A whole number from 1 to `max` given as text; 1 when absent.
fn count_param(r: &mut FieldReader<'_>, name: &'static str, max: u64) -> u64 {
    let Some(text) = r.opt_string(name, 32) else { return 1 };
    match text.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => n,
        _ => {
            r.error(name, format!("`{text}` is not allowed; expected a whole number from 1 to {max}"));
            1
        }
    }
}

/// One past run used as evidence for a projection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HistorySample {
    /// How long the run took, seconds.
    pub duration_seconds: f64,
    /// Prompt tokens, when the backend reported them.
    pub input_tokens: Option<u64>,
    /// Completion tokens, when the backend reported them.
    pub output_tokens: Option<u64>,
}

/// Typical run shape of a catalog scope, used when there is no history to go on.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ScopeProfile {
    name: &'static str,
    duration_seconds: f64,
    input_tokens: u64,
    output_tokens: u64,
}

const SCOPE_PROFILES: [ScopeProfile; 6] = [
    ScopeProfile { name: "sre", duration_seconds: 300.0, input_tokens: 8192, output_tokens: 2048 },
    ScopeProfile { name: "research", duration_seconds: 600.0, input_tokens: 16384, output_tokens: 4096 },
    ScopeProfile { name: "cybersec", duration_seconds: 450.0, input_tokens: 12288, output_tokens: 2048 },
    ScopeProfile { name: "legal", duration_seconds: 200.0, input_tokens: 8192, output_tokens: 1024 },
    ScopeProfile { name: "ops", duration_seconds: 200.0, input_tokens: 8192, output_tokens: 1024 },
    ScopeProfile { name: "creative", duration_seconds: 120.0, input_tokens: 2048, output_tokens: 512 },
];

/// The scope named by the suite, else by the agent (a name token starting with the scope
/// keyword: `sre-basics`, `cybersecurity-agent`), else SRE, the original's generic default.
fn scope_for(query: &FinOpsQuery) -> ScopeProfile {
    let names = [query.suite.as_deref(), query.agent.as_deref()];
    names
        .into_iter()
        .flatten()
        .find_map(|name| {
            let tokens = name_tokens(name);
            SCOPE_PROFILES.into_iter().find(|p| tokens.iter().any(|t| t.starts_with(p.name)))
        })
        .unwrap_or(SCOPE_PROFILES[0])
}

/// How much a projection rests on evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectionConfidence {
    /// No history: scope defaults.
    Low,
    /// Some history, or little token evidence.
    Medium,
    /// At least five runs, at least three with token counts.
    High,
}

impl ProjectionConfidence {
    /// The numeric score reported beside the label.
    pub fn score(self) -> f64 {
        match self {
            ProjectionConfidence::Low => 0.4,
            ProjectionConfidence::Medium => 0.7,
            ProjectionConfidence::High => 0.9,
        }
    }
}

/// Per-run cost split the way users think about it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FinOpsComponents {
    /// GPU time, dollars per run.
    pub gpu_compute: f64,
    /// Model tokens, dollars per run.
    pub llm_tokens: f64,
}

/// A projected spend. Field names are the original's `/v1/finops/simulate` response,
/// including the compatibility keys its UI and operator read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinOpsProjection {
    /// One run, dollars.
    pub projected_cost_usd: f64,
    /// `projected_cost_usd` × runs × days.
    pub projected_total_usd: f64,
    /// Runs per day used.
    pub runs_per_period: u64,
    /// Days used.
    pub period_days: u64,
    /// One run at the shortest observed duration (or half the point estimate without history).
    pub cost_low_usd: f64,
    /// One run at the longest observed duration (or twice the point estimate without history).
    pub cost_high_usd: f64,
    /// How much evidence backs the figures.
    pub confidence: ProjectionConfidence,
    /// The same as a number.
    pub confidence_score: f64,
    /// Always `USD`.
    pub currency: String,
    /// Whether past runs were used.
    pub historical_basis: bool,
    /// Past runs used.
    pub historical_sample_count: usize,
    /// Past runs that reported token counts.
    pub token_samples_from_history: usize,
    /// Run length used, seconds.
    pub avg_duration_seconds: f64,
    /// Prompt tokens per run used.
    pub llm_input_tokens_assumed: u64,
    /// Completion tokens per run used.
    pub llm_output_tokens_assumed: u64,
    /// The GPU and token prices used, with their tables and dates.
    pub price_source: String,
    /// One run's cost by component.
    pub components_usd: FinOpsComponents,
    /// Scope whose defaults filled gaps in the evidence (`sre`, `research`, …).
    pub scope: String,
    /// Compatibility key for the original UI/operator: the same as `projected_total_usd`.
    pub total_cost_usd: f64,
    /// Compatibility key: GPU compute over the whole period.
    pub gpu_cost_usd: f64,
    /// Compatibility key: tokens over the whole period.
    pub token_cost_usd: f64,
    /// Compatibility key: the same as `historical_basis`.
    pub historical_match: bool,
}

/// Projects what an agent/suite/model will cost on a GPU over a period, from its past
/// runs when there are any, else from its scope's typical run.
///
/// `history` should hold the tenant's succeeded runs matching the query; samples with a
/// negative or non-finite duration are ignored. `runs_per_period` and `period_days` below
/// 1 count as 1.
pub fn simulate(query: &FinOpsQuery, history: &[HistorySample]) -> FinOpsProjection {
    let scope = scope_for(query);
    let valid: Vec<&HistorySample> =
        history.iter().filter(|s| s.duration_seconds.is_finite() && s.duration_seconds >= 0.0).collect();
    let n = valid.len();
    let mean_of = |values: Vec<u64>| -> Option<u64> {
        (!values.is_empty())
            .then(|| (values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64).round() as u64)
    };
    let inputs: Vec<u64> = valid.iter().filter_map(|s| s.input_tokens).collect();
    let outputs: Vec<u64> = valid.iter().filter_map(|s| s.output_tokens).collect();
    let token_samples = valid.iter().filter(|s| s.input_tokens.is_some() || s.output_tokens.is_some()).count();
    let input_tokens = mean_of(inputs).unwrap_or(scope.input_tokens);
    let output_tokens = mean_of(outputs).unwrap_or(scope.output_tokens);

    let (gpu_price, _) = GPU_CLASS_PRICES.find_or_default(&query.gpu);
    let (token_price, _) = LLM_TOKEN_PRICES.find_or_default(query.model.as_deref().unwrap_or(""));
    let gpu_cost = |seconds: f64| seconds / 3600.0 * gpu_price.usd_per_hour;
    let llm_tokens = token_price.cost(input_tokens as f64, output_tokens as f64);

    let (avg, confidence, low, high) = if n == 0 {
        let point = gpu_cost(scope.duration_seconds) + llm_tokens;
        (
            scope.duration_seconds,
            ProjectionConfidence::Low,
            point * NO_HISTORY_LOW_FACTOR,
            point * NO_HISTORY_HIGH_FACTOR,
        )
    } else {
        let durations = valid.iter().map(|s| s.duration_seconds);
        let avg = durations.clone().sum::<f64>() / n as f64;
        let min = durations.clone().fold(f64::INFINITY, f64::min);
        let max = durations.fold(0.0, f64::max);
        let confidence = if n >= HIGH_CONFIDENCE_MIN_SAMPLES && token_samples >= HIGH_CONFIDENCE_MIN_TOKEN_SAMPLES {
            ProjectionConfidence::High
        } else {
            ProjectionConfidence::Medium
        };
        (avg, confidence, gpu_cost(min) + llm_tokens, gpu_cost(max) + llm_tokens)
    };
    let gpu_compute = gpu_cost(avg);
    let projected = gpu_compute + llm_tokens;
    let runs_per_period = query.runs_per_period.max(1);
    let period_days = query.period_days.max(1);
    let multiplier = runs_per_period.saturating_mul(period_days) as f64;
    let price_source = format!(
        "gpu: {} → {} ${}/h from {}; tokens: {} ${}/${} per M from {}",
        query.gpu,
        gpu_price.gpu,
        gpu_price.usd_per_hour,
        GPU_CLASS_PRICES.source.label(),
        token_price.model,
        token_price.input_usd_per_million,
        token_price.output_usd_per_million,
        LLM_TOKEN_PRICES.source.label()
    );
    FinOpsProjection {
        projected_cost_usd: projected,
        projected_total_usd: projected * multiplier,
        runs_per_period,
        period_days,
        cost_low_usd: low,
        cost_high_usd: high,
        confidence,
        confidence_score: confidence.score(),
        currency: "USD".to_owned(),
        historical_basis: n > 0,
        historical_sample_count: n,
        token_samples_from_history: token_samples,
        avg_duration_seconds: avg,
        llm_input_tokens_assumed: input_tokens,
        llm_output_tokens_assumed: output_tokens,
        price_source,
        components_usd: FinOpsComponents { gpu_compute, llm_tokens },
        scope: scope.name.to_owned(),
        total_cost_usd: projected * multiplier,
        gpu_cost_usd: gpu_compute * multiplier,
        token_cost_usd: llm_tokens * multiplier,
        historical_match: n > 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn req() -> CostEstimationRequest {
        CostEstimationRequest {
            vastai: false,
            aws: false,
            gcp: false,
            azure: false,
            min_dph: 0.0,
            max_dph: 0.0,
            local_hardware: false,
            local_tdp_watts: 0.0,
            local_energy_rate_kwh: 0.0,
            local_hardware_purchase_price: 0.0,
            local_hardware_lifespan_years: 0.0,
            model: String::new(),
            estimated_duration_seconds: 3600,
        }
    }

    fn est(cost: f64, confidence: f64) -> CostEstimate {
        CostEstimate {
            projected_cost_usd: cost,
            cost_driver: CostDriver::Vastai,
            resource_impact: ResourceImpact::from_cost(cost),
            local_energy_kwh: 0.0,
            confidence_score: confidence,
            warning: None,
            price_source: "test".to_owned(),
            hourly_rate_usd: cost,
            duration_seconds: 3600,
        }
    }

    fn policy(confirmed: bool, ci: bool) -> GatePolicy {
        GatePolicy { spend_threshold_usd: 5.0, confirmed, ci }
    }

    /// Local: 450 W at $0.30/kWh for 2 h is 0.9 kWh = $0.27, plus $1752 over 2 years
    /// ($0.10/h) for 2 h = $0.20; total $0.47, impact medium, confidence 0.8.
    #[test]
    fn local_arithmetic() {
        let r = CostEstimationRequest {
            local_hardware: true,
            local_tdp_watts: 450.0,
            local_energy_rate_kwh: 0.30,
            local_hardware_purchase_price: 1752.0,
            local_hardware_lifespan_years: 2.0,
            estimated_duration_seconds: 7200,
            ..req()
        };
        let e = estimate(&r).unwrap();
        assert_eq!(e.cost_driver, CostDriver::Local);
        assert!(close(e.local_energy_kwh, 0.9));
        assert!(close(e.projected_cost_usd, 0.47), "{}", e.projected_cost_usd);
        assert!(close(e.hourly_rate_usd, 0.235));
        assert_eq!(e.resource_impact, ResourceImpact::Medium);
        assert_eq!(e.confidence_score, 0.8);
        assert_eq!(e.duration_seconds, 7200);
        assert!(e.price_source.starts_with("user-supplied"));
    }

    /// Local without a purchase price needs no lifespan (no 0/0), and a purchase price
    /// with a zero lifespan is an error naming the field, never NaN.
    #[test]
    fn local_amortisation_guards() {
        let r = CostEstimationRequest {
            local_hardware: true,
            local_tdp_watts: 1000.0,
            local_energy_rate_kwh: 0.2,
            ..req()
        };
        assert!(close(estimate(&r).unwrap().projected_cost_usd, 0.2));
        let bad = CostEstimationRequest { local_hardware_purchase_price: 1000.0, ..r };
        let err = estimate(&bad).unwrap_err();
        assert!(matches!(err, CostError::InvalidInput { field: "local_hardware_lifespan_years", .. }));
        let nan = CostEstimationRequest { local_tdp_watts: f64::NAN, ..bad };
        assert!(matches!(estimate(&nan).unwrap_err(), CostError::InvalidInput { field: "local_tdp_watts", .. }));
    }

    /// Vast.ai: the midpoint of $2–$3 for one hour is $2.50 at full confidence; only a
    /// max uses the max; no range uses the $2.50 fallback at lower confidence with a warning
    /// naming the table date.
    #[test]
    fn vastai_rates_and_fallback_confidence() {
        let r = CostEstimationRequest { vastai: true, min_dph: 2.0, max_dph: 3.0, ..req() };
        let e = estimate(&r).unwrap();
        assert_eq!((e.projected_cost_usd, e.confidence_score, e.warning.clone()), (2.5, 1.0, None));
        assert_eq!(e.resource_impact, ResourceImpact::Low);

        let only_max = estimate(&CostEstimationRequest { min_dph: 0.0, max_dph: 4.0, ..r.clone() }).unwrap();
        assert_eq!((only_max.hourly_rate_usd, only_max.confidence_score), (4.0, 1.0));

        let only_min = estimate(&CostEstimationRequest { min_dph: 1.5, max_dph: 0.0, ..r.clone() }).unwrap();
        assert_eq!(only_min.hourly_rate_usd, 1.5);
        assert!(only_min.confidence_score < CONFIDENCE_THRESHOLD);

        let fallback = estimate(&CostEstimationRequest { min_dph: 0.0, max_dph: 0.0, ..r }).unwrap();
        assert_eq!(fallback.hourly_rate_usd, 2.5);
        assert!(fallback.confidence_score < CONFIDENCE_THRESHOLD);
        assert!(fallback.warning.unwrap().contains("2026-05-01"));
        assert!(fallback.price_source.contains("vastai-typical-rate as of 2026-05-01"));
    }

    /// Impact is high above $20, medium above $5, low at or below $5 (boundaries exact).
    #[test]
    fn impact_thresholds() {
        let at = |hours: u64| {
            let r = CostEstimationRequest {
                vastai: true,
                min_dph: 5.0,
                max_dph: 5.0,
                estimated_duration_seconds: hours * 3600,
                ..req()
            };
            estimate(&r).unwrap().resource_impact
        };
        assert_eq!(at(1), ResourceImpact::Low); // $5 exactly
        assert_eq!(at(2), ResourceImpact::Medium); // $10
        assert_eq!(at(4), ResourceImpact::Medium); // $20 exactly
        assert_eq!(at(5), ResourceImpact::High); // $25
        assert_eq!(ResourceImpact::from_cost(20.01), ResourceImpact::High);
        assert_eq!(ResourceImpact::from_cost(5.01), ResourceImpact::Medium);
    }

    /// Azure prices an NC6s_v3 at $3.06/h from the dated table, below the gate's confidence.
    #[test]
    fn azure_static_price() {
        let e = estimate(&CostEstimationRequest { azure: true, estimated_duration_seconds: 7200, ..req() }).unwrap();
        assert_eq!(e.cost_driver, CostDriver::Azure);
        assert!(close(e.projected_cost_usd, 6.12));
        assert_eq!(e.resource_impact, ResourceImpact::Medium);
        assert_eq!(e.confidence_score, 0.8);
        assert!(e.price_source.contains("cloud-gpu-on-demand as of 2026-05-01"));
        assert!(e.warning.unwrap().contains("not a live quote"));
    }

    /// AWS EC2 picks the price by instance family: default g4dn.xlarge $0.526, p-family
    /// $12 (p3/p5 flagged as priced like p4d), g5/g6 $1.21.
    #[test]
    fn aws_ec2_families() {
        let rate =
            |model: &str| estimate(&CostEstimationRequest { aws: true, model: model.to_owned(), ..req() }).unwrap();
        assert_eq!(rate("").hourly_rate_usd, 0.526);
        assert_eq!(rate("mistral-7b").hourly_rate_usd, 0.526);
        assert_eq!(rate("p4d.24xlarge").hourly_rate_usd, 12.0);
        assert!(!rate("p4d.24xlarge").warning.unwrap().contains("priced as"));
        let p5 = rate("p5.48xlarge");
        assert_eq!(p5.hourly_rate_usd, 12.0);
        assert!(p5.warning.unwrap().contains("priced as a p4d.24xlarge"));
        assert_eq!(rate("g6.xlarge").hourly_rate_usd, 1.21);
        assert_eq!(rate("g5.xlarge").hourly_rate_usd, 1.21);
        assert!(rate("").confidence_score < CONFIDENCE_THRESHOLD);
    }

    /// AWS-hosted models are priced per token at 1M tokens/h split 80/20: Claude 3.5
    /// Sonnet is 0.8×$3 + 0.2×$15 = $5.40/h; Titan (no table entry) uses the default
    /// 0.8×$0.5 + 0.2×$1.5 = $0.70/h with a lower confidence.
    #[test]
    fn aws_token_pricing() {
        let e = estimate(&CostEstimationRequest {
            aws: true,
            model: "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0".to_owned(),
            estimated_duration_seconds: 7200,
            ..req()
        })
        .unwrap();
        assert!(close(e.hourly_rate_usd, 5.4), "{}", e.hourly_rate_usd);
        assert!(close(e.projected_cost_usd, 10.8));
        assert_eq!(e.resource_impact, ResourceImpact::Medium);
        assert!(e.warning.unwrap().contains("1000000 tokens per hour"));
        let titan =
            estimate(&CostEstimationRequest { aws: true, model: "aws/titan-text".to_owned(), ..req() }).unwrap();
        assert!(close(titan.hourly_rate_usd, 0.7));
        assert!(titan.confidence_score < e.confidence_score);
        let llama = estimate(&CostEstimationRequest { aws: true, model: "llama3.1:70b".to_owned(), ..req() }).unwrap();
        assert!(close(llama.hourly_rate_usd, 0.8 * 0.6 + 0.2 * 0.8));
    }

    /// GCP: a T4 at $0.70/h, or an A2 at $3.67/h when the model field names an a2- machine.
    #[test]
    fn gcp_prices() {
        let g = |model: &str| estimate(&CostEstimationRequest { gcp: true, model: model.to_owned(), ..req() }).unwrap();
        assert_eq!(g("").projected_cost_usd, 0.70);
        assert_eq!(g("a2-highgpu-1g").projected_cost_usd, 3.67);
        assert_eq!(g("").cost_driver, CostDriver::Gcp);
    }

    /// The first selected driver wins in the order local → vastai → azure → aws → gcp.
    #[test]
    fn driver_precedence() {
        let all = CostEstimationRequest {
            local_hardware: true,
            vastai: true,
            azure: true,
            aws: true,
            gcp: true,
            min_dph: 1.0,
            max_dph: 1.0,
            ..req()
        };
        assert_eq!(estimate(&all).unwrap().cost_driver, CostDriver::Local);
        let r = CostEstimationRequest { local_hardware: false, ..all };
        assert_eq!(estimate(&r).unwrap().cost_driver, CostDriver::Vastai);
        let r = CostEstimationRequest { vastai: false, ..r };
        assert_eq!(estimate(&r).unwrap().cost_driver, CostDriver::Azure);
        let r = CostEstimationRequest { azure: false, ..r };
        assert_eq!(estimate(&r).unwrap().cost_driver, CostDriver::Aws);
        let r = CostEstimationRequest { aws: false, ..r };
        assert_eq!(estimate(&r).unwrap().cost_driver, CostDriver::Gcp);
    }

    /// No driver is an error whose message lists the flags to set, never a response.
    #[test]
    fn no_driver_fails_closed() {
        let err = estimate(&req()).unwrap_err();
        assert_eq!(err, CostError::NoDriver);
        assert_eq!(err.to_string(), "no cost driver selected: set one of local_hardware, vastai, aws, gcp, azure");
        assert_eq!(select_driver(&req()), None);
    }

    /// The JSON keeps the original response's field names and spellings.
    #[test]
    fn estimate_json_field_names() {
        let e = estimate(&CostEstimationRequest { vastai: true, min_dph: 2.0, max_dph: 3.0, ..req() }).unwrap();
        let v = serde_json::to_value(&e).unwrap();
        for key in
            ["projected_cost_usd", "cost_driver", "resource_impact", "local_energy_kwh", "confidence_score", "warning"]
        {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["cost_driver"], "vastai");
        assert_eq!(v["resource_impact"], "low");
        assert!(v["warning"].is_null());
        assert_eq!(serde_json::from_value::<CostEstimate>(v).unwrap(), e);
        let local = serde_json::to_value(CostDriver::Local).unwrap();
        assert_eq!(local, "local");
    }

    /// Confident and cheap proceeds; each failing condition asks interactively, is blocked
    /// in CI, and proceeds once confirmed; reasons name the numbers and the thresholds.
    #[test]
    fn gate_combinations() {
        assert_eq!(gate(&est(5.0, 1.0), &policy(false, false)), GateDecision::Proceed);
        assert_eq!(gate(&est(5.0, 0.95), &policy(false, true)), GateDecision::Proceed);

        let low = est(1.0, 0.8);
        let over = est(7.5, 1.0);
        let both = est(7.5, 0.5);
        for e in [&low, &over, &both] {
            assert!(matches!(gate(e, &policy(false, false)), GateDecision::NeedsConfirmation { .. }));
            assert!(matches!(gate(e, &policy(false, true)), GateDecision::Blocked { .. }));
            assert_eq!(gate(e, &policy(true, false)), GateDecision::Proceed);
            assert_eq!(gate(e, &policy(true, true)), GateDecision::Proceed);
        }
        let d = gate(&low, &policy(false, false));
        assert_eq!(d.reasons().len(), 1);
        assert!(d.reasons()[0].contains("0.80") && d.reasons()[0].contains("0.95"), "{:?}", d.reasons());
        let d = gate(&over, &policy(false, false));
        assert!(d.reasons()[0].contains("$7.50") && d.reasons()[0].contains("$5.00"), "{:?}", d.reasons());
        assert_eq!(gate(&both, &policy(false, false)).reasons().len(), 2);
        let blocked = gate(&both, &policy(false, true));
        assert!(blocked.reasons().last().unwrap().contains("--yes"));
        assert!(!blocked.may_proceed());
        // A cost a fraction of a cent over the threshold is shown so the difference is visible.
        let d = gate(&est(5.004, 1.0), &policy(false, false));
        assert!(d.reasons()[0].contains("$5.0040"), "{:?}", d.reasons());
    }

    /// NaN confidence, NaN cost or a NaN threshold never proceed without confirmation.
    #[test]
    fn gate_non_finite_fails_closed() {
        for e in [est(1.0, f64::NAN), est(f64::NAN, 1.0), est(f64::INFINITY, 1.0)] {
            assert!(!gate(&e, &policy(false, false)).may_proceed());
        }
        let nan_threshold = GatePolicy { spend_threshold_usd: f64::NAN, ..GatePolicy::default() };
        assert!(!gate(&est(0.0, 1.0), &nan_threshold).may_proceed());
    }

    /// Every static cloud estimate needs confirmation under the default policy.
    #[test]
    fn static_prices_need_confirmation() {
        for r in [
            CostEstimationRequest { azure: true, ..req() },
            CostEstimationRequest { aws: true, ..req() },
            CostEstimationRequest { gcp: true, ..req() },
            CostEstimationRequest { vastai: true, ..req() },
        ] {
            let e = estimate(&r).unwrap();
            assert!(matches!(gate(&e, &GatePolicy::default()), GateDecision::NeedsConfirmation { .. }), "{r:?}");
        }
    }

    proptest! {
        /// FailClosedInvariant: an estimate below 0.95 confidence never proceeds unless
        /// the user confirmed, whatever its cost, the threshold or the CI setting.
        #[test]
        fn low_confidence_never_proceeds_unconfirmed(
            confidence in 0.0f64..CONFIDENCE_THRESHOLD,
            cost in -1.0e6f64..1.0e6,
            threshold in -1.0e6f64..1.0e6,
            ci in any::<bool>(),
        ) {
            let p = GatePolicy { spend_threshold_usd: threshold, confirmed: false, ci };
            let d = gate(&est(cost, confidence), &p);
            prop_assert!(!d.may_proceed());
            prop_assert_eq!(matches!(d, GateDecision::Blocked { .. }), ci);
            prop_assert!(!d.reasons().is_empty());
        }

        /// A confident estimate within the threshold always proceeds; confirmation always
        /// proceeds.
        #[test]
        fn safe_or_confirmed_proceeds(
            confidence in CONFIDENCE_THRESHOLD..=1.0f64,
            cost in 0.0f64..100.0,
            ci in any::<bool>(),
            any_confidence in 0.0f64..=1.0,
        ) {
            let p = GatePolicy { spend_threshold_usd: 100.0, confirmed: false, ci };
            prop_assert_eq!(gate(&est(cost, confidence), &p), GateDecision::Proceed);
            let confirmed = GatePolicy { spend_threshold_usd: 0.0, confirmed: true, ci };
            prop_assert_eq!(gate(&est(cost + 1.0, any_confidence), &confirmed), GateDecision::Proceed);
        }
    }

    /// CI is on for 1/true/yes in any case, off for anything else or unset.
    #[test]
    fn ci_env_parsing() {
        for v in ["1", "true", "TRUE", "Yes", " yes "] {
            assert!(parse_ci_env(Some(v)), "{v}");
        }
        for v in ["", "0", "false", "no", "y", "on"] {
            assert!(!parse_ci_env(Some(v)), "{v}");
        }
        assert!(!parse_ci_env(None));
    }

    /// The spend threshold defaults to $5.00 and rejects text that is not an amount.
    #[test]
    fn spend_threshold_parsing() {
        assert_eq!(parse_spend_threshold(None), Ok(5.0));
        assert_eq!(parse_spend_threshold(Some(" ")), Ok(5.0));
        assert_eq!(parse_spend_threshold(Some("12.5")), Ok(12.5));
        assert_eq!(parse_spend_threshold(Some("$3")), Ok(3.0));
        for bad in ["five", "-1", "NaN", "inf"] {
            let err = parse_spend_threshold(Some(bad)).unwrap_err();
            assert!(err.to_string().contains("RUNE_SPEND_WARNING_THRESHOLD"), "{bad}");
        }
    }

    /// Token prices match user spellings by normalised tokens, prefer the most specific
    /// entry, and do not match a different size.
    #[test]
    fn model_name_matching() {
        let find = |m: &str| LLM_TOKEN_PRICES.find(m).map(|p| p.model);
        assert_eq!(find("llama3.1:8b"), Some("llama-3.1-8b"));
        assert_eq!(find("meta-llama/Llama-3.1-8B-Instruct"), Some("llama-3.1-8b"));
        assert_eq!(find("llama3.1:70b-instruct-q4_K_M"), Some("llama-3.1-70b"));
        assert_eq!(find("llama3.1:80b"), None);
        assert_eq!(find("llama3:8b"), None);
        assert_eq!(find("gpt-4o-mini-2024-07-18"), Some("gpt-4o-mini"));
        assert_eq!(find("gpt-4o"), Some("gpt-4o"));
        assert_eq!(find("gpt-4"), None);
        assert_eq!(find("claude-3.5-sonnet"), Some("claude-3-5-sonnet"));
        assert_eq!(LLM_TOKEN_PRICES.find_or_default("mystery").0.model, "default");
        let gpu = |g: &str| GPU_CLASS_PRICES.find_or_default(g).0.usd_per_hour;
        assert_eq!(gpu("RTX 4090"), 0.40);
        assert_eq!(gpu("NVIDIA A100-80GB"), 3.67);
        assert_eq!(gpu("Tesla T4"), 0.52);
        assert_eq!(gpu("L40S"), 1.2);
        assert_eq!(gpu("A10G"), 0.50);
    }

    /// Post-run cost adds every measured component: 1M prompt + 0.5M completion tokens of
    /// llama3.1:8b = $0.10 + $0.10; 30 min at $2/h = $1.00; 300 W for 30 min = 0.15 kWh ×
    /// $0.20 = $0.03; total $1.23, each with its basis.
    #[test]
    fn run_cost_components() {
        let c = run_cost(&MeasuredUsage {
            prompt_tokens: Some(1_000_000),
            completion_tokens: Some(500_000),
            model: Some("llama3.1:8b".to_owned()),
            duration_seconds: Some(1800.0),
            gpu_hourly_usd: Some(2.0),
            local_power_watts: Some(300.0),
            energy_rate_kwh: Some(0.2),
        });
        let tokens = c.tokens.as_ref().unwrap();
        assert!(close(tokens.usd, 0.2));
        assert!(tokens.basis.contains("llama-3.1-8b") && tokens.basis.contains("2026-05-01"));
        assert!(close(c.gpu.as_ref().unwrap().usd, 1.0));
        assert!(close(c.energy.as_ref().unwrap().usd, 0.03));
        assert!(close(c.local_energy_kwh.unwrap(), 0.15));
        assert!(close(c.total_usd.unwrap(), 1.23));
        assert!(c.unpriced.is_empty(), "{:?}", c.unpriced);
    }

    /// An unknown model's tokens are not priced with a guess; a run with nothing priceable
    /// has no total (unknown, not $0) and says what to supply.
    #[test]
    fn run_cost_unknown_is_not_zero() {
        let c = run_cost(&MeasuredUsage {
            prompt_tokens: Some(100),
            model: Some("mystery-model".to_owned()),
            ..MeasuredUsage::default()
        });
        assert_eq!(c.total_usd, None);
        assert!(c.unpriced[0].contains("mystery-model"));
        let empty = run_cost(&MeasuredUsage::default());
        assert_eq!(empty.total_usd, None);
        assert!(empty.unpriced[0].contains("nothing to price"));
        let no_duration = run_cost(&MeasuredUsage { gpu_hourly_usd: Some(1.0), ..MeasuredUsage::default() });
        assert_eq!(no_duration.total_usd, None);
        assert!(no_duration.unpriced[0].contains("duration_seconds"));
        let bad = run_cost(&MeasuredUsage {
            gpu_hourly_usd: Some(f64::NAN),
            duration_seconds: Some(60.0),
            ..MeasuredUsage::default()
        });
        assert_eq!(bad.total_usd, None);
        let partial = run_cost(&MeasuredUsage {
            completion_tokens: Some(1_000_000),
            model: Some("gpt-4o".to_owned()),
            ..MeasuredUsage::default()
        });
        assert!(close(partial.total_usd.unwrap(), 10.0));
        assert!(partial.tokens.unwrap().basis.contains("prompt tokens were not reported"));
    }

    /// Without history the SRE defaults apply (300 s on an RTX 4090 at $0.40/h = $0.0333…,
    /// 8192/2048 tokens at the $0.50/$1.50 default = $0.007168) at low confidence, and the
    /// total multiplies by runs × days.
    #[test]
    fn simulate_without_history() {
        let q = FinOpsQuery { runs_per_period: 3, period_days: 7, ..FinOpsQuery::default() };
        let p = simulate(&q, &[]);
        let gpu = 300.0 / 3600.0 * 0.40;
        let tokens = 8192.0 * 0.5 / 1e6 + 2048.0 * 1.5 / 1e6;
        assert!(close(p.components_usd.gpu_compute, gpu));
        assert!(close(p.components_usd.llm_tokens, tokens));
        assert!(close(p.projected_cost_usd, gpu + tokens));
        assert!(close(p.projected_total_usd, (gpu + tokens) * 21.0));
        assert!(close(p.total_cost_usd, p.projected_total_usd));
        assert!(close(p.gpu_cost_usd + p.token_cost_usd, p.total_cost_usd));
        assert!(close(p.cost_low_usd, p.projected_cost_usd * 0.5));
        assert!(close(p.cost_high_usd, p.projected_cost_usd * 2.0));
        assert_eq!((p.confidence, p.confidence_score), (ProjectionConfidence::Low, 0.4));
        assert!(!p.historical_basis && !p.historical_match);
        assert_eq!((p.historical_sample_count, p.token_samples_from_history), (0, 0));
        assert_eq!((p.llm_input_tokens_assumed, p.llm_output_tokens_assumed), (8192, 2048));
        assert_eq!(p.scope, "sre");
        assert_eq!(p.currency, "USD");
        assert!(p.price_source.contains("gpu-class-hourly as of 2026-05-01"));
    }

    /// Scope keywords in the suite (then the agent) pick the defaults: a research suite on
    /// an A100 with gpt-4o is 600 s × $3.67/h + 16384 × $2.5/M + 4096 × $10/M.
    #[test]
    fn simulate_scope_defaults() {
        let q = FinOpsQuery {
            suite: Some("research-deep".to_owned()),
            agent: Some("creative-writer".to_owned()),
            model: Some("gpt-4o".to_owned()),
            gpu: "A100".to_owned(),
            ..FinOpsQuery::default()
        };
        let p = simulate(&q, &[]);
        assert_eq!(p.scope, "research");
        assert!(close(p.projected_cost_usd, 600.0 / 3600.0 * 3.67 + 0.04096 + 0.04096));
        let by_agent = simulate(&FinOpsQuery { suite: None, ..q.clone() }, &[]);
        assert_eq!((by_agent.scope.as_str(), by_agent.avg_duration_seconds), ("creative", 120.0));
        let sec =
            simulate(&FinOpsQuery { agent: Some("cybersecurity-agent".to_owned()), ..FinOpsQuery::default() }, &[]);
        assert_eq!(sec.scope, "cybersec");
        let devops = simulate(&FinOpsQuery { agent: Some("devops".to_owned()), ..FinOpsQuery::default() }, &[]);
        assert_eq!(devops.scope, "sre");
    }

    fn samples(durations: &[f64], with_tokens: usize) -> Vec<HistorySample> {
        durations
            .iter()
            .enumerate()
            .map(|(i, &d)| HistorySample {
                duration_seconds: d,
                input_tokens: (i < with_tokens).then_some(1000),
                output_tokens: (i < with_tokens).then_some(200),
            })
            .collect()
    }

    /// With five runs (three with tokens) on an H100 ($12/h) and llama3.1:70b: mean 300 s
    /// = $1.00 + 1000 × $0.6/M + 200 × $0.8/M = $0.00076; low/high use 100 s and 500 s;
    /// confidence high.
    #[test]
    fn simulate_with_history_high() {
        let q =
            FinOpsQuery { gpu: "H100".to_owned(), model: Some("llama3.1:70b".to_owned()), ..FinOpsQuery::default() };
        let p = simulate(&q, &samples(&[100.0, 200.0, 300.0, 400.0, 500.0], 3));
        assert_eq!((p.confidence, p.confidence_score), (ProjectionConfidence::High, 0.9));
        assert!(p.historical_basis);
        assert_eq!((p.historical_sample_count, p.token_samples_from_history), (5, 3));
        assert_eq!((p.llm_input_tokens_assumed, p.llm_output_tokens_assumed), (1000, 200));
        assert!(close(p.avg_duration_seconds, 300.0));
        assert!(close(p.projected_cost_usd, 1.00076));
        assert!(close(p.cost_low_usd, 100.0 / 3600.0 * 12.0 + 0.00076));
        assert!(close(p.cost_high_usd, 500.0 / 3600.0 * 12.0 + 0.00076));
    }

    /// Fewer than five runs, or fewer than three with tokens, is medium confidence; token
    /// gaps fall back to the scope defaults; bad durations are ignored.
    #[test]
    fn simulate_with_history_medium() {
        let q = FinOpsQuery::default();
        let four = simulate(&q, &samples(&[10.0, 20.0, 30.0, 40.0], 4));
        assert_eq!(four.confidence, ProjectionConfidence::Medium);
        assert_eq!(four.confidence_score, 0.7);
        let few_tokens = simulate(&q, &samples(&[10.0, 20.0, 30.0, 40.0, 50.0], 2));
        assert_eq!(few_tokens.confidence, ProjectionConfidence::Medium);
        let no_tokens = simulate(&q, &samples(&[60.0, f64::NAN, -5.0], 0));
        assert_eq!(no_tokens.historical_sample_count, 1);
        assert_eq!((no_tokens.llm_input_tokens_assumed, no_tokens.llm_output_tokens_assumed), (8192, 2048));
        assert!(close(no_tokens.cost_low_usd, no_tokens.cost_high_usd));
    }

    /// Runs and days below 1 count as 1, so a projection is never silently zero.
    #[test]
    fn simulate_clamps_multipliers() {
        let p = simulate(&FinOpsQuery { runs_per_period: 0, period_days: 0, ..FinOpsQuery::default() }, &[]);
        assert_eq!((p.runs_per_period, p.period_days), (1, 1));
        assert!(close(p.projected_total_usd, p.projected_cost_usd));
    }

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Query parameters parse with defaults; empty values count as absent.
    #[test]
    fn from_params_defaults() {
        let q = FinOpsQuery::from_params(&params(&[("agent", ""), ("suite", ""), ("model", "gpt-4o")])).unwrap();
        assert_eq!(q, FinOpsQuery { model: Some("gpt-4o".to_owned()), ..FinOpsQuery::default() });
        let q = FinOpsQuery::from_params(&params(&[("runs_per_period", "24"), ("period_days", "30"), ("gpu", "H100")]))
            .unwrap();
        assert_eq!((q.runs_per_period, q.period_days, q.gpu.as_str()), (24, 30, "H100"));
    }

    /// Zero, negative, fractional, non-numeric and too-large counts, over-long names and
    /// unknown parameters are all reported at once, each naming its field.
    #[test]
    fn from_params_rejects_bad_values() {
        let field_of = |pairs: &[(&str, &str)]| -> Vec<String> {
            FinOpsQuery::from_params(&params(pairs)).unwrap_err().fields().iter().map(|e| e.field.clone()).collect()
        };
        assert_eq!(field_of(&[("runs_per_period", "0")]), ["runs_per_period"]);
        assert_eq!(field_of(&[("runs_per_period", "abc")]), ["runs_per_period"]);
        assert_eq!(field_of(&[("period_days", "-1")]), ["period_days"]);
        assert_eq!(field_of(&[("period_days", "1.5")]), ["period_days"]);
        assert_eq!(field_of(&[("period_days", "3661")]), ["period_days"]);
        assert_eq!(field_of(&[("agent", &"a".repeat(65))]), ["agent"]);
        assert_eq!(field_of(&[("gpus", "A100")]), ["gpus"]);
        let all = field_of(&[("runs_per_period", "0"), ("period_days", "x"), ("bogus", "1")]);
        assert_eq!(all, ["runs_per_period", "period_days", "bogus"]);
        let err = FinOpsQuery::from_params(&params(&[("runs_per_period", "abc")])).unwrap_err();
        assert!(err.to_string().contains("`abc`") && err.to_string().contains("from 1 to 1000000"), "{err}");
    }
}
