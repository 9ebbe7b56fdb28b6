//! Video-conference readiness in a process testbed (the device simulators on 127.0.2.N): each
//! fault names its reason, a device answering garbage on telnet gives a clear error and keeps
//! its last known state with its age, a proxy agent that is gone gives *heartbeat timeout* with
//! the last known state, the metrics follow, and no password shows in a process's arguments.

mod common;

use std::time::{Duration, Instant};

use common::Testbed;
use serde_json::Value;

fn check(tb: &Testbed) -> (Vec<Value>, Duration) {
    let t0 = Instant::now();
    let v = tb.json(&["vc", "check"]);
    (v.as_array().cloned().expect("a list of devices"), t0.elapsed())
}

fn device<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter().find(|d| d["device"] == name).unwrap_or_else(|| panic!("{name} missing from {all:?}"))
}

fn check_of<'a>(d: &'a Value, kind: &str) -> &'a Value {
    d["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} in {d}"))
}

#[test]
fn faults_name_their_reasons_and_the_last_known_state_is_kept() {
    let tb = Testbed::up(None);
    let (all, took) = check(&tb);
    assert_eq!(all.len(), 11);
    assert!(all.iter().all(|d| d["go"] == true), "{all:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let dir = tb.path().display().to_string();

    for (name, fault) in [("vc-tinh", "bad-password"), ("vc-u-minh", "sip-silent"), ("vc-nam-can", "down")] {
        tb.json(&["testbed", "fault", "device", name, fault, "--dir", &dir]);
    }
    // Garbage on telnet (no CLI fault for it: a flag the simulator reads).
    std::fs::write(tb.path().join("devices/vc-cai-nuoc/telnet-garbage"), "").expect("flag");
    let (all, took) = check(&tb);
    assert!(took < Duration::from_secs(10), "{took:?}");
    let tinh = device(&all, "vc-tinh");
    assert_eq!(
        (tinh["go"].clone(), tinh["reasons"].clone()),
        (false.into(), serde_json::json!(["credentials failed"]))
    );
    let u_minh = device(&all, "vc-u-minh");
    assert_eq!(check_of(u_minh, "sip_options")["ok"], false, "{u_minh}");
    let nam_can = device(&all, "vc-nam-can");
    assert_eq!(
        (nam_can["state"].clone(), nam_can["reasons"].clone()),
        ("down".into(), serde_json::json!(["device not responding"])),
        "{nam_can}"
    );
    let cai_nuoc = device(&all, "vc-cai-nuoc");
    let telnet = check_of(cai_nuoc, "telnet_api");
    assert_eq!(telnet["ok"], false);
    assert!(
        telnet["detail"].as_str().is_some_and(|d| d.starts_with("telnet API answered garbage to whoami")),
        "{telnet}"
    );
    // The last known state: what the telnet API said last time, and how long ago.
    assert!(telnet["last_ok"]["detail"].as_str().is_some_and(|d| d.contains("HDX 7000")), "{telnet}");
    assert!(telnet["last_ok"]["age_seconds"].as_i64().is_some(), "{telnet}");
    assert!(cai_nuoc["last_up"]["age_seconds"].as_i64().is_some(), "{cai_nuoc}");
    assert!(tb.metrics().contains("mangrove_vc_device_up{device=\"vc-u-minh\",site=\"dc\"} 0"));
    assert!(tb.metric("mangrove_vc_check_duration_seconds").is_some_and(|s| s < 10.0));

    // The replacement plan ranks the devices with reasons (the faulty ones and the oldest first).
    let out = tb.mg(&["vc", "report", "--format", "csv", "--lang", "en"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(csv.lines().count(), 12, "{csv}");
    assert!(csv.contains("model family no longer supported") && csv.contains("years in service"), "{csv}");
    let report = tb.json(&["vc", "report", "--format", "json"]);
    let ranked = report["devices"].as_array().expect("devices");
    assert_eq!(ranked.len(), 11);
    assert!(ranked[0]["failures"].as_u64().is_some_and(|f| f > 0), "{}", ranked[0]);

    // The proxy agent gone: every device is no-go with "heartbeat timeout", and keeps when it
    // was last up.
    let (pid, _) = tb.agent_of("dc-proxy-01");
    common::signal(pid, nix::sys::signal::Signal::SIGKILL);
    assert!(common::wait_exit(pid, Duration::from_secs(10)));
    let (all, took) = check(&tb);
    assert!(took < Duration::from_secs(10), "{took:?}");
    for d in &all {
        assert_eq!(
            (d["go"].clone(), d["reasons"].clone()),
            (false.into(), serde_json::json!(["heartbeat timeout"])),
            "{d}"
        );
    }
    assert!(device(&all, "vc-tp-ca-mau")["last_up"]["age_seconds"].as_i64().is_some());

    // Passwords never in a process's arguments, nor in the API's answers.
    let ps = std::process::Command::new("ps").args(["-eo", "args"]).output().expect("ps");
    let ours = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains(&dir))
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>();
    assert!(ours.len() > 11, "{ours:?}");
    assert!(ours.iter().all(|l| !l.contains("password")), "{ours:?}");
    let secret = std::fs::read_to_string(tb.path().join("devices/vc-tinh/password")).expect("password");
    assert!(!serde_json::to_string(&all).expect("json").contains(secret.trim()));
}
