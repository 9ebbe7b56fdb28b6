//! What a host's `drill` controls read (`input.drills`): for each system the host serves, its
//! newest drill or failover that ran to its end, with the figures of its drill record.
//!
//! Only reads the store; the verdict for a system (`passed`) is the drill record's own
//! ([`crate::failover::report::build`]), so a finding and the record never disagree.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::app::App;
use crate::store::DrillRun;

/// `input.drills` for a host serving `systems`: a member per system, null for one never
/// drilled. A store that cannot be read counts as no drill known (logged), as for backups:
/// the controls then fail rather than pass on state nobody saw.
pub async fn policy_input(app: &App, systems: &[String]) -> Value {
    let mut out: Map<String, Value> = systems.iter().map(|s| (s.clone(), Value::Null)).collect();
    let newest = match app.store.newest_finished_drills(systems).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "drill runs not read for policy input");
            return Value::Object(out);
        }
    };
    // Systems drilled together share a run: its record is built once.
    let mut reports: HashMap<String, Value> = HashMap::new();
    for (system, run) in newest {
        if !reports.contains_key(&run.id) {
            match app.store.drill_steps(&run.id).await {
                Ok(steps) => {
                    reports.insert(run.id.clone(), crate::failover::report::build(&run, &steps));
                }
                Err(e) => {
                    tracing::warn!(run = run.id, error = %e, "drill steps not read for policy input");
                    continue;
                }
            }
        }
        let entry = entry(&run, &reports[&run.id], &system);
        out.insert(system, entry);
    }
    Value::Object(out)
}

/// One system's share of a drill record (`report`, as [`crate::failover::report::build`] makes
/// it), in the input schema's `drill` shape. A record without the system has not passed it.
fn entry(run: &DrillRun, report: &Value, system: &str) -> Value {
    let sys = report["systems"].as_array().and_then(|a| a.iter().find(|s| s["name"] == system));
    let figure = |key: &str| sys.map_or(Value::Null, |s| s[key].clone());
    json!({
        "run": run.id,
        "plan": run.plan,
        "mode": run.mode,
        "result": run.state,
        "finished_unix": run.finished_at.map(|t| t / 1000),
        "passed": sys.is_some_and(|s| s["pass"] == Value::Bool(true)),
        "rto_seconds": figure("rto_seconds"),
        "rto_target_seconds": figure("rto_target_seconds"),
        "rpo_seconds": figure("rpo_seconds"),
        "rpo_target_seconds": figure("rpo_target_seconds"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> DrillRun {
        DrillRun {
            id: "d-1a2b3c4d".into(),
            plan: "camau-all".into(),
            plan_version: 2,
            mode: "test".into(),
            state: "failed".into(),
            started_by: "op1".into(),
            approved_by: None,
            created_at: 1_795_000_000_000,
            started_at: Some(1_795_000_000_000),
            finished_at: Some(1_795_000_612_345),
            steps: json!([]),
            systems: json!({"systems": [{"name": "email"}, {"name": "qlvbdh"}]}),
            notes: json!([]),
            error: Some("probe failed".into()),
        }
    }

    #[test]
    fn each_system_gets_its_own_verdict_and_figures_from_the_record() {
        let report = json!({"systems": [
            {"name": "email", "rto_seconds": 95.5, "rto_target_seconds": 28800, "rpo_seconds": null,
             "rpo_target_seconds": 3600, "pass": true},
            {"name": "qlvbdh", "rto_seconds": null, "rto_target_seconds": 14400, "rpo_seconds": 700.0,
             "rpo_target_seconds": 3600, "pass": false},
        ]});
        let email = entry(&run(), &report, "email");
        assert_eq!(
            email,
            json!({"run": "d-1a2b3c4d", "plan": "camau-all", "mode": "test", "result": "failed",
                   "finished_unix": 1_795_000_612, "passed": true, "rto_seconds": 95.5,
                   "rto_target_seconds": 28800, "rpo_seconds": null, "rpo_target_seconds": 3600})
        );
        assert_eq!(entry(&run(), &report, "qlvbdh")["passed"], false);
        let missing = entry(&run(), &report, "cong-bao");
        assert_eq!((missing["passed"].clone(), missing["rto_seconds"].clone()), (json!(false), Value::Null));
    }
}
