//! Load shapes: when requests are sent. A closed loop keeps `concurrency` requests in
//! flight (a worker sends its next request when the previous one ends); an open loop sends
//! on an absolute schedule (`t0 + offset[i]`, constant or Poisson spacing, or a replayed
//! trace) whatever the server does, so a slow server shows up as schedule lag instead of
//! silently lowering the load (coordinated omission).
//!
//! Schedules are computed up front from the seed, so they are reproducible and tests can
//! check their statistics without sending anything. No I/O here.

use crate::error::LoadError;
use crate::rng::SplitMix64;
use std::time::Duration;

/// Most arrivals an open-loop schedule may hold (8 bytes each: 80 MB at the limit).
pub const MAX_SCHEDULE: usize = 10_000_000;

/// Spacing of open-loop arrivals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// Exactly `1 / rate` apart.
    Constant,
    /// Exponentially distributed gaps of mean `1 / rate` (a Poisson process).
    Poisson,
}

impl Arrivals {
    /// Reads `constant` or `poisson`.
    pub fn parse(s: &str) -> Result<Self, LoadError> {
        match s {
            "constant" => Ok(Arrivals::Constant),
            "poisson" => Ok(Arrivals::Poisson),
            other => Err(LoadError::invalid("arrivals", format!("`{other}` is not constant or poisson"))),
        }
    }
}

/// What bounds one step of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// Send exactly this many sessions (requests when there is one turn).
    Requests(u64),
    /// Send until this much time has passed since the step started, then wait for the
    /// requests in flight.
    Duration(Duration),
}

/// How one step drives the server.
#[derive(Debug, Clone, PartialEq)]
pub enum StepShape {
    /// Closed loop with this many workers.
    Closed {
        /// Requests in flight.
        concurrency: u64,
    },
    /// Open loop: sessions start at these offsets from the step's start, at most
    /// `max_concurrency` in flight (a late slot shows as schedule lag).
    Open {
        /// The target rate, for reports (`None` for a replayed trace).
        rate: Option<f64>,
        /// Intended start of each session, non-decreasing.
        offsets: Vec<Duration>,
        /// Workers, i.e. the in-flight cap.
        max_concurrency: u64,
    },
}

impl StepShape {
    /// A short label for progress and reports (`c=64`, `rate=10/s`, `trace`).
    pub fn label(&self) -> String {
        match self {
            StepShape::Closed { concurrency } => format!("concurrency={concurrency}"),
            StepShape::Open { rate: Some(r), .. } => format!("rate={r}/s"),
            StepShape::Open { rate: None, .. } => "trace replay".to_owned(),
        }
    }
}

/// The intended send offsets of an open-loop step at `rate` requests/s: `n` arrivals for
/// a request bound, or every arrival before the end for a duration bound. Constant
/// arrivals are `i / rate` (absolute, so rounding never accumulates); Poisson arrivals are
/// cumulative exponential gaps drawn from `seed`.
pub fn open_schedule(rate: f64, arrivals: Arrivals, bound: Bound, seed: u64) -> Result<Vec<Duration>, LoadError> {
    if !(rate.is_finite() && rate > 0.0) {
        return Err(LoadError::invalid("rate", format!("must be a positive number of requests/s, got {rate}")));
    }
    let limit = match bound {
        Bound::Requests(n) => n as f64,
        Bound::Duration(d) => d.as_secs_f64() * rate * 1.5 + 16.0,
    };
    if limit > MAX_SCHEDULE as f64 {
        return Err(LoadError::invalid(
            "rate",
            format!("this step would schedule about {limit:.0} requests; the most is {MAX_SCHEDULE}: lower the rate or shorten the step"),
        ));
    }
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    let mut t = 0.0f64;
    for i in 0u64.. {
        let at = match arrivals {
            Arrivals::Constant => i as f64 / rate,
            Arrivals::Poisson => {
                let gap = if i == 0 { 0.0 } else { -rng.next_open01().ln() / rate };
                t += gap;
                t
            }
        };
        let stop = match bound {
            Bound::Requests(n) => i >= n,
            Bound::Duration(d) => at >= d.as_secs_f64(),
        };
        if stop {
            break;
        }
        out.push(Duration::from_secs_f64(at));
    }
    Ok(out)
}

/// Parses a duration like `60s`, `500ms`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x * scale <= 30.0 * 86_400.0 => Ok(Duration::from_secs_f64(x * scale)),
        _ => Err(format!("`{text}` is not a duration; use e.g. 500ms, 60s, 2m or 1h (positive, at most 30 days)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request-bounded constant schedule has exactly n arrivals exactly 1/rate apart.
    #[test]
    fn constant_schedule_is_exact() {
        let s = open_schedule(20.0, Arrivals::Constant, Bound::Requests(100), 1).unwrap();
        assert_eq!(s.len(), 100);
        assert_eq!(s[0], Duration::ZERO);
        assert_eq!(s[99], Duration::from_secs_f64(99.0 / 20.0));
        assert!(s.windows(2).all(|w| (w[1] - w[0]).as_secs_f64() - 0.05 < 1e-9));
    }

    /// A duration-bounded schedule stops before the end: rate × duration arrivals.
    #[test]
    fn duration_bound_counts() {
        let s = open_schedule(10.0, Arrivals::Constant, Bound::Duration(Duration::from_secs(3)), 1).unwrap();
        assert_eq!(s.len(), 30);
        assert!(s.iter().all(|d| *d < Duration::from_secs(3)));
    }

    /// Poisson arrivals: the measured rate is within 3 standard errors of the target
    /// (for n exponential gaps the relative s.e. of the mean is 1/sqrt(n)), the gaps'
    /// coefficient of variation is ~1 (0 for constant spacing), and the seed reproduces it.
    #[test]
    fn poisson_statistics() {
        let n = 20_000u64;
        let rate = 50.0;
        let s = open_schedule(rate, Arrivals::Poisson, Bound::Requests(n), 42).unwrap();
        assert_eq!(s.len() as u64, n);
        let gaps: Vec<f64> = s.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let measured_rate = 1.0 / mean;
        let tolerance = 3.0 * rate / (gaps.len() as f64).sqrt();
        assert!((measured_rate - rate).abs() < tolerance, "rate {measured_rate} vs {rate} ± {tolerance}");
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        let cv = var.sqrt() / mean;
        assert!((cv - 1.0).abs() < 0.05, "coefficient of variation {cv}");
        assert_eq!(s, open_schedule(rate, Arrivals::Poisson, Bound::Requests(n), 42).unwrap());
        assert_ne!(s, open_schedule(rate, Arrivals::Poisson, Bound::Requests(n), 43).unwrap());
    }

    /// Bad rates and oversized schedules are refused with the field named.
    #[test]
    fn bad_rates_refused() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = open_schedule(bad, Arrivals::Constant, Bound::Requests(1), 0).unwrap_err().to_string();
            assert!(e.starts_with("rate:"), "{e}");
        }
        let huge = open_schedule(1e6, Arrivals::Constant, Bound::Duration(Duration::from_secs(3600)), 0);
        assert!(huge.unwrap_err().to_string().contains("the most is"));
        assert!(Arrivals::parse("gamma").is_err());
    }

    /// Duration units, and their negative cases.
    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "-1s", "0", "abc", "1d", "31h0"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
