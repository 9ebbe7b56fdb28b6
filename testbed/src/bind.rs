//! The testbed's DNS server: a real BIND (`named` from Debian's `bind9`) on a loopback port,
//! serving the province's production zone and the isolated zone test drills switch, both
//! updatable (RFC 2136) only with the testbed's TSIG key. The failover's `dns.switch` updates
//! it; probes resolve through it; its log shows every update it applied.
//!
//! ```text
//! <dir>/bind/                      mode 0700
//! <dir>/bind/named.conf            the server's config (names this dir, so `testbed down` finds named)
//! <dir>/bind/mangrove.key          the TSIG key, from `tsig-keygen` (mode 0600)
//! <dir>/bind/<zone>.zone           zone files (written once, then named's own), journals <zone>.zone.jnl
//! <dir>/bind/named.log             named's output: start-up, every query and every update
//! ```
//!
//! named runs in the foreground (`named -g`, which sends all logging to its output, captured in
//! `named.log`) as the user who starts the testbed, never `-u bind`: as root, the testbed dir
//! (often a 0700 temp dir) would keep a `bind` user out, and nothing here needs privileges
//! (the port is above 1024, every file is in the dir). The rndc control channel is off, so two
//! testbeds never fight over port 953.
//!
//! The key and the zone files survive a restart (the journals hold the updates); a restart
//! rewrites only `named.conf`.
//!
//! Container mode runs the same server on the host's loopback: the controller and the DR
//! containers cannot reach it there yet (it would have to listen on the networks' gateways, or
//! run in a container of its own, before a container drill can resolve through it).

use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use inventory::Inventory;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::layout::{DnsLayout, Layout, TestbedError, io, write_file};

/// The province's production zone.
pub const PRODUCTION_ZONE: &str = "camau.gov.vn";
/// The isolated zone a test drill switches instead of production.
pub const TEST_ZONE: &str = "drill.camau.gov.vn";
/// The TSIG key's name, in the key file and in `allow-update`.
pub const KEY_NAME: &str = "mangrove";
/// How long named may take to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// TTL of the records the zones start with.
const TTL: u32 = 300;

/// A record the production zone starts with: `name` (relative to the zone) → `address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRecord {
    pub name: String,
    pub address: Ipv4Addr,
}

/// A running BIND of a testbed.
#[derive(Debug, Clone)]
pub struct Bind {
    /// Where it answers queries and takes updates (UDP and TCP).
    pub server: SocketAddr,
    pub zone: String,
    pub test_zone: String,
    /// The TSIG key file (0600), for the controller and `nsupdate -k`.
    pub key_file: PathBuf,
    pub config: PathBuf,
    /// named's output: start-up, queries, updates.
    pub log: PathBuf,
    pub pid: u32,
}

impl Bind {
    /// The controller config's `[dns]` section for this server.
    pub fn controller_section(&self) -> String {
        controller_section(&DnsLayout {
            server: self.server,
            zone: self.zone.clone(),
            test_zone: self.test_zone.clone(),
            key_file: self.key_file.clone(),
        })
    }
}

/// The DNS layout of a new testbed in `dir` (canonical), answering on `port`.
pub fn default_layout(dir: &Path, port: u16) -> DnsLayout {
    DnsLayout {
        server: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        zone: PRODUCTION_ZONE.into(),
        test_zone: TEST_ZONE.into(),
        key_file: dir.join("bind").join(format!("{KEY_NAME}.key")),
    }
}

/// The controller's `[dns]` section for `dns`.
pub fn controller_section(dns: &DnsLayout) -> String {
    format!(
        "\n# The testbed's BIND: `dns.switch` updates it (TSIG), probes resolve through it.\n\
         [dns]\nserver = \"{}\"\nkey_file = {:?}\nzone = {:?}\ntest_zone = {:?}\n",
        dns.server,
        dns.key_file.display().to_string(),
        dns.zone,
        dns.test_zone
    )
}

/// One A record per information system of `inv`: the address of its workload at the DC
/// (site `dc`, else any site), with the documentation network 192.0.2.0/24 moved to `net`
/// (the testbed's addresses: `[127, 0, 2]` for processes, the DC network's in containers);
/// `127.0.0.1` for a system with no IPv4 address.
pub fn province_records(inv: &Inventory, net: [u8; 3]) -> Vec<ZoneRecord> {
    inv.systems
        .iter()
        .map(|s| {
            let workloads = inv.workloads_of(&s.name);
            let v4 = |w: &&inventory::Workload| match w.address {
                Some(IpAddr::V4(a)) => Some(a),
                _ => None,
            };
            let address = workloads
                .iter()
                .filter(|w| w.site == "dc")
                .find_map(v4)
                .or_else(|| workloads.iter().find_map(v4))
                .map(|a| crate::containers::testbed_address(a, net).unwrap_or(a))
                .unwrap_or(Ipv4Addr::LOCALHOST);
            ZoneRecord { name: s.name.clone(), address }
        })
        .collect()
}

/// Starts the BIND of `layout`'s testbed with the province's records (see [`start`]).
pub fn start_for(layout: &Layout, net: [u8; 3]) -> Result<Bind, TestbedError> {
    start(&layout.dir, &layout.dns, &province_records(&layout.inventory, net))
}

/// Where `program` is: on `PATH`, else in `/usr/sbin` (Debian puts named and tsig-keygen
/// there, often outside a user's `PATH`).
fn locate(program: &str) -> Result<PathBuf, TestbedError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| TestbedError::Missing {
            what: format!("{program} (BIND)"),
            hint: "install it with `apt-get install bind9 bind9-dnsutils` or `mangrove testbed deps --install`".into(),
        })
}

/// Starts a real named for the testbed in `dir` (canonical), as `dns` says, with `records` in
/// the production zone, and returns once it answers the SOA queries of both zones. A named
/// this dir's config already runs is stopped first, so `start` can be run again.
///
/// Makes the key with `tsig-keygen` and the zone files on first use and keeps them after.
///
/// # Errors
/// [`TestbedError::Missing`] when named or tsig-keygen is not installed; [`TestbedError::Tool`]
/// with the end of named's log when it exits or does not answer in time.
pub fn start(dir: &Path, dns: &DnsLayout, records: &[ZoneRecord]) -> Result<Bind, TestbedError> {
    let named = locate("named")?;
    let bind_dir = dir.join("bind");
    fs::create_dir_all(&bind_dir).map_err(io(&bind_dir))?;
    fs::set_permissions(&bind_dir, fs::Permissions::from_mode(0o700)).map_err(io(&bind_dir))?;
    stop(dir, Duration::from_secs(5));

    ensure_key(&dns.key_file)?;
    let zone_file = |zone: &str| bind_dir.join(format!("{zone}.zone"));
    ensure_zone(&zone_file(&dns.zone), &production_zone(dns, records))?;
    ensure_zone(&zone_file(&dns.test_zone), &test_zone(dns))?;
    let config = bind_dir.join("named.conf");
    write_file(&config, &named_conf(&bind_dir, dns), 0o644)?;

    let log = bind_dir.join("named.log");
    let launched = crate::spawn_detached(&named, &["-g".into(), "-c".into(), config.display().to_string()], &log)?;
    let bind = Bind {
        server: dns.server,
        zone: dns.zone.clone(),
        test_zone: dns.test_zone.clone(),
        key_file: dns.key_file.clone(),
        config,
        log,
        pid: launched.pid,
    };
    wait_answering(&bind)?;
    tracing::info!(server = %bind.server, zone = %bind.zone, test_zone = %bind.test_zone, pid = bind.pid, "bind started");
    Ok(bind)
}

/// Stops the named of the testbed in `dir` (SIGTERM, SIGKILL after `grace`). Returns how many
/// processes were stopped.
pub fn stop(dir: &Path, grace: Duration) -> usize {
    let config = dir.join("bind").join("named.conf").display().to_string();
    let procs: Vec<u32> = crate::procs::under(dir)
        .into_iter()
        .filter(|(_, argv)| argv.first().is_some_and(|a| a.ends_with("named")) && argv.contains(&config))
        .map(|(p, _)| p)
        .collect();
    let signal = |sig| {
        for p in &procs {
            if let Ok(raw) = i32::try_from(*p) {
                // A named that exits in between is what we wanted anyway.
                let _ = kill(Pid::from_raw(raw), sig);
            }
        }
    };
    signal(Signal::SIGTERM);
    let started = Instant::now();
    while procs.iter().any(|p| crate::procs::alive(*p)) && started.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(Signal::SIGKILL);
    procs.len()
}

/// Writes the TSIG key with `tsig-keygen` (mode 0600) unless a readable key is already there.
/// The secret goes from tsig-keygen's output to the file, never through an argument list.
fn ensure_key(path: &Path) -> Result<(), TestbedError> {
    if plugins::dns::TsigKey::load(path).is_ok() {
        return Ok(());
    }
    let keygen = locate("tsig-keygen")?;
    let out = Command::new(&keygen)
        .args(["-a", "hmac-sha256", KEY_NAME])
        .output()
        .map_err(|source| TestbedError::Spawn { program: keygen.clone(), source })?;
    if !out.status.success() {
        return Err(TestbedError::Tool {
            what: "tsig-keygen".into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    plugins::dns::TsigKey::parse(&text, "tsig-keygen output")
        .map_err(|e| TestbedError::Tool { what: "tsig-keygen".into(), message: e.to_string() })?;
    write_file(path, &text, 0o600)
}

/// Writes a zone file unless there is one; a stale journal of an earlier zone file goes with it
/// (named refuses a journal that does not match its zone).
fn ensure_zone(path: &Path, text: &str) -> Result<(), TestbedError> {
    if path.exists() {
        return Ok(());
    }
    let mut journal = path.as_os_str().to_owned();
    journal.push(".jnl");
    let journal = PathBuf::from(journal);
    if journal.exists() {
        fs::remove_file(&journal).map_err(io(&journal))?;
    }
    write_file(path, text, 0o644)
}

fn soa(zone: &str, parent: &str) -> String {
    format!(
        "$ORIGIN {zone}.\n$TTL {TTL}\n\
         @ IN SOA ns.{parent}. hostmaster.{parent}. 1 3600 600 86400 60\n\
         @ IN NS ns.{parent}.\n"
    )
}

/// The production zone: its name server, the delegation of the test zone when it lies inside,
/// and `records`.
fn production_zone(dns: &DnsLayout, records: &[ZoneRecord]) -> String {
    let mut text = format!(
        "; Written by `mangrove testbed up`; named keeps it after (updates in the journal).\n{}",
        soa(&dns.zone, &dns.zone)
    );
    let _ = writeln!(text, "ns IN A {}", dns.server.ip());
    if let Some(label) = dns.test_zone.strip_suffix(&format!(".{}", dns.zone)) {
        let _ = writeln!(
            text,
            "; The isolated test-drill zone, served by the same server.\n{label} IN NS ns.{}.",
            dns.zone
        );
    }
    for r in records {
        let _ = writeln!(text, "{} IN A {}", r.name, r.address);
    }
    text
}

fn test_zone(dns: &DnsLayout) -> String {
    format!(
        "; Written by `mangrove testbed up`: the zone test drills switch, never production.\n{}",
        soa(&dns.test_zone, &dns.zone)
    )
}

/// A path in named.conf's quoted-string syntax.
fn quoted(p: &Path) -> String {
    format!("\"{}\"", p.display().to_string().replace('\\', "\\\\").replace('"', "\\\""))
}

fn named_conf(bind_dir: &Path, dns: &DnsLayout) -> String {
    let d = |name: &str| quoted(&bind_dir.join(name));
    let zone = |z: &str| {
        format!(
            "zone \"{z}\" {{\n    type primary;\n    file {};\n    journal {};\n    allow-update {{ key {KEY_NAME}; }};\n}};\n",
            d(&format!("{z}.zone")),
            d(&format!("{z}.zone.jnl")),
        )
    };
    let listen = match dns.server.ip() {
        IpAddr::V4(a) => format!("listen-on port {} {{ {a}; }};\n    listen-on-v6 {{ none; }};", dns.server.port()),
        IpAddr::V6(a) => format!("listen-on {{ none; }};\n    listen-on-v6 port {} {{ {a}; }};", dns.server.port()),
    };
    format!(
        "// Written by `mangrove testbed up` on every start.\n\
         include {key};\n\n\
         options {{\n    directory {dir};\n    pid-file {pid};\n    session-keyfile {session};\n    \
         managed-keys-directory {dir};\n    {listen}\n    \
         recursion no;\n    dnssec-validation no;\n    notify no;\n    \
         // Every query in the log too: probes resolving through this server are visible.\n    querylog yes;\n}};\n\n\
         // No rndc channel: two testbeds would both want port 953.\ncontrols {{ }};\n\n{prod}\n{test}",
        key = quoted(&dns.key_file),
        dir = quoted(bind_dir),
        pid = d("named.pid"),
        session = d("session.key"),
        prod = zone(&dns.zone),
        test = zone(&dns.test_zone),
    )
}

/// Waits until `bind` answers the SOA of both zones; on failure, stops it and says why with
/// the end of its log.
fn wait_answering(bind: &Bind) -> Result<(), TestbedError> {
    let started = Instant::now();
    let fail = |what: String| {
        stop_pid(bind.pid);
        TestbedError::Tool { what: "named".into(), message: format!("{what}; its log ends:\n{}", tail(&bind.log, 15)) }
    };
    loop {
        let answered = [&bind.zone, &bind.test_zone]
            .iter()
            .map(|z| plugins::dns::soa_serial(bind.server, z, Duration::from_millis(500)))
            .collect::<Result<Vec<_>, _>>();
        match answered {
            Ok(_) => return Ok(()),
            Err(e) if !crate::procs::alive(bind.pid) => {
                return Err(fail(format!("named exited before answering ({e})")));
            }
            Err(e) if started.elapsed() > START_TIMEOUT => {
                return Err(fail(format!("named did not answer within {} s: {e}", START_TIMEOUT.as_secs())));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn stop_pid(pid: u32) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One change named's log says it applied to a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedUpdate {
    /// The zone, without a class (`drill.camau.gov.vn`).
    pub zone: String,
    /// `add`, `delete-rrset`, `delete-rr` or `delete-name` (named's "adding an RR",
    /// "deleting rrset", "deleting an RR", "deleting all rrsets from name").
    pub action: String,
    /// The owner name, e.g. `web-portal.drill.camau.gov.vn`.
    pub name: String,
    /// The record type and data as named wrote them (`A 127.0.3.54`; `A` for an RRset).
    pub record: String,
}

/// The changes named's log (`named.log`) records, in order: how a test proves an update was
/// applied once (every UPDATE message named accepts logs its changes, even one that repeats
/// the zone's current content).
pub fn logged_updates(log: &str) -> Vec<LoggedUpdate> {
    const ACTIONS: &[(&str, &str)] = &[
        ("adding an RR at '", "add"),
        ("deleting rrset at '", "delete-rrset"),
        ("deleting an RR at '", "delete-rr"),
        ("deleting all rrsets from name '", "delete-name"),
    ];
    log.lines()
        .filter_map(|line| {
            let rest = line.split_once("updating zone '")?.1;
            let (zone, rest) = rest.split_once("': ")?;
            let zone = zone.split_once('/').map_or(zone, |(z, _)| z);
            let (action, after) = ACTIONS.iter().find_map(|(text, a)| rest.strip_prefix(text).map(|r| (*a, r)))?;
            let (name, record) = after.split_once('\'').unwrap_or((after, ""));
            Some(LoggedUpdate {
                zone: zone.to_string(),
                action: action.to_string(),
                name: name.to_string(),
                record: record.trim().to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns() -> DnsLayout {
        default_layout(Path::new("/tmp/tb"), 25353)
    }

    #[test]
    fn the_production_zone_delegates_the_test_zone_and_lists_the_records() {
        let recs = [ZoneRecord { name: "qlvbdh".into(), address: Ipv4Addr::new(127, 0, 2, 51) }];
        let text = production_zone(&dns(), &recs);
        assert!(text.contains("$ORIGIN camau.gov.vn."), "{text}");
        assert!(text.contains("drill IN NS ns.camau.gov.vn."), "{text}");
        assert!(text.contains("qlvbdh IN A 127.0.2.51"), "{text}");
    }

    #[test]
    fn the_log_gives_the_applied_changes_in_order() {
        let log = "27-Nov-2026 15:43:19.224 client @0x7fb851af0098 127.0.0.1#35119/key mangrove: signer \"mangrove\" approved\n\
                   27-Nov-2026 15:43:19.224 client @0x7fb851af0098 127.0.0.1#35119/key mangrove: updating zone 'drill.camau.gov.vn/IN': deleting rrset at 'x.drill.camau.gov.vn' A\n\
                   27-Nov-2026 15:43:19.224 client @0x7fb851af0098 127.0.0.1#35119/key mangrove: updating zone 'drill.camau.gov.vn/IN': adding an RR at 'x.drill.camau.gov.vn' A 127.0.3.9\n\
                   27-Nov-2026 15:43:20.001 client @0x7fb851af0098 127.0.0.1#41430 (x.drill.camau.gov.vn): query: x.drill.camau.gov.vn IN A -E(0) (127.0.0.1)\n";
        let got = logged_updates(log);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].action, "delete-rrset");
        assert_eq!(got[0].record, "A");
        assert_eq!(
            got[1],
            LoggedUpdate {
                zone: "drill.camau.gov.vn".into(),
                action: "add".into(),
                name: "x.drill.camau.gov.vn".into(),
                record: "A 127.0.3.9".into()
            }
        );
    }

    #[test]
    fn named_conf_names_the_dir_allows_updates_with_the_key_and_has_no_rndc() {
        let text = named_conf(Path::new("/tmp/tb/bind"), &dns());
        assert!(text.contains("include \"/tmp/tb/bind/mangrove.key\";"), "{text}");
        assert!(text.contains("listen-on port 25353 { 127.0.0.1; };"), "{text}");
        assert_eq!(text.matches("allow-update { key mangrove; };").count(), 2, "{text}");
        assert!(text.contains("journal \"/tmp/tb/bind/drill.camau.gov.vn.zone.jnl\";"), "{text}");
        assert!(text.contains("controls { };"), "{text}");
    }

    #[test]
    fn the_controller_section_names_server_key_and_zones() {
        let text = controller_section(&dns());
        assert!(text.contains("[dns]\nserver = \"127.0.0.1:25353\"\nkey_file = \"/tmp/tb/bind/mangrove.key\"\nzone = \"camau.gov.vn\"\ntest_zone = \"drill.camau.gov.vn\"\n"), "{text}");
    }
}
