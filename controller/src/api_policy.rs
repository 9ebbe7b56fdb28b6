//! `/api/v1/policy/…`: assignments, waivers, evaluation on demand and findings. Changing
//! assignments and waivers needs the `security` role (admin may too); every change is
//! audited. Reading needs any reader role.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiResult, Auth, READERS, require};
use crate::app::{App, AppError, Role, now_ms, rfc3339};
use crate::policy::evaluate::{self, Outcome};
use crate::store::{Assignment, Waiver};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/policy/packs", get(packs))
        .route("/api/v1/policy/assignments", get(list_assignments).post(assign))
        .route("/api/v1/policy/waivers", get(list_waivers).post(waive))
        .route("/api/v1/policy/evaluate", post(evaluate_now))
        .route("/api/v1/policy/findings", get(findings))
        .route("/api/v1/policy/history", get(history))
}

/// The packs this controller evaluates: shipped and custom, with where each came from.
async fn packs(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read policy packs")?;
    let list =
        app.policy.packs.iter().map(|pk| crate::cli_policy::pack_json(pk, app.policy.source(&pk.name))).collect();
    Ok(Json(Value::Array(list)))
}

/// Hosts with a stored record that `system` (or every system, when `None`) runs on.
async fn hosts_of(app: &Arc<App>, system: Option<&str>) -> Result<Vec<String>, AppError> {
    evaluate::hosts_where(app, |s| system.is_none_or(|n| s.name == n)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignRequest {
    pack: String,
    system: Option<String>,
    level: Option<u8>,
    /// `audit` (default) or `enforce`.
    mode: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

async fn assign(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<AssignRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Security], "assign policy packs")?;
    let Json(req) = body?;
    if app.policy.pack(&req.pack).is_none() {
        let known: Vec<&str> = app.policy.packs.iter().map(|p| p.name.as_str()).collect();
        return Err(AppError::NotFound(format!("no pack {}; packs are: {}", req.pack, known.join(", "))).into());
    }
    let inv = app.inventory.clone().ok_or_else(|| AppError::Conflict("the controller has no inventory".into()))?;
    let (scope_kind, target) = match (&req.system, req.level) {
        (Some(s), None) => {
            if !inv.systems.iter().any(|x| x.name == *s) {
                return Err(AppError::NotFound(format!("no system {s} in the inventory")).into());
            }
            ("system", s.clone())
        }
        (None, Some(l)) if (1..=5).contains(&l) => ("level", l.to_string()),
        (None, Some(l)) => return Err(AppError::BadRequest(format!("level {l} is not 1–5")).into()),
        _ => return Err(AppError::BadRequest("give exactly one of system or level".into()).into()),
    };
    let mode = req.mode.clone().unwrap_or_else(|| "audit".into());
    if !matches!(mode.as_str(), "audit" | "enforce") {
        return Err(AppError::BadRequest(format!("mode {mode:?} is not audit or enforce")).into());
    }
    let a = Assignment {
        id: 0,
        pack: req.pack.clone(),
        scope: scope_kind.into(),
        target: target.clone(),
        mode: mode.clone(),
        created_by: p.user.clone(),
        created_at: now_ms(),
    };
    let hosts = match scope_kind {
        "system" => hosts_of(&app, Some(&target)).await?,
        _ => evaluate::hosts_where(&app, |s| s.level.get().to_string() == target).await?,
    };
    if req.dry_run {
        // What enforce would run now, on the facts as they are; nothing is stored or started.
        let mut would = Vec::new();
        for h in &hosts {
            would.extend(preview(&app, h, &a).await?);
        }
        return Ok(Json(json!({"dry_run": true, "assignment": a, "hosts": hosts, "remediations": would})));
    }
    let (stored, new) = app.store.assign(&a).await?;
    app.audit(
        &p.user,
        if new { "policy.assign" } else { "policy.mode" },
        Some(&format!("{scope_kind}:{target}")),
        json!({"pack": req.pack, "mode": mode}),
    )
    .await;
    evaluate::push_collectors(&app, &hosts, true).await;
    Ok(Json(json!({"assignment": stored, "new": new, "hosts": hosts})))
}

/// The remediations enforce mode would start on `host` if `a` were in force.
async fn preview(app: &Arc<App>, host: &str, a: &Assignment) -> Result<Vec<evaluate::Remediation>, AppError> {
    let outcome =
        evaluate::evaluate_host_with(app, host, "dry run", true, Some(a)).await.map_err(AppError::Upstream)?;
    Ok(outcome.remediations)
}

async fn list_assignments(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read policy assignments")?;
    Ok(Json(json!(app.store.list_assignments().await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiveRequest {
    control: String,
    host: Option<String>,
    system: Option<String>,
    /// RFC 3339 time or a date (`2027-01-31`, end of that day UTC).
    until: Option<String>,
    reason: Option<String>,
}

/// `2027-01-31` (end of that day, UTC) or an RFC 3339 time, as unix milliseconds.
pub fn parse_until(s: &str) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX));
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &fmt)
        .map_err(|_| format!("until {s:?} is not a date (2027-01-31) or an RFC 3339 time"))?;
    let end = d.with_hms(23, 59, 59).map_err(|e| e.to_string())?.assume_utc();
    Ok(end.unix_timestamp() * 1000 + 999)
}

async fn waive(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<WaiveRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Security], "waive controls")?;
    let Json(req) = body?;
    let reason = req.reason.as_deref().map(str::trim).unwrap_or_default().to_string();
    if reason.is_empty() {
        return Err(AppError::BadRequest("a waiver needs a reason (--reason TEXT)".into()).into());
    }
    let until = match req.until.as_deref() {
        None | Some("") => return Err(AppError::BadRequest("a waiver needs an expiry (--until DATE)".into()).into()),
        Some(u) => parse_until(u).map_err(AppError::BadRequest)?,
    };
    if !app.policy.packs.iter().any(|pk| pk.control(&req.control).is_some()) {
        return Err(AppError::NotFound(format!("no control {} in any pack", req.control)).into());
    }
    let (scope_kind, target) = match (&req.host, &req.system) {
        (Some(h), None) => ("host", h.clone()),
        (None, Some(s)) => ("system", s.clone()),
        _ => return Err(AppError::BadRequest("give exactly one of host or system".into()).into()),
    };
    let w = Waiver {
        id: 0,
        control: req.control.clone(),
        scope: scope_kind.into(),
        target: target.clone(),
        until,
        reason,
        created_by: p.user.clone(),
        created_at: now_ms(),
    };
    let stored = app.store.add_waiver(&w).await?;
    app.audit(
        &p.user,
        "policy.waive",
        Some(&format!("{scope_kind}:{target}")),
        json!({"control": w.control, "until": rfc3339(until), "reason": w.reason}),
    )
    .await;
    let hosts = match scope_kind {
        "host" => vec![target],
        _ => hosts_of(&app, Some(&target)).await?,
    };
    let batch: Vec<(String, String)> = hosts.iter().map(|h| (h.clone(), app.take_evaluation_cause(h))).collect();
    match evaluate::evaluate_hosts(&app, &batch).await {
        Ok(results) => {
            for ((h, _), r) in batch.iter().zip(results) {
                if let Err(e) = r {
                    tracing::warn!(host = h, error = %e, "re-evaluation after a waiver failed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "re-evaluation after a waiver failed"),
    }
    let expired = until <= now_ms();
    Ok(Json(json!({"waiver": stored, "until": rfc3339(until), "already_expired": expired})))
}

async fn list_waivers(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read waivers")?;
    let now = now_ms();
    let list: Vec<Value> = app
        .store
        .list_waivers()
        .await?
        .iter()
        .map(|w| {
            let mut v = json!(w);
            v["until"] = json!(rfc3339(w.until));
            v["active"] = json!(w.until > now);
            v
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluateRequest {
    host: Option<String>,
    system: Option<String>,
}

/// Asks the hosts for fresh facts (with the collectors their packs need), waits for them (up to
/// 30 s; a host that does not answer is evaluated on what it last sent), then evaluates.
async fn evaluate_now(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<EvaluateRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Security, Role::Operator], "evaluate policies")?;
    let Json(req) = body?;
    let hosts = match (&req.host, &req.system) {
        (Some(h), None) => {
            if app.store.get_host(h).await?.is_none() {
                return Err(AppError::NotFound(format!("no host named {h}")).into());
            }
            vec![h.clone()]
        }
        (None, system) => hosts_of(&app, system.as_deref()).await?,
        _ => return Err(AppError::BadRequest("give at most one of host or system".into()).into()),
    };
    let asked = now_ms();
    evaluate::push_collectors(&app, &hosts, true).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for h in &hosts {
        if !app.sessions.is_live(h) {
            continue;
        }
        while tokio::time::Instant::now() < deadline {
            let fresh = app.store.get_host(h).await?.and_then(|r| r.facts_at).is_some_and(|t| t >= asked);
            if fresh {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // One batch: the store is read once and each pack's hosts are judged together.
    let batch: Vec<(String, String)> = hosts.iter().map(|h| (h.clone(), app.take_evaluation_cause(h))).collect();
    let outcomes: Vec<Outcome> = evaluate::evaluate_hosts(&app, &batch)
        .await
        .map_err(AppError::Upstream)?
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(AppError::Upstream)?;
    app.audit(&p.user, "policy.evaluate", req.system.as_deref().or(req.host.as_deref()), json!({"hosts": hosts.len()}))
        .await;
    Ok(Json(json!({"hosts": outcomes})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingsQuery {
    host: Option<String>,
    system: Option<String>,
    status: Option<String>,
}

async fn findings(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Query(q): Query<FindingsQuery>,
) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read findings")?;
    let hosts = match &q.system {
        Some(s) => Some(hosts_of(&app, Some(s)).await?),
        None => None,
    };
    let list: Vec<Value> = app
        .store
        .list_findings(q.host.as_deref())
        .await?
        .iter()
        .filter(|f| hosts.as_ref().is_none_or(|hs| hs.contains(&f.host)))
        .filter(|f| q.status.as_deref().is_none_or(|s| f.status == s))
        .map(|f| evaluate::finding_json(&app, f))
        .collect();
    Ok(Json(Value::Array(list)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    host: String,
    control: String,
}

/// When a control started failing on a host, when it was fixed, and by what.
async fn history(State(app): State<Arc<App>>, Auth(p): Auth, Query(q): Query<HistoryQuery>) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read findings")?;
    let rows = app.store.finding_history(&q.host, &q.control).await?;
    Ok(Json(Value::Array(
        rows.iter().map(|(at, status, cause)| json!({"at": rfc3339(*at), "status": status, "cause": cause})).collect(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_a_date_or_a_time() {
        assert_eq!(parse_until("1970-01-01"), Ok(86_399_999));
        assert_eq!(parse_until("1970-01-01T00:00:10Z"), Ok(10_000));
        assert!(parse_until("next week").is_err());
    }
}
