//! Ansible's YAML inventory format, read as Ansible's `yaml` plugin reads it: top-level keys
//! are groups (usually just `all`); each group may have `hosts` (names or ranges, each with
//! its variables or nothing), `vars` and `children` (groups, nested the same way).

use crate::model::{AnsibleInventory, Loc};
use crate::yamlpos::{self, Node};
use crate::{Problem, Problems, hostrange};

/// Reads a YAML inventory into `inv`.
///
/// # Errors
/// Every problem found, as `file:line: what`: YAML errors, a group or `hosts`/`vars`/
/// `children` that is not a mapping, unknown keys in a group, bad host ranges.
pub fn parse_into(text: &str, file: &str, inv: &mut AnsibleInventory) -> Result<(), Problems> {
    let docs = yamlpos::parse(text, file).map_err(|p| Problems(vec![p]))?;
    let mut problems = Vec::new();
    let Some(root) = docs.first() else { return Ok(()) };
    if docs.len() > 1 {
        problems.push(Problem::new(file, docs[1].line, "a second YAML document in an inventory"));
    }
    if root.is_null() {
        return Ok(());
    }
    let Some(groups) = root.as_map() else {
        return Err(Problems(vec![Problem::new(
            file,
            root.line,
            format!("an inventory must be a mapping of groups, found {}", root.describe()),
        )]));
    };
    for (k, v) in groups {
        group(&k.key_text(), k.line, v, None, file, inv, &mut problems, 0);
    }
    if problems.is_empty() { Ok(()) } else { Err(Problems(problems)) }
}

#[allow(clippy::too_many_arguments)]
fn group(
    name: &str,
    line: usize,
    data: &Node,
    parent: Option<&str>,
    file: &str,
    inv: &mut AnsibleInventory,
    problems: &mut Vec<Problem>,
    depth: usize,
) {
    if depth > 100 {
        problems.push(Problem::new(file, line, "groups nested more than 100 deep"));
        return;
    }
    let loc = Loc::new(file, line);
    if name != "all" {
        inv.origins.groups.entry(name.to_owned()).or_insert_with(|| loc.clone());
        if name != "ungrouped" || data.get("vars").is_some() {
            inv.ensure_group(name);
        }
        if let Some(p) = parent.filter(|p| *p != "all") {
            if p == name {
                problems.push(Problem::at(&loc, format!("group {name} cannot be its own child")));
            } else {
                inv.ensure_group(p).children.insert(name.to_owned());
            }
        }
    }
    if data.is_null() {
        return;
    }
    let Some(entries) = data.as_map() else {
        problems.push(Problem::at(
            &loc,
            format!("group {name} must be a mapping (hosts, vars, children), found {}", data.describe()),
        ));
        return;
    };
    for (k, v) in entries {
        let key = k.key_text();
        match key.as_str() {
            "vars" => {
                if v.is_null() {
                    continue;
                }
                let Some(vars) = v.as_map() else {
                    problems.push(Problem::new(
                        file,
                        v.line,
                        format!("vars of group {name} must be a mapping, found {}", v.describe()),
                    ));
                    continue;
                };
                for (vk, vv) in vars {
                    let var = vk.key_text();
                    let scope = if name == "all" { "all".to_owned() } else { format!("group:{name}") };
                    inv.origins.vars.insert((scope, var.clone()), Loc::new(file, vk.line));
                    let target = if name == "all" { &mut inv.all_vars } else { &mut inv.ensure_group(name).vars };
                    target.insert(var, vv.to_json());
                }
            }
            "hosts" => {
                if v.is_null() {
                    continue;
                }
                let Some(hosts) = v.as_map() else {
                    problems.push(Problem::new(
                        file,
                        v.line,
                        format!("hosts of group {name} must be a mapping of host names, found {}", v.describe()),
                    ));
                    continue;
                };
                for (hk, hv) in hosts {
                    let pattern = hk.key_text();
                    let hloc = Loc::new(file, hk.line);
                    let (names, port) = match hostrange::expand(&pattern) {
                        Ok(x) => x,
                        Err(m) => {
                            problems.push(Problem::at(&hloc, m));
                            continue;
                        }
                    };
                    let vars = match &hv.value {
                        yamlpos::Value::Null => Vec::new(),
                        yamlpos::Value::Map(m) => m.iter().map(|(k, v)| (k.key_text(), v.to_json(), k.line)).collect(),
                        _ => {
                            problems.push(Problem::new(
                                file,
                                hv.line,
                                format!(
                                    "host {pattern} must have a mapping of variables or nothing, found {}",
                                    hv.describe()
                                ),
                            ));
                            continue;
                        }
                    };
                    for h in names {
                        inv.origins.hosts.entry(h.clone()).or_insert_with(|| hloc.clone());
                        let own = inv.ensure_host(&h);
                        if let Some(p) = port {
                            own.insert("ansible_port".into(), serde_json::Value::from(p));
                        }
                        for (k, v, _) in &vars {
                            own.insert(k.clone(), v.clone());
                        }
                        for (k, _, l) in &vars {
                            inv.origins.vars.insert((format!("host:{h}"), k.clone()), Loc::new(file, *l));
                        }
                        if name != "all" && name != "ungrouped" {
                            inv.origins.memberships.entry((name.to_owned(), h.clone())).or_insert_with(|| hloc.clone());
                            inv.ensure_group(name).hosts.insert(h);
                        }
                    }
                }
            }
            "children" => {
                if v.is_null() {
                    continue;
                }
                let Some(children) = v.as_map() else {
                    problems.push(Problem::new(
                        file,
                        v.line,
                        format!("children of group {name} must be a mapping of groups, found {}", v.describe()),
                    ));
                    continue;
                };
                for (ck, cv) in children {
                    group(&ck.key_text(), ck.line, cv, Some(name), file, inv, problems, depth + 1);
                }
            }
            other => problems.push(Problem::new(
                file,
                k.line,
                format!("group {name} has an unexpected key `{other}` (expected hosts, vars or children)"),
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_nested_groups_and_vars() {
        let text = "all:\n  vars: {a: 1}\n  hosts:\n    solo:\n  children:\n    web:\n      hosts:\n        web[1:2]: {p: 80}\n      children:\n        edge:\n          hosts: {e1: }\n      vars: {tier: front}\n";
        let mut inv = AnsibleInventory::default();
        parse_into(text, "inv.yml", &mut inv).unwrap();
        assert_eq!(inv.all_vars["a"], json!(1));
        assert_eq!(inv.hosts["web2"]["p"], json!(80));
        assert!(inv.groups["web"].children.contains("edge"));
        assert_eq!(inv.ungrouped(), ["solo"]);
        assert_eq!(inv.effective_vars("e1")["tier"], json!("front"));
        assert_eq!(inv.origins.hosts["e1"], Loc::new("inv.yml", 11));
    }

    #[test]
    fn problems_have_lines() {
        let mut inv = AnsibleInventory::default();
        let e = parse_into("all:\n  children:\n    web:\n      hostz: {}\n      hosts: [a]\n", "i.yml", &mut inv)
            .unwrap_err();
        let t = e.to_string();
        assert!(t.contains("i.yml:4: group web has an unexpected key `hostz`"), "{t}");
        assert!(t.contains("i.yml:5: hosts of group web must be a mapping"), "{t}");
    }
}
