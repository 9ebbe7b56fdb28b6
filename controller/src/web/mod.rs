//! The web console, served by the controller on its API listener at `/`: sign-in with a
//! password (`GET`/`POST /login`, `POST /logout`) and the overview (`/`), rendered on the
//! server in Vietnamese or English, without JavaScript.
//!
//! Guarantees:
//! - every page except `/login` needs a session; the role check happens here, on the server;
//! - the session cookie holds only a random id (`HttpOnly; Secure; SameSite=Strict; Path=/`);
//!   the store keeps its SHA-256, the user and the session's CSRF token; a session unused for
//!   `[web] idle_timeout` is over;
//! - every POST carries a CSRF token, compared in constant time; a missing or wrong one is 403
//!   (the sign-in form's token lives in a short cookie of its own, as there is no session yet);
//! - every answer carries the security headers in [`security_headers`].

pub mod format;
pub mod i18n;
pub mod pages;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::api::READERS;
use crate::app::{App, Principal, Role, ct_eq, hash_secret, now_ms, random_hex};
use crate::hosts::{self, HostState};
use crate::store::WebSession;
use crate::users::SignInError;
use i18n::Lang;
use pages::{LoginNotice, Viewer};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mangrove_session";
/// The sign-in form's CSRF cookie (before there is a session).
const LOGIN_CSRF_COOKIE: &str = "mangrove_login_csrf";
/// The chosen language.
const LANG_COOKIE: &str = "lang";

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(overview))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/static/console.css", get(css))
        .layer(middleware::map_response(security_headers))
}

/// Headers on every console answer: no framing, no sniffing, no referrer, resources only from
/// this origin (so no inline script or style), HTTPS only, nothing cached.
pub async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// The value of cookie `name` in the request, if sent.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// `Set-Cookie` text: the attributes every console cookie has, plus `extra`.
fn set_cookie(name: &str, value: &str, path: &str, extra: &str) -> HeaderValue {
    let text = format!("{name}={value}; HttpOnly; Secure; SameSite=Strict; Path={path}{extra}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

#[derive(Debug, Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

/// The page's language: `?lang=` if given and known, else the `lang` cookie, else Vietnamese;
/// with the cookie to set when the query chose it.
fn language(q: &LangQuery, headers: &HeaderMap) -> (Lang, Option<HeaderValue>) {
    if let Some(l) = q.lang.as_deref().and_then(Lang::parse) {
        return (l, Some(set_cookie(LANG_COOKIE, l.code(), "/", "; Max-Age=31536000")));
    }
    (cookie(headers, LANG_COOKIE).as_deref().and_then(Lang::parse).unwrap_or(Lang::Vi), None)
}

fn html(status: StatusCode, body: String, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    let mut resp = (status, Html(body)).into_response();
    for c in cookies {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

fn see_other(to: &str, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    resp.headers_mut().insert(header::LOCATION, HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")));
    for c in cookies {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "web console error");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the controller's log\n").into_response()
}

fn idle_ms(app: &App) -> i64 {
    i64::try_from(app.cfg.web.idle_timeout.0.as_millis()).unwrap_or(i64::MAX)
}

/// The live session the request's cookie names, marked used now; None when there is none or
/// it went idle.
async fn session(app: &App, headers: &HeaderMap) -> Result<Option<WebSession>, Response> {
    let Some(id) = cookie(headers, SESSION_COOKIE).filter(|id| !id.is_empty()) else { return Ok(None) };
    let now = now_ms();
    app.store.touch_web_session(&hash_secret(&id), now.saturating_sub(idle_ms(app)), now).await.map_err(internal)
}

fn principal(s: &WebSession) -> Option<Principal> {
    Role::parse(&s.role).filter(|r| *r != Role::Agent).map(|role| Principal { user: s.user.clone(), role })
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], pages::CSS).into_response()
}

async fn login_form(State(app): State<Arc<App>>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let (lang, lang_cookie) = language(&q, &headers);
    match session(&app, &headers).await {
        Ok(Some(_)) => return see_other("/", lang_cookie),
        Ok(None) => {}
        Err(r) => return r,
    }
    let csrf = random_hex(32);
    let c = set_cookie(LOGIN_CSRF_COOKIE, &csrf, "/login", "");
    html(StatusCode::OK, pages::login(lang, &csrf, "", &LoginNotice::None), [c].into_iter().chain(lang_cookie))
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(app): State<Arc<App>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let (lang, _) = language(&q, &headers);
    // A fresh form token for the page shown again on failure.
    let csrf = random_hex(32);
    let again = |status, notice: &LoginNotice, user: &str| {
        html(status, pages::login(lang, &csrf, user, notice), [set_cookie(LOGIN_CSRF_COOKIE, &csrf, "/login", "")])
    };
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !ct_eq(expected.as_bytes(), f.csrf.as_bytes()) {
        return again(StatusCode::FORBIDDEN, &LoginNotice::Csrf, "");
    }
    match crate::users::sign_in(&app, f.user.trim(), &f.password).await {
        Ok(p) => {
            let now = now_ms();
            if let Err(e) = app.store.delete_idle_web_sessions(now.saturating_sub(idle_ms(&app))).await {
                tracing::warn!(error = %e, "could not prune idle web sessions");
            }
            let id = random_hex(32);
            let s = WebSession {
                id_hash: hash_secret(&id),
                user: p.user.clone(),
                role: p.role.as_str().to_string(),
                csrf: random_hex(32),
                created_at: now,
                last_seen: now,
            };
            if let Err(e) = app.store.insert_web_session(&s).await {
                return internal(e);
            }
            see_other(
                "/",
                [set_cookie(SESSION_COOKIE, &id, "/", ""), set_cookie(LOGIN_CSRF_COOKIE, "", "/login", "; Max-Age=0")],
            )
        }
        Err(SignInError::Invalid) => again(StatusCode::UNAUTHORIZED, &LoginNotice::Failed, &f.user),
        Err(SignInError::Locked { until }) => {
            let minutes = ((until - now_ms()).max(0) + 59_999) / 60_000;
            again(StatusCode::TOO_MANY_REQUESTS, &LoginNotice::Locked { minutes }, &f.user)
        }
        Err(e) => internal(e),
    }
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(app): State<Arc<App>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let (lang, _) = language(&q, &headers);
    let s = match session(&app, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return see_other("/login", []),
        Err(r) => return r,
    };
    if !ct_eq(s.csrf.as_bytes(), f.csrf.as_bytes()) {
        let v = Viewer { user: &s.user, role: &s.role, csrf: &s.csrf };
        return html(StatusCode::FORBIDDEN, pages::refused(lang, Some(&v), "csrf-refused"), []);
    }
    if let Err(e) = app.store.delete_web_session(&s.id_hash).await {
        return internal(e);
    }
    app.audit(&s.user, "web.signout", Some(&s.user), serde_json::json!({})).await;
    see_other("/login", [set_cookie(SESSION_COOKIE, "", "/", "; Max-Age=0")])
}

async fn overview(State(app): State<Arc<App>>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let (lang, lang_cookie) = language(&q, &headers);
    let s = match session(&app, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return see_other("/login", lang_cookie),
        Err(r) => return r,
    };
    let v = Viewer { user: &s.user, role: &s.role, csrf: &s.csrf };
    if !principal(&s).is_some_and(|p| p.may(READERS)) {
        return html(StatusCode::FORBIDDEN, pages::refused(lang, Some(&v), "not-found"), lang_cookie);
    }
    match overview_data(&app).await {
        Ok(o) => html(StatusCode::OK, pages::overview(lang, &v, &o), lang_cookie),
        Err(e) => internal(e),
    }
}

/// What the overview shows, from the inventory and the store (the same sources as
/// `hosts list`, `systems list` and `drill list`).
async fn overview_data(app: &App) -> Result<pages::Overview, crate::store::StoreError> {
    let now = now_ms();
    let down_after = i64::try_from(app.cfg.liveness.down_after.0.as_millis()).unwrap_or(i64::MAX);
    let hosts_now = crate::antivirus::with_judged_problems(app, app.store.list_hosts().await?, now).await;
    let mut by_site: std::collections::BTreeMap<String, [i64; 4]> = std::collections::BTreeMap::new();
    let inv = app.inventory.as_deref();
    for s in inv.map(|i| i.sites.as_slice()).unwrap_or_default() {
        by_site.entry(s.name.clone()).or_default();
    }
    for h in &hosts_now {
        let st = hosts::state(h.enrolled_at.is_some(), h.last_seen, &h.problems, now, down_after);
        let i = HostState::ALL.iter().position(|x| *x == st).unwrap_or(0);
        if let Some(c) = by_site.entry(h.site.clone().unwrap_or_else(|| "-".into())).or_default().get_mut(i) {
            *c += 1;
        }
    }
    let last_drill = app.store.drills(1).await?.into_iter().next().map(|d| pages::DrillRow {
        plan: d.plan,
        mode: d.mode,
        state: d.state,
        finished_at: d.finished_at,
    });
    Ok(pages::Overview {
        has_inventory: inv.is_some(),
        sites: inv
            .map(|i| {
                i.sites
                    .iter()
                    .map(|s| pages::SiteRow {
                        name: s.name.clone(),
                        title: s.title.clone(),
                        platform: s.platform.kind.as_str().to_string(),
                        storage_tb: s.storage_tb,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        hosts: by_site.into_iter().map(|(site, counts)| pages::HostCounts { site, counts }).collect(),
        systems: inv
            .map(|i| {
                i.systems
                    .iter()
                    .map(|s| pages::SystemRow {
                        name: s.name.clone(),
                        title_vi: s.title_vi.clone(),
                        title_en: s.title_en.clone(),
                        owner: s.owner.clone(),
                        level: s.level.get(),
                        rpo: inventory::format_duration(s.rpo),
                        rto: inventory::format_duration(s.rto),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        last_drill,
        now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("xmangrove_session=no; mangrove_session=abc; lang=en"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "lang").as_deref(), Some("en"));
        assert_eq!(cookie(&h, "other"), None);
        assert_eq!(
            set_cookie(SESSION_COOKIE, "abc", "/", "").to_str().expect("ascii"),
            "mangrove_session=abc; HttpOnly; Secure; SameSite=Strict; Path=/"
        );
    }
}
