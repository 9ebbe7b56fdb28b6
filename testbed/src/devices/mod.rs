//! The testbed's video-conference devices: one per `video_endpoints` entry of the inventory.
//!
//! Each device has a dir `<testbed>/devices/<name>/` holding its identity (`device.toml`),
//! its telnet password (`password`, 0600), the configs of the real programs that answer for
//! it (`uas.xml` for sipp, `snmpd.conf` for snmpd) and its fault flags (`sip-silent`,
//! `bad-password`, `down`), which the responders read on every request.
//!
//! - With `--hosts containers`, each device is a container of its own at `<dc net>.N` (the
//!   inventory's 192.0.2.N) running the real `sipp` (a UAS scenario that answers OPTIONS with
//!   200), the real `snmpd`, and our telnet API simulator (`mangrove testbed vc-device`).
//! - In process mode, `mangrove testbed vc-device` answers SIP, SNMP and telnet itself on
//!   127.0.2.N, with SNMP and telnet moved to unprivileged ports ([`PROCESS_PORTS`]).

pub mod rest;
pub mod sim;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::containers::{self, ContainerSpec, Plan, docker};
use crate::layout::{Layout, TestbedError, io, write_file};

/// Process mode: privileged ports moved (the controller's `[vc] port_map` says the same).
pub const PROCESS_PORTS: &[(u16, u16)] = &[(161, 16161), (23, 2323), (24, 2424), (443, 8443)];

/// A device's identity as its simulator presents it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    pub name: String,
    pub model: String,
    pub serial: String,
    pub software: String,
    /// Where the simulator listens (0.0.0.0 in a container, 127.0.2.N in process mode).
    pub listen: Ipv4Addr,
    /// The telnet API's port, or the REST API's (HTTPS) when `rest`.
    pub telnet_port: u16,
    #[serde(default)]
    pub rest: bool,
    /// Process mode only: the simulator answers SIP and SNMP too.
    #[serde(default)]
    pub sip_port: Option<u16>,
    #[serde(default)]
    pub snmp_port: Option<u16>,
}

pub fn devices_dir(dir: &Path) -> PathBuf {
    dir.join("devices")
}

pub fn device_dir(dir: &Path, name: &str) -> PathBuf {
    devices_dir(dir).join(name)
}

/// The container of device `name`.
pub fn container_name(dir: &Path, name: &str) -> String {
    containers::container_name(dir, &format!("dev-{name}"))
}

/// The sipp scenario: answer every OPTIONS with 200 OK (RFC 3261 §11.2), echoing the
/// request's Via, From, To (with a tag), Call-ID and CSeq.
pub const UAS_XML: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="Polycom endpoint answering OPTIONS">
  <recv request="OPTIONS" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, INFO
      Accept: application/sdp
      Server: Polycom HDX (sipp stand-in)
      Content-Length: 0

    ]]>
  </send>
</scenario>
"#;

/// snmpd's configuration for a device: read-only community `public`, the MIB-II system group
/// with the device's identity (Polycom's enterprise number as sysObjectID).
pub fn snmpd_conf(c: &DeviceConfig) -> String {
    format!(
        "# Written by mangrove testbed for device {name}.\n\
         rocommunity public default\n\
         sysDescr Polycom {model} (software {sw})\n\
         sysName {name}\n\
         sysLocation Ca Mau\n\
         sysContact it@camau.gov.vn\n\
         sysObjectID .1.3.6.1.4.1.13885.101\n\
         sysServices 72\n",
        name = c.name,
        model = c.model.trim_start_matches("Polycom "),
        sw = c.software
    )
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    hex::encode(b)
}

/// Writes every device's dir (keeping an existing password) and the controller's
/// `vc-credentials.toml` (0600) with the same passwords. Returns the devices' configs.
pub fn prepare(layout: &Layout, container: bool) -> Result<Vec<DeviceConfig>, TestbedError> {
    let mut out = Vec::new();
    let mut creds =
        String::from("# Written by mangrove testbed: the devices' telnet/REST passwords.\nuser = \"admin\"\n");
    for (i, v) in layout.inventory.video_endpoints.iter().enumerate() {
        let dir = device_dir(&layout.dir, &v.name);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let last = match v.address {
            std::net::IpAddr::V4(a) => a.octets()[3],
            std::net::IpAddr::V6(_) => 100u8.saturating_add(i as u8),
        };
        let cfg = DeviceConfig {
            name: v.name.clone(),
            model: v.model.clone(),
            serial: format!("8205{:08X}", 0x1000 + i),
            software: "3.1.14-61207".into(),
            listen: if container { Ipv4Addr::UNSPECIFIED } else { Ipv4Addr::new(127, 0, 2, last) },
            telnet_port: if container { v.api_port() } else { map_port(v.api_port()) },
            rest: v.api() == inventory::VideoApi::Rest,
            sip_port: (!container).then(|| v.sip_port()),
            snmp_port: (!container).then(|| map_port(v.snmp_port())),
        };
        let text =
            toml::to_string(&cfg).map_err(|e| TestbedError::Format { path: dir.clone(), message: e.to_string() })?;
        write_file(&dir.join("device.toml"), &text, 0o644)?;
        let pw_path = dir.join("password");
        let password = match std::fs::read_to_string(&pw_path) {
            Ok(p) if !p.trim().is_empty() => p.trim().to_string(),
            _ => {
                let p = random_hex(12);
                write_file(&pw_path, &p, 0o600)?;
                p
            }
        };
        creds.push_str(&format!("[devices.{}]\npassword = {password:?}\n", v.name));
        write_file(&dir.join("uas.xml"), UAS_XML, 0o644)?;
        write_file(&dir.join("snmpd.conf"), &snmpd_conf(&cfg), 0o644)?;
        out.push(cfg);
    }
    let data = layout.controller_dir().join("data");
    std::fs::create_dir_all(&data).map_err(io(&data))?;
    write_file(&data.join("vc-credentials.toml"), &creds, 0o600)?;
    Ok(out)
}

fn map_port(p: u16) -> u16 {
    PROCESS_PORTS.iter().find(|(from, _)| *from == p).map_or(p, |(_, to)| *to)
}

/// The controller config's `[vc]` section for this testbed.
pub fn controller_section(container_net: Option<[u8; 3]>) -> String {
    match container_net {
        Some([a, b, c]) => format!("\n[vc]\naddress_map = \"192.0.2.0/24={a}.{b}.{c}.0/24\"\n"),
        None => {
            let ports: Vec<String> = PROCESS_PORTS.iter().map(|(f, t)| format!("\"{f}\" = {t}")).collect();
            format!("\n[vc]\naddress_map = \"192.0.2.0/24=127.0.2.0/24\"\nport_map = {{ {} }}\n", ports.join(", "))
        }
    }
}

/// Starts one container per device on the DC network at `<net>.N`.
pub fn start_containers(
    layout: &Layout,
    plan: &Plan,
    image: &str,
    mangrove: &Path,
    devices: &[DeviceConfig],
) -> Result<(), TestbedError> {
    let net = plan.net("dc");
    for (d, v) in devices.iter().zip(&layout.inventory.video_endpoints) {
        let dir = device_dir(&layout.dir, &d.name);
        let last = match v.address {
            std::net::IpAddr::V4(a) => a.octets()[3],
            std::net::IpAddr::V6(_) => continue,
        };
        let ip = net.host(last);
        // Where `fault device NAME down` reconnects it on heal.
        write_file(&dir.join("container.net"), &format!("{} {ip}\n", net.name), 0o644)?;
        let dd = dir.display().to_string();
        let m = mangrove.display().to_string();
        // sipp restarts unless the device is told to be SIP-silent; its pid is kept for the
        // fault to stop it.
        let command = format!(
            "sh -c 'snmpd -f -C -c {dd}/snmpd.conf -Lf {dd}/snmpd.log udp:161 & \
             /usr/local/bin/mangrove testbed vc-device --dir {dd} >>{dd}/sim.log 2>&1 & \
             cd /tmp; while true; do if [ -e {dd}/sip-silent ]; then sleep 0.2; else \
             sipp -sf {dd}/uas.xml -i {ip} -p 5060 -nostdin -trace_err >>{dd}/sipp.log 2>&1 & echo $! >/run/sipp.pid; wait $!; fi; done'"
        );
        containers::start(
            plan,
            &layout.dir,
            image,
            &ContainerSpec {
                name: &container_name(&layout.dir, &d.name),
                hostname: &d.name,
                site: "dc",
                ip: Some(ip),
                env: vec![],
                mounts: vec![(dd.clone(), dd, false), (m, "/usr/local/bin/mangrove".into(), true)],
                command,
            },
        )?;
    }
    Ok(())
}

/// Starts one simulator process per device (process mode).
pub fn start_processes(layout: &Layout, mangrove: &Path, devices: &[DeviceConfig]) -> Result<(), TestbedError> {
    for d in devices {
        let dir = device_dir(&layout.dir, &d.name);
        crate::spawn_detached(
            mangrove,
            &["testbed".into(), "vc-device".into(), "--dir".into(), dir.display().to_string()],
            &layout.log(&format!("device-{}", d.name)),
        )?;
    }
    Ok(())
}

/// `testbed fault device NAME down|sip-silent|bad-password|heal`.
pub fn fault(dir: &Path, name: &str, what: &str) -> Result<serde_json::Value, TestbedError> {
    let ddir = device_dir(dir, name);
    if !ddir.join("device.toml").exists() {
        return Err(TestbedError::Tool {
            what: format!("fault device {name}"),
            message: format!("no device {name} in this testbed (see `mangrove vc check`)"),
        });
    }
    let container = container_name(dir, name);
    let in_container = containers::docker_present() && containers::running(&container);
    // `down` takes the device off its network: nothing answers, not even TCP's handshake (a
    // paused container's kernel would still complete it).
    let net = std::fs::read_to_string(ddir.join("container.net")).unwrap_or_default();
    let (net_name, ip) = net.trim().split_once(' ').unwrap_or(("", ""));
    let attached = |c: &str| {
        docker(&["inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", c], "docker inspect")
            .is_ok_and(|s| s.split_whitespace().any(|n| n == net_name))
    };
    let flag = |f: &str, on: bool| -> Result<(), TestbedError> {
        let p = ddir.join(f);
        if on {
            write_file(&p, "", 0o644)
        } else {
            std::fs::remove_file(&p)
                .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
                .map_err(io(&p))
        }
    };
    match what {
        "sip-silent" => {
            flag("sip-silent", true)?;
            if in_container {
                docker(
                    &["exec", &container, "sh", "-c", "kill $(cat /run/sipp.pid) 2>/dev/null; true"],
                    "stopping sipp",
                )?;
            }
        }
        "bad-password" => flag("bad-password", true)?,
        "down" => {
            flag("down", true)?;
            if in_container && !net_name.is_empty() && attached(&container) {
                docker(&["network", "disconnect", net_name, &container], "taking the device off its network")?;
            }
        }
        "heal" => {
            for f in ["sip-silent", "bad-password", "down"] {
                flag(f, false)?;
            }
            // A container paused by hand (or by an older testbed) is thawed too.
            if in_container
                && docker(&["inspect", "-f", "{{.State.Paused}}", &container], "docker inspect")
                    .is_ok_and(|s| s == "true")
            {
                docker(&["unpause", &container], "unpausing the device")?;
            }
            if in_container && !net_name.is_empty() && !attached(&container) {
                docker(
                    &["network", "connect", "--ip", ip, net_name, &container],
                    "putting the device back on its network",
                )?;
            }
        }
        other => {
            return Err(TestbedError::Tool {
                what: "fault device".into(),
                message: format!("unknown device fault {other:?} (down, sip-silent, bad-password, heal)"),
            });
        }
    }
    Ok(serde_json::json!({"kind": "device", "device": name, "fault": what, "container": in_container}))
}
