//! The backup scheduler and the RPO watch. Every evaluation interval (default 30 s): each plan
//! whose cron schedule has come due since its last run gets a run (a backup; a structural
//! check reading a rolling twelfth of the data; a restore drill on its restore host), and each
//! system's RPO is measured: the age of its newest restore point that no check or drill has
//! shown bad. A breach is logged, shown in the metrics and listed by the API until it ends.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::plans::{Plan, PlanKind, next_run, parse_cron};
use super::runs::{self, RestoreRequest};
use crate::app::{App, now_ms};
use crate::metrics::{SystemLabel, SystemPlan};

/// The scheduler's actor name in runs and logs.
pub const SCHEDULER: &str = "scheduler";

/// Systems whose RPO is breached now, with when it began (unix ms).
#[derive(Debug, Default)]
pub struct Breaches(Mutex<BTreeMap<String, i64>>);

impl Breaches {
    pub fn current(&self) -> BTreeMap<String, i64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// When the plan's `cron` is next due after its last run of `kind` in `runs` (or after `since`).
fn due(runs: &[crate::store::BackupRun], plan: &Plan, kind: &str, cron: &str, since: i64) -> Option<i64> {
    let cron = parse_cron(cron).ok()?;
    let last = runs.iter().find(|r| r.kind == kind && r.plan == plan.plan).map_or(since, |r| r.started_at);
    next_run(&cron, last / 1000).map(|s| s * 1000)
}

/// The repositories runs are using now: the scheduler starts one run per repository at a
/// time. Systems share repositories, and Debian's restic (0.14) makes sharing one at once
/// unsafe: `restic check` and retention lock it exclusively (the run started second fails on
/// the lock), and a run can read a snapshot file another is still writing. What waits is
/// started on a later pass, when it is still due.
#[derive(Debug, Default)]
struct Busy(BTreeSet<String>);

impl Busy {
    /// From the runs still running (a backup uses every repository of its plan; a check or a
    /// restore, the one it names).
    fn of(running: &[crate::store::BackupRun], plans: &[Plan]) -> Busy {
        let mut busy = Busy::default();
        for r in running.iter().filter(|r| r.status == "running") {
            match &r.repository {
                Some(repo) => {
                    busy.0.insert(repo.clone());
                }
                None => {
                    if let Some(p) = plans.iter().find(|p| p.system == r.system && p.plan == r.plan) {
                        busy.starting(p);
                    }
                }
            }
        }
        busy
    }

    fn may_start(&self, plan: &Plan) -> bool {
        !plan.repositories.iter().any(|r| self.0.contains(&r.name))
    }

    fn starting(&mut self, plan: &Plan) {
        self.0.extend(plan.repositories.iter().map(|r| r.name.clone()));
    }
}

/// One pass: start what is due, then measure RPO.
pub async fn tick(app: &Arc<App>, started: i64) {
    let now = now_ms();
    let mut busy = match app.store.list_runs(None, 1000).await {
        Ok(runs) => Busy::of(&runs, &app.backups.plans),
        Err(e) => return tracing::warn!(error = %e, "backup runs not read; nothing started"),
    };
    for plan in &app.backups.plans {
        // One read of the system's recent runs serves the three schedules.
        let runs = match app.store.list_runs(Some(&plan.system), 200).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(system = plan.system, error = %e, "backup runs not read; nothing started");
                continue;
            }
        };
        let kind = match plan.kind {
            PlanKind::Files => "backup",
            PlanKind::PlatformSnapshots => super::snapshots::KIND,
        };
        if due(&runs, plan, kind, &plan.schedule, started).is_some_and(|t| t <= now) && busy.may_start(plan) {
            match runs::start(app, plan, SCHEDULER).await {
                Ok(_) => busy.starting(plan),
                Err(e) => {
                    tracing::warn!(system = plan.system, plan = plan.plan, error = %e, "scheduled backup not started")
                }
            }
        }
        if let Some(cron) = &plan.check
            && due(&runs, plan, "check", cron, started).is_some_and(|t| t <= now)
            && busy.may_start(plan)
        {
            let week = now / 1000 / (7 * 86_400);
            let subset = format!("{}/12", week % 12 + 1);
            match runs::start_checks(app, plan, Some(&subset), SCHEDULER).await {
                Ok(_) => busy.starting(plan),
                Err(e) => tracing::warn!(system = plan.system, error = %e, "scheduled check not started"),
            }
        }
        if let Some(cron) = &plan.restore_test
            && due(&runs, plan, "restore", cron, started).is_some_and(|t| t <= now)
            && let Err(e) = drill(app, plan, SCHEDULER).await
        {
            tracing::warn!(system = plan.system, error = %e, "scheduled restore drill not started");
        }
    }
    evaluate_rpo(app, now).await;
}

/// A restore drill of the plan's newest restore point on its restore host.
pub async fn drill(app: &App, plan: &Plan, by: &str) -> Result<crate::store::BackupRun, crate::app::AppError> {
    let snapshots = app.store.list_snapshots(&plan.system).await?;
    let snapshot = snapshots
        .iter()
        .find(|s| s.plan == plan.plan && s.verified != "failed")
        .ok_or_else(|| crate::app::AppError::NotFound(format!("{} has no restore point to drill", plan.system)))?;
    let host = plan.restore_host.clone().unwrap_or_else(|| plan.host.clone());
    let target = format!("/var/tmp/mangrove-drill/{}-{}", plan.system, now_ms());
    let req =
        RestoreRequest { plan, snapshot, host: &host, target: &target, drill: true, force: false, place: Vec::new() };
    runs::start_restore(app, &req, by).await
}

/// Measures each system's RPO and updates the gauges and the breach list.
pub async fn evaluate_rpo(app: &App, now: i64) {
    let newest = match app.store.newest_good_snapshots().await {
        Ok(n) => n,
        Err(e) => return tracing::warn!(error = %e, "RPO not evaluated"),
    };
    let mut by_system: BTreeMap<&str, (Duration, Option<i64>)> = BTreeMap::new();
    // Platform snapshots stay on the VM's own storage: they never count towards the RPO.
    for plan in app.backups.plans.iter().filter(|p| p.kind == PlanKind::Files) {
        let last = newest.iter().find(|(s, p, _)| *s == plan.system && *p == plan.plan).map(|(_, _, t)| *t);
        if let Some(t) = last {
            let l = SystemPlan { system: plan.system.clone(), plan: plan.plan.clone() };
            app.metrics.backup_last_success.get_or_create(&l).set(t / 1000);
        }
        let e = by_system.entry(plan.system.as_str()).or_insert((plan.rpo, last));
        e.1 = e.1.max(last);
    }
    let mut breaches = app.backup_breaches.0.lock().unwrap_or_else(|p| p.into_inner());
    for (system, (rpo, last)) in by_system {
        let l = SystemLabel { system: system.to_string() };
        let age_ms = last.map(|t| now.saturating_sub(t));
        if let Some(age) = age_ms {
            app.metrics.backup_rpo_seconds.get_or_create(&l).set(age / 1000);
        }
        let breach = age_ms.is_none_or(|a| a > i64::try_from(rpo.as_millis()).unwrap_or(i64::MAX));
        app.metrics.backup_rpo_breach.get_or_create(&l).set(i64::from(breach));
        match (breach, breaches.contains_key(system)) {
            (true, false) => {
                tracing::warn!(
                    system,
                    rpo = %inventory::format_duration(rpo),
                    newest = ?last.map(crate::app::rfc3339),
                    "RPO breached: no good restore point within the RPO"
                );
                breaches.insert(system.to_string(), now);
            }
            (false, true) => {
                tracing::info!(system, "RPO met again");
                breaches.remove(system);
            }
            _ => {}
        }
    }
}

/// Runs [`tick`] every `every` until shutdown.
pub fn spawn(app: Arc<App>, every: Duration) {
    tokio::spawn(async move {
        let started = now_ms();
        loop {
            tick(&app, started).await;
            tokio::select! {
                _ = app.shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BackupRun;

    fn plans() -> Vec<Plan> {
        let inv = inventory::parse_str(include_str!("../../../inventory/examples/camau.yaml"), "camau.yaml")
            .expect("example");
        super::super::plans::plans(&inv).expect("plans")
    }

    fn running(kind: &str, system: &str, repository: Option<&str>) -> BackupRun {
        BackupRun {
            id: format!("{kind}-{system}"),
            kind: kind.into(),
            system: system.into(),
            plan: "files".into(),
            host: String::new(),
            repository: repository.map(str::to_string),
            snapshot_id: None,
            requested_by: SCHEDULER.into(),
            started_at: 0,
            finished_at: None,
            status: "running".into(),
            error: None,
            result: None,
        }
    }

    #[test]
    fn one_scheduled_run_per_repository_at_a_time() {
        let plans = plans();
        let plan = |s: &str| plans.iter().find(|p| p.system == s && p.plan == "files").expect("plan");
        let (q, e) = (plan("qlvbdh"), plan("email"));
        let shared = &q.repositories[0].name;
        assert!(e.repositories.iter().any(|r| &r.name == shared), "the example's systems share {shared}");

        // Another system's backup (all its repositories), check or restore of a shared one
        // holds a run off.
        for r in [
            running("backup", "email", None),
            running("check", "email", Some(shared)),
            running("restore", "email", Some(shared)),
        ] {
            assert!(!Busy::of(std::slice::from_ref(&r), &plans).may_start(q), "{r:?}");
        }
        // A run on another repository does not.
        assert!(Busy::of(&[running("check", "email", Some("elsewhere"))], &plans).may_start(q));

        // Finished runs hold nothing; what one pass starts counts for the rest of the pass.
        let mut done = running("check", "email", Some(shared));
        done.status = "ok".into();
        let mut busy = Busy::of(&[done], &plans);
        assert!(busy.may_start(q));
        busy.starting(e);
        assert!(!busy.may_start(q));
    }
}
