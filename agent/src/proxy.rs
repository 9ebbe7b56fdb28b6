//! Proxy mode: the agent speaks for hosts that cannot run one (ESXi hosts), reading their
//! state from their platform (vCenter) every `interval` and handing the latest reading to the
//! session, which sends it as it is (never through the outbox: a stale reading is worthless).
//!
//! The platform's credentials come from the file `[proxy.platform] credentials` names, which
//! must be readable by the agent's user alone; they never reach the controller, the logs or
//! the process arguments.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use plugins::connect::Connection;
use plugins::hypervisor::{HostInfo, Hypervisor};
use proto::v1::{ProxiedHost, ProxiedHosts};
use serde::Deserialize;
use tokio::sync::Notify;

/// `[proxy]` in the agent's config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// How often to read the hosts (default 5s, the heartbeat interval).
    #[serde(default = "default_interval", with = "crate::config::duration")]
    pub interval: Duration,
    /// The platform to read them from.
    pub platform: Connection,
}

fn default_interval() -> Duration {
    Duration::from_secs(5)
}

/// The latest reading, waiting for the session to send it.
#[derive(Default)]
pub struct Latest {
    reading: Mutex<Option<ProxiedHosts>>,
    pub ready: Notify,
}

impl Latest {
    pub fn take(&self) -> Option<ProxiedHosts> {
        self.reading.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn put(&self, r: ProxiedHosts) {
        *self.reading.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        self.ready.notify_one();
    }
}

fn word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| "unknown".into())
}

/// The wire form of one host.
pub fn to_wire(h: &HostInfo) -> ProxiedHost {
    ProxiedHost {
        name: h.name.clone(),
        connection: word(&h.connection),
        maintenance: h.maintenance,
        power: word(&h.power),
        health: word(&h.health),
        cpu_cores: h.cpu_cores,
        memory_bytes: h.memory_bytes,
        cpu_used_mhz: h.cpu_used_mhz.unwrap_or(0),
        memory_used_bytes: h.memory_used_bytes.unwrap_or(0),
        cluster: h.cluster.clone().unwrap_or_default(),
        hardware: h.hardware.clone().unwrap_or_default(),
    }
}

/// Starts the reading loop on its own thread (drivers block). It runs until the process ends.
pub fn start(cfg: ProxyConfig, latest: Arc<Latest>) {
    let spawned = std::thread::Builder::new().name("proxy".into()).spawn(move || {
        let mut driver: Option<Box<dyn Hypervisor>> = None;
        loop {
            let reading = read_once(&cfg.platform, &mut driver);
            latest.put(reading);
            std::thread::sleep(cfg.interval);
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the proxy thread; the hosts it speaks for will show down");
    }
}

/// One reading, reconnecting first if the last one failed. A failure is reported (the
/// controller shows why the hosts went quiet), never fatal.
fn read_once(conn: &Connection, driver: &mut Option<Box<dyn Hypervisor>>) -> ProxiedHosts {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let mut out = ProxiedHosts { platform: conn.name.clone(), read_unix_ms: now, hosts: vec![], error: String::new() };
    if driver.is_none() {
        match conn.connect() {
            Ok(d) => {
                tracing::info!(platform = conn.name, endpoint = conn.endpoint, "proxy connected to its platform");
                *driver = Some(d);
            }
            Err(e) => {
                tracing::warn!(platform = conn.name, error = %e, "proxy cannot connect to its platform");
                out.error = e.to_string();
                return out;
            }
        }
    }
    if let Some(d) = driver.as_ref() {
        match d.hosts() {
            Ok(hosts) => out.hosts = hosts.iter().map(to_wire).collect(),
            Err(e) => {
                tracing::warn!(platform = conn.name, error = %e, "proxy cannot read hosts; reconnecting next time");
                out.error = e.to_string();
                *driver = None;
            }
        }
    }
    out
}
