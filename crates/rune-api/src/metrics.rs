//! Prometheus metrics: request counts and latencies by route, job outcomes and
//! durations, and (refreshed at scrape time) jobs by kind and status, queue depth and
//! worker utilisation.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rune_core::{JobKind, JobStatus};
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// Every metric the server exports.
pub struct Metrics {
    /// The registry; a `std` mutex because encoding is synchronous and short.
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    jobs_finished: Family<JobLabels, Counter>,
    job_duration: Family<KindLabels, Histogram>,
    jobs: Family<JobLabels, Gauge>,
    queue_depth: Gauge,
    workers_busy: Gauge,
    workers_total: Gauge,
    estop_active: Gauge,
    /// Job counts by kind and status, recomputed at most every [`COUNTS_TTL`]: counting
    /// a large job table on every scrape (and every System page view) would make both
    /// cost as much as a table scan.
    counts: tokio::sync::Mutex<Option<(std::time::Instant, rune_store::JobCounts)>>,
}

/// How stale the job-count gauges may be; well under a Prometheus scrape interval.
pub const COUNTS_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `rune_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rune");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let jobs_finished = Family::<JobLabels, Counter>::default();
        let job_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 20))
        });
        let jobs = Family::<JobLabels, Gauge>::default();
        let (queue_depth, workers_busy, workers_total, estop_active) =
            (Gauge::default(), Gauge::default(), Gauge::default(), Gauge::default());
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register(
            "jobs_finished",
            "Jobs finished by this process, by kind and final status",
            jobs_finished.clone(),
        );
        registry.register("job_duration_seconds", "Run time of finished jobs by kind", job_duration.clone());
        registry.register("jobs", "Jobs in the database by kind and status", jobs.clone());
        registry.register("queue_depth", "Jobs waiting for a worker", queue_depth.clone());
        registry.register("workers_busy", "Workers of this process running a job", workers_busy.clone());
        registry.register("workers", "Workers of this process", workers_total.clone());
        registry.register("estop_active", "1 while the emergency stop is engaged", estop_active.clone());
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            jobs_finished,
            job_duration,
            jobs,
            queue_depth,
            workers_busy,
            workers_total,
            estop_active,
            counts: tokio::sync::Mutex::new(None),
        }
    }

    /// Job counts for the gauges, from the store at most every [`COUNTS_TTL`]. Concurrent
    /// scrapes wait for one count rather than each scanning the table.
    pub async fn job_counts(&self, store: &dyn rune_store::Store) -> rune_store::Result<rune_store::JobCounts> {
        let mut cached = self.counts.lock().await;
        if let Some((at, counts)) = cached.as_ref() {
            if at.elapsed() < COUNTS_TTL {
                return Ok(counts.clone());
            }
        }
        let counts = store.count_jobs(None).await?;
        *cached = Some((std::time::Instant::now(), counts.clone()));
        Ok(counts)
    }

    /// Counts one answered request (`route` is the matched pattern, not the raw path, so
    /// ids do not explode the label space).
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests.get_or_create(&RequestLabels { route: route.into(), method: method.into(), status }).inc();
        self.latency.get_or_create(&RouteLabels { route: route.into() }).observe(seconds);
    }

    /// Counts one finished job.
    pub fn job_finished(&self, kind: JobKind, status: JobStatus, seconds: f64) {
        self.jobs_finished
            .get_or_create(&JobLabels { kind: kind.as_str().into(), status: status.as_str().into() })
            .inc();
        self.job_duration.get_or_create(&KindLabels { kind: kind.as_str().into() }).observe(seconds);
    }

    /// Renders the text exposition after refreshing the scrape-time gauges.
    pub fn render(&self, counts: &rune_store::JobCounts, busy: usize, total: usize, estop: bool) -> String {
        self.jobs.clear();
        for (kind, statuses) in &counts.by_kind_status {
            for (status, n) in statuses {
                self.jobs.get_or_create(&JobLabels { kind: kind.clone(), status: status.clone() }).set(*n as i64);
            }
        }
        self.queue_depth.set(counts.by_status.get("queued").copied().unwrap_or(0) as i64);
        self.workers_busy.set(busy as i64);
        self.workers_total.set(total as i64);
        self.estop_active.set(i64::from(estop));
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }
}
