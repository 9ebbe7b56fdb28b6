//! libvirt driver (feature `libvirt`), over the `virt` bindings.
//!
//! One driver talks to one libvirt connection, i.e. one host: `qemu+ssh://root@h1/system`,
//! `qemu:///system`, or the in-process test driver (`test:///default`, or
//! `test:///path/node.xml` with a custom `<node>` description). The test driver describes
//! exactly one node per connection, so "several hosts" means several drivers, one per URI.
//!
//! libvirt calls are synchronous: actions return an operation that has already succeeded
//! (or failed), except a graceful shutdown, which a real guest takes time to finish; its
//! operation id `domain:<uuid>:off` is polled by re-reading the domain state.
//!
//! A snapshot is a libvirt internal snapshot made with default flags: of a running domain it
//! includes memory (QEMU), unlike the trait's disks-only wording, because libvirt 9.0 cannot
//! revert the disk-only (external) kind. Snapshot ids are snapshot names.
//!
//! Tags are kept in the domain's `<metadata>` under the [`TAGS_NS`] namespace, as
//! `<mg:tags><mg:tag key=".." value=".."/></mg:tags>`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use quick_xml::events::{BytesStart, Event};
use virt::connect::Connect;
use virt::domain::Domain;
use virt::domain_snapshot::DomainSnapshot;
use virt::error::ErrorNumber;
use virt::storage_pool::StoragePool as VirtPool;
use virt::sys;

use crate::error::PlatformError;
use crate::hypervisor::{
    CreateSpec, DiskInfo, Health, HostConnection, HostInfo, HostPower, Hypervisor, InstanceSource, Inventory, NicInfo,
    OpState, Operation, PlatformKind, PowerAction, PowerState, Snapshot, StoragePool, VmInfo,
};

/// XML namespace of Mangrove's tags in a domain's `<metadata>`.
pub const TAGS_NS: &str = "https://mangrove.invalid/libvirt/tags/1";

/// A connection to one libvirt host.
pub struct LibvirtDriver {
    uri: String,
    conn: Mutex<Connect>,
    host_name: Option<String>,
}

impl std::fmt::Debug for LibvirtDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibvirtDriver").field("uri", &self.uri).finish()
    }
}

impl Drop for LibvirtDriver {
    fn drop(&mut self) {
        let conn = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = conn.close() {
            tracing::debug!(uri = %self.uri, error = %e, "closing the libvirt connection");
        }
    }
}

fn is_not_found(e: &virt::error::Error) -> bool {
    matches!(e.code(), ErrorNumber::NoDomain | ErrorNumber::NoDomainSnapshot | ErrorNumber::NoStoragePool)
}

fn domain_power(state: sys::virDomainState) -> PowerState {
    match state {
        sys::VIR_DOMAIN_RUNNING | sys::VIR_DOMAIN_BLOCKED | sys::VIR_DOMAIN_SHUTDOWN => PowerState::On,
        sys::VIR_DOMAIN_SHUTOFF | sys::VIR_DOMAIN_CRASHED => PowerState::Off,
        sys::VIR_DOMAIN_PAUSED | sys::VIR_DOMAIN_PMSUSPENDED => PowerState::Suspended,
        _ => PowerState::Unknown,
    }
}

impl LibvirtDriver {
    /// Opens `uri` read-write. libvirt's own printing of errors to stderr is turned off: the
    /// driver returns them.
    pub fn connect(uri: &str) -> Result<LibvirtDriver, PlatformError> {
        virt::error::clear_error_callback();
        let conn = Connect::open(Some(uri))
            .map_err(|e| PlatformError::Unreachable { endpoint: uri.to_string(), detail: e.message().to_string() })?;
        Ok(LibvirtDriver { uri: uri.to_string(), conn: Mutex::new(conn), host_name: None })
    }

    /// Reports the host under `name` instead of the name libvirt gives (the machine's
    /// hostname, which is the same for every `test:///` connection, and may not be the name
    /// the inventory knows a remote host by).
    pub fn with_host_name(mut self, name: impl Into<String>) -> LibvirtDriver {
        self.host_name = Some(name.into());
        self
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connect> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, call: &str, e: virt::error::Error) -> PlatformError {
        match e.code() {
            ErrorNumber::NoConnect | ErrorNumber::SystemError => {
                PlatformError::Unreachable { endpoint: self.uri.clone(), detail: format!("{call}: {}", e.message()) }
            }
            ErrorNumber::XmlError | ErrorNumber::XmlDetail => PlatformError::Malformed {
                endpoint: self.uri.clone(),
                call: call.to_string(),
                detail: e.message().to_string(),
            },
            _ => PlatformError::Refused {
                endpoint: self.uri.clone(),
                call: call.to_string(),
                message: e.message().to_string(),
            },
        }
    }

    fn not_found(&self, what: &str, id: &str) -> PlatformError {
        PlatformError::NotFound { endpoint: self.uri.clone(), what: what.to_string(), id: id.to_string() }
    }

    /// A domain by UUID, or by name (convenient for operators and tests).
    fn domain(&self, conn: &Connect, vm: &str) -> Result<Option<Domain>, PlatformError> {
        match Domain::lookup_by_uuid_string(conn, vm) {
            Ok(d) => return Ok(Some(d)),
            Err(e) if !is_not_found(&e) && e.code() != ErrorNumber::InvalidArg => {
                return Err(self.err("virDomainLookupByUUIDString", e));
            }
            Err(_) => {}
        }
        match Domain::lookup_by_name(conn, vm) {
            Ok(d) => Ok(Some(d)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.err("virDomainLookupByName", e)),
        }
    }

    fn domain_required(&self, conn: &Connect, vm: &str) -> Result<Domain, PlatformError> {
        self.domain(conn, vm)?.ok_or_else(|| self.not_found("domain", vm))
    }

    fn uuid(&self, d: &Domain) -> Result<String, PlatformError> {
        d.get_uuid_string().map_err(|e| self.err("virDomainGetUUIDString", e))
    }

    fn state(&self, d: &Domain) -> Result<PowerState, PlatformError> {
        d.get_state().map(|(s, _)| domain_power(s)).map_err(|e| self.err("virDomainGetState", e))
    }

    fn host(&self, conn: &Connect, calls: &mut u32) -> Result<HostInfo, PlatformError> {
        let name = match &self.host_name {
            Some(n) => n.clone(),
            None => {
                *calls += 1;
                conn.get_hostname().map_err(|e| self.err("virConnectGetHostname", e))?
            }
        };
        let node = conn.get_node_info().map_err(|e| self.err("virNodeGetInfo", e))?;
        *calls += 1;
        let free = conn.get_free_memory().ok();
        *calls += 1;
        let memory_bytes = node.memory.saturating_mul(1024);
        Ok(HostInfo {
            id: name.clone(),
            name,
            connection: HostConnection::Connected,
            maintenance: false,
            power: HostPower::On,
            health: Health::Green,
            cpu_cores: node.cpus,
            memory_bytes,
            cpu_used_mhz: None,
            memory_used_bytes: free.map(|f| memory_bytes.saturating_sub(f)),
            cluster: None,
            hardware: Some(node.model).filter(|m| !m.is_empty()),
        })
    }

    fn vm(&self, conn: &Connect, d: &Domain, host: &str, calls: &mut u32) -> Result<VmInfo, PlatformError> {
        let info = d.get_info().map_err(|e| self.err("virDomainGetInfo", e))?;
        let xml = d.get_xml_desc(0).map_err(|e| self.err("virDomainGetXMLDesc", e))?;
        *calls += 4;
        let name = d.get_name().map_err(|e| self.err("virDomainGetName", e))?;
        let parsed = parse_domain_xml(&xml).map_err(|detail| PlatformError::Malformed {
            endpoint: self.uri.clone(),
            call: format!("virDomainGetXMLDesc({name})"),
            detail,
        })?;
        let mut disks = Vec::new();
        for disk in parsed.disks {
            // Capacity from the disk's storage volume when libvirt knows it; 0 otherwise.
            let capacity = disk
                .source
                .as_deref()
                .and_then(|p| {
                    *calls += 1;
                    virt::storage_vol::StorageVol::lookup_by_path(conn, p).ok()
                })
                .and_then(|v| v.get_info().ok())
                .map(|i| i.capacity)
                .unwrap_or(0);
            disks.push(DiskInfo { label: disk.target, capacity_bytes: capacity, storage: disk.source });
        }
        Ok(VmInfo {
            id: self.uuid(d)?,
            name,
            host: Some(host.to_string()),
            power_state: domain_power(info.state),
            vcpus: info.nr_virt_cpu,
            memory_bytes: info.max_mem.saturating_mul(1024),
            disks,
            networks: parsed.nics,
            guest_os: parsed.os_type,
            tags: parsed.tags,
        })
    }

    fn pool(&self, p: &VirtPool) -> Result<StoragePool, PlatformError> {
        let info = p.get_info().map_err(|e| self.err("virStoragePoolGetInfo", e))?;
        Ok(StoragePool {
            id: p.get_uuid_string().map_err(|e| self.err("virStoragePoolGetUUIDString", e))?,
            name: p.get_name().map_err(|e| self.err("virStoragePoolGetName", e))?,
            capacity_bytes: info.capacity,
            free_bytes: info.available,
        })
    }

    fn snapshot_xml_info(&self, s: &DomainSnapshot) -> Result<Snapshot, PlatformError> {
        let name = s.get_name().map_err(|e| self.err("virDomainSnapshotGetName", e))?;
        let xml = s.get_xml_desc(0).map_err(|e| self.err("virDomainSnapshotGetXMLDesc", e))?;
        let (description, created) = parse_snapshot_xml(&xml).map_err(|detail| PlatformError::Malformed {
            endpoint: self.uri.clone(),
            call: format!("virDomainSnapshotGetXMLDesc({name})"),
            detail,
        })?;
        Ok(Snapshot {
            id: name.clone(),
            name,
            description,
            created,
            current: s.is_current(0).map_err(|e| self.err("virDomainSnapshotIsCurrent", e))?,
        })
    }
}

impl Hypervisor for LibvirtDriver {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Libvirt
    }

    fn endpoint(&self) -> &str {
        &self.uri
    }

    fn inventory(&self) -> Result<Inventory, PlatformError> {
        let conn = self.conn();
        let mut calls = 0;
        let host = self.host(&conn, &mut calls)?;
        let domains = conn.list_all_domains(0).map_err(|e| self.err("virConnectListAllDomains", e))?;
        calls += 1;
        let mut vms = Vec::new();
        for d in &domains {
            vms.push(self.vm(&conn, d, &host.name, &mut calls)?);
        }
        vms.sort_by(|a, b| a.name.cmp(&b.name));
        let pools = conn.list_all_storage_pools(0).map_err(|e| self.err("virConnectListAllStoragePools", e))?;
        calls += 1;
        let mut storage = Vec::new();
        for p in &pools {
            calls += 3;
            storage.push(self.pool(p)?);
        }
        Ok(Inventory { hosts: vec![host], vms, storage, round_trips: calls })
    }

    /// On starts a shut-off domain (or resumes a paused one), Off destroys (pulls the plug),
    /// Shutdown asks the guest (ACPI). Idempotent: a domain already there is left alone.
    fn power(&self, vm: &str, action: PowerAction) -> Result<Operation, PlatformError> {
        let conn = self.conn();
        let d = self.domain_required(&conn, vm)?;
        let uuid = self.uuid(&d)?;
        let now = self.state(&d)?;
        let target = action.target();
        let id = format!("domain:{uuid}:{}", target.as_str());
        let description = format!(
            "power {} {vm}",
            match action {
                PowerAction::On => "on",
                PowerAction::Off => "off",
                PowerAction::Shutdown => "shutdown",
            }
        );
        if now == target {
            return Ok(Operation::done(id, description, None));
        }
        match (action, now) {
            (PowerAction::On, PowerState::Suspended) => {
                d.resume().map(|_| ()).map_err(|e| self.err("virDomainResume", e))?
            }
            (PowerAction::On, _) => d.create().map(|_| ()).map_err(|e| self.err("virDomainCreate", e))?,
            (PowerAction::Off, _) => d.destroy().map_err(|e| self.err("virDomainDestroy", e))?,
            (PowerAction::Shutdown, _) => d.shutdown().map(|_| ()).map_err(|e| self.err("virDomainShutdown", e))?,
        }
        let state = if self.state(&d)? == target {
            OpState::Succeeded { result: None }
        } else {
            OpState::Running { progress: None }
        };
        Ok(Operation { id, description, state })
    }

    fn snapshot_create(&self, vm: &str, name: &str, description: &str) -> Result<Operation, PlatformError> {
        let conn = self.conn();
        let d = self.domain_required(&conn, vm)?;
        let uuid = self.uuid(&d)?;
        let xml = format!(
            "<domainsnapshot><name>{}</name><description>{}</description></domainsnapshot>",
            quick_xml::escape::escape(name),
            quick_xml::escape::escape(description)
        );
        let snap = DomainSnapshot::create_xml(&d, &xml, 0).map_err(|e| self.err("virDomainSnapshotCreateXML", e))?;
        let created = snap.get_name().map_err(|e| self.err("virDomainSnapshotGetName", e))?;
        Ok(Operation::done(format!("snapshot:{uuid}:{created}"), format!("snapshot {vm} as {name:?}"), Some(created)))
    }

    fn snapshot_list(&self, vm: &str) -> Result<Vec<Snapshot>, PlatformError> {
        let conn = self.conn();
        let d = self.domain_required(&conn, vm)?;
        let snaps = d.list_all_snapshots(0).map_err(|e| self.err("virDomainListAllSnapshots", e))?;
        let mut out = Vec::new();
        for s in &snaps {
            out.push(self.snapshot_xml_info(s)?);
        }
        // creationTime is whole seconds: the name breaks ties so the order is stable.
        out.sort_by(|a, b| {
            let key = |s: &Snapshot| s.created.as_deref().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
            key(a).cmp(&key(b)).then(a.name.cmp(&b.name))
        });
        for s in &mut out {
            s.created = s.created.as_deref().and_then(rfc3339_from_unix);
        }
        Ok(out)
    }

    fn snapshot_revert(&self, vm: &str, snapshot: &str) -> Result<Operation, PlatformError> {
        let conn = self.conn();
        let d = self.domain_required(&conn, vm)?;
        let uuid = self.uuid(&d)?;
        let s = match DomainSnapshot::lookup_by_name(&d, snapshot, 0) {
            Ok(s) => s,
            Err(e) if is_not_found(&e) => return Err(self.not_found("snapshot", snapshot)),
            Err(e) => return Err(self.err("virDomainSnapshotLookupByName", e)),
        };
        s.revert(0).map_err(|e| self.err("virDomainRevertToSnapshot", e))?;
        Ok(Operation::done(format!("snapshot:{uuid}:{snapshot}"), format!("revert {vm} to {snapshot}"), None))
    }

    fn snapshot_delete(&self, vm: &str, snapshot: &str) -> Result<Operation, PlatformError> {
        let conn = self.conn();
        let d = self.domain_required(&conn, vm)?;
        let uuid = self.uuid(&d)?;
        let id = format!("snapshot:{uuid}:{snapshot}");
        let description = format!("delete snapshot {snapshot} of {vm}");
        match DomainSnapshot::lookup_by_name(&d, snapshot, 0) {
            // Flags 0: the snapshot's children are re-parented, not deleted.
            Ok(s) => s.delete(0).map_err(|e| self.err("virDomainSnapshotDelete", e))?,
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(self.err("virDomainSnapshotLookupByName", e)),
        }
        Ok(Operation::done(id, description, None))
    }

    /// Defines a domain whose disk is the image or volume path and starts it. Refuses a name
    /// that already exists.
    fn create_instance(&self, spec: &CreateSpec) -> Result<Operation, PlatformError> {
        // A NoCloud seed disk would carry it; this driver does not build one.
        spec.refuse_user_data("libvirt")?;
        let conn = self.conn();
        if spec.name.trim().is_empty() {
            return Err(PlatformError::Config("an instance needs a name".into()));
        }
        if let Ok(existing) = Domain::lookup_by_name(&conn, &spec.name) {
            return Err(PlatformError::Refused {
                endpoint: self.uri.clone(),
                call: "virDomainDefineXML".into(),
                message: format!("a domain named {:?} already exists ({})", spec.name, self.uuid(&existing)?),
            });
        }
        let driver = conn.get_type().map_err(|e| self.err("virConnectGetType", e))?;
        let xml = domain_xml(spec, &driver);
        let d = Domain::define_xml(&conn, &xml).map_err(|e| self.err("virDomainDefineXML", e))?;
        let uuid = self.uuid(&d)?;
        if let Err(e) = d.create() {
            // Leave nothing half-made: a defined but unstartable domain would block a retry.
            let _ = d.undefine();
            return Err(self.err("virDomainCreate", e));
        }
        Ok(Operation::done(format!("domain:{uuid}:on"), format!("create instance {}", spec.name), Some(uuid)))
    }

    /// Destroys and undefines the domain (its snapshot metadata too; disk files are kept).
    fn delete_instance(&self, vm: &str) -> Result<Operation, PlatformError> {
        let conn = self.conn();
        let description = format!("delete instance {vm}");
        let Some(d) = self.domain(&conn, vm)? else {
            return Ok(Operation::done(format!("domain:{vm}:deleted"), description, None));
        };
        let uuid = self.uuid(&d)?;
        if d.is_active().map_err(|e| self.err("virDomainIsActive", e))? {
            d.destroy().map_err(|e| self.err("virDomainDestroy", e))?;
        }
        d.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
            .map_err(|e| self.err("virDomainUndefineFlags", e))?;
        Ok(Operation::done(format!("domain:{uuid}:deleted"), description, None))
    }

    fn poll(&self, op: &Operation) -> Result<Operation, PlatformError> {
        let mut parts = op.id.splitn(3, ':');
        let (Some(kind), Some(id), Some(target)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(self.not_found("operation", &op.id));
        };
        let state = match kind {
            // Snapshot calls are synchronous: an operation for one ended when it was returned.
            "snapshot" => op.state.clone(),
            "domain" => {
                let conn = self.conn();
                match (self.domain(&conn, id)?, target) {
                    (None, "deleted") => OpState::Succeeded { result: None },
                    (None, _) => OpState::Failed { message: format!("domain {id} no longer exists") },
                    (Some(d), t) if self.state(&d)?.as_str() == t => {
                        OpState::Succeeded { result: Some(id.to_string()) }
                    }
                    (Some(_), _) => OpState::Running { progress: None },
                }
            }
            _ => return Err(self.not_found("operation", &op.id)),
        };
        Ok(Operation { id: op.id.clone(), description: op.description.clone(), state })
    }
}

/// A minimal domain: memory, vCPUs, the disk, one NIC on the named network, tags.
fn domain_xml(spec: &CreateSpec, driver: &str) -> String {
    use quick_xml::escape::escape;
    // The test driver wants type 'test'; for QEMU we ask for KVM acceleration.
    let kind = match driver.to_ascii_lowercase().as_str() {
        "test" => "test",
        "qemu" => "kvm",
        other => return format!("<!-- unsupported driver {other} -->"),
    };
    let path = match &spec.source {
        InstanceSource::Image(p) | InstanceSource::Volume(p) => p,
    };
    let format = if path.ends_with(".qcow2") { "qcow2" } else { "raw" };
    let nic = spec
        .network
        .as_deref()
        .map(|n| {
            format!("<interface type='network'><source network='{}'/><model type='virtio'/></interface>", escape(n))
        })
        .unwrap_or_default();
    let tags: String =
        spec.tags.iter().map(|(k, v)| format!("<mg:tag key='{}' value='{}'/>", escape(k), escape(v))).collect();
    format!(
        "<domain type='{kind}'><name>{name}</name><memory unit='KiB'>{mem}</memory><vcpu>{vcpus}</vcpu>\
         <metadata><mg:tags xmlns:mg='{TAGS_NS}'>{tags}</mg:tags></metadata>\
         <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>\
         <devices><disk type='file' device='disk'><driver name='qemu' type='{format}'/><source file='{path}'/>\
         <target dev='vda' bus='virtio'/></disk>{nic}</devices></domain>",
        name = escape(&spec.name),
        mem = spec.memory_bytes.div_ceil(1024).max(1024),
        vcpus = spec.vcpus.max(1),
        path = escape(path.as_str()),
    )
}

#[derive(Debug, Default, PartialEq)]
struct DiskXml {
    target: String,
    source: Option<String>,
}

#[derive(Debug, Default)]
struct DomainXml {
    os_type: Option<String>,
    disks: Vec<DiskXml>,
    nics: Vec<NicInfo>,
    tags: BTreeMap<String, String>,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name.as_bytes())
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// The parts of a domain's XML the inventory reports. Only `device='disk'` disks count
/// (not CD-ROMs); tags are read from our metadata namespace only.
fn parse_domain_xml(xml: &str) -> Result<DomainXml, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = DomainXml::default();
    let mut path: Vec<String> = Vec::new();
    let mut disk: Option<DiskXml> = None;
    let mut nic: Option<NicInfo> = None;
    let mut in_tags = false;
    loop {
        let ev = reader.read_event().map_err(|e| format!("domain XML at byte {}: {e}", reader.buffer_position()))?;
        let (start, empty) = match &ev {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
            let parent = path.last().map(String::as_str);
            match (parent, local.as_str()) {
                (Some("devices"), "disk") if attr(&e, "device").as_deref().unwrap_or("disk") == "disk" => {
                    disk = Some(DiskXml::default());
                }
                (Some("disk"), "source") => {
                    if let Some(d) = disk.as_mut() {
                        d.source = attr(&e, "file")
                            .or_else(|| attr(&e, "dev"))
                            .or_else(|| Some(format!("{}/{}", attr(&e, "pool")?, attr(&e, "volume")?)));
                    }
                }
                (Some("disk"), "target") => {
                    if let Some(d) = disk.as_mut() {
                        d.target = attr(&e, "dev").unwrap_or_default();
                    }
                }
                (Some("devices"), "interface") => {
                    nic = Some(NicInfo { network: String::new(), mac: None, addresses: Vec::new() });
                }
                (Some("interface"), "source") => {
                    if let Some(n) = nic.as_mut() {
                        n.network = attr(&e, "network")
                            .or_else(|| attr(&e, "bridge"))
                            .or_else(|| attr(&e, "dev"))
                            .unwrap_or_default();
                    }
                }
                (Some("interface"), "mac") => {
                    if let Some(n) = nic.as_mut() {
                        n.mac = attr(&e, "address");
                    }
                }
                (Some("metadata"), "tags") => {
                    // Only our namespace counts; its declaration sits on this element.
                    in_tags = e.attributes().flatten().any(|a| a.unescape_value().is_ok_and(|v| v == TAGS_NS));
                }
                (Some("tags"), "tag") if in_tags => {
                    if let (Some(k), Some(v)) = (attr(&e, "key"), attr(&e, "value")) {
                        out.tags.insert(k, v);
                    }
                }
                _ => {}
            }
            if empty {
                close(&local, &mut disk, &mut nic, &mut out);
            } else {
                path.push(local);
            }
            continue;
        }
        match ev {
            Event::Text(t) if path.last().map(String::as_str) == Some("type") && path.iter().any(|p| p == "os") => {
                let text = t.decode().map_err(|e| format!("domain XML: {e}"))?.trim().to_string();
                if !text.is_empty() {
                    out.os_type = Some(text);
                }
            }
            Event::End(_) => {
                if let Some(local) = path.pop() {
                    if local == "tags" {
                        in_tags = false;
                    }
                    close(&local, &mut disk, &mut nic, &mut out);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

fn close(local: &str, disk: &mut Option<DiskXml>, nic: &mut Option<NicInfo>, out: &mut DomainXml) {
    match local {
        "disk" => out.disks.extend(disk.take()),
        "interface" => out.nics.extend(nic.take()),
        _ => {}
    }
}

/// Description and creation time (Unix seconds, as text) of a snapshot's XML.
fn parse_snapshot_xml(xml: &str) -> Result<(Option<String>, Option<String>), String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let (mut description, mut created) = (None, None);
    loop {
        match reader.read_event().map_err(|e| format!("snapshot XML at byte {}: {e}", reader.buffer_position()))? {
            Event::Start(e) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.decode().map_err(|e| format!("snapshot XML: {e}"))?),
            // quick-xml hands entity references (`&amp;`) over separately from the text.
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| format!("snapshot XML: {e}"))?;
                let entity = format!("&{name};");
                text.push_str(&quick_xml::escape::unescape(&entity).map(|c| c.into_owned()).unwrap_or(entity));
            }
            Event::End(_) => {
                if path.len() == 2 {
                    let value = text.trim().to_string();
                    match path[1].as_str() {
                        "description" if !value.is_empty() => description = Some(value),
                        "creationTime" => created = Some(value),
                        _ => {}
                    }
                }
                path.pop();
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok((description, created))
}

fn rfc3339_from_unix(secs: &str) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(secs.parse().ok()?).ok()?;
    t.format(&time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_xml_round_trips_through_the_parser() {
        let spec = CreateSpec {
            name: "web<1>".into(),
            source: InstanceSource::Image("/var/lib/images/web.qcow2".into()),
            vcpus: 2,
            memory_bytes: 1 << 30,
            disk_bytes: 0,
            network: Some("default".into()),
            tags: [("system".to_string(), "payroll & hr".to_string())].into_iter().collect(),
            user_data: None,
        };
        let xml = domain_xml(&spec, "TEST");
        let parsed = parse_domain_xml(&xml).expect("our own XML parses");
        assert_eq!(
            parsed.disks,
            vec![DiskXml { target: "vda".into(), source: Some("/var/lib/images/web.qcow2".into()) }]
        );
        assert_eq!(parsed.nics[0].network, "default");
        assert_eq!(parsed.tags["system"], "payroll & hr");
        assert_eq!(parsed.os_type.as_deref(), Some("hvm"));
    }

    #[test]
    fn foreign_metadata_and_cdroms_are_ignored() {
        let xml = r#"<domain><metadata><x:tags xmlns:x="urn:other"><x:tag key="a" value="b"/></x:tags></metadata>
          <devices><disk type='file' device='cdrom'><source file='/iso'/><target dev='hdc'/></disk>
          <disk type='block' device='disk'><source dev='/dev/sdb'/><target dev='vdb'/></disk>
          <interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/></interface></devices></domain>"#;
        let p = parse_domain_xml(xml).expect("parses");
        assert!(p.tags.is_empty());
        assert_eq!(p.disks.len(), 1);
        assert_eq!(p.disks[0].source.as_deref(), Some("/dev/sdb"));
        assert_eq!(p.nics[0].mac.as_deref(), Some("52:54:00:00:00:01"));
        assert!(parse_domain_xml("<domain><devices></domain>").is_err());
    }

    #[test]
    fn snapshot_xml() {
        let (d, c) = parse_snapshot_xml(
            "<domainsnapshot><name>s1</name><description>before &amp; after</description><creationTime>1700000000</creationTime></domainsnapshot>",
        )
        .expect("parses");
        assert_eq!(d.as_deref(), Some("before & after"));
        assert_eq!(c.as_deref().and_then(rfc3339_from_unix).as_deref(), Some("2023-11-14T22:13:20Z"));
    }
}
