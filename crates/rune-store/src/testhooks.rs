//! Pause points for crash-safety tests.
//!
//! Tests kill a RUNE process with `SIGKILL` at the worst moments: between the statements
//! of a migration, half-way through a backup, between the two renames of a restore.
//! Setting `RUNE_TEST_PAUSE_AT=<point>[:<millis>]` makes the process print
//! `RUNE_PAUSED <point>` on stderr and sleep at that point, so a test can kill it there
//! deterministically. Unset (always, in production) it costs one environment lookup.

use std::io::Write;
use std::time::Duration;

/// Sleeps at `point` when `RUNE_TEST_PAUSE_AT` names it.
pub fn pause(point: &str) {
    let Ok(spec) = std::env::var("RUNE_TEST_PAUSE_AT") else { return };
    let (name, millis) = match spec.split_once(':') {
        Some((n, ms)) => (n, ms.parse().unwrap_or(10_000)),
        None => (spec.as_str(), 10_000),
    };
    if name == point {
        let mut err = std::io::stderr();
        let _ = writeln!(err, "RUNE_PAUSED {point}");
        let _ = err.flush();
        std::thread::sleep(Duration::from_millis(millis));
    }
}
