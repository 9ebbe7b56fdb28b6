//! `/api/v1/inventory` (the controller's inventory, for `mangrove ansible inventory` and
//! `import`) and `/api/v1/ansible/import` (plan, or apply with `apply: true`).
//!
//! Applying an import is an inventory change: it needs the operator role (or admin), is
//! written to the audit log naming the person, rewrites the controller's inventory file
//! (keeping the previous one next to it as `<file>.before-import-<ms>`) and registers the new
//! machines in the store at once; the rest of the new inventory (systems, sizes) is read when
//! the controller next starts, and the answer says so. Imports are planned against the file
//! as it is on disk, so a second import builds on the first.

use std::sync::Arc;

use ansible_compat::import;
use ansible_compat::loader::SourceFile;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiResult, Auth, READERS, require};
use crate::app::{App, AppError, Role, now_ms};
use crate::store::HostSeed;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/inventory", get(show_inventory))
        .route("/api/v1/ansible/import", post(import_inventory))
}

fn inventory(app: &App) -> Result<Arc<inventory::Inventory>, AppError> {
    app.inventory.clone().ok_or_else(|| AppError::Conflict("the controller was started without an inventory".into()))
}

async fn show_inventory(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read the inventory")?;
    let inv = inventory(&app)?;
    let v =
        serde_json::to_value(&*inv).map_err(|e| AppError::BadRequest(format!("cannot encode the inventory: {e}")))?;
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRequest {
    /// The Ansible inventory's files: the inventory itself and its group_vars/host_vars.
    files: Vec<ImportFile>,
    #[serde(default)]
    apply: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportFile {
    path: String,
    text: String,
}

async fn import_inventory(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<ImportRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(req) = body?;
    if req.apply {
        require(&p, &[Role::Operator], "change the inventory")?;
    } else {
        require(&p, READERS, "read the inventory")?;
    }
    // Plan against the inventory file as it is now (an earlier import may have changed it
    // since the controller started), so that one import never undoes another.
    let current = match &app.cfg.inventory {
        Some(path) => Arc::new(
            inventory::load_file(path)
                .map_err(|e| AppError::Conflict(format!("the controller's inventory file: {e}")))?,
        ),
        None => inventory(&app)?,
    };
    let files: Vec<SourceFile> = req.files.into_iter().map(|f| SourceFile { path: f.path, text: f.text }).collect();
    let ai = import::read_sources(&files).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let plan = import::plan(&ai, &current);
    let mut out = plan.to_json();
    out["applied"] = json!(false);
    if !req.apply {
        return Ok(Json(out));
    }
    if !plan.conflicts.is_empty() {
        return Err(AppError::Conflict(format!(
            "the import has {} conflict(s); nothing was applied: {}",
            plan.conflicts.len(),
            plan.conflicts.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        ))
        .into());
    }
    let path =
        app.cfg.inventory.clone().ok_or_else(|| AppError::Conflict("the controller has no inventory file".into()))?;
    let next = import::apply(&plan, &current).map_err(|e| AppError::Conflict(e.to_string()))?;
    if plan.add.is_empty() && plan.change.is_empty() {
        return Ok(Json(out));
    }
    let text = serde_json::to_string_pretty(&next)
        .map_err(|e| AppError::BadRequest(format!("cannot encode the inventory: {e}")))?;
    let backup = write_inventory(&path, &text)
        .map_err(|e| AppError::Conflict(format!("cannot write {}: {e}", path.display())))?;
    let seeds: Vec<HostSeed> = next
        .machines()
        .iter()
        .filter(|m| plan.add.iter().any(|a| a.name == m.name) || plan.change.iter().any(|c| c.name == m.name))
        .map(|m| HostSeed { name: m.name.to_string(), site: m.site.to_string(), kind: m.kind.as_str().to_string() })
        .collect();
    app.store.upsert_inventory_hosts(&seeds).await?;
    app.audit(
        &p.user,
        "inventory.import",
        Some(&path.display().to_string()),
        json!({"added": plan.add.iter().map(|a| &a.name).collect::<Vec<_>>(),
               "changed": plan.change.iter().map(|c| format!("{} {}: {} -> {}", c.name, c.field, c.from, c.to)).collect::<Vec<_>>(),
               "previous": backup.display().to_string()}),
    )
    .await;
    tracing::info!(by = p.user, added = plan.add.len(), changed = plan.change.len(), file = %path.display(), "inventory import applied");
    out["applied"] = json!(true);
    out["inventory_file"] = json!(path.display().to_string());
    out["previous_file"] = json!(backup.display().to_string());
    out["note"] =
        json!("new machines are registered now; the controller reads the rest of the new inventory at its next start");
    Ok(Json(out))
}

/// Writes the inventory atomically (a temporary file renamed over it), keeping the previous
/// file as `<file>.before-import-<ms>`; returns that path.
fn write_inventory(path: &std::path::Path, text: &str) -> std::io::Result<std::path::PathBuf> {
    let backup = std::path::PathBuf::from(format!("{}.before-import-{}", path.display(), now_ms()));
    std::fs::copy(path, &backup)?;
    let tmp = std::path::PathBuf::from(format!("{}.import-tmp", path.display()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(backup)
}
