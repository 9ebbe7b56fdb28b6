//! `/api/v1/plans…`: recovery plans. Applying one (`POST /api/v1/plans`, `{file, text}`) needs
//! `operator` (or `admin`) and is audited as `plan.apply`; reading needs any reader role.
//! `GET /api/v1/plans` lists the newest version of each; `GET /api/v1/plans/{name}` gives one
//! (`?version=N` for an older one) with its text, its groups and who applied it when.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiResult, Auth, READERS, require};
use crate::app::{App, Role, rfc3339};
use crate::failover::plans;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/v1/plans", get(list).post(apply)).route("/api/v1/plans/{name}", get(show))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyRequest {
    /// The file name the text was read from (named in every error).
    file: String,
    text: String,
}

async fn apply(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<ApplyRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "apply recovery plans")?;
    let Json(req) = body?;
    let out = plans::apply(&app, &req.file, &req.text, &p.user).await?;
    Ok(Json(json!(out)))
}

async fn list(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read recovery plans")?;
    let mut out = Vec::new();
    for r in app.store.plans().await? {
        let (systems, groups, problem) = match plans::load(&app, &r.name, Some(r.version)).await {
            Ok((_, plan)) => {
                let inv = app.inventory.as_deref();
                let groups = inv.map(|i| plans::groups_json(&plan, i)).unwrap_or_default();
                (plan.systems.len(), groups, None)
            }
            Err(e) => (0, Vec::new(), Some(e.to_string())),
        };
        out.push(json!({
            "name": r.name, "version": r.version, "applied_by": r.applied_by,
            "applied_at": rfc3339(r.applied_at), "origin": r.origin, "systems": systems,
            "groups": groups, "problem": problem,
        }));
    }
    Ok(Json(Value::Array(out)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowQuery {
    version: Option<i64>,
}

async fn show(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(name): Path<String>,
    Query(q): Query<ShowQuery>,
) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read recovery plans")?;
    let (r, plan) = plans::load(&app, &name, q.version).await?;
    let groups = app.inventory.as_deref().map(|i| plans::groups_json(&plan, i)).unwrap_or_default();
    Ok(Json(json!({
        "name": r.name, "version": r.version, "applied_by": r.applied_by,
        "applied_at": rfc3339(r.applied_at), "origin": r.origin, "digest": r.digest,
        "groups": groups, "plan": plan, "text": r.text,
    })))
}
