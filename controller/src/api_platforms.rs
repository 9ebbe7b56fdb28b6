//! The platform and VM endpoints of the API: `/api/v1/platforms…` and `/api/v1/vms…`.
//! Reading needs any reader role; syncing, power and snapshot changes need `operator` and are
//! audited with their outcome.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, ApiResult, Auth, READERS, require};
use crate::app::{App, AppError, Role, rfc3339};
use crate::platforms::actions::{self, ActionError, SnapshotAction};
use crate::platforms::{self, drift};
use crate::store::{PlatformRecord, VmRecord};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/platforms", get(list_platforms))
        .route("/api/v1/platforms/drift", get(show_drift))
        .route("/api/v1/platforms/{name}/sync", post(sync_platform))
        .route("/api/v1/vms", get(list_vms))
        .route("/api/v1/vms/{name}", get(show_vm))
        .route("/api/v1/vms/{name}/power", post(power_vm))
        .route("/api/v1/vms/{name}/snapshots", get(list_snapshots).post(change_snapshot))
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        ApiError(match e {
            ActionError::NotFound(_) | ActionError::NoPlatform(_) => AppError::NotFound(e.to_string()),
            ActionError::Ambiguous { .. } => AppError::BadRequest(e.to_string()),
            ActionError::Platform(m) => AppError::Upstream(m),
            ActionError::Store(s) => AppError::Store(s),
        })
    }
}

fn platform_json(p: &PlatformRecord, vms: usize) -> Value {
    let state = match p.up {
        Some(true) => "up",
        Some(false) => "down",
        None => "unknown",
    };
    json!({
        "name": p.name,
        "kind": p.kind,
        "site": p.site,
        "endpoint": p.endpoint,
        "state": state,
        "last_sync": p.last_sync.map(rfc3339),
        "last_attempt": p.last_attempt.map(rfc3339),
        "last_error": p.last_error,
        "last_sync_ms": p.last_duration_ms,
        "last_round_trips": p.last_round_trips,
        "vms": vms,
    })
}

async fn list_platforms(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read platforms")?;
    let vms = app.store.list_vms().await?;
    let configured: Vec<&str> = app.platforms.connections().iter().map(|c| c.name.as_str()).collect();
    let list = app
        .store
        .list_platforms()
        .await?
        .iter()
        .filter(|p| configured.contains(&p.name.as_str()))
        .map(|p| platform_json(p, vms.iter().filter(|v| v.platform == p.name).count()))
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn sync_platform(State(app): State<Arc<App>>, Auth(p): Auth, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "sync platforms")?;
    if app.platforms.connection(&name).is_none() {
        return Err(AppError::NotFound(format!("no platform named {name}")).into());
    }
    let summary = platforms::sync(&app, &name).await.map_err(AppError::Upstream)?;
    app.audit(&p.user, "platform.sync", Some(&name), json!({"ok": summary.ok, "error": summary.error})).await;
    Ok(Json(json!(summary)))
}

async fn show_drift(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read drift")?;
    let inv = app.inventory.clone().ok_or_else(|| {
        AppError::Conflict("the controller was started without an inventory; drift compares against one".into())
    })?;
    let plats = app.store.list_platforms().await?;
    let vms = app.store.list_vms().await?;
    let mut last = Vec::new();
    for p in &plats {
        if let Some(at) = p.last_sync {
            last.extend(app.store.vm_changes(&p.name, Some(at), None).await?);
        }
    }
    let mut d = json!(drift::drift(&inv, &plats, &vms, &last));
    d["changed"] = Value::Array(last.iter().filter(|c| drift::is_drift(c)).map(change_json).collect());
    Ok(Json(d))
}

/// A recorded change, with its time in RFC 3339.
fn change_json(c: &crate::store::VmChange) -> Value {
    let mut v = json!(c);
    v["at"] = json!(rfc3339(c.at));
    v
}

/// A VM as `vms list --json` prints it; with `detail`, as `vms show --json` does.
fn vm_json(v: &VmRecord, detail: bool) -> Value {
    let disk: u64 = v.info.disks.iter().map(|d| d.capacity_bytes).sum();
    let mut out = json!({
        "name": v.info.name,
        "id": v.vm_id,
        "platform": v.platform,
        "site": v.site,
        "host": v.info.host,
        "power_state": v.info.power_state,
        "vcpus": v.info.vcpus,
        "memory_bytes": v.info.memory_bytes,
        "disk_bytes": disk,
        "guest_os": v.info.guest_os,
        "system": v.system,
        "tags": v.info.tags,
    });
    if detail {
        out["disks"] = json!(v.info.disks);
        out["networks"] = json!(v.info.networks);
        out["first_seen"] = json!(rfc3339(v.first_seen));
        out["last_seen"] = json!(rfc3339(v.last_seen));
    }
    out
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VmQuery {
    system: Option<String>,
    platform: Option<String>,
    site: Option<String>,
}

async fn list_vms(State(app): State<Arc<App>>, Auth(p): Auth, Query(q): Query<VmQuery>) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read VMs")?;
    let vms = app.store.list_vms().await?;
    let list = vms
        .iter()
        .filter(|v| q.system.as_deref().is_none_or(|s| v.system.as_deref() == Some(s)))
        .filter(|v| q.platform.as_deref().is_none_or(|s| v.platform == s))
        .filter(|v| q.site.as_deref().is_none_or(|s| v.site.as_deref() == Some(s)))
        .map(|v| vm_json(v, false))
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn show_vm(State(app): State<Arc<App>>, Auth(p): Auth, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read VMs")?;
    let vms = app.store.list_vms().await?;
    let vm = actions::find(&vms, &name)?;
    let mut out = vm_json(vm, true);
    let history = app.store.vm_changes(&vm.platform, None, Some(&vm.vm_id)).await?;
    out["history"] = Value::Array(history.iter().map(change_json).collect());
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerRequest {
    /// `on`, `off` or `shutdown`.
    action: String,
}

async fn power_vm(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(name): Path<String>,
    body: Result<Json<PowerRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "change a VM's power")?;
    let Json(req) = body?;
    let action = req.action.parse().map_err(AppError::BadRequest)?;
    let result = actions::power(&app, &name, action).await;
    let detail = match &result {
        Ok(o) => json!({"action": req.action, "platform": o.platform, "operation": o.operation}),
        Err(e) => json!({"action": req.action, "error": e.to_string()}),
    };
    app.audit(&p.user, "vm.power", Some(&name), detail).await;
    Ok(Json(json!(result?)))
}

async fn list_snapshots(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read snapshots")?;
    Ok(Json(json!(actions::snapshot_list(&app, &name).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotRequest {
    /// `create`, `revert` or `delete`.
    action: String,
    /// The new snapshot's name (`create`) or the snapshot's id or unique name (the others).
    snapshot: String,
    #[serde(default)]
    description: String,
}

async fn change_snapshot(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(name): Path<String>,
    body: Result<Json<SnapshotRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "change snapshots")?;
    let Json(req) = body?;
    if req.snapshot.trim().is_empty() {
        return Err(AppError::BadRequest("snapshot must not be empty".into()).into());
    }
    let action = match req.action.as_str() {
        "create" => SnapshotAction::Create { name: req.snapshot.clone(), description: req.description.clone() },
        "revert" => SnapshotAction::Revert { snapshot: req.snapshot.clone() },
        "delete" => SnapshotAction::Delete { snapshot: req.snapshot.clone() },
        other => {
            return Err(AppError::BadRequest(format!(
                "unknown snapshot action {other:?}; use create, revert or delete"
            ))
            .into());
        }
    };
    let result = actions::snapshot(&app, &name, action).await;
    let detail = match &result {
        Ok(o) => {
            json!({"action": req.action, "snapshot": req.snapshot, "platform": o.platform, "operation": o.operation})
        }
        Err(e) => json!({"action": req.action, "snapshot": req.snapshot, "error": e.to_string()}),
    };
    app.audit(&p.user, "vm.snapshot", Some(&name), detail).await;
    Ok(Json(json!(result?)))
}
