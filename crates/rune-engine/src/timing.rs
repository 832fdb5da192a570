//! Client-side timing of one streamed model call, taken with monotonic [`Instant`]s only.
//!
//! This module owns the definitions of TTFT, inter-token latency and stream gaps so that
//! every backend measures them the same way. It does no I/O and never reads the wall clock.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What one streamed call cost in time, measured by the client.
///
/// All values are milliseconds measured from monotonic clocks. `ttft_ms` is the time from
/// sending the request (the start of the attempt that got an answer, so connect retries and
/// their back-off are excluded) to the arrival of the first generated token; the gaps are
/// between the arrivals of successive token-bearing stream events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallTiming {
    /// Request sent → first generated token arrived; `None` when no token ever came.
    pub ttft_ms: Option<f64>,
    /// Request sent → end of the stream.
    pub total_ms: f64,
    /// Number of token-bearing stream events received.
    pub chunks: u32,
    /// Mean time between token-bearing events: (last − first) / (chunks − 1); needs ≥ 2.
    pub mean_itl_ms: Option<f64>,
    /// Longest silence between two successive token-bearing events; needs ≥ 2.
    pub max_gap_ms: Option<f64>,
}

/// Records the instants of one streamed call and turns them into a [`CallTiming`].
///
/// Kept allocation-free: a handful of `Instant`s and counters, updated once per event.
#[derive(Debug, Clone)]
pub(crate) struct StreamClock {
    sent: Instant,
    first: Option<Instant>,
    last: Option<Instant>,
    chunks: u32,
    max_gap: Duration,
}

impl StreamClock {
    /// Starts the clock at `sent` (the moment the request left).
    pub(crate) fn new(sent: Instant) -> Self {
        StreamClock { sent, first: None, last: None, chunks: 0, max_gap: Duration::ZERO }
    }

    /// Records a token-bearing event that arrived at `at`.
    pub(crate) fn token_at(&mut self, at: Instant) {
        if let Some(last) = self.last {
            self.max_gap = self.max_gap.max(at.saturating_duration_since(last));
        } else {
            self.first = Some(at);
        }
        self.last = Some(at);
        self.chunks = self.chunks.saturating_add(1);
    }

    /// Closes the measurement at `end`.
    pub(crate) fn finish(&self, end: Instant) -> CallTiming {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let ttft_ms = self.first.map(|f| ms(f.saturating_duration_since(self.sent)));
        let (mean_itl_ms, max_gap_ms) = match (self.first, self.last) {
            (Some(first), Some(last)) if self.chunks >= 2 => {
                let span = ms(last.saturating_duration_since(first));
                (Some(span / f64::from(self.chunks - 1)), Some(ms(self.max_gap)))
            }
            _ => (None, None),
        };
        CallTiming {
            ttft_ms,
            total_ms: ms(end.saturating_duration_since(self.sent)),
            chunks: self.chunks,
            mean_itl_ms,
            max_gap_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No token: TTFT and gaps are absent rather than zero, so averages are not skewed.
    #[test]
    fn empty_stream_has_no_ttft() {
        let t0 = Instant::now();
        let t = StreamClock::new(t0).finish(t0 + Duration::from_millis(5));
        assert_eq!(t.ttft_ms, None);
        assert_eq!(t.mean_itl_ms, None);
        assert_eq!(t.chunks, 0);
        assert!((t.total_ms - 5.0).abs() < 1e-9);
    }

    /// TTFT, mean ITL and the max gap follow their definitions exactly.
    #[test]
    fn definitions_hold() {
        let t0 = Instant::now();
        let mut c = StreamClock::new(t0);
        c.token_at(t0 + Duration::from_millis(100));
        c.token_at(t0 + Duration::from_millis(110));
        c.token_at(t0 + Duration::from_millis(150));
        let t = c.finish(t0 + Duration::from_millis(160));
        assert!((t.ttft_ms.unwrap() - 100.0).abs() < 1e-9);
        assert!((t.mean_itl_ms.unwrap() - 25.0).abs() < 1e-9);
        assert!((t.max_gap_ms.unwrap() - 40.0).abs() < 1e-9);
        assert_eq!(t.chunks, 3);
    }

    /// A single token gives a TTFT but no inter-token figures.
    #[test]
    fn single_token_has_no_itl() {
        let t0 = Instant::now();
        let mut c = StreamClock::new(t0);
        c.token_at(t0 + Duration::from_millis(7));
        let t = c.finish(t0 + Duration::from_millis(9));
        assert!(t.ttft_ms.is_some());
        assert_eq!(t.mean_itl_ms, None);
        assert_eq!(t.max_gap_ms, None);
    }
}
