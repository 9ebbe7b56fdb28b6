//! Hosts as containers: a `dc` and a `dr` network, a router between them, the controller in a
//! container on its site's network, and one container per machine that runs an agent.
//!
//! Each container deletes its default route at start and gets one route, to the other site
//! through the router container, so it can reach its own network and the other site's and
//! nothing else (the networks also have masquerading off). Docker's `--internal` networks
//! would say the same more simply, but their isolation rules drop traffic routed between two
//! of them even through a container. Cutting the router (`docker network disconnect`)
//! partitions DC from DR. The host holds each network's gateway address, which is how the CLI
//! reaches the API.
//!
//! Every container and network carries the label `org.mangrove.testbed=<dir>`, so `down`
//! removes exactly what this testbed made. Processes inside see the testbed dir at the same
//! path (a bind mount), so their command lines name it, as in process mode.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::layout::{TestbedError, io};

pub const LABEL: &str = "org.mangrove.testbed";

/// One of the testbed's networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Net {
    pub site: String,
    pub name: String,
    /// First three octets of its /24.
    pub base: [u8; 3],
}

impl Net {
    pub fn subnet(&self) -> String {
        format!("{}.{}.{}.0/24", self.base[0], self.base[1], self.base[2])
    }
    pub fn host(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.base[0], self.base[1], self.base[2], last)
    }
    pub fn gateway(&self) -> Ipv4Addr {
        self.host(1)
    }
    /// The router's address on this network.
    pub fn router(&self) -> Ipv4Addr {
        self.host(254)
    }
    /// The controller's address, on the network of its site.
    pub fn controller(&self) -> Ipv4Addr {
        self.host(10)
    }
}

/// The two sites' networks and the router between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub prefix: String,
    pub dc: Net,
    pub dr: Net,
}

impl Plan {
    pub fn net(&self, site: &str) -> &Net {
        if site == "dr" { &self.dr } else { &self.dc }
    }
    pub fn other(&self, site: &str) -> &Net {
        if site == "dr" { &self.dc } else { &self.dr }
    }
    pub fn router_name(&self) -> String {
        format!("{}-router", self.prefix)
    }
    pub fn controller_name(&self) -> String {
        format!("{}-controller", self.prefix)
    }
}

fn docker(args: &[&str], what: &str) -> Result<String, TestbedError> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TestbedError::Spawn { program: "docker".into(), source })?;
    if !out.status.success() {
        return Err(TestbedError::Tool {
            what: what.to_string(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The name prefix of a testbed's containers and networks, from its dir.
pub fn prefix(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    format!("mgtb-{}", &hex::encode(Sha256::digest(dir.as_os_str().as_encoded_bytes()))[..8])
}

/// Creates the `dc` and `dr` networks on the first free pair of /24s in 10.77.0.0/16.
pub fn create_networks(dir: &Path) -> Result<Plan, TestbedError> {
    let prefix = prefix(dir);
    let label = format!("{LABEL}={}", dir.display());
    let mut last_err = None;
    for third in (16u8..=240).step_by(2) {
        let dc = Net { site: "dc".into(), name: format!("{prefix}-dc"), base: [10, 77, third] };
        let dr = Net { site: "dr".into(), name: format!("{prefix}-dr"), base: [10, 77, third + 1] };
        let mut made = Vec::new();
        let mut ok = true;
        for n in [&dc, &dr] {
            let gw = n.gateway().to_string();
            let subnet = n.subnet();
            match docker(
                &[
                    "network",
                    "create",
                    "--subnet",
                    &subnet,
                    "--gateway",
                    &gw,
                    "--label",
                    &label,
                    "-o",
                    "com.docker.network.bridge.enable_ip_masquerade=false",
                    &n.name,
                ],
                "docker network create",
            ) {
                Ok(_) => made.push(n.name.clone()),
                Err(e) => {
                    last_err = Some(e);
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            return Ok(Plan { prefix, dc, dr });
        }
        for name in made {
            let _ = docker(&["network", "rm", &name], "docker network rm");
        }
        // A name clash is not solved by another subnet.
        if let Some(TestbedError::Tool { message, .. }) = &last_err
            && message.contains("already exists")
        {
            break;
        }
    }
    Err(last_err
        .unwrap_or(TestbedError::Tool { what: "docker network create".into(), message: "no free subnet".into() }))
}

/// Starts the router: on both networks, forwarding between them.
pub fn start_router(plan: &Plan, dir: &Path, image: &str) -> Result<(), TestbedError> {
    let label = format!("{LABEL}={}", dir.display());
    let name = plan.router_name();
    let ip = plan.dc.router().to_string();
    docker(
        &[
            "run",
            "-d",
            "--pull",
            "never",
            "--name",
            &name,
            "--hostname",
            "router",
            "--label",
            &label,
            "--network",
            &plan.dc.name,
            "--ip",
            &ip,
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--cap-add",
            "NET_ADMIN",
            "--entrypoint",
            "/bin/sh",
            image,
            "-c",
            "ip route del default; exec sleep infinity",
        ],
        "starting the router",
    )?;
    connect_router(plan, "dr")
}

/// Attaches the router to `site`'s network (heals a partition).
pub fn connect_router(plan: &Plan, site: &str) -> Result<(), TestbedError> {
    let net = plan.net(site);
    docker(
        &["network", "connect", "--ip", &net.router().to_string(), &net.name, &plan.router_name()],
        "connecting the router",
    )
    .map(|_| ())
}

/// Detaches the router from `site`'s network: no path between the sites.
pub fn disconnect_router(plan: &Plan, site: &str) -> Result<(), TestbedError> {
    docker(&["network", "disconnect", &plan.net(site).name, &plan.router_name()], "disconnecting the router")
        .map(|_| ())
}

/// What a container of the testbed runs, and where.
pub struct ContainerSpec<'a> {
    pub name: &'a str,
    pub hostname: &'a str,
    pub site: &'a str,
    /// Fixed address on the site's network, if any.
    pub ip: Option<Ipv4Addr>,
    pub env: Vec<(String, String)>,
    /// (host path, container path, read-only)
    pub mounts: Vec<(String, String, bool)>,
    /// The command run after the route to the other site is set.
    pub command: String,
}

/// Starts a container on its site's network with a route to the other site via the router.
pub fn start(plan: &Plan, dir: &Path, image: &str, spec: &ContainerSpec<'_>) -> Result<(), TestbedError> {
    let net = plan.net(spec.site);
    let other = plan.other(spec.site);
    let label = format!("{LABEL}={}", dir.display());
    let boot = format!(
        "ip route del default 2>/dev/null; ip route add {} via {} && exec {}",
        other.subnet(),
        net.router(),
        spec.command
    );
    let mut args: Vec<String> = [
        "run",
        "-d",
        "--pull",
        "never",
        "--name",
        spec.name,
        "--hostname",
        spec.hostname,
        "--label",
        &label,
        "--network",
        &net.name,
        "--cap-add",
        "NET_ADMIN",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(ip) = spec.ip {
        args.extend(["--ip".to_string(), ip.to_string()]);
    }
    for (k, v) in &spec.env {
        args.extend(["-e".to_string(), format!("{k}={v}")]);
    }
    for (from, to, ro) in &spec.mounts {
        args.extend(["-v".to_string(), format!("{from}:{to}{}", if *ro { ":ro" } else { "" })]);
    }
    args.extend(["--entrypoint".into(), "/bin/sh".into(), image.into(), "-c".into(), boot]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&refs, &format!("starting container {}", spec.name)).map(|_| ())
}

/// Removes every container and network labelled with this testbed's dir; returns how many
/// containers there were.
pub fn remove_all(dir: &Path) -> Result<usize, TestbedError> {
    let filter = format!("label={LABEL}={}", dir.display());
    let ids = docker(&["ps", "-aq", "--filter", &filter], "docker ps")?;
    let ids: Vec<&str> = ids.lines().filter(|l| !l.is_empty()).collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(&ids);
        docker(&args, "docker rm")?;
    }
    let nets = docker(&["network", "ls", "-q", "--filter", &filter], "docker network ls")?;
    for n in nets.lines().filter(|l| !l.is_empty()) {
        docker(&["network", "rm", n], "docker network rm")?;
    }
    Ok(ids.len())
}

/// Whether Docker is there at all (for `down` on a machine without it).
pub fn docker_present() -> bool {
    Command::new("docker")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Ensures a mount source exists as a directory.
pub fn ensure_dir(path: &Path) -> Result<(), TestbedError> {
    std::fs::create_dir_all(path).map_err(io(path))
}

/// Whether the named container is running.
pub fn running(name: &str) -> bool {
    docker(&["inspect", "-f", "{{.State.Running}}", name], "docker inspect").is_ok_and(|s| s == "true")
}

/// The plan of the testbed in `dir`, read back from its networks.
pub fn plan_of(dir: &Path) -> Result<Plan, TestbedError> {
    let prefix = prefix(dir);
    let mut nets = Vec::new();
    for site in ["dc", "dr"] {
        let name = format!("{prefix}-{site}");
        let subnet = docker(
            &["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", &name],
            "docker network inspect",
        )?;
        let octets: Vec<u8> = subnet.split(['.', '/']).take(3).filter_map(|o| o.parse().ok()).collect();
        let [a, b, c] = octets[..] else {
            return Err(TestbedError::Tool {
                what: "docker network inspect".into(),
                message: format!("unexpected subnet {subnet:?}"),
            });
        };
        nets.push(Net { site: site.into(), name, base: [a, b, c] });
    }
    let dr = nets.pop();
    let dc = nets.pop();
    match (dc, dr) {
        (Some(dc), Some(dr)) => Ok(Plan { prefix, dc, dr }),
        _ => Err(TestbedError::Tool { what: "docker network inspect".into(), message: "networks missing".into() }),
    }
}

/// A fault in force, as `<dir>/faults.json` records it so that `heal` can undo it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// No path between the two sites (the router is cut off from `dr`).
    Partition { sites: [String; 2], since_unix: u64 },
    /// The host's container is stopped (the machine is off; its disk is kept).
    Stop { host: String, since_unix: u64 },
    /// The host's container is frozen (every process in it stops running).
    Pause { host: String, since_unix: u64 },
    /// The host's agent sees its clock `offset_seconds` off (through faketime).
    Clock { host: String, offset_seconds: i64, since_unix: u64 },
}

impl Fault {
    fn host(&self) -> Option<&str> {
        match self {
            Fault::Stop { host, .. } | Fault::Pause { host, .. } | Fault::Clock { host, .. } => Some(host),
            Fault::Partition { .. } => None,
        }
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The container of machine `host` in the testbed at `dir`: named after the machine, with
/// the testbed's prefix so that two testbeds never clash.
pub fn container_name(dir: &Path, host: &str) -> String {
    format!("{host}.{}", prefix(dir))
}

/// The container of a machine of this testbed, or an error naming what is wrong.
fn machine_container(dir: &Path, host: &str) -> Result<String, TestbedError> {
    let name = container_name(dir, host);
    let label =
        docker(&["inspect", "-f", &format!("{{{{index .Config.Labels \"{LABEL}\"}}}}"), &name], "docker inspect")
            .map_err(|_| TestbedError::Tool {
                what: "fault".into(),
                message: format!("no container {host} in this testbed"),
            })?;
    if label != dir.display().to_string() {
        return Err(TestbedError::Tool {
            what: "fault".into(),
            message: format!("{host} is not a machine of this testbed"),
        });
    }
    Ok(name)
}

/// SIGKILLs the host's agent; runit starts it again at once (a crash, not an outage), so there
/// is nothing to heal.
pub fn kill_agent(dir: &Path, host: &str) -> Result<(), TestbedError> {
    let name = machine_container(dir, host)?;
    docker(&["exec", &name, "pkill", "-KILL", "-f", "mangrove-agent run"], "killing the agent").map(|_| ())
}

/// Stops (`stop`) or freezes (`pause`) a host's container. Idempotent.
pub fn host_fault(dir: &Path, host: &str, pause: bool) -> Result<Fault, TestbedError> {
    let name = machine_container(dir, host)?;
    let mut all = faults(dir)?;
    if let Some(f) = all.iter().find(|f| f.host() == Some(host)) {
        return Ok(f.clone());
    }
    let f = if pause {
        docker(&["pause", &name], "docker pause")?;
        Fault::Pause { host: host.to_string(), since_unix: now_unix() }
    } else {
        docker(&["stop", "-t", "5", &name], "docker stop")?;
        Fault::Stop { host: host.to_string(), since_unix: now_unix() }
    };
    all.push(f.clone());
    save_faults(dir, &all)?;
    Ok(f)
}

/// Starts a stopped host again (`fault start`); false if it was not stopped by a fault.
pub fn start_host(dir: &Path, host: &str) -> Result<bool, TestbedError> {
    let name = machine_container(dir, host)?;
    let mut all = faults(dir)?;
    let before = all.len();
    all.retain(|f| !matches!(f, Fault::Stop { host: h, .. } if h == host));
    if all.len() == before {
        return Ok(false);
    }
    docker(&["start", &name], "docker start")?;
    save_faults(dir, &all)?;
    Ok(true)
}

fn faults_file(dir: &Path) -> std::path::PathBuf {
    dir.join("faults.json")
}

/// The faults in force in the testbed at `dir`.
pub fn faults(dir: &Path) -> Result<Vec<Fault>, TestbedError> {
    let path = faults_file(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| TestbedError::Format { path, message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io(&path)(e)),
    }
}

fn save_faults(dir: &Path, faults: &[Fault]) -> Result<(), TestbedError> {
    let text = serde_json::to_string_pretty(faults)
        .map_err(|e| TestbedError::Format { path: faults_file(dir), message: e.to_string() })?;
    crate::layout::write_file(&faults_file(dir), &text, 0o644)
}

/// Cuts the path between the two sites. Idempotent: a partition already in force stays one.
pub fn partition(dir: &Path, a: &str, b: &str) -> Result<Fault, TestbedError> {
    let mut sites = [a.to_string(), b.to_string()];
    sites.sort();
    if sites != ["dc".to_string(), "dr".to_string()] {
        return Err(TestbedError::Tool {
            what: "fault partition".into(),
            message: format!("the testbed's sites are dc and dr, not {a} and {b}"),
        });
    }
    let plan = plan_of(dir)?;
    let mut all = faults(dir)?;
    if let Some(f) = all.iter().find(|f| matches!(f, Fault::Partition { .. })) {
        return Ok(f.clone());
    }
    disconnect_router(&plan, "dr")?;
    let f = Fault::Partition { sites, since_unix: now_unix() };
    all.push(f.clone());
    save_faults(dir, &all)?;
    Ok(f)
}

/// Undoes every fault in force; returns them.
pub fn heal(dir: &Path) -> Result<Vec<Fault>, TestbedError> {
    let all = faults(dir)?;
    let plan = plan_of(dir)?;
    for f in &all {
        match f {
            Fault::Partition { .. } => connect_router(&plan, "dr")?,
            Fault::Stop { host, .. } => {
                docker(&["start", &container_name(dir, host)], "docker start")?;
            }
            Fault::Pause { host, .. } => {
                docker(&["unpause", &container_name(dir, host)], "docker unpause")?;
            }
            Fault::Clock { host, .. } => {
                let file = dir.join("agents").join(host).join("clock-offset");
                let _ = std::fs::remove_file(&file);
                // The agent starts again (runit) with the true clock.
                let name = container_name(dir, host);
                docker(&["exec", &name, "pkill", "-KILL", "-f", "mangrove-agent run"], "restarting the agent")?;
            }
        }
    }
    save_faults(dir, &[])?;
    Ok(all)
}

/// Parses a clock offset: `+300s`, `-5m`, `+2h`, `+1d` (a sign is required).
pub fn parse_offset(text: &str) -> Option<i64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let split = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let n: i64 = rest[..split].parse().ok()?;
    let unit = match &rest[split..] {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    n.checked_mul(unit).map(|s| s * sign)
}

/// Skews the clock the host's agent sees by `offset` (e.g. `+300s`); the agent restarts
/// under faketime. Replaces an earlier skew of the same host.
pub fn clock(dir: &Path, host: &str, offset: &str) -> Result<Fault, TestbedError> {
    let name = machine_container(dir, host)?;
    let secs = parse_offset(offset).ok_or_else(|| TestbedError::Tool {
        what: "fault clock".into(),
        message: format!("invalid offset {offset:?}; write e.g. +300s, -5m, +2h"),
    })?;
    let mut all = faults(dir)?;
    if all.iter().any(|f| f.host() == Some(host) && !matches!(f, Fault::Clock { .. })) {
        return Err(TestbedError::Tool {
            what: "fault clock".into(),
            message: format!("{host} is stopped or frozen; `fault heal` first"),
        });
    }
    all.retain(|f| !matches!(f, Fault::Clock { host: h, .. } if h == host));
    crate::layout::write_file(&dir.join("agents").join(host).join("clock-offset"), &format!("{secs:+}"), 0o644)?;
    docker(&["exec", &name, "pkill", "-KILL", "-f", "mangrove-agent run"], "restarting the agent")?;
    let f = Fault::Clock { host: host.to_string(), offset_seconds: secs, since_unix: now_unix() };
    all.push(f.clone());
    save_faults(dir, &all)?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_offsets() {
        for (text, want) in
            [("+300s", Some(300)), ("-5m", Some(-300)), ("+2h", Some(7200)), ("+1d", Some(86400)), ("+7", Some(7))]
        {
            assert_eq!(parse_offset(text), want, "{text}");
        }
        for bad in ["300s", "+", "+5x", "", "+-3", "+99999999999999999999d"] {
            assert_eq!(parse_offset(bad), None, "{bad}");
        }
    }
}
