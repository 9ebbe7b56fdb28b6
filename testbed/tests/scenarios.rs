//! Container scenarios beyond the partition: a host's disk fills up, a host's link to the
//! controller turns slow, the controller restarts. After each, no report is missing.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{ContainerTestbed, bin, run, state_of};
use serde_json::Value;

fn agent_status(tb: &ContainerTestbed, host: &str) -> Value {
    let out = run(Command::new(bin("mangrove-agent"))
        .args(["status", "--json", "--state-dir"])
        .arg(tb.dir.path().join("agents").join(host)));
    assert!(out.status.success(), "status: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status json")
}

/// Waits until every host's reports are all stored (numbers 1..last, once each).
fn assert_no_gaps(tb: &ContainerTestbed, hosts: &[&str]) {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: Vec<String> = hosts
            .iter()
            .filter_map(|h| {
                let a = tb.json(&["hosts", "show", h])["agent"].clone();
                let st = agent_status(tb, h);
                let done = st["outbox_len"] == 0
                    && a["reports_stored"] == a["last_seq"]
                    && a["last_seq"] == st["last_seq_assigned"];
                (!done).then(|| format!("{h}: controller {a}, agent {st}"))
            })
            .collect();
        if pending.is_empty() {
            return;
        }
        assert!(Instant::now() < end, "reports missing or waiting: {pending:?}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Seconds a one-line command task takes from submission to result.
fn task_round_trip(tb: &ContainerTestbed, host: &str) -> Duration {
    let t = Instant::now();
    let v = tb.json(&["tasks", "run", host, "--", "echo", "hi"]);
    assert_eq!(v["state"], "exited", "{v}");
    t.elapsed()
}

#[test]
fn disk_full_slow_link_and_controller_restart_lose_nothing() {
    let tb = ContainerTestbed::up(Some(common::SMALL_INVENTORY), 3);
    let d = tb.dir_arg();
    let all = ["dc-esxi-01", "dr-compute-01", "web-app-01"];
    tb.wait(Duration::from_secs(90), |hs| hs.iter().all(|h| h["state"] == "connected")).expect("connected");

    // Disk full: the agent keeps running and says why; the host is degraded, not down.
    let filled = tb.json(&["testbed", "fault", "disk-full", "web-app-01", "--dir", &d]);
    assert!(filled["ballast_bytes"].as_u64().unwrap_or(0) > 0, "{filled}");
    let end = Instant::now() + Duration::from_secs(30);
    let degraded = loop {
        let h = tb.json(&["hosts", "show", "web-app-01"]);
        if h["state"] == "degraded" {
            break h;
        }
        assert!(Instant::now() < end, "not degraded within 30 s of disk-full: {h}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let problems = degraded["problems"].to_string();
    assert!(problems.contains("No space left on device"), "{problems}");
    assert_eq!(degraded["agent"]["session_live"], true, "{degraded}");
    std::thread::sleep(Duration::from_secs(6));
    let hs = tb.json(&["hosts", "list"]);
    assert_eq!(state_of(hs.as_array().expect("hosts"), "web-app-01"), "degraded", "{hs}");
    assert_eq!(state_of(hs.as_array().expect("hosts"), "dc-esxi-01"), "connected", "{hs}");

    // An agent that (re)starts on the full disk runs too, and says so.
    tb.json(&["testbed", "fault", "kill", "web-app-01", "--dir", &d]);
    std::thread::sleep(Duration::from_secs(3));
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let h = tb.json(&["hosts", "show", "web-app-01"]);
        if h["state"] == "degraded" && h["agent"]["session_live"] == true {
            break;
        }
        assert!(Instant::now() < end, "an agent restarted on a full disk should report degraded: {h}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // Space returns: healthy again, nothing corrupted, and every drop known to the controller.
    tb.json(&["testbed", "fault", "heal", "--dir", &d]);
    tb.wait(Duration::from_secs(60), |hs| state_of(hs, "web-app-01") == "connected")
        .expect("connected (no problems) within 60 s of space returning");
    assert_no_gaps(&tb, &all);
    let st = agent_status(&tb, "web-app-01");
    assert!(st["outbox_dropped"].as_u64().unwrap_or(0) > 0, "reports that could not be written are counted: {st}");
    let a = tb.json(&["hosts", "show", "web-app-01"])["agent"].clone();
    assert_eq!(a["outbox_dropped"], st["outbox_dropped"], "the controller knows the count: {a} {st}");
    let outbox = tb.dir.path().join("agents").join("web-app-01").join("outbox");
    let corrupt: Vec<_> = std::fs::read_dir(&outbox)
        .expect("outbox")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".corrupt"))
        .collect();
    assert!(corrupt.is_empty(), "corrupt outbox entries: {corrupt:?}");

    // A slow link: each way held 500 ms, so a task's round trip takes at least a second.
    tb.json(&["testbed", "fault", "latency", "dc-esxi-01", "500ms", "--dir", &d]);
    tb.wait(Duration::from_secs(30), |hs| state_of(hs, "dc-esxi-01") == "connected").expect("still connected");
    let slow = task_round_trip(&tb, "dc-esxi-01");
    assert!(slow >= Duration::from_millis(1000), "round trip through the delay proxy took {slow:?}");
    let bad = tb.mg(&["testbed", "fault", "latency", "dc-esxi-01", "soon", "--dir", &d]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid delay"), "{}", String::from_utf8_lossy(&bad.stderr));
    tb.json(&["testbed", "fault", "heal", "--dir", &d]);
    assert_eq!(tb.json(&["testbed", "faults", "--dir", &d]), Value::Array(vec![]));

    // The controller restarts: every agent reconnects and replays what waited.
    let prefix = testbed::containers::prefix(tb.dir.path());
    let restarted = run(Command::new("docker").args(["restart", "-t", "5", &format!("{prefix}-controller")]));
    assert!(restarted.status.success(), "{}", String::from_utf8_lossy(&restarted.stderr));
    tb.wait(Duration::from_secs(60), |hs| hs.iter().all(|h| h["state"] == "connected"))
        .expect("connected after the controller restarted");
    assert_no_gaps(&tb, &all);

    // A clock five minutes behind: the agent still connects, reports and says its clock is
    // off (degraded), and its new facts (stamped in its past) replace the ones before.
    let before = tb.json(&["hosts", "show", "web-app-01"])["facts_at"].as_str().unwrap_or_default().to_string();
    tb.json(&["testbed", "fault", "clock", "web-app-01", "-5m", "--dir", &d]);
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let h = tb.json(&["hosts", "show", "web-app-01"]);
        let facts_at = h["facts_at"].as_str().unwrap_or_default().to_string();
        // RFC 3339 in UTC with the same layout: text order is time order.
        if h["state"] == "degraded"
            && h["problems"].to_string().contains("s behind the controller's")
            && facts_at < before
        {
            break;
        }
        assert!(Instant::now() < end, "no facts or clock problem from the agent 5 minutes behind: {h}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // Two days ahead its certificate looks expired to it, but the controller's clock decides:
    // it connects, keeps reporting, and says how far off it is.
    tb.json(&["testbed", "fault", "clock", "web-app-01", "+2d", "--dir", &d]);
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let h = tb.json(&["hosts", "show", "web-app-01"]);
        if h["state"] == "degraded" && h["problems"].to_string().contains("ahead of the controller's") {
            break;
        }
        assert!(Instant::now() < end, "the agent two days ahead should report its clock problem: {h}");
        std::thread::sleep(Duration::from_millis(500));
    }
    tb.json(&["testbed", "fault", "heal", "--dir", &d]);
    tb.wait(Duration::from_secs(60), |hs| hs.iter().all(|h| h["state"] == "connected"))
        .expect("connected once the clock is right again");
    assert_no_gaps(&tb, &all);
}
