//! `mangrove endpoints …`: the province's managed computers as Kaspersky Security Center
//! reports them — a summary per administration group, the list of computers, a read now.

use anyhow::Result;
use serde_json::Value;

use crate::cli::{emit, rows_of, s, table, urlencode};
use crate::client::Client;

fn counts(v: &Value) -> (String, String, String) {
    (s(&v["ok"]), s(&v["warning"]), s(&v["critical"]))
}

fn age(v: &Value) -> String {
    match v.as_i64() {
        None => "-".into(),
        Some(a) if a < 120 => format!("{a} s"),
        Some(a) if a < 7200 => format!("{} min", a / 60),
        Some(a) => format!("{} h", a / 3600),
    }
}

/// `endpoints summary`.
pub fn summary(c: &Client, json_out: bool) -> Result<()> {
    let v = c.get("/api/v1/endpoints/summary")?;
    emit(json_out, &v, |v| {
        let mut out = String::new();
        let (ok, warn, crit) = counts(&v["by_status"]);
        out.push_str(&format!(
            "{} computers: {ok} ok, {warn} warning, {crit} critical (as of {}, {} ago)\n",
            s(&v["total"]),
            s(&v["as_of"]),
            age(&v["age_seconds"])
        ));
        if let Some(e) = v["last_error"].as_object() {
            out.push_str(&format!(
                "STALE: the latest read failed at {}: {}\n",
                s(e.get("at").unwrap_or(&Value::Null)),
                s(e.get("message").unwrap_or(&Value::Null))
            ));
        }
        out.push('\n');
        let mut rows = Vec::new();
        for g in v["groups"].as_array().into_iter().flatten() {
            let (ok, warn, crit) = counts(&g["by_status"]);
            rows.push(vec![s(&g["name"]), s(&g["total"]), ok, warn, crit]);
            for sub in g["groups"].as_array().into_iter().flatten() {
                let (ok, warn, crit) = counts(&sub["by_status"]);
                rows.push(vec![format!("  {}", s(&sub["name"])), s(&sub["total"]), ok, warn, crit]);
            }
        }
        out.push_str(&table(&["GROUP", "TOTAL", "OK", "WARNING", "CRITICAL"], &rows));
        out.push('\n');
        let reasons: Vec<Vec<String>> = v["by_reason"]
            .as_object()
            .map(|m| m.iter().map(|(k, n)| vec![k.clone(), s(n)]).collect())
            .unwrap_or_default();
        out.push_str(&table(&["REASON", "COMPUTERS"], &reasons));
        out
    });
    Ok(())
}

/// `endpoints list [--status S] [--reason R]`.
pub fn list(c: &Client, status: Option<&str>, reason: Option<&str>, json_out: bool) -> Result<()> {
    let mut q = Vec::new();
    if let Some(st) = status {
        q.push(format!("status={}", urlencode(st)));
    }
    if let Some(r) = reason {
        q.push(format!("reason={}", urlencode(r)));
    }
    let path =
        if q.is_empty() { "/api/v1/endpoints".to_string() } else { format!("/api/v1/endpoints?{}", q.join("&")) };
    let v = c.get(&path)?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |r| {
            let reasons: Vec<String> = r["reasons"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
            vec![
                s(&r["name"]),
                s(&r["status"]),
                if reasons.is_empty() { "-".into() } else { reasons.join(",") },
                s(&r["path"]),
                s(&r["av_bases"]),
                s(&r["agent_last_seen"]),
            ]
        });
        let n = rows.len();
        format!(
            "{}{n} computers\n",
            table(&["NAME", "STATUS", "REASONS", "GROUP", "AV BASES", "AGENT LAST SEEN"], &rows)
        )
    });
    Ok(())
}

/// `endpoints refresh`: reads KSC now.
pub fn refresh(c: &Client, json_out: bool) -> Result<()> {
    let v = c.post("/api/v1/endpoints/refresh", &serde_json::json!({}))?;
    emit(json_out, &v, |v| format!("read {} computers from KSC\n", s(&v["computers"])));
    Ok(())
}
