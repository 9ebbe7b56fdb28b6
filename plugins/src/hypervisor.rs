//! The hypervisor driver interface: what Mangrove reads from a virtualization platform and
//! what it asks one to do.
//!
//! Drivers are blocking (each call is one or a few HTTP round trips, or a libvirt call); the
//! controller and the proxy agent run them on blocking threads. Every method that talks to the
//! platform returns [`PlatformError`] with the endpoint and the call named, never panics on
//! what the platform sends, and leaves nothing half-done on the Mangrove side.
//!
//! Long-running actions return an [`Operation`] at once; [`Hypervisor::poll`] refreshes it
//! and [`wait`] polls until it ends. An operation's `id` is the platform's own (a vCenter task
//! moref, a Nova server id plus the state it is heading for, a libvirt domain UUID for the
//! synchronous libvirt calls), so it can be looked up again after a restart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::PlatformError;

/// Which platform a driver speaks to. Serialized as `vsphere`, `openstack`, `libvirt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformKind {
    Vsphere,
    Openstack,
    Libvirt,
}

impl PlatformKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformKind::Vsphere => "vsphere",
            PlatformKind::Openstack => "openstack",
            PlatformKind::Libvirt => "libvirt",
        }
    }
}

impl std::fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Power state of a VM or instance, normalised across platforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    On,
    Off,
    Suspended,
    /// The platform reports no usable state (a VM on a disconnected host, an instance in
    /// ERROR or BUILD).
    Unknown,
}

impl PowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Suspended => "suspended",
            PowerState::Unknown => "unknown",
        }
    }
}

/// Whether the platform can manage a host right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostConnection {
    Connected,
    Disconnected,
    NotResponding,
    Unknown,
}

/// A host's power as the platform sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostPower {
    On,
    Off,
    Standby,
    Unknown,
}

/// The platform's overall health verdict for a host (vSphere's overallStatus colours;
/// OpenStack's service state mapped onto them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Green,
    Yellow,
    Red,
    Gray,
}

/// A hypervisor host (ESXi host, Nova compute node, libvirt node).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// The platform's id for the host (vSphere moref `host-21`, Nova hypervisor id).
    pub id: String,
    /// The host's name as the platform knows it (usually its DNS name).
    pub name: String,
    pub connection: HostConnection,
    pub maintenance: bool,
    pub power: HostPower,
    pub health: Health,
    pub cpu_cores: u32,
    pub memory_bytes: u64,
    /// CPU in use, MHz, when the platform reports it.
    pub cpu_used_mhz: Option<u64>,
    /// Memory in use, bytes, when the platform reports it.
    pub memory_used_bytes: Option<u64>,
    /// Cluster or availability zone the host belongs to.
    pub cluster: Option<String>,
    /// Hardware vendor and model, when known.
    pub hardware: Option<String>,
}

/// One virtual disk of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskInfo {
    pub label: String,
    pub capacity_bytes: u64,
    /// The datastore or pool that holds it, when known.
    pub storage: Option<String>,
}

/// One network attachment of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicInfo {
    pub network: String,
    pub mac: Option<String>,
    pub addresses: Vec<String>,
}

/// A VM (vSphere) or instance (OpenStack, libvirt domain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmInfo {
    /// The platform's stable id for the VM, the one actions take: vSphere moref (`vm-63`,
    /// unchanged by vMotion), Nova server UUID, libvirt domain UUID. A VM that moves between
    /// hosts keeps it.
    pub id: String,
    pub name: String,
    /// Name of the host it runs on, when placed.
    pub host: Option<String>,
    pub power_state: PowerState,
    pub vcpus: u32,
    pub memory_bytes: u64,
    pub disks: Vec<DiskInfo>,
    pub networks: Vec<NicInfo>,
    pub guest_os: Option<String>,
    /// Key/value tags: vSphere custom attributes, OpenStack server metadata, libvirt
    /// metadata. `system=<name>` maps a VM to an information system.
    pub tags: BTreeMap<String, String>,
}

/// A datastore (vSphere), a Cinder pool (OpenStack) or a storage pool (libvirt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoragePool {
    pub id: String,
    pub name: String,
    pub capacity_bytes: u64,
    pub free_bytes: u64,
}

/// Everything one sync reads from a platform.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub hosts: Vec<HostInfo>,
    pub vms: Vec<VmInfo>,
    pub storage: Vec<StoragePool>,
    /// HTTP requests (or libvirt calls) reading the inventory made, the session's login and
    /// logout not counted: the figure that shows bulk retrieval at work.
    pub round_trips: u32,
}

/// A snapshot of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The id the revert and delete actions take (vSphere snapshot moref, Cinder snapshot id,
    /// libvirt snapshot name).
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// RFC 3339, when the platform says.
    pub created: Option<String>,
    /// Whether the VM currently runs from this snapshot.
    pub current: bool,
}

/// Power actions. `Shutdown` asks the guest OS to shut down (VMware Tools, ACPI); `Off` cuts
/// power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerAction {
    On,
    Off,
    Shutdown,
}

impl PowerAction {
    /// The power state the action leads to.
    pub fn target(self) -> PowerState {
        match self {
            PowerAction::On => PowerState::On,
            PowerAction::Off | PowerAction::Shutdown => PowerState::Off,
        }
    }
}

impl std::str::FromStr for PowerAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "on" => Ok(PowerAction::On),
            "off" => Ok(PowerAction::Off),
            "shutdown" => Ok(PowerAction::Shutdown),
            other => Err(format!("unknown power action {other:?}; use on, off or shutdown")),
        }
    }
}

/// Where a new instance's root disk comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceSource {
    /// An image (Glance image id, vSphere template moref, libvirt volume path).
    Image(String),
    /// An existing volume (Cinder volume id) booted in place.
    Volume(String),
}

/// What [`Hypervisor::create_instance`] builds.
///
/// Its `Debug` leaves the user data out and serializing it skips the user data: it carries a
/// one-time token (see [`crate::cloudinit`]) that must reach no log and no journal.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSpec {
    pub name: String,
    pub source: InstanceSource,
    pub vcpus: u32,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    /// Network name or id to attach to; none for no network.
    pub network: Option<String>,
    /// Tags (metadata) to set on the new instance.
    pub tags: BTreeMap<String, String>,
    /// Cloud-init user data, plain text (the OpenStack driver base64-encodes it for Nova).
    /// Drivers that cannot pass it refuse a spec that has it.
    #[serde(default, skip_serializing)]
    pub user_data: Option<String>,
}

impl std::fmt::Debug for CreateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateSpec")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("vcpus", &self.vcpus)
            .field("memory_bytes", &self.memory_bytes)
            .field("disk_bytes", &self.disk_bytes)
            .field("network", &self.network)
            .field("tags", &self.tags)
            .field("user_data", &self.user_data.as_ref().map(|u| format!("<{} bytes>", u.len())))
            .finish()
    }
}

impl CreateSpec {
    /// The refusal of a driver that cannot pass user data, when the spec carries some.
    pub(crate) fn refuse_user_data(&self, kind: &'static str) -> Result<(), PlatformError> {
        match self.user_data {
            Some(_) => Err(PlatformError::Unsupported { kind, what: "cloud-init user data".into() }),
            None => Ok(()),
        }
    }
}

/// State of a long-running operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum OpState {
    Queued,
    Running {
        /// Percent done, when the platform reports it.
        progress: Option<u8>,
    },
    Succeeded {
        /// What the operation produced, when anything (a snapshot id, a new instance id).
        result: Option<String>,
    },
    Failed {
        message: String,
    },
}

impl OpState {
    pub fn is_done(&self) -> bool {
        matches!(self, OpState::Succeeded { .. } | OpState::Failed { .. })
    }
}

/// A long-running operation on the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The platform's id for it (see the module doc).
    pub id: String,
    /// What was asked, e.g. `power on vm-63`.
    pub description: String,
    #[serde(flatten)]
    pub state: OpState,
}

impl Operation {
    /// An operation that needed no platform work (the VM was already in the asked state).
    pub fn done(id: impl Into<String>, description: impl Into<String>, result: Option<String>) -> Operation {
        Operation { id: id.into(), description: description.into(), state: OpState::Succeeded { result } }
    }
}

/// A connection to one virtualization platform.
///
/// Retry semantics are stated per method: "idempotent" means calling it again after an
/// unknown outcome (a timeout, a lost connection) cannot do the work twice.
pub trait Hypervisor: Send + Sync {
    fn kind(&self) -> PlatformKind;

    /// The endpoint this driver talks to, for messages (never with credentials).
    fn endpoint(&self) -> &str;

    /// Hosts, VMs and storage, read in as few round trips as the platform allows.
    /// Read-only, so safe to retry.
    fn inventory(&self) -> Result<Inventory, PlatformError>;

    /// Only the hosts, for callers that poll them often (the proxy agent). Drivers that can
    /// read hosts alone more cheaply override it. Read-only.
    fn hosts(&self) -> Result<Vec<HostInfo>, PlatformError> {
        Ok(self.inventory()?.hosts)
    }

    /// Starts a power action on a VM. Idempotent: when the VM is already in the target state
    /// the driver returns an operation that has already succeeded and starts nothing; on
    /// retry after an unknown outcome it re-reads the state first.
    fn power(&self, vm: &str, action: PowerAction) -> Result<Operation, PlatformError>;

    /// Starts a snapshot of a VM's disks (no memory). Not idempotent: a retry after an unknown
    /// outcome can leave two snapshots with the same name; callers list first.
    fn snapshot_create(&self, vm: &str, name: &str, description: &str) -> Result<Operation, PlatformError>;

    /// The VM's snapshots, oldest first. Read-only.
    fn snapshot_list(&self, vm: &str) -> Result<Vec<Snapshot>, PlatformError>;

    /// Starts a revert of the VM to a snapshot. Idempotent in effect: reverting twice leaves
    /// the VM at the same snapshot (changes made in between are lost, as the first revert
    /// would have lost them).
    fn snapshot_revert(&self, vm: &str, snapshot: &str) -> Result<Operation, PlatformError>;

    /// Starts the removal of one snapshot (its children are kept). Idempotent: a snapshot
    /// that no longer exists is reported as already removed.
    fn snapshot_delete(&self, vm: &str, snapshot: &str) -> Result<Operation, PlatformError>;

    /// Starts building an instance. Not idempotent by itself; the driver refuses a name that
    /// already exists, so a retry after an unknown outcome fails cleanly instead of building
    /// a second instance.
    fn create_instance(&self, spec: &CreateSpec) -> Result<Operation, PlatformError>;

    /// Starts deleting an instance. Idempotent: an instance that no longer exists is reported
    /// as already deleted.
    fn delete_instance(&self, vm: &str) -> Result<Operation, PlatformError>;

    /// Reads an operation's current state again. Read-only.
    fn poll(&self, op: &Operation) -> Result<Operation, PlatformError>;

    /// Ends the session, if the platform has one. Errors are logged, not returned: a session
    /// that cannot be closed expires on its own.
    fn close(&self) {}
}

/// Polls `op` until it ends or `timeout` passes, calling `progress` whenever its state
/// changes. Returns the final operation; a timeout is an error naming the operation.
pub fn wait(
    driver: &dyn Hypervisor,
    op: Operation,
    timeout: Duration,
    mut progress: impl FnMut(&Operation),
) -> Result<Operation, PlatformError> {
    let started = Instant::now();
    let mut current = op;
    let mut delay = Duration::from_millis(100);
    progress(&current);
    while !current.state.is_done() {
        if started.elapsed() >= timeout {
            return Err(PlatformError::OperationTimeout {
                endpoint: driver.endpoint().to_string(),
                operation: current.description.clone(),
                secs: timeout.as_secs(),
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(2));
        let next = driver.poll(&current)?;
        if next.state != current.state {
            progress(&next);
        }
        current = next;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_actions_parse_and_reject_unknown_words() {
        assert_eq!("on".parse::<PowerAction>(), Ok(PowerAction::On));
        assert_eq!("shutdown".parse::<PowerAction>().map(PowerAction::target), Ok(PowerState::Off));
        let err = "reboot".parse::<PowerAction>().expect_err("reboot is no power action");
        assert!(err.contains("reboot") && err.contains("shutdown"), "{err}");
    }

    #[test]
    fn create_spec_never_shows_its_user_data() {
        let spec = CreateSpec {
            name: "web-1".into(),
            source: InstanceSource::Image("img".into()),
            vcpus: 1,
            memory_bytes: 1,
            disk_bytes: 1,
            network: None,
            tags: BTreeMap::new(),
            user_data: Some("MANGROVE_AGENT_TOKEN=secret-token".into()),
        };
        let shown = format!("{spec:?}");
        assert!(!shown.contains("secret-token") && shown.contains("<33 bytes>"), "{shown}");
        let json = serde_json::to_string(&spec).unwrap_or_default();
        assert!(json.contains("web-1") && !json.contains("secret-token"), "{json}");
    }

    #[test]
    fn operation_serializes_with_its_state_flattened() {
        let op = Operation::done("task-1", "power on vm-1", None);
        let v = serde_json::to_value(&op).unwrap_or_default();
        assert_eq!(v["state"], "succeeded");
        assert_eq!(v["id"], "task-1");
    }
}
