//! `policy test`: runs every `test_*` rule of the controls' `_test.rego` files.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::diag::Diagnostic;
use crate::engine::load_control;
use crate::pack::{Control, Pack, PackError, load_dir};

/// One test: a `test_*` rule of a control's test file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct TestId {
    pub control: String,
    pub file: PathBuf,
    pub rule: String,
}

impl fmt::Display for TestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.control, self.file.display(), self.rule)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TestReport {
    pub passed: Vec<TestId>,
    /// Each failed test and why: false, undefined (a condition did not hold) or an error.
    pub failed: Vec<(TestId, String)>,
}

impl TestReport {
    pub fn is_success(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Runs the unit tests of every control of a loaded pack.
///
/// Each control is tested in an engine of its own (its Rego and its tests), so one broken
/// control fails only its own tests. A control without tests counts as one failure: every
/// control must ship them.
pub fn run_tests(pack: &Pack) -> TestReport {
    let mut report = TestReport::default();
    for control in &pack.controls {
        run_control_tests(control, &mut report, &mut Vec::new());
    }
    report
}

/// Loads the pack in `dir` and runs its tests.
pub fn run_tests_dir(dir: impl AsRef<Path>) -> Result<TestReport, PackError> {
    Ok(run_tests(&load_dir(dir)?))
}

/// Runs one control's tests into `report`; evaluation errors (as opposed to tests that are
/// false or undefined) also go to `errors`, located, for lint.
pub(crate) fn run_control_tests(control: &Control, report: &mut TestReport, errors: &mut Vec<Diagnostic>) {
    let id = |file: &Path, rule: &str| TestId {
        control: control.meta.id.clone(),
        file: file.to_owned(),
        rule: rule.to_owned(),
    };
    if control.tests.is_empty() {
        let file = control.rego.path.with_file_name(format!("{}_test.rego", control.meta.id));
        report.failed.push((id(&file, "(none)"), "no test file: every control ships Rego unit tests".to_owned()));
        return;
    }
    let mut engine = match load_control(control, true) {
        Ok(engine) => engine,
        Err(d) => {
            for test in &control.tests {
                report.failed.push((id(&test.path, "(load)"), d.to_string()));
            }
            return;
        }
    };
    let package = format!("{}_test", control.meta.package());
    for test in &control.tests {
        let rules = test_rules(&test.text);
        if rules.is_empty() {
            report.failed.push((id(&test.path, "(none)"), "no test_* rules in this file".to_owned()));
        }
        for rule in rules {
            let test_id = id(&test.path, &rule);
            match engine.eval_rule(format!("data.{package}.{rule}")) {
                Ok(regorus::Value::Bool(true)) => report.passed.push(test_id),
                Ok(regorus::Value::Bool(false)) => report.failed.push((test_id, "evaluated to false".to_owned())),
                Ok(regorus::Value::Undefined) => {
                    report.failed.push((test_id, "undefined: a condition in the test did not hold".to_owned()));
                }
                Ok(other) => report.failed.push((test_id, format!("evaluated to {other}, not true"))),
                Err(e) => {
                    let d = crate::diag::rego_diagnostic(&test.path, &e);
                    report.failed.push((test_id, d.to_string()));
                    errors.push(d);
                }
            }
        }
    }
}

/// The names of the `test_*` rules in a test file, in order, each once.
///
/// Rule heads start at the beginning of a line in every formatter's output (`opa fmt`,
/// `regal`), so a line scan finds them without depending on regorus' unstable AST.
pub(crate) fn test_rules(text: &str) -> Vec<String> {
    let mut rules: Vec<String> = Vec::new();
    for line in text.lines() {
        if !line.starts_with("test_") {
            continue;
        }
        let name: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !rules.contains(&name) {
            rules.push(name);
        }
    }
    rules
}

/// Lint's view of a test file: at least one passing-case and one failing-case test means at
/// least two `test_*` rules.
pub(crate) fn check_test_count(path: &Path, text: &str) -> Option<Diagnostic> {
    let n = test_rules(text).len();
    (n < 2).then(|| {
        Diagnostic::file(
            path,
            format!("{n} test_* rule(s): every control needs at least a passing-case and a failing-case test"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_rules_once_each() {
        let text = "package p_test\n\ntest_a if {\n  true\n}\n\ntest_a if { 1 == 1 }\ntest_b := true\n  test_indented if true\nnot_a_test if true\n";
        assert_eq!(test_rules(text), ["test_a", "test_b"]);
    }
}
