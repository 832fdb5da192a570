//! The pure decision of one reconcile: given a benchmark's spec and status, the state of
//! its active runs and the time, what should happen now. No I/O and no clock, so every
//! rule is unit-tested; the reconciler only carries the [`Plan`] out.
//!
//! Cron due-ness, catch-up collapsing, `startingDeadlineSeconds` and the concurrency policy
//! are `rune_core::schedule::decide`'s, the same code the API's embedded scheduler uses.

use crate::crd::{RunRecord, RuneBenchmarkSpec, RuneBenchmarkStatus, Trigger};
use rune_core::cron::CronSchedule;
use rune_core::schedule::{self, ActiveRun, Decision, ScheduleState};
use rune_core::{JobId, JobStatus, Timestamp};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Default `timeoutSeconds`.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 3600;
/// Default `backoffSeconds`.
pub const DEFAULT_BACKOFF_SECONDS: u64 = 60;
/// Default `pollIntervalSeconds`.
pub const DEFAULT_POLL_SECONDS: u64 = 5;
/// Default `successfulRunsHistoryLimit`.
pub const DEFAULT_SUCCESS_HISTORY: u32 = 3;
/// Default `failedRunsHistoryLimit`.
pub const DEFAULT_FAILED_HISTORY: u32 = 3;
/// Longest backoff after repeated errors.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What the reconciler learned about one active run from the API.
#[derive(Debug, Clone, PartialEq)]
pub enum JobObservation {
    /// Queued or running.
    Pending {
        /// Running (true) or still queued.
        running: bool,
    },
    /// Terminal.
    Finished {
        /// Succeeded, failed or cancelled.
        status: JobStatus,
        /// The API's error text.
        error: Option<String>,
        /// The job result as JSON text.
        result: Option<String>,
    },
    /// The API could not be asked (the run is treated as still active).
    Unknown,
}

/// Everything [`plan`] reads.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The desired state.
    pub spec: &'a RuneBenchmarkSpec,
    /// The recorded state.
    pub status: &'a RuneBenchmarkStatus,
    /// `metadata.creationTimestamp`.
    pub created_at: Timestamp,
    /// The E-Stop is engaged (suspends even if the spec patch has not landed yet).
    pub estop_engaged: bool,
    /// When the E-Stop released this benchmark: fires before it are not caught up.
    pub released_at: Option<Timestamp>,
    /// One observation per entry of `status.activeRuns`, by run id.
    pub observations: &'a [(String, JobObservation)],
    /// Now.
    pub now: Timestamp,
}

/// How a finished run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Succeeded, with the result text.
    Succeeded(Option<String>),
    /// Failed or was cancelled, with why.
    Failed(String),
}

/// The action of a plan besides following runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing to start.
    Idle,
    /// Suspended by the spec or the E-Stop: start nothing.
    Suspended,
    /// `spec.schedule` does not parse; the message says why.
    InvalidSchedule(String),
    /// Start a run for `scheduled_time` (after the gates pass).
    Start {
        /// The fire (or "now" for creation / spec change runs); part of the Idempotency-Key.
        scheduled_time: Timestamp,
        /// Why.
        trigger: Trigger,
        /// Cron fires collapsed into this one.
        missed: usize,
    },
    /// A due fire is not started; record it as handled.
    Skip {
        /// The fire.
        scheduled_time: Timestamp,
        /// Stable code (event reason).
        code: &'static str,
        /// Why, for the event.
        message: String,
    },
    /// The due fire already has an active run (bookkeeping was lost): record it only.
    AlreadyStarted {
        /// The fire.
        scheduled_time: Timestamp,
    },
}

/// What to do now.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a plan does nothing until the reconciler carries it out"]
pub struct Plan {
    /// Active runs that are over: record them in history.
    pub finished: Vec<(String, Outcome)>,
    /// Active runs to cancel at the API first (timed out, or `Replace`), with why.
    pub cancel: Vec<(String, String)>,
    /// What to start or record.
    pub action: Action,
    /// The next fire, for status and the requeue.
    pub next_fire: Option<Timestamp>,
    /// When to look again (`None`: only on the next spec change).
    pub requeue_after: Option<Duration>,
}

/// Hash of the spec without `suspend`: a change means "run now".
pub fn spec_hash(spec: &RuneBenchmarkSpec) -> String {
    let mut spec = spec.clone();
    spec.suspend = false;
    let text = serde_json::to_string(&spec).unwrap_or_default();
    hex::encode(&Sha256::digest(text.as_bytes())[..12])
}

/// `timeoutSeconds` with its default.
pub fn timeout(spec: &RuneBenchmarkSpec) -> Duration {
    Duration::from_secs(spec.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS).max(1))
}

/// `pollIntervalSeconds` with its default.
pub fn poll_interval(spec: &RuneBenchmarkSpec) -> Duration {
    Duration::from_secs(spec.poll_interval_seconds.unwrap_or(DEFAULT_POLL_SECONDS).max(1))
}

/// The delay before retry number `failures` (1-based): `backoffSeconds` doubled per
/// consecutive error, capped at [`MAX_BACKOFF`].
pub fn backoff(spec: &RuneBenchmarkSpec, failures: u32) -> Duration {
    let base = spec.backoff_seconds.unwrap_or(DEFAULT_BACKOFF_SECONDS).max(1);
    let factor = 1_u64.checked_shl(failures.saturating_sub(1).min(20)).unwrap_or(u64::MAX);
    Duration::from_secs(base.saturating_mul(factor)).min(MAX_BACKOFF.max(Duration::from_secs(base)))
}

/// Parses an RFC 3339 status time.
pub fn parse_time(text: &Option<String>) -> Option<Timestamp> {
    text.as_deref().and_then(|t| Timestamp::parse(t).ok())
}

/// A time truncated to whole seconds, as Kubernetes stores times.
pub fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_micros(t.as_micros().div_euclid(1_000_000) * 1_000_000)
}

/// Kubernetes' RFC 3339 spelling (whole seconds, `Z`).
pub fn format_time(t: Timestamp) -> String {
    let text = whole_seconds(t).to_rfc3339();
    text.strip_suffix(".000Z").map(|s| format!("{s}Z")).unwrap_or(text)
}

fn until(now: Timestamp, t: Timestamp) -> Duration {
    let micros = t.as_micros().saturating_sub(now.as_micros()).max(0);
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// Decides what one reconcile does; see the module docs.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let PlanInput { spec, status, now, .. } = *input;
    let mut finished = Vec::new();
    let mut cancel = Vec::new();
    let mut still_active: Vec<&RunRecord> = Vec::new();
    let run_timeout = timeout(spec);
    for run in &status.active_runs {
        let observation = input.observations.iter().find(|(id, _)| *id == run.run_id).map(|(_, o)| o);
        match observation {
            Some(JobObservation::Finished { status: JobStatus::Succeeded, result, .. }) => {
                finished.push((run.run_id.clone(), Outcome::Succeeded(result.clone())));
            }
            Some(JobObservation::Finished { status: job_status, error, .. }) if job_status.is_terminal() => {
                let why = error.clone().unwrap_or_else(|| format!("job {job_status}"));
                finished.push((run.run_id.clone(), Outcome::Failed(why)));
            }
            _ => {
                let submitted = parse_time(&Some(run.submitted_at.clone())).unwrap_or(now);
                if until(submitted, now) > run_timeout {
                    let why = format!("timed out after {}s (timeoutSeconds)", run_timeout.as_secs());
                    cancel.push((run.run_id.clone(), why.clone()));
                    finished.push((run.run_id.clone(), Outcome::Failed(why)));
                } else {
                    still_active.push(run);
                }
            }
        }
    }
    let poll = (!still_active.is_empty()).then(|| poll_interval(spec));
    let with_poll = |d: Option<Duration>| match (d, poll) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let make = |cancel: Vec<(String, String)>, finished, action, next_fire: Option<Timestamp>, extra| Plan {
        finished,
        cancel,
        action,
        next_fire,
        requeue_after: with_poll(match extra {
            Some(d) => Some(d),
            None => next_fire.map(|n| until(now, n)),
        }),
    };

    if spec.suspend || input.estop_engaged {
        return make(cancel, finished, Action::Suspended, None, None);
    }
    let cron = match spec.schedule.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => match CronSchedule::parse(text) {
            Ok(c) => Some(c),
            Err(e) => {
                return make(
                    cancel,
                    finished,
                    Action::InvalidSchedule(format!("spec.schedule `{text}`: {e}")),
                    None,
                    None,
                )
            }
        },
    };
    let released = input.released_at;
    let last = parse_time(&status.last_schedule_time);
    let baseline_last = match (last, released) {
        (Some(l), Some(r)) => Some(l.max(r)),
        (l, r) => l.or(r),
    };

    // Creation and spec changes run now, outside the cron.
    let hash = spec_hash(spec);
    if status.observed_spec_hash.as_deref() != Some(hash.as_str()) {
        let trigger = if status.observed_spec_hash.is_none() { Trigger::Created } else { Trigger::SpecChanged };
        let next_fire = cron.as_ref().and_then(|c| c.next_after(now));
        let policy = spec.concurrency_policy.unwrap_or_default();
        use crate::crd::ConcurrencyPolicy as P;
        return match policy {
            P::Forbid if !still_active.is_empty() => make(cancel, finished, Action::Idle, next_fire, None),
            P::Replace => {
                for run in &still_active {
                    cancel.push((run.run_id.clone(), "replaced by a newer run (concurrencyPolicy Replace)".into()));
                }
                let action = Action::Start { scheduled_time: whole_seconds(now), trigger, missed: 0 };
                make(cancel, finished, action, next_fire, None)
            }
            _ => make(
                cancel,
                finished,
                Action::Start { scheduled_time: whole_seconds(now), trigger, missed: 0 },
                next_fire,
                None,
            ),
        };
    }

    let Some(cron) = cron else {
        return make(cancel, finished, Action::Idle, None, None);
    };
    let active: Vec<ActiveRun> = still_active
        .iter()
        .filter_map(|r| {
            Some(ActiveRun {
                job_id: r.run_id.parse::<JobId>().ok()?,
                scheduled_time: parse_time(&Some(r.schedule_time.clone()))?,
            })
        })
        .collect();
    let created = match released {
        Some(r) => input.created_at.max(r),
        None => input.created_at,
    };
    let state = ScheduleState {
        cron: &cron,
        suspended: false,
        created_at: created,
        last_schedule_time: baseline_last,
        starting_deadline_seconds: spec.starting_deadline_seconds,
        concurrency_policy: spec.concurrency_policy.unwrap_or_default().into(),
        active_runs: &active,
    };
    match schedule::decide(&state, now) {
        Decision::Fire { scheduled_time, missed, cancel: replace, next_fire } => {
            for id in replace {
                cancel.push((id.as_str().to_owned(), "replaced by a newer run (concurrencyPolicy Replace)".into()));
            }
            make(
                cancel,
                finished,
                Action::Start { scheduled_time, trigger: Trigger::Schedule, missed },
                next_fire,
                None,
            )
        }
        Decision::Skip { scheduled_time, reason, next_fire, .. } => {
            let action = Action::Skip { scheduled_time, code: reason.code(), message: reason.to_string() };
            make(cancel, finished, action, next_fire, None)
        }
        Decision::AlreadyStarted { scheduled_time, next_fire, .. } => {
            make(cancel, finished, Action::AlreadyStarted { scheduled_time }, next_fire, None)
        }
        Decision::Wait { next_fire } => make(cancel, finished, Action::Idle, next_fire, None),
        Decision::Suspended => make(cancel, finished, Action::Suspended, None, None),
    }
}

/// Adds a finished run to the history (newest first) and trims it to the limits.
pub fn push_history(status: &mut RuneBenchmarkStatus, record: RunRecord, spec: &RuneBenchmarkSpec) {
    status.history.retain(|r| r.run_id != record.run_id);
    status.history.insert(0, record);
    let ok_limit = spec.successful_runs_history_limit.unwrap_or(DEFAULT_SUCCESS_HISTORY) as usize;
    let failed_limit = spec.failed_runs_history_limit.unwrap_or(DEFAULT_FAILED_HISTORY) as usize;
    let (mut ok, mut failed) = (0, 0);
    status.history.retain(|r| {
        let (count, limit) = match r.status {
            crate::crd::RunStatus::Succeeded => (&mut ok, ok_limit),
            _ => (&mut failed, failed_limit),
        };
        *count += 1;
        *count <= limit
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ConcurrencyPolicy, RunStatus, Workflow};

    /// Minutes after 2026-11-27T00:00:00Z.
    fn ts(minutes: i64) -> Timestamp {
        Timestamp::from_millis(1_795_737_600_000 + minutes * 60_000)
    }

    fn spec(schedule: Option<&str>) -> RuneBenchmarkSpec {
        serde_json::from_value(serde_json::json!({
            "apiBaseUrl": "http://api:8080", "workflow": "agentic-agent", "backendUrl": "http://llm:11434",
            "schedule": schedule,
        }))
        .unwrap()
    }

    /// A status as left by the creation run at minute 0.
    fn settled(spec: &RuneBenchmarkSpec) -> RuneBenchmarkStatus {
        RuneBenchmarkStatus {
            observed_spec_hash: Some(spec_hash(spec)),
            last_schedule_time: Some(format_time(ts(0))),
            ..Default::default()
        }
    }

    fn run(id: &str, scheduled: Timestamp, submitted: Timestamp) -> RunRecord {
        RunRecord {
            run_id: id.into(),
            schedule_time: format_time(scheduled),
            trigger: Trigger::Schedule,
            submitted_at: format_time(submitted),
            completed_at: None,
            duration_millis: None,
            status: RunStatus::Running,
            error: None,
            result: None,
        }
    }

    fn plan_at(spec: &RuneBenchmarkSpec, status: &RuneBenchmarkStatus, now: Timestamp) -> Plan {
        plan_with(spec, status, now, &[])
    }

    fn plan_with(
        spec: &RuneBenchmarkSpec,
        status: &RuneBenchmarkStatus,
        now: Timestamp,
        obs: &[(String, JobObservation)],
    ) -> Plan {
        plan(&PlanInput {
            spec,
            status,
            created_at: ts(-1),
            estop_engaged: false,
            released_at: None,
            observations: obs,
            now,
        })
    }

    fn pending() -> JobObservation {
        JobObservation::Pending { running: true }
    }

    #[test]
    fn new_benchmark_runs_at_once_then_idles_without_schedule() {
        let s = spec(None);
        let p = plan_at(&s, &RuneBenchmarkStatus::default(), ts(3));
        assert_eq!(p.action, Action::Start { scheduled_time: ts(3), trigger: Trigger::Created, missed: 0 });
        let p = plan_at(&s, &settled(&s), ts(500));
        assert_eq!(p.action, Action::Idle);
        assert_eq!(p.requeue_after, None, "no schedule, nothing active: wait for a spec change");
    }

    #[test]
    fn spec_change_reruns_but_suspend_toggle_does_not() {
        let s = spec(None);
        let status = settled(&s);
        let mut changed = s.clone();
        changed.model = Some("qwen2.5:7b".into());
        let p = plan_at(&changed, &status, ts(9));
        assert_eq!(p.action, Action::Start { scheduled_time: ts(9), trigger: Trigger::SpecChanged, missed: 0 });
        let mut toggled = s.clone();
        toggled.suspend = true;
        assert_eq!(plan_at(&toggled, &status, ts(9)).action, Action::Suspended);
        toggled.suspend = false;
        assert_eq!(plan_at(&toggled, &status, ts(9)).action, Action::Idle);
    }

    #[test]
    fn cron_fires_on_time_and_sleeps_until_the_next_fire() {
        let s = spec(Some("*/15 * * * *"));
        let status = settled(&s);
        let p = plan_at(&s, &status, ts(14));
        assert_eq!(p.action, Action::Idle);
        assert_eq!(p.next_fire, Some(ts(15)));
        assert_eq!(p.requeue_after, Some(Duration::from_secs(60)));
        let p = plan_at(&s, &status, ts(15));
        assert_eq!(p.action, Action::Start { scheduled_time: ts(15), trigger: Trigger::Schedule, missed: 0 });
        assert_eq!(p.next_fire, Some(ts(30)));
    }

    #[test]
    fn missed_fires_collapse_into_one_catch_up() {
        let s = spec(Some("*/15 * * * *"));
        let p = plan_at(&s, &settled(&s), ts(67));
        assert_eq!(p.action, Action::Start { scheduled_time: ts(60), trigger: Trigger::Schedule, missed: 3 });
    }

    #[test]
    fn starting_deadline_skips_a_late_fire() {
        let mut s = spec(Some("*/15 * * * *"));
        s.starting_deadline_seconds = Some(60);
        let p = plan_at(&s, &settled(&s), ts(20));
        match p.action {
            Action::Skip { scheduled_time, code, .. } => {
                assert_eq!(scheduled_time, ts(15));
                assert_eq!(code, "MissedDeadline");
            }
            other => panic!("expected a skip, got {other:?}"),
        }
        assert!(matches!(plan_at(&s, &settled(&s), ts(15)).action, Action::Start { .. }));
    }

    #[test]
    fn concurrency_policies() {
        let mut s = spec(Some("*/15 * * * *"));
        let mut status = settled(&s);
        status.active_runs = vec![run("job-a", ts(0), ts(0))];
        let obs = vec![("job-a".to_string(), pending())];
        let p = plan_with(&s, &status, ts(15), &obs);
        assert!(matches!(p.action, Action::Skip { code: "ConcurrencyForbidden", .. }), "{p:?}");
        assert_eq!(p.requeue_after, Some(poll_interval(&s)), "keeps polling the active run");

        s.concurrency_policy = Some(ConcurrencyPolicy::Allow);
        status.observed_spec_hash = Some(spec_hash(&s));
        let p = plan_with(&s, &status, ts(15), &obs);
        assert!(matches!(p.action, Action::Start { .. }));
        assert!(p.cancel.is_empty());

        s.concurrency_policy = Some(ConcurrencyPolicy::Replace);
        status.observed_spec_hash = Some(spec_hash(&s));
        let p = plan_with(&s, &status, ts(15), &obs);
        assert!(matches!(p.action, Action::Start { .. }));
        assert_eq!(p.cancel.len(), 1);
        assert_eq!(p.cancel[0].0, "job-a");
    }

    #[test]
    fn active_runs_finish_or_time_out() {
        let mut s = spec(None);
        s.timeout_seconds = Some(600);
        let mut status = settled(&s);
        status.active_runs = vec![run("job-a", ts(0), ts(0)), run("job-b", ts(0), ts(0))];
        let obs = vec![
            (
                "job-a".to_string(),
                JobObservation::Finished { status: JobStatus::Succeeded, error: None, result: Some("{}".into()) },
            ),
            ("job-b".to_string(), pending()),
        ];
        let p = plan_with(&s, &status, ts(5), &obs);
        assert_eq!(p.finished, vec![("job-a".to_string(), Outcome::Succeeded(Some("{}".into())))]);
        assert!(p.cancel.is_empty());
        assert_eq!(p.requeue_after, Some(Duration::from_secs(DEFAULT_POLL_SECONDS)));
        // Eleven minutes in, job-b is past its 600 s timeout; an unreachable API does not
        // extend it.
        let obs = vec![("job-b".to_string(), JobObservation::Unknown)];
        status.active_runs.remove(0);
        let p = plan_with(&s, &status, ts(11), &obs);
        assert_eq!(p.cancel.len(), 1);
        assert!(matches!(&p.finished[0].1, Outcome::Failed(why) if why.contains("timed out after 600s")));
        // A failed job reports the API's error.
        let obs = vec![(
            "job-b".to_string(),
            JobObservation::Finished { status: JobStatus::Cancelled, error: Some("E-Stop".into()), result: None },
        )];
        let p = plan_with(&s, &status, ts(1), &obs);
        assert_eq!(p.finished, vec![("job-b".to_string(), Outcome::Failed("E-Stop".into()))]);
    }

    #[test]
    fn invalid_schedule_is_reported_not_ignored() {
        let s = spec(Some("61 * * * *"));
        match plan_at(&s, &settled(&s), ts(1)).action {
            Action::InvalidSchedule(msg) => assert!(msg.contains("61 * * * *"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn estop_suspends_and_release_does_not_catch_up() {
        let s = spec(Some("*/15 * * * *"));
        let status = settled(&s);
        let mut input = PlanInput {
            spec: &s,
            status: &status,
            created_at: ts(-1),
            estop_engaged: true,
            released_at: None,
            observations: &[],
            now: ts(100),
        };
        assert_eq!(plan(&input).action, Action::Suspended);
        input.estop_engaged = false;
        input.released_at = Some(ts(98));
        let p = plan(&input);
        assert_eq!(p.action, Action::Idle, "fires before the release are not caught up");
        assert_eq!(p.next_fire, Some(ts(105)));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let mut s = spec(None);
        s.backoff_seconds = Some(10);
        let secs: Vec<u64> = (1..=4).map(|n| backoff(&s, n).as_secs()).collect();
        assert_eq!(secs, vec![10, 20, 40, 80]);
        assert_eq!(backoff(&s, 30), MAX_BACKOFF);
        assert_eq!(backoff(&spec(None), 1), Duration::from_secs(DEFAULT_BACKOFF_SECONDS));
    }

    #[test]
    fn history_is_bounded_per_outcome() {
        let mut s = spec(None);
        s.successful_runs_history_limit = Some(2);
        s.failed_runs_history_limit = Some(1);
        let mut status = RuneBenchmarkStatus::default();
        for (i, ok) in [true, false, true, true, false, true].iter().enumerate() {
            let mut r = run(&format!("job-{i}"), ts(i as i64), ts(i as i64));
            r.status = if *ok { RunStatus::Succeeded } else { RunStatus::Failed };
            push_history(&mut status, r, &s);
        }
        let ids: Vec<&str> = status.history.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, vec!["job-5", "job-4", "job-3"]);
    }

    #[test]
    fn times_are_whole_seconds_rfc3339() {
        assert_eq!(format_time(ts(0).plus_millis(1_500)), "2026-11-27T00:00:01Z");
        assert_eq!(parse_time(&Some("2026-11-27T00:15:00Z".into())), Some(ts(15)));
        assert_eq!(parse_time(&Some("yesterday".into())), None);
        let _ = Workflow::Benchmark;
    }
}
