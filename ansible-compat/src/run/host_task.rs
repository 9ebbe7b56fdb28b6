//! One task on one host: conditions, the loop, the module call (or a local module), then
//! `changed_when`, `failed_when`, `ignore_errors`, `register`, and the lines the callback
//! prints for it.

use minijinja::Value;
use serde_json::{Value as Json, json};

use super::exec::{Frame, Host, PlayCtx};
use super::jinja::OMIT;
use super::output::{diff_lines, dump};
use super::{CallResult, ModuleCall, Modules, local, pyfmt};
use crate::Vars;
use crate::playbook::Task;

/// How a task ended on a host, for the recap and the JSON summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Changed,
    Skipped,
    Failed,
    Ignored,
    Unreachable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
            Status::Ignored => "ignored",
            Status::Unreachable => "unreachable",
        }
    }
}

pub struct Outcome {
    pub status: Status,
    /// Whether the result was `changed` (also for an ignored failure).
    pub changed: bool,
    pub result: Json,
    pub lines: Vec<String>,
    /// Handler names to notify (changed and not failed only).
    pub notify: Vec<String>,
}

fn truthy(v: Option<&Json>) -> Option<bool> {
    v.map(|v| match v {
        Json::Bool(b) => *b,
        Json::String(s) => matches!(s.to_ascii_lowercase().as_str(), "yes" | "true" | "on" | "1" | "y"),
        Json::Number(n) => n.as_i64() == Some(1),
        _ => false,
    })
}

/// A boolean keyword (`ignore_errors`, `no_log`, `become`, `check_mode`, `diff`), templated
/// first as Ansible templates every keyword: `ignore_errors: "{{ ansible_check_mode }}"`.
/// A template that does not render is false (the module's own failure, if any, still shows).
fn keyword_bool(ctx: &PlayCtx<'_>, v: Option<Json>, scope: &Value) -> Option<bool> {
    let v = v?;
    let rendered = match &v {
        Json::String(s) if s.contains("{{") || s.contains("{%") => {
            ctx.templar.render(&v, scope).unwrap_or(Json::Bool(false))
        }
        _ => v,
    };
    truthy(Some(&rendered))
}

fn as_list(v: &Json) -> Vec<Json> {
    match v {
        Json::Array(a) => a.clone(),
        Json::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

pub fn run(
    ctx: &PlayCtx<'_>,
    frame: &Frame<'_>,
    task: &Task,
    module: &str,
    args: &Json,
    host: &mut Host,
    modules: &dyn Modules,
) -> Outcome {
    let kw = |name: &str| frame.keyword(task, name);
    let base_vars = ctx.vars_for(host, frame, Some(&task.keywords));
    let label_host = host.name.clone();
    let kw_scope = ctx.templar.scope(base_vars.clone());
    let no_log = keyword_bool(ctx, kw("no_log"), &kw_scope).unwrap_or(false);
    let ignore_errors = keyword_bool(ctx, kw("ignore_errors"), &kw_scope).unwrap_or(false);
    let register = task.keywords.get("register").and_then(Json::as_str).map(str::to_owned);
    let mut conditions: Vec<Json> = frame.when.clone();
    if let Some(w) = task.keywords.get("when") {
        conditions.extend(as_list(w));
    }
    let loop_src =
        ["loop", "with_items", "with_list", "with_dict"].iter().find_map(|k| task.keywords.get(*k).map(|v| (*k, v)));
    let mut lines = Vec::new();
    let verbose = |r: &Json| r.get("_ansible_verbose_always").is_some();
    let shown = |r: &Json| if no_log { censor(r) } else { r.clone() };

    let Some((loop_kw, src)) = loop_src else {
        let scope = ctx.templar.scope(base_vars.clone());
        if let Some(skip) = check_when(ctx, &conditions, &scope) {
            let r = match skip {
                Ok(false_cond) => {
                    json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False", "false_condition": false_cond})
                }
                Err(e) => json!({"failed": true, "changed": false, "msg": e}),
            };
            return finish(ctx, host, register.as_deref(), r, ignore_errors, no_log, lines, task, &label_host, None);
        }
        let r = execute(ctx, frame, task, module, args, &scope, &host.name, modules);
        let r = match r {
            CallResult::Unreachable(msg) => {
                let r = json!({"changed": false, "msg": msg, "unreachable": true});
                lines.push(format!("fatal: [{label_host}]: UNREACHABLE! => {}", dump(&r, false)));
                return Outcome { status: Status::Unreachable, changed: false, result: r, lines, notify: Vec::new() };
            }
            CallResult::Done(r) => apply_when_overrides(ctx, task, r, &base_vars, register.as_deref()),
        };
        return finish(ctx, host, register.as_deref(), r, ignore_errors, no_log, lines, task, &label_host, None);
    };

    // A loop: the items, then the task once per item.
    let scope = ctx.templar.scope(base_vars.clone());
    let items = match ctx.templar.render(src, &scope) {
        Ok(Json::Array(a)) if loop_kw == "with_items" => {
            a.into_iter().flat_map(|x| if let Json::Array(inner) = x { inner } else { vec![x] }).collect()
        }
        Ok(Json::Object(m)) if loop_kw == "with_dict" => {
            m.into_iter().map(|(k, v)| json!({"key": k, "value": v})).collect()
        }
        Ok(Json::Array(a)) if loop_kw != "with_dict" => a,
        Ok(Json::String(s)) if loop_kw == "with_items" => vec![Json::String(s)],
        Ok(other) => {
            let r = json!({"failed": true, "changed": false, "msg": format!("Invalid data passed to '{loop_kw}', it requires a {}, got this instead: {}. Hint: If you passed a list/dict of just one element, try adding wantlist=True to your lookup invocation or use q/query instead of lookup.", if loop_kw == "with_dict" {"dict"} else {"list"}, pyfmt::str_of(&other))});
            return finish(ctx, host, register.as_deref(), r, ignore_errors, no_log, lines, task, &label_host, None);
        }
        Err(e) => {
            let r = json!({"failed": true, "changed": false, "msg": e});
            return finish(ctx, host, register.as_deref(), r, ignore_errors, no_log, lines, task, &label_host, None);
        }
    };
    if items.is_empty() {
        let r = json!({"changed": false, "skipped": true, "skipped_reason": "No items in the list", "results": []});
        return finish(ctx, host, register.as_deref(), r, ignore_errors, no_log, lines, task, &label_host, None);
    }
    let lc = task.keywords.get("loop_control").cloned().unwrap_or(Json::Null);
    let loop_var = lc.get("loop_var").and_then(Json::as_str).unwrap_or("item").to_owned();
    let index_var = lc.get("index_var").and_then(Json::as_str).map(str::to_owned);
    let mut results = Vec::new();
    let (mut any_changed, mut any_failed, mut all_skipped) = (false, false, true);
    let mut unreachable = None;
    for (i, item) in items.into_iter().enumerate() {
        let mut vars = base_vars.clone();
        vars.insert(loop_var.clone(), item.clone());
        vars.insert("ansible_loop_var".into(), json!(loop_var));
        if let Some(iv) = &index_var {
            vars.insert(iv.clone(), json!(i));
            vars.insert("ansible_index_var".into(), json!(iv));
        }
        let scope = ctx.templar.scope(vars.clone());
        let label = match lc.get("label") {
            Some(l) => ctx.templar.render(l, &scope).unwrap_or_else(|_| l.clone()),
            None => item.clone(),
        };
        let label_text = pyfmt::str_of(&label);
        let mut r = match check_when(ctx, &conditions, &scope) {
            Some(Ok(false_cond)) => {
                json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False", "false_condition": false_cond})
            }
            Some(Err(e)) => json!({"failed": true, "changed": false, "msg": e}),
            None => match execute(ctx, frame, task, module, args, &scope, &host.name, modules) {
                CallResult::Done(r) => apply_when_overrides(ctx, task, r, &vars, register.as_deref()),
                CallResult::Unreachable(msg) => {
                    unreachable = Some(msg);
                    break;
                }
            },
        };
        if let Json::Object(m) = &mut r {
            m.insert(loop_var.clone(), item.clone());
            m.insert("ansible_loop_var".into(), json!(loop_var));
            if let Some(iv) = &index_var {
                m.insert(iv.clone(), json!(i));
                m.insert("ansible_index_var".into(), json!(iv));
            }
            if lc.get("label").is_some() {
                m.insert("_ansible_item_label".into(), label.clone());
            }
        }
        let failed = flag(&r, "failed");
        let changed = flag(&r, "changed");
        let skipped = flag(&r, "skipped");
        let shown_r = if module == "debug" { super::output::clean_debug(&shown(&r)) } else { shown(&r) };
        if skipped {
            lines.push(format!("skipping: [{label_host}] => (item={label_text}) "));
        } else if failed {
            lines.push(format!("failed: [{label_host}] (item={label_text}) => {}", dump(&shown_r, verbose(&r))));
        } else {
            if ctx.options.diff
                && changed
                && !no_log
                && let Some(d) = r.get("diff")
            {
                lines.extend(diff_lines(d));
            }
            let word = if changed { "changed" } else { "ok" };
            let mut l = format!("{word}: [{label_host}] => (item={label_text})");
            if verbose(&r) {
                l.push_str(&format!(" => {}", dump(&shown_r, true)));
            }
            lines.push(l);
        }
        any_changed |= changed;
        any_failed |= failed;
        all_skipped &= skipped;
        results.push(r);
    }
    if let Some(msg) = unreachable {
        let r = json!({"changed": false, "msg": msg, "unreachable": true});
        lines.push(format!("fatal: [{label_host}]: UNREACHABLE! => {}", dump(&r, false)));
        return Outcome { status: Status::Unreachable, changed: false, result: r, lines, notify: Vec::new() };
    }
    let mut r = json!({"changed": any_changed, "results": results,
        "msg": if any_failed { "One or more items failed" } else { "All items completed" }});
    if any_failed {
        r["failed"] = json!(true);
    }
    if all_skipped {
        r["skipped"] = json!(true);
    }
    finish(ctx, host, register.as_deref(), r, ignore_errors, no_log, lines, task, &label_host, Some(()))
}

fn flag(r: &Json, key: &str) -> bool {
    r.get(key).and_then(Json::as_bool).unwrap_or(false)
}

fn censor(r: &Json) -> Json {
    json!({"censored": "the output has been hidden due to the fact that 'no_log: true' was specified for this result",
           "changed": flag(r, "changed")})
}

/// `None` when every condition holds; `Some(Ok(cond))` naming the first false one;
/// `Some(Err)` when one cannot be evaluated.
fn check_when(ctx: &PlayCtx<'_>, conditions: &[Json], scope: &Value) -> Option<Result<Json, String>> {
    for c in conditions {
        match ctx.templar.condition(c, scope) {
            Ok(true) => {}
            Ok(false) => return Some(Ok(c.clone())),
            Err(e) => return Some(Err(e)),
        }
    }
    None
}

/// `changed_when` and `failed_when`, with the result readable under its `register` name.
fn apply_when_overrides(ctx: &PlayCtx<'_>, task: &Task, mut r: Json, vars: &Vars, register: Option<&str>) -> Json {
    let cw = task.keywords.get("changed_when");
    let fw = task.keywords.get("failed_when");
    if cw.is_none() && fw.is_none() {
        return r;
    }
    let mut v = vars.clone();
    if let Some(name) = register {
        v.insert(name.to_owned(), r.clone());
    }
    // The result's own keys are readable bare too (Ansible exposes them to these conditions).
    if let Json::Object(m) = &r {
        for (k, x) in m {
            v.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    let scope = ctx.templar.scope(v);
    if let Some(c) = cw {
        match all_true(ctx, c, &scope) {
            Ok(b) => r["changed"] = json!(b),
            Err(e) => return json!({"failed": true, "changed": false, "msg": e}),
        }
    }
    if let Some(c) = fw {
        match all_true(ctx, c, &scope) {
            Ok(b) => {
                r["failed"] = json!(b);
                if b {
                    r["failed_when_result"] = json!(true);
                    if r.get("msg").is_none() {
                        r["msg"] = json!("");
                    }
                } else {
                    r["failed_when_result"] = json!(false);
                }
            }
            Err(e) => return json!({"failed": true, "changed": false, "msg": e}),
        }
    }
    r
}

fn all_true(ctx: &PlayCtx<'_>, c: &Json, scope: &Value) -> Result<bool, String> {
    for one in as_list(c) {
        if !ctx.templar.condition(&one, scope)? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    ctx: &PlayCtx<'_>,
    host: &mut Host,
    register: Option<&str>,
    r: Json,
    ignore_errors: bool,
    no_log: bool,
    mut lines: Vec<String>,
    task: &Task,
    label_host: &str,
    looped: Option<()>,
) -> Outcome {
    let failed = flag(&r, "failed");
    let changed = flag(&r, "changed");
    let skipped = flag(&r, "skipped");
    let verbose = r.get("_ansible_verbose_always").is_some();
    let mut shown = if no_log { censor(&r) } else { r.clone() };
    if matches!(&task.action, crate::playbook::Action::Module { module, .. } if module == "debug") {
        shown = super::output::clean_debug(&shown);
    }
    if let Some(Json::Object(facts)) = r.get("ansible_facts")
        && !failed
    {
        for (k, v) in facts {
            host.set_facts.insert(k.clone(), v.clone());
        }
    }
    if let Some(name) = register {
        let mut kept = r.clone();
        if let Json::Object(m) = &mut kept {
            m.retain(|k, _| !k.starts_with("_ansible"));
        }
        host.set_facts.insert(name.to_owned(), kept);
    }
    let status = if skipped && !failed {
        if looped.is_none() || r.get("results").and_then(Json::as_array).is_some_and(Vec::is_empty) || looped.is_some()
        {
            lines.push(format!("skipping: [{label_host}]"));
        }
        Status::Skipped
    } else if failed {
        if looped.is_none() {
            lines.push(format!("fatal: [{label_host}]: FAILED! => {}", dump(&shown, verbose)));
        }
        if ignore_errors {
            lines.push("...ignoring".into());
            Status::Ignored
        } else {
            Status::Failed
        }
    } else {
        if looped.is_none() {
            if ctx.options.diff
                && changed
                && !no_log
                && let Some(d) = r.get("diff")
            {
                lines.extend(diff_lines(d));
            }
            let mut l = format!("{}: [{label_host}]", if changed { "changed" } else { "ok" });
            if verbose {
                l.push_str(&format!(" => {}", dump(&shown, true)));
            }
            lines.push(l);
        }
        if changed { Status::Changed } else { Status::Ok }
    };
    let notify = if matches!(status, Status::Changed) {
        task.keywords.get("notify").map(as_list).unwrap_or_default()
    } else {
        Vec::new()
    };
    Outcome { status, changed, result: r, lines, notify: notify.iter().map(pyfmt::str_of).collect() }
}

/// Runs the module: locally for debug/set_fact/assert/fail; `template` rendered here and
/// sent as `copy` with `content`; a controller-side `copy` source sent as `content`.
#[allow(clippy::too_many_arguments)]
fn execute(
    ctx: &PlayCtx<'_>,
    frame: &Frame<'_>,
    task: &Task,
    module: &str,
    args: &Json,
    scope: &Value,
    host: &str,
    modules: &dyn Modules,
) -> CallResult {
    if local::LOCAL.contains(&module) {
        return CallResult::Done(local::run(module, args, &ctx.templar, scope));
    }
    let fail = |msg: String| CallResult::Done(json!({"failed": true, "changed": false, "msg": msg}));
    let mut args = match ctx.templar.render(args, scope) {
        Ok(a) => a,
        Err(e) => return fail(format!("The task includes an option with an undefined variable. {e}")),
    };
    if let Json::Object(m) = &mut args {
        m.retain(|_, v| v.as_str() != Some(OMIT));
    }
    let mut name = module.to_owned();
    if module == "template" {
        let Some(src) = args.get("src").and_then(Json::as_str).map(str::to_owned) else {
            return fail("src is required".into());
        };
        let text = match ctx.read_source(frame, "templates", &src) {
            Ok(t) => t,
            Err(e) => return fail(e),
        };
        let content = match ctx.templar.render_text(&text, scope) {
            Ok(s) => s,
            Err(e) => return fail(format!("AnsibleError: {e}")),
        };
        let Json::Object(m) = &mut args else { return fail("template arguments must be a mapping".into()) };
        for k in [
            "src",
            "newline_sequence",
            "block_start_string",
            "block_end_string",
            "variable_start_string",
            "variable_end_string",
            "comment_start_string",
            "comment_end_string",
            "trim_blocks",
            "lstrip_blocks",
            "output_encoding",
        ] {
            m.remove(k);
        }
        m.insert("content".into(), Json::String(content));
        name = "copy".into();
    } else if module == "copy" {
        let remote = truthy(args.get("remote_src")).unwrap_or(false);
        if let (false, Some(src)) = (remote, args.get("src").and_then(Json::as_str).map(str::to_owned)) {
            if src.ends_with('/') {
                return fail(format!(
                    "copying the directory {src} from the controller is not supported; copy its files one by one"
                ));
            }
            let text = match ctx.read_source(frame, "files", &src) {
                Ok(t) => t,
                Err(e) => return fail(e),
            };
            if let Json::Object(m) = &mut args {
                m.remove("src");
                m.insert("content".into(), Json::String(text));
            }
        }
    }
    let become_on = keyword_bool(ctx, frame.keyword(task, "become"), scope).unwrap_or(false);
    let become_user = if become_on {
        frame.keyword(task, "become_user").and_then(|u| ctx.templar.render(&u, scope).ok()).map(|u| pyfmt::str_of(&u))
    } else {
        None
    };
    let check = keyword_bool(ctx, frame.keyword(task, "check_mode"), scope).unwrap_or(ctx.options.check);
    let diff = keyword_bool(ctx, frame.keyword(task, "diff"), scope).unwrap_or(ctx.options.diff);
    let call = ModuleCall { module: name, args, check, diff, become_user };
    match modules.call(host, &call) {
        CallResult::Done(r) => CallResult::Done(with_lines(r)),
        other => other,
    }
}

/// Ansible's action plugins add `stdout_lines` (and `stderr_lines`) to every module result
/// that has `stdout` (`stderr`) without them, so `register`ed results always have both (a
/// command skipped in check mode has `stdout: ""` and so `stdout_lines: []`).
fn with_lines(mut r: Json) -> Json {
    if let Json::Object(m) = &mut r {
        for (text, lines) in [("stdout", "stdout_lines"), ("stderr", "stderr_lines")] {
            if m.contains_key(lines) {
                continue;
            }
            if let Some(t) = m.get(text).and_then(Json::as_str) {
                let split: Vec<Json> = t.lines().map(|l| Json::String(l.to_owned())).collect();
                m.insert(lines.into(), Json::Array(split));
            }
        }
    }
    r
}
