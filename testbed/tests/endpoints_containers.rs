//! Endpoint protection with `--hosts containers` (the acceptance's way): the KSC simulator runs
//! in a container of its own on the controller's network, the controller (in its container)
//! reads it over TLS, and `testbed up` is ready only once the roll-up equals the simulator's
//! truth. Needs Docker and root, like the other container tests; fails loudly without them.

mod common;

use common::ContainerTestbed;
use serde_json::Value;

#[test]
fn container_testbed_rolls_up_the_ksc_simulator_and_keeps_it_through_a_403() {
    let tb = ContainerTestbed::up(None, 22);
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(tb.dir.path().join("ksc/state/ksc-truth.json")).expect("the simulator's truth"),
    )
    .expect("truth JSON");
    let s = tb.json(&["endpoints", "summary"]);
    assert_eq!(s["total"], 2753);
    assert_eq!(s["by_status"], truth["by_status"]);
    assert!(s["source"].as_str().is_some_and(|u| u.ends_with(".11:13299")), "KSC's own port, in its container: {s}");
    let groups = s["groups"].as_array().expect("groups");
    assert_eq!(groups.iter().map(|g| g["total"].as_u64().unwrap_or(0)).sum::<u64>(), 2753);
    let crit = tb.json(&["endpoints", "list", "--status", "critical"]);
    assert_eq!(crit.as_array().map(Vec::len), s["by_status"]["critical"].as_u64().map(|n| n as usize));

    let dir = tb.dir_arg();
    assert!(tb.mg(&["testbed", "fault", "ksc", "session-ended", "--dir", &dir]).status.success());
    let out = tb.mg(&["endpoints", "refresh"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 403"), "{}", String::from_utf8_lossy(&out.stderr));
    let s2 = tb.json(&["endpoints", "summary"]);
    assert_eq!((s2["total"].clone(), s2["stale"].clone()), (Value::from(2753), Value::Bool(true)));
    assert_eq!(s2["as_of"], s["as_of"]);
    assert!(tb.mg(&["testbed", "fault", "heal", "--dir", &dir]).status.success());
    assert!(tb.mg(&["endpoints", "refresh"]).status.success(), "healed");
}
