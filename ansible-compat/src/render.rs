//! Static inventories: Ansible's YAML and INI formats, written so that Ansible reads back
//! exactly the groups, hosts and variables of an [`AnsibleInventory`] (types included: a
//! string that looks like a number stays a string).
//!
//! YAML: every group hangs under its first parent (depth first from `all`) and is only
//! named (`child:`) under the others; a host's variables are written where it is first
//! listed. Values are written as JSON, which YAML reads unchanged.
//!
//! INI: values are Python literals (Ansible reads INI values with `ast.literal_eval`), and
//! on host lines they are shell-quoted too (Ansible splits host lines like a shell); simple
//! strings are left bare when Ansible reads them back as the same string.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

use crate::model::{AnsibleInventory, Vars};

/// Ansible's YAML inventory format.
pub fn to_yaml(inv: &AnsibleInventory) -> String {
    let mut out = String::from("# Ansible inventory written by `mangrove ansible inventory --static yaml`.\n");
    out.push_str("all:\n");
    if !inv.all_vars.is_empty() {
        out.push_str("  vars:\n");
        write_vars_yaml(&mut out, &inv.all_vars, 4);
    }
    let mut vars_written: BTreeSet<String> = BTreeSet::new();
    let ungrouped = inv.ungrouped();
    if !ungrouped.is_empty() {
        out.push_str("  hosts:\n");
        for h in ungrouped {
            write_host_yaml(&mut out, inv, h, 4, &mut vars_written);
        }
    }
    let tops = inv.top_groups();
    let ungrouped_vars = inv.groups.get("ungrouped").map(|g| &g.vars).filter(|v| !v.is_empty());
    if !tops.is_empty() || ungrouped_vars.is_some() {
        out.push_str("  children:\n");
        let mut defined: BTreeSet<String> = BTreeSet::new();
        for g in tops {
            write_group_yaml(&mut out, inv, g, 4, &mut defined, &mut vars_written);
        }
        if let Some(v) = ungrouped_vars {
            out.push_str("    ungrouped:\n      vars:\n");
            write_vars_yaml(&mut out, v, 8);
        }
    }
    out
}

fn write_group_yaml(
    out: &mut String,
    inv: &AnsibleInventory,
    name: &str,
    indent: usize,
    defined: &mut BTreeSet<String>,
    vars_written: &mut BTreeSet<String>,
) {
    let pad = " ".repeat(indent);
    let Some(g) = inv.groups.get(name) else { return };
    if !defined.insert(name.to_owned()) || (g.hosts.is_empty() && g.children.is_empty() && g.vars.is_empty()) {
        let _ = writeln!(out, "{pad}{}:", yaml_key(name));
        return;
    }
    let _ = writeln!(out, "{pad}{}:", yaml_key(name));
    if !g.vars.is_empty() {
        let _ = writeln!(out, "{pad}  vars:");
        write_vars_yaml(out, &g.vars, indent + 4);
    }
    if !g.hosts.is_empty() {
        let _ = writeln!(out, "{pad}  hosts:");
        for h in &g.hosts {
            write_host_yaml(out, inv, h, indent + 4, vars_written);
        }
    }
    if !g.children.is_empty() {
        let _ = writeln!(out, "{pad}  children:");
        for c in &g.children {
            write_group_yaml(out, inv, c, indent + 4, defined, vars_written);
        }
    }
}

fn write_host_yaml(out: &mut String, inv: &AnsibleInventory, host: &str, indent: usize, done: &mut BTreeSet<String>) {
    let pad = " ".repeat(indent);
    let vars = inv.hosts.get(host).filter(|v| !v.is_empty());
    match vars {
        Some(v) if done.insert(host.to_owned()) => {
            let _ = writeln!(out, "{pad}{}:", yaml_key(host));
            write_vars_yaml(out, v, indent + 2);
        }
        _ => {
            let _ = writeln!(out, "{pad}{}:", yaml_key(host));
        }
    }
}

fn write_vars_yaml(out: &mut String, vars: &Vars, indent: usize) {
    let pad = " ".repeat(indent);
    for (k, v) in vars {
        let _ = writeln!(out, "{pad}{}: {}", yaml_key(k), json_text(v));
    }
}

fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// A mapping key: bare when YAML 1.1 reads it back as the same string, else JSON-quoted.
fn yaml_key(k: &str) -> String {
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !matches!(
            k.to_ascii_lowercase().as_str(),
            "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "y" | "n"
        );
    if plain { k.to_owned() } else { json_text(&Value::String(k.to_owned())) }
}

/// Ansible's INI inventory format.
pub fn to_ini(inv: &AnsibleInventory) -> String {
    let mut out = String::from("# Ansible inventory written by `mangrove ansible inventory --static ini`.\n");
    let mut vars_written: BTreeSet<String> = BTreeSet::new();
    for h in inv.ungrouped() {
        out.push_str(&ini_host_line(inv, h, &mut vars_written));
    }
    if !inv.all_vars.is_empty() {
        out.push_str("\n[all:vars]\n");
        write_vars_ini(&mut out, &inv.all_vars);
    }
    for (name, g) in &inv.groups {
        if name == "ungrouped" {
            if !g.vars.is_empty() {
                out.push_str("\n[ungrouped:vars]\n");
                write_vars_ini(&mut out, &g.vars);
            }
            continue;
        }
        let _ = write!(out, "\n[{name}]\n");
        for h in &g.hosts {
            out.push_str(&ini_host_line(inv, h, &mut vars_written));
        }
        if !g.children.is_empty() {
            let _ = write!(out, "\n[{name}:children]\n");
            for c in &g.children {
                let _ = writeln!(out, "{c}");
            }
        }
        if !g.vars.is_empty() {
            let _ = write!(out, "\n[{name}:vars]\n");
            write_vars_ini(&mut out, &g.vars);
        }
    }
    out
}

fn ini_host_line(inv: &AnsibleInventory, host: &str, done: &mut BTreeSet<String>) -> String {
    let mut line = host.to_owned();
    if let Some(vars) = inv.hosts.get(host).filter(|v| !v.is_empty())
        && done.insert(host.to_owned())
    {
        for (k, v) in vars {
            line.push(' ');
            line.push_str(&shell_quote(&format!("{k}={}", ini_value(v))));
        }
    }
    line.push('\n');
    line
}

fn write_vars_ini(out: &mut String, vars: &Vars) {
    for (k, v) in vars {
        let _ = writeln!(out, "{k}={}", ini_value(v));
    }
}

/// A value as `ast.literal_eval` reads it back: bare for simple strings it cannot parse
/// (so they stay strings), else a Python literal.
fn ini_value(v: &Value) -> String {
    if let Value::String(s) = v
        && bare_string_is_safe(s)
    {
        return s.clone();
    }
    python_literal(v)
}

/// Strings `ast.literal_eval` rejects, so Ansible keeps them as written: names
/// (`dc`, `dc-esxi-01`, `a.b`) other than `True`/`False`/`None`, and dotted quads.
fn bare_string_is_safe(s: &str) -> bool {
    let name = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !matches!(s, "True" | "False" | "None");
    let dotted =
        s.split('.').count() >= 3 && s.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    name || dotted
}

/// A Python literal of a JSON value.
pub(crate) fn python_literal(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 || c == '\u{7f}' => {
                        let _ = write!(out, "\\x{:02x}", c as u32);
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::Array(a) => format!("[{}]", a.iter().map(python_literal).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", python_literal(&Value::String(k.clone())), python_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// One shell word (POSIX quoting, as Python's `shlex.split` reads it).
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '=' | '/' | ':' | ',' | '+' | '@'));
    if safe { s.to_owned() } else { format!("'{}'", s.replace('\'', "'\\''")) }
}
