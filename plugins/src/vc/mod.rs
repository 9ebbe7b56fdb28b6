//! Video-conference endpoint checks (Poly/Polycom): TCP reachability, SIP OPTIONS, SNMP v2c
//! system group and interface errors, the VideoOS REST API or the HDX/Group Series telnet API.
//! A proxy agent runs them for every device of its site at once ([`check_all`]); each check has
//! its own timeout, so a whole round takes about one timeout however many devices answer.
//!
//! A device's state is `up`, `degraded` or `down`, with reasons named the way Poly's
//! RealPresence Resource Manager names its endpoint alerts (`poly-endpoints.md` §4): *device
//! not responding*, *SIP not answering*, *credentials failed*; the controller adds *heartbeat
//! timeout* when the proxy's answer does not come back.
//!
//! Reachability is a TCP connect to the device's API port (443 or the telnet port), not ICMP:
//! an unprivileged ICMP echo needs `net.ipv4.ping_group_range` to include the agent's group,
//! which we cannot count on.
//!
//! Checks block (sockets with timeouts) and never panic on what a device sends.

pub mod rest;
pub mod sip;
pub mod snmp;
pub mod telnet;

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Which management API a device has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    Rest,
    Telnet,
    None,
}

impl Api {
    pub fn parse(s: &str) -> Api {
        match s {
            "rest" => Api::Rest,
            "telnet" => Api::Telnet,
            _ => Api::None,
        }
    }
}

/// One device as the proxy agent checks it: where, how, and with which secrets.
#[derive(Clone, Deserialize, Serialize)]
pub struct DeviceSpec {
    pub name: String,
    pub address: IpAddr,
    pub api: Api,
    pub api_port: u16,
    pub sip_port: u16,
    /// The Request-URI of the OPTIONS probe (`sip:<address>:<port>` unless the inventory says).
    pub sip_uri: String,
    pub snmp_port: u16,
    pub snmp_community: String,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSpec")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("api", &self.api)
            .field("api_port", &self.api_port)
            .field("sip_port", &self.sip_port)
            .field("snmp_port", &self.snmp_port)
            .finish_non_exhaustive()
    }
}

/// The kinds of check, as results name them.
pub const REACHABILITY: &str = "reachability";
pub const SIP: &str = "sip_options";
pub const SNMP: &str = "snmp";
pub const REST: &str = "rest_api";
pub const TELNET: &str = "telnet_api";

/// Reasons, named like RPRM's endpoint alert types.
pub const NOT_RESPONDING: &str = "device not responding";
pub const SIP_NOT_ANSWERING: &str = "SIP not answering";
pub const CREDENTIALS_FAILED: &str = "credentials failed";
pub const HEARTBEAT_TIMEOUT: &str = "heartbeat timeout";

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub kind: String,
    pub ok: bool,
    pub detail: String,
    pub ms: u64,
    /// What the check read (identity, uptime, counters), when it read anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<serde_json::Value>,
    /// The reason this failure gives the device (RPRM-style), when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One device's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceResult {
    pub device: String,
    /// up | degraded | down
    pub state: String,
    pub reasons: Vec<String>,
    pub checks: Vec<CheckResult>,
}

fn result(
    kind: &str,
    started: Instant,
    outcome: Result<(String, Option<serde_json::Value>), (String, &str)>,
) -> CheckResult {
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok((detail, info)) => CheckResult { kind: kind.into(), ok: true, detail, ms, info, reason: None },
        Err((detail, reason)) => {
            CheckResult { kind: kind.into(), ok: false, detail, ms, info: None, reason: Some(reason.to_string()) }
        }
    }
}

fn reachability(d: &DeviceSpec, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    let addr = SocketAddr::new(d.address, d.api_port);
    let outcome = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(_) => Ok((format!("TCP {} accepts connections", d.api_port), None)),
        Err(e) => Err((format!("{NOT_RESPONDING}: TCP {addr}: {e}"), NOT_RESPONDING)),
    };
    result(REACHABILITY, started, outcome)
}

fn sip_check(d: &DeviceSpec, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    let target = SocketAddr::new(d.address, d.sip_port);
    let outcome = match sip::options(target, &d.sip_uri, timeout) {
        Ok(a) => Ok((
            format!("OPTIONS answered {} {}", a.status.code, a.status.reason),
            Some(serde_json::json!({"status": a.status.code, "agent": a.agent})),
        )),
        Err(e @ (sip::SipError::Timeout(_) | sip::SipError::Refused)) => Err((e.to_string(), SIP_NOT_ANSWERING)),
        Err(e) => Err((format!("{SIP_NOT_ANSWERING}: {e}"), SIP_NOT_ANSWERING)),
    };
    result(SIP, started, outcome)
}

fn snmp_check(d: &DeviceSpec, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    let target = SocketAddr::new(d.address, d.snmp_port);
    let oids = [snmp::SYS_DESCR, snmp::SYS_UPTIME, snmp::SYS_NAME];
    let outcome = snmp::get(target, &d.snmp_community, &oids, timeout).map(|r| {
        let mut g = snmp::system_group(&r);
        // Interface errors in a second GET: an agent without IF-MIB answers the first anyway.
        if let Ok(r2) = snmp::get(target, &d.snmp_community, &[snmp::IF_IN_ERRORS_1, snmp::IF_OUT_ERRORS_1], timeout) {
            let g2 = snmp::system_group(&r2);
            g.if_in_errors = g2.if_in_errors;
            g.if_out_errors = g2.if_out_errors;
        }
        g
    });
    let outcome = match outcome {
        Ok(g) if g.uptime_seconds.is_none() && g.descr.is_none() => {
            Err(("SNMP answered without sysDescr or sysUpTime".to_string(), NOT_RESPONDING))
        }
        Ok(g) => Ok((
            format!(
                "{}; up {}",
                g.descr.as_deref().unwrap_or("no sysDescr"),
                g.uptime_seconds.map_or("?".to_string(), human_secs)
            ),
            serde_json::to_value(&g).ok(),
        )),
        Err(e) => Err((format!("{NOT_RESPONDING} (SNMP): {e}"), NOT_RESPONDING)),
    };
    result(SNMP, started, outcome)
}

fn human_secs(s: u64) -> String {
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if d > 0 { format!("{d}d {h}h") } else { format!("{h}h {m}m") }
}

fn telnet_check(d: &DeviceSpec, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    let addr = SocketAddr::new(d.address, d.api_port);
    let pw = (!d.password.is_empty()).then_some(d.password.as_str());
    let outcome = match telnet::check(addr, pw, timeout) {
        Ok(i) => Ok((
            format!(
                "{} {} sw {}; {}",
                i.model.as_deref().unwrap_or("?"),
                i.serial.as_deref().unwrap_or("?"),
                i.software.as_deref().unwrap_or("?"),
                if i.calls.is_empty() { "not in a call".to_string() } else { format!("in {} call(s)", i.calls.len()) }
            ),
            serde_json::to_value(&i).ok(),
        )),
        Err(e @ (telnet::TelnetError::Credentials | telnet::TelnetError::PasswordRequired)) => {
            Err((e.to_string(), CREDENTIALS_FAILED))
        }
        Err(e) => Err((e.to_string(), NOT_RESPONDING)),
    };
    result(TELNET, started, outcome)
}

fn rest_check(d: &DeviceSpec, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    let host = match d.address {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    let base = format!("https://{host}:{}", d.api_port);
    // Poly units ship self-signed certificates; the check proves liveness, not identity.
    let outcome = match rest::check(&base, &d.user, &d.password, timeout, true) {
        Ok(i) => Ok((
            format!(
                "{} {} sw {}; {}",
                i.model.as_deref().unwrap_or("?"),
                i.serial.as_deref().unwrap_or("?"),
                i.software.as_deref().unwrap_or("?"),
                if i.in_call { "in a call" } else { "not in a call" }
            ),
            serde_json::to_value(&i).ok(),
        )),
        Err(e @ rest::RestError::Credentials(_)) => Err((e.to_string(), CREDENTIALS_FAILED)),
        Err(e) => Err((e.to_string(), NOT_RESPONDING)),
    };
    result(REST, started, outcome)
}

/// The state and reasons from a device's checks (pure).
///
/// `down` when nothing answered; `degraded` when some check failed (each failure's reason
/// once); `up` otherwise.
pub fn judge(checks: &[CheckResult]) -> (String, Vec<String>) {
    let mut reasons: Vec<String> = Vec::new();
    for c in checks.iter().filter(|c| !c.ok) {
        let r = c.reason.clone().unwrap_or_else(|| NOT_RESPONDING.to_string());
        if !reasons.contains(&r) {
            reasons.push(r);
        }
    }
    let state = if checks.is_empty() || checks.iter().all(|c| !c.ok) {
        reasons = vec![NOT_RESPONDING.to_string()];
        "down"
    } else if reasons.is_empty() {
        "up"
    } else {
        "degraded"
    };
    (state.to_string(), reasons)
}

/// Runs every check of one device, side by side.
pub fn check_device(d: &DeviceSpec, timeout: Duration) -> DeviceResult {
    let mut checks = std::thread::scope(|s| {
        let mut handles = Vec::new();
        if d.api != Api::None {
            handles.push(s.spawn(|| reachability(d, timeout)));
        }
        handles.push(s.spawn(|| sip_check(d, timeout)));
        handles.push(s.spawn(|| snmp_check(d, timeout)));
        match d.api {
            Api::Telnet => handles.push(s.spawn(|| telnet_check(d, timeout))),
            Api::Rest => handles.push(s.spawn(|| rest_check(d, timeout))),
            Api::None => {}
        }
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| CheckResult {
                    kind: "internal".into(),
                    ok: false,
                    detail: "the check failed inside the agent (a bug); see the agent's log".into(),
                    ms: 0,
                    info: None,
                    reason: Some(NOT_RESPONDING.into()),
                })
            })
            .collect::<Vec<_>>()
    });
    checks.sort_by_key(|c| [REACHABILITY, SIP, SNMP, TELNET, REST].iter().position(|k| *k == c.kind).unwrap_or(9));
    let (state, reasons) = judge(&checks);
    DeviceResult { device: d.name.clone(), state, reasons, checks }
}

/// Checks every device at once; results in the devices' order.
pub fn check_all(devices: &[DeviceSpec], timeout: Duration) -> Vec<DeviceResult> {
    std::thread::scope(|s| {
        let handles: Vec<_> = devices.iter().map(|d| s.spawn(move || check_device(d, timeout))).collect();
        handles
            .into_iter()
            .zip(devices)
            .map(|(h, d)| {
                h.join().unwrap_or_else(|_| DeviceResult {
                    device: d.name.clone(),
                    state: "down".into(),
                    reasons: vec![NOT_RESPONDING.into()],
                    checks: vec![],
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(kind: &str, ok: bool, reason: Option<&str>) -> CheckResult {
        CheckResult { kind: kind.into(), ok, detail: String::new(), ms: 1, info: None, reason: reason.map(Into::into) }
    }

    #[test]
    fn state_follows_the_checks() {
        let all_ok = [c(REACHABILITY, true, None), c(SIP, true, None), c(SNMP, true, None)];
        assert_eq!(judge(&all_ok), ("up".to_string(), vec![]));
        let sip = [c(REACHABILITY, true, None), c(SIP, false, Some(SIP_NOT_ANSWERING)), c(SNMP, true, None)];
        assert_eq!(judge(&sip), ("degraded".to_string(), vec![SIP_NOT_ANSWERING.to_string()]));
        let none = [c(REACHABILITY, false, Some(NOT_RESPONDING)), c(SIP, false, Some(SIP_NOT_ANSWERING))];
        assert_eq!(judge(&none), ("down".to_string(), vec![NOT_RESPONDING.to_string()]));
        let creds = [c(TELNET, false, Some(CREDENTIALS_FAILED)), c(SIP, true, None)];
        assert_eq!(judge(&creds).1, vec![CREDENTIALS_FAILED.to_string()]);
    }

    #[test]
    fn nothing_listening_gives_reasons_within_the_timeout() {
        // 127.0.0.1 port 9 (discard) is closed here: every check fails fast or times out.
        let d = DeviceSpec {
            name: "vc-test".into(),
            address: "127.0.0.1".parse().expect("ip"),
            api: Api::Telnet,
            api_port: 9,
            sip_port: 9,
            sip_uri: "sip:127.0.0.1:9".into(),
            snmp_port: 9,
            snmp_community: "public".into(),
            user: "admin".into(),
            password: "x".into(),
        };
        let started = Instant::now();
        let r = check_device(&d, Duration::from_millis(800));
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(r.state, "down", "{r:?}");
        assert!(!format!("{d:?}").contains("password: \"x\""));
    }
}

/// The parsers of what devices send, over many random and mutated inputs: an answer or an
/// error, never a panic (the `vc_snmp` and `vc_telnet_sip` fuzz targets go further).
#[cfg(test)]
mod never_panic {
    use super::{rest, sip, snmp, telnet};

    fn inputs() -> Vec<Vec<u8>> {
        let seeds: Vec<Vec<u8>> = vec![
            snmp::encode_response(
                "public",
                7,
                &[(snmp::SYS_DESCR.to_vec(), snmp::Value::OctetString(b"HDX".to_vec()))],
            ),
            snmp::encode_get("public", 9, &[snmp::SYS_UPTIME.to_vec()]),
            b"SIP/2.0 200 OK\r\nCall-ID: abc@mangrove\r\nCSeq: 1 OPTIONS\r\n\r\n".to_vec(),
            b"callinfo begin\r\ncallinfo:43:a:b:384:connected:notmuted:outgoing:videocall\r\ncallinfo end\r\n".to_vec(),
            b"\xff\xfa\x18\x01\xff\xf0\xff\xfd\x01sip: registered\r\n".to_vec(),
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out = seeds.clone();
        for i in 0..20_000 {
            let mut v = seeds[i % seeds.len()].clone();
            match next() % 4 {
                0 => v.truncate((next() as usize) % (v.len() + 1)),
                1 => {
                    for _ in 0..1 + next() % 4 {
                        let at = (next() as usize) % v.len().max(1);
                        if let Some(b) = v.get_mut(at) {
                            *b = next() as u8;
                        }
                    }
                }
                2 => v = (0..next() % 64).map(|_| next() as u8).collect(),
                _ => {
                    let at = (next() as usize) % (v.len() + 1);
                    v.insert(at, [0x84, 0xff, 0x80, 0x1f, 0x30][(next() % 5) as usize]);
                }
            }
            out.push(v);
        }
        out
    }

    #[test]
    fn random_and_mutated_device_answers_never_panic() {
        for data in inputs() {
            if let Ok(r) = snmp::decode_response(&data) {
                let _ = snmp::system_group(&r);
            }
            let _ = snmp::decode_get(&data);
            let (clean, _) = telnet::strip_iac(&data);
            let text = String::from_utf8_lossy(&clean);
            let _ = telnet::parse_callinfo(&text);
            let _ = telnet::parse_status(&text);
            let _ = telnet::parse_whoami(&text, &mut telnet::TelnetInfo::default());
            let _ = sip::parse_response(&data, Some("abc@mangrove"));
            let _ = rest::parse_system(&text);
            let _ = rest::parse_in_call(&text);
        }
    }
}
