//! Recovery plans and drills through the CLI, on a process testbed (vCenter and OpenStack
//! simulators): plans refused with file:line, versioned and diffed; the two-person rule; a
//! drill that survives its controller being killed at random moments; and a finished drill
//! satisfying the policy packs' `drill` controls.

mod common;

use std::time::{Duration, Instant};

use common::{LogMarks, Testbed, signal, wait_exit};
use nix::sys::signal::Signal;
use rand::{Rng, SeedableRng};
use serde_json::Value;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(tb: &Testbed, name: &str, text: &str) -> String {
    let p = tb.path().join(name);
    std::fs::write(&p, text).expect("write plan");
    p.display().to_string()
}

/// The run id from `drill start`'s first line.
fn run_id(out: &std::process::Output) -> String {
    let text = stdout(out);
    let first = text.lines().next().unwrap_or_default();
    first
        .strip_prefix("run: ")
        .unwrap_or_else(|| panic!("first line is not `run: ID`: {text}\n{}", stderr(out)))
        .trim()
        .into()
}

fn status(tb: &Testbed, run: &str) -> Value {
    tb.json(&["drill", "status", run])
}

fn wait_state(tb: &Testbed, run: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> Value {
    let end = Instant::now() + timeout;
    loop {
        let s = status(tb, run);
        if done(s["state"].as_str().unwrap_or_default()) {
            return s;
        }
        assert!(Instant::now() < end, "run {run} still {} after {timeout:?}: {s}", s["state"]);
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn plans_are_refused_with_their_line_kept_as_versions_and_diffed() {
    let tb = Testbed::up(None);
    let shipped = std::fs::read_to_string(tb.path().join("plans/camau-all.yaml")).expect("the testbed ships camau-all");
    let list = tb.json(&["plans", "list"]);
    assert_eq!(list[0]["name"], "camau-all");
    assert_eq!(list[0]["version"], 1);

    // A cycle and an unknown system, each named at its line.
    let cycle = shipped
        .replace("  - name: email\n    priority: 1\n", "  - name: email\n    priority: 1\n    depends_on: [qlvbdh]\n");
    let f = write(&tb, "cycle.yaml", &cycle);
    let out = tb.mg(&["plans", "apply", &f]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("{f}:")) && err.contains("dependency cycle: email → qlvbdh → email"), "{err}");
    let unknown = shipped.replace("  - name: cong-bao\n", "  - name: cong-bao-2\n");
    let f = write(&tb, "unknown.yaml", &unknown);
    let err = stderr(&tb.mg(&["plans", "apply", &f]));
    assert!(err.contains("unknown system `cong-bao-2`"), "{err}");
    // The DR site's catalog is read: an image it does not have is refused.
    let f = write(&tb, "image.yaml", &shipped.replacen("image: ubuntu-22.04", "image: debian-99", 1));
    let err = stderr(&tb.mg(&["plans", "apply", &f]));
    assert!(err.contains("the DR site has no image `debian-99`"), "{err}");
    assert_eq!(tb.json(&["plans", "list"])[0]["version"], 1, "nothing refused was stored");

    // The same text again changes nothing; a change is the next version, and diff shows it.
    let same = tb.json(&["plans", "apply", &tb.path().join("plans/camau-all.yaml").display().to_string()]);
    assert_eq!((same["version"].as_i64(), same["unchanged"].as_bool()), (Some(1), Some(true)));
    let changed = shipped.replace("ttl: 60", "ttl: 30");
    let f = write(&tb, "v2.yaml", &changed);
    let v2 = tb.json(&["plans", "apply", &f]);
    assert_eq!((v2["version"].as_i64(), v2["unchanged"].as_bool()), (Some(2), Some(false)));
    let diff = tb.mg(&["plans", "diff", "camau-all"]);
    assert_eq!(diff.status.code(), Some(1), "differences exit 1, like diff");
    let text = stdout(&diff);
    assert!(text.contains("--- camau-all v1") && text.contains("+++ camau-all v2"), "{text}");
    assert!(text.contains("-dns: { zone: camau.gov.vn, test_zone: drill.camau.gov.vn, ttl: 60 }"), "{text}");
    assert!(text.contains("+dns: { zone: camau.gov.vn, test_zone: drill.camau.gov.vn, ttl: 30 }"), "{text}");
    let none = tb.mg(&["plans", "diff", "camau-all", &f]);
    assert_eq!(none.status.code(), Some(0), "{}", stdout(&none));
    // DR headroom by the plan's priority groups (e-mail is P1 in the plan, P2 in the inventory).
    let h = tb.json(&["capacity", "headroom", "--plan", "camau-all"]);
    let groups: Vec<(String, Vec<String>)> = h["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            let systems =
                g["systems"].as_array().into_iter().flatten().filter_map(|x| x.as_str().map(String::from)).collect();
            (g["priority"].as_str().unwrap_or_default().to_string(), systems)
        })
        .collect();
    assert_eq!(groups[0], ("P1".to_string(), vec!["dvc-portal".to_string(), "email".into(), "qlvbdh".into()]), "{h}");
    assert_eq!(groups.len(), 4, "{h}");
    let unknown = tb.mg(&["capacity", "headroom", "--plan", "nope"]);
    assert!(!unknown.status.success() && stderr(&unknown).contains("no recovery plan named nope (plans: camau-all)"));
    // Applying is audited, naming the person.
    let audit = audited(&tb, "plan.apply");
    assert!(audit.iter().any(|e| e["actor"] == "admin" && e["target"] == "camau-all"), "{audit:?}");
}

#[test]
fn a_planned_failover_does_nothing_until_a_second_operator_approves() {
    let tb = Testbed::up(None);
    let (op1, op2) = (tb.user_token("operator"), tb.user_token("operator2"));
    let out = tb.mg_as(&op1, &["drill", "start", "camau-all", "--mode", "planned"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = run_id(&out);
    std::thread::sleep(Duration::from_secs(2));
    let s = status(&tb, &run);
    assert_eq!(s["state"], "awaiting_approval");
    assert!(
        s["steps"].as_array().is_some_and(|st| st.iter().all(|x| x["state"] == "pending")),
        "a step ran before approval: {s}"
    );

    let list = tb.mg_as(&op2, &["--json", "approvals", "list"]);
    let list: Value = serde_json::from_slice(&list.stdout).expect("approvals JSON");
    let a = list
        .as_array()
        .and_then(|a| a.iter().find(|a| a["run"] == run.as_str()))
        .expect("a request for the run")
        .clone();
    for field in ["id", "run", "plan", "mode", "requested_by", "expires_at"] {
        assert!(!a[field].is_null(), "approval lacks {field}: {a}");
    }
    assert_eq!((a["requested_by"].as_str(), a["mode"].as_str()), (Some("operator"), Some("planned")));
    assert!(a["dry_run"].as_array().is_some_and(|d| d.iter().any(|s| s["kind"] == "dc.power_off")), "{a}");
    let id = a["id"].to_string();

    let own = tb.mg_as(&op1, &["approvals", "approve", &id]);
    assert!(!own.status.success(), "the operator who started it approved it");
    assert!(stderr(&own).contains("a second, different operator must approve it"), "{}", stderr(&own));
    assert_eq!(status(&tb, &run)["state"], "awaiting_approval");
    // Other roles may not approve at all.
    let planner = tb.mg_as(&tb.user_token("planner"), &["approvals", "approve", &id]);
    assert!(!planner.status.success());

    let ok = tb.mg_as(&op2, &["approvals", "approve", &id]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let s = status(&tb, &run);
    assert_eq!(s["approved_by"], "operator2");
    assert_ne!(s["state"], "awaiting_approval");
    // Stop it before it reaches the DC: an abort ends a planned run without clean-up.
    let abort = tb.mg_as(&op2, &["drill", "abort", &run]);
    assert!(abort.status.success() || status(&tb, &run)["state"] == "failed", "{}", stderr(&abort));
    let end = wait_state(&tb, &run, Duration::from_secs(60), |s| matches!(s, "aborted" | "failed"));
    assert!(end["steps"].as_array().is_some_and(|st| {
        !st.iter()
            .any(|x| x["key"].as_str().is_some_and(|k| k.starts_with("dc.power_off")) && x["state"] == "succeeded")
    }));
    // A request withdrawn before approval leaves the inbox, and cannot be approved after.
    let again = tb.mg_as(&op1, &["drill", "start", "camau-all", "--mode", "planned"]);
    let second = run_id(&again);
    let pending: Value =
        serde_json::from_slice(&tb.mg_as(&op2, &["--json", "approvals", "list"]).stdout).expect("JSON");
    let second_id = pending
        .as_array()
        .and_then(|a| a.iter().find(|a| a["run"] == second.as_str()))
        .map(|a| a["id"].to_string())
        .expect("request");
    assert!(tb.mg_as(&op1, &["drill", "abort", &second]).status.success());
    assert_eq!(status(&tb, &second)["state"], "aborted");
    let pending: Value =
        serde_json::from_slice(&tb.mg_as(&op2, &["--json", "approvals", "list"]).stdout).expect("JSON");
    assert!(!pending.as_array().into_iter().flatten().any(|a| a["run"] == second.as_str()), "{pending}");
    let late = tb.mg_as(&op2, &["approvals", "approve", &second_id]);
    assert!(!late.status.success() && stderr(&late).contains("withdrawn"), "{}", stderr(&late));
    let refused = audited(&tb, "drill.approve.refused");
    assert!(refused.iter().any(|e| e["actor"] == "operator"), "the refused self-approval is audited: {refused:?}");
    assert!(audited(&tb, "drill.approve").iter().any(|e| e["actor"] == "operator2" && e["target"] == run.as_str()));
}

/// A plan the simulators and the testbed's BIND can carry out whole: two workloads booted from
/// an image at DR on the isolated network, their records switched in the test zone, each
/// probed (a TCP port of this machine that is open: the controller's API), then cleaned up and
/// the clean-up verified against OpenStack's inventory and the zone.
fn engine_plan(api_port: &str) -> String {
    format!(
        "name: engine\nnetworks:\n  - {{ dc: VM Network, dr: dr-prod, test: dr-drill }}\n\
         dns: {{ zone: camau.gov.vn, test_zone: drill.camau.gov.vn }}\nsystems:\n\
         \x20 - name: email\n    priority: 1\n    recover:\n      - {{ workload: email-app-01, method: image, image: cirros }}\n    dns: [ {{ name: email }} ]\n\
         \x20   probes:\n      - {{ tcp: '127.0.0.1:{api_port}', expect: {{ open: true }} }}\n\
         \x20 - name: qlvbdh\n    priority: 2\n    depends_on: [email]\n    recover:\n      - {{ workload: qlvbdh-app-01, method: image, image: cirros }}\n    dns: [ {{ name: qlvbdh }} ]\n\
         \x20   probes:\n      - {{ tcp: '127.0.0.1:{api_port}', expect: {{ open: true }} }}\n"
    )
}

#[test]
fn a_drill_killed_with_its_controller_resumes_and_finishes_without_repeating_a_step() {
    let tb = Testbed::up(None);
    let port = tb.api.rsplit(':').next().expect("api port").trim_end_matches('/').to_string();
    let f = write(&tb, "engine.yaml", &engine_plan(&port));
    let applied = tb.mg(&["plans", "apply", &f]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    let op = tb.user_token("operator");
    let dns: std::net::SocketAddr = tb
        .up_output
        .lines()
        .find_map(|l| l.strip_prefix("dns: ")?.split_whitespace().next()?.parse().ok())
        .expect("testbed up names its DNS server");
    let a = |name: &str| {
        plugins::dns::lookup(dns, name, plugins::dns::RecordKind::A, Duration::from_secs(5)).expect("DNS lookup")
    };
    let production = (a("email.camau.gov.vn"), a("qlvbdh.camau.gov.vn"));
    assert!(!production.0.is_empty(), "the production zone has the systems' records");
    // Seeds from the environment so a failing one can be replayed; CI runs a few.
    let seeds: Vec<u64> = std::env::var("MANGROVE_DRILL_KILL_SEEDS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 3]);
    for seed in seeds {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let marks = LogMarks::now(tb.path());
        let out = tb.mg_as(&op, &["drill", "start", "engine", "--mode", "test"]);
        assert!(out.status.success(), "seed {seed}: {}", stderr(&out));
        let run = run_id(&out);
        std::thread::sleep(Duration::from_millis(rng.random_range(100..2500)));
        let marker = common::latest_start(&status(&tb, &run));
        let (pid, argv) = tb.controller().expect("controller process");
        signal(pid, Signal::SIGKILL);
        assert!(wait_exit(pid, Duration::from_secs(10)), "seed {seed}: the controller outlived SIGKILL");
        let restarted = Instant::now();
        tb.relaunch(&argv, &format!("controller-seed-{seed}.log"));
        let resumed = common::resumed_after(|a| tb.mg(a), &run, &marker, restarted);
        let took = resumed.unwrap_or_else(|| panic!("seed {seed}: run {run} did not resume"));
        eprintln!("seed {seed}: run {run} resumed {:.1} s after the controller restarted", took.as_secs_f64());
        assert!(took < Duration::from_secs(5), "seed {seed}: resuming took {took:?}");
        let end = wait_state(&tb, &run, Duration::from_secs(180), |s| !matches!(s, "running" | "paused" | "aborting"));
        assert_eq!(end["state"], "succeeded", "seed {seed}: {end}");
        for st in end["steps"].as_array().into_iter().flatten() {
            assert_eq!(st["state"], "succeeded", "seed {seed}: {st}");
            // A step runs again only if the kill interrupted it; never after it succeeded, so
            // at most one extra attempt.
            assert!(st["attempts"].as_i64().is_some_and(|a| (1..=2).contains(&a)), "seed {seed}: {st}");
        }
        // What OpenStack and BIND themselves saw: one instance per boot, no switch repeated
        // beyond the attempts the run recorded.
        marks.assert_each_step_once(tb.path(), &end);
        // The test zone was switched and is clean again; production never moved.
        let switched = end["steps"].as_array().and_then(|s| s.iter().find(|x| x["key"] == "dns.switch:email")).cloned();
        assert!(switched.is_some_and(|s| s["result"]["zone"] == "drill.camau.gov.vn"), "seed {seed}: {end}");
        assert!(a("email.drill.camau.gov.vn").is_empty() && a("qlvbdh.drill.camau.gov.vn").is_empty());
        assert_eq!(
            (a("email.camau.gov.vn"), a("qlvbdh.camau.gov.vn")),
            production,
            "seed {seed}: production records moved"
        );
        let report = tb.json(&["drill", "report", &run, "--format", "json"]);
        let systems = report["systems"].as_array().cloned().unwrap_or_default();
        assert_eq!(systems.len(), 2);
        assert!(systems.iter().all(|s| s["rto_seconds"].as_f64().is_some()), "{report}");
    }
}

/// A prompt holds its system at the point the plan puts it (here before the DNS switch) until
/// an operator confirms it: `drill status` says what to do and the command to do it, another
/// role may not confirm, and the confirmation is recorded with the person's name.
#[test]
fn a_prompt_holds_the_drill_until_an_operator_confirms_it() {
    let tb = Testbed::up(None);
    let port = tb.api.rsplit(':').next().expect("api port").trim_end_matches('/').to_string();
    let plan = engine_plan(&port).replace("name: engine\n", "name: prompted\n").replacen(
        "    dns: [ { name: email } ]\n",
        "    dns: [ { name: email } ]\n    prompts:\n      - { text_vi: Gọi Văn phòng UBND xác nhận, text_en: Call the People's Committee office }\n",
        1,
    );
    let applied = tb.mg(&["plans", "apply", &write(&tb, "prompted.yaml", &plan)]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    let op = tb.user_token("operator");
    let out = tb.mg_as(&op, &["drill", "start", "prompted", "--mode", "test"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = run_id(&out);
    let key = "prompt:email:0";
    let step = |s: &Value, key: &str| {
        s["steps"].as_array().and_then(|st| st.iter().find(|x| x["key"] == key)).cloned().unwrap_or(Value::Null)
    };
    let end = Instant::now() + Duration::from_secs(120);
    let waiting = loop {
        let s = status(&tb, &run);
        if step(&s, key)["state"] == "waiting" {
            break s;
        }
        assert_eq!(s["state"], "running", "the run ended before its prompt: {s}");
        assert!(Instant::now() < end, "the prompt never came: {s}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(step(&waiting, "dns.switch:email")["state"], "pending", "email switched before its prompt: {waiting}");
    let text = stdout(&tb.mg_as(&op, &["drill", "status", &run]));
    assert!(
        text.contains("waiting for you: Gọi Văn phòng UBND xác nhận")
            && text.contains(&format!("confirm with: mangrove drill confirm {run} {key}")),
        "{text}"
    );
    // Held, not timed out: a few seconds later it still waits.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(step(&status(&tb, &run), "dns.switch:email")["state"], "pending");

    let planner = tb.mg_as(&tb.user_token("planner"), &["drill", "confirm", &run, key]);
    assert!(!planner.status.success(), "a planner confirmed a drill prompt");
    assert_eq!(step(&status(&tb, &run), key)["state"], "waiting");
    let wrong = tb.mg_as(&op, &["drill", "confirm", &run, "prompt:email:7"]);
    assert!(!wrong.status.success() && stderr(&wrong).contains("has no step prompt:email:7"), "{}", stderr(&wrong));

    let ok = tb.mg_as(&op, &["drill", "confirm", &run, key]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains(&format!("confirmed {key} of run {run}")), "{}", stdout(&ok));
    let again = tb.mg_as(&op, &["drill", "confirm", &run, key]);
    assert!(!again.status.success() && stderr(&again).contains("not waiting"), "{}", stderr(&again));
    let done = wait_state(&tb, &run, Duration::from_secs(180), |s| !matches!(s, "running" | "paused" | "aborting"));
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(step(&done, key)["result"]["confirmed_by"], "operator", "{done}");
    assert!(audited(&tb, "drill.confirm").iter().any(|e| e["actor"] == "operator" && e["target"] == run.as_str()));
}

/// A drill that ran to its end is the evidence the packs' `drill` controls read: a host of a
/// system never drilled fails `dr-drill-rehearsed`; after a test drill of that system, the next
/// evaluation passes it and `dr-drill-targets-met`, citing the run, with the record's figures.
#[test]
fn a_finished_drill_turns_the_drill_controls_of_its_systems_hosts_to_pass() {
    let tb = Testbed::up(None);
    let port = tb.api.rsplit(':').next().expect("api port").trim_end_matches('/').to_string();
    let f = write(&tb, "engine.yaml", &engine_plan(&port));
    let applied = tb.mg(&["plans", "apply", &f]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    let sec = tb.user_token("security");
    let assign = tb.mg_as(&sec, &["policy", "assign", "vn-nd85-tcvn11930", "--system", "email"]);
    assert!(assign.status.success(), "{}", stderr(&assign));
    // email is a level-3 system: both drill controls apply to its host.
    let finding = |control: &str| {
        let ev = tb.mg_as(&sec, &["--json", "policy", "evaluate", "--system", "email"]);
        assert!(ev.status.success(), "{}", stderr(&ev));
        let all = tb.json(&["policy", "findings", "--host", "email-app-01"]);
        all.as_array()
            .and_then(|a| a.iter().find(|f| f["control"] == control))
            .cloned()
            .unwrap_or_else(|| panic!("no {control} finding for email-app-01: {all}"))
    };
    let before = finding("dr-drill-rehearsed");
    assert_eq!(before["status"], "fail", "{before}");
    assert_eq!(before["message"], "no finished drill is recorded for email", "{before}");

    let out = tb.mg_as(&tb.user_token("operator"), &["drill", "start", "engine", "--mode", "test"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = run_id(&out);
    let end = wait_state(&tb, &run, Duration::from_secs(180), |s| !matches!(s, "running" | "paused" | "aborting"));
    assert_eq!(end["state"], "succeeded", "{end}");
    let report = tb.json(&["drill", "report", &run, "--format", "json"]);
    let email = report["systems"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "email"))
        .cloned()
        .unwrap_or_else(|| panic!("the record has email: {report}"));
    assert_eq!(email["pass"], true, "{report}");
    // The controller re-evaluates the system's hosts when a drill ends, without being asked.
    let stored = |control: &str| {
        let all = tb.json(&["policy", "findings", "--host", "email-app-01"]);
        all.as_array().and_then(|a| a.iter().find(|f| f["control"] == control)).map(|f| f["status"].clone())
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while stored("dr-drill-rehearsed") != Some(Value::from("pass")) {
        assert!(Instant::now() < deadline, "the drill's end did not re-evaluate email-app-01");
        std::thread::sleep(Duration::from_millis(300));
    }

    let after = finding("dr-drill-rehearsed");
    assert_eq!(after["status"], "pass", "{after}");
    let judged = &after["evidence"]["systems"][0];
    assert_eq!((judged["system"].as_str(), judged["run"].as_str()), (Some("email"), Some(run.as_str())), "{after}");
    assert_eq!((judged["mode"].as_str(), judged["age_days"].as_i64()), (Some("test"), Some(0)), "{after}");
    assert_eq!(after["clause"].as_str().map(|c| c.starts_with("7.1.5.8")), Some(true), "{after}");
    let met = finding("dr-drill-targets-met");
    assert_eq!(met["status"], "pass", "{met}");
    let judged = &met["evidence"]["systems"][0];
    assert_eq!(judged["rto_seconds"], email["rto_seconds"], "the record's own figures: {met}");
    assert_eq!(judged["rto_target_seconds"], email["rto_target_seconds"], "{met}");
}

/// Audit records of `action`.
fn audited(tb: &Testbed, action: &str) -> Vec<Value> {
    let all = tb.api_get("/api/v1/audit?limit=10000", &tb.token);
    all.as_array().into_iter().flatten().filter(|e| e["action"] == action).cloned().collect()
}
