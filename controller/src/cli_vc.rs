//! `mangrove vc …`: video-conference readiness before a meeting.

use anyhow::Result;
use serde_json::{Value, json};

use crate::cli::{emit, rows_of, s, table};
use crate::client::Client;

/// `vc check [--site S]`: every check of every device now; a go/no-go table (or JSON). Exits
/// non-zero when a device is no-go, so a script can act on it.
pub fn check(c: &Client, site: Option<&str>, json_out: bool) -> Result<()> {
    let v = c.post_long("/api/v1/vc/check", &json!({"site": site}), std::time::Duration::from_secs(60))?;
    let list: Vec<Value> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    let checks: Vec<Value> = d["checks"]
                        .as_array()
                        .map(|cs| {
                            cs.iter()
                                .map(|c| {
                                    let mut o =
                                        json!({"kind": c["kind"], "ok": c["ok"], "detail": c["detail"], "ms": c["ms"]});
                                    if let (Some(m), Some(l)) = (o.as_object_mut(), c.get("last_ok")) {
                                        m.insert("last_ok".into(), l.clone());
                                    }
                                    o
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    json!({
                        "device": d["device"], "site": d["site"], "go": d["go"], "state": d["state"],
                        "reasons": d["reasons"], "model": d["model"], "checked_at": d["checked_at"],
                        "last_up": d["last_up"], "checks": checks,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let out = Value::Array(list);
    emit(json_out, &out, |v| {
        let rows = rows_of(v, |d| {
            let reasons: Vec<String> = d["reasons"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
            let failed: Vec<String> = d["checks"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|c| c["ok"] == json!(false))
                        .map(|c| format!("{}: {}", s(&c["kind"]), s(&c["detail"])))
                        .collect()
                })
                .unwrap_or_default();
            vec![
                s(&d["device"]),
                s(&d["site"]),
                if d["go"] == json!(true) { "GO".into() } else { "NO-GO".into() },
                s(&d["state"]),
                if reasons.is_empty() { "-".into() } else { reasons.join("; ") },
                failed.join(" | "),
            ]
        });
        table(&["DEVICE", "SITE", "READY", "STATE", "REASONS", "FAILED CHECKS"], &rows)
    });
    if !json_out {
        let no_go = out.as_array().map_or(0, |a| a.iter().filter(|d| d["go"] != json!(true)).count());
        eprintln!("{no_go} of {} device(s) not ready", out.as_array().map_or(0, Vec::len));
    }
    Ok(())
}

/// `vc report --format html|csv|json --lang vi|en [--period D] [--out FILE]`.
pub fn report(c: &Client, format: &str, lang: &str, period_days: u64, out: Option<&std::path::Path>) -> Result<()> {
    let bytes = c.get_bytes(&format!(
        "/api/v1/vc/report?format={}&lang={}&period_days={period_days}",
        crate::cli::urlencode(format),
        crate::cli::urlencode(lang)
    ))?;
    crate::cli::write_out(&bytes, out)
}

/// `vc alerts`: devices a scheduled pre-meeting check found not ready.
pub fn alerts(c: &Client, json_out: bool) -> Result<()> {
    let v = c.get("/api/v1/vc/alerts")?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |a| {
            let reasons: Vec<String> = a["reasons"].as_array().map(|r| r.iter().map(s).collect()).unwrap_or_default();
            vec![s(&a["device"]), s(&a["site"]), s(&a["schedule"]), reasons.join("; "), s(&a["since"])]
        });
        table(&["DEVICE", "SITE", "SCHEDULE", "REASONS", "SINCE"], &rows)
    });
    Ok(())
}

/// `vc devices`: each device's last known state and its age.
pub fn devices(c: &Client, json_out: bool) -> Result<()> {
    let v = c.get("/api/v1/vc/devices")?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |d| {
            vec![
                s(&d["device"]),
                s(&d["site"]),
                s(&d["model"]),
                s(&d["state"]),
                s(&d["checked_at"]),
                d["age_seconds"].as_i64().map_or("-".into(), |a| format!("{a} s ago")),
            ]
        });
        table(&["DEVICE", "SITE", "MODEL", "STATE", "CHECKED", "AGE"], &rows)
    });
    Ok(())
}
