//! What changed in a platform between two syncs: pure, so it is table-tested here and the
//! store only writes what this computes.

use std::collections::HashMap;

use plugins::hypervisor::VmInfo;
use serde_json::json;

use crate::store::{VmChange, VmRecord};

/// Changes from `before` (the platform's VMs as last stored) to `now` (what the sync read).
/// VMs are matched by the platform's id, so a move or a rename is a change of one VM, not a
/// new one. On the first sync (`before` empty) nothing is reported as changed except
/// appearances.
pub fn diff(platform: &str, at: i64, before: &[VmRecord], now: &[VmInfo]) -> Vec<VmChange> {
    let old: HashMap<&str, &VmInfo> =
        before.iter().filter(|r| r.platform == platform).map(|r| (r.vm_id.as_str(), &r.info)).collect();
    let mut out = Vec::new();
    let mut change = |vm: &VmInfo, kind: &str, b: Option<serde_json::Value>, a: Option<serde_json::Value>| {
        out.push(VmChange {
            platform: platform.to_string(),
            vm_id: vm.id.clone(),
            name: vm.name.clone(),
            at,
            change: kind.to_string(),
            before: b,
            after: a,
        });
    };
    for vm in now {
        let Some(prev) = old.get(vm.id.as_str()) else {
            change(vm, "appeared", None, Some(size(vm)));
            continue;
        };
        if prev.name != vm.name {
            change(vm, "renamed", Some(json!({ "name": prev.name })), Some(json!({ "name": vm.name })));
        }
        if prev.host != vm.host {
            change(vm, "moved", Some(json!({ "host": prev.host })), Some(json!({ "host": vm.host })));
        }
        if size(prev) != size(vm) {
            change(vm, "resized", Some(size(prev)), Some(size(vm)));
        }
        if prev.power_state != vm.power_state {
            change(
                vm,
                "power",
                Some(json!({ "power_state": prev.power_state })),
                Some(json!({ "power_state": vm.power_state })),
            );
        }
    }
    let present: std::collections::HashSet<&str> = now.iter().map(|v| v.id.as_str()).collect();
    for r in before.iter().filter(|r| r.platform == platform && !present.contains(r.vm_id.as_str())) {
        change(&r.info, "gone", Some(size(&r.info)), None);
    }
    out
}

/// The figures a resize changes.
fn size(vm: &VmInfo) -> serde_json::Value {
    let disk: u64 = vm.disks.iter().map(|d| d.capacity_bytes).sum();
    json!({ "vcpus": vm.vcpus, "memory_bytes": vm.memory_bytes, "disk_bytes": disk })
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugins::hypervisor::{DiskInfo, PowerState};

    fn vm(id: &str, name: &str, host: &str, vcpus: u32) -> VmInfo {
        VmInfo {
            id: id.into(),
            name: name.into(),
            host: Some(host.into()),
            power_state: PowerState::On,
            vcpus,
            memory_bytes: 4 << 30,
            disks: vec![DiskInfo { label: "disk 1".into(), capacity_bytes: 40 << 30, storage: None }],
            networks: vec![],
            guest_os: None,
            tags: Default::default(),
        }
    }

    fn stored(v: VmInfo) -> VmRecord {
        VmRecord {
            platform: "vc".into(),
            vm_id: v.id.clone(),
            site: Some("dc".into()),
            system: None,
            first_seen: 1,
            last_seen: 1,
            info: v,
        }
    }

    fn kinds(changes: &[VmChange]) -> Vec<(String, String)> {
        changes.iter().map(|c| (c.vm_id.clone(), c.change.clone())).collect()
    }

    #[test]
    fn a_move_keeps_the_vm_and_is_one_change() {
        let before = vec![stored(vm("vm-1", "web-01", "esxi-01", 2))];
        let now = vec![vm("vm-1", "web-01", "esxi-02", 2)];
        let c = diff("vc", 10, &before, &now);
        assert_eq!(kinds(&c), vec![("vm-1".into(), "moved".into())]);
        assert_eq!(c[0].before, Some(json!({"host": "esxi-01"})));
        assert_eq!(c[0].after, Some(json!({"host": "esxi-02"})));
    }

    #[test]
    fn table_of_changes() {
        let base = vm("vm-1", "web-01", "esxi-01", 2);
        let mut off = base.clone();
        off.power_state = PowerState::Off;
        // (before, now, expected changes)
        let cases: Vec<(Vec<VmInfo>, Vec<VmInfo>, Vec<&str>)> = vec![
            (vec![], vec![base.clone()], vec!["appeared"]),
            (vec![base.clone()], vec![], vec!["gone"]),
            (vec![base.clone()], vec![base.clone()], vec![]),
            (vec![base.clone()], vec![vm("vm-1", "web-01", "esxi-01", 4)], vec!["resized"]),
            (vec![base.clone()], vec![vm("vm-1", "web-01b", "esxi-01", 2)], vec!["renamed"]),
            (vec![base.clone()], vec![off], vec!["power"]),
            (vec![base.clone()], vec![vm("vm-2", "web-01", "esxi-01", 2)], vec!["appeared", "gone"]),
        ];
        for (before, now, want) in cases {
            let before: Vec<VmRecord> = before.into_iter().map(stored).collect();
            let got: Vec<String> = diff("vc", 5, &before, &now).into_iter().map(|c| c.change).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn another_platforms_vms_are_not_gone() {
        let mut other = stored(vm("vm-9", "x", "h", 1));
        other.platform = "os".into();
        assert!(diff("vc", 5, &[other], &[]).is_empty());
    }
}
