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
use super::paging::{Collection, Query};
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
        .route("/v3/{project}/volumes", get(list::<Volume, false>).post(create_volume))
        .route("/v3/{project}/volumes/detail", get(list::<Volume, true>))
        .route("/v3/{project}/volumes/{id}", get(show::<Volume>).delete(delete_volume))
        .route("/v3/{project}/snapshots", get(list::<Snapshot, false>).post(create_snapshot))
        .route("/v3/{project}/snapshots/detail", get(list::<Snapshot, true>))
        .route("/v3/{project}/snapshots/{id}", get(show::<Snapshot>).delete(delete_snapshot))
        .route("/v3/{project}/backups", get(list::<Backup, false>).post(create_backup))
        .route("/v3/{project}/backups/detail", get(list::<Backup, true>))
        .route("/v3/{project}/backups/{id}", get(show::<Backup>).delete(delete_backup))
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

/// A Cinder collection (volumes, snapshots, backups): where it lives in the state and how
/// it is named, filtered and shown.
trait Resource: Stored + Sized {
    /// The body key of one object, e.g. `volume`.
    const KEY: &'static str;
    /// The collection's path segment and body key, e.g. `volumes`.
    const COLLECTION: &'static str;
    /// How error messages name it, e.g. `Volume`.
    const KIND: &'static str;
    fn all(st: &Cloud) -> &Vec<Self>;
    fn all_mut(st: &mut Cloud) -> &mut Vec<Self>;
    fn name(&self) -> Option<&str>;
    /// Filters beyond `name` and `status`.
    fn matches(&self, q: &Query) -> bool;
    fn view(&self, st: &Cloud, mv: Microversion, base: &str, detail: bool) -> Value;
}

/// Implements [`Resource`] for a type kept in the state's `$field` (also the collection's
/// path segment and body key), with `$matches` as its own filters.
macro_rules! resource {
    ($t:ty, $key:literal, $kind:literal, $field:ident, $view:ident, |$x:ident, $q:ident| $matches:expr) => {
        impl Resource for $t {
            const KEY: &'static str = $key;
            const COLLECTION: &'static str = stringify!($field);
            const KIND: &'static str = $kind;
            fn all(st: &Cloud) -> &Vec<Self> {
                &st.$field
            }
            fn all_mut(st: &mut Cloud) -> &mut Vec<Self> {
                &mut st.$field
            }
            fn name(&self) -> Option<&str> {
                self.name.as_deref()
            }
            fn matches(&self, $q: &Query) -> bool {
                let $x = self;
                $matches
            }
            fn view(&self, st: &Cloud, mv: Microversion, base: &str, detail: bool) -> Value {
                $view(st, self, mv, base, detail)
            }
        }
    };
}

resource!(Volume, "volume", "Volume", volumes, volume_view, |_v, _q| true);
resource!(Snapshot, "snapshot", "Snapshot", snapshots, snapshot_view, |s, q| of_volume(q, &s.volume_id));
resource!(Backup, "backup", "Backup", backups, backup_view, |b, q| of_volume(q, &b.volume_id));

/// `GET {COLLECTION}` (id, name, links) and, with `DETAIL`, `GET {COLLECTION}/detail`: newest
/// first, filtered by `name`, `status` and the type's own filters, paged.
async fn list<T: Resource, const DETAIL: bool>(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let q = query(raw.as_deref());
    let b = base(&sim, &project);
    let path = format!("{b}/{}", T::COLLECTION);
    let href = if DETAIL { format!("{path}/detail") } else { path };
    let coll = Collection { key: T::COLLECTION, href, service: Service::Volume, default_limit: MAX_LIMIT };
    let out = sim.store.read(|st| {
        check_project(st, &project)?;
        let items: Vec<&T> = T::all(st)
            .iter()
            .rev()
            .filter(|x| q.get("name").is_none_or(|n| x.name() == Some(n)))
            .filter(|x| q.get("status").is_none_or(|s| s.eq_ignore_ascii_case(x.status())))
            .filter(|x| x.matches(&q))
            .collect();
        coll.body(&q, items, |x| x.id(), |x| x.view(st, mv, &b, DETAIL))
    })??;
    reply(StatusCode::OK, out)
}

/// `GET {COLLECTION}/{id}`, in detail.
async fn show<T: Resource>(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult {
    let b = base(&sim, &project);
    let out = sim.store.read(|st| {
        check_project(st, &project)?;
        let x = T::all(st).iter().find(|x| x.id() == id).ok_or_else(|| not_found(T::KIND, &id))?;
        Ok::<_, ApiError>(x.view(st, mv, &b, true))
    })??;
    reply(StatusCode::OK, json!({ T::KEY: out }))
}

/// `POST {COLLECTION}`: `build` validates the request's `{KEY: {...}}` and returns the new
/// object (status `creating`) with why it will fail, if it will; unless an injected failure
/// is due first, it goes `available` (or `error`) after the action delay. The reply shows it
/// in detail when `detail`.
fn create<T: Resource>(
    sim: &Sim,
    project: &str,
    body: &[u8],
    mv: Microversion,
    detail: bool,
    build: impl FnOnce(&Cloud, &Value) -> Result<(T, Option<String>), ApiError>,
) -> ApiResult {
    let body = body_json(Service::Volume, body)?;
    let b = base(sim, project);
    let due_ms = due(sim);
    let out = sim.store.write(|st| {
        check_project(st, project)?;
        let r = body
            .get(T::KEY)
            .filter(|v| v.is_object())
            .ok_or_else(|| bad(format!("Missing required element '{}' in request body.", T::KEY)))?;
        let (mut x, reason) = build(st, r)?;
        // Taken only once the request is valid: a refused request leaves the fault armed.
        let injected =
            sim.faults.take_action_failure(Service::Volume).then(|| "simulated failure (fail_next_action)".to_owned());
        *x.lifecycle().0 = Some(Pending { op: StorageOp::Create, due_ms, fail: injected.or(reason) });
        let view = x.view(st, mv, &b, detail);
        T::all_mut(st).push(x);
        Ok::<_, ApiError>(view)
    })??;
    reply(StatusCode::ACCEPTED, json!({ T::KEY: out }))
}

/// `DELETE {COLLECTION}/{id}`: `check` refuses what Cinder refuses; then the object, and what
/// `cascade` marks with it, is `deleting` until the action delay has passed.
fn delete<T: Resource>(
    sim: &Sim,
    project: &str,
    id: &str,
    check: impl FnOnce(&Cloud, &T) -> Result<(), ApiError>,
    cascade: impl FnOnce(&mut Cloud, i64, i64),
) -> ApiResult {
    let due_ms = due(sim);
    sim.store.write(|st| {
        check_project(st, project)?;
        let x = T::all(st).iter().find(|x| x.id() == id).ok_or_else(|| not_found(T::KIND, id))?;
        check(st, x)?;
        let now = now_ms() / 1000;
        cascade(st, due_ms, now);
        if let Some(x) = T::all_mut(st).iter_mut().find(|x| x.id() == id) {
            x.begin_delete(due_ms, now);
        }
        Ok::<_, ApiError>(())
    })??;
    empty(StatusCode::ACCEPTED)
}

/// The `volume_id` list filter: absent, or naming `volume_id`.
fn of_volume(q: &Query, volume_id: &str) -> bool {
    q.get("volume_id").is_none_or(|v| v == volume_id)
}

/// The volume a snapshot or backup request names in `volume_id`.
fn source_volume<'a>(st: &'a Cloud, r: &Value) -> Result<&'a Volume, ApiError> {
    let vid = str_field(r, "volume_id")
        .ok_or_else(|| bad("Invalid input for field/attribute volume_id: 'volume_id' is a required property"))?;
    st.volumes.iter().find(|v| v.id == vid).ok_or_else(|| not_found("Volume", vid))
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

async fn create_volume(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult {
    create(&sim, &project, &body, mv, true, |st, r| {
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
                let i = st
                    .images
                    .iter()
                    .find(|i| i.id == iid)
                    .ok_or_else(|| bad("Invalid image identifier or unable to access requested image."))?;
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
            return Err(bad(format!(
                "Invalid input received: Volume size '{size}'GB cannot be smaller than the snapshot size {min}GB. They must be >= original snapshot size."
            )));
        }
        if let Some((_, min)) = &image
            && size < *min
        {
            return Err(bad(format!(
                "Invalid input received: Image minDisk size {min} is larger than the volume size {size}."
            )));
        }
        let vtype = str_field(r, "volume_type").unwrap_or("__DEFAULT__");
        if vtype != "__DEFAULT__" && vtype != stable_uuid("volume-type/__DEFAULT__") {
            return Err(ApiError::nova(
                StatusCode::NOT_FOUND,
                format!("Volume type with name {vtype} could not be found."),
            ));
        }
        let metadata = super::http::string_map(r.get("metadata")).map_err(bad)?;
        let pool = st.place_volume(size);
        let no_pool = pool.is_none().then(|| "No valid backend was found. No weighed backends available".to_owned());
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
            pending: None,
        };
        Ok((v, no_pool))
    })
}

async fn delete_volume(
    State(sim): State<Arc<Sim>>,
    Path((project, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let q = query(raw.as_deref());
    let cascade = q.get("cascade").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    let check = |st: &Cloud, v: &Volume| {
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
        Ok(())
    };
    delete(&sim, &project, &id, check, |st, due_ms, now| {
        for s in st.snapshots.iter_mut().filter(|s| s.volume_id == id) {
            s.begin_delete(due_ms, now);
        }
    })
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
    create(&sim, &project, &body, mv, true, |st, r| {
        let v = source_volume(st, r)?;
        // From 3.66 snapshots of in-use volumes need no force flag, and an explicit false is
        // refused (it would ask for the pre-3.66 refusal the API no longer makes).
        if mv.at_least(66) && r.get("force").is_some_and(|f| !f.is_null() && !flag(Some(f))) {
            return Err(bad("Invalid input received: force=False is not allowed from microversion 3.66"));
        }
        let in_use_ok = flag(r.get("force")) || mv.at_least(66);
        if !(v.status == "available" || (v.status == "in-use" && in_use_ok)) {
            return Err(bad(format!(
                "Invalid volume: Volume {} status must be available, but current status is: {}.",
                v.id, v.status
            )));
        }
        let now = now_ms() / 1000;
        let s = Snapshot {
            id: random_uuid(),
            name: str_field(r, "name").map(str::to_owned),
            description: str_field(r, "description").map(str::to_owned),
            volume_id: v.id.clone(),
            size: v.size,
            status: "creating".into(),
            metadata: super::http::string_map(r.get("metadata")).map_err(bad)?,
            created: now,
            updated: now,
            pending: None,
        };
        Ok((s, None))
    })
}

async fn delete_snapshot(State(sim): State<Arc<Sim>>, Path((project, id)): Path<(String, String)>) -> ApiResult {
    // Volumes cloned from the snapshot do not block it: Cinder's RBD driver flattens them.
    let check = |_: &Cloud, s: &Snapshot| {
        if !matches!(s.status.as_str(), "available" | "error") {
            return Err(bad(format!(
                "Invalid snapshot: Snapshot status must be available or error and must not be part of a group. (snapshot {id} is {})",
                s.status
            )));
        }
        Ok(())
    };
    delete(&sim, &project, &id, check, |_, _, _| {})
}

// ---------------------------------------------------------------- backups

/// Whether incremental backups were taken on top of `bk`.
fn has_dependents(st: &Cloud, bk: &Backup) -> bool {
    st.backups
        .iter()
        .any(|o| o.is_incremental && o.volume_id == bk.volume_id && o.created >= bk.created && o.id != bk.id)
}

fn backup_view(st: &Cloud, bk: &Backup, mv: Microversion, base: &str, detail: bool) -> Value {
    let mut out = json!({ "id": bk.id, "name": bk.name, "links": links(base, "backups", &bk.id) });
    if !detail {
        return out;
    }
    let dependent = has_dependents(st, bk);
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

/// The reply shows the new backup briefly (id, name, links), as Cinder does.
async fn create_backup(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult {
    create(&sim, &project, &body, mv, false, |st, r| {
        let v = source_volume(st, r)?;
        let vid = v.id.as_str();
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
            pending: None,
        };
        Ok((x, None))
    })
}

async fn delete_backup(State(sim): State<Arc<Sim>>, Path((project, id)): Path<(String, String)>) -> ApiResult {
    let check = |st: &Cloud, x: &Backup| {
        if !matches!(x.status.as_str(), "available" | "error") {
            return Err(bad(format!(
                "Invalid backup: Backup status must be available or error (backup {id} is {})",
                x.status
            )));
        }
        if has_dependents(st, x) && !x.is_incremental {
            return Err(bad("Invalid backup: Incremental backups exist for this backup."));
        }
        Ok(())
    };
    delete(&sim, &project, &id, check, |_, _, _| {})
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
