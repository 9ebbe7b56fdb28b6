//! The vSphere driver against VMware's own simulator (govmomi's vcsim, run by the testbed's
//! launcher) and against pyvmomi, VMware's Python client, as the reference for what a
//! vCenter holds.
//!
//! Needs: Go and Debian's govmomi sources (`apt-get install golang-go
//! golang-github-vmware-govmomi-dev`), and the Python venv with pyvmomi (see `venv_python`).
//! A missing piece fails the test with a message saying what to install.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mangrove_plugins::PlatformError;
use mangrove_plugins::http::HttpOptions;
use mangrove_plugins::hypervisor::{
    CreateSpec, Hypervisor, InstanceSource, OpState, Operation, PowerAction, PowerState, wait,
};
use mangrove_plugins::qemu_img::QemuImg;
use mangrove_plugins::vsphere::{VsphereConfig, VsphereDriver};

const USER: &str = "administrator@vsphere.local";
const PASSWORD: &str = "s3cret&<pass>";

/// Builds the launcher once per test process, into cargo's scratch dir for integration tests.
fn vcsim_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testbed/vcsim");
        assert!(src.join("main.go").is_file(), "the vcsim launcher source is missing from {}", src.display());
        let gopath = Path::new("/usr/share/gocode");
        assert!(
            gopath.join("src/github.com/vmware/govmomi/simulator").is_dir(),
            "govmomi sources are missing from {}: install them with `apt-get install golang-github-vmware-govmomi-dev`",
            gopath.display()
        );
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mangrove-vcsim-{}", std::process::id()));
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(&src)
            .env("GO111MODULE", "off")
            .env("GOPATH", gopath)
            .env("GOFLAGS", "")
            .status()
            .unwrap_or_else(|e| panic!("cannot run `go` ({e}): install Go with `apt-get install golang-go`"));
        assert!(status.success(), "building the vcsim launcher in {} failed: {status}", src.display());
        out
    })
}

fn venv_python() -> PathBuf {
    let venv = std::env::var("MANGROVE_VENV").unwrap_or_else(|_| "/var/tmp/mangrove-venv".into());
    let python = Path::new(&venv).join("bin/python");
    assert!(
        python.exists(),
        "no Python venv at {venv}: create it with `python3 -m venv {venv} && {venv}/bin/pip install pyvmomi` \
         (or point MANGROVE_VENV at one)"
    );
    python
}

/// One running simulator; killed when dropped.
struct Vcsim {
    child: Child,
    url: String,
    /// The CA that signed the simulator's certificate.
    ca: PathBuf,
    /// The simulator's TMPDIR: its datastores' directories are made there.
    tmp: PathBuf,
    _dir: tempfile::TempDir,
}

impl Vcsim {
    fn start(args: &[&str]) -> Vcsim {
        let dir = tempfile::tempdir().expect("temp dir");
        let pw = dir.path().join("secret");
        std::fs::write(&pw, PASSWORD).expect("password file");
        let tls = dir.path().join("tls");
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("simulator tmp dir");
        let mut child = Command::new(vcsim_binary())
            .env("TMPDIR", &tmp)
            .args(["-listen", "127.0.0.1:0", "-username", USER, "-secret-file"])
            .arg(&pw)
            .arg("-tls-dir")
            .arg(&tls)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the vcsim launcher");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("vcsim ready: ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(e) => {
                let _ = child.kill();
                panic!("vcsim did not print `vcsim ready: URL` ({e})");
            }
        };
        assert!(url.starts_with("https://"), "vcsim was asked for TLS but serves {url}");
        Vcsim { child, url, ca: tls.join("ca.pem"), tmp, _dir: dir }
    }

    fn config(&self) -> VsphereConfig {
        VsphereConfig {
            url: self.url.clone(),
            username: USER.into(),
            password: PASSWORD.into(),
            http: HttpOptions { ca_file: Some(self.ca.clone()), insecure: false, timeout_secs: 30 },
        }
    }

    fn connect(&self) -> VsphereDriver {
        VsphereDriver::connect(self.config()).unwrap_or_else(|e| panic!("connect to vcsim: {e}"))
    }

    /// Runs `body` with pyvmomi connected as `si` (and `json` imported); returns its stdout as JSON.
    fn pyvmomi(&self, body: &str) -> serde_json::Value {
        let url = url_parts(&self.url);
        let script = format!(
            "import json, ssl, sys\nfrom pyVim.connect import SmartConnect, Disconnect\nfrom pyVmomi import vim\n\
             ctx = ssl.create_default_context(cafile=sys.argv[4])\n\
             si = SmartConnect(host=sys.argv[1], port=int(sys.argv[2]), user=sys.argv[3], pwd=sys.stdin.read(), sslContext=ctx)\n\
             content = si.RetrieveContent()\n{body}\nDisconnect(si)\n"
        );
        let mut child = Command::new(venv_python())
            .arg("-c")
            .arg(script)
            .args([url.0.as_str(), url.1.as_str(), USER])
            .arg(&self.ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the venv python");
        child.stdin.take().expect("stdin").write_all(PASSWORD.as_bytes()).expect("write the password");
        let out = child.wait_with_output().expect("python output");
        assert!(
            out.status.success(),
            "pyvmomi script failed (is pyvmomi installed in the venv?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("pyvmomi printed JSON")
    }
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (host, port) of `https://host:port/sdk`.
fn url_parts(url: &str) -> (String, String) {
    let rest = url.split("://").nth(1).expect("scheme");
    let authority = rest.split('/').next().expect("authority");
    let (host, port) = authority.rsplit_once(':').expect("port");
    (host.to_string(), port.to_string())
}

fn finish(driver: &VsphereDriver, op: Operation) -> Operation {
    let done = wait(driver, op, Duration::from_secs(60), |_| {}).expect("operation finished");
    assert!(matches!(done.state, OpState::Succeeded { .. }), "{} did not succeed: {:?}", done.description, done.state);
    done
}

fn vm_power(driver: &VsphereDriver, id: &str) -> PowerState {
    let inv = driver.inventory().expect("inventory");
    inv.vms.iter().find(|v| v.id == id).map(|v| v.power_state).expect("vm still listed")
}

const STANDARD: &[&str] = &["-cluster", "1", "-host", "9", "-standalone-host", "0", "-vm", "3"];

#[test]
fn inventory_lists_what_pyvmomi_lists_in_few_round_trips() {
    let sim = Vcsim::start(STANDARD);
    // Tag one VM with a custom attribute the way an operator would, through VMware's client.
    let reference = sim.pyvmomi(
        "view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)\n\
         vms = list(view.view)\n\
         hview = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)\n\
         field = content.customFieldsManager.AddCustomFieldDef(name='system', moType=vim.VirtualMachine)\n\
         content.customFieldsManager.SetField(entity=vms[0], key=field.key, value='qlvbdh')\n\
         print(json.dumps({'vms': [v.name for v in vms], 'hosts': [h.name for h in hview.view], 'tagged': vms[0]._moId}))",
    );
    let names = |key: &str| -> BTreeSet<String> {
        reference[key].as_array().expect("list").iter().map(|v| v.as_str().expect("name").to_string()).collect()
    };

    let driver = sim.connect();
    let inv = driver.inventory().expect("inventory");

    let vms: BTreeSet<String> = inv.vms.iter().map(|v| v.name.clone()).collect();
    let hosts: BTreeSet<String> = inv.hosts.iter().map(|h| h.name.clone()).collect();
    assert_eq!(vms, names("vms"));
    assert_eq!(hosts, names("hosts"));
    assert_eq!(inv.hosts.len(), 9);
    assert!(inv.round_trips <= 6, "inventory took {} round trips", inv.round_trips);

    for h in &inv.hosts {
        assert!(h.cluster.is_some(), "host {} should be in the cluster", h.name);
        assert!(h.cpu_cores > 0 && h.memory_bytes > 0, "host {} hardware missing: {h:?}", h.name);
    }
    let datastores: BTreeSet<&str> = inv.storage.iter().map(|s| s.name.as_str()).collect();
    for v in &inv.vms {
        for d in &v.disks {
            let ds = d.storage.as_deref().unwrap_or_default();
            assert!(datastores.contains(ds), "VM {} has a disk on {ds:?}, not a listed datastore", v.name);
        }
        let host = v.host.as_deref().unwrap_or_default();
        assert!(hosts.contains(host), "VM {} runs on {host:?}, not a listed host", v.name);
        assert!(v.vcpus > 0 && v.memory_bytes > 0, "VM {} sizing missing: {v:?}", v.name);
        assert!(!v.disks.is_empty() && v.disks.iter().all(|d| d.capacity_bytes > 0 && d.storage.is_some()), "{v:?}");
        assert!(!v.networks.is_empty() && v.networks.iter().all(|n| !n.network.is_empty() && n.mac.is_some()), "{v:?}");
    }
    let tagged = reference["tagged"].as_str().expect("tagged moid");
    let vm = inv.vms.iter().find(|v| v.id == tagged).expect("tagged VM listed");
    assert_eq!(vm.tags.get("system").map(String::as_str), Some("qlvbdh"));
    assert!(
        !inv.storage.is_empty() && inv.storage.iter().all(|s| s.capacity_bytes >= s.free_bytes && s.capacity_bytes > 0)
    );
    driver.close();
}

#[test]
fn power_off_and_on_with_idempotent_repeats() {
    let sim = Vcsim::start(STANDARD);
    let driver = sim.connect();
    let inv = driver.inventory().expect("inventory");
    let vm = inv.vms.iter().find(|v| v.power_state == PowerState::On).expect("a powered-on VM").id.clone();

    let off = driver.power(&vm, PowerAction::Off).expect("power off");
    assert_eq!(off.state, OpState::Queued, "power off of a running VM starts a task");
    assert!(off.id.starts_with("task-"), "{off:?}");
    finish(&driver, off);
    assert_eq!(vm_power(&driver, &vm), PowerState::Off);

    let again = driver.power(&vm, PowerAction::Off).expect("power off again");
    assert!(matches!(again.state, OpState::Succeeded { .. }), "already off: {again:?}");

    finish(&driver, driver.power(&vm, PowerAction::On).expect("power on"));
    assert_eq!(vm_power(&driver, &vm), PowerState::On);
    let again = driver.power(&vm, PowerAction::On).expect("power on again");
    assert!(matches!(again.state, OpState::Succeeded { .. }) && !again.id.starts_with("task-"), "{again:?}");

    // A guest shutdown is no task on vSphere; it is done when the VM is off.
    let shutdown = driver.power(&vm, PowerAction::Shutdown).expect("shutdown");
    finish(&driver, shutdown);
    assert_eq!(vm_power(&driver, &vm), PowerState::Off);

    match driver.power("vm-99999", PowerAction::On) {
        Err(PlatformError::NotFound { what, id, .. }) => {
            assert_eq!((what.as_str(), id.as_str()), ("VirtualMachine", "vm-99999"))
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn snapshots_are_created_listed_reverted_and_deleted() {
    let sim = Vcsim::start(STANDARD);
    let driver = sim.connect();
    let vm = driver.inventory().expect("inventory").vms[0].id.clone();
    assert!(driver.snapshot_list(&vm).expect("list").is_empty());

    let first =
        finish(&driver, driver.snapshot_create(&vm, "before-patch", "taken by <mangrove> & co").expect("create"));
    let OpState::Succeeded { result: Some(first_id) } = first.state else { panic!("no snapshot id: {first:?}") };
    let second = finish(&driver, driver.snapshot_create(&vm, "after-patch", "").expect("create"));
    let OpState::Succeeded { result: Some(second_id) } = second.state else { panic!("no snapshot id: {second:?}") };

    let list = driver.snapshot_list(&vm).expect("list");
    let names: Vec<(&str, &str, bool)> = list.iter().map(|s| (s.id.as_str(), s.name.as_str(), s.current)).collect();
    assert_eq!(names, vec![(first_id.as_str(), "before-patch", false), (second_id.as_str(), "after-patch", true)]);
    assert_eq!(list[0].description.as_deref(), Some("taken by <mangrove> & co"));
    assert!(list[0].created.is_some());

    finish(&driver, driver.snapshot_revert(&vm, &first_id).expect("revert"));
    let list = driver.snapshot_list(&vm).expect("list");
    assert!(list.iter().any(|s| s.id == first_id && s.current), "reverted to the first: {list:?}");

    finish(&driver, driver.snapshot_delete(&vm, &second_id).expect("delete"));
    let ids: Vec<String> = driver.snapshot_list(&vm).expect("list").into_iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![first_id.clone()]);
    // Deleting it again is already done; reverting to it is an error naming it.
    let again = driver.snapshot_delete(&vm, &second_id).expect("delete again");
    assert!(matches!(again.state, OpState::Succeeded { .. }), "{again:?}");
    match driver.snapshot_revert(&vm, &second_id) {
        Err(PlatformError::NotFound { id, .. }) => assert_eq!(id, second_id),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn clone_refuses_duplicates_and_delete_is_idempotent() {
    let sim = Vcsim::start(STANDARD);
    let driver = sim.connect();
    let inv = driver.inventory().expect("inventory");
    let source = inv.vms.iter().find(|v| v.power_state == PowerState::On).expect("a running VM").clone();
    let spec = CreateSpec {
        name: "mg-clone-1".into(),
        source: InstanceSource::Image(source.id.clone()),
        vcpus: 2,
        memory_bytes: 2048 * 1024 * 1024,
        disk_bytes: 0,
        network: None,
        tags: Default::default(),
        user_data: None,
    };
    let done = finish(&driver, driver.create_instance(&spec).expect("clone"));
    let OpState::Succeeded { result: Some(new_id) } = done.state else { panic!("no VM id: {done:?}") };
    let inv = driver.inventory().expect("inventory");
    let clone = inv.vms.iter().find(|v| v.id == new_id).expect("clone listed");
    assert_eq!(clone.name, "mg-clone-1");
    assert_eq!(clone.disks.len(), source.disks.len(), "the clone has the source's disks");
    // vcsim 0.24.2 copies the source's CPU and memory and ignores `spec.config`, so the
    // spec's sizing (sent as numCPUs/memoryMB) cannot be checked against it.

    match driver.create_instance(&spec) {
        Err(PlatformError::Refused { message, .. }) => assert!(message.contains("already exists"), "{message}"),
        other => panic!("a second clone with the same name must be refused, got {other:?}"),
    }
    let volume = CreateSpec { source: InstanceSource::Volume("v".into()), ..spec.clone() };
    assert!(matches!(driver.create_instance(&volume), Err(PlatformError::Unsupported { .. })));

    // Deleting a running VM powers it off first.
    finish(&driver, driver.power(&new_id, PowerAction::On).expect("power on"));
    finish(&driver, driver.delete_instance(&new_id).expect("delete"));
    assert!(!driver.inventory().expect("inventory").vms.iter().any(|v| v.id == new_id));
    let again = driver.delete_instance(&new_id).expect("delete again");
    assert!(matches!(again.state, OpState::Succeeded { .. }), "{again:?}");
}

#[test]
fn wrong_password_is_an_auth_error_naming_the_user() {
    let sim = Vcsim::start(&["-cluster", "1", "-host", "1", "-vm", "1"]);
    let cfg = VsphereConfig { password: "wrong".into(), ..sim.config() };
    let debug = format!("{cfg:?}");
    assert!(!debug.contains("wrong") && debug.contains("redacted"), "Debug shows the password: {debug}");
    match VsphereDriver::connect(cfg) {
        Err(e @ PlatformError::Auth { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("refused the credentials for user") && msg.contains(USER), "{msg}");
            assert!(msg.contains("Login failure"), "{msg}");
        }
        other => panic!("expected an Auth error, got {other:?}"),
    }
}

#[test]
fn tls_is_verified_against_the_configured_ca() {
    let sim = Vcsim::start(&["-cluster", "1", "-host", "1", "-vm", "1"]);
    // The system roots do not know the simulator's CA.
    let cfg = VsphereConfig { http: HttpOptions { ca_file: None, ..sim.config().http }, ..sim.config() };
    match VsphereDriver::connect(cfg) {
        Err(PlatformError::Unreachable { detail, .. }) => assert!(!detail.is_empty()),
        other => panic!("an untrusted certificate must be refused, got {other:?}"),
    }
    // The configured CA, or the explicit opt-out, gets in.
    sim.connect().close();
    let insecure =
        VsphereConfig { http: HttpOptions { ca_file: None, insecure: true, timeout_secs: 30 }, ..sim.config() };
    VsphereDriver::connect(insecure).expect("insecure connect").close();
}

#[test]
fn an_expired_session_is_renewed_once_transparently() {
    let sim = Vcsim::start(&["-cluster", "1", "-host", "2", "-vm", "2"]);
    let driver = sim.connect();
    let before = driver.inventory().expect("inventory");
    // End every session but pyvmomi's own, as a vCenter does when sessions time out.
    let expire = || {
        let ended = sim.pyvmomi(
            "sm = content.sessionManager\nmine = sm.currentSession.key\n\
             other = [s.key for s in sm.sessionList if s.key != mine]\n\
             sm.TerminateSession(other)\nprint(json.dumps(len(other)))",
        );
        assert_eq!(ended, serde_json::json!(1), "exactly the driver's session was ended");
    };
    // A method call answered with the NotAuthenticated fault.
    expire();
    let vm = &before.vms[0].id;
    finish(&driver, driver.snapshot_create(vm, "after-relogin", "").expect("snapshot after the session ended"));
    // A property read answered with every property withheld as NotAuthenticated (vcsim's way).
    expire();
    let after = driver.inventory().expect("inventory after the session ended");
    assert_eq!(
        before.vms.iter().map(|v| &v.id).collect::<Vec<_>>(),
        after.vms.iter().map(|v| &v.id).collect::<Vec<_>>()
    );
    assert_eq!(after.round_trips, before.round_trips + 2, "one re-login and one retry show in the round trips");
}

/// A server that accepts and then says nothing.
#[test]
fn a_silent_server_is_a_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().map_while(Result::ok) {
            held.push(conn); // keep it open, never answer
        }
    });
    let cfg = VsphereConfig {
        url: format!("http://{addr}/sdk"),
        username: "u".into(),
        password: "p".into(),
        http: HttpOptions { ca_file: None, insecure: false, timeout_secs: 1 },
    };
    let started = Instant::now();
    match VsphereDriver::connect(cfg) {
        Err(PlatformError::Timeout { secs, .. }) => assert_eq!(secs, 1),
        other => panic!("expected a Timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A one-thread HTTP server for what vcsim cannot show (pages, broken answers): `answer`
/// gets each request's first line, headers and body and returns status and body. Every
/// request is recorded.
fn scripted_server(answer: fn(&str) -> (u16, String)) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(conn);
            let mut request = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                request.push_str(&line);
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            request.push_str(&String::from_utf8_lossy(&body));
            let (status, reply) = answer(&request);
            log.lock().expect("log").push(request);
            let cookie = if reply.contains("LoginResponse") {
                "Set-Cookie: vmware_soap_session=abc123; HttpOnly\r\n"
            } else {
                ""
            };
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\n{cookie}Content-Length: {}\r\nConnection: close\r\n\r\n",
                reply.len()
            );
            let mut conn = reader.into_inner();
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    (format!("http://{addr}/sdk"), seen)
}

fn envelope(inner: &str) -> String {
    format!(
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>"
    )
}

const SERVICE_CONTENT: &str = "<RetrieveServiceContentResponse xmlns=\"urn:vim25\"><returnval>\
    <rootFolder type=\"Folder\">group-d1</rootFolder><propertyCollector type=\"PropertyCollector\">propertyCollector</propertyCollector>\
    <sessionManager type=\"SessionManager\">SessionManager</sessionManager></returnval></RetrieveServiceContentResponse>";

fn plain_config(url: String) -> VsphereConfig {
    VsphereConfig {
        url,
        username: "u".into(),
        password: "p".into(),
        http: HttpOptions { ca_file: None, insecure: false, timeout_secs: 5 },
    }
}

#[test]
fn a_truncated_answer_is_malformed() {
    let (url, _) = scripted_server(|request| {
        if request.starts_with("GET") {
            return (404, String::new());
        }
        (200, envelope(SERVICE_CONTENT)[..150].to_string())
    });
    match VsphereDriver::connect(plain_config(url)) {
        Err(PlatformError::Malformed { call, detail, .. }) => {
            assert_eq!(call, "RetrieveServiceContent");
            assert!(detail.contains("not XML"), "{detail}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

/// A proxy or a wrong path answers with a status that is not SOAP's; the status is reported.
#[test]
fn a_status_other_than_200_or_500_is_refused_with_it() {
    let (url, _) = scripted_server(|request| {
        if request.starts_with("GET") {
            return (404, String::new());
        }
        (404, "<html>no such path</html>".to_string())
    });
    match VsphereDriver::connect(plain_config(url)) {
        Err(PlatformError::Refused { call, message, .. }) => {
            assert_eq!(call, "RetrieveServiceContent");
            assert!(message.contains("HTTP 404") && message.contains("no such path"), "{message}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}

/// Real vCenters page PropertyCollector results (vcsim does not): the driver follows the
/// token, with its session cookie, and counts each page as a round trip.
#[test]
fn paged_results_are_followed_to_the_last_page() {
    fn vm(id: &str, name: &str) -> String {
        format!(
            "<objects><obj type=\"VirtualMachine\">{id}</obj><propSet><name>name</name>\
             <val xsi:type=\"xsd:string\">{name}</val></propSet><propSet><name>runtime.powerState</name>\
             <val xsi:type=\"VirtualMachinePowerState\">poweredOn</val></propSet></objects>"
        )
    }
    let (url, seen) = scripted_server(|request| {
        if request.starts_with("GET") {
            return (404, String::new());
        }
        let body = if request.contains("<RetrieveServiceContent ") {
            SERVICE_CONTENT.to_string()
        } else if request.contains("<Login ") {
            "<LoginResponse xmlns=\"urn:vim25\"><returnval><key>abc123</key></returnval></LoginResponse>".to_string()
        } else if request.contains("<RetrievePropertiesEx ") {
            format!(
                "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval><token>page-2</token>{}</returnval></RetrievePropertiesExResponse>",
                vm("vm-1", "alpha")
            )
        } else if request.contains("<ContinueRetrievePropertiesEx ") && request.contains("<token>page-2</token>") {
            format!(
                "<ContinueRetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval><token>page-3</token>{}</returnval></ContinueRetrievePropertiesExResponse>",
                vm("vm-2", "beta &amp; gamma")
            )
        } else if request.contains("<ContinueRetrievePropertiesEx ") && request.contains("<token>page-3</token>") {
            format!(
                "<ContinueRetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval>{}</returnval></ContinueRetrievePropertiesExResponse>",
                vm("vm-3", "delta")
            )
        } else if request.contains("<Logout ") {
            "<LogoutResponse xmlns=\"urn:vim25\"></LogoutResponse>".to_string()
        } else {
            return (
                500,
                envelope(
                    "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>unexpected</faultstring></soapenv:Fault>",
                ),
            );
        };
        (200, envelope(&body))
    });
    let driver = VsphereDriver::connect(plain_config(url)).expect("connect");
    let inv = driver.inventory().expect("inventory");
    let names: Vec<&str> = inv.vms.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, vec!["alpha", "beta & gamma", "delta"]);
    assert_eq!(inv.round_trips, 3);
    driver.close();
    let seen = seen.lock().expect("log");
    let soap: Vec<&String> = seen.iter().filter(|r| r.starts_with("POST")).collect();
    assert!(soap.iter().all(|r| r.to_ascii_lowercase().contains("soapaction: \"urn:vim25/6.5\"")), "{soap:?}");
    // Everything after Login carries the session; the password is escaped on the wire.
    assert!(soap.iter().skip(2).all(|r| r.contains("vmware_soap_session=abc123")), "{soap:?}");
    assert!(soap.iter().any(|r| r.contains("<maxObjects>500</maxObjects>")));
    assert!(soap.last().is_some_and(|r| r.contains("<Logout ")), "close() logs out");
}

/// A province-sized site (`-cluster 1 -host 9 -vm 166 -ds 4`) is read whole in one bulk
/// retrieval, not one request per VM. (Its timing is measured with `mangrove platforms sync
/// --json`, whose `duration_ms` and `round_trips` the README reports, not here.)
#[test]
fn a_province_sized_site_is_read_in_one_retrieval() {
    let sim = Vcsim::start(&["-cluster", "1", "-host", "9", "-vm", "166", "-ds", "4"]);
    let driver = sim.connect();
    let inv = driver.inventory().expect("inventory");
    assert_eq!((inv.hosts.len(), inv.vms.len(), inv.storage.len()), (9, 166, 4));
    assert_eq!(inv.round_trips, 1, "one RetrievePropertiesEx for hosts, VMs, datastores and field definitions");
    assert!(inv.vms.iter().all(|v| v.host.is_some() && v.vcpus > 0 && v.memory_bytes > 0));
    driver.close();
}

/// A captured-shape answer (also the fuzzer's seed) decodes into the inventory it holds, and
/// every truncation of it is refused or decoded without a panic.
#[test]
fn a_retrieve_answer_decodes_and_its_truncations_never_panic() {
    let text = include_str!("data/retrieve-answer.xml");
    let inv = mangrove_plugins::vsphere::decode_inventory_answer(200, text).expect("decodes");
    assert_eq!(inv.hosts.len(), 1);
    assert_eq!(inv.hosts[0].name, "dc-esxi-01");
    assert_eq!(inv.vms.len(), 1);
    assert_eq!((inv.vms[0].vcpus, inv.vms[0].memory_bytes), (8, 32 << 30));
    assert_eq!(inv.vms[0].host.as_deref(), Some("dc-esxi-01"));
    assert_eq!(inv.storage[0].capacity_bytes, 22_500_000_000_000);
    for cut in (0..text.len()).step_by(7).filter(|i| text.is_char_boundary(*i)) {
        let _ = mangrove_plugins::vsphere::decode_inventory_answer(200, &text[..cut]);
    }
}

/// The file under `root` whose path ends in `suffix`.
fn find_file(root: &Path, suffix: &str) -> PathBuf {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                return path;
            }
        }
    }
    panic!("no file ending in {suffix} under {}", root.display());
}

#[test]
fn export_streams_a_stopped_vms_disk_and_a_running_one_through_a_clone() {
    let sim = Vcsim::start(&["-cluster", "1", "-host", "1", "-standalone-host", "0", "-vm", "2"]);
    let driver = sim.connect();
    let before = driver.inventory().expect("inventory");
    let vm = |name: &str| before.vms.iter().find(|v| v.name == name).unwrap_or_else(|| panic!("no VM {name}"));
    let stopped = vm("DC0_C0_RP0_VM0");
    finish(&driver, driver.power(&stopped.id, PowerAction::Off).expect("power off"));

    // A real VMDK where the simulator keeps that VM's disk: an export serves that file.
    let disk = find_file(&sim.tmp, &format!("{}/disk1.vmdk", stopped.name));
    let made = Command::new("qemu-img")
        .args(["create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized"])
        .arg(&disk)
        .arg("64M")
        .status()
        .expect("run qemu-img (Debian package qemu-utils)");
    assert!(made.success(), "qemu-img create failed");
    let qemu = QemuImg::find().expect("qemu-img is installed (qemu-utils)");

    let out = tempfile::tempdir().expect("temp dir");
    let export =
        driver.export_vm(&stopped.id, "never-made", out.path(), Duration::from_secs(60)).expect("export a stopped VM");
    assert!(!export.through_clone);
    assert_eq!(export.disks.len(), 1, "{export:?}");
    let got = std::fs::read(&export.disks[0].path).expect("exported disk");
    assert_eq!(got, std::fs::read(&disk).expect("simulator's disk"), "the export is the disk's bytes");
    assert_eq!(export.disks[0].bytes, got.len() as u64);
    let (source, qcow2) = qemu.to_qcow2(&export.disks[0].path, &out.path().join("disk.qcow2")).expect("convert");
    assert_eq!((source.format.as_str(), qcow2.format.as_str()), ("vmdk", "qcow2"));
    assert_eq!(qcow2.virtual_size, 64 << 20);

    // A disk that cannot be downloaded fails the export, which aborts the lease and leaves
    // nothing behind.
    std::fs::remove_file(&disk).expect("remove the simulator's disk file");
    let failed_dir = tempfile::tempdir().expect("temp dir");
    let failed = driver.export_vm(&stopped.id, "never-made", failed_dir.path(), Duration::from_secs(60));
    match failed {
        Err(PlatformError::Refused { message, .. }) => assert!(message.contains("HTTP 404"), "{message}"),
        other => panic!("expected the download to be refused, got {other:?}"),
    }
    assert_eq!(std::fs::read_dir(failed_dir.path()).expect("dir").count(), 0, "a failed export left files");

    // A running VM is exported through a clone that is deleted afterwards; the VM runs on.
    let running = vm("DC0_C0_RP0_VM1");
    assert_eq!(running.power_state, PowerState::On);
    let out2 = tempfile::tempdir().expect("temp dir");
    let export = driver
        .export_vm(&running.id, "DC0_C0_RP0_VM1-export", out2.path(), Duration::from_secs(60))
        .expect("export a running VM");
    assert!(export.through_clone);
    assert_eq!(export.disks.len(), 1, "{export:?}");
    assert!(export.disks[0].path.is_file());
    let after = driver.inventory().expect("inventory");
    assert!(!after.vms.iter().any(|v| v.name == "DC0_C0_RP0_VM1-export"), "the export clone is gone");
    assert_eq!(after.vms.len(), before.vms.len());
    assert_eq!(vm_power(&driver, &running.id), PowerState::On);

    let missing = driver.export_vm("vm-99999", "x", out2.path(), Duration::from_secs(10));
    assert!(matches!(missing, Err(PlatformError::NotFound { .. })), "{missing:?}");
}
