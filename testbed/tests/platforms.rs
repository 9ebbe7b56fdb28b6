//! The platforms as an operator meets them in the Cà Mau testbed: VMware's vCenter simulator
//! shaped to the province and our OpenStack simulator, synced by the controller's drivers; the
//! ESXi hosts through the proxy agent; drift after a VM moves; power and snapshots with roles
//! and audit; and a platform that is down, slow or answers nonsense.
//!
//! Needs Go and Debian's govmomi package (the vCenter simulator) and the Python venv with
//! pyvmomi (`mangrove testbed deps --install`); fails saying so otherwise.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Testbed;
use serde_json::{Value, json};

fn python() -> PathBuf {
    let python = testbed::deps::venv_path().join("bin/python");
    let ok = Command::new(&python).args(["-c", "import pyVmomi"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "{} cannot import pyVmomi: run `mangrove testbed deps --install`", python.display());
    python
}

/// Runs a pyvmomi snippet against the testbed's vCenter (credentials from its govc.env).
fn pyvmomi(tb: &Testbed, body: &str) -> String {
    let env = std::fs::read_to_string(tb.path().join("govc.env")).expect("govc.env");
    let mut cmd = Command::new(python());
    for line in env.lines().filter(|l| l.contains('=') && !l.starts_with('#')) {
        if let Some((k, v)) = line.split_once('=') {
            cmd.env(k, v);
        }
    }
    let script = format!(
        "import os, ssl, urllib.parse\nfrom pyVim.connect import SmartConnect, Disconnect\nfrom pyVim.task import WaitForTask\n\
         from pyVmomi import vim\nu = urllib.parse.urlparse(os.environ['GOVC_URL'])\n\
         ctx = ssl.create_default_context(cafile=os.environ['GOVC_TLS_CA_CERTS'])\n\
         si = SmartConnect(host=u.hostname, port=u.port, user=os.environ['GOVC_USERNAME'], pwd=os.environ['GOVC_PASSWORD'], sslContext=ctx)\n\
         c = si.content\n\
         def find(kind, name):\n    v = c.viewManager.CreateContainerView(c.rootFolder, [kind], True).view\n    return next(x for x in v if x.name == name)\n\
         {body}\nDisconnect(si)\n"
    );
    let out = cmd.args(["-c", &script]).output().expect("run python");
    assert!(out.status.success(), "pyvmomi failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn vms(tb: &Testbed) -> Vec<Value> {
    tb.json(&["vms", "list"]).as_array().cloned().unwrap_or_default()
}

fn metric(tb: &Testbed, line_start: &str) -> Option<String> {
    tb.metrics().lines().find(|l| l.starts_with(line_start)).map(str::to_string)
}

/// An admin token of the OpenStack simulator, for its fault-injection endpoint.
fn openstack_admin(tb: &Testbed) -> (String, String) {
    let clouds = std::fs::read_to_string(tb.path().join("clouds.yaml")).expect("clouds.yaml");
    let auth_url = clouds
        .lines()
        .find_map(|l| l.trim().strip_prefix("auth_url:"))
        .map(|u| u.trim().trim_matches('"').trim_matches('\'').to_string())
        .expect("auth_url in clouds.yaml");
    let password = std::fs::read_to_string(tb.path().join("platforms/openstack/admin.secret")).expect("admin secret");
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin",
        "domain": {"name": "Default"}, "password": password.trim()}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let r = tb.http().post(format!("{auth_url}/auth/tokens")).send_json(&body).expect("keystone");
    assert_eq!(r.status(), 201);
    let token = r.headers().get("X-Subject-Token").and_then(|v| v.to_str().ok()).expect("token").to_string();
    (auth_url.trim_end_matches("/v3").to_string(), token)
}

fn fault(tb: &Testbed, admin: &(String, String), body: Option<Value>) {
    let url = format!("{}/_sim/faults", admin.0);
    let r = match body {
        Some(b) => tb.http().post(&url).header("X-Auth-Token", &admin.1).send_json(&b),
        None => tb.http().delete(&url).header("X-Auth-Token", &admin.1).call(),
    }
    .expect("fault endpoint");
    assert!(r.status().is_success(), "fault endpoint answered {}", r.status());
}

fn sync_fails(tb: &Testbed, platform: &str) -> String {
    let out = tb.mg(&["platforms", "sync", platform]);
    assert!(!out.status.success(), "sync of {platform} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_province_through_its_platforms() {
    let tb = Testbed::up(None);
    assert!(tb.up_output.contains("testbed ready: 22 hosts"), "{}", tb.up_output);

    // Sync, then 166 VMs at the DC with the fields scripts rely on, mapped to systems.
    let synced = tb.json(&["platforms", "sync"]);
    assert!(synced.as_array().is_some_and(|a| a.len() == 2 && a.iter().all(|s| s["ok"] == true)), "{synced}");
    let vc = synced.as_array().and_then(|a| a.iter().find(|s| s["platform"] == "vcenter-dc")).cloned();
    let round_trips = vc.as_ref().and_then(|v| v["round_trips"].as_i64()).unwrap_or(99);
    assert!(round_trips <= 4, "a full vCenter sync should take a handful of round trips, took {round_trips}");
    let list = vms(&tb);
    let dc: Vec<&Value> = list.iter().filter(|v| v["site"] == "dc").collect();
    assert_eq!(dc.len(), 166);
    for k in ["name", "platform", "site", "host", "power_state", "vcpus", "memory_bytes", "system"] {
        assert!(dc.iter().all(|v| v.get(k).is_some()), "every VM has {k}");
    }
    let guest = dc.iter().find(|v| v["name"] == "qlvbdh-app-01").expect("the iOffice guest");
    assert_eq!((guest["system"].as_str(), guest["vcpus"].as_u64()), (Some("qlvbdh"), Some(8)));
    assert_eq!(list.iter().filter(|v| v["site"] == "dr").count(), 3);
    let plats = tb.json(&["platforms", "list"]);
    let kinds: Vec<&str> =
        plats.as_array().map(|a| a.iter().filter_map(|p| p["kind"].as_str()).collect()).unwrap_or_default();
    assert_eq!(kinds, vec!["openstack", "vsphere"]);
    assert!(plats.as_array().is_some_and(|a| a.iter().all(|p| p["state"] == "up" && p["last_sync"].is_string())));

    // The six systems, each with the machines it runs on, discovered VMs included.
    let systems = tb.json(&["systems", "list"]);
    let qlvbdh = systems.as_array().and_then(|a| a.iter().find(|s| s["name"] == "qlvbdh")).cloned().unwrap_or_default();
    assert_eq!((qlvbdh["level"].as_u64(), qlvbdh["framework"].as_str()), (Some(3), Some("vn-nd85-tcvn11930")));
    let on: Vec<&str> =
        qlvbdh["hosts"].as_array().map(|h| h.iter().filter_map(|x| x.as_str()).collect()).unwrap_or_default();
    assert!(on.contains(&"qlvbdh-app-01") && on.contains(&"qlvbdh-db-01"), "{on:?}");
    assert_eq!(systems.as_array().map(Vec::len), Some(6));

    // The ESXi hosts, from vCenter through the proxy agent, which is not one of them.
    let hosts = tb.hosts();
    let esxi: Vec<&Value> = hosts.iter().filter(|h| h["kind"] == "hypervisor" && h["site"] == "dc").collect();
    assert_eq!(esxi.len(), 9);
    assert!(esxi.iter().all(|h| h["state"] == "connected"));
    assert!(hosts.iter().any(|h| h["name"] == "dc-proxy-01" && h["kind"] == "vm"));
    let shown = tb.show("dc-esxi-01");
    assert_eq!(shown["facts"]["source"], "vcenter-dc");
    assert_eq!(shown["facts"]["cpu_count"], 64);

    // The shaped vCenter serves pyvmomi the calls our driver makes: power and snapshots.
    let said = pyvmomi(
        &tb,
        "vm = find(vim.VirtualMachine, 'ad-dc-02')\nWaitForTask(vm.PowerOffVM_Task())\noff = vm.runtime.powerState\n\
         WaitForTask(vm.PowerOnVM_Task())\nt = vm.CreateSnapshot_Task(name='pyvmomi', description='', memory=False, quiesce=False)\n\
         WaitForTask(t)\nsnaps = [s.name for s in vm.snapshot.rootSnapshotList]\nWaitForTask(vm.RemoveAllSnapshots_Task())\n\
         print(off, vm.runtime.powerState, snaps)",
    );
    // (Reading `vm.snapshot` once none is left makes this vcsim drop the connection.)
    assert_eq!(said.trim(), "poweredOff poweredOn ['pyvmomi']");

    // A VM moved by vMotion keeps its identity and shows as drift; a host in maintenance
    // shows degraded with the reason.
    let before = dc.iter().find(|v| v["name"] == "web-sotttt-01").expect("a department web VM");
    let (id, from) = (before["id"].clone(), before["host"].as_str().unwrap_or_default().to_string());
    let to = if from == "dc-esxi-01" { "dc-esxi-02" } else { "dc-esxi-01" };
    pyvmomi(
        &tb,
        &format!(
            "vm = find(vim.VirtualMachine, 'web-sotttt-01')\nWaitForTask(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=find(vim.HostSystem, '{to}'))))\n\
             WaitForTask(find(vim.HostSystem, 'dc-esxi-05').EnterMaintenanceMode_Task(timeout=0))"
        ),
    );
    tb.json(&["platforms", "sync", "vcenter-dc"]);
    let after = tb.json(&["vms", "show", "web-sotttt-01"]);
    assert_eq!((after["id"].clone(), after["host"].as_str()), (id, Some(to)));
    assert!(after["history"].as_array().is_some_and(|h| h.iter().any(|c| c["change"] == "moved")), "{after}");
    let drift = tb.json(&["platforms", "drift"]);
    assert!(drift["changed"].as_array().is_some_and(|c| c.iter().any(|c| c["name"] == "web-sotttt-01")), "{drift}");
    assert!(drift["unassigned"].as_array().is_some_and(|u| u.iter().any(|v| v["name"] == "ad-dc-01")));
    assert_eq!(drift["missing"], json!([]));
    let maint =
        tb.wait(Duration::from_secs(20), |hs| hs.iter().any(|h| h["name"] == "dc-esxi-05" && h["state"] == "degraded"));
    let maint = maint.expect("dc-esxi-05 degraded while in maintenance");
    let h5 = maint.iter().find(|h| h["name"] == "dc-esxi-05").cloned().unwrap_or_default();
    assert!(h5["problems"].to_string().contains("maintenance"), "{h5}");

    // Power and snapshots need the operator role, and each change is audited by name.
    let planner = tb.mg_as(&tb.user_token("planner"), &["vms", "power", "qlvbdh-app-01", "off"]);
    assert!(!planner.status.success());
    assert!(String::from_utf8_lossy(&planner.stderr).contains("may not change a VM's power"));
    let op = tb.user_token("operator");
    for args in [
        vec!["vms", "power", "cong-bao-app-01", "off"],
        vec!["vms", "power", "cong-bao-app-01", "off"], // already off: done at once
        vec!["vms", "snapshot", "cong-bao-app-01", "create", "before-patch"],
    ] {
        let out = tb.mg_as(&op, &args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(tb.json(&["vms", "show", "cong-bao-app-01"])["power_state"], "off");
    let snaps = tb.json(&["vms", "snapshot", "cong-bao-app-01", "list"]);
    assert_eq!(snaps["snapshots"][0]["name"], "before-patch");
    for args in [
        vec!["vms", "snapshot", "cong-bao-app-01", "revert", "before-patch"],
        vec!["vms", "snapshot", "cong-bao-app-01", "delete", "before-patch"],
        vec!["vms", "power", "cong-bao-app-01", "on"],
    ] {
        let out = tb.mg_as(&op, &args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(tb.json(&["vms", "snapshot", "cong-bao-app-01", "list"])["snapshots"], json!([]));
    let audit = tb.api_get("/api/v1/audit?limit=50", &tb.token).to_string();
    assert!(audit.contains("vm.power") && audit.contains("vm.snapshot") && audit.contains("\"actor\":\"operator\""));

    // OpenStack answering nonsense, then too slowly: clear errors, the platform down, its VMs kept.
    let admin = openstack_admin(&tb);
    fault(&tb, &admin, Some(json!({"service": "compute", "kind": "malformed"})));
    let err = sync_fails(&tb, "openstack-dr");
    assert!(err.contains("malformed"), "{err}");
    assert_eq!(
        metric(&tb, "mangrove_platform_up{platform=\"openstack-dr\"}").as_deref(),
        Some("mangrove_platform_up{platform=\"openstack-dr\"} 0")
    );
    assert_eq!(vms(&tb).iter().filter(|v| v["site"] == "dr").count(), 3, "a failed sync keeps the inventory");
    fault(&tb, &admin, None);
    fault(&tb, &admin, Some(json!({"service": "compute", "kind": "slow", "seconds": 35})));
    let started = Instant::now();
    let err = sync_fails(&tb, "openstack-dr");
    assert!(err.contains("within 30 s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
    fault(&tb, &admin, None);
    tb.json(&["platforms", "sync", "openstack-dr"]);
    assert_eq!(
        metric(&tb, "mangrove_platform_up{platform=\"openstack-dr\"}").as_deref(),
        Some("mangrove_platform_up{platform=\"openstack-dr\"} 1")
    );

    // vCenter down: the sync says so, the VMs stay, the ESXi hosts go down naming why.
    let (pid, _) = testbed::procs::under(tb.path())
        .into_iter()
        .find(|(_, a)| a.iter().any(|x| x == "-shape"))
        .expect("the vCenter simulator process");
    common::signal(pid, nix::sys::signal::Signal::SIGKILL);
    let err = sync_fails(&tb, "vcenter-dc");
    assert!(err.contains("cannot reach"), "{err}");
    assert_eq!(
        metric(&tb, "mangrove_platform_up{platform=\"vcenter-dc\"}").as_deref(),
        Some("mangrove_platform_up{platform=\"vcenter-dc\"} 0")
    );
    assert_eq!(vms(&tb).iter().filter(|v| v["site"] == "dc").count(), 166);
    let down = tb.wait(Duration::from_secs(40), |hs| {
        hs.iter().filter(|h| h["kind"] == "hypervisor" && h["site"] == "dc").all(|h| h["state"] == "down")
    });
    let down = down.expect("the ESXi hosts go down when vCenter cannot be read");
    let h1 = down.iter().find(|h| h["name"] == "dc-esxi-01").cloned().unwrap_or_default();
    assert!(h1["problems"].to_string().contains("cannot be read"), "{h1}");
    let plats = tb.json(&["platforms", "list"]);
    let vc = plats.as_array().and_then(|a| a.iter().find(|p| p["name"] == "vcenter-dc")).cloned().unwrap_or_default();
    assert_eq!(vc["state"], "down");
    assert!(vc["last_error"].as_str().is_some_and(|e| e.contains("cannot reach")), "{vc}");
}

/// Without Go (so without the vCenter simulator) the testbed still comes up: it says the
/// vSphere side is off and why, and the ESXi hosts get stand-in agents.
#[test]
fn without_go_the_testbed_comes_up_with_the_vsphere_side_off() {
    let dir = tempfile::Builder::new().prefix("mangrove-e2e-nogo-").tempdir().expect("tempdir");
    let inv = dir.path().join("inventory.yaml");
    std::fs::write(&inv, common::SMALL_INVENTORY).expect("inventory");
    let out = common::run(
        Command::new(common::bin("mangrove"))
            .args(["testbed", "up", "--detach", "--dir"])
            .arg(dir.path())
            .arg("--inventory")
            .arg(&inv)
            .env("PATH", "/usr/sbin:/sbin")
            .env("MANGROVE_CONFIG", dir.path().join("user-cli.toml")),
    );
    let down = || {
        common::run(Command::new(common::bin("mangrove")).args(["testbed", "down", "--dir"]).arg(dir.path()));
    };
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        down();
        panic!("testbed up failed:\n{stdout}\n{stderr}");
    }
    down();
    assert!(stderr.contains("vSphere side is OFF") && stderr.contains("go"), "{stderr}");
    assert!(stdout.contains("testbed ready: 3 hosts"), "{stdout}");
    assert!(!stdout.contains("vcenter:"), "{stdout}");
}
