//! What a scheduler should do now: fire, catch up, skip or wait.
//!
//! This module owns the decision a scheduler makes on every tick — the API server's
//! embedded scheduler over DB-stored schedules and the Kubernetes operator over
//! `RuneBenchmark`s both call [`decide`], so a schedule behaves the same wherever it runs.
//! It also owns status-history pruning ([`retained_history`]) and the idempotency key of a
//! fire ([`fire_key`]). Like the rest of `rune-core` it does no I/O and never reads the
//! clock: the caller passes `now`, acts on the [`Decision`] and stores the result.
//!
//! # Semantics (Kubernetes CronJob, with two documented differences)
//!
//! - Fires are due when they are after `last_schedule_time` (or after `created_at` when
//!   the schedule never fired) and at or before `now`.
//! - Several due fires collapse into **one** catch-up run for the most recent of them.
//! - With `starting_deadline_seconds`, that run is skipped when it is more than that many
//!   seconds late.
//! - `Allow` runs alongside active runs, `Forbid` skips while one is active, `Replace`
//!   fires and names the active runs to cancel.
//! - A skipped fire is *handled*: the caller records it as `last_schedule_time` so it is
//!   not retried. (Kubernetes leaves a `Forbid`-blocked fire pending and may start it late
//!   when the active run ends; RUNE never starts a benchmark at a surprise time.)
//! - Fires missed while suspended count as missed: on resume they collapse into one
//!   catch-up run, subject to the deadline, as in Kubernetes. A caller that wants a resume
//!   without catch-up (E-Stop release) sets `last_schedule_time` to the resume time.
//! - If an active run already carries the due fire's scheduled time, the fire was acted on
//!   before a crash lost the bookkeeping: [`Decision::AlreadyStarted`] says to record it,
//!   never to start (or, under `Replace`, cancel) it again.

use crate::cron::CronSchedule;
use crate::records::{ConcurrencyPolicy, ScheduleRecord};
use crate::{JobId, JobStatus, Timestamp};
use std::fmt;

/// How many collapsed fires a decision counts before it stops counting: enough to say
/// "missed 100+" in an event without walking a year of every-minute fires.
pub const MISSED_COUNT_CAP: usize = 100;

/// A run started by this schedule that is not terminal yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveRun {
    /// The job, so `Replace` can name it for cancellation.
    pub job_id: JobId,
    /// The fire it was started for, so a fire is never started twice.
    pub scheduled_time: Timestamp,
}

/// Everything [`decide`] needs about one schedule, borrowed from the caller's own record.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleState<'a> {
    /// The parsed schedule.
    pub cron: &'a CronSchedule,
    /// Suspended schedules never fire (user suspend or E-Stop).
    pub suspended: bool,
    /// Fires at or before this instant are not due for a schedule that never fired.
    pub created_at: Timestamp,
    /// The last fire acted on (fired or skipped); fires at or before it are done.
    pub last_schedule_time: Option<Timestamp>,
    /// A fire more than this many seconds late is skipped instead of started.
    pub starting_deadline_seconds: Option<u64>,
    /// What to do when a fire is due while runs are active.
    pub concurrency_policy: ConcurrencyPolicy,
    /// The non-terminal runs this schedule started.
    pub active_runs: &'a [ActiveRun],
}

impl<'a> ScheduleState<'a> {
    /// The state of a stored schedule, given its parsed cron and its active runs (which
    /// the caller queries), so the embedded scheduler needs no field-by-field copying.
    pub fn from_record(record: &ScheduleRecord, cron: &'a CronSchedule, active_runs: &'a [ActiveRun]) -> Self {
        ScheduleState {
            cron,
            suspended: record.suspended,
            created_at: record.created_at,
            last_schedule_time: record.last_schedule_time,
            starting_deadline_seconds: record.starting_deadline_seconds,
            concurrency_policy: record.concurrency_policy,
            active_runs,
        }
    }
}

/// Why a due fire was not started; shown in events and history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `Forbid` and these runs are still active.
    ConcurrencyForbidden {
        /// The runs that blocked it.
        active: Vec<JobId>,
    },
    /// The fire is more than `starting_deadline_seconds` late.
    MissedDeadline {
        /// The deadline it missed.
        starting_deadline_seconds: u64,
        /// How late it would have started, in whole seconds.
        late_by_seconds: u64,
    },
}

impl SkipReason {
    /// A stable machine-readable code (Kubernetes event reason, metric label).
    pub const fn code(&self) -> &'static str {
        match self {
            SkipReason::ConcurrencyForbidden { .. } => "ConcurrencyForbidden",
            SkipReason::MissedDeadline { .. } => "MissedDeadline",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::ConcurrencyForbidden { active } => {
                let ids: Vec<&str> = active.iter().map(JobId::as_str).collect();
                write!(f, "previous run still active ({}) and concurrencyPolicy is Forbid", ids.join(", "))
            }
            SkipReason::MissedDeadline { starting_deadline_seconds, late_by_seconds } => {
                write!(f, "{late_by_seconds}s late, past startingDeadlineSeconds={starting_deadline_seconds}")
            }
        }
    }
}

/// What the scheduler should do now. Every variant with a `scheduled_time` asks the caller
/// to store it as `last_schedule_time` (see [`Decision::handled_time`]); every variant but
/// `Suspended` says when to wake up next (see [`Decision::next_wake`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a decision does nothing until the caller acts on it"]
pub enum Decision {
    /// Start a run for `scheduled_time`, after cancelling `cancel` (non-empty only under
    /// `Replace`).
    Fire {
        /// The fire being started; use it in [`fire_key`].
        scheduled_time: Timestamp,
        /// Earlier due fires collapsed into this one (counted up to [`MISSED_COUNT_CAP`]).
        missed: usize,
        /// Active runs to cancel first.
        cancel: Vec<JobId>,
        /// The fire after this one.
        next_fire: Option<Timestamp>,
    },
    /// Do not start `scheduled_time`, but record it as handled so it is not retried.
    Skip {
        /// The fire being skipped.
        scheduled_time: Timestamp,
        /// Earlier due fires collapsed into this one (counted up to [`MISSED_COUNT_CAP`]).
        missed: usize,
        /// Why.
        reason: SkipReason,
        /// The fire after this one.
        next_fire: Option<Timestamp>,
    },
    /// `scheduled_time` already has an active run (the record of it was lost): record it,
    /// start nothing.
    AlreadyStarted {
        /// The fire that already has a run.
        scheduled_time: Timestamp,
        /// The run started for it.
        job_id: JobId,
        /// The fire after this one.
        next_fire: Option<Timestamp>,
    },
    /// Nothing is due; sleep until `next_fire` (`None`: the schedule will never fire
    /// again within the representable future).
    Wait {
        /// The next fire after now.
        next_fire: Option<Timestamp>,
    },
    /// The schedule is suspended; nothing fires until it is resumed.
    Suspended,
}

impl Decision {
    /// The value to store as `last_schedule_time` after acting on this decision, if any.
    pub fn handled_time(&self) -> Option<Timestamp> {
        match self {
            Decision::Fire { scheduled_time, .. }
            | Decision::Skip { scheduled_time, .. }
            | Decision::AlreadyStarted { scheduled_time, .. } => Some(*scheduled_time),
            Decision::Wait { .. } | Decision::Suspended => None,
        }
    }

    /// When the scheduler should evaluate this schedule again.
    pub fn next_wake(&self) -> Option<Timestamp> {
        match self {
            Decision::Fire { next_fire, .. }
            | Decision::Skip { next_fire, .. }
            | Decision::AlreadyStarted { next_fire, .. }
            | Decision::Wait { next_fire } => *next_fire,
            Decision::Suspended => None,
        }
    }
}

/// Decides what to do with one schedule at `now`; see the module docs for the rules.
pub fn decide(state: &ScheduleState<'_>, now: Timestamp) -> Decision {
    if state.suspended {
        return Decision::Suspended;
    }
    let cron = state.cron;
    let baseline = state.last_schedule_time.unwrap_or(state.created_at);
    let due = cron.latest_at_or_before(now).filter(|t| *t > baseline);
    let Some(scheduled_time) = due else {
        return Decision::Wait { next_fire: cron.next_after(now.max(baseline)) };
    };
    let next_fire = cron.next_after(scheduled_time);

    if let Some(run) = state.active_runs.iter().find(|r| r.scheduled_time == scheduled_time) {
        return Decision::AlreadyStarted { scheduled_time, job_id: run.job_id.clone(), next_fire };
    }

    let before = Timestamp::from_micros(scheduled_time.as_micros() - 1);
    let missed = cron.fires_between(baseline, before, MISSED_COUNT_CAP).len();
    let skip = |reason| Decision::Skip { scheduled_time, missed, reason, next_fire };

    if let Some(deadline) = state.starting_deadline_seconds {
        let late_micros = now.as_micros().saturating_sub(scheduled_time.as_micros());
        let deadline_micros = i64::try_from(deadline).unwrap_or(i64::MAX).saturating_mul(1_000_000);
        if late_micros > deadline_micros {
            let late_by_seconds = u64::try_from(late_micros / 1_000_000).unwrap_or(0);
            return skip(SkipReason::MissedDeadline { starting_deadline_seconds: deadline, late_by_seconds });
        }
    }

    // Every active run counts, including one started by hand after this fire's time; the
    // run for this very fire returned `AlreadyStarted` above.
    let active: Vec<JobId> = state.active_runs.iter().map(|r| r.job_id.clone()).collect();
    match state.concurrency_policy {
        ConcurrencyPolicy::Forbid if !active.is_empty() => skip(SkipReason::ConcurrencyForbidden { active }),
        ConcurrencyPolicy::Forbid | ConcurrencyPolicy::Allow => {
            Decision::Fire { scheduled_time, missed, cancel: Vec::new(), next_fire }
        }
        ConcurrencyPolicy::Replace => Decision::Fire { scheduled_time, missed, cancel: active, next_fire },
    }
}

/// One run in a schedule's status history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The run.
    pub job_id: JobId,
    /// The fire it was started for; orders the history.
    pub scheduled_time: Timestamp,
    /// Its current status; decides which limit applies.
    pub status: JobStatus,
}

/// Splits a schedule's runs into those its history keeps and those it drops, both newest
/// first, so stored history stays bounded like a CronJob's `successfulJobsHistoryLimit`
/// and `failedJobsHistoryLimit`. The newest `successful_limit` succeeded runs and the
/// newest `failed_limit` failed or cancelled runs are kept; runs still queued or running
/// are always kept (they are not history yet). Runs with equal times keep their input
/// order.
pub fn retained_history(
    runs: &[HistoryEntry],
    successful_limit: u32,
    failed_limit: u32,
) -> (Vec<HistoryEntry>, Vec<HistoryEntry>) {
    let mut sorted: Vec<&HistoryEntry> = runs.iter().collect();
    sorted.sort_by_key(|run| std::cmp::Reverse(run.scheduled_time));
    let (mut succeeded, mut failed) = (0_u32, 0_u32);
    let (mut keep, mut drop) = (Vec::new(), Vec::new());
    for run in sorted {
        let counter = match run.status {
            JobStatus::Succeeded => Some((&mut succeeded, successful_limit)),
            JobStatus::Failed | JobStatus::Cancelled => Some((&mut failed, failed_limit)),
            JobStatus::Queued | JobStatus::Running => None,
        };
        let kept = match counter {
            None => true,
            Some((count, limit)) => {
                *count += 1;
                *count <= limit
            }
        };
        if kept {
            keep.push(run.clone());
        } else {
            drop.push(run.clone());
        }
    }
    (keep, drop)
}

/// The idempotency key of one fire, `namespace/name/generation/scheduleTime` with the time
/// in RFC 3339: the operator sends it as `Idempotency-Key`, so a fire retried after a crash
/// or a lost response finds the job it already created instead of starting a second one.
pub fn fire_key(
    namespace_or_tenant: &str,
    name: &str,
    generation_or_version: i64,
    scheduled_time: Timestamp,
) -> String {
    format!("{namespace_or_tenant}/{name}/{generation_or_version}/{}", scheduled_time.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(minutes: i64) -> Timestamp {
        // Minutes after 2026-11-27T00:00:00Z, a Friday.
        Timestamp::from_millis(1_795_737_600_000 + minutes * 60_000)
    }

    fn job(id: &str) -> JobId {
        id.parse().unwrap()
    }

    fn every_15() -> CronSchedule {
        "*/15 * * * *".parse().unwrap()
    }

    fn state<'a>(cron: &'a CronSchedule, active: &'a [ActiveRun]) -> ScheduleState<'a> {
        ScheduleState {
            cron,
            suspended: false,
            created_at: ts(7),
            last_schedule_time: None,
            starting_deadline_seconds: None,
            concurrency_policy: ConcurrencyPolicy::Forbid,
            active_runs: active,
        }
    }

    /// The helper's epoch really is midnight, so the minute offsets below read naturally.
    #[test]
    fn test_clock_is_midnight() {
        assert_eq!(ts(0).to_rfc3339(), "2026-11-27T00:00:00.000Z");
    }

    /// A schedule that never fired waits for the first fire after its creation, then fires it.
    #[test]
    fn never_fired_fires_first_time_after_created_at() {
        let cron = every_15();
        let s = state(&cron, &[]);
        assert_eq!(decide(&s, ts(10)), Decision::Wait { next_fire: Some(ts(15)) });
        assert_eq!(
            decide(&s, ts(16)),
            Decision::Fire { scheduled_time: ts(15), missed: 0, cancel: vec![], next_fire: Some(ts(30)) }
        );
        // A fire exactly at creation time is not due (strictly after).
        let s = ScheduleState { created_at: ts(15), ..s };
        assert_eq!(decide(&s, ts(15)), Decision::Wait { next_fire: Some(ts(30)) });
    }

    /// Many missed fires collapse into one run for the most recent, counting the rest.
    #[test]
    fn missed_fires_collapse_into_one() {
        let cron = every_15();
        let s = ScheduleState { last_schedule_time: Some(ts(15)), ..state(&cron, &[]) };
        let d = decide(&s, ts(125));
        assert_eq!(d, Decision::Fire { scheduled_time: ts(120), missed: 6, cancel: vec![], next_fire: Some(ts(135)) });
        assert_eq!(d.handled_time(), Some(ts(120)));
        assert_eq!(d.next_wake(), Some(ts(135)));
        // After recording it, nothing is due until the next fire.
        let s = ScheduleState { last_schedule_time: d.handled_time(), ..s };
        assert_eq!(decide(&s, ts(125)), Decision::Wait { next_fire: Some(ts(135)) });
        // A year of every-minute misses still decides quickly and caps the count.
        let every_minute: CronSchedule = "* * * * *".parse().unwrap();
        let s = ScheduleState { last_schedule_time: Some(ts(-525_600)), ..state(&every_minute, &[]) };
        assert!(matches!(decide(&s, ts(0)), Decision::Fire { missed: MISSED_COUNT_CAP, .. }));
    }

    /// A catch-up fire later than the starting deadline is skipped (and recorded); one
    /// within it fires.
    #[test]
    fn deadline_skips_late_fires() {
        let cron = every_15();
        let s = ScheduleState {
            last_schedule_time: Some(ts(0)),
            starting_deadline_seconds: Some(120),
            ..state(&cron, &[])
        };
        let d = decide(&s, ts(33));
        assert_eq!(
            d,
            Decision::Skip {
                scheduled_time: ts(30),
                missed: 1,
                reason: SkipReason::MissedDeadline { starting_deadline_seconds: 120, late_by_seconds: 180 },
                next_fire: Some(ts(45)),
            }
        );
        assert_eq!(d.handled_time(), Some(ts(30)));
        assert!(matches!(decide(&s, ts(32)), Decision::Fire { scheduled_time, .. } if scheduled_time == ts(30)));
        if let Decision::Skip { reason, .. } = d {
            assert_eq!(reason.code(), "MissedDeadline");
            assert_eq!(reason.to_string(), "180s late, past startingDeadlineSeconds=120");
        }
    }

    /// Forbid skips while a run is active, Allow runs alongside, Replace names the runs to cancel.
    #[test]
    fn concurrency_policies() {
        let cron = every_15();
        let active = [ActiveRun { job_id: job("old-run"), scheduled_time: ts(0) }];
        let base = ScheduleState { last_schedule_time: Some(ts(0)), ..state(&cron, &active) };

        let forbid = decide(&base, ts(16));
        assert_eq!(
            forbid,
            Decision::Skip {
                scheduled_time: ts(15),
                missed: 0,
                reason: SkipReason::ConcurrencyForbidden { active: vec![job("old-run")] },
                next_fire: Some(ts(30)),
            }
        );
        if let Decision::Skip { reason, .. } = &forbid {
            assert_eq!(reason.to_string(), "previous run still active (old-run) and concurrencyPolicy is Forbid");
        }
        // A run started by hand after the fire's time blocks it too.
        let manual = [ActiveRun { job_id: job("manual"), scheduled_time: ts(16) }];
        let late_tick = ScheduleState { active_runs: &manual, ..base };
        assert!(matches!(decide(&late_tick, ts(17)), Decision::Skip { .. }));
        let idle = ScheduleState { active_runs: &[], ..base };
        assert!(matches!(decide(&idle, ts(16)), Decision::Fire { .. }), "Forbid fires when nothing is active");

        let allow = ScheduleState { concurrency_policy: ConcurrencyPolicy::Allow, ..base };
        assert_eq!(
            decide(&allow, ts(16)),
            Decision::Fire { scheduled_time: ts(15), missed: 0, cancel: vec![], next_fire: Some(ts(30)) }
        );

        let replace = ScheduleState { concurrency_policy: ConcurrencyPolicy::Replace, ..base };
        assert_eq!(
            decide(&replace, ts(16)),
            Decision::Fire { scheduled_time: ts(15), missed: 0, cancel: vec![job("old-run")], next_fire: Some(ts(30)) }
        );
    }

    /// A due fire that already has an active run is recorded, never started or cancelled again.
    #[test]
    fn already_started_fire_is_not_repeated() {
        let cron = every_15();
        let active = [ActiveRun { job_id: job("started"), scheduled_time: ts(15) }];
        let s = ScheduleState {
            last_schedule_time: Some(ts(0)),
            concurrency_policy: ConcurrencyPolicy::Replace,
            ..state(&cron, &active)
        };
        let d = decide(&s, ts(16));
        assert_eq!(
            d,
            Decision::AlreadyStarted { scheduled_time: ts(15), job_id: job("started"), next_fire: Some(ts(30)) }
        );
        assert_eq!(d.handled_time(), Some(ts(15)));
    }

    /// Suspended schedules never fire and ask for no wake-up; Wait reports the next fire.
    #[test]
    fn suspended_and_wait() {
        let cron = every_15();
        let s = ScheduleState { suspended: true, last_schedule_time: Some(ts(0)), ..state(&cron, &[]) };
        assert_eq!(decide(&s, ts(100)), Decision::Suspended);
        assert_eq!(Decision::Suspended.next_wake(), None);
        assert_eq!(Decision::Suspended.handled_time(), None);
        let s = ScheduleState { suspended: false, last_schedule_time: Some(ts(45)), ..s };
        let d = decide(&s, ts(50));
        assert_eq!(d, Decision::Wait { next_fire: Some(ts(60)) });
        assert_eq!((d.handled_time(), d.next_wake()), (None, Some(ts(60))));
        // A last fire in the future (clock went backwards) waits for the fire after it.
        let s = ScheduleState { last_schedule_time: Some(ts(90)), ..s };
        assert_eq!(decide(&s, ts(50)), Decision::Wait { next_fire: Some(ts(105)) });
    }

    /// The state of a stored record carries every field decide() uses.
    #[test]
    fn state_from_record() {
        let cron = every_15();
        let record = ScheduleRecord {
            schedule_id: "s1".into(),
            tenant_id: crate::TenantId::default_tenant(),
            name: "nightly".into(),
            cron: cron.to_string(),
            kind: crate::JobKind::ALL[0],
            request_json: "{}".into(),
            suspended: true,
            suspended_by: Some("estop".into()),
            concurrency_policy: ConcurrencyPolicy::Replace,
            starting_deadline_seconds: Some(60),
            successful_runs_history_limit: 3,
            failed_runs_history_limit: 1,
            last_schedule_time: Some(ts(15)),
            last_job_id: None,
            created_at: ts(1),
            updated_at: ts(2),
        };
        let s = ScheduleState::from_record(&record, &cron, &[]);
        assert!(s.suspended);
        assert_eq!(s.concurrency_policy, ConcurrencyPolicy::Replace);
        assert_eq!((s.starting_deadline_seconds, s.last_schedule_time, s.created_at), (Some(60), Some(ts(15)), ts(1)));
    }

    /// History keeps the newest runs per outcome within their limits and always keeps live runs.
    #[test]
    fn retained_history_bounds_each_outcome() {
        let entry =
            |id: &str, minute: i64, status| HistoryEntry { job_id: job(id), scheduled_time: ts(minute), status };
        let runs = vec![
            entry("s1", 1, JobStatus::Succeeded),
            entry("f1", 2, JobStatus::Failed),
            entry("s2", 3, JobStatus::Succeeded),
            entry("c1", 4, JobStatus::Cancelled),
            entry("s3", 5, JobStatus::Succeeded),
            entry("r1", 6, JobStatus::Running),
            entry("q1", 7, JobStatus::Queued),
        ];
        let ids = |v: &[HistoryEntry]| v.iter().map(|e| e.job_id.as_str().to_owned()).collect::<Vec<_>>();
        let (keep, drop) = retained_history(&runs, 2, 1);
        assert_eq!(ids(&keep), ["q1", "r1", "s3", "c1", "s2"]);
        assert_eq!(ids(&drop), ["f1", "s1"]);
        let (keep, drop) = retained_history(&runs, 0, 0);
        assert_eq!(ids(&keep), ["q1", "r1"]);
        assert_eq!(drop.len(), 5);
        let (keep, drop) = retained_history(&runs, 10, 10);
        assert_eq!((keep.len(), drop.len()), (7, 0));
        assert_eq!(retained_history(&[], 1, 1), (vec![], vec![]));
    }

    /// The fire key is `ns/name/generation/RFC 3339 time`, identical for every retry.
    #[test]
    fn fire_key_format() {
        assert_eq!(fire_key("rune", "nightly-llm", 3, ts(15)), "rune/nightly-llm/3/2026-11-27T00:15:00.000Z");
        assert_eq!(fire_key("rune", "nightly-llm", 3, ts(15)), fire_key("rune", "nightly-llm", 3, ts(15)));
        assert_ne!(fire_key("rune", "nightly-llm", 4, ts(15)), fire_key("rune", "nightly-llm", 3, ts(15)));
    }

    proptest! {
        /// Whatever the history and clock, a decided fire is due (after the baseline, at or
        /// before now), is the latest due fire, and the reported next fire is after now.
        #[test]
        fn decided_fire_is_the_latest_due(
            expr in prop_oneof![Just("*/15 * * * *"), Just("0 9 * * MON-FRI"), Just("TZ=Europe/Berlin 30 2 * * *"), Just("@monthly")],
            last in proptest::option::of(-100_000_i64..100_000),
            now in -100_000_i64..100_000,
            deadline in proptest::option::of(0_u64..100_000),
        ) {
            let cron: CronSchedule = expr.parse().unwrap();
            let s = ScheduleState {
                created_at: ts(-200_000),
                last_schedule_time: last.map(ts),
                starting_deadline_seconds: deadline,
                ..state(&cron, &[])
            };
            let now = ts(now);
            let baseline = s.last_schedule_time.unwrap_or(s.created_at);
            let d = decide(&s, now);
            match d.handled_time() {
                Some(t) => {
                    prop_assert!(t > baseline && t <= now);
                    prop_assert_eq!(cron.latest_at_or_before(now), Some(t));
                    prop_assert!(d.next_wake().is_some_and(|n| n > now));
                }
                None => {
                    prop_assert!(cron.fires_between(baseline, now, 1).is_empty());
                    prop_assert_eq!(d.next_wake(), cron.next_after(now.max(baseline)));
                }
            }
        }
    }
}
