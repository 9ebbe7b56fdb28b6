//! `/api/v1/drills…` and `/api/v1/approvals…`: drills and failovers.
//!
//! Starting, checking, pausing, resuming, aborting a run, confirming its prompts, adding notes
//! and deciding approvals need `operator` (or `admin`) and are audited; reading needs any
//! reader role. `GET /api/v1/drills/{id}/events` streams the run's changes (server-sent events).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiResult, Auth, READERS, require};
use crate::app::{App, AppError, Role, now_ms, rfc3339};
use crate::failover::steps::Mode;
use crate::failover::{preflight, report, runs};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/drills", get(list).post(start))
        .route("/api/v1/drills/check", post(check))
        .route("/api/v1/drills/{id}", get(status))
        .route("/api/v1/drills/{id}/events", get(events))
        .route("/api/v1/drills/{id}/report", get(report_of))
        .route("/api/v1/drills/{id}/notes", post(note))
        .route("/api/v1/drills/{id}/steps/{key}/confirm", post(confirm))
        .route("/api/v1/drills/{id}/{action}", post(act))
        .route("/api/v1/approvals", get(approvals))
        .route("/api/v1/approvals/{id}/{decision}", post(decide))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    plan: String,
    mode: String,
}

fn mode(text: &str) -> Result<Mode, AppError> {
    Mode::parse(text).map_err(AppError::BadRequest)
}

async fn start(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<RunRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "start drills or failovers")?;
    let Json(req) = body?;
    let out = runs::start(&app, &req.plan, mode(&req.mode)?, &p).await?;
    Ok(Json(json!(out)))
}

async fn check(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<RunRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "run drill pre-checks")?;
    let Json(req) = body?;
    Ok(Json(preflight::check(&app, &req.plan, mode(&req.mode)?).await?))
}

async fn list(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read drills")?;
    let rows: Vec<Value> = app
        .store
        .drills(200)
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "run": r.id, "plan": r.plan, "plan_version": r.plan_version, "mode": r.mode, "state": r.state,
                "started_by": r.started_by, "approved_by": r.approved_by, "created_at": rfc3339(r.created_at),
                "finished_at": r.finished_at.map(rfc3339), "error": r.error,
            })
        })
        .collect();
    Ok(Json(Value::Array(rows)))
}

/// A run with every step's state, as `drill status` and `--follow` show it.
pub async fn run_status(app: &App, id: &str) -> Result<Value, AppError> {
    let run = app.store.drill(id).await?.ok_or_else(|| AppError::NotFound(format!("no run {id}")))?;
    let records = app.store.drill_steps(id).await?;
    let specs: Vec<crate::failover::steps::StepSpec> = serde_json::from_value(run.steps.clone()).unwrap_or_default();
    let now = now_ms();
    let steps: Vec<Value> = specs
        .iter()
        .map(|s| {
            let r = records.iter().find(|r| r.key == s.key);
            let elapsed = r.and_then(|r| r.started_at).map(|t| (r.and_then(|r| r.finished_at).unwrap_or(now) - t) as f64 / 1000.0);
            json!({
                "key": s.key, "kind": s.kind.as_str(), "system": s.system, "workload": s.workload, "group": s.group,
                "state": r.map_or("pending", |r| r.state.as_str()), "attempts": r.map_or(0, |r| r.attempts),
                "started": r.and_then(|r| r.started_at).map(rfc3339), "finished": r.and_then(|r| r.finished_at).map(rfc3339),
                "elapsed_seconds": elapsed, "error": r.and_then(|r| r.error.clone()),
                "result": r.and_then(|r| r.result.clone()),
            })
        })
        .collect();
    let start = run.started_at.unwrap_or(run.created_at);
    Ok(json!({
        "run": run.id, "plan": run.plan, "plan_version": run.plan_version, "mode": run.mode, "state": run.state,
        "started_by": run.started_by, "approved_by": run.approved_by, "created_at": rfc3339(run.created_at),
        "started_at": run.started_at.map(rfc3339), "finished_at": run.finished_at.map(rfc3339),
        "elapsed_seconds": (run.finished_at.unwrap_or(now) - start) as f64 / 1000.0,
        "error": run.error, "notes": run.notes, "steps": steps,
    }))
}

async fn status(State(app): State<Arc<App>>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read drills")?;
    Ok(Json(run_status(&app, &id).await?))
}

/// Server-sent events: the run's status each time it changes (a `status` event), until it
/// ends.
async fn events(State(app): State<Arc<App>>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    require(&p, READERS, "follow drills")?;
    let first = run_status(&app, &id).await?;
    // State: the last status sent, whether the stream is done. Each turn waits, reads the run
    // again, and sends it only when it changed; the stream ends after the run does.
    let stream =
        futures::stream::unfold((app, id, Some(first), Value::Null, false), |(app, id, next, last, done)| async move {
            if done {
                return None;
            }
            let mut next = next;
            loop {
                let current = match next.take() {
                    Some(v) => Ok(v),
                    None => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        run_status(&app, &id).await
                    }
                };
                match current {
                    Ok(v) if v == last => {}
                    Ok(v) => {
                        let ended = !matches!(
                            v["state"].as_str(),
                            Some("awaiting_approval" | "running" | "paused" | "aborting")
                        );
                        let event = Event::default().event("status").data(v.to_string());
                        return Some((Ok::<Event, Infallible>(event), (app, id, None, v, ended)));
                    }
                    Err(e) => {
                        let event = Event::default().event("error").data(e.to_string());
                        return Some((Ok(event), (app, id, None, last, true)));
                    }
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    format: Option<String>,
    lang: Option<String>,
}

async fn report_of(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> ApiResult<Response> {
    require(&p, READERS, "read drill reports")?;
    let lang = crate::report_text::Lang::parse(q.lang.as_deref()).map_err(AppError::BadRequest)?;
    let run = app.store.drill(&id).await?.ok_or_else(|| AppError::NotFound(format!("no run {id}")))?;
    let steps = app.store.drill_steps(&id).await?;
    let data = report::build(&run, &steps);
    match q.format.as_deref().unwrap_or("html") {
        "json" => Ok(Json(data).into_response()),
        "html" => Ok(([(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], report::html(&data, lang))
            .into_response()),
        other => Err(AppError::BadRequest(format!("format {other:?} is not html or json")).into()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteRequest {
    text: String,
}

async fn note(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    body: Result<Json<NoteRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "add notes to drills")?;
    let Json(req) = body?;
    Ok(Json(runs::note(&app, &id, &req.text, &p).await?))
}

async fn confirm(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "confirm drill prompts")?;
    Ok(Json(runs::confirm(&app, &id, &key, &p).await?))
}

async fn act(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "pause, resume or abort drills")?;
    Ok(Json(runs::act(&app, &id, &action, &p).await?))
}

async fn approvals(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator, Role::Auditor], "read approval requests")?;
    let mut out = Vec::new();
    for a in app.store.approvals(true).await? {
        // The dry-run: what the run will do once approved.
        let dry_run = match app.store.drill(&a.run).await? {
            Some(run) => {
                let specs: Vec<crate::failover::steps::StepSpec> =
                    serde_json::from_value(run.steps.clone()).unwrap_or_default();
                let mode = Mode::parse(&run.mode).unwrap_or(Mode::Planned);
                let zone = crate::failover::plans::load(&app, &run.plan, Some(run.plan_version))
                    .await
                    .ok()
                    .and_then(|(_, plan)| preflight::zone_of(&plan, mode));
                preflight::steps_json(&specs, &run, mode, zone.as_deref())
            }
            None => Vec::new(),
        };
        out.push(json!({
            "id": a.id, "run": a.run, "plan": a.plan, "mode": a.mode, "requested_by": a.requested_by,
            "requested_at": rfc3339(a.requested_at), "expires_at": rfc3339(a.expires_at), "dry_run": dry_run,
        }));
    }
    Ok(Json(Value::Array(out)))
}

async fn decide(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path((id, decision)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "approve failovers")?;
    let id: i64 = id.parse().map_err(|_| AppError::BadRequest(format!("approval id {id:?} is not a number")))?;
    let approve = match decision.as_str() {
        "approve" => true,
        "refuse" => false,
        other => return Err(AppError::BadRequest(format!("{other:?} is not approve or refuse")).into()),
    };
    Ok(Json(runs::decide(&app, id, &p, approve).await?))
}
