//! Keystone v3: version discovery, password and application-credential tokens with the
//! service catalog, token validation and revocation, and the fault-injection admin API.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::http::{ApiError, ApiResult, body_json, reply, str_field};
use super::state::{iso_keystone, now_ms, random_hex, stable_uuid};
use super::{Service, Sim, faults};

/// An issued token, alive until `expires_ms`.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) methods: Vec<&'static str>,
    pub(crate) issued_ms: i64,
    pub(crate) expires_ms: i64,
    pub(crate) audit_id: String,
    pub(crate) scoped: bool,
    pub(crate) app_cred: bool,
    pub(crate) admin: bool,
}

/// The token named `id` if it exists and has not expired (expired ones are dropped).
pub(crate) fn live_token(sim: &Sim, id: &str) -> Option<Token> {
    let mut tokens = sim.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = now_ms();
    tokens.retain(|_, t| t.expires_ms > now);
    tokens.get(id).cloned()
}

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/", get(versions))
        .route("/v3", get(version))
        .route("/v3/", get(version))
        .route("/v3/auth/tokens", post(issue).get(validate).delete(revoke))
        .route("/_sim/faults", post(faults::post).get(faults::get).delete(faults::delete))
        .fallback(|| async { ApiError::keystone(StatusCode::NOT_FOUND, "The resource could not be found.") })
        .layer(axum::middleware::from_fn_with_state((sim.clone(), Service::Identity), super::http::layer))
        .with_state(sim)
}

fn version_doc(sim: &Sim) -> Value {
    json!({
        "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
        "links": [{ "rel": "self", "href": format!("{}/v3/", sim.url(Service::Identity)) }],
        "media-types": [{ "base": "application/json", "type": "application/vnd.openstack.identity-v3+json" }],
    })
}

async fn versions(State(sim): State<Arc<Sim>>) -> ApiResult {
    reply(StatusCode::MULTIPLE_CHOICES, json!({ "versions": { "values": [version_doc(&sim)] } }))
}

async fn version(State(sim): State<Arc<Sim>>) -> ApiResult {
    reply(StatusCode::OK, json!({ "version": version_doc(&sim) }))
}

/// Which identity authenticated.
enum Who {
    Password { scoped: bool },
    AppCred,
}

fn authenticate(sim: &Sim, body: &Value) -> Result<Who, ApiError> {
    let identity = body.pointer("/auth/identity").ok_or_else(|| {
        ApiError::keystone(
            StatusCode::BAD_REQUEST,
            "Invalid input for field 'identity': 'identity' is a required property",
        )
    })?;
    let methods: Vec<&str> = identity
        .get("methods")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let users = &sim.cfg.users;
    if methods.contains(&"application_credential") {
        let ac = identity.get("application_credential").ok_or_else(ApiError::unauthorized)?;
        let want = &users.application_credential;
        let id_ok = str_field(ac, "id") == Some(want.id.as_str())
            || (str_field(ac, "id").is_none() && str_field(ac, "name") == Some(want.name.as_str()));
        if id_ok && str_field(ac, "secret") == Some(want.secret.as_str()) {
            return Ok(Who::AppCred);
        }
        return Err(ApiError::unauthorized());
    }
    if methods.contains(&"password") {
        let user = identity.pointer("/password/user").ok_or_else(ApiError::unauthorized)?;
        let admin = &users.admin;
        let domain_ok = |d: Option<&Value>| {
            d.is_some_and(|d| str_field(d, "name") == Some("Default") || str_field(d, "id") == Some("default"))
        };
        let user_id = sim.store.read(|s| s.user_id.clone()).map_err(ApiError::from)?;
        let name_ok = (str_field(user, "name") == Some(admin.name.as_str()) && domain_ok(user.get("domain")))
            || str_field(user, "id") == Some(user_id.as_str());
        if !(name_ok && str_field(user, "password") == Some(admin.password.as_str())) {
            return Err(ApiError::unauthorized());
        }
        let Some(project) = body.pointer("/auth/scope/project") else { return Ok(Who::Password { scoped: false }) };
        let project_id = sim.store.read(|s| s.project_id.clone()).map_err(ApiError::from)?;
        let scope_ok = (str_field(project, "name") == Some(admin.project.as_str()) && domain_ok(project.get("domain")))
            || str_field(project, "id") == Some(project_id.as_str());
        if !scope_ok {
            return Err(ApiError::unauthorized());
        }
        return Ok(Who::Password { scoped: true });
    }
    Err(ApiError::unauthorized())
}

fn catalog(sim: &Sim, project_id: &str) -> Value {
    let entry = |kind: &str, name: &str, url: String| {
        let endpoints: Vec<Value> = ["public", "internal"]
            .iter()
            .map(|iface| {
                json!({
                    "id": stable_uuid(&format!("endpoint/{kind}/{iface}")).replace('-', ""),
                    "interface": iface, "region_id": "RegionOne", "region": "RegionOne", "url": url,
                })
            })
            .collect();
        json!({ "id": stable_uuid(&format!("service/{kind}")).replace('-', ""), "type": kind, "name": name,
                "endpoints": endpoints })
    };
    let volume = format!("{}/v3/{project_id}", sim.url(Service::Volume));
    json!([
        entry("identity", "keystone", format!("{}/v3/", sim.url(Service::Identity))),
        entry("compute", "nova", format!("{}/v2.1", sim.url(Service::Compute))),
        entry("volumev3", "cinderv3", volume.clone()),
        entry("block-storage", "cinder", volume),
        entry("image", "glance", sim.url(Service::Image)),
        entry("network", "neutron", sim.url(Service::Network)),
    ])
}

fn token_body(sim: &Sim, t: &Token) -> Result<Value, ApiError> {
    let (project_id, user_id, admin_role, member_role) = sim
        .store
        .read(|s| (s.project_id.clone(), s.user_id.clone(), s.admin_role_id.clone(), s.member_role_id.clone()))
        .map_err(ApiError::from)?;
    let domain = json!({ "id": "default", "name": "Default" });
    let mut token = json!({
        "methods": t.methods,
        "user": { "domain": domain, "id": user_id, "name": sim.cfg.users.admin.name, "password_expires_at": null },
        "audit_ids": [t.audit_id], "is_domain": false,
        "expires_at": iso_keystone(t.expires_ms), "issued_at": iso_keystone(t.issued_ms),
    });
    if t.scoped {
        token["project"] = json!({ "domain": domain, "id": project_id, "name": sim.cfg.users.admin.project });
        token["roles"] = json!([{ "id": admin_role, "name": "admin" }, { "id": member_role, "name": "member" }]);
        token["catalog"] = catalog(sim, &project_id);
    }
    if t.app_cred {
        let ac = &sim.cfg.users.application_credential;
        token["application_credential"] = json!({ "id": ac.id, "name": ac.name, "restricted": true });
    }
    Ok(json!({ "token": token }))
}

fn with_subject(status: StatusCode, body: Value, id: &str) -> ApiResult {
    let mut resp = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert("x-subject-token", v);
    }
    resp.headers_mut().insert(header::VARY, HeaderValue::from_static("X-Auth-Token"));
    Ok(resp)
}

async fn issue(State(sim): State<Arc<Sim>>, body: Bytes) -> ApiResult {
    let v = body_json(Service::Identity, &body)?;
    let who = authenticate(&sim, &v).inspect_err(|_| tracing::info!("openstack simulator: authentication refused"))?;
    let now = now_ms();
    let ttl = i64::try_from(sim.cfg.token_ttl.as_millis()).unwrap_or(i64::MAX / 2);
    let t = Token {
        methods: match who {
            Who::AppCred => vec!["application_credential"],
            Who::Password { .. } => vec!["password"],
        },
        issued_ms: now,
        expires_ms: now.saturating_add(ttl),
        audit_id: random_hex()[..22].to_owned(),
        scoped: !matches!(who, Who::Password { scoped: false }),
        app_cred: matches!(who, Who::AppCred),
        admin: true,
    };
    // Looks like a Fernet token (`gAAAAA…`), which clients treat as opaque.
    let id = format!("gAAAAAB{}{}", random_hex(), random_hex());
    let body = token_body(&sim, &t)?;
    sim.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id.clone(), t);
    with_subject(StatusCode::CREATED, body, &id)
}

/// The caller's token and the subject token of a validate/revoke request.
fn subject(sim: &Sim, headers: &HeaderMap) -> Result<(String, Option<Token>), ApiError> {
    if super::http::token_of(sim, headers).is_none() {
        return Err(ApiError::unauthorized());
    }
    let id = headers.get("x-subject-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let t = live_token(sim, &id);
    Ok((id, t))
}

async fn validate(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> ApiResult {
    let (id, t) = subject(&sim, &headers)?;
    let t = t.ok_or_else(|| ApiError::keystone(StatusCode::NOT_FOUND, format!("Could not find token: {id}.")))?;
    with_subject(StatusCode::OK, token_body(&sim, &t)?, &id)
}

async fn revoke(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (id, t) = subject(&sim, &headers)?;
    if t.is_none() {
        return Err(ApiError::keystone(StatusCode::NOT_FOUND, format!("Could not find token: {id}.")));
    }
    sim.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
    super::http::empty(StatusCode::NO_CONTENT)
}
