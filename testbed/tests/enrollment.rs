//! Enrollment as an operator does it: tokens from `mangrove token create`, refusals that say
//! why, a real agent on this machine with its real facts, revocation.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Testbed, bin, run};

fn enroll(tb: &Testbed, token: &str, state: &std::path::Path) -> std::process::Output {
    run(Command::new(bin("mangrove-agent"))
        .args(["enroll", "--controller", &tb.enroll, "--token", token, "--state-dir"])
        .arg(state))
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn tokens_are_single_use_expire_and_say_why_they_are_refused() {
    let tb = Testbed::up(Some(common::SMALL_INVENTORY));
    let scratch = tempfile::tempdir().expect("tempdir");

    let unknown = enroll(&tb, "bogus-token", &scratch.path().join("a"));
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("unknown token"), "{}", stderr(&unknown));

    let t = tb.json(&["token", "create", "--role", "agent"]);
    assert_eq!(t["role"], "agent");
    assert!(t["expires_at"].is_string());
    let token = t["token"].as_str().expect("token");
    // A well-formed token this controller never issued.
    let forged = format!("{}{}", &token[..token.len() - 70], "0".repeat(70));
    let f = enroll(&tb, &forged, &scratch.path().join("f"));
    assert!(!f.status.success() && stderr(&f).contains("unknown token"), "{}", stderr(&f));

    let first = enroll(&tb, token, &scratch.path().join("b"));
    assert!(first.status.success(), "{}", stderr(&first));
    let again = enroll(&tb, token, &scratch.path().join("c"));
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already used"), "{}", stderr(&again));

    // A token not bound to a host cannot take over one that is enrolled.
    let other = tb.json(&["token", "create", "--role", "agent"]);
    let grab = enroll(&tb, other["token"].as_str().expect("token"), &scratch.path().join("g"));
    assert!(!grab.status.success());
    assert!(stderr(&grab).contains("already enrolled"), "{}", stderr(&grab));

    let short = tb.json(&["token", "create", "--role", "agent", "--ttl", "1s"]);
    std::thread::sleep(Duration::from_millis(2500));
    let late = enroll(&tb, short["token"].as_str().expect("token"), &scratch.path().join("d"));
    assert!(!late.status.success());
    assert!(stderr(&late).contains("expired"), "{}", stderr(&late));

    // A person's API token is not a bootstrap token, and an agent token is no API credential.
    let user = tb.json(&["token", "create", "--role", "planner", "--user", "pat"]);
    let u = enroll(&tb, user["token"].as_str().expect("token"), &scratch.path().join("e"));
    assert!(!u.status.success() && stderr(&u).contains("unknown token"), "{}", stderr(&u));
    let as_agent = tb.mg_as(token, &["hosts", "list"]);
    assert!(!as_agent.status.success());
    assert!(stderr(&as_agent).contains("401"), "{}", stderr(&as_agent));

    // Bad durations are refused before anything is created.
    let bad = tb.mg(&["token", "create", "--role", "agent", "--ttl", "soon"]);
    assert!(!bad.status.success() && stderr(&bad).contains("invalid duration"));
}

#[test]
fn a_real_agent_reports_this_machines_facts_and_is_cut_off_when_revoked() {
    let tb = Testbed::up(Some(common::SMALL_INVENTORY));
    let scratch = tempfile::tempdir().expect("tempdir");
    let state = scratch.path().join("real");
    let t = tb.json(&["token", "create", "--role", "agent"]);
    let e = enroll(&tb, t["token"].as_str().expect("token"), &state);
    assert!(e.status.success(), "{}", stderr(&e));
    let mut agent = Command::new(bin("mangrove-agent"))
        .args(["run", "--state-dir"])
        .arg(&state)
        .stderr(std::fs::File::create(scratch.path().join("real.log")).expect("log"))
        .spawn()
        .expect("agent");
    let host = nix::unistd::gethostname().expect("hostname").to_string_lossy().into_owned();
    let hs = tb
        .wait(Duration::from_secs(30), |hs| hs.iter().any(|h| h["name"] == host.as_str() && h["state"] == "connected"))
        .expect("real agent connected");
    let listed = hs.iter().find(|h| h["name"] == host.as_str()).expect("listed");
    assert_eq!(listed["managed"], false);
    assert_eq!(listed["kind"], "server");

    let facts = tb.show(&host)["facts"].clone();
    let uname = String::from_utf8(run(Command::new("uname").arg("-r")).stdout).expect("uname");
    assert_eq!(facts["kernel_release"], uname.trim());
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let kb: f64 = meminfo.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("MemTotal");
    let got = facts["memory_total_bytes"].as_f64().expect("memory");
    assert!((got - kb * 1024.0).abs() < kb * 1024.0 * 0.01, "memory {got} vs {}", kb * 1024.0);
    assert_eq!(facts["source"], "system");

    // Revocation cuts the live stream at once and refuses the agent after.
    let r = tb.json(&["agents", "revoke", &host]);
    assert_eq!(r["stream_cut"], true);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(tb.show(&host)["agent"]["session_live"], false);
    let before = tb.show(&host)["agent"]["last_seq"].clone();
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(tb.show(&host)["agent"]["last_seq"], before, "a revoked agent's reports are still accepted");
    let log = std::fs::read_to_string(scratch.path().join("real.log")).expect("log");
    assert!(log.contains("revoked"), "agent log does not say it was revoked:\n{log}");
    let audit = tb.api_get("/api/v1/audit", &tb.token);
    assert!(
        audit
            .as_array()
            .expect("audit")
            .iter()
            .any(|a| a["action"] == "agent.revoke" && a["actor"] == "admin" && a["target"] == host.as_str()),
        "{audit}"
    );
    let _ = agent.kill();
    let _ = agent.wait();

    // Enrolled again from a fresh state dir with a token made for it: its reports follow on
    // from what the controller holds, none mistaken for a replay.
    let old_seq = tb.show(&host)["agent"]["last_seq"].as_i64().expect("last_seq");
    let t = tb.json(&["token", "create", "--role", "agent", "--host", &host]);
    let again = scratch.path().join("again");
    let e = enroll(&tb, t["token"].as_str().expect("token"), &again);
    assert!(e.status.success(), "{}", stderr(&e));
    let mut agent = Command::new(bin("mangrove-agent"))
        .args(["run", "--state-dir"])
        .arg(&again)
        .stderr(std::fs::File::create(scratch.path().join("again.log")).expect("log"))
        .spawn()
        .expect("agent");
    let back = tb
        .wait(Duration::from_secs(30), |hs| hs.iter().any(|h| h["name"] == host.as_str() && h["state"] == "connected"));
    std::thread::sleep(Duration::from_secs(2));
    let a = tb.show(&host)["agent"].clone();
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(back.is_some(), "re-enrolled agent did not connect");
    assert!(a["last_seq"].as_i64().expect("seq") > old_seq, "{a}");
    assert_eq!(a["reports_stored"], a["last_seq"], "{a}");
}
