//! The HTTP API under `/api/v1` (JSON), plus `/metrics`, `/healthz` and `/readyz`, and the web
//! console's pages (see [`crate::web`]).
//!
//! Every `/api/v1` and `/metrics` request carries a bearer token issued to a person; each
//! endpoint checks the role; every change is written to the audit log naming that person.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::{App, AppError, Principal, Role, now_ms, rfc3339};
use crate::hosts::{self, HostState};
use crate::store::HostRecord;
use crate::tasks::{self, CommandRequest};

/// An error as the API returns it: a status and `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError(AppError::Store(e))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError(AppError::TooLarge("request body too large (limit 2 MiB)".into()));
        }
        ApiError(AppError::BadRequest(format!("invalid request body: {}", e.body_text())))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Upstream(_) => StatusCode::BAD_GATEWAY,
            AppError::Store(e) => {
                tracing::error!(error = ?e, "store error in API");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = match &self.0 {
            AppError::Store(_) => "internal error; see the controller's log".to_string(),
            e => e.to_string(),
        };
        let mut resp = (status, Json(json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// The caller, authenticated by bearer token.
pub struct Auth(pub Principal);

impl FromRequestParts<Arc<App>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| AppError::Unauthenticated("missing bearer token (Authorization: Bearer …)".into()))?;
        Ok(Auth(app.authenticate(token.trim()).await?))
    }
}

pub(crate) fn require(p: &Principal, roles: &[Role], what: &str) -> ApiResult<()> {
    if p.may(roles) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!("role {} may not {what}", p.role.as_str())).into())
    }
}

pub(crate) const READERS: &[Role] = &[Role::Operator, Role::Security, Role::Planner, Role::Auditor];

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/hosts", get(list_hosts))
        .route("/api/v1/hosts/{name}", get(show_host))
        .route("/api/v1/tokens", post(create_token))
        .route("/api/v1/agents/{name}/revoke", post(revoke_agent))
        .route("/api/v1/tasks", post(create_task))
        .route("/api/v1/tasks/{id}", get(show_task))
        .route("/api/v1/audit", get(audit))
        .merge(crate::api_platforms::routes())
        .merge(crate::api_capacity::routes())
        .merge(crate::api_backups::routes())
        .merge(crate::api_systems::routes())
        .merge(crate::api_policy::routes())
        .merge(crate::api_compliance::routes())
        .merge(crate::api_endpoints::routes())
        .merge(crate::api_ansible::routes())
        .merge(crate::ansible_run::routes())
        .merge(crate::api_vc::routes())
        .merge(crate::api_plans::routes())
        .merge(crate::api_images::routes())
        .merge(crate::api_drills::routes())
        .merge(crate::api_events::routes())
        .merge(crate::api_users::routes())
        .merge(crate::web::routes())
        .fallback(|| async { ApiError(AppError::NotFound("no such endpoint".into())) })
        .with_state(app)
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.store.get_host("").await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: store unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n").into_response()
        }
    }
}

async fn metrics(State(app): State<Arc<App>>, Auth(_p): Auth) -> ApiResult<Response> {
    let now = now_ms();
    let down_after = down_after_ms(&app);
    let hosts = crate::antivirus::with_judged_problems(&app, app.store.list_hosts().await?, now).await;
    let mut counts = std::collections::BTreeMap::new();
    for h in &hosts {
        let site = h.site.clone().unwrap_or_else(|| "unknown".into());
        // Every (site, state) pair appears, zero included, so absence never means zero.
        for s in HostState::ALL {
            counts.entry((site.clone(), s.as_str())).or_insert(0i64);
        }
        let s = hosts::state(h.enrolled_at.is_some(), h.last_seen, &h.problems, now, down_after);
        *counts.entry((site, s.as_str())).or_insert(0) += 1;
    }
    app.metrics.hosts.clear();
    for ((site, state), n) in counts {
        app.metrics.hosts.get_or_create(&crate::metrics::SiteState { site, state: state.into() }).set(n);
    }
    app.metrics.sessions.set(app.sessions.len() as i64);
    compliance_metrics(&app).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.metrics.encode()).into_response())
}

/// Compliance gauges from the stored findings, recomputed at each scrape (a system's hosts
/// change with sync, so they are not kept up incrementally).
async fn compliance_metrics(app: &Arc<App>) -> ApiResult<()> {
    let Some(inv) = app.inventory.clone() else { return Ok(()) };
    let vms = app.store.list_vms().await?;
    let findings = app.store.list_findings(None).await?;
    app.metrics.compliance_controls.clear();
    app.metrics.compliance_score.clear();
    for s in &inv.systems {
        let hosts = crate::policy::scope::system_hosts(&inv, &s.name, &vms);
        let mut counts = std::collections::BTreeMap::new();
        for st in ["pass", "fail", "waived", "error"] {
            counts.insert(st.to_string(), 0i64);
        }
        for f in findings.iter().filter(|f| hosts.contains(&f.host) && f.status != "not_applicable") {
            *counts.entry(f.status.clone()).or_insert(0) += 1;
        }
        for (status, n) in counts {
            let l =
                crate::metrics::ComplianceLabel { system: s.name.clone(), level: s.level.get().to_string(), status };
            app.metrics.compliance_controls.get_or_create(&l).set(n);
        }
        if let Some(score) = crate::api_systems::score(&findings, &hosts) {
            app.metrics
                .compliance_score
                .get_or_create(&crate::metrics::SystemLabel { system: s.name.clone() })
                .set(score);
        }
    }
    Ok(())
}

async fn whoami(Auth(p): Auth) -> Json<Value> {
    Json(json!({"user": p.user, "role": p.role.as_str()}))
}

fn down_after_ms(app: &App) -> i64 {
    i64::try_from(app.cfg.liveness.down_after.0.as_millis()).unwrap_or(i64::MAX)
}

/// A host as `hosts list --json` prints it; with `detail`, as `hosts show --json` does.
pub fn host_json(app: &App, h: &HostRecord, now: i64, detail: bool) -> Value {
    let state = hosts::state(h.enrolled_at.is_some(), h.last_seen, &h.problems, now, down_after_ms(app));
    let mut v = json!({
        "name": h.name,
        "site": h.site,
        "kind": h.kind,
        "managed": h.managed,
        "state": state.as_str(),
        "last_seen": h.last_seen.map(rfc3339),
        "problems": h.problems,
    });
    if detail {
        v["agent"] = json!({
            "enrolled_at": h.enrolled_at.map(rfc3339),
            "session_live": app.sessions.is_live(&h.name),
            "version": h.agent_version,
            "last_seq": h.last_seq,
            "reports_stored": h.reports_stored,
            "outbox_backlog": h.outbox_backlog,
            "outbox_dropped": h.outbox_dropped,
            "outbox_compacted": h.outbox_compacted,
        });
        v["facts"] = h.facts.clone().unwrap_or(Value::Null);
        v["facts_at"] = json!(h.facts_at.map(rfc3339));
    }
    v
}

async fn list_hosts(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read hosts")?;
    let now = now_ms();
    let hosts = crate::antivirus::with_judged_problems(&app, app.store.list_hosts().await?, now).await;
    Ok(Json(Value::Array(hosts.iter().map(|h| host_json(&app, h, now, false)).collect())))
}

async fn show_host(State(app): State<Arc<App>>, Auth(p): Auth, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read hosts")?;
    let h = app.store.get_host(&name).await?.ok_or_else(|| AppError::NotFound(format!("no host named {name}")))?;
    let now = now_ms();
    let judged = crate::antivirus::with_judged_problems(&app, vec![h], now).await;
    let h = judged.first().ok_or_else(|| AppError::NotFound(format!("no host named {name}")))?;
    Ok(Json(host_json(&app, h, now, true)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    role: String,
    user: Option<String>,
    host: Option<String>,
    /// `30s`, `15m`, `1h`, `90d`.
    ttl: Option<String>,
}

async fn create_token(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<TokenRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(req) = body?;
    let ttl = req.ttl.as_deref().map(crate::config::parse_duration).transpose().map_err(AppError::BadRequest)?;
    let t = app.create_token(&p, &req.role, req.user.as_deref(), req.host.as_deref(), ttl).await?;
    Ok((StatusCode::CREATED, Json(json!(t))))
}

async fn revoke_agent(State(app): State<Arc<App>>, Auth(p): Auth, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator], "revoke agents")?;
    if app.store.get_host(&name).await?.is_none() {
        return Err(AppError::NotFound(format!("no host named {name}")).into());
    }
    let revoked = app.store.revoke_host(&name, now_ms()).await?;
    let cut =
        app.sessions.cut(&name, tonic::Status::permission_denied(format!("the certificate of {name} was revoked")));
    app.audit(&p.user, "agent.revoke", Some(&name), json!({"certificates": revoked, "stream_cut": cut})).await;
    tracing::warn!(host = name, by = p.user, certificates = revoked, stream_cut = cut, "agent revoked");
    Ok(Json(json!({"host": name, "certificates_revoked": revoked, "stream_cut": cut})))
}

async fn create_task(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<CommandRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(req) = body?;
    let t = tasks::create_command(&app, &p, req).await?;
    Ok((StatusCode::CREATED, Json(tasks::task_json(&t))))
}

async fn show_task(State(app): State<Arc<App>>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Operator, Role::Auditor], "read tasks")?;
    let t = app.store.get_task(&id).await?.ok_or_else(|| AppError::NotFound(format!("no task {id}")))?;
    Ok(Json(tasks::task_json(&t)))
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    limit: Option<i64>,
}

async fn audit(State(app): State<Arc<App>>, Auth(p): Auth, Query(q): Query<AuditQuery>) -> ApiResult<Json<Value>> {
    require(&p, &[Role::Auditor, Role::Security], "read the audit log")?;
    let rows = app.store.list_audit(q.limit.unwrap_or(100).clamp(1, 10_000)).await?;
    Ok(Json(Value::Array(
        rows.iter()
            .map(|r| json!({"id": r.id, "at": rfc3339(r.at), "actor": r.actor, "action": r.action, "target": r.target, "detail": r.detail}))
            .collect(),
    )))
}
