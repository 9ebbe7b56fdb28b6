//! The endpoint-protection endpoints: `/api/v1/endpoints/…`. Reading needs any reader role
//! (operator, security, planner, auditor); a refresh (a KSC read now) needs `operator` or
//! `security` and is audited.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use plugins::ksc::status::{Level, Reason};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiResult, Auth, READERS, require};
use crate::app::{App, AppError, Role, now_ms};
use crate::endpoints::{self, PollError, SOURCE};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/endpoints/summary", get(summary))
        .route("/api/v1/endpoints", get(list))
        .route("/api/v1/endpoints/refresh", post(refresh))
}

/// The stored state, or why there is none to show.
async fn state(app: &App) -> Result<crate::store::EndpointState, AppError> {
    let Some(cfg) = &app.cfg.ksc else {
        return Err(AppError::NotFound("endpoint protection is off: the controller has no [ksc] section".into()));
    };
    match app.store.endpoint_state(SOURCE).await? {
        Some(st) if st.rollup.is_some() => Ok(st),
        Some(st) => Err(AppError::Upstream(format!(
            "no KSC roll-up yet from {}: {}",
            cfg.url,
            st.last_error.as_ref().and_then(|e| e["message"].as_str()).unwrap_or("first read in progress")
        ))),
        None => Err(AppError::Upstream(format!("no KSC roll-up yet from {}: first read in progress", cfg.url))),
    }
}

async fn summary(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read the endpoint-protection summary")?;
    let st = state(&app).await?;
    let url = app.cfg.ksc.as_ref().map(|k| k.url.as_str()).unwrap_or("");
    let v = endpoints::summary(&st, url, now_ms())
        .ok_or_else(|| AppError::Upstream("the stored KSC roll-up is unreadable".into()))?;
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    reason: Option<String>,
}

async fn list(State(app): State<Arc<App>>, Auth(p): Auth, Query(q): Query<ListQuery>) -> ApiResult<Json<Value>> {
    require(&p, READERS, "list managed computers")?;
    if let Some(s) = q.status.as_deref()
        && Level::parse(s).is_none()
    {
        return Err(AppError::BadRequest(format!("status {s:?} is not ok, warning or critical")).into());
    }
    if let Some(r) = q.reason.as_deref()
        && Reason::parse(r).is_none()
    {
        let all: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        return Err(AppError::BadRequest(format!("reason {r:?} is not one of {}", all.join(", "))).into());
    }
    let st = state(&app).await?;
    let rows = endpoints::list(&st, q.status.as_deref(), q.reason.as_deref())
        .ok_or_else(|| AppError::Upstream("the stored KSC roll-up is unreadable".into()))?;
    Ok(Json(json!(rows)))
}

async fn refresh(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator, Role::Security], "read KSC now")?;
    let result = endpoints::poll_once(&app).await;
    app.audit(
        &p.user,
        "endpoints.refresh",
        None,
        match &result {
            Ok(n) => json!({"computers": n}),
            Err(e) => json!({"error": e.kind()}),
        },
    )
    .await;
    match result {
        Ok(n) => Ok(Json(json!({"computers": n}))),
        Err(PollError::NotConfigured) => {
            Err(AppError::NotFound("endpoint protection is off: the controller has no [ksc] section".into()).into())
        }
        Err(PollError::Store(e)) => Err(AppError::Store(e).into()),
        Err(e) => Err(AppError::Upstream(format!("{e} (the last good roll-up is kept)")).into()),
    }
}
