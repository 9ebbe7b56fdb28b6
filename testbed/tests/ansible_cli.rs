//! `mangrove ansible …` against a running testbed, with the real `ansible-inventory` reading
//! our dynamic inventory (through Ansible's script plugin) and our static YAML; a playbook
//! with an unsupported module refused before anything runs, a valid one run (an operator's
//! right, refused to an auditor); an import applied by an operator
//! and refused to an auditor.
//!
//! Needs ansible-core in the project venv (`mangrove testbed deps --install`; `MANGROVE_VENV`
//! names another venv); fails saying so otherwise.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{SMALL_INVENTORY, Testbed};
use serde_json::Value;

fn ansible_inventory() -> PathBuf {
    let venv = std::env::var_os("MANGROVE_VENV").map_or_else(|| PathBuf::from("/var/tmp/mangrove-venv"), PathBuf::from);
    let exe = venv.join("bin/ansible-inventory");
    assert!(
        exe.is_file(),
        "{} is missing: install ansible-core into the project venv with `mangrove testbed deps --install`",
        exe.display()
    );
    exe
}

fn real_list(source: &Path, home: &Path) -> Value {
    let out = common::run(
        Command::new(ansible_inventory())
            .arg("-i")
            .arg(source)
            .arg("--list")
            .env("ANSIBLE_HOME", home)
            .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true"),
    );
    assert!(
        out.status.success(),
        "ansible-inventory -i {}: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from ansible-inventory")
}

type Norm = (BTreeMap<String, (Vec<String>, Vec<String>)>, Value);

/// As the acceptance check compares: groups (direct hosts, children) and hostvars.
fn norm(inv: &Value) -> Norm {
    let mut groups = BTreeMap::new();
    for (name, g) in inv.as_object().expect("object") {
        if name == "_meta" || name == "all" || name == "ungrouped" {
            continue;
        }
        let list = |k: &str| {
            let mut v: Vec<String> = g[k]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default();
            v.sort();
            v
        };
        groups.insert(name.clone(), (list("hosts"), list("children")));
    }
    (groups, inv["_meta"]["hostvars"].clone())
}

#[test]
fn ansible_reads_our_inventories_alike_refuses_unsupported_playbooks_and_imports_are_authorised() {
    let tb = Testbed::up(Some(SMALL_INVENTORY));
    let work = tempfile::tempdir().expect("tempdir");

    // The dynamic inventory prints JSON only, and exits 0.
    let list = tb.mg(&["ansible", "inventory", "--list"]);
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let ours: Value = serde_json::from_slice(&list.stdout).expect("--list prints JSON only");
    assert_eq!(ours["dc"]["hosts"], serde_json::json!(["dc-esxi-01", "web-app-01"]));
    assert_eq!(ours["_meta"]["hostvars"]["web-app-01"]["mangrove_level"], 2);

    let st = tb.mg(&["ansible", "inventory", "--static", "yaml"]);
    assert!(st.status.success());
    let yaml = work.path().join("inventory.yml");
    std::fs::write(&yaml, &st.stdout).expect("write");
    let script = work.path().join("mangrove-inventory.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexport MANGROVE_CONTROLLER='{}' MANGROVE_TOKEN='{}' MANGROVE_CA='{}' MANGROVE_CONFIG='{}'\nexec '{}' ansible inventory \"$@\"\n",
            tb.api,
            tb.token,
            tb.ca().display(),
            tb.path().join("user-cli.toml").display(),
            common::bin("mangrove").display()
        ),
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dynamic = norm(&real_list(&script, work.path()));
    let fixed = norm(&real_list(&yaml, work.path()));
    assert_eq!(dynamic, fixed, "ansible-inventory reads our --list and our static YAML differently");
    assert!(dynamic.0.contains_key("system_web") && dynamic.0.contains_key("level_2") && dynamic.0.contains_key("dr"));

    // An unsupported module: refused with file:line before anything runs.
    let bad = work.path().join("bad.yml");
    std::fs::write(&bad, "- hosts: dc\n  tasks:\n    - name: fine\n      ansible.builtin.debug:\n        msg: hello\n    - name: nope\n      community.general.nonexistent_module:\n        x: 1\n").expect("write");
    let out = tb.mg(&["ansible", "run", bad.to_str().expect("utf-8")]);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("bad.yml:7: module community.general.nonexistent_module is not supported"), "{said}");
    assert!(!said.contains("ok: [") && !said.contains("changed: ["), "{said}");

    // A valid playbook runs through the agents (debug is evaluated by the runner itself);
    // an auditor may not run one.
    let good = work.path().join("good.yml");
    std::fs::write(&good, "- hosts: dc:!role_hypervisor\n  tasks:\n    - debug: {msg: hi}\n").expect("write");
    let good = good.to_str().expect("utf-8");
    let out = tb.mg(&["--json", "ansible", "run", good]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["plays"][0]["hosts"], serde_json::json!(["web-app-01"]));
    assert_eq!(v["ran"], true);
    assert_eq!(v["stats"]["web-app-01"]["ok"], 2, "{v}");
    let out = tb.mg(&["ansible", "run", good]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TASK [debug] ****") && text.contains("ok: [web-app-01] => {"), "{text}");
    assert!(text.contains("PLAY RECAP"), "{text}");
    let refused = tb.mg_as(&tb.user_token("auditor"), &["ansible", "run", good]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"), "{}", String::from_utf8_lossy(&refused.stderr));

    // A templated pattern of the usual form takes its value from -e, else its default.
    let templated = work.path().join("templated.yml");
    std::fs::write(&templated, "- hosts: \"{{ target | default('dr') }}\"\n  tasks:\n    - debug: {msg: hi}\n")
        .expect("write");
    let templated = templated.to_str().expect("utf-8");
    for (extra, want) in
        [(None, serde_json::json!(["dr-compute-01"])), (Some("target=system_web"), serde_json::json!(["web-app-01"]))]
    {
        let mut args = vec!["--json", "ansible", "run", templated];
        if let Some(e) = extra {
            args.extend(["-e", e]);
        }
        let out = tb.mg(&args);
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(v["plays"][0]["hosts"], want, "-e {extra:?}");
    }

    // Import: an auditor may plan but not apply; an operator applies, and it is audited.
    let ini = work.path().join("hosts.ini");
    std::fs::write(&ini, "[dr]\ndr-app-[01:02] mangrove_cpus=2 mangrove_memory_gb=4\n").expect("write");
    let ini = ini.to_str().expect("utf-8");
    let plan = tb.mg_as(&tb.user_token("auditor"), &["--json", "ansible", "import", ini]);
    assert!(plan.status.success(), "{}", String::from_utf8_lossy(&plan.stderr));
    let plan: Value = serde_json::from_slice(&plan.stdout).expect("JSON");
    assert_eq!(plan["add"].as_array().map(Vec::len), Some(2));
    let refused = tb.mg_as(&tb.user_token("auditor"), &["ansible", "import", ini, "--apply"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"), "{}", String::from_utf8_lossy(&refused.stderr));
    let applied = tb.mg_as(&tb.user_token("operator"), &["ansible", "import", ini, "--apply"]);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let hosts = tb.hosts();
    assert!(hosts.iter().any(|h| h["name"] == "dr-app-02" && h["site"] == "dr"), "{hosts:?}");
    let audit = tb.api_get("/api/v1/audit?limit=20", &tb.user_token("auditor"));
    let entry = audit.as_array().and_then(|a| a.iter().find(|e| e["action"] == "inventory.import")).expect("audited");
    assert_eq!(entry["actor"], "operator");
    // A second import plans against the file as the first left it: nothing more to add.
    let again = tb.mg_as(&tb.user_token("operator"), &["--json", "ansible", "import", ini]);
    let again: Value = serde_json::from_slice(&again.stdout).expect("JSON");
    assert_eq!(again["add"].as_array().map(Vec::len), Some(0), "{again}");
}
