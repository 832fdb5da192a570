//! Timestamps with microsecond resolution that round-trip through both databases.
//!
//! The original RUNE stored `time.time()` floats (epoch seconds) in `REAL` columns. RUNE
//! keeps that column type so an adopted database needs no rewrite, and keeps every value
//! as whole microseconds in memory so comparisons and cursors are exact. A double holds
//! any epoch-microsecond value up to the year 2255 exactly, so the float column loses
//! nothing.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A point in time as whole microseconds since the Unix epoch (UTC).
///
/// In JSON it is an RFC 3339 string (`2026-11-27T10:49:25.123Z`); numbers are read as
/// float epoch seconds, the original RUNE's format (e.g. in adopted chain state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
#[schema(value_type = String, format = DateTime)]
pub struct Timestamp(i64);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Text(String),
            Seconds(f64),
        }
        match Wire::deserialize(d)? {
            Wire::Text(t) => Timestamp::parse(&t).map_err(serde::de::Error::custom),
            Wire::Seconds(s) if s.is_finite() => Ok(Timestamp::from_epoch_seconds(s)),
            Wire::Seconds(_) => Err(serde::de::Error::custom("timestamp is not a finite number")),
        }
    }
}

impl Timestamp {
    /// The current wall-clock time. Timestamps are wall-clock on purpose: they are
    /// compared across processes and hosts, never used to measure durations.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self(since.as_micros() as i64)
    }

    /// Builds a timestamp from whole microseconds since the epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Builds a timestamp from whole milliseconds since the epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis * 1_000)
    }

    /// Converts the float epoch seconds found in the database, rounding to the nearest
    /// microsecond (values written by RUNE convert back exactly).
    pub fn from_epoch_seconds(seconds: f64) -> Self {
        Self((seconds * 1_000_000.0).round() as i64)
    }

    /// The value written to the database's `REAL`/`DOUBLE PRECISION` columns.
    pub fn as_epoch_seconds(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }

    /// Whole microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Whole milliseconds since the epoch (floor), the unit used in digests so a value
    /// hashes identically on every engine.
    pub const fn as_millis(self) -> i64 {
        self.0.div_euclid(1_000)
    }

    /// This timestamp moved forward by `millis` milliseconds (backwards when negative).
    pub const fn plus_millis(self, millis: i64) -> Self {
        Self(self.0 + millis * 1_000)
    }

    /// Formats as RFC 3339 UTC with millisecond precision, e.g. `2026-11-27T10:49:25.123Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000);
        let millis = self.0.rem_euclid(1_000_000) / 1_000;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
    }
}

/// Text that is not an RFC 3339 timestamp or epoch seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a time; use RFC 3339 (2026-11-27T10:00:00Z, 2026-11-27T12:00:00+02:00, 2026-11-27) or epoch seconds"
)]
pub struct InvalidTimestamp(pub String);

impl Timestamp {
    /// Parses RFC 3339 (`2026-11-27T10:49:25.123Z`, with `Z` or `±HH:MM`), a bare date
    /// (midnight UTC), or epoch seconds (`1795776565.5`).
    pub fn parse(text: &str) -> Result<Self, InvalidTimestamp> {
        let bad = || InvalidTimestamp(text.to_owned());
        let t = text.trim();
        if let Ok(secs) = t.parse::<f64>() {
            return if secs.is_finite() && secs.abs() < 1e13 { Ok(Self::from_epoch_seconds(secs)) } else { Err(bad()) };
        }
        let num = |s: &str| -> Result<i64, InvalidTimestamp> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse().map_err(|_| bad())
        };
        let (date, time) = match t.find(['T', 't', ' ']) {
            Some(i) => (&t[..i], Some(&t[i + 1..])),
            None => (t, None),
        };
        let parts: Vec<&str> = date.split('-').collect();
        let [y, m, d] = parts.as_slice() else { return Err(bad()) };
        let (y, m, d) = (num(y)?, num(m)?, num(d)?);
        if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
            return Err(bad());
        }
        let mut micros = days_from_civil(y, m, d) * 86_400_000_000;
        if let Some(time) = time {
            let (clock, offset_s) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
                (c, 0)
            } else if let Some(i) = time.rfind(['+', '-']) {
                let (c, off) = time.split_at(i);
                let sign = if off.starts_with('-') { -1 } else { 1 };
                let (oh, om) = off[1..].split_once(':').ok_or_else(bad)?;
                let (oh, om) = (num(oh)?, num(om)?);
                if oh > 23 || om > 59 {
                    return Err(bad());
                }
                (c, sign * (oh * 3600 + om * 60))
            } else {
                return Err(bad());
            };
            let (hms, frac) = match clock.split_once('.') {
                Some((a, f)) => (a, f),
                None => (clock, ""),
            };
            let fields: Vec<&str> = hms.split(':').collect();
            let [h, mi, s] = fields.as_slice() else { return Err(bad()) };
            let (h, mi, s) = (num(h)?, num(mi)?, num(s)?);
            if h > 23 || mi > 59 || s > 60 {
                return Err(bad());
            }
            let frac_micros = if frac.is_empty() {
                0
            } else {
                let digits: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
                num(&digits)?
            };
            micros += ((h * 3600 + mi * 60 + s) - offset_s) * 1_000_000 + frac_micros;
        }
        Ok(Self(micros))
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// algorithm, exact for every i64 day count we can meet.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON: written as RFC 3339, read from RFC 3339 or float epoch seconds.
    #[test]
    fn json_form() {
        let t = Timestamp::from_millis(1_795_776_565_123);
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2026-11-27T10:49:25.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>("\"2026-11-27T10:49:25.123Z\"").unwrap(), t);
        assert_eq!(serde_json::from_str::<Timestamp>("1795776565.123").unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("\"soon\"").is_err());
    }

    /// RFC 3339 text, dates and epoch seconds parse; rendering and parsing agree.
    #[test]
    fn parse_round_trip_and_forms() {
        for ms in [0_i64, 1_795_776_565_123, 951_782_400_000, -1] {
            let t = Timestamp::from_millis(ms);
            assert_eq!(Timestamp::parse(&t.to_rfc3339()).unwrap(), t);
        }
        assert_eq!(Timestamp::parse("2026-11-27").unwrap(), Timestamp::parse("2026-11-27T00:00:00Z").unwrap());
        assert_eq!(
            Timestamp::parse("2026-11-27T12:49:25+02:00").unwrap(),
            Timestamp::parse("2026-11-27T10:49:25Z").unwrap()
        );
        assert_eq!(Timestamp::parse("1795776565.5").unwrap(), Timestamp::from_millis(1_795_776_565_500));
        for bad in
            ["", "yesterday", "2026-13-01", "2026-02-30", "2026-11-27T25:00:00Z", "2026-11-27T10:00:00", "NaN", "1e400"]
        {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    /// Every microsecond value in a realistic range survives the float column exactly.
    #[test]
    fn epoch_seconds_round_trip_is_exact() {
        for micros in [0_i64, 1, 999_999, 1_764_240_565_123_456, 4_102_444_800_000_001] {
            let ts = Timestamp::from_micros(micros);
            assert_eq!(Timestamp::from_epoch_seconds(ts.as_epoch_seconds()), ts);
        }
    }

    /// RFC 3339 rendering matches known instants, including before the epoch.
    #[test]
    fn rfc3339_known_values() {
        assert_eq!(Timestamp::from_micros(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::from_millis(1_795_776_565_123).to_rfc3339(), "2026-11-27T10:49:25.123Z");
        assert_eq!(Timestamp::from_millis(-1).to_rfc3339(), "1969-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::from_millis(951_782_400_000).to_rfc3339(), "2000-02-29T00:00:00.000Z");
    }
}
