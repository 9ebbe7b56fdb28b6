//! Where reality drifts from the declared inventory: pure, over what the store holds.

use serde::Serialize;

use crate::store::{PlatformRecord, VmChange, VmRecord};

/// A VM that exists but belongs to no information system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unassigned {
    pub name: String,
    pub platform: String,
    pub site: Option<String>,
    pub host: Option<String>,
}

/// A workload the inventory declares that no synced platform at its site has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub name: String,
    pub site: String,
    pub system: Option<String>,
}

/// A declared workload whose size on the platform differs from the inventory's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub name: String,
    pub platform: String,
    pub declared: Size,
    pub actual: Size,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Size {
    pub vcpus: u32,
    pub memory_bytes: u64,
}

/// Everything `platforms drift` reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Drift {
    /// VMs that exist but belong to no system.
    pub unassigned: Vec<Unassigned>,
    /// Declared workloads that do not exist.
    pub missing: Vec<Missing>,
    /// VMs moved, resized or renamed by the last sync of their platform.
    pub changed: Vec<VmChange>,
    /// Declared workloads whose size differs from the inventory's.
    pub mismatched: Vec<Mismatch>,
}

/// Computes drift. `platforms` says which sites have been synced (a site whose platform never
/// synced is not reported as missing everything); `last_changes` are the changes recorded by
/// each platform's last good sync.
pub fn drift(
    inv: &inventory::Inventory,
    platforms: &[PlatformRecord],
    vms: &[VmRecord],
    last_changes: &[VmChange],
) -> Drift {
    let synced_site = |site: &str| platforms.iter().any(|p| p.site.as_deref() == Some(site) && p.last_sync.is_some());
    let unassigned = vms
        .iter()
        .filter(|v| v.system.is_none())
        .map(|v| Unassigned {
            name: v.info.name.clone(),
            platform: v.platform.clone(),
            site: v.site.clone(),
            host: v.info.host.clone(),
        })
        .collect();
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    for w in &inv.workloads {
        if !synced_site(&w.site) {
            continue;
        }
        match vms.iter().find(|v| v.info.name == w.name && v.site.as_deref() == Some(w.site.as_str())) {
            None => missing.push(Missing {
                name: w.name.clone(),
                site: w.site.clone(),
                system: inv.system_of(w).map(str::to_string),
            }),
            Some(v) => {
                let declared = Size { vcpus: w.vcpus, memory_bytes: w.memory_gb.saturating_mul(1 << 30) };
                let actual = Size { vcpus: v.info.vcpus, memory_bytes: v.info.memory_bytes };
                if declared != actual {
                    mismatched.push(Mismatch { name: w.name.clone(), platform: v.platform.clone(), declared, actual });
                }
            }
        }
    }
    let changed = last_changes.iter().filter(|c| is_drift(c)).cloned().collect();
    Drift { unassigned, missing, changed, mismatched }
}

/// Whether a recorded change is drift: the VM moved, was resized or renamed.
pub fn is_drift(c: &VmChange) -> bool {
    matches!(c.change.as_str(), "moved" | "resized" | "renamed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugins::hypervisor::{PowerState, VmInfo};

    fn inventory() -> inventory::Inventory {
        let text = include_str!("../../../inventory/examples/camau.yaml");
        inventory::parse_str(text, "camau.yaml").expect("the example loads")
    }

    fn record(name: &str, system: Option<&str>, vcpus: u32, gib: u64) -> VmRecord {
        VmRecord {
            platform: "vcenter-dc".into(),
            vm_id: format!("vm-{name}"),
            site: Some("dc".into()),
            system: system.map(str::to_string),
            first_seen: 1,
            last_seen: 1,
            info: VmInfo {
                id: format!("vm-{name}"),
                name: name.into(),
                host: Some("dc-esxi-01".into()),
                power_state: PowerState::On,
                vcpus,
                memory_bytes: gib << 30,
                disks: vec![],
                networks: vec![],
                guest_os: None,
                tags: Default::default(),
            },
        }
    }

    fn synced(site: &str) -> PlatformRecord {
        PlatformRecord {
            name: "vcenter-dc".into(),
            kind: "vsphere".into(),
            site: Some(site.into()),
            endpoint: "https://vc/sdk".into(),
            up: Some(true),
            last_sync: Some(1),
            last_attempt: Some(1),
            last_error: None,
            last_duration_ms: Some(1),
            last_round_trips: Some(3),
        }
    }

    #[test]
    fn unassigned_missing_and_mismatched() {
        let inv = inventory();
        let vms = vec![
            record("qlvbdh-app-01", Some("qlvbdh"), 8, 32),
            record("dvc-portal-app-01", Some("dvc-portal"), 4, 32), // declared with 8 vCPUs
            record("print-server-01", None, 2, 4),
        ];
        let d = drift(&inv, &[synced("dc")], &vms, &[]);
        assert_eq!(d.unassigned.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), vec!["print-server-01"]);
        let missing: Vec<&str> = d.missing.iter().map(|m| m.name.as_str()).collect();
        assert!(missing.contains(&"email-app-01") && !missing.contains(&"qlvbdh-app-01"), "{missing:?}");
        assert_eq!(d.mismatched.len(), 1);
        assert_eq!(d.mismatched[0].name, "dvc-portal-app-01");
        assert_eq!(d.mismatched[0].actual.vcpus, 4);
    }

    #[test]
    fn a_site_never_synced_reports_nothing_missing() {
        let d = drift(&inventory(), &[], &[], &[]);
        assert!(d.missing.is_empty());
    }
}
