//! `mangrove testbed chaos` on the Cà Mau container testbed: seeded overlapping faults while
//! agents report, then every invariant must hold. CI runs 200 faults (set
//! `MANGROVE_CHAOS_FAULTS` for more); the must-hold is 1,000.

mod common;

use common::ContainerTestbed;

#[test]
fn a_seeded_chaos_run_loses_no_report() {
    let faults: usize = std::env::var("MANGROVE_CHAOS_FAULTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    // 22 containers: container testbeds run no platform simulators yet, so the ESXi hosts get
    // stand-in agents beside the 13 others.
    let tb = ContainerTestbed::up(None, 22);
    let d = tb.dir_arg();
    let n = faults.to_string();
    let out = tb.mg(&["--json", "testbed", "chaos", "--seed", "7", "--faults", &n, "--dir", &d]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("chaos printed no JSON ({e}): {text}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "chaos failed: {v:#}");
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["faults_planned"], faults, "{v:#}");
    let applied: u64 = v["faults_applied"].as_object().expect("kinds").values().filter_map(|x| x.as_u64()).sum();
    assert_eq!(applied, faults as u64, "{v:#}");
    assert!(v["most_faults_at_once"].as_u64().unwrap_or(0) > 1, "faults should overlap: {v:#}");
    assert_eq!(v["reports_assigned"], v["reports_stored"], "{v:#}");
    assert!(v["reports_stored"].as_u64().unwrap_or(0) > faults as u64, "agents report while faults run: {v:#}");
    for inv in v["invariants"].as_array().expect("invariants") {
        assert_eq!(inv["holds"], true, "{inv}");
    }
}
