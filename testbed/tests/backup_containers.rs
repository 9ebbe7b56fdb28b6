//! A backup whose agent is killed halfway, on container hosts with the real restic: the run is
//! marked failed, the repositories stay `restic check` clean, and the next run succeeds.
//!
//! Needs Docker and the host image (`mangrove testbed image build`, made on first use).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::ContainerTestbed;
use serde_json::Value;

/// The small test province with a level-3 system backed up into two repositories at DR, and
/// no run falling due on its own.
fn inventory() -> String {
    common::SMALL_INVENTORY.replace("    level: 2\n", "    level: 3\n").replace(
        "    rto: 8h\n",
        "    rto: 8h\n    backup: { paths: [/srv/web], schedule: \"0 0 1 1 *\", check: \"0 0 1 1 *\", restore_test: \"0 0 1 1 *\" }\n",
    ) + "backup_repositories:\n  - { name: dr-san, site: dr, location: /srv/backup/dr-san }\n  \
         - { name: dr-nas, site: dr, location: /srv/backup/dr-nas }\n"
}

fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn a_backup_killed_halfway_fails_cleanly_and_the_next_one_succeeds() {
    let tb = ContainerTestbed::up(Some(&inventory()), 3);
    let first = tb.json(&["backup", "run", "web"]);
    assert_eq!(first["status"], "ok", "{first}");
    // `testbed up` took a first backup too: count what is there now.
    let points = tb.json(&["backup", "list", "web"]).as_array().map_or(0, Vec::len);
    // Enough new data that restic is still writing when the agent is killed.
    let data = tb.dir.path().join("hosts/web-app-01/srv/web");
    std::fs::write(data.join("archive.bin"), noise(400 << 20)).expect("write the data");

    let mut run = Command::new(common::bin("mangrove"));
    run.args(["--json", "backup", "run", "web"]).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in &tb.env {
        run.env(k, v);
    }
    let child = run.spawn().expect("backup run");
    // Kill the agent once restic is at work inside the container.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = tb.json(&["backup", "list", "web"]);
        assert!(runs.as_array().is_some_and(|r| r.len() == points), "finished before the kill: {runs}");
        // Container processes show in this host's process list; restic's cache dir lies in the
        // agent's state dir, under the testbed's.
        let ps = Command::new("ps").args(["-eo", "args"]).output().expect("ps");
        let dir = tb.dir.path().display().to_string();
        let restic_running = String::from_utf8_lossy(&ps.stdout)
            .lines()
            .any(|l| l.split_whitespace().next().is_some_and(|p| p.ends_with("restic")) && l.contains(&dir));
        if restic_running {
            break;
        }
        assert!(Instant::now() < deadline, "restic never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    let d = tb.dir.path().display().to_string();
    tb.json(&["testbed", "fault", "kill", "web-app-01", "--dir", &d]);
    let out = child.wait_with_output().expect("backup run output");
    assert!(!out.status.success(), "a run whose agent died reported success");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["status"], "failed", "{v}");
    assert!(v.to_string().contains("agent stopped"), "the reason is given: {v}");

    // Whatever the killed run left, the repositories check clean and the next run succeeds.
    let check = tb.json(&["backup", "verify", "web"]);
    assert_eq!(check["ok"], true, "{check}");
    let again = tb.json(&["backup", "run", "web"]);
    assert_eq!(again["status"], "ok", "{again}");
    let drill = tb.json(&["backup", "verify", "web", "--restore"]);
    assert_eq!((drill["ok"].as_bool(), drill["mismatches"].as_u64()), (Some(true), Some(0)), "{drill}");
}
