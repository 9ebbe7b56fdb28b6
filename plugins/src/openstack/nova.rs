//! Nova: hypervisors, servers, flavors and server actions.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::cinder::Volume;
use super::session::Service;
use super::{OpenstackDriver, running};
use crate::error::PlatformError;
use crate::hypervisor::{
    CreateSpec, DiskInfo, Health, HostConnection, HostInfo, HostPower, InstanceSource, NicInfo, OpState, Operation,
    PowerAction, PowerState, VmInfo,
};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// A Nova flavor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flavor {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub vcpus: u32,
    /// MiB.
    #[serde(default, rename = "ram")]
    pub ram_mb: u64,
    /// GiB of root disk.
    #[serde(default, rename = "disk")]
    pub disk_gb: u64,
}

/// Ids that Nova sends as numbers before some microversions (hypervisors < 2.53, flavors).
fn id_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("id is {other}, not a string or number"))),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NovaHypervisor {
    #[serde(deserialize_with = "id_string")]
    id: String,
    #[serde(default)]
    hypervisor_hostname: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    hypervisor_type: Option<String>,
    #[serde(default)]
    vcpus: Option<u32>,
    #[serde(default)]
    memory_mb: Option<u64>,
    #[serde(default)]
    memory_mb_used: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ServerFlavor {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    vcpus: Option<u32>,
    #[serde(default)]
    ram: Option<u64>,
    #[serde(default)]
    disk: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Address {
    #[serde(default)]
    addr: Option<String>,
    #[serde(default, rename = "OS-EXT-IPS-MAC:mac_addr")]
    mac: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AttachedVolume {
    id: String,
}

#[derive(Debug, Default, Deserialize)]
struct Fault {
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Server {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, rename = "OS-EXT-STS:power_state")]
    power_state: Option<i64>,
    #[serde(default, rename = "OS-EXT-STS:task_state")]
    task_state: Option<String>,
    #[serde(default, rename = "OS-EXT-SRV-ATTR:hypervisor_hostname")]
    hypervisor_hostname: Option<String>,
    #[serde(default)]
    flavor: Option<ServerFlavor>,
    #[serde(default)]
    addresses: Option<BTreeMap<String, Vec<Address>>>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, Value>>,
    #[serde(default, rename = "os-extended-volumes:volumes_attached")]
    volumes_attached: Option<Vec<AttachedVolume>>,
    #[serde(default)]
    fault: Option<Fault>,
    #[serde(default)]
    progress: Option<u8>,
}

impl Server {
    pub fn volume_ids(&self) -> Vec<String> {
        self.volumes_attached.iter().flatten().map(|v| v.id.clone()).collect()
    }
}

/// A server read for the inventory, with the volumes whose sizes are still to be filled in.
pub(crate) struct PendingVm {
    vm: VmInfo,
    volume_ids: Vec<String>,
}

/// Power from Nova's status; for transitional statuses (REBOOT, MIGRATING, RESIZE, …) from
/// `OS-EXT-STS:power_state` (1 running, 3 paused, 4 shut down, 7 suspended).
pub(crate) fn power_state(status: &str, power: Option<i64>) -> PowerState {
    match status {
        "ACTIVE" => PowerState::On,
        "SHUTOFF" => PowerState::Off,
        "SUSPENDED" | "PAUSED" => PowerState::Suspended,
        "BUILD" | "ERROR" | "DELETED" | "SOFT_DELETED" | "UNKNOWN" | "" => PowerState::Unknown,
        _ => match power {
            Some(1) => PowerState::On,
            Some(4) => PowerState::Off,
            Some(3) | Some(7) => PowerState::Suspended,
            _ => PowerState::Unknown,
        },
    }
}

/// A Nova compute node as a host. `state` down means the compute service stopped reporting
/// (Nova still holds it, it does not answer): not responding. `status` disabled means an
/// operator took it out of scheduling: maintenance.
pub(crate) fn host_info(h: NovaHypervisor) -> HostInfo {
    let up = h.state.as_deref() == Some("up");
    let disabled = h.status.as_deref() == Some("disabled");
    HostInfo {
        id: h.id,
        name: h.hypervisor_hostname,
        connection: match h.state.as_deref() {
            Some("up") => HostConnection::Connected,
            Some("down") => HostConnection::NotResponding,
            _ => HostConnection::Unknown,
        },
        maintenance: disabled,
        power: if up { HostPower::On } else { HostPower::Unknown },
        health: match (up, disabled) {
            (true, false) => Health::Green,
            (true, true) => Health::Yellow,
            (false, _) if h.state.is_some() => Health::Red,
            _ => Health::Gray,
        },
        cpu_cores: h.vcpus.unwrap_or(0),
        memory_bytes: h.memory_mb.unwrap_or(0).saturating_mul(MIB),
        cpu_used_mhz: None,
        memory_used_bytes: h.memory_mb_used.map(|m| m.saturating_mul(MIB)),
        cluster: None,
        hardware: h.hypervisor_type,
    }
}

fn flavor_id(f: &ServerFlavor) -> Option<String> {
    match f.id.as_ref()? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A server as a VM. `flavors` fills in sizes when the server only names its flavor (< 2.47).
pub(crate) fn vm_info(s: Server, flavors: &[Flavor]) -> PendingVm {
    let embedded = s.flavor.unwrap_or_default();
    let looked_up = flavor_id(&embedded).and_then(|id| flavors.iter().find(|f| f.id == id));
    let vcpus = embedded.vcpus.or(looked_up.map(|f| f.vcpus)).unwrap_or(0);
    let ram = embedded.ram.or(looked_up.map(|f| f.ram_mb)).unwrap_or(0);
    let disk = embedded.disk.or(looked_up.map(|f| f.disk_gb)).unwrap_or(0);
    let mut disks = Vec::new();
    if disk > 0 {
        // The flavor's local root disk (boot from image); volumes are added later.
        disks.push(DiskInfo { label: "root".into(), capacity_bytes: disk.saturating_mul(GIB), storage: None });
    }
    let mut networks: Vec<NicInfo> = Vec::new();
    for (net, addrs) in s.addresses.unwrap_or_default() {
        for a in addrs {
            match networks.iter_mut().find(|n| n.network == net && n.mac == a.mac) {
                Some(nic) => nic.addresses.extend(a.addr),
                None => {
                    networks.push(NicInfo { network: net.clone(), mac: a.mac, addresses: a.addr.into_iter().collect() })
                }
            }
        }
    }
    let tags = s
        .metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    let volume_ids = s.volumes_attached.iter().flatten().map(|v| v.id.clone()).collect();
    PendingVm {
        vm: VmInfo {
            id: s.id,
            name: s.name,
            host: s.hypervisor_hostname.filter(|h| !h.is_empty()),
            power_state: power_state(&s.status, s.power_state),
            vcpus,
            memory_bytes: ram.saturating_mul(MIB),
            disks,
            networks,
            guest_os: None,
            tags,
        },
        volume_ids,
    }
}

/// Adds each server's attached Cinder volumes as disks (label: volume name, storage: the
/// Cinder pool `host@backend#pool` that holds it).
pub(crate) fn attach_volumes(vms: Vec<PendingVm>, volumes: &[Volume]) -> Vec<VmInfo> {
    vms.into_iter()
        .map(|p| {
            let mut vm = p.vm;
            for id in p.volume_ids {
                let v = volumes.iter().find(|v| v.id == id);
                vm.disks.push(DiskInfo {
                    label: v.map(|v| v.name.clone()).filter(|n| !n.is_empty()).unwrap_or_else(|| id.clone()),
                    capacity_bytes: v.map(|v| v.size_gb.saturating_mul(GIB)).unwrap_or(0),
                    storage: v.and_then(|v| v.pool.clone()),
                });
            }
            vm
        })
        .collect()
}

/// The smallest flavor (by vCPUs, then RAM, then disk) that fits; `need_disk` is false when
/// booting from a volume.
pub(crate) fn pick_flavor<'a>(flavors: &'a [Flavor], spec: &CreateSpec, need_disk: bool) -> Option<&'a Flavor> {
    let ram_mb = spec.memory_bytes.div_ceil(MIB);
    let disk_gb = spec.disk_bytes.div_ceil(GIB);
    flavors
        .iter()
        .filter(|f| f.vcpus >= spec.vcpus && f.ram_mb >= ram_mb && (!need_disk || f.disk_gb >= disk_gb))
        .min_by_key(|f| (f.vcpus, f.ram_mb, f.disk_gb, f.name.clone()))
}

impl OpenstackDriver {
    pub(crate) fn hosts(&self) -> Result<Vec<HostInfo>, PlatformError> {
        let hs: Vec<NovaHypervisor> = self.session.list(Service::Compute, "/os-hypervisors/detail", "hypervisors")?;
        Ok(hs.into_iter().map(host_info).collect())
    }

    /// Servers of every project, plus whether any has volumes attached.
    pub(crate) fn servers_for_inventory(&self) -> Result<(Vec<PendingVm>, bool), PlatformError> {
        let servers: Vec<Server> =
            self.session.list(Service::Compute, "/servers/detail?all_tenants=True", "servers")?;
        // Below 2.47 a server names its flavor only: one flavor list fills in every size.
        let need_flavors = servers.iter().any(|s| s.flavor.as_ref().is_some_and(|f| f.vcpus.is_none()));
        let flavors = if need_flavors { self.flavors()? } else { Vec::new() };
        let with_volumes = servers.iter().any(|s| s.volumes_attached.as_ref().is_some_and(|v| !v.is_empty()));
        Ok((servers.into_iter().map(|s| vm_info(s, &flavors)).collect(), with_volumes))
    }

    /// Every flavor, public and private (`is_public=None`, as the CLI asks).
    pub fn flavors(&self) -> Result<Vec<Flavor>, PlatformError> {
        self.session.list(Service::Compute, "/flavors/detail?is_public=None", "flavors")
    }

    /// One server, or `None` when Nova answers 404.
    pub(crate) fn server(&self, id: &str) -> Result<Option<Server>, PlatformError> {
        let path = format!("/servers/{}", encode(id));
        let reply = self.session.call(Service::Compute, "GET", &path, None)?;
        if reply.status == 404 {
            return Ok(None);
        }
        let call = format!("GET {path}");
        let doc = self.session.json(reply, &call)?;
        self.session.field(&doc, "server", &call).map(Some)
    }

    pub(crate) fn server_required(&self, id: &str) -> Result<Server, PlatformError> {
        self.server(id)?.ok_or_else(|| self.session.not_found("server", id))
    }

    pub(crate) fn server_power(&self, vm: &str, action: PowerAction) -> Result<Operation, PlatformError> {
        let server = self.server_required(vm)?;
        let (verb, target, already, underway) = match action {
            PowerAction::On => ("os-start", "ACTIVE", "vm_state active", "powering-on"),
            // Nova's os-stop asks the guest to shut down (ACPI) and powers off after
            // `shutdown_timeout`; there is no separate hard power-off action.
            PowerAction::Off | PowerAction::Shutdown => ("os-stop", "SHUTOFF", "vm_state stopped", "powering-off"),
        };
        let id = format!("server:{}:{target}", server.id);
        let description = format!("power {} {vm}", action_word(action));
        if server.status == target {
            return Ok(Operation::done(id, description, None));
        }
        if server.task_state.as_deref() == Some(underway) {
            // Our earlier attempt (or someone else's) is under way: follow it, ask nothing.
            return Ok(running(id, description));
        }
        let path = format!("/servers/{}/action", encode(&server.id));
        let reply = self.session.call(Service::Compute, "POST", &path, Some(&json!({ verb: null })))?;
        if reply.status == 409 && reply.body.contains(already) {
            // Someone (or our own earlier attempt) got there first.
            return Ok(Operation::done(id, description, None));
        }
        if reply.status == 409 && reply.body.contains(underway) {
            return Ok(running(id, description));
        }
        if reply.status == 404 {
            return Err(self.session.not_found("server", vm));
        }
        self.session.json(reply, &format!("POST {path} {verb}"))?;
        Ok(running(id, description))
    }

    pub(crate) fn server_create(&self, spec: &CreateSpec) -> Result<Operation, PlatformError> {
        let call = "POST /servers";
        if spec.name.trim().is_empty() {
            return Err(PlatformError::Config("an instance needs a name".into()));
        }
        // Nova's name filter is a regular expression: match exactly on our side.
        let path = format!("/servers?name={}", encode(&format!("^{}$", regex_escape(&spec.name))));
        let same: Vec<Server> = self.session.list(Service::Compute, &path, "servers")?;
        if let Some(s) = same.iter().find(|s| s.name == spec.name) {
            return Err(PlatformError::Refused {
                endpoint: self.session.endpoint.clone(),
                call: call.into(),
                message: format!("an instance named {:?} already exists ({})", spec.name, s.id),
            });
        }
        let flavors = self.flavors()?;
        let boot_from_volume = matches!(spec.source, InstanceSource::Volume(_));
        let flavor = pick_flavor(&flavors, spec, !boot_from_volume).ok_or_else(|| {
            self.session.not_found(
                "flavor",
                &format!(
                    ">= {} vCPU, {} MiB, {} GiB",
                    spec.vcpus,
                    spec.memory_bytes.div_ceil(MIB),
                    spec.disk_bytes.div_ceil(GIB)
                ),
            )
        })?;
        let mut server = json!({
            "name": spec.name,
            "flavorRef": flavor.id,
            "min_count": 1,
            "max_count": 1,
            "metadata": spec.tags,
        });
        if let Some(text) = &spec.user_data {
            // Nova takes user data base64-encoded (at most 64 KiB encoded).
            server["user_data"] = json!(base64::engine::general_purpose::STANDARD.encode(text.as_bytes()));
        }
        match &spec.source {
            InstanceSource::Image(image) => server["imageRef"] = json!(image),
            InstanceSource::Volume(volume) => {
                server["block_device_mapping_v2"] = json!([{
                    "uuid": volume, "boot_index": 0, "source_type": "volume",
                    "destination_type": "volume", "delete_on_termination": false
                }]);
            }
        }
        server["networks"] = match &spec.network {
            Some(net) => json!([{ "uuid": self.network_id(net)? }]),
            // Since 2.37 Nova wants an explicit "none" rather than picking a network itself.
            None => json!("none"),
        };
        let reply = self.session.call(Service::Compute, "POST", "/servers", Some(&json!({ "server": server })))?;
        let doc = self.session.json(reply, call)?;
        let id = doc
            .get("server")
            .and_then(|s| s.get("id"))
            .and_then(Value::as_str)
            .ok_or_else(|| self.session.malformed(call, "no server.id in the answer"))?;
        Ok(running(format!("server:{id}:ACTIVE"), format!("create instance {}", spec.name)))
    }

    pub(crate) fn server_delete(&self, vm: &str) -> Result<Operation, PlatformError> {
        let path = format!("/servers/{}", encode(vm));
        let id = format!("server:{vm}:DELETED");
        let description = format!("delete instance {vm}");
        let reply = self.session.call(Service::Compute, "DELETE", &path, None)?;
        if reply.status == 404 {
            return Ok(Operation::done(id, description, None));
        }
        self.session.json(reply, &format!("DELETE {path}"))?;
        Ok(running(id, description))
    }

    pub(crate) fn poll_server(&self, id: &str, target: &str) -> Result<OpState, PlatformError> {
        let Some(s) = self.server(id)? else {
            return Ok(if target == "DELETED" {
                OpState::Succeeded { result: None }
            } else {
                OpState::Failed { message: format!("server {id} no longer exists") }
            });
        };
        Ok(match s.status.as_str() {
            "ERROR" => OpState::Failed {
                message: s
                    .fault
                    .and_then(|f| f.message)
                    .unwrap_or_else(|| format!("server {id} went to ERROR with no fault message")),
            },
            st if st == target => OpState::Succeeded { result: Some(s.id) },
            "BUILD" => OpState::Running { progress: s.progress },
            _ => OpState::Running { progress: None },
        })
    }
}

fn action_word(a: PowerAction) -> &'static str {
    match a {
        PowerAction::On => "on",
        PowerAction::Off => "off",
        PowerAction::Shutdown => "shutdown",
    }
}

fn regex_escape(s: &str) -> String {
    s.chars().flat_map(|c| if "\\^$.|?*+()[]{}".contains(c) { vec!['\\', c] } else { vec![c] }).collect()
}

/// Percent-encodes a path segment or query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_states() {
        for (status, ps, want) in [
            ("ACTIVE", None, PowerState::On),
            ("SHUTOFF", Some(1), PowerState::Off),
            ("PAUSED", None, PowerState::Suspended),
            ("SUSPENDED", Some(7), PowerState::Suspended),
            ("ERROR", Some(1), PowerState::Unknown),
            ("BUILD", None, PowerState::Unknown),
            ("REBOOT", Some(1), PowerState::On),
            ("MIGRATING", Some(4), PowerState::Off),
            ("RESIZE", None, PowerState::Unknown),
        ] {
            assert_eq!(power_state(status, ps), want, "{status} {ps:?}");
        }
    }

    #[test]
    fn server_with_old_flavor_reference_gets_sizes_from_the_flavor_list() {
        let s: Server = serde_json::from_value(json!({
            "id": "s1", "name": "vm1", "status": "ACTIVE", "flavor": {"id": "2", "links": []},
            "OS-EXT-SRV-ATTR:hypervisor_hostname": "cmp1",
            "addresses": {"private": [
                {"addr": "10.0.0.5", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"},
                {"addr": "fd00::5", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}]},
            "metadata": {"system": "payroll", "n": 3},
            "os-extended-volumes:volumes_attached": [{"id": "v1"}]
        }))
        .expect("server");
        let flavors = vec![Flavor { id: "2".into(), name: "m1.small".into(), vcpus: 1, ram_mb: 2048, disk_gb: 20 }];
        let vol = Volume {
            id: "v1".into(),
            name: "data".into(),
            status: "in-use".into(),
            size_gb: 10,
            bootable: false,
            volume_type: None,
            pool: Some("cinder@lvm#LVM".into()),
            attachments: vec![],
        };
        let vm = attach_volumes(vec![vm_info(s, &flavors)], &[vol]).remove(0);
        assert_eq!((vm.vcpus, vm.memory_bytes), (1, 2048 * MIB));
        assert_eq!(vm.host.as_deref(), Some("cmp1"));
        assert_eq!(vm.networks.len(), 1);
        assert_eq!(vm.networks[0].addresses, vec!["10.0.0.5", "fd00::5"]);
        assert_eq!(vm.tags["system"], "payroll");
        assert_eq!(vm.tags["n"], "3");
        assert_eq!(vm.disks.len(), 2);
        assert_eq!(vm.disks[1].capacity_bytes, 10 * GIB);
        assert_eq!(vm.disks[1].storage.as_deref(), Some("cinder@lvm#LVM"));
    }

    #[test]
    fn flavor_choice_is_the_smallest_that_fits() {
        let f = |id: &str, vcpus, ram_mb, disk_gb| Flavor { id: id.into(), name: id.into(), vcpus, ram_mb, disk_gb };
        let flavors =
            vec![f("big", 8, 16384, 160), f("small", 1, 2048, 20), f("medium", 2, 4096, 40), f("tiny", 1, 512, 1)];
        let mut spec = CreateSpec {
            name: "x".into(),
            source: InstanceSource::Image("i".into()),
            vcpus: 2,
            memory_bytes: 3 * GIB,
            disk_bytes: 30 * GIB,
            network: None,
            tags: BTreeMap::new(),
            user_data: None,
        };
        assert_eq!(pick_flavor(&flavors, &spec, true).map(|f| f.id.as_str()), Some("medium"));
        spec.disk_bytes = 100 * GIB;
        assert_eq!(pick_flavor(&flavors, &spec, true).map(|f| f.id.as_str()), Some("big"));
        assert_eq!(pick_flavor(&flavors, &spec, false).map(|f| f.id.as_str()), Some("medium"));
        spec.vcpus = 64;
        assert_eq!(pick_flavor(&flavors, &spec, true), None);
    }

    #[test]
    fn hypervisor_states() {
        let h: NovaHypervisor = serde_json::from_value(json!({"id": 3, "hypervisor_hostname": "cmp3", "state": "down",
            "status": "disabled", "vcpus": 16, "memory_mb": 1024, "memory_mb_used": 512}))
        .expect("hypervisor");
        let h = host_info(h);
        assert_eq!(h.id, "3");
        assert_eq!(h.connection, HostConnection::NotResponding);
        assert!(h.maintenance);
        assert_eq!(h.health, Health::Red);
        assert_eq!(h.memory_used_bytes, Some(512 * MIB));
    }

    #[test]
    fn encoding() {
        assert_eq!(encode("^a b$"), "%5Ea%20b%24");
        assert_eq!(regex_escape("web.1"), "web\\.1");
    }
}
