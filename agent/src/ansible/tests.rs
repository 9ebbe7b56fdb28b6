//! Differential tests: each module against real Ansible (`ansible-core` in the project venv,
//! installed by `mangrove testbed deps --install`).
//!
//! A table of cases per module. Each case gets two identical directories; one
//! `ansible-playbook -c local` run per table plays every case twice in the first (check and
//! diff mode as the case says) and registers the results; `run_module` plays the same cases
//! twice in the second. Then, per case: `changed`/`failed`/`skipped` of both runs agree, the
//! directories hold the same files with the same contents and modes, and content diffs agree.
//! Without ansible the tests fail, saying what to install.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::{RunOptions, run_module};

fn venv() -> PathBuf {
    std::env::var_os("MANGROVE_VENV").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/tmp/mangrove-venv"))
}

fn ansible_playbook() -> PathBuf {
    let bin = venv().join("bin/ansible-playbook");
    assert!(
        bin.exists(),
        "ansible-playbook not found at {}: these tests compare the agent's modules with real Ansible; \
         install it with `mangrove testbed deps --install` (ansible-core in the project venv) \
         or `{}/bin/pip install ansible-core`",
        bin.display(),
        venv().display()
    );
    bin
}

/// One case: files to create first, the module call, and how it runs.
struct Case {
    module: &'static str,
    args: Value,
    files: Vec<(&'static str, &'static str, u32)>,
    dirs: Vec<&'static str>,
    check: bool,
    diff: bool,
}

fn case(module: &'static str, args: Value) -> Case {
    Case { module, args, files: Vec::new(), dirs: Vec::new(), check: false, diff: true }
}

impl Case {
    fn file(mut self, name: &'static str, content: &'static str, mode: u32) -> Case {
        self.files.push((name, content, mode));
        self
    }
    fn dir(mut self, name: &'static str) -> Case {
        self.dirs.push(name);
        self
    }
    fn check(mut self) -> Case {
        self.check = true;
        self
    }
    fn nodiff(mut self) -> Case {
        self.diff = false;
        self
    }
}

/// `{D}` in any string of the arguments becomes the case's directory.
fn substitute(v: &Value, dir: &Path) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("{D}", &dir.display().to_string())),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, dir)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), substitute(x, dir))).collect()),
        other => other.clone(),
    }
}

fn prepare(dir: &Path, c: &Case) {
    std::fs::create_dir_all(dir).expect("test fixture");
    for d in &c.dirs {
        std::fs::create_dir_all(dir.join(d)).expect("test fixture");
    }
    for (name, content, mode) in &c.files {
        let p = dir.join(name);
        std::fs::write(&p, content).expect("test fixture");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).expect("test fixture");
    }
}

/// Every entry under `dir`: relative path, kind, mode, content (backups left out: their
/// names carry a pid and a time).
fn tree(dir: &Path) -> Vec<(String, String, String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String, String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).expect("test fixture").flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).expect("test fixture").display().to_string();
            if rel.ends_with('~') {
                continue;
            }
            let meta = std::fs::symlink_metadata(&p).expect("test fixture");
            let mode = format!("{:o} {}:{}", meta.permissions().mode() & 0o7777, meta.uid(), meta.gid());
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&p).expect("test fixture").display().to_string();
                out.push((rel, "link".into(), String::new(), target));
            } else if meta.is_dir() {
                out.push((rel.clone(), "dir".into(), mode, String::new()));
                walk(root, &p, out);
            } else {
                let content = String::from_utf8_lossy(&std::fs::read(&p).expect("test fixture")).into_owned();
                out.push((rel, "file".into(), mode, content));
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// The first content diff's before/after, when both are text.
fn content_diff(r: &Value) -> Option<(String, String)> {
    let d = match &r["diff"] {
        Value::Array(a) => a.first()?.clone(),
        other => other.clone(),
    };
    Some((d["before"].as_str()?.to_string(), d["after"].as_str()?.to_string()))
}

fn truthy(v: &Value) -> bool {
    v.as_bool().unwrap_or(false)
}

/// Runs every case of a table through Ansible (one playbook) and through `run_module`, and
/// asserts they agree. `extra` compares module-specific return values.
fn differential(table: &str, cases: &[Case], extra: impl Fn(&Case, &Value, &Value) -> Result<(), String>) {
    let bin = ansible_playbook();
    let root = tempfile::tempdir().expect("test fixture");
    let (ans, ours) = (root.path().join("ansible"), root.path().join("ours"));
    let mut tasks = Vec::new();
    let mut names = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let dir = ans.join(format!("c{i}"));
        prepare(&dir, c);
        prepare(&ours.join(format!("c{i}")), c);
        for run in ["a", "b"] {
            let name = format!("c{i}{run}");
            tasks.push(json!({
                "name": name,
                c.module: substitute(&c.args, &dir),
                "check_mode": c.check,
                "diff": c.diff,
                "register": name,
                "ignore_errors": true,
            }));
            names.push(name);
        }
    }
    let out = root.path().join("results.json");
    let all = names.iter().map(|n| format!("'{n}': {n}")).collect::<Vec<_>>().join(", ");
    tasks.push(json!({
        "name": "results",
        "ansible.builtin.copy": {"content": format!("{{{{ {{{all}}} | to_json }}}}"), "dest": out},
        "check_mode": false,
        "diff": false,
    }));
    let playbook = json!([{"hosts": "localhost", "gather_facts": false, "tasks": tasks}]);
    let pb = root.path().join("playbook.yml");
    std::fs::write(&pb, serde_json::to_string_pretty(&playbook).expect("test fixture")).expect("test fixture");
    let run = Command::new(&bin)
        .args(["-i", "localhost,", "-c", "local"])
        .arg("-e")
        .arg(format!("ansible_python_interpreter={}", venv().join("bin/python").display()))
        .arg(&pb)
        .env("ANSIBLE_LOCALHOST_WARNING", "False")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOME", root.path().join("ansible-home"))
        .output()
        .expect("test fixture");
    let results: Value = match std::fs::read(&out) {
        Ok(b) => serde_json::from_slice(&b).expect("test fixture"),
        Err(e) => panic!(
            "{table}: ansible-playbook produced no results ({e}):\n{}\n{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ),
    };
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let dir = ours.join(format!("c{i}"));
        let opts = RunOptions { check: c.check, diff: c.diff, become_user: None };
        let args = substitute(&c.args, &dir);
        // Paths in results name each side's own directory: both become `{D}`.
        let norm = |v: &Value, d: &Path| -> Value {
            serde_json::from_str(&v.to_string().replace(&d.display().to_string(), "{D}")).expect("test fixture")
        };
        let adir = ans.join(format!("c{i}"));
        let mine = [
            norm(&run_module(c.module, &args, &opts).to_json(), &dir),
            norm(&run_module(c.module, &args, &opts).to_json(), &dir),
        ];
        let theirs = [&norm(&results[format!("c{i}a")], &adir), &norm(&results[format!("c{i}b")], &adir)];
        let label = format!("{table} case {i} ({} {}{})", c.module, c.args, if c.check { " --check" } else { "" });
        for (run, (m, t)) in mine.iter().zip(theirs).enumerate() {
            for key in ["changed", "failed", "skipped"] {
                if truthy(&m[key]) != truthy(&t[key]) {
                    failures.push(format!(
                        "{label} run {}: {key} ours={} ansible={}\n  ours: {m}\n  ansible: {t}",
                        run + 1,
                        m[key],
                        t[key]
                    ));
                }
            }
            if c.diff
                && truthy(&t["changed"])
                && let Some(theirs) = content_diff(t)
                && content_diff(m).as_ref() != Some(&theirs)
            {
                failures.push(format!("{label} run {}: diff ours={:?} ansible={theirs:?}", run + 1, content_diff(m)));
            }
            if let Err(e) = extra(c, m, t) {
                failures.push(format!("{label} run {}: {e}", run + 1));
            }
        }
        let (tm, ta) = (tree(&dir), tree(&ans.join(format!("c{i}"))));
        if tm != ta {
            failures.push(format!("{label}: files differ\n  ours:    {tm:?}\n  ansible: {ta:?}"));
        }
    }
    assert!(failures.is_empty(), "{} disagreement(s) with Ansible:\n{}", failures.len(), failures.join("\n"));
}

fn no_extra(_: &Case, _: &Value, _: &Value) -> Result<(), String> {
    Ok(())
}

#[test]
fn file_module_agrees_with_ansible() {
    let cases = vec![
        case("file", json!({"path": "{D}/d", "state": "directory"})),
        case("file", json!({"path": "{D}/a/b/c", "state": "directory", "mode": "0750"})),
        case("file", json!({"path": "{D}/d", "state": "directory", "mode": "0700"})).dir("d"),
        case("file", json!({"path": "{D}/d", "state": "directory", "mode": "0700"})).check(),
        case("file", json!({"path": "{D}/f", "mode": "0600"})).file("f", "x\n", 0o644),
        case("file", json!({"path": "{D}/f", "mode": 384})).file("f", "x\n", 0o644),
        case("file", json!({"path": "{D}/f", "mode": "u=rw,g=r,o="})).file("f", "x\n", 0o644),
        case("file", json!({"path": "{D}/f", "mode": "a+x"})).file("f", "x\n", 0o644),
        case("file", json!({"path": "{D}/f", "mode": "0600"})).file("f", "x\n", 0o644).check(),
        case("file", json!({"path": "{D}/f", "state": "file"})),
        case("file", json!({"path": "{D}/f", "state": "absent"})).file("f", "x\n", 0o644),
        case("file", json!({"path": "{D}/d", "state": "absent"})).dir("d/e").file("d/e/f", "x", 0o644),
        case("file", json!({"path": "{D}/none", "state": "absent"})),
        case("file", json!({"path": "{D}/t", "state": "touch"})),
        case("file", json!({"path": "{D}/t", "state": "touch", "mode": "0640"})).check(),
        case("file", json!({"path": "{D}/l", "state": "link", "src": "target"})),
        case("file", json!({"path": "{D}/l", "state": "link", "src": "f"})).file("f", "x", 0o644),
        case("file", json!({"path": "{D}/f", "state": "link", "src": "g"})).file("f", "x", 0o644),
        case("file", json!({"path": "{D}/d", "state": "directory", "recurse": true, "mode": "u=rwX,g=rX,o="}))
            .dir("d/e")
            .file("d/e/f", "x", 0o666)
            .file("d/g", "y", 0o755),
        case("file", json!({"path": "{D}/f", "colour": "blue"})),
        case("file", json!({"path": "{D}/f", "state": "sideways"})),
        case("file", json!({"path": "{D}/f", "state": "directory"})).file("f", "x", 0o644),
        case("file", json!({"path": "{D}/f", "mode": "644"})).file("f", "x", 0o600),
        case("file", json!({"path": "{D}/f", "mode": "go-rwx"})).file("f", "x", 0o666),
        case("file", json!({"path": "{D}/d", "state": "directory", "mode": "g+s"})).dir("d"),
        case("file", json!({"path": "{D}/d", "state": "absent"})).dir("d").check(),
        case("file", json!({"path": "{D}/f", "state": "touch"})).file("f", "x", 0o600),
        // Found by the testbed's differential test: touch keeping both times is no change,
        // and hard links.
        case(
            "file",
            json!({"path": "{D}/f", "state": "touch", "modification_time": "preserve", "access_time": "preserve"}),
        )
        .file("f", "x", 0o600),
        case(
            "file",
            json!({"path": "{D}/t", "state": "touch", "modification_time": "preserve", "access_time": "preserve", "mode": "0640"}),
        ),
        case("file", json!({"path": "{D}/h", "state": "hard", "src": "{D}/f"})).file("f", "x", 0o644),
        case("file", json!({"path": "{D}/h", "state": "hard", "src": "{D}/f", "mode": "0600"}))
            .file("f", "x", 0o644)
            .check(),
        case("file", json!({"path": "{D}/h", "state": "hard", "src": "{D}/none"})),
        case("file", json!({"path": "{D}/h", "state": "hard", "src": "{D}/f"}))
            .file("f", "x", 0o644)
            .file("h", "y", 0o644),
        case("file", json!({"path": "{D}/h", "state": "hard", "src": "{D}/f", "force": true}))
            .file("f", "x", 0o644)
            .file("h", "y", 0o644),
        case("file", json!({"path": "{D}/l", "state": "link", "src": "/nonexistent", "force": true})),
        case("file", json!({"path": "{D}/l", "state": "link", "src": "f"})).file("f", "x", 0o644).check(),
        case("file", json!({"path": "{D}/f", "mode": "0999"})).file("f", "x", 0o644),
        case("file", json!({"path": "{D}/f", "owner": "nobody", "group": "nogroup"})).file("f", "x", 0o644),
        case("file", json!({"path": "{D}/f", "owner": "65534", "mode": "0600"})).file("f", "x", 0o644).check(),
        case("file", json!({"path": "{D}/f", "owner": "mgtest-nosuchuser"})).file("f", "x", 0o644),
        case("file", json!({"path": "{D}/d", "state": "directory", "recurse": true, "owner": "nobody"}))
            .dir("d/e")
            .file("d/e/f", "x", 0o644),
    ];
    differential("file", &cases, |_, m, t| {
        if truthy(&t["failed"]) {
            return Ok(());
        }
        for key in ["state", "mode"] {
            if !t[key].is_null() && m[key] != t[key] {
                return Err(format!("{key} ours={} ansible={}", m[key], t[key]));
            }
        }
        Ok(())
    });
}

#[test]
fn copy_module_agrees_with_ansible() {
    let cases = vec![
        case("copy", json!({"dest": "{D}/f", "content": "hello\nxin chào\n"})),
        case("copy", json!({"dest": "{D}/f", "content": "hello\n"})).file("f", "hello\n", 0o640),
        case("copy", json!({"dest": "{D}/f", "content": "new\n"})).file("f", "old\n", 0o640),
        case("copy", json!({"dest": "{D}/f", "content": "new\n"})).file("f", "old\n", 0o640).check(),
        case("copy", json!({"dest": "{D}/f", "content": "new\n", "mode": "0600"})).file("f", "new\n", 0o644),
        case("copy", json!({"dest": "{D}/f", "content": "new\n", "mode": "0600"})),
        case("copy", json!({"dest": "{D}/f", "content": "new\n", "force": false})).file("f", "old\n", 0o644),
        case("copy", json!({"dest": "{D}/f", "content": "new\n", "backup": true})).file("f", "old\n", 0o644),
        case("copy", json!({"dest": "{D}/missing/f", "content": "new\n"})),
        case("copy", json!({"dest": "{D}/f", "content": "x", "bogus": 1})),
        case("copy", json!({"dest": "{D}/f", "content": ""})),
        case("copy", json!({"dest": "{D}/f", "content": "no newline"})).file("f", "no newline\n", 0o644),
        case("copy", json!({"dest": "{D}/f", "content": "x\n", "mode": "u=rw,g=r"})),
        case("copy", json!({"dest": "{D}/d", "content": "x\n"})).dir("d"),
        case("copy", json!({"dest": "{D}/f", "content": "new\n", "mode": "0600"})).file("f", "old\n", 0o644).check(),
        case("copy", json!({"dest": "{D}/f", "content": "new\n", "owner": "nobody", "group": "nogroup"})),
        case("copy", json!({"dest": "{D}/f", "content": "old\n", "owner": "nobody"})).file("f", "old\n", 0o600),
        case("copy", json!({"dest": "{D}/f", "content": "ok\n", "validate": "grep -q ok %s"}))
            .file("f", "old\n", 0o600),
        case("copy", json!({"dest": "{D}/f", "content": "bad\n", "validate": "grep -q ok %s"}))
            .file("f", "old\n", 0o600),
        case("copy", json!({"dest": "{D}/f", "content": "bad\n", "validate": "true"})),
    ];
    differential("copy", &cases, |_, m, t| {
        if truthy(&t["failed"]) {
            return Ok(());
        }
        for key in ["checksum", "dest", "mode", "owner", "group", "uid", "gid", "state", "size"] {
            if !t[key].is_null() && m[key] != t[key] {
                return Err(format!("{key} ours={} ansible={}", m[key], t[key]));
            }
        }
        Ok(())
    });
}

const CONF: &str = "# sshd\nPort 22\nPermitRootLogin yes\n#ListenAddress 0.0.0.0\nUsePAM yes\n";

#[test]
fn lineinfile_module_agrees_with_ansible() {
    let f = |args: Value| case("lineinfile", args).file("c", CONF, 0o644);
    let cases = vec![
        f(json!({"path": "{D}/c", "regexp": "^PermitRootLogin", "line": "PermitRootLogin no"})),
        f(json!({"path": "{D}/c", "regexp": "^PermitRootLogin", "line": "PermitRootLogin no"})).check(),
        f(json!({"path": "{D}/c", "line": "Port 22"})),
        f(json!({"path": "{D}/c", "line": "MaxAuthTries 3"})),
        f(json!({"path": "{D}/c", "line": "MaxAuthTries 3", "insertbefore": "BOF"})),
        f(json!({"path": "{D}/c", "line": "MaxAuthTries 3", "insertafter": "^Port"})),
        f(json!({"path": "{D}/c", "line": "MaxAuthTries 3", "insertbefore": "^UsePAM"})),
        f(json!({"path": "{D}/c", "line": "MaxAuthTries 3", "insertafter": "^Nothing"})),
        f(json!({"path": "{D}/c", "regexp": "^#?ListenAddress", "line": "ListenAddress 10.0.0.1"})),
        f(json!({"path": "{D}/c", "regexp": "^Port (\\d+)", "line": "Port \\1\\1", "backrefs": true})),
        f(json!({"path": "{D}/c", "regexp": "^Nope (\\d+)", "line": "x \\1", "backrefs": true})),
        f(json!({"path": "{D}/c", "regexp": "^#", "state": "absent"})),
        f(json!({"path": "{D}/c", "line": "UsePAM yes", "state": "absent"})),
        f(json!({"path": "{D}/c", "line": "UsePAM yes", "state": "absent"})).check(),
        f(json!({"path": "{D}/c", "line": "x", "mode": "0600"})),
        case("lineinfile", json!({"path": "{D}/new", "line": "a=1", "create": true})),
        case("lineinfile", json!({"path": "{D}/new", "line": "a=1", "create": true})).check(),
        case("lineinfile", json!({"path": "{D}/new", "line": "a=1"})),
        case("lineinfile", json!({"path": "{D}/n", "line": "last"})).file("n", "no newline", 0o644),
        f(json!({"path": "{D}/c", "line": "x", "wat": true})),
        f(json!({"path": "{D}/c", "line": "Port 2222", "regexp": "^Port", "validate": "grep -q '^Port 22$' %s"})),
        f(json!({"path": "{D}/c", "line": "Port 22", "regexp": "^Port", "validate": "grep -q '^Port 22$' %s"})),
        f(json!({"path": "{D}/c", "line": "MaxAuthTries 3", "insertafter": "yes$", "firstmatch": true})),
        f(json!({"path": "{D}/c", "line": "MaxAuthTries 3", "insertafter": "yes$"})),
        f(json!({"path": "{D}/c", "line": "MaxAuthTries 3", "insertbefore": "^# sshd"})),
        f(json!({"path": "{D}/c", "line": "UsePAM yes", "insertafter": "^Port"})),
        f(json!({"path": "{D}/c", "line": "PermitRootLogin yes", "insertbefore": "^Port"})),
        f(json!({"path": "{D}/c", "regexp": "^Nope", "line": "Nope 1", "insertafter": "^Port"})),
        f(json!({"path": "{D}/c", "regexp": "yes$", "line": "Both no"})),
        f(json!({"path": "{D}/c", "regexp": "yes$", "line": "Both no", "firstmatch": true})),
        f(json!({"path": "{D}/c", "search_string": "RootLogin", "line": "PermitRootLogin prohibit-password"})),
        f(json!({"path": "{D}/c", "search_string": "#List", "state": "absent"})),
        case("lineinfile", json!({"path": "{D}/w", "line": "b=2"})).file("w", "a=1\r\nc=3\r\n", 0o644),
        case("lineinfile", json!({"path": "{D}/w", "line": "a=1"})).file("w", "a=1\r\nc=3\r\n", 0o644),
        case("lineinfile", json!({"path": "{D}/e", "line": "first"})).file("e", "", 0o644),
        case("lineinfile", json!({"path": "{D}/sub/new", "line": "a", "create": true})),
    ];
    differential("lineinfile", &cases, |_, m, t| {
        if !truthy(&t["failed"]) && m["msg"] != t["msg"] {
            return Err(format!("msg ours={} ansible={}", m["msg"], t["msg"]));
        }
        Ok(())
    });
}

#[test]
fn blockinfile_module_agrees_with_ansible() {
    let f = |args: Value| case("blockinfile", args).file("c", CONF, 0o644);
    let block = "Match User backup\n  ForceCommand internal-sftp";
    let managed = "# sshd\n# BEGIN ANSIBLE MANAGED BLOCK\nold\n# END ANSIBLE MANAGED BLOCK\nUsePAM yes\n";
    let cases = vec![
        f(json!({"path": "{D}/c", "block": block})),
        f(json!({"path": "{D}/c", "block": block})).check(),
        f(json!({"path": "{D}/c", "block": block, "insertbefore": "BOF"})),
        f(json!({"path": "{D}/c", "block": block, "insertafter": "^Port"})),
        f(json!({"path": "{D}/c", "block": block, "insertbefore": "^UsePAM", "marker": "# {mark} mangrove"})),
        f(
            json!({"path": "{D}/c", "block": block, "prepend_newline": true, "append_newline": true, "insertafter": "^Port"}),
        ),
        case("blockinfile", json!({"path": "{D}/c", "block": "new"})).file("c", managed, 0o644),
        case("blockinfile", json!({"path": "{D}/c", "state": "absent"})).file("c", managed, 0o644),
        case("blockinfile", json!({"path": "{D}/c", "block": ""})).file("c", managed, 0o644),
        case("blockinfile", json!({"path": "{D}/new", "block": "a\nb", "create": true})),
        case("blockinfile", json!({"path": "{D}/new", "block": "a"})),
        case("blockinfile", json!({"path": "{D}/n", "block": "a"})).file("n", "no newline", 0o600),
        case("blockinfile", json!({"path": "{D}/c", "block": "old"})).file("c", managed, 0o644),
        case("blockinfile", json!({"path": "{D}/c", "block": "new"})).file(
            "c",
            "# END ANSIBLE MANAGED BLOCK\nx\n# BEGIN ANSIBLE MANAGED BLOCK\n",
            0o644,
        ),
        f(json!({"path": "{D}/c", "block": block, "insertafter": "yes$"})),
        f(json!({"path": "{D}/c", "block": block, "insertbefore": "yes$"})),
        f(json!({"path": "{D}/c", "block": block, "marker_begin": "START", "marker_end": "STOP"})),
        f(json!({"path": "{D}/c", "state": "absent"})),
        case("blockinfile", json!({"path": "{D}/c", "block": "new", "mode": "0600"})).file("c", managed, 0o644).check(),
    ];
    differential("blockinfile", &cases, |_, m, t| {
        if !truthy(&t["failed"]) && m["msg"] != t["msg"] {
            return Err(format!("msg ours={} ansible={}", m["msg"], t["msg"]));
        }
        Ok(())
    });
}

#[test]
fn replace_module_agrees_with_ansible() {
    let f = |args: Value| case("replace", args).file("c", CONF, 0o644);
    let cases = vec![
        f(json!({"path": "{D}/c", "regexp": "yes$", "replace": "no"})),
        f(json!({"path": "{D}/c", "regexp": "yes$", "replace": "no"})).check(),
        f(json!({"path": "{D}/c", "regexp": "^(\\w+) yes$", "replace": "\\1 no # was \\g<0>"})),
        f(json!({"path": "{D}/c", "regexp": "^(?P<key>Port) (\\d+)", "replace": "\\g<key> 2222"})),
        f(json!({"path": "{D}/c", "regexp": "nothing", "replace": "x"})),
        f(json!({"path": "{D}/c", "regexp": "yes", "replace": "no", "after": "PermitRootLogin"})),
        f(json!({"path": "{D}/c", "regexp": "yes", "replace": "no", "before": "#Listen"})),
        f(json!({"path": "{D}/c", "regexp": "yes", "replace": "$5 cost"})),
        f(json!({"path": "{D}/c", "regexp": "nothing", "mode": "0600"})),
        case("replace", json!({"path": "{D}/missing", "regexp": "a", "replace": "b"})),
        f(json!({"path": "{D}/c", "regexp": "^#.*\n", "replace": ""})),
        f(json!({"path": "{D}/c", "regexp": "^(Port) 22$", "replace": "\\1 22\\nPort 2222"})),
        f(json!({"path": "{D}/c", "regexp": "(?i)permitrootlogin", "replace": "PermitRootLogin"})),
        f(json!({"path": "{D}/c", "regexp": "yes", "replace": "no", "after": "Port", "before": "UsePAM"})),
        f(json!({"path": "{D}/c", "regexp": "yes", "replace": "no", "after": "NOTHERE"})),
        f(json!({"path": "{D}/c", "regexp": "yes", "replace": "no", "validate": "grep -q yes %s"})),
    ];
    differential("replace", &cases, |_, m, t| {
        if !truthy(&t["failed"]) && m["msg"] != t["msg"] {
            return Err(format!("msg ours={} ansible={}", m["msg"], t["msg"]));
        }
        Ok(())
    });
}

#[test]
fn stat_module_agrees_with_ansible() {
    let cases = vec![
        case("stat", json!({"path": "{D}/f"})).file("f", "hello\n", 0o640),
        case("stat", json!({"path": "{D}/d"})).dir("d"),
        case("stat", json!({"path": "{D}/none"})),
        case("stat", json!({"path": "{D}/f", "checksum_algorithm": "sha256"})).file("f", "hello\n", 0o600),
        case("stat", json!({"path": "{D}/f", "get_checksum": false})).file("f", "x", 0o600),
    ];
    differential("stat", &cases, |_, m, t| {
        for key in ["exists", "mode", "isdir", "isreg", "islnk", "checksum", "size", "pw_name", "gr_name"] {
            if m["stat"][key] != t["stat"][key] {
                return Err(format!("stat.{key} ours={} ansible={}", m["stat"][key], t["stat"][key]));
            }
        }
        Ok(())
    });
}

#[test]
fn command_and_shell_agree_with_ansible() {
    let cases = vec![
        case("command", json!({"cmd": "echo 'xin chào' world"})),
        case("command", json!({"argv": ["printf", "%s\\n", "a b", "c"]})),
        case("command", json!({"cmd": "touch made", "chdir": "{D}", "creates": "{D}/made"})),
        case("command", json!({"cmd": "rm gone", "chdir": "{D}", "removes": "{D}/gone"})).file("gone", "", 0o644),
        case("command", json!({"cmd": "false"})),
        case("command", json!({"cmd": "echo hi"})).check(),
        case("command", json!({"cmd": "touch x", "creates": "{D}/x"})).check(),
        case("shell", json!({"cmd": "echo $((1+2)) | tr 3 4; echo err >&2", "chdir": "{D}"})),
        case("shell", json!({"cmd": "cat > out", "chdir": "{D}", "stdin": "from stdin", "creates": "{D}/out"})),
        case("shell", json!({"cmd": "exit 3"})),
        case("command", json!({"cmd": "echo", "nope": 1})),
        case("command", json!({"_raw_params": "printf '%s|' \"a  b\" c\\ d"})),
        case("shell", json!({"cmd": "echo $0 > which", "chdir": "{D}", "executable": "/bin/bash"})),
        case("command", json!({"cmd": "ls", "chdir": "{D}/nope"})),
    ];
    differential("command", &cases, |c, m, t| {
        if c.check {
            return Ok(());
        }
        for key in ["rc", "stdout", "stderr", "cmd"] {
            if m[key] != t[key] {
                return Err(format!("{key} ours={} ansible={}", m[key], t[key]));
            }
        }
        Ok(())
    });
}

#[test]
fn wait_for_and_service_agree_with_ansible() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("test fixture");
    let port = listener.local_addr().expect("test fixture").port();
    let cases = vec![
        case("wait_for", json!({"path": "{D}/f", "timeout": 2})).file("f", "ready\n", 0o644),
        case("wait_for", json!({"path": "{D}/f", "search_regex": "rea.y", "timeout": 2})).file("f", "ready\n", 0o644),
        case("wait_for", json!({"path": "{D}/none", "timeout": 1})),
        case("wait_for", json!({"path": "{D}/none", "state": "absent", "timeout": 1})),
        case("wait_for", json!({"host": "127.0.0.1", "port": port, "timeout": 2})),
        case("wait_for", json!({"port": port, "timeout": 1, "state": "stopped"})),
        case("wait_for", json!({"port": 1, "timeout": 1})).nodiff(),
        // wait_for has no check mode: skipped there, even for a path that never comes.
        case("wait_for", json!({"path": "{D}/none", "timeout": 1})).check(),
    ];
    differential("wait_for", &cases, no_extra);
    drop(listener);
}

/// This host (and CI's) has no systemd as PID 1: both must refuse, and ours must say why.
#[test]
fn systemd_without_systemd_fails_as_ansible_does_and_says_why() {
    let cases = vec![
        case("systemd", json!({"name": "cron", "state": "started"})),
        case("systemd", json!({"name": "cron", "state": "started"})).check(),
    ];
    let pid1 = std::fs::read_to_string("/proc/1/comm").expect("test fixture");
    assert_ne!(pid1.trim(), "systemd", "this test expects a host without systemd as PID 1");
    differential("systemd", &cases, |_, m, _| {
        let msg = m["msg"].as_str().unwrap_or("");
        if msg.contains("does not run systemd as PID 1") { Ok(()) } else { Err(format!("msg: {msg}")) }
    });
}

/// `sysctl` (ansible.posix's module, from the `ansible` package in the venv) on a sysctl file
/// in the case directory. Nothing here may change the running kernel: cases that would reload
/// or set a live value are in check mode, or name `kernel.ostype`, which is read-only and
/// already `Linux`.
#[test]
fn sysctl_agrees_with_ansible() {
    let base =
        "# kernel\n  vm.swappiness = 60\nnet.ipv4.ip_forward=0\n\n; old\nkernel.ostype=Linux\nvm.swappiness=10\n";
    let f = |args: Value| {
        let mut args = args;
        args["sysctl_file"] = json!("{D}/s.conf");
        case("sysctl", args).nodiff().file("s.conf", base, 0o640)
    };
    let cases = vec![
        f(json!({"name": "net.ipv4.ip_forward", "value": "1", "reload": false})),
        f(json!({"name": "net.ipv4.ip_forward", "value": "1", "reload": false})).check(),
        f(json!({"name": "net.ipv4.ip_forward", "value": "0", "reload": false})),
        f(json!({"name": " net.ipv4.ip_forward ", "value": " 0 ", "reload": false})),
        f(json!({"name": "net.ipv4.ip_forward", "value": "yes", "reload": false})),
        f(json!({"name": "net.ipv4.ip_forward", "value": true, "reload": false})),
        f(json!({"name": "net.ipv4.ip_forward", "value": 1, "reload": false})),
        f(json!({"key": "kernel.pid_max", "val": "65536", "reload": false})),
        f(json!({"name": "net.ipv4.tcp_rmem", "value": "4096  87380 6291456", "reload": false})),
        // The comparison uses the key's last line (10), the rewrite its first.
        f(json!({"name": "vm.swappiness", "value": "10", "reload": false})),
        f(json!({"name": "vm.swappiness", "value": "60", "reload": false})),
        f(json!({"name": "vm.swappiness", "state": "absent", "reload": false})),
        f(json!({"name": "vm.swappiness", "state": "absent", "reload": false})).check(),
        f(json!({"name": "vm.nothere", "state": "absent", "reload": false})),
        f(json!({"name": "kernel.ostype", "value": "Linux"})),
        f(json!({"name": "kernel.ostype", "value": "Plan9"})).check(),
        f(json!({"name": "kernel.ostype", "value": "Plan9", "sysctl_set": true, "reload": false})).check(),
        f(json!({"name": "net.ipv4.ip_forward", "reload": false})),
        f(json!({"name": "", "value": "1", "reload": false})),
        f(json!({"name": "net.ipv4.ip_forward", "value": "", "reload": false})),
        f(json!({"name": "net.ipv4.ip_forward", "value": "1", "reload": "maybe"})),
        case(
            "sysctl",
            json!({"name": "net.ipv4.ip_forward", "value": "1", "reload": false, "sysctl_file": "{D}/new.conf"}),
        ),
        case(
            "ansible.posix.sysctl",
            json!({"name": "vm.overcommit_memory", "value": "2", "reload": false, "sysctl_file": "{D}/new.conf"}),
        )
        .nodiff(),
    ];
    differential("sysctl", &cases, no_extra);
}

/// `group` and `user` change the machine: names start with `mgtest`, and are removed after.
#[test]
fn group_and_user_agree_with_ansible() {
    let names = ["mgtestga", "mgtestua"];
    let cleanup = || {
        for n in names {
            let _ = Command::new("userdel").args(["-r", n]).output();
            let _ = Command::new("groupdel").arg(n).output();
        }
    };
    cleanup();
    // Ansible's run and ours share the machine: ours first creates, then Ansible finds it done
    // (and the reverse for removal), so each side's first run is compared with a fresh state.
    let opts = RunOptions::default();
    let check = RunOptions { check: true, diff: false, become_user: None };
    let group = json!({"name": "mgtestga", "gid": 64123});
    let r = run_module("group", &group, &check).to_json();
    assert_eq!(
        (r["changed"].clone(), nix::unistd::Group::from_name("mgtestga").expect("test fixture")),
        (json!(true), None)
    );
    let r = run_module("group", &group, &opts).to_json();
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(r["gid"], 64123, "{r}");
    assert_eq!(run_module("group", &group, &opts).to_json()["changed"], false);
    let user = json!({"name": "mgtestua", "group": "mgtestga", "shell": "/bin/sh", "create_home": false});
    assert_eq!(run_module("user", &user, &check).to_json()["changed"], true);
    assert!(nix::unistd::User::from_name("mgtestua").expect("test fixture").is_none(), "check mode created the user");
    let r = run_module("user", &user, &opts).to_json();
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(run_module("user", &user, &opts).to_json()["changed"], false);
    let shell = json!({"name": "mgtestua", "shell": "/bin/bash"});
    assert_eq!(run_module("user", &shell, &check).to_json()["changed"], true);
    assert_eq!(run_module("user", &shell, &opts).to_json()["changed"], true);

    // Now Ansible on the same state: it must find nothing to do.
    let bin = ansible_playbook();
    let adhoc = |module: &str, args: &str, check: bool| -> Value {
        let mut cmd = Command::new(bin.with_file_name("ansible"));
        cmd.args(["localhost", "-c", "local", "-o", "-m", module, "-a", args]);
        cmd.arg("-e").arg(format!("ansible_python_interpreter={}", venv().join("bin/python").display()));
        if check {
            cmd.arg("--check");
        }
        let out =
            cmd.env("ANSIBLE_LOCALHOST_WARNING", "False").env("ANSIBLE_NOCOLOR", "1").output().expect("test fixture");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let json_at = text.find('{').unwrap_or_else(|| panic!("no JSON from ansible: {text}"));
        serde_json::from_str(text[json_at..].trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    let r = adhoc("group", "name=mgtestga gid=64123", false);
    assert_eq!(r["changed"], false, "ansible on our group: {r}");
    let r = adhoc("user", "name=mgtestua group=mgtestga shell=/bin/bash create_home=false", false);
    assert_eq!(r["changed"], false, "ansible on our user: {r}");
    let r = adhoc("user", "name=mgtestua shell=/bin/sh", true);
    assert_eq!(r["changed"], true, "ansible check mode: {r}");
    // Ansible removes; ours then finds nothing to remove.
    let r = adhoc("user", "name=mgtestua state=absent", false);
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(run_module("user", &json!({"name": "mgtestua", "state": "absent"}), &opts).to_json()["changed"], false);
    // Ours removes the group; Ansible then finds nothing to remove.
    assert_eq!(run_module("group", &json!({"name": "mgtestga", "state": "absent"}), &opts).to_json()["changed"], true);
    let r = adhoc("group", "name=mgtestga state=absent", false);
    assert_eq!(r["changed"], false, "{r}");
    cleanup();
}

/// `apt` in check mode only (nothing is installed or removed): the state comes from dpkg-query.
#[test]
fn apt_check_mode_reads_the_package_state() {
    let check = RunOptions { check: true, diff: false, become_user: None };
    let r = run_module("apt", &json!({"name": "bash"}), &check).to_json();
    assert_eq!((r["changed"].clone(), r["failed"].clone()), (json!(false), Value::Null), "{r}");
    let r = run_module("ansible.builtin.package", &json!({"name": ["bash"], "state": "absent"}), &check).to_json();
    assert_eq!(r["changed"], true, "{r}");
    assert!(std::path::Path::new("/bin/bash").exists());
}

#[test]
fn unknown_modules_and_controller_modules_are_refused() {
    let r = run_module("community.general.nope", &json!({}), &RunOptions::default()).to_json();
    assert_eq!(r["failed"], true);
    let r = run_module("debug", &json!({"msg": "x"}), &RunOptions::default()).to_json();
    assert_eq!(r["msg"], "module debug runs on the controller, not on an agent");
    let r = run_module("file", &json!("path=/tmp"), &RunOptions::default()).to_json();
    assert_eq!(r["failed"], true);
}

#[test]
fn unified_diff_of_a_content_change() {
    let d = super::Diff::text("a\nb\n", "a\nc\n", "/etc/x");
    assert_eq!(d.unified(), "--- before: /etc/x\n+++ after: /etc/x\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n");
    assert_eq!(super::MODULES.len(), 17);
}

#[test]
fn become_user_runs_commands_as_that_user_and_other_modules_refuse_it() {
    let opts = RunOptions { check: false, diff: false, become_user: Some("nobody".into()) };
    let r = run_module("command", &json!({"cmd": "id -un"}), &opts).to_json();
    assert_eq!((r["rc"].clone(), r["stdout"].clone()), (json!(0), json!("nobody")), "{r}");
    let r = run_module("shell", &json!({"cmd": "echo $HOME; id -u"}), &opts).to_json();
    assert_eq!(
        r["stdout_lines"][1],
        nix::unistd::User::from_name("nobody").expect("passwd").expect("nobody").uid.as_raw().to_string()
    );
    let r = run_module("file", &json!({"path": "/tmp/x", "state": "touch"}), &opts).to_json();
    assert_eq!(r["failed"], true, "{r}");
    let root = RunOptions { become_user: Some("root".into()), ..RunOptions::default() };
    let r = run_module("stat", &json!({"path": "/"}), &root).to_json();
    assert_eq!(r["stat"]["isdir"], true, "{r}");
}
