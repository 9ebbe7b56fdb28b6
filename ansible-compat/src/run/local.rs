//! The modules the runner evaluates itself, as Ansible's action plugins do on the controller:
//! `debug`, `set_fact`, `assert`, `fail`. Each returns the result Ansible's would.

use minijinja::Value;
use serde_json::{Value as Json, json};

use super::jinja::Templar;

pub const LOCAL: &[&str] = &["debug", "set_fact", "assert", "fail"];

fn failed(msg: impl Into<String>) -> Json {
    json!({"failed": true, "changed": false, "msg": msg.into()})
}

/// Runs a local module with its arguments as written (templated here: `debug: var` and
/// `assert: that` are expressions, not templates).
pub fn run(module: &str, raw: &Json, t: &Templar, ctx: &Value) -> Json {
    match module {
        "debug" => debug(raw, t, ctx),
        "set_fact" => match t.render(raw, ctx) {
            Ok(Json::Object(mut m)) => {
                // `cacheable` is an option, not a fact.
                m.remove("cacheable");
                json!({"changed": false, "ansible_facts": m})
            }
            Ok(_) => failed("set_fact takes key=value pairs or a mapping"),
            Err(e) => failed(e),
        },
        "fail" => match t.render(raw, ctx) {
            // The message as written (`msg: no` stays the boolean YAML makes of it).
            Ok(a) => json!({"failed": true, "changed": false,
                            "msg": a.get("msg").cloned().unwrap_or_else(|| json!("Failed as requested from task"))}),
            Err(e) => failed(e),
        },
        "assert" => assert(raw, t, ctx),
        other => failed(format!("{other} is not a local module")),
    }
}

fn debug(raw: &Json, t: &Templar, ctx: &Value) -> Json {
    if let Some(var) = raw.get("var") {
        let name = super::pyfmt::str_of(var);
        let value = match t.eval(&name, ctx) {
            Ok(v) => v,
            Err(_) => json!("VARIABLE IS NOT DEFINED!"),
        };
        let mut m = serde_json::Map::new();
        m.insert(name, value);
        m.insert("changed".into(), json!(false));
        m.insert("_ansible_verbose_always".into(), json!(true));
        return Json::Object(m);
    }
    let msg = raw.get("msg").cloned().unwrap_or_else(|| json!("Hello world!"));
    match t.render(&msg, ctx) {
        Ok(m) => json!({"msg": m, "changed": false, "_ansible_verbose_always": true}),
        Err(e) => failed(format!("The task includes an option with an undefined variable. {e}")),
    }
}

fn assert(raw: &Json, t: &Templar, ctx: &Value) -> Json {
    let that: Vec<Json> = match raw.get("that") {
        Some(Json::Array(a)) => a.clone(),
        Some(one) => vec![one.clone()],
        None => return failed("conditional required in \"that\" string"),
    };
    let quiet = raw.get("quiet").is_some_and(|q| q.as_bool().unwrap_or(false));
    for cond in &that {
        match t.condition(cond, ctx) {
            Ok(true) => {}
            Ok(false) => {
                let msg = raw.get("fail_msg").or_else(|| raw.get("msg")).map(|m| t.render(m, ctx));
                let msg = match msg {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => json!(e),
                    None => json!("Assertion failed"),
                };
                return json!({"failed": true, "changed": false, "assertion": cond, "evaluated_to": false, "msg": msg});
            }
            Err(e) => return failed(e),
        }
    }
    let msg = match raw.get("success_msg").map(|m| t.render(m, ctx)) {
        Some(Ok(m)) => m,
        Some(Err(e)) => return failed(e),
        None => json!("All assertions passed"),
    };
    let mut r = json!({"changed": false, "msg": msg});
    if !quiet {
        r["_ansible_verbose_always"] = json!(true);
    }
    r
}
