//! Reading a recovery plan and refusing what could not be carried out.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::model::{PlanSystem, Probe, ProbeTarget, PromptPoint, RecoveryMethod, RecoveryPlan, WorkloadRecovery};
use crate::error::{Diagnostic, InventoryError};
use crate::model::{Inventory, PlatformKind};
use crate::{Positions, is_dns_name, is_valid_name};

/// What the DR site has, as far as the caller knows. `None` means "not known": the name is
/// then not checked here (the drill's pre-checks look again before anything starts).
#[derive(Debug, Clone, Default)]
pub struct DrCatalog {
    /// Image names in Glance.
    pub images: Option<BTreeSet<String>>,
    /// Network names in Neutron.
    pub networks: Option<BTreeSet<String>>,
    /// Per system, VMs found by platform discovery that belong to it (besides the workloads
    /// the inventory declares).
    pub discovered_vms: BTreeMap<String, BTreeSet<String>>,
}

/// Reads and checks the plan in `text` (named `origin` in messages).
///
/// # Errors
/// [`InventoryError::Invalid`] with `file:line:column` for: YAML and typing errors, an
/// unknown system or workload, a system or workload listed twice, a dependency outside the
/// plan, on a later priority group, or in a cycle, a `restore` for a system without a backup,
/// an image or network the DR site does not have, a network mapping whose test network
/// is its production one, DNS records without zones, bad record names, and a probe without a
/// target or without an expectation.
pub fn parse_plan(
    text: &str,
    origin: &str,
    inventory: &Inventory,
    catalog: &DrCatalog,
) -> Result<RecoveryPlan, InventoryError> {
    crate::parse_document(text, origin, |plan: &RecoveryPlan, at, diags| {
        Checks { plan, inventory, catalog, at, diags }.run();
    })
}

struct Checks<'a> {
    plan: &'a RecoveryPlan,
    inventory: &'a Inventory,
    catalog: &'a DrCatalog,
    at: &'a Positions,
    diags: &'a mut Vec<Diagnostic>,
}

impl Checks<'_> {
    fn refuse(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.diags.push(self.at.diag(path, message));
    }

    fn run(&mut self) {
        if !is_valid_name(&self.plan.name) {
            self.refuse("name", format!("`{}` is not a valid name (lowercase letters, digits, `-`)", self.plan.name));
        }
        if self.plan.systems.is_empty() {
            self.refuse("systems", "the plan recovers no system");
        }
        self.networks();
        self.dns_settings();
        let mut seen_systems: HashMap<&str, usize> = HashMap::new();
        let mut seen_workloads: HashSet<&str> = HashSet::new();
        for (i, s) in self.plan.systems.iter().enumerate() {
            let path = format!("systems[{i}]");
            if let Some(first) = seen_systems.insert(&s.name, i) {
                self.refuse(
                    format!("{path}.name"),
                    format!("system `{}` is already in this plan at systems[{first}]", s.name),
                );
            }
            self.system(&path, s, &mut seen_workloads);
        }
        self.dependencies();
    }

    fn networks(&mut self) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, n) in self.plan.networks.iter().enumerate() {
            let path = format!("networks[{i}]");
            if let Some(first) = seen.insert(&n.dc, i) {
                self.refuse(
                    format!("{path}.dc"),
                    format!("DC network `{}` is already mapped at networks[{first}]", n.dc),
                );
            }
            if n.test == n.dr {
                self.refuse(
                    format!("{path}.test"),
                    format!("the test network must be isolated from production, not `{}` again", n.dr),
                );
            }
            if let Some(known) = &self.catalog.networks {
                for (field, name) in [("dr", &n.dr), ("test", &n.test)] {
                    if !known.contains(name) {
                        self.refuse(
                            format!("{path}.{field}"),
                            format!("the DR site has no network `{name}`{}", listed(known)),
                        );
                    }
                }
            }
        }
    }

    fn dns_settings(&mut self) {
        let wants_dns = self.plan.systems.iter().any(|s| !s.dns.is_empty());
        match &self.plan.dns {
            None if wants_dns => {
                self.refuse("dns", "systems list DNS records but the plan has no `dns: { zone, test_zone }`")
            }
            None => {}
            Some(d) => {
                for (field, zone) in [("zone", &d.zone), ("test_zone", &d.test_zone)] {
                    if !is_dns_name(zone.trim_end_matches('.')) {
                        self.refuse(format!("dns.{field}"), format!("`{zone}` is not a DNS zone name"));
                    }
                }
                if d.zone.trim_end_matches('.') == d.test_zone.trim_end_matches('.') {
                    self.refuse("dns.test_zone", "the test zone must differ from the production zone");
                }
                if d.ttl == 0 || d.ttl > 86_400 {
                    self.refuse("dns.ttl", format!("TTL {} is not 1 to 86400 seconds", d.ttl));
                }
            }
        }
    }

    /// A `refresh` block: an `image` workload, a VM at a vSphere site, a cron schedule.
    fn refresh(&mut self, wpath: &str, w: &WorkloadRecovery) {
        let Some(refresh) = &w.refresh else { return };
        let path = format!("{wpath}.refresh");
        if w.method != RecoveryMethod::Image {
            self.refuse(
                path.clone(),
                format!(
                    "`refresh` keeps an `image` workload's image fresh; `{}` is recovered by `{}`",
                    w.workload,
                    w.method.as_str()
                ),
            );
        }
        if !crate::validate::cron_shaped(&refresh.schedule) {
            self.refuse(
                format!("{path}.schedule"),
                format!("`{}` is not a cron schedule (minute hour day month weekday)", refresh.schedule),
            );
        }
        // A workload the inventory declares must sit at a vSphere site; a discovered one is
        // known to be a DC VM already.
        if let Some(declared) = self.inventory.workload(&w.workload) {
            let kind = self.inventory.site(&declared.site).map(|s| s.platform.kind);
            if kind != Some(PlatformKind::Vsphere) {
                self.refuse(
                    path,
                    format!(
                        "`{}` is at site `{}`, which is not a vSphere site: its image cannot be exported from vCenter",
                        w.workload, declared.site
                    ),
                );
            }
        }
    }

    fn system<'p>(&mut self, path: &str, s: &'p PlanSystem, seen_workloads: &mut HashSet<&'p str>) {
        let Some(declared) = self.inventory.system(&s.name) else {
            let names: BTreeSet<String> = self.inventory.systems.iter().map(|s| s.name.clone()).collect();
            self.refuse(format!("{path}.name"), format!("unknown system `{}`{}", s.name, listed(&names)));
            return;
        };
        if s.recover.is_empty() {
            self.refuse(format!("{path}.recover"), "nothing to recover: list the system's workloads");
        }
        let own: BTreeSet<String> = self
            .inventory
            .workloads_of(&s.name)
            .iter()
            .map(|w| w.name.clone())
            .chain(self.catalog.discovered_vms.get(&s.name).into_iter().flatten().cloned())
            .collect();
        for (j, w) in s.recover.iter().enumerate() {
            let wpath = format!("{path}.recover[{j}]");
            if !own.contains(&w.workload) {
                self.refuse(
                    format!("{wpath}.workload"),
                    format!("`{}` is not a workload of system `{}`{}", w.workload, s.name, listed(&own)),
                );
            }
            if !seen_workloads.insert(&w.workload) {
                self.refuse(
                    format!("{wpath}.workload"),
                    format!("workload `{}` is recovered twice in this plan", w.workload),
                );
            }
            if w.method == RecoveryMethod::Restore && declared.backup.is_none() {
                self.refuse(
                    format!("{wpath}.method"),
                    format!("`restore` needs a backup of `{}`, and the inventory gives it no `backup` block", s.name),
                );
            }
            self.refresh(&wpath, w);
            // A refreshed image may not exist yet: its first refresh makes it.
            if let Some(known) = &self.catalog.images
                && w.refresh.is_none()
                && !known.contains(&w.image)
            {
                self.refuse(
                    format!("{wpath}.image"),
                    format!("the DR site has no image `{}`{}", w.image, listed(known)),
                );
            }
            match &w.network {
                Some(n) if !self.plan.networks.iter().any(|m| &m.dc == n) => {
                    self.refuse(
                        format!("{wpath}.network"),
                        format!("the plan maps no DC network `{n}` (see `networks`)"),
                    );
                }
                None if self.plan.networks.len() != 1 => self.refuse(
                    format!("{wpath}.network"),
                    format!("name the workload's DC network: the plan maps {} networks", self.plan.networks.len()),
                ),
                _ => {}
            }
        }
        for (j, r) in s.dns.iter().enumerate() {
            if !is_dns_name(&r.name) || r.name.ends_with('.') {
                self.refuse(
                    format!("{path}.dns[{j}].name"),
                    format!(
                        "`{}` is not a record name inside the zone (letters, digits, `-`, labels split by `.`)",
                        r.name
                    ),
                );
            }
        }
        if s.probes.is_empty() {
            self.refuse(
                format!("{path}.probes"),
                "no probe: nothing would show the system is back (and its RTO could not be measured)",
            );
        }
        for (j, p) in s.probes.iter().enumerate() {
            self.probe(&format!("{path}.probes[{j}]"), p);
        }
        for (j, p) in s.prompts.iter().enumerate() {
            if p.text_vi.trim().is_empty() {
                self.refuse(format!("{path}.prompts[{j}].text_vi"), "a prompt needs its text");
            }
        }
        for (j, t) in s.tasks.iter().enumerate() {
            let tpath = format!("{path}.tasks[{j}]");
            if t.command.first().is_none_or(|c| c.trim().is_empty()) {
                self.refuse(format!("{tpath}.command"), "a task needs a command (program and arguments)");
            }
            if t.at == PromptPoint::Start {
                self.refuse(format!("{tpath}.at"), "`start` is before the machine is up: use `before_dns` or `end`");
            }
            let target = t.workload.as_ref().or(s.recover.first().map(|w| &w.workload));
            match s.recover.iter().find(|w| Some(&w.workload) == target) {
                None => self.refuse(
                    format!("{tpath}.workload"),
                    format!("`{}` is not recovered by this system in the plan", target.map_or("", |w| w.as_str())),
                ),
                Some(w) if w.method != RecoveryMethod::Restore => self.refuse(
                    format!("{tpath}.workload"),
                    format!("`{}` comes back from an image, without our agent: nothing could run the task", w.workload),
                ),
                Some(_) => {}
            }
        }
    }

    fn probe(&mut self, path: &str, p: &Probe) {
        let Some(target) = p.target() else {
            self.refuse(path, "a probe has exactly one of `http: URL` or `tcp: HOST:PORT`");
            return;
        };
        match target {
            ProbeTarget::Http(url) => {
                let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
                if rest.is_none_or(|r| r.split(['/', '?']).next().is_none_or(str::is_empty)) {
                    self.refuse(
                        format!("{path}.http"),
                        format!("`{url}` is not an http:// or https:// URL with a host"),
                    );
                }
            }
            ProbeTarget::Tcp(addr) => {
                let ok = addr
                    .rsplit_once(':')
                    .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
                if !ok {
                    self.refuse(format!("{path}.tcp"), format!("`{addr}` is not HOST:PORT"));
                }
            }
        }
        let e = p.expect.clone().unwrap_or_default();
        let expects = match target {
            ProbeTarget::Http(_) => e.status.is_some() || e.body.is_some(),
            ProbeTarget::Tcp(_) => e.open == Some(true) || e.body.is_some(),
        };
        if !expects {
            let hint = match target {
                ProbeTarget::Http(_) => "expect: { status: 200 } and/or { body: TEXT }",
                ProbeTarget::Tcp(_) => "expect: { open: true } or { body: BANNER-TEXT }",
            };
            self.refuse(path, format!("a probe without an expectation proves nothing: add {hint}"));
        }
        if let ProbeTarget::Http(_) = target
            && e.open.is_some()
        {
            self.refuse(
                format!("{path}.expect.open"),
                "`open` is for tcp probes; an http probe expects a status or body",
            );
        }
        if let Some(status) = e.status
            && !(100..=599).contains(&status)
        {
            self.refuse(format!("{path}.expect.status"), format!("{status} is not an HTTP status"));
        }
    }

    /// Each dependency is a system of the plan, in the same or an earlier group, and no
    /// chain of them comes back to where it started.
    fn dependencies(&mut self) {
        let plan = self.plan;
        let index: HashMap<&str, usize> = plan.systems.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        for (i, s) in plan.systems.iter().enumerate() {
            let own = plan.priority_of(s, self.inventory);
            for (j, d) in s.depends_on.iter().enumerate() {
                let path = format!("systems[{i}].depends_on[{j}]");
                match index.get(d.as_str()) {
                    None => {
                        self.refuse(path, format!("`{}` depends on `{d}`, which this plan does not recover", s.name))
                    }
                    Some(&k) if k == i => self.refuse(path, format!("`{}` depends on itself", s.name)),
                    Some(&k) => {
                        let theirs = plan.priority_of(&plan.systems[k], self.inventory);
                        if theirs > own {
                            self.refuse(
                                path,
                                format!("`{}` ({own}) depends on `{d}`, which is recovered later ({theirs})", s.name),
                            );
                        }
                    }
                }
            }
        }
        if let Some((start, cycle)) = find_cycle(plan, &index) {
            self.refuse(format!("systems[{start}].depends_on"), format!("dependency cycle: {}", cycle.join(" → ")));
        }
    }
}

/// The first dependency cycle (by file order of its first system), as names with the first
/// repeated at the end.
fn find_cycle(plan: &RecoveryPlan, index: &HashMap<&str, usize>) -> Option<(usize, Vec<String>)> {
    // Iterative depth-first search with colours: 0 unvisited, 1 on the path, 2 done.
    let n = plan.systems.len();
    let mut colour = vec![0u8; n];
    for root in 0..n {
        if colour[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        colour[root] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let deps = &plan.systems[node].depends_on;
            if *next >= deps.len() {
                colour[node] = 2;
                stack.pop();
                continue;
            }
            let dep = &deps[*next];
            *next += 1;
            let Some(&k) = index.get(dep.as_str()) else { continue };
            if k == node {
                continue; // "depends on itself" is reported on its own
            }
            match colour[k] {
                0 => {
                    colour[k] = 1;
                    stack.push((k, 0));
                }
                1 => {
                    let from = stack.iter().position(|(s, _)| *s == k).unwrap_or(0);
                    let mut names: Vec<String> =
                        stack[from..].iter().map(|(s, _)| plan.systems[*s].name.clone()).collect();
                    names.push(plan.systems[k].name.clone());
                    let first = stack[from..].iter().map(|(s, _)| *s).min().unwrap_or(k);
                    return Some((first, names));
                }
                _ => {}
            }
        }
    }
    None
}

/// `: the DR site has a, b, c` style tail for "unknown X" messages (at most 12 names).
fn listed(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        return " (there are none)".into();
    }
    let shown: Vec<&str> = names.iter().take(12).map(String::as_str).collect();
    let more = if names.len() > 12 { format!(", … {} more", names.len() - 12) } else { String::new() };
    format!(" (known: {}{more})", shown.join(", "))
}
