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
    /// The KSC simulator's address, on the network of the controller's site.
    pub fn ksc(&self) -> Ipv4Addr {
        self.host(11)
    }
}

/// The last octets the testbed keeps for itself on each network: docker's gateway, the
/// controller, the KSC simulator, the router.
const RESERVED: [u8; 4] = [1, 10, 11, 254];

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

pub(crate) fn docker(args: &[&str], what: &str) -> Result<String, TestbedError> {
    docker_with_env(args, &[], what)
}

/// [`docker`] with variables in the docker client's own environment: `-e NAME` in `args`
/// passes one into the container without its value appearing in any process list.
fn docker_with_env(args: &[&str], env: &[(String, String)], what: &str) -> Result<String, TestbedError> {
    let out = Command::new("docker")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
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

/// Where an inventory address lives in the testbed: the documentation range 192.0.2.0/24
/// that example inventories use maps onto the site's network (`192.0.2.51` →
/// `10.77.16.51`), so DNS records and the machines agree; other addresses, and those that
/// would land on one the testbed keeps (`192.0.2.11` → the KSC simulator's), are not the
/// testbed's to place.
pub fn testbed_address(address: Ipv4Addr, net: [u8; 3]) -> Option<Ipv4Addr> {
    match address.octets() {
        [192, 0, 2, last] if (2..=253).contains(&last) && !RESERVED.contains(&last) => {
            Some(Ipv4Addr::new(net[0], net[1], net[2], last))
        }
        _ => None,
    }
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

/// The isolated network of DR drills (Neutron `dr-drill`): no router, so nothing on it
/// reaches the DC or the DR network. The controller gets a leg on it (`.10`) and is the one
/// thing an instance there reaches, through a host route to the controller's own address
/// ([`drill_routes`]), so its agent can enroll. The host holds `.1`, as on the other networks.
/// Its /24 is `10.78.<the DC network's third octet>`, unique per testbed as the DC one is.
pub fn create_drill_network(dir: &Path, plan: &Plan) -> Result<Net, TestbedError> {
    let net = drill_net(plan);
    let label = format!("{LABEL}={}", dir.display());
    docker(
        &[
            "network",
            "create",
            "--subnet",
            &net.subnet(),
            "--gateway",
            &net.gateway().to_string(),
            "--label",
            &label,
            "-o",
            "com.docker.network.bridge.enable_ip_masquerade=false",
            &net.name,
        ],
        "docker network create (drill)",
    )?;
    Ok(net)
}

/// The drill network of `plan`'s testbed (see [`create_drill_network`]).
pub fn drill_net(plan: &Plan) -> Net {
    Net { site: "drill".into(), name: format!("{}-drill", plan.prefix), base: [10, 78, plan.dc.base[2]] }
}

/// Gives the controller container its leg on the drill network.
pub fn connect_controller_to_drill(plan: &Plan) -> Result<(), TestbedError> {
    let net = drill_net(plan);
    docker(
        &["network", "connect", "--ip", &net.controller().to_string(), &net.name, &plan.controller_name()],
        "connecting the controller to the drill network",
    )
    .map(|_| ())
}

/// The routes of an instance on the drill network: the controller's address (on its own
/// site's network) through the controller's drill leg, and nothing else.
pub fn drill_routes(plan: &Plan, controller_ip: Ipv4Addr) -> Vec<(String, String)> {
    vec![(format!("{controller_ip}/32"), drill_net(plan).controller().to_string())]
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
    // Names only: the values (an agent's bootstrap token) go through docker's environment.
    for (k, _) in &spec.env {
        args.extend(["-e".to_string(), k.clone()]);
    }
    for (from, to, ro) in &spec.mounts {
        args.extend(["-v".to_string(), format!("{from}:{to}{}", if *ro { ":ro" } else { "" })]);
    }
    args.extend(["--entrypoint".into(), "/bin/sh".into(), image.into(), "-c".into(), boot]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    docker_with_env(&refs, &spec.env, &format!("starting container {}", spec.name)).map(|_| ())
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

/// The container of machine `host` in the testbed at `dir`: named after the machine, with
/// the testbed's prefix so that two testbeds never clash.
pub fn container_name(dir: &Path, host: &str) -> String {
    format!("{host}.{}", prefix(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documentation_addresses_map_onto_the_site_network_except_the_testbeds_own() {
        let net = [10, 77, 16];
        let at = |a: [u8; 4]| testbed_address(Ipv4Addr::from(a), net);
        assert_eq!(at([192, 0, 2, 51]), Some(Ipv4Addr::new(10, 77, 16, 51)));
        // The gateway, the controller, the KSC simulator and the router keep theirs.
        for taken in [1, 10, 11, 254, 0, 255] {
            assert_eq!(at([192, 0, 2, taken]), None, "{taken}");
        }
        assert_eq!(at([10, 0, 0, 51]), None, "not the testbed's to place");
    }
}
