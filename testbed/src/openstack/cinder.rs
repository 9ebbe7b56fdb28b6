//! Cinder (block storage API v3, microversions 3.0–3.71): volumes, snapshots, backups and the
//! scheduler's pools, under `/v3/{project_id}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{Value, json};

use super::http::{
    ApiError, ApiResult, Microversion, VOLUME_MAX, VOLUME_MIN, body_json, empty, query, reply, str_field,
};
use super::paging::{Query, page};
use super::state::State as Cloud;
use super::state::*;
use super::{Service, Sim};

const MAX_LIMIT: usize = 1000;
/// Statuses in which Cinder lets a volume be deleted.
const DELETABLE: [&str; 5] = ["available", "error", "error_restoring", "error_extending", "error_managing"];

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/", get(versions_root))
        .route("/v3", get(versions))
        .route("/v3/", get(versions))
        .route("/v3/{project}/volumes", get(list_volumes).post(create_volume))
        .route("/v3/{project}/volumes/detail", get(list_volumes_detail))
        .route("/v3/{project}/volumes/{id}", get(show_volume).delete(delete_volume))
        .route("/v3/{project}/snapshots", get(list_snapshots).post(create_snapshot))
        .route("/v3/{project}/snapshots/detail", get(list_snapshots_detail))
        .route("/v3/{project}/snapshots/{id}", get(show_snapshot).delete(delete_snapshot))
        .route("/v3/{project}/backups", get(list_backups).post(create_backup))
        .route("/v3/{project}/backups/detail", get(list_backups_detail))
        .route("/v3/{project}/backups/{id}", get(show_backup).delete(delete_backup))
        .route("/v3/{project}/scheduler-stats/get_pools", get(get_pools))
        .route("/v3/{project}/types", get(list_types))
        .fallback(|| async { ApiError::nova(StatusCode::NOT_FOUND, "The resource could not be found.") })
        .layer(axum::middleware::from_fn_with_state((sim.clone(), Service::Volume), super::http::layer))
        .with_state(sim)
}

fn versions_doc(sim: &Sim) -> Value {
    json!({ "versions": [{
        "id": "v3.0", "status": "CURRENT",
        "version": format!("{}.{}", VOLUME_MAX.0, VOLUME_MAX.1),
        "min_version": format!("{}.{}", VOLUME_MIN.0, VOLUME_MIN.1),
        "updated": "2023-08-31T00:00:00Z",
        "links": [{ "rel": "self", "href": format!("{}/v3/", sim.url(Service::Volume)) }],
        "media-types": [{ "base": "application/json", "type": "application/vnd.openstack.volume+json;version=3" }],
    }]})
}

async fn versions_root(State(sim): State<Arc<Sim>>) -> ApiResult {
    reply(StatusCode::MULTIPLE_CHOICES, versions_doc(&sim))
}

async fn versions(State(sim): State<Arc<Sim>>) -> ApiResult {
    reply(StatusCode::OK, versions_doc(&sim))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::nova(StatusCode::BAD_REQUEST, message)
}

fn not_found(kind: &str, id: &str) -> ApiError {
    ApiError::nova(StatusCode::NOT_FOUND, format!("{kind} {id} could not be found."))
}

/// The URL's project must be the token's (the only one).
fn check_project(st: &Cloud, project: &str) -> Result<(), ApiError> {
    if project == st.project_id { Ok(()) } else { Err(bad("Malformed request url")) }
}

fn base(sim: &Sim, project: &str) -> String {
    format!("{}/v3/{project}", sim.url(Service::Volume))
}

fn links(base: &str, kind: &str, id: &str) -> Value {
    json!([{ "rel": "self", "href": format!("{base}/{kind}/{id}") }, { "rel": "bookmark", "href": format!("{base}/{kind}/{id}") }])
}

fn due(sim: &Sim) -> i64 {
    now_ms().saturating_add(i64::try_from(sim.cfg.action_delay.as_millis()).unwrap_or(i64::MAX / 4))
}

/// A list response with its `*_links` when more remain.
fn listed(key: &str, list: Vec<Value>, href: &str, q: &Query, next: Option<String>) -> Value {
    let mut body = json!({ key: list });
    if let Some(m) = next {
        body[format!("{key}_links")] = json!([{ "rel": "next", "href": format!("{href}?{}", q.with_marker(&m)) }]);
    }
    body
}

fn matches_common(q: &Query, name: Option<&str>, status: &str) -> bool {
    q.get("name").is_none_or(|n| name == Some(n)) && q.get("status").is_none_or(|s| s.eq_ignore_ascii_case(status))
}

// ---------------------------------------------------------------- volumes

fn volume_view(st: &Cloud, v: &Volume, mv: Microversion, base: &str, detail: bool) -> Value {
    let mut out = json!({ "id": v.id, "name": v.name, "links": links(base, "volumes", &v.id) });
    if !detail {
        return out;
    }
    let attachments: Vec<Value> = v
        .attachments
        .iter()
        .map(|a| {
            let host = st.servers.iter().find(|s| s.id == a.server_id).and_then(|s| s.host.clone());
            json!({ "id": v.id, "attachment_id": a.id, "volume_id": v.id, "server_id": a.server_id,
                    "host_name": host, "device": a.device, "attached_at": iso_micro(a.attached_at) })
        })
        .collect();
    let extra = json!({
        "description": v.description, "status": v.status, "size": v.size, "attachments": attachments,
        "volume_type": v.volume_type, "bootable": if v.bootable { "true" } else { "false" },
        "availability_zone": "nova", "created_at": iso_micro(v.created), "updated_at": iso_micro(v.updated),
        "metadata": v.metadata, "multiattach": false, "encrypted": false, "replication_status": null,
        "consistencygroup_id": null, "source_volid": null, "snapshot_id": v.snapshot_id,
        "user_id": st.user_id, "os-vol-tenant-attr:tenant_id": st.project_id,
        "os-vol-host-attr:host": v.pool, "os-vol-mig-status-attr:migstat": null,
        "os-vol-mig-status-attr:name_id": null,
    });
    if let (Some(o), Some(e)) = (out.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    if let Some(img) = &v.image_id {
        out["volume_image_metadata"] = json!({ "image_id": img });
    }
    if mv.at_least(13) {
        out["group_id"] = Value::Null;
    }
    if mv.at_least(48) {
        out["shared_targets"] = json!(false);
        out["service_uuid"] = json!(stable_uuid("service/cinder-volume"));
    }
    if mv.at_least(61) {
        out["cluster_name"] = Value::Null;
    }
    if mv.at_least(63) {
        out["volume_type_id"] = json!(stable_uuid("volume-type/__DEFAULT__"));
    }
    if mv.at_least(65) {
        out["consumes_quota"] = json!(true);
    }
    out
}

fn list_volumes_common(sim: &Sim, mv: Microversion, project: &str, raw: Option<&str>, detail: bool) -> ApiResult {
    let q = query(raw);
    let b = base(sim, project);
    let out = sim.store.read(|st| {
        check_project(st, project)?;
        let items: Vec<&Volume> =
            st.volumes.iter().rev().filter(|v| matches_common(&q, v.name.as_deref(), &v.status)).collect();
        let (items, next) = page(items, |v| &v.id, &q, MAX_LIMIT).map_err(|e| ApiError::page(Service::Volume, &e))?;
        let list = items.iter().map(|v| volume_view(st, v, mv, &b, detail)).collect();
        let href = if detail { format!("{b}/volumes/detail") } else { format!("{b}/volumes") };
        Ok::<_, ApiError>(listed("volumes", list, &href, &q, next))
    })??;
    reply(StatusCode::OK, out)
}

async fn list_volumes(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    list_volumes_common(&sim, mv, &project, raw.as_deref(), false)
}

async fn list_volumes_detail(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    list_volumes_common(&sim, mv, &project, raw.as_deref(), true)
}

async fn show_volume(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult {
    let b = base(&sim, &project);
    let out = sim.store.read(|st| {
        check_project(st, &project)?;
        let v = st.volumes.iter().find(|v| v.id == id).ok_or_else(|| not_found("Volume", &id))?;
        Ok::<_, ApiError>(volume_view(st, v, mv, &b, true))
    })??;
    reply(StatusCode::OK, json!({ "volume": out }))
}

async fn create_volume(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = body_json(Service::Volume, &body)?;
    let b = base(&sim, &project);
    let due_ms = due(&sim);
    let sim2 = sim.clone();
    let out = sim.store.write(|st| {
        check_project(st, &project)?;
        let r = body.get("volume").filter(|v| v.is_object()).ok_or_else(|| bad("Missing required element 'volume' in request body."))?;
        let snapshot = match str_field(r, "snapshot_id") {
            Some(sid) => {
                let s = st.snapshots.iter().find(|s| s.id == sid).ok_or_else(|| not_found("Snapshot", sid))?;
                if s.status != "available" {
                    return Err(bad("Invalid snapshot: Originating snapshot status must be one of 'available' values"));
                }
                Some((s.id.clone(), s.size))
            }
            None => None,
        };
        let image = match str_field(r, "imageRef") {
            Some(iid) => {
                let i = st.images.iter().find(|i| i.id == iid).ok_or_else(|| bad("Invalid image identifier or unable to access requested image."))?;
                let gib = i.size.unwrap_or(0).div_ceil(1 << 30).max(i.min_disk);
                Some((i.id.clone(), gib))
            }
            None => None,
        };
        let size = match r.get("size") {
            Some(Value::Number(n)) => n.as_u64().filter(|n| *n >= 1),
            Some(Value::String(s)) => s.parse::<u64>().ok().filter(|n| *n >= 1),
            None | Some(Value::Null) => snapshot.as_ref().map(|s| s.1),
            _ => None,
        }
        .ok_or_else(|| bad("Invalid input for field/attribute size. Value: must be an integer of at least 1."))?;
        if let Some((_, min)) = &snapshot
            && size < *min
        {
            return Err(bad(format!("Invalid input received: Volume size '{size}'GB cannot be smaller than the snapshot size {min}GB. They must be >= original snapshot size.")));
        }
        if let Some((_, min)) = &image
            && size < *min
        {
            return Err(bad(format!("Invalid input received: Image minDisk size {min} is larger than the volume size {size}.")));
        }
        let vtype = str_field(r, "volume_type").unwrap_or("__DEFAULT__");
        if vtype != "__DEFAULT__" && vtype != stable_uuid("volume-type/__DEFAULT__") {
            return Err(ApiError::nova(StatusCode::NOT_FOUND, format!("Volume type with name {vtype} could not be found.")));
        }
        let metadata = super::http::string_map(r.get("metadata")).map_err(bad)?;
        let pool = st.place_volume(size);
        let fail = if sim2.faults.take_action_failure(Service::Volume) {
            Some("simulated failure (fail_next_action)".to_owned())
        } else if pool.is_none() {
            Some("No valid backend was found. No weighed backends available".to_owned())
        } else {
            None
        };
        let now = now_ms() / 1000;
        let v = Volume {
            id: random_uuid(),
            name: str_field(r, "name").map(str::to_owned),
            description: str_field(r, "description").map(str::to_owned),
            size,
            status: "creating".into(),
            volume_type: "__DEFAULT__".into(),
            bootable: image.is_some(),
            pool: pool.unwrap_or_default(),
            attachments: Vec::new(),
            metadata,
            snapshot_id: snapshot.map(|s| s.0),
            image_id: image.map(|i| i.0),
            created: now,
            updated: now,
            pending: Some(Pending { op: StorageOp::Create, due_ms, fail }),
        };
        let view = volume_view(st, &v, mv, &b, true);
        st.volumes.push(v);
        Ok(view)
    })??;
    reply(StatusCode::ACCEPTED, json!({ "volume": out }))
}

async fn delete_volume(
    State(sim): State<Arc<Sim>>,
    Path((project, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let q = query(raw.as_deref());
    let cascade = q.get("cascade").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    let due_ms = due(&sim);
    sim.store.write(|st| {
        check_project(st, &project)?;
        let v = st.volumes.iter().find(|v| v.id == id).ok_or_else(|| not_found("Volume", &id))?;
        let snaps = st.snapshots.iter().filter(|s| s.volume_id == id).count();
        if !DELETABLE.contains(&v.status.as_str()) || !v.attachments.is_empty() || (snaps > 0 && !cascade) {
            return Err(bad(format!(
                "Invalid volume: Volume status must be available or error or error_restoring or error_extending or \
                 error_managing and must not be migrating, attached, belong to a group, have snapshots ({snaps} \
                 now; delete them or pass cascade=True), awaiting a transfer, or be disassociated from snapshots \
                 after volume transfer. (volume {id} is {})",
                v.status
            )));
        }
        let now = now_ms() / 1000;
        for s in st.snapshots.iter_mut().filter(|s| s.volume_id == id) {
            s.status = "deleting".into();
            s.updated = now;
            s.pending = Some(Pending { op: StorageOp::Delete, due_ms, fail: None });
        }
        if let Some(v) = st.volumes.iter_mut().find(|v| v.id == id) {
            v.status = "deleting".into();
            v.updated = now;
            v.pending = Some(Pending { op: StorageOp::Delete, due_ms, fail: None });
        }
        Ok::<_, ApiError>(())
    })??;
    empty(StatusCode::ACCEPTED)
}

// ---------------------------------------------------------------- snapshots

fn snapshot_view(st: &Cloud, s: &Snapshot, mv: Microversion, base: &str, detail: bool) -> Value {
    let mut out = json!({
        "id": s.id, "name": s.name, "description": s.description, "status": s.status, "size": s.size,
        "volume_id": s.volume_id, "created_at": iso_micro(s.created), "updated_at": iso_micro(s.updated),
        "metadata": s.metadata, "links": links(base, "snapshots", &s.id),
    });
    if detail {
        let progress = if s.status == "creating" { "0%" } else { "100%" };
        out["os-extended-snapshot-attributes:progress"] = json!(progress);
        out["os-extended-snapshot-attributes:project_id"] = json!(st.project_id);
    }
    if mv.at_least(14) {
        out["group_snapshot_id"] = Value::Null;
    }
    if mv.at_least(41) {
        out["user_id"] = json!(st.user_id);
    }
    if mv.at_least(65) {
        out["consumes_quota"] = json!(true);
    }
    out
}

fn list_snapshots_common(sim: &Sim, mv: Microversion, project: &str, raw: Option<&str>, detail: bool) -> ApiResult {
    let q = query(raw);
    let b = base(sim, project);
    let out = sim.store.read(|st| {
        check_project(st, project)?;
        let items: Vec<&Snapshot> = st
            .snapshots
            .iter()
            .rev()
            .filter(|s| matches_common(&q, s.name.as_deref(), &s.status))
            .filter(|s| q.get("volume_id").is_none_or(|v| v == s.volume_id))
            .collect();
        let (items, next) = page(items, |s| &s.id, &q, MAX_LIMIT).map_err(|e| ApiError::page(Service::Volume, &e))?;
        let list = items.iter().map(|s| snapshot_view(st, s, mv, &b, detail)).collect();
        let href = if detail { format!("{b}/snapshots/detail") } else { format!("{b}/snapshots") };
        Ok::<_, ApiError>(listed("snapshots", list, &href, &q, next))
    })??;
    reply(StatusCode::OK, out)
}

async fn list_snapshots(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    list_snapshots_common(&sim, mv, &project, raw.as_deref(), false)
}

async fn list_snapshots_detail(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    list_snapshots_common(&sim, mv, &project, raw.as_deref(), true)
}

async fn show_snapshot(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult {
    let b = base(&sim, &project);
    let out = sim.store.read(|st| {
        check_project(st, &project)?;
        let s = st.snapshots.iter().find(|s| s.id == id).ok_or_else(|| not_found("Snapshot", &id))?;
        Ok::<_, ApiError>(snapshot_view(st, s, mv, &b, true))
    })??;
    reply(StatusCode::OK, json!({ "snapshot": out }))
}

/// `force` as clients send it: a JSON boolean or a string such as `"True"`.
fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"),
        _ => false,
    }
}

async fn create_snapshot(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = body_json(Service::Volume, &body)?;
    let b = base(&sim, &project);
    let due_ms = due(&sim);
    let sim2 = sim.clone();
    let out = sim.store.write(|st| {
        check_project(st, &project)?;
        let r = body
            .get("snapshot")
            .filter(|v| v.is_object())
            .ok_or_else(|| bad("Missing required element 'snapshot' in request body."))?;
        let vid = str_field(r, "volume_id")
            .ok_or_else(|| bad("Invalid input for field/attribute volume_id: 'volume_id' is a required property"))?;
        let v = st.volumes.iter().find(|v| v.id == vid).ok_or_else(|| not_found("Volume", vid))?;
        // From 3.66 snapshots of in-use volumes need no force flag, and an explicit false is
        // refused (it would ask for the pre-3.66 refusal the API no longer makes).
        if mv.at_least(66) && r.get("force").is_some_and(|f| !f.is_null() && !flag(Some(f))) {
            return Err(bad("Invalid input received: force=False is not allowed from microversion 3.66"));
        }
        let in_use_ok = flag(r.get("force")) || mv.at_least(66);
        if !(v.status == "available" || (v.status == "in-use" && in_use_ok)) {
            return Err(bad(format!(
                "Invalid volume: Volume {vid} status must be available, but current status is: {}.",
                v.status
            )));
        }
        let fail =
            sim2.faults.take_action_failure(Service::Volume).then(|| "simulated failure (fail_next_action)".to_owned());
        let now = now_ms() / 1000;
        let s = Snapshot {
            id: random_uuid(),
            name: str_field(r, "name").map(str::to_owned),
            description: str_field(r, "description").map(str::to_owned),
            volume_id: vid.to_owned(),
            size: v.size,
            status: "creating".into(),
            metadata: super::http::string_map(r.get("metadata")).map_err(bad)?,
            created: now,
            updated: now,
            pending: Some(Pending { op: StorageOp::Create, due_ms, fail }),
        };
        let view = snapshot_view(st, &s, mv, &b, true);
        st.snapshots.push(s);
        Ok(view)
    })??;
    reply(StatusCode::ACCEPTED, json!({ "snapshot": out }))
}

async fn delete_snapshot(State(sim): State<Arc<Sim>>, Path((project, id)): Path<(String, String)>) -> ApiResult {
    let due_ms = due(&sim);
    sim.store.write(|st| {
        check_project(st, &project)?;
        let in_use = st.volumes.iter().filter(|v| v.snapshot_id.as_deref() == Some(id.as_str())).count();
        let s = st.snapshots.iter_mut().find(|s| s.id == id).ok_or_else(|| not_found("Snapshot", &id))?;
        if !matches!(s.status.as_str(), "available" | "error") {
            return Err(bad(format!(
                "Invalid snapshot: Snapshot status must be available or error and must not be part of a group. (snapshot {id} is {})",
                s.status
            )));
        }
        // RBD clones depend on their snapshot; Cinder's RBD driver flattens them, so allow it.
        let _ = in_use;
        s.status = "deleting".into();
        s.updated = now_ms() / 1000;
        s.pending = Some(Pending { op: StorageOp::Delete, due_ms, fail: None });
        Ok::<_, ApiError>(())
    })??;
    empty(StatusCode::ACCEPTED)
}

// ---------------------------------------------------------------- backups

fn backup_view(st: &Cloud, bk: &Backup, mv: Microversion, base: &str, detail: bool) -> Value {
    let mut out = json!({ "id": bk.id, "name": bk.name, "links": links(base, "backups", &bk.id) });
    if !detail {
        return out;
    }
    let dependent = st
        .backups
        .iter()
        .any(|o| o.is_incremental && o.volume_id == bk.volume_id && o.created >= bk.created && o.id != bk.id);
    let extra = json!({
        "description": bk.description, "status": bk.status, "size": bk.size, "volume_id": bk.volume_id,
        "snapshot_id": bk.snapshot_id, "container": bk.container, "availability_zone": "nova",
        "created_at": iso_micro(bk.created), "updated_at": iso_micro(bk.updated),
        "data_timestamp": iso_micro(bk.created), "fail_reason": if bk.status == "error" { json!("simulated failure") } else { Value::Null },
        "object_count": if bk.status == "available" { bk.size.div_ceil(1) * 16 } else { 0 },
        "is_incremental": bk.is_incremental, "has_dependent_backups": dependent,
        "os-backup-project-attr:project_id": st.project_id,
    });
    if let (Some(o), Some(e)) = (out.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    if mv.at_least(43) {
        out["metadata"] = json!({});
    }
    if mv.at_least(56) {
        out["user_id"] = json!(st.user_id);
    }
    out
}

fn list_backups_common(sim: &Sim, mv: Microversion, project: &str, raw: Option<&str>, detail: bool) -> ApiResult {
    let q = query(raw);
    let b = base(sim, project);
    let out = sim.store.read(|st| {
        check_project(st, project)?;
        let items: Vec<&Backup> = st
            .backups
            .iter()
            .rev()
            .filter(|x| matches_common(&q, x.name.as_deref(), &x.status))
            .filter(|x| q.get("volume_id").is_none_or(|v| v == x.volume_id))
            .collect();
        let (items, next) = page(items, |x| &x.id, &q, MAX_LIMIT).map_err(|e| ApiError::page(Service::Volume, &e))?;
        let list = items.iter().map(|x| backup_view(st, x, mv, &b, detail)).collect();
        let href = if detail { format!("{b}/backups/detail") } else { format!("{b}/backups") };
        Ok::<_, ApiError>(listed("backups", list, &href, &q, next))
    })??;
    reply(StatusCode::OK, out)
}

async fn list_backups(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    list_backups_common(&sim, mv, &project, raw.as_deref(), false)
}

async fn list_backups_detail(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    list_backups_common(&sim, mv, &project, raw.as_deref(), true)
}

async fn show_backup(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult {
    let b = base(&sim, &project);
    let out = sim.store.read(|st| {
        check_project(st, &project)?;
        let x = st.backups.iter().find(|x| x.id == id).ok_or_else(|| not_found("Backup", &id))?;
        Ok::<_, ApiError>(backup_view(st, x, mv, &b, true))
    })??;
    reply(StatusCode::OK, json!({ "backup": out }))
}

async fn create_backup(State(sim): State<Arc<Sim>>, Path(project): Path<String>, body: Bytes) -> ApiResult {
    let body = body_json(Service::Volume, &body)?;
    let b = base(&sim, &project);
    let due_ms = due(&sim);
    let sim2 = sim.clone();
    let out = sim.store.write(|st| {
        check_project(st, &project)?;
        let r = body
            .get("backup")
            .filter(|v| v.is_object())
            .ok_or_else(|| bad("Missing required element 'backup' in request body."))?;
        let vid = str_field(r, "volume_id")
            .ok_or_else(|| bad("Invalid input for field/attribute volume_id: 'volume_id' is a required property"))?;
        let v = st.volumes.iter().find(|v| v.id == vid).ok_or_else(|| not_found("Volume", vid))?;
        if v.status == "in-use" && !flag(r.get("force")) {
            return Err(bad("Invalid volume: Backing up an in-use volume must use the force flag."));
        }
        if !matches!(v.status.as_str(), "available" | "in-use") {
            return Err(bad(format!(
                "Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"{}\".",
                v.status
            )));
        }
        let incremental = flag(r.get("incremental"));
        if incremental && !st.backups.iter().any(|x| x.volume_id == vid && x.status == "available") {
            return Err(bad("Invalid backup: No backups available to do an incremental backup."));
        }
        let snapshot_id = str_field(r, "snapshot_id").map(str::to_owned);
        if let Some(sid) = &snapshot_id
            && !st.snapshots.iter().any(|s| &s.id == sid && s.volume_id == vid)
        {
            return Err(not_found("Snapshot", sid));
        }
        let fail =
            sim2.faults.take_action_failure(Service::Volume).then(|| "simulated failure (fail_next_action)".to_owned());
        let now = now_ms() / 1000;
        let x = Backup {
            id: random_uuid(),
            name: str_field(r, "name").map(str::to_owned),
            description: str_field(r, "description").map(str::to_owned),
            volume_id: vid.to_owned(),
            snapshot_id,
            size: v.size,
            status: "creating".into(),
            container: Some(str_field(r, "container").unwrap_or("volumebackups").to_owned()),
            is_incremental: incremental,
            created: now,
            updated: now,
            pending: Some(Pending { op: StorageOp::Create, due_ms, fail }),
        };
        let view = json!({ "id": x.id, "name": x.name, "links": links(&b, "backups", &x.id) });
        st.backups.push(x);
        Ok(view)
    })??;
    reply(StatusCode::ACCEPTED, json!({ "backup": out }))
}

async fn delete_backup(State(sim): State<Arc<Sim>>, Path((project, id)): Path<(String, String)>) -> ApiResult {
    let due_ms = due(&sim);
    sim.store.write(|st| {
        check_project(st, &project)?;
        let x = st.backups.iter().find(|x| x.id == id).ok_or_else(|| not_found("Backup", &id))?;
        let dependent = st
            .backups
            .iter()
            .any(|o| o.is_incremental && o.volume_id == x.volume_id && o.created >= x.created && o.id != x.id);
        if !matches!(x.status.as_str(), "available" | "error") {
            return Err(bad(format!(
                "Invalid backup: Backup status must be available or error (backup {id} is {})",
                x.status
            )));
        }
        if dependent && !x.is_incremental {
            return Err(bad("Invalid backup: Incremental backups exist for this backup."));
        }
        if let Some(x) = st.backups.iter_mut().find(|x| x.id == id) {
            x.status = "deleting".into();
            x.updated = now_ms() / 1000;
            x.pending = Some(Pending { op: StorageOp::Delete, due_ms, fail: None });
        }
        Ok::<_, ApiError>(())
    })??;
    empty(StatusCode::ACCEPTED)
}

// ---------------------------------------------------------------- pools and types

async fn get_pools(State(sim): State<Arc<Sim>>, Path(project): Path<String>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = query(raw.as_deref());
    let detail = q.get("detail").is_some_and(|d| d.eq_ignore_ascii_case("true"));
    let out = sim.store.read(|st| {
        check_project(st, &project)?;
        let pools: Vec<Value> = st
            .pools
            .iter()
            .map(|p| {
                if !detail {
                    return json!({ "name": p.name });
                }
                let allocated = st.pool_allocated(&p.name);
                let free = ((p.total_capacity_gb - allocated as f64) * 100.0).round() / 100.0;
                let pool_name = p.name.rsplit('#').next().unwrap_or(&p.name);
                json!({ "name": p.name, "capabilities": {
                    "pool_name": pool_name, "volume_backend_name": "rbd", "storage_protocol": "ceph",
                    "vendor_name": "Open Source", "driver_version": "1.2.0",
                    "total_capacity_gb": p.total_capacity_gb, "free_capacity_gb": free,
                    "allocated_capacity_gb": allocated, "provisioned_capacity_gb": allocated,
                    "reserved_percentage": 0, "thin_provisioning_support": true,
                    "thick_provisioning_support": false, "max_over_subscription_ratio": "20.0",
                    "multiattach": true, "backend_state": "up", "location_info": format!("ceph:/etc/ceph/ceph.conf:{}", stable_uuid("ceph-fsid")),
                    "timestamp": iso_micro(now_ms() / 1000),
                }})
            })
            .collect();
        Ok::<_, ApiError>(json!({ "pools": pools }))
    })??;
    reply(StatusCode::OK, out)
}

async fn list_types(State(sim): State<Arc<Sim>>, Path(project): Path<String>) -> ApiResult {
    sim.store.read(|st| check_project(st, &project))??;
    reply(
        StatusCode::OK,
        json!({ "volume_types": [{
            "id": stable_uuid("volume-type/__DEFAULT__"), "name": "__DEFAULT__", "description": "Default Volume Type",
            "is_public": true, "extra_specs": {}, "os-volume-type-access:is_public": true, "qos_specs_id": null,
        }]}),
    )
}
