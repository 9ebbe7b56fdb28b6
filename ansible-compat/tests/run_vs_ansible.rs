//! The runner against real `ansible-playbook -c local`: the same playbook (debug, set_fact,
//! assert, fail, command, loops, handlers, block/rescue/always, a second play after a
//! failure) must give the same banners, the same per-host result words and the same
//! `PLAY RECAP` lines and exit code. `command` is run by an in-memory runner that does what
//! `/bin/true` and `/bin/false` do; everything else is the engine's own.
//!
//! Needs ansible-core in the project venv (`mangrove testbed deps --install`;
//! `MANGROVE_VENV` names another venv); a missing one fails the test.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use ansible_compat::run::{self, CallResult, ModuleCall, Modules, Options};
use ansible_compat::{AnsibleInventory, ini, playbook};
use serde_json::json;

const INVENTORY: &str = "h1 ansible_connection=local\nh2 ansible_connection=local\n";

fn venv() -> PathBuf {
    PathBuf::from(std::env::var("MANGROVE_VENV").unwrap_or_else(|_| "/var/tmp/mangrove-venv".into()))
}

struct Fake;

impl Modules for Fake {
    fn reachable(&self, _host: &str) -> Result<(), String> {
        Ok(())
    }

    fn call(&self, _host: &str, call: &ModuleCall) -> CallResult {
        let cmd = call.args.get("_raw_params").and_then(|v| v.as_str()).unwrap_or("");
        match (call.module.as_str(), cmd) {
            ("command", "/bin/true") => {
                CallResult::Done(json!({"changed": true, "rc": 0, "stdout": "", "cmd": ["/bin/true"]}))
            }
            ("command", "/bin/false") => CallResult::Done(
                json!({"changed": true, "failed": true, "rc": 1, "msg": "non-zero return code", "cmd": ["/bin/false"]}),
            ),
            other => CallResult::Done(json!({"failed": true, "msg": format!("fake runner cannot run {other:?}")})),
        }
    }
}

/// The lines both tools print the same: banners, result words per host, recap.
fn comparable(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| {
            l.starts_with("PLAY")
                || l.starts_with("TASK")
                || l.starts_with("RUNNING HANDLER")
                || l.starts_with("NO MORE HOSTS")
                || l.starts_with("...ignoring")
                || l.starts_with("ok: [")
                || l.starts_with("changed: [")
                || l.starts_with("skipping: [")
                || l.starts_with("fatal: [")
                || l.starts_with("failed: [")
                || l.starts_with("h1 ")
                || l.starts_with("h2 ")
                || l.starts_with("included: ")
                // The bodies of results shown in full (debug, assert): compared as they are.
                || (l.starts_with("    ") && !l.contains("^ column"))
                || *l == "}"
        })
        // A command's result differs (timings, the fake's keys): there the word, host and
        // item are what count; the runner's own results (debug, assert, fail) compare whole.
        .map(|l| {
            if l.contains("\"cmd\"") {
                l.split(" => {").next().unwrap_or(l).trim_end().to_owned()
            } else {
                l.trim_end().to_owned()
            }
        })
        .collect();
    // Hosts finish a task in any order in Ansible; compare each task's lines as a set.
    let mut sorted = Vec::new();
    let mut group: Vec<String> = Vec::new();
    for l in out.drain(..) {
        if l.starts_with("PLAY") || l.starts_with("TASK") || l.starts_with("RUNNING") || l.starts_with("NO MORE") {
            group.sort();
            sorted.append(&mut group);
            sorted.push(l);
        } else {
            group.push(l);
        }
    }
    group.sort();
    sorted.append(&mut group);
    sorted
}

/// Every file of a fixture directory: (path relative to it, text).
fn fixture(name: &str) -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run").join(name);
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("fixture dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&root).expect("under the fixture").display().to_string();
                out.push((rel, std::fs::read_to_string(&p).expect("fixture text")));
            }
        }
    }
    out
}

/// Runs the fixture `name` (its `site.yml`) with both tools and compares them.
fn compare(name: &str) {
    let bin = venv().join("bin/ansible-playbook");
    assert!(
        bin.is_file(),
        "{} is missing: install ansible-core into the project venv with `mangrove testbed deps --install`",
        bin.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let files_list = fixture(name);
    for (rel, text) in &files_list {
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::write(&to, text).expect("write fixture");
    }
    let pb_path = dir.path().join("site.yml");
    let python = venv().join("bin/python");
    let inv_text = INVENTORY.replace('\n', &format!(" ansible_python_interpreter={}\n", python.display()));
    std::fs::write(dir.path().join("inv.ini"), &inv_text).expect("write inventory");
    let real = Command::new(&bin)
        .arg("-i")
        .arg(dir.path().join("inv.ini"))
        .arg(&pb_path)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("ANSIBLE_LOCAL_TEMP", dir.path().join("tmp"))
        .env("ANSIBLE_HOME", dir.path().join("home"))
        .output()
        .expect("run ansible-playbook");
    let real_text = String::from_utf8_lossy(&real.stdout).into_owned();

    let files: BTreeMap<String, String> = files_list.into_iter().map(|(rel, t)| (format!("pb/{rel}"), t)).collect();
    let pb = playbook::load("pb/site.yml", &files).expect("the playbook loads");
    let mut inv = AnsibleInventory::default();
    ini::parse_into(INVENTORY, "inv.ini", &mut inv).expect("inventory");
    let facts = BTreeMap::new();
    let input =
        run::Input { playbook: &pb, inventory: &inv, facts: &facts, files: &files, options: Options::default() };
    let mut ours_text = String::new();
    let started = std::time::Instant::now();
    let report = run::run(&input, &Fake, &mut |l| {
        ours_text.push_str(l);
        ours_text.push('\n');
    });
    eprintln!("{name}: engine run took {:?}", started.elapsed());
    // Paths in `included:` lines differ (the temp dir and the engine's own root).
    let ours_cmp = ours_text.replace("pb/", &format!("{}/", dir.path().display()));
    assert_eq!(
        comparable(&ours_cmp),
        comparable(&real_text),
        "\n--- ours:\n{ours_text}\n--- ansible-playbook:\n{real_text}"
    );
    let recap = |t: &str| {
        t.lines().filter(|l| l.starts_with("h1 ") || l.starts_with("h2 ")).map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(recap(&ours_text), recap(&real_text), "recap lines differ");
    assert_eq!(Some(report.exit_code), real.status.code(), "exit codes differ");
}

#[test]
fn engine_matches_ansible_playbook_banners_results_and_recap() {
    compare("engine");
}

#[test]
fn roles_includes_listen_and_nested_blocks_match_ansible_playbook() {
    compare("roles_includes");
}
