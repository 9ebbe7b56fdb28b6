//! The YAML metadata of a pack (`pack.yaml`) and of a control (`controls/<id>.yaml`), exactly as
//! documented in the pack format; unknown fields are refused so a typo never goes unnoticed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `pack.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackMeta {
    pub name: String,
    pub framework: String,
    /// The pack's own version, bumped when its controls change.
    pub version: u32,
    /// The input document version the pack's Rego reads (see [`crate::INPUT_SCHEMA_VERSION`]).
    pub input_schema: u32,
    pub title_vi: String,
    pub title_en: String,
}

/// `controls/<id>.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlMeta {
    /// Lowercase letters, digits and `-`; the file stem and (with `_`) the Rego package.
    pub id: String,
    pub title_vi: String,
    pub title_en: String,
    /// The framework clause cited in reports, e.g. a TCVN section.
    pub clause: String,
    /// `management/<7.1.x area>` or `technical/network|server|application|data`.
    pub group: String,
    /// Security levels (1–5) the control applies to.
    pub levels: Vec<u8>,
    /// Per-level parameters: name -> level -> value.
    #[serde(default)]
    pub params: BTreeMap<String, BTreeMap<u8, serde_json::Value>>,
    pub severity: Severity,
    pub kind: Kind,
    /// Agent collectors whose output (`input.host.facts.security.<name>`) the Rego reads.
    #[serde(default)]
    pub facts: Vec<String>,
    /// How sure the requirement is, in the REGULATIONS.md notation.
    pub source: String,
    /// Cross-references to other frameworks, e.g. `iso27001: "A.9.4.2"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mapping: BTreeMap<String, String>,
    pub remediation: Remediation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// Where the control's verdict comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Judged from the agent's facts.
    Host,
    /// Judged from vCenter/OpenStack/backup state.
    Platform,
    /// A document a person uploads.
    Evidence,
    /// Satisfied by a drill report.
    Drill,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remediation {
    /// May run unattended in enforce mode; a task marked unsafe never runs by itself.
    pub safe: bool,
    pub text_vi: String,
    pub text_en: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// An Ansible task list (the `tasks:` of a play, as data): the controller runs it on the
    /// failing host through its playbook runner, in check mode for a dry run. At most one of
    /// `task` and `ansible`; the controller checks the tasks against what its runner supports
    /// when it loads the pack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ansible: Option<Vec<serde_json::Value>>,
}

impl Remediation {
    /// What is wrong with the remediation's shape, if anything (both kinds given, an empty or
    /// non-mapping task list).
    pub fn problem(&self) -> Option<String> {
        match (&self.task, &self.ansible) {
            (Some(_), Some(_)) => Some("remediation: give either `task` or `ansible`, not both".into()),
            (_, Some(tasks)) if tasks.is_empty() => Some("remediation: `ansible` is an empty task list".into()),
            (_, Some(tasks)) => tasks
                .iter()
                .position(|t| !t.is_object())
                .map(|i| format!("remediation: `ansible` task {} is not a mapping", i + 1)),
            _ => None,
        }
    }
}

/// A command the agent runs; no shell is involved unless `program` is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
}

impl ControlMeta {
    /// The Rego package the control's `.rego` must declare, without the `data.` prefix.
    pub fn package(&self) -> String {
        package_for(&self.id)
    }

    /// Whether the control applies to a system at `level`.
    pub fn applies_at(&self, level: u8) -> bool {
        self.levels.contains(&level)
    }
}

/// `mangrove.controls.<id with - replaced by _>`.
pub fn package_for(id: &str) -> String {
    format!("mangrove.controls.{}", id.replace('-', "_"))
}

/// Whether `id` is made only of lowercase ASCII letters, digits and `-`, not starting or ending with `-`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && !id.ends_with('-')
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The agent's security collectors a control may name in `facts` (the protocol's list).
pub const COLLECTORS: &[&str] = proto::SECURITY_COLLECTORS;
