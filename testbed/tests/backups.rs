//! Backups as operators meet them in a process testbed, with the real restic: plans from the
//! inventory and the levels, a run into two repositories, restore points, a restore drill that
//! compares every file, a damaged repository caught by verification, RPO breaches in the
//! metrics, and no repository password anywhere it could leak.
//!
//! Needs restic (`mangrove testbed deps --install`); fails saying so otherwise.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Testbed;
use serde_json::Value;

/// The Cà Mau inventory with no backup falling due on its own during the test, and cong-bao's
/// RPO cut to one minute so a breach shows within the test.
fn inventory() -> String {
    let mut text = include_str!("../../inventory/examples/camau.yaml").to_string();
    for system in ["qlvbdh", "dvc-portal", "email", "web-portal", "cong-bao", "cbccvc"] {
        text = text.replace(
            &format!("backup: {{ paths: [/srv/{system}]"),
            &format!(
                "backup: {{ paths: [/srv/{system}], schedule: \"0 0 1 1 *\", check: \"0 0 1 1 *\", restore_test: \"0 0 1 1 *\""
            ),
        );
    }
    // qlvbdh's restore drills probe what they restored.
    text = text.replacen(
        "backup: { paths: [/srv/qlvbdh]",
        r#"backup: { paths: [/srv/qlvbdh], probe: [sh, -c, "find \"$MANGROVE_RESTORE_DIR\" -type f | grep -q ."]"#,
        1,
    );
    assert!(text.contains("snapshots: { keep: 7 }"), "camau.yaml no longer snapshots web-portal's VMs");
    text.replace("snapshots: { keep: 7 }", "snapshots: { schedule: \"0 0 1 1 *\", keep: 2 }")
        .replace("    rpo: 1d\n", "    rpo: 1m\n")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &std::path::Path, needle: &str, skip: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.starts_with(skip) {
            continue;
        }
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| contains(&b, needle)) {
                found.push(p.display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_level_3_system_is_backed_up_twice_verified_by_content_and_watched() {
    assert!(
        Command::new("restic").arg("version").output().is_ok_and(|o| o.status.success()),
        "restic is missing: run `mangrove testbed deps --install`"
    );
    let tb = Testbed::up(Some(&inventory()));

    let plans = tb.json(&["backup", "plans"]);
    let q = plans.as_array().and_then(|a| a.iter().find(|p| p["system"] == "qlvbdh")).expect("qlvbdh plan").clone();
    assert_eq!(q["repositories"], serde_json::json!(["dr-san", "dr-nas"]));
    assert!(q["rule"].as_str().is_some_and(|r| r.contains("3-2-1")), "{q}");
    assert_eq!(q["retention"]["daily"], 14);

    // A run reaches both repositories; no password shows in the process list meanwhile.
    let mut child = Command::new(common::bin("mangrove"))
        .args(["--json", "backup", "run", "qlvbdh"])
        .env("MANGROVE_CONTROLLER", &tb.api)
        .env("MANGROVE_TOKEN", &tb.token)
        .env("MANGROVE_CA", tb.ca())
        .env("MANGROVE_CONFIG", tb.path().join("user-cli.toml"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("backup run");
    let mut leaked = Vec::new();
    while child.try_wait().expect("wait").is_none() {
        let ps = Command::new("ps").args(["-eo", "args"]).output().expect("ps");
        let ps = String::from_utf8_lossy(&ps.stdout).into_owned();
        leaked.extend(
            ps.lines().filter(|l| l.to_lowercase().contains("password") && !l.contains("ps -eo")).map(str::to_string),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "backup run failed: {}", String::from_utf8_lossy(&out.stdout));
    assert!(leaked.is_empty(), "a password shows in the process list: {:?}", leaked.first());
    let run: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(run["status"], "ok", "{run}");
    let repos: Vec<&str> =
        run["runs"].as_array().expect("runs").iter().filter_map(|r| r["repository"].as_str()).collect();
    assert_eq!(repos, ["dr-san", "dr-nas"]);
    assert!(
        run["runs"].as_array().expect("runs").iter().all(|r| r["snapshot_id"].as_str().is_some_and(|s| s.len() >= 8))
    );

    let list = tb.json(&["backup", "list", "qlvbdh"]);
    let snaps = list.as_array().expect("snapshots");
    assert_eq!(snaps.len(), 2);
    assert!(snaps.iter().all(|s| s["verified"] == "ok" && s["bytes_added"].as_u64() > Some(0)), "{list}");

    // A restore drill on the DR host brings back every file, byte for byte.
    let v = tb.json(&["backup", "verify", "qlvbdh", "--restore"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["mismatches"], 0);
    assert!(v["files_checked"].as_u64() >= Some(4), "{v}");
    let list = tb.json(&["backup", "list", "qlvbdh"]);
    assert!(list.as_array().expect("list").iter().any(|s| s["verified"] == "restored"), "{list}");
    // The drill ran the inventory's probe on the restored files, and it passed.
    let runs = tb.api_get("/api/v1/backups/runs?system=qlvbdh", &tb.token);
    let drill = runs.as_array().and_then(|a| a.iter().find(|r| r["kind"] == "restore")).expect("the drill's run");
    assert_eq!(drill["result"]["probe_exit_code"], 0, "{drill}");

    // The policy controls for backups read these records: fresh, copied to DR, restore-tested.
    let sec = tb.user_token("security");
    let out = tb.mg_as(&sec, &["policy", "assign", "vn-nd85-tcvn11930", "--system", "qlvbdh"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = tb.mg_as(&sec, &["policy", "evaluate", "--host", "qlvbdh-app-01"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let findings = tb.json(&["policy", "findings", "--host", "qlvbdh-app-01"]);
    for control in ["backup-present", "backup-fresh", "backup-dr-copy", "backup-restore-tested"] {
        let f = findings.as_array().and_then(|a| a.iter().find(|f| f["control"] == control)).cloned();
        let f = f.unwrap_or_else(|| panic!("no finding for {control}: {findings}"));
        assert_eq!(f["status"], "pass", "{control}: {f}");
    }

    // The RPO: met for qlvbdh; cong-bao (RPO 1 minute) has no restore point yet: breached.
    let deadline = Instant::now() + Duration::from_secs(20);
    while tb.metric("mangrove_backup_rpo_breach{system=\"qlvbdh\"}") != Some(0.0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(tb.metric("mangrove_backup_rpo_breach{system=\"qlvbdh\"}"), Some(0.0));
    assert_eq!(tb.metric("mangrove_backup_rpo_breach{system=\"cong-bao\"}"), Some(1.0));
    let out = tb.mg(&["backup", "run", "cong-bao"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let met = Instant::now();
    while tb.metric("mangrove_backup_rpo_breach{system=\"cong-bao\"}") != Some(0.0) {
        assert!(met.elapsed() < Duration::from_secs(15), "the RPO stays breached after a good backup");
        std::thread::sleep(Duration::from_millis(500));
    }
    // No more backups: a minute later the breach shows within an evaluation interval (5 s).
    let breached = Instant::now();
    while tb.metric("mangrove_backup_rpo_breach{system=\"cong-bao\"}") != Some(1.0) {
        assert!(breached.elapsed() < Duration::from_secs(60 + 10), "no RPO breach a minute after the last backup");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(breached.elapsed() > Duration::from_secs(50), "breach reported before the RPO passed");
    let alerts = tb.json(&["backup", "alerts"]);
    assert!(alerts.as_array().expect("alerts").iter().any(|a| a["system"] == "cong-bao"), "{alerts}");

    // Damage one repository: verification fails loudly and its restore points are marked bad.
    let data = tb.path().join("storage/srv/backup/dr-san/data");
    let pack = std::fs::read_dir(&data)
        .expect("repository data")
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .find(|p| p.is_file())
        .expect("a pack file");
    std::fs::remove_file(&pack).expect("delete a pack");
    let out = tb.mg(&["--json", "backup", "verify", "qlvbdh"]);
    assert!(!out.status.success(), "verify passed over a deleted pack");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let san =
        v["repositories"].as_array().and_then(|a| a.iter().find(|r| r["repository"] == "dr-san")).expect("dr-san");
    assert_eq!(san["ok"], false, "{v}");
    let list = tb.json(&["backup", "list", "qlvbdh"]);
    assert!(list.as_array().expect("list").iter().any(|s| s["repository"] == "dr-san" && s["verified"] == "failed"));

    // The passwords: not in any log, the store, an API answer, or the agents' state.
    let secrets = tb.path().join("controller/data/backup-secrets");
    let mut passwords = Vec::new();
    for e in std::fs::read_dir(&secrets).expect("backup secrets").flatten() {
        passwords.push(std::fs::read_to_string(e.path()).expect("secret").trim().to_string());
    }
    assert_eq!(passwords.len(), 2);
    let runs = tb.api_get("/api/v1/backups/runs?limit=100", &tb.token);
    let first = runs.as_array().and_then(|a| a.last()).and_then(|r| r["id"].as_str()).expect("a run").to_string();
    let answers = [
        tb.mg(&["--json", "backup", "plans"]).stdout,
        tb.mg(&["--json", "backup", "list", "qlvbdh"]).stdout,
        tb.mg(&["--json", "tasks", "show", &first]).stdout,
        serde_json::to_vec(&runs).expect("JSON"),
    ];
    for pw in &passwords {
        assert!(answers.iter().all(|a| !contains(a, pw)), "a password in an API answer");
        let found = files_holding(tb.path(), pw, &secrets);
        assert!(found.is_empty(), "a repository password is in {found:?}");
    }

    platform_snapshots_keep_their_own_newest(&tb);
}

/// web-portal's second plan snapshots each of its VMs in vCenter and keeps the newest two of
/// its own; an operator's snapshot on the same VM is never touched; restic has nothing to
/// verify in it.
fn platform_snapshots_keep_their_own_newest(tb: &Testbed) {
    assert!(
        tb.up_output.contains("vcenter:"),
        "the vCenter simulator is off (needs Go and govmomi: `mangrove testbed deps --install`):\n{}",
        tb.up_output
    );
    let plans = tb.json(&["backup", "plans"]);
    let p = plans
        .as_array()
        .and_then(|a| a.iter().find(|p| p["system"] == "web-portal" && p["plan"] == "snapshots"))
        .expect("web-portal's snapshot plan")
        .clone();
    assert_eq!((p["kind"].as_str(), p["keep_last"].as_u64()), (Some("platform_snapshots"), Some(2)), "{p}");
    let vms = tb.json(&["vms", "list", "--system", "web-portal"]);
    let vms: Vec<String> =
        vms.as_array().expect("vms").iter().filter_map(|v| v["name"].as_str().map(str::to_string)).collect();
    assert!(!vms.is_empty(), "web-portal has no VM in vCenter");
    let out = tb.mg(&["vms", "snapshot", &vms[0], "create", "before-upgrade"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for _ in 0..3 {
        let run = tb.json(&["backup", "run", "web-portal", "--plan", "snapshots"]);
        assert_eq!(run["status"], "ok", "{run}");
        let rows = run["runs"].as_array().expect("rows");
        assert_eq!(rows.len(), vms.len(), "one row per VM: {run}");
        assert!(rows.iter().all(|r| r["snapshot_id"].as_str().is_some_and(|n| n.starts_with("mangrove-web-portal-"))));
        // Names carry the time to the second.
        std::thread::sleep(Duration::from_millis(1100));
    }
    for vm in &vms {
        let list = tb.json(&["vms", "snapshot", vm, "list"]);
        let names: Vec<&str> =
            list["snapshots"].as_array().expect("snapshots").iter().filter_map(|s| s["name"].as_str()).collect();
        let ours = names.iter().filter(|n| n.starts_with("mangrove-web-portal-")).count();
        assert_eq!(ours, 2, "{vm} keeps {ours} plan snapshots, want 2: {names:?}");
        if vm == &vms[0] {
            assert!(names.contains(&"before-upgrade"), "the operator's snapshot went: {names:?}");
        }
    }
    let out = tb.mg(&["backup", "verify", "web-portal", "--plan", "snapshots"]);
    assert!(!out.status.success(), "restic verification of platform snapshots was accepted");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no backup repository"), "{out:?}");
}
