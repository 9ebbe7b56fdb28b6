//! The libvirt driver against libvirt's own test driver (in-process, no daemon):
//! `test:///default` and custom node descriptions written here.
//!
//! `test:///default` is one state shared by every open connection in the process (and reset
//! when the last one closes), so the tests that use it take [`DEFAULT`] first and drop their
//! driver before releasing it. A custom node file gives each connection its own state.
#![cfg(feature = "libvirt")]

use std::collections::BTreeMap;
use std::path::Path;

use mangrove_plugins::PlatformError;
use mangrove_plugins::hypervisor::{CreateSpec, Hypervisor, InstanceSource, OpState, PowerAction, PowerState};
use mangrove_plugins::libvirt::{LibvirtDriver, TAGS_NS};

static DEFAULT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn default_driver() -> (std::sync::MutexGuard<'static, ()>, LibvirtDriver) {
    let guard = DEFAULT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    (guard, LibvirtDriver::connect("test:///default").expect("test driver"))
}

fn succeeded(op: &mangrove_plugins::Operation) -> bool {
    matches!(op.state, OpState::Succeeded { .. })
}

fn power_of(d: &LibvirtDriver, name: &str) -> PowerState {
    let inv = d.inventory().expect("inventory");
    inv.vms.iter().find(|v| v.name == name).map(|v| v.power_state).unwrap_or(PowerState::Unknown)
}

/// A node with `cpus`, two domains (one running with tags, one shut off) and a pool.
fn write_node(dir: &Path, file: &str, prefix: &str, cpus: u32) -> String {
    let uuid_db = format!("{cpus:08x}-0000-4000-8000-000000000001");
    let xml = format!(
        r#"<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><active>{cpus}</active><max>{cpus}</max>
       <nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores><threads>1</threads></cpu>
  <memory>67108864</memory>
  <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
    <name>{prefix}-db</name>
    <uuid>{uuid_db}</uuid>
    <memory unit="MiB">4096</memory>
    <vcpu>4</vcpu>
    <metadata><mg:tags xmlns:mg="{TAGS_NS}"><mg:tag key="system" value="payroll"/></mg:tags></metadata>
    <os><type>hvm</type></os>
    <devices>
      <disk type="file" device="disk"><source file="/var/lib/images/{prefix}-db.img"/><target dev="vda"/></disk>
      <disk type="file" device="disk"><source file="/var/lib/images/{prefix}-data.img"/><target dev="vdb"/></disk>
      <interface type="network"><mac address="52:54:00:00:00:11"/><source network="default"/></interface>
    </devices>
  </domain>
  <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
    <name>{prefix}-web</name>
    <memory unit="MiB">1024</memory>
    <vcpu>1</vcpu>
    <os><type>hvm</type></os>
    <devices>
      <disk type="file" device="disk"><source file="/var/lib/images/{prefix}-web.img"/><target dev="vda"/></disk>
    </devices>
    <test:runstate>5</test:runstate>
  </domain>
  <pool type="dir">
    <name>{prefix}-images</name>
    <capacity unit="GiB">500</capacity>
    <allocation unit="GiB">120</allocation>
    <available unit="GiB">380</available>
    <target><path>/var/lib/images</path></target>
  </pool>
</node>
"#,
    );
    let path = dir.join(file);
    std::fs::write(&path, xml).expect("node XML");
    format!("test://{}", path.display())
}

#[test]
fn default_test_driver_lists_and_acts() {
    let (_guard, d) = default_driver();
    let inv = d.inventory().expect("inventory");
    assert_eq!(inv.hosts.len(), 1);
    assert!(inv.hosts[0].cpu_cores > 0 && inv.hosts[0].memory_bytes > 0);
    let vm = inv.vms.iter().find(|v| v.name == "test").expect("the test driver's domain");
    assert_eq!(vm.power_state, PowerState::On);
    assert_eq!((vm.vcpus, vm.memory_bytes), (2, 8 << 30));
    assert_eq!(vm.networks[0].network, "default");
    assert!(inv.storage.iter().any(|p| p.name == "default-pool" && p.capacity_bytes > 0));
    assert!(inv.round_trips > 0);

    // Power by UUID, idempotent.
    let id = vm.id.clone();
    let op = d.power(&id, PowerAction::Off).expect("off");
    assert!(succeeded(&op), "{op:?}");
    assert_eq!(power_of(&d, "test"), PowerState::Off);
    let again = d.power(&id, PowerAction::Off).expect("off again");
    assert!(succeeded(&again));
    assert!(succeeded(&d.power(&id, PowerAction::On).expect("on")));
    assert_eq!(power_of(&d, "test"), PowerState::On);
    assert!(succeeded(&d.power("test", PowerAction::On).expect("on again, by name")));
    let op = d.power(&id, PowerAction::Shutdown).expect("shutdown");
    let op = d.poll(&op).expect("poll");
    assert!(succeeded(&op), "{op:?}");
    assert_eq!(power_of(&d, "test"), PowerState::Off);

    let err = d.power("no-such-vm", PowerAction::On).expect_err("unknown domain");
    assert!(matches!(&err, PlatformError::NotFound { id, .. } if id == "no-such-vm"), "{err:?}");
}

#[test]
fn snapshots_create_list_revert_delete() {
    let (_guard, d) = default_driver();
    assert!(d.snapshot_list("test").expect("list").is_empty());
    let op = d.snapshot_create("test", "before-upgrade", "state while running").expect("create");
    assert!(succeeded(&op), "{op:?}");
    // The VM changes after the snapshot…
    d.power("test", PowerAction::Off).expect("off");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    d.snapshot_create("test", "while-off", "").expect("second snapshot");
    let list = d.snapshot_list("test").expect("list");
    let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["before-upgrade", "while-off"], "oldest first");
    assert_eq!(list[0].description.as_deref(), Some("state while running"));
    assert!(list[0].created.as_deref().is_some_and(|c| c.ends_with('Z')), "{:?}", list[0].created);
    assert!(list[1].current && !list[0].current);

    // …and reverting brings back the running state it was taken in.
    let op = d.snapshot_revert("test", &list[0].id).expect("revert");
    assert!(succeeded(&op));
    assert_eq!(power_of(&d, "test"), PowerState::On);
    assert!(d.snapshot_list("test").expect("list")[0].current);
    let err = d.snapshot_revert("test", "nope").expect_err("unknown snapshot");
    assert!(matches!(err, PlatformError::NotFound { .. }), "{err:?}");

    assert!(succeeded(&d.snapshot_delete("test", "before-upgrade").expect("delete")));
    assert!(succeeded(&d.snapshot_delete("test", "before-upgrade").expect("delete again is a no-op")));
    let names: Vec<String> = d.snapshot_list("test").expect("list").into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["while-off"]);
}

#[test]
fn create_and_delete_instance() {
    let (_guard, d) = default_driver();
    let spec = CreateSpec {
        name: "new-vm".into(),
        source: InstanceSource::Image("/var/lib/images/cirros.qcow2".into()),
        vcpus: 2,
        memory_bytes: 512 << 20,
        disk_bytes: 1 << 30,
        network: Some("default".into()),
        tags: BTreeMap::from([("system".to_string(), "web".to_string())]),
        user_data: None,
    };
    let op = d.create_instance(&spec).expect("create");
    let OpState::Succeeded { result: Some(uuid) } = &op.state else { panic!("{op:?}") };
    let inv = d.inventory().expect("inventory");
    let vm = inv.vms.iter().find(|v| v.name == "new-vm").expect("listed");
    assert_eq!(&vm.id, uuid);
    assert_eq!(vm.power_state, PowerState::On);
    assert_eq!((vm.vcpus, vm.memory_bytes), (2, 512 << 20));
    assert_eq!(vm.disks[0].storage.as_deref(), Some("/var/lib/images/cirros.qcow2"));
    assert_eq!(vm.tags.get("system").map(String::as_str), Some("web"));

    let err = d.create_instance(&spec).expect_err("same name again");
    assert!(matches!(&err, PlatformError::Refused { message, .. } if message.contains("already exists")), "{err:?}");

    d.snapshot_create(uuid, "s1", "").expect("a snapshot does not block deletion");
    assert!(succeeded(&d.delete_instance(uuid).expect("delete")));
    assert!(d.inventory().expect("inventory").vms.iter().all(|v| v.name != "new-vm"));
    assert!(succeeded(&d.delete_instance(uuid).expect("delete again is a no-op")));
}

#[test]
fn custom_nodes_one_driver_per_host() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = LibvirtDriver::connect(&write_node(dir.path(), "kvm1.xml", "a", 8)).expect("node a").with_host_name("kvm1");
    let b =
        LibvirtDriver::connect(&write_node(dir.path(), "kvm2.xml", "b", 16)).expect("node b").with_host_name("kvm2");

    let inv = a.inventory().expect("inventory a");
    assert_eq!(inv.hosts.len(), 1);
    assert_eq!((inv.hosts[0].name.as_str(), inv.hosts[0].cpu_cores), ("kvm1", 8));
    assert_eq!(inv.hosts[0].memory_bytes, 64 << 30);
    let names: Vec<&str> = inv.vms.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["a-db", "a-web"]);
    let db = &inv.vms[0];
    assert_eq!(db.id, "00000008-0000-4000-8000-000000000001");
    assert_eq!((db.power_state, db.vcpus, db.memory_bytes), (PowerState::On, 4, 4 << 30));
    assert_eq!(db.host.as_deref(), Some("kvm1"));
    let disks: Vec<&str> = db.disks.iter().map(|d| d.label.as_str()).collect();
    assert_eq!(disks, ["vda", "vdb"]);
    assert_eq!(db.networks[0].mac.as_deref(), Some("52:54:00:00:00:11"));
    assert_eq!(db.tags.get("system").map(String::as_str), Some("payroll"));
    assert_eq!(inv.vms[1].power_state, PowerState::Off);
    let pool = inv.storage.iter().find(|p| p.name == "a-images").expect("pool from the node XML");
    // The test driver gives every pool its fixed default size (100 GiB), whatever the XML says.
    assert!(pool.capacity_bytes >= 1 << 30 && pool.free_bytes <= pool.capacity_bytes, "{pool:?}");

    // Hosts are independent: starting a-web does not touch node b.
    assert!(succeeded(&a.power("a-web", PowerAction::On).expect("start")));
    assert_eq!(power_of(&a, "a-web"), PowerState::On);
    let inv_b = b.inventory().expect("inventory b");
    assert_eq!(inv_b.hosts[0].name, "kvm2");
    assert_eq!(inv_b.hosts[0].cpu_cores, 16);
    assert_eq!(inv_b.vms.iter().find(|v| v.name == "b-web").map(|v| v.power_state), Some(PowerState::Off));

    // Snapshot round trip on the custom node too.
    a.snapshot_create("a-db", "s1", "first").expect("snapshot");
    a.power("a-db", PowerAction::Off).expect("stop");
    a.snapshot_revert("a-db", "s1").expect("revert");
    assert_eq!(power_of(&a, "a-db"), PowerState::On);
    a.snapshot_delete("a-db", "s1").expect("delete");
    assert!(a.snapshot_list("a-db").expect("list").is_empty());
}

#[test]
fn unreachable_uri_is_reported_not_panicked() {
    let err = LibvirtDriver::connect("test:///nonexistent/node.xml").expect_err("no such file");
    assert!(matches!(&err, PlatformError::Unreachable { endpoint, .. } if endpoint.contains("nonexistent")), "{err:?}");
}
