//! Checks that need the whole inventory: names, references, capacities, ownership.
//!
//! Runs after the document was read into the model without error; positions come from the
//! document's [`PosIndex`]. Collects every problem rather than stopping at the first.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::error::Diagnostic;
use crate::model::{Inventory, PlatformKind};
use crate::yaml::PosIndex;

/// Longest name accepted (a DNS label).
const MAX_NAME_LEN: usize = 63;

/// A DNS name: labels of 1–63 letters, digits and `-` (not at either end) split by `.`, at
/// most 253 bytes in all (RFC 1123 host names).
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether `name` is a valid name for a site, machine, system, endpoint or group:
/// lowercase ASCII letters, digits, `-` and `.`, starting and ending with a letter or digit.
pub fn is_valid_name(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(ok_char)
        && name.ends_with(ok_char)
        && name.chars().all(|c| ok_char(c) || c == '-' || c == '.')
}

struct Checker<'a> {
    idx: &'a PosIndex,
    diags: &'a mut Vec<Diagnostic>,
}

impl Checker<'_> {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.diags.push(self.idx.diag(path, message));
    }

    /// `path (line N)`, to name an earlier occurrence in a message.
    fn where_is(&self, path: &str) -> String {
        format!("{path} (line {})", self.idx.pos(path).line)
    }

    fn name(&mut self, path: String, name: &str) {
        if !is_valid_name(name) {
            self.err(
                path,
                format!(
                    "invalid name `{name}`: use lowercase letters, digits, `-` and `.`, starting \
                     and ending with a letter or digit, at most {MAX_NAME_LEN} characters"
                ),
            );
        }
    }

    fn not_empty(&mut self, path: String, value: &str) {
        if value.trim().is_empty() {
            self.err(path, "must not be empty");
        }
    }

    /// Records `name` at `path`; reports it if `seen` already holds it.
    fn unique<'n>(
        &mut self,
        seen: &mut HashMap<&'n str, String>,
        name: &'n str,
        path: String,
        note: impl Fn(&str) -> &'static str,
    ) {
        if let Some(first) = seen.get(name) {
            let msg = format!("duplicate name `{name}`: already used by {}{}", self.where_is(first), note(first));
            self.err(path, msg);
        } else {
            seen.insert(name, path);
        }
    }

    fn address(&mut self, seen: &mut HashMap<IpAddr, String>, address: IpAddr, path: String) {
        if let Some(first) = seen.get(&address) {
            let msg = format!("address {address} is already used by {}", self.where_is(first));
            self.err(path, msg);
        } else {
            seen.insert(address, path);
        }
    }
}

/// Known names, for "unknown X; known are: ..." messages.
fn known<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        return "none are defined".to_owned();
    }
    let mut out = names.iter().take(12).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 12 {
        out.push_str(", …");
    }
    out
}

/// Runs every whole-inventory check, appending problems to `diags`.
pub(crate) fn validate(inv: &Inventory, idx: &PosIndex, diags: &mut Vec<Diagnostic>) {
    let mut c = Checker { idx, diags };
    c.not_empty("province".to_owned(), &inv.province);

    let site_names = || inv.sites.iter().map(|s| s.name.as_str());
    let system_names = || inv.systems.iter().map(|s| s.name.as_str());
    let no_note = |_: &str| "";

    // Sites.
    let mut sites = HashMap::new();
    for (i, s) in inv.sites.iter().enumerate() {
        let p = format!("sites[{i}]");
        c.name(format!("{p}.name"), &s.name);
        c.unique(&mut sites, &s.name, format!("{p}.name"), no_note);
        if s.platform.kind != PlatformKind::None && s.platform.name.trim().is_empty() {
            c.err(
                format!("{p}.platform.name"),
                format!("a platform of kind `{}` needs a name", s.platform.kind.as_str()),
            );
        }
        if let Some(proxy) = &s.platform.proxy {
            let machine = inv.machines().into_iter().find(|m| m.name == proxy.as_str());
            match machine {
                None => c.err(format!("{p}.platform.proxy"), format!("unknown machine `{proxy}`")),
                Some(m) if m.agent != crate::AgentMode::Native => c.err(
                    format!("{p}.platform.proxy"),
                    format!("`{proxy}` has agent `{}`; a proxy must run a native agent", m.agent.as_str()),
                ),
                Some(m) if m.site != s.name => c.err(
                    format!("{p}.platform.proxy"),
                    format!("`{proxy}` is at site `{}`; a proxy must be at the site it speaks for", m.site),
                ),
                Some(_) => {}
            }
        }
        if !s.storage_tb.is_finite() || s.storage_tb < 0.0 {
            c.err(format!("{p}.storage_tb"), format!("must be a number of terabytes, 0 or more, got {}", s.storage_tb));
        }
        if let Some(vms) = s.vms {
            let named = inv.workloads.iter().filter(|w| w.site == s.name).count();
            if u64::try_from(named).unwrap_or(u64::MAX) > u64::from(vms) {
                c.err(format!("{p}.vms"), format!("declares {vms} VMs but {named} workloads are named at this site"));
            }
        }
    }

    // Hosts and workloads share one machine namespace; addresses are unique everywhere.
    let mut machines: HashMap<&str, String> = HashMap::new();
    let mut addresses: HashMap<IpAddr, String> = HashMap::new();
    let shared = |first: &str| {
        if first.starts_with("hosts[") { " (hosts and workloads share one namespace)" } else { "" }
    };
    let shared_w = |first: &str| {
        if first.starts_with("workloads[") { " (hosts and workloads share one namespace)" } else { "" }
    };
    for (i, h) in inv.hosts.iter().enumerate() {
        let p = format!("hosts[{i}]");
        c.name(format!("{p}.name"), &h.name);
        c.unique(&mut machines, &h.name, format!("{p}.name"), shared_w);
        if inv.site(&h.site).is_none() {
            c.err(format!("{p}.site"), format!("unknown site `{}`; sites are: {}", h.site, known(site_names())));
        }
        if h.cpus == 0 {
            c.err(format!("{p}.cpus"), "must be at least 1");
        }
        if h.memory_gb == 0 {
            c.err(format!("{p}.memory_gb"), "must be at least 1");
        }
        if let Some(a) = h.address {
            c.address(&mut addresses, a, format!("{p}.address"));
        }
        if h.tags.keys().any(|k| k.trim().is_empty()) {
            c.err(format!("{p}.tags"), "tag names must not be empty");
        }
    }
    for (i, w) in inv.workloads.iter().enumerate() {
        let p = format!("workloads[{i}]");
        c.name(format!("{p}.name"), &w.name);
        c.unique(&mut machines, &w.name, format!("{p}.name"), shared);
        if inv.site(&w.site).is_none() {
            c.err(format!("{p}.site"), format!("unknown site `{}`; sites are: {}", w.site, known(site_names())));
        }
        if let Some(s) = &w.system
            && inv.system(s).is_none()
        {
            c.err(format!("{p}.system"), format!("unknown system `{s}`; systems are: {}", known(system_names())));
        }
        match (&w.system, w.tags.get("system")) {
            (Some(field), Some(tag)) if field != tag => {
                let msg = format!(
                    "tag `system={tag}` contradicts `system: {field}` at {}",
                    c.where_is(&format!("{p}.system"))
                );
                c.err(format!("{p}.tags.system"), msg);
            }
            (None, Some(tag)) if inv.system(tag).is_none() => c.err(
                format!("{p}.tags.system"),
                format!("tag `system={tag}` names no system; systems are: {}", known(system_names())),
            ),
            _ => {}
        }
        if w.vcpus == 0 {
            c.err(format!("{p}.vcpus"), "must be at least 1");
        }
        if w.memory_gb == 0 {
            c.err(format!("{p}.memory_gb"), "must be at least 1");
        }
        if let Some(a) = w.address {
            c.address(&mut addresses, a, format!("{p}.address"));
        }
        if w.tags.keys().any(|k| k.trim().is_empty()) {
            c.err(format!("{p}.tags"), "tag names must not be empty");
        }
    }

    // Systems.
    let mut systems = HashMap::new();
    for (i, s) in inv.systems.iter().enumerate() {
        let p = format!("systems[{i}]");
        c.name(format!("{p}.name"), &s.name);
        c.unique(&mut systems, &s.name, format!("{p}.name"), no_note);
        c.not_empty(format!("{p}.title_vi"), &s.title_vi);
        c.not_empty(format!("{p}.owner"), &s.owner);
        c.not_empty(format!("{p}.framework"), &s.framework);
        let mut listed = HashMap::new();
        for (j, h) in s.hosts.iter().enumerate() {
            let hp = format!("{p}.hosts[{j}]");
            if inv.host(h).is_none() {
                let hint = if inv.workload(h).is_some() {
                    " (it is a workload: select it under `workloads`)".to_owned()
                } else {
                    format!("; hosts are: {}", known(inv.hosts.iter().map(|h| h.name.as_str())))
                };
                c.err(hp.clone(), format!("unknown host `{h}`{hint}"));
            }
            c.unique(&mut listed, h, hp, no_note);
        }
        if let Some(m) = &s.workloads.matcher
            && m.key_value().is_none()
        {
            c.err(
                format!("{p}.workloads.match.tag"),
                format!("expected `key=value`, e.g. `system={}`, got `{}`", s.name, m.tag),
            );
        }
        for (j, pat) in s.workloads.name_patterns.iter().enumerate() {
            let ok = !pat.is_empty()
                && pat.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "-._*?".contains(ch));
            if !ok {
                c.err(
                    format!("{p}.workloads.name_patterns[{j}]"),
                    format!("`{pat}` is not a name pattern: use lowercase letters, digits, `-`, `.`, `_`, `*` and `?`"),
                );
            }
        }
        for (j, n) in s.workloads.names.iter().enumerate() {
            if inv.workload(n).is_none() {
                let hint = if inv.host(n).is_some() { " (it is a host: list it under `hosts`)" } else { "" };
                c.err(format!("{p}.workloads.names[{j}]"), format!("unknown workload `{n}`{hint}"));
            }
        }
    }

    validate_backups(inv, &mut c);

    // A workload belongs to at most one system.
    for (i, w) in inv.workloads.iter().enumerate() {
        let mut claims: Vec<(&str, String)> = Vec::new();
        if let Some(s) = &w.system {
            claims.push((s, format!("workloads[{i}].system")));
        }
        if let Some(s) = w.tags.get("system") {
            claims.push((s, format!("workloads[{i}].tags.system")));
        }
        for (si, s) in inv.systems.iter().enumerate() {
            if s.workloads.matcher.as_ref().is_some_and(|m| m.matches(w)) {
                claims.push((&s.name, format!("systems[{si}].workloads.match.tag")));
            }
            if let Some(j) = s.workloads.names.iter().position(|n| *n == w.name) {
                claims.push((&s.name, format!("systems[{si}].workloads.names[{j}]")));
            }
            if let Some(j) = s.workloads.name_patterns.iter().position(|pat| crate::model::glob_matches(pat, &w.name)) {
                claims.push((&s.name, format!("systems[{si}].workloads.name_patterns[{j}]")));
            }
        }
        claims.sort_by_key(|(_, path)| {
            let pos = idx.pos(path);
            (pos.line, pos.column)
        });
        let Some((first_system, first_path)) = claims.first() else {
            continue;
        };
        // The field/tag contradiction inside the workload is reported above already.
        if let Some((other, path)) = claims.iter().find(|(s, path)| {
            s != first_system && !(path.starts_with("workloads[") && first_path.starts_with("workloads["))
        }) {
            let msg = format!(
                "workload `{}` would belong to system `{other}` here and to system \
                 `{first_system}` at {}; a workload belongs to one system",
                w.name,
                c.where_is(first_path)
            );
            c.err(path.clone(), msg);
        }
    }

    // Video endpoints.
    let mut endpoints = HashMap::new();
    for (i, v) in inv.video_endpoints.iter().enumerate() {
        let p = format!("video_endpoints[{i}]");
        c.name(format!("{p}.name"), &v.name);
        c.unique(&mut endpoints, &v.name, format!("{p}.name"), no_note);
        c.not_empty(format!("{p}.site_name"), &v.site_name);
        c.not_empty(format!("{p}.model"), &v.model);
        c.address(&mut addresses, v.address, format!("{p}.address"));
        if let Some(d) = &v.purchase_date
            && !date_shaped(d)
        {
            c.err(format!("{p}.purchase_date"), format!("`{d}` is not a date; write YYYY-MM-DD"));
        }
        if let Some(s) = &v.site
            && inv.site(s).is_none()
        {
            c.err(format!("{p}.site"), format!("unknown site `{s}`; sites are: {}", known(site_names())));
        }
    }

    // Endpoint groups.
    let mut groups = HashMap::new();
    for (i, g) in inv.endpoint_groups.iter().enumerate() {
        let p = format!("endpoint_groups[{i}]");
        c.name(format!("{p}.name"), &g.name);
        c.unique(&mut groups, &g.name, format!("{p}.name"), no_note);
        c.not_empty(format!("{p}.agency"), &g.agency);
    }
}

/// `YYYY-MM-DD` with a plausible month and day.
fn date_shaped(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    matches!(parts[..], [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2
        && [y, m, d].iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
        && (1..=12).contains(&m.parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&d.parse::<u8>().unwrap_or(0)))
}

/// A cron schedule has five fields of digits, `*`, `/`, `-` and `,`; the controller reads it.
pub(crate) fn cron_shaped(text: &str) -> bool {
    let fields: Vec<&str> = text.split_whitespace().collect();
    fields.len() == 5 && fields.iter().all(|f| f.chars().all(|ch| ch.is_ascii_digit() || "*/-,".contains(ch)))
}

/// Backup repositories, and each system's backup plan.
fn validate_backups(inv: &Inventory, c: &mut Checker<'_>) {
    let mut repos = HashMap::new();
    for (i, r) in inv.backup_repositories.iter().enumerate() {
        let p = format!("backup_repositories[{i}]");
        c.name(format!("{p}.name"), &r.name);
        c.unique(&mut repos, &r.name, format!("{p}.name"), |_| "");
        if !inv.sites.iter().any(|s| s.name == r.site) {
            c.err(format!("{p}.site"), format!("unknown site `{}`", r.site));
        }
        let l = r.location.trim();
        let known_kind = l.starts_with('/') || l.starts_with("sftp:") || l.starts_with("rest:");
        if !known_kind {
            c.err(
                format!("{p}.location"),
                format!("`{l}` is not a restic location: use an absolute path, `sftp:user@host:/path` or `rest:https://host/path`"),
            );
        }
    }
    for (i, s) in inv.systems.iter().enumerate() {
        let Some(b) = &s.backup else { continue };
        let p = format!("systems[{i}].backup");
        for (field, host) in [("host", &b.host), ("restore_host", &b.restore_host)] {
            if let Some(h) = host
                && !inv.machines().iter().any(|m| m.name == h.as_str())
            {
                c.err(format!("{p}.{field}"), format!("unknown machine `{h}`"));
            }
        }
        if b.paths.is_empty() {
            c.err(format!("{p}.paths"), "name at least one path to back up");
        }
        for (j, path) in b.paths.iter().enumerate() {
            if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
                c.err(format!("{p}.paths[{j}]"), format!("`{path}` is not an absolute path without `..`"));
            }
        }
        for (j, cmd) in b.pre.iter().enumerate() {
            if cmd.first().is_none_or(|prog| prog.trim().is_empty()) {
                c.err(
                    format!("{p}.pre[{j}]"),
                    "a command is a program and its arguments, e.g. [pg_dump, -f, /srv/db.sql]",
                );
            }
        }
        for (j, r) in b.repositories.iter().enumerate() {
            if !inv.backup_repositories.iter().any(|x| &x.name == r) {
                c.err(format!("{p}.repositories[{j}]"), format!("unknown backup repository `{r}`"));
            }
        }
        let snapshot_schedule = b.snapshots.as_ref().and_then(|x| x.schedule.as_ref());
        for (field, cron) in [
            ("schedule", b.schedule.as_ref()),
            ("check", b.check.as_ref()),
            ("restore_test", b.restore_test.as_ref()),
            ("snapshots.schedule", snapshot_schedule),
        ] {
            if let Some(text) = cron
                && !cron_shaped(text)
            {
                c.err(
                    format!("{p}.{field}"),
                    format!("`{text}` is not a cron schedule (minute hour day month weekday)"),
                );
            }
        }
        if !b.probe.is_empty() && b.probe[0].trim().is_empty() {
            c.err(
                format!("{p}.probe"),
                "a probe is a program and its arguments, e.g. [sh, -c, 'test -s \"$MANGROVE_RESTORE_DIR/srv/db.sql\"']",
            );
        }
        if b.snapshots.as_ref().and_then(|x| x.keep) == Some(0) {
            c.err(format!("{p}.snapshots.keep"), "keep at least one snapshot (or remove `snapshots`)");
        }
    }
}
