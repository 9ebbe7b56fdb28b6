//! Who a policy applies to, decided from the inventory, the VMs sync found and the
//! assignments: pure, table-tested here.
//!
//! A host or VM is judged at the highest level of any information system it serves (the
//! "highest component wins" rule); a pack applies to it when assigned to one of those systems
//! by name, or to the level of one of them.

use std::collections::BTreeSet;

use crate::store::{Assignment, VmRecord};

/// The machines a system runs on: the inventory's (its hosts, the workloads it claims) and the
/// VMs platform sync mapped to it.
pub fn system_hosts(inv: &inventory::Inventory, system: &str, vms: &[VmRecord]) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    for m in inv.machines() {
        if m.system == Some(system) {
            out.insert(m.name.to_string());
        }
    }
    for w in inv.workloads_of(system) {
        out.insert(w.name.clone());
    }
    for v in vms.iter().filter(|v| v.system.as_deref() == Some(system)) {
        out.insert(v.info.name.clone());
    }
    out.into_iter().collect()
}

/// The systems `host` serves.
pub fn systems_of(inv: &inventory::Inventory, host: &str, vms: &[VmRecord]) -> Vec<policies::SystemRef> {
    inv.systems
        .iter()
        .filter(|s| system_hosts(inv, &s.name, vms).iter().any(|h| h == host))
        .map(|s| policies::SystemRef { name: s.name.clone(), level: s.level.get(), framework: s.framework.clone() })
        .collect()
}

/// What applies to one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostScope {
    pub systems: Vec<policies::SystemRef>,
    /// The level it is judged at; `None` when it serves no system.
    pub level: Option<u8>,
    /// The packs assigned to it and their mode (`enforce` wins over `audit` when two
    /// assignments bring the same pack).
    pub packs: Vec<(String, String)>,
}

/// Whether `a` covers a host serving `systems`.
pub fn covers(a: &Assignment, systems: &[policies::SystemRef]) -> bool {
    match a.scope.as_str() {
        "system" => systems.iter().any(|s| s.name == a.target),
        "level" => systems.iter().any(|s| s.level.to_string() == a.target),
        _ => false,
    }
}

pub fn scope(inv: &inventory::Inventory, host: &str, vms: &[VmRecord], assignments: &[Assignment]) -> HostScope {
    let systems = systems_of(inv, host, vms);
    let level = policies::effective_level(&systems);
    let mut packs: Vec<(String, String)> = Vec::new();
    for a in assignments.iter().filter(|a| covers(a, &systems)) {
        match packs.iter_mut().find(|(p, _)| *p == a.pack) {
            Some(entry) if a.mode == "enforce" => entry.1 = a.mode.clone(),
            Some(_) => {}
            None => packs.push((a.pack.clone(), a.mode.clone())),
        }
    }
    HostScope { systems, level, packs }
}

/// The agent collectors the host's packs need at its level.
pub fn collectors(scope: &HostScope, packs: &[policies::Pack]) -> Vec<String> {
    let Some(level) = scope.level else { return Vec::new() };
    let mut out: BTreeSet<String> = BTreeSet::new();
    for (name, _) in &scope.packs {
        if let Some(p) = packs.iter().find(|p| p.name == *name) {
            for c in policies::applicable(p, level) {
                out.extend(c.meta.facts.iter().cloned());
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> inventory::Inventory {
        inventory::parse_str(include_str!("../../../inventory/examples/camau.yaml"), "camau.yaml")
            .expect("the example loads")
    }

    fn assign(pack: &str, scope: &str, target: &str, mode: &str) -> Assignment {
        Assignment {
            id: 0,
            pack: pack.into(),
            scope: scope.into(),
            target: target.into(),
            mode: mode.into(),
            created_by: "security".into(),
            created_at: 0,
        }
    }

    #[test]
    fn a_host_gets_the_packs_of_its_systems_at_their_highest_level() {
        let inv = inv();
        let a = vec![
            assign("vn-nd85-tcvn11930", "system", "dvc-portal", "audit"),
            assign("vn-nd85-tcvn11930", "level", "3", "enforce"),
            assign("vn-nd331-tcvn14423", "system", "cong-bao", "audit"),
        ];
        let s = scope(&inv, "dvc-portal-app-01", &[], &a);
        assert_eq!(s.level, Some(3));
        assert_eq!(s.packs, vec![("vn-nd85-tcvn11930".to_string(), "enforce".to_string())]);
        // cong-bao is level 2: the level-3 assignment does not reach it.
        let s = scope(&inv, "cong-bao-app-01", &[], &a);
        assert_eq!((s.level, s.packs.len()), (Some(2), 1));
        assert_eq!(s.packs[0].0, "vn-nd331-tcvn14423");
        // A machine in no system gets nothing.
        let s = scope(&inv, "dc-proxy-01", &[], &a);
        assert_eq!((s.level, s.packs.len()), (None, 0));
    }

    #[test]
    fn collectors_are_those_the_applicable_controls_need() {
        let inv = inv();
        let packs = policies::shipped().expect("shipped packs");
        let s = scope(&inv, "dvc-portal-app-01", &[], &[assign("vn-nd85-tcvn11930", "system", "dvc-portal", "audit")]);
        let c = collectors(&s, &packs);
        assert!(c.contains(&"sshd".to_string()) && c.contains(&"firewall".to_string()), "{c:?}");
        let none = scope(&inv, "dc-proxy-01", &[], &[]);
        assert!(collectors(&none, &packs).is_empty());
    }
}
