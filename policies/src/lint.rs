//! `policy lint`: every problem of a pack directory, each with its file and line.

use std::path::Path;

use serde_json::Value;

use crate::diag::{Diagnostic, rego_line_of};
use crate::engine::{Status, compile_control, finding_from_result, load_control, params_at};
use crate::pack::{Control, assemble, read_dir};
use crate::testing::{TestReport, check_test_count, run_control_tests};

/// Checks a pack directory without stopping at the first problem: metadata (YAML syntax,
/// unknown or missing fields, ids, levels, parameters, remediation), file pairing, Rego
/// syntax and compilation, package names, the `result` rule, a defined result when the
/// facts are absent, the presence of tests, and evaluation errors the tests run into (whether
/// the tests pass is [`crate::run_tests`]' business). Sorted by file and line; empty when clean.
pub fn lint(dir: &Path) -> Vec<Diagnostic> {
    let files = match read_dir(dir) {
        Ok(files) => files,
        Err(e) => return vec![Diagnostic::file(dir, e.to_string())],
    };
    let assembled = assemble(&files);
    let mut out = assembled.diagnostics;
    for control in &assembled.controls {
        lint_control(control, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn lint_control(control: &Control, out: &mut Vec<Diagnostic>) {
    let compiled = match compile_control(control) {
        Ok((engine, _)) => Some(engine),
        Err(d) => {
            out.push(d);
            None
        }
    };
    match control.tests.as_slice() {
        [] => out.push(Diagnostic::file(
            control.rego.path.with_file_name(format!("{}_test.rego", control.meta.id)),
            "missing: every control ships Rego unit tests (a passing and a failing case)",
        )),
        tests => {
            for test in tests {
                out.extend(check_test_count(&test.path, &test.text));
            }
            // Only worth parsing the tests once the control itself loads; its errors are reported above.
            if compiled.is_some() {
                match load_control(control, true) {
                    Err(d) => out.push(d),
                    // Some mistakes (a builtin called with the wrong arity or types) only show when
                    // the rule runs: the tests run it, and the errors they raise are located.
                    Ok(_) => run_control_tests(control, &mut TestReport::default(), out),
                }
            }
        }
    }
    if let Some(mut engine) = compiled {
        check_defined_without_facts(control, &mut engine, out);
    }
}

/// The contract says `result` is never undefined for a well-formed input; the commonest
/// slip is forgetting the case where the facts were not collected, so try exactly that.
fn check_defined_without_facts(control: &Control, engine: &mut regorus::Engine, out: &mut Vec<Diagnostic>) {
    let level = control.meta.levels.iter().copied().min().unwrap_or(1);
    let input = serde_json::json!({
        "schema_version": crate::INPUT_SCHEMA_VERSION,
        "now_unix": 0,
        "host": {"name": "lint", "site": "lint", "kind": "vm", "facts": {"security": {}}},
        "level": level,
        "systems": [],
        "params": Value::Object(params_at(&control.meta, level)),
        "platform": null,
        "backups": null,
        "endpoint": null,
        "evidence": null,
        "drills": null,
    });
    engine.set_input(regorus::Value::from(input));
    let problem = match engine.eval_rule(crate::engine::result_rule(&control.meta)) {
        Ok(regorus::Value::Undefined) => {
            Some("result is undefined when no facts were collected; add a not_applicable case".to_owned())
        }
        Ok(value) => match serde_json::to_value(&value) {
            Ok(json) => {
                let finding = finding_from_result(&control.meta.id, json);
                (finding.status == Status::Error).then(|| format!("with no facts collected: {}", finding.message))
            }
            Err(e) => Some(format!("result is not JSON: {e}")),
        },
        Err(e) => Some(format!("evaluation with no facts collected fails: {}", one_line(&format!("{e:#}")))),
    };
    if let Some(message) = problem {
        let (line, column) = rego_line_of(&control.rego.text, "result");
        out.push(Diagnostic::new(&control.rego.path, line, column, message));
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
