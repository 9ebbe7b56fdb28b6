//! `mangrove ansible run` on container hosts: a playbook of twenty tasks (file, copy from
//! content and from the controller, template with a handler, lineinfile, blockinfile,
//! replace, link, a loop, command and shell with `creates`, stat, assert, set_fact, debug)
//! runs on every container host through the agents in under a minute; a second run changes
//! nothing and runs no handler; without `--json` the output is ansible-playbook's. Prints the
//! time each run took.
//!
//! Needs Docker and the host image (`mangrove testbed image build`, made on first use).

mod common;

use std::time::Instant;

use common::ContainerTestbed;
use serde_json::Value;

const HOSTS: [&str; 2] = ["dr-compute-01", "web-app-01"];

fn run(tb: &ContainerTestbed, playbook: &str) -> (Value, std::time::Duration) {
    let started = Instant::now();
    let out = tb.mg(&["--json", "ansible", "run", playbook]);
    let took = started.elapsed();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    assert!(out.status.success(), "exit {:?}: {v}\n{}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    (v, took)
}

#[test]
fn a_twenty_task_playbook_runs_on_every_container_host_and_a_second_run_changes_nothing() {
    let tb = ContainerTestbed::up(Some(common::SMALL_INVENTORY), 3);
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ansible_run");
    let dir = tb.dir.path().join("playbook");
    for rel in ["site.yml", "templates/app.conf.j2", "files/banner.txt"] {
        let to = dir.join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(src.join(rel), &to).expect("copy the playbook");
    }
    let playbook = dir.join("site.yml").display().to_string();

    let (first, took) = run(&tb, &playbook);
    eprintln!("first run: {took:?}");
    assert!(took.as_secs() < 60, "the first run took {took:?}");
    for h in HOSTS {
        let s = &first["stats"][h];
        assert_eq!((s["failed"].as_u64(), s["unreachable"].as_u64()), (Some(0), Some(0)), "{h}: {first}");
        // Gathering Facts, 20 tasks and the handler: all ok (the loop is one task).
        assert_eq!(s["ok"], 22, "{h}: {s}");
        assert!(s["changed"].as_u64().unwrap_or(0) >= 14, "{h}: {s}");
    }
    let tasks = first["plays"][0]["tasks"].as_array().expect("tasks");
    let conf = tasks.iter().find(|t| t["task"] == "read the config").expect("read the config ran");
    let stdout = conf["hosts"]["web-app-01"]["result"]["stdout"].as_str().unwrap_or("");
    assert_eq!(
        stdout, "# web-app-01\nport=8080\ninclude=/srv/ansrun/conf.d/one.conf\ninclude=/srv/ansrun/conf.d/two.conf",
        "{conf}"
    );
    assert!(tasks.iter().any(|t| t["task"] == "restart app" && t["handler"] == true), "the handler ran");

    let (second, took) = run(&tb, &playbook);
    eprintln!("second run: {took:?}");
    assert!(took.as_secs() < 60, "the second run took {took:?}");
    for h in HOSTS {
        let s = &second["stats"][h];
        assert_eq!(s["changed"], 0, "{h} changed on the second run: {second}");
        assert_eq!(s["ok"], 21, "{h}: {s}");
    }
    let tasks = second["plays"][0]["tasks"].as_array().expect("tasks");
    assert!(!tasks.iter().any(|t| t["handler"] == true), "no handler on the second run");

    // Without --json the output streams in ansible-playbook's format.
    let out = tb.mg(&["ansible", "run", &playbook]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("TASK [application config] ****") && text.contains("ok: [web-app-01]"), "{text}");
    for h in HOSTS {
        let recap = format!("{h:<26} : ok=21   changed=0    unreachable=0    failed=0");
        assert!(text.lines().any(|l| l.starts_with(&recap)), "{recap}\n{text}");
    }
}
