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
