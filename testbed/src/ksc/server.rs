//! The simulator's HTTPS edge (one task per TLS connection, HTTP/1.1, requests answered in
//! order; the connection's login state lives in that task) and its methods.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::filter::{self, Val};
use super::seed::{self, SimHost};
use super::{CA_FILE, FAULT_FILE, KscSimConfig, KscSimError, TRUTH_FILE, io_err};

/// Items the protocol notes mark [Inferred], in one place so they are easy to correct:
/// the HTTP status that carries an error envelope (the notes: 200 suits KlAkOAPI-style
/// clients), and the status of a call on a connection that never logged in.
const ENVELOPE_STATUS: u16 = 200;
const NOT_LOGGED_IN_STATUS: u16 = 401;

/// Largest request body accepted.
const MAX_BODY: usize = 8 * 1024 * 1024;
/// Longest a result set may live (protocol notes §4.2).
const MAX_LIFETIME: u64 = 7200;

struct ResultSet {
    hosts: Vec<usize>,
    fields: Vec<String>,
    expires: Instant,
}

struct Sim {
    cfg: KscSimConfig,
    accessors: Mutex<HashMap<String, ResultSet>>,
    /// Session tokens from `Session.StartSession`, and whether each has ended.
    sessions: Mutex<HashMap<String, bool>>,
}

#[derive(Default)]
struct ConnState {
    /// The session this connection is logged in to (a login makes a fresh one).
    session: Option<String>,
}

fn random_id() -> String {
    let b: [u8; 16] = rand::random();
    hex::encode(b)
}

impl Sim {
    fn fault(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.cfg.state_dir.join(FAULT_FILE)).ok()?;
        let w = text.trim().to_string();
        (!w.is_empty()).then_some(w)
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An answer.
struct Resp {
    status: u16,
    body: Vec<u8>,
}

fn ok(v: Value) -> Resp {
    Resp { status: 200, body: v.to_string().into_bytes() }
}

fn pxg(code: i64, message: &str) -> Resp {
    let body = json!({"PxgError": {"code": code, "subcode": 0, "module": "KLSTD", "message": message}});
    Resp { status: ENVELOPE_STATUS, body: body.to_string().into_bytes() }
}

fn status(code: u16, text: &str) -> Resp {
    Resp { status: code, body: text.as_bytes().to_vec() }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        _ => "Error",
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = (&mut *r).take(16 * 1024).read_until(b'\n', &mut buf).await?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string()))
}

/// Reads one request; `Ok(None)` when the client closed the connection.
async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Option<Request>> {
    let Some(line) = read_line(r).await? else { return Ok(None) };
    let mut parts = line.split(' ');
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = Vec::new();
    loop {
        let Some(l) = read_line(r).await? else { return Ok(None) };
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let size_line = read_line(r).await?.ok_or_else(|| bad("eof in chunked body"))?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                while read_line(r).await?.is_some_and(|l| !l.is_empty()) {}
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(bad("body too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..]).await?;
            read_line(r).await?;
        }
    } else if let Some(len) = get("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
        if len > MAX_BODY {
            return Err(bad("body too large"));
        }
        body.resize(len, 0);
        r.read_exact(&mut body).await?;
    }
    Ok(Some(Request { method, path, headers, body }))
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn datetime(unix: i64) -> Value {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let text = t
        .format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
        .unwrap_or_default();
    json!({"type": "datetime", "value": text})
}

/// Every attribute of a host, as KSC would store it now (null ones left out).
fn attrs(h: &SimHost, now: i64) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("KLHST_WKS_HOSTNAME", json!(h.id));
    put("KLHST_WKS_DN", json!(h.dn));
    put("KLHST_WKS_WINHOSTNAME", json!(h.dn));
    put("KLHST_WKS_GROUPID", json!(h.group));
    put("KLHST_WKS_STATUS", json!(h.status_bits()));
    put("KLHST_WKS_STATUS_ID", json!(h.status_id));
    put("KLHST_WKS_OS_NAME", json!(h.os));
    put("KLHST_WKS_NAG_VERSION", json!("14.2.0.26967"));
    put("KLHST_WKS_VIRUS_COUNT", json!({"type": "long", "value": h.viruses}));
    put("KLHST_WKS_LAST_VISIBLE", datetime(now - h.agent_age));
    put("KLHST_WKS_LAST_NAGENT_CONNECTED", datetime(now - h.agent_age));
    put("KLHST_WKS_LAST_INFOUDATE", datetime(now - h.agent_age));
    put("KLHST_WKS_RBT_REQUIRED", json!(false));
    if h.product_installed {
        put("KLHST_WKS_RTP_STATE", json!(h.rtp_state));
        put("KLHST_WKS_RTP_AV_VERSION", json!(h.av_version));
        put("KLHST_WKS_RTP_AV_BASES_TIME", datetime(now - h.bases_age));
        put("KLHST_WKS_LAST_FULLSCAN", datetime(now - h.full_scan_age));
    }
    m
}

fn pick(all: &Map<String, Value>, fields: &[String]) -> Map<String, Value> {
    fields.iter().filter_map(|f| all.get(f).map(|v| (f.clone(), v.clone()))).collect()
}

fn filter_val(v: &Value) -> Option<Val> {
    match v {
        Value::Number(n) => n.as_i64().map(Val::Int),
        Value::String(s) => Some(Val::Str(s.clone())),
        Value::Bool(b) => Some(Val::Int(i64::from(*b))),
        Value::Object(o) => o.get("value").and_then(filter_val),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => {
            a.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(|| format!("{x} is not a string"))).collect()
        }
        Some(other) => Err(format!("expected an array of strings, got {other}")),
    }
}

fn int_arg(args: &Map<String, Value>, name: &str) -> Result<i64, Resp> {
    let v = args.get(name).map(|v| match v {
        Value::Object(o) => o.get("value").cloned().unwrap_or(Value::Null),
        other => other.clone(),
    });
    v.and_then(|v| v.as_i64()).ok_or_else(|| pxg(1185, &format!("Parameter '{name}' is missing or not an integer")))
}

fn str_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, Resp> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| pxg(1185, &format!("Parameter '{name}' is missing or not a string")))
}

impl Sim {
    fn subgroups(&self, parent: i64, depth: i64) -> Vec<Value> {
        self.cfg
            .fleet
            .groups
            .iter()
            .filter(|g| g.parent == parent)
            .map(|g| {
                let mut m = Map::new();
                m.insert("id".into(), json!(g.id));
                m.insert("name".into(), json!(g.name));
                if depth != 1 {
                    let kids = self.subgroups(g.id, if depth == 0 { 0 } else { depth - 1 });
                    if !kids.is_empty() {
                        m.insert("groups".into(), Value::Array(kids));
                    }
                }
                json!({"type": "params", "value": m})
            })
            .collect()
    }

    fn find_hosts(&self, args: &Map<String, Value>) -> Resp {
        let filter = match args.get("wstrFilter").map(|v| v.as_str()) {
            None | Some(Some(_)) => args.get("wstrFilter").and_then(Value::as_str).unwrap_or(""),
            Some(None) => return pxg(1185, "Parameter 'wstrFilter' is not a string"),
        };
        let filter = match filter::parse(filter) {
            Ok(f) => f,
            Err(e) => return pxg(1186, &format!("Invalid filter: {e}")),
        };
        let fields = match strings(args.get("vecFieldsToReturn")) {
            Ok(f) => f,
            Err(e) => return pxg(1185, &format!("Parameter 'vecFieldsToReturn': {e}")),
        };
        let lifetime = match args.get("lMaxLifeTime") {
            None => MAX_LIFETIME,
            Some(v) => match filter_val(v) {
                Some(Val::Int(n)) if n > 0 => (n as u64).min(MAX_LIFETIME),
                _ => return pxg(1185, "Parameter 'lMaxLifeTime' must be a positive number of seconds"),
            },
        };
        let t = now();
        let hosts = &self.cfg.fleet.hosts;
        let mut found: Vec<usize> = (0..hosts.len())
            .filter(|&i| {
                let a = attrs(&hosts[i], t);
                filter.matches(&|k| a.get(k).and_then(filter_val))
            })
            .collect();
        // Order by the first ordering field (a params container with Name and Asc).
        if let Some(Value::Array(order)) = args.get("vecFieldsToOrder")
            && let Some(first) = order.first()
        {
            let p = first.get("value").unwrap_or(first);
            let name = p.get("Name").and_then(Value::as_str).unwrap_or("KLHST_WKS_DN").to_string();
            let asc = p.get("Asc").and_then(Value::as_bool).unwrap_or(true);
            found.sort_by_key(|&i| {
                let a = attrs(&hosts[i], t);
                a.get(&name).map(|v| v.to_string()).unwrap_or_default()
            });
            if !asc {
                found.reverse();
            }
        }
        let n = found.len();
        let acc = random_id();
        let mut sets = Sim::lock(&self.accessors);
        sets.retain(|_, s| s.expires > Instant::now());
        sets.insert(
            acc.clone(),
            ResultSet { hosts: found, fields, expires: Instant::now() + Duration::from_secs(lifetime) },
        );
        ok(json!({"PxgRetVal": n, "strAccessor": acc}))
    }

    fn with_set<R>(&self, acc: &str, f: impl FnOnce(&ResultSet) -> R) -> Result<R, Resp> {
        let mut sets = Sim::lock(&self.accessors);
        sets.retain(|_, s| s.expires > Instant::now());
        match sets.get(acc) {
            Some(s) => Ok(f(s)),
            None => Err(pxg(1180, &format!("Accessor '{acc}' not found (released or expired)"))),
        }
    }

    fn method(&self, name: &str, args: &Map<String, Value>) -> Result<Resp, Resp> {
        let fleet = &self.cfg.fleet;
        Ok(match name {
            "HostGroup.GroupIdGroups" => ok(json!({"PxgRetVal": seed::ROOT_GROUP})),
            "HostGroup.GroupIdUnassigned" => ok(json!({"PxgRetVal": seed::UNASSIGNED_GROUP})),
            "HostGroup.GroupIdSuper" => ok(json!({"PxgRetVal": seed::SUPER_GROUP})),
            "HostGroup.GetSubgroups" => {
                let id = int_arg(args, "nGroupId")?;
                let depth = int_arg(args, "nDepth").unwrap_or(0);
                if id != seed::ROOT_GROUP && !fleet.groups.iter().any(|g| g.id == id) {
                    return Err(pxg(1183, &format!("Group {id} not found")));
                }
                let kids = self.subgroups(id, depth.max(0));
                ok(json!({"PxgRetVal": if kids.is_empty() { Value::Null } else { Value::Array(kids) }}))
            }
            "HostGroup.GetGroupId" => {
                let parent = int_arg(args, "nParent")?;
                let name = str_arg(args, "strName")?;
                let id = fleet.groups.iter().find(|g| g.parent == parent && g.name == name).map_or(-1, |g| g.id);
                ok(json!({"PxgRetVal": id}))
            }
            "HostGroup.FindHosts" => self.find_hosts(args),
            "HostGroup.GetHostInfo" => {
                let id = str_arg(args, "strHostName")?;
                let fields = strings(args.get("pFields2Return")).map_err(|e| pxg(1185, &e))?;
                let h = fleet
                    .hosts
                    .iter()
                    .find(|h| h.id == id)
                    .ok_or_else(|| pxg(1184, &format!("Host '{id}' not found")))?;
                ok(json!({"PxgRetVal": pick(&attrs(h, now()), &fields)}))
            }
            "ChunkAccessor.GetItemsCount" => {
                let acc = str_arg(args, "strAccessor")?;
                let n = self.with_set(acc, |s| s.hosts.len())?;
                ok(json!({"PxgRetVal": n}))
            }
            "ChunkAccessor.GetItemsChunk" => {
                let acc = str_arg(args, "strAccessor")?;
                let start = int_arg(args, "nStart")?;
                let count = int_arg(args, "nCount")?;
                if start < 0 || count < 0 {
                    return Err(pxg(1185, "nStart and nCount must not be negative"));
                }
                let t = now();
                let items = self.with_set(acc, |s| {
                    s.hosts
                        .iter()
                        .skip(start as usize)
                        .take(count as usize)
                        .map(|&i| json!({"type": "params", "value": pick(&attrs(&fleet.hosts[i], t), &s.fields)}))
                        .collect::<Vec<_>>()
                })?;
                ok(json!({"PxgRetVal": items.len(), "pChunk": {"KLCSP_ITERATOR_ARRAY": items}}))
            }
            "ChunkAccessor.Release" => {
                let acc = str_arg(args, "strAccessor")?;
                Sim::lock(&self.accessors).remove(acc);
                ok(json!({}))
            }
            "Session.Ping" => ok(json!({})),
            _ => return Err(pxg(1179, &format!("Method '{name}' not found"))),
        })
    }

    /// Checks `KSCBasic` credentials.
    fn login_ok(&self, auth: &str) -> bool {
        let Some(rest) = auth.strip_prefix("KSCBasic ") else { return false };
        let mut user = None;
        let mut pass = None;
        for part in rest.split(',') {
            let Some((k, v)) = part.trim().split_once('=') else { continue };
            let v = v.trim().trim_matches('"');
            let dec = base64::engine::general_purpose::STANDARD.decode(v).ok().and_then(|b| String::from_utf8(b).ok());
            match k.trim() {
                "user" => user = dec,
                "pass" => pass = dec,
                _ => {} // domain (raw or base64) and internal (0, 1 or absent) are accepted as they come
            }
        }
        user.as_deref() == Some(self.cfg.user.as_str()) && pass.as_deref() == Some(self.cfg.password.as_str())
    }

    fn handle(&self, conn: &mut ConnState, req: &Request, fault: Option<&str>) -> Resp {
        if req.method != "POST" {
            return status(405, "only POST");
        }
        if let Some(ct) = req.header("content-type")
            && !ct.to_ascii_lowercase().starts_with("application/json")
        {
            return status(415, "Content-Type must be application/json");
        }
        let Some(name) = req.path.strip_prefix("/api/v1.0/") else { return status(404, "not found") };
        if name == "login" {
            if !req.header("authorization").is_some_and(|a| self.login_ok(a)) {
                return status(401, "Authentication failed");
            }
            let sid = random_id();
            Sim::lock(&self.sessions).insert(sid.clone(), false);
            conn.session = Some(sid);
            return ok(json!({}));
        }
        // A fresh connection may present a session token instead of logging in.
        if conn.session.is_none()
            && let Some(tok) = req.header("x-ksc-session")
            && Sim::lock(&self.sessions).contains_key(tok)
        {
            conn.session = Some(tok.to_string());
        }
        let Some(sid) = conn.session.clone() else { return status(NOT_LOGGED_IN_STATUS, "Not authenticated") };
        if Sim::lock(&self.sessions).get(&sid).copied().unwrap_or(true) || fault == Some("session-ended") {
            return status(403, "Session ended");
        }
        match fault {
            Some("error") => {
                return pxg(1950, "Generic server error: the administration server database is not accessible");
            }
            Some("malformed") => return Resp { status: 200, body: br#"{"PxgRetVal": 2753, "strAccessor": "#.to_vec() },
            _ => {}
        }
        let args = if req.body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&req.body) {
                Ok(Value::Object(m)) => m,
                _ => return pxg(1185, "The request body is not a JSON object"),
            }
        };
        match name {
            "Session.StartSession" => ok(json!({"PxgRetVal": sid})),
            "Session.EndSession" => {
                Sim::lock(&self.sessions).insert(sid, true);
                ok(json!({}))
            }
            _ => self.method(name, &args).unwrap_or_else(|e| e),
        }
    }
}

async fn connection<S>(sim: Arc<Sim>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    let mut conn = ConnState::default();
    loop {
        let req = match read_request(&mut r).await {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => {
                let body = format!("bad request: {e}");
                let _ = w
                    .write_all(
                        format!(
                            "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                return;
            }
        };
        let fault = sim.fault();
        if fault.as_deref() == Some("unreachable") {
            return;
        }
        let resp = sim.handle(&mut conn, &req, fault.as_deref());
        let ctype = if resp.body.first() == Some(&b'{') { "application/json" } else { "text/plain" };
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            resp.status,
            reason(resp.status),
            resp.body.len()
        );
        if w.write_all(head.as_bytes()).await.is_err()
            || w.write_all(&resp.body).await.is_err()
            || w.flush().await.is_err()
        {
            return;
        }
    }
}

/// The CA (written to `state_dir/ksc-ca.pem`) and the server certificate it signs for the
/// configured names; both made anew at each start.
fn tls(cfg: &KscSimConfig) -> Result<Arc<tokio_rustls::rustls::ServerConfig>, KscSimError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let t = |e: rcgen::Error| KscSimError::Tls(e.to_string());
    let ca_key = KeyPair::generate().map_err(t)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(t)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.distinguished_name.push(DnType::CommonName, "KSC simulator CA (Mangrove testbed)");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(t)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().map_err(t)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(t)?;
    params.distinguished_name.push(DnType::CommonName, "Kaspersky Security Center (simulated)");
    for n in &cfg.names {
        params.subject_alt_names.push(match n.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(n.as_str().try_into().map_err(t)?),
        });
    }
    let cert = params.signed_by(&key, &issuer).map_err(t)?;
    let ca_path = cfg.state_dir.join(CA_FILE);
    let tmp = ca_path.with_extension("pem.tmp");
    std::fs::write(&tmp, ca_cert.pem()).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &ca_path).map_err(io_err(&ca_path))?;
    let key_der = tokio_rustls::rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| KscSimError::Tls(e.to_string()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let sc = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| KscSimError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .map_err(|e| KscSimError::Tls(e.to_string()))?;
    Ok(Arc::new(sc))
}

/// Writes the truth file (atomically).
fn write_truth(cfg: &KscSimConfig) -> Result<(), KscSimError> {
    let path = cfg.state_dir.join(TRUTH_FILE);
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(&cfg.fleet.truth()).unwrap_or_default();
    std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))
}

/// Serves until `shutdown` completes.
///
/// # Errors
/// [`KscSimError::Bind`] if the address is taken, [`KscSimError::Io`]/[`KscSimError::Tls`] if
/// the state dir or the certificates cannot be made.
pub async fn serve(cfg: KscSimConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), KscSimError> {
    std::fs::create_dir_all(&cfg.state_dir).map_err(io_err(&cfg.state_dir))?;
    let tls = tokio_rustls::TlsAcceptor::from(tls(&cfg)?);
    write_truth(&cfg)?;
    let listener =
        TcpListener::bind(cfg.listen).await.map_err(|source| KscSimError::Bind { addr: cfg.listen, source })?;
    tracing::info!(addr = %cfg.listen, hosts = cfg.fleet.hosts.len(), "KSC simulator listening");
    let sim = Arc::new(Sim { cfg, accessors: Mutex::new(HashMap::new()), sessions: Mutex::new(HashMap::new()) });
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "KSC simulator: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if sim.fault().as_deref() == Some("unreachable") {
            drop(tcp);
            continue;
        }
        let (sim, tls) = (sim.clone(), tls.clone());
        tokio::spawn(async move {
            if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await {
                connection(sim, stream).await;
            }
        });
    }
}

/// Runs [`serve`] on its own runtime until SIGTERM or SIGINT.
pub fn run_blocking(cfg: KscSimConfig) -> Result<(), KscSimError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(KscSimError::Runtime)?;
    rt.block_on(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(KscSimError::Runtime)?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        serve(cfg, stop).await
    })
}
