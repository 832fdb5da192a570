//! Cron expressions: parsing, validation and fire times, in one place for every RUNE
//! component (the API server's embedded scheduler, the operator, the CLI's `--dry-run`).
//!
//! This module owns the *meaning* of a schedule string. It does no I/O and never reads the
//! clock: callers pass the instant they care about and get instants back, so every rule
//! below is tested with fixed times.
//!
//! # Syntax
//!
//! Five whitespace-separated fields, `minute hour day-of-month month day-of-week`, each a
//! comma-separated list of `*`, `n`, `a-b`, `*/step`, `a-b/step` or `a/step` (meaning
//! `a-max/step`, as Kubernetes accepts). Months may be written `JAN`–`DEC` and weekdays
//! `SUN`–`SAT` (any case); `0` and `7` are both Sunday; `?` means `*` in the two day fields.
//! The macros `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and
//! `@hourly` stand for their usual expansions. Seconds, years, `L`, `W` and `#` are not
//! supported and are rejected with a message saying so.
//!
//! A leading `TZ=<IANA zone> ` or `CRON_TZ=<IANA zone> ` selects the zone the fields are
//! read in; without it they are read in UTC.
//!
//! # Day-of-month and day-of-week
//!
//! As in Vixie cron and Kubernetes (robfig/cron): when both day fields are restricted, a
//! day matches if *either* matches (`0 0 13 * FRI` fires on every 13th and every Friday).
//! A field counts as unrestricted when one of its list items is `*` or `?` without a step
//! greater than 1, exactly as Kubernetes decides it; then the other field alone decides.
//!
//! # Daylight-saving time
//!
//! The rule is "every matching wall-clock minute fires exactly once", which is what Vixie
//! cron does for fixed-time jobs:
//!
//! - **Spring forward (gap).** A matching wall-clock time that does not exist that day
//!   (e.g. `30 2 * * *` in Berlin on the last Sunday of March) fires once, at the first
//!   instant after the gap (03:00 CEST). Several matching times inside one gap collapse
//!   into that single fire. Kubernetes' robfig/cron instead skips such times, so a daily
//!   benchmark would silently not run that day; RUNE prefers not to lose the run.
//! - **Fall back (repeated hour).** A wall-clock time that occurs twice fires once, at its
//!   first occurrence (the earlier, summer-time instant). robfig/cron fires it twice.
//!
//! # Example
//!
//! ```
//! use rune_core::{cron::CronSchedule, Timestamp};
//!
//! let cron: CronSchedule = "CRON_TZ=America/New_York 0 9 * * MON-FRI".parse().unwrap();
//! // Friday 2026-11-27 15:00 UTC is 10:00 in New York; the next fire is Monday 09:00 EST.
//! let friday = Timestamp::from_millis(1_795_791_600_000);
//! assert_eq!(cron.next_after(friday).unwrap().to_rfc3339(), "2026-11-30T14:00:00.000Z");
//! assert_eq!(cron.to_string(), "TZ=America/New_York 0 9 * * MON-FRI");
//! ```

use crate::Timestamp;
use chrono::{DateTime, Datelike, LocalResult, NaiveDate, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use std::fmt;
use std::str::FromStr;

/// How many years a search may look ahead or back before concluding there is no fire.
/// The rarest schedule `parse` accepts (the 29th of February) fires at least every 8 years
/// (2096 → 2104), so 12 is a safe bound that keeps every search finite.
const SEARCH_YEARS: i32 = 12;

/// Microseconds in one second.
const MICROS_PER_SECOND: i64 = 1_000_000;

/// How far around a skipped wall-clock time the end of its gap is searched for. Real zone
/// offsets lie within -12h..+14h, so a 27 h window always brackets the transition.
const GAP_SEARCH_SECONDS: i64 = 27 * 3600;

/// The five fields of a cron expression, named in error messages so users know which one
/// to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronField {
    /// Field 1, 0-59.
    Minute,
    /// Field 2, 0-23.
    Hour,
    /// Field 3, 1-31.
    DayOfMonth,
    /// Field 4, 1-12 or `JAN`-`DEC`.
    Month,
    /// Field 5, 0-7 (0 and 7 are Sunday) or `SUN`-`SAT`.
    DayOfWeek,
}

const MONTH_NAMES: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl CronField {
    /// The fields in the order they are written.
    pub const ALL: [CronField; 5] =
        [CronField::Minute, CronField::Hour, CronField::DayOfMonth, CronField::Month, CronField::DayOfWeek];

    /// 1-based position in the expression, as error messages count.
    pub const fn position(self) -> usize {
        match self {
            CronField::Minute => 1,
            CronField::Hour => 2,
            CronField::DayOfMonth => 3,
            CronField::Month => 4,
            CronField::DayOfWeek => 5,
        }
    }

    /// The name used in messages and the usual cron documentation.
    pub const fn name(self) -> &'static str {
        match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
        }
    }

    /// Smallest value accepted in the field.
    pub const fn min(self) -> u32 {
        match self {
            CronField::DayOfMonth | CronField::Month => 1,
            _ => 0,
        }
    }

    /// Largest value accepted in the field (7 for day-of-week, an alias of Sunday).
    pub const fn max(self) -> u32 {
        match self {
            CronField::Minute => 59,
            CronField::Hour => 23,
            CronField::DayOfMonth => 31,
            CronField::Month => 12,
            CronField::DayOfWeek => 7,
        }
    }

    /// Largest value `*` stands for (Sunday is 0, so `*` in day-of-week is 0-6).
    const fn star_max(self) -> u32 {
        match self {
            CronField::DayOfWeek => 6,
            other => other.max(),
        }
    }

    /// Largest meaningful step: the number of distinct values `*` covers.
    const fn max_step(self) -> u32 {
        self.star_max() - self.min() + 1
    }

    /// What a value in this field may look like, for "is not ..." messages.
    const fn expected(self) -> &'static str {
        match self {
            CronField::Minute => "a number 0-59",
            CronField::Hour => "a number 0-23",
            CronField::DayOfMonth => "a number 1-31",
            CronField::Month => "a number 1-12 or a month name JAN-DEC",
            CronField::DayOfWeek => "a number 0-7 (0 and 7 are Sunday) or a weekday name SUN-SAT",
        }
    }

    /// Value of a three-letter name in this field, if the field has names.
    fn named_value(self, token: &str) -> Option<u32> {
        let (names, first): (&[&str], u32) = match self {
            CronField::Month => (&MONTH_NAMES, 1),
            CronField::DayOfWeek => (&WEEKDAY_NAMES, 0),
            _ => return None,
        };
        names.iter().position(|n| n.eq_ignore_ascii_case(token)).map(|i| i as u32 + first)
    }

    /// Whether `?` (Quartz's "no specific value") is accepted as `*`.
    const fn accepts_question_mark(self) -> bool {
        matches!(self, CronField::DayOfMonth | CronField::DayOfWeek)
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field {} ({})", self.position(), self.name())
    }
}

/// Why a cron expression was rejected. Every message names what is wrong (the field, the
/// value, the zone) and how to write it instead, because these messages reach users of
/// the CLI, the API and `kubectl describe` unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// Nothing but whitespace (possibly after a `TZ=` prefix).
    #[error(
        "empty cron expression: expected 5 fields (minute hour day-of-month month day-of-week) such as `0 3 * * *`, \
         or a macro such as `@daily`"
    )]
    Empty,
    /// Not exactly five fields.
    #[error(
        "expected 5 fields (minute hour day-of-month month day-of-week), found {found}{}",
        field_count_hint(*found)
    )]
    FieldCount {
        /// How many whitespace-separated fields were found.
        found: usize,
    },
    /// An `@word` that is not one of the supported macros.
    #[error(
        "unknown macro `{name}`: expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, \
         or 5 fields (minute hour day-of-month month day-of-week)"
    )]
    UnknownMacro {
        /// The macro as written.
        name: String,
    },
    /// A macro followed by more text.
    #[error(
        "macro `{name}` is a whole schedule and takes no fields, but `{extra}` follows it; remove it or write 5 fields"
    )]
    MacroWithFields {
        /// The macro as written.
        name: String,
        /// What followed it.
        extra: String,
    },
    /// `TZ=` or `CRON_TZ=` with nothing after the `=`.
    #[error("`{prefix}` names no time zone: write it like `{prefix}Europe/Berlin 0 9 * * *`")]
    MissingTimeZone {
        /// The prefix as written (`TZ=` or `CRON_TZ=`).
        prefix: &'static str,
    },
    /// A zone name not in the IANA database.
    #[error(
        "unknown time zone `{zone}`: use an IANA zone name such as `UTC`, `Europe/Berlin` or `America/New_York` \
         (names are case-sensitive)"
    )]
    UnknownTimeZone {
        /// The zone as written.
        zone: String,
    },
    /// A list item, range bound or step left empty (`1,,2`, `-5`, `*/`).
    #[error("{field}: empty value in `{text}`; check for a stray comma, dash or slash")]
    EmptyValue {
        /// The offending field.
        field: CronField,
        /// The field as written.
        text: String,
    },
    /// A value that is neither a number nor a name allowed in this field.
    #[error("{field}: `{token}` is not {}", field.expected())]
    InvalidValue {
        /// The offending field.
        field: CronField,
        /// The value as written.
        token: String,
    },
    /// A number outside the field's range.
    #[error("{field}: {value} is out of range {}-{}", field.min(), field.max())]
    OutOfRange {
        /// The offending field.
        field: CronField,
        /// The number as written.
        value: String,
    },
    /// A range whose start is after its end.
    #[error(
        "{field}: range {start}-{end} runs backwards; cron ranges do not wrap around, write a list such as `{}` instead",
        wrap_hint(*field, *start, *end)
    )]
    BackwardsRange {
        /// The offending field.
        field: CronField,
        /// Range start, as a number.
        start: u32,
        /// Range end, as a number.
        end: u32,
    },
    /// A step that is not a whole number from 1 to the number of values in the field.
    #[error("{field}: step `{step}` must be a whole number from 1 to {}", field.max_step())]
    InvalidStep {
        /// The offending field.
        field: CronField,
        /// The step as written.
        step: String,
    },
    /// The day-of-month never occurs in any selected month (`0 0 30 2 *`).
    #[error(
        "the schedule can never fire: field 3 (day-of-month) `{day_of_month}` never occurs in field 4 (month) \
         `{month}` while field 5 (day-of-week) is `*`; choose days that exist in those months"
    )]
    NeverFires {
        /// The day-of-month field as written.
        day_of_month: String,
        /// The month field as written.
        month: String,
    },
}

/// The part of the field-count message that says how to fix it.
fn field_count_hint(found: usize) -> &'static str {
    match found {
        6 => "; seconds are not supported (nor is a year field): remove the extra field",
        7 => "; seconds and years are not supported: remove the extra fields",
        n if n > 7 => "; separate fields with spaces only and list values with commas, without spaces",
        _ => "; add the missing fields, using `*` for \"any\"",
    }
}

/// A list equivalent to a backwards range, to suggest in its error message.
fn wrap_hint(field: CronField, start: u32, end: u32) -> String {
    format!("{start}-{},{}-{end}", field.star_max(), field.min())
}

/// A set of small numbers (0..64), enough for every cron field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct Bits(u64);

impl Bits {
    fn insert(&mut self, v: u32) {
        self.0 |= 1 << v;
    }

    fn contains(self, v: u32) -> bool {
        v < 64 && self.0 & (1 << v) != 0
    }

    /// Smallest member `>= v`.
    fn next_from(self, v: u32) -> Option<u32> {
        if v >= 64 {
            return None;
        }
        let masked = self.0 & (u64::MAX << v);
        (masked != 0).then(|| masked.trailing_zeros())
    }

    /// Largest member `<= v`.
    fn prev_from(self, v: u32) -> Option<u32> {
        let masked = if v >= 63 { self.0 } else { self.0 & ((1_u64 << (v + 1)) - 1) };
        (masked != 0).then(|| 63 - masked.leading_zeros())
    }
}

/// One parsed field: its values and whether it counts as unrestricted for the day rule.
struct ParsedField {
    bits: Bits,
    star: bool,
}

/// Parses one field's text into the set of values it selects.
fn parse_field(field: CronField, text: &str) -> Result<ParsedField, CronError> {
    let empty = || CronError::EmptyValue { field, text: text.to_owned() };
    let mut bits = Bits::default();
    let mut star = false;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(empty());
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let step = match step {
            None => None,
            Some("") => return Err(empty()),
            Some(s) => Some(parse_step(field, s)?),
        };
        let (start, end) = if range == "*" || (range == "?" && field.accepts_question_mark()) {
            if step.unwrap_or(1) == 1 {
                star = true;
            }
            (field.min(), field.star_max())
        } else if range.is_empty() {
            return Err(empty());
        } else if let Some((a, b)) = range.split_once('-') {
            if a.is_empty() || b.is_empty() {
                return Err(empty());
            }
            let (start, end) = (parse_value(field, a)?, parse_value(field, b)?);
            if start > end {
                return Err(CronError::BackwardsRange { field, start, end });
            }
            (start, end)
        } else {
            let value = parse_value(field, range)?;
            // `a/step` means `a-max/step`, as Kubernetes (robfig/cron) reads it.
            (value, if step.is_some() { field.star_max().max(value) } else { value })
        };
        let step = step.unwrap_or(1) as usize;
        for v in (start..=end).step_by(step) {
            bits.insert(if field == CronField::DayOfWeek && v == 7 { 0 } else { v });
        }
    }
    Ok(ParsedField { bits, star })
}

/// Parses a number or a three-letter name and checks the field's range.
fn parse_value(field: CronField, token: &str) -> Result<u32, CronError> {
    if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
        let out_of_range = || CronError::OutOfRange { field, value: token.to_owned() };
        let value: u32 = token.parse().map_err(|_| out_of_range())?;
        if value < field.min() || value > field.max() {
            return Err(out_of_range());
        }
        return Ok(value);
    }
    field.named_value(token).ok_or_else(|| CronError::InvalidValue { field, token: token.to_owned() })
}

/// Parses the number after a `/`.
fn parse_step(field: CronField, token: &str) -> Result<u32, CronError> {
    let invalid = || CronError::InvalidStep { field, step: token.to_owned() };
    if !token.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match token.parse::<u32>() {
        Ok(step) if (1..=field.max_step()).contains(&step) => Ok(step),
        _ => Err(invalid()),
    }
}

/// The five fields a macro stands for.
fn expand_macro(name: &str) -> Option<[&'static str; 5]> {
    Some(match name.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => ["0", "0", "1", "1", "*"],
        "@monthly" => ["0", "0", "1", "*", "*"],
        "@weekly" => ["0", "0", "*", "*", "0"],
        "@daily" | "@midnight" => ["0", "0", "*", "*", "*"],
        "@hourly" => ["0", "*", "*", "*", "*"],
        _ => return None,
    })
}

/// A validated cron schedule in a time zone: what RUNE stores and evaluates.
///
/// Two schedules are equal when they print the same ([`fmt::Display`] normalizes case,
/// whitespace, macros and the zone prefix). It serializes as that normalized string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CronSchedule {
    tz: Tz,
    minutes: Bits,
    hours: Bits,
    days_of_month: Bits,
    months: Bits,
    /// Sunday is 0; a written 7 is stored as 0.
    days_of_week: Bits,
    dom_star: bool,
    dow_star: bool,
    /// The fields as written, upper-cased (macros expanded), for `Display`.
    fields: [String; 5],
}

impl CronSchedule {
    /// Parses and validates an expression, rejecting anything that is malformed or can
    /// never fire, so a bad schedule is refused when it is submitted rather than silently
    /// never running.
    pub fn parse(expression: &str) -> Result<CronSchedule, CronError> {
        let mut rest = expression.trim();
        let mut tz = Tz::UTC;
        for prefix in ["CRON_TZ=", "TZ="] {
            if let Some(after) = rest.strip_prefix(prefix) {
                let (zone, tail) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
                if zone.is_empty() {
                    return Err(CronError::MissingTimeZone { prefix });
                }
                tz = zone.parse().map_err(|_| CronError::UnknownTimeZone { zone: zone.to_owned() })?;
                rest = tail.trim_start();
                break;
            }
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        let Some(first) = words.first() else {
            return Err(CronError::Empty);
        };
        let raw: [&str; 5] = if first.starts_with('@') {
            let expanded = expand_macro(first).ok_or_else(|| CronError::UnknownMacro { name: (*first).to_owned() })?;
            if words.len() > 1 {
                return Err(CronError::MacroWithFields { name: (*first).to_owned(), extra: words[1..].join(" ") });
            }
            expanded
        } else {
            words.as_slice().try_into().map_err(|_| CronError::FieldCount { found: words.len() })?
        };

        let minute = parse_field(CronField::Minute, raw[0])?;
        let hour = parse_field(CronField::Hour, raw[1])?;
        let dom = parse_field(CronField::DayOfMonth, raw[2])?;
        let month = parse_field(CronField::Month, raw[3])?;
        let dow = parse_field(CronField::DayOfWeek, raw[4])?;

        // Only "day-of-month restricted, day-of-week `*`" can name days that never exist:
        // with both restricted the weekday alone can match, and weekdays occur every month.
        if dow.star && !dom.star {
            let possible =
                (1..=12).any(|m| month.bits.contains(m) && (1..=max_days_in_month(m)).any(|d| dom.bits.contains(d)));
            if !possible {
                return Err(CronError::NeverFires { day_of_month: raw[2].to_owned(), month: raw[3].to_owned() });
            }
        }

        Ok(CronSchedule {
            tz,
            minutes: minute.bits,
            hours: hour.bits,
            days_of_month: dom.bits,
            months: month.bits,
            days_of_week: dow.bits,
            dom_star: dom.star,
            dow_star: dow.star,
            fields: raw.map(str::to_ascii_uppercase),
        })
    }

    /// The IANA name of the zone the fields are read in (`UTC` without a prefix), for
    /// display next to fire times.
    pub fn time_zone(&self) -> &'static str {
        self.tz.name()
    }

    /// The first fire time strictly after `t`, or `None` when there is none in the
    /// representable future. A scheduler sleeps until this instant.
    ///
    /// Jumps by month, day, hour and minute (never a minute-by-minute scan), so a schedule
    /// that fires once every four years costs a few hundred steps.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let mut cursor = self.local_minute(t)?.plus_minute();
        let limit = cursor.year.saturating_add(SEARCH_YEARS);
        loop {
            let wall = self.next_wall_clock(cursor, limit)?;
            // Wall-clock times map to instants monotonically, so the first match whose
            // instant is after `t` is the answer. Earlier matches only occur while `t` is
            // in the second pass of a repeated hour; they already fired.
            match self.instant_of(wall) {
                Instant::At(fire) if fire > t => return Some(fire),
                Instant::At(_) | Instant::Unknown => cursor = wall.plus_minute(),
                Instant::OutOfRange => return None,
            }
        }
    }

    /// The latest fire time at or before `t`: the fire a catch-up run is for.
    pub fn latest_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        let here = self.local_minute(t)?;
        // Any matching wall-clock time at or before the local time of `t` fired at or
        // before `t`; later ones can too while `t` is in a repeated hour, so walk forward.
        let mut best = match self.prev_wall_clock(here, here.year.saturating_sub(SEARCH_YEARS)) {
            Some(wall) => match self.instant_of(wall) {
                Instant::At(fire) if fire <= t => Some(fire),
                _ => None,
            },
            None => None,
        };
        let lookback = i64::from(SEARCH_YEARS + 1) * 366 * 86_400 * MICROS_PER_SECOND;
        let mut cursor = best.unwrap_or_else(|| Timestamp::from_micros(t.as_micros().saturating_sub(lookback)));
        while let Some(fire) = self.next_after(cursor) {
            if fire > t {
                break;
            }
            best = Some(fire);
            cursor = fire;
        }
        best
    }

    /// Fire times in `(after, up_to]`, at most `limit` of them, oldest first: for previews
    /// ("the next 5 runs") and for counting the fires a catch-up collapses.
    pub fn fires_between(&self, after: Timestamp, up_to: Timestamp, limit: usize) -> Vec<Timestamp> {
        let mut fires = Vec::new();
        let mut cursor = after;
        while fires.len() < limit {
            match self.next_after(cursor) {
                Some(fire) if fire <= up_to => {
                    fires.push(fire);
                    cursor = fire;
                }
                _ => break,
            }
        }
        fires
    }

    /// The wall-clock minute containing `t` in the schedule's zone.
    fn local_minute(&self, t: Timestamp) -> Option<Civil> {
        let local = DateTime::<Utc>::from_timestamp_micros(t.as_micros())?.with_timezone(&self.tz).naive_local();
        Some(Civil {
            year: local.year(),
            month: local.month(),
            day: local.day(),
            hour: local.hour(),
            minute: local.minute(),
        })
    }

    /// The Vixie/Kubernetes day rule.
    fn day_matches(&self, year: i32, month: u32, day: u32) -> bool {
        let dom = self.days_of_month.contains(day);
        let dow = self.days_of_week.contains(weekday(year, month, day));
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first matching wall-clock minute at or after `c`, searching up to year `limit`.
    fn next_wall_clock(&self, mut c: Civil, limit: i32) -> Option<Civil> {
        loop {
            if c.year > limit {
                return None;
            }
            match self.months.next_from(c.month) {
                None => {
                    c = Civil { year: c.year.checked_add(1)?, month: 1, day: 1, hour: 0, minute: 0 };
                    continue;
                }
                Some(m) if m != c.month => c = Civil { year: c.year, month: m, day: 1, hour: 0, minute: 0 },
                Some(_) => {}
            }
            if !self.day_matches(c.year, c.month, c.day) {
                c = c.next_day_start();
                continue;
            }
            match self.hours.next_from(c.hour) {
                None => {
                    c = c.next_day_start();
                    continue;
                }
                Some(h) if h != c.hour => {
                    c.hour = h;
                    c.minute = 0;
                }
                Some(_) => {}
            }
            match self.minutes.next_from(c.minute) {
                None => c = c.next_hour_start(),
                Some(m) => {
                    c.minute = m;
                    return Some(c);
                }
            }
        }
    }

    /// The last matching wall-clock minute at or before `c`, searching back to year `limit`.
    fn prev_wall_clock(&self, mut c: Civil, limit: i32) -> Option<Civil> {
        loop {
            if c.year < limit {
                return None;
            }
            match self.months.prev_from(c.month) {
                None => {
                    c = Civil { year: c.year.checked_sub(1)?, month: 12, day: 31, hour: 23, minute: 59 };
                    continue;
                }
                Some(m) if m != c.month => {
                    c = Civil { year: c.year, month: m, day: days_in_month(c.year, m), hour: 23, minute: 59 }
                }
                Some(_) => {}
            }
            if !self.day_matches(c.year, c.month, c.day) {
                c = c.prev_day_end();
                continue;
            }
            match self.hours.prev_from(c.hour) {
                None => {
                    c = c.prev_day_end();
                    continue;
                }
                Some(h) if h != c.hour => {
                    c.hour = h;
                    c.minute = 59;
                }
                Some(_) => {}
            }
            match self.minutes.prev_from(c.minute) {
                None => c = c.prev_hour_end(),
                Some(m) => {
                    c.minute = m;
                    return Some(c);
                }
            }
        }
    }

    /// The instant a matching wall-clock minute fires at: the earliest instant whose local
    /// time is at or past it. That is the unique instant for an ordinary time, the first
    /// occurrence for a repeated one, and the end of the gap for a skipped one.
    fn instant_of(&self, c: Civil) -> Instant {
        let Some(wall) =
            NaiveDate::from_ymd_opt(c.year, c.month, c.day).and_then(|d| d.and_hms_opt(c.hour, c.minute, 0))
        else {
            return Instant::OutOfRange;
        };
        let micros = |dt: DateTime<Tz>| Timestamp::from_micros(dt.timestamp_micros());
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(dt) => Instant::At(micros(dt)),
            LocalResult::Ambiguous(a, b) => Instant::At(micros(a).min(micros(b))),
            LocalResult::None => self.gap_end(wall.and_utc().timestamp()).map_or(Instant::Unknown, Instant::At),
        }
    }

    /// The first instant (a whole second: zone transitions always are) whose local time,
    /// as seconds since the epoch read as UTC, is at least `wall_seconds`.
    fn gap_end(&self, wall_seconds: i64) -> Option<Timestamp> {
        let local = |s: i64| -> Option<i64> {
            let utc = DateTime::<Utc>::from_timestamp(s, 0)?.naive_utc();
            Some(s + i64::from(self.tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()))
        };
        let (mut lo, mut hi) = (wall_seconds - GAP_SEARCH_SECONDS, wall_seconds + GAP_SEARCH_SECONDS);
        if local(lo)? >= wall_seconds || local(hi)? < wall_seconds {
            return None;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if local(mid)? >= wall_seconds {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi.checked_mul(MICROS_PER_SECOND).map(Timestamp::from_micros)
    }
}

/// Where a wall-clock minute lands on the time line.
enum Instant {
    /// It fires at this instant.
    At(Timestamp),
    /// The zone data could not place it (never seen with real zones); skip it.
    Unknown,
    /// Beyond the dates chrono can represent; the search ends.
    OutOfRange,
}

impl FromStr for CronSchedule {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for CronSchedule {
    type Error = CronError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<CronSchedule> for String {
    fn from(c: CronSchedule) -> String {
        c.to_string()
    }
}

impl fmt::Display for CronSchedule {
    /// The normalized expression: `TZ=<zone> ` unless the zone is UTC, then the five
    /// fields upper-cased and single-spaced, macros expanded. It parses back to an equal
    /// schedule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tz != Tz::UTC {
            write!(f, "TZ={} ", self.tz.name())?;
        }
        f.write_str(&self.fields.join(" "))
    }
}

/// A wall-clock minute; field order makes the derived ordering chronological.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Civil {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
}

impl Civil {
    fn plus_minute(self) -> Civil {
        if self.minute < 59 {
            Civil { minute: self.minute + 1, ..self }
        } else {
            self.next_hour_start()
        }
    }

    fn next_hour_start(self) -> Civil {
        if self.hour < 23 {
            Civil { hour: self.hour + 1, minute: 0, ..self }
        } else {
            self.next_day_start()
        }
    }

    fn next_day_start(self) -> Civil {
        if self.day < days_in_month(self.year, self.month) {
            Civil { day: self.day + 1, hour: 0, minute: 0, ..self }
        } else if self.month < 12 {
            Civil { month: self.month + 1, day: 1, hour: 0, minute: 0, ..self }
        } else {
            Civil { year: self.year.saturating_add(1), month: 1, day: 1, hour: 0, minute: 0 }
        }
    }

    fn prev_hour_end(self) -> Civil {
        if self.hour > 0 {
            Civil { hour: self.hour - 1, minute: 59, ..self }
        } else {
            self.prev_day_end()
        }
    }

    fn prev_day_end(self) -> Civil {
        if self.day > 1 {
            Civil { day: self.day - 1, hour: 23, minute: 59, ..self }
        } else if self.month > 1 {
            let month = self.month - 1;
            Civil { month, day: days_in_month(self.year, month), hour: 23, minute: 59, ..self }
        } else {
            Civil { year: self.year.saturating_sub(1), month: 12, day: 31, hour: 23, minute: 59 }
        }
    }
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days the month can have in any year (29 for February).
fn max_days_in_month(month: u32) -> u32 {
    days_in_month(2000, month)
}

/// Day of the week, 0 = Sunday (Howard Hinnant's days-from-civil; 1970-01-01 was a Thursday).
fn weekday(year: i32, month: u32, day: u32) -> u32 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days + 4).rem_euclid(7) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cron(s: &str) -> CronSchedule {
        CronSchedule::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ts(rfc3339: &str) -> Timestamp {
        let dt = DateTime::parse_from_rfc3339(rfc3339).unwrap_or_else(|e| panic!("{rfc3339}: {e}"));
        Timestamp::from_micros(dt.timestamp_micros())
    }

    fn next(expr: &str, after: &str) -> String {
        cron(expr).next_after(ts(after)).unwrap().to_rfc3339()
    }

    fn members(bits: Bits) -> Vec<u32> {
        (0..64).filter(|v| bits.contains(*v)).collect()
    }

    fn err(s: &str) -> String {
        CronSchedule::parse(s).unwrap_err().to_string()
    }

    /// Whether a wall-clock minute matches the parsed fields (the reference for properties).
    fn matches(c: &CronSchedule, w: &Civil) -> bool {
        c.minutes.contains(w.minute)
            && c.hours.contains(w.hour)
            && c.months.contains(w.month)
            && c.day_matches(w.year, w.month, w.day)
    }

    /// Each syntax form selects exactly the expected values.
    #[test]
    fn parses_every_field_form() {
        let c = cron("*/15 1-3,5 1-10/3 */4 *");
        assert_eq!(members(c.minutes), vec![0, 15, 30, 45]);
        assert_eq!(members(c.hours), vec![1, 2, 3, 5]);
        assert_eq!(members(c.days_of_month), vec![1, 4, 7, 10]);
        assert_eq!(members(c.months), vec![1, 5, 9]);
        assert_eq!(members(c.days_of_week), (0..7).collect::<Vec<_>>());
        assert!(!c.dom_star && c.dow_star);

        let c = cron("5/20 23 * * *");
        assert_eq!(members(c.minutes), vec![5, 25, 45], "a/n means a-max/n");
        assert_eq!(members(c.hours), vec![23]);
        assert!(c.dom_star && c.dow_star);
        assert_eq!(members(cron("0 0 ? * ?").days_of_month), (1..=31).collect::<Vec<_>>());
        assert_eq!(members(cron("0 0 * * 1-5/2").days_of_week), vec![1, 3, 5]);
        assert_eq!(members(cron("0 0 * * 5-7").days_of_week), vec![0, 5, 6], "7 is Sunday");
        assert_eq!(members(cron("0 0 * * 0").days_of_week), vec![0]);
        assert_eq!(members(cron("0 0 * * 7").days_of_week), vec![0]);
        assert_eq!(members(cron("0\t0  *   * *").minutes), vec![0], "any whitespace separates fields");
    }

    /// Month and weekday names work in any case, alone, in ranges and lists.
    #[test]
    fn parses_names_case_insensitively() {
        let c = cron("0 9 * jan-Mar,DEC mon-FRI");
        assert_eq!(members(c.months), vec![1, 2, 3, 12]);
        assert_eq!(members(c.days_of_week), vec![1, 2, 3, 4, 5]);
        assert_eq!(c.to_string(), "0 9 * JAN-MAR,DEC MON-FRI");
        assert_eq!(members(cron("0 0 * * sun,SAT").days_of_week), vec![0, 6]);
        assert_eq!(members(cron("0 0 * FEB/2 *").months), vec![2, 4, 6, 8, 10, 12]);
    }

    /// Every macro expands to its standard five fields, in any case.
    #[test]
    fn parses_macros() {
        for (m, expanded) in [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@hourly", "0 * * * *"),
            ("@DAILY", "0 0 * * *"),
        ] {
            assert_eq!(cron(m), cron(expanded), "{m}");
            assert_eq!(cron(m).to_string(), expanded);
        }
        assert_eq!(cron("TZ=Europe/Berlin @daily").to_string(), "TZ=Europe/Berlin 0 0 * * *");
    }

    /// Both zone prefixes select the zone; UTC needs no prefix; Display round-trips.
    #[test]
    fn parses_time_zone_prefixes() {
        assert_eq!(cron("TZ=Europe/Berlin 30 2 * * *").time_zone(), "Europe/Berlin");
        assert_eq!(cron("CRON_TZ=America/New_York 0 9 * * *").time_zone(), "America/New_York");
        assert_eq!(cron("  CRON_TZ=Asia/Tokyo   0 9 * * *  ").to_string(), "TZ=Asia/Tokyo 0 9 * * *");
        assert_eq!(cron("0 9 * * *").time_zone(), "UTC");
        assert_eq!(cron("TZ=UTC 0 9 * * *"), cron("0 9 * * *"));
        for s in ["TZ=Europe/Berlin 30 2 * * *", "*/5 * * * MON", "CRON_TZ=Australia/Lord_Howe @hourly"] {
            let c = cron(s);
            assert_eq!(cron(&c.to_string()), c, "{s}");
        }
        let json = serde_json::to_string(&cron("0 0 * * *")).unwrap();
        assert_eq!(json, "\"0 0 * * *\"");
        let back: CronSchedule = serde_json::from_str("\"TZ=Europe/Berlin 0 0 * * mon\"").unwrap();
        assert_eq!(back.to_string(), "TZ=Europe/Berlin 0 0 * * MON");
        assert!(serde_json::from_str::<CronSchedule>("\"0 24 * * *\"").is_err());
    }

    /// Each malformed field is rejected with a message naming the field and the fix.
    #[test]
    fn rejects_bad_fields_naming_the_field() {
        let cases = [
            ("0 24 * * *", "field 2 (hour): 24 is out of range 0-23"),
            ("60 * * * *", "field 1 (minute): 60 is out of range 0-59"),
            ("0 0 0 * *", "field 3 (day-of-month): 0 is out of range 1-31"),
            ("0 0 32 * *", "field 3 (day-of-month): 32 is out of range 1-31"),
            ("0 0 * 13 *", "field 4 (month): 13 is out of range 1-12"),
            ("0 0 * 0 *", "field 4 (month): 0 is out of range 1-12"),
            ("0 0 * * 8", "field 5 (day-of-week): 8 is out of range 0-7"),
            ("99999999999 * * * *", "field 1 (minute): 99999999999 is out of range 0-59"),
            ("x * * * *", "field 1 (minute): `x` is not a number 0-59"),
            ("0 MON * * *", "field 2 (hour): `MON` is not a number 0-23"),
            ("0 0 * FOO *", "field 4 (month): `FOO` is not a number 1-12 or a month name JAN-DEC"),
            ("0 0 * * Monday", "field 5 (day-of-week): `Monday` is not a number 0-7 (0 and 7 are Sunday)"),
            ("0 0 L * *", "field 3 (day-of-month): `L` is not a number 1-31"),
            ("0 0 * * 5#3", "field 5 (day-of-week): `5#3` is not a number 0-7"),
            ("? * * * *", "field 1 (minute): `?` is not a number 0-59"),
            ("1,,2 * * * *", "field 1 (minute): empty value in `1,,2`"),
            ("1, * * * *", "field 1 (minute): empty value"),
            ("-5 * * * *", "field 1 (minute): empty value in `-5`"),
            ("0 1- * * *", "field 2 (hour): empty value in `1-`"),
            ("*/ * * * *", "field 1 (minute): empty value in `*/`"),
            ("0 22-2 * * *", "field 2 (hour): range 22-2 runs backwards; cron ranges do not wrap around, write a list such as `22-23,0-2` instead"),
            ("0 0 * * FRI-MON", "field 5 (day-of-week): range 5-1 runs backwards; cron ranges do not wrap around, write a list such as `5-6,0-1` instead"),
            ("*/0 * * * *", "field 1 (minute): step `0` must be a whole number from 1 to 60"),
            ("*/61 * * * *", "field 1 (minute): step `61` must be a whole number from 1 to 60"),
            ("0 */x * * *", "field 2 (hour): step `x` must be a whole number from 1 to 24"),
            ("0 0 * * */-1", "field 5 (day-of-week): step `-1` must be a whole number from 1 to 7"),
            ("1-2-3 * * * *", "field 1 (minute): `2-3` is not a number 0-59"),
        ];
        for (expr, expected) in cases {
            let message = err(expr);
            assert!(message.starts_with(expected), "{expr}: got {message:?}, want prefix {expected:?}");
        }
    }

    /// Wrong field counts, macros, prefixes and zones are rejected with a fix in the message.
    #[test]
    fn rejects_bad_structure() {
        assert_eq!(
            err("0 0 9 * * *"),
            "expected 5 fields (minute hour day-of-month month day-of-week), found 6; seconds are not supported \
             (nor is a year field): remove the extra field"
        );
        assert!(err("0 0 9 * * * 2026").contains("found 7; seconds and years are not supported"));
        assert!(err("0 9 * *").contains("found 4; add the missing fields"));
        assert!(err("0 9 * * 1, 2, 3").contains("found 7"));
        assert!(err("0 9 * * 1, 2, 3, 4").contains("found 8; separate fields with spaces only"));
        assert_eq!(CronSchedule::parse("   "), Err(CronError::Empty));
        assert_eq!(CronSchedule::parse("TZ=UTC"), Err(CronError::Empty));
        assert!(err("@reboot").starts_with("unknown macro `@reboot`: expected one of @yearly"));
        assert!(err("@every 5m").starts_with("unknown macro `@every`"));
        assert_eq!(
            err("@daily 5"),
            "macro `@daily` is a whole schedule and takes no fields, but `5` follows it; remove it or write 5 fields"
        );
        assert_eq!(
            err("TZ=Europe/Berln 0 9 * * *"),
            "unknown time zone `Europe/Berln`: use an IANA zone name such as `UTC`, `Europe/Berlin` or \
             `America/New_York` (names are case-sensitive)"
        );
        assert!(err("CRON_TZ=europe/berlin 0 9 * * *").contains("unknown time zone `europe/berlin`"));
        assert_eq!(err("TZ= 0 9 * * *"), "`TZ=` names no time zone: write it like `TZ=Europe/Berlin 0 9 * * *`");
        assert!(err("CRON_TZ= 0 9 * * *").starts_with("`CRON_TZ=` names no time zone"));
    }

    /// Schedules whose day never exists are rejected; the OR rule and Feb 29 are not.
    #[test]
    fn rejects_schedules_that_never_fire() {
        assert_eq!(
            err("0 0 30 2 *"),
            "the schedule can never fire: field 3 (day-of-month) `30` never occurs in field 4 (month) `2` while \
             field 5 (day-of-week) is `*`; choose days that exist in those months"
        );
        assert!(matches!(CronSchedule::parse("0 0 31 4,6,9,11 *"), Err(CronError::NeverFires { .. })));
        assert!(matches!(CronSchedule::parse("0 0 30,31 FEB ?"), Err(CronError::NeverFires { .. })));
        cron("0 0 29 2 *");
        cron("0 0 30 2 MON"); // fires on Mondays in February
        cron("0 0 31 2,3 *");
    }

    /// Steps, weekday ranges and month boundaries give the known next fire times.
    #[test]
    fn next_fire_for_known_instants() {
        assert_eq!(next("*/15 * * * *", "2026-11-27T10:49:25Z"), "2026-11-27T11:00:00.000Z");
        assert_eq!(next("*/15 * * * *", "2026-11-27T11:00:00Z"), "2026-11-27T11:15:00.000Z");
        assert_eq!(next("*/15 * * * *", "2026-12-31T23:59:59.999Z"), "2027-01-01T00:00:00.000Z");
        // Friday after 09:00 → Monday; Saturday → Monday; Monday 08:59 → same day.
        assert_eq!(next("0 9 * * MON-FRI", "2026-11-27T09:00:00Z"), "2026-11-30T09:00:00.000Z");
        assert_eq!(next("0 9 * * MON-FRI", "2026-11-28T12:00:00Z"), "2026-11-30T09:00:00.000Z");
        assert_eq!(next("0 9 * * MON-FRI", "2026-11-30T08:59:00Z"), "2026-11-30T09:00:00.000Z");
        // Month starts across month lengths and leap years.
        assert_eq!(next("0 0 1 * *", "2026-01-31T12:00:00Z"), "2026-02-01T00:00:00.000Z");
        assert_eq!(next("0 0 1 * *", "2028-02-29T23:59:00Z"), "2028-03-01T00:00:00.000Z");
        assert_eq!(next("0 0 1 * *", "2026-12-01T00:00:00Z"), "2027-01-01T00:00:00.000Z");
        assert_eq!(next("0 0 31 * *", "2026-04-01T00:00:00Z"), "2026-05-31T00:00:00.000Z");
        // Feb 29 waits for the next leap year, skipping 2100 (not a leap year).
        assert_eq!(next("0 0 29 2 *", "2026-11-27T00:00:00Z"), "2028-02-29T00:00:00.000Z");
        assert_eq!(next("0 0 29 2 *", "2028-02-29T00:00:00Z"), "2032-02-29T00:00:00.000Z");
        assert_eq!(next("0 0 29 2 *", "2096-03-01T00:00:00Z"), "2104-02-29T00:00:00.000Z");
        assert_eq!(next("@yearly", "2026-06-01T00:00:00Z"), "2027-01-01T00:00:00.000Z");
        assert_eq!(next("@weekly", "2026-11-27T00:00:00Z"), "2026-11-29T00:00:00.000Z");
        assert_eq!(next("@hourly", "1969-12-31T23:30:00Z"), "1970-01-01T00:00:00.000Z");
    }

    /// With both day fields restricted a day matches if either does; with one `*`, both must.
    #[test]
    fn day_of_month_or_day_of_week() {
        // 2026-11-13 is a Friday; 2026-11-01 a Sunday.
        let or = cron("0 0 1 * FRI");
        assert_eq!(or.fires_between(ts("2026-10-31T00:00:00Z"), ts("2026-11-30T00:00:00Z"), 10).len(), 5);
        assert_eq!(next("0 0 1 * FRI", "2026-10-31T00:00:00Z"), "2026-11-01T00:00:00.000Z");
        assert_eq!(next("0 0 1 * FRI", "2026-11-01T00:00:00Z"), "2026-11-06T00:00:00.000Z");
        // `*` in day-of-month: weekday alone.
        assert_eq!(next("0 0 * * FRI", "2026-10-31T00:00:00Z"), "2026-11-06T00:00:00.000Z");
        // `*/2` counts as restricted (as in Kubernetes), so the OR rule applies.
        let odd_or_sunday = cron("0 0 */2 * SUN");
        assert!(!odd_or_sunday.dom_star && !odd_or_sunday.dow_star);
        assert_eq!(
            odd_or_sunday.next_after(ts("2026-11-07T00:00:00Z")).unwrap().to_rfc3339(),
            "2026-11-08T00:00:00.000Z"
        );
        // `?` is unrestricted: the other field alone decides.
        assert_eq!(next("0 0 13 * ?", "2026-11-01T00:00:00Z"), "2026-11-13T00:00:00.000Z");
    }

    /// Berlin `30 2 * * *`: on the spring-forward day the skipped 02:30 fires once at 03:00
    /// CEST; on the fall-back day the repeated 02:30 fires once, at its first (CEST) occurrence.
    #[test]
    fn berlin_dst_changes() {
        let c = cron("TZ=Europe/Berlin 30 2 * * *");
        let march = c.fires_between(ts("2026-03-27T12:00:00Z"), ts("2026-03-31T00:00:00Z"), 10);
        let march: Vec<String> = march.into_iter().map(Timestamp::to_rfc3339).collect();
        assert_eq!(
            march,
            ["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"],
            "CET 02:30, then the gap end 03:00 CEST, then CEST 02:30"
        );
        let october = c.fires_between(ts("2026-10-23T12:00:00Z"), ts("2026-10-27T00:00:00Z"), 10);
        let october: Vec<String> = october.into_iter().map(Timestamp::to_rfc3339).collect();
        assert_eq!(
            october,
            ["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"],
            "CEST 02:30, the first of the two 02:30s (CEST), then CET 02:30"
        );
        // Asked from inside the second pass of the repeated hour, the 02:30 is not repeated.
        assert_eq!(c.next_after(ts("2026-10-25T01:10:00Z")).unwrap().to_rfc3339(), "2026-10-26T01:30:00.000Z");
        assert_eq!(c.latest_at_or_before(ts("2026-10-25T01:45:00Z")).unwrap().to_rfc3339(), "2026-10-25T00:30:00.000Z");
        assert_eq!(c.latest_at_or_before(ts("2026-03-29T01:00:00Z")).unwrap().to_rfc3339(), "2026-03-29T01:00:00.000Z");
    }

    /// Several matching times inside one gap collapse into one fire at its end; every-15-minute
    /// schedules keep their rhythm around both changes.
    #[test]
    fn gap_collapses_and_fold_fires_once() {
        let c = cron("TZ=America/New_York */30 * * * *");
        // 2026-03-08: 02:00 EST → 03:00 EDT at 07:00Z. Local 01:30 EST, [02:00, 02:30] → 03:00 EDT, 03:30.
        let spring: Vec<String> = c
            .fires_between(ts("2026-03-08T06:00:00Z"), ts("2026-03-08T07:45:00Z"), 10)
            .into_iter()
            .map(Timestamp::to_rfc3339)
            .collect();
        assert_eq!(spring, ["2026-03-08T06:30:00.000Z", "2026-03-08T07:00:00.000Z", "2026-03-08T07:30:00.000Z"]);
        // 2026-11-01: 02:00 EDT → 01:00 EST at 06:00Z. 01:00 and 01:30 fire once (EDT), then 02:00 EST.
        let fall: Vec<String> = c
            .fires_between(ts("2026-11-01T04:45:00Z"), ts("2026-11-01T07:30:00Z"), 10)
            .into_iter()
            .map(Timestamp::to_rfc3339)
            .collect();
        assert_eq!(
            fall,
            [
                "2026-11-01T05:00:00.000Z",
                "2026-11-01T05:30:00.000Z",
                "2026-11-01T07:00:00.000Z",
                "2026-11-01T07:30:00.000Z"
            ]
        );
    }

    /// `CRON_TZ=America/New_York 0 9 * * *` is 13:00 UTC in summer and 14:00 UTC in winter.
    #[test]
    fn new_york_in_utc_terms() {
        assert_eq!(next("CRON_TZ=America/New_York 0 9 * * *", "2026-07-01T00:00:00Z"), "2026-07-01T13:00:00.000Z");
        assert_eq!(next("CRON_TZ=America/New_York 0 9 * * *", "2026-12-01T00:00:00Z"), "2026-12-01T14:00:00.000Z");
        assert_eq!(next("CRON_TZ=America/New_York 0 9 * * *", "2026-12-01T14:00:00Z"), "2026-12-02T14:00:00.000Z");
        // Samoa skipped 2011-12-30 entirely: the midnight of that day fires when the gap ends.
        assert_eq!(next("TZ=Pacific/Apia 0 0 30 12 *", "2011-12-01T00:00:00Z"), "2011-12-30T10:00:00.000Z");
    }

    /// `latest_at_or_before` agrees with `next_after` and includes an exact hit.
    #[test]
    fn latest_at_or_before_known_instants() {
        let c = cron("*/15 * * * *");
        assert_eq!(c.latest_at_or_before(ts("2026-11-27T10:49:25Z")).unwrap().to_rfc3339(), "2026-11-27T10:45:00.000Z");
        assert_eq!(c.latest_at_or_before(ts("2026-11-27T10:45:00Z")).unwrap().to_rfc3339(), "2026-11-27T10:45:00.000Z");
        assert_eq!(
            cron("0 0 29 2 *").latest_at_or_before(ts("2031-01-01T00:00:00Z")).unwrap().to_rfc3339(),
            "2028-02-29T00:00:00.000Z"
        );
        assert_eq!(
            cron("0 9 * * MON-FRI").latest_at_or_before(ts("2026-11-29T23:00:00Z")).unwrap().to_rfc3339(),
            "2026-11-27T09:00:00.000Z"
        );
    }

    /// `fires_between` is bounded by both its end and its limit.
    #[test]
    fn fires_between_respects_bounds() {
        let c = cron("@hourly");
        let (a, b) = (ts("2026-11-27T00:00:00Z"), ts("2026-11-27T05:00:00Z"));
        assert_eq!(c.fires_between(a, b, 100).len(), 5);
        assert_eq!(c.fires_between(a, b, 2).len(), 2);
        assert!(c.fires_between(b, a, 100).is_empty());
    }

    /// Fifty successive Feb 29 fires (two centuries) are found quickly: the search skips by
    /// month and day instead of scanning minutes.
    #[test]
    fn rare_schedules_are_cheap() {
        let c = cron("TZ=Europe/Berlin 0 0 29 2 *");
        let start = std::time::Instant::now();
        let mut t = ts("2000-01-01T00:00:00Z");
        for _ in 0..50 {
            t = c.next_after(t).unwrap();
        }
        assert!(t > ts("2190-01-01T00:00:00Z"));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    fn field_strategy(min: u32, max: u32, max_step: u32) -> impl Strategy<Value = String> {
        let value = min..=max;
        prop_oneof![
            Just("*".to_owned()),
            value.clone().prop_map(|v| v.to_string()),
            (value.clone(), value.clone()).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            (1..=max_step).prop_map(|s| format!("*/{s}")),
            (value.clone(), value.clone(), 1_u32..5).prop_map(|(a, b, s)| format!("{}-{}/{s}", a.min(b), a.max(b))),
            (value.clone(), value).prop_map(|(a, b)| format!("{a},{b}")),
        ]
    }

    fn expression_strategy() -> impl Strategy<Value = String> {
        (
            field_strategy(0, 59, 60),
            field_strategy(0, 23, 24),
            field_strategy(1, 31, 31),
            field_strategy(1, 12, 12),
            field_strategy(0, 7, 7),
        )
            .prop_map(|(a, b, c, d, e)| format!("{a} {b} {c} {d} {e}"))
    }

    const ZONES: [&str; 8] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "America/Santiago",
        "Asia/Kolkata",
        "Pacific/Apia",
    ];

    /// Whether `fire` is the end of a gap that skipped a matching wall-clock minute.
    fn ends_matching_gap(c: &CronSchedule, fire: Timestamp) -> bool {
        let (Some(after), Some(before)) =
            (c.local_minute(fire), c.local_minute(Timestamp::from_micros(fire.as_micros() - 1)))
        else {
            return false;
        };
        let mut w = before.plus_minute();
        while w < after {
            if matches(c, &w) {
                return true;
            }
            w = w.plus_minute();
        }
        false
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// For any expression, zone and instant: the next fire is later, matches the fields
        /// in the zone (or ends a gap that skipped a match), is found again from 1µs before
        /// it, and no fire lies between `t` and it.
        #[test]
        fn next_after_is_the_next_match(
            expr in expression_strategy(),
            zone in 0..ZONES.len(),
            micros in 0_i64..4_102_444_800_000_000,
        ) {
            let parsed = CronSchedule::parse(&format!("TZ={} {expr}", ZONES[zone]));
            prop_assume!(parsed.is_ok());
            let c = parsed.unwrap();
            let t = Timestamp::from_micros(micros);
            let n = c.next_after(t).expect("every accepted schedule fires within 12 years");
            prop_assert!(n > t);
            let local = c.local_minute(n).unwrap();
            let on_the_minute = n.as_micros() % 60_000_000 == 0;
            prop_assert!((matches(&c, &local) && on_the_minute) || ends_matching_gap(&c, n), "{c} fired at {n}");
            prop_assert_eq!(c.next_after(Timestamp::from_micros(n.as_micros() - 1)), Some(n));
            let before = c.latest_at_or_before(Timestamp::from_micros(n.as_micros() - 1));
            prop_assert!(before.is_none_or(|b| b <= t), "{c}: {before:?} lies between {t} and {n}");
            prop_assert_eq!(c.latest_at_or_before(n), Some(n));
        }

        /// Around real DST changes, the fire times equal a brute-force minute-by-minute
        /// reference: a UTC minute fires when its wall-clock minute matches and is seen for
        /// the first time, or when it ends a gap that skipped a matching minute.
        #[test]
        fn matches_brute_force_around_transitions(
            minute in prop_oneof![Just("*/7"), Just("0"), Just("30"), Just("15,45"), Just("*"), Just("5-20/5")],
            hour in prop_oneof![Just("*"), Just("2"), Just("1-3"), Just("*/2"), Just("0,2,23"), Just("1")],
            case in 0_usize..6,
            offset_minutes in -180_i64..180,
        ) {
            let (zone, transition) = [
                ("Europe/Berlin", "2026-03-29T01:00:00Z"),
                ("Europe/Berlin", "2026-10-25T01:00:00Z"),
                ("America/New_York", "2026-03-08T07:00:00Z"),
                ("America/New_York", "2026-11-01T06:00:00Z"),
                ("Australia/Lord_Howe", "2026-04-04T15:00:00Z"),
                ("Australia/Lord_Howe", "2026-10-03T15:30:00Z"),
            ][case];
            let c = cron(&format!("TZ={zone} {minute} {hour} * * *"));
            let t = Timestamp::from_micros(ts(transition).as_micros() + offset_minutes * 60_000_000 + 17);
            let end = Timestamp::from_micros(t.as_micros() + 20 * 3_600_000_000);
            let mut expected = Vec::new();
            let mut u = (t.as_micros() / 60_000_000 - 240) * 60_000_000;
            let mut high_water: Option<Civil> = None;
            let mut previous: Option<Civil> = None;
            while u <= end.as_micros() {
                let local = c.local_minute(Timestamp::from_micros(u)).unwrap();
                let first_seen = high_water.is_none_or(|h| local > h);
                let mut fires = first_seen && matches(&c, &local);
                if let Some(p) = previous {
                    let mut w = p.plus_minute();
                    while w < local {
                        fires |= matches(&c, &w);
                        w = w.plus_minute();
                    }
                }
                if fires && u > t.as_micros() {
                    expected.push(Timestamp::from_micros(u));
                }
                high_water = Some(high_water.map_or(local, |h| h.max(local)));
                previous = Some(local);
                u += 60_000_000;
            }
            prop_assert_eq!(c.fires_between(t, end, 10_000), expected);
        }
    }
}
