//! `drill check`: every pre-check now, and what each step of the run would do, changing
//! nothing. The approvals inbox shows the same description as the dry-run of a request.

use std::sync::Arc;

use serde_json::{Value, json};

use super::exec::{Ctx, instance_name};
use super::steps::{self, Mode, StepKind, StepSpec};
use crate::app::{App, AppError, now_ms};
use crate::store::DrillRun;

/// What a step would do, in a sentence.
pub fn describe(spec: &StepSpec, run: &DrillRun, mode: Mode, zone: Option<&str>) -> String {
    let wl = spec.workload.as_deref().unwrap_or("-");
    let sys = spec.system.as_deref().unwrap_or("-");
    match spec.kind {
        StepKind::Precheck => format!("check: {}", spec.params["check"].as_str().unwrap_or(&spec.key)),
        StepKind::FinalBackup if mode == Mode::Failback => format!("take a last backup of {sys} at DR"),
        StepKind::FinalBackup => format!("take a last backup of {sys} at the DC"),
        StepKind::DcPowerOff => format!("power off VM {wl} at the DC"),
        StepKind::DrBoot => format!(
            "boot instance {} from image {} on DR network for {}",
            instance_name(run, mode, wl),
            spec.params["image"].as_str().unwrap_or("-"),
            if mode == Mode::Test { "tests (isolated)" } else { "production" }
        ),
        StepKind::DrRestore => {
            format!("restore {sys}'s restore point into {} through its agent", instance_name(run, mode, wl))
        }
        StepKind::DcRestore => format!("restore {sys}'s final backup from DR into {wl} at the DC, in place"),
        StepKind::DrRetire => format!("delete instance {} at DR", instance_name(run, Mode::Disaster, wl)),
        StepKind::Readdress => format!("record the DR address of {}", instance_name(run, mode, wl)),
        StepKind::DnsSwitch => {
            let names: Vec<String> = spec.params["records"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["name"].as_str().map(|n| format!("{n}.{}", zone.unwrap_or("?"))))
                .collect();
            let to = if mode == Mode::Failback {
                "back at what they held before the failover"
            } else {
                "at {sys}'s DR address"
            };
            format!("point {} {}", names.join(", "), to.replace("{sys}", sys))
        }
        StepKind::Probe => format!(
            "probe {} until it passes",
            spec.params["http"].as_str().or(spec.params["tcp"].as_str()).unwrap_or("-")
        ),
        StepKind::AgentTask => {
            let on = if mode == Mode::Failback { wl.to_string() } else { instance_name(run, mode, wl) };
            let cmd: Vec<&str> =
                spec.params["command"].as_array().into_iter().flatten().filter_map(|c| c.as_str()).collect();
            format!("run `{}` on {on} through its agent", cmd.join(" "))
        }
        StepKind::Prompt => format!("wait for a person to confirm: {}", spec.params["text_vi"].as_str().unwrap_or("-")),
        StepKind::Cleanup if spec.key.starts_with("cleanup.dns:") => format!("remove {sys}'s test records"),
        StepKind::Cleanup => format!("delete instance {}", instance_name(run, mode, wl)),
        StepKind::CleanupVerify => "re-inventory the DR site and the test zone: nothing of the run may be left".into(),
    }
}

/// The zone a run in `mode` switches.
pub fn zone_of(plan: &inventory::recovery::RecoveryPlan, mode: Mode) -> Option<String> {
    plan.dns.as_ref().map(|d| if mode == Mode::Test { d.test_zone.clone() } else { d.zone.clone() })
}

/// Runs every pre-check of `plan` in `mode` and describes the steps; `ok` when all pass.
pub async fn check(app: &Arc<App>, plan_name: &str, mode: Mode) -> Result<Value, AppError> {
    let (record, plan) = super::plans::load(app, plan_name, None).await?;
    let inv =
        app.inventory.clone().ok_or_else(|| AppError::Conflict("the controller runs without an inventory".into()))?;
    let specs = steps::build(&plan, &inv, mode);
    let run = DrillRun {
        id: "d-check".into(),
        plan: record.name.clone(),
        plan_version: record.version,
        mode: mode.as_str().into(),
        state: "check".into(),
        started_by: "-".into(),
        approved_by: None,
        created_at: now_ms(),
        started_at: Some(now_ms()),
        finished_at: None,
        steps: Value::Null,
        systems: Value::Null,
        notes: Value::Null,
        error: None,
    };
    let ctx = Ctx { app, run: &run, plan: &plan, mode, done: &[] };
    let mut checks = Vec::new();
    let mut ok = true;
    for spec in specs.iter().filter(|s| s.kind == StepKind::Precheck) {
        let started = std::time::Instant::now();
        let r = super::checks::run(&ctx, &spec.key).await;
        ok &= r.is_ok();
        checks.push(json!({
            "key": spec.key, "check": spec.params["check"], "ok": r.is_ok(),
            "detail": match &r { Ok(v) => v.clone(), Err(e) => json!(e) },
            "ms": started.elapsed().as_millis() as u64,
        }));
    }
    Ok(json!({
        "plan": record.name, "version": record.version, "mode": mode.as_str(), "ok": ok,
        "needs_approval": mode.needs_approval(), "checks": checks,
        "steps": steps_json(&specs, &run, mode, zone_of(&plan, mode).as_deref()),
    }))
}

/// The steps with what each would do.
pub fn steps_json(specs: &[StepSpec], run: &DrillRun, mode: Mode, zone: Option<&str>) -> Vec<Value> {
    specs
        .iter()
        .map(|s| {
            json!({
                "key": s.key, "kind": s.kind.as_str(), "system": s.system, "group": s.group,
                "after": s.after, "does": describe(s, run, mode, zone),
            })
        })
        .collect()
}
