//! Endpoint protection in the Cà Mau testbed: the controller's roll-up of the KSC simulator
//! equals the simulator's own truth (2,753 computers, every status and reason, every
//! agency), read in pages of 100; the list agrees with the summary; the metric is exported;
//! and each KSC fault (error envelope, malformed JSON, 403 after the session ended,
//! unreachable) gives a clear error while the summary keeps the last known data with its age.

mod common;

use common::Testbed;
use serde_json::Value;

fn truth(tb: &Testbed) -> Value {
    let path = tb.path().join("ksc").join("state").join("ksc-truth.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the simulator's truth file")).expect("truth JSON")
}

fn count(tb: &Testbed, args: &[&str]) -> usize {
    tb.json(args).as_array().map(Vec::len).expect("a JSON array")
}

#[test]
fn endpoints_summary_equals_the_ksc_simulators_truth_and_survives_every_ksc_fault() {
    let tb = Testbed::up(None);
    assert!(tb.up_output.contains("(2753 computers;"), "ready only with the KSC roll-up in: {}", tb.up_output);
    let t = truth(&tb);
    let s = tb.json(&["endpoints", "summary"]);
    assert_eq!(s["total"], 2753);
    assert_eq!(s["total"], t["total"]);
    assert_eq!(s["by_status"], t["by_status"], "every status count");
    // The summary lists every known reason (zeros included); the truth those that occur.
    for (reason, n) in s["by_reason"].as_object().expect("by_reason") {
        assert_eq!(n, t["by_reason"].get(reason).unwrap_or(&Value::from(0)), "{reason}");
    }
    assert_eq!(t["by_reason"].as_object().map(|m| m.len()), Some(6), "the simulator has every reason: {t}");
    assert_eq!((s["chunks"].as_u64(), s["page_size"].as_u64()), (Some(28), Some(100)), "pages of 100");
    let groups = s["groups"].as_array().expect("groups");
    assert_eq!(groups.iter().map(|g| g["total"].as_u64().unwrap_or(0)).sum::<u64>(), 2753);
    for tg in t["groups"].as_array().expect("truth groups") {
        let g = groups.iter().find(|g| g["name"] == tg["name"]).unwrap_or_else(|| panic!("group {}", tg["name"]));
        assert_eq!((&g["total"], &g["by_status"]), (&tg["total"], &tg["by_status"]), "{}", tg["name"]);
    }
    let districts = groups.iter().find(|g| g["name"] == "UBND 8 huyện").expect("districts")["groups"].clone();
    assert_eq!(districts.as_array().map(Vec::len), Some(8), "eight districts under the districts' group");

    // The list agrees with the summary, row by row.
    let crit = s["by_status"]["critical"].as_u64().expect("critical") as usize;
    assert_eq!(count(&tb, &["endpoints", "list", "--status", "critical"]), crit);
    let rtp = s["by_reason"]["rtp_off"].as_u64().expect("rtp_off") as usize;
    assert_eq!(count(&tb, &["endpoints", "list", "--reason", "rtp_off"]), rtp);
    let all = tb.json(&["endpoints", "list"]);
    assert_eq!(all.as_array().map(Vec::len), Some(2753));
    let row = &all[0];
    for k in ["name", "status", "reasons", "agency", "group", "path"] {
        assert!(row.get(k).is_some(), "row field {k}: {row}");
    }
    let bad = tb.mg(&["endpoints", "list", "--reason", "sunspots"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("reason \"sunspots\""));

    // The metric, per agency and status.
    let hg = groups.iter().find(|g| g["name"] == "UBND 8 huyện").expect("group");
    assert_eq!(
        tb.metric("mangrove_endpoints{group=\"UBND 8 huyện\",status=\"critical\"}"),
        hg["by_status"]["critical"].as_f64()
    );

    // Readers read; a refresh needs an operator (or security).
    let auditor = tb.user_token("auditor");
    assert!(tb.mg_as(&auditor, &["endpoints", "summary", "--json"]).status.success());
    let refused = tb.mg_as(&auditor, &["endpoints", "refresh"]);
    assert!(!refused.status.success(), "an auditor may not make the controller read KSC");

    // Each fault: a clear error from a read now, and the last known data kept with its age.
    let dir = tb.path().display().to_string();
    let as_of = s["as_of"].clone();
    for (fault, kind, says) in [
        ("error", "error_envelope", "returned error 1950"),
        ("malformed", "malformed", "malformed answer"),
        ("session-ended", "session_ended", "HTTP 403"),
        ("unreachable", "unreachable", "cannot reach KSC"),
    ] {
        let out = tb.mg(&["testbed", "fault", "ksc", fault, "--dir", &dir]);
        assert!(out.status.success(), "fault ksc {fault}: {}", String::from_utf8_lossy(&out.stderr));
        let out = tb.mg(&["endpoints", "refresh"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{fault}: the read must fail");
        assert!(err.contains(says) && err.contains("last good roll-up is kept"), "{fault}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        let s2 = tb.json(&["endpoints", "summary"]);
        assert_eq!(s2["total"], 2753, "{fault}: data kept");
        assert_eq!(s2["by_status"], s["by_status"], "{fault}: data kept");
        assert_eq!(s2["as_of"], as_of, "{fault}: the age is that of the last good read");
        assert!(s2["age_seconds"].as_u64().is_some(), "{s2}");
        assert_eq!(s2["stale"], true);
        assert_eq!(s2["last_error"]["kind"], kind, "{fault}: {}", s2["last_error"]);
        assert!(s2["last_error"]["message"].as_str().is_some_and(|m| m.contains(says)), "{}", s2["last_error"]);
        assert_eq!(count(&tb, &["endpoints", "list", "--status", "critical"]), crit, "{fault}: list kept");
    }
    let out = tb.mg(&["testbed", "fault", "ksc", "heal", "--dir", &dir]);
    assert!(out.status.success());
    let out = tb.mg(&["endpoints", "refresh"]);
    assert!(out.status.success(), "healed: {}", String::from_utf8_lossy(&out.stderr));
    let s3 = tb.json(&["endpoints", "summary"]);
    assert_eq!((s3["stale"].clone(), s3["last_error"].clone()), (Value::Bool(false), Value::Null));
    assert_ne!(s3["as_of"], as_of, "a new good read");
    assert_eq!(s3["by_status"], t["by_status"]);
}
