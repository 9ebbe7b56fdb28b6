//! The packs shipped in the binary load, compile, lint clean and pass their own unit tests.
//! These iterate over whatever is in `packs/`, so every control added is covered.

mod common;

use policies::{Evaluator, lint, run_tests, shipped};

#[test]
fn both_frameworks_are_shipped_and_load() {
    let packs = shipped().unwrap_or_else(|e| panic!("shipped packs must load: {e}"));
    let names: Vec<&str> = packs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["vn-nd331-tcvn14423", "vn-nd85-tcvn11930"]);
    for pack in &packs {
        assert_eq!(pack.framework, pack.name);
        assert_eq!(pack.input_schema, policies::INPUT_SCHEMA_VERSION);
        assert!(!pack.title_vi.is_empty() && !pack.title_en.is_empty());
    }
    let legacy = packs.iter().find(|p| p.name == "vn-nd85-tcvn11930").expect("legacy pack");
    for id in ["ssh-root-login", "firewall-default-deny"] {
        assert!(legacy.control(id).is_some(), "{id} missing from the legacy pack");
    }
}

#[test]
fn every_shipped_control_compiles() {
    for pack in shipped().unwrap_or_else(|e| panic!("shipped packs must load: {e}")) {
        if let Err(e) = Evaluator::new(&pack) {
            panic!("pack {} does not compile: {e}", pack.name);
        }
    }
}

#[test]
fn every_shipped_control_passes_its_unit_tests() {
    for pack in shipped().unwrap_or_else(|e| panic!("shipped packs must load: {e}")) {
        let report = run_tests(&pack);
        let failures: Vec<String> = report.failed.iter().map(|(id, why)| format!("  {id}: {why}")).collect();
        assert!(failures.is_empty(), "pack {} has failing Rego tests:\n{}", pack.name, failures.join("\n"));
        // At least a passing and a failing case per control.
        assert!(report.passed.len() >= 2 * pack.controls.len(), "pack {}: too few tests ran", pack.name);
    }
}

#[test]
fn shipped_packs_lint_clean_from_source() {
    for pack in shipped().unwrap_or_else(|e| panic!("shipped packs must load: {e}")) {
        let dir = common::packs_dir().join(&pack.name);
        let problems: Vec<String> = lint(&dir).iter().map(ToString::to_string).collect();
        assert!(problems.is_empty(), "lint {}:\n{}", dir.display(), problems.join("\n"));
    }
}

#[test]
fn embedded_packs_match_the_source_tree() {
    // The binary embeds packs/ at build time; a stale embed would ship rules nobody reviewed.
    for pack in shipped().unwrap_or_else(|e| panic!("shipped packs must load: {e}")) {
        let on_disk = policies::load_dir(common::packs_dir().join(&pack.name)).expect("source pack loads");
        let ids = |p: &policies::Pack| {
            p.controls.iter().map(|c| (c.meta.id.clone(), c.rego.text.clone())).collect::<Vec<_>>()
        };
        assert_eq!(ids(&pack), ids(&on_disk), "embedded {} differs from packs/ (rebuild)", pack.name);
    }
}
