//! Platform snapshot runs: for a `snapshots` plan, the controller itself (not an agent) asks
//! each VM's platform for a snapshot named `mangrove-<system>-<UTC time>`, then deletes that
//! system's own snapshots beyond the plan's `keep`, newest kept. Snapshots named otherwise (an
//! operator's, another tool's) are never touched.
//!
//! A run is a backup run of kind `snapshot`, one at a time per plan. It runs in the controller,
//! so a controller that stops mid-run leaves it `running`; the next start marks it failed (see
//! [`fail_interrupted`]) and the next run's retention removes anything beyond `keep`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use plugins::hypervisor::{OpState, Operation, Snapshot, wait};
use serde_json::{Value, json};

use super::plans::Plan;
use crate::app::{App, AppError, now_ms};
use crate::store::{BackupRun, RunEnd, VmRecord};

/// The run kind of a platform snapshot run.
pub const KIND: &str = "snapshot";
/// Longest a VM's snapshot and clean-up may take.
const PER_VM_DEADLINE: Duration = Duration::from_secs(1800);
/// VMs snapshotted at once: enough to finish a system quickly, few enough not to load a
/// platform that also serves production.
const PARALLEL_VMS: usize = 4;
/// The UTC time format inside a snapshot name; fixed width, so names sort by time.
const STAMP: &str = "%Y%m%dT%H%M%SZ";

/// The name of a snapshot the plan takes at `at` (unix ms).
pub fn snapshot_name(system: &str, at: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(at).unwrap_or_default();
    format!("mangrove-{system}-{}", t.format(STAMP))
}

/// Whether `name` is one of this system's plan snapshots (prefix and a well-formed time).
fn is_ours(system: &str, name: &str) -> bool {
    name.strip_prefix(&format!("mangrove-{system}-"))
        .is_some_and(|stamp| chrono::NaiveDateTime::parse_from_str(stamp, STAMP).is_ok())
}

/// The snapshots retention removes: the system's own beyond the newest `keep`, oldest last.
pub fn to_delete<'a>(snapshots: &'a [Snapshot], system: &str, keep: u32) -> Vec<&'a Snapshot> {
    let mut ours: Vec<&Snapshot> = snapshots.iter().filter(|s| is_ours(system, &s.name)).collect();
    ours.sort_by(|a, b| b.name.cmp(&a.name));
    ours.into_iter().skip(usize::try_from(keep).unwrap_or(usize::MAX)).collect()
}

/// Starts a snapshot run of `plan`; the work goes on in the background. Refused while one of
/// the same plan runs.
pub async fn start(app: &Arc<App>, plan: &Plan, by: &str) -> Result<BackupRun, AppError> {
    if let Some(r) = app.store.running_run(&plan.system, &plan.plan, KIND).await? {
        return Err(AppError::Conflict(format!(
            "snapshots of {}/{} are already being taken (run {}, since {})",
            plan.system,
            plan.plan,
            r.id,
            crate::app::rfc3339(r.started_at)
        )));
    }
    let vms: Vec<VmRecord> =
        app.store.list_vms().await?.into_iter().filter(|v| v.system.as_deref() == Some(plan.system.as_str())).collect();
    if vms.is_empty() {
        return Err(AppError::NotFound(format!(
            "no VM of system {} is known; run `mangrove platforms sync` first",
            plan.system
        )));
    }
    let id = format!("sn-{}", hex::encode(rand::random::<[u8; 8]>()));
    let platforms: Vec<&str> = {
        let mut p: Vec<&str> = vms.iter().map(|v| v.platform.as_str()).collect();
        p.dedup();
        p
    };
    let run = super::runs::run_record(&id, KIND, plan, &platforms.join(","), by);
    app.store.insert_run(&run).await?;
    let (app2, plan2) = (app.clone(), plan.clone());
    tokio::spawn(async move { execute(&app2, &plan2, &id, vms).await });
    Ok(run)
}

/// Takes every VM's snapshot, applies retention and records the run's end.
async fn execute(app: &Arc<App>, plan: &Plan, run_id: &str, vms: Vec<VmRecord>) {
    let name = snapshot_name(&plan.system, now_ms());
    let results: Vec<Value> = futures::stream::iter(vms)
        .map(|vm| one_vm(app, plan, vm, name.clone()))
        .buffer_unordered(PARALLEL_VMS)
        .collect()
        .await;
    let failed: Vec<String> =
        results.iter().filter_map(|r| Some(format!("{}: {}", r["vm"].as_str()?, r["error"].as_str()?))).collect();
    let error =
        (!failed.is_empty()).then(|| format!("{} of {} VMs: {}", failed.len(), results.len(), failed.join("; ")));
    let end = RunEnd {
        status: if failed.is_empty() { "ok" } else { "failed" }.to_string(),
        error: error.clone(),
        result: Some(json!({"snapshot": name, "vms": results})),
        at: now_ms(),
        snapshots: Vec::new(),
        forgotten: Vec::new(),
        verdict: None,
    };
    match app.store.finish_run(run_id, &end).await {
        Ok(_) => match &error {
            None => tracing::info!(run = run_id, system = plan.system, snapshot = name, "platform snapshots taken"),
            Some(e) => tracing::warn!(run = run_id, system = plan.system, error = %e, "platform snapshot run failed"),
        },
        Err(e) => tracing::error!(run = run_id, error = %e, "platform snapshot run not recorded"),
    }
}

/// One VM: create, wait, list, delete what retention removes. The result names what was done,
/// and the error if any step failed (a failed delete leaves the new snapshot in place).
async fn one_vm(app: &Arc<App>, plan: &Plan, vm: VmRecord, name: String) -> Value {
    let Some(conn) = app.platforms.connection(&vm.platform).cloned() else {
        return json!({"vm": vm.info.name, "platform": vm.platform,
            "error": format!("platform {} is not configured on this controller", vm.platform)});
    };
    let (system, keep, id) = (plan.system.clone(), plan.keep_last, vm.vm_id.clone());
    let description = format!("Mangrove plan {}/{}", plan.system, plan.plan);
    let done = crate::platforms::with_driver(&conn, PER_VM_DEADLINE, move |d| {
        let op = d.snapshot_create(&id, &name, &description)?;
        if let Some(e) = failure(&wait(d, op, PER_VM_DEADLINE, |_| {})?) {
            return Ok((None, Vec::new(), Some(e)));
        }
        let list = d.snapshot_list(&id)?;
        let mut deleted = Vec::new();
        for s in to_delete(&list, &system, keep) {
            let op = wait(d, d.snapshot_delete(&id, &s.id)?, PER_VM_DEADLINE, |_| {})?;
            if let Some(e) = failure(&op) {
                return Ok((Some(name), deleted, Some(format!("deleting {}: {e}", s.name))));
            }
            deleted.push(s.name.clone());
        }
        Ok((Some(name), deleted, None))
    })
    .await;
    match done {
        Ok((snapshot, deleted, error)) => {
            json!({"vm": vm.info.name, "platform": vm.platform, "snapshot": snapshot, "deleted": deleted, "error": error})
        }
        Err(e) => json!({"vm": vm.info.name, "platform": vm.platform, "error": e}),
    }
}

fn failure(op: &Operation) -> Option<String> {
    match &op.state {
        OpState::Failed { message } => Some(format!("{}: {message}", op.description)),
        _ => None,
    }
}

/// Marks the snapshot runs a stopped controller left `running` as failed.
pub async fn fail_interrupted(app: &App) {
    let runs = match app.store.list_runs(None, 1000).await {
        Ok(r) => r,
        Err(e) => return tracing::warn!(error = %e, "interrupted snapshot runs not checked"),
    };
    for r in runs.iter().filter(|r| r.kind == KIND && r.status == "running") {
        let end = RunEnd {
            status: "failed".to_string(),
            error: Some(
                "the controller stopped during the run; the next run's retention removes any snapshot beyond `keep`"
                    .to_string(),
            ),
            result: None,
            at: now_ms(),
            snapshots: Vec::new(),
            forgotten: Vec::new(),
            verdict: None,
        };
        if let Err(e) = app.store.finish_run(&r.id, &end).await {
            tracing::warn!(run = r.id, error = %e, "interrupted snapshot run not marked failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(name: &str) -> Snapshot {
        Snapshot { id: format!("id-{name}"), name: name.into(), description: None, created: None, current: false }
    }

    #[test]
    fn names_carry_the_utc_time_and_sort_by_it() {
        // 2026-11-27 01:00 in Cà Mau is 2026-11-26 18:00 UTC.
        assert_eq!(snapshot_name("qlvbdh", 1_795_716_000_000), "mangrove-qlvbdh-20261126T180000Z");
        assert!(snapshot_name("a", 1_000) < snapshot_name("a", 86_400_000));
    }

    #[test]
    fn retention_keeps_the_newest_of_the_systems_own_and_touches_nothing_else() {
        let list = [
            snap("mangrove-qlvbdh-20261120T180000Z"),
            snap("before-upgrade"),
            snap("mangrove-qlvbdh-20261126T180000Z"),
            snap("mangrove-qlvbdh-20261122T180000Z"),
            snap("mangrove-qlvbdh-extra-20261101T180000Z"),
            snap("mangrove-qlvbdh-not-a-time"),
            snap("mangrove-email-20261101T180000Z"),
            snap("mangrove-qlvbdh-20261124T180000Z"),
        ];
        let gone: Vec<&str> = to_delete(&list, "qlvbdh", 2).iter().map(|s| s.name.as_str()).collect();
        assert_eq!(gone, ["mangrove-qlvbdh-20261122T180000Z", "mangrove-qlvbdh-20261120T180000Z"]);
        assert!(to_delete(&list, "qlvbdh", 10).is_empty());
        assert_eq!(to_delete(&list, "email", 0).len(), 1);
    }
}
