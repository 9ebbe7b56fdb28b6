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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformLabel {
    pub platform: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformResult {
    pub platform: String,
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComplianceLabel {
    pub system: String,
    pub level: String,
    pub status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SystemLabel {
    pub system: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabel {
    pub resource: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabel {
    pub site: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteResource {
    pub site: String,
    pub resource: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupStatus {
    pub group: String,
    pub status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SystemPlan {
    pub system: String,
    pub plan: String,
}

type GaugeF64 = Gauge<f64, std::sync::atomic::AtomicU64>;

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
    pub platform_up: Family<PlatformLabel, Gauge>,
    pub platform_syncs: Family<PlatformResult, Counter>,
    pub platform_sync_ms: Family<PlatformLabel, Gauge>,
    pub platform_round_trips: Family<PlatformLabel, Gauge>,
    pub platform_vms: Family<PlatformLabel, Gauge>,
    pub compliance_controls: Family<ComplianceLabel, Gauge>,
    pub compliance_score: Family<SystemLabel, GaugeF64>,
    pub capacity_used_ratio: Family<SiteResource, GaugeF64>,
    pub capacity_used_vcpus: Family<SiteLabel, GaugeF64>,
    pub capacity_total_vcpus: Family<SiteLabel, GaugeF64>,
    pub capacity_used_bytes: Family<SiteResource, GaugeF64>,
    pub capacity_total_bytes: Family<SiteResource, GaugeF64>,
    pub dr_headroom_ratio: Family<ResourceLabel, GaugeF64>,
    pub backup_last_success: Family<SystemPlan, Gauge>,
    pub backup_rpo_seconds: Family<SystemLabel, Gauge>,
    pub backup_rpo_breach: Family<SystemLabel, Gauge>,
    pub endpoints: Family<GroupStatus, Gauge>,
    pub vc: crate::vc::metrics::VcMetrics,
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
            platform_up: Family::default(),
            platform_syncs: Family::default(),
            platform_sync_ms: Family::default(),
            platform_round_trips: Family::default(),
            platform_vms: Family::default(),
            compliance_controls: Family::default(),
            compliance_score: Family::default(),
            capacity_used_ratio: Family::default(),
            capacity_used_vcpus: Family::default(),
            capacity_total_vcpus: Family::default(),
            capacity_used_bytes: Family::default(),
            capacity_total_bytes: Family::default(),
            dr_headroom_ratio: Family::default(),
            backup_last_success: Family::default(),
            backup_rpo_seconds: Family::default(),
            backup_rpo_breach: Family::default(),
            endpoints: Family::default(),
            vc: Default::default(),
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
        registry.register(
            "mangrove_platform_up",
            "1 when the platform's last sync succeeded, 0 when it failed (down, slow or malformed answers)",
            m.platform_up.clone(),
        );
        registry.register("mangrove_platform_syncs", "Platform syncs by result", m.platform_syncs.clone());
        registry.register(
            "mangrove_platform_sync_duration_milliseconds",
            "How long the platform's last sync took",
            m.platform_sync_ms.clone(),
        );
        registry.register(
            "mangrove_platform_sync_round_trips",
            "API requests the platform's last good sync made",
            m.platform_round_trips.clone(),
        );
        registry.register("mangrove_platform_vms", "VMs the platform's last good sync found", m.platform_vms.clone());
        registry.register(
            "mangrove_compliance_controls",
            "Findings of the policy controls by system, level and status",
            m.compliance_controls.clone(),
        );
        registry.register(
            "mangrove_compliance_score",
            "Percent of each system's applicable findings that pass or are waived",
            m.compliance_score.clone(),
        );
        registry.register(
            "mangrove_capacity_used_ratio",
            "Share of each site's capacity in use: vCPUs allocated over cores times overcommit, VM memory over host memory, pool bytes used over pool capacity",
            m.capacity_used_ratio.clone(),
        );
        registry.register(
            "mangrove_capacity_used_vcpus",
            "vCPUs allocated to VMs at each site",
            m.capacity_used_vcpus.clone(),
        );
        registry.register(
            "mangrove_capacity_total_vcpus",
            "vCPUs each site may allocate: physical cores times the overcommit ratio",
            m.capacity_total_vcpus.clone(),
        );
        registry.register(
            "mangrove_capacity_used_bytes",
            "Memory allocated to VMs and storage used on the pools, per site",
            m.capacity_used_bytes.clone(),
        );
        registry.register(
            "mangrove_capacity_total_bytes",
            "Host memory and pool capacity, per site",
            m.capacity_total_bytes.clone(),
        );
        registry.register(
            "mangrove_dr_headroom_ratio",
            "What the DR site has free (after its buffer) over what every system needs there; 1 or more means all of them fit",
            m.dr_headroom_ratio.clone(),
        );
        registry.register(
            "mangrove_backup_last_success_timestamp_seconds",
            "When each plan's newest restore point that is not known bad was written",
            m.backup_last_success.clone(),
        );
        registry.register(
            "mangrove_backup_rpo_seconds",
            "Age of each system's newest restore point that is not known bad",
            m.backup_rpo_seconds.clone(),
        );
        registry.register(
            "mangrove_backup_rpo_breach",
            "1 when a system's newest good restore point is older than its RPO (or there is none)",
            m.backup_rpo_breach.clone(),
        );
        registry.register(
            "mangrove_endpoints",
            "Managed computers (Kaspersky Security Center) per top-level administration group and status, from the last good read",
            m.endpoints.clone(),
        );
        m.vc.register(&mut registry);
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

    /// Sets `mangrove_endpoints{group, status}`.
    pub fn endpoint_count(&self, group: &str, status: &str, n: u64) {
        let l = GroupStatus { group: group.to_string(), status: status.to_string() };
        self.endpoints.get_or_create(&l).set(i64::try_from(n).unwrap_or(i64::MAX));
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

    /// A platform sync's outcome.
    pub fn platform_sync(&self, platform: &str, ok: bool, duration_ms: i64, round_trips: i64, vms: Option<usize>) {
        let l = PlatformLabel { platform: platform.to_string() };
        self.platform_up.get_or_create(&l).set(i64::from(ok));
        self.platform_sync_ms.get_or_create(&l).set(duration_ms);
        let result = if ok { "ok" } else { "failed" };
        self.platform_syncs
            .get_or_create(&PlatformResult { platform: platform.to_string(), result: result.into() })
            .inc();
        if ok {
            self.platform_round_trips.get_or_create(&l).set(round_trips);
            self.platform_vms.get_or_create(&l).set(vms.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX)));
        }
    }

    pub fn enrollment(&self, result: &str) {
        self.enrollments.get_or_create(&ResultLabel { result: result.to_string() }).inc();
    }
}
