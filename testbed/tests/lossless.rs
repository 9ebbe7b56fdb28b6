//! The Cà Mau testbed as a newcomer meets it, and the lossless claim: an agent killed and
//! restarted, a controller stopped and started again, and no report missing.

mod common;

use std::time::Duration;

use common::{Testbed, signal, wait_exit};
use nix::sys::signal::Signal;

#[test]
fn camau_testbed_lists_22_machines_and_loses_no_report_through_kills() {
    let tb = Testbed::up(None);
    // 13 agents, and the 9 ESXi hosts through the proxy agent (dc-proxy-01) and vCenter.
    assert!(tb.up_output.contains("testbed ready: 22 hosts"), "{}", tb.up_output);
    let hosts = tb.wait(Duration::from_secs(60), Testbed::all_connected).expect("all 22 connected");
    assert_eq!(hosts.len(), 22);
    let count = |kind: &str, site: &str| hosts.iter().filter(|h| h["kind"] == kind && h["site"] == site).count();
    assert_eq!((count("hypervisor", "dc"), count("hypervisor", "dr"), count("vm", "dc")), (9, 6, 7));
    assert!(hosts.iter().all(|h| h["managed"] == true && h["last_seen"].is_string()));

    // users.txt: one user per role plus a second operator, private.
    let users = std::fs::read_to_string(tb.path().join("users.txt")).expect("users.txt");
    let roles: Vec<&str> = users.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split(' ').nth(1)).collect();
    for r in ["admin", "operator", "security", "planner", "auditor"] {
        assert!(roles.contains(&r), "{roles:?}");
    }
    assert_eq!(roles.iter().filter(|r| **r == "operator").count(), 2);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(tb.path().join("users.txt")).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // SIGKILL an agent, start it again with its own command line: nothing missing.
    let (pid, argv) = tb.agent_of("qlvbdh-app-01");
    signal(pid, Signal::SIGKILL);
    assert!(wait_exit(pid, Duration::from_secs(5)));
    tb.relaunch(&argv, "restarted-agent.log");
    std::thread::sleep(Duration::from_secs(6));
    tb.wait(Duration::from_secs(40), Testbed::all_connected).expect("reconnected after restart");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(tb.gaps(), Vec::<String>::new());
    let st = tb.agent_status("qlvbdh-app-01");
    let shown = tb.show("qlvbdh-app-01");
    let (acked, stored) =
        (st["last_seq_acked"].as_i64().expect("acked"), shown["agent"]["last_seq"].as_i64().expect("seq"));
    assert!((0..=2).contains(&(stored - acked)), "agent acked {acked}, controller holds {stored}");

    // A second agent on the same state dir refuses to start.
    let twin = common::run(std::process::Command::new(&argv[0]).args(&argv[1..]));
    assert!(!twin.status.success());
    assert!(String::from_utf8_lossy(&twin.stderr).contains("another mangrove-agent is running"));

    // Stop the controller for a while; the agents keep reporting into their outboxes.
    let (cpid, cargv) = tb.controller().expect("controller process");
    signal(cpid, Signal::SIGTERM);
    assert!(wait_exit(cpid, Duration::from_secs(15)), "controller took over 15 s to stop");
    std::thread::sleep(Duration::from_secs(8));
    let waiting = tb.agent_status("dr-compute-03")["outbox_len"].as_u64().expect("outbox_len");
    assert!(waiting > 0, "reports should wait in the outbox while the controller is away");
    tb.relaunch(&cargv, "restarted-controller.log");
    tb.wait(Duration::from_secs(60), |hs| hs.len() == 22 && Testbed::all_connected(hs))
        .expect("all connected again after the controller came back");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(tb.gaps(), Vec::<String>::new());
    for (_, argv) in tb.agents() {
        let host = argv.iter().find(|a| a.contains("/agents/")).and_then(|a| a.rsplit('/').next()).expect("host");
        let mut drained = false;
        for _ in 0..30 {
            if tb.agent_status(host)["outbox_len"] == 0 {
                drained = true;
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        assert!(drained, "{host}: outbox not drained");
    }
}

#[test]
fn a_frozen_agent_goes_down_and_comes_back() {
    let tb = Testbed::up(Some(common::SMALL_INVENTORY));
    tb.wait(Duration::from_secs(30), Testbed::all_connected).expect("connected");
    let (pid, _) = tb.agent_of("web-app-01");
    signal(pid, Signal::SIGSTOP);
    let down =
        tb.wait(Duration::from_secs(20), |hs| hs.iter().any(|h| h["name"] == "web-app-01" && h["state"] == "down"));
    signal(pid, Signal::SIGCONT);
    let down = down.expect("frozen agent's host down within 20 s");
    assert!(down.iter().filter(|h| h["state"] == "down").count() == 1, "only the frozen host is down");
    tb.wait(Duration::from_secs(30), Testbed::all_connected).expect("connected again after SIGCONT");
}
