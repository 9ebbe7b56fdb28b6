//! `mangrove ansible run` against real Ansible. One playbook using every module Mangrove's
//! runner supports runs with `ansible-playbook -c local` inside one container host and with
//! `mangrove ansible run` (through the agent) on another container host of the same image,
//! both seeded the same. Four rounds each: `--check` on the fresh host, a real run, a second
//! real run, `--check` again. After every round the two hosts must agree on each task's result
//! (ok, changed, skipped, failed), on the recap counts, and on the files, modes, owners and
//! accounts the playbook touches; the second real run and the last check change nothing in
//! either tool.
//!
//! The Ansible side is ansible-core from the project venv (`mangrove testbed deps --install`;
//! `MANGROVE_VENV` names another), mounted read-only into its container and run by the host
//! image's own python3 (the venv's Python must be the image's minor version, 3.11 on
//! bookworm; a mismatch fails loudly); `sysctl` is ansible.posix's, from the venv's `ansible`
//! package, and edits a file of its own without `reload` (a container cannot write
//! `/proc/sys`). The hosts run runit, not systemd: there `service` and `systemd` must fail in
//! both tools.
//!
//! Needs Docker and the host image (`mangrove testbed image build`, made on first use).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::ContainerTestbed;
use serde_json::Value;

/// The machine both tools act on: the testbed's container, and the oracle's container
/// (whose Ansible inventory names it the same, so `inventory_hostname` agrees).
const HOST: &str = "dr-compute-01";
/// Where the playbook is mounted in the oracle's container.
const PB_MOUNT: &str = "/mnt/playbook";

/// The state both hosts start from: config files to edit, a tree to remove, a group to
/// delete.
const SEED: &str = "set -e
mkdir -p /srv/diff/old
printf '#Port 22\\n#PermitRootLogin prohibit-password\\nX11Forwarding yes\\nUsePAM yes\\n' > /srv/diff/sshd_config
chmod 600 /srv/diff/sshd_config
printf 'a=1\\nb=2\\n# BEGIN OLD\\nold=1\\n# END OLD\\n' > /srv/diff/settings.ini
chmod 644 /srv/diff/settings.ini
echo stale > /srv/diff/old/stale
echo bye > /srv/diff/remove-me
printf '# seeded\\n vm.swappiness = 60\\nnet.ipv4.ip_forward = 0\\n' > /srv/diff/sysctl.conf
groupadd stalegroup
useradd -m staleuser";

/// What the playbook touched, as text to compare: every path under /srv/diff (type, mode,
/// owner, group, size, link target, content hash), the accounts it manages, the home dir.
const SNAPSHOT: &str = "cd /srv/diff && find . -printf '%p %y %m %u %g %s %l\\n' | sort
find . -type f | sort | xargs sha256sum
getent passwd diffuser staleuser; getent group diffgroup stalegroup diffsys; id diffuser
stat -c '%n %F %a %U %G' /home/diffuser /home/staleuser 2>&1 || true
true";

fn venv() -> PathBuf {
    PathBuf::from(std::env::var("MANGROVE_VENV").unwrap_or_else(|_| "/var/tmp/mangrove-venv".into()))
}

fn docker(args: &[&str]) -> std::process::Output {
    common::run(Command::new("docker").args(args))
}

fn sh(container: &str, script: &str) -> String {
    let out = docker(&["exec", container, "sh", "-c", script]);
    assert!(
        out.status.success(),
        "{container}: {script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A container of the testbed's host image, without network, holding ansible-core (read-only)
/// and the playbook; removed however the test ends.
struct Oracle {
    name: String,
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

impl Oracle {
    fn start(image: &str, playbook_dir: &Path) -> Oracle {
        let venv = venv();
        let site = venv.join("lib/python3.11/site-packages");
        assert!(
            site.join("ansible").is_dir(),
            "{} has no ansible-core for Python 3.11 (the host image's Python): install it with \
             `mangrove testbed deps --install`",
            venv.display()
        );
        let name = format!("mgdiff-{}", std::process::id());
        let _ = docker(&["rm", "-f", &name]);
        let venv_mount = format!("{}:{}:ro", venv.display(), venv.display());
        let pb_mount = format!("{}:{PB_MOUNT}:ro", playbook_dir.display());
        let out = docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--hostname",
            HOST,
            "--network",
            "none",
            "-v",
            &venv_mount,
            "-v",
            &pb_mount,
            image,
        ]);
        assert!(out.status.success(), "docker run {image}: {}", String::from_utf8_lossy(&out.stderr));
        Oracle { name }
    }

    /// `ansible-playbook -c local` in the container, with the JSON callback.
    fn run(&self, check: bool) -> Value {
        let venv = venv();
        let site = venv.join("lib/python3.11/site-packages").display().to_string();
        let script = venv.join("bin/ansible-playbook").display().to_string();
        let inventory = format!("{PB_MOUNT}/inventory.ini");
        let playbook = format!("{PB_MOUNT}/site.yml");
        let pythonpath = format!("PYTHONPATH={site}");
        let callbacks = format!("ANSIBLE_CALLBACK_PLUGINS={PB_MOUNT}/callback_plugins");
        let mut args = vec![
            "exec",
            "-e",
            &pythonpath,
            "-e",
            "ANSIBLE_STDOUT_CALLBACK=result_json",
            "-e",
            &callbacks,
            "-e",
            "ANSIBLE_NOCOLOR=1",
            "-e",
            "ANSIBLE_HOST_KEY_CHECKING=0",
            "-e",
            "ANSIBLE_RETRY_FILES_ENABLED=0",
            &self.name,
            "python3",
            &script,
            "-i",
            &inventory,
            &playbook,
        ];
        if check {
            args.push("--check");
        }
        let out = docker(&args);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "ansible-playbook's JSON: {e}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        // 0, or 2 when a host failed: a failure shows in the comparison, not here.
        assert!(
            matches!(out.status.code(), Some(0 | 2)),
            "ansible-playbook: {v}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        v
    }
}

/// (play, task, result word) for each task the host ran. Both tools give the same shape:
/// `mangrove ansible run --json`, and the fixture's `result_json` callback in
/// ansible-playbook (ansible-core 2.19 moved its `json` callback out to ansible.posix).
fn results(v: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for play in v["plays"].as_array().into_iter().flatten() {
        let pname = play["name"].as_str().unwrap_or("").to_owned();
        for t in play["tasks"].as_array().into_iter().flatten() {
            // Neither play gathers facts; mangrove lists the step all the same.
            if t["task"] == "Gathering Facts" {
                continue;
            }
            let Some(h) = t["hosts"].get(HOST) else { continue };
            let word = h["status"].as_str().unwrap_or("").to_owned();
            out.push((pname.clone(), t["task"].as_str().unwrap_or("").to_owned(), word));
        }
    }
    out
}

/// The recap counts of the host, under the names `ansible-playbook` prints.
fn recap(stats: &Value, failed_key: &str) -> Vec<(String, u64)> {
    let s = &stats[HOST];
    [("ok", "ok"), ("changed", "changed"), ("unreachable", "unreachable"), ("failed", failed_key)]
        .into_iter()
        .chain([("skipped", "skipped"), ("rescued", "rescued"), ("ignored", "ignored")])
        .map(|(name, key)| (name.to_owned(), s[key].as_u64().unwrap_or_else(|| panic!("no {key} in {s}"))))
        .collect()
}

fn run_mangrove(tb: &ContainerTestbed, playbook: &str, check: bool) -> Value {
    let mut args = vec!["--json", "ansible", "run", playbook, "--limit", HOST];
    if check {
        args.push("--check");
    }
    let out = tb.mg(&args);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    assert_eq!(v["ran"], true, "mangrove ansible run refused the playbook: {v}");
    v
}

#[test]
fn every_supported_module_matches_ansible_playbook_in_check_mode_and_for_real_twice() {
    let started = Instant::now();
    let tb = ContainerTestbed::up(Some(common::SMALL_INVENTORY), 3);
    let ours = testbed::containers::container_name(tb.dir.path(), HOST);
    let image = docker(&["inspect", "--format", "{{.Config.Image}}", &ours]);
    assert!(image.status.success(), "docker inspect {ours}: {}", String::from_utf8_lossy(&image.stderr));
    let image = String::from_utf8_lossy(&image.stdout).trim().to_owned();

    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ansible-diff");
    let dir = tb.dir.path().join("playbook");
    for rel in ["site.yml", "templates/app.conf.j2", "files/banner.txt", "callback_plugins/result_json.py"] {
        let to = dir.join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(src.join(rel), &to).expect("copy the playbook");
    }
    std::fs::write(
        dir.join("inventory.ini"),
        format!("{HOST} ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n"),
    )
    .expect("inventory");
    let playbook = dir.join("site.yml").display().to_string();

    let oracle = Oracle::start(&image, &dir);
    for c in [&ours, &oracle.name] {
        sh(c, SEED);
    }
    let mut before = sh(&ours, SNAPSHOT);
    assert_eq!(before, sh(&oracle.name, SNAPSHOT), "the two hosts start the same");
    eprintln!("hosts ready in {:?}", started.elapsed());

    for (round, check) in
        [("check on a fresh host", true), ("first run", false), ("second run", false), ("check again", true)]
    {
        let t = Instant::now();
        let real = oracle.run(check);
        let real_took = t.elapsed();
        let t = Instant::now();
        let mine = run_mangrove(&tb, &playbook, check);
        eprintln!("{round}: ansible-playbook {real_took:?}, mangrove ansible run {:?}", t.elapsed());

        let (a, m) = (results(&real), results(&mine));
        if a != m {
            let table: Vec<String> = (0..a.len().max(m.len()))
                .map(|i| {
                    let (x, y) = (a.get(i), m.get(i));
                    let mark = if x == y { " " } else { "*" };
                    let name = x.or(y).map(|t| format!("{} / {}", t.0, t.1)).unwrap_or_default();
                    let word = |t: Option<&(String, String, String)>| t.map(|t| t.2.clone()).unwrap_or("-".into());
                    format!("{mark} {name}: ansible {} mangrove {}", word(x), word(y))
                })
                .collect();
            panic!(
                "{round}: task results differ:\n{}\n--- ansible:\n{real:#}\n--- mangrove:\n{mine:#}",
                table.join("\n")
            );
        }
        assert_eq!(recap(&mine["stats"], "failed"), recap(&real["stats"], "failures"), "{round}: recap counts");

        let (snap_real, snap_mine) = (sh(&oracle.name, SNAPSHOT), sh(&ours, SNAPSHOT));
        assert_eq!(snap_mine, snap_real, "{round}: the hosts differ (left mangrove, right ansible-playbook)");
        if check {
            assert_eq!(snap_real, before, "{round}: check mode changed the host");
        }
        if round == "first run" {
            // The run did its work (a comparison of two hosts that did nothing would pass).
            assert_ne!(snap_real, before, "{round}: nothing changed");
            assert!(snap_real.contains("diffuser:x:4242:4242:differential test"), "{snap_real}");
        }
        before = snap_real;
        if matches!(round, "second run" | "check again") {
            let changed: Vec<&(String, String, String)> = a.iter().chain(&m).filter(|t| t.2 == "changed").collect();
            assert_eq!(real["stats"][HOST]["changed"], 0, "{round}: ansible-playbook changed {changed:?}");
            assert_eq!(mine["stats"][HOST]["changed"], 0, "{round}: mangrove changed {changed:?}");
        }
    }
    eprintln!("differential suite: {:?}", started.elapsed());
}
