//! Every refusal says where: `file:line:column: path: message`. One table row per mistake an
//! operator makes; each row is a small inventory (as lines, so positions are easy to count),
//! the expected `line:column`, the field path, and a piece of the message.

use inventory::{Diagnostic, InventoryError, parse_str};

/// A valid inventory the rows below break in one place each (lines 1–18).
const BASE: &[&str] = &[
    "province: Cà Mau",                                                                     // 1
    "sites:",                                                                               // 2
    "  - { name: dc, platform: { kind: vsphere, name: vcenter-dc }, storage_tb: 135 }",     // 3
    "  - { name: dr, platform: { kind: openstack, name: openstack-dr }, storage_tb: 117 }", // 4
    "hosts:",                                                                               // 5
    "  - { name: dc-esxi-01, site: dc, role: hypervisor, agent: proxy, cpus: 64, memory_gb: 768, address: 192.0.2.11 }", // 6
    "systems:",                                                 // 7
    "  - name: dvc-portal",                                     // 8
    "    title_vi: Cổng Dịch vụ công",                          // 9
    "    owner: Văn phòng UBND tỉnh",                           // 10
    "    level: 3",                                             // 11
    "    framework: vn-nd85-tcvn11930",                         // 12
    "    priority: 1",                                          // 13
    "    rpo: 4h",                                              // 14
    "    rto: 8h",                                              // 15
    "    workloads: { match: { tag: \"system=dvc-portal\" } }", // 16
    "workloads:",                                               // 17
    "  - { name: dvc-portal-app-01, system: dvc-portal, site: dc, agent: native, vcpus: 4, memory_gb: 16, disk_gb: 200, address: 192.0.2.51 }", // 18
];

/// BASE with line `n` (1-based) replaced by `line` (which may hold several lines).
fn base_with(n: usize, line: &str) -> String {
    let mut lines: Vec<&str> = BASE.to_vec();
    lines[n - 1] = line;
    lines.join("\n") + "\n"
}

/// BASE with `extra` lines appended.
fn base_plus(extra: &[&str]) -> String {
    let mut lines: Vec<&str> = BASE.to_vec();
    lines.extend_from_slice(extra);
    lines.join("\n") + "\n"
}

fn lines(ls: &[&str]) -> String {
    ls.join("\n") + "\n"
}

struct Case {
    name: &'static str,
    yaml: String,
    /// `line:column` of the first problem.
    at: &'static str,
    /// The field at fault.
    path: &'static str,
    /// A piece of the message.
    message: &'static str,
}

fn first_problem(yaml: &str) -> (String, InventoryError) {
    match parse_str(yaml, "t.yaml") {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(e) => (e.to_string(), e),
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "unknown top-level key",
            yaml: base_plus(&["hostz: []"]),
            at: "19:1",
            path: "hostz",
            message: "unknown field `hostz`; expected one of: province, sites, hosts",
        },
        Case {
            name: "unknown nested key in a flow mapping",
            yaml: base_with(
                6,
                "  - { name: dc-esxi-01, site: dc, role: hypervisor, agent: proxy, cpu: 64, memory_gb: 768 }",
            ),
            at: "6:67",
            path: "hosts[0].cpu",
            message: "unknown field `cpu`; expected one of: name, site, role, agent, cpus",
        },
        Case {
            name: "unknown key two levels down",
            yaml: base_with(16, "    workloads: { match: { tags: \"system=dvc-portal\" } }"),
            at: "16:27",
            path: "systems[0].workloads.match.tags",
            message: "unknown field `tags`; expected one of: tag",
        },
        Case {
            name: "unknown key in a block mapping",
            yaml: base_with(12, "    framework: vn-nd85-tcvn11930\n    colour: red"),
            at: "13:5",
            path: "systems[0].colour",
            message: "unknown field `colour`",
        },
        Case {
            name: "duplicate host",
            yaml: base_with(
                6,
                "  - { name: dc-esxi-01, site: dc, role: hypervisor, agent: proxy, cpus: 64, memory_gb: 768 }\n  - { name: dc-esxi-01, site: dc, role: hypervisor, agent: proxy, cpus: 64, memory_gb: 768 }",
            ),
            at: "7:13",
            path: "hosts[1].name",
            message: "duplicate name `dc-esxi-01`: already used by hosts[0].name (line 6)",
        },
        Case {
            name: "workload named like a host",
            yaml: base_with(
                18,
                "  - { name: dc-esxi-01, system: dvc-portal, site: dc, agent: native, vcpus: 4, memory_gb: 16, disk_gb: 200 }",
            ),
            at: "18:13",
            path: "workloads[0].name",
            message: "already used by hosts[0].name (line 6) (hosts and workloads share one namespace)",
        },
        Case {
            name: "duplicate site",
            yaml: base_with(
                4,
                "  - { name: dc, platform: { kind: openstack, name: openstack-dr }, storage_tb: 117 }",
            ),
            at: "4:13",
            path: "sites[1].name",
            message: "duplicate name `dc`: already used by sites[0].name (line 3)",
        },
        Case {
            name: "host at an unknown site",
            yaml: base_with(
                6,
                "  - { name: dc-esxi-01, site: dx, role: hypervisor, agent: proxy, cpus: 64, memory_gb: 768 }",
            ),
            at: "6:31",
            path: "hosts[0].site",
            message: "unknown site `dx`; sites are: dc, dr",
        },
        Case {
            name: "workload at an unknown site",
            yaml: base_with(
                18,
                "  - { name: dvc-portal-app-01, system: dvc-portal, site: hcm, agent: native, vcpus: 4, memory_gb: 16, disk_gb: 200 }",
            ),
            at: "18:58",
            path: "workloads[0].site",
            message: "unknown site `hcm`",
        },
        Case {
            name: "workload of an unknown system",
            yaml: base_with(
                18,
                "  - { name: dvc-portal-app-01, system: dvc, site: dc, agent: native, vcpus: 4, memory_gb: 16, disk_gb: 200 }",
            ),
            at: "18:40",
            path: "workloads[0].system",
            message: "unknown system `dvc`; systems are: dvc-portal",
        },
        Case {
            name: "system on an unknown host",
            yaml: base_with(15, "    rto: 8h\n    hosts: [dc-esxi-01, dc-esxi-02]"),
            at: "16:25",
            path: "systems[0].hosts[1]",
            message: "unknown host `dc-esxi-02`; hosts are: dc-esxi-01",
        },
        Case {
            name: "video endpoint at an unknown site",
            yaml: base_plus(&[
                "video_endpoints:",
                "  - { name: vc-tinh, site_name: UBND tỉnh, model: Polycom HDX 8000, address: 192.0.2.30, site: dcc }",
            ]),
            at: "20:96",
            path: "video_endpoints[0].site",
            message: "unknown site `dcc`",
        },
        Case {
            name: "security level 6",
            yaml: base_with(11, "    level: 6"),
            at: "11:12",
            path: "systems[0].level",
            message: "security level must be between 1 and 5",
        },
        Case {
            name: "security level 0",
            yaml: base_with(11, "    level: 0"),
            at: "11:12",
            path: "systems[0].level",
            message: "security level must be between 1 and 5 (Decree 85/2016/NĐ-CP), got 0",
        },
        Case {
            name: "security level as a word",
            yaml: base_with(11, "    level: high"),
            at: "11:12",
            path: "systems[0].level",
            message: "expected an integer, found a string `high`",
        },
        Case {
            name: "priority 7",
            yaml: base_with(13, "    priority: 7"),
            at: "13:15",
            path: "systems[0].priority",
            message: "priority must be 1 to 5 (or P1 to P5), got 7",
        },
        Case {
            name: "priority P0",
            yaml: base_with(13, "    priority: P0"),
            at: "13:15",
            path: "systems[0].priority",
            message: "got `P0`",
        },
        Case {
            name: "duration with an unknown unit",
            yaml: base_with(14, "    rpo: 4x"),
            at: "14:10",
            path: "systems[0].rpo",
            message: "invalid duration `4x`: unknown unit `x`",
        },
        Case {
            name: "duration without a unit",
            yaml: base_with(15, "    rto: 15"),
            at: "15:10",
            path: "systems[0].rto",
            message: "missing unit after `15`",
        },
        Case {
            name: "invalid IP address",
            yaml: base_with(
                6,
                "  - { name: dc-esxi-01, site: dc, role: hypervisor, agent: proxy, cpus: 64, memory_gb: 768, address: 192.0.2.300 }",
            ),
            at: "6:102",
            path: "hosts[0].address",
            message: "invalid IP address syntax",
        },
        Case {
            name: "address used twice",
            yaml: base_with(
                18,
                "  - { name: dvc-portal-app-01, system: dvc-portal, site: dc, agent: native, vcpus: 4, memory_gb: 16, disk_gb: 200, address: 192.0.2.11 }",
            ),
            at: "18:125",
            path: "workloads[0].address",
            message: "address 192.0.2.11 is already used by hosts[0].address (line 6)",
        },
        Case {
            name: "syntax error: unclosed flow mapping",
            yaml: base_with(
                6,
                "  - { name: dc-esxi-01, site: dc, role: hypervisor, agent: proxy, cpus: 64, memory_gb: 768",
            ),
            // The flow mapping runs on until the parser meets a block indicator inside it.
            at: "8:3",
            path: "",
            message: "invalid YAML: \"-\" is only valid inside a block",
        },
        Case {
            name: "syntax error: bad indentation",
            yaml: base_with(10, "   owner: Văn phòng UBND tỉnh"),
            at: "10:4",
            path: "",
            message: "invalid YAML: while parsing a block collection",
        },
        Case {
            name: "duplicate mapping key",
            yaml: base_with(12, "    framework: vn-nd85-tcvn11930\n    level: 4"),
            at: "13:5",
            path: "",
            message: "invalid YAML: duplicated key in mapping",
        },
        Case {
            name: "duplicate mapping key, quoted the second time",
            yaml: base_with(1, "province: Cà Mau\n\"province\": Bạc Liêu"),
            at: "2:1",
            path: "",
            message: "duplicated key in mapping",
        },
        Case {
            name: "wrong type: word for a count",
            yaml: base_with(
                6,
                "  - { name: dc-esxi-01, site: dc, role: hypervisor, agent: proxy, cpus: many, memory_gb: 768 }",
            ),
            at: "6:73",
            path: "hosts[0].cpus",
            message: "expected an integer, found a string `many`",
        },
        Case {
            name: "wrong type: quoted number for a count",
            yaml: base_with(
                6,
                "  - { name: dc-esxi-01, site: dc, role: hypervisor, agent: proxy, cpus: \"64\", memory_gb: 768 }",
            ),
            at: "6:73",
            path: "hosts[0].cpus",
            message: "expected an integer, found a string `64`",
        },
        Case {
            name: "wrong type: negative count",
            yaml: base_with(
                6,
                "  - { name: dc-esxi-01, site: dc, role: hypervisor, agent: proxy, cpus: -4, memory_gb: 768 }",
            ),
            at: "6:73",
            path: "hosts[0].cpus",
            message: "integer `-4`, expected u32",
        },
        Case {
            name: "wrong type: list where a mapping belongs",
            yaml: base_with(3, "  - [dc, vsphere]"),
            at: "3:5",
            path: "sites[0]",
            message: "expected a mapping with fields name, title, platform",
        },
        Case {
            name: "wrong type: mapping where a list belongs",
            yaml: base_with(5, "hosts: { name: dc-esxi-01 }\nunused:"),
            at: "5:8",
            path: "hosts",
            message: "expected a list, found a mapping",
        },
        Case {
            name: "unknown role",
            yaml: base_with(
                6,
                "  - { name: dc-esxi-01, site: dc, role: router, agent: proxy, cpus: 64, memory_gb: 768 }",
            ),
            at: "6:41",
            path: "hosts[0].role",
            message: "unknown value `router`; expected one of: hypervisor, server",
        },
        Case {
            name: "missing required field",
            yaml: base_with(
                6,
                "  - { name: dc-esxi-01, role: hypervisor, agent: proxy, cpus: 64, memory_gb: 768 }",
            ),
            at: "6:5",
            path: "hosts[0].site",
            message: "missing required field `site`",
        },
        Case {
            name: "missing top-level field",
            yaml: lines(&["province: Cà Mau", "hosts: []"]),
            at: "1:1",
            path: "sites",
            message: "missing required field `sites`",
        },
        Case {
            name: "tag contradicts system field",
            yaml: base_with(
                18,
                "  - { name: dvc-portal-app-01, system: dvc-portal, site: dc, agent: native, vcpus: 4, memory_gb: 16, disk_gb: 200, tags: { system: email } }",
            ),
            at: "18:132",
            path: "workloads[0].tags.system",
            message: "tag `system=email` contradicts `system: dvc-portal` at workloads[0].system (line 18)",
        },
        Case {
            name: "workload claimed by two systems",
            yaml: base_with(
                16,
                "    workloads: { match: { tag: \"system=dvc-portal\" } }\n  - { name: email, title_vi: Thư điện tử, owner: Sở TTTT, level: 3, framework: f, priority: 2, rpo: 1h, rto: 8h, workloads: { names: [dvc-portal-app-01] } }",
            ),
            // The later claim is the one reported.
            at: "19:40",
            path: "workloads[0].system",
            message: "would belong to system `dvc-portal` here and to system `email` at systems[1].workloads.names[0] (line 17)",
        },
        Case {
            name: "selector names an unknown workload",
            yaml: base_with(16, "    workloads: { names: [dvc-portal-app-02] }"),
            at: "16:26",
            path: "systems[0].workloads.names[0]",
            message: "unknown workload `dvc-portal-app-02`",
        },
        Case {
            name: "selector tag without =",
            yaml: base_with(16, "    workloads: { match: { tag: dvc-portal } }"),
            at: "16:32",
            path: "systems[0].workloads.match.tag",
            message: "expected `key=value`",
        },
        Case {
            name: "invalid name",
            yaml: base_with(
                6,
                "  - { name: DC_ESXi_01, site: dc, role: hypervisor, agent: proxy, cpus: 64, memory_gb: 768 }",
            ),
            at: "6:13",
            path: "hosts[0].name",
            message: "invalid name `DC_ESXi_01`",
        },
        Case {
            name: "no cpus",
            yaml: base_with(
                6,
                "  - { name: dc-esxi-01, site: dc, role: hypervisor, agent: proxy, cpus: 0, memory_gb: 768 }",
            ),
            at: "6:73",
            path: "hosts[0].cpus",
            message: "must be at least 1",
        },
        Case {
            name: "more named VMs than the site declares",
            yaml: base_with(
                3,
                "  - { name: dc, platform: { kind: vsphere, name: vcenter-dc }, storage_tb: 135, vms: 0 }",
            ),
            at: "3:86",
            path: "sites[0].vms",
            message: "declares 0 VMs but 1 workloads are named at this site",
        },
        Case {
            name: "platform without a name",
            yaml: base_with(3, "  - { name: dc, platform: { kind: vsphere }, storage_tb: 135 }"),
            at: "3:27",
            path: "sites[0].platform.name",
            message: "a platform of kind `vsphere` needs a name",
        },
        Case {
            name: "empty province",
            yaml: base_with(1, "province: \"\""),
            at: "1:11",
            path: "province",
            message: "must not be empty",
        },
        Case {
            name: "a second document",
            yaml: base_plus(&["---", "province: Bạc Liêu"]),
            at: "20:1",
            path: "",
            message: "a second YAML document",
        },
        Case {
            name: "empty file",
            yaml: String::new(),
            at: "1:1",
            path: "",
            message: "the file is empty",
        },
        Case {
            name: "a list instead of an inventory",
            yaml: lines(&["- province: Cà Mau"]),
            at: "1:1",
            path: "",
            message: "expected a mapping with fields province, sites",
        },
        Case {
            name: "a custom tag",
            yaml: base_with(11, "    level: !secret 3"),
            at: "11:12",
            path: "systems[0].level",
            message: "expected an integer, found a value tagged",
        },
        Case {
            name: "syntax error: unclosed quote",
            yaml: base_with(9, "    title_vi: \"Cổng Dịch vụ công"),
            at: "9:15",
            path: "",
            message: "invalid YAML",
        },
        Case {
            name: "workload selected by another system's tag",
            yaml: base_with(
                16,
                "    workloads: { match: { tag: \"system=dvc-portal\" } }\n  - { name: email, title_vi: Thư điện tử, owner: Sở TTTT, level: 3, framework: f, priority: 2, rpo: 1h, rto: 8h, workloads: { match: { tag: \"tier=web\" } } }",
            )
            .replace("disk_gb: 200, address", "disk_gb: 200, tags: { tier: web }, address"),
            at: "19:40",
            path: "workloads[0].system",
            message: "would belong to system `dvc-portal` here and to system `email` at systems[1].workloads.match.tag (line 17)",
        },
        Case {
            name: "video endpoint without an address",
            yaml: base_plus(&[
                "video_endpoints:",
                "  - name: vc-tinh",
                "    site_name: UBND tỉnh",
                "    model: Polycom HDX 8000",
            ]),
            at: "20:5",
            path: "video_endpoints[0].address",
            message: "missing required field `address`",
        },
        Case {
            name: "duplicate endpoint group",
            yaml: base_plus(&[
                "endpoint_groups:",
                "  - { name: so-tttt, agency: Sở TTTT, computers: 120 }",
                "  - { name: so-tttt, agency: Sở TTTT, computers: 1 }",
            ]),
            at: "21:13",
            path: "endpoint_groups[1].name",
            message: "duplicate name `so-tttt`: already used by endpoint_groups[0].name (line 20)",
        },
        Case {
            name: "platform snapshots keeping none",
            yaml: base_with(
                16,
                "    workloads: { match: { tag: \"system=dvc-portal\" } }\n    backup: { paths: [/srv/dvc], snapshots: { keep: 0 } }",
            ),
            at: "17:53",
            path: "systems[0].backup.snapshots.keep",
            message: "keep at least one snapshot",
        },
        Case {
            name: "platform snapshots on a schedule that is not cron",
            yaml: base_with(
                16,
                "    workloads: { match: { tag: \"system=dvc-portal\" } }\n    backup: { paths: [/srv/dvc], snapshots: { schedule: nightly } }",
            ),
            at: "17:57",
            path: "systems[0].backup.snapshots.schedule",
            message: "`nightly` is not a cron schedule",
        },
        Case {
            name: "nesting too deep",
            yaml: format!("{}x\n", "- ".repeat(200)),
            at: "1:401",
            path: "",
            message: "nesting too deep",
        },
    ]
}

#[test]
fn each_mistake_is_refused_where_it_is() {
    let mut failures = Vec::new();
    for case in cases() {
        let (shown, err) = first_problem(&case.yaml);
        let InventoryError::Invalid { origin, line, column, path, message, .. } = &err else {
            failures.push(format!("{}: not Invalid: {err:?}", case.name));
            continue;
        };
        let at = format!("{line}:{column}");
        if origin != "t.yaml" || at != case.at || path != case.path || !message.contains(case.message) {
            failures
                .push(format!("{}:\n   want {} {} …{}…\n    got {shown}", case.name, case.at, case.path, case.message));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_base_inventory_is_valid() {
    let inv = parse_str(&lines(BASE), "t.yaml").expect("BASE must be valid");
    assert_eq!(inv.machines().len(), 2);
}

#[test]
fn display_is_file_line_column_path_message() {
    let (shown, _) = first_problem(&base_with(11, "    level: 6"));
    assert_eq!(
        shown,
        "t.yaml:11:12: systems[0].level: security level must be between 1 and 5 \
         (Decree 85/2016/NĐ-CP), got 6"
    );
    let (shown, _) = first_problem(&base_with(12, "    framework: x\n    level: 4"));
    assert_eq!(shown, "t.yaml:13:5: invalid YAML: duplicated key in mapping");
}

#[test]
fn several_broken_entries_are_reported_in_one_pass() {
    let yaml = base_with(
        6,
        "  - { name: a, site: dc, role: hypervisor, agent: proxy, cpus: x, memory_gb: 1 }\n  - { name: b, site: dc, role: hypervisor, agent: proxi, cpus: 1, memory_gb: 1 }",
    );
    let (shown, err) = first_problem(&yaml);
    assert!(shown.ends_with("(and 1 more problem)"), "{shown}");
    let all = err.diagnostics();
    let at: Vec<(usize, usize, &str)> = all.iter().map(|d: &Diagnostic| (d.line, d.column, d.path.as_str())).collect();
    assert_eq!(at, [(6, 64, "hosts[0].cpus"), (7, 51, "hosts[1].agent")]);
}

#[test]
fn several_semantic_problems_are_reported_in_one_pass() {
    let yaml = base_plus(&[
        "  - { name: w2, system: nope, site: nowhere, agent: native, vcpus: 1, memory_gb: 1, disk_gb: 1 }",
    ]);
    let (_, err) = first_problem(&yaml);
    let paths: Vec<String> = err.diagnostics().into_iter().map(|d| d.path).collect();
    assert_eq!(paths, ["workloads[1].system", "workloads[1].site"]);
}

#[test]
fn plain_scalars_read_as_text_keep_their_spelling() {
    let yaml = base_with(
        6,
        "  - { name: dc-esxi-01, site: dc, role: hypervisor, agent: proxy, cpus: 64, memory_gb: 768, os: 7.10, tags: { rack: 007, spare: true } }",
    );
    let inv = parse_str(&yaml, "t.yaml").expect("valid");
    let h = &inv.hosts[0];
    assert_eq!(h.os.as_deref(), Some("7.10"));
    assert_eq!(h.tags.get("rack").map(String::as_str), Some("007"));
    assert_eq!(h.tags.get("spare").map(String::as_str), Some("true"));
}

#[test]
fn priority_is_read_as_number_or_p_name() {
    for (text, want) in [("1", 1), ("P2", 2), ("p3", 3), ("\"4\"", 4), ("5", 5)] {
        let yaml = base_with(13, &format!("    priority: {text}"));
        let inv = parse_str(&yaml, "t.yaml").expect(text);
        assert_eq!(inv.systems[0].priority.get(), want, "{text}");
    }
}

#[test]
fn empty_lists_may_be_left_empty() {
    let yaml = lines(&[
        "province: Cà Mau",
        "sites:",
        "  - { name: dc, platform: { kind: none }, storage_tb: 0 }",
        "hosts:",
        "  # none yet",
        "video_endpoints: []",
    ]);
    let inv = parse_str(&yaml, "t.yaml").expect("valid");
    assert!(inv.hosts.is_empty());
}

#[test]
fn an_alias_bomb_is_refused_without_crashing() {
    // Each anchor nests the previous one 250 levels deeper: saphyr clones and drops these
    // trees recursively, which needs the parser's own large stack.
    let mut text = String::new();
    for k in 0..40 {
        let inner = if k == 0 { "x".to_owned() } else { format!("*a{}", k - 1) };
        text.push_str(&format!("k{k}: &a{k} {}{inner}{}\n", "[".repeat(250), "]".repeat(250)));
    }
    let (shown, _) = first_problem(&text);
    assert!(shown.contains("alias expansion exceeded"), "{shown}");
}
