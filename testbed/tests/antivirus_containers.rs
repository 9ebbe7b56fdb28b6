//! ClamAV on a container host, for real: the system's guest VM runs clamd (Debian's
//! clamav-daemon under runit) on the image's custom signature database. Its agent reports
//! ClamAV with version and signature information; a file matching the custom signature,
//! scanned through clamd, becomes a threat event the controller lists (once, across an agent
//! restart); stopping clamd makes the host `degraded` with that reason within one facts
//! interval; signatures older than the system's level allows make it `degraded` too.
//!
//! Needs Docker and the host image (`mangrove testbed image build`, made on first use).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::ContainerTestbed;
use serde_json::Value;
use testbed::image::{CLAMAV_TEST_MARKER, CLAMAV_TEST_SIGNATURE};

const HOST: &str = "web-app-01";
/// The controller's default facts interval, and the agents' heartbeat interval.
const FACTS_INTERVAL: Duration = Duration::from_secs(60);
const HEARTBEAT: Duration = Duration::from_secs(5);

fn docker_exec(container: &str, script: &str) -> std::process::Output {
    Command::new("docker").args(["exec", container, "sh", "-c", script]).output().expect("docker exec")
}

/// Polls `hosts show HOST --json` until `pred` holds; the last answer either way.
fn wait_host(tb: &ContainerTestbed, timeout: Duration, pred: impl Fn(&Value) -> bool) -> (bool, Value) {
    let end = Instant::now() + timeout;
    loop {
        let out = tb.mg(&["--json", "hosts", "show", HOST]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if pred(&v) {
            return (true, v);
        }
        if Instant::now() > end {
            return (false, v);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn threat_events(tb: &ContainerTestbed) -> Vec<Value> {
    let v = tb.json(&["hosts", "events", HOST, "--kind", "antivirus.threat"]);
    v.as_array().cloned().unwrap_or_default()
}

#[test]
fn clamd_on_a_container_host_is_reported_its_detections_are_events_and_its_stop_degrades_the_host() {
    let tb = ContainerTestbed::up(Some(common::SMALL_INVENTORY), 3);
    let container = testbed::containers::container_name(tb.dir.path(), HOST);

    // ClamAV reported, running, with its version and the custom database.
    let (ok, h) = wait_host(&tb, Duration::from_secs(120), |h| h["facts"]["antivirus"]["engine_running"] == true);
    assert!(ok, "{HOST} never reported a running clamd: {}", h["facts"]["antivirus"]);
    let av = &h["facts"]["antivirus"];
    let version = docker_exec(&container, "clamd --version");
    let version = String::from_utf8_lossy(&version.stdout);
    let engine = version.trim().strip_prefix("ClamAV ").and_then(|v| v.split('/').next()).expect("clamd --version");
    assert_eq!(av["product"], "clamav", "{av}");
    assert_eq!(av["version"], engine, "{av}");
    assert_eq!(av["signature_version"], "custom: mangrove-testbed.ndb", "{av}");
    assert!(av["signature_time_unix"].is_i64(), "{av}");
    assert_eq!(h["state"], "connected", "{h}");

    // A matching file scanned through clamd: one threat event, listed by the controller.
    let scan = docker_exec(
        &container,
        &format!(
            "printf 'quarterly report\\n{CLAMAV_TEST_MARKER}\\n' > /tmp/invoice.doc && clamdscan --fdpass /tmp/invoice.doc"
        ),
    );
    assert_eq!(scan.status.code(), Some(1), "clamdscan: {}", String::from_utf8_lossy(&scan.stdout));
    let end = Instant::now() + FACTS_INTERVAL + Duration::from_secs(15);
    let mut events = threat_events(&tb);
    while events.is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_secs(1));
        events = threat_events(&tb);
    }
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["fields"]["signature"], CLAMAV_TEST_SIGNATURE);
    assert_eq!(events[0]["fields"]["path"], "/tmp/invoice.doc");

    // The agent restarts: it sends a fresh snapshot at once, and does not report the detection
    // again.
    let before = wait_host(&tb, Duration::ZERO, |_| true).1["facts_at"].clone();
    let restart = docker_exec(&container, "sv restart mangrove-agent");
    assert!(restart.status.success(), "{}", String::from_utf8_lossy(&restart.stdout));
    let (ok, h) = wait_host(&tb, Duration::from_secs(60), |h| h["facts_at"] != before && h["facts_at"].is_string());
    assert!(ok, "no snapshot after the agent restarted: {h}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(threat_events(&tb).len(), 1, "the detection was reported again after a restart");
    assert_eq!(h["facts"]["antivirus"]["threats_detected"], 1, "{}", h["facts"]["antivirus"]);

    // clamd stops: degraded, with the reason, within one facts interval (plus a heartbeat).
    let stop = docker_exec(&container, "sv down clamd");
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stdout));
    let stopped_at = Instant::now();
    let (ok, h) = wait_host(&tb, FACTS_INTERVAL + HEARTBEAT + Duration::from_secs(5), |h| {
        h["state"] == "degraded"
            && h["problems"].as_array().is_some_and(|p| {
                p.iter().any(|p| p.as_str().is_some_and(|p| p.starts_with("anti-malware engine clamav has stopped")))
            })
    });
    assert!(
        ok,
        "{HOST} not degraded with the reason {:.0} s after clamd stopped: {h}",
        stopped_at.elapsed().as_secs_f64()
    );
    assert_eq!(h["facts"]["antivirus"]["engine_running"], false, "{}", h["facts"]["antivirus"]);

    // Signatures older than the level allows (the system is level 2: 7 days): the controller
    // names it once the next snapshot carries the database's time.
    let age = docker_exec(&container, "touch -d '10 days ago' /var/lib/clamav/mangrove-testbed.ndb");
    assert!(age.status.success(), "{}", String::from_utf8_lossy(&age.stderr));
    let (ok, h) = wait_host(&tb, FACTS_INTERVAL + HEARTBEAT + Duration::from_secs(5), |h| {
        h["problems"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "anti-malware clamav signatures are 10 days old; level 2 allows 7"))
    });
    assert!(ok, "{HOST}: no signature-age problem: {h}");
    assert_eq!(h["state"], "degraded");
}
