//! Answering a generation request on time. Chunk `i` is due at
//! `received + ttft + i * itl` (plus the stall, once a stall fault has happened): absolute
//! deadlines, so the error of one wake-up does not carry into the next. A deadline already
//! past is not slept on at all, and with a zero ITL the ready chunks are coalesced into one
//! write, so a zero-latency simulator costs little more than rendering the bytes — it is
//! used to measure how fast load generators can go.
//!
//! Faults are applied here: a stall before the middle chunk, then a malformed line, then a
//! dropped connection (the body stream ends with an error, so hyper aborts the connection).
//! Every wait also watches the server's shutdown token.

use crate::clock;
use crate::faults::{self, FaultPlan};
use crate::server::{
    injected_failure, json_response, shutting_down, AnswerId, ModelEntry, Shared, FAULTS_HEADER, REQUEST_HEADER,
};
use crate::wire::{Api, Durations, Wire, WireSpec};
use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Upper bound of one coalesced write: past it, ready chunks go in the next body item, so a
/// huge zero-latency answer never sits in one buffer.
const COALESCE_BYTES: usize = 64 * 1024;

/// A parsed, validated generation request.
pub(crate) struct Request<'a> {
    pub(crate) api: Api,
    pub(crate) stream: bool,
    pub(crate) model: &'a ModelEntry,
    pub(crate) prompt_tokens: u64,
    pub(crate) answer: AnswerId,
    /// `max_tokens` / `num_predict`, if the request set one.
    pub(crate) limit: Option<u64>,
    /// OpenAI `stream_options.include_usage`.
    pub(crate) include_usage: bool,
    /// When the handler got the request (body read): the origin of every deadline.
    pub(crate) received: Instant,
}

/// Draws the faults and answers `req`: an injected failure, a stream, or a full body.
/// The response says which request index it was and which faults it got, so tests and
/// load-generator calibration can check their own fault accounting against ground truth.
pub(crate) async fn answer(shared: &Arc<Shared>, req: Request<'_>) -> Response {
    let index = shared.next_request();
    let faults = faults::draw(&shared.faults, index);
    let mut response = respond(shared, req, index, faults).await;
    let headers = response.headers_mut();
    headers.insert(HeaderName::from_static(REQUEST_HEADER), HeaderValue::from(index));
    headers.insert(HeaderName::from_static(FAULTS_HEADER), HeaderValue::from_static(faults.label()));
    response
}

async fn respond(shared: &Arc<Shared>, req: Request<'_>, index: u64, faults: FaultPlan) -> Response {
    if faults.fail {
        tracing::debug!(request = index, status = %shared.faults.fail_status.status(), "rune-sim: injecting a failure");
        return injected_failure(req.api, shared.faults.fail_status);
    }
    if faults.mid_stream() {
        tracing::debug!(request = index, ?faults, "rune-sim: injecting mid-answer faults");
    }
    let (tokens, truncated) = shared.completion_tokens(req.limit);
    let created_ms = clock::now_ms();
    let created_at = if req.api.is_ollama() { clock::rfc3339_ms(created_ms) } else { String::new() };
    let wire = Wire::new(&WireSpec {
        api: req.api,
        stream: req.stream,
        id: index,
        model_json: &req.model.json,
        created: created_ms / 1000,
        created_at: &created_at,
        include_usage: req.include_usage,
        prompt_tokens: req.prompt_tokens,
        completion_tokens: tokens as u64,
        truncated,
    });
    let job = Job {
        shared: Arc::clone(shared),
        api: req.api,
        answer: req.answer,
        wire,
        tokens,
        faults,
        received: req.received,
        ready: Instant::now(),
    };
    if req.stream {
        stream_response(job)
    } else {
        full_response(job).await
    }
}

/// One answer being produced.
struct Job {
    shared: Arc<Shared>,
    api: Api,
    answer: AnswerId,
    wire: Wire,
    tokens: usize,
    faults: FaultPlan,
    received: Instant,
    /// When parsing and planning were done (Ollama's `load_duration` ends here).
    ready: Instant,
}

impl Job {
    /// Chunks to send; an empty answer still sends one (empty) chunk at TTFT.
    fn steps(&self) -> usize {
        self.tokens.div_ceil(self.shared.tokens_per_chunk as usize).max(1)
    }

    /// Where mid-answer faults strike.
    fn fault_step(&self) -> usize {
        self.steps() / 2
    }

    fn deadline(&self, step: usize, shift: Duration) -> Instant {
        let s = &self.shared;
        let offset =
            s.ttft.saturating_add(s.itl.saturating_mul(u32::try_from(step).unwrap_or(u32::MAX))).saturating_add(shift);
        self.received.checked_add(offset).unwrap_or_else(far_future)
    }

    fn durations(&self, first_at: Instant, end: Instant) -> Durations {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        Durations {
            total: ns(end.saturating_duration_since(self.received)),
            load: ns(self.ready.saturating_duration_since(self.received)),
            prompt_eval: ns(first_at.saturating_duration_since(self.ready)),
            eval: ns(end.saturating_duration_since(first_at)),
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

/// Sleeps until `deadline` unless it has passed; `false` if the server is shutting down.
async fn wait_until(deadline: Instant, shutdown: &CancellationToken) -> bool {
    if deadline <= Instant::now() {
        return true;
    }
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => false,
        _ = crate::precise::sleep_until(deadline) => true,
    }
}

fn dropped() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "rune-sim: simulated dropped connection (--drop-rate)")
}

/// A non-streaming answer: one body when the last chunk would have been due.
async fn full_response(job: Job) -> Response {
    let shutdown = job.shared.shutdown.clone();
    let stall = if job.faults.stall { job.shared.faults.stall } else { Duration::ZERO };
    if job.faults.drop {
        // Headers go out, then the connection is cut when the middle chunk was due.
        let deadline = job.deadline(job.fault_step(), stall);
        let body = futures_util::stream::once(async move {
            let _ = wait_until(deadline, &shutdown).await;
            // Let hyper flush the headers first (see `Phase::Dropping`).
            tokio::task::yield_now().await;
            Err::<Bytes, io::Error>(dropped())
        });
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            Body::from_stream(body),
        )
            .into_response();
    }
    if !wait_until(job.deadline(job.steps() - 1, stall), &shutdown).await {
        return shutting_down(job.api);
    }
    if job.faults.malformed {
        return json_response(StatusCode::OK, job.wire.truncated_body());
    }
    let end = Instant::now();
    let first_at = job.deadline(0, Duration::ZERO).clamp(job.ready, end);
    let body = job.wire.full_body(&job.shared.script(job.answer), job.tokens, &job.durations(first_at, end));
    json_response(StatusCode::OK, body)
}

fn stream_response(job: Job) -> Response {
    let content_type = HeaderValue::from_static(job.api.stream_content_type());
    let generator = Generator { job, step: 0, shift: Duration::ZERO, first_at: None, phase: Phase::Running };
    let body = Body::from_stream(futures_util::stream::unfold(generator, Generator::next));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        body,
    )
        .into_response()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// The bytes before the drop were sent; the next item is the error.
    Dropping,
    Done,
}

/// The state of one streamed answer, advanced one body item at a time.
struct Generator {
    job: Job,
    /// The next chunk to send.
    step: usize,
    /// Added to every deadline once a stall has happened.
    shift: Duration,
    first_at: Option<Instant>,
    phase: Phase,
}

impl Generator {
    async fn next(mut self) -> Option<(io::Result<Bytes>, Self)> {
        match self.phase {
            Phase::Done => return None,
            Phase::Dropping => {
                // Return Pending once so hyper flushes the headers and the bytes before the
                // fault; an error in the same poll would discard them unsent.
                tokio::task::yield_now().await;
                self.phase = Phase::Done;
                return Some((Err(dropped()), self));
            }
            Phase::Running => {}
        }
        let job = &self.job;
        let (steps, fault_step, faults) = (job.steps(), job.fault_step(), job.faults);
        let mut step = self.step;
        let at_fault = step == fault_step;
        if at_fault && faults.stall {
            self.shift = self.shift.saturating_add(job.shared.faults.stall);
        }
        if !wait_until(job.deadline(step, self.shift), &job.shared.shutdown).await {
            self.phase = Phase::Done;
            return Some((Err(io::Error::other("rune-sim is shutting down")), self));
        }
        let per_chunk = job.shared.tokens_per_chunk as usize;
        let coalesce = job.shared.itl.is_zero();
        let mut buf = job.wire.buffer(if coalesce { steps - step } else { 1 }.min(64), per_chunk);
        if at_fault && faults.malformed {
            job.wire.malformed(&mut buf);
        }
        if at_fault && faults.drop {
            self.phase = Phase::Dropping;
            if buf.is_empty() {
                tokio::task::yield_now().await; // as in `Phase::Dropping`
                self.phase = Phase::Done;
                return Some((Err(dropped()), self));
            }
            return Some((Ok(Bytes::from(buf)), self));
        }
        let script = job.shared.script(job.answer);
        let mut first_at = self.first_at;
        let mut done = false;
        loop {
            let start = step * per_chunk;
            job.wire.chunk(&script, start..(start + per_chunk).min(job.tokens), step == 0, &mut buf);
            let first = *first_at.get_or_insert_with(Instant::now);
            step += 1;
            if step == steps {
                job.wire.finish(&job.durations(first, Instant::now()), &mut buf);
                done = true;
                break;
            }
            if !coalesce || buf.len() >= COALESCE_BYTES || (faults.mid_stream() && step == fault_step) {
                break;
            }
        }
        self.first_at = first_at;
        self.step = step;
        if done {
            self.phase = Phase::Done;
        }
        Some((Ok(Bytes::from(buf)), self))
    }
}
