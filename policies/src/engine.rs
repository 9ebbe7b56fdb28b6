//! Evaluating controls: each control's Rego is compiled once (at [`Evaluator::new`]) and the
//! compiled policy is reused for every host; evaluation takes `&self`, so one evaluator serves
//! many threads (regorus is built with its `arc` feature).
//!
//! Two ways to run a control, with the same results:
//!
//! * **compiled** (the normal path): the control's `result` rule is compiled to regorus' Rego
//!   virtual machine (RVM) bytecode at [`Evaluator::new`] and run on a pooled VM, about six
//!   times faster than the interpreter. A control the RVM compiler does not support (it has
//!   no `with`, for one) runs on the interpreter instead.
//! * **interpreted** (the reference): regorus' tree-walking interpreter, which also runs the
//!   packs' Rego unit tests and the lint. Whenever the VM does not produce a value (an
//!   evaluation error, an undefined `result`), the host is judged again by the interpreter, so
//!   error verdicts carry the interpreter's messages. Tests compare both paths on varied facts.
//!
//! [`Evaluator::evaluate_level_batch`] judges many hosts in one call: each control's VM is
//! taken from its pool once, each host's document is converted once; the result is exactly
//! what [`Evaluator::evaluate_level`] returns host by host.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::convert::{Keys, to_json, to_rego};
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
    /// `result` compiled to RVM bytecode; `None` when the RVM compiler refused the control.
    program: Option<Arc<Program>>,
    /// VMs with `program` loaded, ready for reuse (as `pool`, one per concurrent thread).
    vms: Mutex<Vec<RegoVM>>,
}

/// Pops a pooled item; a pool poisoned by a panicking thread is still a valid pool.
fn take<T>(pool: &Mutex<Vec<T>>) -> Option<T> {
    pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()
}

fn give<T>(pool: &Mutex<Vec<T>>, item: T) {
    let mut guard: MutexGuard<'_, Vec<T>> = pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    guard.push(item);
}

/// Rego has no unbounded loops, so a bound on executed instructions only limits how large a
/// fact document may be; the interpreter has none, and the VM's default (25,000) would turn
/// a host with a few hundred accounts into an error the interpreter does not give.
const VM_MAX_INSTRUCTIONS: usize = usize::MAX;

impl Compiled {
    /// Evaluates `result` with the interpreter; a regorus error comes back located in the
    /// control's file.
    fn eval(&self, input: regorus::Value) -> Result<regorus::Value, Diagnostic> {
        let mut engine = take(&self.pool).unwrap_or_else(|| self.template.clone());
        engine.set_input(input);
        let result = engine.eval_rule(self.rule.clone()).map_err(|e| rego_diagnostic(&self.rego_path, &e));
        // Drop this host's document now rather than when the engine is next used.
        engine.set_input(regorus::Value::Null);
        give(&self.pool, engine);
        result
    }

    /// A VM with this control's program loaded, from the pool or new.
    fn vm(&self, program: &Arc<Program>) -> RegoVM {
        take(&self.vms).unwrap_or_else(|| {
            let mut vm = RegoVM::new();
            // As the interpreter: a builtin given a wrong type is an error, not undefined.
            vm.set_strict_builtin_errors(true);
            vm.set_max_instructions(VM_MAX_INSTRUCTIONS);
            vm.load_program(program.clone());
            vm
        })
    }

    /// Returns a VM from [`Compiled::vm`] to the pool, without the last host's document.
    fn give_back(&self, vm: Option<RegoVM>) {
        if let Some(mut vm) = vm {
            vm.set_input(regorus::Value::Null);
            give(&self.vms, vm);
        }
    }

    /// Judges one host's document on `vm` (this control's, from [`Compiled::vm`]), falling
    /// back to the interpreter when the VM gives no value or the control has no program.
    fn judge(&self, vm: Option<&mut RegoVM>, doc: regorus::Value) -> Finding {
        let Some(vm) = vm else { return run(self, doc) };
        vm.set_input(doc.clone());
        match vm.execute() {
            Ok(value) if value != regorus::Value::Undefined => finding_from_value(&self.meta.id, &value),
            // Re-judged by the reference, so the verdict and its message are the
            // interpreter's own.
            _ => run(self, doc),
        }
    }
}

/// `program` without the rule metadata its VM never reads, which regorus 0.14 copies on every
/// rule call (cached ones included): about a tenth of an evaluation, mostly allocations. The
/// VM reads a rule's `destructuring_blocks` and `else_bodies` by definition index with a
/// missing entry meaning `None` and `false`, and only whether `function_info` is present;
/// `name` is for listings. So lists holding only those defaults are emptied, parameter names
/// and rule names dropped; what the VM computes is unchanged (`tests/batch.rs` compares it
/// with the interpreter).
fn slim(program: Arc<Program>) -> Arc<Program> {
    let mut program = Arc::unwrap_or_clone(program);
    for rule in &mut program.rule_infos {
        rule.name = String::new();
        if rule.destructuring_blocks.iter().all(Option::is_none) {
            rule.destructuring_blocks = Vec::new();
        }
        if rule.else_bodies.iter().flatten().all(|is_else| !is_else) {
            rule.else_bodies = Vec::new();
        }
        if let Some(function) = &mut rule.function_info {
            function.param_names = Vec::new();
        }
    }
    Arc::new(program)
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
pub(crate) fn compile_control(control: &Control) -> Result<(regorus::Engine, regorus::CompiledPolicy), Diagnostic> {
    let mut engine = load_control(control, false)?;
    let policy = engine
        .compile_with_entrypoint(&result_rule(&control.meta).into())
        .map_err(|e| rego_diagnostic(&control.rego.path, &e))?;
    Ok((engine, policy))
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
                let (template, policy) = compile_control(c).map_err(EngineError::Compile)?;
                let rule = result_rule(&c.meta);
                // A refusal is not an error: the interpreter runs every valid control.
                let program = Compiler::compile_from_policy(&policy, &[rule.as_str()]).ok().map(slim);
                Ok(Compiled {
                    meta: c.meta.clone(),
                    rego_path: c.rego.path.clone(),
                    rule,
                    template,
                    pool: Mutex::new(Vec::new()),
                    program,
                    vms: Mutex::new(Vec::new()),
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
        if let Some(missing) = missing_facts(&compiled.meta, security_facts(input)) {
            return missing;
        }
        let mut vm = compiled.program.as_ref().map(|p| compiled.vm(p));
        let finding = compiled.judge(vm.as_mut(), to_rego(input, &mut Keys::default()));
        compiled.give_back(vm);
        finding
    }

    /// Evaluates every control applicable at `level` against one host's input document,
    /// filling `params` with each control's values at that level.
    pub fn evaluate_level(&self, level: u8, input: &Value) -> Vec<Finding> {
        self.evaluate_level_batch(level, std::slice::from_ref(input)).pop().unwrap_or_default()
    }

    /// [`Evaluator::evaluate_level`] for many hosts: `result[i]` holds the findings for
    /// `inputs[i]`, in the same order and with the same content as `evaluate_level` gives.
    /// The VMs of the applicable controls are taken from their pools once for the whole
    /// batch; each host's document is converted once and judged by every control in turn
    /// (host after host keeps that document in the CPU's caches, which measured faster than
    /// control after control).
    pub fn evaluate_level_batch(&self, level: u8, inputs: &[Value]) -> Vec<Vec<Finding>> {
        // Controls with equal parameters (most have none) read the same document, built once
        // per host: (control, index into `params`).
        let mut params: Vec<regorus::Value> = Vec::new();
        let controls: Vec<(&Compiled, usize)> = self
            .controls
            .iter()
            .filter(|c| c.meta.applies_at(level))
            .map(|c| {
                let p = regorus::Value::from(Value::Object(params_at(&c.meta, level)));
                let group = params.iter().position(|q| *q == p).unwrap_or_else(|| {
                    params.push(p);
                    params.len() - 1
                });
                (c, group)
            })
            .collect();
        let mut vms: Vec<Option<RegoVM>> = controls.iter().map(|(c, _)| c.program.as_ref().map(|p| c.vm(p))).collect();
        let mut docs: Vec<Option<Option<regorus::Value>>> = Vec::with_capacity(params.len());
        let mut keys = Keys::default();
        // Every host's findings list is allocated before any evaluation: allocated between
        // evaluations, each (a few KB) made glibc's allocator consolidate the many small
        // blocks the VM had just freed, about a twentieth of the batch.
        let mut out: Vec<Vec<Finding>> = inputs.iter().map(|_| Vec::with_capacity(controls.len())).collect();
        for (input, findings) in inputs.iter().zip(&mut out) {
            let base = to_rego(input, &mut keys);
            let security = security_facts(input);
            docs.clear();
            docs.resize(params.len(), None);
            findings.extend(controls.iter().zip(&mut vms).map(|((c, group), vm)| {
                if let Some(missing) = missing_facts(&c.meta, security) {
                    return missing;
                }
                match docs[*group].get_or_insert_with(|| with_params(&base, &params[*group])) {
                    Some(doc) => c.judge(vm.as_mut(), doc.clone()),
                    None => Finding::error(&c.meta.id, "input document is not a JSON object"),
                }
            }));
        }
        for ((c, _), vm) in controls.iter().zip(vms) {
            c.give_back(vm);
        }
        out
    }

    /// [`Evaluator::evaluate_level`] on the reference path: every control on regorus'
    /// tree-walking interpreter, never the VM. Slower; kept to check the compiled path.
    pub fn evaluate_level_interpreted(&self, level: u8, input: &Value) -> Vec<Finding> {
        let base = to_rego(input, &mut Keys::default());
        let security = security_facts(input);
        self.controls
            .iter()
            .filter(|c| c.meta.applies_at(level))
            .map(|c| {
                if let Some(missing) = missing_facts(&c.meta, security) {
                    return missing;
                }
                let params = regorus::Value::from(Value::Object(params_at(&c.meta, level)));
                match with_params(&base, &params) {
                    Some(doc) => run(c, doc),
                    None => Finding::error(&c.meta.id, "input document is not a JSON object"),
                }
            })
            .collect()
    }
}

/// A shallow copy of the host's document with the control's `params` (the document itself
/// when it has them already); `None` when the document is not an object.
fn with_params(base: &regorus::Value, params: &regorus::Value) -> Option<regorus::Value> {
    // The key, built once per thread rather than per host and group.
    thread_local!(static PARAMS: regorus::Value = regorus::Value::from("params"));
    let obj = base.as_object().ok()?;
    PARAMS.with(|key| {
        if obj.get(key) == Some(params) {
            return Some(base.clone());
        }
        let mut doc = base.clone();
        doc.as_object_mut().ok()?.insert(key.clone(), params.clone());
        Some(doc)
    })
}

/// `input.host.facts.security`, where the collectors' outputs are.
fn security_facts(input: &Value) -> Option<&Value> {
    input.get("host")?.get("facts")?.get("security")
}

/// The "facts not collected" error for a control whose collectors did not report, given the
/// host's [`security_facts`].
fn missing_facts(meta: &ControlMeta, security: Option<&Value>) -> Option<Finding> {
    let collected = |fact: &String| security.and_then(|s| s.get(fact.as_str())).is_some_and(|v| !v.is_null());
    // The common case, checked without allocating.
    if meta.facts.iter().all(collected) {
        return None;
    }
    let missing: Vec<&str> = meta.facts.iter().filter(|f| !collected(f)).map(String::as_str).collect();
    Some(Finding::error(&meta.id, format!("facts not collected: {}", missing.join(", "))))
}

fn run(compiled: &Compiled, input: regorus::Value) -> Finding {
    let id = &compiled.meta.id;
    match compiled.eval(input) {
        Err(d) => Finding::error(id, format!("evaluation failed: {d}")),
        Ok(regorus::Value::Undefined) => Finding::error(
            id,
            format!("{} is undefined for this input (the Rego must always define it)", result_rule(&compiled.meta)),
        ),
        Ok(value) => finding_from_value(id, &value),
    }
}

/// The finding a control's `result` value makes (see [`finding_from_result`]). A well-formed
/// result is read directly, converting only its evidence to JSON; anything else goes through
/// `finding_from_result`, which names what is wrong.
fn finding_from_value(id: &str, value: &regorus::Value) -> Finding {
    if let Some(finding) = well_formed_finding(id, value) {
        return finding;
    }
    match serde_json::to_value(value) {
        Ok(json) => finding_from_result(id, json),
        Err(e) => Finding::error(id, format!("result cannot be represented as JSON: {e}")),
    }
}

/// `{status, message, evidence}` with a known status, a string message and an object
/// evidence, and no other key; `None` for anything else.
fn well_formed_finding(id: &str, value: &regorus::Value) -> Option<Finding> {
    let obj = value.as_object().ok()?;
    // One pass over the three fields, rather than a lookup each with a key built for it.
    let (mut status, mut message, mut evidence) = (None, None, None);
    for (key, field) in obj.iter() {
        let slot = match key.as_string().ok()?.as_ref() {
            "status" => &mut status,
            "message" => &mut message,
            "evidence" => &mut evidence,
            _ => return None,
        };
        *slot = Some(field);
    }
    let status = match status?.as_string().ok()?.as_ref() {
        "pass" => Status::Pass,
        "fail" => Status::Fail,
        "not_applicable" => Status::NotApplicable,
        _ => return None,
    };
    let message = message?.as_string().ok()?.to_string();
    let evidence = evidence?;
    evidence.as_object().ok()?;
    let evidence = to_json(evidence)?;
    Some(Finding { control: id.to_owned(), status, message, evidence })
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
