//! `group_vars/` and `host_vars/`: for a group or host `NAME`, the file `NAME`, `NAME.yml`,
//! `NAME.yaml` or `NAME.json`, or every file in the directory `NAME/` (in name order), each
//! a YAML mapping of variables. They override the variables written in the inventory file
//! for the same group or host, as in Ansible. Files for groups or hosts the inventory does
//! not have are ignored, as Ansible ignores them.
//!
//! Difference from Ansible, by design of the model: a `group_vars/` file is folded into its
//! group's variables, so where a deeper group's inline variable and a shallower group's
//! `group_vars/` file set the same name, Ansible keeps the file's value and we keep the
//! deeper group's.

use crate::model::{AnsibleInventory, Loc};
use crate::yamlpos;
use crate::{Problem, Problems};

/// Which kind of vars directory a path is in, and the group or host it is for: the path's
/// component after `group_vars`/`host_vars`, without a `.yml`/`.yaml`/`.json` extension.
pub fn classify(path: &str) -> Option<(Kind, String)> {
    let parts: Vec<&str> = path.split(['/', '\\']).collect();
    let at = parts.iter().rposition(|p| *p == "group_vars" || *p == "host_vars")?;
    let kind = if parts[at] == "group_vars" { Kind::Group } else { Kind::Host };
    let first = parts.get(at + 1)?;
    let is_file = at + 2 == parts.len();
    let name = if is_file {
        first
            .strip_suffix(".yml")
            .or_else(|| first.strip_suffix(".yaml"))
            .or_else(|| first.strip_suffix(".json"))
            .unwrap_or(first)
    } else {
        first
    };
    Some((kind, name.to_owned()))
}

/// Group or host variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Group,
    Host,
}

/// Applies one vars file to `inv`.
///
/// # Errors
/// YAML problems, or a file that is not a mapping, with file and line.
pub fn apply(path: &str, text: &str, inv: &mut AnsibleInventory) -> Result<(), Problems> {
    let Some((kind, name)) = classify(path) else { return Ok(()) };
    let docs = yamlpos::parse(text, path).map_err(|p| Problems(vec![p]))?;
    let Some(root) = docs.first() else { return Ok(()) };
    if root.is_null() {
        return Ok(());
    }
    let Some(map) = root.as_map() else {
        return Err(Problems(vec![Problem::new(
            path,
            root.line,
            format!("a vars file must be a mapping, found {}", root.describe()),
        )]));
    };
    let target = match kind {
        Kind::Group if name == "all" => Some(&mut inv.all_vars),
        Kind::Group => inv.groups.get_mut(&name).map(|g| &mut g.vars),
        Kind::Host => inv.hosts.get_mut(&name),
    };
    let Some(target) = target else { return Ok(()) };
    for (k, v) in map {
        target.insert(k.key_text(), v.to_json());
    }
    let scope = match kind {
        Kind::Group if name == "all" => "all".to_owned(),
        Kind::Group => format!("group:{name}"),
        Kind::Host => format!("host:{name}"),
    };
    for (k, _) in map {
        inv.origins.vars.insert((scope.clone(), k.key_text()), Loc::new(path, k.line));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_group_or_host() {
        assert_eq!(classify("inv/group_vars/web.yml"), Some((Kind::Group, "web".into())));
        assert_eq!(classify("inv/group_vars/web"), Some((Kind::Group, "web".into())));
        assert_eq!(classify("inv/group_vars/web/ntp.yaml"), Some((Kind::Group, "web".into())));
        assert_eq!(classify("inv/host_vars/db1.json"), Some((Kind::Host, "db1".into())));
        assert_eq!(classify("inv/hosts.ini"), None);
    }
}
