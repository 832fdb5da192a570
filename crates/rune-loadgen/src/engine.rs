//! Running one step: a fixed pool of worker tasks (the concurrency, or the open loop's
//! in-flight cap). Each worker owns its parser, gap buffer and a small [`Batch`] of
//! finished requests; workers share the pooled HTTP client, one atomic "next session"
//! counter, the progress counters and a few recorder shards.
//!
//! Why shards and batches rather than one recorder per worker: a recorder is six HDR
//! histograms (~1 MB once they span seconds in nanoseconds), so 1000 workers would need a
//! gigabyte. A worker instead flushes its batch into one of [`shard_count`] recorders every
//! [`FLUSH_REQUESTS`] requests: one short lock per batch, never per token, and memory that
//! does not grow with the concurrency.

use crate::client::{exchange, HttpClient};
use crate::metrics::{Outcome, Recorder, RequestRecord};
use crate::shape::{Bound, StepShape};
use crate::sse::{Framing, StreamParser};
use crate::workload::{BodyBuilder, Workload};
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Live counters for a progress display; written with relaxed atomics by workers.
#[derive(Debug, Default)]
pub struct Progress {
    /// Requests sent.
    pub sent: AtomicU64,
    /// Requests finished (any outcome).
    pub done: AtomicU64,
    /// Requests that failed.
    pub failed: AtomicU64,
    /// Sessions planned for the current step (0 = bounded by time).
    pub planned: AtomicU64,
    /// Current step, 1-based.
    pub step: AtomicU64,
}

/// Everything a step needs that does not change between steps.
#[derive(Debug)]
pub struct Plan {
    /// The pooled client.
    pub client: HttpClient,
    /// The generation endpoint.
    pub uri: http::Uri,
    /// Stream framing.
    pub framing: Framing,
    /// Prompts.
    pub workload: Workload,
    /// First-turn bodies, rendered once (session `i` uses `bodies[i % len]`).
    pub bodies: Vec<Bytes>,
    /// Renders later turns.
    pub builder: BodyBuilder,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// One step of a run.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// Load shape.
    pub shape: StepShape,
    /// Bound.
    pub bound: Bound,
    /// Sessions at the start left out of the metrics.
    pub warmup: u64,
    /// Sessions at the end (request bound) left out.
    pub cooldown: u64,
    /// Time at the end (duration bound) whose sessions are left out.
    pub cooldown_time: Duration,
}

/// Runs one step and returns every worker's measurements merged. Stops early (keeping
/// what was measured) when `cancel` fires.
pub async fn run_step(
    plan: &Arc<Plan>,
    spec: &StepSpec,
    progress: &Arc<Progress>,
    cancel: &CancellationToken,
) -> Recorder {
    let workers = match &spec.shape {
        StepShape::Closed { concurrency } => *concurrency,
        StepShape::Open { max_concurrency, offsets, .. } => (*max_concurrency).min(offsets.len().max(1) as u64),
    };
    let planned = match (&spec.shape, spec.bound) {
        (StepShape::Open { offsets, .. }, _) => offsets.len() as u64,
        (_, Bound::Requests(n)) => n,
        (_, Bound::Duration(_)) => 0,
    };
    progress.planned.store(planned, Ordering::Relaxed);
    let next = Arc::new(AtomicU64::new(0));
    // Open-loop offsets are shared read-only by all workers.
    let offsets: Arc<[Duration]> = match &spec.shape {
        StepShape::Open { offsets, .. } => offsets.clone().into(),
        StepShape::Closed { .. } => Arc::from(Vec::new()),
    };
    let shards: Arc<[Mutex<Recorder>]> = (0..shard_count()).map(|_| Mutex::new(Recorder::new())).collect();
    let t0 = Instant::now();
    let mut set = JoinSet::new();
    for id in 0..workers {
        let worker = Worker {
            shard: Arc::clone(&shards),
            id: id as usize,
            plan: Arc::clone(plan),
            spec: spec.clone(),
            next: Arc::clone(&next),
            offsets: Arc::clone(&offsets),
            progress: Arc::clone(progress),
            cancel: cancel.clone(),
            t0,
        };
        set.spawn(worker.run());
    }
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "a load worker ended abnormally; its unflushed measurements are lost");
        }
    }
    let mut all = Recorder::new();
    for shard in shards.iter() {
        let rec = std::mem::take(&mut *shard.lock().unwrap_or_else(|e| e.into_inner()));
        all.merge(rec);
    }
    all
}

/// Requests a worker keeps before flushing them into its shard.
pub const FLUSH_REQUESTS: usize = 8;

/// Recorder shards: twice the cores, so concurrent flushes rarely meet.
pub fn shard_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// Finished requests not yet flushed: their records and their inter-chunk gaps.
#[derive(Debug, Default)]
struct Batch {
    records: Vec<RequestRecord>,
    /// Gaps of all batched requests, back to back.
    gaps: Vec<u64>,
    /// Where each request's gaps end in `gaps`.
    ends: Vec<usize>,
}

impl Batch {
    fn push(&mut self, record: RequestRecord, gaps: &[u64]) {
        self.records.push(record);
        self.gaps.extend_from_slice(gaps);
        self.ends.push(self.gaps.len());
    }

    /// Moves the batch into `shard` under one short lock (a `std` mutex: never held
    /// across an `.await`).
    fn flush(&mut self, shard: &Mutex<Recorder>) {
        if self.records.is_empty() {
            return;
        }
        let mut rec = shard.lock().unwrap_or_else(|e| e.into_inner());
        let mut start = 0;
        for (record, &end) in self.records.iter().zip(&self.ends) {
            rec.record(*record, &self.gaps[start..end]);
            start = end;
        }
        drop(rec);
        self.records.clear();
        self.gaps.clear();
        self.ends.clear();
    }
}

struct Worker {
    /// Recorder shards shared by all workers; this worker flushes into `id % len`.
    shard: Arc<[Mutex<Recorder>]>,
    id: usize,
    plan: Arc<Plan>,
    spec: StepSpec,
    /// The next session to start, claimed with `fetch_add`: no queue, no lock.
    next: Arc<AtomicU64>,
    offsets: Arc<[Duration]>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
    t0: Instant,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Worker {
    async fn run(self) {
        let mut batch = Batch::default();
        let shard = &self.shard[self.id % self.shard.len()];
        let mut parser = StreamParser::new(self.plan.framing);
        let mut gaps: Vec<u64> = Vec::new();
        let open = matches!(self.spec.shape, StepShape::Open { .. });
        loop {
            if self.cancel.is_cancelled() {
                break;
            }
            let session = self.next.fetch_add(1, Ordering::Relaxed);
            let intended = if open {
                let Some(offset) = self.offsets.get(session as usize) else { break };
                let at = self.t0 + *offset;
                tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => break,
                    _ = tokio::time::sleep_until(at) => {}
                }
                at
            } else {
                let now = Instant::now();
                match self.spec.bound {
                    Bound::Requests(n) if session >= n => break,
                    Bound::Duration(d) if now >= self.t0 + d => break,
                    _ => {}
                }
                now
            };
            let measured = self.is_measured(session, intended);
            let workload = &self.plan.workload;
            let prompt_index = session as usize % workload.prompts.len();
            let mut turn_intended = intended;
            for turn in 0..workload.turns {
                let body = if turn == 0 {
                    self.plan.bodies[prompt_index].clone()
                } else {
                    self.plan.builder.body(&workload.prompts[prompt_index], turn)
                };
                let sent = Instant::now();
                self.progress.sent.fetch_add(1, Ordering::Relaxed);
                let deadline = sent + self.plan.timeout;
                let ex = tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => {
                        batch.flush(shard);
                        return;
                    }
                    ex = exchange(&self.plan.client, &self.plan.uri, body, &mut parser, &mut gaps, deadline) => ex,
                };
                let usage = ex.usage.unwrap_or_default();
                let record = RequestRecord {
                    session,
                    turn,
                    intended_ns: ns(turn_intended.saturating_duration_since(self.t0)),
                    sent_ns: ns(sent.saturating_duration_since(self.t0)),
                    ttft_ns: ex.first.map(|f| ns(f.duration_since(sent))),
                    e2e_ns: ns(ex.end.saturating_duration_since(sent)),
                    decode_ns: match (ex.first, ex.last) {
                        (Some(f), Some(l)) => ns(l.duration_since(f)),
                        _ => 0,
                    },
                    chunks: ex.chunks,
                    output_tokens: if usage.completion_tokens > 0 {
                        usage.completion_tokens
                    } else {
                        u64::from(ex.chunks)
                    },
                    input_tokens: usage.prompt_tokens,
                    outcome: ex.outcome,
                    measured,
                };
                batch.push(record, &gaps);
                if batch.records.len() >= FLUSH_REQUESTS {
                    batch.flush(shard);
                }
                self.progress.done.fetch_add(1, Ordering::Relaxed);
                if ex.outcome != Outcome::Ok {
                    self.progress.failed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                turn_intended = Instant::now();
            }
        }
        batch.flush(shard);
    }

    /// Warm-up and cool-down: decided when the session starts, so no sample is ever
    /// recorded and later removed.
    fn is_measured(&self, session: u64, intended: Instant) -> bool {
        if session < self.spec.warmup {
            return false;
        }
        let total = match (&self.spec.shape, self.spec.bound) {
            (StepShape::Open { offsets, .. }, _) => Some(offsets.len() as u64),
            (_, Bound::Requests(n)) => Some(n),
            _ => None,
        };
        if total.is_some_and(|n| session + self.spec.cooldown >= n) {
            return false;
        }
        if let Bound::Duration(d) = self.spec.bound {
            if intended.saturating_duration_since(self.t0) + self.spec.cooldown_time >= d
                && !self.spec.cooldown_time.is_zero()
            {
                return false;
            }
        }
        true
    }
}
