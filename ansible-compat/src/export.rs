//! Mangrove's inventory as Ansible sees it.
//!
//! **Which machines are Ansible hosts**: every host (hypervisors and bare-metal servers) and
//! every workload (VM) the inventory names — the machines a playbook can be pointed at,
//! whatever runs on them. Hosts seen through a proxy (ESXi) and machines without our agent
//! are included, because people reach them with their own tools too; the variable
//! `mangrove_agent` says which ones Mangrove's runner can act on (`native`). Video endpoints
//! and endpoint-protection groups are devices and head counts, not machines a playbook can
//! run on, so they are left out.
//!
//! **Groups** (all children of `all`, named so that Ansible keeps them as they are, see
//! [`crate::safe_group_name`]):
//! - the site: `dc`, `dr`, …;
//! - the security level: `level_3` holds the machines whose highest system level is 3;
//! - the information system: `system_<name>`, e.g. `system_dvc_portal`;
//! - the role: `role_hypervisor`, `role_server`, `role_vm`.
//!
//! Two names that become the same group name (`a-b`, `a.b`) share that group.
//!
//! **Host variables** (documented in the README's Ansible section):
//! - `ansible_host`: the machine's address, when the inventory has one;
//! - `mangrove_site`: its site;
//! - `mangrove_kind`: `hypervisor`, `server` or `vm`;
//! - `mangrove_agent`: `native`, `proxy` or `none`;
//! - `mangrove_systems`: the information systems it serves (a list, maybe empty);
//! - `mangrove_level`: the highest security level of those systems (absent when none);
//! - `mangrove_os`: its operating system, when known.
//!
//! `all` carries `mangrove_province`.

use std::collections::BTreeSet;

use inventory::{HostRole, Inventory};
use serde_json::{Value, json};

use crate::model::{AnsibleInventory, Vars};
use crate::names::safe_group_name;

/// Ansible's view of Mangrove's inventory. Pure; deterministic.
pub fn from_mangrove(inv: &Inventory) -> AnsibleInventory {
    let mut out = AnsibleInventory::default();
    out.all_vars.insert("mangrove_province".into(), json!(inv.province));
    for h in &inv.hosts {
        let systems: Vec<&str> =
            inv.systems.iter().filter(|s| s.hosts.contains(&h.name)).map(|s| s.name.as_str()).collect();
        let kind = match h.role {
            HostRole::Hypervisor => "hypervisor",
            HostRole::Server => "server",
        };
        let m = MachineView {
            name: &h.name,
            site: &h.site,
            kind,
            agent: h.agent.as_str(),
            address: h.address.map(|a| a.to_string()),
            os: h.os.as_deref(),
            systems,
        };
        add_machine(&mut out, inv, &m);
    }
    for w in &inv.workloads {
        let m = MachineView {
            name: &w.name,
            site: &w.site,
            kind: "vm",
            agent: w.agent.as_str(),
            address: w.address.map(|a| a.to_string()),
            os: w.os.as_deref(),
            systems: inv.system_of(w).into_iter().collect(),
        };
        add_machine(&mut out, inv, &m);
    }
    out
}

struct MachineView<'a> {
    name: &'a str,
    site: &'a str,
    kind: &'a str,
    agent: &'a str,
    address: Option<String>,
    os: Option<&'a str>,
    systems: Vec<&'a str>,
}

fn add_machine(out: &mut AnsibleInventory, inv: &Inventory, m: &MachineView<'_>) {
    let mut vars = Vars::new();
    if let Some(a) = &m.address {
        vars.insert("ansible_host".into(), json!(a));
    }
    vars.insert("mangrove_site".into(), json!(m.site));
    vars.insert("mangrove_kind".into(), json!(m.kind));
    vars.insert("mangrove_agent".into(), json!(m.agent));
    vars.insert("mangrove_systems".into(), Value::Array(m.systems.iter().map(|s| json!(s)).collect()));
    let level = m.systems.iter().filter_map(|s| inv.system(s)).map(|s| s.level.get()).max();
    if let Some(l) = level {
        vars.insert("mangrove_level".into(), json!(l));
    }
    if let Some(os) = m.os {
        vars.insert("mangrove_os".into(), json!(os));
    }
    out.hosts.insert(m.name.to_owned(), vars);
    let mut groups: BTreeSet<String> = BTreeSet::new();
    groups.insert(safe_group_name(m.site));
    if let Some(l) = level {
        groups.insert(format!("level_{l}"));
    }
    for s in &m.systems {
        groups.insert(safe_group_name(&format!("system_{s}")));
    }
    groups.insert(safe_group_name(&format!("role_{}", m.kind)));
    for g in groups {
        out.ensure_group(&g).hosts.insert(m.name.to_owned());
    }
}

/// Ansible's dynamic-inventory JSON for `--list`: one entry per group (`hosts`, `children`,
/// `vars`), `all` with its children and variables, `ungrouped`, and `_meta.hostvars` with
/// every host's own variables (so Ansible never calls `--host`).
pub fn list_json(inv: &AnsibleInventory) -> Value {
    let mut root = serde_json::Map::new();
    let mut all_children: Vec<Value> = inv.top_groups().into_iter().map(|g| json!(g)).collect();
    all_children.push(json!("ungrouped"));
    root.insert("all".into(), json!({"children": all_children, "vars": inv.all_vars}));
    for (name, g) in &inv.groups {
        if name == "ungrouped" {
            continue;
        }
        root.insert(
            name.clone(),
            json!({"hosts": g.hosts.iter().collect::<Vec<_>>(), "children": g.children.iter().collect::<Vec<_>>(), "vars": g.vars}),
        );
    }
    let ungrouped_vars = inv.groups.get("ungrouped").map(|g| g.vars.clone()).unwrap_or_default();
    root.insert("ungrouped".into(), json!({"hosts": inv.ungrouped(), "children": [], "vars": ungrouped_vars}));
    let hostvars: serde_json::Map<String, Value> =
        inv.hosts.iter().map(|(h, v)| (h.clone(), Value::Object(v.clone()))).collect();
    root.insert("_meta".into(), json!({"hostvars": hostvars}));
    Value::Object(root)
}

/// `--host H`: the host's own variables, or `None` when there is no such host.
pub fn host_json(inv: &AnsibleInventory, host: &str) -> Option<Value> {
    inv.hosts.get(host).map(|v| Value::Object(v.clone()))
}
