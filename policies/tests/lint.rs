//! `policy lint` names the file and line of every problem it reports.

mod common;

use std::path::Path;

use policies::{Diagnostic, lint};

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read file to edit");
    assert!(text.contains(from), "{} does not contain {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write edited file");
}

fn line_of(path: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(path).expect("read file");
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1).expect("needle present")
}

fn render(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("  {d}\n")).collect()
}

#[test]
fn small_pack_is_clean() {
    let dir = common::small_pack(&["ssh-root-login", "firewall-default-deny"]);
    let diags = lint(dir.path());
    assert!(diags.is_empty(), "unexpected problems:\n{}", render(&diags));
}

#[test]
fn rego_syntax_error_in_a_copy_of_a_shipped_pack_names_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::copy_tree(&common::packs_dir().join("vn-nd85-tcvn11930"), dir.path());
    let rego = dir.path().join("controls/ssh-root-login.rego");
    edit(&rego, "\tsshd.permitrootlogin == \"no\"\n", "\tsshd.permitrootlogin == == \"no\"\n");
    let line = line_of(&rego, "== ==");

    let diags = lint(dir.path());
    assert!(
        diags.iter().any(|d| d.file == rego && d.line == line && d.column > 0),
        "expected a diagnostic at {}:{line}, got:\n{}",
        rego.display(),
        render(&diags)
    );
    // Loading for evaluation refuses the pack the same way.
    let pack = policies::load_dir(dir.path()).expect("metadata is still fine");
    let err = policies::Evaluator::new(&pack).expect_err("broken Rego must not compile").to_string();
    assert!(err.starts_with(&format!("{}:{line}:", rego.display())), "{err}");
}

#[test]
fn bad_yaml_names_file_and_line() {
    let dir = common::small_pack(&["ssh-root-login"]);
    let yaml = dir.path().join("controls/ssh-root-login.yaml");
    edit(&yaml, "severity: high\n", "severity: [high\n");
    let diags = lint(dir.path());
    let d = diags.iter().find(|d| d.file == yaml).unwrap_or_else(|| panic!("no YAML diagnostic:\n{}", render(&diags)));
    let line = line_of(&yaml, "severity: [high");
    assert!(d.line >= line, "YAML error reported at line {} before the broken line {line}: {d}", d.line);
    let err = policies::load_dir(dir.path()).expect_err("bad YAML refused").to_string();
    assert!(err.starts_with(&format!("{}:", yaml.display())), "{err}");
}

#[test]
fn unknown_and_mistyped_fields_point_at_the_field() {
    let dir = common::small_pack(&["ssh-root-login", "firewall-default-deny"]);
    let ssh = dir.path().join("controls/ssh-root-login.yaml");
    edit(&ssh, "severity: high\n", "severity: high\nseverty: low\n");
    let fw = dir.path().join("controls/firewall-default-deny.yaml");
    edit(&fw, "levels: [2, 3, 4, 5]", "levels: [2, three]");
    let diags = lint(dir.path());
    let at = |file: &Path, needle: &str, word: &str| {
        let line = line_of(file, needle);
        assert!(
            diags.iter().any(|d| d.file == file && d.line == line && d.message.contains(word)),
            "expected {word:?} at {}:{line}:\n{}",
            file.display(),
            render(&diags)
        );
    };
    at(&ssh, "severty:", "severty");
    at(&fw, "levels:", "levels");
}

#[test]
fn semantic_metadata_problems_are_located() {
    let dir = common::small_pack(&["ssh-root-login", "firewall-default-deny"]);
    let ssh = dir.path().join("controls/ssh-root-login.yaml");
    edit(&ssh, "params: {}\n", "params:\n  max_auth_tries: {1: 6, 2: 4, 3: 4, 4: 3}\n");
    edit(&ssh, "facts: [sshd]", "facts: [sshd, sshd_keys]");
    edit(&ssh, "  ansible:\n", "  task: {program: \"true\"}\n  ansible:\n");
    let fw = dir.path().join("controls/firewall-default-deny.yaml");
    edit(&fw, "id: firewall-default-deny", "id: firewall-deny");
    edit(&fw, "  text_en:", "  task: {program: nft, args: [\"-f\", \"/etc/nftables.conf\"]}\n  text_en:");
    let diags = lint(dir.path());
    let has = |file: &Path, line: usize, words: &[&str]| {
        assert!(
            diags.iter().any(|d| d.file == file && d.line == line && words.iter().all(|w| d.message.contains(w))),
            "expected {words:?} at {}:{line}:\n{}",
            file.display(),
            render(&diags)
        );
    };
    let params_line = line_of(&ssh, "max_auth_tries");
    has(&ssh, params_line, &["params.max_auth_tries", "level 1 is not in levels"]);
    has(&ssh, params_line, &["params.max_auth_tries", "no value for level 5"]);
    has(&ssh, line_of(&ssh, "facts:"), &["sshd_keys", "not an agent collector"]);
    has(&ssh, line_of(&ssh, "remediation:"), &["either `task` or `ansible`, not both"]);
    has(&fw, line_of(&fw, "id:"), &["differs from the file name"]);
    has(&fw, line_of(&fw, "task:"), &["remediation.task", "safe: false"]);
}

#[test]
fn rego_contract_problems_are_reported() {
    let dir = common::small_pack(&["ssh-root-login", "firewall-default-deny"]);
    let controls = dir.path().join("controls");
    // Wrong package.
    let ssh = controls.join("ssh-root-login.rego");
    edit(&ssh, "package mangrove.controls.ssh_root_login", "package mangrove.controls.ssh_root");
    // No result rule, and a test file with a single test.
    let fw = controls.join("firewall-default-deny.rego");
    let text = std::fs::read_to_string(&fw).expect("read").replace("result :=", "verdict :=");
    std::fs::write(&fw, text).expect("write");
    let fw_test = controls.join("firewall-default-deny_test.rego");
    let test = std::fs::read_to_string(&fw_test).expect("read");
    let first_test_end = test.find("\n}\n").expect("a test rule") + 3;
    std::fs::write(&fw_test, &test[..first_test_end]).expect("write");
    // A Rego file with no metadata.
    std::fs::write(controls.join("orphan.rego"), "package mangrove.controls.orphan\n").expect("write");

    let diags = lint(dir.path());
    let has = |file: &Path, line: usize, word: &str| {
        assert!(
            diags.iter().any(|d| d.file == file && d.line == line && d.message.contains(word)),
            "expected {word:?} at {}:{line}:\n{}",
            file.display(),
            render(&diags)
        );
    };
    has(&ssh, 1, "expected package mangrove.controls.ssh_root_login");
    has(&fw, 0, "no `result` rule");
    has(&fw_test, 0, "1 test_* rule(s)");
    has(&controls.join("orphan.rego"), 0, "no control metadata orphan.yaml");
}

#[test]
fn missing_tests_and_undefined_result_are_reported() {
    let dir = common::small_pack(&["ssh-root-login"]);
    let controls = dir.path().join("controls");
    std::fs::remove_file(controls.join("ssh-root-login_test.rego")).expect("remove tests");
    // Drop the not_applicable case: with no facts the result becomes undefined.
    let rego = controls.join("ssh-root-login.rego");
    let text = std::fs::read_to_string(&rego).expect("read");
    let cut = text.find("result := {\"status\": \"not_applicable\"").expect("n/a case");
    std::fs::write(&rego, &text[..cut]).expect("write");
    let diags = lint(dir.path());
    assert!(
        diags.iter().any(|d| d.file == controls.join("ssh-root-login_test.rego") && d.message.contains("unit tests")),
        "{}",
        render(&diags)
    );
    assert!(
        diags.iter().any(|d| d.file == rego && d.line > 0 && d.message.contains("undefined when no facts")),
        "{}",
        render(&diags)
    );
}

#[test]
fn not_a_pack_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let diags = lint(&missing);
    assert_eq!(diags.len(), 1, "{}", render(&diags));
    assert!(diags[0].to_string().contains("nope"), "{}", diags[0]);
}
