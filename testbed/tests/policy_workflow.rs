//! The security staff's workflow on a process testbed (audit mode): assign a pack to a
//! system, evaluate and wait for it, read findings that cite their framework and clause, waive
//! with and without an expiry in the future, refuse a waiver without a reason, see the score,
//! and preview enforcement without changing anything. (Enforcement itself changes files on
//! the host, so it is tested on container hosts, not here where agents share this machine.)

mod common;

use common::Testbed;
use serde_json::Value;

fn json_as(tb: &Testbed, token: &str, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = tb.mg_as(token, &a);
    assert!(out.status.success(), "mangrove {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn assign_evaluate_waive_and_preview() {
    let tb = Testbed::up(Some(common::SMALL_INVENTORY));
    let sec = tb.user_token("security");

    // Only security staff assign.
    let planner = tb.mg_as(&tb.user_token("planner"), &["policy", "assign", "vn-nd85-tcvn11930", "--system", "web"]);
    assert!(!planner.status.success());
    let a = json_as(&tb, &sec, &["policy", "assign", "vn-nd85-tcvn11930", "--system", "web"]);
    assert_eq!(a["assignment"]["mode"], "audit");
    assert_eq!(a["hosts"], serde_json::json!(["web-app-01"]));

    // Evaluation waits for fresh facts with the collectors the pack needs, then answers.
    let ev = json_as(&tb, &sec, &["policy", "evaluate", "--system", "web"]);
    let host = &ev["hosts"][0];
    assert_eq!((host["host"].as_str(), host["level"].as_u64()), (Some("web-app-01"), Some(2)));
    assert!(host["findings"].as_u64().unwrap_or(0) >= 20, "{ev}");
    let facts = tb.show("web-app-01")["facts"].clone();
    assert!(facts["security"]["sshd"].is_object(), "the agent collected what the pack needs: {facts}");

    let findings = tb.json(&["policy", "findings", "--host", "web-app-01"]);
    let list = findings.as_array().cloned().unwrap_or_default();
    assert!(
        list.iter()
            .all(|f| f["framework"] == "vn-nd85-tcvn11930" && f["clause"].as_str().is_some_and(|c| !c.is_empty()))
    );
    assert!(list.iter().any(|f| f["control"] == "ssh-root-login"));
    let failing: Vec<String> = list
        .iter()
        .filter(|f| f["status"] == "fail")
        .filter_map(|f| f["control"].as_str().map(str::to_string))
        .collect();
    assert!(failing.len() >= 2, "this machine fails some controls: {failing:?}");

    // A waiver that expired hides nothing; one that runs into the future does; none without a reason.
    let status_of = |control: &str| {
        tb.json(&["policy", "findings", "--host", "web-app-01"])
            .as_array()
            .and_then(|a| a.iter().find(|f| f["control"] == control).map(|f| f["status"].clone()))
            .unwrap_or(Value::Null)
    };
    let past = json_as(
        &tb,
        &sec,
        &["policy", "waive", &failing[0], "--host", "web-app-01", "--until", "2020-01-01", "--reason", "expired"],
    );
    assert_eq!(past["already_expired"], true);
    assert_eq!(status_of(&failing[0]), "fail");
    json_as(
        &tb,
        &sec,
        &["policy", "waive", &failing[1], "--system", "web", "--until", "2099-12-31", "--reason", "vendor fix due"],
    );
    assert_eq!(status_of(&failing[1]), "waived");
    let no_reason = tb.mg_as(
        &sec,
        &["policy", "waive", &failing[0], "--host", "web-app-01", "--until", "2099-12-31", "--reason", " "],
    );
    assert!(!no_reason.status.success());
    assert!(String::from_utf8_lossy(&no_reason.stderr).contains("needs a reason"));

    // The score, the metrics and the audit trail.
    let systems = tb.json(&["systems", "list"]);
    let web = systems.as_array().and_then(|a| a.iter().find(|s| s["name"] == "web")).cloned().unwrap_or_default();
    let score = web["score"].as_f64().expect("a score once evaluated");
    assert!((0.0..=100.0).contains(&score));
    let metrics = tb.metrics();
    assert!(metrics.contains("mangrove_compliance_score{system=\"web\"}"), "{metrics}");
    assert!(metrics.contains("mangrove_compliance_controls{system=\"web\",level=\"2\",status=\"fail\"}"));

    // Scores by system, level and site.
    let scores = tb.json(&["compliance", "scores"]);
    assert!(
        scores["sites"].as_array().is_some_and(|s| s.iter().any(|x| x["site"] == "dc" && x["score"].is_number())),
        "{scores}"
    );
    assert!(scores["levels"].as_array().is_some_and(|l| l.iter().any(|x| x["level"] == 2)), "{scores}");

    // The report for inspectors, in both languages and three formats, and the evidence bundle.
    let report = |fmt: &str, lang: &str| {
        let out = tb.mg_as(&sec, &["compliance", "report", "--system", "web", "--format", fmt, "--lang", lang]);
        assert!(out.status.success(), "report {fmt} {lang}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let j: Value = serde_json::from_str(&report("json", "vi")).expect("JSON report");
    let sys = &j["systems"][0];
    assert_eq!((sys["name"].as_str(), sys["level"].as_u64()), (Some("web"), Some(2)));
    assert!(sys["score"].is_number());
    let fs = sys["findings"].as_array().cloned().unwrap_or_default();
    assert!(!fs.is_empty());
    for f in &fs {
        for k in ["control", "host", "status", "framework", "clause", "evidence", "since"] {
            assert!(f.get(k).is_some(), "finding without {k}: {f}");
        }
        assert!(["pass", "fail", "waived", "error"].contains(&f["status"].as_str().unwrap_or("")), "{f}");
    }
    assert!(fs.iter().any(|f| f["status"] == "waived" && f["waiver"]["reason"] == "vendor fix due"));
    let vi = report("html", "vi");
    assert!(vi.contains("lang=\"vi\"") && vi.contains("Yêu cầu kỹ thuật") && vi.contains("vn-nd85-tcvn11930"));
    let en = report("html", "en");
    assert!(en.contains("lang=\"en\"") && en.contains("Technical requirements"));
    assert!(report("csv", "vi").starts_with('\u{feff}'), "CSV carries a BOM for spreadsheets");
    let zip = tb.path().join("evidence.zip");
    let out = tb.mg_as(&sec, &["compliance", "evidence", "--system", "web", "--out", &zip.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&zip).expect("zip written");
    assert!(bytes.starts_with(b"PK"), "a zip file");
    let planner = tb.mg_as(&tb.user_token("planner"), &["compliance", "report", "--format", "json"]);
    assert!(!planner.status.success(), "planners do not read compliance reports");

    // Enforce, previewed: the tasks it would run, and nothing run or stored.
    let dry = json_as(
        &tb,
        &sec,
        &["policy", "assign", "vn-nd85-tcvn11930", "--system", "web", "--mode", "enforce", "--dry-run"],
    );
    assert_eq!(dry["dry_run"], true);
    assert!(dry["remediations"].as_array().is_some_and(|r| !r.is_empty()), "{dry}");
    let assignments = tb.api_get("/api/v1/policy/assignments", &tb.token);
    assert_eq!(assignments[0]["mode"], "audit", "a dry run changes nothing");
    let audit = tb.api_get("/api/v1/audit?limit=200", &tb.token).to_string();
    assert!(audit.contains("policy.assign") && audit.contains("policy.waive"));
    assert!(!audit.contains("task.create"), "a dry run starts no task");
}
