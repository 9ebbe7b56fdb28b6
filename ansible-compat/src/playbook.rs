//! Playbooks and roles, loaded and checked against what Mangrove's runner supports
//! ([`crate::supported`]) before anything runs.
//!
//! [`load`] reads a playbook and everything it pulls in — `vars_files`, roles (tasks,
//! handlers, defaults, vars, templates, meta dependencies), `include_tasks`/`import_tasks`,
//! `include_role`/`import_role` — through a [`Files`] source, and checks every module,
//! every play, task and block keyword, and every Jinja filter, test, function, lookup and
//! statement in any string, condition and template. It returns the loaded model, or every
//! problem found, each `file:line: what`, so the whole run can be refused before a host is
//! touched.
//!
//! Pure: all file access goes through [`Files`]; [`crate::loader::Disk`] reads the disk.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::jinja_scan::{self, Kind};
use crate::model::{Loc, Vars};
use crate::supported as sup;
use crate::yamlpos::{self, Node, Value};
use crate::{Problem, Problems};

/// Where playbook files come from.
pub trait Files {
    /// The text of the file at `path`: `None` when there is no such file, `Some(Err)` when
    /// it exists but cannot be read.
    fn read(&self, path: &str) -> Option<Result<String, String>>;
    /// The files directly or indirectly under the directory `dir` (paths joined to it).
    fn list(&self, dir: &str) -> Vec<String>;
}

/// In-memory files, for tests: path → text.
impl Files for BTreeMap<String, String> {
    fn read(&self, path: &str) -> Option<Result<String, String>> {
        self.get(&normalize(path)).cloned().map(Ok)
    }

    fn list(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{}/", normalize(dir));
        self.keys().filter(|k| k.starts_with(&prefix)).cloned().collect()
    }
}

/// A loaded playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    pub file: String,
    pub plays: Vec<Play>,
    /// `group_vars/` next to the playbook: group → variables (files of a directory merged in
    /// name order).
    pub group_vars: BTreeMap<String, Vars>,
    /// `host_vars/` next to the playbook: host → variables.
    pub host_vars: BTreeMap<String, Vars>,
}

/// One play.
#[derive(Debug, Clone, PartialEq)]
pub struct Play {
    pub loc: Loc,
    pub name: Option<String>,
    /// The host pattern.
    pub hosts: String,
    pub vars: Vars,
    /// Each `vars_files` entry, read.
    pub vars_files: Vec<(String, Vars)>,
    pub roles: Vec<Role>,
    pub pre_tasks: Vec<Task>,
    pub tasks: Vec<Task>,
    pub post_tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    pub tags: Vec<String>,
    /// Other supported play keywords (`become`, `gather_facts`, …) as written.
    pub keywords: Vars,
}

/// A role, with its dependencies loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub name: String,
    pub dir: String,
    /// Variables given where the role is used (`vars:` and old-style parameters).
    pub params: Vars,
    pub tags: Vec<String>,
    /// `when`, `become`, `become_user` given where the role is used.
    pub keywords: Vars,
    pub tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    pub defaults: Vars,
    pub vars: Vars,
    pub dependencies: Vec<Role>,
    /// Template files (paths under `templates/`), checked.
    pub templates: Vec<String>,
}

/// What a task does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A module, by short name, with its arguments (a free-form string for command/shell
    /// is `{"_raw_params": "..."}`).
    Module {
        module: String,
        args: Json,
    },
    Block {
        block: Vec<Task>,
        rescue: Vec<Task>,
        always: Vec<Task>,
    },
    /// `include_tasks` (dynamic) or `import_tasks` (static), with the tasks of the file.
    IncludeTasks {
        file: String,
        dynamic: bool,
        tasks: Vec<Task>,
    },
    /// `include_role` or `import_role`.
    IncludeRole {
        role: Box<Role>,
        dynamic: bool,
    },
}

/// One task (or handler, or block).
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub loc: Loc,
    pub name: Option<String>,
    pub action: Action,
    pub tags: Vec<String>,
    /// The other keywords as written (`when`, `loop`, `register`, `notify`, …).
    pub keywords: Vars,
}

/// Loads and checks the playbook at `path`.
///
/// # Errors
/// Every unsupported construct and every problem in any file, each `file:line: what`.
pub fn load(path: &str, files: &dyn Files) -> Result<Playbook, Problems> {
    let mut l = Loader { files, problems: Vec::new(), stack: Vec::new(), base: dir_of(path) };
    let plays = l.playbook(path);
    let group_vars = l.vars_dir("group_vars");
    let host_vars = l.vars_dir("host_vars");
    if l.problems.is_empty() {
        Ok(Playbook { file: path.to_owned(), plays, group_vars, host_vars })
    } else {
        Err(Problems(l.problems))
    }
}

/// Checks the templates in variables given outside any file (`-e` extra vars): every string,
/// at any depth, as [`load`] checks a playbook's strings. `origin` names them in problems.
///
/// # Errors
/// Every unsupported Jinja construct, as `origin:1: what`.
pub fn check_vars(origin: &str, vars: &Vars) -> Result<(), Problems> {
    fn strings<'a>(v: &'a Json, out: &mut Vec<&'a str>) {
        match v {
            Json::String(s) => out.push(s),
            Json::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Json::Object(m) => m.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    let empty: BTreeMap<String, String> = BTreeMap::new();
    let mut l = Loader { files: &empty, problems: Vec::new(), stack: Vec::new(), base: ".".into() };
    let mut all = Vec::new();
    for v in vars.values() {
        strings(v, &mut all);
    }
    for s in all {
        l.check_template(origin, 1, s);
    }
    if l.problems.is_empty() { Ok(()) } else { Err(Problems(l.problems)) }
}

struct Loader<'f> {
    files: &'f dyn Files,
    problems: Vec<Problem>,
    /// Files being loaded (include and role cycles).
    stack: Vec<String>,
    /// The playbook's directory.
    base: String,
}

fn dir_of(path: &str) -> String {
    match path.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => path[..i].to_owned(),
        None => ".".into(),
    }
}

fn join(dir: &str, rel: &str) -> String {
    if rel.starts_with('/') { normalize(rel) } else { normalize(&format!("{dir}/{rel}")) }
}

/// `a/./b/../c` → `a/c` (textually).
fn normalize(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if abs {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

fn str_list(n: &Node) -> Vec<String> {
    match &n.value {
        Value::Str(s) => s.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect(),
        Value::Seq(items) => items.iter().map(Node::key_text).collect(),
        Value::Null => Vec::new(),
        _ => vec![n.key_text()],
    }
}

/// Condition keywords: their strings are bare Jinja expressions.
const CONDITIONS: &[&str] = &["when", "failed_when", "changed_when", "until"];

impl Loader<'_> {
    fn problem(&mut self, file: &str, line: usize, msg: impl Into<String>) {
        self.problems.push(Problem::new(file, line, msg));
    }

    /// Reads and parses one YAML file; `None` after reporting a problem at `from`.
    fn yaml(&mut self, path: &str, from: (&str, usize), what: &str) -> Option<Node> {
        let text = match self.files.read(path) {
            None => {
                self.problem(from.0, from.1, format!("{what} {path} not found"));
                return None;
            }
            Some(Err(e)) => {
                self.problem(from.0, from.1, format!("cannot read {what} {path}: {e}"));
                return None;
            }
            Some(Ok(t)) => t,
        };
        match yamlpos::parse(&text, path) {
            Ok(docs) => {
                Some(docs.into_iter().next().unwrap_or(Node { line: 1, value: Value::Null, unsafe_text: false }))
            }
            Err(p) => {
                self.problems.push(p);
                None
            }
        }
    }

    fn enter(&mut self, path: &str, from: (&str, usize)) -> bool {
        if self.stack.iter().any(|p| p == path) {
            self.problem(from.0, from.1, format!("{path} includes itself (through {})", self.stack.join(" → ")));
            return false;
        }
        if self.stack.len() > 30 {
            self.problem(from.0, from.1, "includes and role dependencies nested more than 30 deep");
            return false;
        }
        self.stack.push(path.to_owned());
        true
    }

    /// `group_vars/` or `host_vars/` next to the playbook, read and their templates checked.
    fn vars_dir(&mut self, kind: &str) -> BTreeMap<String, Vars> {
        let dir = join(&self.base, kind);
        let mut out: BTreeMap<String, Vars> = BTreeMap::new();
        for path in self.files.list(&dir) {
            let Some((_, name)) = crate::vars_dirs::classify(&path) else { continue };
            if let Some(doc) = self.yaml(&path, (&path, 1), "vars file") {
                let vars = self.vars_map(&path, &doc, "a vars file");
                out.entry(name).or_default().extend(vars);
            }
        }
        out
    }

    fn playbook(&mut self, path: &str) -> Vec<Play> {
        let Some(root) = self.yaml(path, (path, 1), "playbook") else { return Vec::new() };
        let Some(items) = root.as_seq() else {
            self.problem(path, root.line, format!("a playbook must be a list of plays, found {}", root.describe()));
            return Vec::new();
        };
        self.stack.push(path.to_owned());
        let plays = items.iter().filter_map(|p| self.play(path, p)).collect();
        self.stack.pop();
        plays
    }

    fn play(&mut self, file: &str, n: &Node) -> Option<Play> {
        let Some(map) = n.as_map() else {
            self.problem(file, n.line, format!("a play must be a mapping, found {}", n.describe()));
            return None;
        };
        let mut play = Play {
            loc: Loc::new(file, n.line),
            name: None,
            hosts: String::new(),
            vars: Vars::new(),
            vars_files: Vec::new(),
            roles: Vec::new(),
            pre_tasks: Vec::new(),
            tasks: Vec::new(),
            post_tasks: Vec::new(),
            handlers: Vec::new(),
            tags: Vec::new(),
            keywords: Vars::new(),
        };
        let mut has_hosts = false;
        for (k, v) in map {
            let key = k.key_text();
            match key.as_str() {
                "import_playbook" | "include_playbook" => {
                    self.problem(file, k.line, format!("{key} is not supported: run each playbook on its own"));
                }
                "name" => {
                    play.name = v.as_str().map(str::to_owned);
                    self.scan_strings(file, v);
                }
                "hosts" => {
                    has_hosts = true;
                    play.hosts = match &v.value {
                        Value::Seq(items) => items.iter().map(Node::key_text).collect::<Vec<_>>().join(":"),
                        _ => v.key_text(),
                    };
                    self.scan_strings(file, v);
                    if let Err(e) = crate::patterns::check_syntax(&play.hosts) {
                        self.problem(file, v.line, e);
                    }
                }
                "vars" => play.vars = self.vars_map(file, v, "play vars"),
                "vars_files" => {
                    for entry in v.as_seq().map(<[Node]>::to_vec).unwrap_or_else(|| vec![v.clone()]) {
                        let Some(rel) = entry.as_str() else {
                            self.problem(
                                file,
                                entry.line,
                                "a vars_files entry must be a file name (lists of alternatives are not supported)",
                            );
                            continue;
                        };
                        if rel.contains("{{") {
                            self.problem(file, entry.line, format!("vars_files entry {rel} is templated; it cannot be checked before the run, so it is not supported"));
                            continue;
                        }
                        let path = join(&dir_of(file), rel);
                        if let Some(doc) = self.yaml(&path, (file, entry.line), "vars file") {
                            let vars = self.vars_map(&path, &doc, "vars file");
                            play.vars_files.push((path, vars));
                        }
                    }
                }
                "roles" => {
                    for entry in v.as_seq().unwrap_or_default() {
                        if let Some(r) = self.role_entry(file, entry) {
                            play.roles.push(r);
                        }
                    }
                    if v.as_seq().is_none() && !v.is_null() {
                        self.problem(file, v.line, "roles must be a list");
                    }
                }
                "pre_tasks" => play.pre_tasks = self.task_list(file, v, &self.base.clone(), false),
                "tasks" => play.tasks = self.task_list(file, v, &self.base.clone(), false),
                "post_tasks" => play.post_tasks = self.task_list(file, v, &self.base.clone(), false),
                "handlers" => play.handlers = self.task_list(file, v, &self.base.clone(), true),
                "tags" => {
                    play.tags = str_list(v);
                    self.scan_strings(file, v);
                }
                k2 if sup::PLAY_KEYWORDS.contains(&k2) => {
                    self.scan_strings(file, v);
                    play.keywords.insert(key.clone(), v.to_json());
                }
                _ => self.problem(
                    file,
                    k.line,
                    format!("play keyword {key} is not supported (supported: {})", sup::list(sup::PLAY_KEYWORDS)),
                ),
            }
        }
        if !has_hosts {
            self.problem(file, n.line, "a play needs hosts");
        }
        self.check_notify(&play);
        Some(play)
    }

    fn vars_map(&mut self, file: &str, v: &Node, what: &str) -> Vars {
        if v.is_null() {
            return Vars::new();
        }
        let Some(m) = v.as_map() else {
            self.problem(file, v.line, format!("{what} must be a mapping, found {}", v.describe()));
            return Vars::new();
        };
        self.scan_strings(file, v);
        m.iter().map(|(k, v)| (k.key_text(), v.to_json())).collect()
    }

    /// Checks every string in `n` as a template.
    fn scan_strings(&mut self, file: &str, n: &Node) {
        let mut strings = Vec::new();
        n.strings(&mut strings);
        for (line, s) in strings {
            self.check_template(file, line, &s);
        }
    }

    fn check_template(&mut self, file: &str, line: usize, text: &str) {
        if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
            return;
        }
        match jinja_scan::scan_template(text) {
            Ok(uses) => self.check_uses(file, line, &uses),
            Err((off, msg)) => self.problem(file, line + off, format!("template error: {msg}")),
        }
    }

    fn check_expression(&mut self, file: &str, n: &Node) {
        let mut strings = Vec::new();
        n.strings(&mut strings);
        for (line, s) in strings {
            let uses = jinja_scan::scan_expression(&s);
            self.check_uses(file, line, &uses);
        }
    }

    fn check_uses(&mut self, file: &str, line: usize, uses: &[jinja_scan::Use]) {
        for u in uses {
            let short = u.name.strip_prefix("ansible.builtin.").unwrap_or(&u.name);
            let (ok, list) = match u.kind {
                Kind::Filter => (sup::FILTERS.contains(&short), sup::FILTERS),
                Kind::Test => (sup::TESTS.contains(&short), sup::TESTS),
                Kind::Function => (sup::FUNCTIONS.contains(&short), sup::FUNCTIONS),
                Kind::Lookup => (sup::LOOKUPS.contains(&short), sup::LOOKUPS),
                Kind::Statement => (sup::STATEMENTS.contains(&short), sup::STATEMENTS),
            };
            if !ok {
                self.problem(
                    file,
                    line + u.line_offset,
                    format!("{} {} is not supported (supported: {})", u.kind.as_str(), u.name, sup::list(list)),
                );
            }
        }
    }

    fn task_list(&mut self, file: &str, v: &Node, dir: &str, handlers: bool) -> Vec<Task> {
        if v.is_null() {
            return Vec::new();
        }
        let Some(items) = v.as_seq() else {
            self.problem(file, v.line, format!("a task list must be a list, found {}", v.describe()));
            return Vec::new();
        };
        items.iter().filter_map(|t| self.task(file, t, dir, handlers)).collect()
    }

    fn task(&mut self, file: &str, n: &Node, dir: &str, handler: bool) -> Option<Task> {
        let Some(map) = n.as_map() else {
            self.problem(file, n.line, format!("a task must be a mapping, found {}", n.describe()));
            return None;
        };
        let is_block = map.iter().any(|(k, _)| matches!(k.as_str(), Some("block")));
        let mut task = Task {
            loc: Loc::new(file, n.line),
            name: None,
            action: Action::Block { block: vec![], rescue: vec![], always: vec![] },
            tags: vec![],
            keywords: Vars::new(),
        };
        let mut actions: Vec<(&Node, &Node)> = Vec::new();
        let mut args_kw: Option<&Node> = None;
        let mut parts: [Vec<Task>; 3] = Default::default();
        let before = self.problems.len();
        for (k, v) in map {
            let key = k.key_text();
            let supported_kw = if is_block {
                sup::BLOCK_KEYWORDS.contains(&key.as_str())
            } else {
                sup::TASK_KEYWORDS.contains(&key.as_str()) || (handler && sup::HANDLER_KEYWORDS.contains(&key.as_str()))
            };
            match key.as_str() {
                "block" | "rescue" | "always" if is_block => {
                    let i = match key.as_str() {
                        "block" => 0,
                        "rescue" => 1,
                        _ => 2,
                    };
                    parts[i] = self.task_list(file, v, dir, handler);
                }
                "rescue" | "always" => self.problem(file, k.line, format!("{key} without block")),
                "name" => {
                    task.name = v.as_str().map(str::to_owned);
                    self.scan_strings(file, v);
                }
                "tags" => {
                    task.tags = str_list(v);
                    self.scan_strings(file, v);
                }
                "args" => args_kw = Some(v),
                "loop_control" => {
                    if let Some(m) = v.as_map() {
                        for (lk, _) in m {
                            let lkey = lk.key_text();
                            if !sup::LOOP_CONTROL_KEYS.contains(&lkey.as_str()) {
                                self.problem(
                                    file,
                                    lk.line,
                                    format!(
                                        "loop_control key {lkey} is not supported (supported: {})",
                                        sup::list(sup::LOOP_CONTROL_KEYS)
                                    ),
                                );
                            }
                        }
                    } else {
                        self.problem(file, v.line, "loop_control must be a mapping");
                    }
                    self.scan_strings(file, v);
                    task.keywords.insert(key.clone(), v.to_json());
                }
                kw if CONDITIONS.contains(&kw) && supported_kw => {
                    self.check_expression(file, v);
                    task.keywords.insert(key.clone(), v.to_json());
                }
                _ if supported_kw => {
                    self.scan_strings(file, v);
                    task.keywords.insert(key.clone(), v.to_json());
                }
                kw if kw.starts_with("with_") => self.problem(
                    file,
                    k.line,
                    format!("loop keyword {kw} is not supported (supported: loop, with_items, with_dict, with_list)"),
                ),
                kw if sup::ANSIBLE_TASK_KEYWORDS.contains(&kw) => {
                    let list = if is_block { sup::BLOCK_KEYWORDS } else { sup::TASK_KEYWORDS };
                    let what = if is_block {
                        "block"
                    } else if handler {
                        "handler"
                    } else {
                        "task"
                    };
                    self.problem(
                        file,
                        k.line,
                        format!("{what} keyword {kw} is not supported (supported: {})", sup::list(list)),
                    );
                }
                _ if is_block => {
                    self.problem(file, k.line, format!("a block cannot have {key} (a module or unknown keyword)"))
                }
                _ => actions.push((k, v)),
            }
        }
        if is_block {
            let [block, rescue, always] = parts;
            task.action = Action::Block { block, rescue, always };
            return (self.problems.len() == before).then_some(task);
        }
        let (k, v) = match actions.as_slice() {
            [one] => *one,
            [] => {
                self.problem(file, n.line, "a task needs a module (none found)");
                return None;
            }
            many => {
                let names: Vec<String> = many.iter().map(|(k, _)| k.key_text()).collect();
                self.problem(file, many[1].0.line, format!("a task has one module, found {}", names.join(", ")));
                return None;
            }
        };
        let written = k.key_text();
        let Some(action) = sup::canonical_action(&written) else {
            self.problem(
                file,
                k.line,
                format!("module {written} is not supported (supported: {})", sup::list(sup::MODULES)),
            );
            return None;
        };
        task.action = match action {
            "include_tasks" | "import_tasks" => {
                let rel = match (&v.value, v.get("file")) {
                    (Value::Str(s), _) => Some(s.clone()),
                    (Value::Map(_), Some(f)) => f.as_str().map(str::to_owned),
                    _ => None,
                };
                if let Some(m) = v.as_map() {
                    for (ik, _) in m {
                        if ik.as_str() != Some("file") {
                            self.problem(
                                file,
                                ik.line,
                                format!("{action} option {} is not supported (supported: file)", ik.key_text()),
                            );
                        }
                    }
                }
                let Some(rel) = rel else {
                    self.problem(file, v.line, format!("{action} needs a file name"));
                    return None;
                };
                if rel.contains("{{") {
                    self.problem(file, v.line, format!("{action} {rel}: a templated file name cannot be checked before the run, so it is not supported"));
                    return None;
                }
                let path = self.find_tasks_file(dir, &rel);
                let tasks = self.tasks_file(&path, (file, k.line), dir, handler);
                Action::IncludeTasks { file: path, dynamic: action == "include_tasks", tasks }
            }
            "include_role" | "import_role" => {
                let Some(m) = v.as_map() else {
                    self.problem(file, v.line, format!("{action} needs a mapping with name"));
                    return None;
                };
                for (ik, _) in m {
                    let ikey = ik.key_text();
                    if !sup::INCLUDE_ROLE_KEYS.contains(&ikey.as_str())
                        || ikey.ends_with("_from") && ikey != "tasks_from"
                    {
                        self.problem(
                            file,
                            ik.line,
                            format!("{action} option {ikey} is not supported (supported: name, tasks_from)"),
                        );
                    }
                }
                let Some(name) = v.get("name").and_then(Node::as_str) else {
                    self.problem(file, v.line, format!("{action} needs name"));
                    return None;
                };
                let tasks_from = v.get("tasks_from").and_then(Node::as_str).map(str::to_owned);
                let role = self.role(name, (file, k.line), Vars::new(), Vec::new(), tasks_from.as_deref())?;
                Action::IncludeRole { role: Box::new(role), dynamic: action == "include_role" }
            }
            module => {
                let mut args = match &v.value {
                    Value::Null => Json::Object(Default::default()),
                    Value::Map(_) => v.to_json(),
                    Value::Str(s) if sup::FREE_FORM_MODULES.contains(&module) => {
                        serde_json::json!({"_raw_params": s})
                    }
                    Value::Str(s) => match kv_args(s) {
                        Some(m) => Json::Object(m),
                        None => {
                            self.problem(
                                file,
                                v.line,
                                format!("module {module}: arguments must be a mapping or key=value pairs"),
                            );
                            return None;
                        }
                    },
                    _ => {
                        self.problem(
                            file,
                            v.line,
                            format!("module {module}: arguments must be a mapping, found {}", v.describe()),
                        );
                        return None;
                    }
                };
                self.scan_strings(file, v);
                if let Some(a) = args_kw {
                    self.scan_strings(file, a);
                    if let (Json::Object(dst), Json::Object(src)) = (&mut args, a.to_json()) {
                        dst.extend(src);
                    } else {
                        self.problem(file, a.line, "args must be a mapping");
                    }
                }
                if let (Some(options), Json::Object(given)) = (sup::module_options(module), &args) {
                    for key in given.keys() {
                        if !options.contains(&key.as_str()) {
                            let mut shown: Vec<&str> =
                                options.iter().copied().filter(|o| *o != "_raw_params").collect();
                            shown.sort_unstable();
                            let line = [Some(v), args_kw]
                                .into_iter()
                                .flatten()
                                .filter_map(Node::as_map)
                                .flatten()
                                .find(|(k, _)| k.as_str() == Some(key.as_str()))
                                .map_or(v.line, |(k, _)| k.line);
                            self.problem(
                                file,
                                line,
                                format!("module {module} has no option {key} (options: {})", shown.join(", ")),
                            );
                        }
                    }
                }
                if module == "assert"
                    && let Some(that) = v.get("that")
                {
                    self.check_expression(file, that);
                }
                if module == "template"
                    && let Some(src) = args.get("src").and_then(Json::as_str)
                {
                    self.check_template_file(src, dir, (file, v.line));
                }
                let remote = args.get("remote_src").is_some_and(|r| match r {
                    Json::Bool(b) => *b,
                    Json::String(t) => matches!(t.to_ascii_lowercase().as_str(), "yes" | "true" | "on" | "1" | "y"),
                    _ => true,
                });
                if module == "copy"
                    && !remote
                    && let Some(src) = args.get("src").and_then(Json::as_str)
                {
                    self.check_copy_src(src, dir, (file, v.line));
                }
                Action::Module { module: module.to_owned(), args }
            }
        };
        (self.problems.len() == before).then_some(task)
    }

    /// `include_tasks` paths: next to the including file's tasks dir, else the playbook's.
    fn find_tasks_file(&self, dir: &str, rel: &str) -> String {
        let first = join(dir, rel);
        if self.files.read(&first).is_some() {
            return first;
        }
        let second = join(&self.base, rel);
        if self.files.read(&second).is_some() { second } else { first }
    }

    fn tasks_file(&mut self, path: &str, from: (&str, usize), _dir: &str, handlers: bool) -> Vec<Task> {
        if !self.enter(path, from) {
            return Vec::new();
        }
        let tasks = match self.yaml(path, from, "tasks file") {
            Some(doc) => self.task_list(path, &doc, &dir_of(path), handlers),
            None => Vec::new(),
        };
        self.stack.pop();
        tasks
    }

    fn check_template_file(&mut self, src: &str, dir: &str, from: (&str, usize)) {
        if src.contains("{{") {
            return;
        }
        // Role tasks live in ROLE/tasks: templates in ROLE/templates; else next to the playbook.
        let mut candidates = Vec::new();
        if dir.ends_with("/tasks") || dir == "tasks" {
            candidates.push(join(&format!("{dir}/../templates"), src));
        }
        candidates.push(join(&format!("{}/templates", self.base), src));
        candidates.push(join(&self.base, src));
        let Some((path, text)) = candidates.iter().find_map(|p| self.files.read(p).map(|t| (p.clone(), t))) else {
            self.problem(from.0, from.1, format!("template {src} not found (looked in {})", candidates.join(", ")));
            return;
        };
        match text {
            Ok(t) => self.check_template_text(&path, &t),
            Err(e) => self.problem(from.0, from.1, format!("cannot read template {path}: {e}")),
        }
    }

    /// A `copy` source must exist where Ansible looks for it: the role's `files/`, the
    /// playbook's `files/`, or next to the playbook (a file or a directory).
    fn check_copy_src(&mut self, src: &str, dir: &str, from: (&str, usize)) {
        if src.contains("{{") {
            return;
        }
        let mut candidates = Vec::new();
        if dir.ends_with("/tasks") || dir == "tasks" {
            candidates.push(join(&format!("{dir}/../files"), src));
        }
        candidates.push(join(&format!("{}/files", self.base), src));
        candidates.push(join(&self.base, src));
        let found = candidates.iter().any(|p| self.files.read(p).is_some() || !self.files.list(p).is_empty());
        if !found {
            self.problem(from.0, from.1, format!("copy source {src} not found (looked in {})", candidates.join(", ")));
        }
    }

    fn check_template_text(&mut self, path: &str, text: &str) {
        match jinja_scan::scan_template(text) {
            Ok(uses) => self.check_uses(path, 1, &uses),
            Err((off, msg)) => self.problem(path, 1 + off, format!("template error: {msg}")),
        }
    }

    fn role_entry(&mut self, file: &str, n: &Node) -> Option<Role> {
        match &n.value {
            Value::Str(name) => self.role(name, (file, n.line), Vars::new(), Vec::new(), None),
            Value::Map(m) => {
                let mut name = None;
                let mut params = Vars::new();
                let mut keywords = Vars::new();
                let mut tags = Vec::new();
                for (k, v) in m {
                    let key = k.key_text();
                    match key.as_str() {
                        "role" | "name" => name = v.as_str().map(str::to_owned),
                        "vars" => params.extend(self.vars_map(file, v, "role vars")),
                        "tags" => tags = str_list(v),
                        "when" => {
                            self.check_expression(file, v);
                            keywords.insert(key.clone(), v.to_json());
                        }
                        k2 if sup::ROLE_ENTRY_KEYWORDS.contains(&k2) => {
                            self.scan_strings(file, v);
                            keywords.insert(key.clone(), v.to_json());
                        }
                        // Anything else is a role parameter (Ansible's old style).
                        _ => {
                            self.scan_strings(file, v);
                            params.insert(key.clone(), v.to_json());
                        }
                    }
                }
                let Some(name) = name else {
                    self.problem(file, n.line, "a role entry needs role (or name)");
                    return None;
                };
                let mut role = self.role(&name, (file, n.line), params, tags, None)?;
                role.keywords = keywords;
                Some(role)
            }
            _ => {
                self.problem(file, n.line, format!("a role entry must be a name or a mapping, found {}", n.describe()));
                None
            }
        }
    }

    /// The first of `DIR/main.yml`, `DIR/main.yaml`, `DIR/main` that exists.
    fn main_file(&self, dir: &str, stem: &str) -> Option<String> {
        ["yml", "yaml", ""]
            .iter()
            .map(|ext| if ext.is_empty() { format!("{dir}/{stem}") } else { format!("{dir}/{stem}.{ext}") })
            .find(|p| self.files.read(p).is_some())
    }

    fn role(
        &mut self,
        name: &str,
        from: (&str, usize),
        params: Vars,
        tags: Vec<String>,
        tasks_from: Option<&str>,
    ) -> Option<Role> {
        if name.contains("{{") {
            self.problem(
                from.0,
                from.1,
                format!("role {name}: a templated role name cannot be checked before the run, so it is not supported"),
            );
            return None;
        }
        let dir = if name.contains('/') {
            join(&self.base, name)
        } else if name.split('.').count() == 3 {
            self.problem(
                from.0,
                from.1,
                format!("role {name}: roles from collections are not supported (put the role under roles/)"),
            );
            return None;
        } else {
            join(&self.base, &format!("roles/{name}"))
        };
        if self.files.list(&dir).is_empty() {
            self.problem(from.0, from.1, format!("role {name} not found (looked for {dir}/)"));
            return None;
        }
        if !self.enter(&format!("role:{dir}"), from) {
            return None;
        }
        let role_name = dir.rsplit('/').next().unwrap_or(name).to_owned();
        let mut role = Role {
            name: role_name,
            dir: dir.clone(),
            params,
            tags,
            keywords: Vars::new(),
            tasks: vec![],
            handlers: vec![],
            defaults: Vars::new(),
            vars: Vars::new(),
            dependencies: vec![],
            templates: vec![],
        };
        // meta: dependencies first.
        if let Some(meta) = self.main_file(&format!("{dir}/meta"), "main")
            && let Some(doc) = self.yaml(&meta, from, "role meta file")
        {
            if let Some(m) = doc.as_map() {
                for (k, v) in m {
                    let key = k.key_text();
                    if !sup::ROLE_META_KEYS.contains(&key.as_str()) {
                        self.problem(
                            &meta,
                            k.line,
                            format!(
                                "role meta key {key} is not supported (supported: {})",
                                sup::list(sup::ROLE_META_KEYS)
                            ),
                        );
                    }
                    if key == "dependencies" {
                        for d in v.as_seq().unwrap_or_default() {
                            if let Some(dep) = self.role_entry(&meta, d) {
                                role.dependencies.push(dep);
                            }
                        }
                    }
                }
            } else if !doc.is_null() {
                self.problem(&meta, doc.line, "a role's meta file must be a mapping");
            }
        }
        for (sub, target) in [("defaults", 0), ("vars", 1)] {
            if let Some(f) = self.main_file(&format!("{dir}/{sub}"), "main")
                && let Some(doc) = self.yaml(&f, from, "role vars file")
            {
                let vars = self.vars_map(&f, &doc, "a role's vars file");
                if target == 0 {
                    role.defaults = vars;
                } else {
                    role.vars = vars;
                }
            }
        }
        let tasks_dir = format!("{dir}/tasks");
        let stem = tasks_from
            .map(|t| t.trim_end_matches(".yml").trim_end_matches(".yaml").to_owned())
            .unwrap_or_else(|| "main".into());
        match self.main_file(&tasks_dir, &stem) {
            Some(f) => role.tasks = self.tasks_file(&f, from, &tasks_dir, false),
            None if tasks_from.is_some() => {
                self.problem(from.0, from.1, format!("role {name}: tasks file {stem} not found in {tasks_dir}/"))
            }
            None => {}
        }
        if let Some(f) = self.main_file(&format!("{dir}/handlers"), "main") {
            role.handlers = self.tasks_file(&f, from, &format!("{dir}/handlers"), true);
        }
        for t in self.files.list(&format!("{dir}/templates")) {
            if let Some(Ok(text)) = self.files.read(&t) {
                self.check_template_text(&t, &text);
            }
            role.templates.push(t);
        }
        self.stack.pop();
        Some(role)
    }
}

impl Loader<'_> {
    /// Every `notify` names a handler of the play (its own or its roles'), by name or
    /// `listen`, possibly as `role : name`. Ansible fails such a task only once it changes
    /// something; here the run is refused before it starts.
    fn check_notify(&mut self, play: &Play) {
        let mut known: BTreeSet<String> = BTreeSet::new();
        let mut roles: BTreeSet<String> = BTreeSet::new();
        fn handler_names(tasks: &[Task], out: &mut BTreeSet<String>) {
            for t in tasks {
                if let Some(n) = &t.name {
                    out.insert(n.clone());
                }
                match t.keywords.get("listen") {
                    Some(Json::String(l)) => {
                        out.insert(l.clone());
                    }
                    Some(Json::Array(ls)) => out.extend(ls.iter().filter_map(|l| l.as_str().map(str::to_owned))),
                    _ => {}
                }
                if let Action::Block { block, rescue, always } = &t.action {
                    handler_names(block, out);
                    handler_names(rescue, out);
                    handler_names(always, out);
                }
                if let Action::IncludeTasks { tasks, .. } = &t.action {
                    handler_names(tasks, out);
                }
            }
        }
        fn role_handlers(r: &Role, known: &mut BTreeSet<String>, roles: &mut BTreeSet<String>) {
            roles.insert(r.name.clone());
            handler_names(&r.handlers, known);
            for d in &r.dependencies {
                role_handlers(d, known, roles);
            }
            for_roles_in(&r.tasks, &mut |inner| role_handlers(inner, known, roles));
        }
        fn for_roles_in(tasks: &[Task], f: &mut dyn FnMut(&Role)) {
            for t in tasks {
                match &t.action {
                    Action::IncludeRole { role, .. } => f(role),
                    Action::Block { block, rescue, always } => {
                        for_roles_in(block, f);
                        for_roles_in(rescue, f);
                        for_roles_in(always, f);
                    }
                    Action::IncludeTasks { tasks, .. } => for_roles_in(tasks, f),
                    Action::Module { .. } => {}
                }
            }
        }
        handler_names(&play.handlers, &mut known);
        for r in &play.roles {
            role_handlers(r, &mut known, &mut roles);
        }
        for list in [&play.pre_tasks, &play.tasks, &play.post_tasks, &play.handlers] {
            for_roles_in(list, &mut |r| role_handlers(r, &mut known, &mut roles));
        }
        let mut missing: Vec<(Loc, String)> = Vec::new();
        let mut check = |tasks: &[Task]| {
            fn walk(tasks: &[Task], f: &mut dyn FnMut(&Task)) {
                for t in tasks {
                    f(t);
                    match &t.action {
                        Action::Block { block, rescue, always } => {
                            walk(block, f);
                            walk(rescue, f);
                            walk(always, f);
                        }
                        Action::IncludeTasks { tasks, .. } => walk(tasks, f),
                        Action::IncludeRole { role, .. } => walk_role(role, f),
                        Action::Module { .. } => {}
                    }
                }
            }
            fn walk_role(r: &Role, f: &mut dyn FnMut(&Task)) {
                for d in &r.dependencies {
                    walk_role(d, f);
                }
                walk(&r.tasks, f);
                walk(&r.handlers, f);
            }
            let mut f = |t: &Task| {
                let names: Vec<String> = match t.keywords.get("notify") {
                    Some(Json::String(n)) => vec![n.clone()],
                    Some(Json::Array(ns)) => ns.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
                    _ => Vec::new(),
                };
                for n in names {
                    if n.contains("{{") || known.contains(&n) {
                        continue;
                    }
                    let by_role =
                        n.split_once(" : ").is_some_and(|(r, h)| roles.contains(r.trim()) && known.contains(h.trim()));
                    if !by_role {
                        missing.push((t.loc.clone(), n));
                    }
                }
            };
            walk(tasks, &mut f);
            for r in &play.roles {
                walk_role(r, &mut f);
            }
        };
        check(&[play.pre_tasks.clone(), play.tasks.clone(), play.post_tasks.clone(), play.handlers.clone()].concat());
        let listed: Vec<&str> = known.iter().map(String::as_str).collect();
        for (loc, n) in missing {
            self.problems.push(Problem::at(
                &loc,
                format!(
                    "handler {n} is notified but no handler has that name or listens to it (handlers: {})",
                    listed.join(", ")
                ),
            ));
        }
    }
}

/// `key=value key2="a b"` module arguments.
fn kv_args(s: &str) -> Option<Vars> {
    let words = crate::pylit::split_args(s).ok()?;
    let mut out = Vars::new();
    for w in words {
        let (k, v) = w.split_once('=')?;
        out.insert(k.to_owned(), Json::String(v.to_owned()));
    }
    Some(out)
}

impl Playbook {
    /// Every module used (short names), for reports.
    pub fn modules(&self) -> BTreeSet<String> {
        fn walk(tasks: &[Task], out: &mut BTreeSet<String>) {
            for t in tasks {
                match &t.action {
                    Action::Module { module, .. } => {
                        out.insert(module.clone());
                    }
                    Action::Block { block, rescue, always } => {
                        walk(block, out);
                        walk(rescue, out);
                        walk(always, out);
                    }
                    Action::IncludeTasks { tasks, .. } => walk(tasks, out),
                    Action::IncludeRole { role, .. } => walk_role(role, out),
                }
            }
        }
        fn walk_role(r: &Role, out: &mut BTreeSet<String>) {
            for d in &r.dependencies {
                walk_role(d, out);
            }
            walk(&r.tasks, out);
            walk(&r.handlers, out);
        }
        let mut out = BTreeSet::new();
        for p in &self.plays {
            for r in &p.roles {
                walk_role(r, &mut out);
            }
            for list in [&p.pre_tasks, &p.tasks, &p.post_tasks, &p.handlers] {
                walk(list, &mut out);
            }
        }
        out
    }

    /// How many tasks (not counting blocks themselves), roles and handlers included.
    pub fn task_count(&self) -> usize {
        fn count(tasks: &[Task]) -> usize {
            tasks
                .iter()
                .map(|t| match &t.action {
                    Action::Module { .. } => 1,
                    Action::Block { block, rescue, always } => count(block) + count(rescue) + count(always),
                    Action::IncludeTasks { tasks, .. } => count(tasks),
                    Action::IncludeRole { role, .. } => count_role(role),
                })
                .sum()
        }
        fn count_role(r: &Role) -> usize {
            r.dependencies.iter().map(count_role).sum::<usize>() + count(&r.tasks) + count(&r.handlers)
        }
        self.plays
            .iter()
            .map(|p| {
                p.roles.iter().map(count_role).sum::<usize>()
                    + count(&p.pre_tasks)
                    + count(&p.tasks)
                    + count(&p.post_tasks)
                    + count(&p.handlers)
            })
            .sum()
    }
}

impl Play {
    /// How many module tasks of the play (roles, includes and handlers included) `--tags only`
    /// and `--skip-tags skip` select. Tags are inherited from the play, roles, blocks and
    /// static imports; an `include_tasks`/`include_role`'s own tags select the include itself,
    /// as in Ansible, and are not passed on to the tasks it includes.
    pub fn selected_tasks(&self, only: &[String], skip: &[String]) -> usize {
        fn count(tasks: &[Task], inherited: &[String], only: &[String], skip: &[String]) -> usize {
            let mut n = 0;
            for t in tasks {
                let mut tags = inherited.to_vec();
                tags.extend(t.tags.iter().cloned());
                n += match &t.action {
                    Action::Module { .. } => usize::from(crate::tags::should_run(&tags, only, skip)),
                    Action::Block { block, rescue, always } => {
                        count(block, &tags, only, skip)
                            + count(rescue, &tags, only, skip)
                            + count(always, &tags, only, skip)
                    }
                    Action::IncludeTasks { tasks, dynamic: false, .. } => count(tasks, &tags, only, skip),
                    Action::IncludeTasks { tasks, dynamic: true, .. } => {
                        if crate::tags::should_run(&tags, only, skip) {
                            count(tasks, inherited, only, skip)
                        } else {
                            0
                        }
                    }
                    Action::IncludeRole { role, dynamic: false } => role_count(role, &tags, only, skip),
                    Action::IncludeRole { role, dynamic: true } => {
                        if crate::tags::should_run(&tags, only, skip) {
                            role_count(role, inherited, only, skip)
                        } else {
                            0
                        }
                    }
                };
            }
            n
        }
        fn role_count(r: &Role, inherited: &[String], only: &[String], skip: &[String]) -> usize {
            let mut tags = inherited.to_vec();
            tags.extend(r.tags.iter().cloned());
            r.dependencies.iter().map(|d| role_count(d, &tags, only, skip)).sum::<usize>()
                + count(&r.tasks, &tags, only, skip)
                + count(&r.handlers, &tags, only, skip)
        }
        let tags = self.tags.clone();
        self.roles.iter().map(|r| role_count(r, &tags, only, skip)).sum::<usize>()
            + [&self.pre_tasks, &self.tasks, &self.post_tasks, &self.handlers]
                .iter()
                .map(|l| count(l, &tags, only, skip))
                .sum::<usize>()
    }
}
