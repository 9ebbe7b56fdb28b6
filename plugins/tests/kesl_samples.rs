//! The KESL parsers against the samples in `tests/fixtures/kesl/` (written from the vendor's
//! documentation; the README there says where each came from and what is inferred), and a fake
//! `kesl-control` program that prints them, as the agent would run the real one.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};

use mangrove_plugins::antivirus::kesl::{self, TaskState};
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
