//! The engine's logic with an in-memory module runner: variable precedence, loops and
//! register, handlers, block/rescue/always and the recap, template and copy sources, check
//! mode and become, unreachable hosts, and the Jinja filters and tests `supported` accepts.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value as Json, json};

use super::*;
use crate::{AnsibleInventory, ini, playbook};

/// Records every call; `copy` keeps files in memory (changed only when the content differs);
/// `command` is changed unless `creates` names a file it has; `stat` reports its path.
#[derive(Default)]
struct Memory {
    calls: Mutex<Vec<(String, ModuleCall)>>,
    files: Mutex<BTreeMap<(String, String), String>>,
    down: Vec<String>,
}

impl Modules for Memory {
    fn reachable(&self, host: &str) -> Result<(), String> {
        if self.down.iter().any(|d| d == host) { Err(format!("{host} is down")) } else { Ok(()) }
    }

    fn call(&self, host: &str, call: &ModuleCall) -> CallResult {
        if self.reachable(host).is_err() {
            return CallResult::Unreachable(format!("{host} is down"));
        }
        self.calls.lock().unwrap().push((host.to_owned(), call.clone()));
        let a = &call.args;
        let s = |k: &str| a.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
        let r = match call.module.as_str() {
            "copy" => {
                let mut files = self.files.lock().unwrap();
                let key = (host.to_owned(), s("dest"));
                let changed = files.get(&key) != Some(&s("content"));
                if changed && !call.check {
                    files.insert(key, s("content"));
                }
                json!({"changed": changed, "dest": s("dest")})
            }
            "command" => {
                let files = self.files.lock().unwrap();
                let exists = files.contains_key(&(host.to_owned(), s("creates")));
                json!({"changed": !exists, "rc": 0, "stdout": s("_raw_params")})
            }
            "stat" => json!({"changed": false, "stat": {"path": s("path"), "exists": false}}),
            other => json!({"failed": true, "msg": format!("no fake {other}")}),
        };
        CallResult::Done(r)
    }
}

struct Run {
    text: String,
    report: Report,
}

fn run_with(files: &[(&str, &str)], inventory: &str, modules: &Memory, options: Options) -> Run {
    let files: BTreeMap<String, String> = files.iter().map(|(p, t)| ((*p).to_owned(), (*t).to_owned())).collect();
    let pb = playbook::load("pb/site.yml", &files).unwrap_or_else(|e| panic!("{e}"));
    let mut inv = AnsibleInventory::default();
    ini::parse_into(inventory, "inv", &mut inv).unwrap();
    let facts: BTreeMap<String, Json> = inv
        .hosts
        .keys()
        .map(|h| {
            (h.clone(), facts::from_agent(&json!({"os_name": "Debian GNU/Linux", "os_version": "12.5", "hostname": h})))
        })
        .collect();
    let input = Input { playbook: &pb, inventory: &inv, facts: &facts, files: &files, options };
    let mut text = String::new();
    let report = super::run(&input, modules, &mut |l| {
        text.push_str(l);
        text.push('\n');
    });
    Run { text, report }
}

fn args_of(m: &Memory, module: &str) -> Vec<(String, Json)> {
    m.calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, c)| c.module == module)
        .map(|(h, c)| (h.clone(), c.args.clone()))
        .collect()
}

#[test]
fn variables_follow_ansibles_precedence() {
    let site = r#"
- hosts: web
  gather_facts: false
  vars: {p_play: play, p_files: play, p_role: play}
  vars_files: [vars.yml]
  roles:
    - role: r
  tasks:
    - block:
        - stat:
            path: "{{ p_defaults }}/{{ p_group }}/{{ p_host }}/{{ p_play }}/{{ p_files }}/{{ p_role }}/{{ p_block }}/{{ p_task }}/{{ p_fact }}/{{ p_extra }}/{{ ansible_distribution }}"
          vars: {p_task: task, p_fact: task, p_extra: task}
      vars: {p_block: block, p_task: block}
    - set_fact: {p_fact: fact}
    - stat:
        path: "{{ p_fact }}"
      vars: {p_fact: task}
"#;
    let files = [
        ("pb/site.yml", site),
        ("pb/vars.yml", "p_files: files\np_role: files\n"),
        ("pb/roles/r/defaults/main.yml", "p_defaults: defaults\np_group: defaults\n"),
        ("pb/roles/r/vars/main.yml", "p_role: role\n"),
        ("pb/roles/r/tasks/main.yml", "- stat:\n    path: \"{{ p_role }}\"\n"),
        ("pb/group_vars/web.yml", "p_group: group\np_host: group\n"),
        ("pb/host_vars/a.yml", "p_host: host\n"),
    ];
    let m = Memory::default();
    let mut options = Options::default();
    options.extra_vars.insert("p_extra".into(), json!("extra"));
    let r = run_with(&files, "[web]\na\n", &m, options);
    let paths: Vec<String> = args_of(&m, "stat").iter().map(|(_, a)| a["path"].as_str().unwrap().to_owned()).collect();
    assert_eq!(
        paths,
        ["role", "defaults/group/host/play/files/role/block/task/task/extra/Debian", "fact"],
        "{}",
        r.text
    );
}

#[test]
fn loops_register_results_and_loop_control() {
    let site = r#"
- hosts: all
  gather_facts: false
  tasks:
    - command: "echo {{ x }} {{ i }}"
      loop: [a, b]
      loop_control: {loop_var: x, index_var: i}
      register: out
    - stat:
        path: "{{ out.results | map(attribute='stdout') | join(',') }} {{ out.changed }} {{ out.results[1].x }}"
    - stat:
        path: "{{ item.key }}={{ item.value }}"
      with_dict: {k: v}
    - stat:
        path: "{{ hostvars[inventory_hostname].inventory_hostname }} {{ groups['all'] | join(',') }}"
"#;
    let m = Memory::default();
    let r = run_with(&[("pb/site.yml", site)], "h\n", &m, Options::default());
    let paths: Vec<Json> = args_of(&m, "stat").into_iter().map(|(_, a)| a["path"].clone()).collect();
    assert_eq!(paths, [json!("echo a 0,echo b 1 True b"), json!("k=v"), json!("h h")], "{}", r.text);
    assert!(r.text.contains("changed: [h] => (item=a)"), "{}", r.text);
    assert_eq!(r.report.stats["h"], Stats { ok: 4, changed: 1, ..Default::default() });
}

#[test]
fn handlers_run_once_in_definition_order_only_when_notified_by_a_change() {
    let site = r#"
- hosts: all
  gather_facts: false
  tasks:
    - copy: {dest: /etc/a, content: "1"}
      notify: second
    - copy: {dest: /etc/b, content: "1"}
      notify: [restart things]
    - copy: {dest: /etc/a, content: "1"}
      notify: never notified
  handlers:
    - name: first
      stat: {path: first}
      listen: restart things
    - name: never notified
      stat: {path: never}
    - name: second
      stat: {path: second}
"#;
    let m = Memory::default();
    let r = run_with(&[("pb/site.yml", site)], "h1\nh2\n", &m, Options::default());
    let order: Vec<String> =
        args_of(&m, "stat").iter().map(|(h, a)| format!("{h}:{}", a["path"].as_str().unwrap())).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, ["h1:first", "h1:second", "h2:first", "h2:second"], "{}", r.text);
    let first = r.text.find("RUNNING HANDLER [first]").expect("first ran");
    let second = r.text.find("RUNNING HANDLER [second]").expect("second ran");
    assert!(first < second, "{}", r.text);
    assert!(!r.text.contains("never notified]"), "{}", r.text);

    // A second run changes nothing and runs no handler.
    let r2 = {
        let files: BTreeMap<String, String> = [("pb/site.yml".to_owned(), site.to_owned())].into();
        let pb = playbook::load("pb/site.yml", &files).unwrap();
        let mut inv = AnsibleInventory::default();
        ini::parse_into("h1\nh2\n", "inv", &mut inv).unwrap();
        let facts = BTreeMap::new();
        let input = Input { playbook: &pb, inventory: &inv, facts: &facts, files: &files, options: Options::default() };
        let mut text = String::new();
        let rep = super::run(&input, &m, &mut |l| text.push_str(&format!("{l}\n")));
        (rep, text)
    };
    assert!(r2.0.stats.values().all(|s| s.changed == 0), "{}", r2.1);
    assert!(!r2.1.contains("RUNNING HANDLER"), "{}", r2.1);
}

#[test]
fn block_rescue_always_and_the_recap() {
    let site = r#"
- hosts: all
  gather_facts: false
  tasks:
    - block:
        - fail: {msg: boom}
          when: inventory_hostname == 'a'
        - stat: {path: "block {{ inventory_hostname }}"}
      rescue:
        - stat: {path: "rescue {{ inventory_hostname }} {{ ansible_failed_result.msg }} {{ ansible_failed_task.name }}"}
      always:
        - stat: {path: "always {{ inventory_hostname }}"}
    - block:
        - fail: {msg: unrescued}
          when: inventory_hostname == 'b'
      always:
        - stat: {path: "always2 {{ inventory_hostname }}"}
    - stat: {path: "after {{ inventory_hostname }}"}
"#;
    let m = Memory::default();
    let r = run_with(&[("pb/site.yml", site)], "a\nb\n", &m, Options::default());
    let mut paths: Vec<String> =
        args_of(&m, "stat").iter().map(|(_, a)| a["path"].as_str().unwrap().trim().to_owned()).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["after a", "always a", "always b", "always2 a", "always2 b", "block b", "rescue a boom fail"],
        "{}",
        r.text
    );
    assert_eq!(r.report.stats["a"], Stats { ok: 4, rescued: 1, skipped: 1, ..Default::default() }, "{}", r.text);
    assert_eq!(r.report.stats["b"], Stats { ok: 3, failed: 1, skipped: 1, ..Default::default() }, "{}", r.text);
    assert_eq!(r.report.exit_code, 2);
    assert!(r.text.contains("fatal: [b]: FAILED! => {\"changed\": false, \"msg\": \"unrescued\"}"), "{}", r.text);
}

#[test]
fn templates_and_copy_sources_go_as_content_with_check_diff_and_become() {
    let site = r#"
- hosts: all
  gather_facts: false
  become: true
  vars: {port: 8080}
  tasks:
    - template: {src: app.conf.j2, dest: /etc/app.conf, mode: "0644"}
    - copy: {src: motd, dest: /etc/motd}
      become_user: app
    - command: /bin/true
      check_mode: false
"#;
    let files = [
        ("pb/site.yml", site),
        ("pb/templates/app.conf.j2", "port={{ port }}\n{% for h in groups['all'] %}\nhost={{ h }}\n{% endfor %}\n"),
        ("pb/files/motd", "welcome\n"),
    ];
    let m = Memory::default();
    let r = run_with(&files, "h\n", &m, Options { check: true, diff: true, ..Default::default() });
    let calls = m.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "{}", r.text);
    assert_eq!(calls[0].1.module, "copy");
    assert_eq!(calls[0].1.args, json!({"content": "port=8080\nhost=h\n", "dest": "/etc/app.conf", "mode": "0644"}));
    assert!(calls[0].1.check && calls[0].1.diff);
    assert_eq!(calls[0].1.become_user, None, "become without become_user runs as the agent (root)");
    assert_eq!(calls[1].1.args, json!({"content": "welcome\n", "dest": "/etc/motd"}));
    assert_eq!(calls[1].1.become_user.as_deref(), Some("app"));
    assert!(!calls[2].1.check, "check_mode: false runs the task for real");
}

#[test]
fn unreachable_hosts_are_reported_and_give_exit_code_4() {
    let site = "- hosts: all\n  tasks:\n    - stat: {path: /x}\n";
    let m = Memory { down: vec!["b".into()], ..Default::default() };
    let r = run_with(&[("pb/site.yml", site)], "a\nb\n", &m, Options::default());
    assert!(
        r.text.contains(
            "fatal: [b]: UNREACHABLE! => {\"changed\": false, \"msg\": \"b is down\", \"unreachable\": true}"
        ),
        "{}",
        r.text
    );
    assert_eq!(r.report.stats["b"], Stats { unreachable: 1, ..Default::default() });
    assert_eq!(r.report.stats["a"], Stats { ok: 2, ..Default::default() });
    assert_eq!(r.report.exit_code, 4);
    assert!(r.text.lines().any(|l| l == "b                          : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0   "), "{}", r.text);
}

#[test]
fn tags_select_tasks() {
    let site = "- hosts: all\n  gather_facts: false\n  tasks:\n    - stat: {path: a}\n      tags: [one]\n    - stat: {path: b}\n      tags: [two]\n    - stat: {path: c}\n      tags: [always]\n";
    let m = Memory::default();
    run_with(&[("pb/site.yml", site)], "h\n", &m, Options { only_tags: vec!["two".into()], ..Default::default() });
    let paths: Vec<Json> = args_of(&m, "stat").into_iter().map(|(_, a)| a["path"].clone()).collect();
    assert_eq!(paths, [json!("b"), json!("c")]);
}

#[test]
fn filters_and_tests_behave_as_ansibles() {
    let t = jinja::Templar::new();
    let ctx = t.scope(
        serde_json::from_value(json!({
            "users": [{"name": "a", "admin": true}, {"name": "b", "admin": false}],
            "d": {"x": 1}, "s": "Hello World", "yes_str": "yes", "ver": "2.10.1", "r": {"changed": true, "failed": false},
            "nested": "{{ s | lower }}"
        }))
        .unwrap(),
    );
    let cases: &[(&str, Json)] = &[
        ("{{ missing | default('dflt') }}", json!("dflt")),
        ("{{ missing.deeper | d(5) }}", json!(5)),
        ("{{ yes_str | bool }}", json!(true)),
        ("{{ '42' | int + 1 }}", json!(43)),
        // Jinja2's int and float: what does not convert is the default (found by the
        // differential test: `"" | int` failed the template).
        ("{{ '' | int }}", json!(0)),
        ("{{ 'x' | int(7) }}", json!(7)),
        ("{{ ' 3.9 ' | int }}", json!(3)),
        ("{{ '0x1A' | int(0, 16) }}", json!(26)),
        ("{{ true | int }}", json!(1)),
        ("{{ '2.5' | float * 2 }}", json!(5.0)),
        ("{{ 'n/a' | float }}", json!(0.0)),
        ("{{ s | regex_replace('(\\\\w+) (\\\\w+)', '\\\\2 \\\\1') }}", json!("World Hello")),
        ("{{ s | regex_search('W\\\\w+') }}", json!("World")),
        ("{{ d | to_json }}", json!("{\"x\": 1}")),
        ("{{ d | to_nice_json }}", json!("{\n    \"x\": 1\n}")),
        ("{{ d | to_yaml }}", json!("x: 1\n")),
        ("{{ (1 == 1) | ternary('y', 'n') }}", json!("y")),
        ("{{ users | selectattr('admin') | map(attribute='name') | list }}", json!(["a"])),
        ("{{ users | rejectattr('admin') | map(attribute='name') | join(',') }}", json!("b")),
        ("{{ d | dict2items }}", json!([{"key": "x", "value": 1}])),
        ("{{ [{'key': 'k', 'value': 2}] | items2dict }}", json!({"k": 2})),
        ("{{ d | combine({'y': 2}) }}", json!({"x": 1, "y": 2})),
        ("{{ [3, 1, 3] | unique | sort | first }}", json!(1)),
        ("{{ [3, 1] | last }}", json!(1)),
        ("{{ '/etc/app/x.conf' | basename }}", json!("x.conf")),
        ("{{ '/etc/app/x.conf' | dirname }}", json!("/etc/app")),
        ("{{ '  x ' | trim | upper }}", json!("X")),
        ("{{ 'a,b' | split(',') | length }}", json!(2)),
        ("{{ 'a-b' | replace('-', '_') }}", json!("a_b")),
        ("{{ 42 | string }}", json!("42")),
        ("{{ ver is version('2.9', '>') }}", json!(true)),
        ("{{ ver is version('2.10.1', 'eq') }}", json!(true)),
        ("{{ r is changed and r is succeeded and not (r is failed) and not (r is skipped) }}", json!(true)),
        ("{{ missing is undefined and d is defined and none is none }}", json!(true)),
        ("{{ s is match('Hel') and s is search('World') and not (s is match('World')) }}", json!(true)),
        ("{{ 'x' in d }}", json!(true)),
        ("{{ nested }}", json!("hello world")),
        ("{{ lookup('vars', 's') }}", json!("Hello World")),
        ("{{ [1, 2] }}", json!([1, 2])),
        ("list: {{ [1, 'a'] }}", json!("list: [1, 'a']")),
        ("{{ true }} {{ none }}", json!("True None")),
    ];
    for (tpl, want) in cases {
        assert_eq!(t.render(&json!(tpl), &ctx).as_ref(), Ok(want), "{tpl}");
    }
    assert!(t.render(&json!("{{ missing }}"), &ctx).is_err(), "an undefined variable fails the template");
}

/// Everything the refusal check lets through, the engine has.
#[test]
fn every_supported_filter_test_and_function_exists() {
    let t = jinja::Templar::new();
    let ctx = t.scope(crate::Vars::new());
    for f in crate::supported::FILTERS {
        let r = t.render(&json!(format!("{{{{ 'x' | {f} }}}}")), &ctx);
        if let Err(e) = &r {
            assert!(!e.contains("unknown filter"), "filter {f}: {e}");
        }
    }
    for name in crate::supported::TESTS.iter().filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
        let r = t.render(&json!(format!("{{{{ 'x' is {name} }}}}")), &ctx);
        if let Err(e) = &r {
            assert!(!e.contains("unknown test"), "test {name}: {e}");
        }
    }
    for f in crate::supported::FUNCTIONS.iter().filter(|f| **f != "omit") {
        let r = t.render(&json!(format!("{{{{ {f}() }}}}")), &ctx);
        if let Err(e) = &r {
            assert!(!e.contains("unknown function"), "function {f}: {e}");
        }
    }
    for l in crate::supported::LOOKUPS {
        let r = t.render(&json!(format!("{{{{ lookup('{l}', 'x', default=1) }}}}")), &ctx);
        if let Err(e) = &r {
            assert!(!e.contains("not supported"), "lookup {l}: {e}");
        }
    }
}

/// Found by the differential test against ansible-playbook: a registered result with `stdout`
/// but no `stdout_lines` (a command skipped in check mode) made `stdout_lines | default(...)`
/// take the default where Ansible sees `[]`.
#[test]
fn a_registered_result_with_stdout_has_stdout_lines_as_in_ansible() {
    let site = r#"
- hosts: web
  gather_facts: false
  tasks:
    - command: "two\nlines"
      register: out
    - set_fact:
        seen: "{{ out.stdout_lines | default('missing') }}"
        err: "{{ out.stderr_lines | default('missing') }}"
    - assert:
        that: ["seen == ['two', 'lines']", "err == 'missing'"]
"#;
    let m = Memory::default();
    let r = run_with(&[("pb/site.yml", site)], "a\n[web]\na\n", &m, Options::default());
    assert_eq!(r.report.stats["a"].failed, 0, "{}", r.text);
    assert_eq!(r.report.stats["a"].ok, 3, "{}", r.text);
}

/// Found by the differential test: `ignore_errors: "{{ ansible_check_mode }}"` was taken as
/// the literal string (false) and the failure stopped the host, where Ansible templates every
/// keyword first.
#[test]
fn boolean_keywords_are_templated_as_in_ansible() {
    let site = r#"
- hosts: web
  gather_facts: false
  vars: {quiet: true}
  tasks:
    - fail: {msg: expected in check mode}
      ignore_errors: "{{ ansible_check_mode }}"
    - copy: {content: x, dest: /a}
      check_mode: "{{ not quiet }}"
"#;
    let m = Memory::default();
    let r = run_with(&[("pb/site.yml", site)], "a\n[web]\na\n", &m, Options { check: true, ..Options::default() });
    assert_eq!((r.report.stats["a"].ignored, r.report.stats["a"].failed), (1, 0), "{}", r.text);
    let calls = m.calls.lock().unwrap();
    assert!(calls.iter().any(|(_, c)| c.module == "copy" && !c.check), "check_mode templated to false: {}", r.text);
    drop(calls);
    let r = run_with(&[("pb/site.yml", site)], "a\n[web]\na\n", &m, Options::default());
    assert_eq!(r.report.stats["a"].failed, 1, "not ignored outside check mode: {}", r.text);
}
