//! Runs: starting one (with its approval request when the mode needs a second operator),
//! driving it step by step (every step's start and result written before the next starts),
//! resuming every unfinished run when the controller starts, and what people do to a run
//! (approve, refuse, pause, resume, abort, confirm a prompt, add a note). Everything a person
//! does is audited.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;

use super::exec::{self, Ctx, Outcome};
use super::steps::{self, Mode, StepSpec};
use super::workflow::{self, RunState, StepState, StepStatus};
use crate::app::{App, AppError, Principal, now_ms, random_hex};
use crate::store::{Approval, DrillRun, StateChange, StepRecord};

/// States a run can still move from.
const ACTIVE: &[&str] = &["awaiting_approval", "running", "paused", "aborting"];

/// How often a driver looks at its run again when nothing woke it (a change made by another
/// controller, an approval expiring).
const IDLE_LOOK: Duration = Duration::from_secs(2);

/// The drivers of the runs this controller is carrying out.
#[derive(Default)]
pub struct Drills {
    wake: Mutex<HashMap<String, Arc<Notify>>>,
    driving: Mutex<HashSet<String>>,
}

impl Drills {
    fn notifier(&self, run: &str) -> Arc<Notify> {
        self.wake.lock().unwrap_or_else(|p| p.into_inner()).entry(run.to_string()).or_default().clone()
    }

    /// Makes the run's driver look at it again now.
    pub fn wake(&self, run: &str) {
        self.notifier(run).notify_one();
    }
}

/// What `drill start` answers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Started {
    pub run: String,
    pub plan: String,
    pub plan_version: i64,
    pub mode: String,
    pub state: String,
    pub approval: Option<i64>,
    pub expires_at: Option<String>,
    pub steps: usize,
}

/// Creates a run of `plan` in `mode` for `by`; a test run starts at once, the others wait
/// for a second operator. Refused while another run covers one of the plan's systems.
pub async fn start(app: &Arc<App>, plan_name: &str, mode: Mode, by: &Principal) -> Result<Started, AppError> {
    let (record, plan) = super::plans::load(app, plan_name, None).await?;
    let inv =
        app.inventory.clone().ok_or_else(|| AppError::Conflict("the controller runs without an inventory".into()))?;
    let systems: HashSet<&str> = plan.systems.iter().map(|s| s.name.as_str()).collect();
    for other in app.store.active_drills().await? {
        let overlap: Vec<String> = other.systems["systems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["name"].as_str())
            .filter(|s| systems.contains(s))
            .map(str::to_string)
            .collect();
        if !overlap.is_empty() {
            return Err(AppError::Conflict(format!(
                "run {} ({} of plan {}, {}) already covers {}: one run per information system at a time",
                other.id,
                other.mode,
                other.plan,
                other.state,
                overlap.join(", ")
            )));
        }
    }
    let specs = steps::build(&plan, &inv, mode);
    let targets: Vec<Value> = plan
        .systems
        .iter()
        .map(|s| {
            let sys = inv.system(&s.name);
            json!({
                "name": s.name,
                "priority": plan.priority_of(s, &inv).get(),
                "rto_target_seconds": sys.map(|x| x.rto.as_secs()),
                "rpo_target_seconds": sys.map(|x| x.rpo.as_secs()),
                "methods": s.recover.iter().map(|w| json!({"workload": w.workload, "method": w.method.as_str(), "rpo_source": w.method.rpo_source()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let now = now_ms();
    let id = format!("d-{}", random_hex(4));
    let needs_approval = mode.needs_approval();
    let run = DrillRun {
        id: id.clone(),
        plan: record.name.clone(),
        plan_version: record.version,
        mode: mode.as_str().into(),
        state: if needs_approval { RunState::AwaitingApproval } else { RunState::Running }.as_str().into(),
        started_by: by.user.clone(),
        approved_by: None,
        created_at: now,
        started_at: (!needs_approval).then_some(now),
        finished_at: None,
        steps: serde_json::to_value(&specs).unwrap_or(Value::Null),
        systems: json!({"systems": targets}),
        notes: json!([]),
        error: None,
    };
    let window = i64::try_from(app.cfg.drills.approval_window.0.as_millis()).unwrap_or(i64::MAX);
    let approval = needs_approval.then(|| Approval {
        id: 0,
        run: id.clone(),
        plan: record.name.clone(),
        mode: mode.as_str().into(),
        requested_by: by.user.clone(),
        requested_at: now,
        expires_at: now.saturating_add(window),
        decided_by: None,
        decided_at: None,
        decision: None,
    });
    app.store.insert_drill(&run, approval.as_ref()).await?;
    app.audit(
        &by.user,
        "drill.start",
        Some(&id),
        json!({"plan": record.name, "version": record.version, "mode": mode.as_str()}),
    )
    .await;
    let approval_id = if needs_approval {
        app.store.approvals(true).await?.into_iter().find(|a| a.run == id).map(|a| a.id)
    } else {
        drive(app.clone(), id.clone());
        None
    };
    Ok(Started {
        run: id,
        plan: record.name,
        plan_version: record.version,
        mode: mode.as_str().into(),
        state: run.state,
        approval: approval_id,
        expires_at: approval.map(|a| crate::app::rfc3339(a.expires_at)),
        steps: specs.len(),
    })
}

/// Approves (or refuses) a pending request: only another operator than the one who started
/// the run, within the window.
pub async fn decide(app: &Arc<App>, approval_id: i64, by: &Principal, approve: bool) -> Result<Value, AppError> {
    let a = app
        .store
        .approval(approval_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no approval request {approval_id}")))?;
    if let Some(d) = &a.decision {
        return Err(AppError::Conflict(format!(
            "approval {approval_id} was already decided: {d} by {}",
            a.decided_by.as_deref().unwrap_or("-")
        )));
    }
    if a.requested_by == by.user {
        app.audit(
            &by.user,
            "drill.approve.refused",
            Some(&a.run),
            json!({"approval": approval_id, "why": "same person"}),
        )
        .await;
        return Err(AppError::Forbidden(format!(
            "you ({}) started run {}: a second, different operator must approve it (two-person rule)",
            by.user, a.run
        )));
    }
    let now = now_ms();
    if now > a.expires_at {
        expire(app, &a, now).await?;
        return Err(AppError::Conflict(format!(
            "approval {approval_id} expired at {}",
            crate::app::rfc3339(a.expires_at)
        )));
    }
    let decision = if approve { "approved" } else { "refused" };
    if !app.store.decide_approval(approval_id, &by.user, decision, now).await? {
        return Err(AppError::Conflict(format!("approval {approval_id} was decided by someone else just now")));
    }
    let change = if approve {
        StateChange {
            from: &["awaiting_approval"],
            to: "running",
            approved_by: Some(&by.user),
            started_at: Some(now),
            ..Default::default()
        }
    } else {
        StateChange { from: &["awaiting_approval"], to: "refused", finished_at: Some(now), ..Default::default() }
    };
    let moved = app.store.change_drill_state(&a.run, &change).await?;
    app.audit(
        &by.user,
        if approve { "drill.approve" } else { "drill.refuse" },
        Some(&a.run),
        json!({"approval": approval_id}),
    )
    .await;
    if !moved {
        let state = app.store.drill(&a.run).await?.map_or_else(|| "gone".to_string(), |r| r.state);
        return Err(AppError::Conflict(format!("run {} is {state}: there is nothing left to approve", a.run)));
    }
    if approve {
        drive(app.clone(), a.run.clone());
    }
    Ok(json!({"approval": approval_id, "run": a.run, "decision": decision}))
}

async fn expire(app: &App, a: &Approval, now: i64) -> Result<(), AppError> {
    if app.store.decide_approval(a.id, "-", "expired", now).await? {
        let change = StateChange {
            from: &["awaiting_approval"],
            to: "expired",
            finished_at: Some(now),
            error: Some("nobody approved it in time"),
            ..Default::default()
        };
        app.store.change_drill_state(&a.run, &change).await?;
    }
    Ok(())
}

/// A person's action on a running run: `pause`, `resume` or `abort`.
pub async fn act(app: &Arc<App>, id: &str, action: &str, by: &Principal) -> Result<Value, AppError> {
    let (from, to): (&[&str], &str) = match action {
        "pause" => (&["running"], "paused"),
        "resume" => (&["paused"], "running"),
        "abort" => (&["running", "paused"], "aborting"),
        other => return Err(AppError::BadRequest(format!("unknown action {other:?}: pause, resume or abort"))),
    };
    let run = app.store.drill(id).await?.ok_or_else(|| AppError::NotFound(format!("no run {id}")))?;
    if action == "abort" && run.state == "awaiting_approval" {
        // Withdrawn before anyone approved it: the request leaves the inbox too.
        let now = now_ms();
        let change =
            StateChange { from: &["awaiting_approval"], to: "aborted", finished_at: Some(now), ..Default::default() };
        app.store.change_drill_state(id, &change).await?;
        for a in app.store.approvals(true).await?.iter().filter(|a| a.run == id) {
            app.store.decide_approval(a.id, &by.user, "withdrawn", now).await?;
        }
    } else if !app.store.change_drill_state(id, &StateChange { from, to, ..Default::default() }).await? {
        return Err(AppError::Conflict(format!("run {id} is {}: cannot {action} it", run.state)));
    }
    app.audit(&by.user, &format!("drill.{action}"), Some(id), json!({})).await;
    app.drills.wake(id);
    Ok(json!({"run": id, "action": action}))
}

/// A person confirms a prompt the run waits on.
pub async fn confirm(app: &Arc<App>, id: &str, key: &str, by: &Principal) -> Result<Value, AppError> {
    let steps = app.store.drill_steps(id).await?;
    let Some(mut s) = steps.into_iter().find(|s| s.key == key) else {
        return Err(AppError::NotFound(format!("run {id} has no step {key} waiting")));
    };
    if s.state != StepState::Waiting.as_str() {
        return Err(AppError::Conflict(format!("step {key} of run {id} is {}, not waiting", s.state)));
    }
    s.state = StepState::Succeeded.as_str().into();
    s.finished_at = Some(now_ms());
    let mut result = s.result.take().unwrap_or_else(|| json!({}));
    if let Some(o) = result.as_object_mut() {
        o.insert("confirmed_by".into(), json!(by.user));
    }
    s.result = Some(result);
    app.store.put_drill_step(&s).await?;
    app.audit(&by.user, "drill.confirm", Some(id), json!({"step": key})).await;
    app.drills.wake(id);
    Ok(json!({"run": id, "step": key, "confirmed_by": by.user}))
}

/// Appends an operator's note to the run's record.
pub async fn note(app: &App, id: &str, text: &str, by: &Principal) -> Result<Value, AppError> {
    let text = text.trim();
    if text.is_empty() || text.len() > 4000 {
        return Err(AppError::BadRequest("a note is 1 to 4000 bytes of text".into()));
    }
    let note = json!({"at": crate::app::rfc3339(now_ms()), "by": by.user, "text": text});
    if !app.store.add_drill_note(id, &note).await? {
        return Err(AppError::NotFound(format!("no run {id}")));
    }
    app.audit(&by.user, "drill.note", Some(id), json!({})).await;
    Ok(note)
}

/// At start: every unfinished run is driven again (a step a crash interrupted runs again,
/// being idempotent by its key); expired approval requests are closed.
pub fn spawn(app: Arc<App>) {
    tokio::spawn(async move {
        match app.store.active_drills().await {
            Ok(runs) => {
                for r in runs {
                    if r.state != "awaiting_approval" {
                        tracing::info!(run = r.id, state = r.state, "resuming drill");
                        drive(app.clone(), r.id);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read unfinished drills; they are not resumed"),
        }
        let mut tick = tokio::time::interval(Duration::from_secs(15));
        loop {
            tokio::select! {
                _ = app.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = now_ms();
            if let Ok(pending) = app.store.approvals(true).await {
                for a in pending.iter().filter(|a| a.expires_at < now) {
                    if let Err(e) = expire(&app, a, now).await {
                        tracing::warn!(approval = a.id, error = %e, "cannot expire an approval request");
                    }
                }
            }
        }
    });
}

/// Starts the driver of run `id` unless this controller already drives it.
pub fn drive(app: Arc<App>, id: String) {
    if !app.drills.driving.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone()) {
        app.drills.wake(&id);
        return;
    }
    tokio::spawn(async move {
        if let Err(e) = drive_loop(&app, &id).await {
            tracing::error!(run = id, error = %e, "drill driver stopped; it resumes at the next controller start");
        }
        app.drills.driving.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    });
}

fn status_of(r: &StepRecord) -> StepStatus {
    StepStatus {
        state: StepState::parse(&r.state).unwrap_or(StepState::Pending),
        attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
        not_before: r.not_before,
    }
}

fn record(run: &str, key: &str, st: StepStatus) -> StepRecord {
    StepRecord {
        run: run.into(),
        key: key.into(),
        state: st.state.as_str().into(),
        attempts: i64::from(st.attempts),
        started_at: None,
        finished_at: None,
        not_before: st.not_before,
        result: None,
        error: None,
    }
}

async fn drive_loop(app: &Arc<App>, id: &str) -> Result<(), AppError> {
    let wake = app.drills.notifier(id);
    let Some(run) = app.store.drill(id).await? else { return Ok(()) };
    let specs: Vec<StepSpec> = serde_json::from_value(run.steps.clone())
        .map_err(|e| AppError::Conflict(format!("run {id}: its stored steps cannot be read ({e})")))?;
    let mode = Mode::parse(&run.mode).map_err(AppError::Conflict)?;
    let (_, plan) = super::plans::load(app, &run.plan, Some(run.plan_version)).await?;
    let plan = Arc::new(plan);
    // A step found running was interrupted by a restart: run it again (idempotent) or fail it.
    for r in app.store.drill_steps(id).await? {
        if let Some(spec) = specs.iter().find(|s| s.key == r.key) {
            let (st, why) = workflow::on_resume(spec, status_of(&r));
            if st != status_of(&r) {
                let mut fixed = r.clone();
                fixed.state = st.state.as_str().into();
                if let Some(why) = why {
                    fixed.error = Some(why);
                    fixed.finished_at = Some(now_ms());
                }
                app.store.put_drill_step(&fixed).await?;
            }
        }
    }
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut in_flight: HashSet<String> = HashSet::new();
    loop {
        let Some(run) = app.store.drill(id).await? else { return Ok(()) };
        let Some(state) = RunState::parse(&run.state) else {
            return Err(AppError::Conflict(format!("run {id} has an unknown state {}", run.state)));
        };
        if state.is_terminal() {
            return Ok(());
        }
        let records = app.store.drill_steps(id).await?;
        let status: HashMap<String, StepStatus> = records.iter().map(|r| (r.key.clone(), status_of(r))).collect();
        let now = now_ms();
        let d = workflow::decide(state, &specs, &status, now);
        for key in &d.skip {
            let mut r = record(id, key, StepStatus { state: StepState::Skipped, attempts: 0, not_before: None });
            r.finished_at = Some(now);
            app.store.put_drill_step(&r).await?;
        }
        if let Some((end, why)) = &d.finish
            && in_flight.is_empty()
        {
            let change = StateChange {
                from: ACTIVE,
                to: end.as_str(),
                finished_at: Some(now),
                error: why.as_deref(),
                ..Default::default()
            };
            app.store.change_drill_state(id, &change).await?;
            tracing::info!(run = id, result = end.as_str(), reason = why.as_deref().unwrap_or(""), "drill ended");
            // The record is evidence for the packs' drill controls of its systems' hosts.
            let mut systems: Vec<String> = specs.iter().filter_map(|s| s.system.clone()).collect();
            systems.sort();
            systems.dedup();
            crate::policy::evaluate::reevaluate_systems(app, systems, format!("drill {id} {}", end.as_str()));
            return Ok(());
        }
        let to_start: Vec<String> = d.start.iter().filter(|k| !in_flight.contains(*k)).cloned().collect();
        for key in &to_start {
            let Some(spec) = specs.iter().find(|s| &s.key == key).cloned() else { continue };
            let prev = status.get(key).copied().unwrap_or(StepStatus::NEW);
            let attempt = prev.attempts + 1;
            // The start is on disk before the step acts.
            let mut r = record(id, key, StepStatus { state: StepState::Running, attempts: attempt, not_before: None });
            r.started_at = Some(now_ms());
            app.store.put_drill_step(&r).await?;
            in_flight.insert(key.clone());
            let (app2, run2, plan2, tx) = (app.clone(), run.clone(), plan.clone(), done_tx.clone());
            tokio::spawn(async move {
                let done = app2.store.drill_steps(&run2.id).await.unwrap_or_default();
                let ctx = Ctx { app: &app2, run: &run2, plan: &plan2, mode, done: &done };
                let outcome = exec::run(&ctx, &spec).await;
                let now = now_ms();
                let mut r = r;
                match outcome {
                    Ok(Outcome::Done(v)) => {
                        r.state = StepState::Succeeded.as_str().into();
                        r.finished_at = Some(now);
                        r.result = Some(v);
                    }
                    Ok(Outcome::Waiting(v)) => {
                        r.state = StepState::Waiting.as_str().into();
                        r.result = Some(v);
                    }
                    Err(e) => {
                        let next = workflow::after_failure(&spec, attempt, now);
                        tracing::warn!(run = run2.id, step = spec.key, attempt, error = %e, "drill step failed");
                        r.state = next.state.as_str().into();
                        r.not_before = next.not_before;
                        r.error = Some(e);
                        r.finished_at = (next.state == StepState::Failed).then_some(now);
                    }
                }
                if let Err(e) = app2.store.put_drill_step(&r).await {
                    tracing::error!(run = run2.id, step = spec.key, error = %e, "cannot record a step's result");
                }
                let _ = tx.send(());
                app2.drills.wake(&run2.id);
            });
        }
        // Forget steps whose results are recorded.
        let wait = d
            .wake_at
            .map_or(IDLE_LOOK, |t| Duration::from_millis(u64::try_from(t - now_ms()).unwrap_or(0)).min(IDLE_LOOK));
        tokio::select! {
            _ = wake.notified() => {}
            _ = done_rx.recv() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = app.shutdown.cancelled() => return Ok(()),
        }
        let records = app.store.drill_steps(id).await?;
        in_flight.retain(|k| records.iter().any(|r| &r.key == k && r.state == "running"));
    }
}
