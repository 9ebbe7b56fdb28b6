//! The capacity endpoints: `/api/v1/capacity/…`. Reading needs any reader role; importing
//! history needs `planner` or `operator` and is audited.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiResult, Auth, READERS, require};
use crate::app::{App, AppError, Role};
use crate::capacity::model::Resource;
use crate::capacity::query;
use crate::capacity::whatif::Scenario;
use crate::report_text::{Format, Lang};
use crate::store::Sample;

/// Samples one import request may carry (they fit the API's 2 MiB body limit); the CLI sends
/// a longer history in batches of this size.
pub const MAX_IMPORT: usize = 10_000;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/capacity/forecast", get(forecast))
        .route("/api/v1/capacity/headroom", get(headroom))
        .route("/api/v1/capacity/whatif", post(whatif))
        .route("/api/v1/capacity/history", get(history))
        .route("/api/v1/capacity/samples", post(import))
        .route("/api/v1/capacity/report", get(report))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    format: Option<String>,
    lang: Option<String>,
    /// Days of history to show (default 90, at most ten years).
    period_days: Option<u32>,
}

async fn report(State(app): State<Arc<App>>, Auth(p): Auth, Query(q): Query<ReportQuery>) -> ApiResult<Response> {
    require(&p, READERS, "read capacity reports")?;
    let format = Format::parse(q.format.as_deref()).map_err(AppError::BadRequest)?;
    let lang = Lang::parse(q.lang.as_deref()).map_err(AppError::BadRequest)?;
    let period = q.period_days.unwrap_or(90);
    if !(1..=3653).contains(&period) {
        return Err(AppError::BadRequest(format!("period_days {period} is not 1 to 3653")).into());
    }
    let data = query::report_data(&app, period).await?;
    let bytes =
        crate::capacity::report::render(&data, format, lang).map_err(|e| AppError::BadRequest(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], bytes).into_response())
}

async fn forecast(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read capacity forecasts")?;
    let rows: Vec<_> = query::forecasts(&app).await?.iter().map(|(s, f)| query::forecast_row(s, f)).collect();
    Ok(Json(json!(rows)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadroomQuery {
    /// Comma-separated host names taken out of the DR site.
    lose_hosts: Option<String>,
    /// Comma-separated system names (all systems when absent).
    systems: Option<String>,
    /// A recovery plan's name.
    plan: Option<String>,
}

fn list(s: Option<&str>) -> Vec<String> {
    s.map(|s| s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect()).unwrap_or_default()
}

async fn headroom(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Query(q): Query<HeadroomQuery>,
) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read DR headroom")?;
    // A recovery plan's systems, in the plan's priority groups.
    let plan = match &q.plan {
        Some(name) => {
            let (_, plan) = crate::failover::plans::load(&app, name, None).await?;
            let inv = app.inventory.as_deref().ok_or_else(|| AppError::Conflict("no inventory".into()))?;
            Some(crate::failover::plans::priorities(&plan, inv))
        }
        None => None,
    };
    let lost = list(q.lose_hosts.as_deref());
    let only = q.systems.as_deref().map(|s| list(Some(s)));
    if let (Some(only), Some(inv)) = (&only, app.inventory.as_deref())
        && let Some(bad) = only.iter().find(|s| !inv.systems.iter().any(|x| &x.name == *s))
    {
        return Err(AppError::NotFound(format!("no information system named {bad}")).into());
    }
    Ok(Json(json!(query::headroom(&app, &lost, only.as_deref(), plan.as_ref()).await?)))
}

async fn whatif(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<Scenario>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, READERS, "run capacity what-if scenarios")?;
    let Json(s) = body?;
    Ok(Json(json!(query::whatif(&app, &s).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    /// `site`, `host`, `pool` or `system` (default `site`).
    kind: Option<String>,
    scope: String,
    resource: String,
    /// How many days back (default 90).
    days: Option<i64>,
}

async fn history(State(app): State<Arc<App>>, Auth(p): Auth, Query(q): Query<HistoryQuery>) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read capacity history")?;
    let kind = q.kind.as_deref().unwrap_or("site");
    check_kind(kind)?;
    check_resource(&q.resource)?;
    let days = q.days.unwrap_or(90).clamp(1, 3660);
    let since = crate::app::now_ms() / 1000 - days * 86_400;
    let points = app.store.daily_series(kind, &q.scope, &q.resource, since).await?;
    Ok(Json(json!(points)))
}

fn check_kind(kind: &str) -> Result<(), AppError> {
    if ["site", "host", "pool", "system"].contains(&kind) {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!("kind {kind:?} is not site, host, pool or system")))
    }
}

fn check_resource(r: &str) -> Result<(), AppError> {
    Resource::parse(r)
        .map(|_| ())
        .ok_or_else(|| AppError::BadRequest(format!("resource {r:?} is not cpu, memory, storage or vms")))
}

/// Checks one imported sample; `i` is its index, for the message.
fn check_sample(i: usize, s: &Sample) -> Result<(), AppError> {
    let at = |m: String| AppError::BadRequest(format!("samples[{i}]: {m}"));
    check_kind(&s.scope_kind).map_err(|e| at(e.to_string()))?;
    check_resource(&s.resource).map_err(|e| at(e.to_string()))?;
    if !["raw", "hour", "day"].contains(&s.tier.as_str()) {
        return Err(at(format!("tier {:?} is not raw, hour or day", s.tier)));
    }
    if s.scope.trim().is_empty() {
        return Err(at("scope is empty".into()));
    }
    let finite = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v >= 0.0);
    if !(s.used.is_finite() && s.used >= 0.0 && finite(s.capacity) && finite(s.provisioned)) {
        return Err(at("used, capacity and provisioned must be numbers, 0 or more".into()));
    }
    if s.at < 0 || s.n < 1 {
        return Err(at("at must be unix seconds and n at least 1".into()));
    }
    Ok(())
}

async fn import(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<Vec<Sample>>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Planner, Role::Operator], "import capacity history")?;
    let Json(samples) = body?;
    if samples.len() > MAX_IMPORT {
        return Err(
            AppError::TooLarge(format!("{} samples; send at most {MAX_IMPORT} per request", samples.len())).into()
        );
    }
    for (i, s) in samples.iter().enumerate() {
        check_sample(i, s)?;
    }
    app.store.put_samples(&samples).await?;
    let first = samples.iter().map(|s| s.at).min();
    let last = samples.iter().map(|s| s.at).max();
    app.audit(&p.user, "capacity.import", None, json!({"samples": samples.len(), "first": first, "last": last})).await;
    Ok(Json(json!({"imported": samples.len()})))
}
