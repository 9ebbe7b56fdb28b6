//! What every service shares at the HTTP edge: error bodies in each service's shape, the
//! middleware that injects faults, checks `X-Auth-Token` and negotiates microversions, and
//! JSON helpers.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::faults::FaultKind;
use super::paging::{PageError, Query};
use super::{Service, Sim, SimError};

/// An error response, already in its service's shape.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    body: Option<Value>,
    text: Option<String>,
}

impl ApiError {
    /// Nova and Cinder: `{"itemNotFound": {"code": 404, "message": ...}}`.
    pub(crate) fn nova(status: StatusCode, message: impl Into<String>) -> ApiError {
        let kind = match status.as_u16() {
            400 => "badRequest",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "itemNotFound",
            406 => "notAcceptable",
            409 => "conflictingRequest",
            413 => "overLimit",
            _ => "computeFault",
        };
        let body = json!({ kind: { "code": status.as_u16(), "message": message.into() } });
        ApiError { status, body: Some(body), text: None }
    }

    /// Neutron: `{"NeutronError": {"type": ..., "message": ..., "detail": ""}}`.
    pub(crate) fn neutron(status: StatusCode, kind: &str, message: impl Into<String>) -> ApiError {
        let body = json!({ "NeutronError": { "type": kind, "message": message.into(), "detail": "" } });
        ApiError { status, body: Some(body), text: None }
    }

    /// Glance answers errors as text (`404 Not Found\n\n<message>\n\n`).
    pub(crate) fn glance(status: StatusCode, message: impl Into<String>) -> ApiError {
        let text = format!("{status}\n\n{}\n\n", message.into());
        ApiError { status, body: None, text: Some(text) }
    }

    /// Keystone (and keystonemiddleware's 401): `{"error": {"code", "message", "title"}}`.
    pub(crate) fn keystone(status: StatusCode, message: impl Into<String>) -> ApiError {
        let title = status.canonical_reason().unwrap_or("Error");
        let body = json!({ "error": { "code": status.as_u16(), "message": message.into(), "title": title } });
        ApiError { status, body: Some(body), text: None }
    }

    pub(crate) fn unauthorized() -> ApiError {
        ApiError::keystone(StatusCode::UNAUTHORIZED, "The request you have made requires authentication.")
    }

    /// A bad `limit`/`marker`, in the shape of `service`.
    pub(crate) fn page(service: Service, e: &PageError) -> ApiError {
        match service {
            Service::Network => ApiError::neutron(StatusCode::BAD_REQUEST, "BadRequest", e.message()),
            Service::Image => ApiError::glance(StatusCode::BAD_REQUEST, e.message()),
            _ => ApiError::nova(StatusCode::BAD_REQUEST, e.message()),
        }
    }

    /// The 500 of `service` (what `kind: error` injects).
    pub(crate) fn internal(service: Service) -> ApiError {
        match service {
            Service::Compute | Service::Volume => ApiError::nova(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.",
            ),
            Service::Network => ApiError::neutron(
                StatusCode::INTERNAL_SERVER_ERROR,
                "HTTPInternalServerError",
                "Request Failed: internal server error while processing your request.",
            ),
            Service::Image => ApiError::glance(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server has either erred or is incapable of performing the requested operation.",
            ),
            Service::Identity => ApiError::keystone(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error prevented the server from fulfilling your request.",
            ),
        }
    }
}

impl From<SimError> for ApiError {
    fn from(e: SimError) -> ApiError {
        tracing::error!(error = %e, "openstack simulator state");
        ApiError::nova(StatusCode::INTERNAL_SERVER_ERROR, format!("simulator state error: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = match (self.body, self.text) {
            (Some(v), _) => (self.status, Json(v)).into_response(),
            (None, Some(t)) => (self.status, [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], t).into_response(),
            (None, None) => self.status.into_response(),
        };
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Keystone"));
        }
        resp
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// A JSON response with a status.
pub(crate) fn reply(status: StatusCode, v: Value) -> ApiResult {
    Ok((status, Json(v)).into_response())
}

/// Parses a request body as a JSON object, or the service's 400.
pub(crate) fn body_json(service: Service, bytes: &[u8]) -> Result<Value, ApiError> {
    let bad = |m: String| match service {
        Service::Network => ApiError::neutron(StatusCode::BAD_REQUEST, "BadRequest", m),
        Service::Image => ApiError::glance(StatusCode::BAD_REQUEST, m),
        Service::Identity => ApiError::keystone(StatusCode::BAD_REQUEST, m),
        _ => ApiError::nova(StatusCode::BAD_REQUEST, m),
    };
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("Malformed request body: {e}")))?;
    if !v.is_object() {
        return Err(bad("Malformed request body: expected a JSON object".into()));
    }
    Ok(v)
}

/// Parses the query string (repeated keys kept).
pub(crate) fn query(raw: Option<&str>) -> Query {
    let pairs = raw.map(query_pairs).unwrap_or_default();
    Query(pairs)
}

fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `X-Auth-Token` of a request, if it names a live token.
pub(crate) fn token_of(sim: &Sim, headers: &HeaderMap) -> Option<super::keystone::Token> {
    let t = headers.get("x-auth-token")?.to_str().ok()?;
    super::keystone::live_token(sim, t)
}

/// A negotiated microversion (major, minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Microversion(pub u32, pub u32);

impl Microversion {
    pub(crate) fn at_least(self, minor: u32) -> bool {
        self.1 >= minor
    }
}

pub(crate) const COMPUTE_MIN: Microversion = Microversion(2, 1);
pub(crate) const COMPUTE_MAX: Microversion = Microversion(2, 96);
pub(crate) const VOLUME_MIN: Microversion = Microversion(3, 0);
pub(crate) const VOLUME_MAX: Microversion = Microversion(3, 71);

fn parse_version(text: &str) -> Option<Microversion> {
    let (a, b) = text.trim().split_once('.')?;
    Some(Microversion(a.parse().ok()?, b.parse().ok()?))
}

/// The microversion a request asks for (`OpenStack-API-Version: compute 2.96`, or Nova's
/// legacy `X-OpenStack-Nova-API-Version`), the minimum when absent; `Err` with the 406 text
/// when out of range.
fn negotiate(headers: &HeaderMap, service: &str, min: Microversion, max: Microversion) -> Result<Microversion, String> {
    let mut asked: Option<String> = None;
    for v in headers.get_all("openstack-api-version") {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(',') {
            let mut it = part.split_whitespace();
            if it.next().is_some_and(|s| s.eq_ignore_ascii_case(service)) {
                asked = it.next().map(str::to_owned);
            }
        }
    }
    if asked.is_none() && service == "compute" {
        asked = headers.get("x-openstack-nova-api-version").and_then(|v| v.to_str().ok()).map(str::to_owned);
    }
    let Some(asked) = asked else { return Ok(min) };
    if asked.eq_ignore_ascii_case("latest") {
        return Ok(max);
    }
    let v = parse_version(&asked).ok_or_else(|| format!("Invalid API version request string {asked}"))?;
    if v < min || v > max {
        return Err(format!(
            "Version {asked} is not supported by the API. Minimum is {}.{} and maximum is {}.{}.",
            min.0, min.1, max.0, max.1
        ));
    }
    Ok(v)
}

/// Paths each service answers without a token (version discovery).
fn is_public(service: Service, path: &str) -> bool {
    let p = path.trim_end_matches('/');
    match service {
        // Keystone's handlers check tokens themselves (POST /v3/auth/tokens needs none).
        Service::Identity => true,
        Service::Compute => matches!(p, "" | "/v2.1" | "/v2"),
        Service::Volume => matches!(p, "" | "/v3"),
        Service::Image => matches!(p, "" | "/versions"),
        Service::Network => matches!(p, "" | "/v2.0"),
    }
}

/// The middleware in front of every service: request id, faults, token check, microversion.
pub(crate) async fn layer(State((sim, service)): State<(Arc<Sim>, Service)>, mut req: Request, next: Next) -> Response {
    let request_id = format!("req-{}", super::state::random_uuid());
    let path = req.uri().path().to_owned();
    let mut resp = 'resp: {
        if !path.starts_with("/_sim") {
            match sim.faults.take_request_fault(service) {
                Some((FaultKind::Down, _)) => break 'resp StatusCode::SERVICE_UNAVAILABLE.into_response(),
                Some((FaultKind::Error, _)) => break 'resp ApiError::internal(service).into_response(),
                Some((FaultKind::Malformed, _)) => {
                    break 'resp (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        "{\"simulated\": \"malformed response\", \"items\": [{\"id\": ",
                    )
                        .into_response();
                }
                Some((FaultKind::Slow, secs)) => tokio::time::sleep(Duration::from_secs_f64(secs)).await,
                Some((FaultKind::FailNextAction, _)) | None => {}
            }
            if !is_public(service, &path) && token_of(&sim, req.headers()).is_none() {
                break 'resp ApiError::unauthorized().into_response();
            }
        }
        let mv = match service {
            Service::Compute => Some(("compute", negotiate(req.headers(), "compute", COMPUTE_MIN, COMPUTE_MAX))),
            Service::Volume => Some(("volume", negotiate(req.headers(), "volume", VOLUME_MIN, VOLUME_MAX))),
            _ => None,
        };
        match mv {
            Some((_, Err(message))) => break 'resp ApiError::nova(StatusCode::NOT_ACCEPTABLE, message).into_response(),
            Some((name, Ok(v))) => {
                req.extensions_mut().insert(v);
                let mut resp = next.run(req).await;
                let h = resp.headers_mut();
                if let Ok(val) = HeaderValue::from_str(&format!("{name} {}.{}", v.0, v.1)) {
                    h.insert("openstack-api-version", val);
                }
                if name == "compute"
                    && let Ok(val) = HeaderValue::from_str(&format!("{}.{}", v.0, v.1))
                {
                    h.insert("x-openstack-nova-api-version", val);
                }
                h.insert(header::VARY, HeaderValue::from_static("OpenStack-API-Version"));
                resp
            }
            None => next.run(req).await,
        }
    };
    tracing::debug!(service = service.as_str(), %path, status = resp.status().as_u16(), %request_id, "openstack simulator request");
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-openstack-request-id", v);
    }
    resp
}

/// A string field of a JSON object, if present and a string.
pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A `{"key": "value"}` JSON object as a string map (non-string values are rejected).
pub(crate) fn string_map(v: Option<&Value>) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut out = std::collections::BTreeMap::new();
    let Some(v) = v else { return Ok(out) };
    if v.is_null() {
        return Ok(out);
    }
    let obj = v.as_object().ok_or("metadata must be an object of strings")?;
    for (k, val) in obj {
        let s = val.as_str().ok_or_else(|| format!("metadata value of {k} must be a string"))?;
        out.insert(k.clone(), s.to_owned());
    }
    Ok(out)
}

pub(crate) fn empty(status: StatusCode) -> ApiResult {
    Ok(Response::builder().status(status).body(Body::empty()).unwrap_or_else(|_| status.into_response()))
}
