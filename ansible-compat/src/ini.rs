//! Ansible's INI inventory format, read as Ansible's `ini` plugin reads it: the lines before
//! any section are ungrouped hosts; `[group]` lists hosts (with host ranges, `:port` and
//! `key=value` variables, split like a shell line); `[group:vars]` holds `key=value` lines;
//! `[group:children]` names child groups, which may be declared later. Values are Python
//! literals where they parse as one, else strings.

use crate::model::{AnsibleInventory, Loc};
use crate::pylit::{ini_value, shlex_split};
use crate::{Problem, Problems, hostrange};

/// Reads an INI inventory into `inv` (which may already hold other sources).
///
/// # Errors
/// Every problem found, each as `file:line: what`: unknown section kinds, malformed lines
/// and variables, bad host ranges, `[g:vars]` or `[g:children]` naming a group that is never
/// declared.
pub fn parse_into(text: &str, file: &str, inv: &mut AnsibleInventory) -> Result<(), Problems> {
    let mut problems = Vec::new();
    let mut group = "ungrouped".to_owned();
    let mut state = State::Hosts;
    // Groups named only by [g:vars] or as a child, to check at the end: (group, line, kind).
    let mut pending: Vec<(String, usize, &'static str)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let loc = Loc::new(file, n);
        if line.starts_with('[') {
            match section(line) {
                Some((g, kind)) => {
                    state = match kind {
                        None | Some("hosts") => State::Hosts,
                        Some("vars") => State::Vars,
                        Some("children") => State::Children,
                        Some(other) => {
                            problems.push(Problem::at(&loc, format!("section [{g}:{other}] has unknown type {other}")));
                            State::Skip
                        }
                    };
                    group = g.to_owned();
                    if group != "all" && !inv.groups.contains_key(&group) {
                        if state == State::Vars {
                            pending.push((group.clone(), n, "vars"));
                        }
                        inv.origins.groups.entry(group.clone()).or_insert_with(|| loc.clone());
                        if group != "ungrouped" {
                            inv.ensure_group(&group);
                        }
                    }
                    if state != State::Vars {
                        pending.retain(|(p, _, _)| *p != group);
                    }
                }
                None => problems.push(Problem::at(
                    &loc,
                    format!(
                        "invalid section `{line}`: expected [group], [group:vars] or [group:children], without spaces"
                    ),
                )),
            }
            continue;
        }
        match state {
            State::Skip => {}
            State::Hosts => {
                if let Err(m) = host_line(line, &group, &loc, inv) {
                    problems.push(Problem::at(&loc, m));
                }
            }
            State::Vars => match line.split_once('=') {
                Some((k, v)) => {
                    let (k, v) = (k.trim(), v.trim());
                    if k.is_empty() {
                        problems.push(Problem::at(&loc, "a variable without a name"));
                        continue;
                    }
                    let scope = if group == "all" { "all".to_owned() } else { format!("group:{group}") };
                    inv.origins.vars.insert((scope, k.to_owned()), loc.clone());
                    let vars = if group == "all" { &mut inv.all_vars } else { &mut inv.ensure_group(&group).vars };
                    vars.insert(k.to_owned(), ini_value(v));
                }
                None => problems.push(Problem::at(&loc, format!("expected key=value, got `{line}`"))),
            },
            State::Children => {
                let child = line.split('#').next().unwrap_or("").trim();
                if child.is_empty() || child.contains([':', ']']) || child.contains(char::is_whitespace) {
                    problems.push(Problem::at(&loc, format!("expected a group name, got `{line}`")));
                    continue;
                }
                if child == group {
                    problems.push(Problem::at(&loc, format!("group {group} cannot be its own child")));
                    continue;
                }
                if !inv.groups.contains_key(child) {
                    pending.push((child.to_owned(), n, "children"));
                    inv.origins.groups.entry(child.to_owned()).or_insert_with(|| loc.clone());
                }
                if group == "all" {
                    inv.ensure_group(child);
                } else {
                    inv.ensure_group(child);
                    inv.ensure_group(&group).children.insert(child.to_owned());
                }
            }
        }
    }
    // A child group that is declared later in the file is fine: drop those from pending.
    for (g, n, kind) in pending {
        if declared(text, &g) {
            continue;
        }
        let msg = match kind {
            "vars" => format!("section [{g}:vars] is for group {g}, which is never declared"),
            _ => format!("group {g} is named as a child but never declared"),
        };
        problems.push(Problem::new(file, n, msg));
    }
    if problems.is_empty() { Ok(()) } else { Err(Problems(problems)) }
}

/// Whether `[g]` or `[g:children]` appears as a section of the text.
fn declared(text: &str, g: &str) -> bool {
    text.lines().filter_map(|l| section(l.trim())).any(|(name, kind)| name == g && kind != Some("vars"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hosts,
    Vars,
    Children,
    Skip,
}

/// `[name]` or `[name:kind]` with an optional trailing comment.
fn section(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix('[')?;
    let close = rest.find(']')?;
    let after = rest[close + 1..].trim();
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    let inner = &rest[..close];
    let (name, kind) = match inner.split_once(':') {
        Some((n, k)) => (n, Some(k)),
        None => (inner, None),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    if let Some(k) = kind
        && (k.is_empty() || !k.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        return None;
    }
    Some((name, kind))
}

fn host_line(line: &str, group: &str, loc: &Loc, inv: &mut AnsibleInventory) -> Result<(), String> {
    let words = shlex_split(line).map_err(|e| format!("cannot split host line `{line}`: {e}"))?;
    let Some((pattern, assignments)) = words.split_first() else { return Ok(()) };
    if pattern.trim() == "---" {
        return Err("`---` in an INI inventory: is this a YAML file?".into());
    }
    let (hosts, port) = hostrange::expand(pattern)?;
    let mut vars = Vec::new();
    for a in assignments {
        let (k, v) = a.split_once('=').ok_or_else(|| format!("expected key=value host variable, got `{a}`"))?;
        vars.push((k.to_owned(), ini_value(v)));
    }
    for h in hosts {
        inv.origins.hosts.entry(h.clone()).or_insert_with(|| loc.clone());
        let hv = inv.ensure_host(&h);
        if let Some(p) = port {
            hv.insert("ansible_port".into(), serde_json::Value::from(p));
        }
        for (k, v) in &vars {
            hv.insert(k.clone(), v.clone());
        }
        for (k, _) in &vars {
            inv.origins.vars.insert((format!("host:{h}"), k.clone()), loc.clone());
        }
        if group != "ungrouped" && group != "all" {
            inv.origins.memberships.entry((group.to_owned(), h.clone())).or_insert_with(|| loc.clone());
            inv.ensure_group(group).hosts.insert(h);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const SAMPLE: &str = "\
lonely ansible_host=10.0.0.9

[web]
web[01:03] http_port=8080
db-a:2222

[db]
db-[a:b] role=primary

[app:children]
web
db

[app:vars]
ntp='pool.example'
retries=3
";

    #[test]
    fn reads_groups_ranges_children_and_vars() {
        let mut inv = AnsibleInventory::default();
        parse_into(SAMPLE, "hosts.ini", &mut inv).unwrap();
        assert_eq!(inv.hosts.len(), 6);
        assert_eq!(inv.groups["web"].hosts.len(), 4);
        assert_eq!(inv.hosts["web02"]["http_port"], json!(8080));
        assert_eq!(inv.hosts["db-a"]["ansible_port"], json!(2222));
        assert_eq!(inv.groups["app"].children.iter().collect::<Vec<_>>(), ["db", "web"]);
        assert_eq!(inv.groups["app"].vars["retries"], json!(3));
        assert_eq!(inv.groups["app"].vars["ntp"], json!("pool.example"));
        assert_eq!(inv.ungrouped(), ["lonely"]);
        assert_eq!(inv.origins.hosts["web03"], Loc::new("hosts.ini", 4));
        assert_eq!(inv.effective_vars("db-b")["retries"], json!(3));
    }

    #[test]
    fn problems_name_file_and_line() {
        let mut inv = AnsibleInventory::default();
        let e = parse_into(
            "[web]\nweb[3:1]\n[x:bogus]\n[ghost:vars]\na=1\n[p:children]\nnever\n[web]\nh k\n",
            "bad.ini",
            &mut inv,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("bad.ini:2: host range `[3:1]` runs backwards"), "{text}");
        assert!(text.contains("bad.ini:3: section [x:bogus] has unknown type bogus"), "{text}");
        assert!(text.contains("bad.ini:4: section [ghost:vars]"), "{text}");
        assert!(text.contains("bad.ini:7: group never is named as a child but never declared"), "{text}");
        assert!(text.contains("bad.ini:9: expected key=value host variable, got `k`"), "{text}");
    }
}
