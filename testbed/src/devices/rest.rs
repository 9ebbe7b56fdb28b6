//! The Poly VideoOS REST API of a simulated device, over HTTPS with a self-signed certificate
//! (as the units ship): `POST /rest/session` (`{"user", "password"}`, the verified login
//! body) sets a `session_id` cookie and an `XSRF-TOKEN` cookie; `GET /rest/system` and `GET
//! /rest/conferences` need the session; `DELETE /rest/session` ends it. The identity fields
//! follow `plugins::vc::rest::inferred` (what the protocol notes could not confirm). One
//! request per connection; fault flags as in `sim`, plus `rest-garbage`.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::sim::Device;

fn tls_config() -> Result<Arc<rustls::ServerConfig>, String> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).map_err(|e| e.to_string())?;
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(cfg))
}

/// Serves the REST API on `addr` until the process ends.
pub fn serve(dev: Arc<Device>, addr: SocketAddr) -> Result<(), String> {
    let tls = tls_config()?;
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let sessions: Arc<Mutex<HashSet<String>>> = Arc::default();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(stream) = conn else { continue };
            let (dev, tls, sessions) = (dev.clone(), tls.clone(), sessions.clone());
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                if let Ok(conn) = rustls::ServerConnection::new(tls) {
                    let _ = handle(&dev, &sessions, rustls::StreamOwned::new(conn, stream));
                }
            });
        }
    });
    Ok(())
}

type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

fn handle(dev: &Device, sessions: &Mutex<HashSet<String>>, stream: Tls) -> std::io::Result<()> {
    if dev.flag("down") {
        return Ok(());
    }
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let (mut length, mut cookie) = (0usize, String::new());
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0).min(1 << 20),
                "cookie" => cookie = v.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    r.read_exact(&mut body)?;
    let session = cookie
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == "session_id")
        .map(|(_, v)| v.to_string());
    let known = session.as_ref().is_some_and(|s| sessions.lock().unwrap_or_else(|p| p.into_inner()).contains(s));
    let mut extra = String::new();
    let (status, text) = match (method.as_str(), path.as_str()) {
        ("POST", "/rest/session") => {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let ok = !dev.flag("bad-password")
                && v["user"] == "admin"
                && v["password"].as_str().is_some_and(|p| p == dev.password());
            if ok {
                let id = format!("{:016x}", rand::random::<u64>());
                sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone());
                extra = format!(
                    "Set-Cookie: session_id={id}; Path=/; Secure; HttpOnly\r\nSet-Cookie: XSRF-TOKEN={:016x}; Path=/; Secure\r\n",
                    rand::random::<u64>()
                );
                (200, json!({"success": true, "reason": "", "session": {"sessionId": id, "userId": "admin", "isAuthenticated": true}}).to_string())
            } else {
                (401, json!({"success": false, "reason": "Invalid credentials"}).to_string())
            }
        }
        ("GET", "/rest/system") if known => {
            if dev.flag("rest-garbage") {
                (200, "<html><body>Internal error \u{1}\u{2}</body>".to_string())
            } else {
                let c = dev.config();
                (200, json!({"model": c.model.trim_start_matches("Poly ").trim_start_matches("Polycom "), "serialNumber": c.serial, "softwareVersion": c.software, "systemName": c.name, "uptime": format!("{} seconds", dev.uptime())}).to_string())
            }
        }
        ("GET", "/rest/conferences") if known => (200, "[]".to_string()),
        ("DELETE", "/rest/session") => {
            if let Some(s) = session {
                sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&s);
            }
            (200, json!({"success": true}).to_string())
        }
        ("GET", _) if !known => (401, json!({"success": false, "reason": "Not authenticated"}).to_string()),
        _ => (404, json!({"success": false, "reason": "Not found"}).to_string()),
    };
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut out = r.into_inner();
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{text}",
        text.len()
    )?;
    out.flush()?;
    out.conn.send_close_notify();
    let _ = out.flush();
    Ok(())
}
