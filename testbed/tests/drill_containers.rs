//! The testbed drill, end to end and real: in the container testbed, `drill start camau-all
//! --mode test --follow` boots a DR container per system on the isolated drill network, whose
//! agent enrolls and restores the system's verified backup with restic; the test zone of the
//! testbed's BIND is switched to it; each probe fetches the system's page through that zone;
//! everything is removed again and the removal verified. Production records and the DC
//! containers are untouched.

mod common;

use std::process::Command;

use common::ContainerTestbed;

/// The running containers of this testbed only: the tests run side by side, and the other
/// testbed's containers come and go meanwhile.
fn containers(tb: &ContainerTestbed) -> std::collections::BTreeSet<String> {
    let label = format!("label={}={}", testbed::containers::LABEL, tb.dir.path().display());
    let out =
        Command::new("docker").args(["ps", "--filter", &label, "--format", "{{.Names}}"]).output().expect("docker ps");
    assert!(out.status.success(), "docker ps failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn a_test_drill_recovers_the_six_systems_at_dr_and_leaves_nothing_behind() {
    let tb = ContainerTestbed::up(None, 22);
    let up = std::fs::read_to_string(tb.dir.path().join("testbed.toml")).expect("testbed.toml");
    assert!(up.contains("[dns]"), "the testbed runs BIND: {up}");
    let before = containers(&tb);
    assert!(!before.is_empty(), "the testbed's own containers are labelled");
    let check = tb.mg(&["drill", "check", "camau-all", "--mode", "test"]);
    assert!(
        check.status.success(),
        "pre-flight: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let started = std::time::Instant::now();
    let out = tb.mg(&["drill", "start", "camau-all", "--mode", "test", "--follow"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let run = text.lines().next().and_then(|l| l.strip_prefix("run: ")).expect("`run: ID` first").trim().to_string();
    eprintln!("test drill {run} took {:.1} s", started.elapsed().as_secs_f64());

    let report = tb.json(&["drill", "report", &run, "--format", "json"]);
    assert_eq!(report["result"], "succeeded", "{report}");
    let systems = report["systems"].as_array().cloned().unwrap_or_default();
    assert_eq!(systems.len(), 6, "{report}");
    for s in &systems {
        assert!(s["rto_seconds"].as_f64().is_some() && s["rpo_seconds"].as_f64().is_some(), "{s}");
        assert_eq!(s["pass"], true, "{s}");
    }
    // Each probe saw the system's own page, restored from its backup, through the test zone.
    let steps = report["steps"].as_array().cloned().unwrap_or_default();
    let probe = |system: &str| steps.iter().find(|s| s["key"] == format!("probe:{system}:0")).cloned().expect("probe");
    for name in ["qlvbdh", "dvc-portal", "email", "web-portal", "cong-bao", "cbccvc"] {
        let p = probe(name);
        assert_eq!(p["result"], "succeeded", "{p}");
        assert!(p["output"]["detail"].as_str().is_some_and(|d| d.contains("status 200")), "{p}");
        let switch = steps.iter().find(|s| s["key"] == format!("dns.switch:{name}")).expect("switch");
        assert_eq!(switch["output"]["zone"], "drill.camau.gov.vn", "production zone touched: {switch}");
        let restore = steps.iter().find(|s| s["key"] == format!("dr.restore:{name}-app-01")).expect("restore");
        assert!(restore["output"]["snapshot"].as_str().is_some(), "{restore}");
    }
    // The plan's task ran on qlvbdh's instance through its agent before the switch.
    let task = steps.iter().find(|s| s["key"] == "agent.task:qlvbdh:0").expect("the plan's task");
    assert_eq!((task["result"].as_str(), task["output"]["exit_code"].as_i64()), (Some("succeeded"), Some(0)), "{task}");
    // Nothing left: no container of the run, the clean-up verified by re-inventory.
    let after = containers(&tb);
    let extra: Vec<&String> = after.difference(&before).collect();
    assert!(extra.is_empty(), "the drill left containers: {extra:?}");
    assert!(steps.iter().any(|s| s["key"] == "cleanup.verify" && s["result"] == "succeeded"));
    // The HTML record renders in Vietnamese.
    let html = tb.mg(&["drill", "report", &run, "--format", "html", "--lang", "vi"]);
    let page = String::from_utf8_lossy(&html.stdout);
    assert!(page.contains("Biên bản diễn tập khôi phục thảm họa") && page.contains("qlvbdh"), "{page}");
}

#[test]
fn with_the_dc_cut_off_a_disaster_run_recovers_the_systems_from_their_newest_verified_backups() {
    // The controller lives at DR, where losing the DC cannot take it.
    let tb = ContainerTestbed::up_with(None, 22, &["--controller-site", "dr"]);
    let d = tb.dir_arg();
    let cut = tb.mg(&["testbed", "fault", "partition", "dc", "dr", "--dir", &d]);
    assert!(cut.status.success(), "{}", String::from_utf8_lossy(&cut.stderr));
    // Each system's newest backup run: its restore points (one per repository).
    let newest: std::collections::HashMap<String, Vec<String>> = ["qlvbdh", "email"]
        .iter()
        .map(|s| {
            let points = tb.json(&["backup", "list", s]);
            let points = points.as_array().cloned().unwrap_or_default();
            let run = points.first().map(|p| p["run"].clone()).expect("a restore point");
            let ids =
                points.iter().filter(|p| p["run"] == run).filter_map(|p| p["id"].as_str().map(String::from)).collect();
            (s.to_string(), ids)
        })
        .collect();

    let out = tb.mg_as_user("operator", &["drill", "start", "camau-all", "--mode", "disaster"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = text.lines().next().and_then(|l| l.strip_prefix("run: ")).expect("`run: ID` first").trim().to_string();
    let list = tb.mg_as_user("operator2", &["--json", "approvals", "list"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("approvals");
    let id = list
        .as_array()
        .and_then(|a| a.iter().find(|a| a["run"] == run.as_str()))
        .map(|a| a["id"].to_string())
        .expect("request");
    let ok = tb.mg_as_user("operator2", &["approvals", "approve", &id]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let follow = tb.mg_as_user("operator", &["drill", "follow", &run]);
    assert!(
        follow.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&follow.stdout),
        String::from_utf8_lossy(&follow.stderr)
    );

    let report = tb.json(&["drill", "report", &run, "--format", "json"]);
    assert_eq!((report["result"].as_str(), report["mode"].as_str()), (Some("succeeded"), Some("disaster")), "{report}");
    let steps = report["steps"].as_array().cloned().unwrap_or_default();
    assert!(
        !steps.iter().any(|s| s["kind"] == "dc.power_off" || s["kind"] == "backup.final"),
        "a DC step in disaster mode"
    );
    for (system, snapshots) in &newest {
        let restore = steps.iter().find(|s| s["key"] == format!("dr.restore:{system}-app-01")).expect("restore");
        let used = restore["output"]["snapshot"].as_str().unwrap_or_default().to_string();
        assert!(snapshots.contains(&used), "{system}: restored {used}, not from the newest backup {snapshots:?}");
        let switch = steps.iter().find(|s| s["key"] == format!("dns.switch:{system}")).expect("switch");
        assert_eq!(switch["output"]["zone"], "camau.gov.vn", "{switch}");
    }
    assert!(
        report["systems"].as_array().is_some_and(|s| s.len() == 6 && s.iter().all(|x| x["pass"] == true)),
        "{report}"
    );

    // The DC is back. What changed at DR while the systems ran there must come home: a file
    // written into qlvbdh's served data at its DR instance.
    let heal = tb.mg(&["testbed", "fault", "heal", "--dir", &d]);
    assert!(heal.status.success(), "{}", String::from_utf8_lossy(&heal.stderr));
    let step = |key: &str| steps.iter().find(|s| s["key"] == key).cloned().unwrap_or_else(|| panic!("no step {key}"));
    let prefix = testbed::containers::prefix(tb.dir.path());
    let instance = |wl: &str| {
        format!("os-{}.{prefix}", step(&format!("dr.boot:{wl}"))["output"]["instance"].as_str().expect("instance id"))
    };
    let exec = |container: &str, script: &str| {
        let out = Command::new("docker").args(["exec", container, "sh", "-c", script]).output().expect("docker exec");
        assert!(out.status.success(), "{container}: {script}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    exec(&instance("qlvbdh-app-01"), "echo written-at-dr > /var/lib/mangrove/recovered/srv/qlvbdh/at-dr.txt");
    // The DC machines' agents reconnect once the path is back.
    let dc_up = |hs: &[serde_json::Value]| {
        let dc: Vec<&serde_json::Value> =
            hs.iter().filter(|h| h["name"].as_str().is_some_and(|n| n.ends_with("-app-01"))).collect();
        dc.len() == 6 && dc.iter().all(|h| h["state"] == "connected")
    };
    assert!(tb.wait(std::time::Duration::from_secs(120), dc_up).is_some(), "the DC machines did not reconnect");
    let dr_instances: Vec<String> = ["qlvbdh", "dvc-portal", "email", "web-portal", "cong-bao", "cbccvc"]
        .iter()
        .map(|s| instance(&format!("{s}-app-01")))
        .collect();

    let out = tb.mg_as_user("operator", &["drill", "start", "camau-all", "--mode", "failback"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let back = text.lines().next().and_then(|l| l.strip_prefix("run: ")).expect("`run: ID` first").trim().to_string();
    let list = tb.mg_as_user("operator2", &["--json", "approvals", "list"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("approvals");
    let id = list
        .as_array()
        .and_then(|a| a.iter().find(|a| a["run"] == back.as_str()))
        .map(|a| a["id"].to_string())
        .expect("the failback waits for a second operator");
    let ok = tb.mg_as_user("operator2", &["approvals", "approve", &id]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let follow = tb.mg_as_user("operator", &["drill", "follow", &back]);
    assert!(
        follow.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&follow.stdout),
        String::from_utf8_lossy(&follow.stderr)
    );
    let fb = tb.json(&["drill", "report", &back, "--format", "json"]);
    assert_eq!((fb["result"].as_str(), fb["mode"].as_str()), (Some("succeeded"), Some("failback")), "{fb}");
    let fb_steps = fb["steps"].as_array().cloned().unwrap_or_default();
    // Home again: the DC machine serves what was written at DR, the production records hold
    // what they held before the disaster run, the DR instances are gone.
    let task = fb_steps.iter().find(|s| s["key"] == "agent.task:qlvbdh:0").expect("the plan's task");
    assert_eq!(task["output"]["host"], "qlvbdh-app-01", "in a failback the task runs at the DC: {task}");
    let dc = testbed::containers::container_name(tb.dir.path(), "qlvbdh-app-01");
    assert_eq!(exec(&dc, "cat /srv/qlvbdh/at-dr.txt").trim(), "written-at-dr");
    let before = step("precheck.dns")["output"]["records"].clone();
    for system in ["qlvbdh", "email"] {
        let switch = fb_steps.iter().find(|s| s["key"] == format!("dns.switch:{system}")).expect("switch back");
        let written = switch["output"]["records"][0].as_str().unwrap_or_default().to_string();
        let fqdn = format!("{system}.camau.gov.vn A");
        let held = before[&fqdn][0].as_str().unwrap_or_else(|| panic!("no {fqdn} before the disaster run: {before}"));
        assert_eq!(written, format!("{fqdn} {held}"), "{switch}");
    }
    assert!(fb["systems"].as_array().is_some_and(|s| s.len() == 6 && s.iter().all(|x| x["pass"] == true)), "{fb}");
    let running = containers(&tb);
    for i in &dr_instances {
        assert!(!running.contains(i), "{i} is still running after the failback");
    }
}

/// The controller's container killed (SIGKILL to everything in it) at a random moment of a
/// test drill and started again: the run resumes within 5 s and finishes, no step that had
/// succeeded runs again, and OpenStack's and BIND's own logs show each instance created once
/// and no DNS change applied more often than its step was attempted. Seeds from
/// `MANGROVE_DRILL_CONTAINER_KILL_SEEDS` (default two).
#[test]
fn a_drill_whose_controller_container_is_killed_resumes_and_finishes() {
    use rand::{Rng, SeedableRng};
    let tb = ContainerTestbed::up(None, 22);
    let controller = format!("{}-controller", testbed::containers::prefix(tb.dir.path()));
    let seeds: Vec<u64> = std::env::var("MANGROVE_DRILL_CONTAINER_KILL_SEEDS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![11, 12]);
    let docker = |args: &[&str]| {
        let out = Command::new("docker").args(args).output().expect("docker");
        assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    for seed in seeds {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let marks = common::LogMarks::now(tb.dir.path());
        let out = tb.mg_as_user("operator", &["drill", "start", "camau-all", "--mode", "test"]);
        assert!(out.status.success(), "seed {seed}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let run =
            text.lines().next().and_then(|l| l.strip_prefix("run: ")).expect("`run: ID` first").trim().to_string();
        // Somewhere in the drill (about 25 s): booting, restoring, switching or probing.
        std::thread::sleep(std::time::Duration::from_millis(rng.random_range(1_000..20_000)));
        let marker = common::latest_start(&tb.json(&["drill", "status", &run]));
        docker(&["kill", "--signal", "KILL", &controller]);
        docker(&["start", &controller]);
        let restarted = std::time::Instant::now();
        let took = common::resumed_after(|a| tb.mg(a), &run, &marker, restarted)
            .unwrap_or_else(|| panic!("seed {seed}: run {run} did not resume"));
        eprintln!(
            "seed {seed}: run {run} resumed {:.1} s after the controller's container restarted",
            took.as_secs_f64()
        );
        assert!(took < std::time::Duration::from_secs(5), "seed {seed}: resuming took {took:?}");
        let end = wait_ended(&tb, &run, std::time::Duration::from_secs(300));
        assert_eq!(end["state"], "succeeded", "seed {seed}: {end}");
        for st in end["steps"].as_array().into_iter().flatten() {
            assert_eq!(st["state"], "succeeded", "seed {seed}: {st}");
            assert!(st["attempts"].as_i64().is_some_and(|a| (1..=2).contains(&a)), "seed {seed}: {st}");
        }
        marks.assert_each_step_once(tb.dir.path(), &end);
    }
}

/// The run's status once it is no longer running, paused or aborting.
fn wait_ended(tb: &ContainerTestbed, run: &str, timeout: std::time::Duration) -> serde_json::Value {
    let end = std::time::Instant::now() + timeout;
    loop {
        let s = tb.json(&["drill", "status", run]);
        if !matches!(s["state"].as_str(), Some("running" | "paused" | "aborting")) {
            return s;
        }
        assert!(std::time::Instant::now() < end, "run {run} still {} after {timeout:?}", s["state"]);
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
