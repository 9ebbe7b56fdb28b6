//! Faults injected into a container testbed, each reversible. `<dir>/faults.json` records the
//! faults in force so that `heal` — from this process or another — can undo them; every
//! change holds `<dir>/faults.lock`, so the CLI and a chaos run never lose each other's
//! records.
//!
//! A host has at most one fault of each kind. `stop` and `pause` take the whole machine and
//! exclude each other; `clock` and `latency` act on the running agent, so they need the
//! machine up.

use std::path::{Path, PathBuf};

use crate::containers::{self, container_name, docker};
use crate::layout::{TestbedError, io};
use crate::volumes;

/// A fault in force, as `<dir>/faults.json` records it.
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
    /// The host's state volume has no free space left.
    DiskFull { host: String, ballast_bytes: u64, since_unix: u64 },
    /// The host's traffic to the controller passes a proxy that holds it `delay_ms` each way.
    Latency { host: String, delay_ms: u64, since_unix: u64 },
}

impl Fault {
    pub fn host(&self) -> Option<&str> {
        match self {
            Fault::Stop { host, .. }
            | Fault::Pause { host, .. }
            | Fault::Clock { host, .. }
            | Fault::DiskFull { host, .. }
            | Fault::Latency { host, .. } => Some(host),
            Fault::Partition { .. } => None,
        }
    }

    /// The kind, as `faults.json` and `testbed fault` name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::Stop { .. } => "stop",
            Fault::Pause { .. } => "pause",
            Fault::Clock { .. } => "clock",
            Fault::DiskFull { .. } => "disk-full",
            Fault::Latency { .. } => "latency",
        }
    }

    fn takes_machine(&self) -> bool {
        matches!(self, Fault::Stop { .. } | Fault::Pause { .. })
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn tool(what: &str, message: String) -> TestbedError {
    TestbedError::Tool { what: what.to_string(), message }
}

/// The container of a machine of this testbed, or an error naming what is wrong.
fn machine_container(dir: &Path, host: &str) -> Result<String, TestbedError> {
    let name = container_name(dir, host);
    let label = docker(
        &["inspect", "-f", &format!("{{{{index .Config.Labels \"{}\"}}}}", containers::LABEL), &name],
        "docker inspect",
    )
    .map_err(|_| tool("fault", format!("no container {host} in this testbed")))?;
    if label != dir.display().to_string() {
        return Err(tool("fault", format!("{host} is not a machine of this testbed")));
    }
    Ok(name)
}

fn faults_file(dir: &Path) -> PathBuf {
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

/// Runs `change` on the faults in force with the testbed's fault lock held, and records what
/// it leaves (also when it fails part-way, so a fault applied is never forgotten).
fn with_faults<T>(
    dir: &Path,
    change: impl FnOnce(&mut Vec<Fault>) -> Result<T, TestbedError>,
) -> Result<T, TestbedError> {
    let lock_path = dir.join("faults.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    let mut all = faults(dir)?;
    let before = all.clone();
    let out = change(&mut all);
    if all != before {
        let text = serde_json::to_string_pretty(&all)
            .map_err(|e| TestbedError::Format { path: faults_file(dir), message: e.to_string() })?;
        crate::layout::write_file(&faults_file(dir), &text, 0o644)?;
    }
    out
}

/// Records `f`, applied by `apply`, unless a fault of its kind is already in force on its
/// target (then that one is returned and nothing is done).
fn add(
    dir: &Path,
    f: Fault,
    apply: impl FnOnce(&[Fault]) -> Result<Fault, TestbedError>,
) -> Result<Fault, TestbedError> {
    with_faults(dir, |all| {
        if let Some(same) = all.iter().find(|g| g.kind() == f.kind() && g.host() == f.host()) {
            return Ok(same.clone());
        }
        let applied = apply(all)?;
        all.push(applied.clone());
        Ok(applied)
    })
}

fn refuse_if_down(all: &[Fault], host: &str, what: &str) -> Result<(), TestbedError> {
    match all.iter().find(|f| f.host() == Some(host) && f.takes_machine()) {
        Some(f) => {
            Err(tool(what, format!("{host} is {} ({}); `fault heal` first", f.kind(), "the agent cannot be reached")))
        }
        None => Ok(()),
    }
}

/// Cuts the path between the two sites. Idempotent: a partition already in force stays one.
pub fn partition(dir: &Path, a: &str, b: &str) -> Result<Fault, TestbedError> {
    let mut sites = [a.to_string(), b.to_string()];
    sites.sort();
    if sites != ["dc".to_string(), "dr".to_string()] {
        return Err(tool("fault partition", format!("the testbed's sites are dc and dr, not {a} and {b}")));
    }
    let plan = containers::plan_of(dir)?;
    let f = Fault::Partition { sites, since_unix: now_unix() };
    add(dir, f.clone(), |_| {
        containers::disconnect_router(&plan, "dr")?;
        Ok(f)
    })
}

/// SIGKILLs the host's agent; runit starts it again at once (a crash, not an outage), so there
/// is nothing to heal.
pub fn kill_agent(dir: &Path, host: &str) -> Result<(), TestbedError> {
    let name = machine_container(dir, host)?;
    restart_agent(&name)
}

fn restart_agent(container: &str) -> Result<(), TestbedError> {
    docker(&["exec", container, "pkill", "-KILL", "-f", "mangrove-agent run"], "killing the agent").map(|_| ())
}

/// Stops (`stop`) or freezes (`pause`) a host's container. Idempotent.
pub fn host_fault(dir: &Path, host: &str, pause: bool) -> Result<Fault, TestbedError> {
    let name = machine_container(dir, host)?;
    let since_unix = now_unix();
    let f = if pause {
        Fault::Pause { host: host.to_string(), since_unix }
    } else {
        Fault::Stop { host: host.to_string(), since_unix }
    };
    with_faults(dir, |all| {
        if let Some(g) = all.iter().find(|g| g.host() == Some(host) && g.takes_machine()) {
            return if g.kind() == f.kind() {
                Ok(g.clone())
            } else {
                Err(tool("fault", format!("{host} is already {}; `fault heal` first", g.kind())))
            };
        }
        if all.iter().any(|g| matches!(g, Fault::Latency { host: h, .. } if h == host)) {
            // The proxy and its rules live in the container's network namespace, which a
            // stop discards: heal the latency first rather than leave a record that lies.
            return Err(tool("fault", format!("{host} has latency in force; `fault heal` first")));
        }
        if pause {
            docker(&["pause", &name], "docker pause")?;
        } else {
            docker(&["stop", "-t", "5", &name], "docker stop")?;
        }
        all.push(f.clone());
        Ok(f)
    })
}

/// Starts a stopped host again (`fault start`); false if it was not stopped by a fault.
pub fn start_host(dir: &Path, host: &str) -> Result<bool, TestbedError> {
    machine_container(dir, host)?;
    let stopped = with_faults(dir, |all| {
        Ok(all.iter().find(|f| matches!(f, Fault::Stop { host: h, .. } if h == host)).cloned())
    })?;
    match stopped {
        Some(f) => undo(dir, &f).map(|()| true),
        None => Ok(false),
    }
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

/// Parses a delay: `500ms`, `2s`.
pub fn parse_delay(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let n: u64 = text[..split].parse().ok()?;
    let ms = match &text[split..] {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        _ => return None,
    };
    (1..=60_000).contains(&ms).then_some(ms)
}

fn clock_file(dir: &Path, host: &str) -> PathBuf {
    dir.join("agents").join(host).join("clock-offset")
}

/// Skews the clock the host's agent sees by `offset` (e.g. `+300s`); the agent restarts
/// under faketime. Replaces an earlier skew of the same host.
pub fn clock(dir: &Path, host: &str, offset: &str) -> Result<Fault, TestbedError> {
    let name = machine_container(dir, host)?;
    let secs = parse_offset(offset)
        .ok_or_else(|| tool("fault clock", format!("invalid offset {offset:?}; write e.g. +300s, -5m, +2h")))?;
    let f = Fault::Clock { host: host.to_string(), offset_seconds: secs, since_unix: now_unix() };
    with_faults(dir, |all| {
        refuse_if_down(all, host, "fault clock")?;
        all.retain(|g| !matches!(g, Fault::Clock { host: h, .. } if h == host));
        crate::layout::write_file(&clock_file(dir, host), &format!("{secs:+}"), 0o644)?;
        all.push(f.clone());
        restart_agent(&name)?;
        Ok(f)
    })
}

/// Fills the host's state volume.
pub fn disk_full(dir: &Path, host: &str) -> Result<Fault, TestbedError> {
    machine_container(dir, host)?;
    let probe = Fault::DiskFull { host: host.to_string(), ballast_bytes: 0, since_unix: now_unix() };
    add(dir, probe, |_| {
        let bytes = volumes::fill(&dir.join("agents").join(host))?;
        Ok(Fault::DiskFull { host: host.to_string(), ballast_bytes: bytes, since_unix: now_unix() })
    })
}

/// Where a host's delaying proxy listens, inside its container.
const PROXY_LISTEN: &str = "127.0.0.1:7070";
/// The user the proxy runs as, so that its own connections escape the redirect.
const PROXY_UID: u32 = 65534;
const NFT_TABLE: &str = "mangrove_latency";

/// The controller address the host's agent dials, from its enrollment record.
fn agent_endpoint(dir: &Path, host: &str) -> Result<String, TestbedError> {
    let path = dir.join("agents").join(host).join("enrollment.json");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| TestbedError::Format { path: path.clone(), message: e.to_string() })?;
    v["agent_endpoint"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| TestbedError::Format { path, message: "no agent_endpoint".into() })
}

/// Puts a delaying proxy between the host's agent and the controller: the proxy runs in the
/// host's container (`mangrove testbed delay-proxy`, as an unprivileged user) and an nftables
/// rule sends the agent's connections to the controller through it. The agent's live session
/// is cut so that it reconnects through the proxy at once.
pub fn latency(dir: &Path, host: &str, delay: &str) -> Result<Fault, TestbedError> {
    let name = machine_container(dir, host)?;
    let ms = parse_delay(delay).ok_or_else(|| {
        tool("fault latency", format!("invalid delay {delay:?}; write e.g. 500ms or 2s (at most 60s)"))
    })?;
    let endpoint = agent_endpoint(dir, host)?;
    // Parsed here, so that only an address and a port ever reach the script below (the
    // enrollment record sits in a dir the host can write).
    let addr: std::net::SocketAddrV4 = endpoint.parse().map_err(|_| {
        tool("fault latency", format!("{host}'s agent endpoint {endpoint:?} is not an IPv4 address:port"))
    })?;
    let (ip, port) = (addr.ip(), addr.port());
    let f = Fault::Latency { host: host.to_string(), delay_ms: ms, since_unix: now_unix() };
    add(dir, f.clone(), |all| {
        refuse_if_down(all, host, "fault latency")?;
        let script = format!(
            "set -eu
             if ss -Htln 'sport = :7070' | grep -q .; then echo 'a delay proxy is already listening' >&2; exit 1; fi
             setpriv --reuid={PROXY_UID} --regid={PROXY_UID} --clear-groups --inh-caps=-all \
               /usr/local/bin/mangrove testbed delay-proxy --listen {PROXY_LISTEN} --to {addr} --delay {ms}ms \
               >/proc/1/fd/1 2>&1 &
             up=
             for i in $(seq 50); do
               if ss -Htln 'sport = :7070' | grep -q .; then up=1; break; fi
               sleep 0.1
             done
             [ -n \"$up\" ] || {{ echo 'the delay proxy did not start' >&2; exit 1; }}
             if ! nft -f - <<EOF
             table ip {NFT_TABLE} {{
               chain out {{
                 type nat hook output priority -100;
                 ip daddr {ip} tcp dport {port} meta skuid != {PROXY_UID} dnat to {PROXY_LISTEN}
               }}
             }}
EOF
             then
               pkill -f '^/usr/local/bin/mangrove testbed delay-proxy' || true
               exit 1
             fi
             # Cut the live session so the agent reconnects through the proxy at once.
             ss -K dst {ip} dport = {port} >/dev/null 2>&1 || true"
        );
        docker(&["exec", &name, "sh", "-c", &script], "starting the delay proxy")?;
        Ok(f)
    })
}

fn remove_latency(container: &str) -> Result<(), TestbedError> {
    let script = format!(
        "nft delete table ip {NFT_TABLE} 2>/dev/null || true
         pkill -f '^/usr/local/bin/mangrove testbed delay-proxy' || true
         # The redirect must be gone: a rule left pointing at no proxy would cut the host off.
         if nft list table ip {NFT_TABLE} >/dev/null 2>&1; then echo 'the redirect is still there' >&2; exit 1; fi"
    );
    docker(&["exec", container, "sh", "-c", &script], "removing the delay proxy").map(|_| ())
}

/// Forgets every fault, for `testbed down`, which removed what they acted on.
pub fn forget_all(dir: &Path) -> Result<(), TestbedError> {
    if !faults_file(dir).exists() {
        return Ok(());
    }
    with_faults(dir, |all| {
        all.clear();
        Ok(())
    })
}

/// Undoes one fault and forgets it.
pub fn undo(dir: &Path, f: &Fault) -> Result<(), TestbedError> {
    with_faults(dir, |all| {
        if !all.contains(f) {
            return Ok(());
        }
        undo_one(dir, f)?;
        all.retain(|g| g != f);
        Ok(())
    })
}

fn undo_one(dir: &Path, f: &Fault) -> Result<(), TestbedError> {
    match f {
        Fault::Partition { .. } => containers::connect_router(&containers::plan_of(dir)?, "dr"),
        Fault::Stop { host, .. } => docker(&["start", &container_name(dir, host)], "docker start").map(|_| ()),
        Fault::Pause { host, .. } => docker(&["unpause", &container_name(dir, host)], "docker unpause").map(|_| ()),
        Fault::Clock { host, .. } => {
            let _ = std::fs::remove_file(clock_file(dir, host));
            // The agent starts again (runit) with the true clock.
            restart_agent(&container_name(dir, host))
        }
        Fault::DiskFull { host, .. } => volumes::unfill(&dir.join("agents").join(host)),
        Fault::Latency { host, .. } => remove_latency(&container_name(dir, host)),
    }
}

/// Undoes every fault in force (the machine-wide ones first, so that the others find their
/// machines running); returns them.
pub fn heal(dir: &Path) -> Result<Vec<Fault>, TestbedError> {
    with_faults(dir, |all| {
        let mut order = all.clone();
        order.sort_by_key(|f| !f.takes_machine());
        for f in &order {
            undo_one(dir, f)?;
            all.retain(|g| g != f);
        }
        Ok(order)
    })
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

    #[test]
    fn delays() {
        assert_eq!(parse_delay("500ms"), Some(500));
        assert_eq!(parse_delay("2s"), Some(2000));
        for bad in ["", "500", "0ms", "61s", "-5ms", "1.5s", "5m"] {
            assert_eq!(parse_delay(bad), None, "{bad}");
        }
    }

    #[test]
    fn faults_json_names_each_kind() {
        let f = Fault::DiskFull { host: "h".into(), ballast_bytes: 5, since_unix: 1 };
        let v = serde_json::to_value(&f).expect("json");
        assert_eq!(v["kind"], "disk-full");
        assert_eq!(f.kind(), "disk-full");
        let back: Fault = serde_json::from_value(v).expect("back");
        assert_eq!(back, f);
    }
}
