//! Facts: what the agent reports about its machine (OS, kernel, CPU, memory, filesystems,
//! interfaces, listening ports, systemd units), and the problems it can name from them for the
//! heartbeat.
//!
//! Facts come from one of two sources, chosen by the agent's configuration and never by
//! `cfg(test)`: the real machine ([`FactSource::System`]: sysinfo, procfs, `systemctl`), or a
//! machine described by the inventory ([`FactSource::Simulated`]), which the testbed uses to run
//! one agent per simulated host (for example an ESXi host) on a laptop.
//!
//! The agent sends a snapshot every minute and must stay within 0.2 % of a core and 10 MiB, so
//! the [`Collector`] keeps its sysinfo state between calls and refreshes only what it reports:
//! no process table, no CPU usage sampling, no disk I/O counters. `/proc/net/tcp*` is read a line
//! at a time, so a host with many connections does not cost memory.
//!
//! The parsers (`/proc/net/tcp`, `systemctl list-units`, the online-CPU list, which mounts count
//! as filesystems) and [`problems`] are pure functions with table tests next to them; the IO is
//! in [`Collector::collect`].

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proto::v1::{Facts, Filesystem, NetworkInterface, SystemdUnit};
use sysinfo::{CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, System};

/// The version reported in every snapshot.
const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where facts come from: the real machine, or a simulated machine seeded from the inventory
/// (testbed). Chosen by configuration (the agent's TOML config), never by `cfg(test)`.
///
/// In TOML: `source = "system"`, or `source = "simulated"` followed by the fields of
/// [`SimulatedMachine`] in the same table. Unknown fields are refused in both cases.
#[derive(Debug, Clone, Default, serde::Deserialize, PartialEq)]
#[serde(from = "FactSourceConfig")]
pub enum FactSource {
    /// Read the machine the agent runs on.
    #[default]
    System,
    /// Report the machine described here (the testbed seeds it from the inventory).
    Simulated(SimulatedMachine),
}

/// The configuration form of [`FactSource`]. serde ignores `deny_unknown_fields` for a unit
/// variant of an internally tagged enum, so `System` is an empty struct variant here.
#[derive(serde::Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
enum FactSourceConfig {
    System {},
    Simulated(SimulatedMachine),
}

impl From<FactSourceConfig> for FactSource {
    fn from(config: FactSourceConfig) -> Self {
        match config {
            FactSourceConfig::System {} => Self::System,
            FactSourceConfig::Simulated(machine) => Self::Simulated(machine),
        }
    }
}

/// A machine the agent pretends to run on. Memory, disk and load are derived from these figures
/// (see [`Collector::collect`]); nothing is read from the real machine.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimulatedMachine {
    /// The host name reported, normally the inventory name.
    pub hostname: String,
    /// OS name as `/etc/os-release` `NAME` would give it, e.g. "VMware ESXi".
    pub os_name: String,
    /// OS version, e.g. "8.0.3".
    pub os_version: String,
    /// Kernel release as `uname -r` would print it.
    pub kernel_release: String,
    /// Logical CPUs.
    pub cpu_count: u32,
    /// Installed memory in bytes; half of it is reported as available.
    pub memory_total_bytes: u64,
    /// Size of the root filesystem in bytes (60 % of it reported available); 0 reports no
    /// filesystem.
    #[serde(default)]
    pub disk_total_bytes: u64,
    /// Addresses of the single interface `eth0`, as the inventory lists them.
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// Collects fact snapshots from its [`FactSource`].
///
/// It keeps sysinfo state between calls so that repeated collection is cheap. [`collect`]
/// blocks (it reads procfs, calls `statvfs` on every mount and may run `systemctl` for up to
/// [`SYSTEMCTL_TIMEOUT`]), so call it from `tokio::task::spawn_blocking`; the collector is `Send`.
///
/// [`collect`]: Collector::collect
pub struct Collector {
    inner: Inner,
}

enum Inner {
    System(Box<SystemProbe>),
    Simulated { machine: SimulatedMachine, created: Instant },
}

/// sysinfo state kept between snapshots. Each part is `None` when sysinfo could not create it
/// (it cannot fail on Linux; the fields it would fill stay empty).
struct SystemProbe {
    system: Option<System>,
    disks: Option<Disks>,
    networks: Option<Networks>,
    /// Read once: `/proc/cpuinfo` can be slow to read on large x86 hosts.
    cpu_brand: String,
    /// Logical CPUs at start-up, used when `/sys/devices/system/cpu/online` cannot be read.
    cpu_count_at_start: u32,
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::System(_) => f.write_str("Collector(system)"),
            Inner::Simulated { machine, .. } => {
                write!(f, "Collector(simulated {})", machine.hostname)
            }
        }
    }
}

impl Collector {
    /// A collector for `source`. For the real machine this reads the CPU list once (brand and
    /// count); it never fails: what cannot be read is left empty in the snapshots and logged at
    /// debug level.
    pub fn new(source: FactSource) -> Self {
        let inner = match source {
            FactSource::System => Inner::System(Box::new(SystemProbe::new())),
            FactSource::Simulated(machine) => Inner::Simulated { machine, created: Instant::now() },
        };
        Self { inner }
    }

    /// A snapshot of the facts now. Best effort: a fact that cannot be read is left at its
    /// default (empty, 0, false) rather than failing the snapshot.
    ///
    /// Simulated machines report the [`SimulatedMachine`] figures, memory 50 % available, one
    /// filesystem `/` 60 % available, an uptime counted from the collector's creation, a light
    /// load proportional to the CPU count, one interface `eth0` and no systemd.
    pub fn collect(&mut self) -> Facts {
        match &mut self.inner {
            Inner::System(probe) => probe.collect(),
            Inner::Simulated { machine, created } => simulated_facts(machine, created.elapsed()),
        }
    }
}

impl SystemProbe {
    fn new() -> Self {
        let system = ok_or_log("system", System::new()).map(|mut system| {
            system.refresh_cpu_list(CpuRefreshKind::nothing());
            system
        });
        let (cpu_brand, cpu_count_at_start) = match &system {
            Some(system) => (
                system.cpus().first().map(|cpu| cpu.brand().trim().to_owned()).unwrap_or_default(),
                u32::try_from(system.cpus().len()).unwrap_or(u32::MAX),
            ),
            None => (String::new(), 0),
        };
        Self {
            system,
            disks: ok_or_log("disks", Disks::new()),
            networks: ok_or_log("networks", Networks::new()),
            cpu_brand,
            cpu_count_at_start,
        }
    }

    fn collect(&mut self) -> Facts {
        let mut facts = Facts {
            source: "system".to_owned(),
            agent_version: AGENT_VERSION.to_owned(),
            hostname: nix::unistd::gethostname().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(
                |error| {
                    tracing::debug!(%error, "cannot read the hostname");
                    String::new()
                },
            ),
            os_name: ok_or_log("os name", System::name()).unwrap_or_default(),
            os_version: ok_or_log("os version", System::os_version()).unwrap_or_default(),
            kernel_release: kernel_release(),
            cpu_brand: self.cpu_brand.clone(),
            cpu_count: online_cpu_count().unwrap_or(self.cpu_count_at_start),
            uptime_seconds: ok_or_log("uptime", System::uptime()).unwrap_or_default(),
            ..Facts::default()
        };
        if let Some(load) = ok_or_log("load average", System::load_average()) {
            facts.load1 = load.one;
            facts.load5 = load.five;
            facts.load15 = load.fifteen;
        }
        if let Some(system) = &mut self.system {
            system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
            facts.memory_total_bytes = system.total_memory();
            facts.memory_available_bytes = system.available_memory();
            facts.swap_total_bytes = system.total_swap();
        }
        if let Some(disks) = &mut self.disks {
            disks.refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
            facts.filesystems = filesystems(disks);
        }
        if let Some(networks) = &mut self.networks {
            networks.refresh(true);
            facts.interfaces = interfaces(networks);
        }
        facts.listening_tcp_ports = listening_tcp_ports();
        facts.systemd = systemd_is_pid1();
        if facts.systemd {
            facts.systemd_units = list_systemd_units().unwrap_or_else(|error| {
                tracing::debug!(error = %error_chain(&error), "cannot list systemd units");
                Vec::new()
            });
        }
        facts
    }
}

/// `Some(value)`, or `None` with the error logged at debug level.
fn ok_or_log<T>(what: &str, result: Result<T, sysinfo::Error>) -> Option<T> {
    result.inspect_err(|error| tracing::debug!(what, %error, "cannot read fact")).ok()
}

/// The kernel release, as `uname -r` prints it (sysinfo reads it with `uname(2)`).
fn kernel_release() -> String {
    match System::kernel_version() {
        Ok(release) => release,
        Err(error) => {
            tracing::debug!(%error, "uname failed, reading /proc/sys/kernel/osrelease");
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|release| release.trim().to_owned())
                .unwrap_or_default()
        }
    }
}

/// Logical CPUs online now (`/sys/devices/system/cpu/online`), so a hot-added CPU is counted
/// without re-reading `/proc/cpuinfo`.
fn online_cpu_count() -> Option<u32> {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    parse_cpu_list_count(&list)
}

/// Counts the CPUs in a kernel CPU list such as `0-3,8,10-11` (6). `None` if it is malformed.
fn parse_cpu_list_count(list: &str) -> Option<u32> {
    let list = list.trim();
    if list.is_empty() {
        return None;
    }
    let mut count: u32 = 0;
    for range in list.split(',') {
        let n = match range.split_once('-') {
            Some((first, last)) => {
                let first: u32 = first.trim().parse().ok()?;
                let last: u32 = last.trim().parse().ok()?;
                last.checked_sub(first)?.checked_add(1)?
            }
            None => {
                range.trim().parse::<u32>().ok()?;
                1
            }
        };
        count = count.checked_add(n)?;
    }
    Some(count)
}

/// The filesystems worth reporting from sysinfo's mount list: pseudo filesystems dropped, one
/// entry per device (the shortest mount point, as `df` does, so bind mounts and a container's
/// `/etc/hosts` do not repeat the root filesystem), sorted by mount point.
fn filesystems(disks: &Disks) -> Vec<Filesystem> {
    let mounted = disks
        .iter()
        .filter(|disk| disk.total_space() > 0)
        .map(|disk| Filesystem {
            mount_point: disk.mount_point().to_string_lossy().into_owned(),
            device: disk.name().to_string_lossy().into_owned(),
            fs_type: disk.file_system().to_string_lossy().into_owned(),
            total_bytes: disk.total_space(),
            available_bytes: disk.available_space(),
        })
        .filter(|fs| is_real_filesystem(&fs.fs_type, &fs.mount_point))
        .collect();
    one_per_device(mounted)
}

/// Filesystem types that hold no data of their own (kernel interfaces, memory-backed, container
/// layers, FUSE helpers). sysinfo drops some of them already; this list is the one we answer for.
const PSEUDO_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse.gvfsd-fuse",
    "fuse.lxcfs",
    "fuse.portal",
    "fuse.snapfuse",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "overlay",
    "aufs",
    "proc",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Whether a mount is a real filesystem: not a pseudo type and not under `/proc`, `/sys`, `/dev`
/// or `/run`.
fn is_real_filesystem(fs_type: &str, mount_point: &str) -> bool {
    let under =
        |dir: &str| mount_point == dir || mount_point.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'));
    !PSEUDO_FS_TYPES.contains(&fs_type) && !["/proc", "/sys", "/dev", "/run"].into_iter().any(under)
}

/// Keeps one filesystem per device, the one with the shortest mount point, sorted by mount
/// point.
fn one_per_device(mut mounted: Vec<Filesystem>) -> Vec<Filesystem> {
    mounted.sort_by(|a, b| (a.mount_point.len(), &a.mount_point).cmp(&(b.mount_point.len(), &b.mount_point)));
    let mut devices = BTreeSet::new();
    mounted.retain(|fs| devices.insert(fs.device.clone()));
    mounted.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    mounted
}

/// Every interface with its MAC (empty when it has none, like `lo`) and its addresses as
/// `address/prefix`, sorted by name.
fn interfaces(networks: &Networks) -> Vec<NetworkInterface> {
    let mut interfaces: Vec<NetworkInterface> = networks
        .iter()
        .map(|(name, data)| {
            let mac = data.mac_address();
            let mut addresses: Vec<String> = data.ip_networks().iter().map(ToString::to_string).collect();
            addresses.sort();
            NetworkInterface {
                name: name.to_string_lossy().into_owned(),
                mac: if mac.is_unspecified() { String::new() } else { mac.to_string() },
                addresses,
            }
        })
        .collect();
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));
    interfaces
}

/// TCP ports in the LISTEN state, IPv4 and IPv6 together, deduplicated and sorted.
///
/// This is the costliest fact: reading `/proc/net/tcp*` walks the kernel's whole TCP hash table
/// whatever the number of sockets (about 6 ms of CPU per file with 262144 buckets). Asking
/// `NETLINK_SOCK_DIAG` for listening sockets only would avoid that walk.
fn listening_tcp_ports() -> Vec<u32> {
    let mut ports = BTreeSet::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::File::open(path) {
            Ok(file) => add_listening_ports(BufReader::new(file), &mut ports),
            Err(error) => tracing::debug!(path, %error, "cannot read listening ports"),
        }
    }
    ports.into_iter().collect()
}

/// Adds the listening ports of a `/proc/net/tcp` or `/proc/net/tcp6` table, read a line at a
/// time. A line that does not parse (the header, garbage, a truncated line) is skipped; a read
/// error ends the table.
fn add_listening_ports(table: impl BufRead, ports: &mut BTreeSet<u32>) {
    for line in table.split(b'\n') {
        let Ok(line) = line else { break };
        if let Some(port) = std::str::from_utf8(&line).ok().and_then(parse_listening_port) {
            ports.insert(u32::from(port));
        }
    }
}

/// `/proc/net/tcp` state code for LISTEN.
const TCP_LISTEN: &str = "0A";

/// The local port of a `/proc/net/tcp*` line whose socket is listening, e.g. 22 for
/// `0: 00000000:0016 00000000:0000 0A ...`.
fn parse_listening_port(line: &str) -> Option<u16> {
    let mut fields = line.split_whitespace();
    let slot = fields.next()?;
    let local = fields.next()?;
    let _remote = fields.next()?;
    let state = fields.next()?;
    if !slot.ends_with(':') || !state.eq_ignore_ascii_case(TCP_LISTEN) {
        return None;
    }
    let (address, port) = local.rsplit_once(':')?;
    if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if port.is_empty() || port.len() > 4 || !port.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(port, 16).ok().filter(|port| *port != 0)
}

/// Whether PID 1 is systemd (only then are unit states meaningful).
fn systemd_is_pid1() -> bool {
    std::fs::read_to_string("/proc/1/comm").is_ok_and(|comm| comm.trim() == "systemd")
}

/// How long `systemctl list-units` may take before it is killed and the list left empty.
pub const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(5);

/// Output of `systemctl list-units` kept; the rest is read and discarded.
const SYSTEMCTL_OUTPUT_CAP: u64 = 4 * 1024 * 1024;

/// Listing the systemd service units with `systemctl list-units` failed.
#[derive(Debug, thiserror::Error)]
enum ListUnitsError {
    /// systemctl could not be started.
    #[error("cannot start systemctl")]
    Spawn(#[source] io::Error),
    /// systemctl did not finish in time and was killed.
    #[error("systemctl did not finish within {0:?}")]
    Timeout(Duration),
    /// systemctl ran and failed.
    #[error("systemctl exited with {0}")]
    Status(ExitStatus),
    /// The output of systemctl or its exit status could not be read.
    #[error("cannot read the result of systemctl")]
    Read(#[source] io::Error),
}

/// The service units systemd knows, from
/// `systemctl list-units --type=service --all --no-legend --plain --no-pager`, killed after
/// [`SYSTEMCTL_TIMEOUT`] (a wedged systemd must not stop fact collection).
fn list_systemd_units() -> Result<Vec<SystemdUnit>, ListUnitsError> {
    let mut systemctl = Command::new("systemctl");
    systemctl.args(["list-units", "--type=service", "--all", "--no-legend", "--plain", "--no-pager"]);
    let output = output_within(&mut systemctl, SYSTEMCTL_TIMEOUT, SYSTEMCTL_OUTPUT_CAP)?;
    Ok(parse_systemd_units(&String::from_utf8_lossy(&output)))
}

/// Runs `command` (stdin and stderr on `/dev/null`) and returns the first `cap` bytes of its
/// stdout (the rest is read and discarded, so the child never blocks on a full pipe). The child
/// is killed if it has not exited and closed its stdout within `timeout`.
fn output_within(command: &mut Command, timeout: Duration, cap: u64) -> Result<Vec<u8>, ListUnitsError> {
    let deadline = Instant::now() + timeout;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(ListUnitsError::Spawn)?;
    let output = match child.stdout.take() {
        Some(mut stdout) => {
            // A thread reads the pipe so that this one can give up at the deadline.
            let (sender, receiver) = mpsc::channel();
            let reader = std::thread::Builder::new().name("facts-command-output".to_owned()).spawn(move || {
                let mut output = Vec::new();
                let read = stdout
                    .by_ref()
                    .take(cap)
                    .read_to_end(&mut output)
                    .and_then(|_| io::copy(&mut stdout, &mut io::sink()))
                    .map(|_| output);
                // The receiver is gone only if the caller gave up already.
                let _ = sender.send(read);
            });
            if let Err(error) = reader {
                kill_and_reap(&mut child);
                return Err(ListUnitsError::Spawn(error));
            }
            match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(read) => read,
                Err(_) => {
                    kill_and_reap(&mut child);
                    return Err(ListUnitsError::Timeout(timeout));
                }
            }
        }
        None => Ok(Vec::new()),
    };
    // Its stdout is closed, so the child is exiting; wait for that within the deadline too.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                kill_and_reap(&mut child);
                return Err(ListUnitsError::Timeout(timeout));
            }
            Err(error) => {
                kill_and_reap(&mut child);
                return Err(ListUnitsError::Read(error));
            }
        }
    };
    let output = output.map_err(ListUnitsError::Read)?;
    if !status.success() {
        return Err(ListUnitsError::Status(status));
    }
    Ok(output)
}

fn kill_and_reap(child: &mut std::process::Child) {
    // Either may fail only if the child is gone already, which is what we want.
    let _ = child.kill();
    let _ = child.wait();
}

/// Status markers some systemd versions print before a unit name even with `--plain`.
const UNIT_MARKERS: &[&str] = &["●", "○", "×", "*"];

/// Parses `systemctl list-units --no-legend --plain` output: `UNIT LOAD ACTIVE SUB DESCRIPTION`
/// per line. Lines with fewer than four columns are skipped.
fn parse_systemd_units(text: &str) -> Vec<SystemdUnit> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip_while(|field| UNIT_MARKERS.contains(field));
            let name = fields.next()?;
            let _load = fields.next()?;
            let active = fields.next()?;
            let sub = fields.next()?;
            Some(SystemdUnit { name: name.to_owned(), active_state: active.to_owned(), sub_state: sub.to_owned() })
        })
        .collect()
}

/// The error and its sources, joined with ": ".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The facts of a simulated machine `uptime` after the collector was created.
fn simulated_facts(machine: &SimulatedMachine, uptime: Duration) -> Facts {
    let cpus = f64::from(machine.cpu_count);
    let filesystems = if machine.disk_total_bytes > 0 {
        vec![Filesystem {
            mount_point: "/".to_owned(),
            device: "/dev/sda1".to_owned(),
            fs_type: "ext4".to_owned(),
            total_bytes: machine.disk_total_bytes,
            available_bytes: percent_of(machine.disk_total_bytes, 60),
        }]
    } else {
        Vec::new()
    };
    Facts {
        source: "simulated".to_owned(),
        hostname: machine.hostname.clone(),
        os_name: machine.os_name.clone(),
        os_version: machine.os_version.clone(),
        kernel_release: machine.kernel_release.clone(),
        cpu_brand: "Simulated CPU".to_owned(),
        cpu_count: machine.cpu_count,
        memory_total_bytes: machine.memory_total_bytes,
        memory_available_bytes: percent_of(machine.memory_total_bytes, 50),
        swap_total_bytes: 0,
        uptime_seconds: uptime.as_secs(),
        load1: cpus * 0.10,
        load5: cpus * 0.08,
        load15: cpus * 0.05,
        filesystems,
        interfaces: vec![NetworkInterface {
            name: "eth0".to_owned(),
            mac: simulated_mac(&machine.hostname),
            addresses: machine.addresses.clone(),
        }],
        listening_tcp_ports: Vec::new(),
        systemd_units: Vec::new(),
        systemd: false,
        agent_version: AGENT_VERSION.to_owned(),
        security_json: String::new(),
        antivirus: None,
    }
}

/// `percent` % of `total`, rounded down.
fn percent_of(total: u64, percent: u64) -> u64 {
    u64::try_from(u128::from(total) * u128::from(percent) / 100).unwrap_or(u64::MAX)
}

/// A stable, locally administered MAC for a simulated host (FNV-1a of its name).
fn simulated_mac(hostname: &str) -> String {
    let hash = hostname
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
    let b = hash.to_be_bytes();
    format!("02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[3], b[4], b[5], b[6], b[7])
}

/// A filesystem more used than this (per cent of its size) is a problem.
const FILESYSTEM_FULL_PERCENT: u64 = 95;
/// Less memory available than this (per cent of the total) is a problem.
const MEMORY_LOW_PERCENT: u64 = 5;
/// Failed units named one by one in the heartbeat; the rest are counted.
const FAILED_UNITS_NAMED: usize = 10;
/// Filesystem types that are full by design (read-only images).
const ALWAYS_FULL_FS_TYPES: &[&str] = &["squashfs", "erofs", "iso9660", "udf", "cramfs"];

/// Problems the agent can name, for the heartbeat (non-empty means the host is "degraded"):
/// a filesystem over 95 % full, less than 5 % of memory available, a failed systemd service
/// (when systemd is PID 1), an anti-malware engine that has stopped
/// ([`crate::antivirus::problem`]). Percentages are rounded down in the messages.
pub fn problems(facts: &Facts) -> Vec<String> {
    let mut problems = Vec::new();
    for fs in &facts.filesystems {
        if fs.total_bytes == 0 || ALWAYS_FULL_FS_TYPES.contains(&fs.fs_type.as_str()) {
            continue;
        }
        let used = fs.total_bytes.saturating_sub(fs.available_bytes);
        if u128::from(used) * 100 > u128::from(fs.total_bytes) * u128::from(FILESYSTEM_FULL_PERCENT) {
            problems.push(format!("filesystem {} is {}% full", fs.mount_point, percent(used, fs.total_bytes)));
        }
    }
    if facts.memory_total_bytes > 0
        && u128::from(facts.memory_available_bytes) * 100
            < u128::from(facts.memory_total_bytes) * u128::from(MEMORY_LOW_PERCENT)
    {
        problems.push(format!(
            "only {}% of memory is available",
            percent(facts.memory_available_bytes, facts.memory_total_bytes)
        ));
    }
    if facts.systemd {
        let failed: Vec<&str> = facts
            .systemd_units
            .iter()
            .filter(|unit| unit.active_state == "failed")
            .map(|unit| unit.name.as_str())
            .collect();
        for name in failed.iter().take(FAILED_UNITS_NAMED) {
            problems.push(format!("systemd unit {name} has failed"));
        }
        if failed.len() > FAILED_UNITS_NAMED {
            problems.push(format!("{} more systemd units have failed", failed.len() - FAILED_UNITS_NAMED));
        }
    }
    problems.extend(facts.antivirus.as_ref().and_then(crate::antivirus::problem));
    problems
}

/// `part` as a whole percentage of `total` (rounded down; `total` is not 0).
fn percent(part: u64, total: u64) -> u64 {
    u64::try_from(u128::from(part) * 100 / u128::from(total.max(1))).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_ports_parse_from_proc_net_tcp() {
        // (line, expected port)
        let cases: &[(&str, Option<u16>)] = &[
            ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode", None),
            (
                "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0",
                Some(22),
            ),
            (
                "   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 23456 1",
                Some(8080),
            ),
            // established, not listening
            (
                "   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 34567 1",
                None,
            ),
            // IPv6, lower-case state
            (
                "   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0a 00000000:00000000 00:00000000 00000000     0        0 45678 1",
                Some(443),
            ),
            ("", None),
            ("garbage", None),
            ("   3: 00000000:zzzz 00000000:0000 0A", None),
            ("   3: 00000000:10000 00000000:0000 0A", None),
            ("   3: 00000000: 00000000:0000 0A", None),
            ("   3: 00000000 00000000:0000 0A", None),
            ("   3: :0016 00000000:0000 0A", None),
            ("   3: 00000000:0000 00000000:0000 0A", None),
            ("   3: 00000000:0016 00000000:0000", None),
            ("3 00000000:0016 00000000:0000 0A", None),
            ("   4: 00000000:FFFF 00000000:0000 0A", Some(65535)),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_listening_port(line), *expected, "line {line:?}");
        }
    }

    #[test]
    fn listening_ports_are_deduplicated_and_sorted_across_tables() {
        let tcp = "  sl  local_address rem_address   st\n\
                   \x20  0: 00000000:0050 00000000:0000 0A 0\n\
                   \x20  1: 0100007F:0016 00000000:0000 0A 0\n\
                   \x20  2: 0100007F:0016 0100007F:9C40 01 0\n\
                   not a line at all \u{fffd}\n\
                   \x20  3: 0100007F:1F90 00000000:0000 0A 0";
        let tcp6 = b"  sl  local_address\n   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0\n\xff\xfe invalid utf-8\n   1: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 0A 0\n";
        let mut ports = BTreeSet::new();
        add_listening_ports(tcp.as_bytes(), &mut ports);
        add_listening_ports(&tcp6[..], &mut ports);
        assert_eq!(ports.into_iter().collect::<Vec<_>>(), vec![22, 53, 80, 8080]);
    }

    #[test]
    fn cpu_lists_are_counted() {
        let cases: &[(&str, Option<u32>)] = &[
            ("0\n", Some(1)),
            ("0-3\n", Some(4)),
            ("0-3,8,10-11\n", Some(7)),
            ("0-63", Some(64)),
            ("", None),
            ("3-1", None),
            ("0-x", None),
            ("a", None),
        ];
        for (list, expected) in cases {
            assert_eq!(parse_cpu_list_count(list), *expected, "list {list:?}");
        }
    }

    #[test]
    fn pseudo_and_system_mounts_are_not_filesystems() {
        let cases: &[(&str, &str, bool)] = &[
            ("ext4", "/", true),
            ("xfs", "/var/lib/mysql", true),
            ("vfat", "/boot/efi", true),
            ("ext4", "/var/lib/docker", true),
            ("ext4", "/runtime", true),
            ("proc", "/proc", false),
            ("sysfs", "/sys", false),
            ("cgroup2", "/sys/fs/cgroup", false),
            ("overlay", "/", false),
            ("overlay", "/var/lib/docker/overlay2/abc/merged", false),
            ("tmpfs", "/dev/shm", false),
            ("fuse.lxcfs", "/var/lib/lxcfs", false),
            ("ext4", "/run/user/1000/doc", false),
            ("ext4", "/dev/something", false),
        ];
        for (fs_type, mount_point, expected) in cases {
            assert_eq!(is_real_filesystem(fs_type, mount_point), *expected, "{fs_type} on {mount_point}");
        }
    }

    fn fs(mount_point: &str, device: &str, fs_type: &str, total: u64, available: u64) -> Filesystem {
        Filesystem {
            mount_point: mount_point.to_owned(),
            device: device.to_owned(),
            fs_type: fs_type.to_owned(),
            total_bytes: total,
            available_bytes: available,
        }
    }

    #[test]
    fn bind_mounts_of_one_device_are_reported_once_at_the_shortest_mount_point() {
        let mounted = vec![
            fs("/var/lib/docker", "/dev/vda", "ext4", 100, 50),
            fs("/etc/hosts", "/dev/vda", "ext4", 100, 50),
            fs("/", "/dev/vda", "ext4", 100, 50),
            fs("/boot", "/dev/vdb1", "ext4", 10, 5),
        ];
        let mount_points: Vec<String> = one_per_device(mounted).into_iter().map(|fs| fs.mount_point).collect();
        assert_eq!(mount_points, vec!["/", "/boot"]);
    }

    #[test]
    fn systemctl_list_units_output_parses() {
        let text = "cron.service loaded active running Regular background program processing daemon\n\
                    ● nginx.service loaded failed failed A high performance web server\n\
                    foo.service not-found inactive dead foo.service\n\
                    \n\
                    short line\n";
        let units = parse_systemd_units(text);
        let got: Vec<(&str, &str, &str)> =
            units.iter().map(|u| (u.name.as_str(), u.active_state.as_str(), u.sub_state.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("cron.service", "active", "running"),
                ("nginx.service", "failed", "failed"),
                ("foo.service", "inactive", "dead"),
            ]
        );
    }

    #[test]
    fn commands_for_facts_are_bounded_in_time_and_output() {
        let sh = |script: &str| {
            let mut command = Command::new("sh");
            command.args(["-c", script]);
            command
        };
        let output = output_within(&mut sh("echo a; echo b"), Duration::from_secs(5), 1024);
        assert_eq!(output.expect("runs"), b"a\nb\n");

        // More output than the cap and than a pipe holds: read, discarded, not blocking.
        let output = output_within(&mut sh("head -c 1000000 /dev/zero"), Duration::from_secs(5), 1000);
        assert_eq!(output.expect("runs").len(), 1000);

        let begun = Instant::now();
        let output = output_within(&mut sh("sleep 10"), Duration::from_millis(200), 1024);
        assert!(matches!(output, Err(ListUnitsError::Timeout(_))), "{output:?}");
        assert!(begun.elapsed() < Duration::from_secs(2));

        let output = output_within(&mut sh("exit 3"), Duration::from_secs(5), 1024);
        assert!(matches!(output, Err(ListUnitsError::Status(_))), "{output:?}");

        let output = output_within(&mut Command::new("/no/such/systemctl"), Duration::from_secs(5), 1024);
        assert!(matches!(output, Err(ListUnitsError::Spawn(_))), "{output:?}");
    }

    fn unit(name: &str, active: &str) -> SystemdUnit {
        SystemdUnit { name: name.to_owned(), active_state: active.to_owned(), sub_state: String::new() }
    }

    #[test]
    fn problems_are_named() {
        const GIB: u64 = 1 << 30;
        let healthy = Facts {
            memory_total_bytes: 16 * GIB,
            memory_available_bytes: 8 * GIB,
            filesystems: vec![fs("/", "/dev/sda1", "ext4", 100 * GIB, 40 * GIB)],
            ..Facts::default()
        };
        let cases: Vec<(&str, Facts, Vec<String>)> = vec![
            ("healthy", healthy.clone(), vec![]),
            ("empty facts", Facts::default(), vec![]),
            (
                "filesystem 97% full",
                Facts {
                    filesystems: vec![
                        fs("/", "/dev/sda1", "ext4", 100 * GIB, 3 * GIB),
                        fs("/data", "/dev/sdb1", "xfs", 100 * GIB, 50 * GIB),
                    ],
                    ..healthy.clone()
                },
                vec!["filesystem / is 97% full".to_owned()],
            ),
            (
                "exactly 95% full is not a problem",
                Facts { filesystems: vec![fs("/", "/dev/sda1", "ext4", 100, 5)], ..healthy.clone() },
                vec![],
            ),
            (
                "zero-sized filesystem is ignored",
                Facts { filesystems: vec![fs("/x", "/dev/x", "ext4", 0, 0)], ..healthy.clone() },
                vec![],
            ),
            (
                "read-only image is full by design",
                Facts { filesystems: vec![fs("/snap/core/1", "/dev/loop0", "squashfs", 100, 0)], ..healthy.clone() },
                vec![],
            ),
            (
                "available above total does not underflow",
                Facts { filesystems: vec![fs("/", "/dev/sda1", "ext4", 100, 200)], ..healthy.clone() },
                vec![],
            ),
            (
                "memory 3% available",
                Facts { memory_total_bytes: 100 * GIB, memory_available_bytes: 3 * GIB, ..healthy.clone() },
                vec!["only 3% of memory is available".to_owned()],
            ),
            (
                "memory exactly 5% available is not a problem",
                Facts { memory_total_bytes: 100, memory_available_bytes: 5, ..healthy.clone() },
                vec![],
            ),
            (
                "failed unit under systemd",
                Facts {
                    systemd: true,
                    systemd_units: vec![unit("cron.service", "active"), unit("nginx.service", "failed")],
                    ..healthy.clone()
                },
                vec!["systemd unit nginx.service has failed".to_owned()],
            ),
            (
                "units are ignored without systemd",
                Facts { systemd: false, systemd_units: vec![unit("nginx.service", "failed")], ..healthy.clone() },
                vec![],
            ),
            (
                "many failed units are counted",
                Facts {
                    systemd: true,
                    systemd_units: (0..12).map(|i| unit(&format!("u{i}.service"), "failed")).collect(),
                    ..healthy.clone()
                },
                (0..10)
                    .map(|i| format!("systemd unit u{i}.service has failed"))
                    .chain(["2 more systemd units have failed".to_owned()])
                    .collect(),
            ),
        ];
        for (name, facts, expected) in cases {
            assert_eq!(problems(&facts), expected, "{name}");
        }
    }

    /// `uname -r`, `/proc/meminfo` MemTotal in bytes.
    fn this_machine() -> (String, u64) {
        let uname = Command::new("uname").arg("-r").output().expect("uname -r runs");
        let release = String::from_utf8_lossy(&uname.stdout).trim().to_owned();
        let meminfo = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo is readable");
        let kib: u64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .expect("MemTotal in /proc/meminfo");
        (release, kib * 1024)
    }

    #[test]
    fn system_facts_match_this_machine() {
        let (release, mem_total) = this_machine();
        let mut collector = Collector::new(FactSource::System);
        for _ in 0..2 {
            let facts = collector.collect();
            assert_eq!(facts.source, "system");
            assert_eq!(facts.agent_version, env!("CARGO_PKG_VERSION"));
            assert_eq!(facts.kernel_release, release);
            let diff = facts.memory_total_bytes.abs_diff(mem_total);
            assert!(diff * 100 <= mem_total, "memory {} vs MemTotal {mem_total}", facts.memory_total_bytes);
            assert!(facts.memory_available_bytes <= facts.memory_total_bytes);
            assert!(facts.cpu_count >= 1);
            assert!(!facts.hostname.is_empty());
            assert!(facts.uptime_seconds > 0);
            assert!(facts.filesystems.iter().any(|fs| fs.total_bytes > 0), "{:?}", facts.filesystems);
            assert!(facts.filesystems.iter().all(|fs| is_real_filesystem(&fs.fs_type, &fs.mount_point)));
            assert!(facts.interfaces.iter().any(|i| i.name == "lo"), "{:?}", facts.interfaces);
            assert!(facts.listening_tcp_ports.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(facts.systemd, systemd_is_pid1());
        }
    }

    #[test]
    fn system_facts_see_a_listening_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = u32::from(listener.local_addr().expect("local address").port());
        let facts = Collector::new(FactSource::System).collect();
        assert!(facts.listening_tcp_ports.contains(&port), "{port} not in {:?}", facts.listening_tcp_ports);
    }

    fn machine() -> SimulatedMachine {
        SimulatedMachine {
            hostname: "dc-esxi-01".to_owned(),
            os_name: "VMware ESXi".to_owned(),
            os_version: "8.0.3".to_owned(),
            kernel_release: "8.0.3-24022510".to_owned(),
            cpu_count: 64,
            memory_total_bytes: 768 << 30,
            disk_total_bytes: 1000 << 30,
            addresses: vec!["10.10.0.11".to_owned()],
        }
    }

    #[test]
    fn simulated_facts_come_from_the_machine() {
        let mut collector = Collector::new(FactSource::Simulated(machine()));
        let facts = collector.collect();
        assert_eq!(facts.source, "simulated");
        assert_eq!(facts.hostname, "dc-esxi-01");
        assert_eq!(facts.kernel_release, "8.0.3-24022510");
        assert_eq!(facts.cpu_count, 64);
        assert_eq!(facts.memory_available_bytes, 384 << 30);
        assert_eq!(facts.filesystems.len(), 1);
        assert_eq!(facts.filesystems[0].mount_point, "/");
        assert_eq!(facts.filesystems[0].available_bytes, 600 << 30);
        assert_eq!(facts.interfaces[0].addresses, vec!["10.10.0.11"]);
        assert_eq!(facts.interfaces[0].mac, simulated_mac("dc-esxi-01"));
        assert!(!facts.systemd);
        assert!(facts.systemd_units.is_empty());
        assert!(facts.uptime_seconds < 5);
        assert!(problems(&facts).is_empty());

        let later = simulated_facts(&machine(), Duration::from_secs(3600));
        assert_eq!(later.uptime_seconds, 3600);
    }

    #[test]
    fn simulated_machine_round_trips_through_toml() {
        let text = toml::to_string(&machine()).expect("serializes");
        let back: SimulatedMachine = toml::from_str(&text).expect("parses");
        assert_eq!(back, machine());
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        facts: FactSource,
    }

    #[test]
    fn fact_source_is_chosen_in_toml() {
        let system: Config = toml::from_str("[facts]\nsource = \"system\"\n").expect("parses");
        assert_eq!(system.facts, FactSource::System);

        let simulated: Config = toml::from_str(
            r#"
            [facts]
            source = "simulated"
            hostname = "dc-esxi-01"
            os_name = "VMware ESXi"
            os_version = "8.0.3"
            kernel_release = "8.0.3-24022510"
            cpu_count = 64
            memory_total_bytes = 824633720832
            "#,
        )
        .expect("parses");
        assert_eq!(
            simulated.facts,
            FactSource::Simulated(SimulatedMachine { disk_total_bytes: 0, addresses: Vec::new(), ..machine() })
        );

        for bad in [
            "[facts]\nsource = \"guess\"\n",
            "[facts]\nsource = \"system\"\nhostname = \"x\"\n",
            "[facts]\nsource = \"simulated\"\nhostname = \"x\"\n",
            "[facts]\nsource = \"simulated\"\nhostname = \"h\"\nos_name = \"o\"\nos_version = \"v\"\nkernel_release = \"k\"\ncpu_count = 1\nmemory_total_bytes = 1\ncolour = \"red\"\n",
        ] {
            assert!(toml::from_str::<Config>(bad).is_err(), "accepted {bad:?}");
        }
    }
}
