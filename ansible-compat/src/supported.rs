//! What Mangrove's playbook runner supports: modules, keywords, Jinja filters, tests and
//! functions. Everything a playbook uses is checked against these lists before any host is
//! touched; anything else refuses the whole run.

/// Modules, by short name; each is also accepted as `ansible.builtin.<name>` (and
/// `ansible.legacy.<name>`).
pub const MODULES: &[&str] = &[
    "command",
    "shell",
    "copy",
    "template",
    "file",
    "lineinfile",
    "blockinfile",
    "replace",
    "stat",
    "service",
    "systemd",
    "systemd_service",
    "package",
    "apt",
    "user",
    "group",
    "sysctl",
    "debug",
    "set_fact",
    "assert",
    "fail",
    "wait_for",
];

/// Modules whose arguments may be one free-form string (`command: ls -l`).
pub const FREE_FORM_MODULES: &[&str] = &["command", "shell"];

/// Task actions that are not modules: includes and imports.
pub const INCLUDES: &[&str] = &["include_tasks", "import_tasks", "include_role", "import_role"];

/// The short name of a supported module or include written `name`, `ansible.builtin.name`
/// or `ansible.legacy.name` (and `ansible.posix.sysctl`, where `sysctl` lives outside
/// ansible-core); `None` when it is not supported.
pub fn canonical_action(name: &str) -> Option<&'static str> {
    if name == "ansible.posix.sysctl" {
        return Some("sysctl");
    }
    let short = name.strip_prefix("ansible.builtin.").or_else(|| name.strip_prefix("ansible.legacy.")).unwrap_or(name);
    let short = if short == "systemd_service" { "systemd" } else { short };
    MODULES.iter().chain(INCLUDES).find(|m| **m == short).copied()
}

/// Every keyword Ansible knows on a task, supported or not: a key that is none of these is a
/// module name.
pub const ANSIBLE_TASK_KEYWORDS: &[&str] = &[
    "action",
    "any_errors_fatal",
    "args",
    "async",
    "become",
    "become_exe",
    "become_flags",
    "become_method",
    "become_user",
    "changed_when",
    "check_mode",
    "collections",
    "connection",
    "debugger",
    "delay",
    "delegate_facts",
    "delegate_to",
    "diff",
    "environment",
    "failed_when",
    "ignore_errors",
    "ignore_unreachable",
    "listen",
    "local_action",
    "loop",
    "loop_control",
    "module_defaults",
    "name",
    "no_log",
    "notify",
    "poll",
    "port",
    "register",
    "remote_user",
    "retries",
    "run_once",
    "tags",
    "throttle",
    "timeout",
    "until",
    "vars",
    "when",
    "block",
    "rescue",
    "always",
];

/// Task keywords the runner supports.
pub const TASK_KEYWORDS: &[&str] = &[
    "name",
    "args",
    "when",
    "loop",
    "loop_control",
    "with_items",
    "with_dict",
    "with_list",
    "register",
    "notify",
    "tags",
    "become",
    "become_user",
    "failed_when",
    "changed_when",
    "ignore_errors",
    "vars",
    "check_mode",
    "diff",
    "no_log",
    "environment",
];

/// Extra keywords a handler may have.
pub const HANDLER_KEYWORDS: &[&str] = &["listen"];

/// Keywords of a `block` task besides `block`, `rescue` and `always`.
pub const BLOCK_KEYWORDS: &[&str] = &[
    "name",
    "when",
    "tags",
    "become",
    "become_user",
    "vars",
    "ignore_errors",
    "environment",
    "check_mode",
    "diff",
    "no_log",
];

/// `loop_control` keys the runner supports.
pub const LOOP_CONTROL_KEYS: &[&str] = &["loop_var", "index_var", "label"];

/// Play keywords the runner supports.
pub const PLAY_KEYWORDS: &[&str] = &[
    "name",
    "hosts",
    "vars",
    "vars_files",
    "roles",
    "pre_tasks",
    "tasks",
    "post_tasks",
    "handlers",
    "become",
    "become_user",
    "gather_facts",
    "tags",
    "check_mode",
    "diff",
    "ignore_errors",
    "environment",
    "any_errors_fatal",
    "no_log",
];

/// Keys of a role entry in a play's `roles:` list.
pub const ROLE_ENTRY_KEYWORDS: &[&str] = &["role", "name", "vars", "tags", "when", "become", "become_user"];

/// Keys of `include_role`/`import_role`.
pub const INCLUDE_ROLE_KEYS: &[&str] = &["name", "tasks_from", "vars_from", "defaults_from", "handlers_from", "public"];

/// Keys of a role's `meta/main.yml`.
pub const ROLE_META_KEYS: &[&str] = &["dependencies", "galaxy_info", "allow_duplicates", "argument_specs"];

/// Jinja filters (Jinja's own and Ansible's, short names; `ansible.builtin.` accepted).
pub const FILTERS: &[&str] = &[
    "abs",
    "b64decode",
    "b64encode",
    "basename",
    "bool",
    "capitalize",
    "center",
    "combine",
    "count",
    "d",
    "default",
    "dict2items",
    "difference",
    "dirname",
    "e",
    "escape",
    "first",
    "flatten",
    "float",
    "format",
    "from_json",
    "from_yaml",
    "indent",
    "int",
    "intersect",
    "items",
    "items2dict",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "map",
    "mandatory",
    "max",
    "min",
    "quote",
    "regex_escape",
    "regex_findall",
    "regex_replace",
    "regex_search",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "select",
    "selectattr",
    "sort",
    "split",
    "splitext",
    "string",
    "sum",
    "symmetric_difference",
    "ternary",
    "title",
    "to_json",
    "to_nice_json",
    "to_nice_yaml",
    "to_yaml",
    "trim",
    "union",
    "unique",
    "upper",
    "version_compare",
    "wordcount",
    "zip",
    "dictsort",
    "path_join",
    "type_debug",
    "urlencode",
    "truncate",
    "batch",
    "slice",
    "groupby",
    "tojson",
    "safe",
    "attr",
    "comment",
];

/// Jinja tests.
pub const TESTS: &[&str] = &[
    "defined",
    "undefined",
    "none",
    "true",
    "false",
    "boolean",
    "string",
    "number",
    "integer",
    "float",
    "mapping",
    "sequence",
    "iterable",
    "eq",
    "equalto",
    "==",
    "ne",
    "!=",
    "lt",
    "<",
    "gt",
    ">",
    "le",
    "<=",
    "ge",
    ">=",
    "in",
    "contains",
    "match",
    "search",
    "regex",
    "version",
    "version_compare",
    "subset",
    "superset",
    "succeeded",
    "success",
    "failed",
    "failure",
    "changed",
    "change",
    "skipped",
    "skip",
    "truthy",
    "falsy",
    "divisibleby",
    "even",
    "odd",
    "lower",
    "upper",
    "sameas",
    "any",
    "all",
];

/// Global functions.
pub const FUNCTIONS: &[&str] = &["range", "lookup", "query", "q", "dict", "namespace", "omit"];

/// Lookup plugins (`lookup('env', 'HOME')`).
pub const LOOKUPS: &[&str] = &["env", "file", "vars", "template", "items", "list", "dict"];

/// Jinja statements (`{% … %}`).
pub const STATEMENTS: &[&str] = &[
    "if",
    "elif",
    "else",
    "endif",
    "for",
    "endfor",
    "set",
    "endset",
    "raw",
    "endraw",
    "macro",
    "endmacro",
    "filter",
    "endfilter",
    "with",
    "endwith",
    "break",
    "continue",
    "call",
    "endcall",
];

/// A list for messages: `a, b, c`.
pub fn list(items: &[&str]) -> String {
    items.join(", ")
}
