//! The testbed's virtualization platforms: VMware's vCenter simulator (govmomi vcsim, built
//! by our launcher and shaped to the province) for the DC, and our OpenStack simulator for the
//! DR site. [`start`] runs both (each detached, named by files in the testbed dir), writes the
//! files a person points their own tools at (`govc.env`, `clouds.yaml`), the credentials the
//! controller and the proxy agent use (mode 0600), and the controller's `[[platforms]]`.
//!
//! A platform whose simulator cannot run here (no Go, no govmomi package) is reported off with
//! the reason; the testbed comes up without it.
//!
//! ```text
//! <dir>/platforms/vcsim/        the vCenter simulator's files (password 0600, shape, TLS, log)
//! <dir>/platforms/openstack/    the OpenStack simulator's config (0600) and state
//! <dir>/instances/<server id>/  the state dir of a realised server's agent (`openstack::realize`)
//! <dir>/platforms/credentials/  one credentials file per platform (0600), for the controller
//! <dir>/govc.env                GOVC_URL … (0600): govc, pyvmomi scripts
//! <dir>/clouds.yaml             cloud `camau-dr` (0600): the openstack CLI, openstacksdk
//! ```

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::layout::{Layout, TestbedError, write_file};
use crate::openstack::SimConfig;
use crate::openstack::realize::{RealizeConfig, RealizeMode};
use crate::vcsim::{self, StartOptions, VcsimAvailability};

/// The vCenter simulator's one user.
pub const VCENTER_USER: &str = "administrator@vsphere.local";

/// A running vCenter simulator.
#[derive(Debug, Clone)]
pub struct VsphereSide {
    /// The platform's name, from the inventory (`vcenter-dc`).
    pub name: String,
    /// The site it runs.
    pub site: String,
    pub url: String,
    pub ca_file: Option<PathBuf>,
    /// Credentials file (0600) for whoever connects: the controller and the proxy agent.
    pub credentials: PathBuf,
    /// The machine whose agent speaks for the site's ESXi hosts.
    pub proxy: Option<String>,
    pub pid: u32,
}

/// A running OpenStack simulator.
#[derive(Debug, Clone)]
pub struct OpenstackSide {
    pub name: String,
    pub auth_url: String,
    pub credentials: PathBuf,
    pub clouds_yaml: PathBuf,
    pub pid: u32,
}

/// What `start` brought up; `Err` says why a side is off.
#[derive(Debug)]
pub struct Platforms {
    pub vsphere: Result<VsphereSide, String>,
    pub openstack: Result<OpenstackSide, String>,
}

impl Platforms {
    /// The hosts a proxy agent reports through vCenter, so they run no agent of their own:
    /// the `agent: proxy` hosts of the vSphere site, when vCenter runs and the site names its
    /// proxy. Otherwise none (they get stand-in agents).
    pub fn proxied_hosts<'a>(&self, inv: &'a inventory::Inventory) -> Vec<&'a str> {
        match &self.vsphere {
            Ok(v) if v.proxy.is_some() => inv
                .hosts
                .iter()
                .filter(|h| h.site == v.site && h.agent == inventory::AgentMode::Proxy)
                .map(|h| h.name.as_str())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The controller's `[[platforms]]` tables for the sides that run.
    pub fn controller_section(&self) -> String {
        let mut out = String::from("[platform_sync]\ninterval = \"1m\"\n");
        if let Ok(v) = &self.vsphere {
            out.push_str(&format!(
                "\n[[platforms]]\nname = {:?}\nkind = \"vsphere\"\nendpoint = {:?}\ncredentials = {:?}\n",
                v.name,
                v.url,
                v.credentials.display().to_string()
            ));
            if let Some(ca) = &v.ca_file {
                out.push_str(&format!("ca_file = {:?}\n", ca.display().to_string()));
            }
        }
        if let Ok(o) = &self.openstack {
            out.push_str(&format!(
                "\n[[platforms]]\nname = {:?}\nkind = \"openstack\"\nendpoint = {:?}\ncredentials = {:?}\n",
                o.name,
                o.auth_url,
                o.credentials.display().to_string()
            ));
        }
        out
    }

    /// The `[proxy]` section for `machine`'s agent, if it is the vSphere site's proxy. The
    /// credentials are copied into the agent's own state dir (0600), as on a real proxy VM.
    pub fn proxy_section(&self, layout: &Layout, machine: &str) -> Result<Option<String>, TestbedError> {
        let Ok(v) = &self.vsphere else { return Ok(None) };
        if v.proxy.as_deref() != Some(machine) {
            return Ok(None);
        }
        let creds = layout.agent_dir(machine).join(format!("{}.credentials", v.name));
        let text = std::fs::read_to_string(&v.credentials).map_err(crate::layout::io(&v.credentials))?;
        write_file(&creds, &text, 0o600)?;
        let mut out = format!(
            "\n# This agent speaks for the ESXi hosts, reading them from vCenter.\n[proxy]\ninterval = \"5s\"\n\n\
             [proxy.platform]\nname = {:?}\nkind = \"vsphere\"\nendpoint = {:?}\ncredentials = {:?}\n",
            v.name,
            v.url,
            creds.display().to_string()
        );
        if let Some(ca) = &v.ca_file {
            out.push_str(&format!("ca_file = {:?}\n", ca.display().to_string()));
        }
        Ok(Some(out))
    }
}

fn random_secret() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// The secret kept in `path` (made on first use), so a restarted testbed keeps its passwords.
fn kept_secret(path: &Path) -> Result<String, TestbedError> {
    if let Ok(s) = std::fs::read_to_string(path) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let s = random_secret();
    write_file(path, &format!("{s}\n"), 0o600)?;
    Ok(s)
}

fn platform_of(layout: &Layout, kind: inventory::PlatformKind) -> Option<&inventory::Site> {
    layout.inventory.sites.iter().find(|s| s.platform.kind == kind)
}

/// Starts the platform simulators of `layout`'s inventory. `mangrove` is the binary whose
/// hidden `testbed openstack-sim` runs the OpenStack simulator.
pub fn start(layout: &Layout, mangrove: &Path, cache_dir: &Path) -> Platforms {
    let realize = RealizeConfig {
        mode: RealizeMode::Processes,
        testbed_dir: layout.dir.clone(),
        agent_bin: Some(mangrove.with_file_name("mangrove-agent")),
        image: None,
        mounts: Vec::new(),
        networks: Vec::new(),
    };
    Platforms {
        vsphere: start_vsphere(layout, cache_dir),
        openstack: start_openstack(layout, mangrove, Ipv4Addr::LOCALHOST, &realize),
    }
}

/// The platforms of a container testbed: the OpenStack simulator only (vcsim stays off), on
/// `host` (the gateway of the controller's docker network, which the host holds), realising
/// servers as containers per `realize`.
pub fn start_for_containers(layout: &Layout, mangrove: &Path, host: Ipv4Addr, realize: &RealizeConfig) -> Platforms {
    Platforms {
        vsphere: Err("container hosts run without the vCenter simulator".into()),
        openstack: start_openstack(layout, mangrove, host, realize),
    }
}

fn start_vsphere(layout: &Layout, cache_dir: &Path) -> Result<VsphereSide, String> {
    let site = platform_of(layout, inventory::PlatformKind::Vsphere).ok_or("the inventory has no vSphere site")?;
    if let VcsimAvailability::Missing { reason } = vcsim::status() {
        return Err(reason);
    }
    let launcher = vcsim::build_launcher(cache_dir).map_err(|e| e.to_string())?;
    let dir = layout.dir.join("platforms").join("vcsim");
    let password = kept_secret(&dir.join("secret")).map_err(|e| e.to_string())?;
    let mut opts = StartOptions::new(&dir, &password);
    opts.listen = SocketAddr::from(([127, 0, 0, 1], layout.platform_ports.vcsim));
    opts.username = VCENTER_USER.to_string();
    opts.shape = Some(vcsim::province_shape(&layout.inventory).map_err(|e| e.to_string())?);
    let sim = vcsim::start(&launcher, &opts).map_err(|e| e.to_string())?;
    let (url, ca_file, pid) = (sim.url.clone(), sim.ca_file.clone(), sim.pid());
    sim.detach();
    let credentials = layout.dir.join("platforms").join("credentials").join(format!("{}.toml", site.platform.name));
    write_file(&credentials, &format!("username = {VCENTER_USER:?}\npassword = {password:?}\n"), 0o600)
        .map_err(|e| e.to_string())?;
    let mut env = format!(
        "# The testbed's vCenter (VMware's simulator), for govc and pyvmomi: `set -a; . ./govc.env`\n\
         GOVC_URL={url}\nGOVC_USERNAME={VCENTER_USER}\nGOVC_PASSWORD={password}\n"
    );
    match &ca_file {
        Some(ca) => env.push_str(&format!("GOVC_INSECURE=false\nGOVC_TLS_CA_CERTS={}\n", ca.display())),
        None => env.push_str("GOVC_INSECURE=true\n"),
    }
    write_file(&layout.dir.join("govc.env"), &env, 0o600).map_err(|e| e.to_string())?;
    Ok(VsphereSide {
        name: site.platform.name.clone(),
        site: site.name.clone(),
        url,
        ca_file,
        credentials,
        proxy: site.platform.proxy.clone(),
        pid,
    })
}

fn start_openstack(
    layout: &Layout,
    mangrove: &Path,
    host: Ipv4Addr,
    realize: &RealizeConfig,
) -> Result<OpenstackSide, String> {
    let site = platform_of(layout, inventory::PlatformKind::Openstack).ok_or("the inventory has no OpenStack site")?;
    let dir = layout.dir.join("platforms").join("openstack");
    let fail = |e: TestbedError| e.to_string();
    let password = kept_secret(&dir.join("admin.secret")).map_err(fail)?;
    let ac_secret = kept_secret(&dir.join("appcred.secret")).map_err(fail)?;
    let ac_id = kept_secret(&dir.join("appcred.id")).map_err(fail)?;
    let p = layout.platform_ports;
    let config = dir.join("sim.toml");
    let text = format!(
        "# Written by `mangrove testbed up`: the OpenStack simulator of the DR site.\n\
         state_dir = \"state\"\ninventory = {inv:?}\nhost = \"{host}\"\ntoken_ttl = \"1h\"\naction_delay = \"2s\"\n\n\
         [ports]\nidentity = {}\ncompute = {}\nvolume = {}\nimage = {}\nnetwork = {}\n\n\
         [admin]\nname = \"admin\"\npassword = {password:?}\nproject = \"admin\"\n\n\
         [application_credential]\nid = {ac_id:?}\nsecret = {ac_secret:?}\nname = \"mangrove-dr\"\n\n\
         # Servers booted with an agent's cloud-init user data really run that agent.\n{realize}",
        p.identity,
        p.compute,
        p.volume,
        p.image,
        p.network,
        inv = layout.inventory_path.display().to_string(),
        realize = realize_section(realize)?,
    );
    write_file(&config, &text, 0o600).map_err(fail)?;
    let sim_cfg = SimConfig::load(&config).map_err(|e| e.to_string())?;
    let launched = crate::spawn_detached(
        mangrove,
        &["testbed".into(), "openstack-sim".into(), "--config".into(), config.display().to_string()],
        &layout.log("openstack-sim"),
    )
    .map_err(fail)?;
    wait_listening(SocketAddr::from((host, p.identity)), launched.pid, &layout.log("openstack-sim"))?;
    let auth_url = format!("http://{host}:{}/v3", p.identity);
    let clouds = layout.dir.join("clouds.yaml");
    write_file(&clouds, &crate::openstack::clouds_yaml(&sim_cfg, "camau-dr"), 0o600).map_err(fail)?;
    let credentials = layout.dir.join("platforms").join("credentials").join(format!("{}.toml", site.platform.name));
    write_file(
        &credentials,
        &format!("username = \"admin\"\npassword = {password:?}\nproject_name = \"admin\"\n"),
        0o600,
    )
    .map_err(fail)?;
    Ok(OpenstackSide {
        name: site.platform.name.clone(),
        auth_url,
        credentials,
        clouds_yaml: clouds,
        pid: launched.pid,
    })
}

/// The `[realize]` table of the simulator's config.
fn realize_section(realize: &RealizeConfig) -> Result<String, String> {
    #[derive(serde::Serialize)]
    struct File<'a> {
        realize: &'a RealizeConfig,
    }
    toml::to_string(&File { realize }).map_err(|e| format!("cannot write the simulator's [realize]: {e}"))
}

/// Waits until `addr` accepts connections, or the process exits, or 30 s pass.
fn wait_listening(addr: SocketAddr, pid: u32, log: &Path) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if !crate::procs::alive(pid) {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let last: Vec<&str> = tail.lines().rev().take(5).collect();
            return Err(format!(
                "the OpenStack simulator exited: {}",
                last.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("the OpenStack simulator did not listen on {addr} within 30 s; see {}", log.display()))
}
