//! The failover's DNS switch against a real BIND: the testbed's `named` (Debian `bind9`),
//! updated with the plugins' TSIG client and read back with it and with `dig`. A missing named
//! fails these tests; install it with `mangrove testbed deps --install`.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use plugins::dns::{self, DnsError, RecordKind, TsigAlgorithm, TsigKey, Updater};
use testbed::bind::{self, Bind, ZoneRecord};
use testbed::{DnsLayout, Layout, procs};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A BIND in its own temp testbed dir, stopped when dropped.
struct Server {
    dir: tempfile::TempDir,
    bind: Bind,
}

impl Drop for Server {
    fn drop(&mut self) {
        bind::stop(self.dir.path(), Duration::from_secs(5));
    }
}

fn start(records: &[ZoneRecord]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = std::fs::canonicalize(dir.path()).expect("canonical dir");
    let port = testbed::layout::free_ports(1).expect("free port")[0];
    let layout: DnsLayout = bind::default_layout(&path, port);
    let bind = bind::start(&path, &layout, records).unwrap_or_else(|e| panic!("BIND must start: {e}"));
    Server { dir, bind }
}

fn key(s: &Server) -> TsigKey {
    TsigKey::load(&s.bind.key_file).expect("the testbed's key file")
}

fn updater(s: &Server, zone: &str) -> Updater {
    Updater::new(s.bind.server, zone, key(s), TIMEOUT).expect("updater")
}

/// `dig @server -p port NAME TYPE +short`, one answer per line.
fn dig(server: SocketAddr, name: &str, rtype: &str) -> Vec<String> {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), name, rtype, "+short", "+norecurse", "+time=2", "+tries=1"])
        .stdin(Stdio::null())
        .output()
        .expect("dig must be installed (bind9-dnsutils)");
    assert!(out.status.success(), "dig failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn log(s: &Server) -> String {
    std::fs::read_to_string(&s.bind.log).expect("named.log")
}

#[test]
fn replace_is_seen_by_lookup_and_dig_is_idempotent_and_delete_removes_it() {
    let s = start(&[]);
    let drill = updater(&s, bind::TEST_ZONE);
    let name = "web-portal.drill.camau.gov.vn";

    drill.replace("web-portal", RecordKind::A, 60, &strings(&["127.0.3.54"])).expect("replace");
    assert_eq!(drill.lookup("web-portal", RecordKind::A).expect("lookup"), ["127.0.3.54"]);
    assert_eq!(dns::lookup(s.bind.server, name, RecordKind::A, TIMEOUT).expect("lookup"), ["127.0.3.54"]);
    assert_eq!(dig(s.bind.server, name, "A"), ["127.0.3.54"]);
    assert!(
        log(&s).contains(
            "updating zone 'drill.camau.gov.vn/IN': adding an RR at 'web-portal.drill.camau.gov.vn' A 127.0.3.54"
        ),
        "named's log shows the update:\n{}",
        log(&s)
    );

    // Twice with the same values: the same single record, no error, and the zone unchanged
    // (its serial counts applied changes; named's log still shows the second UPDATE).
    let serial = dns::soa_serial(s.bind.server, bind::TEST_ZONE, TIMEOUT).expect("serial");
    drill.replace(name, RecordKind::A, 60, &strings(&["127.0.3.54"])).expect("replace again");
    assert_eq!(dig(s.bind.server, name, "A"), ["127.0.3.54"]);
    assert_eq!(dns::soa_serial(s.bind.server, bind::TEST_ZONE, TIMEOUT).expect("serial"), serial);
    let adds: Vec<_> = bind::logged_updates(&log(&s))
        .into_iter()
        .filter(|u| u.action == "add" && u.name == name && u.record == "A 127.0.3.54")
        .collect();
    assert_eq!(adds.len(), 2, "{adds:?}");

    // Replacing means the old values go: two new addresses, the first one gone.
    drill.replace("web-portal", RecordKind::A, 60, &strings(&["127.0.3.55", "127.0.3.56"])).expect("replace two");
    assert_eq!(drill.lookup("web-portal", RecordKind::A).expect("lookup"), ["127.0.3.55", "127.0.3.56"]);
    assert_eq!(dig(s.bind.server, name, "A"), ["127.0.3.55", "127.0.3.56"]);

    drill.delete("web-portal", RecordKind::A).expect("delete");
    assert!(drill.lookup("web-portal", RecordKind::A).expect("lookup").is_empty());
    assert!(dig(s.bind.server, name, "A").is_empty());
    drill.delete("web-portal", RecordKind::A).expect("deleting what is not there succeeds");

    // The other types, and an alias a lookup follows.
    drill.replace("qlvbdh", RecordKind::Aaaa, 60, &strings(&["2001:db8::51"])).expect("AAAA");
    drill.replace("qlvbdh", RecordKind::A, 60, &strings(&["127.0.3.51"])).expect("A");
    drill.replace("van-ban", RecordKind::Cname, 60, &strings(&["qlvbdh.drill.camau.gov.vn"])).expect("CNAME");
    drill.replace("@", RecordKind::Txt, 60, &strings(&["drill run 7"])).expect("TXT");
    assert_eq!(dig(s.bind.server, "qlvbdh.drill.camau.gov.vn", "AAAA"), ["2001:db8::51"]);
    assert_eq!(drill.lookup("van-ban", RecordKind::Cname).expect("cname"), ["qlvbdh.drill.camau.gov.vn"]);
    assert_eq!(drill.lookup("van-ban", RecordKind::A).expect("through the alias"), ["127.0.3.51"]);
    assert_eq!(drill.lookup("@", RecordKind::Txt).expect("txt"), ["drill run 7"]);
    assert_eq!(dig(s.bind.server, "drill.camau.gov.vn", "TXT"), ["\"drill run 7\""]);
}

#[test]
fn nsupdate_with_the_key_file_and_the_client_agree() {
    let s = start(&[]);
    let script = format!(
        "server {} {}\nzone drill.camau.gov.vn\nupdate add cong-bao.drill.camau.gov.vn 60 A 127.0.3.55\nsend\n",
        s.bind.server.ip(),
        s.bind.server.port()
    );
    let mut child = Command::new("nsupdate")
        .arg("-k")
        .arg(&s.bind.key_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nsupdate must be installed (bind9-dnsutils)");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), script.as_bytes()).expect("script");
    let out = child.wait_with_output().expect("nsupdate");
    assert!(out.status.success(), "nsupdate: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(updater(&s, bind::TEST_ZONE).lookup("cong-bao", RecordKind::A).expect("lookup"), ["127.0.3.55"]);
}

#[test]
fn the_key_file_is_tsig_keygen_output_kept_private() {
    let s = start(&[]);
    let k = key(&s);
    assert_eq!(k.name, bind::KEY_NAME);
    assert_eq!(k.algorithm, TsigAlgorithm::HmacSha256);
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&s.bind.key_file), 0o600);
    assert_eq!(mode(s.bind.key_file.parent().expect("bind dir")), 0o700);
    // The secret is on no command line: not named's, not anyone's.
    let secret_b64 = std::fs::read_to_string(&s.bind.key_file).expect("key");
    let secret = secret_b64.split('"').nth(3).expect("secret in quotes");
    for (_, argv) in procs::under(s.dir.path()) {
        assert!(!argv.iter().any(|a| a.contains(secret)), "{argv:?}");
    }
    assert!(!log(&s).contains(secret));
}

#[test]
fn a_wrong_secret_or_key_name_says_the_key_is_wrong() {
    let s = start(&[]);
    let right = key(&s);
    let wrong_secret = TsigKey::new(&right.name, right.algorithm, "d3JvbmctZDNKdmJtY3RjMlZqY21WMA==").expect("key");
    let e = Updater::new(s.bind.server, bind::TEST_ZONE, wrong_secret, TIMEOUT)
        .expect("updater")
        .replace("web-portal", RecordKind::A, 60, &strings(&["127.0.3.54"]))
        .expect_err("a wrong secret must be refused");
    assert!(matches!(e, DnsError::KeyRejected { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("the key is wrong") && text.contains("BADSIG"), "{text}");
    assert!(text.contains(&s.bind.server.to_string()), "{text}");
    assert!(!e.is_retryable());

    let unknown = TsigKey::new("someone-else", TsigAlgorithm::HmacSha256, "c2VjcmV0LXNlY3JldC1zZWNyZXQ=").expect("key");
    let e = Updater::new(s.bind.server, bind::TEST_ZONE, unknown, TIMEOUT)
        .expect("updater")
        .delete("web-portal", RecordKind::A)
        .expect_err("an unknown key must be refused");
    assert!(matches!(e, DnsError::KeyRejected { .. }), "{e:?}");
    assert!(e.to_string().contains("BADKEY") && e.to_string().contains("the key is wrong"), "{e}");
    assert!(updater(&s, bind::TEST_ZONE).lookup("web-portal", RecordKind::A).expect("lookup").is_empty());
}

#[test]
fn a_zone_the_server_does_not_serve_is_a_clear_error() {
    let s = start(&[]);
    let e =
        updater(&s, "example.org").replace("www", RecordKind::A, 60, &strings(&["127.0.3.1"])).expect_err("not served");
    assert!(matches!(e, DnsError::NotAuthoritative { .. }), "{e:?}");
    assert!(e.to_string().contains("does not serve this zone") && e.to_string().contains("example.org"), "{e}");
    // A lookup there is refused by a server without recursion.
    let e = dns::lookup(s.bind.server, "www.example.org", RecordKind::A, TIMEOUT).expect_err("refused");
    assert!(e.to_string().contains("REFUSED"), "{e}");
}

#[test]
fn an_unreachable_or_silent_server_times_out_naming_it() {
    let k = TsigKey::new("mangrove", TsigAlgorithm::HmacSha256, "c2VjcmV0LXNlY3JldC1zZWNyZXQ=").expect("key");
    // Accepts connections (the kernel's backlog) and never answers.
    let silent_tcp = TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = silent_tcp.local_addr().expect("addr");
    let e = Updater::new(server, bind::TEST_ZONE, k.clone(), Duration::from_millis(500))
        .expect("updater")
        .replace("web-portal", RecordKind::A, 60, &strings(&["127.0.3.54"]))
        .expect_err("no answer");
    assert!(matches!(e, DnsError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains(&server.to_string()) && e.is_retryable(), "{e}");

    let silent_udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let server = silent_udp.local_addr().expect("addr");
    let e = dns::lookup(server, "web-portal.drill.camau.gov.vn", RecordKind::A, Duration::from_millis(500))
        .expect_err("no answer");
    assert!(matches!(e, DnsError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains(&server.to_string()), "{e}");

    // Nothing listening at all.
    drop(silent_tcp);
    let e = Updater::new(server, bind::TEST_ZONE, k, TIMEOUT)
        .expect("updater")
        .delete("web-portal", RecordKind::A)
        .expect_err("refused");
    assert!(matches!(e, DnsError::Unreachable { .. } | DnsError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains(&server.to_string()), "{e}");
}

#[test]
fn the_province_zone_holds_the_six_systems_and_test_updates_never_touch_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/examples/camau.yaml");
    let layout = Layout::prepare(dir.path(), &inventory).expect("layout");
    let b = bind::start_for(&layout, [127, 0, 2]).unwrap_or_else(|e| panic!("BIND must start: {e}"));
    let s = Server { dir, bind: b };
    assert_eq!(s.bind.server, layout.dns.server);
    assert_eq!(s.bind.key_file, layout.dns.key_file);
    assert!(s.bind.key_file.starts_with(&layout.dir));

    let systems = ["qlvbdh", "dvc-portal", "email", "web-portal", "cong-bao", "cbccvc"];
    let prod = updater(&s, bind::PRODUCTION_ZONE);
    let before: Vec<Vec<String>> =
        systems.iter().map(|n| prod.lookup(n, RecordKind::A).expect("production lookup")).collect();
    assert_eq!(before[0], ["127.0.2.51"], "qlvbdh at its DC address, in the testbed's loopback network");
    assert_eq!(before[3], ["127.0.2.54"], "web-portal");
    assert!(before.iter().all(|v| v.len() == 1), "{before:?}");
    assert_eq!(dig(s.bind.server, "dvc-portal.camau.gov.vn", "A"), ["127.0.2.52"]);
    let serial = dns::soa_serial(s.bind.server, bind::PRODUCTION_ZONE, TIMEOUT).expect("serial");

    let drill = updater(&s, bind::TEST_ZONE);
    for (i, n) in systems.iter().enumerate() {
        drill.replace(n, RecordKind::A, 30, &[format!("127.0.3.{}", 51 + i)]).expect("test-zone update");
    }
    assert_eq!(drill.lookup("qlvbdh", RecordKind::A).expect("drill"), ["127.0.3.51"]);
    let after: Vec<Vec<String>> = systems.iter().map(|n| prod.lookup(n, RecordKind::A).expect("lookup")).collect();
    assert_eq!(after, before, "production records changed by a test-zone update");
    assert_eq!(dns::soa_serial(s.bind.server, bind::PRODUCTION_ZONE, TIMEOUT).expect("serial"), serial);
    let zones: Vec<String> = bind::logged_updates(&log(&s)).into_iter().map(|u| u.zone).collect();
    assert_eq!(zones.len(), 12, "a delete and an add per system: {zones:?}");
    assert!(zones.iter().all(|z| z == bind::TEST_ZONE), "{zones:?}");

    // An updater of the test zone cannot be pointed at a production name.
    let e = drill.replace("qlvbdh.camau.gov.vn", RecordKind::A, 30, &strings(&["127.0.3.1"])).expect_err("outside");
    assert!(matches!(e, DnsError::OutsideZone { .. }), "{e:?}");

    // The controller's [dns] section names what the layout recorded.
    let section = s.bind.controller_section();
    assert!(section.contains(&format!("server = \"{}\"", layout.dns.server)), "{section}");
    assert!(section.contains("test_zone = \"drill.camau.gov.vn\""), "{section}");
}

#[test]
fn restarting_keeps_the_key_and_the_updates_and_stop_leaves_no_named() {
    let s = start(&[]);
    let key_text = std::fs::read_to_string(&s.bind.key_file).expect("key");
    updater(&s, bind::TEST_ZONE).replace("email", RecordKind::A, 60, &strings(&["127.0.3.53"])).expect("replace");

    let path = std::fs::canonicalize(s.dir.path()).expect("dir");
    let layout = bind::default_layout(&path, s.bind.server.port());
    let again = bind::start(&path, &layout, &[]).expect("restart");
    assert_ne!(again.pid, s.bind.pid, "a new named");
    assert!(!procs::alive(s.bind.pid), "the old named was stopped");
    assert_eq!(std::fs::read_to_string(&again.key_file).expect("key"), key_text, "the key is kept");
    assert_eq!(updater(&s, bind::TEST_ZONE).lookup("email", RecordKind::A).expect("lookup"), ["127.0.3.53"]);

    let named = |dir: &Path| {
        procs::under(dir).into_iter().filter(|(_, argv)| argv.first().is_some_and(|a| a.ends_with("named"))).count()
    };
    assert_eq!(named(&path), 1);
    assert_eq!(bind::stop(&path, Duration::from_secs(5)), 1);
    assert_eq!(named(&path), 0, "a named still names {}", path.display());
    assert!(!procs::alive(again.pid));
}

/// The controller is tokio-based: the blocking client must not panic inside a runtime (it has
/// none of its own), and `spawn_blocking` is how async code calls it.
#[tokio::test(flavor = "current_thread")]
async fn the_client_works_inside_a_tokio_runtime() {
    let s = start(&[]);
    let drill = updater(&s, bind::TEST_ZONE);
    // Directly on the runtime's thread: blocks it for the exchange, but works.
    drill.replace("email", RecordKind::A, 60, &strings(&["127.0.3.53"])).expect("replace inside a runtime");
    let server = s.bind.server;
    let got = tokio::task::spawn_blocking(move || {
        dns::lookup(server, "email.drill.camau.gov.vn", RecordKind::A, TIMEOUT).expect("lookup")
    })
    .await
    .expect("join");
    assert_eq!(got, ["127.0.3.53"]);
}
