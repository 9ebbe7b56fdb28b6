//! `/api/v1/compliance/…`: the compliance report (HTML, JSON or CSV, Vietnamese or English)
//! and the evidence bundle for an inspection, built from the stored findings.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::api::{ApiResult, Auth, require};
use crate::app::{App, AppError, Role, now_ms, rfc3339};
use crate::compliance_report::{self as report, FindingRow, Format, Lang, ReportData, SystemReport, WaiverRow};
use crate::policy::{evaluate, scope};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/compliance/report", get(report_now))
        .route("/api/v1/compliance/evidence", get(evidence))
        .route("/api/v1/compliance/scores", get(scores))
}

/// Scores by system, by level and by site, each the [`report::score`] rule over the findings
/// in that group (a finding's level is the level its host was judged at; its site is its
/// host's). Pure over what the store holds.
pub fn score_groups(
    findings: &[crate::store::FindingRecord],
    site_of: impl Fn(&str) -> Option<String>,
    systems: &[(String, Vec<String>)],
) -> serde_json::Value {
    let by = |keep: &dyn Fn(&crate::store::FindingRecord) -> bool| {
        report::score_of(findings.iter().filter(|f| keep(f)).map(|f| f.status.as_str()))
    };
    let mut levels: Vec<i64> = findings.iter().map(|f| f.level).collect();
    levels.sort_unstable();
    levels.dedup();
    let mut sites: Vec<String> = findings.iter().filter_map(|f| site_of(&f.host)).collect();
    sites.sort();
    sites.dedup();
    json!({
        "systems": systems.iter().map(|(name, hosts)| json!({"system": name, "score": by(&|f| hosts.contains(&f.host))})).collect::<Vec<_>>(),
        "levels": levels.iter().map(|l| json!({"level": l, "score": by(&|f| f.level == *l)})).collect::<Vec<_>>(),
        "sites": sites.iter().map(|s| json!({"site": s, "score": by(&|f| site_of(&f.host).as_deref() == Some(s.as_str()))})).collect::<Vec<_>>(),
    })
}

async fn scores(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<axum::Json<serde_json::Value>> {
    require(&p, crate::api::READERS, "read compliance scores")?;
    let inv = app.inventory.clone().ok_or_else(|| AppError::Conflict("the controller has no inventory".into()))?;
    let vms = app.store.list_vms().await?;
    let findings = app.store.list_findings(None).await?;
    let hosts = app.store.list_hosts().await?;
    let systems: Vec<(String, Vec<String>)> =
        inv.systems.iter().map(|s| (s.name.clone(), scope::system_hosts(&inv, &s.name, &vms))).collect();
    let site_of = |h: &str| hosts.iter().find(|r| r.name == h).and_then(|r| r.site.clone());
    Ok(axum::Json(score_groups(&findings, site_of, &systems)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    system: Option<String>,
    framework: Option<String>,
    format: Option<String>,
    lang: Option<String>,
}

/// Who may read compliance reports: security staff, auditors, and admins.
const REPORT_READERS: &[Role] = &[Role::Security, Role::Auditor];

/// The report's data: each system (or the one named) with its findings, filtered by framework.
async fn data(
    app: &Arc<App>,
    system: Option<&str>,
    framework: Option<&str>,
    findings: &[crate::store::FindingRecord],
) -> Result<ReportData, AppError> {
    let inv = app.inventory.clone().ok_or_else(|| AppError::Conflict("the controller has no inventory".into()))?;
    if let Some(s) = system
        && !inv.systems.iter().any(|x| x.name == s)
    {
        return Err(AppError::NotFound(format!("no system {s} in the inventory")));
    }
    let vms = app.store.list_vms().await?;
    let waivers = app.store.list_waivers().await?;
    let now = now_ms();
    let mut systems = Vec::new();
    for s in inv.systems.iter().filter(|s| system.is_none_or(|n| s.name == n)) {
        let hosts = scope::system_hosts(&inv, &s.name, &vms);
        let sys_refs =
            vec![policies::SystemRef { name: s.name.clone(), level: s.level.get(), framework: s.framework.clone() }];
        let mut rows = Vec::new();
        for f in findings.iter().filter(|f| hosts.contains(&f.host) && f.status != "not_applicable") {
            let Some(pack) = app.policy.pack(&f.pack) else { continue };
            if framework.is_some_and(|fw| pack.framework != fw) {
                continue;
            }
            let Some(meta) = app.policy.control(&f.pack, &f.control) else { continue };
            let waiver = (f.status == "waived")
                .then(|| evaluate::active_waiver(&waivers, &f.control, &f.host, &sys_refs, now))
                .flatten()
                .map(|w| WaiverRow { reason: w.reason.clone(), until: rfc3339(w.until), by: w.created_by.clone() });
            rows.push(FindingRow {
                control: f.control.clone(),
                host: f.host.clone(),
                status: f.status.clone(),
                framework: pack.framework.clone(),
                clause: meta.clause.clone(),
                evidence: f.evidence.clone(),
                since: Some(rfc3339(f.since)),
                title_vi: meta.title_vi.clone(),
                title_en: meta.title_en.clone(),
                group: meta.group.clone(),
                severity: serde_json::to_value(meta.severity)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                message: f.message.clone(),
                evidence_at: f.facts_at.map(rfc3339),
                waiver,
                remediation_vi: meta.remediation.text_vi.clone(),
                remediation_en: meta.remediation.text_en.clone(),
            });
        }
        systems.push(SystemReport {
            name: s.name.clone(),
            level: s.level.get(),
            framework: s.framework.clone(),
            score: report::score(&rows),
            findings: rows,
            title_vi: s.title_vi.clone(),
            title_en: s.title_en.clone(),
            owner: s.owner.clone(),
        });
    }
    Ok(ReportData { systems, generated_at: rfc3339(now), province: inv.province.clone() })
}

fn parse_format(f: Option<&str>) -> Result<Format, AppError> {
    Format::parse(f).map_err(AppError::BadRequest)
}

fn parse_lang(l: Option<&str>) -> Result<Lang, AppError> {
    Lang::parse(l).map_err(AppError::BadRequest)
}

async fn report_now(State(app): State<Arc<App>>, Auth(p): Auth, Query(q): Query<ReportQuery>) -> ApiResult<Response> {
    require(&p, REPORT_READERS, "read compliance reports")?;
    let format = parse_format(q.format.as_deref())?;
    let lang = parse_lang(q.lang.as_deref())?;
    let findings = app.store.list_findings(None).await?;
    let d = data(&app, q.system.as_deref(), q.framework.as_deref(), &findings).await?;
    let bytes = report::render(&d, format, lang).map_err(|e| AppError::BadRequest(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], bytes).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceQuery {
    system: String,
}

async fn evidence(State(app): State<Arc<App>>, Auth(p): Auth, Query(q): Query<EvidenceQuery>) -> ApiResult<Response> {
    require(&p, REPORT_READERS, "read compliance evidence")?;
    let findings = app.store.list_findings(None).await?;
    let d = data(&app, Some(&q.system), None, &findings).await?;
    let hosts: Vec<String> = d.systems.iter().flat_map(|s| s.findings.iter().map(|f| f.host.clone())).collect();
    let raw: Vec<serde_json::Value> =
        findings.iter().filter(|f| hosts.contains(&f.host)).map(|f| evaluate::finding_json(&app, f)).collect();
    let bytes = report::evidence_zip(&d, &json!(raw), &[])
        .map_err(|e| AppError::BadRequest(format!("evidence bundle: {e}")))?;
    app.audit(&p.user, "compliance.evidence", Some(&q.system), json!({"bytes": bytes.len()})).await;
    Ok(([(header::CONTENT_TYPE, "application/zip")], bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FindingRecord;

    fn f(host: &str, level: i64, status: &str) -> FindingRecord {
        FindingRecord {
            host: host.into(),
            pack: "p".into(),
            control: format!("c-{status}"),
            level,
            status: status.into(),
            message: String::new(),
            evidence: serde_json::Value::Null,
            facts_at: None,
            since: 0,
            evaluated_at: 0,
        }
    }

    #[test]
    fn scores_by_system_level_and_site() {
        let findings = vec![f("a", 3, "pass"), f("a", 3, "fail"), f("b", 2, "pass"), f("b", 2, "not_applicable")];
        let site_of = |h: &str| Some(if h == "a" { "dc".to_string() } else { "dr".to_string() });
        let systems = vec![("s1".to_string(), vec!["a".to_string()]), ("s2".to_string(), vec![])];
        let v = score_groups(&findings, site_of, &systems);
        assert_eq!(v["systems"][0]["score"], 50.0);
        assert!(v["systems"][1]["score"].is_null(), "nothing evaluated");
        assert_eq!(v["levels"], json!([{"level": 2, "score": 100.0}, {"level": 3, "score": 50.0}]));
        assert_eq!(v["sites"], json!([{"site": "dc", "score": 50.0}, {"site": "dr", "score": 100.0}]));
    }
}
