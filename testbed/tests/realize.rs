//! DR instances that really run: a server booted through Mangrove's OpenStack driver with the
//! agent's cloud-init user data gets a real agent, which enrolls under the server's name, and
//! loses it when the server is deleted. In process mode through the testbed's own simulator;
//! in container mode as a container on the isolated drill network, serving its system's page.
//!
//! Needs both binaries built (`cargo build --workspace --bins`); the container test needs
//! Docker and the host image (`mangrove testbed image build`, made on first use).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ContainerTestbed, SMALL_INVENTORY, Testbed, state_of};
use plugins::cloudinit::agent_user_data;
use plugins::http::HttpOptions;
use plugins::hypervisor::{CreateSpec, Hypervisor, InstanceSource, OpState, Operation, VmInfo, wait};
use plugins::openstack::{OpenstackAuth, OpenstackConfig, OpenstackDriver};
use serde_json::Value;

const GIB: u64 = 1 << 30;

fn connect(auth_url: &str, password: &str) -> OpenstackDriver {
    OpenstackDriver::connect(OpenstackConfig {
        auth_url: auth_url.to_string(),
        region: "RegionOne".into(),
        interface: "public".into(),
        auth: OpenstackAuth::Password {
            username: "admin".into(),
            user_domain: "Default".into(),
            password: password.into(),
            project_name: "admin".into(),
            project_domain: "Default".into(),
        },
        http: HttpOptions { ca_file: None, insecure: false, timeout_secs: 30 },
    })
    .expect("login to the OpenStack simulator")
}

fn finish(d: &OpenstackDriver, op: Operation) -> Operation {
    let done = wait(d, op, Duration::from_secs(90), |_| {}).expect("operation ends");
    assert!(matches!(done.state, OpState::Succeeded { .. }), "{done:?}");
    done
}

fn spec(d: &OpenstackDriver, name: &str, network: &str, user_data: String) -> CreateSpec {
    let image = d.images().expect("images").into_iter().find(|i| i.name.as_deref() == Some("cirros")).expect("cirros");
    CreateSpec {
        name: name.into(),
        source: InstanceSource::Image(image.id),
        vcpus: 1,
        memory_bytes: 512 << 20,
        disk_bytes: GIB,
        network: Some(network.into()),
        tags: BTreeMap::from([("system".to_string(), "web".to_string())]),
        user_data: Some(user_data),
    }
}

fn vm(d: &OpenstackDriver, id: &str) -> VmInfo {
    d.inventory().expect("inventory").vms.into_iter().find(|v| v.id == id).expect("the server is listed")
}

fn token_of(v: &Value) -> String {
    v["token"].as_str().expect("a token").to_string()
}

#[test]
fn a_server_booted_with_the_agent_user_data_runs_an_agent_until_it_is_deleted() {
    let tb = Testbed::up(Some(SMALL_INVENTORY));
    let dir = std::fs::canonicalize(tb.path()).expect("testbed dir");
    let (auth_url, password) = tb.openstack_admin();
    let d = connect(&auth_url, &password);
    let name = "dr-web-app-01";
    let token = token_of(&tb.json(&["token", "create", "--role", "agent", "--host", name, "--ttl", "10m"]));
    let user_data = agent_user_data(&tb.enroll, &token, Some("/srv/web")).expect("user data");

    let done = finish(&d, d.create_instance(&spec(&d, name, "dr-prod", user_data.clone())).expect("create"));
    let OpState::Succeeded { result: Some(id) } = done.state else { panic!("{done:?}") };
    let hs = tb.wait(Duration::from_secs(60), |hs| state_of(hs, name) == "connected");
    assert!(hs.is_some(), "{name} never connected: {:?}", tb.hosts());

    let state_dir = dir.join("instances").join(&id);
    let agent = || -> Vec<(u32, Vec<String>)> {
        testbed::procs::under(&dir)
            .into_iter()
            .filter(|(_, argv)| argv.iter().any(|a| Path::new(a) == state_dir))
            .collect()
    };
    let running = agent();
    assert_eq!(running.len(), 1, "one agent process for the server: {running:?}");
    assert!(running[0].1.iter().all(|a| !a.contains(&token)), "the token is in argv: {running:?}");
    assert!(state_dir.join("agent.pem").exists(), "the agent enrolled into {}", state_dir.display());

    // The name is taken: a retry of the create fails instead of booting a second agent.
    assert!(d.create_instance(&spec(&d, name, "dr-prod", user_data)).is_err());

    finish(&d, d.delete_instance(&id).expect("delete"));
    assert!(agent().is_empty(), "the agent outlived its server: {:?}", agent());
    assert!(!state_dir.exists(), "{} is left behind", state_dir.display());
    let hs = tb.wait(Duration::from_secs(30), |hs| state_of(hs, name) != "connected");
    assert!(hs.is_some(), "{name} still shows connected");
}

/// The small province with `web` backed up from `/srv/web` into a repository at DR.
fn container_inventory() -> String {
    SMALL_INVENTORY.replace(
        "    rto: 8h\n",
        "    rto: 8h\n    backup: { paths: [/srv/web], schedule: \"0 0 1 1 *\", check: \"0 0 1 1 *\", restore_test: \"0 0 1 1 *\" }\n",
    ) + "backup_repositories:\n  - { name: dr-san, site: dr, location: /srv/backup/dr-san }\n"
}

fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker").args(args).output().expect("docker is installed");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn curl(url: &str) -> String {
    let out = Command::new("curl").args(["-s", "--max-time", "5", url]).output().expect("curl is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` until it returns true or `secs` pass.
fn eventually(secs: u64, f: impl Fn() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    false
}

#[test]
fn containers_a_drill_instance_runs_isolated_enrolls_and_serves_its_systems_page() {
    let tb = ContainerTestbed::up(Some(&container_inventory()), 3);
    let dir = std::fs::canonicalize(tb.dir.path()).expect("testbed dir");
    // The guest machine of `web` serves its seeded data dir.
    let guest = testbed::containers::container_name(&dir, "web-app-01");
    let (ok, guest_ip) = docker(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", &guest]);
    assert!(ok, "{guest_ip}");
    let guest_ip = guest_ip.trim().to_string();
    assert!(
        eventually(20, || curl(&format!("http://{guest_ip}/")).contains("<h1>web</h1>")),
        "web-app-01 serves no page"
    );

    // The testbed's own OpenStack simulator, which the controller's container reaches too.
    let plan = testbed::containers::plan_of(&dir).expect("the testbed's networks");
    let sim: toml::Value = toml::from_str(
        &std::fs::read_to_string(dir.join("platforms/openstack/sim.toml")).expect("the simulator's config"),
    )
    .expect("sim.toml parses");
    let auth_url = format!(
        "http://{}:{}/v3",
        sim["host"].as_str().expect("host"),
        sim["ports"]["identity"].as_integer().expect("identity port")
    );
    let password = std::fs::read_to_string(dir.join("platforms/openstack/admin.secret")).expect("admin password");
    let d = connect(&auth_url, password.trim());

    let name = "drill-web-app-01";
    let token = token_of(&tb.json(&["token", "create", "--role", "agent", "--host", name, "--ttl", "10m"]));
    let enroll = format!("{}:{}", plan.dc.controller(), enroll_port(&dir));
    let user_data = agent_user_data(&enroll, &token, Some("/srv/web")).expect("user data");
    let done = finish(&d, d.create_instance(&spec(&d, name, "dr-drill", user_data)).expect("create"));
    let OpState::Succeeded { result: Some(id) } = done.state else { panic!("{done:?}") };
    let container = testbed::openstack::realize::container_name(&dir, &id);
    let (ok, ip) = docker(&[
        "inspect",
        "-f",
        &format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            testbed::containers::drill_net(&plan).name
        ),
        &container,
    ]);
    assert!(ok, "the server's container runs on the drill network: {ip}");
    let ip = ip.trim().to_string();
    let addrs: Vec<String> = vm(&d, &id).networks.into_iter().flat_map(|n| n.addresses).collect();
    assert_eq!(addrs, vec![ip.clone()], "Nova reports the container's address");
    let hs = tb.wait(Duration::from_secs(60), |hs| state_of(hs, name) == "connected");
    assert!(hs.is_some(), "{name} never connected through the drill network");
    // Isolated: the DC's guest is out of reach; the backup repositories are mounted.
    let (reached, _) = docker(&["exec", &container, "ping", "-c1", "-W1", &guest_ip]);
    assert!(!reached, "a drill instance reached the DC");
    assert!(
        docker(&["exec", &container, "test", "-d", "/srv/backup/dr-san"]).0,
        "no backup repository in the instance"
    );

    // What a restore puts in the serve dir is what the instance serves.
    let page = dir.join("hosts/web-app-01/srv/web/index.html");
    assert!(docker(&["cp", &page.display().to_string(), &format!("{container}:/srv/web/index.html")]).0);
    assert!(eventually(20, || curl(&format!("http://{ip}/")).contains("<h1>web</h1>")), "the instance serves no page");

    finish(&d, d.delete_instance(&id).expect("delete"));
    let (_, left) = docker(&["ps", "-aq", "--filter", &format!("name={container}")]);
    assert!(left.trim().is_empty(), "the container outlived its server");
    assert!(!dir.join("instances").join(&id).exists(), "the instance's state dir is left behind");
}

/// The enrollment port of the testbed in `dir`, as `testbed.toml` keeps it.
fn enroll_port(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("testbed.toml")).expect("testbed.toml");
    let v: toml::Value = toml::from_str(&text).expect("testbed.toml parses");
    v.get("ports").and_then(|p| p.get("enroll")).and_then(toml::Value::as_integer).expect("ports.enroll").to_string()
}
