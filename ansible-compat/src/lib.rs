//! Ansible interop for Mangrove, as pure functions over text and values: Mangrove's inventory
//! exported in Ansible's dynamic-inventory JSON and static YAML and INI formats; Ansible's INI
//! and YAML inventories (with host ranges and `group_vars/`, `host_vars/`) read into a plan of
//! what would change in Mangrove's inventory; playbooks and roles loaded and checked against
//! the subset Mangrove's runner supports, refusing the whole run with `file:line` before
//! anything happens; host patterns and tag selection.
//!
//! It must never do IO beyond [`loader::read_tree`], which reads a path into `(path, text)`
//! pairs for the parsers: no network, no runtime, no environment, no clock. Everything else
//! takes strings and returns values or errors; nothing panics on bad input.

pub mod export;
pub mod hostrange;
pub mod import;
pub mod ini;
pub mod jinja_scan;
pub mod loader;
pub mod model;
mod names;
pub mod patterns;
pub mod playbook;
pub mod pylit;
pub mod render;
pub mod run;
pub mod supported;
pub mod tags;
pub mod vars_dirs;
pub mod yaml_inventory;
pub mod yamlpos;

pub use model::{AnsibleInventory, Group, Loc, Vars};
pub use names::{is_safe_group_name, safe_group_name};

/// A problem in an input file, reported as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{loc}: {message}")]
pub struct Problem {
    pub loc: Loc,
    pub message: String,
}

impl Problem {
    pub fn new(file: &str, line: usize, message: impl Into<String>) -> Problem {
        Problem { loc: Loc::new(file, line), message: message.into() }
    }

    pub fn at(loc: &Loc, message: impl Into<String>) -> Problem {
        Problem { loc: loc.clone(), message: message.into() }
    }
}

/// Every problem found in one pass, first one first; displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct Problems(pub Vec<Problem>);
