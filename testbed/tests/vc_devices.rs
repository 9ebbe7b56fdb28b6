//! The video-conference checks against the real programs the device containers run (sipp
//! with our UAS scenario, snmpd with our config) and against our telnet simulator, including
//! a device that answers garbage. These need `sipp` (Debian `sip-tester`) and `snmpd`: they
//! fail, naming the package, when either is missing.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plugins::vc::{self, Api, DeviceSpec, sip, snmp, telnet};
use testbed::devices::{DeviceConfig, UAS_XML, snmpd_conf};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn need(program: &str, package: &str) {
    let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        || Path::new("/usr/sbin").join(program).is_file();
    assert!(
        found,
        "this test runs the real {program}: `apt-get install -y {package}` (or `mangrove testbed deps --install`)"
    );
}

fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("free port")
}

fn free_tcp() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("free port")
}

#[test]
fn sip_options_gets_200_from_real_sipp_and_silence_times_out() {
    need("sipp", "sip-tester");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("uas.xml"), UAS_XML).expect("scenario");
    let port = free_udp();
    let target: SocketAddr = ([127, 0, 0, 1], port).into();
    let uri = format!("sip:127.0.0.1:{port}");
    {
        let _sipp = Killed(
            Command::new("sipp")
                .args(["-sf", "uas.xml", "-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin"])
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start sipp"),
        );
        let started = Instant::now();
        let answer = loop {
            match sip::options(target, &uri, Duration::from_secs(2)) {
                Ok(a) => break a,
                Err(e) if started.elapsed() > Duration::from_secs(10) => panic!("sipp never answered: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        assert_eq!((answer.status.code, answer.status.reason.as_str()), (200, "OK"));
        assert_eq!(answer.agent.as_deref(), Some("Polycom HDX (sipp stand-in)"));
    }
    // sipp gone: the port is closed (ICMP unreachable) or silent; either way "SIP not answering".
    let err = sip::options(target, &uri, Duration::from_millis(700)).expect_err("nothing answers").to_string();
    assert!(err.starts_with("SIP not answering"), "{err}");
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let t0 = Instant::now();
    let err = sip::options(silent.local_addr().expect("addr"), &uri, Duration::from_millis(900)).expect_err("silent");
    assert!(matches!(err, sip::SipError::Timeout(900)), "{err}");
    assert!(t0.elapsed() < Duration::from_millis(1500));
    // It retransmitted per Timer E (500 ms), with the same branch and Call-ID.
    silent.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while let Ok(n) = silent.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(got.len() >= 2, "{got:?}");
    assert_eq!(got[0], got[1]);
}

#[test]
fn snmp_get_reads_the_system_group_from_real_snmpd() {
    need("snmpd", "snmpd");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = DeviceConfig {
        name: "vc-thoi-binh".into(),
        model: "Polycom HDX 7000".into(),
        serial: "82051".into(),
        software: "3.1.14-61207".into(),
        listen: [0, 0, 0, 0].into(),
        telnet_port: 24,
        rest: false,
        sip_port: None,
        snmp_port: None,
    };
    let conf = dir.path().join("snmpd.conf");
    std::fs::write(&conf, snmpd_conf(&cfg)).expect("conf");
    let port = free_udp();
    let _snmpd = Killed(
        Command::new("snmpd")
            .args(["-f", "-C", "-c"])
            .arg(&conf)
            .arg("-Lf")
            .arg(dir.path().join("snmpd.log"))
            .arg(format!("udp:127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start snmpd"),
    );
    let target: SocketAddr = ([127, 0, 0, 1], port).into();
    let started = Instant::now();
    let r = loop {
        match snmp::get(target, "public", &[snmp::SYS_DESCR, snmp::SYS_UPTIME, snmp::SYS_NAME], Duration::from_secs(1))
        {
            Ok(r) => break r,
            Err(e) if started.elapsed() > Duration::from_secs(10) => panic!("snmpd never answered: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let g = snmp::system_group(&r);
    assert_eq!(g.descr.as_deref(), Some("Polycom HDX 7000 (software 3.1.14-61207)"));
    assert_eq!(g.name.as_deref(), Some("vc-thoi-binh"));
    assert!(g.uptime_seconds.is_some());
    // A wrong community is dropped by snmpd: a timeout, not a panic or a false answer.
    let err = snmp::get(target, "private", &[snmp::SYS_DESCR], Duration::from_millis(500)).expect_err("dropped");
    assert!(matches!(err, snmp::SnmpError::Timeout(_)), "{err}");
}

/// A device simulator (process mode: telnet or REST, SIP and SNMP) on free loopback ports.
fn simulator(dir: &Path, password: &str) -> DeviceConfig {
    simulator_of(dir, password, false)
}

fn simulator_of(dir: &Path, password: &str, rest: bool) -> DeviceConfig {
    let cfg = DeviceConfig {
        name: "vc-u-minh".into(),
        model: if rest { "Poly G7500".into() } else { "Polycom HDX 7000".into() },
        rest,
        serial: "820500001004".into(),
        software: "3.1.14-61207".into(),
        listen: [127, 0, 0, 1].into(),
        telnet_port: free_tcp(),
        sip_port: Some(free_udp()),
        snmp_port: Some(free_udp()),
    };
    std::fs::write(dir.join("device.toml"), toml::to_string(&cfg).expect("toml")).expect("write");
    std::fs::write(dir.join("password"), password).expect("password");
    let d = dir.to_path_buf();
    std::thread::spawn(move || testbed::devices::sim::run(&d));
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", cfg.telnet_port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(5), "simulator did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    cfg
}

fn spec(cfg: &DeviceConfig, password: &str) -> DeviceSpec {
    let sip_port = cfg.sip_port.expect("sip");
    DeviceSpec {
        name: cfg.name.clone(),
        address: "127.0.0.1".parse().expect("ip"),
        api: Api::Telnet,
        api_port: cfg.telnet_port,
        sip_port,
        sip_uri: format!("sip:127.0.0.1:{sip_port}"),
        snmp_port: cfg.snmp_port.expect("snmp"),
        snmp_community: "public".into(),
        user: "admin".into(),
        password: password.into(),
    }
}

#[test]
fn the_simulated_device_is_up_and_each_fault_names_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = simulator(dir.path(), "mật-khẩu-1");
    let good = spec(&cfg, "mật-khẩu-1");
    let r = vc::check_device(&good, Duration::from_secs(2));
    assert_eq!((r.state.as_str(), r.reasons.len()), ("up", 0), "{r:?}");
    let kinds: Vec<&str> = r.checks.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, [vc::REACHABILITY, vc::SIP, vc::SNMP, vc::TELNET]);

    std::fs::write(dir.path().join("sip-silent"), "").expect("flag");
    let t0 = Instant::now();
    let r = vc::check_device(&good, Duration::from_secs(1));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!((r.state.as_str(), r.reasons.clone()), ("degraded", vec![vc::SIP_NOT_ANSWERING.to_string()]));
    std::fs::remove_file(dir.path().join("sip-silent")).expect("unflag");

    let r = vc::check_device(&spec(&cfg, "wrong"), Duration::from_secs(2));
    assert_eq!(r.reasons, vec![vc::CREDENTIALS_FAILED.to_string()], "{r:?}");
    std::fs::write(dir.path().join("bad-password"), "").expect("flag");
    let r = vc::check_device(&good, Duration::from_secs(2));
    assert_eq!(r.reasons, vec![vc::CREDENTIALS_FAILED.to_string()], "{r:?}");
}

#[test]
fn a_device_answering_garbage_on_telnet_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut s) = conn else { continue };
            let junk: &[u8] = match i % 3 {
                0 => b"\xff\xfb\x01\x00\x13\x37 BEEP BOOP \xc3\x28 no prompt here\r\n",
                1 => b"-> ",
                _ => b"Password: ",
            };
            std::thread::spawn(move || {
                let _ = s.write_all(junk);
                std::thread::sleep(Duration::from_millis(1500));
            });
        }
    });
    // A greeting that is neither a prompt nor a password request.
    let e = telnet::check(addr, Some("x"), Duration::from_millis(500)).expect_err("garbage").to_string();
    assert!(e.starts_with("telnet API answered garbage to the login greeting"), "{e}");
    // A prompt, then nothing sensible for `whoami` before the timeout.
    let e = telnet::check(addr, Some("x"), Duration::from_millis(500)).expect_err("silent").to_string();
    assert!(e.contains("whoami"), "{e}");
    // A password prompt, and no answer to the password.
    let e = telnet::check(addr, Some("x"), Duration::from_millis(500)).expect_err("silent").to_string();
    assert!(e.contains("the password"), "{e}");
}

#[test]
fn the_rest_check_logs_in_reads_identity_and_names_credential_and_garbage_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = simulator_of(dir.path(), "mật-khẩu-2", true);
    let mut good = spec(&cfg, "mật-khẩu-2");
    good.api = Api::Rest;
    let r = vc::check_device(&good, Duration::from_secs(3));
    assert_eq!(r.state, "up", "{r:?}");
    let rest = r.checks.iter().find(|c| c.kind == vc::REST).expect("rest check");
    assert_eq!(rest.detail, "G7500 820500001004 sw 3.1.14-61207; not in a call", "{rest:?}");

    let mut wrong = good.clone();
    wrong.password = "sai".into();
    let r = vc::check_device(&wrong, Duration::from_secs(3));
    assert_eq!(r.reasons, vec![vc::CREDENTIALS_FAILED.to_string()], "{r:?}");

    std::fs::write(dir.path().join("rest-garbage"), "").expect("flag");
    let r = vc::check_device(&good, Duration::from_secs(3));
    let rest = r.checks.iter().find(|c| c.kind == vc::REST).expect("rest check");
    assert!(!rest.ok && rest.detail.starts_with("REST API answered garbage to GET /rest/system"), "{rest:?}");
}
