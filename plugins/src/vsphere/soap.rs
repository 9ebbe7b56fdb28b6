//! vim25 over SOAP 1.1: request envelopes, the session cookie, and the reading of answers and
//! faults.
//!
//! Wire details follow what pyvmomi sends (see `/work/shared/protocols/vsphere-soap-calls.md`):
//! every call is `POST <url>` with `SOAPAction: "urn:vim25/<version>"`, the operation element
//! in the default namespace `urn:vim25`, no SOAP header, and the `vmware_soap_session` cookie
//! from `Login` sent back on every later call. Faults come back as HTTP 500 with a
//! `soapenv:Fault` whose `detail` names the vim25 fault type.

use std::sync::Mutex;

use crate::error::PlatformError;
use crate::http::{self, HttpOptions};

use super::xml::{self, Node, escape};

const ENVELOPE_HEAD: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" "#,
    r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
    "<soapenv:Body>"
);
const ENVELOPE_TAIL: &str = "</soapenv:Body></soapenv:Envelope>";
const SESSION_COOKIE: &str = "vmware_soap_session";

/// API versions this driver has been written against, newest first. The server's
/// `vimServiceVersions.xml` picks among them; 6.5 when it lists none of them.
pub const SUPPORTED_VERSIONS: &[&str] =
    &["8.0.3.0", "8.0.2.0", "8.0.1.0", "8.0.0.0", "7.0.3.0", "7.0.2.0", "7.0.1.0", "7.0", "6.7.3", "6.7", "6.5"];
pub const DEFAULT_VERSION: &str = "6.5";

/// A managed object reference: `type` and moid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Moref {
    pub kind: String,
    pub value: String,
}

impl Moref {
    pub fn new(kind: &str, value: &str) -> Moref {
        Moref { kind: kind.to_string(), value: value.to_string() }
    }

    /// Reads a moref element (`<obj type="VirtualMachine">vm-63</obj>`).
    pub fn from_node(node: &Node) -> Option<Moref> {
        let kind = node.mo_type.as_deref()?;
        let value = node.value();
        (!value.is_empty()).then(|| Moref::new(kind, value))
    }

    /// The element `<name type="…">moid</name>`.
    pub fn xml(&self, name: &str) -> String {
        format!(r#"<{name} type="{}">{}</{name}>"#, escape(&self.kind), escape(&self.value))
    }
}

/// `<name>text</name>` with the text escaped.
pub fn el(name: &str, text: &str) -> String {
    format!("<{name}>{}</{name}>", escape(text))
}

/// Why one SOAP call failed, before the driver decides what it means for the caller.
#[derive(Debug)]
pub enum CallError {
    /// Transport, HTTP status or unreadable answer: already the caller's error.
    Platform(PlatformError),
    /// A SOAP fault: the vim25 fault type (`InvalidLogin`, `NotAuthenticated`), the
    /// faultstring and the detail element (its fields, e.g. `obj` for ManagedObjectNotFound).
    Fault { kind: String, message: String, detail: Option<Box<Node>> },
}

/// One vim25 endpoint and the session held with it.
pub struct Transport {
    /// The URL as shown in messages (no credentials ever live in it).
    pub endpoint: String,
    url: String,
    pub opts: HttpOptions,
    agent: ureq::Agent,
    version: Mutex<String>,
    cookie: Mutex<Option<String>>,
}

impl Transport {
    pub fn new(url: &str, opts: &HttpOptions) -> Result<Transport, PlatformError> {
        let endpoint = url.trim_end_matches('/').to_string();
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(PlatformError::Config(format!("vSphere URL {endpoint:?} must start with https:// or http://")));
        }
        if endpoint.split("://").nth(1).is_some_and(|rest| rest.split('/').next().unwrap_or_default().contains('@')) {
            return Err(PlatformError::Config(format!(
                "vSphere URL for {} must not carry credentials; set username and password instead",
                endpoint.rsplit('@').next().unwrap_or_default()
            )));
        }
        let agent = http::agent(&endpoint, opts)?;
        Ok(Transport {
            url: endpoint.clone(),
            endpoint,
            opts: opts.clone(),
            agent,
            version: Mutex::new(DEFAULT_VERSION.to_string()),
            cookie: Mutex::new(None),
        })
    }

    pub fn version(&self) -> String {
        self.version.lock().map(|v| v.clone()).unwrap_or_else(|_| DEFAULT_VERSION.to_string())
    }

    /// Reads `<url>/vimServiceVersions.xml` and picks the newest version both sides know.
    /// A server without the document (404) keeps the default; a server that cannot be reached
    /// is reported now, before any credential is sent.
    pub fn negotiate_version(&self, trips: &mut u32) -> Result<String, PlatformError> {
        let call = "GET vimServiceVersions.xml";
        *trips += 1;
        let mut resp = self
            .agent
            .get(format!("{}/vimServiceVersions.xml", self.url))
            .call()
            .map_err(|e| http::transport_error(&self.endpoint, call, &self.opts, e))?;
        let chosen = if resp.status().as_u16() == 200 {
            let body = http::read_body(&self.endpoint, call, &self.opts, &mut resp)?;
            pick_version(&body).unwrap_or(DEFAULT_VERSION).to_string()
        } else {
            DEFAULT_VERSION.to_string()
        };
        if let Ok(mut v) = self.version.lock() {
            v.clone_from(&chosen);
        }
        Ok(chosen)
    }

    pub fn has_session(&self) -> bool {
        self.cookie.lock().map(|c| c.is_some()).unwrap_or(false)
    }

    pub fn forget_session(&self) -> bool {
        self.cookie.lock().map(|mut c| c.take().is_some()).unwrap_or(false)
    }

    /// `scheme://host[:port]` of the endpoint: where a URL the server writes with `*` as its
    /// host (an export lease's disk URLs) is served.
    pub fn origin(&self) -> &str {
        let after_scheme = self.url.find("://").map_or(0, |i| i + 3);
        let end = self.url[after_scheme..].find('/').map_or(self.url.len(), |i| after_scheme + i);
        &self.url[..end]
    }

    /// `GET url` with the session cookie, the body left to the caller to stream. The call
    /// timeout bounds the wait for the answer's head, not the body: a disk takes longer.
    pub fn get_stream(&self, url: &str, call: &str) -> Result<ureq::http::Response<ureq::Body>, PlatformError> {
        let cookie = self.cookie.lock().ok().and_then(|c| c.clone());
        let mut req =
            self.agent.get(url).config().timeout_global(None).timeout_recv_response(Some(self.opts.timeout())).build();
        if let Some(c) = &cookie {
            req = req.header("Cookie", format!("{SESSION_COOKIE}={c}"));
        }
        req.call().map_err(|e| http::transport_error(&self.endpoint, call, &self.opts, e))
    }

    /// Sends one operation and returns its `<OpResponse>` element.
    pub fn call(&self, method: &str, params: &str, trips: &mut u32) -> Result<Node, CallError> {
        let body = format!(r#"{ENVELOPE_HEAD}<{method} xmlns="urn:vim25">{params}</{method}>{ENVELOPE_TAIL}"#);
        let cookie = self.cookie.lock().ok().and_then(|c| c.clone());
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "text/xml; charset=UTF-8")
            .header("SOAPAction", format!("\"urn:vim25/{}\"", self.version()));
        if let Some(c) = &cookie {
            req = req.header("Cookie", format!("{SESSION_COOKIE}={c}"));
        }
        *trips += 1;
        let mut resp = req
            .send(body)
            .map_err(|e| CallError::Platform(http::transport_error(&self.endpoint, method, &self.opts, e)))?;
        for value in resp.headers().get_all("set-cookie") {
            if let Some(session) = value.to_str().ok().and_then(session_from_set_cookie)
                && let Ok(mut c) = self.cookie.lock()
            {
                *c = Some(session);
            }
        }
        let status = resp.status().as_u16();
        let text = http::read_body(&self.endpoint, method, &self.opts, &mut resp).map_err(CallError::Platform)?;
        match status {
            200 | 500 => read_answer(&self.endpoint, method, status, &text),
            502..=504 => Err(CallError::Platform(PlatformError::Unreachable {
                endpoint: self.endpoint.clone(),
                detail: format!("{method}: HTTP {status} from a proxy in front of the server"),
            })),
            _ => Err(CallError::Platform(PlatformError::Refused {
                endpoint: self.endpoint.clone(),
                call: method.to_string(),
                message: format!("HTTP {status}: {}", snippet(&text)),
            })),
        }
    }
}

/// The session id out of a `Set-Cookie: vmware_soap_session=<id>; HttpOnly` header.
fn session_from_set_cookie(header: &str) -> Option<String> {
    let first = header.split(';').next()?.trim();
    let value = first.strip_prefix(SESSION_COOKIE)?.strip_prefix('=')?;
    let value = value.trim_matches('"');
    (!value.is_empty()).then(|| value.to_string())
}

/// The first lines of a body, for messages about answers that are not SOAP.
fn snippet(text: &str) -> String {
    let t = text.trim();
    let cut: String = t.chars().take(200).collect();
    if cut.len() < t.len() { format!("{cut}…") } else { cut }
}

fn malformed(endpoint: &str, call: &str, detail: String) -> CallError {
    CallError::Platform(PlatformError::Malformed { endpoint: endpoint.to_string(), call: call.to_string(), detail })
}

/// Reads a SOAP answer (HTTP 200 or 500): the operation's response element, or the fault.
pub fn read_answer(endpoint: &str, method: &str, status: u16, text: &str) -> Result<Node, CallError> {
    let root = match xml::parse(text) {
        Ok(root) => root,
        Err(e) if status == 500 => {
            // A 500 that is not SOAP (a proxy's error page, a crashed server).
            return Err(CallError::Platform(PlatformError::Refused {
                endpoint: endpoint.to_string(),
                call: method.to_string(),
                message: format!("HTTP 500 without a SOAP fault ({e}): {}", snippet(text)),
            }));
        }
        Err(e) => return Err(malformed(endpoint, method, format!("not XML: {e}"))),
    };
    if root.name != "Envelope" {
        return Err(malformed(endpoint, method, format!("expected a SOAP Envelope, got <{}>", root.name)));
    }
    let body = root.child("Body").ok_or_else(|| malformed(endpoint, method, "the envelope has no Body".into()))?;
    let first = body.children.first().ok_or_else(|| malformed(endpoint, method, "the SOAP Body is empty".into()))?;
    if first.name == "Fault" {
        let message = first.text_at(&["faultstring"]).unwrap_or_default().to_string();
        let detail = first.child("detail").and_then(|d| d.children.first()).cloned().map(Box::new);
        let kind = detail
            .as_ref()
            .map(|d| d.xsi_type.clone().unwrap_or_else(|| d.name.trim_end_matches("Fault").to_string()))
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| first.text_at(&["faultcode"]).unwrap_or("UnknownFault").to_string());
        return Err(CallError::Fault { kind, message, detail });
    }
    if status == 500 {
        return Err(CallError::Platform(PlatformError::Refused {
            endpoint: endpoint.to_string(),
            call: method.to_string(),
            message: format!("HTTP 500 with <{}> instead of a fault", first.name),
        }));
    }
    let expected = format!("{method}Response");
    if first.name != expected {
        return Err(malformed(endpoint, method, format!("expected <{expected}>, got <{}>", first.name)));
    }
    Ok(first.clone())
}

/// The newest of [`SUPPORTED_VERSIONS`] that `vimServiceVersions.xml` lists for `urn:vim25`.
pub fn pick_version(doc: &str) -> Option<&'static str> {
    let root = xml::parse(doc).ok()?;
    let ns = root.children_named("namespace").find(|n| n.text_at(&["name"]) == Some("urn:vim25"))?;
    let mut offered: Vec<&str> = ns.children_named("version").map(Node::value).collect();
    if let Some(prior) = ns.child("priorVersions") {
        offered.extend(prior.children_named("version").map(Node::value));
    }
    SUPPORTED_VERSIONS.iter().copied().find(|v| offered.contains(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EP: &str = "https://vc.example/sdk";

    #[test]
    fn set_cookie_yields_the_session_id_only() {
        assert_eq!(session_from_set_cookie("vmware_soap_session=abc-1; HttpOnly"), Some("abc-1".into()));
        assert_eq!(session_from_set_cookie("vmware_soap_session=\"52a\"; Path=/; HttpOnly"), Some("52a".into()));
        assert_eq!(session_from_set_cookie("other=1"), None);
    }

    #[test]
    fn faults_carry_type_and_message() {
        let body = r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>managed object not found: VirtualMachine:vm-9</faultstring><detail><ManagedObjectNotFoundFault xmlns="urn:vim25" xsi:type="ManagedObjectNotFound"><obj type="VirtualMachine">vm-9</obj></ManagedObjectNotFoundFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        match read_answer(EP, "PowerOnVM_Task", 500, body) {
            Err(CallError::Fault { kind, message, detail }) => {
                assert_eq!(kind, "ManagedObjectNotFound");
                assert!(message.contains("vm-9"));
                assert_eq!(
                    detail.and_then(|d| d.child("obj").and_then(Moref::from_node)),
                    Some(Moref::new("VirtualMachine", "vm-9"))
                );
            }
            other => panic!("expected a fault, got {other:?}"),
        }
    }

    #[test]
    fn truncated_or_foreign_answers_are_malformed_never_a_panic() {
        let full = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><LogoutResponse xmlns="urn:vim25"></LogoutResponse></soapenv:Body></soapenv:Envelope>"#;
        assert!(read_answer(EP, "Logout", 200, full).is_ok());
        for cut in 0..full.len() - 1 {
            match read_answer(EP, "Logout", 200, &full[..cut]) {
                Err(CallError::Platform(PlatformError::Malformed { call, .. })) => assert_eq!(call, "Logout"),
                other => panic!("cut at {cut}: expected Malformed, got {other:?}"),
            }
        }
        for body in ["<html>oops</html>", "<soapenv:Envelope xmlns:soapenv=\"x\"/>", "{\"json\": true}"] {
            assert!(
                matches!(
                    read_answer(EP, "Logout", 200, body),
                    Err(CallError::Platform(PlatformError::Malformed { .. }))
                ),
                "{body}"
            );
        }
        let wrong = full.replace("LogoutResponse", "LoginResponse");
        assert!(matches!(
            read_answer(EP, "Logout", 200, &wrong),
            Err(CallError::Platform(PlatformError::Malformed { .. }))
        ));
        // A 500 that is not SOAP is the server refusing, with the body quoted.
        match read_answer(EP, "Logout", 500, "Internal Server Error") {
            Err(CallError::Platform(PlatformError::Refused { message, .. })) => {
                assert!(message.contains("Internal Server Error"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn version_pick_prefers_the_newest_both_know() {
        let doc = "<namespaces version=\"1.0\"><namespace><name>urn:vim25</name><version>6.5</version><priorVersions><version>6.0</version><version>5.5</version></priorVersions></namespace></namespaces>";
        assert_eq!(pick_version(doc), Some("6.5"));
        let newer = "<namespaces version=\"1.0\"><namespace><name>urn:vim25</name><version>9.9.9</version><priorVersions><version>7.0.3.0</version><version>6.7</version></priorVersions></namespace></namespaces>";
        assert_eq!(pick_version(newer), Some("7.0.3.0"));
        assert_eq!(pick_version("<broken"), None);
    }
}
