//! Fuzzes the Ansible readers: any UTF-8 text read as an INI inventory, a YAML inventory, a
//! playbook (and the tasks file it includes) or a template must yield a value or positioned
//! problems, never a panic, a stack overflow or a hang.

#![no_main]

use std::collections::BTreeMap;

use ansible_compat::model::AnsibleInventory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut inv = AnsibleInventory::default();
    if let Err(e) = ansible_compat::ini::parse_into(text, "fuzz.ini", &mut inv) {
        assert!(e.0.iter().all(|p| p.loc.line >= 1), "{e}");
    }
    let mut inv = AnsibleInventory::default();
    let _ = ansible_compat::yaml_inventory::parse_into(text, "fuzz.yml", &mut inv);
    let files = BTreeMap::from([("p.yml".to_owned(), text.to_owned()), ("t.yml".to_owned(), text.to_owned())]);
    if let Err(e) = ansible_compat::playbook::load("p.yml", &files) {
        assert!(e.0.iter().all(|p| p.loc.line >= 1), "{e}");
    }
    let _ = ansible_compat::jinja_scan::scan_template(text);
    let _ = ansible_compat::pylit::literal(text);
});
