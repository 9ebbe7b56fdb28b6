//! The simulated cloud's state: every resource of every service, in one serde value written to
//! `state_dir/openstack-state.json`, and the transitions that make actions take time.
//!
//! Transitions are lazy: an object in motion (a server building, a volume being created)
//! carries a `pending` step with the time it is due, and [`State::tick`] applies every due step
//! before each request reads or changes the state (and on a half-second tick, so the file
//! stays current). A simulator restarted halfway through a build finishes it on its first
//! request or tick: the due time is in the file.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

/// Format version of the state file; bump when a change is not backwards compatible.
pub const STATE_VERSION: u32 = 1;

/// Nova's `reserved_host_memory_mb` default: counted as used on every hypervisor.
pub const RESERVED_HOST_MEMORY_MB: u64 = 512;
/// Nova's `initial_cpu_allocation_ratio` default.
pub const CPU_ALLOCATION_RATIO: u64 = 4;

/// The whole simulated cloud (one project, one user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    /// Keystone ids (32 hex digits, as Keystone writes them).
    pub project_id: String,
    pub user_id: String,
    pub admin_role_id: String,
    pub member_role_id: String,
    pub hypervisors: Vec<Hypervisor>,
    pub flavors: Vec<Flavor>,
    pub images: Vec<Image>,
    pub networks: Vec<Network>,
    pub subnets: Vec<Subnet>,
    pub ports: Vec<Port>,
    pub floating_ips: Vec<FloatingIp>,
    pub servers: Vec<Server>,
    pub pools: Vec<Pool>,
    pub volumes: Vec<Volume>,
    pub snapshots: Vec<Snapshot>,
    pub backups: Vec<Backup>,
}

/// A compute node as Nova's `os-hypervisors` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hypervisor {
    /// Integer id (shown below microversion 2.53).
    pub id: u32,
    /// UUID id (shown from 2.53).
    pub uuid: String,
    pub service_id: u32,
    pub service_uuid: String,
    /// Host name, e.g. `dr-compute-01` (Nova's `hypervisor_hostname` and service host).
    pub hostname: String,
    pub host_ip: String,
    pub vcpus: u64,
    pub memory_mb: u64,
    pub local_gb: u64,
    /// `up` or `down`.
    pub state: String,
    /// `enabled` or `disabled`.
    pub status: String,
    pub hypervisor_type: String,
    pub hypervisor_version: u64,
}

/// A Nova flavor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u64,
    /// MiB.
    pub ram: u64,
    /// GiB.
    pub disk: u64,
    pub ephemeral: u64,
    /// MiB, 0 for none.
    pub swap: u64,
    pub is_public: bool,
    pub description: Option<String>,
    pub extra_specs: BTreeMap<String, String>,
}

/// A Glance image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    /// `queued`, `saving`, `active`, `deleted`.
    pub status: String,
    pub visibility: String,
    pub protected: bool,
    pub container_format: Option<String>,
    pub disk_format: Option<String>,
    pub size: Option<u64>,
    pub virtual_size: Option<u64>,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub min_disk: u64,
    pub min_ram: u64,
    pub owner: String,
    pub tags: Vec<String>,
    /// Whether the image's bytes are kept under `state_dir/images/<id>` (uploaded ones).
    pub stored: bool,
    pub created: i64,
    pub updated: i64,
    /// Extra properties (`os_distro`, `hw_*` …), shown as top-level keys.
    pub properties: BTreeMap<String, serde_json::Value>,
}

/// A Neutron network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub description: String,
    pub shared: bool,
    /// `router:external`.
    pub external: bool,
    pub mtu: u32,
    pub network_type: String,
    pub segmentation_id: Option<u32>,
    pub created: i64,
}

/// A Neutron IPv4 subnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    pub pool_start: String,
    pub pool_end: String,
    pub enable_dhcp: bool,
    pub dns_nameservers: Vec<String>,
    pub created: i64,
}

/// A fixed IP of a port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

/// A Neutron port; a server's addresses are the ports whose `device_id` is its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    pub device_id: String,
    pub device_owner: String,
    pub created: i64,
}

/// A Neutron floating IP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloatingIp {
    pub id: String,
    pub floating_network_id: String,
    pub floating_ip_address: String,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<String>,
    pub description: String,
    pub created: i64,
}

/// The flavor as copied into a server at boot (what Nova embeds from 2.47).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlavorCopy {
    pub id: String,
    pub name: String,
    pub vcpus: u64,
    pub ram: u64,
    pub disk: u64,
    pub ephemeral: u64,
    pub swap: u64,
    pub extra_specs: BTreeMap<String, String>,
}

/// What a server is in the middle of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerOp {
    Build,
    Stop,
    Start,
    Reboot,
    Delete,
}

/// A step due at `due_ms` (Unix milliseconds); `fail` makes it end in ERROR (fault injection
/// or no valid host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending<Op> {
    pub op: Op,
    pub due_ms: i64,
    pub fail: Option<String>,
}

/// A Nova server fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFault {
    pub code: u16,
    pub message: String,
    pub created: i64,
}

/// A Nova server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub id: String,
    pub name: String,
    pub flavor: FlavorCopy,
    /// `None` when booted from a volume.
    pub image_id: Option<String>,
    /// The hypervisor hostname it was placed on (`None` when scheduling failed).
    pub host: Option<String>,
    pub status: String,
    pub vm_state: String,
    /// 0 NOSTATE, 1 RUNNING, 4 SHUTDOWN.
    pub power_state: u8,
    pub task_state: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub key_name: Option<String>,
    pub description: Option<String>,
    pub availability_zone: String,
    pub created: i64,
    pub updated: i64,
    pub launched_at: Option<i64>,
    pub fault: Option<ServerFault>,
    pub pending: Option<Pending<ServerOp>>,
    /// The agent process or container that runs it, when its user data asked for an agent
    /// and the simulator realises servers (see `realize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realized: Option<Realization>,
}

/// What runs a realised server. Holds no secret: the token stays in memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Realization {
    pub mode: super::realize::RealizeMode,
    /// The agent's pid, or the container's name; empty until started.
    pub handle: String,
    pub state_dir: String,
    pub state: RealizeState,
}

/// Where a realisation stands. A build completes only once it is `Running` (ERROR when
/// `Failed`); a delete completes only once the realisation is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum RealizeState {
    Starting,
    Running,
    Failed { message: String },
    Stopping,
}

/// A Cinder backend pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// `host@backend#pool`.
    pub name: String,
    /// GiB, as Cinder reports it.
    pub total_capacity_gb: f64,
}

/// Create or delete, for block-storage objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageOp {
    Create,
    Delete,
}

/// A volume attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub id: String,
    pub server_id: String,
    pub device: String,
    pub attached_at: i64,
}

/// A Cinder volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// GiB.
    pub size: u64,
    pub status: String,
    pub volume_type: String,
    pub bootable: bool,
    pub pool: String,
    pub attachments: Vec<Attachment>,
    pub metadata: BTreeMap<String, String>,
    pub snapshot_id: Option<String>,
    pub image_id: Option<String>,
    pub created: i64,
    pub updated: i64,
    pub pending: Option<Pending<StorageOp>>,
}

/// A Cinder snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub volume_id: String,
    pub size: u64,
    pub status: String,
    pub metadata: BTreeMap<String, String>,
    pub created: i64,
    pub updated: i64,
    pub pending: Option<Pending<StorageOp>>,
}

/// A Cinder backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub volume_id: String,
    pub snapshot_id: Option<String>,
    pub size: u64,
    pub status: String,
    pub container: Option<String>,
    pub is_incremental: bool,
    pub created: i64,
    pub updated: i64,
    pub pending: Option<Pending<StorageOp>>,
}

/// Resource use of one hypervisor, derived from the servers placed on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub vcpus_used: u64,
    pub memory_mb_used: u64,
    pub local_gb_used: u64,
    pub running_vms: u64,
}

impl Flavor {
    /// The copy a server booted with this flavor keeps.
    pub(crate) fn copy(&self) -> FlavorCopy {
        FlavorCopy {
            id: self.id.clone(),
            name: self.name.clone(),
            vcpus: self.vcpus,
            ram: self.ram,
            disk: self.disk,
            ephemeral: self.ephemeral,
            swap: self.swap,
            extra_specs: self.extra_specs.clone(),
        }
    }
}

impl State {
    /// Applies every pending step due at `now_ms`; true if anything changed.
    pub fn tick(&mut self, now_ms: i64) -> bool {
        let mut changed = false;
        let now = now_ms / 1000;
        let mut deleted_servers = Vec::new();
        for s in &mut self.servers {
            let Some(p) = s.pending.clone() else { continue };
            if p.due_ms > now_ms {
                continue;
            }
            // A realised server is ACTIVE once its agent runs, and gone once it is stopped.
            let mut p = p;
            match (&p.op, s.realized.as_ref().map(|r| &r.state)) {
                (ServerOp::Build, Some(RealizeState::Starting)) | (ServerOp::Delete, Some(_)) => continue,
                (ServerOp::Build, Some(RealizeState::Failed { message })) if p.fail.is_none() => {
                    p.fail = Some(format!("Build of instance {} aborted: {message}", s.id));
                }
                _ => {}
            }
            changed = true;
            s.pending = None;
            s.task_state = None;
            s.updated = now;
            if let Some(message) = p.fail {
                s.status = "ERROR".into();
                s.vm_state = "error".into();
                s.fault = Some(ServerFault { code: 500, message, created: now });
                continue;
            }
            match p.op {
                ServerOp::Build | ServerOp::Start | ServerOp::Reboot => {
                    s.status = "ACTIVE".into();
                    s.vm_state = "active".into();
                    s.power_state = 1;
                    if p.op == ServerOp::Build {
                        s.launched_at = Some(now);
                    }
                }
                ServerOp::Stop => {
                    s.status = "SHUTOFF".into();
                    s.vm_state = "stopped".into();
                    s.power_state = 4;
                }
                ServerOp::Delete => deleted_servers.push(s.id.clone()),
            }
        }
        for id in deleted_servers {
            self.remove_server(&id, now);
        }
        changed |= step_storage(&mut self.volumes, now_ms);
        changed |= step_storage(&mut self.snapshots, now_ms);
        changed |= step_storage(&mut self.backups, now_ms);
        changed
    }

    /// Removes a deleted server with what Nova cleans up for it: the ports it created, the
    /// floating IPs on them, and its volume attachments.
    fn remove_server(&mut self, id: &str, now: i64) {
        self.servers.retain(|s| s.id != id);
        let ports: Vec<String> = self
            .ports
            .iter()
            .filter(|p| p.device_id == id && p.device_owner.starts_with("compute:"))
            .map(|p| p.id.clone())
            .collect();
        for p in &mut self.ports {
            if p.device_id == id {
                p.device_id.clear();
                p.device_owner.clear();
            }
        }
        self.ports.retain(|p| !ports.contains(&p.id));
        for f in &mut self.floating_ips {
            if f.port_id.as_ref().is_some_and(|p| ports.contains(p)) {
                f.port_id = None;
                f.fixed_ip_address = None;
            }
        }
        for v in &mut self.volumes {
            let before = v.attachments.len();
            v.attachments.retain(|a| a.server_id != id);
            if v.attachments.len() != before && v.attachments.is_empty() {
                v.status = "available".into();
                v.updated = now;
            }
        }
    }

    /// Resources used on the hypervisor named `hostname`, as Nova's resource tracker counts
    /// them: every server placed there (stopped ones keep their claim) plus reserved memory.
    pub fn usage(&self, hostname: &str) -> Usage {
        let mut u = Usage { memory_mb_used: RESERVED_HOST_MEMORY_MB, ..Usage::default() };
        for s in self.servers.iter().filter(|s| s.host.as_deref() == Some(hostname)) {
            u.vcpus_used += s.flavor.vcpus;
            u.memory_mb_used += s.flavor.ram;
            if s.image_id.is_some() {
                u.local_gb_used += s.flavor.disk + s.flavor.ephemeral;
            }
            u.running_vms += 1;
        }
        u
    }

    /// The enabled, up hypervisor with the most free RAM that fits the flavor (Nova's RAM
    /// weigher spreads instances this way), or `None` ("No valid host was found").
    pub fn place(&self, f: &FlavorCopy, local_disk: bool) -> Option<String> {
        let mut best: Option<(u64, &Hypervisor)> = None;
        for h in self.hypervisors.iter().filter(|h| h.state == "up" && h.status == "enabled") {
            let u = self.usage(&h.hostname);
            let disk = if local_disk { f.disk + f.ephemeral } else { 0 };
            let fits = u.vcpus_used + f.vcpus <= h.vcpus * CPU_ALLOCATION_RATIO
                && u.memory_mb_used + f.ram <= h.memory_mb
                && u.local_gb_used + disk <= h.local_gb;
            if !fits {
                continue;
            }
            let free = h.memory_mb - u.memory_mb_used;
            if best.is_none_or(|(b, _)| free > b) {
                best = Some((free, h));
            }
        }
        best.map(|(_, h)| h.hostname.clone())
    }

    /// GiB allocated in a Cinder pool (volumes; snapshots are thin on RBD).
    pub fn pool_allocated(&self, pool: &str) -> u64 {
        self.volumes.iter().filter(|v| v.pool == pool).map(|v| v.size).sum()
    }

    /// The pool with the most free space that fits `size` GiB.
    pub fn place_volume(&self, size: u64) -> Option<String> {
        self.pools
            .iter()
            .map(|p| (p.total_capacity_gb - self.pool_allocated(&p.name) as f64, p))
            .filter(|(free, _)| *free >= size as f64)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, p)| p.name.clone())
    }

    /// The next free address of `subnet`'s allocation pool, also skipping `also_taken`.
    pub fn free_ip(&self, subnet: &Subnet, also_taken: &[Port]) -> Option<String> {
        let start: Ipv4Addr = subnet.pool_start.parse().ok()?;
        let end: Ipv4Addr = subnet.pool_end.parse().ok()?;
        let used: Vec<&str> = self
            .ports
            .iter()
            .chain(also_taken)
            .flat_map(|p| p.fixed_ips.iter())
            .filter(|f| f.subnet_id == subnet.id)
            .map(|f| f.ip_address.as_str())
            .chain(self.floating_ips.iter().map(|f| f.floating_ip_address.as_str()))
            .collect();
        (u32::from(start)..=u32::from(end))
            .map(Ipv4Addr::from)
            .map(|a| a.to_string())
            .find(|a| !used.contains(&a.as_str()))
    }
}

/// A block-storage object (volume, snapshot, backup): what its create/delete steps change.
pub(crate) trait Stored {
    fn id(&self) -> &str;
    fn status(&self) -> &str;
    /// The fields a step changes: pending step, status, update time.
    fn lifecycle(&mut self) -> (&mut Option<Pending<StorageOp>>, &mut String, &mut i64);

    /// Starts the delete step due at `due_ms`.
    fn begin_delete(&mut self, due_ms: i64, now: i64) {
        let (pending, status, updated) = self.lifecycle();
        *status = "deleting".into();
        *updated = now;
        *pending = Some(Pending { op: StorageOp::Delete, due_ms, fail: None });
    }
}

macro_rules! stored {
    ($($t:ty),*) => {$(
        impl Stored for $t {
            fn id(&self) -> &str {
                &self.id
            }
            fn status(&self) -> &str {
                &self.status
            }
            fn lifecycle(&mut self) -> (&mut Option<Pending<StorageOp>>, &mut String, &mut i64) {
                (&mut self.pending, &mut self.status, &mut self.updated)
            }
        }
    )*};
}
stored!(Volume, Snapshot, Backup);

/// Applies every due create/delete step of `items`: a create ends `available` (or `error`),
/// a delete removes the object (or leaves it `error_deleting`). True if anything changed.
fn step_storage<T: Stored>(items: &mut Vec<T>, now_ms: i64) -> bool {
    let mut changed = false;
    let mut gone = Vec::new();
    for item in items.iter_mut() {
        let (pending, status, updated) = item.lifecycle();
        let Some(p) = pending.as_ref() else { continue };
        if p.due_ms > now_ms {
            continue;
        }
        let (op, fail) = (p.op, p.fail.is_some());
        *pending = None;
        *updated = now_ms / 1000;
        changed = true;
        match (op, fail) {
            (StorageOp::Create, false) => *status = "available".into(),
            (StorageOp::Create, true) => *status = "error".into(),
            (StorageOp::Delete, false) => gone.push(item.id().to_owned()),
            (StorageOp::Delete, true) => *status = "error_deleting".into(),
        }
    }
    items.retain(|x| !gone.iter().any(|g| g == x.id()));
    changed
}

/// A UUID derived from a name, so a seed is the same on every run.
pub fn stable_uuid(name: &str) -> String {
    let d = Sha256::digest(name.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    format_uuid(b)
}

/// A random (version 4) UUID.
pub fn random_uuid() -> String {
    format_uuid(rand::random())
}

/// 32 hex digits, the shape of Keystone ids and request ids.
pub fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn format_uuid(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// A Neutron MAC (OpenStack's `fa:16:3e` prefix).
pub fn random_mac() -> String {
    let b: [u8; 3] = rand::random();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn datetime(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2026-11-26T21:00:00Z` (Nova, Glance, Neutron).
pub fn iso_z(secs: i64) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    datetime(secs).format(&f).unwrap_or_default()
}

/// `2026-11-26T21:00:00.000000` (Cinder, Nova's `launched_at`).
pub fn iso_micro(secs: i64) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000000");
    datetime(secs).format(&f).unwrap_or_default()
}

/// `2026-11-26T22:56:12.000000Z` (Keystone).
pub fn iso_keystone(ms: i64) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000000Z");
    datetime(ms.div_euclid(1000)).format(&f).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openstack::realize::RealizeMode;

    /// A seeded server with a due `op` and a realisation in `state` (none if `None`).
    fn server_with(op: ServerOp, state: Option<RealizeState>) -> State {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/examples/camau.yaml");
        let mut st = super::super::seed(&inventory::load_file(&p).expect("camau.yaml loads"));
        st.servers.truncate(1);
        let s = &mut st.servers[0];
        s.status = "BUILD".into();
        s.pending = Some(Pending { op, due_ms: 0, fail: None });
        s.realized = state.map(|state| Realization {
            mode: RealizeMode::Processes,
            handle: String::new(),
            state_dir: "/x".into(),
            state,
        });
        st
    }

    #[test]
    fn a_realised_server_is_active_once_it_runs_and_gone_once_it_stopped() {
        let failed = RealizeState::Failed { message: "docker run: no such image".into() };
        for (op, state, want) in [
            (ServerOp::Build, None, "ACTIVE"),
            (ServerOp::Build, Some(RealizeState::Starting), "BUILD"),
            (ServerOp::Build, Some(RealizeState::Running), "ACTIVE"),
            (ServerOp::Build, Some(failed), "ERROR"),
            (ServerOp::Delete, Some(RealizeState::Stopping), "BUILD"),
            (ServerOp::Delete, None, "gone"),
        ] {
            let mut st = server_with(op, state.clone());
            st.tick(1);
            let got = st.servers.first().map_or("gone", |s| s.status.as_str());
            assert_eq!(got, want, "{op:?} with {state:?}");
            if want == "ERROR" {
                let fault = st.servers[0].fault.as_ref().map(|f| f.message.as_str()).unwrap_or_default();
                assert!(fault.contains("no such image"), "{fault}");
            }
        }
    }
}
