//! The recovery plan file, field by field. `examples/camau-all.yaml` shows one.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Inventory, Priority};

/// A recovery plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RecoveryPlan {
    /// Short name, unique among plans: `camau-all`.
    pub name: String,
    /// Vietnamese title, shown in reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_vi: Option<String>,
    /// English title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_en: Option<String>,
    /// DC network → DR network, and the isolated DR network test drills use instead.
    #[serde(default)]
    pub networks: Vec<NetworkMap>,
    /// The zones whose records the plan switches; needed when a system lists records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsSettings>,
    /// The systems it recovers.
    pub systems: Vec<PlanSystem>,
}

/// Where a DC network's workloads land at DR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct NetworkMap {
    /// The network's name at the DC (a vSphere port group).
    pub dc: String,
    /// The DR network (Neutron) for `planned`, `disaster` and `failback` runs.
    pub dr: String,
    /// The isolated DR network for `test` runs: it must not be `dr`.
    pub test: String,
}

/// The DNS zones a plan updates (RFC 2136).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct DnsSettings {
    /// The production zone: `camau.gov.vn`.
    pub zone: String,
    /// The zone test drills switch instead, never the production one: `drill.camau.gov.vn`.
    pub test_zone: String,
    /// TTL of the records written, in seconds (default 60: clients follow a switch quickly).
    #[serde(default = "default_ttl")]
    pub ttl: u32,
}

fn default_ttl() -> u32 {
    60
}

/// One system of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct PlanSystem {
    /// An information system of the inventory.
    pub name: String,
    /// Its priority group in this plan; the inventory's priority when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Systems of this plan that must be recovered (probes passing) before this one starts;
    /// each in the same or an earlier priority group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// How each of its workloads comes back.
    pub recover: Vec<WorkloadRecovery>,
    /// Records pointed at the recovered workload (relative names inside the plan's zone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<DnsRecord>,
    /// What proves the system is back; its RTO is measured to the moment all pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Probe>,
    /// Things a person confirms during the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<Prompt>,
    /// Commands the recovered machine runs through its agent (`agent.task` steps): a
    /// service restarted on its restored data, a check of what came back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<AgentTask>,
}

/// A command a recovered workload's agent runs during the run; it must exit 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AgentTask {
    /// One of the system's recovered workloads (`restore` method: it has our agent); the
    /// system's first when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// The program and its arguments, run without a shell.
    pub command: Vec<String>,
    /// `before_dns` (default: after the restore, before the switch) or `end` (after the
    /// probes pass); `start` is refused, the machine is not up yet.
    #[serde(default)]
    pub at: PromptPoint,
    /// How long it may run (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_duration")]
    pub timeout: Option<Duration>,
}

impl AgentTask {
    /// How long the command may run.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(300))
    }
}

/// How one workload comes back at DR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct WorkloadRecovery {
    /// The workload (VM) at the DC.
    pub workload: String,
    /// `restore` or `image`.
    pub method: RecoveryMethod,
    /// The DR image to boot: for `restore` a prepared image (restic and our agent in it); for
    /// `image` the name the converted images of this VM carry. The DR platform sizes the
    /// instance like the VM (vCPUs and memory; the root disk is the image's, data lives on
    /// volumes or comes back by restore).
    pub image: String,
    /// The DC network of the workload (one of the plan's `networks`); may be left out when
    /// the plan maps exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `image` only, and only for a VM at a vSphere site: keep the image fresh by exporting the
    /// VM from vCenter, converting its disk to qcow2 and uploading it to Glance under `image`
    /// on this schedule (`mangrove images refresh` runs it on demand). With it, a drill's
    /// pre-check refuses an image older than the system's RPO target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<ImageRefresh>,
}

/// When the controller refreshes an `image` workload's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ImageRefresh {
    /// Cron schedule (`minute hour day month weekday`, the province's time), e.g. `0 2 * * *`.
    pub schedule: String,
}

/// How a workload's data gets to DR, and so where its RPO comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryMethod {
    /// Boot a prepared image, restore the system's newest verified backup through the agent:
    /// the RPO is that backup's age.
    Restore,
    /// Boot the newest image converted from the VM: the RPO is that image's age.
    Image,
}

impl RecoveryMethod {
    /// The name used in files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryMethod::Restore => "restore",
            RecoveryMethod::Image => "image",
        }
    }

    /// What the achieved RPO is measured from.
    pub fn rpo_source(self) -> &'static str {
        match self {
            RecoveryMethod::Restore => "newest verified backup",
            RecoveryMethod::Image => "newest converted image",
        }
    }
}

/// A DNS record to switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct DnsRecord {
    /// The name inside the zone: `qlvbdh` is `qlvbdh.<zone>`.
    pub name: String,
    /// `A` (default), `AAAA`.
    #[serde(rename = "type", default)]
    pub rtype: RecordType,
}

/// Record types a switch writes (the recovered workload's address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordType {
    /// IPv4 address.
    #[default]
    A,
    /// IPv6 address.
    #[serde(rename = "AAAA")]
    Aaaa,
}

impl RecordType {
    /// The type's name in DNS.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
        }
    }
}

/// A check that a recovered system serves: an HTTP(S) request or a TCP connection.
///
/// A host name without a dot (`http://qlvbdh/`) is relative to the zone in force: the
/// production zone, or the test zone in a test drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Probe {
    /// A name for reports; the target when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An `http://` or `https://` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// What must hold: required (a probe that expects nothing proves nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// How long the probe keeps trying before the step fails (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_duration")]
    pub timeout: Option<Duration>,
}

/// A probe's target, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeTarget<'a> {
    /// An HTTP(S) URL.
    Http(&'a str),
    /// `host:port`.
    Tcp(&'a str),
}

impl Probe {
    /// The target; `None` only for a probe the checks refuse.
    pub fn target(&self) -> Option<ProbeTarget<'_>> {
        match (&self.http, &self.tcp) {
            (Some(url), None) => Some(ProbeTarget::Http(url)),
            (None, Some(addr)) => Some(ProbeTarget::Tcp(addr)),
            _ => None,
        }
    }

    /// The name reports use.
    pub fn label(&self) -> String {
        self.name.clone().or_else(|| self.http.clone()).or_else(|| self.tcp.clone()).unwrap_or_default()
    }

    /// How long the probe keeps trying.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(300))
    }
}

/// What a probe expects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Expect {
    /// HTTP status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Text the HTTP body (or the TCP banner) must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// TCP: that the port accepts a connection (`open: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<bool>,
}

/// Something a person must confirm before the run goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Prompt {
    /// When: `start` (before anything of the system), `before_dns` (default: the workloads
    /// are up, the switch has not happened), `end` (after its probes pass).
    #[serde(default)]
    pub at: PromptPoint,
    /// What to confirm, in Vietnamese.
    pub text_vi: String,
    /// The same in English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_en: Option<String>,
}

/// Where in a system's recovery a prompt stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptPoint {
    /// Before the system's first step.
    Start,
    /// After its workloads are up, before its DNS records switch.
    #[default]
    BeforeDns,
    /// After its probes pass.
    End,
}

impl RecoveryPlan {
    /// A system's priority in this plan: its own, else the inventory's, else P5.
    pub fn priority_of(&self, system: &PlanSystem, inventory: &Inventory) -> Priority {
        system.priority.or_else(|| inventory.system(&system.name).map(|s| s.priority)).unwrap_or(Priority::P5)
    }

    /// The priority groups in order (P1 first), each's systems in an order that respects
    /// `depends_on` (a dependency before its dependants; otherwise file order).
    pub fn groups<'a>(&'a self, inventory: &Inventory) -> Vec<(Priority, Vec<&'a PlanSystem>)> {
        let mut by_priority: BTreeMap<Priority, Vec<&PlanSystem>> = BTreeMap::new();
        for s in &self.systems {
            by_priority.entry(self.priority_of(s, inventory)).or_default().push(s);
        }
        by_priority.into_iter().map(|(p, systems)| (p, dependency_order(systems))).collect()
    }

    /// The system named `name`.
    pub fn system(&self, name: &str) -> Option<&PlanSystem> {
        self.systems.iter().find(|s| s.name == name)
    }
}

/// Systems ordered so each comes after those of its dependencies that are in the list; file
/// order otherwise. A cycle (refused by the checks) keeps the rest in file order.
fn dependency_order(systems: Vec<&PlanSystem>) -> Vec<&PlanSystem> {
    let mut out: Vec<&PlanSystem> = Vec::with_capacity(systems.len());
    let mut left = systems;
    while !left.is_empty() {
        let ready = left.iter().position(|s| {
            s.depends_on.iter().all(|d| out.iter().any(|o| &o.name == d) || !left.iter().any(|l| &l.name == d))
        });
        out.push(left.remove(ready.unwrap_or(0)));
    }
    out
}

/// `Option<Duration>` written as `30s`, `5m`, `1h`.
mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&crate::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        crate::parse_duration(&text).map(Some).map_err(serde::de::Error::custom)
    }
}
