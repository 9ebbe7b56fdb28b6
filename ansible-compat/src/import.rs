//! Bringing an Ansible inventory into Mangrove's: read the sources, then plan what would be
//! added or changed, and what conflicts.
//!
//! How an Ansible host maps to a Mangrove machine (from its effective variables, else its
//! groups; the variable names are the ones export writes):
//! - site: `mangrove_site`, else the one group named like a Mangrove site (`dc`, `dr`);
//! - kind: `mangrove_kind` (`hypervisor`, `server`, `vm`), else a `role_*` group, else `vm`;
//!   hypervisors and servers become inventory hosts, VMs workloads;
//! - address: `ansible_host` when it is an IP address, else the host name when it is one;
//! - agent: `mangrove_agent`, else `native` (the runner acts through our agent);
//! - system (VMs): `mangrove_systems` (one), else the one `system_*` group naming a system;
//! - sizes: `mangrove_cpus` and `mangrove_memory_gb` (required, at least 1, for a new machine),
//!   `mangrove_disk_gb` (0 when absent);
//! - os: `mangrove_os`.
//!
//! Conflicts (each with the `file:line` that caused it): no site or two sites, an unknown
//! site or system, an address that is not an IP address, a kind that does not match the
//! existing machine, a value of the wrong type.

use std::collections::BTreeSet;
use std::net::IpAddr;

use inventory::{AgentMode, Host, HostRole, Inventory, Workload};
use serde_json::Value;

use crate::loader::SourceFile;
use crate::model::{AnsibleInventory, Loc};
use crate::names::safe_group_name;
use crate::{Problem, Problems, ini, vars_dirs, yaml_inventory};

/// Reads inventory sources (INI or YAML files, and `group_vars/`/`host_vars/` files) into one
/// inventory. Inventory files are read first, in the order given, then the vars files.
///
/// # Errors
/// Every problem of every file, as `file:line: what`.
pub fn read_sources(files: &[SourceFile]) -> Result<AnsibleInventory, Problems> {
    let mut inv = AnsibleInventory::default();
    let mut problems = Vec::new();
    let (vars, sources): (Vec<&SourceFile>, Vec<&SourceFile>) =
        files.iter().partition(|f| vars_dirs::classify(&f.path).is_some());
    for f in sources {
        if is_ignored(&f.path) {
            continue;
        }
        let r = if is_yaml(&f.path, &f.text) {
            yaml_inventory::parse_into(&f.text, &f.path, &mut inv)
        } else {
            ini::parse_into(&f.text, &f.path, &mut inv)
        };
        if let Err(Problems(p)) = r {
            problems.extend(p);
        }
    }
    for f in vars {
        if let Err(Problems(p)) = vars_dirs::apply(&f.path, &f.text, &mut inv) {
            problems.extend(p);
        }
    }
    if problems.is_empty() { Ok(inv) } else { Err(Problems(problems)) }
}

/// Files Ansible skips in an inventory directory.
fn is_ignored(path: &str) -> bool {
    [".retry", ".pyc", ".pyo", ".bak", ".orig", ".cfg", ".md", ".txt", "~"].iter().any(|s| path.ends_with(s))
}

/// YAML by extension; a file without one is YAML when its first meaningful line is a
/// top-level `key:` (INI starts with a host or a `[section]`).
fn is_yaml(path: &str, text: &str) -> bool {
    if [".yml", ".yaml", ".json"].iter().any(|e| path.ends_with(e)) {
        return true;
    }
    if path.ends_with(".ini") {
        return false;
    }
    text.lines()
        .map(str::trim_end)
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with(['#', ';']))
        .is_some_and(|l| l == "---" || (l.ends_with(':') && !l.starts_with('[')))
}

/// A machine the import would add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMachine {
    pub name: String,
    pub site: String,
    /// `hypervisor`, `server` or `vm`.
    pub kind: String,
    pub agent: AgentMode,
    pub address: Option<IpAddr>,
    pub system: Option<String>,
    pub cpus: u32,
    pub memory_gb: u64,
    pub disk_gb: u64,
    pub os: Option<String>,
    /// Where the host was first named.
    pub loc: Loc,
}

/// A field of an existing machine the import would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    pub field: &'static str,
    pub from: String,
    pub to: String,
    pub loc: Loc,
}

/// What importing would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub add: Vec<NewMachine>,
    pub change: Vec<Change>,
    /// Machines already in Mangrove's inventory as the import describes them.
    pub unchanged: Vec<String>,
    pub conflicts: Vec<Problem>,
}

impl Plan {
    /// The plan as JSON for `--json` (stable field names).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "add": self.add.iter().map(|m| serde_json::json!({
                "name": m.name, "site": m.site, "kind": m.kind, "agent": m.agent.as_str(),
                "address": m.address.map(|a| a.to_string()), "system": m.system,
                "cpus": m.cpus, "memory_gb": m.memory_gb, "disk_gb": m.disk_gb, "os": m.os,
                "at": m.loc.to_string(),
            })).collect::<Vec<_>>(),
            "change": self.change.iter().map(|c| serde_json::json!({
                "name": c.name, "field": c.field, "from": c.from, "to": c.to, "at": c.loc.to_string(),
            })).collect::<Vec<_>>(),
            "unchanged": self.unchanged,
            "conflicts": self.conflicts.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })
    }
}

/// Plans the import of `ai` into `current`. Pure.
pub fn plan(ai: &AnsibleInventory, current: &Inventory) -> Plan {
    let mut p = Plan::default();
    let sites: BTreeSet<&str> = current.sites.iter().map(|s| s.name.as_str()).collect();
    for host in ai.hosts.keys() {
        let vars = ai.effective_vars(host);
        let groups = ai.groups_of_host(host);
        let host_loc = ai.origins.hosts.get(host).cloned().unwrap_or_else(|| Loc::new("<inventory>", 1));
        let var_loc = |name: &str| -> Loc {
            let scopes = std::iter::once(format!("host:{host}"))
                .chain(groups.keys().map(|g| format!("group:{g}")))
                .chain(std::iter::once("all".to_owned()));
            scopes
                .filter_map(|s| ai.origins.vars.get(&(s, name.to_owned())))
                .next()
                .cloned()
                .unwrap_or_else(|| host_loc.clone())
        };
        let member_loc = |g: &str| -> Loc {
            ai.origins.memberships.get(&(g.to_owned(), host.clone())).cloned().unwrap_or_else(|| host_loc.clone())
        };
        let before = p.conflicts.len();
        let text_var = |name: &str, p: &mut Plan| -> Option<String> {
            match vars.get(name) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => {
                    p.conflicts.push(Problem::at(
                        &var_loc(name),
                        format!("host {host}: {name} must be a string, found {other}"),
                    ));
                    None
                }
            }
        };
        let num_var = |name: &str, p: &mut Plan| -> u64 {
            match vars.get(name) {
                None | Some(Value::Null) => 0,
                Some(v) => match v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
                    Some(n) => n,
                    None => {
                        p.conflicts.push(Problem::at(
                            &var_loc(name),
                            format!("host {host}: {name} must be a whole number, found {v}"),
                        ));
                        0
                    }
                },
            }
        };
        // Site.
        let site = match text_var("mangrove_site", &mut p) {
            Some(s) => {
                if !sites.contains(s.as_str()) {
                    p.conflicts.push(Problem::at(
                        &var_loc("mangrove_site"),
                        format!("host {host}: mangrove_site {s} is not a site of the inventory ({})", join(&sites)),
                    ));
                }
                Some(s)
            }
            None => {
                let in_sites: Vec<&str> =
                    sites.iter().copied().filter(|s| groups.contains_key(&safe_group_name(s))).collect();
                match in_sites.as_slice() {
                    [one] => Some((*one).to_owned()),
                    [] => {
                        p.conflicts.push(Problem::at(
                            &host_loc,
                            format!(
                                "host {host}: no site; set mangrove_site or put it in one of the groups {}",
                                join(&sites)
                            ),
                        ));
                        None
                    }
                    many => {
                        let locs: Vec<String> =
                            many.iter().map(|s| format!("{s} ({})", member_loc(&safe_group_name(s)))).collect();
                        p.conflicts.push(Problem::at(
                            &host_loc,
                            format!("host {host} is in more than one site group: {}", locs.join(", ")),
                        ));
                        None
                    }
                }
            }
        };
        // Kind.
        let kind = match text_var("mangrove_kind", &mut p) {
            Some(k) if matches!(k.as_str(), "hypervisor" | "server" | "vm") => k,
            Some(k) => {
                p.conflicts.push(Problem::at(
                    &var_loc("mangrove_kind"),
                    format!("host {host}: mangrove_kind {k} is not hypervisor, server or vm"),
                ));
                "vm".into()
            }
            None => {
                let roles: Vec<&str> = ["hypervisor", "server", "vm"]
                    .into_iter()
                    .filter(|r| groups.contains_key(&format!("role_{r}")))
                    .collect();
                match roles.as_slice() {
                    [one] => (*one).to_owned(),
                    [] => "vm".into(),
                    many => {
                        p.conflicts.push(Problem::at(
                            &host_loc,
                            format!("host {host} is in more than one role group: role_{}", many.join(", role_")),
                        ));
                        "vm".into()
                    }
                }
            }
        };
        // Address.
        let address = match text_var("ansible_host", &mut p) {
            Some(a) => match a.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    p.conflicts.push(Problem::at(
                        &var_loc("ansible_host"),
                        format!("host {host}: ansible_host {a} is not an IP address (Mangrove keeps addresses, not DNS names)"),
                    ));
                    None
                }
            },
            None => host.parse::<IpAddr>().ok(),
        };
        let agent = match text_var("mangrove_agent", &mut p).as_deref() {
            None | Some("native") => AgentMode::Native,
            Some("proxy") => AgentMode::Proxy,
            Some("none") => AgentMode::None,
            Some(other) => {
                p.conflicts.push(Problem::at(
                    &var_loc("mangrove_agent"),
                    format!("host {host}: mangrove_agent {other} is not native, proxy or none"),
                ));
                AgentMode::Native
            }
        };
        // System (VMs only).
        let mut system = None;
        if kind == "vm" {
            let from_var: Option<Vec<String>> = match vars.get("mangrove_systems") {
                Some(Value::Array(a)) => Some(a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()),
                Some(Value::String(s)) => Some(vec![s.clone()]),
                _ => None,
            };
            let names: Vec<String> = from_var.unwrap_or_else(|| {
                current
                    .systems
                    .iter()
                    .filter(|s| groups.contains_key(&safe_group_name(&format!("system_{}", s.name))))
                    .map(|s| s.name.clone())
                    .collect()
            });
            match names.as_slice() {
                [] => {}
                [one] if current.system(one).is_some() => system = Some(one.clone()),
                [one] => p.conflicts.push(Problem::at(
                    &var_loc("mangrove_systems"),
                    format!("host {host}: system {one} is not in the inventory"),
                )),
                many => p.conflicts.push(Problem::at(
                    &host_loc,
                    format!("host {host}: a VM belongs to one system, found {}", many.join(", ")),
                )),
            }
        }
        let cpus = u32::try_from(num_var("mangrove_cpus", &mut p)).unwrap_or(u32::MAX);
        let memory_gb = num_var("mangrove_memory_gb", &mut p);
        let disk_gb = num_var("mangrove_disk_gb", &mut p);
        let os = text_var("mangrove_os", &mut p);
        if p.conflicts.len() > before {
            continue;
        }
        let Some(site) = site else { continue };
        // Compare with what exists.
        let existing_host = current.host(host);
        let existing_vm = current.workload(host);
        let changes_before = p.change.len();
        let change = |field: &'static str, from: String, to: String, loc: Loc, p: &mut Plan| {
            if from != to {
                p.change.push(Change { name: host.clone(), field, from, to, loc });
            }
        };
        let show = |a: Option<IpAddr>| a.map_or_else(|| "-".to_owned(), |a| a.to_string());
        if let Some(h) = existing_host {
            let existing_kind = match h.role {
                HostRole::Hypervisor => "hypervisor",
                HostRole::Server => "server",
            };
            if kind == "vm" && vars.contains_key("mangrove_kind") {
                p.conflicts.push(Problem::at(
                    &var_loc("mangrove_kind"),
                    format!("host {host} is a {existing_kind} in Mangrove's inventory, not a vm"),
                ));
                continue;
            }
            change("site", h.site.clone(), site.clone(), var_loc("mangrove_site"), &mut p);
            if address.is_some() {
                change("address", show(h.address), show(address), var_loc("ansible_host"), &mut p);
            }
        } else if let Some(w) = existing_vm {
            if kind != "vm" {
                p.conflicts
                    .push(Problem::at(&host_loc, format!("host {host} is a vm in Mangrove's inventory, not a {kind}")));
                continue;
            }
            change("site", w.site.clone(), site.clone(), var_loc("mangrove_site"), &mut p);
            if address.is_some() {
                change("address", show(w.address), show(address), var_loc("ansible_host"), &mut p);
            }
            if system.is_some() && current.system_of(w) != system.as_deref() {
                change(
                    "system",
                    current.system_of(w).unwrap_or("-").to_owned(),
                    system.clone().unwrap_or_default(),
                    var_loc("mangrove_systems"),
                    &mut p,
                );
            }
        } else {
            let missing: Vec<&str> = [("mangrove_cpus", u64::from(cpus)), ("mangrove_memory_gb", memory_gb)]
                .into_iter()
                .filter(|(_, v)| *v == 0)
                .map(|(n, _)| n)
                .collect();
            if !missing.is_empty() {
                p.conflicts.push(Problem::at(
                    &host_loc,
                    format!(
                        "host {host} is new: set {} (at least 1; Mangrove plans capacity with them)",
                        missing.join(" and ")
                    ),
                ));
                continue;
            }
            p.add.push(NewMachine {
                name: host.clone(),
                site,
                kind,
                agent,
                address,
                system,
                cpus,
                memory_gb,
                disk_gb,
                os,
                loc: host_loc,
            });
            continue;
        }
        if p.change.len() == changes_before {
            p.unchanged.push(host.clone());
        }
    }
    p
}

fn join(set: &BTreeSet<&str>) -> String {
    set.iter().copied().collect::<Vec<_>>().join(", ")
}

/// Why a plan could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the import has {} conflict(s); nothing was applied:\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Conflicts(Vec<Problem>),
    #[error("the inventory after the import does not validate: {0}")]
    Invalid(#[source] inventory::InventoryError),
}

/// Mangrove's inventory with the plan applied, checked by the inventory's own validation.
///
/// # Errors
/// [`ApplyError::Conflicts`] when the plan has any; [`ApplyError::Invalid`] when the result
/// breaks an inventory rule (a duplicate name, say).
pub fn apply(plan: &Plan, current: &Inventory) -> Result<Inventory, ApplyError> {
    if !plan.conflicts.is_empty() {
        return Err(ApplyError::Conflicts(plan.conflicts.clone()));
    }
    let mut inv = current.clone();
    for m in &plan.add {
        if m.kind == "vm" {
            inv.workloads.push(Workload {
                name: m.name.clone(),
                system: m.system.clone(),
                site: m.site.clone(),
                agent: m.agent,
                vcpus: m.cpus,
                memory_gb: m.memory_gb,
                disk_gb: m.disk_gb,
                address: m.address,
                os: m.os.clone(),
                tags: Default::default(),
            });
        } else {
            inv.hosts.push(Host {
                name: m.name.clone(),
                site: m.site.clone(),
                role: if m.kind == "hypervisor" { HostRole::Hypervisor } else { HostRole::Server },
                agent: m.agent,
                cpus: m.cpus,
                memory_gb: m.memory_gb,
                address: m.address,
                os: m.os.clone(),
                tags: Default::default(),
            });
        }
    }
    for c in &plan.change {
        let to_addr = c.to.parse::<IpAddr>().ok();
        if let Some(h) = inv.hosts.iter_mut().find(|h| h.name == c.name) {
            match c.field {
                "site" => h.site = c.to.clone(),
                "address" => h.address = to_addr,
                _ => {}
            }
        } else if let Some(w) = inv.workloads.iter_mut().find(|w| w.name == c.name) {
            match c.field {
                "site" => w.site = c.to.clone(),
                "address" => w.address = to_addr,
                "system" => {
                    w.system = Some(c.to.clone());
                    if w.tags.contains_key("system") {
                        w.tags.insert("system".into(), c.to.clone());
                    }
                }
                _ => {}
            }
        }
    }
    let text = serde_json::to_string(&inv).map_err(|e| {
        ApplyError::Invalid(inventory::InventoryError::Invalid {
            origin: "import".into(),
            line: 1,
            column: 1,
            path: String::new(),
            message: e.to_string(),
            more: Vec::new(),
        })
    })?;
    inventory::parse_str(&text, "inventory after import").map_err(ApplyError::Invalid)
}
