//! The vCenter simulator serving the Cà Mau province, read with VMware's own Python client
//! (pyvmomi) as the proxy agent's vSphere plugin reads it.
//!
//! Needs the Debian packages golang-go and golang-github-vmware-govmomi-dev, and the venv at
//! MANGROVE_VENV (default /var/tmp/mangrove-venv) with pyvmomi; fails saying so otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::Value;
use testbed::vcsim::{self, StartOptions, VcsimAvailability};

const USER: &str = "administrator@vsphere.local";
const PASSWORD: &str = "Mangrove-test-1!";

/// Reads the simulator like an inventory collector: container views of each type, custom
/// field names resolved through the CustomFieldsManager, certificate checked against the CA.
/// Then logs in with a wrong password, which must raise InvalidLogin.
const READ_WORLD: &str = r#"
import json, ssl, sys
from urllib.parse import urlparse
from pyVim.connect import SmartConnect, Disconnect
from pyVmomi import vim
url, user, pw, ca = sys.argv[1:5]
u = urlparse(url)
ctx = ssl.create_default_context(cafile=ca)
si = SmartConnect(host=u.hostname, port=u.port, user=user, pwd=pw, sslContext=ctx)
content = si.RetrieveContent()
def objs(t):
    v = content.viewManager.CreateContainerView(content.rootFolder, [t], True)
    out = list(v.view)
    v.Destroy()
    return out
keys = {f.key: f.name for f in content.customFieldsManager.field}
vms = objs(vim.VirtualMachine)
hosts = objs(vim.HostSystem)
out = {
    "datacenters": [d.name for d in objs(vim.Datacenter)],
    "clusters": [c.name for c in objs(vim.ClusterComputeResource)],
    "hosts": {h.name: sorted(vm.name for vm in h.vm) for h in hosts},
    "datastores": [{"name": d.name, "capacity": d.summary.capacity, "free": d.summary.freeSpace,
                    "mounts": len(d.host)} for d in objs(vim.Datastore)],
    "vms": {vm.name: {"host": vm.runtime.host.name, "power": vm.runtime.powerState,
                      "cpus": vm.summary.config.numCpu, "memory_mb": vm.summary.config.memorySizeMB,
                      "guest": vm.summary.config.guestFullName,
                      "fields": {keys.get(cv.key, str(cv.key)): cv.value for cv in vm.customValue}}
            for vm in vms},
}
Disconnect(si)
try:
    SmartConnect(host=u.hostname, port=u.port, user=user, pwd=pw + "-wrong", sslContext=ctx)
    out["wrong_password"] = "accepted"
except vim.fault.InvalidLogin:
    out["wrong_password"] = "InvalidLogin"
print(json.dumps(out))
"#;

fn python() -> PathBuf {
    let venv = testbed::deps::venv_path();
    let python = venv.join("bin/python");
    let ok = Command::new(&python).args(["-c", "import pyVmomi"]).output().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} cannot import pyVmomi: create the venv with `python3 -m venv {v} && {v}/bin/pip install pyvmomi \
         python-openstackclient` (or `mangrove testbed deps --install`)",
        python.display(),
        v = venv.display()
    );
    python
}

/// The launcher, built once per test run (cached across runs in the target dir).
fn launcher() -> &'static Path {
    static LAUNCHER: OnceLock<PathBuf> = OnceLock::new();
    LAUNCHER.get_or_init(|| {
        if let VcsimAvailability::Missing { reason } = vcsim::status() {
            panic!("the vCenter simulator cannot be built: {reason}");
        }
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vcsim");
        let started = Instant::now();
        let path = vcsim::build_launcher(&cache).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("launcher ready in {:.1?} ({})", started.elapsed(), path.display());
        path
    })
}

fn read_world(sim: &vcsim::Vcsim) -> Value {
    let ca = sim.ca_file.as_ref().expect("the simulator serves HTTPS");
    let out = Command::new(python())
        .args(["-c", READ_WORLD, &sim.url, USER, PASSWORD])
        .arg(ca)
        .output()
        .expect("run the venv's python");
    assert!(out.status.success(), "pyvmomi failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

#[test]
fn pyvmomi_sees_the_camau_data_center() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../inventory/examples/camau.yaml");
    let inv = inventory::load_file(Path::new(path)).expect("camau.yaml loads");
    let shape = vcsim::province_shape(&inv).expect("camau has a vSphere site");
    let launcher = launcher();

    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = StartOptions::new(&dir.path().join("vcsim"), PASSWORD);
    opts.shape = Some(shape.clone());
    let started = Instant::now();
    let sim = vcsim::start(launcher, &opts).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("province simulator ready in {:.1?} at {}", started.elapsed(), sim.url);
    assert!(sim.url.starts_with("https://127.0.0.1:"), "{}", sim.url);

    let world = read_world(&sim);
    assert_eq!(world["datacenters"], serde_json::json!(["camau-dc"]));
    assert_eq!(world["clusters"], serde_json::json!(["dc-cluster-01"]));

    let hosts = world["hosts"].as_object().expect("hosts");
    let mut names: Vec<&String> = hosts.keys().collect();
    names.sort();
    let expected: Vec<String> = (1..=9).map(|i| format!("dc-esxi-{i:02}")).collect();
    assert_eq!(names, expected.iter().collect::<Vec<_>>());

    let vms = world["vms"].as_object().expect("vms");
    assert_eq!(vms.len(), 166);
    let guests: Vec<_> = inv.workloads.iter().filter(|w| w.system.is_some()).collect();
    assert_eq!(guests.len(), 6, "camau.yaml names one guest per system");
    for w in guests {
        let vm = &vms[&w.name];
        let system = w.system.as_deref().unwrap_or_default();
        assert_eq!(vm["fields"]["system"], system, "{}: {vm}", w.name);
        assert_eq!(vm["cpus"], w.vcpus, "{}", w.name);
        assert_eq!(vm["memory_mb"], w.memory_gb * 1024, "{}", w.name);
        assert_eq!(vm["power"], "poweredOn", "{}", w.name);
        assert_eq!(vm["guest"], "Ubuntu Linux (64-bit)", "{}", w.name);
    }
    // Placement as the shape says, seen from both sides: the VM's runtime.host and the
    // host's vm list.
    for planned in &shape.vms {
        assert_eq!(vms[&planned.name]["host"], planned.host.as_str(), "{}", planned.name);
        let listed = hosts[&planned.host].as_array().expect("host vm list");
        assert!(
            listed.iter().any(|n| n == planned.name.as_str()),
            "{} not in {}'s vm list",
            planned.name,
            planned.host
        );
    }
    let off = vms.values().filter(|v| v["power"] == "poweredOff").count();
    assert_eq!(off, shape.vms.iter().filter(|v| !v.powered_on).count());

    let datastores = world["datastores"].as_array().expect("datastores");
    assert_eq!(datastores.len(), shape.datastores.len(), "each datastore listed once: {datastores:?}");
    let capacity: f64 = datastores.iter().filter_map(|d| d["capacity"].as_f64()).sum();
    assert!((capacity / 135e12 - 1.0).abs() < 0.01, "datastores total {capacity} bytes, not 135 TB");
    for d in datastores {
        assert_eq!(d["mounts"], 9, "{d}");
        assert!(d["free"].as_f64() < d["capacity"].as_f64(), "{d}");
    }

    assert_eq!(world["wrong_password"], "InvalidLogin");
}

#[test]
fn the_generated_model_serves_and_keeps_its_ca_across_restarts() {
    let launcher = launcher();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = StartOptions::new(&dir.path().join("vcsim"), PASSWORD);
    opts.extra_args = ["-cluster", "1", "-host", "9", "-vm", "3"].map(String::from).to_vec();

    let first = vcsim::start(launcher, &opts).unwrap_or_else(|e| panic!("{e}"));
    let ca_file = first.ca_file.clone().expect("HTTPS");
    let ca = std::fs::read(&ca_file).expect("ca.pem written");
    let world = read_world(&first);
    assert_eq!(world["hosts"].as_object().map(|h| h.len()), Some(9));
    assert_eq!(world["vms"].as_object().map(|v| v.len()), Some(3));
    assert_eq!(world["datastores"].as_array().map(|d| d.len()), Some(1), "{}", world["datastores"]);
    assert_eq!(world["wrong_password"], "InvalidLogin");
    drop(first);

    // A client that kept the CA still trusts the restarted simulator.
    let second = vcsim::start(launcher, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::read(&ca_file).expect("ca.pem kept"), ca);
    let world = read_world(&second);
    assert_eq!(world["hosts"].as_object().map(|h| h.len()), Some(9));
}

#[test]
fn a_detached_simulator_names_its_dir_and_is_stopped_by_down() {
    let launcher = launcher();
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = StartOptions::new(&dir.path().join("vcsim"), PASSWORD);
    let sim = vcsim::start(launcher, &opts).unwrap_or_else(|e| panic!("{e}"));
    let launched = sim.detach();
    let found = testbed::procs::under(dir.path());
    assert!(found.iter().any(|(pid, _)| *pid == launched.pid), "{found:?}");
    // The password is in a file, never in the arguments.
    assert!(found.iter().all(|(_, argv)| !argv.iter().any(|a| a.contains(PASSWORD))), "{found:?}");
    assert_eq!(testbed::procs::stop_all(dir.path(), std::time::Duration::from_secs(5)), 1);
    assert!(!testbed::procs::alive(launched.pid));
}

#[test]
fn a_shape_placing_a_vm_on_an_unknown_host_is_refused_by_name() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../inventory/examples/camau.yaml");
    let inv = inventory::load_file(Path::new(path)).expect("camau.yaml loads");
    let mut shape = vcsim::province_shape(&inv).expect("camau has a vSphere site");
    shape.vms[3].host = "dc-esxi-99".to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = StartOptions::new(&dir.path().join("vcsim"), PASSWORD);
    opts.shape = Some(shape.clone());
    let err = vcsim::start(launcher(), &opts).expect_err("the launcher refuses the shape");
    let message = err.to_string();
    assert!(message.contains("vms[3]") && message.contains("dc-esxi-99"), "{message}");
}
