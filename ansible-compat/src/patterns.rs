//! Host patterns as Ansible resolves them: `all` or `*`, group and host names, globs (`web*`),
//! unions (`a:b` or `a,b`), intersections (`a:&b`), exclusions (`a:!b`), subscripts
//! (`web[0]`, `web[1:3]`), and `--limit`, which narrows the result with the same syntax.
//!
//! As in Ansible, plain terms are added first, then `&` terms intersect and `!` terms
//! remove, whatever order they are written in; a pattern made only of `&`/`!` terms starts
//! from `all`. Hosts come out in inventory (name) order.

use std::collections::BTreeSet;

use crate::model::AnsibleInventory;

/// The hosts a pattern selects, and the terms that matched nothing (Ansible warns of those).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub hosts: Vec<String>,
    pub unmatched: Vec<String>,
}

/// Resolves `pattern`, then narrows it with `limit` when given.
///
/// # Errors
/// A message for an empty pattern, a malformed subscript, or a `~regex` term (not supported).
pub fn resolve(inv: &AnsibleInventory, pattern: &str, limit: Option<&str>) -> Result<Selection, String> {
    let mut sel = resolve_one(inv, pattern)?;
    if let Some(l) = limit {
        let lim = resolve_one(inv, l)?;
        let keep: BTreeSet<&String> = lim.hosts.iter().collect();
        sel.hosts.retain(|h| keep.contains(h));
        sel.unmatched.extend(lim.unmatched);
    }
    Ok(sel)
}

/// Whether a pattern is one this module can resolve, without an inventory (so a playbook
/// with a pattern it cannot resolve is refused before the run).
///
/// # Errors
/// A message for an empty pattern, a `~regex` term, or a malformed subscript.
pub fn check_syntax(pattern: &str) -> Result<(), String> {
    if pattern.contains("{{") {
        return Ok(());
    }
    resolve_one(&AnsibleInventory::default(), pattern).map(|_| ())
}

/// A templated pattern of the common forms `{{ name }}` and `{{ name | default('x') }}`,
/// with `name` from `vars` (extra vars); `None` for anything else, or an unset name without a
/// default (then the pattern is resolved when the play runs).
pub fn render_simple(pattern: &str, vars: &crate::Vars) -> Option<String> {
    let inner = pattern.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let (name, rest) = match inner.split_once('|') {
        Some((n, r)) => (n.trim(), Some(r.trim())),
        None => (inner, None),
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    if let Some(v) = vars.get(name) {
        return match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(a) => Some(a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(":")),
            _ => None,
        };
    }
    let arg = rest?.strip_prefix("default")?.trim().strip_prefix('(')?.strip_suffix(')')?.trim();
    let q = arg.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    arg.strip_prefix(q)?.strip_suffix(q).map(str::to_owned)
}

fn split_terms(pattern: &str) -> Vec<&str> {
    // `,` separates when present, else `:`; never inside a subscript's brackets.
    let sep = if pattern.contains(',') { ',' } else { ':' };
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in pattern.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            c if c == sep && depth == 0 => {
                out.push(pattern[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(pattern[start..].trim());
    out.retain(|t| !t.is_empty());
    out
}

fn resolve_one(inv: &AnsibleInventory, pattern: &str) -> Result<Selection, String> {
    let terms = split_terms(pattern);
    if terms.is_empty() {
        return Err(format!("host pattern `{pattern}` is empty"));
    }
    let mut plain = Vec::new();
    let mut and = Vec::new();
    let mut not = Vec::new();
    for t in terms {
        if let Some(x) = t.strip_prefix('&') {
            and.push(x);
        } else if let Some(x) = t.strip_prefix('!') {
            not.push(x);
        } else {
            plain.push(t);
        }
    }
    if plain.is_empty() {
        plain.push("all");
    }
    let mut unmatched = Vec::new();
    let mut set: BTreeSet<String> = BTreeSet::new();
    for t in plain {
        let m = term(inv, t)?;
        if m.is_empty() {
            unmatched.push(t.to_owned());
        }
        set.extend(m);
    }
    for t in and {
        let m = term(inv, t)?;
        if m.is_empty() {
            unmatched.push(format!("&{t}"));
        }
        set = set.intersection(&m).cloned().collect();
    }
    for t in not {
        let m = term(inv, t)?;
        for h in m {
            set.remove(&h);
        }
    }
    Ok(Selection { hosts: set.into_iter().collect(), unmatched })
}

/// One term's hosts.
fn term(inv: &AnsibleInventory, t: &str) -> Result<BTreeSet<String>, String> {
    if t.starts_with('~') {
        return Err(format!("host pattern term `{t}`: regular expressions are not supported"));
    }
    // Subscript: name[0], name[1:3], name[-1].
    if let Some(open) = t.find('[')
        && t.ends_with(']')
    {
        let base = &t[..open];
        let sub = &t[open + 1..t.len() - 1];
        let hosts: Vec<String> = term(inv, base)?.into_iter().collect();
        let n = i64::try_from(hosts.len()).unwrap_or(i64::MAX);
        let idx = |s: &str, default: i64| -> Result<i64, String> {
            if s.is_empty() {
                return Ok(default);
            }
            let v: i64 = s.parse().map_err(|_| format!("host pattern `{t}`: bad subscript `{sub}`"))?;
            Ok(if v < 0 { n + v } else { v })
        };
        let (a, b) = match sub.split_once(':') {
            Some((a, b)) => (idx(a, 0)?, idx(b, n - 1)?),
            None => {
                let i = idx(sub, 0)?;
                (i, i)
            }
        };
        return Ok(hosts
            .into_iter()
            .enumerate()
            .filter(|(i, _)| {
                let i = i64::try_from(*i).unwrap_or(i64::MAX);
                i >= a && i <= b
            })
            .map(|(_, h)| h)
            .collect());
    }
    if t == "all" || t == "*" {
        return Ok(inv.hosts.keys().cloned().collect());
    }
    if t.contains(['*', '?']) {
        let mut out = BTreeSet::new();
        for g in inv.groups.keys().chain(std::iter::once(&"ungrouped".to_owned())) {
            if inventory::glob_matches(t, g) {
                out.extend(inv.hosts_of_group(g));
            }
        }
        out.extend(inv.hosts.keys().filter(|h| inventory::glob_matches(t, h)).cloned());
        return Ok(out);
    }
    if inv.groups.contains_key(t) || t == "ungrouped" {
        return Ok(inv.hosts_of_group(t));
    }
    if inv.hosts.contains_key(t) {
        return Ok(BTreeSet::from([t.to_owned()]));
    }
    Ok(BTreeSet::new())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn inv() -> AnsibleInventory {
        let mut inv = AnsibleInventory::default();
        crate::ini::parse_into(
            "[web]\nweb[1:3]\n[db]\ndb1\ndb2\n[dc]\nweb1\nweb2\ndb1\n[dr]\nweb3\ndb2\n[app:children]\nweb\ndb\n",
            "h.ini",
            &mut inv,
        )
        .unwrap();
        inv
    }

    fn hosts(p: &str, limit: Option<&str>) -> Vec<String> {
        resolve(&inv(), p, limit).unwrap().hosts
    }

    #[test]
    fn patterns_resolve_like_ansible() {
        assert_eq!(hosts("all", None).len(), 5);
        assert_eq!(hosts("web", None), ["web1", "web2", "web3"]);
        assert_eq!(hosts("web:db", None).len(), 5);
        assert_eq!(hosts("web,db1", None), ["db1", "web1", "web2", "web3"]);
        assert_eq!(hosts("web:&dc", None), ["web1", "web2"]);
        assert_eq!(hosts("app:!dr", None), ["db1", "web1", "web2"]);
        assert_eq!(hosts("!dr", None), ["db1", "web1", "web2"]);
        assert_eq!(hosts("&dc:!db", None), ["web1", "web2"]);
        assert_eq!(hosts("web*", None), ["web1", "web2", "web3"]);
        assert_eq!(hosts("app", Some("dr")), ["db2", "web3"]);
        assert_eq!(hosts("web[0]", None), ["web1"]);
        assert_eq!(hosts("web[1:]", None), ["web2", "web3"]);
        assert_eq!(hosts("web[-1]", None), ["web3"]);
        assert_eq!(hosts("db2", None), ["db2"]);
    }

    #[test]
    fn unmatched_terms_are_reported_and_regexes_refused() {
        let s = resolve(&inv(), "web:nosuch", None).unwrap();
        assert_eq!(s.unmatched, ["nosuch"]);
        assert!(resolve(&inv(), "~web.*", None).is_err());
        assert!(resolve(&inv(), "", None).is_err());
        assert!(check_syntax("~web.*").is_err());
        assert!(check_syntax("web[x]").is_err());
        assert!(check_syntax("dc:&role_vm:!system_x").is_ok());
        assert!(check_syntax("{{ target }}").is_ok());
        let vars: crate::Vars = serde_json::from_value(serde_json::json!({"target": "dc:!db"})).unwrap();
        assert_eq!(render_simple("{{ target }}", &vars).as_deref(), Some("dc:!db"));
        assert_eq!(render_simple("{{ other | default('web') }}", &vars).as_deref(), Some("web"));
        assert_eq!(render_simple("{{ other }}", &vars), None);
        assert_eq!(render_simple("{{ a ~ b }}", &vars), None);
    }
}
