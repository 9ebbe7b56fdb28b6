//! The playbook runner: a loaded [`Playbook`] executed as `ansible-playbook` executes it with
//! its default `linear` strategy, over module calls it hands to a [`Modules`] implementation
//! (the controller sends them to agents; tests use an in-memory one). Pure: no IO, no clock,
//! no environment; the only effects are the module calls and the output lines it emits.
//!
//! What it does, as Ansible does it: plays in order, hosts of a play in parallel task by
//! task (each task runs on every host before the next; a host that fails drops out, and out
//! of later plays); variables with Ansible's precedence (see [`vars`]); `when`, `loop`/
//! `with_items`/`with_dict`/`with_list` with `loop_control`, `register`, `failed_when`,
//! `changed_when`, `ignore_errors`, `notify`/`listen` with handlers flushed after
//! `pre_tasks`, after roles and tasks, and after `post_tasks`; `block`/`rescue`/`always`;
//! tags; check and diff mode; `become_user` passed to the module call; `debug`, `set_fact`,
//! `assert` and `fail` evaluated here. The output is the default callback's, and the recap
//! counts follow Ansible's (a changed task counts in `ok` too; a failure under a `rescue`
//! counts as `rescued`, not `failed`; an ignored failure counts `ok` and `ignored`).
//!
//! Exit code as `ansible-playbook`'s: 0, 2 when a host failed, 4 when a host was unreachable.

mod exec;
pub mod facts;
mod filters;
mod host_task;
pub mod jinja;
mod local;
mod output;
pub mod pyfmt;
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;
pub mod vars;
mod yaml_out;

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use crate::model::AnsibleInventory;
use crate::playbook::{Files, Playbook};

pub use filters::compare_versions;

/// One module call for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleCall {
    /// Short name (`file`, `copy`, ...); `template` arrives here as `copy` with `content`.
    pub module: String,
    /// The arguments, templated, `omit` removed.
    pub args: Json,
    pub check: bool,
    pub diff: bool,
    /// Ansible's `become_user` when `become` is on; `None` runs as the agent's user (root).
    pub become_user: Option<String>,
}

/// What came back from a module call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallResult {
    /// The module's result, with Ansible's keys (`changed`, `failed`, `msg`, ...).
    Done(Json),
    /// The host could not be reached; the reason.
    Unreachable(String),
}

/// Runs modules on hosts. Called from several threads at once (one per host of a task).
pub trait Modules: Sync {
    /// Whether the host can run modules at all (`Err` says why not): asked when a play
    /// gathers facts, so an unreachable host is reported there as Ansible does.
    fn reachable(&self, host: &str) -> Result<(), String>;
    /// Runs one module call on `host` and waits for its result.
    fn call(&self, host: &str, call: &ModuleCall) -> CallResult;
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub check: bool,
    pub diff: bool,
    /// `-l`: a host pattern that narrows every play's hosts.
    pub limit: Option<String>,
    /// `-e`: always win.
    pub extra_vars: crate::Vars,
    pub only_tags: Vec<String>,
    pub skip_tags: Vec<String>,
}

/// What a run needs besides the module runner.
pub struct Input<'a> {
    pub playbook: &'a Playbook,
    pub inventory: &'a AnsibleInventory,
    /// Each host's `ansible_facts` ([`facts::from_agent`]); a host without is given none.
    pub facts: &'a BTreeMap<String, Json>,
    /// Where `template` sources and `copy` sources are read from.
    pub files: &'a (dyn Files + Sync),
    pub options: Options,
}

/// One host's recap counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
}

impl Stats {
    pub fn to_json(&self) -> Json {
        json!({"ok": self.ok, "changed": self.changed, "unreachable": self.unreachable, "failed": self.failed,
               "skipped": self.skipped, "rescued": self.rescued, "ignored": self.ignored})
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Per play: `{name, hosts, tasks: [{task, at, handler, hosts: {host: {status, result}}}]}`.
    pub plays: Vec<Json>,
    /// Per host, every host any play targeted.
    pub stats: BTreeMap<String, Stats>,
    /// 0, 2 (a host failed) or 4 (a host was unreachable).
    pub exit_code: i32,
}

impl Report {
    /// The `--json` summary: `{plays, stats: {host: {ok, changed, ...}}, exit_code}`.
    pub fn to_json(&self) -> Json {
        json!({
            "plays": self.plays,
            "stats": self.stats.iter().map(|(h, s)| (h.clone(), s.to_json())).collect::<serde_json::Map<_, _>>(),
            "exit_code": self.exit_code,
        })
    }
}

/// Runs the playbook. `out` receives the output, one line at a time, as the default callback
/// prints it (no trailing newline on each line).
pub fn run(input: &Input<'_>, modules: &dyn Modules, out: &mut dyn FnMut(&str)) -> Report {
    exec::Runner::new(input, modules, out).run()
}
