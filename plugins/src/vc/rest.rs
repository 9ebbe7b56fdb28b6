//! The Poly VideoOS REST API (G7500, Studio X): `POST /rest/session` with `user`/`password`
//! (verified), then `GET /rest/system` and `GET /rest/conferences`, then `DELETE
//! /rest/session` (log out after each poll: sessions left open can wedge the unit's web UI).
//!
//! Everything marked [Inferred] in `poly-endpoints.md` is kept in [`inferred`], so a capture
//! from a real unit corrects it in one place.

use std::time::Duration;

use serde_json::Value;

use crate::http::{HttpOptions, agent, read_body, transport_error};

/// What the REST API told us.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestInfo {
    pub model: Option<String>,
    pub serial: Option<String>,
    pub software: Option<String>,
    pub system_name: Option<String>,
    pub uptime: Option<String>,
    pub in_call: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    #[error("REST API not responding: {0}")]
    Unreachable(String),
    #[error("credentials failed: the REST API refused the login ({0})")]
    Credentials(String),
    #[error("REST API answered {call} with HTTP {status}")]
    Status { call: String, status: u16 },
    #[error("REST API answered garbage to {call}: {detail}")]
    Garbage { call: String, detail: String },
}

/// The parts of the API the protocol notes mark [Inferred], in one place.
pub mod inferred {
    /// Field names of `GET /rest/system`, each with the alternatives seen in third-party code.
    pub const MODEL: &[&str] = &["model", "modelName", "hardwareModel"];
    pub const SERIAL: &[&str] = &["serialNumber", "serial"];
    pub const SOFTWARE: &[&str] = &["softwareVersion", "build", "version"];
    pub const NAME: &[&str] = &["systemName", "name"];
    pub const UPTIME: &[&str] = &["uptime", "upTime"];
    /// VideoOS 4.6.2+ wants an anti-CSRF header; we echo a cookie whose name contains this
    /// (case-insensitive), or the login reply's field of that name, as `X-XSRF-Token`.
    pub const XSRF_COOKIE: &str = "xsrf";
    pub const XSRF_HEADER: &str = "X-XSRF-Token";
}

fn pick(v: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match v.get(*n) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(x)) => Some(x.to_string()),
        _ => None,
    })
}

/// Reads identity fields from a `/rest/system` body. Total over any text.
pub fn parse_system(body: &str) -> Result<RestInfo, RestError> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| RestError::Garbage { call: "GET /rest/system".into(), detail: e.to_string() })?;
    if !v.is_object() {
        return Err(RestError::Garbage { call: "GET /rest/system".into(), detail: "not a JSON object".into() });
    }
    Ok(RestInfo {
        model: pick(&v, inferred::MODEL),
        serial: pick(&v, inferred::SERIAL),
        software: pick(&v, inferred::SOFTWARE),
        system_name: pick(&v, inferred::NAME),
        uptime: pick(&v, inferred::UPTIME),
        in_call: false,
    })
}

/// Whether a `/rest/conferences` body shows a call (a non-empty list). [Inferred shape]
pub fn parse_in_call(body: &str) -> Result<bool, RestError> {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Array(a)) => Ok(!a.is_empty()),
        Ok(Value::Object(o)) => Ok(o.values().any(|v| v.as_array().is_some_and(|a| !a.is_empty()))),
        Ok(_) => Err(RestError::Garbage { call: "GET /rest/conferences".into(), detail: "not a list".into() }),
        Err(e) => Err(RestError::Garbage { call: "GET /rest/conferences".into(), detail: e.to_string() }),
    }
}

/// `name=value` of every `Set-Cookie` of a response.
fn cookies(resp: &ureq::http::Response<ureq::Body>) -> Vec<(String, String)> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .filter_map(|h| h.split(';').next())
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect()
}

/// The whole REST check. `base` is `https://host:port`.
pub fn check(base: &str, user: &str, password: &str, timeout: Duration, insecure: bool) -> Result<RestInfo, RestError> {
    let opts = HttpOptions { ca_file: None, insecure, timeout_secs: timeout.as_secs().max(1) };
    let http = agent(base, &opts).map_err(|e| RestError::Unreachable(e.to_string()))?;
    let unreachable =
        |call: &str, e: ureq::Error| RestError::Unreachable(transport_error(base, call, &opts, e).to_string());
    let login = serde_json::json!({"user": user, "password": password});
    let mut resp = http
        .post(format!("{base}/rest/session"))
        .header("Content-Type", "application/json")
        .send(login.to_string())
        .map_err(|e| unreachable("POST /rest/session", e))?;
    let status = resp.status().as_u16();
    let jar = cookies(&resp);
    let body =
        read_body(base, "POST /rest/session", &opts, &mut resp).map_err(|e| RestError::Unreachable(e.to_string()))?;
    if status == 401 || status == 403 {
        return Err(RestError::Credentials(format!("HTTP {status}")));
    }
    if status != 200 && status != 201 {
        return Err(RestError::Status { call: "POST /rest/session".into(), status });
    }
    let reply: Value = serde_json::from_str(&body)
        .map_err(|e| RestError::Garbage { call: "POST /rest/session".into(), detail: e.to_string() })?;
    if reply.get("success").and_then(Value::as_bool) == Some(false) {
        let reason = reply.get("reason").and_then(Value::as_str).unwrap_or("refused").to_string();
        return Err(RestError::Credentials(reason));
    }
    let cookie_header = jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let xsrf = jar.iter().find(|(k, _)| k.to_ascii_lowercase().contains(inferred::XSRF_COOKIE)).map(|(_, v)| v.clone());
    let get = |path: &str| -> Result<String, RestError> {
        let call = format!("GET {path}");
        let mut req = http.get(format!("{base}{path}")).header("Cookie", &cookie_header);
        if let Some(x) = &xsrf {
            req = req.header(inferred::XSRF_HEADER, x);
        }
        let mut resp = req.call().map_err(|e| unreachable(&call, e))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(RestError::Credentials(format!("{call}: HTTP {status}")));
        }
        if status != 200 {
            return Err(RestError::Status { call, status });
        }
        read_body(base, &call, &opts, &mut resp).map_err(|e| RestError::Unreachable(e.to_string()))
    };
    let result = (|| {
        let mut info = parse_system(&get("/rest/system")?)?;
        info.in_call = parse_in_call(&get("/rest/conferences")?)?;
        Ok(info)
    })();
    // Log out whatever happened (best effort).
    let _ = http.delete(format!("{base}/rest/session")).header("Cookie", &cookie_header).call();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_fields_are_read_tolerantly_and_garbage_refused() {
        let i = parse_system(r#"{"model":"G7500","serialNumber":"8L19","softwareVersion":"4.1.0","extra":1}"#)
            .expect("parsed");
        assert_eq!(
            (i.model.as_deref(), i.serial.as_deref(), i.software.as_deref()),
            (Some("G7500"), Some("8L19"), Some("4.1.0"))
        );
        assert!(parse_system("<html>").is_err());
        assert!(parse_system("[]").is_err());
        assert!(!parse_in_call("[]").expect("idle"));
        assert!(parse_in_call(r#"[{"id":1}]"#).expect("call"));
        assert!(parse_in_call("nope").is_err());
    }
}
