//! Machines as containers on a DC and a DR network: each named after its machine, the DR site
//! cut off and joined again without losing a report, and nothing left behind by `down`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{ContainerTestbed, bin, run, state_of};
use serde_json::Value;

#[test]
fn container_hosts_survive_a_dc_dr_partition_and_leave_nothing_behind() {
    let tb = ContainerTestbed::up(Some(common::SMALL_INVENTORY), 3);

    // Every machine is a container named after it, with its own hostname.
    let names = String::from_utf8_lossy(&run(Command::new("docker").args(["ps", "--format", "{{.Names}}"])).stdout)
        .into_owned();
    for m in ["dc-esxi-01", "dr-compute-01", "web-app-01"] {
        let name = testbed::containers::container_name(tb.dir.path(), m);
        assert!(name.starts_with(m));
        assert!(names.lines().any(|l| l == name), "no container {name} in {names}");
        let h = run(Command::new("docker").args(["exec", &name, "hostname"]));
        assert_eq!(String::from_utf8_lossy(&h.stdout).trim(), m);
    }
    let hs = tb.wait(Duration::from_secs(90), |hs| hs.len() == 3 && hs.iter().all(|h| h["state"] == "connected"));
    assert!(hs.is_some(), "not all connected");
    // Each reports its own facts: the container's hostname.
    let dr = tb.json(&["hosts", "show", "dr-compute-01"]);
    assert_eq!(dr["facts"]["hostname"], "dr-compute-01", "{dr}");

    // Cut DR off: its host goes down, the DC ones stay connected.
    let d = tb.dir_arg();
    tb.json(&["testbed", "fault", "partition", "dc", "dr", "--dir", &d]);
    let listed = tb.json(&["testbed", "faults", "--dir", &d]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let cut = tb.wait(Duration::from_secs(25), |hs| state_of(hs, "dr-compute-01") == "down");
    let cut = cut.expect("DR host down within 25 s of the partition");
    assert_eq!(state_of(&cut, "dc-esxi-01"), "connected");
    assert_eq!(state_of(&cut, "web-app-01"), "connected");
    std::thread::sleep(Duration::from_secs(6));
    let waiting = run(Command::new(bin("mangrove-agent"))
        .args(["status", "--json", "--state-dir"])
        .arg(tb.dir.path().join("agents").join("dr-compute-01")));
    let waiting: Value = serde_json::from_slice(&waiting.stdout).expect("status");
    assert!(waiting["outbox_len"].as_u64().unwrap_or(0) > 0, "DR reports should wait in its outbox: {waiting}");

    // Heal: connected again, the outbox drains, no sequence number missing.
    tb.json(&["testbed", "fault", "heal", "--dir", &d]);
    tb.wait(Duration::from_secs(40), |hs| hs.iter().all(|h| h["state"] == "connected")).expect("connected after heal");
    let mut drained = false;
    for _ in 0..30 {
        let st = run(Command::new(bin("mangrove-agent"))
            .args(["status", "--json", "--state-dir"])
            .arg(tb.dir.path().join("agents").join("dr-compute-01")));
        let st: Value = serde_json::from_slice(&st.stdout).expect("status");
        if st["outbox_len"] == 0 {
            drained = true;
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(drained, "DR outbox did not drain");
    let a = tb.json(&["hosts", "show", "dr-compute-01"])["agent"].clone();
    assert_eq!(a["reports_stored"], a["last_seq"], "{a}");

    // A crashed agent (restarted by runit), a frozen host, a host switched off.
    tb.json(&["testbed", "fault", "kill", "dc-esxi-01", "--dir", &d]);
    tb.json(&["testbed", "fault", "pause", "web-app-01", "--dir", &d]);
    tb.json(&["testbed", "fault", "stop", "dr-compute-01", "--dir", &d]);
    let bogus = tb.mg(&["testbed", "fault", "stop", "no-such-host", "--dir", &d]);
    assert!(!bogus.status.success());
    assert!(String::from_utf8_lossy(&bogus.stderr).contains("no container no-such-host"));
    // An agent whose clock is five minutes ahead still reports (its facts carry its time) and
    // names the problem.
    tb.json(&["testbed", "fault", "clock", "dc-esxi-01", "+300s", "--dir", &d]);
    let listed = tb.json(&["testbed", "faults", "--dir", &d]);
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    let mut skewed = false;
    for _ in 0..40 {
        let h = tb.json(&["hosts", "show", "dc-esxi-01"]);
        let facts_at = h["facts_at"].as_str().unwrap_or("");
        let last_seen = h["last_seen"].as_str().unwrap_or("");
        // RFC 3339 in UTC with the same layout: text order is time order.
        // It reports, and says its clock is off: degraded, not down.
        if h["state"] == "degraded"
            && h["problems"].to_string().contains("ahead of the controller's")
            && facts_at > last_seen
        {
            skewed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(skewed, "the skewed agent's facts should be stamped ahead of the controller's clock");
    let hit = tb.wait(Duration::from_secs(25), |hs| {
        state_of(hs, "web-app-01") == "down" && state_of(hs, "dr-compute-01") == "down"
    });
    let hit = hit.expect("paused and stopped hosts down within 25 s");
    assert_eq!(state_of(&hit, "dc-esxi-01"), "degraded", "a killed agent is restarted by runit (its clock still off)");
    tb.json(&["testbed", "fault", "heal", "--dir", &d]);
    tb.wait(Duration::from_secs(60), |hs| hs.iter().all(|h| h["state"] == "connected"))
        .expect("connected after healing kill, pause and stop");
    std::thread::sleep(Duration::from_secs(6));
    for h in ["dc-esxi-01", "web-app-01", "dr-compute-01"] {
        let a = tb.json(&["hosts", "show", h])["agent"].clone();
        assert_eq!(a["reports_stored"], a["last_seq"], "{h}: {a}");
    }

    // Down removes every container and network the testbed made.
    let label = format!("label=org.mangrove.testbed={}", tb.dir.path().display());
    let down = run(Command::new(bin("mangrove")).args(["testbed", "down", "--dir"]).arg(tb.dir.path()));
    assert!(down.status.success());
    let left = run(Command::new("docker").args(["ps", "-aq", "--filter", &label]));
    assert!(left.stdout.is_empty(), "containers left: {}", String::from_utf8_lossy(&left.stdout));
    let nets = run(Command::new("docker").args(["network", "ls", "-q", "--filter", &label]));
    assert!(nets.stdout.is_empty(), "networks left: {}", String::from_utf8_lossy(&nets.stdout));
}
