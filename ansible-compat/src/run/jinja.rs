//! Jinja as Ansible templates: a `minijinja` environment with Ansible's filters, tests and
//! lookups, its way of printing values (Python's `str()`), and its rule that a string which
//! is one `{{ expression }}` keeps the expression's type (a list stays a list).
//!
//! Undefined variables: reading an attribute of an undefined value gives undefined (so
//! `x.y is defined` and `x.y | default(1)` work), and printing or using one is an error
//! naming the expression, as in Ansible.

use std::collections::BTreeSet;
use std::sync::Arc;

use minijinja::value::Object;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};
use serde_json::Value as Json;

use super::pyfmt;

/// The placeholder `omit` renders to; a module argument equal to it is dropped.
pub const OMIT: &str = "__omit_place_holder__mangrove";

/// The template environment, shared by every host of a run.
#[derive(Debug, Clone)]
pub struct Templar {
    env: Arc<Environment<'static>>,
}

impl Default for Templar {
    fn default() -> Self {
        Templar::new()
    }
}

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Whether a string has template syntax.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

fn has_template(v: &Json) -> bool {
    match v {
        Json::String(s) => is_template(s),
        Json::Array(a) => a.iter().any(has_template),
        Json::Object(m) => m.values().any(has_template),
        _ => false,
    }
}

impl Templar {
    pub fn new() -> Templar {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // Ansible's template environment: blocks eat the newline after them; a template's last
        // newline is kept.
        if let Ok(syntax) =
            minijinja::syntax::SyntaxConfig::builder().trim_blocks(true).keep_trailing_newline(true).build()
        {
            env.set_syntax(syntax);
        }
        env.set_formatter(|out, _state, value| {
            if value.is_undefined() {
                return Err(Error::new(ErrorKind::UndefinedError, "a variable in the template is undefined"));
            }
            let text = match value.as_str() {
                Some(s) => s.to_owned(),
                None => pyfmt::str_of(&to_json(value)?),
            };
            out.write_str(&text).map_err(|e| err(e.to_string()))
        });
        super::filters::register(&mut env);
        Templar { env: Arc::new(env) }
    }

    /// A context of variables whose own values are templated when read.
    pub fn scope(&self, vars: crate::Vars) -> Value {
        Value::from_object(Scope { vars, env: self.env.clone(), cache: Default::default(), busy: Default::default() })
    }

    /// Every string in `v` templated under `ctx` (keys too).
    ///
    /// # Errors
    /// The first template that fails, with what failed.
    pub fn render(&self, v: &Json, ctx: &Value) -> Result<Json, String> {
        render_in(&self.env, v, ctx)
    }

    /// A template file's text rendered as text (`template` module).
    ///
    /// # Errors
    /// The template fails.
    pub fn render_text(&self, text: &str, ctx: &Value) -> Result<String, String> {
        self.env.render_str(text, ctx.clone()).map_err(|e| describe(&e, "the template"))
    }

    /// A condition (`when`, `failed_when`, `changed_when`, an `assert` item): a bare Jinja
    /// expression (or a bool), true or false as Jinja's `if` decides.
    ///
    /// # Errors
    /// The expression does not compile or evaluate, or uses an undefined variable.
    pub fn condition(&self, cond: &Json, ctx: &Value) -> Result<bool, String> {
        match cond {
            Json::Bool(b) => Ok(*b),
            Json::Null => Ok(false),
            Json::Number(n) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
            Json::String(s) => {
                let expr = s.trim();
                let expr = match single_expression(expr) {
                    Some(inner) => inner,
                    None if is_template(expr) => {
                        let text = render_in(&self.env, cond, ctx)?;
                        return Ok(truthy_text(&pyfmt::str_of(&text)));
                    }
                    None => expr,
                };
                let v = self.eval_value(expr, ctx)?;
                if v.is_undefined() {
                    return Err(format!("The conditional check '{s}' failed. The error was: '{expr}' is undefined"));
                }
                Ok(v.is_true())
            }
            other => Err(format!("a condition must be an expression, found {other}")),
        }
    }

    fn eval_value(&self, expr: &str, ctx: &Value) -> Result<Value, String> {
        let compiled = self.env.compile_expression(expr).map_err(|e| describe(&e, expr))?;
        compiled.eval(ctx.clone()).map_err(|e| describe(&e, expr))
    }

    /// An expression's value as JSON (`debug: var=`).
    ///
    /// # Errors
    /// The expression fails or is undefined.
    pub fn eval(&self, expr: &str, ctx: &Value) -> Result<Json, String> {
        let v = self.eval_value(expr, ctx)?;
        if v.is_undefined() {
            return Err(format!("'{expr}' is undefined"));
        }
        to_json(&v).map_err(|e| describe(&e, expr))
    }
}

fn truthy_text(s: &str) -> bool {
    !matches!(s.trim().to_ascii_lowercase().as_str(), "" | "false" | "no" | "0" | "none" | "off" | "n" | "f")
}

/// `{{ expr }}` alone (nothing around it, no second `{{`): the expression inside.
fn single_expression(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim())
}

fn describe(e: &Error, what: &str) -> String {
    let mut msg = match e.kind() {
        ErrorKind::UndefinedError => format!("an undefined variable in '{what}'"),
        _ => format!("template error in '{what}': {e}"),
    };
    if let Some(d) = e.detail()
        && !msg.contains(d)
    {
        msg.push_str(&format!(" ({d})"));
    }
    msg
}

pub(super) fn to_json(v: &Value) -> Result<Json, Error> {
    if v.is_undefined() {
        return Err(Error::new(ErrorKind::UndefinedError, "undefined value"));
    }
    serde_json::to_value(v).map_err(|e| err(format!("cannot convert {v}: {e}")))
}

pub(super) fn from_json(v: &Json) -> Value {
    Value::from(minijinja::value::Serde(v))
}

fn render_in(env: &Environment<'static>, v: &Json, ctx: &Value) -> Result<Json, String> {
    match v {
        Json::String(s) if is_template(s) => render_string(env, s, ctx),
        Json::Array(a) => a.iter().map(|x| render_in(env, x, ctx)).collect::<Result<Vec<_>, _>>().map(Json::Array),
        Json::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                let key = if is_template(k) { pyfmt::str_of(&render_string(env, k, ctx)?) } else { k.clone() };
                out.insert(key, render_in(env, x, ctx)?);
            }
            Ok(Json::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// One string: a lone expression keeps its type; anything else is text, read back as a list,
/// dict or bool when it looks like one (Ansible's `ansible_eval_concat`).
fn render_string(env: &Environment<'static>, s: &str, ctx: &Value) -> Result<Json, String> {
    if let Some(expr) = single_expression(s) {
        let compiled = env.compile_expression(expr).map_err(|e| describe(&e, s))?;
        let v = compiled.eval(ctx.clone()).map_err(|e| describe(&e, s))?;
        if v.is_undefined() {
            return Err(format!("'{expr}' is undefined"));
        }
        return to_json(&v).map_err(|e| describe(&e, s));
    }
    let text = env.render_str(s, ctx.clone()).map_err(|e| describe(&e, s))?;
    if (text.starts_with('{') || text.starts_with('[') || text == "True" || text == "False")
        && let Some(v) = crate::pylit::literal(&text)
    {
        return Ok(v);
    }
    Ok(Json::String(text))
}

/// Variables for templates; a value that is itself a template is rendered when read, under
/// the same variables (Ansible's lazy templating), at most once per scope.
#[derive(Debug)]
struct Scope {
    vars: crate::Vars,
    env: Arc<Environment<'static>>,
    cache: std::sync::Mutex<std::collections::BTreeMap<String, Value>>,
    busy: std::sync::Mutex<BTreeSet<String>>,
}

impl Object for Scope {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        let raw = self.vars.get(name)?;
        if !has_template(raw) {
            return Some(from_json(raw));
        }
        if let Some(v) = self.cache.lock().ok()?.get(name) {
            return Some(v.clone());
        }
        // A variable whose template reads itself is an error in Ansible too; here it reads as
        // undefined instead of recursing forever.
        if !self.busy.lock().ok()?.insert(name.to_owned()) {
            return None;
        }
        let ctx = Value::from_dyn_object(self.clone());
        let out = render_in(&self.env, raw, &ctx);
        if let Ok(mut b) = self.busy.lock() {
            b.remove(name);
        }
        let v = match out {
            Ok(j) => from_json(&j),
            Err(e) => {
                // Reading a variable whose template fails fails the reader with the reason.
                Value::from_object(Failed(e))
            }
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(name.to_owned(), v.clone());
        }
        Some(v)
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(self.vars.keys().map(|k| Value::from(k.as_str())).collect())
    }
}

/// A variable whose template failed: printing it or looking into it shows why.
#[derive(Debug)]
struct Failed(String);

impl Object for Failed {
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result
    where
        Self: Sized + 'static,
    {
        write!(f, "<error: {}>", self.0)
    }
}
