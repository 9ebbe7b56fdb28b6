//! `mangrove testbed vc-device --dir DIR`: one device's simulator. It always serves the telnet
//! command-line API of HDX/Group Series (`poly-endpoints.md` §2.2: a password prompt, then
//! `whoami`, `callinfo all`, `status`, an error line for anything else, the session kept
//! open); in process mode it also answers SIP OPTIONS and SNMP v2c GETs of the system group.
//!
//! Fault flags in DIR are read on every request: `down` (nothing answers), `sip-silent` (SIP
//! requests are dropped), `bad-password` (every password is refused), `telnet-garbage` (every
//! command is answered with bytes no manual documents).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plugins::vc::snmp;

use super::DeviceConfig;
use crate::layout::{TestbedError, io};

pub struct Device {
    dir: PathBuf,
    cfg: DeviceConfig,
    started: Instant,
}

impl Device {
    pub fn flag(&self, f: &str) -> bool {
        self.dir.join(f).exists()
    }

    pub fn password(&self) -> String {
        std::fs::read_to_string(self.dir.join("password")).map(|p| p.trim().to_string()).unwrap_or_default()
    }

    pub fn uptime(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    pub fn config(&self) -> &DeviceConfig {
        &self.cfg
    }
}

/// Runs the simulator until the process is killed.
pub fn run(dir: &Path) -> Result<(), TestbedError> {
    let path = dir.join("device.toml");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let cfg: DeviceConfig =
        toml::from_str(&text).map_err(|e| TestbedError::Format { path: path.clone(), message: e.to_string() })?;
    let dev = std::sync::Arc::new(Device { dir: dir.to_path_buf(), cfg, started: Instant::now() });
    let telnet_addr = SocketAddr::from((dev.cfg.listen, dev.cfg.telnet_port));
    if dev.cfg.rest {
        // A VideoOS unit: the REST API on the API port instead of telnet.
        super::rest::serve(dev.clone(), telnet_addr)
            .map_err(|message| TestbedError::Format { path: path.clone(), message })?;
    }
    if let Some(p) = dev.cfg.sip_port {
        let sock = UdpSocket::bind(SocketAddr::from((dev.cfg.listen, p))).map_err(io(&path))?;
        let d = dev.clone();
        std::thread::spawn(move || sip_loop(&d, &sock));
    }
    if let Some(p) = dev.cfg.snmp_port {
        let sock = UdpSocket::bind(SocketAddr::from((dev.cfg.listen, p))).map_err(io(&path))?;
        let d = dev.clone();
        std::thread::spawn(move || snmp_loop(&d, &sock));
    }
    if dev.cfg.rest {
        eprintln!("vc-device {}: REST API on https://{telnet_addr}", dev.cfg.name);
        loop {
            std::thread::park();
        }
    }
    let mut listener = Some(TcpListener::bind(telnet_addr).map_err(io(&path))?);
    eprintln!("vc-device {}: telnet on {telnet_addr}", dev.cfg.name);
    loop {
        // A device that is down does not even complete TCP handshakes: the port is closed
        // while the flag is set, and opened again after.
        if dev.flag("down") {
            listener = None;
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(telnet_addr) {
                Ok(l) => {
                    let _ = l.set_nonblocking(true);
                    listener.insert(l)
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            },
        };
        let _ = l.set_nonblocking(true);
        match l.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let d = dev.clone();
                std::thread::spawn(move || {
                    let _ = telnet_session(&d, stream);
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn telnet_session(d: &Device, stream: TcpStream) -> std::io::Result<()> {
    if d.flag("down") {
        return Ok(()); // accepted by the kernel, never answered: closed at once
    }
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    let mut line = String::new();
    let password = d.password();
    if !password.is_empty() {
        out.write_all(b"Password: ")?;
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if d.flag("bad-password") || line.trim() != password {
            out.write_all(b"\r\nPassword incorrect\r\n")?;
            return Ok(());
        }
    }
    out.write_all(format!("\r\nPolycom Command Shell\r\n{}", plugins::vc::telnet::PROMPT).as_bytes())?;
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim();
        if d.flag("telnet-garbage") {
            // A confused unit (or something else on its port): no lines the API documents.
            out.write_all(b"\x1b[2J%%%% 0xDEADBEEF \xc3\x28 ?\r\n-> ")?;
            continue;
        }
        let reply = match cmd {
            "exit" => return Ok(()),
            "whoami" => format!(
                "Hi, my name is : {}\r\nModel: {}\r\nSerial Number: {}\r\nSoftware Version: {}\r\nUptime: {} seconds\r\n",
                d.cfg.name,
                d.cfg.model.trim_start_matches("Polycom "),
                d.cfg.serial,
                d.cfg.software,
                d.uptime()
            ),
            "callinfo all" => "system is not in a call\r\n".to_string(),
            "status" => "autoanswerp2p: no\r\nremotecontrol: battery ok\r\nmicrophones: online\r\nsip: registered\r\ngatekeeper: unregistered\r\n".to_string(),
            "" => String::new(),
            _ => "error: command not found\r\n".to_string(),
        };
        out.write_all(format!("{reply}{}", plugins::vc::telnet::PROMPT).as_bytes())?;
    }
}

/// Answers OPTIONS with 200 OK (other requests with 501), echoing the dialog headers.
fn sip_loop(d: &Device, sock: &UdpSocket) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
        if d.flag("down") || d.flag("sip-silent") {
            continue;
        }
        let text = String::from_utf8_lossy(&buf[..n]);
        let mut lines = text.split("\r\n");
        let request = lines.next().unwrap_or("");
        let headers: Vec<&str> = lines
            .take_while(|l| !l.is_empty())
            .filter(|l| {
                let lower = l.to_ascii_lowercase();
                ["via:", "from:", "to:", "call-id:", "cseq:"].iter().any(|h| lower.starts_with(h))
            })
            .collect();
        let status = if request.starts_with("OPTIONS ") { "200 OK" } else { "501 Not Implemented" };
        let mut resp = format!("SIP/2.0 {status}\r\n");
        for h in headers {
            if h.to_ascii_lowercase().starts_with("to:") && !h.contains(";tag=") {
                resp.push_str(&format!("{h};tag=sim{}\r\n", d.uptime()));
            } else {
                resp.push_str(h);
                resp.push_str("\r\n");
            }
        }
        resp.push_str("Allow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\nAccept: application/sdp\r\nServer: Polycom HDX (mangrove testbed)\r\nContent-Length: 0\r\n\r\n");
        let _ = sock.send_to(resp.as_bytes(), from);
    }
}

/// Answers v2c GETs of the system group and ifInErrors/ifOutErrors.1 (community `public`).
fn snmp_loop(d: &Device, sock: &UdpSocket) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
        if d.flag("down") {
            continue;
        }
        let Ok((community, id, oids)) = snmp::decode_get(&buf[..n]) else { continue };
        if community != "public" {
            continue; // agents drop requests with a wrong community
        }
        let bindings: Vec<(Vec<u32>, snmp::Value)> = oids
            .into_iter()
            .map(|oid| {
                let v = match oid.as_slice() {
                    o if o == snmp::SYS_DESCR => snmp::Value::OctetString(
                        format!("Polycom {} (software {})", d.cfg.model.trim_start_matches("Polycom "), d.cfg.software)
                            .into_bytes(),
                    ),
                    o if o == snmp::SYS_NAME => snmp::Value::OctetString(d.cfg.name.clone().into_bytes()),
                    o if o == snmp::SYS_UPTIME => {
                        snmp::Value::TimeTicks(u32::try_from(d.uptime() * 100).unwrap_or(u32::MAX))
                    }
                    o if o == snmp::IF_IN_ERRORS_1 || o == snmp::IF_OUT_ERRORS_1 => snmp::Value::Counter32(0),
                    _ => snmp::Value::NoSuchObject,
                };
                (oid, v)
            })
            .collect();
        let _ = sock.send_to(&snmp::encode_response(&community, id, &bindings), from);
    }
}
