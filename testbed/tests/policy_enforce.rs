//! Enforcement on a real (container) host: sshd reconfigured to permit root login shows as a
//! finding within one facts interval; a dry run asks the host in check mode what the pack's
//! remediation (an Ansible task list) would change and changes nothing; in `enforce` mode the
//! remediation really changes the file, and the finding clears, its history naming the run.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{ContainerTestbed, run};
use serde_json::Value;

fn root_login(tb: &ContainerTestbed) -> Value {
    tb.json(&["policy", "findings", "--host", "web-app-01"])
        .as_array()
        .and_then(|a| a.iter().find(|f| f["control"] == "ssh-root-login").cloned())
        .unwrap_or(Value::Null)
}

fn wait_for(tb: &ContainerTestbed, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let f = root_login(tb);
        if pred(&f) {
            return Some(f);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    None
}

#[test]
fn a_root_login_finding_clears_after_its_remediation_runs() {
    let tb = ContainerTestbed::up(Some(common::SMALL_INVENTORY), 3);
    tb.wait(Duration::from_secs(90), |hs| hs.len() == 3 && hs.iter().all(|h| h["state"] == "connected"))
        .expect("all connected");
    let name = testbed::containers::container_name(tb.dir.path(), "web-app-01");
    let exec = |script: &str| run(Command::new("docker").args(["exec", &name, "sh", "-c", script]));

    // Audit mode first: the host is evaluated with the collectors the pack needs.
    tb.json(&["policy", "assign", "vn-nd85-tcvn11930", "--system", "web"]);
    wait_for(&tb, Duration::from_secs(60), |f| f.is_object()).expect("ssh-root-login evaluated");

    // sshd reconfigured to permit root login: the finding shows it within one facts interval
    // (60 s), with no one asking.
    assert!(exec("sed -i '1i PermitRootLogin yes' /etc/ssh/sshd_config").status.success());
    let changed = Instant::now();
    let f =
        wait_for(&tb, Duration::from_secs(75), |f| f["status"] == "fail" && f["evidence"]["permitrootlogin"] == "yes")
            .expect("ssh-root-login fails with permitrootlogin yes within one facts interval");
    assert!(changed.elapsed() < Duration::from_secs(75), "{f}");

    // A dry run asks the host in check mode what the remediation (an Ansible task list)
    // would change, and changes nothing.
    let before = String::from_utf8_lossy(&exec("cat /etc/ssh/sshd_config").stdout).into_owned();
    let dry = tb.json(&["policy", "assign", "vn-nd85-tcvn11930", "--system", "web", "--mode", "enforce", "--dry-run"]);
    let rem = dry["remediations"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["host"] == "web-app-01" && r["control"] == "ssh-root-login"))
        .cloned()
        .unwrap_or_else(|| panic!("the dry run names the remediation: {dry}"));
    assert!(rem["ansible"].is_array(), "{rem}");
    assert_eq!((rem["check"]["changed"].as_u64(), rem["check"]["failed"].as_u64()), (Some(2), Some(0)), "{rem}");
    let words: Vec<&str> =
        rem["check"]["tasks"].as_array().into_iter().flatten().filter_map(|t| t["status"].as_str()).collect();
    assert_eq!(words, ["changed", "changed", "skipped"], "the reload command is skipped in check mode: {rem}");
    let after = String::from_utf8_lossy(&exec("cat /etc/ssh/sshd_config").stdout).into_owned();
    assert_eq!(before, after, "a dry run changed sshd_config");

    // Enforce: the remediation runs in the container, the file changes, the finding clears.
    tb.json(&["policy", "assign", "vn-nd85-tcvn11930", "--system", "web", "--mode", "enforce"]);
    tb.json(&["policy", "evaluate", "--host", "web-app-01"]);
    let f = wait_for(&tb, Duration::from_secs(120), |f| f["status"] == "pass");
    let config = String::from_utf8_lossy(&exec("head -n 5 /etc/ssh/sshd_config").stdout).into_owned();
    let f =
        f.unwrap_or_else(|| panic!("ssh-root-login did not clear; sshd_config starts:\n{config}\n{}", root_login(&tb)));
    assert!(config.lines().any(|l| l == "PermitRootLogin no"), "{config}");
    assert_eq!(f["evidence"]["permitrootlogin"], "no");
    let history = tb.json(&["policy", "history", "web-app-01", "ssh-root-login"]);
    let last = history.as_array().and_then(|h| h.last()).cloned().unwrap_or_default();
    assert_eq!(last["status"], "pass", "{history}");
    assert!(last["cause"].as_str().is_some_and(|c| c.starts_with("remediation task rem-")), "{history}");
}
