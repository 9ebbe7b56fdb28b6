//! `mangrove testbed up|down`: the one-command Cà Mau testbed, driven through the testbed
//! crate's launcher and this controller's own API.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use testbed::{Layout, User, containers, faults, layout::CLI_MARKER, procs, volumes};

use crate::client::{Client, default_config_path};

/// The Cà Mau example inventory, built in so `testbed up` works from any directory.
pub const EMBEDDED_INVENTORY: &str = include_str!("../../inventory/examples/camau.yaml");

/// The recovery plan of the six basic systems, which `testbed up` applies on the embedded
/// inventory (`<dir>/plans/camau-all.yaml`).
pub const EMBEDDED_PLAN: &str = include_str!("../../inventory/examples/camau-all.yaml");

/// People the testbed creates: one per role, and a second operator (for approvals that need
/// two people).
const USERS: &[(&str, &str)] = &[
    ("operator", "operator"),
    ("operator2", "operator"),
    ("security", "security"),
    ("planner", "planner"),
    ("auditor", "auditor"),
];

const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Where the testbed's machines run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HostsMode {
    /// One agent process per machine on this host (no Docker needed).
    Processes,
    /// One container per machine on a `dc` and a `dr` network (Docker).
    Containers,
}

pub struct UpOptions {
    pub dir: PathBuf,
    pub inventory: Option<PathBuf>,
    pub detach: bool,
    pub hosts: HostsMode,
    /// The site whose network the controller joins (containers only).
    pub controller_site: String,
}

/// Where the host image's build files are cached: `$XDG_CACHE_HOME/mangrove/image`
/// (`~/.cache/mangrove/image`).
pub fn image_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")).unwrap_or_else(|| PathBuf::from("."))
    });
    base.join("mangrove").join("image")
}

/// `mangrove testbed image build`: the host image for this build's agent.
pub fn image_build(json_out: bool) -> Result<()> {
    let started = Instant::now();
    let built = testbed::image::build(&image_spec(&sibling_binary("mangrove-agent")?), &|m| progress(m))?;
    let v = json!({
        "image": built.tag,
        "base": built.base_tag,
        "base_built": built.base_built,
        "agent_layer_built": built.host_built,
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    crate::cli::emit(json_out, &v, |v| {
        format!(
            "image: {} (base {}; {})\n",
            v["image"].as_str().unwrap_or("-"),
            v["base"].as_str().unwrap_or("-"),
            match (built.base_built, built.host_built) {
                (true, _) => "base and agent layer built",
                (false, true) => "agent layer built on the cached base",
                (false, false) => "cached, nothing to build",
            }
        )
    });
    Ok(())
}

/// Where the vCenter simulator's launcher is built: `$XDG_CACHE_HOME/mangrove/vcsim`.
pub fn vcsim_cache_dir() -> PathBuf {
    image_cache_dir().with_file_name("vcsim")
}

/// `mangrove testbed deps [--install]`: what the testbed and the tests need, and whether it is
/// here; with `install`, installs what is missing (Debian packages as root, the Python venv).
pub fn deps(install: bool, json_out: bool) -> Result<()> {
    let mut all = testbed::deps::check();
    if install {
        let missing: Vec<_> = all.iter().filter(|d| !d.present).cloned().collect();
        if !missing.is_empty() {
            progress(&format!("installing {}", missing.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")));
            testbed::deps::install(&missing)?;
        }
        all = testbed::deps::check();
    }
    let v = json!(
        all.iter()
            .map(|d| json!({"name": d.name, "present": d.present, "enables": d.enables, "checked": d.detection}))
            .collect::<Vec<_>>()
    );
    crate::cli::emit(json_out, &v, |_| {
        let mut out = String::new();
        for d in &all {
            out.push_str(&format!("{} {} — {}\n", if d.present { "ok     " } else { "MISSING" }, d.name, d.enables));
        }
        out
    });
    let missing: Vec<&str> = all.iter().filter(|d| !d.present).map(|d| d.name.as_str()).collect();
    if install && !missing.is_empty() {
        bail!("still missing after installing: {}", missing.join(", "));
    }
    Ok(())
}

/// `$XDG_STATE_HOME/mangrove/testbed` (`~/.local/state/mangrove/testbed`).
pub fn default_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(|h| Path::new(&h).join(".local").join("state"))
            .unwrap_or_else(|| PathBuf::from("."))
    });
    base.join("mangrove").join("testbed")
}

fn sibling_binary(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find this program's path")?;
    let p = me.with_file_name(name);
    if p.exists() {
        Ok(p)
    } else {
        bail!("{name} not found next to {} — build both binaries with `cargo build --release --bins`", me.display())
    }
}

fn progress(msg: &str) {
    eprintln!("testbed: {msg}");
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub fn up(opts: UpOptions) -> Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&opts.dir).with_context(|| format!("cannot create {}", opts.dir.display()))?;
    let dir = std::fs::canonicalize(&opts.dir)?;
    if procs::under(&dir).iter().any(|(_, argv)| argv.iter().any(|a| a == "controller")) {
        bail!(
            "a testbed is already running in {}; stop it with `mangrove testbed down --dir {}`",
            dir.display(),
            dir.display()
        );
    }
    let inventory = match &opts.inventory {
        Some(p) => p.clone(),
        None => {
            let p = dir.join("inventory.yaml");
            std::fs::write(&p, EMBEDDED_INVENTORY).with_context(|| format!("cannot write {}", p.display()))?;
            p
        }
    };
    let mut inventory = inventory;
    if opts.hosts == HostsMode::Containers && !inventory.starts_with(&dir) {
        // The controller's container sees only the testbed dir.
        let copy = dir.join("inventory.yaml");
        std::fs::copy(&inventory, &copy).with_context(|| format!("cannot copy {}", inventory.display()))?;
        inventory = copy;
    }
    let mut layout = Layout::prepare(&dir, &inventory)?;
    let mangrove = std::env::current_exe()?;
    let agent_bin = sibling_binary("mangrove-agent")?;

    // The platforms first: the controller's config names them, and the proxy agent reads one.
    let mut ksc = None;
    let mut dns = None;
    let mut platforms = match opts.hosts {
        HostsMode::Processes => {
            progress("starting the platform simulators (vCenter, OpenStack)");
            let p = testbed::platforms::start(&layout, &mangrove, &vcsim_cache_dir());
            match &p.vsphere {
                Ok(v) => progress(&format!("vSphere: VMware's vCenter simulator at {}", v.url)),
                Err(why) => progress(&format!(
                    "vSphere side is OFF: {why}; the ESXi hosts get stand-in agents (`mangrove testbed deps --install`)"
                )),
            }
            match &p.openstack {
                Ok(o) => progress(&format!("OpenStack: simulator at {}", o.auth_url)),
                Err(why) => progress(&format!("OpenStack side is OFF: {why}")),
            }
            layout.write_controller_config_with(&format!(
                "{}{}",
                p.controller_section(),
                testbed::devices::controller_section(None)
            ))?;
            ksc = add_ksc(&layout, testbed::ksc::launch::start_process(&layout, &mangrove))?;
            dns = add_dns(&layout, testbed::bind::start_for(&layout, [127, 0, 2]))?;
            Some(p)
        }
        // Started with the networks below: the controller's container reaches them there.
        HostsMode::Containers => None,
    };

    let mut container_net = None;
    let (api_url, host_addr, controller_alive): (String, String, Box<dyn Fn() -> bool>) = match opts.hosts {
        HostsMode::Processes => {
            progress(&format!("starting the controller in {}", dir.display()));
            let ctl = testbed::spawn_detached(
                &mangrove,
                &[
                    "controller".into(),
                    "run".into(),
                    "--config".into(),
                    layout.controller_config().display().to_string(),
                ],
                &layout.log("controller"),
            )?;
            (layout.api_url(), "127.0.0.1".into(), Box::new(move || procs::alive(ctl.pid)))
        }
        HostsMode::Containers => {
            let image = ensure_image(&agent_bin)?;
            // Whatever an earlier, interrupted run of this dir left behind.
            containers::remove_all(&dir)?;
            let plan = containers::create_networks(&dir)?;
            containers::start_router(&plan, &dir, &image)?;
            let net = plan.net(&opts.controller_site).clone();
            let ip = net.controller();
            layout.write_container_controller_config(ip)?;
            // The DR site's OpenStack simulator, on the address the host holds on the
            // controller's network; it realises DR instances as containers of this testbed.
            let mounts = testbed::backup_storage::container_mounts(&layout, "")?;
            let realize = testbed::openstack::realize::container_config(&dir, &plan, &image, ip, mounts);
            let p = testbed::platforms::start_for_containers(&layout, &mangrove, net.gateway(), &realize);
            match &p.openstack {
                Ok(o) => progress(&format!("OpenStack: simulator at {}", o.auth_url)),
                Err(why) => progress(&format!("OpenStack side is OFF: {why}")),
            }
            append_file(&layout.controller_config(), &p.controller_section())?;
            platforms = Some(p);
            ksc = add_ksc(
                &layout,
                testbed::ksc::launch::start_container(&layout, &plan, &image, &mangrove, &opts.controller_site),
            )?;
            append_file(&layout.controller_config(), &testbed::devices::controller_section(Some(plan.net("dc").base)))?;
            // On the address the host holds on the controller's network, like the simulators:
            // the controller's container updates and asks it there.
            layout.dns.server = std::net::SocketAddr::new(net.gateway().into(), layout.dns.server.port());
            dns = add_dns(&layout, testbed::bind::start_for(&layout, plan.net("dc").base))?;
            progress(&format!("starting the controller in a container at {ip} ({} network)", net.site));
            let log = layout.log("controller");
            containers::ensure_dir(log.parent().unwrap_or(&dir))?;
            let d = dir.display().to_string();
            containers::start(
                &plan,
                &dir,
                &image,
                &containers::ContainerSpec {
                    name: &plan.controller_name(),
                    hostname: "controller",
                    site: &opts.controller_site,
                    ip: Some(ip),
                    env: vec![],
                    mounts: vec![
                        (d.clone(), d.clone(), false),
                        (mangrove.display().to_string(), "/usr/local/bin/mangrove".into(), true),
                    ],
                    command: format!(
                        "/usr/local/bin/mangrove controller run --config {} >>{} 2>&1",
                        layout.controller_config().display(),
                        log.display()
                    ),
                },
            )?;
            // DR drills' isolated network, where the controller is the one thing reachable.
            containers::create_drill_network(&dir, &plan)?;
            containers::connect_controller_to_drill(&plan)?;
            let name = plan.controller_name();
            container_net = Some(ContainerNet { plan, image, controller_ip: ip.to_string() });
            (format!("https://{ip}:{}", layout.ports.api), ip.to_string(), Box::new(move || containers::running(&name)))
        }
    };
    start_devices(&layout, container_net.as_ref(), &mangrove)?;
    let admin_token = wait_controller(&layout, &*controller_alive)?;
    let admin = Client::new(&api_url, Some(admin_token.clone()), Some(&layout.controller_ca()))?;
    while !admin.ready() {
        if !controller_alive() {
            bail!("the controller exited; its log ends:\n{}", tail(&layout.log("controller"), 15));
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!("the controller did not become ready; see {}", layout.log("controller").display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // Each user gets a random password for the web console, set the way `users add` sets it;
    // a testbed brought up again keeps the passwords it wrote before.
    let earlier = layout.read_users()?;
    let password = |name: &str| {
        earlier
            .iter()
            .find(|u| u.name == name && !u.password.is_empty())
            .map_or_else(|| crate::app::random_hex(12), |u| u.password.clone())
    };
    let mut users = vec![User {
        name: "admin".into(),
        role: "admin".into(),
        token: admin_token.clone(),
        password: password("admin"),
    }];
    for (name, role) in USERS {
        let v = admin.post("/api/v1/tokens", &json!({"role": role, "user": name}))?;
        users.push(User {
            name: name.to_string(),
            role: role.to_string(),
            token: token_of(&v)?,
            password: password(name),
        });
    }
    for u in &users {
        crate::cli_users::add(&admin, &u.name, &u.role, &u.password)?;
    }
    layout.write_users(&users)?;
    let cli = layout.write_cli_config(&api_url, &admin_token)?;
    install_user_cli_config(&layout, &api_url, &admin_token);

    // With vCenter up, the ESXi hosts are reported by the proxy agent; without it they get
    // stand-in agents with simulated facts.
    let proxied: Vec<String> = platforms
        .as_ref()
        .map(|p| p.proxied_hosts(&layout.inventory).into_iter().map(str::to_string).collect())
        .unwrap_or_default();
    let machines: Vec<_> =
        layout.agent_machines().into_iter().filter(|m| !proxied.iter().any(|p| p == m.name)).collect();
    match &container_net {
        None => start_agent_processes(&layout, &admin, &agent_bin, &machines, platforms.as_ref())?,
        Some(net) => start_agent_containers(&layout, &admin, net, &mangrove, &machines)?,
    }
    let mut want: Vec<String> = machines.iter().map(|m| m.name.to_string()).collect();
    want.extend(proxied.iter().cloned());
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let hosts = admin.get("/api/v1/hosts")?;
        let connected = hosts
            .as_array()
            .map(|a| {
                a.iter().filter(|h| h["state"] == "connected" && want.iter().any(|w| h["name"] == w.as_str())).count()
            })
            .unwrap_or(0);
        if connected == want.len() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {connected} of {} hosts connected (agents, and ESXi hosts through the proxy); logs are in {}",
                want.len(),
                dir.join("logs").display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if let Err(e) = seed_capacity_history(&admin) {
        progress(&format!("capacity history not seeded (reports show today only): {e:#}"));
    }
    if container_net.is_some() {
        first_backups(&admin)?;
    }
    if opts.inventory.is_none() {
        apply_shipped_plan(&layout, &admin)?;
    }
    // The KSC roll-up is part of "ready" (its first read takes a few seconds).
    let ksc_computers = match &ksc {
        Some(_) => Some(crate::testbed_ksc::wait_rollup(&admin, READY_TIMEOUT)?),
        None => None,
    };
    println!("api: {api_url}");
    println!("agents: {host_addr}:{}", layout.ports.agents);
    println!("enroll: {host_addr}:{}", layout.ports.enroll);
    println!("token: {admin_token}");
    println!("dir: {}", dir.display());
    if let Some(p) = &platforms {
        if let Ok(v) = &p.vsphere {
            println!("vcenter: {} (govc.env)", v.url);
        }
        if let Ok(o) = &p.openstack {
            println!("openstack: {} (clouds.yaml, cloud camau-dr)", o.auth_url);
        }
    }
    if let Some(b) = &dns {
        println!("dns: {} (zones {}, {}; key {})", b.server, b.zone, b.test_zone, b.key_file.display());
    }
    if let (Some(k), Some(n)) = (&ksc, ksc_computers) {
        println!("ksc: {} ({n} computers; faults: `mangrove testbed fault ksc …`)", k.url);
    }
    println!("cli config: {}", cli.display());
    println!("testbed ready: {} hosts", want.len());
    progress(&format!("ready in {:.1} s", started.elapsed().as_secs_f64()));
    if opts.detach {
        return Ok(());
    }
    progress("running; press Ctrl-C to stop");
    wait_for_ctrl_c();
    down(&dir)
}

/// A first backup of every system's files, checked by `restic check`: a drill can start at
/// once from a verified restore point.
fn first_backups(admin: &Client) -> Result<()> {
    let plans = admin.get("/api/v1/backups/plans")?;
    let files: Vec<(String, String)> = plans
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["kind"] == "files")
        .filter_map(|p| Some((p["system"].as_str()?.to_string(), p["plan"].as_str()?.to_string())))
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    progress(&format!("first backups of {} systems, then their check", files.len()));
    // One system at a time: the systems share repositories, and restic (0.14, Debian's) makes
    // them unsafe to share at once: two `restic init` of a new repository leave it with mixed
    // keys, a reader can meet a snapshot file another run is still writing, and retention and
    // `restic check` lock a repository exclusively. A run that meets a lock the controller's
    // own scheduler holds is tried again after a pause.
    for (system, plan) in &files {
        run_until_unlocked(
            admin,
            "backup",
            system,
            &format!("/api/v1/backups/systems/{}/run", crate::cli::urlencode(system)),
            plan,
        )?;
    }
    for (system, plan) in &files {
        run_until_unlocked(
            admin,
            "check",
            system,
            &format!("/api/v1/backups/systems/{}/verify", crate::cli::urlencode(system)),
            plan,
        )?;
    }
    Ok(())
}

/// POSTs `path` (a backup or a check of `system`'s `plan`) and waits for its runs; again, up
/// to five times with a pause, while one ends on a locked repository.
fn run_until_unlocked(admin: &Client, what: &str, system: &str, path: &str, plan: &str) -> Result<()> {
    let mut tries = 0;
    loop {
        tries += 1;
        // The scheduler may have started the same plan's run just now: wait for it to end.
        let v = match admin.post(path, &json!({"plan": plan})) {
            Err(e) if e.to_string().contains("already running") && tries < 5 => {
                std::thread::sleep(Duration::from_secs(5));
                continue;
            }
            other => other?,
        };
        let mut failed = None;
        for id in crate::cli_backups::started_runs(&v) {
            let r = crate::cli_backups::wait_run(admin, &id, false)?;
            if r["status"] != "ok" {
                failed = Some((id, r["error"].as_str().unwrap_or("-").to_string()));
            }
        }
        match failed {
            None => return Ok(()),
            Some((_, e)) if e.contains("locked") && tries < 5 => std::thread::sleep(Duration::from_secs(5)),
            Some((id, e)) => bail!("the first {what} of {system} failed (run {id}): {e}"),
        }
    }
}

/// Writes the shipped recovery plan into the testbed dir and applies it: a drill of the six
/// systems can start at once.
fn apply_shipped_plan(layout: &Layout, admin: &Client) -> Result<()> {
    let dir = layout.dir.join("plans");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = dir.join("camau-all.yaml");
    std::fs::write(&file, EMBEDDED_PLAN).with_context(|| format!("cannot write {}", file.display()))?;
    let v = admin
        .post("/api/v1/plans", &json!({"file": file.display().to_string(), "text": EMBEDDED_PLAN}))
        .context("applying the recovery plan camau-all")?;
    for w in v["warnings"].as_array().into_iter().flatten() {
        progress(&format!("recovery plan camau-all: {}", w.as_str().unwrap_or_default()));
    }
    Ok(())
}

/// Starts the video-conference devices: containers of their own, or simulator processes.
fn start_devices(layout: &Layout, net: Option<&ContainerNet>, mangrove: &Path) -> Result<()> {
    let devices = testbed::devices::prepare(layout, net.is_some())?;
    if devices.is_empty() {
        return Ok(());
    }
    progress(&format!("starting {} video-conference devices", devices.len()));
    match net {
        Some(n) => testbed::devices::start_containers(layout, &n.plan, &n.image, mangrove, &devices)?,
        None => testbed::devices::start_processes(layout, mangrove, &devices)?,
    }
    Ok(())
}

fn append_file(path: &Path, text: &str) -> Result<()> {
    let old = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    testbed::layout::write_file(path, &format!("{old}{text}"), 0o644)?;
    Ok(())
}

/// Reads the platforms once and imports a plausible year of history ending at what they show,
/// so capacity reports mean something on the first run (see `capacity::synthetic`).
fn seed_capacity_history(admin: &Client) -> Result<()> {
    let platforms = admin.get("/api/v1/platforms")?;
    for p in platforms.as_array().into_iter().flatten() {
        if let Some(name) = p["name"].as_str() {
            admin.post_long(&format!("/api/v1/platforms/{name}/sync"), &json!({}), Duration::from_secs(120))?;
        }
    }
    let rows = admin.get("/api/v1/capacity/forecast")?;
    let today: Vec<_> = rows
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some(crate::capacity::synthetic::Today {
                site: r["site"].as_str()?.to_string(),
                resource: r["resource"].as_str()?.to_string(),
                used: r["used"].as_f64()?,
                capacity: r["capacity"].as_f64(),
            })
        })
        .collect();
    let now = crate::app::now_ms() / 1000;
    let samples = crate::capacity::synthetic::history(&today, now, 365, 0x0063_616d_6175);
    let n = crate::cli_capacity::import_samples(admin, &samples)?;
    progress(&format!("capacity history: {n} daily samples over a year imported"));
    Ok(())
}

/// Appends the KSC simulator's `[ksc]` section to the controller's config, or says why the
/// endpoint-protection side is off.
fn add_ksc(
    layout: &Layout,
    started: std::result::Result<testbed::ksc::launch::KscSide, String>,
) -> Result<Option<testbed::ksc::launch::KscSide>> {
    match started {
        Ok(k) => {
            progress(&format!("Kaspersky Security Center: simulator at {}", k.url));
            let path = layout.controller_config();
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            testbed::layout::write_file(&path, &format!("{text}{}", k.controller_section()), 0o644)?;
            Ok(Some(k))
        }
        Err(why) => {
            progress(&format!("Kaspersky Security Center side is OFF: {why}"));
            Ok(None)
        }
    }
}

/// Appends the BIND's `[dns]` section to the controller's config, or says why DNS is off.
fn add_dns(
    layout: &Layout,
    started: std::result::Result<testbed::bind::Bind, testbed::TestbedError>,
) -> Result<Option<testbed::bind::Bind>> {
    match started {
        Ok(b) => {
            progress(&format!("DNS: BIND at {} (zones {} and {})", b.server, b.zone, b.test_zone));
            append_file(&layout.controller_config(), &b.controller_section())?;
            Ok(Some(b))
        }
        Err(why) => {
            progress(&format!("DNS side is OFF (no DNS switch in failovers): {why}"));
            Ok(None)
        }
    }
}

/// A container testbed's networks, image and controller address, as `up` made them.
struct ContainerNet {
    plan: containers::Plan,
    image: String,
    controller_ip: String,
}

/// Enrolls (side by side) and starts one agent process per machine.
fn start_agent_processes(
    layout: &Layout,
    admin: &Client,
    agent_bin: &Path,
    machines: &[inventory::Machine<'_>],
    platforms: Option<&testbed::platforms::Platforms>,
) -> Result<()> {
    progress(&format!("enrolling {} agents", machines.len()));
    let mut enrolling = Vec::new();
    for m in machines {
        let config = layout.write_agent_config(m)?;
        if let Some(section) = platforms.map(|p| p.proxy_section(layout, m.name)).transpose()?.flatten() {
            let text = std::fs::read_to_string(&config)?;
            testbed::layout::write_file(&config, &format!("{text}{section}"), 0o644)?;
        }
        let state = layout.agent_dir(m.name);
        if state.join("agent.pem").exists() {
            continue; // enrolled on an earlier `up`
        }
        // The token goes in the environment, not in the argument list other users can read.
        let child = spawn_piped(
            Command::new(agent_bin)
                .args(["enroll", "--controller", &layout.enroll_addr().to_string(), "--state-dir"])
                .arg(&state)
                .env("MANGROVE_AGENT_TOKEN", agent_token(admin, m.name)?)
                .stdin(std::process::Stdio::null()),
        )?;
        enrolling.push((m.name.to_string(), child));
    }
    for (name, child) in enrolling {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("enrolling {name} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
    }
    progress("starting agents");
    for m in machines {
        let state = layout.agent_dir(m.name);
        testbed::spawn_detached(
            agent_bin,
            &["run".into(), "--state-dir".into(), state.display().to_string()],
            &layout.log(&format!("agent-{}", m.name)),
        )?;
    }
    Ok(())
}

/// Starts one container per machine, named after it, on its site's network; each enrolls
/// itself with a one-time token and reports its own (real) facts.
fn start_agent_containers(
    layout: &Layout,
    admin: &Client,
    net: &ContainerNet,
    mangrove: &Path,
    machines: &[inventory::Machine<'_>],
) -> Result<()> {
    let (plan, image, controller_ip) = (&net.plan, &net.image, &net.controller_ip);
    progress(&format!("starting {} host containers", machines.len()));
    for m in machines {
        let state = layout.agent_dir(m.name);
        volumes::ensure(&layout.dir, m.name, &state)?;
        let mut env = vec![
            ("MANGROVE_ENROLL".to_string(), format!("{controller_ip}:{}", layout.ports.enroll)),
            ("MANGROVE_STATE_DIR".to_string(), state.display().to_string()),
        ];
        if !state.join("agent.pem").exists() {
            env.push(("MANGROVE_AGENT_TOKEN".to_string(), agent_token(admin, m.name)?));
        }
        // The systems' guest VMs run clamd on the image's custom signature database.
        if let Some(system) = m.system {
            env.push(("MANGROVE_CLAMD".to_string(), "1".to_string()));
            // Its small real service: the system's data dir over HTTP (the image's `web`).
            env.push(("MANGROVE_SERVE_DIR".to_string(), format!("/srv/{system}")));
        }
        let s = state.display().to_string();
        let name = containers::container_name(&layout.dir, m.name);
        // At its inventory address (mapped onto the site's network), where the production
        // DNS records the testbed serves point.
        let address = layout
            .inventory
            .workload(m.name)
            .and_then(|w| w.address)
            .or_else(|| layout.inventory.hosts.iter().find(|h| h.name == m.name).and_then(|h| h.address));
        let ip = match address {
            Some(std::net::IpAddr::V4(a)) => containers::testbed_address(a, plan.net(m.site).base),
            _ => None,
        };
        // `mangrove` for the delay proxy of `fault latency`; the backup storage every host
        // mounts, and the data of the systems this host backs up.
        let mut mounts =
            vec![(s.clone(), s, false), (mangrove.display().to_string(), "/usr/local/bin/mangrove".into(), true)];
        mounts.extend(testbed::backup_storage::container_mounts(layout, m.name)?);
        containers::start(
            plan,
            &layout.dir,
            image,
            &containers::ContainerSpec {
                name: &name,
                hostname: m.name,
                site: m.site,
                ip,
                env,
                mounts,
                command: "/usr/bin/runsvdir -P /etc/service".into(),
            },
        )?;
    }
    Ok(())
}

/// How the host image is built for `agent_bin`: the cache dir, and the Debian mirror
/// (`MANGROVE_DEBIAN_MIRROR`, default deb.debian.org).
fn image_spec(agent_bin: &Path) -> testbed::image::ImageSpec {
    testbed::image::ImageSpec {
        cache_dir: image_cache_dir(),
        agent_bin: agent_bin.to_path_buf(),
        mirror: std::env::var("MANGROVE_DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".into()),
    }
}

/// The host image for this build's agent, built if missing.
fn ensure_image(agent_bin: &Path) -> Result<String> {
    Ok(testbed::image::build(&image_spec(agent_bin), &|m| progress(m))?.tag)
}

/// Starts `cmd` with its output piped, without waiting, so enrollments run side by side.
fn spawn_piped(cmd: &mut Command) -> Result<std::process::Child> {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow!("cannot start {:?}: {e}", cmd.get_program()))
}

/// A single-use bootstrap token bound to `host`, for an agent the testbed enrolls now.
fn agent_token(admin: &Client, host: &str) -> Result<String> {
    token_of(&admin.post("/api/v1/tokens", &json!({"role": "agent", "host": host, "ttl": "10m"}))?)
}

fn token_of(v: &Value) -> Result<String> {
    v["token"].as_str().map(str::to_string).ok_or_else(|| anyhow!("controller returned no token"))
}

/// Waits for the controller's first-start files; returns the admin token.
fn wait_controller(layout: &Layout, alive: &dyn Fn() -> bool) -> Result<String> {
    let start = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(layout.admin_token_file())
            && layout.controller_ca().exists()
        {
            return Ok(t.trim().to_string());
        }
        if !alive() {
            bail!("the controller exited; its log ends:\n{}", tail(&layout.log("controller"), 15));
        }
        if start.elapsed() > READY_TIMEOUT {
            bail!(
                "the controller wrote no admin token in {}s; see {}",
                READY_TIMEOUT.as_secs(),
                layout.log("controller").display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Points the user's CLI config at this testbed, unless they have a config of their own.
fn install_user_cli_config(layout: &Layout, api_url: &str, admin_token: &str) {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let Some(path) = default_config_path(&env) else { return };
    let ours = std::fs::read_to_string(&path).map(|t| t.starts_with(CLI_MARKER)).unwrap_or(true);
    if !ours {
        progress(&format!(
            "left {} alone (not written by a testbed); use MANGROVE_CONFIG={}",
            path.display(),
            layout.dir.join("cli.toml").display()
        ));
        return;
    }
    if let Err(e) = testbed::layout::write_file(&path, &layout.cli_config_text(api_url, admin_token), 0o600) {
        progress(&format!("could not write {}: {e}", path.display()));
    }
}

fn wait_for_ctrl_c() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    // Block the signals and wait for one synchronously: no handler, no unsafe code.
    if set.thread_block().is_ok() {
        let _ = set.wait();
    }
}

fn testbed_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(dir).with_context(|| format!("no testbed at {}", dir.display()))
}

/// `testbed fault partition A B`.
pub fn fault_partition(dir: &Path, a: &str, b: &str, json_out: bool) -> Result<()> {
    let f = faults::partition(&testbed_dir(dir)?, a, b)?;
    crate::cli::emit(json_out, &json!(f), |_| format!("partitioned {a} from {b}\n"));
    Ok(())
}

/// `testbed fault kill|stop|start|pause|disk-full HOST`.
pub fn fault_host(dir: &Path, what: &str, host: &str, json_out: bool) -> Result<()> {
    let dir = testbed_dir(dir)?;
    let v = match what {
        "kill" => {
            faults::kill_agent(&dir, host)?;
            json!({"kind": "kill", "host": host})
        }
        "start" => json!({"kind": "start", "host": host, "was_stopped": faults::start_host(&dir, host)?}),
        "pause" => json!(faults::host_fault(&dir, host, true)?),
        "disk-full" => json!(faults::disk_full(&dir, host)?),
        _ => json!(faults::host_fault(&dir, host, false)?),
    };
    crate::cli::emit(json_out, &v, |_| format!("{what} {host}\n"));
    Ok(())
}

/// `testbed fault clock HOST OFFSET`.
pub fn fault_clock(dir: &Path, host: &str, offset: &str, json_out: bool) -> Result<()> {
    let f = faults::clock(&testbed_dir(dir)?, host, offset)?;
    crate::cli::emit(json_out, &json!(f), |_| format!("{host}'s agent now sees its clock {offset} off\n"));
    Ok(())
}

/// `testbed fault latency HOST DELAY`.
pub fn fault_latency(dir: &Path, host: &str, delay: &str, json_out: bool) -> Result<()> {
    let f = faults::latency(&testbed_dir(dir)?, host, delay)?;
    crate::cli::emit(json_out, &json!(f), |_| {
        format!("{host}'s traffic to the controller is now held {delay} each way\n")
    });
    Ok(())
}

/// `testbed fault device NAME down|sip-silent|bad-password|heal`.
pub fn fault_device(dir: &Path, name: &str, what: &str, json_out: bool) -> Result<()> {
    let v = testbed::devices::fault(&testbed_dir(dir)?, name, what)?;
    crate::cli::emit(json_out, &v, |_| format!("device {name}: {what}\n"));
    Ok(())
}

/// `testbed fault heal`.
pub fn fault_heal(dir: &Path, json_out: bool) -> Result<()> {
    let dir = testbed_dir(dir)?;
    let healed = faults::heal(&dir)?;
    // And the KSC simulator's fault switch, if it is set.
    testbed::ksc::set_fault(&testbed::ksc::launch::state_dir(&dir), None)?;
    crate::cli::emit(json_out, &json!({"healed": healed}), |_| format!("healed {} fault(s)\n", healed.len()));
    Ok(())
}

/// `testbed faults`.
pub fn list_faults(dir: &Path, json_out: bool) -> Result<()> {
    let all = faults::faults(&testbed_dir(dir)?)?;
    crate::cli::emit(json_out, &json!(all), |v| {
        let rows = crate::cli::rows_of(v, |f| vec![f["kind"].as_str().unwrap_or("-").to_string(), f.to_string()]);
        crate::cli::table(&["KIND", "DETAIL"], &rows)
    });
    Ok(())
}

/// Stops every process of the testbed in `dir` and forgets the user CLI config that points
/// at it.
pub fn down(dir: &Path) -> Result<()> {
    let dir = std::fs::canonicalize(dir).with_context(|| format!("no testbed at {}", dir.display()))?;
    let mut n = procs::stop_all(&dir, Duration::from_secs(15));
    if containers::docker_present() {
        n += containers::remove_all(&dir)?;
    }
    volumes::unmount_all(&dir)?;
    // Every fault went with the containers (and the ballast with the volumes).
    faults::forget_all(&dir)?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(path) = default_config_path(&env)
        && std::fs::read_to_string(&path).is_ok_and(|t| t.starts_with(&format!("{CLI_MARKER} {}\n", dir.display())))
    {
        let _ = std::fs::remove_file(&path);
    }
    println!("testbed down: stopped {n} processes in {}", dir.display());
    Ok(())
}
