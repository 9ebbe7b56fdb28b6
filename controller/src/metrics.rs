//! Prometheus metrics, served at `/metrics` in the text format.
//!
//! Names follow `mangrove_<area>_<name>_<unit>`; labels are bounded (sites, states, kinds,
//! hosts of the inventory) — never sequence numbers, task ids or anything that grows forever.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteState {
    pub site: String,
    pub state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabel {
    pub host: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    pub hosts: Family<SiteState, Gauge>,
    pub reports: Family<KindLabel, Counter>,
    pub reports_replayed: Family<KindLabel, Counter>,
    pub outbox_backlog: Family<HostLabel, Gauge>,
    pub outbox_dropped: Family<HostLabel, Gauge>,
    pub sessions: Gauge,
    pub enrollments: Family<ResultLabel, Counter>,
    pub tasks_created: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            hosts: Family::default(),
            reports: Family::default(),
            reports_replayed: Family::default(),
            outbox_backlog: Family::default(),
            outbox_dropped: Family::default(),
            sessions: Gauge::default(),
            enrollments: Family::default(),
            tasks_created: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("mangrove_hosts", "Hosts by site and state", m.hosts.clone());
        registry.register(
            "mangrove_agent_reports",
            "Agent reports stored (each sequence number once)",
            m.reports.clone(),
        );
        registry.register(
            "mangrove_agent_reports_replayed",
            "Agent reports received again after they were stored (acknowledgement lost)",
            m.reports_replayed.clone(),
        );
        registry.register(
            "mangrove_agent_outbox_backlog",
            "Reports waiting in each agent's outbox, from its latest heartbeat",
            m.outbox_backlog.clone(),
        );
        registry.register(
            "mangrove_agent_outbox_dropped_reports",
            "Reports each agent could not keep because its outbox was full (since enrollment)",
            m.outbox_dropped.clone(),
        );
        registry.register("mangrove_agent_sessions", "Live agent streams", m.sessions.clone());
        registry.register("mangrove_enrollments", "Enrollment attempts by result", m.enrollments.clone());
        registry.register("mangrove_tasks_created", "Tasks created", m.tasks_created.clone());
        Metrics { registry, ..m }
    }
}

impl Metrics {
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn count_report(&self, kind: &str, new: bool) {
        let l = KindLabel { kind: kind.to_string() };
        if new {
            self.reports.get_or_create(&l).inc();
        } else {
            self.reports_replayed.get_or_create(&l).inc();
        }
    }

    /// A host's outbox counters, from its latest heartbeat.
    pub fn outbox_status(&self, host: &str, hb: &crate::store::HeartbeatStatus) {
        let l = HostLabel { host: host.to_string() };
        self.outbox_backlog.get_or_create(&l).set(hb.backlog);
        self.outbox_dropped.get_or_create(&l).set(hb.dropped);
    }

    pub fn enrollment(&self, result: &str) {
        self.enrollments.get_or_create(&ResultLabel { result: result.to_string() }).inc();
    }
}
