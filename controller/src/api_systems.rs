//! `/api/v1/systems`: the information systems (HTTT) of the inventory with their level,
//! framework, owner and the machines they run on (declared, and VMs that platform sync maps to
//! them). The compliance score is `null` until the system has been evaluated.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::api::{ApiResult, Auth, READERS, require};
use crate::app::{App, AppError};

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/v1/systems", get(list_systems))
}

use crate::policy::scope::system_hosts;

async fn list_systems(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read systems")?;
    let inv = app.inventory.clone().ok_or_else(|| {
        AppError::Conflict("the controller was started without an inventory, so it knows no systems".into())
    })?;
    let vms = app.store.list_vms().await?;
    let findings = app.store.list_findings(None).await?;
    let list = inv
        .systems
        .iter()
        .map(|s| {
            let hosts = system_hosts(&inv, &s.name, &vms);
            json!({
                "name": s.name,
                "title_vi": s.title_vi,
                "title_en": s.title_en,
                "level": s.level.get(),
                "framework": s.framework,
                "owner": s.owner,
                "priority": s.priority.get(),
                "rpo": inventory::format_duration(s.rpo),
                "rto": inventory::format_duration(s.rto),
                "score": score(&findings, &hosts),
                "hosts": hosts,
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// A system's compliance score over its hosts' stored findings (the rule is
/// [`crate::compliance_report::score`]'s), to one decimal.
pub fn score(findings: &[crate::store::FindingRecord], hosts: &[String]) -> Option<f64> {
    crate::compliance_report::score_of(findings.iter().filter(|f| hosts.contains(&f.host)).map(|f| f.status.as_str()))
        .map(|s| (s * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::VmRecord;

    #[test]
    fn a_system_runs_on_its_declared_guest_and_the_vms_sync_mapped_to_it() {
        let inv = inventory::parse_str(include_str!("../../inventory/examples/camau.yaml"), "camau.yaml")
            .expect("the example loads");
        let vm = |name: &str, system: Option<&str>| VmRecord {
            platform: "vcenter-dc".into(),
            vm_id: format!("vm-{name}"),
            site: Some("dc".into()),
            system: system.map(str::to_string),
            first_seen: 0,
            last_seen: 0,
            info: plugins::hypervisor::VmInfo {
                id: format!("vm-{name}"),
                name: name.into(),
                host: None,
                power_state: plugins::hypervisor::PowerState::On,
                vcpus: 1,
                memory_bytes: 1,
                disks: vec![],
                networks: vec![],
                guest_os: None,
                tags: Default::default(),
            },
        };
        let vms = vec![vm("qlvbdh-db-01", Some("qlvbdh")), vm("ad-dc-01", None), vm("qlvbdh-app-01", Some("qlvbdh"))];
        assert_eq!(system_hosts(&inv, "qlvbdh", &vms), vec!["qlvbdh-app-01", "qlvbdh-db-01"]);
        assert_eq!(system_hosts(&inv, "email", &[]), vec!["email-app-01"]);
    }
}
