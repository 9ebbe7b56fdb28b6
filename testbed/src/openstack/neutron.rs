//! Neutron (networking API v2.0): networks and subnets (read-only, seeded), ports and floating
//! IPs (create, associate, delete). Filters work on any attribute, as in Neutron.

use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use super::http::{ApiError, ApiResult, body_json, empty, query, reply, str_field};
use super::paging::{Collection, Query};
use super::state::State as Cloud;
use super::state::*;
use super::{Service, Sim};

/// Query keys that are not attribute filters.
const NOT_FILTERS: [&str; 6] = ["limit", "marker", "fields", "sort_key", "sort_dir", "page_reverse"];

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/", get(versions))
        .route("/v2.0", get(resources))
        .route("/v2.0/", get(resources))
        .route("/v2.0/networks", get(list_networks))
        .route("/v2.0/networks/{id}", get(show_network))
        .route("/v2.0/subnets", get(list_subnets))
        .route("/v2.0/subnets/{id}", get(show_subnet))
        .route("/v2.0/ports", get(list_ports).post(create_port))
        .route("/v2.0/ports/{id}", get(show_port).delete(delete_port))
        .route("/v2.0/floatingips", get(list_fips).post(create_fip))
        .route("/v2.0/floatingips/{id}", get(show_fip).put(update_fip).delete(delete_fip))
        .fallback(|| async {
            ApiError::neutron(StatusCode::NOT_FOUND, "HTTPNotFound", "The resource could not be found.")
        })
        .layer(axum::middleware::from_fn_with_state((sim.clone(), Service::Network), super::http::layer))
        .with_state(sim)
}

async fn versions(State(sim): State<Arc<Sim>>) -> ApiResult {
    let href = format!("{}/v2.0/", sim.url(Service::Network));
    reply(
        StatusCode::OK,
        json!({ "versions": [{ "id": "v2.0", "status": "CURRENT", "links": [{ "rel": "self", "href": href }] }] }),
    )
}

async fn resources(State(sim): State<Arc<Sim>>) -> ApiResult {
    let base = format!("{}/v2.0", sim.url(Service::Network));
    let list: Vec<Value> = [("network", "networks"), ("subnet", "subnets"), ("port", "ports"), ("floatingip", "floatingips")]
        .iter()
        .map(|(name, coll)| json!({ "name": name, "collection": coll, "links": [{ "rel": "self", "href": format!("{base}/{coll}") }] }))
        .collect();
    reply(StatusCode::OK, json!({ "resources": list }))
}

fn not_found(kind: &str, id: &str) -> ApiError {
    let label = match kind {
        "Network" => "Network",
        "Subnet" => "Subnet",
        "Port" => "Port",
        _ => "Floating IP",
    };
    let ty = match kind {
        "FloatingIP" => "FloatingIPNotFound".to_owned(),
        k => format!("{k}NotFound"),
    };
    ApiError::neutron(StatusCode::NOT_FOUND, &ty, format!("{label} {id} could not be found."))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::neutron(StatusCode::BAD_REQUEST, "HTTPBadRequest", message)
}

fn stamp(secs: i64) -> Value {
    json!(iso_z(secs))
}

fn network_view(st: &Cloud, n: &Network) -> Value {
    let subnets: Vec<&str> = st.subnets.iter().filter(|s| s.network_id == n.id).map(|s| s.id.as_str()).collect();
    json!({
        "id": n.id, "name": n.name, "status": "ACTIVE", "admin_state_up": true, "shared": n.shared,
        "router:external": n.external, "subnets": subnets, "tenant_id": st.project_id, "project_id": st.project_id,
        "mtu": n.mtu, "tags": [], "description": n.description, "revision_number": 1,
        "created_at": stamp(n.created), "updated_at": stamp(n.created),
        "availability_zones": ["nova"], "availability_zone_hints": [], "ipv4_address_scope": null,
        "ipv6_address_scope": null, "is_default": false, "port_security_enabled": true,
        "provider:network_type": n.network_type,
        "provider:physical_network": if n.network_type == "flat" { json!("physnet1") } else { Value::Null },
        "provider:segmentation_id": n.segmentation_id, "qos_policy_id": null, "l2_adjacency": true, "dns_domain": "",
    })
}

fn subnet_view(st: &Cloud, s: &Subnet) -> Value {
    json!({
        "id": s.id, "name": s.name, "network_id": s.network_id, "cidr": s.cidr, "ip_version": 4,
        "gateway_ip": s.gateway_ip, "allocation_pools": [{ "start": s.pool_start, "end": s.pool_end }],
        "enable_dhcp": s.enable_dhcp, "dns_nameservers": s.dns_nameservers, "host_routes": [],
        "tenant_id": st.project_id, "project_id": st.project_id, "ipv6_ra_mode": null, "ipv6_address_mode": null,
        "subnetpool_id": null, "description": "", "tags": [], "service_types": [], "revision_number": 0,
        "created_at": stamp(s.created), "updated_at": stamp(s.created),
    })
}

fn port_view(st: &Cloud, p: &Port) -> Value {
    let host = st.servers.iter().find(|s| s.id == p.device_id).and_then(|s| s.host.clone());
    let bound = !p.device_id.is_empty();
    json!({
        "id": p.id, "name": p.name, "network_id": p.network_id, "mac_address": p.mac_address,
        "fixed_ips": p.fixed_ips, "device_id": p.device_id, "device_owner": p.device_owner,
        "status": if bound { "ACTIVE" } else { "DOWN" }, "admin_state_up": true,
        "tenant_id": st.project_id, "project_id": st.project_id, "security_groups": [],
        "binding:host_id": host.unwrap_or_default(), "binding:vif_type": if bound { "ovs" } else { "unbound" },
        "binding:vnic_type": "normal", "binding:profile": {}, "binding:vif_details": {},
        "allowed_address_pairs": [], "extra_dhcp_opts": [], "port_security_enabled": true, "description": "",
        "tags": [], "revision_number": 1, "created_at": stamp(p.created), "updated_at": stamp(p.created),
    })
}

fn fip_view(st: &Cloud, f: &FloatingIp) -> Value {
    json!({
        "id": f.id, "floating_ip_address": f.floating_ip_address, "floating_network_id": f.floating_network_id,
        "router_id": f.port_id.as_ref().map(|_| stable_uuid("router/dr-router")), "port_id": f.port_id,
        "fixed_ip_address": f.fixed_ip_address, "status": if f.port_id.is_some() { "ACTIVE" } else { "DOWN" },
        "tenant_id": st.project_id, "project_id": st.project_id, "description": f.description, "tags": [],
        "revision_number": 1, "created_at": stamp(f.created), "updated_at": stamp(f.created),
        "port_details": null, "dns_domain": "", "dns_name": "", "qos_policy_id": null,
    })
}

/// Neutron filters: every other query key names an attribute; repeated keys are alternatives.
fn passes(v: &Value, q: &Query) -> bool {
    let mut keys: Vec<&str> = q.0.iter().map(|(k, _)| k.as_str()).filter(|k| !NOT_FILTERS.contains(k)).collect();
    keys.dedup();
    keys.iter().all(|k| {
        let Some(attr) = v.get(*k) else { return true };
        q.0.iter().filter(|(key, _)| key == k).any(|(_, want)| match attr {
            Value::String(s) => s == want,
            Value::Bool(b) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
            Value::Number(n) => n.to_string() == *want,
            Value::Null => want.is_empty(),
            other => *other == Value::String(want.clone()),
        })
    })
}

fn list(sim: &Sim, key: &str, raw: Option<&str>, views: impl FnOnce(&Cloud) -> Vec<Value>) -> ApiResult {
    let q = query(raw);
    let href = format!("{}/v2.0/{key}", sim.url(Service::Network));
    let coll = Collection { key, href, service: Service::Network, default_limit: usize::MAX };
    let out = sim.store.read(|st| {
        let items: Vec<Value> = views(st).into_iter().filter(|v| passes(v, &q)).collect();
        coll.body(&q, items, |v| v.get("id").and_then(Value::as_str).unwrap_or_default(), |v| v)
    })??;
    reply(StatusCode::OK, out)
}

/// `{ key: view }` of the object `find` finds, or a 404 naming `kind` and `id`.
fn show(sim: &Sim, key: &str, kind: &str, id: &str, find: impl FnOnce(&Cloud) -> Option<Value>) -> ApiResult {
    let v = sim.store.read(|st| find(st).ok_or_else(|| not_found(kind, id)))??;
    reply(StatusCode::OK, json!({ key: v }))
}

async fn list_networks(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery) -> ApiResult {
    list(&sim, "networks", raw.as_deref(), |st| st.networks.iter().map(|n| network_view(st, n)).collect())
}

async fn show_network(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> ApiResult {
    show(&sim, "network", "Network", &id, |st| st.networks.iter().find(|x| x.id == id).map(|x| network_view(st, x)))
}

async fn list_subnets(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery) -> ApiResult {
    list(&sim, "subnets", raw.as_deref(), |st| st.subnets.iter().map(|s| subnet_view(st, s)).collect())
}

async fn show_subnet(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> ApiResult {
    show(&sim, "subnet", "Subnet", &id, |st| st.subnets.iter().find(|x| x.id == id).map(|x| subnet_view(st, x)))
}

async fn list_ports(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery) -> ApiResult {
    list(&sim, "ports", raw.as_deref(), |st| st.ports.iter().map(|p| port_view(st, p)).collect())
}

async fn show_port(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> ApiResult {
    show(&sim, "port", "Port", &id, |st| st.ports.iter().find(|x| x.id == id).map(|x| port_view(st, x)))
}

/// Whether `ip` lies in `cidr` (IPv4).
fn in_cidr(ip: Ipv4Addr, cidr: &str) -> bool {
    let Some((net, len)) = cidr.split_once('/') else { return false };
    let (Ok(net), Ok(len)) = (net.parse::<Ipv4Addr>(), len.parse::<u32>()) else { return false };
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len.min(32)) };
    u32::from(ip) & mask == u32::from(net) & mask
}

fn taken(st: &Cloud, ip: &str) -> bool {
    st.ports.iter().flat_map(|p| &p.fixed_ips).any(|f| f.ip_address == ip)
        || st.floating_ips.iter().any(|f| f.floating_ip_address == ip)
}

async fn create_port(State(sim): State<Arc<Sim>>, body: Bytes) -> ApiResult {
    let body = body_json(Service::Network, &body)?;
    let v = sim.store.write(|st| {
        let r = body.get("port").filter(|p| p.is_object()).ok_or_else(|| bad("Resource body required"))?;
        let net = str_field(r, "network_id").ok_or_else(|| bad("Failed to parse request. Required attribute 'network_id' not specified"))?;
        if !st.networks.iter().any(|n| n.id == net) {
            return Err(not_found("Network", net));
        }
        let subnets: Vec<Subnet> = st.subnets.iter().filter(|s| s.network_id == net).cloned().collect();
        let mut fixed = Vec::new();
        let wanted = r.get("fixed_ips").and_then(Value::as_array).cloned().unwrap_or_else(|| vec![json!({})]);
        for w in wanted {
            let subnet = match str_field(&w, "subnet_id") {
                Some(sid) => subnets.iter().find(|s| s.id == sid).ok_or_else(|| not_found("Subnet", sid))?,
                None => match str_field(&w, "ip_address") {
                    Some(ip) => {
                        let addr: Ipv4Addr = ip.parse().map_err(|_| bad(format!("Invalid input for operation: '{ip}' is not a valid IP address.")))?;
                        subnets.iter().find(|s| in_cidr(addr, &s.cidr)).ok_or_else(|| {
                            bad(format!("Invalid input for operation: IP address {ip} is not a valid IP for any of the subnets on the specified network."))
                        })?
                    }
                    None => subnets.first().ok_or_else(|| bad(format!("Network {net} has no subnet")))?,
                },
            };
            let ip = match str_field(&w, "ip_address") {
                Some(ip) => {
                    let addr: Ipv4Addr = ip.parse().map_err(|_| bad(format!("Invalid input for operation: '{ip}' is not a valid IP address.")))?;
                    if !in_cidr(addr, &subnet.cidr) {
                        return Err(bad(format!("IP address {ip} is not a valid IP for the specified subnet.")));
                    }
                    if taken(st, ip) || fixed.iter().any(|f: &FixedIp| f.ip_address == ip) {
                        return Err(ApiError::neutron(
                            StatusCode::CONFLICT,
                            "IpAddressAlreadyAllocated",
                            format!("IP address {ip} already allocated in subnet {}", subnet.id),
                        ));
                    }
                    ip.to_owned()
                }
                None => {
                    let probe = Port {
                        id: String::new(),
                        name: String::new(),
                        network_id: net.to_owned(),
                        mac_address: String::new(),
                        fixed_ips: fixed.clone(),
                        device_id: String::new(),
                        device_owner: String::new(),
                        created: 0,
                    };
                    st.free_ip(subnet, &[probe]).ok_or_else(|| {
                        ApiError::neutron(StatusCode::CONFLICT, "IpAddressGenerationFailure", format!("No more IP addresses available on network {net}."))
                    })?
                }
            };
            fixed.push(FixedIp { subnet_id: subnet.id.clone(), ip_address: ip });
        }
        let mac = match str_field(r, "mac_address") {
            Some(m) if st.ports.iter().any(|p| p.mac_address.eq_ignore_ascii_case(m)) => {
                return Err(ApiError::neutron(StatusCode::CONFLICT, "MacAddressInUse", format!("Unable to complete operation for network {net}. The mac address {m} is in use.")));
            }
            Some(m) => m.to_ascii_lowercase(),
            None => random_mac(),
        };
        let p = Port {
            id: random_uuid(),
            name: str_field(r, "name").unwrap_or_default().to_owned(),
            network_id: net.to_owned(),
            mac_address: mac,
            fixed_ips: fixed,
            device_id: str_field(r, "device_id").unwrap_or_default().to_owned(),
            device_owner: str_field(r, "device_owner").unwrap_or_default().to_owned(),
            created: now_ms() / 1000,
        };
        let v = port_view(st, &p);
        st.ports.push(p);
        Ok(v)
    })??;
    reply(StatusCode::CREATED, json!({ "port": v }))
}

async fn delete_port(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> ApiResult {
    sim.store.write(|st| {
        if !st.ports.iter().any(|p| p.id == id) {
            return Err(not_found("Port", &id));
        }
        st.ports.retain(|p| p.id != id);
        for f in st.floating_ips.iter_mut().filter(|f| f.port_id.as_deref() == Some(id.as_str())) {
            f.port_id = None;
            f.fixed_ip_address = None;
        }
        Ok(())
    })??;
    empty(StatusCode::NO_CONTENT)
}

async fn list_fips(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery) -> ApiResult {
    list(&sim, "floatingips", raw.as_deref(), |st| st.floating_ips.iter().map(|f| fip_view(st, f)).collect())
}

async fn show_fip(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> ApiResult {
    show(&sim, "floatingip", "FloatingIP", &id, |st| {
        st.floating_ips.iter().find(|x| x.id == id).map(|x| fip_view(st, x))
    })
}

/// The fixed IP a floating IP would map to on `port_id`, checking the port's subnet is routed
/// (has a gateway): `dr-drill` is isolated, so Neutron finds no router to the outside.
fn association(st: &Cloud, fip_net: &str, port_id: &str, fixed: Option<&str>) -> Result<String, ApiError> {
    let p = st.ports.iter().find(|p| p.id == port_id).ok_or_else(|| not_found("Port", port_id))?;
    let ip = match fixed {
        Some(want) => p.fixed_ips.iter().find(|f| f.ip_address == want),
        None => p.fixed_ips.first(),
    }
    .ok_or_else(|| {
        bad(format!("Bad floatingip request: Port {port_id} does not have fixed ip {}.", fixed.unwrap_or("(any)")))
    })?;
    let routed = st.subnets.iter().find(|s| s.id == ip.subnet_id).is_some_and(|s| s.gateway_ip.is_some());
    if !routed {
        return Err(ApiError::neutron(
            StatusCode::NOT_FOUND,
            "ExternalGatewayForFloatingIPNotFound",
            format!(
                "External network {fip_net} is not reachable from subnet {}.  Therefore, cannot associate Port {port_id} with a Floating IP.",
                ip.subnet_id
            ),
        ));
    }
    if st
        .floating_ips
        .iter()
        .any(|f| f.port_id.as_deref() == Some(port_id) && f.fixed_ip_address.as_deref() == Some(ip.ip_address.as_str()))
    {
        return Err(ApiError::neutron(
            StatusCode::CONFLICT,
            "FloatingIPPortAlreadyAssociated",
            format!(
                "Cannot associate floating IP with port {port_id} using fixed IP {}, as that fixed IP already has a floating IP.",
                ip.ip_address
            ),
        ));
    }
    Ok(ip.ip_address.clone())
}

async fn create_fip(State(sim): State<Arc<Sim>>, body: Bytes) -> ApiResult {
    let body = body_json(Service::Network, &body)?;
    let v = sim.store.write(|st| {
        let r = body.get("floatingip").filter(|p| p.is_object()).ok_or_else(|| bad("Resource body required"))?;
        let net = str_field(r, "floating_network_id")
            .ok_or_else(|| bad("Failed to parse request. Required attribute 'floating_network_id' not specified"))?;
        let n = st.networks.iter().find(|n| n.id == net).ok_or_else(|| not_found("Network", net))?;
        if !n.external {
            return Err(bad(format!("Bad floatingip request: Network {net} is not a valid external network.")));
        }
        let subnet = st
            .subnets
            .iter()
            .find(|s| s.network_id == net)
            .cloned()
            .ok_or_else(|| bad(format!("Network {net} has no subnet")))?;
        let address = match str_field(r, "floating_ip_address") {
            Some(ip) => {
                if taken(st, ip) {
                    return Err(ApiError::neutron(
                        StatusCode::CONFLICT,
                        "IpAddressAlreadyAllocated",
                        format!("IP address {ip} already allocated in subnet {}", subnet.id),
                    ));
                }
                ip.to_owned()
            }
            None => st.free_ip(&subnet, &[]).ok_or_else(|| {
                ApiError::neutron(
                    StatusCode::CONFLICT,
                    "IpAddressGenerationFailure",
                    format!("No more IP addresses available on network {net}."),
                )
            })?,
        };
        let (port_id, fixed) = match str_field(r, "port_id") {
            Some(pid) => (Some(pid.to_owned()), Some(association(st, net, pid, str_field(r, "fixed_ip_address"))?)),
            None => (None, None),
        };
        let f = FloatingIp {
            id: random_uuid(),
            floating_network_id: net.to_owned(),
            floating_ip_address: address,
            port_id,
            fixed_ip_address: fixed,
            description: str_field(r, "description").unwrap_or_default().to_owned(),
            created: now_ms() / 1000,
        };
        let v = fip_view(st, &f);
        st.floating_ips.push(f);
        Ok(v)
    })??;
    reply(StatusCode::CREATED, json!({ "floatingip": v }))
}

async fn update_fip(State(sim): State<Arc<Sim>>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let body = body_json(Service::Network, &body)?;
    let v = sim.store.write(|st| {
        let r = body.get("floatingip").filter(|p| p.is_object()).ok_or_else(|| bad("Resource body required"))?;
        let f = st.floating_ips.iter().find(|f| f.id == id).cloned().ok_or_else(|| not_found("FloatingIP", &id))?;
        let (port_id, fixed) = match r.get("port_id") {
            Some(Value::String(pid)) => (
                Some(pid.clone()),
                Some(association(st, &f.floating_network_id, pid, str_field(r, "fixed_ip_address"))?),
            ),
            Some(Value::Null) => (None, None),
            None => (f.port_id.clone(), f.fixed_ip_address.clone()),
            Some(other) => return Err(bad(format!("Invalid input for port_id: {other}"))),
        };
        let Some(f) = st.floating_ips.iter_mut().find(|f| f.id == id) else { return Err(not_found("FloatingIP", &id)) };
        f.port_id = port_id;
        f.fixed_ip_address = fixed;
        if let Some(d) = str_field(r, "description") {
            f.description = d.to_owned();
        }
        let f = f.clone();
        Ok(fip_view(st, &f))
    })??;
    reply(StatusCode::OK, json!({ "floatingip": v }))
}

async fn delete_fip(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> ApiResult {
    sim.store.write(|st| {
        if !st.floating_ips.iter().any(|f| f.id == id) {
            return Err(not_found("FloatingIP", &id));
        }
        st.floating_ips.retain(|f| f.id != id);
        Ok(())
    })??;
    empty(StatusCode::NO_CONTENT)
}
