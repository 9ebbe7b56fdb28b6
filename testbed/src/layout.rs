//! The files of a testbed dir:
//!
//! ```text
//! <dir>/testbed.toml            ports and inventory, fixed once chosen
//! <dir>/controller/controller.toml, and the controller's data (CA, database, admin token)
//! <dir>/agents/<host>/          an agent's state dir: agent.toml (simulated facts), key,
//!                               certificate, outbox
//! <dir>/ca.pem                  the CA, for the CLI and browsers
//! <dir>/users.txt               mode 0600: `name role token password` per line
//! <dir>/cli.toml                mode 0600: the CLI config for this testbed
//! <dir>/logs/                   one log per process
//! <dir>/bind/                   the DNS server's files (see `bind`)
//! ```

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use inventory::{Inventory, Machine, MachineKind};
use serde::{Deserialize, Serialize};

/// Why a testbed operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Inventory(String),
    #[error("{what} is missing: {hint}")]
    Missing { what: String, hint: String },
    #[error("{what} failed: {message}")]
    Tool { what: String, message: String },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TestbedError + '_ {
    move |source| TestbedError::Io { path: path.to_path_buf(), source }
}

/// The controller's three ports, chosen once and kept in `testbed.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    pub api: u16,
    pub agents: u16,
    pub enroll: u16,
}

/// The platform simulators' ports (vCenter SDK; OpenStack's five services), kept likewise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformPorts {
    pub vcsim: u16,
    pub identity: u16,
    pub compute: u16,
    pub volume: u16,
    pub image: u16,
    pub network: u16,
}

/// The testbed's DNS server (a real BIND, see [`crate::bind`]), kept in `testbed.toml` so the
/// controller's `[dns]` section and anyone else can find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsLayout {
    /// Where BIND answers queries and takes updates (UDP and TCP, loopback).
    pub server: SocketAddr,
    /// The production zone, e.g. `camau.gov.vn`.
    pub zone: String,
    /// The isolated zone test drills switch, e.g. `drill.camau.gov.vn`.
    pub test_zone: String,
    /// The TSIG key file (`tsig-keygen` output, mode 0600) allowed to update both zones.
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    inventory: PathBuf,
    ports: Ports,
    /// Absent in dirs made before the platform simulators existed: chosen on the next `up`.
    #[serde(default)]
    platform_ports: Option<PlatformPorts>,
    /// Absent in dirs made before the DNS server existed: chosen on the next `up`.
    #[serde(default)]
    dns: Option<DnsLayout>,
}

/// A user the testbed creates, with their API token and web-console password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: String,
    pub token: String,
    pub password: String,
}

/// A testbed dir and what it holds.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub inventory_path: PathBuf,
    pub inventory: Inventory,
    pub ports: Ports,
    pub platform_ports: PlatformPorts,
    pub dns: DnsLayout,
}

/// The users in `users.txt` text: `name role token [password]` lines; comments and short lines
/// are skipped (a file from before passwords has none).
pub fn parse_users(text: &str) -> Vec<User> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut p = l.split(' ');
            Some(User {
                name: p.next()?.to_string(),
                role: p.next()?.to_string(),
                token: p.next()?.to_string(),
                password: p.next().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// Ports below the kernel's ephemeral range (32768–60999 by default): a port the kernel hands
/// out for `bind(0)` or to an outgoing connection may be taken again by the time the
/// controller binds it, and two testbeds set up at once raced for it that way. These are
/// picked at random and all held at once while checked, so the three are distinct and free.
const PORT_RANGE: std::ops::Range<u16> = 20000..32768;

/// `n` distinct loopback ports free right now, from [`PORT_RANGE`].
pub fn free_ports(n: usize) -> Result<Vec<u16>, TestbedError> {
    let mut held: Vec<TcpListener> = Vec::with_capacity(n);
    for _ in 0..200 {
        if held.len() == n {
            break;
        }
        let port = rand::random_range(PORT_RANGE);
        if let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            held.push(l);
        }
    }
    if held.len() < n {
        return Err(TestbedError::Io {
            path: PathBuf::from(format!("127.0.0.1:{}-{}", PORT_RANGE.start, PORT_RANGE.end - 1)),
            source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free loopback ports found"),
        });
    }
    held.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(io(Path::new("127.0.0.1")))).collect()
}

/// Writes a file atomically with the given mode.
pub fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), TestbedError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    // `<name>.tmp`, so files that differ only in extension never share a temp file.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f =
        fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp).map_err(io(&tmp))?;
    f.write_all(contents.as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

impl Layout {
    /// Opens the testbed in `dir`, creating it (and choosing free loopback ports) on first use.
    /// A dir already set up keeps its ports and inventory, unless a different inventory is
    /// given.
    pub fn prepare(dir: &Path, inventory: &Path) -> Result<Layout, TestbedError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let dir = fs::canonicalize(dir).map_err(io(dir))?;
        let inventory_path = fs::canonicalize(inventory).map_err(io(inventory))?;
        let inv = inventory::load_file(&inventory_path).map_err(|e| TestbedError::Inventory(e.to_string()))?;
        let state_path = dir.join("testbed.toml");
        let (ports, platform_ports, dns) = match fs::read_to_string(&state_path) {
            Ok(text) => {
                let s: State = toml::from_str(&text)
                    .map_err(|e| TestbedError::Format { path: state_path.clone(), message: e.to_string() })?;
                (s.ports, s.platform_ports, s.dns)
            }
            Err(_) => {
                let p = free_ports(3)?;
                (Ports { api: p[0], agents: p[1], enroll: p[2] }, None, None)
            }
        };
        let platform_ports = match platform_ports {
            Some(p) => p,
            None => {
                // Drawn apart from the controller's: a draw of fresh ports could repeat one.
                let mut p = free_ports(9)?;
                p.retain(|x| ![ports.api, ports.agents, ports.enroll].contains(x));
                let at = |i: usize| p.get(i).copied().unwrap_or(0);
                PlatformPorts {
                    vcsim: at(0),
                    identity: at(1),
                    compute: at(2),
                    volume: at(3),
                    image: at(4),
                    network: at(5),
                }
            }
        };
        let dns = match dns {
            Some(d) => d,
            None => {
                let p = ports;
                let pp = platform_ports;
                let taken =
                    [p.api, p.agents, p.enroll, pp.vcsim, pp.identity, pp.compute, pp.volume, pp.image, pp.network];
                let mut fresh = free_ports(4)?;
                fresh.retain(|x| !taken.contains(x));
                crate::bind::default_layout(&dir, fresh.first().copied().unwrap_or(0))
            }
        };
        let state = State {
            inventory: inventory_path.clone(),
            ports,
            platform_ports: Some(platform_ports),
            dns: Some(dns.clone()),
        };
        let text = toml::to_string(&state)
            .map_err(|e| TestbedError::Format { path: state_path.clone(), message: e.to_string() })?;
        write_file(&state_path, &text, 0o644)?;
        let layout = Layout { dir, inventory_path, inventory: inv, ports, platform_ports, dns };
        layout.write_controller_config()?;
        Ok(layout)
    }

    pub fn controller_dir(&self) -> PathBuf {
        self.dir.join("controller")
    }

    pub fn controller_config(&self) -> PathBuf {
        self.controller_dir().join("controller.toml")
    }

    pub fn agent_dir(&self, host: &str) -> PathBuf {
        self.dir.join("agents").join(host)
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{name}.log"))
    }

    pub fn api_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports.api)
    }

    pub fn agents_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports.agents))
    }

    pub fn enroll_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports.enroll))
    }

    /// The controller's CA (written by the controller on first start).
    pub fn controller_ca(&self) -> PathBuf {
        self.controller_dir().join("data").join("ca.pem")
    }

    /// The bootstrap admin token the controller writes on first start.
    pub fn admin_token_file(&self) -> PathBuf {
        self.controller_dir().join("data").join("admin.token")
    }

    /// Writes the controller's config for a process testbed; `platforms` is appended as it is
    /// (the `[[platforms]]` tables of the simulators that run).
    pub fn write_controller_config_with(&self, platforms: &str) -> Result<(), TestbedError> {
        self.write_controller_config()?;
        if platforms.is_empty() {
            return Ok(());
        }
        let path = self.controller_config();
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        write_file(&path, &format!("{text}\n{platforms}"), 0o644)
    }

    fn write_controller_config(&self) -> Result<(), TestbedError> {
        let inventory = crate::backup_storage::prepare(self)?;
        let text = format!(
            "# Written by `mangrove testbed up`; ports are fixed once chosen.\n\
             data_dir = \"data\"\n\
             inventory = {inv:?}\n\
             advertise_agents = \"127.0.0.1:{agents}\"\n\n\
             [listen]\n\
             api = \"127.0.0.1:{api}\"\n\
             agents = \"127.0.0.1:{agents}\"\n\
             enroll = \"127.0.0.1:{enroll}\"\n\n\
             # Due backups and RPO are looked at every 5 s, so a demo does not wait.\n\
             [backup]\n\
             evaluate_every = \"5s\"\n",
            inv = inventory.display().to_string(),
            api = self.ports.api,
            agents = self.ports.agents,
            enroll = self.ports.enroll,
        );
        write_file(&self.controller_config(), &text, 0o644)
    }

    /// The controller's config when it runs in a container at `ip`: it listens on every
    /// address of its own network namespace and tells agents to dial `ip`.
    pub fn write_container_controller_config(&self, ip: std::net::Ipv4Addr) -> Result<(), TestbedError> {
        let text = format!(
            "# Written by `mangrove testbed up --hosts containers`; ports are fixed once chosen.\n\
             data_dir = \"data\"\n\
             inventory = {inv:?}\n\
             advertise_agents = \"{ip}:{agents}\"\n\n\
             [listen]\n\
             api = \"0.0.0.0:{api}\"\n\
             agents = \"0.0.0.0:{agents}\"\n\
             enroll = \"0.0.0.0:{enroll}\"\n\n\
             [api]\n\
             extra_names = [\"{ip}\"]\n",
            inv = self.inventory_path.display().to_string(),
            api = self.ports.api,
            agents = self.ports.agents,
            enroll = self.ports.enroll,
        );
        write_file(&self.controller_config(), &text, 0o644)
    }

    /// The machines that run an agent in this testbed: every inventory machine with one,
    /// including the ESXi hosts (agent `proxy`), which until the vCenter driver speaks for
    /// them get an agent with simulated facts.
    pub fn agent_machines(&self) -> Vec<Machine<'_>> {
        self.inventory.machines().into_iter().filter(|m| m.agent != inventory::AgentMode::None).collect()
    }

    /// Writes an agent's config: simulated facts from the inventory's figures for the machine.
    pub fn write_agent_config(&self, m: &Machine<'_>) -> Result<PathBuf, TestbedError> {
        let dir = self.agent_dir(m.name);
        let os = m.os.unwrap_or(match m.kind {
            MachineKind::Hypervisor => "VMware ESXi 7.0",
            _ => "Ubuntu 22.04",
        });
        let (os_name, os_version) = os.rsplit_once(' ').unwrap_or((os, ""));
        let kernel = if os_name.contains("ESXi") { "7.0.3" } else { "5.15.0-91-generic" };
        let addresses: Vec<String> = m.address.iter().map(|a| a.to_string()).collect();
        let text = format!(
            "# Written by `mangrove testbed up`: this agent reports the facts of the inventory's\n\
             # machine {name}, not of the machine it runs on.\n\
             [facts]\n\
             source = \"simulated\"\n\
             hostname = {name:?}\n\
             os_name = {os_name:?}\n\
             os_version = {os_version:?}\n\
             kernel_release = {kernel:?}\n\
             cpu_count = {cpus}\n\
             memory_total_bytes = {mem}\n\
             disk_total_bytes = {disk}\n\
             addresses = {addresses:?}\n",
            name = m.name,
            cpus = m.cpus,
            mem = m.memory_bytes,
            disk = m.disk_bytes.unwrap_or(0),
        );
        let path = dir.join("agent.toml");
        write_file(&path, &text, 0o644)?;
        Ok(path)
    }

    /// The users an earlier `up` wrote to `users.txt` (none when it is absent).
    pub fn read_users(&self) -> Result<Vec<User>, TestbedError> {
        let path = self.dir.join("users.txt");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(parse_users(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Writes `users.txt` (0600, `name role token password` per line; readers that take the
    /// first three fields by position keep working).
    pub fn write_users(&self, users: &[User]) -> Result<PathBuf, TestbedError> {
        let mut text = String::from(
            "# name role token password — API tokens and web-console passwords of this testbed's users; keep private\n",
        );
        for u in users {
            text.push_str(&format!("{} {} {} {}\n", u.name, u.role, u.token, u.password));
        }
        let path = self.dir.join("users.txt");
        write_file(&path, &text, 0o600)?;
        Ok(path)
    }

    /// Copies the controller's CA to `<dir>/ca.pem` and writes `<dir>/cli.toml` (0600) for
    /// `admin_token`. Returns the CLI config's path.
    pub fn write_cli_config(&self, api_url: &str, admin_token: &str) -> Result<PathBuf, TestbedError> {
        let src = self.controller_ca();
        let ca = fs::read_to_string(&src).map_err(io(&src))?;
        let ca_path = self.dir.join("ca.pem");
        write_file(&ca_path, &ca, 0o644)?;
        let path = self.dir.join("cli.toml");
        write_file(&path, &self.cli_config_text(api_url, admin_token), 0o600)?;
        Ok(path)
    }

    /// The CLI config for this testbed; its first line marks it as a testbed's.
    pub fn cli_config_text(&self, api_url: &str, admin_token: &str) -> String {
        format!(
            "{CLI_MARKER} {dir}\ncontroller = {api_url:?}\ntoken = {admin_token:?}\nca = {ca:?}\n",
            dir = self.dir.display(),
            ca = self.dir.join("ca.pem").display().to_string(),
        )
    }
}

/// First line of a CLI config written by a testbed (followed by the testbed's dir).
pub const CLI_MARKER: &str = "# written by mangrove testbed up for";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_txt_lines_with_and_without_a_password() {
        let users = parse_users(
            "# name role token password\nadmin admin mgu_1 pw-admin-123456\nop operator mgu_2\nshort line\n",
        );
        assert_eq!(users.len(), 2);
        assert_eq!(
            users[0],
            User {
                name: "admin".into(),
                role: "admin".into(),
                token: "mgu_1".into(),
                password: "pw-admin-123456".into()
            }
        );
        assert_eq!(users[1].password, "");
    }
}
