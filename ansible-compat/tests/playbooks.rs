//! Loading playbooks and refusing what the runner does not support, with `file:line`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use ansible_compat::loader::Disk;
use ansible_compat::playbook::{self, Action};

const SITE: &str = "tests/fixtures/site/site.yml";

#[test]
fn a_playbook_using_every_supported_construct_loads() {
    let pb = playbook::load(SITE, &Disk).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pb.plays.len(), 1);
    let play = &pb.plays[0];
    assert_eq!(play.hosts, "dc:&role_vm:!system_cong_bao");
    assert_eq!(play.roles.len(), 2);
    assert_eq!(play.roles[0].dependencies[0].name, "common");
    assert_eq!(play.roles[1].params["common_flag"], true);
    assert_eq!(play.roles[1].tags, ["common"]);
    assert_eq!(play.roles[0].templates, ["tests/fixtures/site/roles/base/templates/motd.j2"]);
    assert_eq!(play.vars_files[0].1["packages"], serde_json::json!(["nginx", "curl"]));
    let modules: Vec<String> = pb.modules().into_iter().collect();
    for m in [
        "apt",
        "assert",
        "blockinfile",
        "command",
        "copy",
        "debug",
        "fail",
        "file",
        "group",
        "lineinfile",
        "package",
        "replace",
        "service",
        "set_fact",
        "shell",
        "stat",
        "sysctl",
        "systemd",
        "template",
        "user",
        "wait_for",
    ] {
        assert!(modules.contains(&m.to_string()), "{m} in {modules:?}");
    }
    assert!(pb.task_count() >= 20, "{}", pb.task_count());
    let tags = |s: &str| ansible_compat::tags::parse_list(&[s.to_owned()]);
    assert_eq!(play.selected_tasks(&[], &[]), pb.task_count());
    assert_eq!(play.selected_tasks(&tags("packages"), &[]), 1);
    // The `common` role entry carries the tag `common`: its one task (and nothing else).
    assert_eq!(play.selected_tasks(&tags("common"), &[]), 1);
    assert_eq!(play.selected_tasks(&[], &tags("packages,common")), pb.task_count() - 2);
    let Action::Block { block, rescue, always } = &play.tasks[2].action else { panic!("a block") };
    assert_eq!((block.len(), rescue.len(), always.len()), (2, 1, 1));
    assert_eq!(play.handlers[0].keywords["listen"], "web changed");
    assert_eq!(pb.group_vars["all"]["site_banner"], "{{ mangrove_site | upper }}");
    assert_eq!(pb.host_vars["dvc-portal-app-01"]["extra_port"], 8443);
    // key=value arguments.
    let Action::Module { args, .. } = &play.handlers[0].action else { panic!() };
    assert_eq!(args["state"], "restarted");
}

fn refuse(files: &[(&str, &str)]) -> String {
    let map: BTreeMap<String, String> = files.iter().map(|(p, t)| ((*p).to_owned(), (*t).to_owned())).collect();
    match playbook::load(files[0].0, &map) {
        Ok(_) => panic!("{} was accepted", files[0].0),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_unsupported_module_is_refused_with_file_and_line() {
    // The acceptance check's playbook.
    let bad = "- hosts: dc\n  tasks:\n    - name: fine\n      ansible.builtin.debug:\n        msg: hello\n    - name: nope\n      community.general.nonexistent_module:\n        x: 1\n";
    let e = refuse(&[("bad.yml", bad)]);
    assert!(
        e.starts_with(
            "bad.yml:7: module community.general.nonexistent_module is not supported (supported: command, shell,"
        ),
        "{e}"
    );
}

#[test]
fn unsupported_keywords_filters_tests_lookups_and_statements_are_named() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - command: x\n      until: r is success\n")],
            "p.yml:4: task keyword until is not supported",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - debug: {msg: hi}\n      delegate_to: localhost\n")],
            "p.yml:4: task keyword delegate_to is not supported",
        ),
        (&[("p.yml", "- hosts: all\n  serial: 2\n  tasks: []\n")], "p.yml:2: play keyword serial is not supported"),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ x | random }}\"\n")],
            "p.yml:4: Jinja filter random is not supported",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - debug: {msg: hi}\n      when: x is exists\n")],
            "p.yml:4: Jinja test exists is not supported",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ lookup('pipe', 'id') }}\"\n")],
            "p.yml:4: lookup plugin pipe is not supported",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - debug: {msg: hi}\n      with_fileglob: ['*']\n")],
            "p.yml:4: loop keyword with_fileglob is not supported",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - debug: {msg: hi}\n      copy: {src: a, dest: b}\n")],
            "p.yml:4: a task has one module, found debug, copy",
        ),
        (&[("p.yml", "- hosts: all\n  tasks:\n    - name: nothing\n")], "p.yml:3: a task needs a module"),
        (&[("p.yml", "- import_playbook: other.yml\n")], "p.yml:1: import_playbook is not supported"),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - local_action: command id\n")],
            "p.yml:3: task keyword local_action is not supported",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - include_tasks: \"{{ f }}.yml\"\n")],
            "p.yml:3: include_tasks {{ f }}.yml: a templated file name",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - import_tasks: t.yml\n"), ("t.yml", "- import_tasks: t.yml\n")],
            "t.yml:1: t.yml includes itself",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - import_tasks: t.yml\n"), ("t.yml", "- shell: x\n  async: 10\n")],
            "t.yml:2: task keyword async is not supported",
        ),
        (&[("p.yml", "- hosts: all\n  roles: [missing]\n")], "p.yml:2: role missing not found"),
        (
            &[
                ("p.yml", "- hosts: all\n  roles: [r]\n"),
                ("roles/r/tasks/main.yml", "- template: {src: t.j2, dest: /x}\n"),
                ("roles/r/templates/t.j2", "a\nb {{ x | password_hash('sha512') }}\n"),
            ],
            "roles/r/templates/t.j2:2: Jinja filter password_hash is not supported",
        ),
        (
            &[
                ("p.yml", "- hosts: all\n  roles: [r]\n"),
                ("roles/r/tasks/main.yml", "- debug: {msg: x}\n"),
                ("roles/r/templates/t.j2", "{% include 'other.j2' %}\n"),
            ],
            "roles/r/templates/t.j2:1: Jinja statement include is not supported",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - template: {src: nowhere.j2, dest: /x}\n")],
            "p.yml:3: template nowhere.j2 not found",
        ),
        (
            &[
                ("p.yml", "- hosts: all\n  vars_files: [v.yml]\n  tasks: []\n"),
                ("v.yml", "a: \"{{ b | comment('c') | from_xml }}\"\n"),
            ],
            "v.yml:1: Jinja filter from_xml is not supported",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - block:\n        - debug: {msg: x}\n      delegate_to: h\n")],
            "p.yml:5: block keyword delegate_to is not supported",
        ),
        (
            &[(
                "p.yml",
                "- hosts: all\n  tasks:\n    - debug: {msg: x}\n      loop: [1]\n      loop_control: {pause: 3}\n",
            )],
            "p.yml:5: loop_control key pause is not supported",
        ),
        (&[("p.yml", "- hosts: all\n  tasks:\n    - debug: {msg: !vault x}\n")], "p.yml:3: vault-encrypted values"),
        (&[("p.yml", "hosts: all\n")], "p.yml:1: a playbook must be a list of plays"),
        (
            &[(
                "p.yml",
                "- hosts: all\n  tasks:\n    - debug: {msg: x}\n      notify: restart nginx\n  handlers:\n    - name: restart apache\n      service: {name: apache2, state: restarted}\n",
            )],
            "p.yml:3: handler restart nginx is notified but no handler has that name or listens to it (handlers: restart apache)",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - copy:\n        src: a\n        dets: /b\n")],
            "p.yml:5: module copy has no option dets (options: ",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - service: name=x state=started enable=yes\n")],
            "p.yml:3: module service has no option enable",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - file: {path: /x}\n      args: {stat: directory}\n")],
            "p.yml:4: module file has no option stat",
        ),
        (&[("p.yml", "- tasks: []\n")], "p.yml:1: a play needs hosts"),
        (
            &[("p.yml", "- hosts: all\n  tasks:\n    - copy: {src: missing.txt, dest: /x}\n")],
            "p.yml:3: copy source missing.txt not found (looked in files/missing.txt, missing.txt)",
        ),
        (
            &[("p.yml", "- hosts: all\n  tasks: []\n"), ("group_vars/web/x.yml", "a: 1\nb: \"{{ a | shuffle }}\"\n")],
            "group_vars/web/x.yml:2: Jinja filter shuffle is not supported",
        ),
        (
            &[("p.yml", "- hosts: ~web.*\n  tasks: []\n")],
            "p.yml:1: host pattern term `~web.*`: regular expressions are not supported",
        ),
    ];
    for (files, want) in cases {
        let e = refuse(files);
        assert!(e.contains(want), "expected `{want}` in:\n{e}");
    }
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let e = refuse(&[(
        "p.yml",
        "- hosts: all\n  tasks:\n    - a.b.c: {}\n    - debug: {msg: \"{{ x | nope }}\"}\n    - x.y.z: {}\n",
    )]);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(lines[0].starts_with("p.yml:3: module a.b.c"));
    assert!(lines[1].starts_with("p.yml:4: Jinja filter nope"));
    assert!(lines[2].starts_with("p.yml:5: module x.y.z"));
}

#[test]
fn hostile_input_is_an_error_not_a_crash() {
    for text in [
        "",
        "[",
        "- hosts: [",
        "- {hosts: all, tasks: {a: b}}",
        &"- ".repeat(5000),
        "- hosts: all\n  tasks:\n    - debug: {msg: '{{'}\n",
    ] {
        let map = BTreeMap::from([("p.yml".to_owned(), text.to_owned())]);
        let _ = playbook::load("p.yml", &map);
    }
}

#[test]
fn extra_vars_templates_are_checked_too() {
    let ok: ansible_compat::Vars =
        serde_json::from_str(r#"{"a": "{{ b | default(1) }}", "n": [{"x": "plain"}]}"#).unwrap();
    assert!(playbook::check_vars("-e", &ok).is_ok());
    let bad: ansible_compat::Vars = serde_json::from_str(r#"{"a": {"deep": ["{{ b | shuffle }}"]}}"#).unwrap();
    let e = playbook::check_vars("-e", &bad).unwrap_err().to_string();
    assert!(e.starts_with("-e:1: Jinja filter shuffle is not supported"), "{e}");
}
