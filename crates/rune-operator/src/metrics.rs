//! Prometheus metrics of the operator, served on `/metrics` (default :8080).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The operator's metrics; one instance per process, shared by the controllers.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Reconciles by outcome (`started`, `followed`, `idle`, `suspended`, `skipped`,
    /// `gated`, `invalid_schedule`, `error`).
    pub reconcile_total: Family<Vec<(String, String)>, Counter>,
    /// Submission to completion of finished runs, seconds.
    pub run_duration_seconds: Histogram,
    /// Benchmarks with a schedule that are not suspended.
    pub active_schedules: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconcile_total = Family::<Vec<(String, String)>, Counter>::default();
        let run_duration_seconds =
            Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0]);
        let active_schedules = Gauge::default();
        registry.register("rune_operator_reconcile", "Reconciles by result", reconcile_total.clone());
        registry.register(
            "rune_operator_run_duration_seconds",
            "Benchmark run duration, submission to completion",
            run_duration_seconds.clone(),
        );
        registry.register(
            "rune_operator_active_schedules",
            "RuneBenchmarks with a schedule that are not suspended",
            active_schedules.clone(),
        );
        Self { registry, reconcile_total, run_duration_seconds, active_schedules }
    }

    /// Counts one reconcile with `result`.
    pub fn reconciled(&self, result: &str) {
        self.reconcile_total.get_or_create(&vec![("result".to_owned(), result.to_owned())]).inc();
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
