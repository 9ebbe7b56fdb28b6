//! The ClamAV driver against a real clamd (Debian `clamav-daemon`, `clamdscan`), started by the
//! test on a temporary socket with a temporary config and a small custom signature database
//! made here (no freshclam, no network). A machine without clamd fails this test, loudly.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mangrove_plugins::antivirus::clamav::{self, Endpoint};
use mangrove_plugins::antivirus::logtail::LogTail;
use mangrove_plugins::antivirus::{AvConfig, Product, collect};

/// The bytes the custom signature matches, and its name as clamd reports it.
const MARKER: &str = "MANGROVE-TEST-SIGNATURE-0001";
const SIGNATURE: &str = "Mangrove.Test.Sig-1.UNOFFICIAL";

struct Clamd {
    child: Child,
    conf: PathBuf,
    socket: PathBuf,
    log: PathBuf,
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a custom `.ndb` database (`Name:TargetType:Offset:HexSignature`) and a clamd.conf in
/// `dir`, starts clamd in the foreground and waits until its socket answers.
fn start_clamd(dir: &Path) -> Clamd {
    let db = dir.join("db");
    std::fs::create_dir_all(&db).unwrap();
    let hex: String = MARKER.bytes().map(|b| format!("{b:02x}")).collect();
    std::fs::write(db.join("mangrove.ndb"), format!("Mangrove.Test.Sig-1:0:*:{hex}\n")).unwrap();
    let socket = dir.join("clamd.sock");
    let log = dir.join("clamd.log");
    let conf = dir.join("clamd.conf");
    std::fs::write(
        &conf,
        format!(
            "# test clamd\nLocalSocket {}\nDatabaseDirectory {}\nLogFile {}\nLogTime yes\nForeground yes\n\
             OnAccessIncludePath {}\n",
            socket.display(),
            db.display(),
            log.display(),
            dir.join("watched").display()
        ),
    )
    .unwrap();
    let child = Command::new("clamd")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("clamd must be installed (Debian clamav-daemon; `mangrove testbed deps --install`)");
    let clamd = Clamd { child, conf, socket, log };
    let deadline = Instant::now() + Duration::from_secs(60);
    while clamav::exchange(&Endpoint::Unix(clamd.socket.clone()), "VERSION", Duration::from_secs(2)).is_err() {
        assert!(Instant::now() < deadline, "clamd did not answer on {} within 60 s", clamd.socket.display());
        std::thread::sleep(Duration::from_millis(100));
    }
    clamd
}

/// `clamd --version` prints `ClamAV 1.4.6/…` or `ClamAV 1.4.6`.
fn installed_engine_version() -> String {
    let out = Command::new("clamd").arg("--version").output().expect("clamd --version");
    let text = String::from_utf8_lossy(&out.stdout);
    clamav::parse_version(text.trim()).expect("clamd --version says ClamAV").engine
}

fn now_unix() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

#[test]
fn real_clamd_reports_product_version_signatures_detections_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let mut clamd = start_clamd(dir.path());
    let config = AvConfig { clamd_conf: clamd.conf.clone(), ..AvConfig::default() };

    // Running, with the custom database only: the VERSION reply has no database part, so the
    // signature facts come from the database file.
    let status = collect(&config, now_unix());
    assert_eq!(status.product, Some(Product::Clamav));
    assert!(status.engine_running, "{}", status.detail);
    assert_eq!(status.version, installed_engine_version());
    assert_eq!(status.signature_version, "custom: mangrove.ndb");
    assert_eq!(status.signature_time_source, "database-mtime");
    assert_eq!(status.signature_age_days(now_unix()), Some(0));
    // On-access paths are configured, but no clamonacc runs: real-time protection is off.
    assert_eq!(status.realtime_protection, Some(false));
    let stats = clamav::parse_stats(
        &clamav::exchange(&Endpoint::Unix(clamd.socket.clone()), "STATS", Duration::from_secs(5)).unwrap(),
    );
    assert!(stats.valid() && stats.complete, "{stats:?}");

    // A file matching the custom signature, scanned through clamd, is a detection in its log,
    // read once.
    let tail = LogTail::new(&clamd.log, dir.path().join("cursor.json"));
    let (before, cursor) = tail.poll().unwrap();
    assert!(before.is_empty());
    tail.commit(&cursor).unwrap();
    let infected = dir.path().join("invoice.txt");
    std::fs::write(&infected, format!("hello\n{MARKER}\n")).unwrap();
    let clean = dir.path().join("clean.txt");
    std::fs::write(&clean, "nothing to see\n").unwrap();
    let scan = Command::new("clamdscan")
        .arg("-c")
        .arg(&clamd.conf)
        .arg("--fdpass")
        .arg(&infected)
        .arg(&clean)
        .output()
        .expect("clamdscan must be installed (Debian clamdscan)");
    assert_eq!(scan.status.code(), Some(1), "clamdscan: {}", String::from_utf8_lossy(&scan.stdout));
    let deadline = Instant::now() + Duration::from_secs(10);
    let (found, cursor) = loop {
        let (found, cursor) = tail.poll().unwrap();
        if !found.is_empty() || Instant::now() > deadline {
            break (found, cursor);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, infected.display().to_string());
    assert_eq!(found[0].signature, SIGNATURE);
    assert!(!found[0].logged_at.is_empty());
    tail.commit(&cursor).unwrap();
    let restarted = LogTail::new(&clamd.log, dir.path().join("cursor.json"));
    assert!(restarted.poll().unwrap().0.is_empty(), "a restarted reader reports the detection again");

    // Stopped: the socket does not answer, and the status says so.
    clamd.child.kill().unwrap();
    clamd.child.wait().unwrap();
    let stopped = collect(&config, now_unix());
    assert_eq!(stopped.product, Some(Product::Clamav));
    assert!(!stopped.engine_running);
    assert!(stopped.detail.starts_with("clamd is not running"), "{}", stopped.detail);
    assert_eq!(stopped.signature_version, "custom: mangrove.ndb");
}
