//! Wall-clock values for wire formats (OpenAI's `created` seconds, Ollama's RFC 3339
//! `created_at`/`expires_at`) and Ollama's `keep_alive` durations. Timing of chunks uses
//! the monotonic clock elsewhere; this is only what the wire shows. No I/O beyond reading
//! the system clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a Unix time in milliseconds (clamped to year 9999).
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    let ms = ms.clamp(0, MAX_MS);
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// How long Ollama keeps a model loaded after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeepAlive {
    /// Unload after this long; zero unloads at once.
    For(Duration),
    /// A negative `keep_alive`: never unload.
    Forever,
}

/// Ollama's default when a request does not say.
pub(crate) const DEFAULT_KEEP_ALIVE: KeepAlive = KeepAlive::For(Duration::from_secs(300));

/// Parses Ollama's `keep_alive`: a number of seconds, or a Go duration string such as
/// `"5m"`, `"1h30m"`, `"0"` or `"-1"`. `Err` carries the message for a 400.
pub(crate) fn parse_keep_alive(v: &serde_json::Value) -> Result<KeepAlive, String> {
    let bad = || format!("invalid keep_alive {v}: use seconds (300) or a duration such as \"5m\" or \"-1\"");
    let secs = match v {
        serde_json::Value::Null => return Ok(DEFAULT_KEEP_ALIVE),
        serde_json::Value::Number(n) => n.as_f64().ok_or_else(bad)?,
        serde_json::Value::String(s) => go_duration_secs(s.trim()).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if secs < 0.0 {
        return Ok(KeepAlive::Forever);
    }
    Duration::try_from_secs_f64(secs).map(KeepAlive::For).map_err(|_| bad())
}

/// Seconds in a Go duration (`1h2m3.5s`, `300ms`, `-1`); a bare number means seconds.
fn go_duration_secs(s: &str) -> Option<f64> {
    if let Ok(n) = s.parse::<f64>() {
        return n.is_finite().then_some(n);
    }
    let (sign, mut rest) = match s.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * scale;
    }
    total.is_finite().then_some(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_ms(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(rfc3339_ms(i64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn keep_alive_accepts_ollama_spellings() {
        let s = |n| KeepAlive::For(Duration::from_secs(n));
        assert_eq!(parse_keep_alive(&json!(null)), Ok(DEFAULT_KEEP_ALIVE));
        assert_eq!(parse_keep_alive(&json!(0)), Ok(s(0)));
        assert_eq!(parse_keep_alive(&json!("0")), Ok(s(0)));
        assert_eq!(parse_keep_alive(&json!(-1)), Ok(KeepAlive::Forever));
        assert_eq!(parse_keep_alive(&json!("-1m")), Ok(KeepAlive::Forever));
        assert_eq!(parse_keep_alive(&json!("1h30m")), Ok(s(5400)));
        assert_eq!(parse_keep_alive(&json!("10m0s")), Ok(s(600)));
        assert_eq!(parse_keep_alive(&json!("1500ms")), Ok(KeepAlive::For(Duration::from_millis(1500))));
    }

    #[test]
    fn keep_alive_rejects_garbage() {
        for v in [json!("5 minutes"), json!("m"), json!(""), json!(true), json!([1])] {
            assert!(parse_keep_alive(&v).is_err(), "{v}");
        }
    }
}
