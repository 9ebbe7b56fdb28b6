//! The Cà Mau example is the inventory the testbed and the docs use: it must load, and it must
//! say what the seed plan says.

use std::path::Path;
use std::time::Duration;

use inventory::{AgentMode, Inventory, MachineKind, PlatformKind, Priority};

fn example_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/camau.yaml")
}

fn example() -> Inventory {
    match inventory::load_file(&example_path()) {
        Ok(inv) => inv,
        Err(e) => panic!("the example must load: {e}\n{:#?}", e.diagnostics()),
    }
}

#[test]
fn example_yields_the_22_machines_that_run_or_need_an_agent() {
    let inv = example();
    let machines = inv.machines();
    assert_eq!(machines.len(), 22);
    let count = |site: &str, kind: MachineKind, agent: AgentMode| {
        machines.iter().filter(|m| m.site == site && m.kind == kind && m.agent == agent).count()
    };
    assert_eq!(count("dc", MachineKind::Hypervisor, AgentMode::Proxy), 9);
    assert_eq!(count("dr", MachineKind::Hypervisor, AgentMode::Native), 6);
    // The six system guests and the proxy that speaks for the ESXi hosts.
    assert_eq!(count("dc", MachineKind::Vm, AgentMode::Native), 7);
    assert_eq!(inv.site("dc").and_then(|s| s.platform.proxy.as_deref()), Some("dc-proxy-01"));
    // Hosts first, in file order, then the VMs.
    assert_eq!(machines[0].name, "dc-esxi-01");
    assert_eq!(machines[14].name, "dr-compute-06");
    assert_eq!(machines[15].kind, MachineKind::Vm);
    // Every machine has an address, all distinct, all in 192.0.2.0/24.
    let mut addrs: Vec<_> = machines.iter().filter_map(|m| m.address).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 22);
    assert!(addrs.iter().all(|a| a.to_string().starts_with("192.0.2.")));
    let esxi = &machines[0];
    assert_eq!(esxi.memory_bytes, 768 << 30);
    assert_eq!(esxi.disk_bytes, None);
    assert_eq!(esxi.os, Some("VMware ESXi 7.0"));
    let vm = machines.iter().find(|m| m.name == "dvc-portal-app-01").expect("the portal VM");
    assert_eq!(vm.system, Some("dvc-portal"));
    assert_eq!(vm.disk_bytes, Some(300 << 30));
    assert_eq!(MachineKind::Vm.as_str(), "vm");
}

#[test]
fn example_has_the_seed_figures() {
    let inv = example();
    assert_eq!(inv.province, "Cà Mau");
    assert_eq!(inv.sites.len(), 2);
    let dc = inv.site("dc").expect("site dc");
    assert_eq!(dc.platform.kind, PlatformKind::Vsphere);
    assert_eq!(dc.platform.name, "vcenter-dc");
    assert_eq!(dc.storage_tb, 135.0);
    assert_eq!(dc.vms, Some(166));
    let dr = inv.site("dr").expect("site dr");
    assert_eq!(dr.platform.kind, PlatformKind::Openstack);
    assert_eq!(dr.storage_tb, 117.0);
    assert_eq!(inv.systems.len(), 6);
    assert_eq!(inv.video_endpoints.len(), 11);
    assert_eq!(inv.endpoint_computers(), 2_753);
    let names: Vec<&str> = inv.systems.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["qlvbdh", "dvc-portal", "email", "web-portal", "cong-bao", "cbccvc"]);
    for s in &inv.systems {
        assert_eq!(s.framework, "vn-nd85-tcvn11930");
        assert!((1..=5).contains(&s.level.get()), "{}", s.name);
        let vms = inv.workloads_of(&s.name);
        assert_eq!(vms.len(), 1, "{} has exactly one VM", s.name);
        assert_eq!(vms[0].site, "dc");
        assert!(s.rpo <= s.rto, "{}: rpo within rto", s.name);
    }
    let portal = inv.system("dvc-portal").expect("dvc-portal");
    assert_eq!(portal.title_vi, "Cổng Dịch vụ công");
    assert_eq!(portal.priority, Priority::P1);
    assert_eq!(portal.rpo, Duration::from_secs(15 * 60));
    assert_eq!(inv.system("cong-bao").map(|s| s.level.get()), Some(2));
}

#[test]
fn example_round_trips_through_json() {
    let inv = example();
    let json = serde_json::to_string(&inv).expect("serializes");
    assert!(json.contains(r#""kind":"vsphere""#), "{json}");
    assert!(json.contains(r#""agent":"proxy""#));
    assert!(json.contains(r#""rpo":"15m""#));
    assert!(json.contains(r#""level":3"#));
    assert!(json.contains(r#""priority":1"#));
    assert!(json.contains(r#""match":{"tag":"system=qlvbdh"}"#));
    let back: Inventory = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, inv);
    let machines = serde_json::to_value(inv.machines()).expect("machines serialize");
    assert_eq!(machines[0]["kind"], "hypervisor");
}

#[test]
fn example_parses_the_same_from_a_string() {
    let text = std::fs::read_to_string(example_path()).expect("read example");
    let inv = inventory::parse_str(&text, "camau.yaml").expect("parses");
    assert_eq!(inv, example());
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let err = inventory::load_file(Path::new("/nonexistent/inventory.yaml")).expect_err("missing");
    assert!(matches!(err, inventory::InventoryError::Io { .. }));
    assert_eq!(err.to_string(), "cannot read inventory file /nonexistent/inventory.yaml");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn a_file_that_is_not_utf8_is_refused_at_the_bad_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, b"province: C\xe0 Mau\nsites: []\n").expect("write");
    let err = inventory::load_file(&path).expect_err("not utf-8");
    let shown = err.to_string();
    assert!(shown.ends_with("bad.yaml:1:12: the file is not valid UTF-8"), "{shown}");
}

#[test]
fn discovered_vms_map_to_systems_by_declaration_tag_and_pattern() {
    let mut inv = example();
    let none = std::collections::BTreeMap::new();
    let tagged: std::collections::BTreeMap<String, String> = [("system".to_string(), "email".to_string())].into();
    // A declared workload keeps its own system, whatever the platform says.
    assert_eq!(inv.system_of_vm("qlvbdh-app-01", &none), Some("qlvbdh"));
    // A discovered VM with a `system` tag naming a known system.
    assert_eq!(inv.system_of_vm("mail-store-07", &tagged), Some("email"));
    // A tag naming no system maps nowhere (drift shows it), and so does an untagged VM.
    let bogus: std::collections::BTreeMap<String, String> = [("system".to_string(), "nope".to_string())].into();
    assert_eq!(inv.system_of_vm("x-01", &bogus), None);
    assert_eq!(inv.system_of_vm("cong-bao-db-01", &none), None);
    // A name pattern claims it.
    if let Some(s) = inv.systems.iter_mut().find(|s| s.name == "cong-bao") {
        s.workloads.name_patterns.push("cong-bao-*".into());
    }
    assert_eq!(inv.system_of_vm("cong-bao-db-01", &none), Some("cong-bao"));
}

#[test]
fn glob_patterns_match_whole_names() {
    let cases = [
        ("qlvbdh-*", "qlvbdh-db-01", true),
        ("qlvbdh-*", "qlvbdh-", true),
        ("qlvbdh-*", "x-qlvbdh-db", false),
        ("*-db-??", "email-db-01", true),
        ("*-db-??", "email-db-001", false),
        ("a*b*c", "aXXbYYc", true),
        ("a*b*c", "aXXbYY", false),
        ("", "", true),
        ("", "a", false),
    ];
    for (pat, name, want) in cases {
        assert_eq!(inventory::glob_matches(pat, name), want, "{pat} vs {name}");
    }
}

#[test]
fn a_proxy_must_be_a_native_machine_at_its_site() {
    let text = std::fs::read_to_string(example_path()).unwrap_or_default();
    let bad = text.replace("proxy: dc-proxy-01", "proxy: dr-compute-01");
    let err = inventory::parse_str(&bad, "camau.yaml").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("platform.proxy") && err.contains("site `dr`"), "{err}");
    let bad = text.replace("proxy: dc-proxy-01", "proxy: dc-esxi-01");
    let err = inventory::parse_str(&bad, "camau.yaml").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("a proxy must run a native agent"), "{err}");
}
