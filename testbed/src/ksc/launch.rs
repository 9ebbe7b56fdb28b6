//! The KSC simulator in a testbed: its files, and how `testbed up` starts it — a detached
//! process on loopback, or (with `--hosts containers`) a container of its own on the
//! controller's network, at the address `.11` on port 13299 like a real KSC server.
//!
//! ```text
//! <dir>/ksc/sim.toml         the simulator's config (0600)
//! <dir>/ksc/ksc.password     the KSC user's password (0600): the simulator and the controller
//! <dir>/ksc/state/           ksc-ca.pem (trusted by the controller), ksc-truth.json, fault
//! ```

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::containers::{self, ContainerSpec, Plan};
use crate::layout::{Layout, TestbedError, write_file};

/// The KSC user the testbed creates.
pub const USER: &str = "mangrove";

/// A running KSC simulator, as the controller reaches it.
#[derive(Debug, Clone)]
pub struct KscSide {
    pub url: String,
    pub password_file: PathBuf,
    pub ca_file: PathBuf,
    pub state_dir: PathBuf,
}

impl KscSide {
    /// The controller's `[ksc]` section: the simulator's policy as thresholds, a read every
    /// 30 s, pages of 100.
    pub fn controller_section(&self) -> String {
        let p = super::seed::ServerPolicy::default();
        format!(
            "\n# Kaspersky Security Center: the testbed's simulator.\n[ksc]\nurl = {:?}\nuser = {USER:?}\n\
             password_file = {:?}\nca_file = {:?}\npoll_interval = \"30s\"\ntimeout = \"20s\"\npage_size = 100\n\n\
             [ksc.thresholds.warning]\nav_bases_days = {}\nfull_scan_days = {}\nagent_inactive_days = {}\nviruses = {}\n\n\
             [ksc.thresholds.critical]\nav_bases_days = {}\nfull_scan_days = {}\nagent_inactive_days = {}\nviruses = {}\n\
             rtp_off = true\nav_not_installed = true\n",
            self.url,
            self.password_file.display().to_string(),
            self.ca_file.display().to_string(),
            p.warning.av_bases_days,
            p.warning.full_scan_days,
            p.warning.agent_inactive_days,
            p.warning.viruses,
            p.critical.av_bases_days,
            p.critical.full_scan_days,
            p.critical.agent_inactive_days,
            p.critical.viruses,
        )
    }
}

/// The simulator's dir in a testbed.
pub fn dir(testbed: &Path) -> PathBuf {
    testbed.join("ksc")
}

/// The simulator's state dir (CA, truth, fault switch) in a testbed.
pub fn state_dir(testbed: &Path) -> PathBuf {
    dir(testbed).join("state")
}

fn password(dir: &Path) -> Result<PathBuf, TestbedError> {
    let path = dir.join("ksc.password");
    if std::fs::read_to_string(&path).map(|s| s.trim().is_empty()).unwrap_or(true) {
        let bytes: [u8; 16] = rand::random();
        write_file(&path, &format!("{}\n", hex::encode(bytes)), 0o600)?;
    }
    Ok(path)
}

/// The listen address a earlier `up` chose, if any, so a restarted simulator keeps its port.
fn kept_listen(config: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(config).ok()?;
    let v: toml::Value = toml::from_str(&text).ok()?;
    v.get("listen")?.as_str()?.parse().ok()
}

/// Why there is no KSC to simulate: an inventory without `endpoint_groups` has no computers
/// under KSC.
fn check_inventory(layout: &Layout) -> Result<(), String> {
    if layout.inventory.endpoint_groups.is_empty() {
        return Err("the inventory has no endpoint_groups (no computers under KSC)".into());
    }
    Ok(())
}

fn write_config(layout: &Layout, listen: SocketAddr, names: &[String]) -> Result<PathBuf, TestbedError> {
    let d = dir(&layout.dir);
    password(&d)?;
    let config = d.join("sim.toml");
    let text = format!(
        "# Written by `mangrove testbed up`: the Kaspersky Security Center simulator.\n\
         state_dir = \"state\"\ninventory = {:?}\nlisten = \"{listen}\"\nnames = {names:?}\nuser = {USER:?}\n\
         password_file = \"ksc.password\"\nseed = 2022\n",
        layout.inventory_path.display().to_string(),
    );
    write_file(&config, &text, 0o600)?;
    std::fs::create_dir_all(state_dir(&layout.dir)).map_err(crate::layout::io(&state_dir(&layout.dir)))?;
    // A fresh start is a healthy one; and the CA is made anew, so wait for the new one.
    let _ = std::fs::remove_file(state_dir(&layout.dir).join(super::FAULT_FILE));
    let _ = std::fs::remove_file(state_dir(&layout.dir).join(super::CA_FILE));
    Ok(config)
}

fn side(layout: &Layout, host: IpAddr, port: u16) -> KscSide {
    let d = dir(&layout.dir);
    let url = match host {
        IpAddr::V6(h) => format!("https://[{h}]:{port}"),
        IpAddr::V4(h) => format!("https://{h}:{port}"),
    };
    KscSide {
        url,
        password_file: d.join("ksc.password"),
        ca_file: state_dir(&layout.dir).join(super::CA_FILE),
        state_dir: state_dir(&layout.dir),
    }
}

/// Waits until the simulator wrote its CA and accepts connections at `addr`.
fn wait_ready(layout: &Layout, addr: SocketAddr, alive: &dyn Fn() -> bool) -> Result<(), String> {
    let started = Instant::now();
    let ca = state_dir(&layout.dir).join(super::CA_FILE);
    while started.elapsed() < Duration::from_secs(30) {
        if ca.exists() && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if !alive() {
            let log = std::fs::read_to_string(layout.log("ksc-sim")).unwrap_or_default();
            let last: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(format!(
                "the KSC simulator exited: {}",
                last.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("the KSC simulator did not listen on {addr} within 30 s; see {}", layout.log("ksc-sim").display()))
}

/// Starts the simulator as a detached process of `mangrove` (its hidden `testbed ksc-sim`)
/// on a loopback port.
pub fn start_process(layout: &Layout, mangrove: &Path) -> Result<KscSide, String> {
    check_inventory(layout)?;
    let d = dir(&layout.dir);
    let listen = match kept_listen(&d.join("sim.toml")) {
        Some(a) if a.ip().is_loopback() => a,
        _ => {
            let port = crate::layout::free_ports(1).map_err(|e| e.to_string())?[0];
            SocketAddr::from(([127, 0, 0, 1], port))
        }
    };
    let config = write_config(layout, listen, &["127.0.0.1".to_string()]).map_err(|e| e.to_string())?;
    let launched = crate::spawn_detached(
        mangrove,
        &["testbed".into(), "ksc-sim".into(), "--config".into(), config.display().to_string()],
        &layout.log("ksc-sim"),
    )
    .map_err(|e| e.to_string())?;
    wait_ready(layout, listen, &|| crate::procs::alive(launched.pid))?;
    Ok(side(layout, listen.ip(), listen.port()))
}

/// The simulator's container name.
pub fn container_name(plan: &Plan) -> String {
    format!("{}-ksc", plan.prefix)
}

/// Starts the simulator in a container on `site`'s network at `.11`, port 13299, running
/// this build's `mangrove` (mounted read-only) with the testbed dir mounted at its own path.
pub fn start_container(
    layout: &Layout,
    plan: &Plan,
    image: &str,
    mangrove: &Path,
    site: &str,
) -> Result<KscSide, String> {
    check_inventory(layout)?;
    let ip = plan.net(site).ksc();
    let listen = SocketAddr::from((ip, 13299));
    let config = write_config(layout, listen, &[ip.to_string()]).map_err(|e| e.to_string())?;
    let log = layout.log("ksc-sim");
    containers::ensure_dir(log.parent().unwrap_or(&layout.dir)).map_err(|e| e.to_string())?;
    let d = layout.dir.display().to_string();
    let name = container_name(plan);
    containers::start(
        plan,
        &layout.dir,
        image,
        &ContainerSpec {
            name: &name,
            hostname: "ksc",
            site,
            ip: Some(ip),
            env: vec![],
            mounts: vec![
                (d.clone(), d, false),
                (mangrove.display().to_string(), "/usr/local/bin/mangrove".into(), true),
            ],
            command: format!(
                "/usr/local/bin/mangrove testbed ksc-sim --config {} >>{} 2>&1",
                config.display(),
                log.display()
            ),
        },
    )
    .map_err(|e| e.to_string())?;
    wait_ready(layout, listen, &|| containers::running(&name))?;
    Ok(side(layout, IpAddr::V4(ip), 13299))
}
