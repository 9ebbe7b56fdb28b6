//! Mangrove's OpenStack driver (`plugins::openstack`) against the testbed's OpenStack
//! simulator: inventory of the DR site, power, snapshots, instances, and how injected faults
//! surface. Each test runs its own simulator on free loopback ports.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use plugins::PlatformError;
use plugins::http::HttpOptions;
use plugins::hypervisor::{CreateSpec, Hypervisor, InstanceSource, OpState, Operation, PowerAction, PowerState, wait};
use plugins::openstack::{OpenstackAuth, OpenstackConfig, OpenstackDriver};
use serde_json::{Value, json};
use testbed::openstack::{AdminUser, AppCredential, SimConfig, SimPorts, SimUsers, serve};

const PASSWORD: &str = "dr-admin-pw";
const AC_ID: &str = "1b912ae9f5da442988473ad25f2eca85";
const AC_SECRET: &str = "s3cr3t-ac";
const GIB: u64 = 1 << 30;

/// A simulator on its own runtime, stopped on drop.
struct Sim {
    cfg: SimConfig,
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn start() -> Sim {
    let dir = tempfile::tempdir().expect("temp dir");
    let inv = inventory::load_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/examples/camau.yaml"))
        .expect("inventory/examples/camau.yaml loads");
    let p = testbed::layout::free_ports(5).expect("free loopback ports");
    let cfg = SimConfig {
        state_dir: dir.path().join("state"),
        host: "127.0.0.1".parse().expect("loopback"),
        ports: SimPorts { identity: p[0], compute: p[1], volume: p[2], image: p[3], network: p[4] },
        token_ttl: Duration::from_secs(3600),
        action_delay: Duration::from_millis(300),
        users: SimUsers {
            admin: AdminUser { name: "admin".into(), password: PASSWORD.into(), project: "admin".into() },
            application_credential: AppCredential {
                id: AC_ID.into(),
                secret: AC_SECRET.into(),
                name: "mangrove-dr".into(),
            },
        },
        inventory: inv,
        realize: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = rt.spawn(serve(cfg.clone(), async move {
        let _ = rx.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(10);
    for port in p {
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(!task.is_finished(), "the simulator stopped at start");
            assert!(Instant::now() < deadline, "the simulator did not listen on port {port} within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Sim { cfg, _dir: dir, _rt: rt, stop: Some(tx) }
}

fn driver(sim: &Sim, timeout_secs: u64) -> OpenstackDriver {
    let cfg = OpenstackConfig {
        auth_url: format!("http://127.0.0.1:{}/v3", sim.cfg.ports.identity),
        region: "RegionOne".into(),
        interface: "public".into(),
        auth: OpenstackAuth::Password {
            username: "admin".into(),
            user_domain: "Default".into(),
            password: PASSWORD.into(),
            project_name: "admin".into(),
            project_domain: "Default".into(),
        },
        http: HttpOptions { ca_file: None, insecure: false, timeout_secs },
    };
    OpenstackDriver::connect(cfg).expect("login to the simulator")
}

fn http() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().new_agent()
}

/// Adds a fault through the simulator's admin endpoint.
fn inject(sim: &Sim, fault: Value) {
    let base = format!("http://127.0.0.1:{}", sim.cfg.ports.identity);
    let resp = http()
        .post(format!("{base}/v3/auth/tokens"))
        .send_json(json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": AC_ID, "secret": AC_SECRET}}}}))
        .expect("token for fault injection");
    let token = resp.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let resp = http()
        .post(format!("{base}/_sim/faults"))
        .header("X-Auth-Token", &token)
        .send_json(&fault)
        .expect("inject fault");
    assert_eq!(resp.status(), 201, "fault {fault} accepted");
}

fn finish(d: &OpenstackDriver, op: Operation) -> Operation {
    let done = wait(d, op, Duration::from_secs(30), |_| {}).expect("operation ends");
    assert!(matches!(done.state, OpState::Succeeded { .. }), "{done:?}");
    done
}

fn vm_by_name(d: &OpenstackDriver, name: &str) -> Option<plugins::hypervisor::VmInfo> {
    d.inventory().expect("inventory").vms.into_iter().find(|v| v.name == name)
}

#[test]
fn inventory_reads_the_dr_site() {
    let sim = start();
    let d = driver(&sim, 10);
    let inv = d.inventory().expect("inventory");
    let mut hosts: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    hosts.sort_unstable();
    assert_eq!(
        hosts,
        ["dr-compute-01", "dr-compute-02", "dr-compute-03", "dr-compute-04", "dr-compute-05", "dr-compute-06"]
    );
    for h in &inv.hosts {
        assert_eq!((h.cpu_cores, h.memory_bytes), (48, 512 * GIB), "{h:?}");
        assert_eq!(h.connection, plugins::hypervisor::HostConnection::Connected);
        assert!(!h.maintenance);
    }
    let total: u64 = inv.storage.iter().map(|p| p.capacity_bytes).sum();
    assert_eq!(inv.storage.len(), 3, "{:?}", inv.storage);
    let tb = total as f64 / 1e12;
    assert!((tb - 117.0).abs() < 0.5, "pools hold {tb:.2} TB, expected 117");
    assert!(inv.storage.iter().all(|p| p.free_bytes <= p.capacity_bytes));

    let proxy = inv.vms.iter().find(|v| v.name == "dr-backup-proxy-01").expect("the backup proxy");
    assert_eq!(proxy.power_state, PowerState::On);
    assert!(proxy.host.as_deref().is_some_and(|h| h.starts_with("dr-compute-")), "{proxy:?}");
    assert_eq!(proxy.tags.get("role").map(String::as_str), Some("backup-proxy"));
    let data = proxy.disks.iter().find(|d| d.label == "dr-backup-proxy-01-data").expect("data volume as a disk");
    assert_eq!(data.capacity_bytes, 2000 * GIB);
    assert!(data.storage.as_deref().is_some_and(|s| s.starts_with("dr-ceph@rbd#")), "{data:?}");
    assert!(proxy.networks.iter().any(|n| n.network == "dr-prod" && !n.addresses.is_empty()), "{proxy:?}");
    assert!(proxy.vcpus > 0 && proxy.memory_bytes > 0);
    assert_eq!(inv.vms.len(), 3);
    // Login, two discoveries, hypervisors, servers, volumes, pools: bulk reads, no per-VM calls.
    assert!(inv.round_trips <= 9, "{} round trips", inv.round_trips);
    eprintln!("inventory took {} round trips", inv.round_trips);

    // The extra reads the backup and failover work uses.
    assert!(d.flavors().expect("flavors").iter().any(|f| f.name == "m1.small"));
    assert!(d.images().expect("images").iter().any(|i| i.name.as_deref() == Some("cirros")));
    assert!(d.networks().expect("networks").iter().any(|n| n.name == "dr-drill"));
    assert!(d.ports().expect("ports").len() >= 3);
    d.floating_ips().expect("floating ips");
    assert!(d.volumes().expect("volumes").iter().any(|v| v.name == "dr-backup-proxy-01-data"));
    d.volume_backups().expect("backups");
}

#[test]
fn power_off_and_on_are_idempotent() {
    let sim = start();
    let d = driver(&sim, 10);
    let vm = vm_by_name(&d, "dr-dns-01").expect("dns server").id;
    let op = d.power(&vm, PowerAction::Shutdown).expect("stop");
    assert!(!op.state.is_done(), "stopping takes the simulator's action delay: {op:?}");
    // A retry while the stop is under way follows it instead of failing on Nova's 409.
    let retry = d.power(&vm, PowerAction::Off).expect("retry while stopping");
    assert_eq!((retry.id.as_str(), retry.state.is_done()), (op.id.as_str(), false));
    finish(&d, op);
    assert_eq!(vm_by_name(&d, "dr-dns-01").map(|v| v.power_state), Some(PowerState::Off));
    let again = d.power(&vm, PowerAction::Off).expect("stop again");
    assert!(matches!(again.state, OpState::Succeeded { .. }), "already off: nothing to do: {again:?}");
    finish(&d, d.power(&vm, PowerAction::On).expect("start"));
    assert_eq!(vm_by_name(&d, "dr-dns-01").map(|v| v.power_state), Some(PowerState::On));
    assert!(matches!(d.power(&vm, PowerAction::On).expect("start again").state, OpState::Succeeded { .. }));
    let err = d.power("00000000-0000-0000-0000-000000000000", PowerAction::On).expect_err("unknown server");
    assert!(matches!(err, PlatformError::NotFound { .. }), "{err:?}");
}

#[test]
fn snapshots_of_a_volume_backed_server() {
    let sim = start();
    let d = driver(&sim, 10);
    let vm = vm_by_name(&d, "dr-backup-proxy-01").expect("proxy").id;
    let before = d.snapshot_list(&vm).expect("list");
    let done = finish(&d, d.snapshot_create(&vm, "pre-drill", "before the drill").expect("create"));
    let OpState::Succeeded { result: Some(id) } = done.state else { panic!("{done:?}") };
    let list = d.snapshot_list(&vm).expect("list");
    assert_eq!(list.len(), before.len() + 1);
    let snap = list.iter().find(|s| s.id == id).expect("the new snapshot is listed");
    assert_eq!((snap.name.as_str(), snap.description.as_deref()), ("pre-drill", Some("before the drill")));
    assert_eq!(list.last().map(|s| s.id.as_str()), Some(id.as_str()), "oldest first");
    finish(&d, d.snapshot_delete(&vm, &id).expect("delete"));
    assert_eq!(d.snapshot_list(&vm).expect("list").len(), before.len());
    let again = d.snapshot_delete(&vm, &id).expect("delete again");
    assert!(matches!(again.state, OpState::Succeeded { .. }), "{again:?}");
    // A server without volumes has no Cinder snapshots to offer.
    let dns = vm_by_name(&d, "dr-dns-01").expect("dns").id;
    assert!(matches!(d.snapshot_create(&dns, "x", ""), Err(PlatformError::Unsupported { .. })));
}

#[test]
fn create_and_delete_an_instance() {
    let sim = start();
    let d = driver(&sim, 10);
    let image = d.images().expect("images").into_iter().find(|i| i.name.as_deref() == Some("cirros")).expect("cirros");
    let spec = CreateSpec {
        name: "drill-web-01".into(),
        source: InstanceSource::Image(image.id),
        vcpus: 1,
        memory_bytes: 512 << 20,
        disk_bytes: GIB,
        network: Some("dr-drill".into()),
        tags: BTreeMap::from([("system".to_string(), "web".to_string())]),
        user_data: None,
    };
    let done = finish(&d, d.create_instance(&spec).expect("create"));
    let OpState::Succeeded { result: Some(id) } = done.state else { panic!("{done:?}") };
    let vm = vm_by_name(&d, "drill-web-01").expect("listed");
    assert_eq!(vm.id, id);
    assert_eq!(vm.power_state, PowerState::On);
    assert_eq!(vm.tags.get("system").map(String::as_str), Some("web"));
    assert!(vm.networks.iter().any(|n| n.network == "dr-drill"), "{vm:?}");
    assert!(vm.vcpus >= 1 && vm.memory_bytes >= 512 << 20);

    let err = d.create_instance(&spec).expect_err("the name exists");
    assert!(matches!(&err, PlatformError::Refused { message, .. } if message.contains("already exists")), "{err:?}");
    let mut no_net = spec.clone();
    no_net.name = "drill-web-02".into();
    no_net.network = Some("no-such-network".into());
    assert!(matches!(d.create_instance(&no_net), Err(PlatformError::NotFound { .. })));

    finish(&d, d.delete_instance(&id).expect("delete"));
    assert!(vm_by_name(&d, "drill-web-01").is_none());
    assert!(matches!(d.delete_instance(&id).expect("delete again").state, OpState::Succeeded { .. }));
}

#[test]
fn upload_an_image() {
    let sim = start();
    let d = driver(&sim, 10);
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let image = d.upload_image("restored-disk", "raw", &mut std::io::Cursor::new(&bytes)).expect("upload");
    assert_eq!(image.name.as_deref(), Some("restored-disk"));
    assert_eq!((image.status.as_str(), image.size), ("active", Some(bytes.len() as u64)));
    assert!(d.images().expect("images").iter().any(|i| i.id == image.id));
}

#[test]
fn slow_and_malformed_services_are_reported_as_such() {
    let sim = start();
    let d = driver(&sim, 1);
    d.inventory().expect("inventory while healthy");
    inject(&sim, json!({"service": "compute", "kind": "slow", "seconds": 3, "count": 1}));
    let started = Instant::now();
    let err = d.inventory().expect_err("compute is slow");
    assert!(matches!(err, PlatformError::Timeout { .. }), "{err:?}");
    assert!(err.is_unavailable());
    assert!(started.elapsed() < Duration::from_millis(2900), "gave up at the driver's timeout");

    inject(&sim, json!({"service": "compute", "kind": "malformed", "count": 1}));
    let err = d.inventory().expect_err("compute answers garbage");
    assert!(matches!(&err, PlatformError::Malformed { call, .. } if call.contains("os-hypervisors")), "{err:?}");

    inject(&sim, json!({"service": "volume", "kind": "error", "count": 1}));
    let err = d.inventory().expect_err("cinder fails");
    assert!(matches!(&err, PlatformError::Refused { message, .. } if message.contains("500")), "{err:?}");

    // A dead API behind its load balancer (503, no body): unavailable, like a refused connection.
    inject(&sim, json!({"service": "volume", "kind": "down", "count": 1}));
    let err = d.inventory().expect_err("cinder is down");
    assert!(matches!(&err, PlatformError::Unreachable { detail, .. } if detail.contains("503")), "{err:?}");
    assert!(err.is_unavailable());
    d.inventory().expect("healthy again once the faults are used up");
}
