//! Evaluating controls: each control's Rego is compiled once (at [`Evaluator::new`]) and the
//! compiled policy is reused for every host; evaluation takes `&self`, so one evaluator serves
//! many threads (regorus is built with its `arc` feature).

use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::diag::{Diagnostic, rego_diagnostic, rego_line_of};
use crate::meta::ControlMeta;
use crate::pack::{Control, Pack};

/// The verdict of one control on one host or system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    NotApplicable,
    /// The control could not judge: facts missing, evaluation failed or its result is malformed.
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotApplicable => "not_applicable",
            Status::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The control id.
    pub control: String,
    pub status: Status,
    /// One line, English.
    pub message: String,
    /// The fact values the control judged (an object; `{}` when there are none).
    pub evidence: Value,
}

impl Finding {
    fn error(control: &str, message: impl Into<String>) -> Self {
        Self {
            control: control.to_owned(),
            status: Status::Error,
            message: message.into(),
            evidence: Value::Object(Map::new()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A control's Rego does not parse or compile, or breaks the control contract.
    #[error("{0}")]
    Compile(Diagnostic),
    #[error("pack {pack} reads input schema {found} but this engine builds schema {expected}")]
    InputSchema { pack: String, found: u32, expected: u32 },
}

struct Compiled {
    meta: ControlMeta,
    rego_path: std::path::PathBuf,
    /// `data.<package>.result`.
    rule: String,
    /// An engine with the control loaded and prepared (analysed, scheduled); never evaluated.
    template: regorus::Engine,
    /// Prepared engines ready for reuse. Reusing one saves about a quarter of an evaluation
    /// over building an engine per call (`CompiledPolicy::eval_with_input`); the pool grows
    /// to the number of threads evaluating this control at once.
    pool: Mutex<Vec<regorus::Engine>>,
}

impl Compiled {
    /// Evaluates `result`; a regorus error comes back located in the control's file.
    fn eval(&self, input: regorus::Value) -> Result<regorus::Value, Diagnostic> {
        let take = |mut pool: std::sync::MutexGuard<'_, Vec<regorus::Engine>>| pool.pop();
        let mut engine = self
            .pool
            .lock()
            .map_or_else(|poisoned| take(poisoned.into_inner()), take)
            .unwrap_or_else(|| self.template.clone());
        engine.set_input(input);
        let result = engine.eval_rule(self.rule.clone()).map_err(|e| rego_diagnostic(&self.rego_path, &e));
        // Drop this host's document now rather than when the engine is next used.
        engine.set_input(regorus::Value::Null);
        match self.pool.lock() {
            Ok(mut pool) => pool.push(engine),
            Err(poisoned) => poisoned.into_inner().push(engine),
        }
        result
    }
}

/// A pack's controls, compiled.
pub struct Evaluator {
    pack: String,
    framework: String,
    controls: Vec<Compiled>,
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator").field("pack", &self.pack).field("controls", &self.controls.len()).finish()
    }
}

/// `data.<package>.result`, the rule every control defines.
pub(crate) fn result_rule(meta: &ControlMeta) -> String {
    format!("data.{}.result", meta.package())
}

/// Parses a control's Rego (and, for tests, its test files) into an engine, checking the
/// package name and that `result` is defined. Errors point into the file at fault.
pub(crate) fn load_control(control: &Control, with_tests: bool) -> Result<regorus::Engine, Diagnostic> {
    let mut engine = regorus::Engine::new();
    // Undefined is a verdict of its own (reported as error); a builtin failing is an error too.
    engine.set_strict_builtin_errors(true);
    add_module(&mut engine, &control.rego.path, &control.rego.text, &control.meta.package())?;
    let path = control.rego.path.display().to_string();
    let has_result =
        engine.has_declared_rule_rooted_at(&path, "result").map_err(|e| rego_diagnostic(&control.rego.path, &e))?;
    if !has_result {
        return Err(Diagnostic::file(
            &control.rego.path,
            format!(
                "no `result` rule: the control must define result := {{\"status\": ..., \"message\": ..., \"evidence\": ...}} in package {}",
                control.meta.package()
            ),
        ));
    }
    if with_tests {
        for test in &control.tests {
            add_module(&mut engine, &test.path, &test.text, &format!("{}_test", control.meta.package()))?;
        }
    }
    Ok(engine)
}

fn add_module(engine: &mut regorus::Engine, path: &Path, text: &str, package: &str) -> Result<(), Diagnostic> {
    let declared =
        engine.add_policy(path.display().to_string(), text.to_owned()).map_err(|e| rego_diagnostic(path, &e))?;
    let declared = declared.strip_prefix("data.").unwrap_or(&declared);
    if declared != package {
        let (line, column) = rego_line_of(text, "package");
        return Err(Diagnostic::new(
            path,
            line,
            column,
            format!("package {declared} does not match the control id: expected package {package}"),
        ));
    }
    Ok(())
}

/// Loads and prepares the control's `result` rule; compile-time errors (unsafe variables,
/// unknown functions, conflicting rules) surface here with their location. Returns the
/// prepared engine, ready to evaluate (or clone) with any input.
pub(crate) fn compile_control(control: &Control) -> Result<regorus::Engine, Diagnostic> {
    let mut engine = load_control(control, false)?;
    engine
        .compile_with_entrypoint(&result_rule(&control.meta).into())
        .map_err(|e| rego_diagnostic(&control.rego.path, &e))?;
    Ok(engine)
}

impl Evaluator {
    /// Compiles every control of the pack. Fails on the first control whose Rego is broken,
    /// naming its file and line; run [`crate::lint`] to see every problem.
    pub fn new(pack: &Pack) -> Result<Self, EngineError> {
        if pack.input_schema != crate::INPUT_SCHEMA_VERSION {
            return Err(EngineError::InputSchema {
                pack: pack.name.clone(),
                found: pack.input_schema,
                expected: crate::INPUT_SCHEMA_VERSION,
            });
        }
        let controls = pack
            .controls
            .iter()
            .map(|c| {
                let template = compile_control(c).map_err(EngineError::Compile)?;
                Ok(Compiled {
                    meta: c.meta.clone(),
                    rego_path: c.rego.path.clone(),
                    rule: result_rule(&c.meta),
                    template,
                    pool: Mutex::new(Vec::new()),
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        Ok(Self { pack: pack.name.clone(), framework: pack.framework.clone(), controls })
    }

    pub fn pack(&self) -> &str {
        &self.pack
    }

    pub fn framework(&self) -> &str {
        &self.framework
    }

    /// The metadata of every control, sorted by id.
    pub fn controls(&self) -> impl Iterator<Item = &ControlMeta> {
        self.controls.iter().map(|c| &c.meta)
    }

    /// Evaluates one control against a complete input document (its `params` included).
    pub fn evaluate(&self, control_id: &str, input: &Value) -> Finding {
        let Some(compiled) = self.controls.iter().find(|c| c.meta.id == control_id) else {
            return Finding::error(control_id, format!("pack {} has no control {control_id:?}", self.pack));
        };
        if let Some(missing) = missing_facts(&compiled.meta, input) {
            return missing;
        }
        run(compiled, regorus::Value::from(input.clone()))
    }

    /// Evaluates every control applicable at `level` against one host's input document,
    /// filling `params` with each control's values at that level. The document is converted
    /// once; each control gets a shallow copy with its own `params`.
    pub fn evaluate_level(&self, level: u8, input: &Value) -> Vec<Finding> {
        let base = regorus::Value::from(input.clone());
        self.controls
            .iter()
            .filter(|c| c.meta.applies_at(level))
            .map(|c| {
                if let Some(missing) = missing_facts(&c.meta, input) {
                    return missing;
                }
                let mut doc = base.clone();
                let params = regorus::Value::from(Value::Object(params_at(&c.meta, level)));
                match doc.as_object_mut() {
                    Ok(obj) => {
                        obj.insert(regorus::Value::from("params"), params);
                    }
                    Err(_) => return Finding::error(&c.meta.id, "input document is not a JSON object"),
                }
                run(c, doc)
            })
            .collect()
    }
}

/// The "facts not collected" error for a control whose collectors did not report.
fn missing_facts(meta: &ControlMeta, input: &Value) -> Option<Finding> {
    let security = input.pointer("/host/facts/security");
    let missing: Vec<&str> = meta
        .facts
        .iter()
        .filter(|f| security.and_then(|s| s.get(f.as_str())).is_none_or(Value::is_null))
        .map(String::as_str)
        .collect();
    (!missing.is_empty()).then(|| Finding::error(&meta.id, format!("facts not collected: {}", missing.join(", "))))
}

fn run(compiled: &Compiled, input: regorus::Value) -> Finding {
    let id = &compiled.meta.id;
    match compiled.eval(input) {
        Err(d) => Finding::error(id, format!("evaluation failed: {d}")),
        Ok(regorus::Value::Undefined) => Finding::error(
            id,
            format!("{} is undefined for this input (the Rego must always define it)", result_rule(&compiled.meta)),
        ),
        Ok(value) => match serde_json::to_value(&value) {
            Ok(json) => finding_from_result(id, json),
            Err(e) => Finding::error(id, format!("result cannot be represented as JSON: {e}")),
        },
    }
}

/// Checks `result` has the contract's shape: `{status, message, evidence}` and nothing else.
pub(crate) fn finding_from_result(control: &str, result: Value) -> Finding {
    let Value::Object(mut obj) = result else {
        return Finding::error(
            control,
            format!("result must be an object {{status, message, evidence}}, got {result}"),
        );
    };
    let status = match obj.remove("status") {
        Some(Value::String(s)) => match s.as_str() {
            "pass" => Status::Pass,
            "fail" => Status::Fail,
            "not_applicable" => Status::NotApplicable,
            other => {
                return Finding::error(
                    control,
                    format!("result.status {other:?} is not one of \"pass\", \"fail\", \"not_applicable\""),
                );
            }
        },
        Some(other) => return Finding::error(control, format!("result.status must be a string, got {other}")),
        None => return Finding::error(control, "result has no status"),
    };
    let message = match obj.remove("message") {
        Some(Value::String(s)) => s,
        Some(other) => return Finding::error(control, format!("result.message must be a string, got {other}")),
        None => return Finding::error(control, "result has no message"),
    };
    let evidence = match obj.remove("evidence") {
        Some(v @ Value::Object(_)) => v,
        Some(other) => return Finding::error(control, format!("result.evidence must be an object, got {other}")),
        None => return Finding::error(control, "result has no evidence"),
    };
    if let Some(extra) = obj.keys().next() {
        return Finding::error(
            control,
            format!("result has an unexpected key {extra:?} (only status, message, evidence)"),
        );
    }
    Finding { control: control.to_owned(), status, message, evidence }
}

/// The controls of `pack` that apply at `level`.
pub fn applicable(pack: &Pack, level: u8) -> Vec<&Control> {
    pack.controls.iter().filter(|c| c.meta.applies_at(level)).collect()
}

/// The control's parameters at `level`: `{name: value}` for every parameter defined there.
pub fn params_at(meta: &ControlMeta, level: u8) -> Map<String, Value> {
    meta.params.iter().filter_map(|(name, by_level)| Some((name.clone(), by_level.get(&level)?.clone()))).collect()
}
