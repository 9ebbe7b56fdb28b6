//! `/api/v1/vc/…`: video-conference readiness. `POST /api/v1/vc/check` (`{"site": S}`
//! optional) runs every check now and answers with each device's go/no-go; `GET
//! /api/v1/vc/devices` gives each device's last stored result and its age.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiResult, Auth, READERS, require};
use crate::app::{App, Role, now_ms, rfc3339};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/vc/check", post(check))
        .route("/api/v1/vc/devices", get(devices))
        .route("/api/v1/vc/alerts", get(alerts))
        .route("/api/v1/vc/report", get(report))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckRequest {
    site: Option<String>,
}

async fn check(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<CheckRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    // Reading devices is harmless: every reader may ask for a check.
    require(&p, &[Role::Operator, Role::Security, Role::Planner, Role::Auditor], "check video devices")?;
    let req = body.map(|Json(b)| b)?;
    let out = crate::vc::check(&app, req.site.as_deref(), &p.user).await?;
    Ok(Json(serde_json::to_value(out).unwrap_or(Value::Null)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    format: Option<String>,
    lang: Option<String>,
    /// Days of check history the availability is measured over (default 90).
    period_days: Option<u32>,
}

async fn report(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    axum::extract::Query(q): axum::extract::Query<ReportQuery>,
) -> ApiResult<axum::response::Response> {
    use crate::report_text::{Format, Lang};
    use axum::response::IntoResponse;
    require(&p, READERS, "read the video replacement report")?;
    let format = Format::parse(q.format.as_deref()).map_err(crate::app::AppError::BadRequest)?;
    let lang = Lang::parse(q.lang.as_deref()).map_err(crate::app::AppError::BadRequest)?;
    let period = q.period_days.unwrap_or(90);
    if !(1..=3653).contains(&period) {
        return Err(crate::app::AppError::BadRequest(format!("period_days {period} is not 1 to 3653")).into());
    }
    let now = now_ms();
    let history = app.store.vc_checks_since(now - i64::from(period) * 86_400_000).await?;
    let year = 1970.0 + now as f64 / (365.2425 * 86_400_000.0);
    let rows = crate::vc::report::rows(&crate::vc::devices(&app, None), &history, year);
    let bytes = crate::vc::report::render(&rows, period, format, lang);
    Ok(([(axum::http::header::CONTENT_TYPE, format.content_type())], bytes).into_response())
}

async fn alerts(State(_app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read video alerts")?;
    Ok(Json(Value::Array(crate::vc::schedule::current())))
}

async fn devices(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read video devices")?;
    let now = now_ms();
    let mut list = Vec::new();
    for d in crate::vc::devices(&app, None) {
        let last = app.store.recent_vc_checks(&d.name, 1).await?.into_iter().next();
        list.push(json!({
            "device": d.name,
            "site": d.site,
            "model": d.model,
            "api": d.endpoint.api().as_str(),
            "purchase_date": d.endpoint.purchase_date,
            "go": last.as_ref().map(|r| r.go),
            "state": last.as_ref().map_or("unknown".to_string(), |r| r.state.clone()),
            "reasons": last.as_ref().map(|r| r.reasons.clone()).unwrap_or_default(),
            "checked_at": last.as_ref().map(|r| rfc3339(r.at)),
            "age_seconds": last.as_ref().map(|r| (now - r.at).max(0) / 1000),
        }));
    }
    Ok(Json(Value::Array(list)))
}
