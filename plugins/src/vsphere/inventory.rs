//! The bulk inventory read: one PropertyCollector request that walks the whole tree from the
//! root folder, plus one continuation per page on servers that page, and the mapping of what
//! comes back onto [`Inventory`].
//!
//! The walk uses TraversalSpecs rather than ContainerViews: no session objects to create and
//! destroy, so a sync is one round trip on a small site. The traversal reaches VMs through
//! folders and through vApps (whose VMs are not in any folder), hosts through compute
//! resources, datastores and networks through their datacenter folders.

use std::collections::{BTreeMap, HashMap};

use crate::hypervisor::{
    DiskInfo, Health, HostConnection, HostInfo, HostPower, NicInfo, PowerState, StoragePool, VmInfo,
};

use super::ObjectContent;
use super::soap::{Moref, el};
use super::xml::Node;

/// VM properties read; each is optional on the wire (a template or an inaccessible VM lacks
/// `config`, a VM without tools lacks `guest.net`).
const VM_PATHS: &[&str] = &[
    "name",
    "runtime.host",
    "runtime.powerState",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "config.guestFullName",
    "config.guestId",
    "guest.net",
    "customValue",
];
const HOST_PATHS: &[&str] = &[
    "name",
    "parent",
    "runtime.connectionState",
    "runtime.inMaintenanceMode",
    "runtime.powerState",
    "overallStatus",
    "summary.hardware",
    "summary.quickStats",
];

fn prop_set(kind: &str, paths: &[&str]) -> String {
    let paths: String = paths.iter().map(|p| el("pathSet", p)).collect();
    format!("<propSet>{}{paths}</propSet>", el("type", kind))
}

fn traversal(name: &str, kind: &str, path: &str, next: &[&str]) -> String {
    let next: String = next.iter().map(|n| format!("<selectSet>{}</selectSet>", el("name", n))).collect();
    format!(
        r#"<selectSet xsi:type="TraversalSpec">{}{}{}<skip>false</skip>{next}</selectSet>"#,
        el("name", name),
        el("type", kind),
        el("path", path)
    )
}

/// The `specSet` elements of the inventory's RetrievePropertiesEx.
pub fn spec_set(root_folder: &Moref, custom_fields_manager: Option<&Moref>) -> String {
    let from_folder = ["f2c", "dc2vm", "dc2h", "dc2ds", "dc2net", "cr2h", "rp2rp", "rp2vm"];
    let selects = [
        traversal("f2c", "Folder", "childEntity", &from_folder),
        traversal("dc2vm", "Datacenter", "vmFolder", &["f2c"]),
        traversal("dc2h", "Datacenter", "hostFolder", &["f2c"]),
        traversal("dc2ds", "Datacenter", "datastoreFolder", &["f2c"]),
        traversal("dc2net", "Datacenter", "networkFolder", &["f2c"]),
        traversal("cr2h", "ComputeResource", "host", &[]),
        // vApps are ResourcePools in a folder; their VMs and child vApps hang off them.
        traversal("rp2rp", "ResourcePool", "resourcePool", &["rp2rp", "rp2vm"]),
        traversal("rp2vm", "ResourcePool", "vm", &[]),
    ]
    .concat();
    let mut specs = format!(
        "<specSet>{}{}{}{}{}<objectSet>{}<skip>true</skip>{selects}</objectSet></specSet>",
        prop_set("VirtualMachine", VM_PATHS),
        prop_set("HostSystem", HOST_PATHS),
        prop_set("Datastore", &["summary"]),
        prop_set("ClusterComputeResource", &["name"]),
        prop_set("Network", &["name"]),
        root_folder.xml("obj"),
    );
    if let Some(cfm) = custom_fields_manager {
        specs.push_str(&format!(
            "<specSet>{}<objectSet>{}<skip>false</skip></objectSet></specSet>",
            prop_set("CustomFieldsManager", &["field"]),
            cfm.xml("obj")
        ));
    }
    specs
}

/// Everything the walk returned, grouped so VMs can name their host, datastores and networks.
pub fn build(objects: &[ObjectContent]) -> (Vec<HostInfo>, Vec<VmInfo>, Vec<StoragePool>) {
    let mut names: HashMap<&str, &str> = HashMap::new(); // moid → name, for every named object
    let mut clusters: HashMap<&str, &str> = HashMap::new();
    let mut fields: HashMap<String, String> = HashMap::new();
    for o in objects {
        // Datastores are asked for their summary only; their name lives in it.
        let name = o.text("name").or_else(|| o.props.get("summary").and_then(|s| s.text_at(&["name"])));
        if let Some(name) = name {
            names.insert(&o.obj.value, name);
            if o.obj.kind == "ClusterComputeResource" {
                clusters.insert(&o.obj.value, name);
            }
        }
        if let Some(defs) = o.props.get("field") {
            for def in &defs.children {
                if let (Some(key), Some(name)) = (def.text_at(&["key"]), def.text_at(&["name"])) {
                    fields.insert(key.to_string(), name.to_string());
                }
            }
        }
    }
    let mut hosts = Vec::new();
    let mut vms = Vec::new();
    let mut storage = Vec::new();
    for o in objects {
        match o.obj.kind.as_str() {
            "HostSystem" => hosts.push(host(o, &clusters)),
            "VirtualMachine" => vms.push(vm(o, &names, &fields)),
            "Datastore" => storage.push(datastore(o)),
            _ => {}
        }
    }
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    vms.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    storage.sort_by(|a, b| a.name.cmp(&b.name));
    (hosts, vms, storage)
}

fn host(o: &ObjectContent, clusters: &HashMap<&str, &str>) -> HostInfo {
    let hw = o.props.get("summary.hardware");
    let stats = o.props.get("summary.quickStats");
    let cluster = o
        .props
        .get("parent")
        .and_then(Moref::from_node)
        .filter(|p| p.kind == "ClusterComputeResource")
        .and_then(|p| clusters.get(p.value.as_str()).map(|n| n.to_string()));
    let hardware = hw.and_then(|h| {
        let parts: Vec<&str> = [h.text_at(&["vendor"]), h.text_at(&["model"])].into_iter().flatten().collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    HostInfo {
        id: o.obj.value.clone(),
        name: o.text("name").unwrap_or(&o.obj.value).to_string(),
        connection: match o.text("runtime.connectionState") {
            Some("connected") => HostConnection::Connected,
            Some("disconnected") => HostConnection::Disconnected,
            Some("notResponding") => HostConnection::NotResponding,
            _ => HostConnection::Unknown,
        },
        maintenance: o.text("runtime.inMaintenanceMode") == Some("true"),
        power: match o.text("runtime.powerState") {
            Some("poweredOn") => HostPower::On,
            Some("poweredOff") => HostPower::Off,
            Some("standBy") => HostPower::Standby,
            _ => HostPower::Unknown,
        },
        health: match o.text("overallStatus") {
            Some("green") => Health::Green,
            Some("yellow") => Health::Yellow,
            Some("red") => Health::Red,
            _ => Health::Gray,
        },
        cpu_cores: hw.and_then(|h| h.num_at(&["numCpuCores"])).unwrap_or(0),
        memory_bytes: hw.and_then(|h| h.num_at(&["memorySize"])).unwrap_or(0),
        cpu_used_mhz: stats.and_then(|s| s.num_at(&["overallCpuUsage"])),
        memory_used_bytes: stats.and_then(|s| s.num_at::<u64>(&["overallMemoryUsage"])).map(|mb| mb * 1024 * 1024),
        cluster,
        hardware,
    }
}

fn datastore(o: &ObjectContent) -> StoragePool {
    let summary = o.props.get("summary");
    StoragePool {
        id: o.obj.value.clone(),
        name: summary.and_then(|s| s.text_at(&["name"])).unwrap_or(&o.obj.value).to_string(),
        capacity_bytes: summary.and_then(|s| s.num_at(&["capacity"])).unwrap_or(0),
        free_bytes: summary.and_then(|s| s.num_at(&["freeSpace"])).unwrap_or(0),
    }
}

fn vm(o: &ObjectContent, names: &HashMap<&str, &str>, fields: &HashMap<String, String>) -> VmInfo {
    let host = o
        .props
        .get("runtime.host")
        .and_then(Moref::from_node)
        .map(|h| names.get(h.value.as_str()).map(|n| n.to_string()).unwrap_or(h.value));
    let mut disks = Vec::new();
    let mut networks = Vec::new();
    if let Some(devices) = o.props.get("config.hardware.device") {
        for dev in &devices.children {
            if dev.xsi_type.as_deref() == Some("VirtualDisk") {
                disks.push(disk(dev, names));
            } else if dev.child("macAddress").is_some() || dev.child("addressType").is_some() {
                networks.push((dev.text_at(&["key"]).map(str::to_string), nic(dev, names)));
            }
        }
    }
    // Guest addresses come from VMware Tools, per guest NIC; match them to devices by MAC
    // (or device key), keep the rest as NICs of their own so no address is lost.
    if let Some(guest) = o.props.get("guest.net") {
        for g in &guest.children {
            let addresses: Vec<String> =
                g.children_named("ipAddress").map(|a| a.value().to_string()).filter(|a| !a.is_empty()).collect();
            let mac = g.text_at(&["macAddress"]).map(str::to_ascii_lowercase);
            let key = g.text_at(&["deviceConfigId"]);
            let found = networks.iter_mut().find(|(k, n)| {
                (mac.is_some() && n.mac.as_deref().map(str::to_ascii_lowercase) == mac)
                    || (key.is_some() && k.as_deref() == key)
            });
            match found {
                Some((_, n)) => n.addresses.extend(addresses),
                None if !addresses.is_empty() => networks.push((
                    None,
                    NicInfo { network: g.text_at(&["network"]).unwrap_or_default().to_string(), mac, addresses },
                )),
                None => {}
            }
        }
    }
    let mut tags = BTreeMap::new();
    if let Some(values) = o.props.get("customValue") {
        for v in &values.children {
            if let Some(key) = v.text_at(&["key"]) {
                let name = fields.get(key).cloned().unwrap_or_else(|| format!("custom-field-{key}"));
                tags.insert(name, v.path(&["value"]).map(|n| n.value().to_string()).unwrap_or_default());
            }
        }
    }
    VmInfo {
        id: o.obj.value.clone(),
        name: o.text("name").unwrap_or(&o.obj.value).to_string(),
        host,
        power_state: power_state(o.text("runtime.powerState")),
        vcpus: o.num("config.hardware.numCPU").unwrap_or(0),
        memory_bytes: o.num::<u64>("config.hardware.memoryMB").unwrap_or(0) * 1024 * 1024,
        disks,
        networks: networks.into_iter().map(|(_, n)| n).collect(),
        guest_os: o.text("config.guestFullName").or_else(|| o.text("config.guestId")).map(str::to_string),
        tags,
    }
}

pub fn power_state(s: Option<&str>) -> PowerState {
    match s {
        Some("poweredOn") => PowerState::On,
        Some("poweredOff") => PowerState::Off,
        Some("suspended") => PowerState::Suspended,
        _ => PowerState::Unknown,
    }
}

fn disk(dev: &Node, names: &HashMap<&str, &str>) -> DiskInfo {
    let capacity_bytes = dev
        .num_at::<u64>(&["capacityInBytes"])
        .or_else(|| dev.num_at::<u64>(&["capacityInKB"]).map(|kb| kb * 1024))
        .unwrap_or(0);
    let storage = dev
        .path(&["backing", "datastore"])
        .and_then(Moref::from_node)
        .map(|d| names.get(d.value.as_str()).map(|n| n.to_string()).unwrap_or(d.value))
        .or_else(|| {
            // "[datastore1] vm/vm.vmdk"
            let file = dev.text_at(&["backing", "fileName"])?;
            let inner = file.strip_prefix('[')?.split(']').next()?;
            Some(inner.to_string())
        });
    DiskInfo { label: dev.text_at(&["deviceInfo", "label"]).unwrap_or("disk").to_string(), capacity_bytes, storage }
}

fn nic(dev: &Node, names: &HashMap<&str, &str>) -> NicInfo {
    let backing = dev.child("backing");
    let network = backing
        .and_then(|b| {
            b.text_at(&["deviceName"]).map(str::to_string).or_else(|| {
                // A distributed port group: its key is the port group's moid.
                let id = b
                    .child("network")
                    .and_then(Moref::from_node)
                    .map(|m| m.value)
                    .or_else(|| b.text_at(&["port", "portgroupKey"]).map(str::to_string))
                    .or_else(|| b.text_at(&["opaqueNetworkId"]).map(str::to_string))?;
                Some(names.get(id.as_str()).map(|n| n.to_string()).unwrap_or(id))
            })
        })
        .unwrap_or_default();
    NicInfo { network, mac: dev.text_at(&["macAddress"]).map(str::to_string), addresses: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::xml::parse;

    /// A RetrievePropertiesEx answer as vCenter shapes it (trimmed to what is read).
    const ANSWER: &str = r#"<returnval xmlns="urn:vim25" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
      <objects><obj type="ClusterComputeResource">domain-c7</obj><propSet><name>name</name><val xsi:type="xsd:string">prod</val></propSet></objects>
      <objects><obj type="HostSystem">host-21</obj>
        <propSet><name>name</name><val xsi:type="xsd:string">esx1.example</val></propSet>
        <propSet><name>parent</name><val xsi:type="ManagedObjectReference" type="ClusterComputeResource">domain-c7</val></propSet>
        <propSet><name>runtime.connectionState</name><val xsi:type="HostSystemConnectionState">notResponding</val></propSet>
        <propSet><name>runtime.inMaintenanceMode</name><val xsi:type="xsd:boolean">true</val></propSet>
        <propSet><name>summary.hardware</name><val xsi:type="HostHardwareSummary"><vendor>Dell Inc.</vendor><model>R650</model><memorySize>68719476736</memorySize><numCpuCores>32</numCpuCores></val></propSet>
        <propSet><name>summary.quickStats</name><val xsi:type="HostListSummaryQuickStats"><overallCpuUsage>1200</overallCpuUsage><overallMemoryUsage>2048</overallMemoryUsage></val></propSet>
      </objects>
      <objects><obj type="Datastore">datastore-11</obj><propSet><name>summary</name><val xsi:type="DatastoreSummary"><name>ssd-01</name><capacity>1000</capacity><freeSpace>400</freeSpace></val></propSet></objects>
      <objects><obj type="DistributedVirtualPortgroup">dvportgroup-40</obj><propSet><name>name</name><val xsi:type="xsd:string">vlan-40</val></propSet></objects>
      <objects><obj type="CustomFieldsManager">CustomFieldsManager</obj><propSet><name>field</name><val xsi:type="ArrayOfCustomFieldDef">
        <CustomFieldDef><key>101</key><name>system</name></CustomFieldDef></val></propSet></objects>
      <objects><obj type="VirtualMachine">vm-63</obj>
        <propSet><name>name</name><val xsi:type="xsd:string">db &amp; cache</val></propSet>
        <propSet><name>runtime.host</name><val xsi:type="ManagedObjectReference" type="HostSystem">host-21</val></propSet>
        <propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">suspended</val></propSet>
        <propSet><name>config.hardware.numCPU</name><val xsi:type="xsd:int">4</val></propSet>
        <propSet><name>config.hardware.memoryMB</name><val xsi:type="xsd:int">8192</val></propSet>
        <propSet><name>config.guestFullName</name><val xsi:type="xsd:string">Red Hat Enterprise Linux 9 (64-bit)</val></propSet>
        <propSet><name>config.hardware.device</name><val xsi:type="ArrayOfVirtualDevice">
          <VirtualDevice xsi:type="VirtualDisk"><key>2000</key><deviceInfo><label>Hard disk 1</label></deviceInfo>
            <backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ssd-01] db/db.vmdk</fileName><datastore type="Datastore">datastore-11</datastore></backing>
            <capacityInKB>2048</capacityInKB><capacityInBytes>2097152</capacityInBytes></VirtualDevice>
          <VirtualDevice xsi:type="VirtualDisk"><key>2001</key><deviceInfo><label>Hard disk 2</label></deviceInfo>
            <backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[nfs-2] db/db_1.vmdk</fileName></backing><capacityInKB>10</capacityInKB></VirtualDevice>
          <VirtualDevice xsi:type="VirtualVmxnet3"><key>4000</key><backing xsi:type="VirtualEthernetCardDistributedVirtualPortBackingInfo">
            <port><switchUuid>50 1e</switchUuid><portgroupKey>dvportgroup-40</portgroupKey></port></backing><addressType>assigned</addressType><macAddress>00:50:56:AA:BB:CC</macAddress></VirtualDevice>
          <VirtualDevice xsi:type="VirtualE1000"><key>4001</key><backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>VM Network</deviceName></backing><macAddress>00:50:56:00:00:01</macAddress></VirtualDevice>
          <VirtualDevice xsi:type="VirtualCdrom"><key>3000</key></VirtualDevice>
        </val></propSet>
        <propSet><name>guest.net</name><val xsi:type="ArrayOfGuestNicInfo">
          <GuestNicInfo><network>vlan-40</network><ipAddress>10.0.40.5</ipAddress><ipAddress>fe80::1</ipAddress><macAddress>00:50:56:aa:bb:cc</macAddress><deviceConfigId>4000</deviceConfigId></GuestNicInfo>
          <GuestNicInfo><network>docker0</network><ipAddress>172.17.0.1</ipAddress><macAddress>02:42:00:00:00:01</macAddress><deviceConfigId>-1</deviceConfigId></GuestNicInfo>
        </val></propSet>
        <propSet><name>customValue</name><val xsi:type="ArrayOfCustomFieldValue">
          <CustomFieldValue xsi:type="CustomFieldStringValue"><key>101</key><value>qlvbdh</value></CustomFieldValue>
          <CustomFieldValue xsi:type="CustomFieldStringValue"><key>999</key><value>x</value></CustomFieldValue></val></propSet>
      </objects>
      <objects><obj type="VirtualMachine">vm-64</obj><propSet><name>name</name><val xsi:type="xsd:string">inaccessible</val></propSet></objects>
    </returnval>"#;

    #[test]
    fn a_vcenter_answer_maps_onto_hosts_vms_and_storage() {
        let root = parse(ANSWER).expect("fixture parses");
        let objects: Vec<ObjectContent> =
            root.children_named("objects").map(|o| ObjectContent::from_node(o).expect("object")).collect();
        let (hosts, vms, storage) = build(&objects);

        assert_eq!(hosts.len(), 1);
        let h = &hosts[0];
        assert_eq!((h.id.as_str(), h.name.as_str(), h.cluster.as_deref()), ("host-21", "esx1.example", Some("prod")));
        assert_eq!(
            (h.connection, h.maintenance, h.power, h.health),
            (HostConnection::NotResponding, true, HostPower::Unknown, Health::Gray)
        );
        assert_eq!(
            (h.cpu_cores, h.memory_bytes, h.cpu_used_mhz, h.memory_used_bytes),
            (32, 68719476736, Some(1200), Some(2048 << 20))
        );
        assert_eq!(h.hardware.as_deref(), Some("Dell Inc. R650"));

        assert_eq!(
            storage,
            vec![StoragePool {
                id: "datastore-11".into(),
                name: "ssd-01".into(),
                capacity_bytes: 1000,
                free_bytes: 400
            }]
        );

        assert_eq!(vms.len(), 2);
        let vm = vms.iter().find(|v| v.id == "vm-63").expect("vm-63");
        assert_eq!(vm.name, "db & cache");
        assert_eq!(
            (vm.host.as_deref(), vm.power_state, vm.vcpus, vm.memory_bytes),
            (Some("esx1.example"), PowerState::Suspended, 4, 8192 << 20)
        );
        assert_eq!(vm.guest_os.as_deref(), Some("Red Hat Enterprise Linux 9 (64-bit)"));
        let disks: Vec<(&str, u64, Option<&str>)> =
            vm.disks.iter().map(|d| (d.label.as_str(), d.capacity_bytes, d.storage.as_deref())).collect();
        assert_eq!(disks, vec![("Hard disk 1", 2097152, Some("ssd-01")), ("Hard disk 2", 10240, Some("nfs-2"))]);
        let nics: Vec<(&str, Option<&str>, Vec<&str>)> = vm
            .networks
            .iter()
            .map(|n| (n.network.as_str(), n.mac.as_deref(), n.addresses.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            nics,
            vec![
                ("vlan-40", Some("00:50:56:AA:BB:CC"), vec!["10.0.40.5", "fe80::1"]),
                ("VM Network", Some("00:50:56:00:00:01"), vec![]),
                ("docker0", Some("02:42:00:00:00:01"), vec!["172.17.0.1"]),
            ]
        );
        assert_eq!(vm.tags.get("system").map(String::as_str), Some("qlvbdh"));
        assert_eq!(vm.tags.get("custom-field-999").map(String::as_str), Some("x"));

        // A VM the server could not read fully is listed with what is known.
        let bare = vms.iter().find(|v| v.id == "vm-64").expect("vm-64");
        assert_eq!((bare.power_state, bare.vcpus, bare.disks.len()), (PowerState::Unknown, 0, 0));
    }

    #[test]
    fn the_walk_reaches_vapps_and_asks_custom_fields_only_when_the_server_has_them() {
        let root = Moref::new("Folder", "group-d1");
        let with = spec_set(&root, Some(&Moref::new("CustomFieldsManager", "CustomFieldsManager")));
        assert!(with.contains("<path>vm</path>") && with.contains("<path>childEntity</path>"));
        assert_eq!(with.matches("<specSet>").count(), 2);
        assert_eq!(spec_set(&root, None).matches("<specSet>").count(), 1);
        // The spec is well-formed XML once wrapped with the xsi namespace.
        let wrapped = format!(r#"<x xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{with}</x>"#);
        assert!(parse(&wrapped).is_ok());
    }
}
