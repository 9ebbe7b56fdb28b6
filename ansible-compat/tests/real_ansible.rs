//! Our inventories as the real `ansible-inventory` (ansible-core) reads them.
//!
//! Needs `ansible-inventory` from the project venv (`mangrove testbed deps --install` puts
//! ansible-core there; `MANGROVE_VENV` names another venv). A missing one fails the test
//! and says what to install.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ansible_compat::loader::{SourceFile, read_tree};
use ansible_compat::{export, import, render};
use serde_json::Value;

fn ansible_inventory() -> PathBuf {
    let venv = std::env::var_os("MANGROVE_VENV").map_or_else(|| PathBuf::from("/var/tmp/mangrove-venv"), PathBuf::from);
    let exe = venv.join("bin/ansible-inventory");
    assert!(
        exe.is_file(),
        "{} is missing: install ansible-core into the project venv with `mangrove testbed deps --install` \
         (or `{}/bin/pip install ansible-core`)",
        exe.display(),
        venv.display()
    );
    exe
}

/// `ansible-inventory -i SOURCE --list`, as JSON.
fn real_list(source: &Path, home: &Path) -> Value {
    let out = Command::new(ansible_inventory())
        .arg("-i")
        .arg(source)
        .arg("--list")
        .env("ANSIBLE_HOME", home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .output()
        .expect("run ansible-inventory");
    assert!(
        out.status.success(),
        "ansible-inventory -i {} failed: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ansible-inventory printed JSON")
}

type Groups = BTreeMap<String, (Vec<String>, Vec<String>)>;

/// Groups (direct hosts, children; `all` and `ungrouped` left out) and hostvars, as the
/// acceptance check compares them.
fn norm(inv: &Value) -> (Groups, Value) {
    let mut groups = Groups::new();
    for (name, g) in inv.as_object().expect("object") {
        if name == "_meta" || name == "all" || name == "ungrouped" {
            continue;
        }
        let list = |k: &str| -> Vec<String> {
            let mut v: Vec<String> = g
                .get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default();
            v.sort();
            v
        };
        groups.insert(name.clone(), (list("hosts"), list("children")));
    }
    let hv = inv.pointer("/_meta/hostvars").cloned().unwrap_or(Value::Null);
    (groups, hv)
}

fn camau() -> inventory::Inventory {
    inventory::parse_str(include_str!("../../inventory/examples/camau.yaml"), "camau.yaml").expect("example")
}

fn write_script(dir: &Path, list: &Value) -> PathBuf {
    let json = dir.join("list.json");
    std::fs::write(&json, serde_json::to_vec(list).unwrap()).unwrap();
    let script = dir.join("dynamic.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nif [ \"$1\" = --list ]; then cat '{}'; else echo '{{}}'; fi\n", json.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn exported_yaml_ini_and_dynamic_inventories_read_the_same_in_ansible() {
    let dir = tempfile::tempdir().unwrap();
    let ai = export::from_mangrove(&camau());
    let yaml = dir.path().join("inventory.yml");
    std::fs::write(&yaml, render::to_yaml(&ai)).unwrap();
    let ini = dir.path().join("inventory.ini");
    std::fs::write(&ini, render::to_ini(&ai)).unwrap();
    let script = write_script(dir.path(), &export::list_json(&ai));

    let from_script = norm(&real_list(&script, dir.path()));
    let from_yaml = norm(&real_list(&yaml, dir.path()));
    let from_ini = norm(&real_list(&ini, dir.path()));
    assert_eq!(from_script.0, from_yaml.0, "groups: dynamic vs static YAML");
    assert_eq!(from_script.1, from_yaml.1, "hostvars: dynamic vs static YAML");
    assert_eq!(from_script.0, from_ini.0, "groups: dynamic vs static INI");
    assert_eq!(from_script.1, from_ini.1, "hostvars: dynamic vs static INI");

    // And what Ansible sees is what we meant: 22 machines (15 hosts, 7 VMs), the groups by site, level, system, role.
    let (groups, hostvars) = from_script;
    assert_eq!(hostvars.as_object().unwrap().len(), 22);
    assert_eq!(groups["dc"].0.len(), 9 + 7);
    assert_eq!(groups["dr"].0.len(), 6);
    assert!(groups["system_dvc_portal"].0 == ["dvc-portal-app-01"]);
    assert_eq!(groups["level_2"].0, ["cong-bao-app-01"]);
    assert_eq!(groups["role_hypervisor"].0.len(), 15);
    let v = &hostvars["dvc-portal-app-01"];
    assert_eq!(v["ansible_host"], "192.0.2.52");
    assert_eq!(v["mangrove_site"], "dc");
    assert_eq!(v["mangrove_level"], 3);
    assert_eq!(v["mangrove_systems"], serde_json::json!(["dvc-portal"]));
    assert_eq!(v["mangrove_os"], "Ubuntu 22.04");
    assert_eq!(v["mangrove_province"], "Cà Mau");
    assert_eq!(hostvars["dc-esxi-01"]["mangrove_agent"], "proxy");
}

const SAMPLE_INI: &str = "\
# A provincial Ansible inventory the way people write them.
bastion ansible_host=10.1.0.5

[web]
web[01:04] http_port=8080
web-[a:b]:2222 note='a \"quoted\" one'

[db]
db[1:3:2] mangrove_level=3 flag=True ratio=1.5 zipcode=\"'08030'\"

[app:children]
web
db

[app:vars]
ntp_server=ntp.example
retries=3
opts=['a', 'b']

[all:vars]
mangrove_site=dc
";

fn sample_tree(dir: &Path) -> PathBuf {
    let inv = dir.join("inv");
    std::fs::create_dir_all(inv.join("group_vars/web")).unwrap();
    std::fs::create_dir_all(inv.join("host_vars")).unwrap();
    std::fs::write(inv.join("hosts.ini"), SAMPLE_INI).unwrap();
    std::fs::write(inv.join("group_vars/all.yml"), "dns: [10.0.0.2, 10.0.0.3]\nmode: 0755\n").unwrap();
    std::fs::write(inv.join("group_vars/db.yaml"), "backup: yes\nretries: 5\n").unwrap();
    std::fs::write(inv.join("group_vars/web/main.yml"), "tier: front\nhttp_port: 80\n").unwrap();
    std::fs::write(inv.join("group_vars/web/tls"), "tls: {cert: /etc/ssl/web.pem}\n").unwrap();
    std::fs::write(inv.join("host_vars/web02.yml"), "http_port: 9090\nmaintenance: off\n").unwrap();
    inv.join("hosts.ini")
}

#[test]
fn an_ini_inventory_with_ranges_and_group_vars_round_trips_through_export() {
    let dir = tempfile::tempdir().unwrap();
    let ini = sample_tree(dir.path());
    let files: Vec<SourceFile> = read_tree(&ini, true).unwrap();
    let ai = import::read_sources(&files).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ai.hosts.len(), 1 + 4 + 2 + 2);

    let theirs = norm(&real_list(&ini, dir.path()));
    let out = dir.path().join("exported.yml");
    std::fs::write(&out, render::to_yaml(&ai)).unwrap();
    let ours_yaml = norm(&real_list(&out, dir.path()));
    let out_ini = dir.path().join("exported.ini");
    std::fs::write(&out_ini, render::to_ini(&ai)).unwrap();
    let ours_ini = norm(&real_list(&out_ini, dir.path()));
    let script = write_script(dir.path(), &export::list_json(&ai));
    let ours_dyn = norm(&real_list(&script, dir.path()));
    for (what, ours) in [("static YAML", &ours_yaml), ("static INI", &ours_ini), ("dynamic", &ours_dyn)] {
        assert_eq!(theirs.0, ours.0, "groups: Ansible's reading of the INI vs our {what} export");
        assert_eq!(theirs.1, ours.1, "hostvars: Ansible's reading of the INI vs our {what} export");
    }
    // Spot checks of what Ansible itself says.
    assert_eq!(theirs.1["web02"]["http_port"], 9090);
    assert_eq!(theirs.1["web03"]["http_port"], 8080, "a host line variable beats group_vars");
    assert_eq!(theirs.1["web03"]["tier"], "front");
    assert_eq!(theirs.1["db1"]["retries"], 5);
    assert_eq!(theirs.1["db3"]["zipcode"], "08030");
    assert_eq!(theirs.1["web-a"]["ansible_port"], 2222);
}

#[test]
fn ansible_playbook_accepts_the_playbook_we_accept() {
    // The fixture that uses every supported construct is a valid playbook for Ansible too.
    // `sysctl` is in the ansible.posix collection, not in ansible-core: the copy checked here
    // leaves that one task out.
    let exe = ansible_inventory().with_file_name("ansible-playbook");
    let home = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/site");
    let dir = home.path().join("site");
    copy_tree(&src, &dir);
    let tasks = dir.join("roles/base/tasks/main.yml");
    let text = std::fs::read_to_string(&tasks).unwrap();
    let start = text.find("- name: Kernel setting").unwrap();
    let end = text.find("- name: Users").unwrap();
    std::fs::write(&tasks, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let out = Command::new(exe)
        .args(["-i", "localhost,", "--syntax-check", "site.yml"])
        .current_dir(&dir)
        .env("ANSIBLE_HOME", home.path())
        .env("ANSIBLE_LOCAL_TEMP", home.path().join("tmp"))
        .output()
        .expect("run ansible-playbook");
    assert!(
        out.status.success(),
        "ansible-playbook --syntax-check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

#[test]
fn module_options_are_the_ones_ansible_documents() {
    // ansible-doc (ansible-core) is the oracle of each module's options and aliases; sysctl
    // lives in the ansible.posix collection, which ansible-core does not ship.
    let exe = ansible_inventory().with_file_name("ansible-doc");
    let home = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    let modules: Vec<&str> = ansible_compat::supported::MODULES
        .iter()
        .copied()
        .filter(|m| !matches!(*m, "sysctl" | "systemd_service"))
        .collect();
    // One ansible-doc call for all of them (each call costs a second or two of Python start-up).
    let out = Command::new(&exe)
        .arg("--json")
        .args(modules.iter().map(|m| format!("ansible.builtin.{m}")))
        .env("ANSIBLE_HOME", home.path())
        .output()
        .expect("run ansible-doc");
    assert!(out.status.success(), "ansible-doc: {}", String::from_utf8_lossy(&out.stderr));
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    for m in modules {
        let doc = &all[format!("ansible.builtin.{m}")];
        assert!(doc.is_object(), "ansible-doc said nothing about {m}");
        let mut theirs: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for (name, o) in doc["doc"]["options"].as_object().into_iter().flatten() {
            theirs.insert(name.clone());
            for a in o["aliases"].as_array().into_iter().flatten() {
                theirs.insert(a.as_str().unwrap().to_owned());
            }
        }
        theirs.remove("free_form");
        let Some(ours) = ansible_compat::supported::module_options(m) else { continue };
        let ours: std::collections::BTreeSet<String> =
            ours.iter().filter(|o| **o != "_raw_params").map(|o| (*o).to_owned()).collect();
        let missing: Vec<&String> = theirs.difference(&ours).collect();
        let extra: Vec<&String> = ours.difference(&theirs).collect();
        if !missing.is_empty() || !extra.is_empty() {
            wrong.push(format!("{m}: missing {missing:?}, not in Ansible {extra:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn awkward_values_and_nested_groups_survive_every_format() {
    // Values that look like other types, quotes, unicode, empty strings, nested data; groups
    // nested two deep with variables at each level. Ansible must read back exactly these
    // values from all three formats, and combine them as `effective_vars` says.
    use ansible_compat::AnsibleInventory;
    use serde_json::json;
    let mut ai = AnsibleInventory::default();
    let weird = json!({
        "looks_int": "3", "looks_bool": "True", "looks_none": "None", "looks_list": "[1, 2]",
        "quotes": "it's \"quoted\"", "spaces": "  padded  ", "empty": "", "unicode": "Sở TT&TT — Cà Mau",
        "hash": "a # not a comment", "eq": "a=b", "backslash": "C:\\temp\\x", "newline": "two\nlines",
        "int": 42, "neg": -7, "float": 1.5, "yes": true, "no": false, "null": null,
        "list": [1, "two", [3]], "dict": {"k": "v", "n": {"deep": [true]}}, "ip": "10.0.0.1", "dotted": "a.b-c",
    });
    for (k, v) in weird.as_object().unwrap() {
        ai.ensure_host("h1").insert(k.clone(), v.clone());
    }
    ai.ensure_host("h2");
    ai.ensure_host("lonely").insert("x".into(), json!("y"));
    ai.all_vars.insert("level".into(), json!("all"));
    ai.all_vars.insert("only_all".into(), json!(1));
    let top = ai.ensure_group("top");
    top.children.insert("mid".into());
    top.vars.insert("level".into(), json!("top"));
    let mid = ai.ensure_group("mid");
    mid.children.insert("leaf".into());
    mid.vars.insert("level".into(), json!("mid"));
    mid.hosts.insert("h2".into());
    let leaf = ai.ensure_group("leaf");
    leaf.hosts.insert("h1".into());
    leaf.vars.insert("level".into(), json!("leaf"));
    leaf.vars.insert("quotes".into(), json!("group loses to host"));

    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("w.yml");
    std::fs::write(&yaml, render::to_yaml(&ai)).unwrap();
    let ini = dir.path().join("w.ini");
    std::fs::write(&ini, render::to_ini(&ai)).unwrap();
    let script = write_script(dir.path(), &export::list_json(&ai));
    let expected: serde_json::Map<String, Value> =
        ai.hosts.keys().map(|h| (h.clone(), Value::Object(ai.effective_vars(h)))).collect();
    for source in [&yaml, &ini, &script] {
        let (groups, hostvars) = norm(&real_list(source, dir.path()));
        assert_eq!(hostvars, Value::Object(expected.clone()), "hostvars from {}", source.display());
        assert_eq!(groups["top"], (vec![], vec!["mid".to_string()]), "{}", source.display());
        assert_eq!(groups["mid"], (vec!["h2".to_string()], vec!["leaf".to_string()]), "{}", source.display());
        assert_eq!(groups["leaf"], (vec!["h1".to_string()], vec![]), "{}", source.display());
    }
}

#[test]
fn a_yaml_inventory_round_trips_too() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv");
    std::fs::create_dir_all(inv.join("host_vars/app-b")).unwrap();
    std::fs::create_dir_all(inv.join("group_vars")).unwrap();
    std::fs::write(
        inv.join("hosts.yml"),
        "all:\n  vars:\n    ntp: pool.example\n    mode: 0644\n  hosts:\n    solo:\n      ansible_host: 10.0.0.1\n  children:\n    dc:\n      hosts:\n        app-[a:c]:\n          tier: app\n        db[01:02]:\n      children:\n        edge:\n          hosts:\n            proxy1: {port: 8443, on: yes}\n      vars:\n        site_name: \"Trung tâm\"\n    dr:\n      hosts:\n        db02:\n",
    )
    .unwrap();
    std::fs::write(inv.join("group_vars/edge"), "exposed: true\n").unwrap();
    std::fs::write(inv.join("host_vars/app-b/10-main.yml"), "tier: special\n").unwrap();
    std::fs::write(inv.join("host_vars/app-b/20-more.yaml"), "extra: [1, 2]\n").unwrap();
    let source = inv.join("hosts.yml");
    let ai = import::read_sources(&read_tree(&source, true).unwrap()).unwrap_or_else(|e| panic!("{e}"));
    let theirs = norm(&real_list(&source, dir.path()));
    let out = dir.path().join("exported.yml");
    std::fs::write(&out, render::to_yaml(&ai)).unwrap();
    let ours = norm(&real_list(&out, dir.path()));
    assert_eq!(theirs, ours);
    assert_eq!(theirs.1["app-b"]["tier"], "special");
    assert_eq!(theirs.1["proxy1"]["exposed"], true);
    assert_eq!(theirs.1["solo"]["mode"], 0o644);
}
