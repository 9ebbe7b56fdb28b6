//! Servers that really run: a server created with the agent's cloud-init user data
//! ([`plugins::cloudinit`]) gets a real agent, which enrolls with the token it carries, and
//! loses it when the server is deleted. Servers without that user data stay records only.
//!
//! - **Processes** (`mode = "processes"`): `mangrove-agent enroll` then `run`, one detached
//!   `sh` whose argv names the instance's state dir `<testbed>/instances/<server id>` (so
//!   `testbed down` stops it); the token goes in the environment, never in argv.
//! - **Containers** (`mode = "containers"`): `docker run` of the host image, labelled with the
//!   testbed dir (so `down` removes it), on the docker network mapped from the server's
//!   Neutron network, with that network's routes only, the configured bind mounts (the backup
//!   repositories) and the state dir mounted at the same path. The token reaches `docker run`
//!   through its environment (`-e MANGROVE_AGENT_TOKEN` without a value). The server's port
//!   then carries the container's real address.
//!
//! The server stays BUILD until its agent process or container runs (ERROR if it cannot be
//! started), and a delete completes only once the container or process is gone and its state
//! dir removed. The token is kept in memory only: the state file never holds it, so a
//! simulator restarted during a build ends that build in ERROR.
//!
//! Config (in the simulator's TOML):
//! ```toml
//! [realize]
//! mode = "containers"                       # or "processes"
//! testbed_dir = "/var/tmp/tb"
//! agent_bin = "/usr/local/bin/mangrove-agent" # processes
//! image = "mangrove-host:latest"            # containers
//! mounts = [["/var/tmp/tb/storage/srv/backup", "/srv/backup", false]]
//! [[realize.networks]]
//! neutron = "dr-prod"
//! docker = "mgtb-1234abcd-dr"
//! routes = [["10.77.16.0/24", "10.77.17.254"]]
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use plugins::cloudinit::EnrollEnv;
use serde::{Deserialize, Serialize};

use super::Sim;
use super::state::{Realization, RealizeState};

/// Label on a realised container naming its server.
pub const SERVER_LABEL: &str = "org.mangrove.openstack-server";

/// How created servers are realised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealizeConfig {
    pub mode: RealizeMode,
    /// The testbed dir: instances' state dirs live under `<testbed_dir>/instances/`, and
    /// containers carry it as their `org.mangrove.testbed` label.
    pub testbed_dir: PathBuf,
    /// `mangrove-agent` (processes).
    #[serde(default)]
    pub agent_bin: Option<PathBuf>,
    /// The host image (containers).
    #[serde(default)]
    pub image: Option<String>,
    /// Bind mounts every instance container gets: (host path, container path, read-only).
    #[serde(default)]
    pub mounts: Vec<(String, String, bool)>,
    /// Neutron network name → docker network (containers).
    #[serde(default)]
    pub networks: Vec<NetworkMap>,
}

/// Where a container of a Neutron network goes, and what it may reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkMap {
    pub neutron: String,
    pub docker: String,
    /// (destination CIDR, via): the container's only routes besides its own network.
    #[serde(default)]
    pub routes: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RealizeMode {
    Processes,
    Containers,
}

impl RealizeConfig {
    /// Checks that the mode has what it needs.
    pub fn validate(&self) -> Result<(), String> {
        match self.mode {
            RealizeMode::Processes if self.agent_bin.is_none() => Err("realize: mode processes needs agent_bin".into()),
            RealizeMode::Containers if self.image.is_none() => Err("realize: mode containers needs image".into()),
            _ => Ok(()),
        }
    }

    /// The state dir of server `id`'s agent.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.testbed_dir.join("instances").join(id)
    }
}

/// Container realisation for the container testbed at `dir`: Neutron `dr-prod` on the DR
/// site's docker network (routed to the DC through the router, as the DR hosts are),
/// `dr-drill` on the isolated drill network (the controller its only route), each instance
/// with `mounts` (the backup repositories, [`crate::backup_storage::container_mounts`]).
pub fn container_config(
    dir: &Path,
    plan: &crate::containers::Plan,
    image: &str,
    controller_ip: std::net::Ipv4Addr,
    mounts: Vec<(String, String, bool)>,
) -> RealizeConfig {
    let dr = plan.net("dr");
    RealizeConfig {
        mode: RealizeMode::Containers,
        testbed_dir: dir.to_path_buf(),
        agent_bin: None,
        image: Some(image.to_string()),
        mounts,
        networks: vec![
            NetworkMap {
                neutron: "dr-prod".into(),
                docker: dr.name.clone(),
                routes: vec![(plan.other("dr").subnet(), dr.router().to_string())],
            },
            NetworkMap {
                neutron: "dr-drill".into(),
                docker: crate::containers::drill_net(plan).name,
                routes: crate::containers::drill_routes(plan, controller_ip),
            },
        ],
    }
}

/// The name of server `id`'s container in the testbed at `dir`.
pub fn container_name(dir: &Path, id: &str) -> String {
    format!("os-{}.{}", id, crate::containers::prefix(dir))
}

/// Starts the agent of server `id` (named `name`, on Neutron network `network`) and records
/// the outcome in the state; runs on a blocking thread.
pub(crate) fn start(sim: Arc<Sim>, id: String, name: String, network: Option<String>, env: EnrollEnv) {
    let Some(cfg) = sim.cfg.realize.clone() else { return };
    let outcome = match cfg.mode {
        RealizeMode::Processes => start_process(&cfg, &id, &env).map(|pid| (pid.to_string(), None)),
        RealizeMode::Containers => start_container(&cfg, &id, &name, network.as_deref(), &env),
    };
    let result = sim.store.write(|st| {
        let Some(s) = st.servers.iter_mut().find(|s| s.id == id) else {
            return Err(()); // deleted meanwhile: the delete's teardown finds the handle
        };
        let Some(r) = s.realized.as_mut() else { return Err(()) };
        if r.state != RealizeState::Starting {
            return Err(());
        }
        match &outcome {
            Ok((handle, ip)) => {
                r.handle = handle.clone();
                r.state = RealizeState::Running;
                if let Some(ip) = ip
                    && let Some(p) = st.ports.iter_mut().find(|p| p.device_id == id)
                    && let Some(f) = p.fixed_ips.first_mut()
                {
                    // The container's real address, so that DNS and probes can point at it.
                    f.ip_address = ip.clone();
                }
            }
            Err(message) => r.state = RealizeState::Failed { message: message.clone() },
        }
        Ok(())
    });
    match (result, outcome) {
        (Err(e), _) => tracing::error!(server = %id, error = %e, "openstack simulator: cannot save the state"),
        (Ok(Err(())), Ok((handle, _))) => {
            // Deleted while it started: take it down again.
            let r = Realization {
                mode: cfg.mode,
                handle,
                state_dir: cfg.state_dir(&id).display().to_string(),
                state: RealizeState::Stopping,
            };
            stop(&cfg, &id, &r);
        }
        (Ok(_), Err(message)) => tracing::warn!(server = %id, %message, "openstack simulator: cannot realise server"),
        (Ok(_), _) => tracing::info!(server = %id, name = %name, "openstack simulator: server realised"),
    }
}

/// Stops and removes what realised server `id`, then clears its record so the delete can
/// complete. Idempotent: a process or container already gone counts as stopped.
pub(crate) fn teardown(sim: Arc<Sim>, id: String, r: Realization) {
    let Some(cfg) = sim.cfg.realize.clone() else { return };
    stop(&cfg, &id, &r);
    let saved = sim.store.write(|st| {
        if let Some(s) = st.servers.iter_mut().find(|s| s.id == id) {
            s.realized = None;
        }
        Ok::<_, ()>(())
    });
    if let Err(e) = saved {
        tracing::error!(server = %id, error = %e, "openstack simulator: cannot save the state");
    }
}

fn stop(cfg: &RealizeConfig, id: &str, r: &Realization) {
    match r.mode {
        RealizeMode::Processes => {
            if let Ok(pid) = r.handle.parse::<u32>() {
                stop_process(pid, &r.state_dir);
            }
        }
        RealizeMode::Containers => {
            let name = container_name(&cfg.testbed_dir, id);
            let _ = crate::containers::docker(&["rm", "-f", &name], "docker rm");
        }
    }
    let dir = cfg.state_dir(id);
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "openstack simulator: cannot remove an instance's state dir");
    }
}

/// SIGTERM, then SIGKILL after 10 s, to `pid` if it is still the agent of `state_dir` (a
/// recycled pid belongs to someone else).
fn stop_process(pid: u32, state_dir: &str) {
    use nix::sys::signal::{Signal, kill};
    let ours = || {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|raw| raw.split(|b| *b == 0).any(|a| a == state_dir.as_bytes()))
            && crate::procs::alive(pid)
    };
    let Ok(raw) = i32::try_from(pid) else { return };
    let target = nix::unistd::Pid::from_raw(raw);
    if !ours() {
        return;
    }
    let _ = kill(target, Signal::SIGTERM);
    let end = Instant::now() + Duration::from_secs(10);
    while ours() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    if ours() {
        let _ = kill(target, Signal::SIGKILL);
    }
}

/// The agent's script: enroll once (the token from the environment), forget the token, run.
const PROCESS_SCRIPT: &str = "[ -f \"$1/agent.pem\" ] || \"$0\" enroll --controller \"$MANGROVE_ENROLL\" \
     --state-dir \"$1\" || exit 1; unset MANGROVE_AGENT_TOKEN; exec \"$0\" run --state-dir \"$1\"";

fn start_process(cfg: &RealizeConfig, id: &str, env: &EnrollEnv) -> Result<u32, String> {
    let agent = cfg.agent_bin.as_ref().ok_or("realize: no agent_bin")?;
    let state = cfg.state_dir(id);
    std::fs::create_dir_all(&state).map_err(|e| format!("cannot create {}: {e}", state.display()))?;
    let log = cfg.testbed_dir.join("logs").join(format!("instance-{id}.log"));
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(PROCESS_SCRIPT).arg(agent).arg(&state);
    cmd.env("MANGROVE_ENROLL", &env.enroll)
        .env("MANGROVE_AGENT_TOKEN", &env.token)
        .env("MANGROVE_STATE_DIR", &state)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    if let Some(dir) = &env.serve_dir {
        cmd.env("MANGROVE_SERVE_DIR", dir);
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", agent.display()))?;
    let pid = child.id();
    // Reap it when it ends, so a stopped agent leaves no zombie behind in the simulator.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(pid)
}

/// Starts server `id`'s container; returns its name and address.
fn start_container(
    cfg: &RealizeConfig,
    id: &str,
    name: &str,
    network: Option<&str>,
    env: &EnrollEnv,
) -> Result<(String, Option<String>), String> {
    let image = cfg.image.as_deref().ok_or("realize: no image")?;
    let network = network.ok_or("a realised server needs a network")?;
    let net = cfg
        .networks
        .iter()
        .find(|n| n.neutron == network)
        .ok_or_else(|| format!("no docker network is configured for Neutron network {network}"))?;
    let state = cfg.state_dir(id);
    std::fs::create_dir_all(&state).map_err(|e| format!("cannot create {}: {e}", state.display()))?;
    let cname = container_name(&cfg.testbed_dir, id);
    let hostname: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).take(63).collect();
    let mut boot = String::from("ip route del default 2>/dev/null;");
    for (dest, via) in &net.routes {
        boot.push_str(&format!(" ip route add {dest} via {via};"));
    }
    boot.push_str(" exec /usr/bin/runsvdir -P /etc/service");
    let s = state.display().to_string();
    let mut args: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        "--pull".into(),
        "never".into(),
        "--name".into(),
        cname.clone(),
        "--hostname".into(),
        hostname,
        "--label".into(),
        format!("{}={}", crate::containers::LABEL, cfg.testbed_dir.display()),
        "--label".into(),
        format!("{SERVER_LABEL}={id}"),
        "--network".into(),
        net.docker.clone(),
        "--cap-add".into(),
        "NET_ADMIN".into(),
        // Values from docker's own environment (below): the token stays out of argv.
        "-e".into(),
        "MANGROVE_ENROLL".into(),
        "-e".into(),
        "MANGROVE_AGENT_TOKEN".into(),
        "-e".into(),
        "MANGROVE_STATE_DIR".into(),
        "-e".into(),
        "MANGROVE_SERVE_DIR".into(),
        "-v".into(),
        format!("{s}:{s}"),
    ];
    for (from, to, ro) in &cfg.mounts {
        args.extend(["-v".to_string(), format!("{from}:{to}{}", if *ro { ":ro" } else { "" })]);
    }
    args.extend(["--entrypoint".into(), "/bin/sh".into(), image.into(), "-c".into(), boot]);
    let out = Command::new("docker")
        .args(&args)
        .env("MANGROVE_ENROLL", &env.enroll)
        .env("MANGROVE_AGENT_TOKEN", &env.token)
        .env("MANGROVE_STATE_DIR", &state)
        .env("MANGROVE_SERVE_DIR", env.serve_dir.as_deref().unwrap_or(""))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if !out.status.success() {
        return Err(format!("docker run {cname}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let ip = crate::containers::docker(
        &["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}", net.docker), &cname],
        "docker inspect",
    )
    .map_err(|e| e.to_string())?;
    if ip.is_empty() {
        return Err(format!("container {cname} has no address on {}", net.docker));
    }
    Ok((cname, Some(ip)))
}
