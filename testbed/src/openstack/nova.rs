//! Nova (compute API v2.1, microversions 2.1–2.96): servers with their lifecycle, flavors
//! and hypervisors.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::{Value, json};

use super::http::{ApiError, ApiResult, COMPUTE_MAX, COMPUTE_MIN, Microversion, body_json, empty, query, reply};
use super::paging::{Collection, Query};
use super::state::State as Cloud;
use super::state::*;
use super::{Service, Sim};

const MAX_LIMIT: usize = 1000;

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/", get(versions))
        .route("/v2.1", get(version))
        .route("/v2.1/", get(version))
        .route("/v2.1/servers", get(list_servers::<false>).post(create_server))
        .route("/v2.1/servers/detail", get(list_servers::<true>))
        .route("/v2.1/servers/{id}", get(show_server).delete(delete_server))
        .route("/v2.1/servers/{id}/action", post(server_action))
        .route("/v2.1/flavors", get(list_flavors::<false>))
        .route("/v2.1/flavors/detail", get(list_flavors::<true>))
        .route("/v2.1/flavors/{id}", get(show_flavor))
        .route("/v2.1/os-hypervisors", get(list_hypervisors::<false>))
        .route("/v2.1/os-hypervisors/detail", get(list_hypervisors::<true>))
        .route("/v2.1/os-hypervisors/statistics", get(hypervisor_statistics))
        .route("/v2.1/os-hypervisors/{id}", get(show_hypervisor))
        .fallback(|| async { ApiError::nova(StatusCode::NOT_FOUND, "The resource could not be found.") })
        .layer(axum::middleware::from_fn_with_state((sim.clone(), Service::Compute), super::http::layer))
        .with_state(sim)
}

fn base(sim: &Sim) -> String {
    format!("{}/v2.1", sim.url(Service::Compute))
}

fn version_doc(sim: &Sim) -> Value {
    json!({
        "id": "v2.1", "status": "CURRENT",
        "version": format!("{}.{}", COMPUTE_MAX.0, COMPUTE_MAX.1),
        "min_version": format!("{}.{}", COMPUTE_MIN.0, COMPUTE_MIN.1),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{ "rel": "self", "href": format!("{}/", base(sim)) }],
        "media-types": [{ "base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1" }],
    })
}

async fn versions(State(sim): State<Arc<Sim>>) -> ApiResult {
    reply(StatusCode::OK, json!({ "versions": [version_doc(&sim)] }))
}

async fn version(State(sim): State<Arc<Sim>>) -> ApiResult {
    reply(StatusCode::OK, json!({ "version": version_doc(&sim) }))
}

fn links(base: &str, kind: &str, id: &str) -> Value {
    let root = base.trim_end_matches("/v2.1");
    json!([{ "rel": "self", "href": format!("{base}/{kind}/{id}") }, { "rel": "bookmark", "href": format!("{root}/{kind}/{id}") }])
}

fn bookmark(base: &str, kind: &str, id: &str) -> Value {
    json!({ "rel": "bookmark", "href": format!("{}/{kind}/{id}", base.trim_end_matches("/v2.1")) })
}

/// The list at `{base}/{path}` (`{base}/{path}/detail` when `detail`), whose body key is the
/// path's last segment.
fn collection<'a>(base: &str, path: &'a str, detail: bool) -> Collection<'a> {
    let href = if detail { format!("{base}/{path}/detail") } else { format!("{base}/{path}") };
    let key = path.rsplit('-').next().unwrap_or(path);
    Collection { key, href, service: Service::Compute, default_limit: MAX_LIMIT }
}

/// `{ key: view }` of the object `find` finds, or the `missing` error.
fn show(
    sim: &Sim,
    key: &str,
    find: impl FnOnce(&Cloud) -> Option<Value>,
    missing: impl FnOnce() -> ApiError,
) -> ApiResult {
    let out = sim.store.read(|st| find(st).ok_or_else(missing))??;
    reply(StatusCode::OK, json!({ key: out }))
}

fn not_found_server(id: &str) -> ApiError {
    ApiError::nova(StatusCode::NOT_FOUND, format!("Instance {id} could not be found."))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::nova(StatusCode::BAD_REQUEST, message)
}

// ---------------------------------------------------------------- servers

/// Nova's `name` filter is a regular expression search; this handles the forms clients send:
/// plain text (substring) and `^exact$` anchors.
fn name_matches(pattern: &str, name: &str) -> bool {
    match (pattern.strip_prefix('^'), pattern.strip_suffix('$')) {
        (Some(p), _) if p.ends_with('$') => name == &p[..p.len() - 1],
        (Some(p), None) => name.starts_with(p),
        (None, Some(p)) => name.ends_with(p),
        _ => name.contains(pattern),
    }
}

fn filter_servers<'a>(st: &'a Cloud, q: &Query) -> Vec<&'a Server> {
    if q.get("deleted").is_some_and(|d| d.eq_ignore_ascii_case("true")) {
        return Vec::new();
    }
    // Newest first, as Nova sorts by created_at desc.
    st.servers
        .iter()
        .rev()
        .filter(|s| q.get("name").is_none_or(|n| name_matches(n, &s.name)))
        .filter(|s| q.get("status").is_none_or(|v| v.eq_ignore_ascii_case(&s.status)))
        .filter(|s| q.get("host").is_none_or(|v| s.host.as_deref() == Some(v)))
        .filter(|s| q.get("flavor").is_none_or(|v| s.flavor.id == v))
        .filter(|s| q.get("image").is_none_or(|v| s.image_id.as_deref() == Some(v)))
        .collect()
}

fn addresses(st: &Cloud, server_id: &str) -> Value {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in st.ports.iter().filter(|p| p.device_id == server_id) {
        let net = st.networks.iter().find(|n| n.id == p.network_id).map_or(p.network_id.clone(), |n| n.name.clone());
        let list = out.entry(net).or_default();
        for ip in &p.fixed_ips {
            list.push(json!({ "addr": ip.ip_address, "version": 4, "OS-EXT-IPS:type": "fixed",
                              "OS-EXT-IPS-MAC:mac_addr": p.mac_address }));
        }
        for f in st.floating_ips.iter().filter(|f| f.port_id.as_deref() == Some(p.id.as_str())) {
            list.push(json!({ "addr": f.floating_ip_address, "version": 4, "OS-EXT-IPS:type": "floating",
                              "OS-EXT-IPS-MAC:mac_addr": p.mac_address }));
        }
    }
    json!(out)
}

fn server_view(st: &Cloud, s: &Server, mv: Microversion, base: &str, project_id: &str, user_id: &str) -> Value {
    let f = &s.flavor;
    let flavor = if mv.at_least(47) {
        json!({ "original_name": f.name, "vcpus": f.vcpus, "ram": f.ram, "disk": f.disk, "ephemeral": f.ephemeral,
                "swap": f.swap, "extra_specs": f.extra_specs })
    } else {
        json!({ "id": f.id, "links": [bookmark(base, "flavors", &f.id)] })
    };
    let image = match &s.image_id {
        Some(id) => json!({ "id": id, "links": [bookmark(base, "images", id)] }),
        None => json!(""),
    };
    let volumes: Vec<Value> = st
        .volumes
        .iter()
        .filter(|v| v.attachments.iter().any(|a| a.server_id == s.id))
        .map(|v| json!({ "id": v.id, "delete_on_termination": false }))
        .collect();
    let host_id = s.host.as_ref().map_or(String::new(), |h| {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(format!("{project_id}{h}").as_bytes()))[..56].to_owned()
    });
    let mut v = json!({
        "id": s.id, "name": s.name, "status": s.status, "tenant_id": project_id, "user_id": user_id,
        "created": iso_z(s.created), "updated": iso_z(s.updated), "hostId": host_id,
        "progress": 0,
        "addresses": addresses(st, &s.id), "image": image, "flavor": flavor, "metadata": s.metadata,
        "key_name": s.key_name, "accessIPv4": "", "accessIPv6": "", "config_drive": "",
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-STS:vm_state": s.vm_state, "OS-EXT-STS:power_state": s.power_state,
        "OS-EXT-STS:task_state": s.task_state,
        "OS-EXT-AZ:availability_zone": s.availability_zone,
        "OS-EXT-SRV-ATTR:host": s.host, "OS-EXT-SRV-ATTR:hypervisor_hostname": s.host,
        "OS-EXT-SRV-ATTR:instance_name": format!("instance-{}", &s.id[..8]),
        "OS-SRV-USG:launched_at": s.launched_at.map(iso_micro), "OS-SRV-USG:terminated_at": null,
        "os-extended-volumes:volumes_attached": volumes,
        "security_groups": [{ "name": "default" }],
        "links": links(base, "servers", &s.id),
    });
    if mv.at_least(3) {
        v["OS-EXT-SRV-ATTR:hostname"] =
            json!(s.name.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-"));
        v["OS-EXT-SRV-ATTR:launch_index"] = json!(0);
        v["OS-EXT-SRV-ATTR:reservation_id"] = json!(format!("r-{}", &s.id[..8]));
        v["OS-EXT-SRV-ATTR:root_device_name"] = json!("/dev/vda");
        v["OS-EXT-SRV-ATTR:kernel_id"] = json!("");
        v["OS-EXT-SRV-ATTR:ramdisk_id"] = json!("");
        v["OS-EXT-SRV-ATTR:user_data"] = Value::Null;
    }
    if mv.at_least(9) {
        v["locked"] = json!(false);
    }
    if mv.at_least(19) {
        v["description"] = json!(s.description);
    }
    if mv.at_least(26) {
        v["tags"] = json!([]);
    }
    if mv.at_least(73) {
        v["locked_reason"] = Value::Null;
    }
    if mv.at_least(16) {
        v["host_status"] = json!(if s.host.is_some() { "UP" } else { "" });
    }
    if mv.at_least(96) {
        v["pinned_availability_zone"] = Value::Null;
    }
    if let Some(fault) = &s.fault {
        v["fault"] = json!({ "code": fault.code, "message": fault.message, "created": iso_z(fault.created) });
    }
    v
}

/// `GET /servers` (id, name, links) and, with `DETAIL`, `GET /servers/detail`.
async fn list_servers<const DETAIL: bool>(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let q = query(raw.as_deref());
    let b = base(&sim);
    let out = sim.store.read(|st| {
        collection(&b, "servers", DETAIL).body(
            &q,
            filter_servers(st, &q),
            |s| &s.id,
            |s| {
                if DETAIL {
                    server_view(st, s, mv, &b, &st.project_id, &st.user_id)
                } else {
                    json!({ "id": s.id, "name": s.name, "links": links(&b, "servers", &s.id) })
                }
            },
        )
    })??;
    reply(StatusCode::OK, out)
}

async fn show_server(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(id): Path<String>,
) -> ApiResult {
    let b = base(&sim);
    show(
        &sim,
        "server",
        |st| st.servers.iter().find(|s| s.id == id).map(|s| server_view(st, s, mv, &b, &st.project_id, &st.user_id)),
        || not_found_server(&id),
    )
}

/// The last path segment of a reference that may be an id or a URL (`flavorRef`, `imageRef`).
fn ref_id(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// What a create request asks for, validated against the state.
struct CreatePlan {
    name: String,
    flavor: FlavorCopy,
    image_id: Option<String>,
    boot_volume: Option<String>,
    /// (network id, existing port id)
    nics: Vec<(String, Option<String>)>,
    metadata: BTreeMap<String, String>,
    key_name: Option<String>,
    description: Option<String>,
}

fn plan_create(st: &Cloud, body: &Value, mv: Microversion) -> Result<CreatePlan, ApiError> {
    let s = body
        .get("server")
        .filter(|s| s.is_object())
        .ok_or_else(|| bad("Invalid input for field/attribute server: 'server' is a required property"))?;
    let name = s
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("Invalid input for field/attribute name: 'name' is a required property"))?;
    if name.trim().is_empty() || name.len() > 255 {
        return Err(bad(format!(
            "Invalid input for field/attribute name. Value: {name}. must be 1–255 characters, not only spaces"
        )));
    }
    for key in ["min_count", "max_count"] {
        if s.get(key).and_then(Value::as_u64).is_some_and(|n| n != 1) {
            return Err(bad(format!("{key} other than 1 is not supported by this simulator")));
        }
    }
    let flavor_ref = s
        .get("flavorRef")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("Invalid input for field/attribute flavorRef: 'flavorRef' is a required property"))?;
    let f = st
        .flavors
        .iter()
        .find(|f| f.id == ref_id(flavor_ref))
        .ok_or_else(|| bad(format!("Flavor {flavor_ref} could not be found.")))?;
    let flavor = f.copy();
    let mut boot_volume = None;
    for bdm in s.get("block_device_mapping_v2").and_then(Value::as_array).into_iter().flatten() {
        let boot = bdm.get("boot_index").is_some_and(|b| b.as_i64() == Some(0) || b.as_str() == Some("0"));
        if boot && bdm.get("source_type").and_then(Value::as_str) == Some("volume") {
            let vid = bdm.get("uuid").and_then(Value::as_str).unwrap_or_default();
            let v = st
                .volumes
                .iter()
                .find(|v| v.id == vid)
                .ok_or_else(|| bad(format!("Volume {vid} could not be found.")))?;
            if v.status != "available" {
                return Err(bad(format!(
                    "Invalid volume: volume {vid} status must be available, but current status is: {}",
                    v.status
                )));
            }
            boot_volume = Some(v.id.clone());
        }
    }
    let image_ref = s.get("imageRef").and_then(Value::as_str).unwrap_or_default();
    let image_id = if boot_volume.is_some() || image_ref.is_empty() {
        None
    } else {
        let img = st
            .images
            .iter()
            .find(|i| i.id == ref_id(image_ref))
            .ok_or_else(|| bad(format!("Image {image_ref} could not be found.")))?;
        if img.status != "active" {
            return Err(bad(format!("Image {} is not active.", img.id)));
        }
        if img.min_disk > flavor.disk && flavor.disk > 0 {
            return Err(bad("Flavor's disk is too small for requested image."));
        }
        if img.min_ram > flavor.ram {
            return Err(bad("Flavor's memory is too small for requested image."));
        }
        Some(img.id.clone())
    };
    if image_id.is_none() && boot_volume.is_none() {
        return Err(bad(
            "Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.",
        ));
    }
    let mut nics = Vec::new();
    let auto = |nics: &mut Vec<(String, Option<String>)>| {
        // "auto": the project's first internal network, as Neutron's auto-allocation would.
        if let Some(n) = st.networks.iter().find(|n| !n.external) {
            nics.push((n.id.clone(), None));
        }
    };
    match s.get("networks") {
        None if mv.at_least(37) => {
            return Err(bad("Invalid input for field/attribute server: 'networks' is a required property"));
        }
        None => auto(&mut nics),
        Some(Value::String(x)) if x == "auto" => auto(&mut nics),
        Some(Value::String(x)) if x == "none" => {}
        Some(Value::Array(list)) => {
            for n in list {
                if let Some(pid) = n.get("port").and_then(Value::as_str) {
                    let p = st
                        .ports
                        .iter()
                        .find(|p| p.id == pid)
                        .ok_or_else(|| bad(format!("Port {pid} could not be found.")))?;
                    if !p.device_id.is_empty() {
                        return Err(ApiError::nova(StatusCode::CONFLICT, format!("Port {pid} is still in use.")));
                    }
                    nics.push((p.network_id.clone(), Some(pid.to_owned())));
                } else {
                    let nid = n.get("uuid").and_then(Value::as_str).unwrap_or_default();
                    if !st.networks.iter().any(|x| x.id == nid) {
                        return Err(bad(format!("Network {nid} could not be found.")));
                    }
                    nics.push((nid.to_owned(), None));
                }
            }
        }
        Some(_) => return Err(bad("Invalid input for field/attribute networks: must be a list, 'auto' or 'none'")),
    }
    let metadata = super::http::string_map(s.get("metadata")).map_err(bad)?;
    Ok(CreatePlan {
        name: name.to_owned(),
        flavor,
        image_id,
        boot_volume,
        nics,
        metadata,
        key_name: s.get("key_name").and_then(Value::as_str).map(str::to_owned),
        description: s.get("description").and_then(Value::as_str).map(str::to_owned),
    })
}

fn due(sim: &Sim) -> i64 {
    now_ms().saturating_add(i64::try_from(sim.cfg.action_delay.as_millis()).unwrap_or(i64::MAX / 4))
}

async fn create_server(State(sim): State<Arc<Sim>>, Extension(mv): Extension<Microversion>, body: Bytes) -> ApiResult {
    let body = body_json(Service::Compute, &body)?;
    let id = random_uuid();
    let due_ms = due(&sim);
    let b = base(&sim);
    let now = now_ms() / 1000;
    let sim2 = sim.clone();
    let id2 = id.clone();
    let enroll = user_data_enroll(&sim, &body)?;
    let realize = enroll.is_some();
    let state_dir = sim.cfg.realize.as_ref().map(|r| r.state_dir(&id).display().to_string()).unwrap_or_default();
    let realize_mode = sim.cfg.realize.as_ref().map(|r| r.mode);
    let (name, network) = sim.store.write(move |st| {
        let plan = plan_create(st, &body, mv)?;
        let name = plan.name.clone();
        let network =
            plan.nics.first().and_then(|(nid, _)| st.networks.iter().find(|n| &n.id == nid)).map(|n| n.name.clone());
        let host = st.place(&plan.flavor, plan.image_id.is_some());
        // Allocate addresses before changing anything, so a full subnet changes nothing.
        let mut new_ports = Vec::new();
        for (net, existing) in &plan.nics {
            if existing.is_some() {
                continue;
            }
            let subnet = st.subnets.iter().find(|s| &s.network_id == net);
            let ip = match subnet {
                Some(sn) => {
                    let ip = st
                        .free_ip(sn, &new_ports)
                        .ok_or_else(|| bad(format!("No more IP addresses available on network {net}.")))?;
                    vec![FixedIp { subnet_id: sn.id.clone(), ip_address: ip }]
                }
                None => Vec::new(),
            };
            new_ports.push(Port {
                id: random_uuid(),
                name: String::new(),
                network_id: net.clone(),
                mac_address: random_mac(),
                fixed_ips: ip,
                device_id: id2.clone(),
                device_owner: "compute:nova".into(),
                created: now,
            });
        }
        let fail = if sim2.faults.take_action_failure(Service::Compute) {
            Some(format!("Build of instance {id2} aborted: simulated failure (fail_next_action)"))
        } else if host.is_none() {
            Some("No valid host was found. There are not enough hosts available.".to_owned())
        } else {
            None
        };
        st.ports.extend(new_ports);
        for (_, existing) in &plan.nics {
            if let Some(pid) = existing
                && let Some(p) = st.ports.iter_mut().find(|p| &p.id == pid)
            {
                p.device_id = id2.clone();
                p.device_owner = "compute:nova".into();
            }
        }
        if let Some(vid) = &plan.boot_volume
            && let Some(v) = st.volumes.iter_mut().find(|v| &v.id == vid)
        {
            v.status = "in-use".into();
            v.attachments.push(Attachment {
                id: random_uuid(),
                server_id: id2.clone(),
                device: "/dev/vda".into(),
                attached_at: now,
            });
        }
        st.servers.push(Server {
            id: id2.clone(),
            name: plan.name,
            flavor: plan.flavor,
            image_id: plan.image_id,
            host,
            status: "BUILD".into(),
            vm_state: "building".into(),
            power_state: 0,
            task_state: Some("spawning".into()),
            metadata: plan.metadata,
            key_name: plan.key_name,
            description: plan.description,
            availability_zone: "nova".into(),
            created: now,
            updated: now,
            launched_at: None,
            fault: None,
            pending: Some(Pending { op: ServerOp::Build, due_ms, fail }),
            realized: realize_mode.filter(|_| realize).map(|mode| Realization {
                mode,
                handle: String::new(),
                state_dir,
                state: RealizeState::Starting,
            }),
        });
        Ok::<_, ApiError>((name, network))
    })??;
    // The simulator's own record of every instance it was asked to create: how a test proves a
    // client did not boot the same thing twice.
    tracing::info!(server = %id, name = %name, "openstack simulator: server created");
    if let Some(env) = enroll {
        let (sim, id) = (sim.clone(), id.clone());
        tokio::task::spawn_blocking(move || super::realize::start(sim, id, name, network, env));
    }
    let admin_pass: String = random_hex()[..12].to_owned();
    let mut resp = (
        StatusCode::ACCEPTED,
        axum::Json(json!({ "server": {
            "id": id, "links": links(&b, "servers", &id), "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{ "name": "default" }], "adminPass": admin_pass,
        }})),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{b}/servers/{id}")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// The agent enroll file in the request's `user_data` (base64, as Nova takes it), when this
/// simulator realises servers. User data that is not an agent's enroll file is accepted and
/// ignored, as cloud-init would ignore what it does not know; bad base64 is refused as Nova
/// refuses it.
fn user_data_enroll(sim: &Sim, body: &Value) -> Result<Option<plugins::cloudinit::EnrollEnv>, ApiError> {
    use base64::Engine as _;
    let Some(encoded) = body.pointer("/server/user_data").and_then(Value::as_str) else { return Ok(None) };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad("Invalid input for field/attribute user_data. Value: <hidden>. is not a base64 string"))?;
    if bytes.len() > 65535 {
        return Err(bad("Invalid input for field/attribute user_data: longer than 65535 bytes"));
    }
    if sim.cfg.realize.is_none() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&bytes);
    Ok(plugins::cloudinit::parse_enroll_env(&text).ok())
}

fn conflict(action: &str, id: &str, what: &str, value: &str) -> ApiError {
    ApiError::nova(StatusCode::CONFLICT, format!("Cannot '{action}' instance {id} while it is in {what} {value}"))
}

async fn server_action(State(sim): State<Arc<Sim>>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let body = body_json(Service::Compute, &body)?;
    let action = body.as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default();
    let hard = body.pointer("/reboot/type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("HARD"));
    let (op, name, allowed, task, status): (ServerOp, &str, &[&str], &str, Option<&str>) = match action.as_str() {
        "os-stop" => (ServerOp::Stop, "stop", &["active", "error"], "powering-off", None),
        "os-start" => (ServerOp::Start, "start", &["stopped"], "powering-on", None),
        "reboot" if hard => {
            (ServerOp::Reboot, "reboot", &["active", "stopped", "error"], "rebooting_hard", Some("HARD_REBOOT"))
        }
        "reboot" => (ServerOp::Reboot, "reboot", &["active"], "rebooting", Some("REBOOT")),
        other => return Err(bad(format!("There is no such action: {other}"))),
    };
    let due_ms = due(&sim);
    let sim2 = sim.clone();
    sim.store.write(move |st| {
        let s = st.servers.iter_mut().find(|s| s.id == id).ok_or_else(|| not_found_server(&id))?;
        if let Some(t) = &s.task_state {
            return Err(conflict(name, &id, "task_state", t));
        }
        if !allowed.contains(&s.vm_state.as_str()) {
            return Err(conflict(name, &id, "vm_state", &s.vm_state));
        }
        let fail = sim2
            .faults
            .take_action_failure(Service::Compute)
            .then(|| format!("Failed to {name} instance {id}: simulated failure (fail_next_action)"));
        s.task_state = Some(task.into());
        if let Some(st) = status {
            s.status = st.into();
        }
        s.updated = now_ms() / 1000;
        s.pending = Some(Pending { op, due_ms, fail });
        Ok(())
    })??;
    empty(StatusCode::ACCEPTED)
}

async fn delete_server(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> ApiResult {
    let due_ms = due(&sim);
    let teardown = sim.store.write(|st| {
        let s = st.servers.iter_mut().find(|s| s.id == id).ok_or_else(|| not_found_server(&id))?;
        if s.pending.as_ref().is_none_or(|p| p.op != ServerOp::Delete) {
            s.task_state = Some("deleting".into());
            s.updated = now_ms() / 1000;
            s.pending = Some(Pending { op: ServerOp::Delete, due_ms, fail: None });
        }
        // The realisation goes first; the delete completes once it has (see `State::tick`).
        let teardown = s.realized.as_mut().filter(|r| r.state != RealizeState::Stopping).map(|r| {
            r.state = RealizeState::Stopping;
            r.clone()
        });
        Ok::<_, ApiError>(teardown)
    })??;
    tracing::info!(server = %id, "openstack simulator: server deleted");
    if let Some(r) = teardown {
        let (sim, id) = (sim.clone(), id.clone());
        tokio::task::spawn_blocking(move || super::realize::teardown(sim, id, r));
    }
    empty(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- flavors

fn flavor_view(f: &Flavor, mv: Microversion, base: &str, detail: bool) -> Value {
    let mut v = json!({ "id": f.id, "name": f.name, "links": links(base, "flavors", &f.id) });
    if mv.at_least(55) {
        v["description"] = json!(f.description);
    }
    if detail {
        v["ram"] = json!(f.ram);
        v["vcpus"] = json!(f.vcpus);
        v["disk"] = json!(f.disk);
        v["OS-FLV-EXT-DATA:ephemeral"] = json!(f.ephemeral);
        // Before 2.75 Nova shows "no swap" as an empty string.
        v["swap"] = if f.swap == 0 && !mv.at_least(75) { json!("") } else { json!(f.swap) };
        v["rxtx_factor"] = json!(1.0);
        v["os-flavor-access:is_public"] = json!(f.is_public);
        v["OS-FLV-DISABLED:disabled"] = json!(false);
        if mv.at_least(61) {
            v["extra_specs"] = json!(f.extra_specs);
        }
    }
    v
}

/// `GET /flavors` and, with `DETAIL`, `GET /flavors/detail`.
async fn list_flavors<const DETAIL: bool>(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let q = query(raw.as_deref());
    let b = base(&sim);
    let out = sim.store.read(|st| {
        let is_public = q.get("is_public").unwrap_or("True").to_ascii_lowercase();
        let min_ram: u64 = q.get("minRam").and_then(|v| v.parse().ok()).unwrap_or(0);
        let min_disk: u64 = q.get("minDisk").and_then(|v| v.parse().ok()).unwrap_or(0);
        let items: Vec<&Flavor> = st
            .flavors
            .iter()
            .filter(|f| match is_public.as_str() {
                "none" => true,
                "false" | "0" | "no" => !f.is_public,
                _ => f.is_public,
            })
            .filter(|f| f.ram >= min_ram && f.disk >= min_disk)
            .collect();
        collection(&b, "flavors", DETAIL).body(&q, items, |f| &f.id, |f| flavor_view(f, mv, &b, DETAIL))
    })??;
    reply(StatusCode::OK, out)
}

async fn show_flavor(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(id): Path<String>,
) -> ApiResult {
    let b = base(&sim);
    show(
        &sim,
        "flavor",
        |st| st.flavors.iter().find(|f| f.id == id).map(|f| flavor_view(f, mv, &b, true)),
        || ApiError::nova(StatusCode::NOT_FOUND, format!("Flavor {id} could not be found.")),
    )
}

// ---------------------------------------------------------------- hypervisors

fn hypervisor_id(h: &Hypervisor, mv: Microversion) -> Value {
    if mv.at_least(53) { json!(h.uuid) } else { json!(h.id) }
}

fn hypervisor_view(st: &Cloud, h: &Hypervisor, mv: Microversion, detail: bool) -> Value {
    let mut v = json!({
        "id": hypervisor_id(h, mv), "hypervisor_hostname": h.hostname, "state": h.state, "status": h.status,
    });
    if !detail {
        return v;
    }
    v["hypervisor_type"] = json!(h.hypervisor_type);
    v["hypervisor_version"] = json!(h.hypervisor_version);
    v["host_ip"] = json!(h.host_ip);
    let service_id = if mv.at_least(53) { json!(h.service_uuid) } else { json!(h.service_id) };
    v["service"] = json!({ "host": h.hostname, "id": service_id, "disabled_reason": null });
    if !mv.at_least(88) {
        let u = st.usage(&h.hostname);
        let free_disk = h.local_gb.saturating_sub(u.local_gb_used);
        let cpu_info = json!({
            "arch": "x86_64", "model": "Cascadelake-Server-noTSX", "vendor": "Intel",
            "topology": { "cells": 2, "sockets": 2, "cores": (h.vcpus / 4).max(1), "threads": 2 },
            "features": ["avx512f", "vmx", "aes"],
        });
        v["vcpus"] = json!(h.vcpus);
        v["vcpus_used"] = json!(u.vcpus_used);
        v["memory_mb"] = json!(h.memory_mb);
        v["memory_mb_used"] = json!(u.memory_mb_used);
        v["free_ram_mb"] = json!(i128::from(h.memory_mb) - i128::from(u.memory_mb_used));
        v["local_gb"] = json!(h.local_gb);
        v["local_gb_used"] = json!(u.local_gb_used);
        v["free_disk_gb"] = json!(free_disk);
        v["disk_available_least"] = json!(free_disk);
        v["current_workload"] = json!(0);
        v["running_vms"] = json!(u.running_vms);
        // A JSON string before 2.28, an object from 2.28.
        v["cpu_info"] = if mv.at_least(28) { cpu_info } else { json!(cpu_info.to_string()) };
    } else {
        v["uptime"] = json!(" 08:00:00 up 30 days,  2:13,  0 users,  load average: 0.21, 0.24, 0.20");
    }
    v
}

/// `GET /os-hypervisors` and, with `DETAIL`, `GET /os-hypervisors/detail`.
async fn list_hypervisors<const DETAIL: bool>(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let q = query(raw.as_deref());
    let b = base(&sim);
    let out = sim.store.read(|st| {
        let pattern = q.get("hypervisor_hostname_pattern");
        let items: Vec<(String, &Hypervisor)> = st
            .hypervisors
            .iter()
            .filter(|h| pattern.is_none_or(|p| h.hostname.contains(p)))
            .map(|h| (hypervisor_id(h, mv).to_string().trim_matches('"').to_owned(), h))
            .collect();
        collection(&b, "os-hypervisors", DETAIL).body(
            &q,
            items,
            |(id, _)| id,
            |(_, h)| hypervisor_view(st, h, mv, DETAIL),
        )
    })??;
    reply(StatusCode::OK, out)
}

async fn show_hypervisor(
    State(sim): State<Arc<Sim>>,
    Extension(mv): Extension<Microversion>,
    Path(id): Path<String>,
) -> ApiResult {
    show(
        &sim,
        "hypervisor",
        |st| {
            let by_id = |h: &&Hypervisor| if mv.at_least(53) { h.uuid == id } else { h.id.to_string() == id };
            st.hypervisors.iter().find(by_id).map(|h| hypervisor_view(st, h, mv, true))
        },
        || ApiError::nova(StatusCode::NOT_FOUND, format!("Hypervisor with ID {id} could not be found.")),
    )
}

async fn hypervisor_statistics(State(sim): State<Arc<Sim>>, Extension(mv): Extension<Microversion>) -> ApiResult {
    // Removed from Nova at 2.88.
    if mv.at_least(88) {
        return Err(ApiError::nova(StatusCode::NOT_FOUND, "The resource could not be found."));
    }
    let out = sim.store.read(|st| {
        let mut t = [0u64; 12];
        for h in &st.hypervisors {
            let u = st.usage(&h.hostname);
            let free_disk = h.local_gb.saturating_sub(u.local_gb_used);
            let add = [
                1,
                h.vcpus,
                u.vcpus_used,
                h.memory_mb,
                u.memory_mb_used,
                h.memory_mb.saturating_sub(u.memory_mb_used),
                h.local_gb,
                u.local_gb_used,
                free_disk,
                free_disk,
                0,
                u.running_vms,
            ];
            for (a, b) in t.iter_mut().zip(add) {
                *a += b;
            }
        }
        json!({ "hypervisor_statistics": {
            "count": t[0], "vcpus": t[1], "vcpus_used": t[2], "memory_mb": t[3], "memory_mb_used": t[4],
            "free_ram_mb": t[5], "local_gb": t[6], "local_gb_used": t[7], "free_disk_gb": t[8],
            "disk_available_least": t[9], "current_workload": t[10], "running_vms": t[11],
        }})
    })?;
    reply(StatusCode::OK, out)
}
