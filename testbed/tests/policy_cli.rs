//! `mangrove policy …` as security staff use it on pack directories: the shipped packs listed,
//! a broken copy of one refused with the file and line at fault.

mod common;

use std::process::Command;

#[test]
fn packs_are_listed_and_a_broken_pack_is_refused_at_the_line() {
    // With no controller configured, the packs shipped in this binary.
    let out = common::run(
        Command::new(common::bin("mangrove"))
            .args(["policy", "packs", "--json"])
            .env("MANGROVE_CONFIG", "/nonexistent/mangrove-cli.toml")
            .env_remove("MANGROVE_CONTROLLER"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no controller configured"));
    let packs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<&str> =
        packs.as_array().map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect()).unwrap_or_default();
    assert_eq!(names, vec!["vn-nd331-tcvn14423", "vn-nd85-tcvn11930"]);
    let controls: u64 = packs.as_array().map(|a| a.iter().filter_map(|p| p["controls"].as_u64()).sum()).unwrap_or(0);
    assert!(controls >= 30, "{controls} controls");

    // A copy of a shipped pack lints clean and its tests pass; with a syntax error added it
    // does not, and the message names the file and line.
    let dir = tempfile::tempdir().expect("tempdir");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/packs/vn-nd85-tcvn11930");
    let copy = dir.path().join("pack");
    let cp = common::run(Command::new("cp").arg("-r").arg(&src).arg(&copy));
    assert!(cp.status.success());
    for verb in ["lint", "test"] {
        let out = common::run(Command::new(common::bin("mangrove")).args(["policy", verb]).arg(&copy));
        assert!(out.status.success(), "policy {verb}: {}", String::from_utf8_lossy(&out.stdout));
    }
    let rego = copy.join("controls/time-sync.rego");
    let text = std::fs::read_to_string(&rego).expect("rego");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(19, "this is not rego ((");
    std::fs::write(&rego, lines.join("\n") + "\n").expect("write");
    let out = common::run(Command::new(common::bin("mangrove")).args(["policy", "lint"]).arg(&copy));
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("controls/time-sync.rego:20:"), "{said}");
}

/// A pack of the province's own, made from a copy of a shipped one: lint, test, then a
/// controller started with it lists it and security staff assign and evaluate it like a
/// shipped pack.
#[test]
fn a_custom_pack_is_loaded_by_the_controller_and_assignable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/packs/vn-nd85-tcvn11930");
    let pack = dir.path().join("camau-rieng");
    assert!(common::run(Command::new("cp").arg("-r").arg(&src).arg(&pack)).status.success());
    let meta = pack.join("pack.yaml");
    let text = std::fs::read_to_string(&meta).expect("pack.yaml").replace("vn-nd85-tcvn11930", "camau-rieng");
    std::fs::write(&meta, text).expect("write pack.yaml");
    for verb in ["lint", "test"] {
        let out = common::run(Command::new(common::bin("mangrove")).args(["policy", verb]).arg(&pack));
        assert!(out.status.success(), "policy {verb}: {}", String::from_utf8_lossy(&out.stdout));
    }

    let packs_env = pack.display().to_string();
    let tb = common::Testbed::up_with_env(None, &[("MANGROVE_POLICY_PACKS", &packs_env)]);
    let packs = tb.json(&["policy", "packs"]);
    let mine = packs
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "camau-rieng"))
        .unwrap_or_else(|| panic!("the custom pack is not listed: {packs}"))
        .clone();
    assert_eq!(mine["source"], packs_env.as_str(), "{mine}");
    assert!(packs.as_array().is_some_and(|a| a.iter().any(|p| p["source"] == "shipped")), "{packs}");

    let sec = tb.user_token("security");
    let out = tb.mg_as(&sec, &["policy", "assign", "camau-rieng", "--system", "qlvbdh"]);
    assert!(out.status.success(), "assign: {}", String::from_utf8_lossy(&out.stderr));
    let out = tb.mg_as(&sec, &["policy", "evaluate", "--system", "qlvbdh"]);
    assert!(out.status.success(), "evaluate: {}", String::from_utf8_lossy(&out.stderr));
    let findings = tb.json(&["policy", "findings", "--system", "qlvbdh"]);
    let ours: Vec<&serde_json::Value> =
        findings.as_array().map(|a| a.iter().filter(|f| f["framework"] == "camau-rieng").collect()).unwrap_or_default();
    assert!(!ours.is_empty(), "no finding from the custom pack: {findings}");
}
