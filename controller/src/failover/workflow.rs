//! The transition function of a run: given the run's state and its steps' states, what starts
//! now, what is skipped, and whether the run ends. Pure (the time is an argument), so it is
//! table-tested here and the executor only carries out its answers, writing each to the store
//! before acting on it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::steps::StepSpec;

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    AwaitingApproval,
    Running,
    Paused,
    Aborting,
    Succeeded,
    Failed,
    Aborted,
    /// The approver refused it.
    Refused,
    /// Nobody approved it in time.
    Expired,
}

impl RunState {
    pub fn parse(text: &str) -> Option<RunState> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::AwaitingApproval => "awaiting_approval",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Aborting => "aborting",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Aborted => "aborted",
            RunState::Refused => "refused",
            RunState::Expired => "expired",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Aborted | RunState::Refused | RunState::Expired
        )
    }
}

/// A step's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    /// A prompt waiting for a person.
    Waiting,
    Succeeded,
    Failed,
    Skipped,
}

impl StepState {
    pub fn parse(text: &str) -> Option<StepState> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Waiting => "waiting",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
        }
    }

    fn ended(self) -> bool {
        matches!(self, StepState::Succeeded | StepState::Failed | StepState::Skipped)
    }

    fn active(self) -> bool {
        matches!(self, StepState::Running | StepState::Waiting)
    }
}

/// What is known of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepStatus {
    pub state: StepState,
    pub attempts: u32,
    /// A retry waits until then (unix ms).
    pub not_before: Option<i64>,
}

impl StepStatus {
    pub const NEW: StepStatus = StepStatus { state: StepState::Pending, attempts: 0, not_before: None };
}

/// What the executor does next.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Steps to start now, in plan order.
    pub start: Vec<String>,
    /// Steps that will never run (the run is stopping), to record as skipped.
    pub skip: Vec<String>,
    /// The run ends in this state, with this reason.
    pub finish: Option<(RunState, Option<String>)>,
    /// The earliest backoff that ends later: look again then.
    pub wake_at: Option<i64>,
}

/// The next moves of a run in `state` whose steps are `specs` (in plan order), known as
/// `status` (a step missing there is new), at `now`.
pub fn decide(state: RunState, specs: &[StepSpec], status: &HashMap<String, StepStatus>, now: i64) -> Decision {
    let mut d = Decision::default();
    if !matches!(state, RunState::Running | RunState::Paused | RunState::Aborting) {
        return d;
    }
    let st = |key: &str| status.get(key).copied().unwrap_or(StepStatus::NEW);
    let (normal, cleanup): (Vec<&StepSpec>, Vec<&StepSpec>) = specs.iter().partition(|s| !s.cleanup);
    let failed = normal.iter().find(|s| st(&s.key).state == StepState::Failed);
    let stopping = failed.is_some() || state == RunState::Aborting;
    let normal_active = normal.iter().any(|s| st(&s.key).state.active());
    let normal_done = normal.iter().all(|s| st(&s.key).state == StepState::Succeeded);
    let due = |s: &StepStatus, d: &mut Decision| match s.not_before {
        Some(t) if t > now => {
            d.wake_at = Some(d.wake_at.map_or(t, |w| w.min(t)));
            false
        }
        _ => true,
    };
    if state == RunState::Running && !stopping {
        for s in &normal {
            let now_st = st(&s.key);
            if now_st.state == StepState::Pending
                && s.after.iter().all(|a| st(a).state == StepState::Succeeded)
                && due(&now_st, &mut d)
            {
                d.start.push(s.key.clone());
            }
        }
    }
    // Clean-up runs once the other steps are done or have stopped, paused or not aborting.
    let cleanup_may_run = state != RunState::Paused && (normal_done || (stopping && !normal_active));
    if cleanup_may_run {
        // Its normal predecessors have ended, or will never run (the run is stopping and
        // nothing else runs); its clean-up predecessors must have ended.
        for s in &cleanup {
            let now_st = st(&s.key);
            let ready = s.after.iter().all(|a| !is_cleanup(specs, a) || st(a).state.ended());
            if now_st.state == StepState::Pending && ready && due(&now_st, &mut d) {
                d.start.push(s.key.clone());
            }
        }
    }
    if stopping && !normal_active {
        d.skip = normal.iter().filter(|s| st(&s.key).state == StepState::Pending).map(|s| s.key.clone()).collect();
    }
    let anything_active = specs.iter().any(|s| st(&s.key).state.active());
    if anything_active || !d.start.is_empty() || d.wake_at.is_some() || state == RunState::Paused {
        return d;
    }
    let cleanup_failed = cleanup.iter().find(|s| st(&s.key).state == StepState::Failed);
    let cleanup_left = cleanup.iter().any(|s| st(&s.key).state == StepState::Pending);
    if cleanup_left && !cleanup_may_run {
        // Normal steps neither all succeeded nor stopped, and nothing can start: a step waits
        // for one that cannot run.
        d.finish = Some((RunState::Failed, Some(stuck(&normal, &st))));
        return d;
    }
    if cleanup_left {
        return d;
    }
    d.finish = Some(if let Some(f) = failed {
        (RunState::Failed, Some(format!("step {} failed", f.key)))
    } else if state == RunState::Aborting {
        (RunState::Aborted, None)
    } else if !normal_done {
        (RunState::Failed, Some(stuck(&normal, &st)))
    } else if let Some(c) = cleanup_failed {
        (RunState::Failed, Some(format!("clean-up step {} failed: something of the run may be left at DR", c.key)))
    } else {
        (RunState::Succeeded, None)
    });
    d
}

fn is_cleanup(specs: &[StepSpec], key: &str) -> bool {
    specs.iter().any(|s| s.key == key && s.cleanup)
}

fn stuck(normal: &[&StepSpec], st: &impl Fn(&str) -> StepStatus) -> String {
    let waiting: Vec<&str> =
        normal.iter().filter(|s| st(&s.key).state == StepState::Pending).map(|s| s.key.as_str()).take(3).collect();
    format!("steps cannot start: {} wait for steps that will not run", waiting.join(", "))
}

/// A step's state after a failed attempt: pending again (with a backoff) while attempts are
/// left, else failed.
pub fn after_failure(spec: &StepSpec, attempts: u32, now: i64) -> StepStatus {
    if attempts <= spec.retries {
        // 2 s, 4 s, 8 s … at most a minute.
        let backoff = 2_000i64.saturating_mul(1 << attempts.min(5)).min(60_000);
        StepStatus { state: StepState::Pending, attempts, not_before: Some(now.saturating_add(backoff)) }
    } else {
        StepStatus { state: StepState::Failed, attempts, not_before: None }
    }
}

/// What a restarted controller makes of a step it finds: a step that was running when the
/// controller died runs again if it is idempotent by its key (the executor's steps all are),
/// else it fails, saying it was interrupted and must be checked by hand. Everything else stays.
pub fn on_resume(spec: &StepSpec, s: StepStatus) -> (StepStatus, Option<String>) {
    match s.state {
        StepState::Running if spec.idempotent => (StepStatus { state: StepState::Pending, ..s }, None),
        StepState::Running => (
            StepStatus { state: StepState::Failed, ..s },
            Some(format!("interrupted by a controller restart; {} is not safe to repeat: check it by hand", spec.key)),
        ),
        _ => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::super::steps::StepKind;
    use super::*;

    fn spec(key: &str, after: &[&str], cleanup: bool) -> StepSpec {
        StepSpec {
            key: key.into(),
            kind: if cleanup { StepKind::Cleanup } else { StepKind::DrBoot },
            system: None,
            workload: None,
            group: 1,
            after: after.iter().map(|s| s.to_string()).collect(),
            cleanup,
            idempotent: true,
            timeout_s: 60,
            retries: 1,
            params: serde_json::Value::Null,
        }
    }

    /// pre → boot → probe, and a clean-up after boot, and verify after the clean-up.
    fn plan() -> Vec<StepSpec> {
        vec![
            spec("pre", &[], false),
            spec("boot", &["pre"], false),
            spec("probe", &["boot"], false),
            spec("clean", &["boot"], true),
            spec("verify", &["clean"], true),
        ]
    }

    fn status(pairs: &[(&str, StepState)]) -> HashMap<String, StepStatus> {
        pairs.iter().map(|(k, s)| (k.to_string(), StepStatus { state: *s, attempts: 1, not_before: None })).collect()
    }

    use StepState::*;

    #[test]
    fn the_table() {
        let p = plan();
        type Row = (
            &'static str,
            RunState,
            Vec<(&'static str, StepState)>,
            Vec<&'static str>,
            Vec<&'static str>,
            Option<RunState>,
        );
        let table: Vec<Row> = vec![
            ("nothing happens before approval", RunState::AwaitingApproval, vec![], vec![], vec![], None),
            ("a new run starts its first step", RunState::Running, vec![], vec!["pre"], vec![], None),
            (
                "a step starts when what it waits for succeeded",
                RunState::Running,
                vec![("pre", Succeeded)],
                vec!["boot"],
                vec![],
                None,
            ),
            (
                "nothing starts beside a running step it needs",
                RunState::Running,
                vec![("pre", Succeeded), ("boot", Running)],
                vec![],
                vec![],
                None,
            ),
            (
                "clean-up runs after the normal steps succeed",
                RunState::Running,
                vec![("pre", Succeeded), ("boot", Succeeded), ("probe", Succeeded)],
                vec!["clean"],
                vec![],
                None,
            ),
            (
                "verify follows clean-up",
                RunState::Running,
                vec![("pre", Succeeded), ("boot", Succeeded), ("probe", Succeeded), ("clean", Succeeded)],
                vec!["verify"],
                vec![],
                None,
            ),
            (
                "all done: succeeded",
                RunState::Running,
                vec![
                    ("pre", Succeeded),
                    ("boot", Succeeded),
                    ("probe", Succeeded),
                    ("clean", Succeeded),
                    ("verify", Succeeded),
                ],
                vec![],
                vec![],
                Some(RunState::Succeeded),
            ),
            (
                "a failure stops the run, skips what is left and still cleans up",
                RunState::Running,
                vec![("pre", Succeeded), ("boot", Failed)],
                vec!["clean"],
                vec!["probe"],
                None,
            ),
            (
                "a failed run ends failed once clean-up is done",
                RunState::Running,
                vec![
                    ("pre", Succeeded),
                    ("boot", Failed),
                    ("probe", Skipped),
                    ("clean", Succeeded),
                    ("verify", Succeeded),
                ],
                vec![],
                vec![],
                Some(RunState::Failed),
            ),
            (
                "a leftover found by the verification fails the drill",
                RunState::Running,
                vec![
                    ("pre", Succeeded),
                    ("boot", Succeeded),
                    ("probe", Succeeded),
                    ("clean", Succeeded),
                    ("verify", Failed),
                ],
                vec![],
                vec![],
                Some(RunState::Failed),
            ),
            ("pause starts nothing", RunState::Paused, vec![("pre", Succeeded)], vec![], vec![], None),
            (
                "abort waits for the running step, then cleans up",
                RunState::Aborting,
                vec![("pre", Succeeded), ("boot", Running)],
                vec![],
                vec![],
                None,
            ),
            (
                "abort cleans up once nothing runs",
                RunState::Aborting,
                vec![("pre", Succeeded), ("boot", Succeeded)],
                vec!["clean"],
                vec!["probe"],
                None,
            ),
            (
                "an aborted run ends aborted",
                RunState::Aborting,
                vec![
                    ("pre", Succeeded),
                    ("boot", Succeeded),
                    ("probe", Skipped),
                    ("clean", Succeeded),
                    ("verify", Succeeded),
                ],
                vec![],
                vec![],
                Some(RunState::Aborted),
            ),
            (
                "a waiting prompt holds the run",
                RunState::Running,
                vec![("pre", Succeeded), ("boot", Succeeded), ("probe", Waiting)],
                vec![],
                vec![],
                None,
            ),
        ];
        for (what, state, st, start, skip, finish) in table {
            let d = decide(state, &p, &status(&st), 0);
            assert_eq!(d.start, start, "{what}: start");
            assert_eq!(d.skip, skip, "{what}: skip");
            assert_eq!(d.finish.map(|f| f.0), finish, "{what}: finish");
        }
    }

    #[test]
    fn a_retry_waits_for_its_backoff_and_the_run_wakes_then() {
        let p = plan();
        let mut st = status(&[]);
        st.insert("pre".into(), after_failure(&p[0], 1, 1_000));
        let d = decide(RunState::Running, &p, &st, 1_500);
        assert!(d.start.is_empty());
        assert_eq!(d.wake_at, Some(5_000));
        assert_eq!(d.finish, None);
        assert_eq!(decide(RunState::Running, &p, &st, 5_000).start, vec!["pre".to_string()]);
        assert_eq!(after_failure(&p[0], 2, 0).state, StepState::Failed, "one retry, then failed");
    }

    #[test]
    fn a_restart_runs_an_interrupted_idempotent_step_again_and_never_a_finished_one() {
        let p = plan();
        let running = StepStatus { state: Running, attempts: 1, not_before: None };
        assert_eq!(on_resume(&p[1], running).0.state, Pending);
        let done = StepStatus { state: Succeeded, attempts: 1, not_before: None };
        assert_eq!(on_resume(&p[1], done).0, done);
        let mut once = p[1].clone();
        once.idempotent = false;
        let (s, why) = on_resume(&once, running);
        assert_eq!(s.state, Failed);
        assert!(why.is_some_and(|w| w.contains("not safe to repeat")));
    }

    #[test]
    fn a_run_without_clean_up_ends_when_its_steps_do() {
        let p: Vec<StepSpec> = plan().into_iter().filter(|s| !s.cleanup).collect();
        let st = status(&[("pre", Succeeded), ("boot", Succeeded), ("probe", Succeeded)]);
        assert_eq!(decide(RunState::Running, &p, &st, 0).finish.map(|f| f.0), Some(RunState::Succeeded));
        let st = status(&[("pre", Succeeded), ("boot", Failed)]);
        let d = decide(RunState::Running, &p, &st, 0);
        assert_eq!(d.skip, vec!["probe".to_string()]);
        assert_eq!(d.finish.map(|f| f.0), Some(RunState::Failed));
    }
}
