//! Video-conference readiness: `vc check` sends one `vc_check` task per site to the site's
//! proxy agent (the inventory's `platform.proxy`), which checks every device of the site at
//! once; the results are stored (every one is kept), turned into go/no-go, and exported as
//! metrics. A site whose proxy does not answer in time gives its devices *heartbeat timeout*,
//! with the last known state and its age from the store.

pub mod credentials;
pub mod report;
pub mod schedule;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::{App, AppError, now_ms, rfc3339};
use crate::config::Dur;
use crate::store::{TaskRecord, VcCheckRecord};

pub const KIND: &str = "vc_check";
/// Task ids of device checks start with this.
pub const PREFIX: &str = "vc-";

/// `[vc]` in the controller's config.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VcConfig {
    /// Longest each check of a device may take (default 3s); a whole check takes about this
    /// plus the round trip to the proxy agent.
    pub check_timeout: Dur,
    /// Testbeds only: where the inventory's addresses are served, as `FROM/24=TO/24`, e.g.
    /// `192.0.2.0/24=127.0.2.0/24` (the last octet is kept).
    pub address_map: Option<String>,
    /// Testbeds only: ports moved off privileged ones, e.g. `{ "161" = 16161, "24" = 2424 }`.
    pub port_map: BTreeMap<String, u16>,
    /// `[[vc.schedules]]`: checks before recurring meetings (see [`schedule::Schedule`]).
    pub schedules: Vec<schedule::Schedule>,
}

impl Default for VcConfig {
    fn default() -> Self {
        VcConfig {
            check_timeout: Dur(Duration::from_secs(3)),
            address_map: None,
            port_map: BTreeMap::new(),
            schedules: Vec::new(),
        }
    }
}

impl VcConfig {
    fn map_port(&self, p: u16) -> u16 {
        self.port_map.get(&p.to_string()).copied().unwrap_or(p)
    }

    /// The address the proxy dials for an inventory address.
    pub fn map_address(&self, a: IpAddr) -> IpAddr {
        let Some((from, to)) = self.address_map.as_deref().and_then(|m| m.split_once('=')) else { return a };
        let prefix = |s: &str| -> Option<[u8; 3]> {
            let ip: Ipv4Addr = s.trim().split('/').next()?.parse().ok()?;
            let o = ip.octets();
            Some([o[0], o[1], o[2]])
        };
        match (a, prefix(from), prefix(to)) {
            (IpAddr::V4(v4), Some(f), Some(t)) if v4.octets()[..3] == f => {
                IpAddr::V4(Ipv4Addr::new(t[0], t[1], t[2], v4.octets()[3]))
            }
            _ => a,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if let Some(m) = &self.address_map {
            let ok = m.split_once('=').is_some_and(|(a, b)| {
                [a, b].iter().all(|s| s.trim().split('/').next().is_some_and(|ip| ip.parse::<Ipv4Addr>().is_ok()))
            });
            if !ok {
                return Err(format!("vc.address_map {m:?}: write FROM/24=TO/24, e.g. 192.0.2.0/24=127.0.2.0/24"));
            }
        }
        for s in &self.schedules {
            s.validate()?;
        }
        for k in self.port_map.keys() {
            if k.parse::<u16>().is_err() {
                return Err(format!("vc.port_map: key {k:?} is not a port number"));
            }
        }
        Ok(())
    }
}

/// A device as the controller knows it.
#[derive(Debug, Clone)]
pub struct Device {
    pub name: String,
    pub site: String,
    pub model: String,
    pub endpoint: inventory::VideoEndpoint,
}

/// The inventory's video endpoints, optionally of one site (a device without `site` belongs
/// to the primary site).
pub fn devices(app: &App, site: Option<&str>) -> Vec<Device> {
    let Some(inv) = app.inventory.as_deref() else { return Vec::new() };
    inv.video_endpoints
        .iter()
        .map(|v| Device {
            name: v.name.clone(),
            site: v.site.clone().unwrap_or_else(|| app.cfg.capacity.primary_site.clone()),
            model: v.model.clone(),
            endpoint: v.clone(),
        })
        .filter(|d| site.is_none_or(|s| d.site == s))
        .collect()
}

/// The agent that checks a site's devices: its platform's proxy.
pub fn proxy_of(app: &App, site: &str) -> Option<String> {
    app.inventory.as_deref()?.site(site)?.platform.proxy.clone()
}

/// The task arguments (no secrets: the passwords are added only to the stream message).
fn task_args(app: &App, devices: &[Device]) -> Value {
    let cfg = &app.cfg.vc;
    let list: Vec<Value> = devices
        .iter()
        .map(|d| {
            let e = &d.endpoint;
            let address = cfg.map_address(e.address);
            let sip_port = cfg.map_port(e.sip_port());
            json!({
                "name": d.name,
                "address": address.to_string(),
                "api": e.api().as_str(),
                "api_port": cfg.map_port(e.api_port()),
                "sip_port": sip_port,
                "sip_uri": e.sip_uri.clone().unwrap_or_else(|| format!("sip:{address}:{sip_port}")),
                "snmp_port": cfg.map_port(e.snmp_port()),
                "snmp_community": e.snmp_community(),
            })
        })
        .collect();
    json!({"devices": list, "timeout_ms": u64::try_from(cfg.check_timeout.0.as_millis()).unwrap_or(3000)})
}

/// The message that carries a `vc_check` task, with each device's credentials added.
pub fn task_message(app: &App, t: &TaskRecord) -> Option<proto::v1::ControllerMessage> {
    use proto::v1::{Task, VcCheckTask, VcDevice, controller_message};
    let creds = match credentials::VcCredentials::load(&app.cfg.data_dir) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "video device credentials unreadable; checking without them");
            credentials::VcCredentials::default()
        }
    };
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
    let devices = t
        .args
        .get("devices")?
        .as_array()?
        .iter()
        .map(|d| {
            let (user, password) = creds.of(&s(d, "name"));
            VcDevice {
                name: s(d, "name"),
                address: s(d, "address"),
                api: s(d, "api"),
                api_port: n(d, "api_port"),
                sip_port: n(d, "sip_port"),
                sip_uri: s(d, "sip_uri"),
                snmp_port: n(d, "snmp_port"),
                snmp_community: s(d, "snmp_community"),
                user,
                password,
            }
        })
        .collect();
    let task = Task {
        id: t.id.clone(),
        kind: KIND.into(),
        deadline_unix_ms: t.deadline,
        vc_check: Some(VcCheckTask { devices, timeout_ms: n(&t.args, "timeout_ms") }),
        ..Default::default()
    };
    Some(proto::v1::ControllerMessage { msg: Some(controller_message::Msg::Task(task)) })
}

/// What one device's check gave, as the API returns it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub device: String,
    pub site: String,
    pub model: String,
    pub go: bool,
    pub state: String,
    pub reasons: Vec<String>,
    pub checks: Vec<Value>,
    pub checked_at: String,
    /// When the device was last up, and how long ago (seconds), if it is not up now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_up: Option<Value>,
}

/// How long the controller waits for the proxy beyond the checks' own timeout.
const ROUND_TRIP: Duration = Duration::from_secs(4);

/// Runs every check of every device (of `site`, or all) now, one task per site side by side;
/// stores and returns the results. `by` is the person (or `scheduler`).
pub async fn check(app: &App, site: Option<&str>, by: &str) -> Result<Vec<Outcome>, AppError> {
    let all = devices(app, site);
    if all.is_empty() {
        return Err(AppError::NotFound(match site {
            Some(s) => format!("the inventory has no video endpoint at site {s}"),
            None => "the inventory has no video endpoints".into(),
        }));
    }
    let started = std::time::Instant::now();
    let mut sites: Vec<String> = all.iter().map(|d| d.site.clone()).collect();
    sites.sort();
    sites.dedup();
    let runs = sites.iter().map(|s| {
        let of_site: Vec<Device> = all.iter().filter(|d| &d.site == s).cloned().collect();
        check_site(app, s.clone(), of_site, by)
    });
    let mut out = Vec::new();
    for r in futures::future::join_all(runs).await {
        out.extend(r?);
    }
    let order: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
    out.sort_by_key(|o| order.iter().position(|n| *n == o.device).unwrap_or(usize::MAX));
    app.metrics.vc.checked(&out, started.elapsed().as_secs_f64());
    Ok(out)
}

async fn check_site(app: &App, site: String, devices: Vec<Device>, by: &str) -> Result<Vec<Outcome>, AppError> {
    let id = format!("{PREFIX}{}", hex::encode(rand::random::<[u8; 8]>()));
    let wait = app.cfg.vc.check_timeout.0 + ROUND_TRIP;
    let results: Result<Vec<plugins::vc::DeviceResult>, String> = match proxy_of(app, &site) {
        None => Err(format!("site {site} has no proxy agent (platform.proxy in the inventory)")),
        Some(host) => run_task(app, &id, &host, &devices, by, wait).await?,
    };
    let at = now_ms();
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for d in &devices {
        let (state, reasons, checks) = match &results {
            Ok(list) => match list.iter().find(|r| r.device == d.name) {
                Some(r) => (
                    r.state.clone(),
                    r.reasons.clone(),
                    r.checks.iter().filter_map(|c| serde_json::to_value(c).ok()).collect(),
                ),
                None => (
                    "unknown".to_string(),
                    vec![plugins::vc::HEARTBEAT_TIMEOUT.to_string()],
                    vec![missing_check("the proxy agent returned no result for this device")],
                ),
            },
            Err(why) => {
                ("unknown".to_string(), vec![plugins::vc::HEARTBEAT_TIMEOUT.to_string()], vec![missing_check(why)])
            }
        };
        let go = state == "up";
        rows.push(VcCheckRecord {
            run_id: id.clone(),
            device: d.name.clone(),
            site: site.clone(),
            at,
            state: state.clone(),
            go,
            reasons: reasons.clone(),
            checks: Value::Array(checks.clone()),
        });
        out.push(Outcome {
            device: d.name.clone(),
            site: site.clone(),
            model: d.model.clone(),
            go,
            state,
            reasons,
            checks,
            checked_at: rfc3339(at),
            last_up: None,
        });
    }
    // Earlier results first (for the last known state), then this run's.
    for o in &mut out {
        let history = app.store.recent_vc_checks(&o.device, 200).await?;
        annotate(o, &history, at);
    }
    app.store.insert_vc_checks(&rows).await?;
    Ok(out)
}

fn missing_check(why: &str) -> Value {
    json!({"kind": "proxy", "ok": false, "detail": format!("{}: {why}", plugins::vc::HEARTBEAT_TIMEOUT), "ms": 0, "reason": plugins::vc::HEARTBEAT_TIMEOUT})
}

/// Adds to each failed check the last time that kind of check passed (with its detail and
/// age), and to a device not up the last time it was: what an operator reads as "last known
/// state". Pure over the stored history (newest first).
pub fn annotate(o: &mut Outcome, history: &[VcCheckRecord], now: i64) {
    let age = |at: i64| (now - at).max(0) / 1000;
    for c in o.checks.iter_mut().filter(|c| c.get("ok") == Some(&Value::Bool(false))) {
        let kind = c.get("kind").cloned().unwrap_or(Value::Null);
        let last = history.iter().find_map(|r| {
            r.checks
                .as_array()?
                .iter()
                .find(|p| p.get("kind") == Some(&kind) && p.get("ok") == Some(&Value::Bool(true)))
                .map(|p| (r.at, p.clone()))
        });
        if let (Some((at, p)), Some(obj)) = (last, c.as_object_mut()) {
            obj.insert(
                "last_ok".into(),
                json!({"at": rfc3339(at), "age_seconds": age(at), "detail": p.get("detail"), "info": p.get("info")}),
            );
        }
    }
    if o.state != "up" {
        o.last_up =
            history.iter().find(|r| r.state == "up").map(|r| json!({"at": rfc3339(r.at), "age_seconds": age(r.at)}));
    }
}

/// Sends a `vc_check` task to `host` and waits for its result (the store holds it once the
/// agent's report is in). `Ok(Err(why))` when the agent is away or did not answer in time.
async fn run_task(
    app: &App,
    id: &str,
    host: &str,
    devices: &[Device],
    by: &str,
    wait: Duration,
) -> Result<Result<Vec<plugins::vc::DeviceResult>, String>, AppError> {
    let now = now_ms();
    let deadline = now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
    let task = TaskRecord::pending(id, host, KIND, task_args(app, devices), by, now, deadline);
    app.store.insert_task(&task).await?;
    app.metrics.tasks_created.inc();
    let sent = match task_message(app, &task) {
        Some(m) => app.sessions.send(host, m),
        None => false,
    };
    if !sent {
        return Ok(Err(format!("the proxy agent {host} is not connected")));
    }
    app.store.mark_task_delivered(id, now_ms()).await?;
    let until = tokio::time::Instant::now() + wait;
    loop {
        if let Some(t) = app.store.get_task(id).await?
            && !matches!(t.state.as_str(), "pending" | "delivered")
        {
            if t.state != "exited" {
                return Ok(Err(format!(
                    "the proxy agent {host} ended the check {}: {}",
                    t.state,
                    t.error.unwrap_or_default()
                )));
            }
            return Ok(serde_json::from_slice(&t.stdout)
                .map_err(|e| format!("the proxy agent {host} sent an unreadable result: {e}")));
        }
        if tokio::time::Instant::now() >= until {
            return Ok(Err(format!("the proxy agent {host} did not answer within {} s", wait.as_secs())));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The metrics of the checks.
pub mod metrics {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct DeviceSite {
        pub device: String,
        pub site: String,
    }

    type GaugeF64 = Gauge<f64, std::sync::atomic::AtomicU64>;

    #[derive(Default)]
    pub struct VcMetrics {
        pub device_up: Family<DeviceSite, Gauge>,
        pub duration: GaugeF64,
        pub alerts: Gauge,
    }

    impl VcMetrics {
        pub fn register(&self, r: &mut Registry) {
            r.register(
                "mangrove_vc_device_up",
                "1 when every check of the video-conference device passed at its last check (go), else 0",
                self.device_up.clone(),
            );
            r.register(
                "mangrove_vc_check_duration_seconds",
                "How long the last `vc check` of the video-conference devices took",
                self.duration.clone(),
            );
            r.register(
                "mangrove_vc_alerts",
                "Video-conference devices found not ready by a scheduled pre-meeting check, until a later check finds them ready",
                self.alerts.clone(),
            );
        }

        pub fn checked(&self, outcomes: &[super::Outcome], seconds: f64) {
            for o in outcomes {
                self.device_up
                    .get_or_create(&DeviceSite { device: o.device.clone(), site: o.site.clone() })
                    .set(i64::from(o.go));
            }
            self.duration.set(seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testbed_addresses_and_ports_are_mapped() {
        let cfg = VcConfig {
            address_map: Some("192.0.2.0/24=127.0.2.0/24".into()),
            port_map: [("161".to_string(), 16161)].into(),
            ..VcConfig::default()
        };
        assert!(cfg.validate().is_ok());
        assert_eq!(cfg.map_address("192.0.2.31".parse().expect("ip")).to_string(), "127.0.2.31");
        assert_eq!(cfg.map_address("10.0.0.1".parse().expect("ip")).to_string(), "10.0.0.1");
        assert_eq!((cfg.map_port(161), cfg.map_port(5060)), (16161, 5060));
        assert!(VcConfig { address_map: Some("nope".into()), ..VcConfig::default() }.validate().is_err());
    }

    #[test]
    fn a_failed_check_carries_the_last_time_it_passed_and_its_age() {
        let ok = VcCheckRecord {
            run_id: "vc-1".into(),
            device: "vc-tinh".into(),
            site: "dc".into(),
            at: 1_000_000,
            state: "up".into(),
            go: true,
            reasons: vec![],
            checks: json!([{"kind": "telnet_api", "ok": true, "detail": "HDX 8000 sw 3.1", "info": {"software": "3.1"}}]),
        };
        let mut o = Outcome {
            device: "vc-tinh".into(),
            site: "dc".into(),
            model: "Polycom HDX 8000".into(),
            go: false,
            state: "degraded".into(),
            reasons: vec!["device not responding".into()],
            checks: vec![
                json!({"kind": "telnet_api", "ok": false, "detail": "telnet API answered garbage to whoami: \"%%\""}),
            ],
            checked_at: String::new(),
            last_up: None,
        };
        annotate(&mut o, &[ok], 1_120_000);
        assert_eq!(o.checks[0]["last_ok"]["age_seconds"], 120);
        assert_eq!(o.checks[0]["last_ok"]["detail"], "HDX 8000 sw 3.1");
        assert_eq!(o.last_up.as_ref().map(|v| v["age_seconds"].clone()), Some(json!(120)));
    }
}
