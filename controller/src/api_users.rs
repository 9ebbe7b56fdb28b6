//! `/api/v1/users`: people who sign in to the web console (admins only; see [`crate::users`]).

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{ApiResult, Auth};
use crate::app::App;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/v1/users", get(list).post(add))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddUser {
    name: String,
    role: String,
    password: String,
}

async fn add(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<AddUser>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(req) = body?;
    let v = crate::users::add_user(&app, &p, &req.name, &req.role, &req.password).await?;
    let status = if v["created"] == Value::Bool(true) { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(v)))
}

async fn list(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    Ok(Json(crate::users::list_users(&app, &p).await?))
}
