//! Per-tenant rate limiting and per-address throttling of failed authentication.
//!
//! Token buckets keyed by the *authenticated* tenant (so a caller cannot spend another
//! tenant's budget by sending its name) and, for failures, by client IP address. State
//! is in memory, per process: behind several replicas each enforces its own share.
//! A `std` mutex: held for a few arithmetic operations, never across `.await`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before idle ones are evicted, bounding memory under address churn.
const MAX_TRACKED_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A keyed token bucket: `rate` per second, up to `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `rate` ≤ 0 disables limiting.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self { rate, burst: burst.max(1.0), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key`; on refusal, how long until one is available.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        if buckets.len() >= MAX_TRACKED_KEYS && !buckets.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst);
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst, last: now });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * self.rate).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }
}

/// Counts failed authentications per address in a sliding minute.
#[derive(Debug)]
pub struct AuthThrottle {
    per_minute: u32,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthThrottle {
    /// Allows `per_minute` failures per address per minute.
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, failures: Mutex::new(HashMap::new()) }
    }

    /// Whether `addr` is currently blocked, and for how long.
    pub fn blocked(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().ok()?;
        let (start, count) = failures.get(&addr)?;
        let elapsed = now.duration_since(*start);
        (*count >= self.per_minute && elapsed < Duration::from_secs(60)).then(|| Duration::from_secs(60) - elapsed)
    }

    /// Records one failure of `addr`.
    pub fn record_failure(&self, addr: IpAddr, now: Instant) {
        let Ok(mut failures) = self.failures.lock() else { return };
        if failures.len() >= MAX_TRACKED_KEYS {
            failures.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let entry = failures.entry(addr).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst passes, the next request waits for the refill, keys are independent.
    #[test]
    fn token_bucket() {
        let l = RateLimiter::new(2.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check("a", t0).is_ok());
        }
        let wait = l.check("a", t0).unwrap_err();
        assert!(wait <= Duration::from_millis(500) && wait > Duration::ZERO);
        assert!(l.check("b", t0).is_ok(), "other tenants unaffected");
        assert!(l.check("a", t0 + Duration::from_millis(500)).is_ok(), "refilled");
        assert!(RateLimiter::new(0.0, 1.0).check("x", t0).is_ok(), "0 disables");
    }

    /// Too many failures block an address for the rest of the minute.
    #[test]
    fn auth_throttle() {
        let t = AuthThrottle::new(3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(t.blocked(ip, t0).is_none());
            t.record_failure(ip, t0);
        }
        assert!(t.blocked(ip, t0 + Duration::from_secs(10)).is_some());
        assert!(t.blocked(ip, t0 + Duration::from_secs(61)).is_none());
        assert!(t.blocked("10.0.0.2".parse().unwrap(), t0).is_none());
    }
}
