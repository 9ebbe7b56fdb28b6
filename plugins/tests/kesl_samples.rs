//! The KESL parsers against the samples in `tests/fixtures/kesl/` (written from the vendor's
//! documentation; the README there says where each came from and what is inferred), and a fake
//! `kesl-control` program that prints them, as the agent would run the real one.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};
use std::time::Duration;

use mangrove_plugins::antivirus::kesl::{self, TaskState};
use mangrove_plugins::antivirus::kesl_events::{self, EventCursor, KeslEvents};
use mangrove_plugins::antivirus::{AvConfig, Product, collect};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kesl").join(name)).unwrap()
}

#[test]
fn app_info_of_a_protected_host() {
    let info = kesl::parse_app_info(&fixture("app-info-protected.txt"));
    assert_eq!(info.name, "Kaspersky Endpoint Security 12.1 for Linux");
    assert_eq!(info.version, "12.1.0.1297");
    assert_eq!(info.databases_loaded, Some(true));
    assert_eq!(info.databases_released_unix, Some(1_795_722_300)); // 2026-11-26 19:45:00 UTC
    assert_eq!(info.last_full_scan_unix, Some(1_795_140_013)); // 2026-11-20 02:00:13 UTC
    let status = kesl::status_from(&info, None);
    assert_eq!(status.product, Some(Product::Kesl));
    assert!(status.engine_running);
    assert_eq!(status.realtime_protection, Some(true));
    assert_eq!(status.signature_age_days(1_795_722_300 + 2 * 86_400 + 1), Some(2));
    assert_eq!(status.signature_time_source, "kesl-app-info");
}

#[test]
fn app_info_with_protection_stopped_and_no_databases() {
    let info = kesl::parse_app_info(&fixture("app-info-stopped.txt"));
    assert_eq!(info.databases_loaded, Some(false));
    assert_eq!(info.databases_released_unix, None);
    assert_eq!(info.last_full_scan_unix, None);
    let status = kesl::status_from(&info, None);
    assert!(!status.engine_running);
    assert_eq!(status.realtime_protection, Some(false));
    assert!(status.detail.contains("databases are not loaded"), "{}", status.detail);
}

#[test]
fn task_state_samples() {
    assert_eq!(kesl::parse_task_state(&fixture("task-state-started.txt")), Some(TaskState::Started));
    assert_eq!(kesl::parse_task_state(&fixture("task-state-stopped.txt")), Some(TaskState::Stopped));
}

/// A `kesl-control` stand-in: a shell script printing the recorded samples.
fn fake_control(dir: &Path, app_info: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kesl");
    let path = dir.join("kesl-control");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n--app-info) cat '{}';;\n--get-task-state) cat '{}';;\n*) exit 2;;\nesac\n",
            fixtures.join(app_info).display(),
            fixtures.join("task-state-started.txt").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn collect_runs_kesl_control_when_no_clamd_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let config = AvConfig {
        clamd_conf: dir.path().join("no-clamd.conf"),
        kesl_control: fake_control(dir.path(), "app-info-protected.txt"),
        timeout_ms: 5000,
    };
    let status = collect(&config, 1_795_722_300);
    assert_eq!(status.product, Some(Product::Kesl));
    assert_eq!(status.version, "12.1.0.1297");
    assert!(status.engine_running, "{}", status.detail);
    assert_eq!(status.realtime_protection, Some(true));
}

#[test]
fn threat_detected_events_sample() {
    let threats = kesl_events::parse_events(&fixture("events-threats.txt"));
    assert_eq!(threats.len(), 2);
    // The vendor's example event, field by field.
    let eicar = &threats[1];
    assert_eq!(eicar.event_id, 2671);
    assert_eq!(eicar.detect_name, "EICAR-Test-File");
    assert_eq!(eicar.file_name, "/root/eicar.com.txt");
    assert_eq!(eicar.date, "2020-04-30 17:17:17");
    assert_eq!(eicar.danger_level, "Critical");
    assert_eq!((eicar.task_name.as_str(), eicar.task_type.as_str()), ("File_Monitoring", "OAS"));
    assert_eq!((eicar.object_name.as_str(), eicar.file_owner.as_str()), ("File", "root"));
}

/// A `kesl-control` stand-in for the event query: prints the sample named in `sample` (whatever
/// the query: the position must hold even if KESL ignored the `EventId` condition) and records
/// its arguments.
fn fake_events_control(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("kesl-control");
    let d = dir.display();
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{d}/args'\n[ \"$1\" = -E ] && [ \"$2\" = --query ] || exit 2\n\
             cat \"$(cat '{d}/sample')\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn detections_are_reported_once_through_kesl_control() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kesl");
    let show =
        |name: &str| std::fs::write(dir.path().join("sample"), fixtures.join(name).display().to_string()).unwrap();
    let control = fake_events_control(dir.path());
    let cursor_file = dir.path().join("kesl-events.cursor");
    let events = KeslEvents::new(&control, &cursor_file, Duration::from_secs(5));

    // First run: the stored detections are history.
    show("events-threats.txt");
    let (found, cursor) = events.poll().unwrap();
    assert!(found.is_empty());
    assert_eq!(cursor.event_id, 2671);
    events.commit(&cursor).unwrap();
    let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
    assert_eq!(args, "-E\n--query\nEventType == 'ThreatDetected'\n");

    // One more detection: reported, and the query asks only for what follows the position.
    show("events-threats-more.txt");
    let (found, cursor) = events.poll().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].event_id, 2690);
    assert_eq!(found[0].file_name, "/srv/share/cong_van_so_14.doc");
    let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
    assert_eq!(args, "-E\n--query\nEventType == 'ThreatDetected' and EventId > '2671'\n");
    // Not committed (the agent died before storing it): reported again after a restart.
    let restarted = KeslEvents::new(&control, &cursor_file, Duration::from_secs(5));
    assert_eq!(restarted.poll().unwrap().0.len(), 1);
    restarted.commit(&cursor).unwrap();
    // Committed: a restarted reader reports nothing twice.
    let restarted = KeslEvents::new(&control, &cursor_file, Duration::from_secs(5));
    let (found, again) = restarted.poll().unwrap();
    assert!(found.is_empty());
    assert_eq!(again, EventCursor { event_id: 2690 });

    // A control program that fails keeps the position.
    std::fs::write(dir.path().join("sample"), "/nonexistent").unwrap();
    assert!(restarted.poll().is_err());
    assert_eq!(restarted.saved(), Some(EventCursor { event_id: 2690 }));
}
