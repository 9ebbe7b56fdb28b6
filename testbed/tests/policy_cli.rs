//! `mangrove policy …` as security staff use it on pack directories: the shipped packs listed,
//! a broken copy of one refused with the file and line at fault.

mod common;

use std::process::Command;

#[test]
fn packs_are_listed_and_a_broken_pack_is_refused_at_the_line() {
    let out = common::run(Command::new(common::bin("mangrove")).args(["policy", "packs", "--json"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
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
