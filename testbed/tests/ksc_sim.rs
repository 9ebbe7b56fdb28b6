//! The KSC simulator against the protocol notes, and Mangrove's KSC client against the
//! simulator: login bound to its connection, typed values, chunked host search, group tree,
//! error envelopes, 403 after the session ended, and each injected fault as a typed error.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use plugins::ksc::status::{Thresholds, classify};
use plugins::ksc::{KscError, KscOptions, Session, read_fleet};
use serde_json::{Value, json};
use testbed::ksc::{CA_FILE, KscSimConfig, TRUTH_FILE, Truth, set_fault};

const PASSWORD: &str = "ksc-test-secret";

struct Sim {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    truth: Truth,
}

impl Sim {
    fn start() -> Sim {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let inv = inventory::load_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/examples/camau.yaml"))
            .expect("example inventory");
        let cfg = KscSimConfig {
            state_dir: dir.path().join("state"),
            listen: addr,
            names: vec!["127.0.0.1".into()],
            user: "mangrove".into(),
            password: PASSWORD.into(),
            fleet: testbed::ksc::seed::seed(&inv, 2022),
        };
        let truth = testbed::ksc::truth(&cfg);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            rt.block_on(async move {
                testbed::ksc::serve(cfg, async move {
                    let _ = rx.await;
                })
                .await
                .expect("simulator serves");
            });
        });
        let sim = Sim { dir, addr, stop: Some(tx), thread: Some(thread), truth };
        for _ in 0..200 {
            if std::net::TcpStream::connect(addr).is_ok() && sim.state().join(CA_FILE).exists() {
                return sim;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the KSC simulator did not listen on {addr}");
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn opts(&self) -> KscOptions {
        KscOptions {
            url: format!("https://{}", self.addr),
            user: "mangrove".into(),
            password: PASSWORD.into(),
            ca_file: self.state().join(CA_FILE),
            timeout: Duration::from_secs(10),
            page: 100,
            result_lifetime: 600,
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

#[test]
fn client_reads_all_2753_computers_in_chunks_of_100_and_its_statuses_equal_the_simulators_truth() {
    let sim = Sim::start();
    let fleet = read_fleet(&sim.opts()).expect("fleet read");
    assert_eq!(fleet.found, 2753);
    assert_eq!(fleet.hosts.len(), 2753);
    assert_eq!(fleet.chunks, 28, "2,753 hosts in pages of 100");
    let ids: std::collections::HashSet<_> = fleet.hosts.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids.len(), 2753, "each host once");
    // The group tree: five agencies under the root, districts and communes below.
    assert_eq!(fleet.root.id, 0);
    let names: Vec<_> = fleet.root.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(names.contains(&"UBND 8 huyện"), "{names:?}");
    let districts = &fleet.root.groups.iter().find(|g| g.name == "UBND 8 huyện").expect("districts").groups;
    assert_eq!(districts.len(), 8);
    assert!(districts.iter().all(|d| d.groups.len() == 5), "district office and four communes each");
    // Mangrove's own classification (default thresholds = the simulator's policy) equals the
    // simulator's truth, status by status and reason by reason.
    let t = Thresholds::default();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for h in &fleet.hosts {
        let (level, reasons) = classify(h, &t, now());
        *by_status.entry(level.as_str().into()).or_default() += 1;
        for (r, _) in reasons {
            *by_reason.entry(r.as_str().into()).or_default() += 1;
        }
        // KSC's own status id agrees with ours (0 OK, 1 critical, 2 warning).
        let want = match level.as_str() {
            "ok" => 0,
            "critical" => 1,
            _ => 2,
        };
        assert_eq!(h.status_id, Some(want), "{}", h.name);
    }
    assert_eq!(by_status, sim.truth.by_status);
    assert_eq!(by_reason, sim.truth.by_reason);
    let file: Truth = serde_json::from_str(&std::fs::read_to_string(sim.state().join(TRUTH_FILE)).expect("truth file"))
        .expect("json");
    assert_eq!(file, sim.truth);
}

#[test]
fn errors_are_typed_envelopes_and_result_sets_are_gone_after_release() {
    let sim = Sim::start();
    let mut s = Session::login(&sim.opts()).expect("login");
    let (n, acc) =
        s.find_hosts("(KLHST_WKS_STATUS_ID = 1)", &["KLHST_WKS_HOSTNAME", "KLHST_WKS_DN"], 60).expect("search");
    assert_eq!(n as u64, sim.truth.by_status["critical"]);
    let page = s.chunk(&acc, 0, 5).expect("chunk");
    assert_eq!(page.len(), 5);
    assert!(page.iter().all(|h| h.status.is_none()), "only the fields asked for come back");
    s.release(&acc).expect("release");
    match s.chunk(&acc, 0, 5) {
        Err(KscError::Envelope { code, message, call, .. }) => {
            assert_eq!(call, "ChunkAccessor.GetItemsChunk");
            assert!(code > 0 && message.contains("not found"), "{code} {message}");
        }
        other => panic!("released accessor: {other:?}"),
    }
    let e = s.call("HostGroup.NoSuchMethod", json!({})).expect_err("unknown method");
    assert!(e.to_string().contains("HostGroup.NoSuchMethod") && e.to_string().contains("not found"), "{e}");
    let e = s.find_hosts("(KLHST_WKS_STATUS ~ 1)", &[], 60).expect_err("bad filter");
    assert_eq!(e.kind(), "error_envelope", "{e}");
    s.call("Session.EndSession", json!({})).expect("end session");
    match s.call("HostGroup.GroupIdGroups", json!({})) {
        Err(e @ KscError::SessionEnded { .. }) => assert!(e.to_string().contains("403"), "{e}"),
        other => panic!("after EndSession: {other:?}"),
    }
    let mut bad = sim.opts();
    bad.password = "wrong".into();
    match Session::login(&bad) {
        Err(e @ KscError::Login { status: 401, .. }) => assert!(!e.to_string().contains("wrong"), "{e}"),
        Err(other) => panic!("bad password: {other}"),
        Ok(_) => panic!("bad password accepted"),
    }
}

#[test]
fn each_injected_fault_is_a_clear_typed_error_and_heal_restores_the_fleet() {
    let sim = Sim::start();
    for (fault, kind, says) in [
        ("error", "error_envelope", "returned error 1950"),
        ("malformed", "malformed", "malformed answer to HostGroup.GroupIdGroups"),
        ("session-ended", "session_ended", "session ended"),
        ("unreachable", "unreachable", "cannot reach KSC at 127.0.0.1"),
    ] {
        set_fault(&sim.state(), Some(fault)).expect("fault");
        let e = read_fleet(&sim.opts()).expect_err(fault);
        assert_eq!(e.kind(), kind, "{fault}: {e}");
        assert!(e.to_string().contains(says), "{fault}: {e}");
        assert!(!e.to_string().contains(PASSWORD));
    }
    set_fault(&sim.state(), None).expect("heal");
    assert_eq!(read_fleet(&sim.opts()).expect("healed").hosts.len(), 2753);
    assert!(set_fault(&sim.state(), Some("flaky")).is_err());
}

/// curl (a real HTTP client) keeps one connection across `--next`: a login on it authorises
/// the next call; a call on a connection that never logged in is refused.
#[test]
fn curl_login_is_bound_to_its_connection() {
    let sim = Sim::start();
    let url = |m: &str| format!("https://{}/api/v1.0/{m}", sim.addr);
    let ca = sim.state().join(CA_FILE);
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let auth = format!("Authorization: KSCBasic user=\"{}\", pass=\"{}\", domain=\"\"", b64("mangrove"), b64(PASSWORD));
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&ca)
        .args(["-X", "POST", "-H", &auth, "-H", "Content-Type: application/json", &url("login"), "-o", "/dev/null"])
        .args(["--next", "--cacert"])
        .arg(&ca)
        .args(["-X", "POST", "-H", "Content-Type: application/json", "-d", "{\"nGroupId\":0,\"nDepth\":1}"])
        .arg(url("HostGroup.GetSubgroups"))
        .output()
        .expect("curl must be installed (Debian package curl)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let groups = v["PxgRetVal"].as_array().expect("groups");
    assert_eq!(groups.len(), 5);
    assert_eq!(groups[0]["type"], "params");
    assert!(groups[0]["value"].get("groups").is_none(), "nDepth 1: no grandchildren");
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&ca)
        .args(["-X", "POST", "-H", "Content-Type: application/json", "-d", "{}"])
        .arg(url("HostGroup.GroupIdGroups"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401", "no login on this connection");
}

/// `Session.StartSession` gives a token that authenticates a fresh connection through
/// `X-KSC-Session` [Inferred in the notes]; after `Session.EndSession` it answers 403.
#[test]
fn a_session_token_works_on_a_fresh_connection_until_the_session_ends() {
    let sim = Sim::start();
    let url = |m: &str| format!("https://{}/api/v1.0/{m}", sim.addr);
    let ca = sim.state().join(CA_FILE);
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let auth = format!(
        "Authorization: KSCBasic user=\"{}\", pass=\"{}\", domain=\"\", internal=\"1\"",
        b64("mangrove"),
        b64(PASSWORD)
    );
    let json_ct = "Content-Type: application/json";
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&ca)
        .args(["-X", "POST", "-H", &auth, "-H", json_ct, &url("login"), "-o", "/dev/null", "--next", "--cacert"])
        .arg(&ca)
        .args(["-X", "POST", "-H", json_ct, "-d", "{}"])
        .arg(url("Session.StartSession"))
        .output()
        .expect("curl");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let token = v["PxgRetVal"].as_str().expect("a session token").to_string();
    let call = |method: &str| {
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(&ca)
            .args(["-X", "POST", "-H", json_ct, "-H", &format!("X-KSC-Session: {token}"), "-d", "{}"])
            .arg(url(method))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(call("HostGroup.GroupIdGroups"), "200");
    assert_eq!(call("Session.EndSession"), "200");
    assert_eq!(call("HostGroup.GroupIdGroups"), "403", "the session ended");
}

#[test]
fn result_sets_expire_after_their_lifetime() {
    let sim = Sim::start();
    let mut s = Session::login(&sim.opts()).expect("login");
    let (n, acc) = s.find_hosts("", &["KLHST_WKS_HOSTNAME"], 1).expect("search");
    assert_eq!(n, 2753);
    assert_eq!(s.chunk(&acc, 2700, 100).expect("last chunk").len(), 53);
    std::thread::sleep(Duration::from_millis(1300));
    let e = s.chunk(&acc, 0, 100).expect_err("expired");
    assert!(e.to_string().contains("released or expired"), "{e}");
}

#[test]
fn a_read_told_to_stop_stops_between_calls() {
    let sim = Sim::start();
    let e = plugins::ksc::read_fleet_until(&sim.opts(), &|| true).expect_err("stopped");
    assert_eq!(e, KscError::Stopped);
    assert_eq!(read_fleet(&sim.opts()).expect("a read after").hosts.len(), 2753);
}
