//! Ansible modules, run by the agent: one module call in, one Ansible-shaped result out.
//!
//! [`run_module`] takes a module name (`file` or `ansible.builtin.file`), its arguments as
//! JSON and the run options (check mode, diff mode), and returns a [`ModuleResult`] that
//! serialises with Ansible's own keys (`changed`, `failed`, `msg`, `rc`, `stdout`, `diff`, ...
//! plus each module's documented return values), so a playbook runner on the controller can
//! treat it as Ansible would.
//!
//! Guarantees: every module is idempotent (a second run with the same arguments reports
//! `changed: false`); in check mode nothing on the host changes and `changed` is what a real
//! run would report; file contents are written atomically (a temporary file in the same
//! directory, renamed over the old one), keeping the old file's owner and mode unless the
//! arguments set them. Arguments are validated as Ansible does: an unknown one fails the call
//! with "Unsupported parameters for (module) module: x". Controller-side modules (`debug`,
//! `set_fact`, `assert`, `fail`) are not here: the runner evaluates them.
//!
//! Differences from Ansible, on purpose: regular expressions are Rust's `regex` syntax (no
//! look-around, no back-references inside the pattern); `copy`'s `src` names a file on this
//! host (the controller sends a controller-side file as `content`).

mod args;
mod command;
mod files;
mod fsutil;
mod lines;
mod system;
#[cfg(test)]
mod tests;

use serde::Serialize;
use serde_json::{Map, Value};

pub use args::Args;

/// How one module call runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Report what would change, change nothing.
    pub check: bool,
    /// Return a `diff` (before/after) for what changes.
    pub diff: bool,
    /// Run as this user (Ansible's `become_user`, with the agent as root): `command` and
    /// `shell` run their program as that user; the other modules refuse any user but root.
    pub become_user: Option<String>,
}

/// One side of a change, as Ansible's `diff` result key holds it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Diff {
    #[serde(skip_serializing_if = "Value::is_null")]
    pub before: Value,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub after: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_header: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_header: Option<String>,
}

impl Diff {
    /// A content diff of two texts, both sides under one header (the file's path).
    pub fn text(before: &str, after: &str, header: &str) -> Diff {
        Diff {
            before: Value::String(before.to_string()),
            after: Value::String(after.to_string()),
            before_header: Some(header.to_string()),
            after_header: Some(header.to_string()),
        }
    }

    /// The unified diff of a text diff (empty when the sides are not both text), as
    /// `ansible-playbook --diff` shows it. For the agent's log and tests; the controller renders
    /// the diffs it receives itself.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn unified(&self) -> String {
        let (Some(before), Some(after)) = (self.before.as_str(), self.after.as_str()) else {
            return String::new();
        };
        let before_header = self.before_header.as_deref().unwrap_or("before");
        let after_header = self.after_header.as_deref().unwrap_or("after");
        similar::TextDiff::from_lines(before, after)
            .unified_diff()
            .context_radius(3)
            .header(&format!("before: {before_header}"), &format!("after: {after_header}"))
            .to_string()
    }
}

/// The result of one module call, with Ansible's result keys.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModuleResult {
    pub changed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    /// One diff, or several (`lineinfile` reports content and attributes separately).
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "one_or_many")]
    pub diff: Vec<Diff>,
    /// The module's own return values (`rc`, `stdout`, `stat`, `path`, `mode`, ...).
    #[serde(flatten)]
    pub values: Map<String, Value>,
}

fn one_or_many<S: serde::Serializer>(diffs: &[Diff], s: S) -> Result<S::Ok, S::Error> {
    if diffs.len() == 1 { diffs[0].serialize(s) } else { diffs.serialize(s) }
}

impl ModuleResult {
    pub fn ok(changed: bool) -> ModuleResult {
        ModuleResult { changed, ..Default::default() }
    }

    pub fn fail(msg: impl Into<String>) -> ModuleResult {
        ModuleResult { failed: true, msg: Some(msg.into()), ..Default::default() }
    }

    pub fn msg(mut self, msg: impl Into<String>) -> ModuleResult {
        self.msg = Some(msg.into());
        self
    }

    pub fn set(mut self, key: &str, value: impl Into<Value>) -> ModuleResult {
        self.values.insert(key.to_string(), value.into());
        self
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|e| serde_json::json!({"failed": true, "msg": e.to_string()}))
    }
}

/// The modules this agent runs, by short name.
#[cfg_attr(not(test), allow(dead_code))]
pub const MODULES: &[&str] = &[
    "command",
    "shell",
    "copy",
    "file",
    "lineinfile",
    "blockinfile",
    "replace",
    "stat",
    "user",
    "group",
    "sysctl",
    "service",
    "systemd",
    "systemd_service",
    "package",
    "apt",
    "wait_for",
];

/// Runs one module call. Never panics on bad input: a bad call is a failed result.
pub fn run_module(name: &str, args: &Value, opts: &RunOptions) -> ModuleResult {
    let short = ["ansible.builtin.", "ansible.legacy.", "ansible.posix."]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    let Some(map) = args.as_object().cloned().or_else(|| args.is_null().then(Map::new)) else {
        return ModuleResult::fail(format!("the arguments of module {name} must be a mapping"));
    };
    let args = Args::new(short, map);
    if let Some(user) = opts.become_user.as_deref().filter(|u| !u.is_empty() && *u != "root")
        && !matches!(short, "command" | "shell")
    {
        return ModuleResult::fail(format!(
            "become_user {user} is supported by the command and shell modules only; run {name} as root"
        ));
    }
    let run = match short {
        "command" => command::command,
        "shell" => command::shell,
        "copy" => files::copy,
        "file" => files::file,
        "stat" => files::stat,
        "lineinfile" => lines::lineinfile,
        "blockinfile" => lines::blockinfile,
        "replace" => lines::replace,
        "user" => system::user,
        "group" => system::group,
        "sysctl" => system::sysctl,
        "service" | "systemd" | "systemd_service" => system::service,
        "package" | "apt" => system::apt,
        "wait_for" => system::wait_for,
        "debug" | "set_fact" | "assert" | "fail" => {
            return ModuleResult::fail(format!("module {name} runs on the controller, not on an agent"));
        }
        _ => return ModuleResult::fail(format!("The module {name} was not found in configured module paths")),
    };
    match run(args, opts) {
        Ok(r) => r,
        Err(e) => e.into_result(),
    }
}

/// Why a module call failed: its message and any return values that go with it.
#[derive(Debug)]
pub struct Failure {
    pub msg: String,
    pub values: Map<String, Value>,
}

impl Failure {
    pub fn new(msg: impl Into<String>) -> Failure {
        Failure { msg: msg.into(), values: Map::new() }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Failure {
        self.values.insert(key.to_string(), value.into());
        self
    }

    fn into_result(self) -> ModuleResult {
        ModuleResult { failed: true, msg: Some(self.msg), values: self.values, ..Default::default() }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::new(e.to_string())
    }
}

pub type ModResult = Result<ModuleResult, Failure>;
