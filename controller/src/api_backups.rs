//! The backup endpoints: `/api/v1/backups/…`. Reading needs any reader role; running,
//! verifying and restoring need `operator` and are audited. No answer ever holds a repository
//! password: plans name repositories, runs carry what the agents reported.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiResult, Auth, READERS, require};
use crate::app::{App, AppError, Role, rfc3339};
use crate::backup::plans::{Plan, PlanKind};
use crate::backup::runs::{self, RestoreRequest};
use crate::backup::schedule;
use crate::store::BackupRun;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/backups/plans", get(plans))
        .route("/api/v1/backups/alerts", get(alerts))
        .route("/api/v1/backups/runs", get(list_runs))
        .route("/api/v1/backups/runs/{id}", get(show_run))
        .route("/api/v1/backups/systems/{system}/run", post(run))
        .route("/api/v1/backups/systems/{system}/snapshots", get(snapshots))
        .route("/api/v1/backups/systems/{system}/verify", post(verify))
        .route("/api/v1/backups/systems/{system}/restore", post(restore))
}

fn plan_json(p: &Plan) -> Value {
    json!({
        "system": p.system,
        "plan": p.plan,
        "kind": p.kind,
        "schedule": p.schedule,
        "repositories": p.repositories.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        "retention": p.retention,
        "keep_last": p.keep_last,
        "rule": p.rule,
        "problems": p.problems,
        "level": p.level,
        "host": p.host,
        "paths": p.paths,
        "check": p.check,
        "restore_test": p.restore_test,
        "restore_host": p.restore_host,
        "probe": p.probe,
        "rpo": inventory::format_duration(p.rpo),
    })
}

fn run_json(app: &App, r: &BackupRun) -> Value {
    json!({
        "id": r.id,
        "kind": r.kind,
        "system": r.system,
        "plan": r.plan,
        "host": r.host,
        "repository": r.repository,
        "snapshot_id": r.snapshot_id,
        "requested_by": r.requested_by,
        "started_at": rfc3339(r.started_at),
        "finished_at": r.finished_at.map(rfc3339),
        "status": r.status,
        "error": r.error,
        "result": r.result,
        "progress": app.backups.progress_of(&r.id),
    })
}

fn plans_of<'a>(app: &'a App, system: &str, plan: Option<&str>) -> Result<Vec<&'a Plan>, AppError> {
    let all = app.backups.plans_of(system);
    if all.is_empty() {
        let known = app.inventory.as_deref().is_some_and(|i| i.systems.iter().any(|s| s.name == system));
        return Err(AppError::NotFound(if known {
            format!("system {system} has no backup plan (add `backup:` to it in the inventory)")
        } else {
            format!("no information system named {system}")
        }));
    }
    match plan {
        None => Ok(all),
        Some(p) => {
            let found: Vec<&Plan> = all.into_iter().filter(|x| x.plan == p).collect();
            if found.is_empty() {
                return Err(AppError::NotFound(format!("system {system} has no plan named {p}")));
            }
            Ok(found)
        }
    }
}

async fn plans(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read backup plans")?;
    Ok(Json(Value::Array(app.backups.plans.iter().map(plan_json).collect())))
}

async fn alerts(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read backup alerts")?;
    let list: Vec<Value> = app
        .backup_breaches
        .current()
        .into_iter()
        .map(|(system, since)| json!({"system": system, "kind": "rpo_breach", "since": rfc3339(since)}))
        .collect();
    Ok(Json(Value::Array(list)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    system: Option<String>,
    limit: Option<i64>,
}

async fn list_runs(State(app): State<Arc<App>>, Auth(p): Auth, Query(q): Query<RunsQuery>) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read backup runs")?;
    let runs = app.store.list_runs(q.system.as_deref(), q.limit.unwrap_or(50).clamp(1, 1000)).await?;
    Ok(Json(Value::Array(runs.iter().map(|r| run_json(&app, r)).collect())))
}

async fn show_run(State(app): State<Arc<App>>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read backup runs")?;
    let run = app.store.get_run(&id).await?.ok_or_else(|| AppError::NotFound(format!("no backup run {id}")))?;
    Ok(Json(run_json(&app, &run)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    plan: Option<String>,
}

async fn run(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(system): Path<String>,
    body: Result<Json<RunRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "run backups")?;
    let Json(req) = body?;
    let mut started = Vec::new();
    for plan in plans_of(&app, &system, req.plan.as_deref())? {
        let r = runs::start(&app, plan, &p.user).await;
        let detail = match &r {
            Ok(run) => json!({"plan": plan.plan, "run": run.id}),
            Err(e) => json!({"plan": plan.plan, "error": e.to_string()}),
        };
        app.audit(&p.user, "backup.run", Some(&system), detail).await;
        started.push(run_json(&app, &r?));
    }
    Ok(Json(json!({"runs": started})))
}

async fn snapshots(State(app): State<Arc<App>>, Auth(p): Auth, Path(system): Path<String>) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read restore points")?;
    plans_of(&app, &system, None)?;
    let list: Vec<Value> = app
        .store
        .list_snapshots(&system)
        .await?
        .iter()
        .map(|s| {
            json!({
                "id": s.snapshot_id,
                "plan": s.plan,
                "repository": s.repository,
                "time": rfc3339(s.time),
                "bytes_added": s.bytes_added,
                "files": s.files,
                "verified": s.verified,
                "verified_at": s.verified_at.map(rfc3339),
                "run": s.run_id,
                "host": s.host,
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    #[serde(default)]
    restore: bool,
    plan: Option<String>,
}

async fn verify(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(system): Path<String>,
    body: Result<Json<VerifyRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "verify backups")?;
    let Json(req) = body?;
    let mut started = Vec::new();
    // Platform snapshots have no repository to check or restore from.
    let plans: Vec<&Plan> =
        plans_of(&app, &system, req.plan.as_deref())?.into_iter().filter(|p| p.kind == PlanKind::Files).collect();
    if plans.is_empty() {
        return Err(AppError::BadRequest(format!(
            "{system}/{}: platform snapshots have no backup repository to verify",
            req.plan.as_deref().unwrap_or("snapshots")
        ))
        .into());
    }
    for plan in plans {
        let result = if req.restore {
            schedule::drill(&app, plan, &p.user).await.map(|r| vec![r])
        } else {
            runs::start_checks(&app, plan, None, &p.user).await
        };
        let detail = match &result {
            Ok(r) => {
                json!({"plan": plan.plan, "restore": req.restore, "runs": r.iter().map(|x| &x.id).collect::<Vec<_>>()})
            }
            Err(e) => json!({"plan": plan.plan, "restore": req.restore, "error": e.to_string()}),
        };
        app.audit(&p.user, "backup.verify", Some(&system), detail).await;
        started.extend(result?.iter().map(|r| run_json(&app, r)));
    }
    Ok(Json(json!({"runs": started})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    snapshot: String,
    /// `HOST:PATH`.
    to: String,
    #[serde(default)]
    force: bool,
}

async fn restore(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(system): Path<String>,
    body: Result<Json<RestoreBody>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "restore backups")?;
    let Json(req) = body?;
    let (host, path) = req
        .to
        .split_once(':')
        .filter(|(h, p)| !h.is_empty() && p.starts_with('/'))
        .ok_or_else(|| AppError::BadRequest(format!("--to {:?} is not HOST:/absolute/path", req.to)))?;
    let snapshots = app.store.list_snapshots(&system).await?;
    let snapshot = snapshots
        .iter()
        .find(|s| s.snapshot_id == req.snapshot || s.snapshot_id.starts_with(&req.snapshot) && req.snapshot.len() >= 8)
        .ok_or_else(|| AppError::NotFound(format!("{system} has no restore point {}", req.snapshot)))?;
    let plans = plans_of(&app, &system, Some(&snapshot.plan))?;
    let plan = plans.first().ok_or_else(|| AppError::NotFound(format!("no plan {}", snapshot.plan)))?;
    let rr = RestoreRequest { plan, snapshot, host, target: path, drill: false, force: req.force, place: Vec::new() };
    let result = runs::start_restore(&app, &rr, &p.user).await;
    let detail = match &result {
        Ok(r) => json!({"snapshot": snapshot.snapshot_id, "to": req.to, "force": req.force, "run": r.id}),
        Err(e) => json!({"snapshot": snapshot.snapshot_id, "to": req.to, "force": req.force, "error": e.to_string()}),
    };
    app.audit(&p.user, "backup.restore", Some(&system), detail).await;
    Ok(Json(json!({"runs": [run_json(&app, &result?)]})))
}
