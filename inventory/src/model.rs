//! The inventory model: what the province runs, where, and what each system needs.
//!
//! These types are the schema of the inventory file (see `examples/camau.yaml`) and the shape
//! of the controller's JSON: every struct refuses unknown fields, every enum is written in
//! lowercase.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A province's inventory: its sites, machines, information systems and devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Inventory {
    /// The province's name, e.g. `Cà Mau`.
    pub province: String,
    /// The data-center sites; `dc` (primary) and `dr` (disaster recovery) by convention.
    pub sites: Vec<Site>,
    /// Physical machines: hypervisors and bare-metal servers.
    #[serde(default)]
    pub hosts: Vec<Host>,
    /// Information systems (HTTT), the unit of security level and of recovery.
    #[serde(default)]
    pub systems: Vec<System>,
    /// Virtual machines named explicitly (the rest come from platform discovery).
    #[serde(default)]
    pub workloads: Vec<Workload>,
    /// Video-conference endpoints (seen through an agent in proxy mode).
    #[serde(default)]
    pub video_endpoints: Vec<VideoEndpoint>,
    /// Office computers under endpoint protection, counted per agency.
    #[serde(default)]
    pub endpoint_groups: Vec<EndpointGroup>,
    /// Where backups go: restic repositories (passwords are kept by the controller, never here).
    #[serde(default)]
    pub backup_repositories: Vec<BackupRepository>,
}

/// A restic repository backups are written to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct BackupRepository {
    /// Short name, unique among repositories, e.g. `dr-san`.
    pub name: String,
    /// The site whose storage holds it.
    pub site: String,
    /// A restic location as the agents reach it: an absolute path (storage mounted on the
    /// hosts), `sftp:user@host:/path` or `rest:https://host:port/path`.
    pub location: String,
}

/// How an information system is backed up (the file plan); the controller fills what is left
/// out from the system's level and RPO.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SystemBackup {
    /// The machine whose agent runs the backup (default: the system's first workload with a
    /// native agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Absolute paths to back up.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Commands run in order before the backup (program and arguments, no shell), e.g. a
    /// `pg_dump` into a file under `paths`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre: Vec<Vec<String>>,
    /// Repository names (default: every repository of the inventory).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    /// Cron schedule (`minute hour day month weekday`; default from the RPO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Snapshots kept (default from the level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Cron schedule of `restic check` (default weekly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// Cron schedule of restore drills (default from the level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<String>,
    /// The host restore drills restore on (default: a DR host with a native agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_host: Option<String>,
    /// A command (program and arguments, no shell) a restore drill runs after the files are
    /// restored and verified, with `MANGROVE_RESTORE_DIR` naming where they are: e.g. load
    /// the database dump into a scratch PostgreSQL and run a query. A non-zero exit fails
    /// the drill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probe: Vec<String>,
    /// Platform snapshots of the system's VMs (vSphere, OpenStack volume, libvirt), a second
    /// plan besides the file plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<SnapshotPlanSpec>,
}

/// Platform snapshots of an information system's VMs: when, and how many each VM keeps.
/// A snapshot lives on the VM's own storage, so it is a quick way back from a bad change, not
/// a copy away from production: it never counts towards the RPO.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SnapshotPlanSpec {
    /// Cron schedule (`minute hour day month weekday`; default daily at 01:00).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Snapshots each VM keeps, newest first (default 3; 7 from level 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
}

/// How many snapshots to keep, per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Retention {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

/// A data-center site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Site {
    /// Short name, unique among sites (`dc`, `dr`).
    pub name: String,
    /// Human title, e.g. `Trung tâm dữ liệu tỉnh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The virtualisation platform that runs the site's VMs.
    pub platform: Platform,
    /// Usable storage, in terabytes.
    pub storage_tb: f64,
    /// Declared number of VMs at the site (e.g. 166 at the DC); the ones not named under
    /// `workloads` come from platform discovery later. Must not be below the number of
    /// workloads named at the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vms: Option<u32>,
}

/// The virtualisation platform of a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Platform {
    /// Which kind of platform.
    pub kind: PlatformKind,
    /// The platform instance's name, e.g. `vcenter-dc`; required unless `kind` is `none`.
    #[serde(default)]
    pub name: String,
    /// The machine (a native-agent workload or host at the same site) whose agent speaks for
    /// the site's `agent: proxy` hosts through this platform. Only that agent may report
    /// their state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

/// Kinds of virtualisation platform Mangrove can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformKind {
    /// VMware vCenter / ESXi.
    Vsphere,
    /// OpenStack.
    Openstack,
    /// libvirt (KVM) without a cloud layer.
    Libvirt,
    /// No virtualisation platform (bare metal only).
    None,
}

impl PlatformKind {
    /// The name used in files and JSON: `vsphere`, `openstack`, `libvirt`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformKind::Vsphere => "vsphere",
            PlatformKind::Openstack => "openstack",
            PlatformKind::Libvirt => "libvirt",
            PlatformKind::None => "none",
        }
    }
}

/// A physical machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Host {
    /// Machine name, unique among hosts and workloads together (one machine namespace).
    pub name: String,
    /// The site it stands in; must name a site.
    pub site: String,
    /// What the machine is for.
    pub role: HostRole,
    /// How Mangrove sees it.
    pub agent: AgentMode,
    /// CPU cores.
    pub cpus: u32,
    /// Memory, in GiB.
    pub memory_gb: u64,
    /// Management address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// Operating system or hypervisor, e.g. `VMware ESXi 7.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Free-form labels (`key: value`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// What a physical machine is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostRole {
    /// Runs virtual machines.
    Hypervisor,
    /// A bare-metal server.
    Server,
}

/// How Mangrove sees a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentMode {
    /// Runs a Mangrove agent itself.
    Native,
    /// Cannot run an agent; an agent in proxy mode speaks for it (ESXi hosts, devices).
    Proxy,
    /// Not seen by any agent.
    None,
}

impl AgentMode {
    /// The name used in files and JSON: `native`, `proxy`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentMode::Native => "native",
            AgentMode::Proxy => "proxy",
            AgentMode::None => "none",
        }
    }
}

/// An information system (HTTT): the unit that gets a security level and recovery targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct System {
    /// Short kebab-case name, unique among systems, e.g. `dvc-portal`.
    pub name: String,
    /// Vietnamese title, e.g. `Cổng Dịch vụ công`.
    pub title_vi: String,
    /// English title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_en: Option<String>,
    /// The owner agency (chủ quản), e.g. `Văn phòng UBND tỉnh`.
    pub owner: String,
    /// Security level 1–5 (Decree 85/2016/NĐ-CP).
    pub level: SecurityLevel,
    /// The legal framework whose policy pack applies, e.g. `vn-nd85-tcvn11930`.
    pub framework: String,
    /// Recovery priority, P1 (first) to P5.
    pub priority: Priority,
    /// Recovery point objective: how much data may be lost.
    #[serde(with = "crate::duration::text")]
    pub rpo: Duration,
    /// Recovery time objective: how long the system may be down.
    #[serde(with = "crate::duration::text")]
    pub rto: Duration,
    /// Hosts the system runs on directly (bare-metal parts); each must name a host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Which workloads belong to the system.
    #[serde(default, skip_serializing_if = "WorkloadSelector::is_empty")]
    pub workloads: WorkloadSelector,
    /// How its data is backed up (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<SystemBackup>,
}

/// Which workloads belong to a system: those carrying a tag, and/or those named.
///
/// A workload belongs to at most one system, counting its own `system` field, its `system`
/// tag and every system's selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct WorkloadSelector {
    /// Select the workloads carrying a tag: `{ match: { tag: "system=dvc-portal" } }`.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<TagMatch>,
    /// Select workloads by name; each must name a workload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Select VMs by name pattern (`*` any run of characters, `?` one), e.g. `qlvbdh-*`;
    /// applies to declared workloads and to VMs found by platform discovery alike.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name_patterns: Vec<String>,
}

impl WorkloadSelector {
    /// True when the selector selects nothing by itself.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none() && self.names.is_empty() && self.name_patterns.is_empty()
    }

    /// Whether `workload` is selected by tag, name or name pattern.
    pub fn selects(&self, workload: &Workload) -> bool {
        self.selects_vm(&workload.name, &workload.tags)
    }

    /// Whether a VM with this name and these tags (declared, or found by discovery) is
    /// selected.
    pub fn selects_vm(&self, name: &str, tags: &BTreeMap<String, String>) -> bool {
        self.names.iter().any(|n| n == name)
            || self.name_patterns.iter().any(|p| glob_matches(p, name))
            || self.matcher.as_ref().is_some_and(|m| m.matches_tags(tags))
    }
}

/// `*` matches any run of characters (also none), `?` exactly one; everything else itself.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with one backtrack point (the last `*`): linear in practice, and no
    // recursion a hostile pattern could blow up.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A tag condition, written `key=value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TagMatch {
    /// `key=value`: the workload's tag `key` must equal `value`.
    pub tag: String,
}

impl TagMatch {
    /// The condition split at the first `=`, or `None` when there is no `=` or the key is empty.
    pub fn key_value(&self) -> Option<(&str, &str)> {
        let (k, v) = self.tag.split_once('=')?;
        let k = k.trim();
        if k.is_empty() {
            return None;
        }
        Some((k, v.trim()))
    }

    /// Whether the workload carries the tag.
    pub fn matches(&self, workload: &Workload) -> bool {
        self.matches_tags(&workload.tags)
    }

    /// Whether these tags include the tag.
    pub fn matches_tags(&self, tags: &BTreeMap<String, String>) -> bool {
        self.key_value().is_some_and(|(k, v)| tags.get(k).is_some_and(|t| t == v))
    }
}

/// A virtual machine named in the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Workload {
    /// Machine name, unique among hosts and workloads together.
    pub name: String,
    /// The information system it belongs to; must name a system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The site it runs at; must name a site.
    pub site: String,
    /// How Mangrove sees it (`native` when the guest runs our agent).
    pub agent: AgentMode,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory, in GiB.
    pub memory_gb: u64,
    /// Disk, in GiB.
    pub disk_gb: u64,
    /// The guest's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// The guest operating system, e.g. `Ubuntu 22.04`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Free-form labels; the tag `system` must agree with the `system` field.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// A video-conference endpoint (hardware codec) at a meeting point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct VideoEndpoint {
    /// Short name, unique among video endpoints.
    pub name: String,
    /// Where the meeting point is, e.g. `Huyện Thới Bình`.
    pub site_name: String,
    /// Device model, e.g. `Polycom HDX 7000`.
    pub model: String,
    /// The device's address.
    pub address: IpAddr,
    /// The data-center site whose proxy agent watches it; must name a site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// When it was bought (`YYYY-MM-DD`), for replacement planning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_date: Option<String>,
    /// Its management API (default from the model: see [`VideoEndpoint::api`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<VideoApi>,
    /// The API's port (default 443 for REST, 24 for telnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_port: Option<u16>,
    /// SIP over UDP (default 5060) and the OPTIONS Request-URI (default `sip:<address>:<port>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_uri: Option<String>,
    /// SNMP v2c community (default `public`) and port (default 161). Device passwords are not
    /// here: the controller keeps them (`vc-credentials.toml` in its data dir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmp_community: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmp_port: Option<u16>,
}

/// A video endpoint's management API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoApi {
    /// Poly VideoOS REST (G7500, Studio X).
    Rest,
    /// The telnet command-line API of HDX and Group Series.
    Telnet,
    None,
}

impl VideoApi {
    pub fn as_str(self) -> &'static str {
        match self {
            VideoApi::Rest => "rest",
            VideoApi::Telnet => "telnet",
            VideoApi::None => "none",
        }
    }
}

impl VideoEndpoint {
    /// The API: as written, else from the model (VideoOS units have REST; HDX and Group
    /// Series the telnet API; anything else none).
    pub fn api(&self) -> VideoApi {
        if let Some(a) = self.api {
            return a;
        }
        let m = self.model.to_ascii_lowercase();
        if ["g7500", "studio x", "videoos", "g62"].iter().any(|k| m.contains(k)) {
            VideoApi::Rest
        } else if ["hdx", "group"].iter().any(|k| m.contains(k)) {
            VideoApi::Telnet
        } else {
            VideoApi::None
        }
    }

    /// The API's port (443 for REST, 24 for telnet [inferred: `poly-endpoints.md` §2.2]).
    pub fn api_port(&self) -> u16 {
        self.api_port.unwrap_or(match self.api() {
            VideoApi::Rest => 443,
            VideoApi::Telnet | VideoApi::None => 24,
        })
    }

    pub fn sip_port(&self) -> u16 {
        self.sip_port.unwrap_or(5060)
    }

    pub fn snmp_port(&self) -> u16 {
        self.snmp_port.unwrap_or(161)
    }

    pub fn snmp_community(&self) -> &str {
        self.snmp_community.as_deref().unwrap_or("public")
    }
}

/// Office computers of one agency under the endpoint-protection console (no agent of ours).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct EndpointGroup {
    /// Short name, unique among endpoint groups.
    pub name: String,
    /// The agency, e.g. `Sở Thông tin và Truyền thông`.
    pub agency: String,
    /// Number of computers.
    pub computers: u32,
}

/// A security level under Decree 85/2016/NĐ-CP: 1 (lowest) to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SecurityLevel(u8);

impl SecurityLevel {
    /// The lowest level.
    pub const MIN: u8 = 1;
    /// The highest level.
    pub const MAX: u8 = 5;

    /// The level, or `None` outside 1–5.
    pub fn new(level: u8) -> Option<SecurityLevel> {
        (Self::MIN..=Self::MAX).contains(&level).then_some(SecurityLevel(level))
    }

    /// The level as a number, 1–5.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for SecurityLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        u8::try_from(n).ok().and_then(SecurityLevel::new).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "security level must be between 1 and 5 (Decree 85/2016/NĐ-CP), got {n}"
            ))
        })
    }
}

/// Recovery priority: P1 is restored first.
///
/// Written `1`…`5` or `P1`…`P5` in files; serialized as the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// Restored first.
    P1,
    /// Second.
    P2,
    /// Third.
    P3,
    /// Fourth.
    P4,
    /// Last.
    P5,
}

impl Priority {
    /// The priority from its number 1–5, or `None`.
    pub fn new(n: u8) -> Option<Priority> {
        Some(match n {
            1 => Priority::P1,
            2 => Priority::P2,
            3 => Priority::P3,
            4 => Priority::P4,
            5 => Priority::P5,
            _ => return None,
        })
    }

    /// The priority as a number, 1–5.
    pub fn get(self) -> u8 {
        match self {
            Priority::P1 => 1,
            Priority::P2 => 2,
            Priority::P3 => 3,
            Priority::P4 => 4,
            Priority::P5 => 5,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.get())
    }
}

impl Serialize for Priority {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.get())
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PriorityVisitor)
    }
}

struct PriorityVisitor;

impl PriorityVisitor {
    fn out_of_range<E: serde::de::Error>(shown: impl fmt::Display) -> E {
        E::custom(format_args!("priority must be 1 to 5 (or P1 to P5), got {shown}"))
    }
}

impl serde::de::Visitor<'_> for PriorityVisitor {
    type Value = Priority;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a priority 1 to 5 or P1 to P5")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Priority, E> {
        u8::try_from(v).ok().and_then(Priority::new).ok_or_else(|| Self::out_of_range(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Priority, E> {
        u8::try_from(v).ok().and_then(Priority::new).ok_or_else(|| Self::out_of_range(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Priority, E> {
        let t = v.trim();
        let digits = t.strip_prefix('P').or_else(|| t.strip_prefix('p')).unwrap_or(t);
        digits.parse::<u8>().ok().and_then(Priority::new).ok_or_else(|| Self::out_of_range(format_args!("`{v}`")))
    }
}

/// What kind of machine a [`Machine`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineKind {
    /// A physical host that runs VMs.
    Hypervisor,
    /// A virtual machine (a workload).
    Vm,
    /// A bare-metal server.
    Server,
}

impl MachineKind {
    /// `hypervisor`, `vm` or `server`.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineKind::Hypervisor => "hypervisor",
            MachineKind::Vm => "vm",
            MachineKind::Server => "server",
        }
    }
}

impl fmt::Display for MachineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One machine of the inventory, host or VM, in the shape the controller and testbed use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Machine<'a> {
    /// The machine's name (unique across hosts and workloads).
    pub name: &'a str,
    /// Its site.
    pub site: &'a str,
    /// Hypervisor, VM or server.
    pub kind: MachineKind,
    /// How Mangrove sees it.
    pub agent: AgentMode,
    /// CPU cores (hosts) or virtual CPUs (VMs).
    pub cpus: u32,
    /// Memory in bytes (the file's GiB × 2³⁰, saturating).
    pub memory_bytes: u64,
    /// Disk in bytes for VMs; `None` for hosts (their storage is the site's).
    pub disk_bytes: Option<u64>,
    /// Operating system, when known.
    pub os: Option<&'a str>,
    /// Address, when known.
    pub address: Option<IpAddr>,
    /// The information system it belongs to, when one claims it.
    pub system: Option<&'a str>,
}

const GIB: u64 = 1 << 30;

impl Inventory {
    /// Every host (kind from its role) and every workload whose agent is not `none` (kind
    /// `vm`), hosts first, each group in file order.
    pub fn machines(&self) -> Vec<Machine<'_>> {
        let hosts = self.hosts.iter().map(|h| Machine {
            name: &h.name,
            site: &h.site,
            kind: match h.role {
                HostRole::Hypervisor => MachineKind::Hypervisor,
                HostRole::Server => MachineKind::Server,
            },
            agent: h.agent,
            cpus: h.cpus,
            memory_bytes: h.memory_gb.saturating_mul(GIB),
            disk_bytes: None,
            os: h.os.as_deref(),
            address: h.address,
            system: self.systems.iter().find(|s| s.hosts.contains(&h.name)).map(|s| s.name.as_str()),
        });
        let vms = self.workloads.iter().filter(|w| w.agent != AgentMode::None).map(|w| Machine {
            name: &w.name,
            site: &w.site,
            kind: MachineKind::Vm,
            agent: w.agent,
            cpus: w.vcpus,
            memory_bytes: w.memory_gb.saturating_mul(GIB),
            disk_bytes: Some(w.disk_gb.saturating_mul(GIB)),
            os: w.os.as_deref(),
            address: w.address,
            system: self.system_of(w),
        });
        hosts.chain(vms).collect()
    }

    /// The site named `name`.
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name == name)
    }

    /// The information system named `name`.
    pub fn system(&self, name: &str) -> Option<&System> {
        self.systems.iter().find(|s| s.name == name)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The workload named `name`.
    pub fn workload(&self, name: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.name == name)
    }

    /// The system a workload belongs to: its `system` field, else its `system` tag, else the
    /// first system whose selector selects it. A validated inventory never has two answers.
    pub fn system_of<'a>(&'a self, workload: &'a Workload) -> Option<&'a str> {
        if let Some(s) = &workload.system {
            return Some(s);
        }
        if let Some(s) = workload.tags.get("system") {
            return Some(s);
        }
        self.systems.iter().find(|s| s.workloads.selects(workload)).map(|s| s.name.as_str())
    }

    /// The system a VM found by platform discovery belongs to: the declared workload's system
    /// when the inventory names the VM, else its `system` tag, else the first system whose
    /// selector picks it (tag, explicit name or name pattern).
    pub fn system_of_vm<'a>(&'a self, name: &str, tags: &'a BTreeMap<String, String>) -> Option<&'a str> {
        if let Some(s) = self.workloads.iter().find(|w| w.name == name).and_then(|w| self.system_of(w)) {
            return Some(s);
        }
        if let Some(s) = tags.get("system")
            && self.systems.iter().any(|sys| sys.name == *s)
        {
            return Some(s);
        }
        self.systems.iter().find(|s| s.workloads.selects_vm(name, tags)).map(|s| s.name.as_str())
    }

    /// The workloads that belong to the system named `system`, in file order.
    pub fn workloads_of(&self, system: &str) -> Vec<&Workload> {
        self.workloads.iter().filter(|w| self.system_of(w) == Some(system)).collect()
    }

    /// Total computers under endpoint protection.
    pub fn endpoint_computers(&self) -> u64 {
        self.endpoint_groups.iter().map(|g| u64::from(g.computers)).sum()
    }
}
