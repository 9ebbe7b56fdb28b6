//! Planning and applying the import of an Ansible inventory into Mangrove's.

#![allow(clippy::unwrap_used)]

use ansible_compat::import::{self, ApplyError};
use ansible_compat::loader::SourceFile;
use ansible_compat::{export, render};

fn camau() -> inventory::Inventory {
    inventory::parse_str(include_str!("../../inventory/examples/camau.yaml"), "camau.yaml").unwrap()
}

fn files(list: &[(&str, &str)]) -> Vec<SourceFile> {
    list.iter().map(|(p, t)| SourceFile { path: (*p).into(), text: (*t).into() }).collect()
}

#[test]
fn new_machines_changes_and_conflicts_are_planned_with_file_and_line() {
    let ini = "\
[dc]
new-vm-[01:02] mangrove_cpus=2
dc-esxi-01 ansible_host=192.0.2.111
dvc-portal-app-01

[dr]
dr-x ansible_host=db.example mangrove_cpus=1 mangrove_memory_gb=1
both

[dc]
both mangrove_cpus=1 mangrove_memory_gb=1

[system_email]
new-vm-01
";
    let ai = import::read_sources(&files(&[
        ("inv/hosts.ini", ini),
        ("inv/group_vars/dc.yml", "mangrove_memory_gb: 4\nmangrove_disk_gb: 20\n"),
        ("inv/host_vars/nosite", "x: 1\n"),
    ]))
    .unwrap();
    let plan = import::plan(&ai, &camau());
    let added: Vec<(&str, &str, Option<&str>)> =
        plan.add.iter().map(|m| (m.name.as_str(), m.site.as_str(), m.system.as_deref())).collect();
    assert_eq!(added, [("new-vm-01", "dc", Some("email")), ("new-vm-02", "dc", None)]);
    assert_eq!(plan.add[0].memory_gb, 4);
    assert_eq!(plan.add[0].disk_gb, 20);
    assert_eq!(plan.add[0].loc.to_string(), "inv/hosts.ini:2");
    assert_eq!(plan.change.len(), 1);
    assert_eq!(
        (plan.change[0].name.as_str(), plan.change[0].field, plan.change[0].to.as_str()),
        ("dc-esxi-01", "address", "192.0.2.111")
    );
    assert_eq!(plan.unchanged, ["dvc-portal-app-01"]);
    let conflicts: Vec<String> = plan.conflicts.iter().map(ToString::to_string).collect();
    assert!(
        conflicts.iter().any(|c| c.starts_with(
            "inv/hosts.ini:8: host both is in more than one site group: dc (inv/hosts.ini:11), dr (inv/hosts.ini:8)"
        )),
        "{conflicts:?}"
    );
    assert!(
        conflicts
            .iter()
            .any(|c| c.starts_with("inv/hosts.ini:7: host dr-x: ansible_host db.example is not an IP address")),
        "{conflicts:?}"
    );
    assert_eq!(conflicts.len(), 2, "{conflicts:?}");

    // With conflicts nothing is applied.
    assert!(matches!(import::apply(&plan, &camau()), Err(ApplyError::Conflicts(c)) if c.len() == 2));
}

#[test]
fn a_new_machine_needs_its_sizes() {
    let ai = import::read_sources(&files(&[("h.ini", "[dc]\nbare\n")])).unwrap();
    let plan = import::plan(&ai, &camau());
    assert_eq!(
        plan.conflicts[0].to_string(),
        "h.ini:2: host bare is new: set mangrove_cpus and mangrove_memory_gb (at least 1; Mangrove plans capacity with them)"
    );
}

#[test]
fn applying_adds_and_changes_and_the_result_validates() {
    let ini = "[dc]\nnew-vm mangrove_cpus=2 mangrove_memory_gb=8 ansible_host=192.0.2.99\ndc-esxi-01 ansible_host=192.0.2.111\n[role_server]\nbox mangrove_site=dr mangrove_cpus=4 mangrove_memory_gb=16\n";
    let ai = import::read_sources(&files(&[("h.ini", ini)])).unwrap();
    let plan = import::plan(&ai, &camau());
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    let next = import::apply(&plan, &camau()).unwrap();
    assert_eq!(next.workload("new-vm").unwrap().address.unwrap().to_string(), "192.0.2.99");
    assert_eq!(next.host("box").unwrap().site, "dr");
    assert_eq!(next.host("dc-esxi-01").unwrap().address.unwrap().to_string(), "192.0.2.111");
    // Importing the exported inventory of the result changes nothing more.
    let again = import::read_sources(&files(&[("x.yml", &render::to_yaml(&export::from_mangrove(&next)))])).unwrap();
    let plan2 = import::plan(&again, &next);
    assert!(plan2.add.is_empty() && plan2.change.is_empty() && plan2.conflicts.is_empty(), "{plan2:?}");
    assert_eq!(plan2.unchanged.len(), 24);
}

#[test]
fn a_name_the_inventory_refuses_is_reported_not_applied() {
    // Two machines may not share a name with different kinds: the inventory's own checks run.
    let ai =
        import::read_sources(&files(&[("h.ini", "[dc]\nBAD_NAME mangrove_cpus=1 mangrove_memory_gb=1\n")])).unwrap();
    let plan = import::plan(&ai, &camau());
    assert!(plan.conflicts.is_empty());
    assert!(matches!(import::apply(&plan, &camau()), Err(ApplyError::Invalid(_))));
}
