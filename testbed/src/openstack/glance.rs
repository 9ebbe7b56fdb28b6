//! Glance (image API v2): version discovery, image list/show/create/delete and the data upload
//! and download. Uploaded bytes are kept in `state_dir/images/<id>` with their size, MD5
//! `checksum` and SHA-512 `os_hash_value`, as Glance records them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use futures::StreamExt;
use md5::Digest as _;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::http::{ApiError, ApiResult, body_json, empty, query, reply};
use super::paging::page;
use super::state::*;
use super::{Service, Sim};

const DEFAULT_LIMIT: usize = 25;
const DISK_FORMATS: [&str; 11] = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"];
const CONTAINER_FORMATS: [&str; 7] = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker"];
/// Keys a client may not set: Glance owns them.
const READ_ONLY: [&str; 11] = [
    "status",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
];

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/", get(versions))
        .route("/versions", get(versions))
        .route("/v2/images", get(list_images).post(create_image))
        .route("/v2/images/{id}", get(show_image).delete(delete_image))
        .route("/v2/images/{id}/file", put(upload).get(download))
        .fallback(|| async { ApiError::glance(StatusCode::NOT_FOUND, "The resource could not be found.") })
        .layer(axum::middleware::from_fn_with_state((sim.clone(), Service::Image), super::http::layer))
        .with_state(sim)
}

async fn versions(State(sim): State<Arc<Sim>>) -> ApiResult {
    let href = format!("{}/v2/", sim.url(Service::Image));
    let list: Vec<Value> = [("v2.16", "CURRENT"), ("v2.15", "SUPPORTED"), ("v2.9", "SUPPORTED"), ("v2.0", "SUPPORTED")]
        .iter()
        .map(|(id, status)| json!({ "id": id, "status": status, "links": [{ "rel": "self", "href": href }] }))
        .collect();
    reply(StatusCode::MULTIPLE_CHOICES, json!({ "versions": list }))
}

fn not_found(id: &str) -> ApiError {
    ApiError::glance(StatusCode::NOT_FOUND, format!("No image found with ID {id}"))
}

fn image_view(i: &Image) -> Value {
    let mut v = json!({
        "id": i.id, "name": i.name, "status": i.status, "visibility": i.visibility, "protected": i.protected,
        "container_format": i.container_format, "disk_format": i.disk_format, "size": i.size,
        "virtual_size": i.virtual_size, "checksum": i.checksum, "os_hash_algo": i.os_hash_algo,
        "os_hash_value": i.os_hash_value, "min_disk": i.min_disk, "min_ram": i.min_ram, "owner": i.owner,
        "tags": i.tags, "os_hidden": false, "created_at": iso_z(i.created), "updated_at": iso_z(i.updated),
        "self": format!("/v2/images/{}", i.id), "file": format!("/v2/images/{}/file", i.id),
        "schema": "/v2/schemas/image",
    });
    for (k, val) in &i.properties {
        v[k] = val.clone();
    }
    v
}

async fn list_images(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = query(raw.as_deref());
    let ids: Option<Vec<String>> = q.get("id").map(|v| match v.strip_prefix("in:") {
        Some(list) => list.split(',').filter(|s| !s.is_empty()).map(|s| s.trim_matches('"').to_owned()).collect(),
        None => vec![v.to_owned()],
    });
    let out = sim.store.read(|st| {
        let items: Vec<&Image> = st
            .images
            .iter()
            .rev()
            .filter(|i| q.get("name").is_none_or(|n| i.name.as_deref() == Some(n)))
            .filter(|i| ids.as_ref().is_none_or(|ids| ids.contains(&i.id)))
            .filter(|i| q.get("status").is_none_or(|s| s == i.status))
            .filter(|i| q.get("visibility").is_none_or(|s| s == "all" || s == i.visibility))
            .filter(|i| q.get("owner").is_none_or(|s| s == i.owner))
            .filter(|i| q.get("tag").is_none_or(|t| i.tags.iter().any(|x| x == t)))
            .collect();
        let (items, next) =
            page(items, |i| &i.id, &q, DEFAULT_LIMIT).map_err(|e| ApiError::page(Service::Image, &e))?;
        let mut body = json!({
            "images": items.iter().map(|i| image_view(i)).collect::<Vec<_>>(),
            "first": "/v2/images", "schema": "/v2/schemas/images",
        });
        if let Some(m) = next {
            body["next"] = json!(format!("/v2/images?{}", q.with_marker(&m)));
        }
        Ok::<_, ApiError>(body)
    })??;
    reply(StatusCode::OK, out)
}

async fn show_image(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> ApiResult {
    let out =
        sim.store.read(|st| st.images.iter().find(|i| i.id == id).map(image_view).ok_or_else(|| not_found(&id)))??;
    reply(StatusCode::OK, out)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::glance(StatusCode::BAD_REQUEST, message)
}

fn opt_str(v: &Value, key: &str) -> Result<Option<String>, ApiError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => {
            Err(bad(format!("Provided object does not match schema 'image': {other} is not of type 'string' ({key})")))
        }
    }
}

async fn create_image(State(sim): State<Arc<Sim>>, body: Bytes) -> ApiResult {
    let body = body_json(Service::Image, &body)?;
    let obj = body.as_object().cloned().unwrap_or_default();
    if let Some(k) = obj.keys().find(|k| READ_ONLY.contains(&k.as_str())) {
        return Err(ApiError::glance(StatusCode::FORBIDDEN, format!("Attribute '{k}' is read-only.")));
    }
    let disk_format = opt_str(&body, "disk_format")?;
    if let Some(d) = &disk_format
        && !DISK_FORMATS.contains(&d.as_str())
    {
        return Err(bad(format!("Invalid disk format '{d}' for image.")));
    }
    let container_format = opt_str(&body, "container_format")?;
    if let Some(c) = &container_format
        && !CONTAINER_FORMATS.contains(&c.as_str())
    {
        return Err(bad(format!("Invalid container format '{c}' for image.")));
    }
    let visibility = opt_str(&body, "visibility")?.unwrap_or_else(|| "shared".into());
    if !["public", "private", "shared", "community"].contains(&visibility.as_str()) {
        return Err(bad(format!("Invalid visibility value: {visibility}")));
    }
    let num = |k: &str| body.get(k).and_then(Value::as_u64).unwrap_or(0);
    let tags: Vec<String> = body
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let known =
        ["id", "name", "disk_format", "container_format", "visibility", "protected", "min_disk", "min_ram", "tags"];
    let properties: BTreeMap<String, Value> = obj.into_iter().filter(|(k, _)| !known.contains(&k.as_str())).collect();
    let id = opt_str(&body, "id")?.unwrap_or_else(random_uuid);
    let now = now_ms() / 1000;
    let out = sim.store.write(|st| {
        if st.images.iter().any(|i| i.id == id) {
            return Err(ApiError::glance(StatusCode::CONFLICT, format!("Image with identifier {id} already exists!")));
        }
        let img = Image {
            id: id.clone(),
            name: opt_str(&body, "name")?,
            status: "queued".into(),
            visibility,
            protected: body.get("protected").and_then(Value::as_bool).unwrap_or(false),
            container_format,
            disk_format,
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            min_disk: num("min_disk"),
            min_ram: num("min_ram"),
            owner: st.project_id.clone(),
            tags,
            stored: false,
            created: now,
            updated: now,
            properties,
        };
        let view = image_view(&img);
        st.images.push(img);
        Ok(view)
    })??;
    let mut resp = (StatusCode::CREATED, axum::Json(out)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/v2/images/{id}", sim.url(Service::Image))) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

fn image_path(sim: &Sim, id: &str) -> std::path::PathBuf {
    sim.cfg.state_dir.join("images").join(id)
}

async fn delete_image(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> ApiResult {
    let stored = sim.store.write(|st| {
        let i = st.images.iter().find(|i| i.id == id).ok_or_else(|| not_found(&id))?;
        if i.protected {
            return Err(ApiError::glance(
                StatusCode::FORBIDDEN,
                format!("Image {id} is protected and cannot be deleted."),
            ));
        }
        let stored = i.stored;
        st.images.retain(|i| i.id != id);
        Ok(stored)
    })??;
    if stored {
        let _ = tokio::fs::remove_file(image_path(&sim, &id)).await;
    }
    empty(StatusCode::NO_CONTENT)
}

/// Receives an image's bytes: queued → saving → active, with size and checksums recorded.
async fn upload(State(sim): State<Arc<Sim>>, Path(id): Path<String>, body: Body) -> ApiResult {
    sim.store.write(|st| {
        let i = st.images.iter_mut().find(|i| i.id == id).ok_or_else(|| not_found(&id))?;
        if i.disk_format.is_none() || i.container_format.is_none() {
            return Err(bad("Properties disk_format, container_format must be set prior to saving data."));
        }
        if i.status != "queued" {
            return Err(ApiError::glance(
                StatusCode::CONFLICT,
                format!("Image status transition from {} to saving is not allowed", i.status),
            ));
        }
        i.status = "saving".into();
        Ok(())
    })??;
    let result = receive(&sim, &id, body).await;
    let now = now_ms() / 1000;
    let (size, md5, sha512) = match result {
        Ok(r) => r,
        Err(e) => {
            // Glance puts the image back in `queued` when an upload breaks off.
            sim.store.write(|st| {
                if let Some(i) = st.images.iter_mut().find(|i| i.id == id) {
                    i.status = "queued".into();
                }
                Ok::<_, ApiError>(())
            })??;
            return Err(e);
        }
    };
    let gone = sim.store.write(|st| {
        let Some(i) = st.images.iter_mut().find(|i| i.id == id) else { return Ok::<_, ApiError>(true) };
        i.status = "active".into();
        i.size = Some(size);
        i.checksum = Some(md5);
        i.os_hash_algo = Some("sha512".into());
        i.os_hash_value = Some(sha512);
        i.stored = true;
        i.updated = now;
        Ok(false)
    })??;
    if gone {
        let _ = tokio::fs::remove_file(image_path(&sim, &id)).await;
        return Err(ApiError::glance(StatusCode::GONE, format!("Image {id} was deleted during the upload")));
    }
    empty(StatusCode::NO_CONTENT)
}

async fn receive(sim: &Sim, id: &str, body: Body) -> Result<(u64, String, String), ApiError> {
    let io = |e: std::io::Error| {
        ApiError::glance(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot store image data: {e}"))
    };
    let dir = sim.cfg.state_dir.join("images");
    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
    let part = dir.join(format!("{id}.part"));
    let mut file = tokio::fs::File::create(&part).await.map_err(io)?;
    let mut md5 = md5::Md5::new();
    let mut sha = <sha2::Sha512 as sha2::Digest>::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| bad(format!("error reading image data: {e}")))?;
        md5.update(&chunk);
        sha2::Digest::update(&mut sha, &chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.sync_all().await.map_err(io)?;
    tokio::fs::rename(&part, dir.join(id)).await.map_err(io)?;
    Ok((size, hex::encode(md5.finalize()), hex::encode(sha2::Digest::finalize(sha))))
}

async fn download(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> ApiResult {
    let (stored, checksum) = sim.store.read(|st| {
        st.images.iter().find(|i| i.id == id).map(|i| (i.stored, i.checksum.clone())).ok_or_else(|| not_found(&id))
    })??;
    if !stored {
        // Seeded images have metadata only; Glance answers 204 for an image without data.
        return empty(StatusCode::NO_CONTENT);
    }
    let bytes = tokio::fs::read(image_path(&sim, &id))
        .await
        .map_err(|e| ApiError::glance(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read image data: {e}")))?;
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response();
    if let Some(c) = checksum
        && let Ok(v) = HeaderValue::from_str(&c)
    {
        resp.headers_mut().insert("content-md5", v);
    }
    Ok(resp)
}
