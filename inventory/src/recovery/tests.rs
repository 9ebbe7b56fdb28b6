use std::collections::BTreeSet;

use super::*;
use crate::model::Priority;

fn inventory() -> crate::Inventory {
    crate::parse_str(include_str!("../../examples/camau.yaml"), "camau.yaml").expect("the example inventory loads")
}

fn catalog() -> DrCatalog {
    let set = |names: &[&str]| Some(names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
    DrCatalog {
        images: set(&["mangrove-host", "ubuntu-22.04"]),
        networks: set(&["dr-prod", "dr-drill"]),
        ..DrCatalog::default()
    }
}

const GOOD: &str = "\
name: two
networks:
  - { dc: dc-servers, dr: dr-prod, test: dr-drill }
dns: { zone: camau.gov.vn, test_zone: drill.camau.gov.vn }
systems:
  - name: email
    recover:
      - { workload: email-app-01, method: restore, image: mangrove-host }
    dns: [ { name: mail } ]
    probes:
      - { http: 'http://mail/', expect: { status: 200 } }
  - name: qlvbdh
    depends_on: [email]
    priority: 2
    recover:
      - { workload: qlvbdh-app-01, method: image, image: ubuntu-22.04 }
    probes:
      - { tcp: 'qlvbdh:443', expect: { open: true }, timeout: 2m }
    prompts:
      - { text_vi: Gọi cho Văn phòng UBND xác nhận }
";

fn refusal(text: &str) -> String {
    parse_plan(text, "plan.yaml", &inventory(), &catalog()).expect_err("refused").to_string()
}

#[test]
fn a_good_plan_reads_with_its_groups_in_dependency_order() {
    let inv = inventory();
    let plan = parse_plan(GOOD, "plan.yaml", &inv, &catalog()).expect("valid");
    let groups = plan.groups(&inv);
    let names: Vec<(Priority, Vec<&str>)> =
        groups.iter().map(|(p, s)| (*p, s.iter().map(|s| s.name.as_str()).collect())).collect();
    // qlvbdh is P1 in the inventory; the plan puts it in P2, with email, after email.
    assert_eq!(names, vec![(Priority::P2, vec!["email", "qlvbdh"])]);
    assert_eq!(plan.systems[1].probes[0].timeout(), std::time::Duration::from_secs(120));
    assert_eq!(plan.systems[1].prompts[0].at, PromptPoint::BeforeDns);
    assert_eq!(plan.dns.as_ref().map(|d| d.ttl), Some(60));
}

#[test]
fn dependants_in_a_group_come_after_what_they_depend_on_whatever_the_file_order() {
    let text = GOOD.replace("  - name: email\n", "  - name: email\n    depends_on: []\n");
    let inv = inventory();
    let swapped = {
        let plan = parse_plan(&text, "p", &inv, &catalog()).expect("valid");
        let mut p = plan.clone();
        p.systems.reverse();
        p
    };
    let order: Vec<&str> = swapped.groups(&inv)[0].1.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(order, vec!["email", "qlvbdh"]);
}

#[test]
fn an_unknown_system_is_refused_at_its_line() {
    let err = refusal(&GOOD.replace("  - name: email\n", "  - name: emial\n"));
    assert!(err.starts_with("plan.yaml:6:"), "{err}");
    assert!(err.contains("unknown system `emial`"), "{err}");
}

#[test]
fn a_dependency_cycle_is_refused_naming_the_cycle() {
    let text = GOOD.replace("  - name: email\n", "  - name: email\n    depends_on: [qlvbdh]\n");
    let err = refusal(&text);
    assert!(err.contains("dependency cycle: email → qlvbdh → email"), "{err}");
    assert!(err.starts_with("plan.yaml:7:"), "{err}");
}

#[test]
fn a_dependency_on_a_later_group_or_outside_the_plan_is_refused() {
    let later = GOOD
        .replace("    priority: 2\n", "    priority: 1\n")
        .replace("  - name: email\n", "  - name: email\n    priority: 3\n");
    assert!(
        refusal(&later).contains("`qlvbdh` (P1) depends on `email`, which is recovered later (P3)"),
        "{}",
        refusal(&later)
    );
    let outside = GOOD.replace("depends_on: [email]", "depends_on: [cbccvc]");
    assert!(refusal(&outside).contains("depends on `cbccvc`, which this plan does not recover"));
}

#[test]
fn a_missing_dr_image_or_network_is_refused() {
    let err = refusal(&GOOD.replace("image: mangrove-host", "image: debian-13"));
    assert!(err.contains("the DR site has no image `debian-13` (known: mangrove-host, ubuntu-22.04)"), "{err}");
    assert!(err.starts_with("plan.yaml:8:"), "{err}");
    let err = refusal(&GOOD.replace("test: dr-drill", "test: dr-lab"));
    assert!(err.contains("no network `dr-lab`"), "{err}");
}

#[test]
fn an_unknown_catalog_is_not_held_against_the_plan() {
    let plan =
        parse_plan(&GOOD.replace("image: mangrove-host", "image: debian-13"), "p", &inventory(), &DrCatalog::default());
    assert!(plan.is_ok(), "{plan:?}");
}

#[test]
fn a_probe_without_an_expectation_is_refused() {
    let err = refusal(&GOOD.replace("{ http: 'http://mail/', expect: { status: 200 } }", "{ http: 'http://mail/' }"));
    assert!(err.contains("a probe without an expectation proves nothing"), "{err}");
    assert!(err.starts_with("plan.yaml:11:"), "{err}");
    let err = refusal(&GOOD.replace("expect: { open: true }, ", ""));
    assert!(err.contains("expect: { open: true }"), "{err}");
}

#[test]
fn workloads_must_belong_to_their_system_and_appear_once() {
    let err = refusal(&GOOD.replace("workload: email-app-01", "workload: cbccvc-app-01"));
    assert!(err.contains("`cbccvc-app-01` is not a workload of system `email` (known: email-app-01)"), "{err}");
    let mut c = catalog();
    c.discovered_vms.insert("email".into(), ["email-db-01".to_string()].into());
    let text = GOOD.replace("workload: email-app-01", "workload: email-db-01");
    assert!(parse_plan(&text, "p", &inventory(), &c).is_ok());
}

#[test]
fn other_mistakes_are_each_named() {
    let cases = [
        (GOOD.replace("test: dr-drill", "test: dr-prod"), "the test network must be isolated"),
        (GOOD.replace("test_zone: drill.camau.gov.vn", "test_zone: camau.gov.vn"), "the test zone must differ"),
        (GOOD.replace("dns: { zone: camau.gov.vn, test_zone: drill.camau.gov.vn }\n", ""), "the plan has no `dns:"),
        (GOOD.replace("{ name: mail }", "{ name: 'mail_x' }"), "is not a record name"),
        (GOOD.replace("'qlvbdh:443'", "'qlvbdh'"), "is not HOST:PORT"),
        (GOOD.replace("http: 'http://mail/'", "http: 'ftp://mail/'"), "is not an http:// or https:// URL"),
        (GOOD.replace("method: image", "method: clone"), "unknown value `clone`; expected one of: restore, image"),
        (GOOD.replace("name: two", "name: Two Words"), "is not a valid name"),
        (GOOD.replace("  - name: qlvbdh\n", "  - name: email\n"), "already in this plan"),
        (GOOD.replace("    probes:\n      - { http: 'http://mail/', expect: { status: 200 } }\n", ""), "no probe"),
    ];
    for (text, want) in cases {
        let err = refusal(&text);
        assert!(err.contains(want), "want {want:?} in {err}");
    }
}

#[test]
fn a_workload_must_name_its_network_when_the_plan_maps_several() {
    let text = GOOD.replace(
        "  - { dc: dc-servers, dr: dr-prod, test: dr-drill }\n",
        "  - { dc: dc-servers, dr: dr-prod, test: dr-drill }\n  - { dc: dc-dmz, dr: dr-prod, test: dr-drill }\n",
    );
    let err = refusal(&text);
    assert!(err.contains("name the workload's DC network: the plan maps 2 networks"), "{err}");
}

#[test]
fn garbage_never_panics() {
    for text in ["", "- a", "name: [", "systems: 3", "name: x\nsystems:\n  - recover: {}\n", "\u{0}"] {
        let _ = parse_plan(text, "p", &inventory(), &catalog());
    }
}

#[test]
fn the_shipped_camau_all_plan_reads_against_the_example_inventory() {
    let inv = inventory();
    let text = include_str!("../../examples/camau-all.yaml");
    let mut c = catalog();
    c.images = Some(["ubuntu-22.04".to_string()].into());
    let plan = parse_plan(text, "camau-all.yaml", &inv, &c).expect("camau-all is valid");
    let groups: Vec<(u8, Vec<&str>)> =
        plan.groups(&inv).into_iter().map(|(p, s)| (p.get(), s.iter().map(|s| s.name.as_str()).collect())).collect();
    assert_eq!(
        groups,
        vec![
            (1, vec!["email", "qlvbdh", "dvc-portal"]),
            (2, vec!["web-portal"]),
            (3, vec!["cbccvc"]),
            (4, vec!["cong-bao"]),
        ]
    );
    assert_eq!(plan.systems.len(), inv.systems.len(), "every basic system is in the plan");
}

#[test]
fn a_task_runs_on_a_restored_workload_after_it_is_up_and_says_what_it_runs() {
    let ok = GOOD.replace(
        "    probes:\n      - { http: 'http://mail/', expect: { status: 200 } }\n",
        "    probes:\n      - { http: 'http://mail/', expect: { status: 200 } }\n    tasks:\n      - { command: [systemctl, restart, postfix], timeout: 90s }\n",
    );
    let plan = parse_plan(&ok, "p", &inventory(), &catalog()).expect("valid");
    let t = &plan.systems[0].tasks[0];
    assert_eq!((t.at, t.timeout().as_secs(), t.workload.as_deref()), (PromptPoint::BeforeDns, 90, None));

    let empty = refusal(&ok.replace("[systemctl, restart, postfix]", "[]"));
    assert!(empty.contains("a task needs a command"), "{empty}");
    let early = refusal(&ok.replace("timeout: 90s }", "timeout: 90s, at: start }"));
    assert!(early.contains("`start` is before the machine is up"), "{early}");
    let elsewhere = refusal(&ok.replace("{ command:", "{ workload: qlvbdh-app-01, command:"));
    assert!(elsewhere.contains("`qlvbdh-app-01` is not recovered by this system"), "{elsewhere}");
    assert!(elsewhere.starts_with("plan.yaml:1"), "refused at its line: {elsewhere}");
    // qlvbdh comes back from an image: no agent of ours to run anything.
    let imaged = GOOD.replace(
        "      - { text_vi: Gọi cho Văn phòng UBND xác nhận }\n",
        "      - { text_vi: Gọi cho Văn phòng UBND xác nhận }\n    tasks:\n      - { command: [true] }\n",
    );
    assert!(refusal(&imaged).contains("comes back from an image"), "{}", refusal(&imaged));
}

#[test]
fn an_image_workload_may_ask_for_a_refresh_schedule_before_its_first_image_exists() {
    let text = GOOD.replace(
        "method: image, image: ubuntu-22.04 }",
        "method: image, image: qlvbdh-dr, refresh: { schedule: '0 2 * * *' } }",
    );
    let plan = parse_plan(&text, "plan.yaml", &inventory(), &catalog()).expect("valid");
    let w = &plan.systems[1].recover[0];
    assert_eq!(w.refresh.as_ref().map(|r| r.schedule.as_str()), Some("0 2 * * *"));
    // Without the refresh the missing image is still refused.
    let missing = GOOD.replace("image: ubuntu-22.04 }", "image: qlvbdh-dr }");
    assert!(refusal(&missing).contains("no image `qlvbdh-dr`"));
}

#[test]
fn invalid_refresh_blocks_are_refused_at_their_line() {
    let cases = [
        (
            GOOD.replace(
                "method: restore, image: mangrove-host }",
                "method: restore, image: mangrove-host, refresh: { schedule: '0 2 * * *' } }",
            ),
            "plan.yaml:8:",
            "keeps an `image` workload's image fresh",
        ),
        (
            GOOD.replace("image: ubuntu-22.04 }", "image: ubuntu-22.04, refresh: { schedule: 'nightly' } }"),
            "plan.yaml:16:",
            "`nightly` is not a cron schedule",
        ),
        (
            GOOD.replace("image: ubuntu-22.04 }", "image: ubuntu-22.04, refresh: { schedule: '0 2 * *' } }"),
            "plan.yaml:16:",
            "is not a cron schedule",
        ),
        (
            GOOD.replace("image: ubuntu-22.04 }", "image: ubuntu-22.04, refresh: { every: 1h } }"),
            "plan.yaml:16:",
            "every",
        ),
        (GOOD.replace("image: ubuntu-22.04 }", "image: ubuntu-22.04, refresh: {} }"), "plan.yaml:16:", "schedule"),
    ];
    for (text, at, want) in cases {
        let err = refusal(&text);
        assert!(err.contains(at) && err.contains(want), "want {at} and {want:?} in {err}");
    }
}
