//! `listening`: the TCP and UDP sockets accepting traffic, with the process that owns each,
//! from `ss -ltunpH`, or from `/proc/net/{tcp,tcp6,udp,udp6}` and the processes' open file
//! descriptors when ss is missing.

use std::collections::{BTreeSet, HashMap};
use std::fs;

use serde_json::{Value, json};

use super::{Host, RunError};

/// /proc/net socket states: TCP_LISTEN, and TCP_CLOSE for a bound, unconnected UDP socket.
const TCP_LISTEN: &str = "0A";
const UDP_UNCONNECTED: &str = "07";

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    pub proto: String,
    pub addr: String,
    pub port: u16,
    pub process: Option<String>,
    pub pid: Option<u32>,
}

pub fn collect(host: &Host) -> Result<Value, String> {
    let listeners = match host.run("ss", &["-ltunpH"]) {
        Ok(output) if output.success() => parse_ss(&output.stdout),
        Ok(output) => return Err(format!("ss -ltunpH: {}", output.failure())),
        Err(RunError::NotInstalled(_)) => from_proc(host)?,
        Err(error) => return Err(error.to_string()),
    };
    Ok(Value::Array(
        listeners
            .into_iter()
            .map(|l| json!({ "proto": l.proto, "addr": l.addr, "port": l.port, "process": l.process, "pid": l.pid }))
            .collect(),
    ))
}

/// Parses `ss -ltunpH`: "Netid State Recv-Q Send-Q Local:Port Peer:Port [users:((…))]". Lines
/// that do not parse are skipped; duplicates (one socket per worker) are merged.
pub fn parse_ss(text: &str) -> Vec<Listener> {
    let listeners: BTreeSet<Listener> = text
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let proto = *words.first()?;
            if proto != "tcp" && proto != "udp" {
                return None;
            }
            let (addr, port) = split_address(words.get(4)?)?;
            let users = words.get(6..).map(|rest| rest.join(" ")).unwrap_or_default();
            // users:(("sshd",pid=612,fd=3),("sshd",pid=700,fd=3))
            let process = users.split('"').nth(1).map(str::to_owned);
            let pid = users.split("pid=").nth(1).and_then(|rest| rest.split([',', ')']).next()?.parse().ok());
            Some(Listener { proto: proto.to_owned(), addr, port, process, pid })
        })
        .collect();
    listeners.into_iter().collect()
}

/// "0.0.0.0:22", "[::]:22", "*:22", "127.0.0.53%lo:53", "[fe80::1]%eth0:546" → (address, port).
fn split_address(local: &str) -> Option<(String, u16)> {
    let (address, port) = local.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let address = address.split('%').next()?;
    let address = address.trim_start_matches('[').trim_end_matches(']');
    let address = if address == "*" { "0.0.0.0" } else { address };
    Some((address.to_owned(), port))
}

/// The listeners in /proc/net, with owners found through `/proc/<pid>/fd`.
fn from_proc(host: &Host) -> Result<Vec<Listener>, String> {
    let owners = socket_owners(host);
    let mut listeners = BTreeSet::new();
    let mut read_any = false;
    for (file, proto, state) in [
        ("tcp", "tcp", TCP_LISTEN),
        ("tcp6", "tcp", TCP_LISTEN),
        ("udp", "udp", UDP_UNCONNECTED),
        ("udp6", "udp", UDP_UNCONNECTED),
    ] {
        let Some(text) = host.read(&format!("/proc/net/{file}"))? else { continue };
        read_any = true;
        for (addr, port, inode) in parse_proc_net(&text, state) {
            let owner = owners.get(&inode);
            listeners.insert(Listener {
                proto: proto.to_owned(),
                addr,
                port,
                process: owner.map(|(_, name)| name.clone()),
                pid: owner.map(|(pid, _)| *pid),
            });
        }
    }
    if !read_any {
        return Err("neither ss nor /proc/net/tcp is available".to_owned());
    }
    Ok(listeners.into_iter().collect())
}

/// Socket inode → (pid, process name), from the `socket:[inode]` links in `/proc/<pid>/fd`.
fn socket_owners(host: &Host) -> HashMap<u64, (u32, String)> {
    let mut owners = HashMap::new();
    for (pid, name) in host.processes() {
        for fd in fs::read_dir(host.path(&format!("/proc/{pid}/fd"))).into_iter().flatten().flatten() {
            let Ok(target) = fs::read_link(fd.path()) else { continue };
            let target = target.to_string_lossy();
            if let Some(inode) = target.strip_prefix("socket:[").and_then(|rest| rest.strip_suffix(']'))
                && let Ok(inode) = inode.parse()
            {
                owners.entry(inode).or_insert_with(|| (pid, name.clone()));
            }
        }
    }
    owners
}

/// Parses `/proc/net/tcp`-style text: (address, port, inode) of the sockets in `state`.
pub fn parse_proc_net(text: &str, state: &str) -> Vec<(String, u16, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&state) {
                return None;
            }
            let (address, port) = fields.get(1)?.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let inode = fields.get(9)?.parse().ok()?;
            Some((decode_address(address)?, port, inode))
        })
        .collect()
}

/// A /proc/net address: 8 or 32 hex digits, each 32-bit word in host (little-endian) order.
fn decode_address(hex: &str) -> Option<String> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok().map(u32::swap_bytes))
        .collect::<Option<_>>()?;
    match words.as_slice() {
        [v4] => Some(std::net::Ipv4Addr::from(*v4).to_string()),
        [a, b, c, d] => {
            let bytes: Vec<u8> = [a, b, c, d].iter().flat_map(|word| word.to_be_bytes()).collect();
            let bytes: [u8; 16] = bytes.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(bytes).to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ss_lines_with_owners() {
        let text = "tcp   LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:((\"sshd\",pid=612,fd=3))\n\
                    tcp   LISTEN 0      511          0.0.0.0:80        0.0.0.0:*    users:((\"nginx\",pid=801,fd=6),(\"nginx\",pid=800,fd=6))\n\
                    tcp   LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*    users:((\"systemd-resolve\",pid=420,fd=14))\n\
                    tcp   LISTEN 0      128             [::]:22           [::]:*    users:((\"sshd\",pid=612,fd=4))\n\
                    udp   UNCONN 0      0          0.0.0.0:123       0.0.0.0:*    users:((\"chronyd\",pid=530,fd=7))\n\
                    tcp   LISTEN 0      128          0.0.0.0:2024      0.0.0.0:*\n\
                    garbage\n";
        let listeners = parse_ss(text);
        assert_eq!(listeners.len(), 6);
        assert!(listeners.contains(&Listener {
            proto: "tcp".into(),
            addr: "0.0.0.0".into(),
            port: 22,
            process: Some("sshd".into()),
            pid: Some(612)
        }));
        assert!(listeners.contains(&Listener {
            proto: "tcp".into(),
            addr: "::".into(),
            port: 22,
            process: Some("sshd".into()),
            pid: Some(612)
        }));
        assert!(listeners.contains(&Listener {
            proto: "tcp".into(),
            addr: "127.0.0.53".into(),
            port: 53,
            process: Some("systemd-resolve".into()),
            pid: Some(420)
        }));
        assert!(listeners.contains(&Listener {
            proto: "udp".into(),
            addr: "0.0.0.0".into(),
            port: 123,
            process: Some("chronyd".into()),
            pid: Some(530)
        }));
        assert!(
            listeners.contains(&Listener {
                proto: "tcp".into(),
                addr: "0.0.0.0".into(),
                port: 2024,
                process: None,
                pid: None
            }),
            "no owner without privileges"
        );
    }

    #[test]
    fn proc_net_tcp_and_tcp6() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
                   \x20  0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18123 1 0000000000000000 100 0 0 10 0\n\
                   \x20  1: 0100007F:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18500 1 0000000000000000 100 0 0 10 0\n\
                   \x20  2: 0F02000A:0016 0202000A:C350 01 00000000:00000000 02:000A7B2B 00000000     0        0 20001 4 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(
            parse_proc_net(tcp, TCP_LISTEN),
            [("0.0.0.0".to_owned(), 22, 18123), ("127.0.0.1".to_owned(), 25, 18500)]
        );
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
                    \x20  0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18125 1 0000000000000000 100 0 0 10 0\n\
                    \x20  1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18600 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(parse_proc_net(tcp6, TCP_LISTEN), [("::".to_owned(), 22, 18125), ("::1".to_owned(), 631, 18600)]);
        assert!(parse_proc_net("header\n  0: zz:yy 0A\n\u{0}", TCP_LISTEN).is_empty());
    }
}
