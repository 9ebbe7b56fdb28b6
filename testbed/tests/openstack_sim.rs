//! The OpenStack simulator against the real `openstack` CLI (python-openstackclient from the
//! venv at `$MANGROVE_VENV`, default `/var/tmp/mangrove-venv`) and raw HTTP for what the CLI
//! cannot show (faults, token expiry). Each test runs its own simulator on free loopback ports.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testbed::openstack::{
    AdminUser, AppCredential, SimConfig, SimPorts, SimUsers, clouds_yaml, clouds_yaml_app_credential, serve,
};

const PASSWORD: &str = "dr-admin-pw";
const AC_ID: &str = "1b912ae9f5da442988473ad25f2eca85";
const AC_SECRET: &str = "s3cr3t-ac";

fn venv_openstack() -> PathBuf {
    let venv = std::env::var("MANGROVE_VENV").unwrap_or_else(|_| "/var/tmp/mangrove-venv".into());
    let bin = Path::new(&venv).join("bin/openstack");
    assert!(
        bin.exists(),
        "{} is missing: these tests run the real OpenStack CLI. Create the venv with \
         `python3 -m venv {venv} && {venv}/bin/pip install pyvmomi python-openstackclient` \
         (or point MANGROVE_VENV at one)",
        bin.display()
    );
    bin
}

fn camau() -> inventory::Inventory {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/examples/camau.yaml");
    inventory::load_file(&p).expect("inventory/examples/camau.yaml loads")
}

/// A simulator running on its own runtime, stopped on drop.
struct Running {
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), testbed::openstack::SimError>>>,
}

impl Running {
    fn start(cfg: SimConfig) -> Running {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = rt.spawn(serve(cfg.clone(), async move {
            let _ = rx.await;
        }));
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in [cfg.ports.identity, cfg.ports.compute, cfg.ports.volume, cfg.ports.image, cfg.ports.network] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(!task.is_finished(), "the simulator stopped at start");
                assert!(Instant::now() < deadline, "the simulator did not listen on port {port} within 10 s");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Running { rt, stop: Some(tx), task: Some(task) }
    }

    fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let r = self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await });
            let r = r.expect("the simulator stops within 10 s").expect("the simulator task did not panic");
            r.expect("the simulator ran without error");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn config(dir: &Path, action_delay: Duration, token_ttl: Duration) -> SimConfig {
    let p = testbed::layout::free_ports(5).expect("free loopback ports");
    SimConfig {
        state_dir: dir.join("state"),
        host: "127.0.0.1".parse().expect("loopback"),
        ports: SimPorts { identity: p[0], compute: p[1], volume: p[2], image: p[3], network: p[4] },
        token_ttl,
        action_delay,
        users: SimUsers {
            admin: AdminUser { name: "admin".into(), password: PASSWORD.into(), project: "admin".into() },
            application_credential: AppCredential {
                id: AC_ID.into(),
                secret: AC_SECRET.into(),
                name: "mangrove-dr".into(),
            },
        },
        inventory: camau(),
        realize: None,
    }
}

/// Runs the CLI against `clouds.yaml` in `dir`; prints the command and how long it took.
struct Cli {
    bin: PathBuf,
    dir: PathBuf,
}

struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The JSON document of `-f json` (`--wait` prints `Progress: N` before it).
    fn json(&self) -> Value {
        let start = self.stdout.find(['{', '[']).unwrap_or(0);
        serde_json::from_str(&self.stdout[start..])
            .unwrap_or_else(|e| panic!("CLI output is not JSON ({e}): {}", self.stdout))
    }
}

impl Cli {
    fn new(dir: &Path, cfg: &SimConfig) -> Cli {
        std::fs::write(dir.join("clouds.yaml"), clouds_yaml(cfg, "camau-dr")).expect("write clouds.yaml");
        Cli { bin: venv_openstack(), dir: dir.to_path_buf() }
    }

    fn run(&self, args: &[&str]) -> Ran {
        let mut cmd = Command::new(&self.bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("OS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("OS_CLIENT_CONFIG_FILE", self.dir.join("clouds.yaml"))
            .env("OS_CLOUD", "camau-dr")
            .env("XDG_CACHE_HOME", self.dir.join("cache"))
            .env("HOME", &self.dir)
            .args(args);
        let t = Instant::now();
        let out = cmd.output().expect("run the openstack CLI");
        let ran = Ran {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("openstack {} -> rc {:?} in {:.2} s", args.join(" "), out.status.code(), t.elapsed().as_secs_f64());
        ran
    }

    /// Runs a command that must succeed.
    fn ok(&self, args: &[&str]) -> Ran {
        let r = self.run(args);
        assert!(r.ok, "openstack {} failed:\n{}\n{}", args.join(" "), r.stdout, r.stderr);
        r
    }
}

/// A minimal HTTP/1.1 exchange over loopback: (status, headers lowercased, body).
fn http(
    method: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the simulator");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the response");
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status: u16 = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_owned() };
    (status, headers, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn password_token(cfg: &SimConfig) -> String {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin",
        "domain": {"name": "Default"}, "password": PASSWORD}}}, "scope": {"project": {"name": "admin",
        "domain": {"name": "Default"}}}}});
    let (status, h, text) = http("POST", cfg.ports.identity, "/v3/auth/tokens", &[], Some(&body));
    assert_eq!(status, 201, "token issue: {text}");
    header(&h, "x-subject-token").expect("X-Subject-Token").to_owned()
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .expect("a JSON list")
        .iter()
        .filter_map(|o| o.get(key).and_then(Value::as_str).map(str::to_owned))
        .collect()
}

#[test]
fn the_cli_reads_the_seeded_dr_site() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(dir.path(), Duration::from_secs(2), Duration::from_secs(3600));
    let _sim = Running::start(cfg.clone());
    let cli = Cli::new(dir.path(), &cfg);

    let token = cli.ok(&["token", "issue", "-f", "json"]).json();
    assert!(token["id"].as_str().is_some_and(|t| t.starts_with("gAAAA")), "{token}");
    assert!(token["expires"].as_str().is_some(), "{token}");
    assert_eq!(token["user_id"].as_str().map(str::len), Some(32), "{token}");

    let hv = cli.ok(&["hypervisor", "list", "-f", "json"]).json();
    let hosts = names(&hv, "Hypervisor Hostname");
    let want: Vec<String> = (1..=6).map(|i| format!("dr-compute-0{i}")).collect();
    assert_eq!(hosts, want);
    assert!(hv.as_array().expect("list").iter().all(|h| h["State"] == "up" && h["Hypervisor Type"] == "QEMU"), "{hv}");

    let stats = cli.ok(&["hypervisor", "stats", "show", "-f", "json"]).json();
    assert_eq!(stats["count"], 6, "{stats}");
    assert_eq!(stats["vcpus"], 6 * 48, "{stats}");
    assert_eq!(stats["memory_mb"], 6 * 512 * 1024, "{stats}");
    assert_eq!(stats["running_vms"], 3, "{stats}");

    let servers = cli.ok(&["server", "list", "-f", "json"]).json();
    let mut s = names(&servers, "Name");
    s.sort();
    assert_eq!(s, ["dr-backup-proxy-01", "dr-bastion-01", "dr-dns-01"]);
    assert!(servers.as_array().expect("list").iter().all(|s| s["Status"] == "ACTIVE"), "{servers}");
    assert!(servers[0]["Networks"].to_string().contains("10.120."), "{servers}");

    let vols = cli.ok(&["volume", "list", "-f", "json"]).json();
    assert_eq!(names(&vols, "Name"), ["dr-backup-proxy-01-data"]);
    assert_eq!(vols[0]["Status"], "in-use", "{vols}");
    assert_eq!(vols[0]["Attached to"][0]["device"], "/dev/vdb", "{vols}");
    let table = cli.ok(&["volume", "list"]);
    assert!(table.stdout.contains("Attached to dr-backup-proxy-01 on /dev/vdb"), "{}", table.stdout);

    let snaps = cli.ok(&["volume", "snapshot", "list", "-f", "json"]).json();
    assert_eq!(names(&snaps, "Name"), ["dr-backup-proxy-01-data-weekly"]);

    let images = cli.ok(&["image", "list", "-f", "json"]).json();
    let mut i = names(&images, "Name");
    i.sort();
    assert_eq!(i, ["cirros", "rhel-8", "ubuntu-22.04", "windows-2019"]);

    let nets = cli.ok(&["network", "list", "-f", "json"]).json();
    let mut n = names(&nets, "Name");
    n.sort();
    assert_eq!(n, ["dr-drill", "dr-prod", "dr-public"]);

    let flavors = cli.ok(&["flavor", "list", "-f", "json"]).json();
    let f = names(&flavors, "Name");
    for want in ["m1.small", "m1.large", "dr.8c32g", "dr.4c16g", "dr.2c8g"] {
        assert!(f.iter().any(|x| x == want), "flavor {want} missing from {f:?}");
    }

    // Pagination as the client follows it: one item per page, every page fetched.
    let paged = cli.ok(&["volume", "snapshot", "list", "--limit", "1", "-f", "json"]).json();
    assert_eq!(names(&paged, "Name").len(), 1);
    let paged = cli.ok(&["network", "list", "--limit", "1", "-f", "json"]).json();
    assert_eq!(names(&paged, "Name").len(), 3, "the client follows networks_links to the end: {paged}");
    let paged = cli.ok(&["server", "list", "--limit", "1", "-f", "json"]).json();
    assert_eq!(names(&paged, "Name").len(), 1, "server list --limit asks for one page only: {paged}");
}

#[test]
fn the_cli_runs_a_server_through_its_lifecycle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(dir.path(), Duration::from_secs(2), Duration::from_secs(3600));
    let _sim = Running::start(cfg.clone());
    let cli = Cli::new(dir.path(), &cfg);

    let t = Instant::now();
    let created = cli
        .ok(&[
            "server",
            "create",
            "--image",
            "cirros",
            "--flavor",
            "m1.small",
            "--network",
            "dr-prod",
            "vm-x",
            "--wait",
            "-f",
            "json",
        ])
        .json();
    assert!(t.elapsed() >= Duration::from_secs(2), "BUILD must take the action delay");
    assert_eq!(created["status"], "ACTIVE", "{created}");
    let host = created["OS-EXT-SRV-ATTR:host"].as_str().expect("placed on a host").to_owned();
    assert!(host.starts_with("dr-compute-0"), "{created}");

    let shown = cli.ok(&["server", "show", "vm-x", "-f", "json"]).json();
    assert_eq!(shown["status"], "ACTIVE", "{shown}");
    assert_eq!(shown["flavor"]["original_name"], "m1.small", "{shown}");
    assert!(shown["addresses"].to_string().contains("dr-prod"), "{shown}");

    // The new server's claim shows in the hypervisor counters.
    let stats = cli.ok(&["hypervisor", "stats", "show", "-f", "json"]).json();
    assert_eq!(stats["running_vms"], 4, "{stats}");

    cli.ok(&["server", "stop", "vm-x"]);
    // Within the action delay (raw HTTP: the CLI takes seconds to start) the stop is in flight.
    let id = created["id"].as_str().expect("server id");
    let token = password_token(&cfg);
    let auth = [("X-Auth-Token", token.as_str()), ("OpenStack-API-Version", "compute 2.96")];
    let (_, _, during) = http("GET", cfg.ports.compute, &format!("/v2.1/servers/{id}"), &auth, None);
    let during: Value = serde_json::from_str(&during).expect("server JSON");
    assert_eq!(during["server"]["OS-EXT-STS:task_state"], "powering-off", "{during}");
    let path = format!("/v2.1/servers/{id}/action");
    let (status, _, text) = http("POST", cfg.ports.compute, &path, &auth, Some(&json!({"os-stop": null})));
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("while it is in task_state powering-off"), "{text}");
    wait_status(&cli, "vm-x", "SHUTOFF");
    let again = cli.run(&["server", "stop", "vm-x"]);
    assert!(!again.ok, "a second stop must fail");
    assert!(again.stderr.contains("ConflictException: 409"), "{}", again.stderr);
    assert!(again.stderr.contains("while it is in vm_state stopped"), "{}", again.stderr);

    cli.ok(&["server", "start", "vm-x"]);
    wait_status(&cli, "vm-x", "ACTIVE");

    cli.ok(&["server", "delete", "vm-x"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = cli.ok(&["server", "list", "-f", "json"]).json();
        if !names(&list, "Name").iter().any(|n| n == "vm-x") {
            break;
        }
        assert!(Instant::now() < deadline, "vm-x was not deleted");
        std::thread::sleep(Duration::from_millis(500));
    }
    let gone = cli.run(&["server", "show", "vm-x"]);
    assert!(!gone.ok && gone.stderr.contains("No Server found for vm-x"), "{}", gone.stderr);
}

fn wait_status(cli: &Cli, name: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = cli.ok(&["server", "show", name, "-f", "json"]).json();
        if s["status"] == want {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never reached {want}: {s}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_failed_action_ends_in_error_and_the_cli_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(dir.path(), Duration::from_millis(500), Duration::from_secs(3600));
    let _sim = Running::start(cfg.clone());
    let cli = Cli::new(dir.path(), &cfg);
    let token = password_token(&cfg);
    let fault = json!({"service": "compute", "kind": "fail_next_action"});
    let (status, _, body) = http("POST", cfg.ports.identity, "/_sim/faults", &[("X-Auth-Token", &token)], Some(&fault));
    assert_eq!(status, 201, "{body}");
    let r = cli.run(&[
        "server",
        "create",
        "--image",
        "cirros",
        "--flavor",
        "m1.tiny",
        "--network",
        "dr-prod",
        "vm-bad",
        "--wait",
    ]);
    assert!(!r.ok, "a build with fail_next_action must fail");
    assert!(r.stderr.contains("Error creating server: vm-bad"), "{}", r.stderr);
    let shown = cli.ok(&["server", "show", "vm-bad", "-f", "json"]).json();
    assert_eq!(shown["status"], "ERROR", "{shown}");
}

#[test]
fn a_wrong_password_is_refused_with_keystones_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = config(dir.path(), Duration::from_secs(2), Duration::from_secs(3600));
    let _sim = Running::start(cfg.clone());
    cfg.users.admin.password = "not-the-password".into();
    let cli = Cli::new(dir.path(), &cfg);
    let r = cli.run(&["server", "list"]);
    assert!(!r.ok);
    assert!(r.stderr.contains("The request you have made requires authentication. (HTTP 401)"), "{}", r.stderr);
}

#[test]
fn state_survives_a_simulator_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(dir.path(), Duration::from_millis(300), Duration::from_secs(3600));
    let mut sim = Running::start(cfg.clone());
    let token = password_token(&cfg);
    let (project, _) = (token_project(&cfg, &token), ());
    let body = json!({"volume": {"size": 40, "name": "survivor"}});
    let path = format!("/v3/{project}/volumes");
    let (status, _, text) = http("POST", cfg.ports.volume, &path, &[("X-Auth-Token", &token)], Some(&body));
    assert_eq!(status, 202, "{text}");
    sim.stop();
    assert!(dir.path().join("state/openstack-state.json").exists());
    std::thread::sleep(Duration::from_millis(400));

    let _sim = Running::start(cfg.clone());
    let cli = Cli::new(dir.path(), &cfg);
    let vols = cli.ok(&["volume", "list", "-f", "json"]).json();
    let v = vols.as_array().expect("list").iter().find(|v| v["Name"] == "survivor").cloned();
    let v = v.unwrap_or_else(|| panic!("the volume did not survive the restart: {vols}"));
    assert_eq!(v["Status"], "available", "{v}");
    assert_eq!(v["Size"], 40, "{v}");
}

fn token_project(cfg: &SimConfig, token: &str) -> String {
    let (status, _, text) = http(
        "GET",
        cfg.ports.identity,
        "/v3/auth/tokens",
        &[("X-Auth-Token", token), ("X-Subject-Token", token)],
        None,
    );
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).expect("token JSON");
    v["token"]["project"]["id"].as_str().expect("project id").to_owned()
}

#[test]
fn a_slow_fault_delays_the_answer_and_malformed_breaks_the_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(dir.path(), Duration::from_secs(2), Duration::from_secs(3600));
    let _sim = Running::start(cfg.clone());
    let token = password_token(&cfg);
    let auth = [("X-Auth-Token", token.as_str())];

    let (status, _, _) =
        http("POST", cfg.ports.identity, "/_sim/faults", &[], Some(&json!({"service": "all", "kind": "down"})));
    assert_eq!(status, 401, "fault injection needs a token");

    let slow = json!({"service": "compute", "kind": "slow", "seconds": 2, "count": 1});
    assert_eq!(http("POST", cfg.ports.identity, "/_sim/faults", &auth, Some(&slow)).0, 201);
    let t = Instant::now();
    let (status, _, _) = http("GET", cfg.ports.compute, "/v2.1/servers/detail", &auth, None);
    assert_eq!(status, 200);
    assert!(t.elapsed() >= Duration::from_secs(2), "slow fault answered after {:?}", t.elapsed());
    let t = Instant::now();
    http("GET", cfg.ports.compute, "/v2.1/servers/detail", &auth, None);
    assert!(t.elapsed() < Duration::from_secs(1), "count 1 must affect one request only");

    let bad = json!({"service": "image", "kind": "malformed"});
    assert_eq!(http("POST", cfg.ports.identity, "/_sim/faults", &auth, Some(&bad)).0, 201);
    let (status, h, body) = http("GET", cfg.ports.image, "/v2/images", &auth, None);
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), Some("application/json"));
    assert!(serde_json::from_str::<Value>(&body).is_err(), "malformed fault returned valid JSON: {body}");
    let (_, _, listed) = http("GET", cfg.ports.identity, "/_sim/faults", &auth, None);
    assert!(listed.contains("malformed"), "{listed}");
    assert_eq!(http("DELETE", cfg.ports.identity, "/_sim/faults", &auth, None).0, 204);
    let (_, _, body) = http("GET", cfg.ports.image, "/v2/images", &auth, None);
    serde_json::from_str::<Value>(&body).expect("valid JSON once faults are cleared");

    let down = json!({"service": "volume", "kind": "down", "count": 1});
    assert_eq!(http("POST", cfg.ports.identity, "/_sim/faults", &auth, Some(&down)).0, 201);
    assert_eq!(http("GET", cfg.ports.volume, "/v3/", &[], None).0, 503);
    assert_eq!(http("GET", cfg.ports.volume, "/v3/", &[], None).0, 200);
}

#[test]
fn tokens_expire_and_application_credentials_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(dir.path(), Duration::from_secs(2), Duration::from_secs(1));
    let _sim = Running::start(cfg.clone());
    let body = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": AC_ID, "secret": AC_SECRET}}}});
    let (status, h, text) = http("POST", cfg.ports.identity, "/v3/auth/tokens", &[], Some(&body));
    assert_eq!(status, 201, "{text}");
    let v: Value = serde_json::from_str(&text).expect("token JSON");
    assert_eq!(v["token"]["methods"], json!(["application_credential"]));
    let catalog = v["token"]["catalog"].as_array().expect("catalog");
    for kind in ["identity", "compute", "volumev3", "block-storage", "image", "network"] {
        assert!(catalog.iter().any(|c| c["type"] == kind), "{kind} missing from the catalog");
    }
    let token = header(&h, "x-subject-token").expect("token").to_owned();
    let auth = [("X-Auth-Token", token.as_str())];
    assert_eq!(http("GET", cfg.ports.network, "/v2.0/networks", &auth, None).0, 200);
    std::thread::sleep(Duration::from_millis(1300));
    let (status, _, text) = http("GET", cfg.ports.network, "/v2.0/networks", &auth, None);
    assert_eq!(status, 401, "an expired token must be refused: {text}");
    assert!(text.contains("The request you have made requires authentication."), "{text}");

    // The CLI with application-credential auth (no discovery request, no scope block).
    let cli = Cli::new(dir.path(), &cfg);
    std::fs::write(dir.path().join("clouds.yaml"), clouds_yaml_app_credential(&cfg, "camau-dr")).expect("clouds.yaml");
    let t = cli.ok(&["token", "issue", "-f", "json"]).json();
    assert_eq!(t["project_id"].as_str().map(str::len), Some(32), "{t}");

    let wrong = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": AC_ID, "secret": "nope"}}}});
    assert_eq!(http("POST", cfg.ports.identity, "/v3/auth/tokens", &[], Some(&wrong)).0, 401);
}

/// The calls Mangrove's driver makes beyond the CLI's, with the semantics it relies on.
#[test]
fn the_driver_surface_answers_as_documented() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(dir.path(), Duration::from_millis(300), Duration::from_secs(3600));
    let _sim = Running::start(cfg.clone());
    let token = password_token(&cfg);
    let project = token_project(&cfg, &token);
    let get = |port: u16, path: &str, mv: Option<&str>| -> (u16, Value) {
        let mut h = vec![("X-Auth-Token", token.as_str())];
        if let Some(mv) = mv {
            h.push(("OpenStack-API-Version", mv));
        }
        let (status, _, text) = http("GET", port, path, &h, None);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    };
    let send = |method: &str, port: u16, path: &str, body: Option<&Value>| -> (u16, Value) {
        let h = [("X-Auth-Token", token.as_str()), ("OpenStack-API-Version", "volume 3.71")];
        let (status, _, text) = http(method, port, path, &h, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    };
    let settle = || std::thread::sleep(Duration::from_millis(450));

    // Hypervisors: integer ids and counters at 2.1, UUIDs from 2.53, no counters from 2.88.
    let (_, old) = get(cfg.ports.compute, "/v2.1/os-hypervisors/detail", None);
    assert_eq!(old["hypervisors"][0]["id"], 1, "{old}");
    assert_eq!(old["hypervisors"][0]["vcpus"], 48, "{old}");
    assert_eq!(old["hypervisors"][0]["memory_mb"], 512 * 1024, "{old}");
    let (_, new) = get(cfg.ports.compute, "/v2.1/os-hypervisors/detail", Some("compute 2.88"));
    assert_eq!(new["hypervisors"][0]["id"].as_str().map(str::len), Some(36), "{new}");
    assert!(new["hypervisors"][0].get("vcpus").is_none(), "{new}");
    let (status, stats) = get(cfg.ports.compute, "/v2.1/os-hypervisors/statistics", Some("compute 2.87"));
    assert_eq!((status, &stats["hypervisor_statistics"]["count"]), (200, &json!(6)), "{stats}");
    assert_eq!(get(cfg.ports.compute, "/v2.1/os-hypervisors/statistics", Some("compute 2.88")).0, 404);
    assert_eq!(get(cfg.ports.compute, "/v2.1/servers", Some("compute 2.97")).0, 406);

    // Servers: metadata, embedded flavor from 2.47 only, pagination with servers_links.
    let (_, page1) = get(cfg.ports.compute, "/v2.1/servers/detail?limit=2", Some("compute 2.96"));
    assert_eq!(page1["servers"].as_array().map(Vec::len), Some(2), "{page1}");
    assert!(page1["servers"][0]["metadata"]["role"].is_string(), "{page1}");
    assert_eq!(page1["servers"][0]["flavor"]["original_name"], "m1.large", "newest first: {page1}");
    let next = page1["servers_links"][0]["href"].as_str().expect("a next link");
    let next = next.split_once("/v2.1").map(|(_, p)| format!("/v2.1{p}")).expect("path");
    let (_, page2) = get(cfg.ports.compute, &next, Some("compute 2.96"));
    assert_eq!(page2["servers"].as_array().map(Vec::len), Some(1), "{page2}");
    assert!(page2.get("servers_links").is_none(), "{page2}");
    let (_, old) = get(cfg.ports.compute, "/v2.1/servers/detail", Some("compute 2.46"));
    assert!(old["servers"][0]["flavor"]["id"].is_string(), "{old}");

    // Cinder pools add up to the DR site's 117 TB, in GiB.
    let (_, pools) = get(cfg.ports.volume, &format!("/v3/{project}/scheduler-stats/get_pools?detail=True"), None);
    let pools = pools["pools"].as_array().expect("pools").clone();
    assert_eq!(pools.len(), 3);
    let total: f64 = pools.iter().filter_map(|p| p["capabilities"]["total_capacity_gb"].as_f64()).sum();
    assert!((total - 117e12 / f64::from(1u32 << 30)).abs() < 1.0, "total {total}");
    let free: f64 = pools.iter().filter_map(|p| p["capabilities"]["free_capacity_gb"].as_f64()).sum();
    assert!((total - free - 2000.0).abs() < 1.0, "the seeded 2000 GiB volume is allocated: {total} {free}");

    // Volumes, snapshots (force for in-use), backups, deletes.
    let vpath = format!("/v3/{project}/volumes");
    let (status, v) = send("POST", cfg.ports.volume, &vpath, Some(&json!({"volume": {"size": 10, "name": "d1"}})));
    assert_eq!((status, &v["volume"]["status"]), (202, &json!("creating")), "{v}");
    let vid = v["volume"]["id"].as_str().expect("id").to_owned();
    settle();
    let (_, v) = get(cfg.ports.volume, &format!("{vpath}/{vid}"), None);
    assert_eq!(v["volume"]["status"], "available", "{v}");
    let in_use = get(cfg.ports.volume, &format!("{vpath}/detail?name=dr-backup-proxy-01-data"), None).1;
    let in_use = in_use["volumes"][0]["id"].as_str().expect("seeded volume").to_owned();
    let spath = format!("/v3/{project}/snapshots");
    let snap = |force: bool| json!({"snapshot": {"volume_id": in_use, "name": "s", "force": force}});
    let (status, body) = send("POST", cfg.ports.volume, &spath, Some(&snap(false)));
    assert_eq!(status, 400, "force=false is refused from 3.66: {body}");
    let h = [("X-Auth-Token", token.as_str()), ("OpenStack-API-Version", "volume 3.65")];
    let (status, _, text) = http("POST", cfg.ports.volume, &spath, &h, Some(&snap(false)));
    assert_eq!(status, 400, "{text}");
    let (status, _, text) = http("POST", cfg.ports.volume, &spath, &h, Some(&snap(true)));
    assert_eq!(status, 202, "{text}");
    let sid = serde_json::from_str::<Value>(&text).expect("json")["snapshot"]["id"].as_str().expect("id").to_owned();
    let bpath = format!("/v3/{project}/backups");
    let (status, b) =
        send("POST", cfg.ports.volume, &bpath, Some(&json!({"backup": {"volume_id": vid, "name": "b1"}})));
    assert_eq!(status, 202, "{b}");
    let bid = b["backup"]["id"].as_str().expect("id").to_owned();
    settle();
    let (_, s) = get(cfg.ports.volume, &format!("{spath}/detail"), None);
    assert!(s["snapshots"].as_array().expect("list").iter().all(|s| s["status"] == "available"), "{s}");
    let (_, b) = get(cfg.ports.volume, &format!("{bpath}/detail"), None);
    assert_eq!(b["backups"][0]["status"], "available", "{b}");
    assert_eq!(send("DELETE", cfg.ports.volume, &format!("{spath}/{sid}"), None).0, 202);
    assert_eq!(send("DELETE", cfg.ports.volume, &format!("{bpath}/{bid}"), None).0, 202);
    assert_eq!(send("DELETE", cfg.ports.volume, &format!("{vpath}/{in_use}"), None).0, 400, "attached");
    assert_eq!(send("DELETE", cfg.ports.volume, &format!("{vpath}/{vid}"), None).0, 202);
    settle();
    assert_eq!(get(cfg.ports.volume, &format!("{vpath}/{vid}"), None).0, 404);

    // Glance upload: size and MD5 recorded; data served back; delete.
    let (status, img) = send(
        "POST",
        cfg.ports.image,
        "/v2/images",
        Some(&json!({"name": "app-snap", "disk_format": "qcow2", "container_format": "bare"})),
    );
    assert_eq!((status, &img["status"]), (201, &json!("queued")), "{img}");
    let iid = img["id"].as_str().expect("id").to_owned();
    let data = "hello mangrove\n";
    let mut s = TcpStream::connect(("127.0.0.1", cfg.ports.image)).expect("connect");
    let req = format!(
        "PUT /v2/images/{iid}/file HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n{data}",
        data.len()
    );
    s.write_all(req.as_bytes()).expect("upload");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("upload response");
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");
    let (_, img) = get(cfg.ports.image, &format!("/v2/images/{iid}"), None);
    assert_eq!(img["status"], "active", "{img}");
    assert_eq!(img["size"], data.len(), "{img}");
    assert_eq!(img["checksum"], "12fd197b9dd5fcffdff3ee1603b28d3c", "MD5 of the bytes: {img}");
    let (status, _, back) =
        http("GET", cfg.ports.image, &format!("/v2/images/{iid}/file"), &[("X-Auth-Token", &token)], None);
    assert_eq!((status, back.as_str()), (200, data));
    assert_eq!(send("DELETE", cfg.ports.image, &format!("/v2/images/{iid}"), None).0, 204);
    assert_eq!(get(cfg.ports.image, &format!("/v2/images/{iid}"), None).0, 404);
    let (_, images) = get(cfg.ports.image, "/v2/images?limit=3", None);
    assert_eq!(images["next"].as_str().map(|n| n.starts_with("/v2/images?limit=3&marker=")), Some(true), "{images}");

    // Neutron: a port on dr-prod, a floating IP on it; the isolated drill network has no route.
    let (_, nets) = get(cfg.ports.network, "/v2.0/networks?name=dr-prod", None);
    let prod = nets["networks"][0]["id"].as_str().expect("dr-prod").to_owned();
    let (_, nets) = get(cfg.ports.network, "/v2.0/networks?router:external=true", None);
    let public = nets["networks"][0]["id"].as_str().expect("dr-public").to_owned();
    let (_, nets) = get(cfg.ports.network, "/v2.0/networks?name=dr-drill", None);
    let drill = nets["networks"][0]["id"].as_str().expect("dr-drill").to_owned();
    let (status, port) = send("POST", cfg.ports.network, "/v2.0/ports", Some(&json!({"port": {"network_id": prod}})));
    assert_eq!(status, 201, "{port}");
    let pid = port["port"]["id"].as_str().expect("id").to_owned();
    assert!(port["port"]["fixed_ips"][0]["ip_address"].as_str().is_some_and(|ip| ip.starts_with("10.120.")), "{port}");
    let fip = json!({"floatingip": {"floating_network_id": public, "port_id": pid}});
    let (status, f) = send("POST", cfg.ports.network, "/v2.0/floatingips", Some(&fip));
    assert_eq!((status, &f["floatingip"]["status"]), (201, &json!("ACTIVE")), "{f}");
    let fid = f["floatingip"]["id"].as_str().expect("id").to_owned();
    let (_, dport) = send("POST", cfg.ports.network, "/v2.0/ports", Some(&json!({"port": {"network_id": drill}})));
    let dpid = dport["port"]["id"].as_str().expect("id").to_owned();
    let fip = json!({"floatingip": {"floating_network_id": public, "port_id": dpid}});
    let (status, err) = send("POST", cfg.ports.network, "/v2.0/floatingips", Some(&fip));
    assert_eq!((status, &err["NeutronError"]["type"]), (404, &json!("ExternalGatewayForFloatingIPNotFound")), "{err}");
    assert_eq!(send("DELETE", cfg.ports.network, &format!("/v2.0/floatingips/{fid}"), None).0, 204);
    assert_eq!(send("DELETE", cfg.ports.network, &format!("/v2.0/ports/{pid}"), None).0, 204);
    let (status, err) = get(cfg.ports.network, &format!("/v2.0/ports/{pid}"), None);
    assert_eq!((status, &err["NeutronError"]["type"]), (404, &json!("PortNotFound")), "{err}");
}
