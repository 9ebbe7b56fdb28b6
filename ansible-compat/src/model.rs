//! Ansible's view of an inventory: groups (direct hosts, child groups, group variables), hosts
//! with their own variables, and the variables of `all`. Export builds one from Mangrove's
//! inventory; import reads one from Ansible's INI and YAML files.
//!
//! `all` is not a member of [`AnsibleInventory::groups`]: every group without a parent is its
//! child, and its variables are [`AnsibleInventory::all_vars`]. `ungrouped` is computed, as
//! Ansible does: the hosts that belong to no group.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// Variables: names to JSON-like values, as Ansible holds them after reading a file.
pub type Vars = Map<String, Value>;

/// Where something was written: a file and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub file: String,
    pub line: usize,
}

impl Loc {
    pub fn new(file: impl Into<String>, line: usize) -> Loc {
        Loc { file: file.into(), line }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// Hosts that belong to the group directly (not through a child group).
    pub hosts: BTreeSet<String>,
    /// Child groups.
    pub children: BTreeSet<String>,
    /// Group variables.
    pub vars: Vars,
}

/// An inventory as Ansible sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnsibleInventory {
    /// Every group but `all`, by name.
    pub groups: BTreeMap<String, Group>,
    /// Every host and its own variables (host variables, not inherited ones).
    pub hosts: BTreeMap<String, Vars>,
    /// The variables of the group `all`.
    pub all_vars: Vars,
    /// Where hosts, group memberships and variables were first written (import only).
    pub origins: Origins,
}

/// Source positions kept by the importers, for conflicts reported as `file:line`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Origins {
    /// Where each host was first named.
    pub hosts: BTreeMap<String, Loc>,
    /// Where each group was first declared.
    pub groups: BTreeMap<String, Loc>,
    /// Where a host was put in a group: `(group, host)`.
    pub memberships: BTreeMap<(String, String), Loc>,
    /// Where a variable was set: `(scope, name)`, scope `host:NAME`, `group:NAME` or `all`.
    pub vars: BTreeMap<(String, String), Loc>,
}

impl AnsibleInventory {
    /// Adds a host (no variables) if it is not there yet.
    pub fn ensure_host(&mut self, name: &str) -> &mut Vars {
        self.hosts.entry(name.to_owned()).or_default()
    }

    /// The group, created empty if absent.
    pub fn ensure_group(&mut self, name: &str) -> &mut Group {
        self.groups.entry(name.to_owned()).or_default()
    }

    /// Groups that are nobody's child: the children of `all`.
    pub fn top_groups(&self) -> Vec<&str> {
        let children: BTreeSet<&str> =
            self.groups.values().flat_map(|g| g.children.iter().map(String::as_str)).collect();
        self.groups.keys().map(String::as_str).filter(|g| !children.contains(g) && *g != "ungrouped").collect()
    }

    /// Hosts in no group (Ansible's `ungrouped`).
    pub fn ungrouped(&self) -> Vec<&str> {
        let grouped: BTreeSet<&str> = self
            .groups
            .iter()
            .filter(|(n, _)| n.as_str() != "ungrouped")
            .flat_map(|(_, g)| g.hosts.iter().map(String::as_str))
            .collect();
        self.hosts.keys().map(String::as_str).filter(|h| !grouped.contains(h)).collect()
    }

    /// The group's hosts, its descendants' included, sorted. Cycles are cut.
    pub fn hosts_of_group(&self, group: &str) -> BTreeSet<String> {
        if group == "all" {
            return self.hosts.keys().cloned().collect();
        }
        if group == "ungrouped" {
            return self.ungrouped().into_iter().map(str::to_owned).collect();
        }
        let mut out = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut stack = vec![group.to_owned()];
        while let Some(g) = stack.pop() {
            if !seen.insert(g.clone()) {
                continue;
            }
            if let Some(grp) = self.groups.get(&g) {
                out.extend(grp.hosts.iter().cloned());
                stack.extend(grp.children.iter().cloned());
            }
        }
        out
    }

    /// The groups a host belongs to, directly or through a child group, with their depth
    /// below `all` (1 for a top group), excluding `all` and `ungrouped`.
    pub fn groups_of_host(&self, host: &str) -> BTreeMap<String, usize> {
        let mut depth: BTreeMap<String, usize> = BTreeMap::new();
        // Depth of every group: the longest path from `all` (Ansible's `depth`).
        let mut frontier: Vec<(String, usize)> = self.top_groups().into_iter().map(|g| (g.to_owned(), 1)).collect();
        let mut guard = 0usize;
        while let Some((g, d)) = frontier.pop() {
            guard += 1;
            if guard > 100_000 || d > self.groups.len() + 1 {
                continue;
            }
            if depth.get(&g).is_some_and(|&old| old >= d) {
                continue;
            }
            depth.insert(g.clone(), d);
            if let Some(grp) = self.groups.get(&g) {
                frontier.extend(grp.children.iter().map(|c| (c.clone(), d + 1)));
            }
        }
        depth.into_iter().filter(|(g, _)| self.hosts_of_group(g).contains(host)).collect()
    }

    /// The variables a host ends up with: `all`, then its groups by depth and name (deeper
    /// and later override), then its own, as Ansible combines inventory variables (with the
    /// default `hash_behaviour = replace`).
    pub fn effective_vars(&self, host: &str) -> Vars {
        let mut out = self.all_vars.clone();
        let mut groups: Vec<(usize, String)> = self.groups_of_host(host).into_iter().map(|(g, d)| (d, g)).collect();
        groups.sort();
        for (_, g) in groups {
            if let Some(grp) = self.groups.get(&g) {
                for (k, v) in &grp.vars {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        if let Some(own) = self.hosts.get(host) {
            for (k, v) in own {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }
}
