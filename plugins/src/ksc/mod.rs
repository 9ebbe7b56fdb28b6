//! Kaspersky Security Center (KSC) Open API client: the fleet view of the province's managed
//! computers. Follows `/work/shared/protocols/kaspersky-ksc-openapi.md`.
//!
//! A [`Session`] is one logged-in HTTPS connection (`POST /api/v1.0/login` with `KSCBasic`;
//! KSC binds the login to that connection, so every later call goes over the same one). On
//! it: the group hierarchy (`HostGroup.GroupIdGroups`, `HostGroup.GetSubgroups`), a host
//! search (`HostGroup.FindHosts`) whose result set is read in chunks
//! (`ChunkAccessor.GetItemsChunk`, pages of [`KscOptions::page`]) and always released
//! (`ChunkAccessor.Release`), and `Session.EndSession` at the end.
//!
//! Errors ([`KscError`]) say what failed and where: the error envelope (`PxgError`), a
//! malformed answer, the session ended (HTTP 403), no connection at all.
//!
//! Idempotence: every call here only reads; a failed fleet read can be repeated as is.

mod conn;
pub mod status;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value, json};

use conn::{Conn, ConnError};

/// Items marked [Inferred] in the protocol notes, kept in one place so they are easy to
/// correct once checked against a real KSC.
pub mod inferred {
    /// The host attribute that carries the last Network Agent connection (notes §5: [3rd]).
    pub const LAST_NAGENT_CONNECTED: &str = "KLHST_WKS_LAST_NAGENT_CONNECTED";
    /// `vecFieldsToOrder` elements hold `Name` and `Asc` (verified for FindUsers only, §4.2).
    pub const ORDER_NAME: &str = "Name";
    pub const ORDER_ASC: &str = "Asc";
    /// HTTP status of an error envelope: 200 is what KlAkOAPI-style servers send (§3); any
    /// other status with a `PxgError` body is read the same way.
    pub const ENVELOPE_STATUS: u16 = 200;
}

/// The host attributes a fleet read asks for.
pub const HOST_FIELDS: &[&str] = &[
    "KLHST_WKS_HOSTNAME",
    "KLHST_WKS_DN",
    "KLHST_WKS_GROUPID",
    "KLHST_WKS_STATUS",
    "KLHST_WKS_STATUS_ID",
    "KLHST_WKS_RTP_STATE",
    "KLHST_WKS_RTP_AV_VERSION",
    "KLHST_WKS_RTP_AV_BASES_TIME",
    "KLHST_WKS_LAST_FULLSCAN",
    "KLHST_WKS_VIRUS_COUNT",
    "KLHST_WKS_LAST_VISIBLE",
    inferred::LAST_NAGENT_CONNECTED,
];

/// How to reach KSC.
#[derive(Debug, Clone)]
pub struct KscOptions {
    /// `https://host[:port]` (port 13299 when left out).
    pub url: String,
    pub user: String,
    /// Never logged, never shown in errors.
    pub password: String,
    /// PEM file with the certificate (or CA) KSC's certificate must chain to.
    pub ca_file: PathBuf,
    /// Longest wait for one answer.
    pub timeout: Duration,
    /// Hosts per chunk (100, as Kaspersky's own sample).
    pub page: usize,
    /// Lifetime of the host search's result set, seconds (KSC allows at most 7200).
    pub result_lifetime: u32,
}

/// What went wrong talking to KSC; each names the server and the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KscError {
    #[error("KSC configuration: {0}")]
    Config(String),
    #[error("cannot reach KSC at {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    #[error("KSC at {endpoint} did not answer {call} within {secs} s")]
    Timeout { endpoint: String, call: String, secs: u64 },
    #[error("KSC at {endpoint} refused the login of user {user:?} (HTTP {status})")]
    Login { endpoint: String, user: String, status: u16 },
    #[error("KSC at {endpoint}: session ended — {call} was refused with HTTP 403")]
    SessionEnded { endpoint: String, call: String },
    #[error("KSC at {endpoint}: {call} returned error {code}{module}: {message}")]
    Envelope { endpoint: String, call: String, code: i64, module: String, message: String },
    #[error("KSC at {endpoint} sent a malformed answer to {call}: {detail}")]
    Malformed { endpoint: String, call: String, detail: String },
    #[error("KSC at {endpoint}: {call} answered HTTP {status}: {body}")]
    Http { endpoint: String, call: String, status: u16, body: String },
    #[error("the KSC read was stopped (shutting down)")]
    Stopped,
}

impl KscError {
    /// A short stable word for metrics and the API: `unreachable`, `timeout`, `login`,
    /// `session_ended`, `error_envelope`, `malformed`, `http`, `config`.
    pub fn kind(&self) -> &'static str {
        match self {
            KscError::Config(_) => "config",
            KscError::Unreachable { .. } => "unreachable",
            KscError::Timeout { .. } => "timeout",
            KscError::Login { .. } => "login",
            KscError::SessionEnded { .. } => "session_ended",
            KscError::Envelope { .. } => "error_envelope",
            KscError::Malformed { .. } => "malformed",
            KscError::Http { .. } => "http",
            KscError::Stopped => "stopped",
        }
    }
}

/// An administration group and its subgroups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub id: i64,
    pub name: String,
    pub groups: Vec<Group>,
}

/// One managed computer, as its attributes say (every attribute may be missing: KSC omits
/// null ones). Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Host {
    /// `KLHST_WKS_HOSTNAME`: KSC's id for the host (GUID-like).
    pub id: String,
    /// `KLHST_WKS_DN`: its display name.
    pub name: String,
    pub group_id: Option<i64>,
    pub status: Option<i64>,
    pub status_id: Option<i64>,
    pub rtp_state: Option<i64>,
    pub av_version: Option<String>,
    pub bases_time: Option<i64>,
    pub last_full_scan: Option<i64>,
    pub virus_count: Option<i64>,
    pub last_visible: Option<i64>,
    pub last_agent_connect: Option<i64>,
}

/// Everything one fleet read saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fleet {
    /// The root "Managed devices" group with its tree.
    pub root: Group,
    pub hosts: Vec<Host>,
    /// What `FindHosts` said it found.
    pub found: i64,
    /// Chunk calls made.
    pub chunks: usize,
}

/// One logged-in connection to KSC.
pub struct Session {
    conn: Conn,
    endpoint: String,
    timeout: Duration,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

impl Session {
    /// Connects and logs in with `KSCBasic` (a KSC-internal user; empty domain; main server).
    ///
    /// # Errors
    /// [`KscError::Config`] for a bad URL or CA file, [`KscError::Unreachable`] when no TLS
    /// connection can be made, [`KscError::Login`] when KSC refuses the credentials.
    pub fn login(opts: &KscOptions) -> Result<Session, KscError> {
        let (host, port) = conn::parse_url(&opts.url).map_err(KscError::Config)?;
        let tls = conn::tls_config(&opts.ca_file).map_err(KscError::Config)?;
        let endpoint = format!("{host}:{port}");
        let conn = Conn::open(&host, port, tls, opts.timeout).map_err(|e| match e {
            ConnError::Timeout => {
                KscError::Timeout { endpoint: endpoint.clone(), call: "connect".into(), secs: opts.timeout.as_secs() }
            }
            other => KscError::Unreachable { endpoint: endpoint.clone(), detail: other.to_string() },
        })?;
        let mut s = Session { conn, endpoint, timeout: opts.timeout };
        let auth = format!(
            "KSCBasic user=\"{}\", pass=\"{}\", domain=\"\", internal=\"1\"",
            b64(&opts.user),
            b64(&opts.password)
        );
        let reply = s.send("login", "/api/v1.0/login", &[("Authorization", &auth), ("X-KSC-VServer", "")], b"")?;
        if reply.status != 200 {
            return Err(KscError::Login {
                endpoint: s.endpoint.clone(),
                user: opts.user.clone(),
                status: reply.status,
            });
        }
        Ok(s)
    }

    fn send(&mut self, call: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<conn::Reply, KscError> {
        self.conn.post(path, headers, body).map_err(|e| match e {
            ConnError::Timeout => KscError::Timeout {
                endpoint: self.endpoint.clone(),
                call: call.to_string(),
                secs: self.timeout.as_secs(),
            },
            ConnError::Io(e) => {
                KscError::Unreachable { endpoint: self.endpoint.clone(), detail: format!("{call}: {e}") }
            }
            ConnError::Protocol(m) => {
                KscError::Malformed { endpoint: self.endpoint.clone(), call: call.to_string(), detail: m }
            }
        })
    }

    /// Calls `Class.Method` with its arguments; returns the reply object (`PxgRetVal` and the
    /// `[out]` parameters).
    ///
    /// # Errors
    /// [`KscError::SessionEnded`] on 403, [`KscError::Envelope`] when the body holds
    /// `PxgError`, [`KscError::Malformed`] when it is not a JSON object, [`KscError::Http`] on
    /// another non-200 status, and the transport errors of [`Session::login`].
    pub fn call(&mut self, method: &str, args: Value) -> Result<Map<String, Value>, KscError> {
        let body = serde_json::to_vec(&args).unwrap_or_else(|_| b"{}".to_vec());
        let reply = self.send(method, &format!("/api/v1.0/{method}"), &[], &body)?;
        let malformed =
            |detail: String| KscError::Malformed { endpoint: self.endpoint.clone(), call: method.to_string(), detail };
        if reply.status == 403 {
            return Err(KscError::SessionEnded { endpoint: self.endpoint.clone(), call: method.to_string() });
        }
        let parsed: Result<Value, _> = serde_json::from_slice(&reply.body);
        if let Ok(Value::Object(m)) = &parsed
            && let Some(e) = wire::pxg_error(m)
        {
            return Err(KscError::Envelope {
                endpoint: self.endpoint.clone(),
                call: method.to_string(),
                code: e.code,
                module: e.module.map(|m| format!(" ({m})")).unwrap_or_default(),
                message: e.message,
            });
        }
        if reply.status != 200 {
            let text = String::from_utf8_lossy(&reply.body);
            let body =
                reply.header("x-ksc-errormsg").map(str::to_string).unwrap_or_else(|| text.chars().take(200).collect());
            return Err(KscError::Http {
                endpoint: self.endpoint.clone(),
                call: method.to_string(),
                status: reply.status,
                body,
            });
        }
        match parsed {
            Ok(Value::Object(m)) => Ok(m),
            Ok(other) => Err(malformed(format!("expected a JSON object, got {}", kind_of(&other)))),
            Err(e) => Err(malformed(format!("invalid JSON ({e}) in {} bytes", reply.body.len()))),
        }
    }

    fn ret_int(&mut self, method: &str, args: Value) -> Result<i64, KscError> {
        let m = self.call(method, args)?;
        m.get("PxgRetVal").and_then(wire::int).ok_or_else(|| KscError::Malformed {
            endpoint: self.endpoint.clone(),
            call: method.to_string(),
            detail: "PxgRetVal is not an integer".into(),
        })
    }

    /// The root "Managed devices" group and every group under it.
    pub fn group_tree(&mut self) -> Result<Group, KscError> {
        let root = self.ret_int("HostGroup.GroupIdGroups", json!({}))?;
        let m = self.call("HostGroup.GetSubgroups", json!({"nGroupId": root, "nDepth": 0}))?;
        let groups = match m.get("PxgRetVal") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.iter().map(group_of).collect::<Result<Vec<_>, String>>().map_err(|detail| {
                KscError::Malformed { endpoint: self.endpoint.clone(), call: "HostGroup.GetSubgroups".into(), detail }
            })?,
            Some(other) => {
                return Err(KscError::Malformed {
                    endpoint: self.endpoint.clone(),
                    call: "HostGroup.GetSubgroups".into(),
                    detail: format!("PxgRetVal is {}, not an array", kind_of(other)),
                });
            }
        };
        Ok(Group { id: root, name: "Managed devices".into(), groups })
    }

    /// Searches hosts; returns how many were found and the result set's accessor.
    pub fn find_hosts(&mut self, filter: &str, fields: &[&str], lifetime: u32) -> Result<(i64, String), KscError> {
        let args = json!({
            "wstrFilter": filter,
            "vecFieldsToReturn": fields,
            "vecFieldsToOrder": [wire::typed_params(
                [(inferred::ORDER_NAME.to_string(), json!("KLHST_WKS_DN")), (inferred::ORDER_ASC.to_string(), json!(true))]
                    .into_iter()
                    .collect(),
            )],
            "pParams": {"KLGRP_FIND_FROM_CUR_VS_ONLY": true},
            "lMaxLifeTime": lifetime.min(7200),
        });
        let m = self.call("HostGroup.FindHosts", args)?;
        let bad = |detail: &str| KscError::Malformed {
            endpoint: self.endpoint.clone(),
            call: "HostGroup.FindHosts".into(),
            detail: detail.to_string(),
        };
        let n = m.get("PxgRetVal").and_then(wire::int).ok_or_else(|| bad("PxgRetVal is not an integer"))?;
        let acc = m.get("strAccessor").and_then(wire::string).ok_or_else(|| bad("no strAccessor"))?;
        Ok((n, acc))
    }

    /// Reads `count` items of a result set from `start`.
    pub fn chunk(&mut self, accessor: &str, start: usize, count: usize) -> Result<Vec<Host>, KscError> {
        let call = "ChunkAccessor.GetItemsChunk";
        let m = self.call(call, json!({"strAccessor": accessor, "nStart": start, "nCount": count}))?;
        let bad = |detail: String| KscError::Malformed { endpoint: self.endpoint.clone(), call: call.into(), detail };
        let items = m
            .get("pChunk")
            .and_then(wire::params)
            .and_then(|c| c.get("KLCSP_ITERATOR_ARRAY"))
            .ok_or_else(|| bad("no pChunk.KLCSP_ITERATOR_ARRAY".into()))?;
        let items = match items {
            Value::Null => return Ok(Vec::new()),
            Value::Array(a) => a,
            other => return Err(bad(format!("KLCSP_ITERATOR_ARRAY is {}", kind_of(other)))),
        };
        items.iter().enumerate().map(|(i, v)| host_of(v).map_err(|e| bad(format!("item {}: {e}", start + i)))).collect()
    }

    /// Releases a result set.
    pub fn release(&mut self, accessor: &str) -> Result<(), KscError> {
        self.call("ChunkAccessor.Release", json!({"strAccessor": accessor})).map(|_| ())
    }

    /// The whole fleet: the group tree, then every host with the status attributes, read in
    /// chunks of `page`. The result set is released even when a chunk fails.
    pub fn fleet(&mut self, page: usize, lifetime: u32) -> Result<Fleet, KscError> {
        self.fleet_until(page, lifetime, &|| false)
    }

    /// [`Session::fleet`], giving up with [`KscError::Stopped`] between calls once `stop`
    /// says so (a daemon shutting down).
    pub fn fleet_until(&mut self, page: usize, lifetime: u32, stop: &dyn Fn() -> bool) -> Result<Fleet, KscError> {
        let page = page.max(1);
        let root = self.group_tree()?;
        let (found, accessor) = self.find_hosts("", HOST_FIELDS, lifetime)?;
        let read = self.read_all(&accessor, found, page, stop);
        let released = self.release(&accessor);
        let (hosts, chunks) = read?;
        if let Err(e) = released {
            tracing::warn!(error = %e, "KSC result set not released; it expires on its own");
        }
        Ok(Fleet { root, hosts, found, chunks })
    }

    fn read_all(
        &mut self,
        accessor: &str,
        found: i64,
        page: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<(Vec<Host>, usize), KscError> {
        let total = usize::try_from(found.max(0)).unwrap_or(0);
        let mut hosts = Vec::with_capacity(total);
        let mut chunks = 0;
        while hosts.len() < total {
            if stop() {
                return Err(KscError::Stopped);
            }
            let got = self.chunk(accessor, hosts.len(), page)?;
            chunks += 1;
            if got.is_empty() {
                return Err(KscError::Malformed {
                    endpoint: self.endpoint.clone(),
                    call: "ChunkAccessor.GetItemsChunk".into(),
                    detail: format!("empty chunk at {} of {total} hosts found", hosts.len()),
                });
            }
            hosts.extend(got);
        }
        Ok((hosts, chunks))
    }

    /// Ends the session (`Session.EndSession`); errors are ignored — the connection closes.
    pub fn end(mut self) {
        let _ = self.call("Session.EndSession", json!({}));
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn group_of(v: &Value) -> Result<Group, String> {
    let m = wire::params(v).ok_or_else(|| format!("group {v} is not a params container"))?;
    let id = m.get("id").and_then(wire::int).ok_or("group without an integer id")?;
    let name = m.get("name").and_then(wire::string).ok_or_else(|| format!("group {id} has no name"))?;
    let groups = match m.get("groups").map(wire::unwrap_typed) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(group_of).collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("group {id}: groups is {}", kind_of(other))),
    };
    Ok(Group { id, name, groups })
}

fn host_of(v: &Value) -> Result<Host, String> {
    let m = wire::params(v).ok_or("not a params container")?;
    let id = m.get("KLHST_WKS_HOSTNAME").and_then(wire::string).ok_or("no KLHST_WKS_HOSTNAME")?;
    let get = |k: &str| m.get(k);
    let time =
        |k: &str| get(k).map(wire::datetime).transpose().map(Option::flatten).map_err(|e| format!("{id} {k}: {e}"));
    Ok(Host {
        name: get("KLHST_WKS_DN").and_then(wire::string).unwrap_or_else(|| id.clone()),
        group_id: get("KLHST_WKS_GROUPID").and_then(wire::int),
        status: get("KLHST_WKS_STATUS").and_then(wire::int),
        status_id: get("KLHST_WKS_STATUS_ID").and_then(wire::int),
        rtp_state: get("KLHST_WKS_RTP_STATE").and_then(wire::int),
        av_version: get("KLHST_WKS_RTP_AV_VERSION").and_then(wire::string),
        bases_time: time("KLHST_WKS_RTP_AV_BASES_TIME")?,
        last_full_scan: time("KLHST_WKS_LAST_FULLSCAN")?,
        virus_count: get("KLHST_WKS_VIRUS_COUNT").and_then(wire::int),
        last_visible: time("KLHST_WKS_LAST_VISIBLE")?,
        last_agent_connect: time(inferred::LAST_NAGENT_CONNECTED)?,
        id,
    })
}

/// Reads the fleet once: logs in, reads, ends the session.
pub fn read_fleet(opts: &KscOptions) -> Result<Fleet, KscError> {
    read_fleet_until(opts, &|| false)
}

/// [`read_fleet`], stopping between calls once `stop` says so.
pub fn read_fleet_until(opts: &KscOptions, stop: &dyn Fn() -> bool) -> Result<Fleet, KscError> {
    let mut s = Session::login(opts)?;
    let fleet = s.fleet_until(opts.page, opts.result_lifetime, stop)?;
    s.end();
    Ok(fleet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_records_decode_with_null_attributes_left_out() {
        let v = json!({"type": "params", "value": {
            "KLHST_WKS_HOSTNAME": "4328e16f", "KLHST_WKS_DN": "PC-01", "KLHST_WKS_STATUS": 29,
            "KLHST_WKS_RTP_AV_BASES_TIME": {"type": "datetime", "value": "2021-03-23T00:19:00Z"},
            "KLHST_WKS_VIRUS_COUNT": {"type": "long", "value": 7}, "KLHST_WKS_GROUPID": 0}});
        let h = host_of(&v).expect("host");
        assert_eq!((h.id.as_str(), h.name.as_str(), h.status, h.group_id), ("4328e16f", "PC-01", Some(29), Some(0)));
        assert_eq!((h.bases_time, h.virus_count, h.last_full_scan), (Some(1_616_458_740), Some(7), None));
        let bad = json!({"KLHST_WKS_HOSTNAME": "x", "KLHST_WKS_LAST_FULLSCAN": {"type": "datetime", "value": "soon"}});
        assert!(host_of(&bad).is_err_and(|e| e.contains("x KLHST_WKS_LAST_FULLSCAN")));
    }

    #[test]
    fn group_trees_decode_nested_params() {
        let v = json!({"type": "params", "value": {"id": 1, "name": "Sở A", "groups": [
            {"type": "params", "value": {"id": 2, "name": "Phòng B", "groups": null}}]}});
        let g = group_of(&v).expect("group");
        assert_eq!((g.id, g.name.as_str(), g.groups.len(), g.groups[0].id), (1, "Sở A", 1, 2));
    }
}
