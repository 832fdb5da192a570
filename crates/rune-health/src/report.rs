//! The outcome of a health check run: named checks with a status and a reason, and the
//! exit code they add up to.

use serde::Serialize;
use std::fmt;

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// The condition holds.
    Pass,
    /// The condition does not hold (or could not be checked because something is
    /// unreachable; see [`Check::unreachable`]).
    Fail,
    /// Not applicable here (not configured, or not installed where that is allowed).
    Skip,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        })
    }
}

/// One named check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name (`pods-running`, `job-history`, …): scripts match on it.
    pub name: String,
    /// Outcome.
    pub status: Status,
    /// Why, in words a person can act on (what was seen, what to do).
    pub reason: String,
    /// True when the check failed because the cluster or the API did not answer: the
    /// run then exits 2, so automation can tell "broken" from "cannot tell".
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unreachable: bool,
}

impl Check {
    fn new(name: &str, status: Status, reason: impl Into<String>) -> Self {
        Self { name: name.into(), status, reason: reason.into(), unreachable: false }
    }

    /// A passed check.
    pub fn pass(name: &str, reason: impl Into<String>) -> Self {
        Self::new(name, Status::Pass, reason)
    }

    /// A failed check.
    pub fn fail(name: &str, reason: impl Into<String>) -> Self {
        Self::new(name, Status::Fail, reason)
    }

    /// A skipped check.
    pub fn skip(name: &str, reason: impl Into<String>) -> Self {
        Self::new(name, Status::Skip, reason)
    }

    /// A check that could not run because its target did not answer.
    pub fn unreachable(name: &str, reason: impl Into<String>) -> Self {
        Self { unreachable: true, ..Self::new(name, Status::Fail, reason) }
    }
}

/// Every check of one run, in order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

/// Every check passed or was skipped.
pub const EXIT_OK: i32 = 0;
/// At least one check failed.
pub const EXIT_FAILED: i32 = 1;
/// The cluster or the API could not be reached (takes precedence over [`EXIT_FAILED`]).
pub const EXIT_UNREACHABLE: i32 = 2;

impl Report {
    /// Appends a check.
    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// 0 all passed (or skipped), 1 a check failed, 2 something could not be reached.
    pub fn exit_code(&self) -> i32 {
        if self.checks.iter().any(|c| c.unreachable) {
            EXIT_UNREACHABLE
        } else if self.checks.iter().any(|c| c.status == Status::Fail) {
            EXIT_FAILED
        } else {
            EXIT_OK
        }
    }

    /// The check called `name`, if it ran.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unreachable beats failed beats passed; skips never fail a run.
    #[test]
    fn exit_code_precedence() {
        let mut r = Report::default();
        assert_eq!(r.exit_code(), EXIT_OK, "nothing ran: nothing failed");
        r.push(Check::skip("a", "n/a"));
        r.push(Check::pass("b", "ok"));
        assert_eq!(r.exit_code(), EXIT_OK);
        r.push(Check::fail("c", "bad"));
        assert_eq!(r.exit_code(), EXIT_FAILED);
        r.push(Check::unreachable("d", "down"));
        assert_eq!(r.exit_code(), EXIT_UNREACHABLE);
        assert_eq!(r.get("c").map(|c| c.status), Some(Status::Fail));
    }

    /// JSON uses upper-case statuses and omits `unreachable` when false.
    #[test]
    fn json_shape() {
        let v = serde_json::to_value(Check::pass("x", "fine")).unwrap();
        assert_eq!(v, serde_json::json!({"name": "x", "status": "PASS", "reason": "fine"}));
        let v = serde_json::to_value(Check::unreachable("y", "down")).unwrap();
        assert_eq!(v["unreachable"], true);
        assert_eq!(v["status"], "FAIL");
    }
}
