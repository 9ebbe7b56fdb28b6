//! The drill record (biên bản diễn tập): per information system the RTO achieved (run start →
//! its probes pass) and the RPO (age of the restore point used) against its targets, the step
//! timeline, failures with their errors, who started and approved, operators' notes. JSON for
//! scripts, HTML in Vietnamese or English for the file. Pure: built from the stored run.

use serde_json::{Value, json};

use crate::app::rfc3339;
use crate::report_text::{Lang, esc, pick};
use crate::store::{DrillRun, StepRecord};

/// The report's data (the `--format json` contract, plus who, when and notes).
pub fn build(run: &DrillRun, steps: &[StepRecord]) -> Value {
    let specs: Vec<super::steps::StepSpec> = serde_json::from_value(run.steps.clone()).unwrap_or_default();
    let start = run.started_at.unwrap_or(run.created_at);
    let systems: Vec<Value> = run.systems["systems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|sys| {
            let name = sys["name"].as_str().unwrap_or_default();
            let of_system = |kind: fn(super::steps::StepKind) -> bool| {
                specs.iter().filter(move |s| kind(s.kind) && s.system.as_deref() == Some(name)).map(|s| s.key.clone())
            };
            let is_probe = |k: super::steps::StepKind| k == super::steps::StepKind::Probe;
            let probes: Vec<&StepRecord> =
                of_system(is_probe).filter_map(|k| steps.iter().find(|r| r.key == k)).collect();
            let probe_count = of_system(is_probe).count();
            let all_passed =
                probe_count > 0 && probes.len() == probe_count && probes.iter().all(|r| r.state == "succeeded");
            let rto = all_passed
                .then(|| probes.iter().filter_map(|r| r.finished_at).max())
                .flatten()
                .map(|t| ((t - start) as f64 / 1000.0).max(0.0));
            let rpo = of_system(super::steps::StepKind::measures_rpo)
                .filter_map(|k| steps.iter().find(|r| r.key == k && r.state == "succeeded"))
                .filter_map(|r| r.result.as_ref()?.get("rpo_seconds")?.as_f64())
                .fold(None::<f64>, |m, x| Some(m.map_or(x, |m| m.max(x))));
            let rto_target = sys["rto_target_seconds"].as_u64();
            let rpo_target = sys["rpo_target_seconds"].as_u64();
            let pass = matches!((rto, rto_target), (Some(a), Some(t)) if a <= t as f64)
                && match (rpo, rpo_target) {
                    (Some(a), Some(t)) => a <= t as f64,
                    // No restore (image-method workloads only): the RPO is not measured here.
                    (None, _) => !of_system(super::steps::StepKind::is_restore).any(|_| true),
                    (Some(_), None) => true,
                };
            json!({
                "name": name, "priority": sys["priority"],
                "rto_seconds": rto, "rto_target_seconds": rto_target,
                "rpo_seconds": rpo, "rpo_target_seconds": rpo_target, "pass": pass,
            })
        })
        .collect();
    let timeline: Vec<Value> = specs
        .iter()
        .map(|s| {
            let r = steps.iter().find(|r| r.key == s.key);
            json!({
                "key": s.key, "kind": s.kind.as_str(), "system": s.system,
                "started": r.and_then(|r| r.started_at).map(rfc3339),
                "finished": r.and_then(|r| r.finished_at).map(rfc3339),
                "attempts": r.map_or(0, |r| r.attempts),
                "result": r.map_or("pending", |r| r.state.as_str()),
                "error": r.and_then(|r| r.error.clone()),
                "output": r.and_then(|r| r.result.clone()),
            })
        })
        .collect();
    let failures: Vec<Value> = steps
        .iter()
        .filter(|r| r.state == "failed")
        .map(|r| json!({"key": r.key, "error": r.error, "attempts": r.attempts}))
        .collect();
    json!({
        "run": run.id, "plan": run.plan, "plan_version": run.plan_version, "mode": run.mode,
        "result": run.state, "error": run.error,
        "started_by": run.started_by, "approved_by": run.approved_by,
        "created_at": rfc3339(run.created_at), "started_at": run.started_at.map(rfc3339),
        "finished_at": run.finished_at.map(rfc3339),
        "duration_seconds": run.finished_at.map(|f| (f - start) as f64 / 1000.0),
        "systems": systems, "steps": timeline, "failures": failures, "notes": run.notes,
    })
}

fn secs(v: &Value) -> String {
    v.as_f64().map_or("—".into(), |s| {
        crate::report_text::esc(&inventory::format_duration(std::time::Duration::from_secs(s.round() as u64)))
    })
}

/// The HTML record, in `lang`; prints on A4.
pub fn html(report: &Value, lang: Lang) -> String {
    let t = |vi, en| pick(lang, vi, en);
    let s = |v: &Value| esc(&crate::cli::s(v));
    let mut h = String::new();
    h.push_str(&format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse;width:100%;margin:1em 0}}\
         td,th{{border:1px solid #999;padding:.3em .5em;text-align:left;font-size:.9em}}.pass{{color:#075}}.fail{{color:#b00}}\
         @media print{{@page{{size:A4;margin:15mm}}body{{margin:0}}}}</style></head><body>",
        t("vi", "en"),
        t("Biên bản diễn tập khôi phục thảm họa", "Disaster-recovery drill record")
    ));
    h.push_str(&format!("<h1>{}</h1>", t("Biên bản diễn tập khôi phục thảm họa", "Disaster-recovery drill record")));
    let mode = report["mode"].as_str().unwrap_or_default();
    let mode_text = match mode {
        "test" => t(
            "diễn tập (mạng cô lập, không ảnh hưởng hệ thống đang chạy)",
            "test drill (isolated network, production untouched)",
        ),
        "planned" => t("chuyển đổi có kế hoạch", "planned failover"),
        "disaster" => t("khôi phục khi mất trung tâm dữ liệu chính", "disaster recovery (DC lost)"),
        _ => "",
    };
    h.push_str("<table>");
    for (k, v) in [
        (t("Lượt chạy", "Run"), s(&report["run"])),
        (t("Kế hoạch khôi phục", "Recovery plan"), format!("{} v{}", s(&report["plan"]), s(&report["plan_version"]))),
        (t("Hình thức", "Mode"), esc(mode_text)),
        (t("Kết quả", "Result"), s(&report["result"])),
        (t("Người khởi động", "Started by"), s(&report["started_by"])),
        (t("Người phê duyệt", "Approved by"), s(&report["approved_by"])),
        (t("Bắt đầu", "Started"), s(&report["started_at"])),
        (t("Kết thúc", "Finished"), s(&report["finished_at"])),
    ] {
        h.push_str(&format!("<tr><th>{k}</th><td>{v}</td></tr>"));
    }
    h.push_str("</table>");
    h.push_str(&format!(
        "<h2>{}</h2><table><tr>",
        t("Kết quả theo hệ thống thông tin", "Results per information system")
    ));
    for c in [
        t("Hệ thống", "System"),
        t("Ưu tiên", "Priority"),
        t("RTO đạt được", "RTO achieved"),
        t("RTO mục tiêu", "RTO target"),
        t("RPO đạt được", "RPO achieved"),
        t("RPO mục tiêu", "RPO target"),
        t("Đánh giá", "Verdict"),
    ] {
        h.push_str(&format!("<th>{c}</th>"));
    }
    h.push_str("</tr>");
    for sys in report["systems"].as_array().into_iter().flatten() {
        let pass = sys["pass"] == json!(true);
        h.push_str(&format!(
            "<tr><td>{}</td><td>P{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            s(&sys["name"]),
            s(&sys["priority"]),
            secs(&sys["rto_seconds"]),
            secs(&sys["rto_target_seconds"]),
            secs(&sys["rpo_seconds"]),
            secs(&sys["rpo_target_seconds"]),
            if pass { "pass" } else { "fail" },
            if pass { t("Đạt", "Pass") } else { t("Không đạt", "Fail") }
        ));
    }
    h.push_str("</table>");
    h.push_str(&format!("<h2>{}</h2><table><tr>", t("Diễn biến các bước", "Step timeline")));
    for c in [
        t("Bước", "Step"),
        t("Bắt đầu", "Started"),
        t("Kết thúc", "Finished"),
        t("Số lần", "Attempts"),
        t("Kết quả", "Result"),
    ] {
        h.push_str(&format!("<th>{c}</th>"));
    }
    h.push_str("</tr>");
    for st in report["steps"].as_array().into_iter().flatten() {
        let err = st["error"].as_str().map(|e| format!("<br><small>{}</small>", esc(e))).unwrap_or_default();
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{err}</td></tr>",
            s(&st["key"]),
            s(&st["started"]),
            s(&st["finished"]),
            s(&st["attempts"]),
            s(&st["result"])
        ));
    }
    h.push_str("</table>");
    let notes = report["notes"].as_array().cloned().unwrap_or_default();
    if !notes.is_empty() {
        h.push_str(&format!("<h2>{}</h2><ul>", t("Ghi chú của người vận hành", "Operators' notes")));
        for n in notes {
            h.push_str(&format!("<li>{} — {}: {}</li>", s(&n["at"]), s(&n["by"]), s(&n["text"])));
        }
        h.push_str("</ul>");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn step(key: &str, finished_at: i64, result: Value) -> StepRecord {
        StepRecord {
            run: "d-1".into(),
            key: key.into(),
            state: "succeeded".into(),
            attempts: 1,
            started_at: Some(finished_at - 1000),
            finished_at: Some(finished_at),
            not_before: None,
            result: Some(result),
            error: None,
        }
    }

    fn spec(key: &str, kind: &str) -> Value {
        json!({"key": key, "kind": kind, "system": "cong-bao", "group": 1, "after": [], "idempotent": true,
               "timeout_s": 60, "retries": 0})
    }

    #[test]
    fn an_image_workloads_rpo_is_its_images_age_at_the_run_start() {
        let run = |rpo_target: u64| DrillRun {
            id: "d-1".into(),
            plan: "p".into(),
            plan_version: 1,
            mode: "test".into(),
            state: "succeeded".into(),
            started_by: "op".into(),
            approved_by: None,
            created_at: 0,
            started_at: Some(1_000_000),
            finished_at: Some(1_100_000),
            steps: json!([spec("dr.boot:cong-bao-app-01", "dr.boot"), spec("probe:cong-bao:0", "probe")]),
            systems: json!({"systems": [{"name": "cong-bao", "priority": 1, "rto_target_seconds": 3600,
                                          "rpo_target_seconds": rpo_target}]}),
            notes: json!([]),
            error: None,
        };
        let steps = [
            step("dr.boot:cong-bao-app-01", 1_050_000, json!({"instance": "i-1", "rpo_seconds": 7200})),
            step("probe:cong-bao:0", 1_060_000, json!({})),
        ];
        let report = build(&run(86_400), &steps);
        let sys = &report["systems"][0];
        assert_eq!(sys["rpo_seconds"], json!(7200.0));
        assert_eq!(sys["pass"], json!(true));
        // An image older than the target fails the system.
        assert_eq!(build(&run(3600), &steps)["systems"][0]["pass"], json!(false));
        // A boot from an image without an export time measures no RPO (and fails nothing).
        let plain = [step("dr.boot:cong-bao-app-01", 1_050_000, json!({"instance": "i-1"})), steps[1].clone()];
        let sys = &build(&run(3600), &plain)["systems"][0];
        assert!(sys["rpo_seconds"].is_null());
        assert_eq!(sys["pass"], json!(true));
    }
}
