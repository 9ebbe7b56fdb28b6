//! `POST /api/v1/plans/{name}/images/refresh` (`{"workload": W}` optional): refreshes the DR
//! images of the plan's `image` workloads (export from vCenter, qemu-img, Glance; see
//! [`crate::images`]). Needs `operator` (or `admin`); each refreshed image is audited as
//! `image.refresh`. Waits for the work and answers `{plan, refreshed: [...]}`, one entry per
//! workload: the image made (`image_id`, `exported_at`, `replaced`, …) or its `error`.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiResult, Auth, require};
use crate::app::{App, Role};

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/v1/plans/{name}/images/refresh", post(refresh))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    /// Only this workload (one of the plan's `image` workloads).
    #[serde(default)]
    workload: Option<String>,
}

async fn refresh(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(name): Path<String>,
    body: Result<Json<RefreshRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "refresh DR images")?;
    let Json(req) = body?;
    let out = crate::images::refresh::refresh_plan(&app, &name, req.workload.as_deref(), &p.user).await?;
    Ok(Json(json!({"plan": name, "refreshed": out})))
}
