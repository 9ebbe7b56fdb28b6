//! `collect` end to end: on the fixture tree (a Debian 12 web server with recorded command
//! outputs under `_commands/`), on an empty root, and on this machine.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/security/root");
/// 2026-11-27 00:00 UTC, the time the fixture's ages are computed against.
const NOW: i64 = 20_784 * 86_400;

fn fixture() -> Value {
    collect_from(ALL, Host::at(Path::new(FIXTURE), NOW))
}

fn account<'a>(accounts: &'a Value, name: &str) -> &'a Value {
    accounts.as_array().and_then(|all| all.iter().find(|a| a["name"] == name)).unwrap_or(&Value::Null)
}

#[test]
fn every_collector_reports_on_the_fixture_tree() {
    let facts = fixture();
    let object = facts.as_object().expect("an object");
    assert_eq!(object.len(), ALL.len());
    for name in ALL {
        assert!(facts[*name].get("error").is_none(), "{name}: {}", facts[*name]);
    }
}

#[test]
fn fixture_sshd_settings_come_from_the_config_files() {
    let sshd = &fixture()["sshd"];
    assert_eq!(sshd["source"], "sshd_config");
    assert_eq!(sshd["permitrootlogin"], "no", "the drop-in is read before the main file's settings");
    assert_eq!(sshd["passwordauthentication"], "no");
    assert_eq!(sshd["maxauthtries"], "4");
    assert_eq!(sshd["clientaliveinterval"], "300");
    assert_eq!(sshd["clientalivecountmax"], "0");
    assert_eq!(sshd["x11forwarding"], "no");
    assert_eq!(sshd["kbdinteractiveauthentication"], "no");
    assert_eq!(sshd["protocol"], "2");
    assert_eq!(sshd["match"][0]["criteria"], "Address 10.20.0.0/16");
    assert_eq!(sshd["match"][0]["settings"]["passwordauthentication"], "yes");
    assert!(sshd.get("sshd_t_error").is_none(), "sshd is not installed in the fixture: {sshd}");
}

#[test]
fn fixture_policy_accounts_and_logging() {
    let facts = fixture();
    assert_eq!(facts["login_defs"]["pass_max_days"], 90);
    assert_eq!(facts["login_defs"]["umask"], "027");
    assert_eq!(facts["pam"]["faillock"]["deny"], 5);
    assert_eq!(facts["pam"]["faillock"]["unlock_time"], 900);
    assert_eq!(facts["pam"]["pwquality"]["minlen"], 12);
    assert_eq!(facts["pam"]["pam_google_authenticator"], true);

    let accounts = &facts["accounts"];
    assert_eq!(account(accounts, "admin")["last_login_days"], 3);
    assert_eq!(account(accounts, "root")["last_login_days"], 200);
    assert_eq!(account(accounts, "root")["password_age_days"], 40);
    assert_eq!(account(accounts, "toor")["uid"], 0);
    assert!(!accounts.to_string().contains('$'), "no password hash leaves the agent");

    assert_eq!(
        facts["journald"],
        json!({
            "storage": "persistent", "persistent": true, "max_retention_sec": 31_557_600,
            "system_max_use_bytes": 2_147_483_648u64, "forward_to_syslog": null, "compress": true,
            "oldest_entry_unix": 1_764_223_320, "disk_usage_bytes": 58_720_256,
        })
    );
    let auditd = &facts["auditd"];
    assert_eq!((&auditd["installed"], &auditd["running"], &auditd["enabled"]), (&json!(true), &json!(true), &json!(1)));
    assert_eq!(auditd["rules"], 5);
    assert_eq!(auditd["rules_source"], "auditctl -l");
    assert_eq!(auditd["config"]["max_log_file_action"], "ROTATE");
    assert_eq!(facts["log_forwarding"]["rsyslog_remote"], true);
    assert_eq!(facts["log_forwarding"]["targets"], json!(["10.0.0.5:514"]));
    assert_eq!(facts["log_forwarding"]["rsyslog_running"], true);
    assert_eq!(facts["log_forwarding"]["journal_upload"], false);
}

#[test]
fn fixture_firewall_time_updates_sockets_and_antimalware() {
    let facts = fixture();
    let firewall = &facts["firewall"];
    assert_eq!((&firewall["backend"], &firewall["input_policy"]), (&json!("nftables"), &json!("drop")));
    assert_eq!(firewall["rules"], 8);
    assert_eq!(
        facts["time_sync"],
        json!({ "service": "chrony", "synchronized": true, "offset_ms": 0.412, "ntp_enabled": true,
                "sources": ["timedatectl", "chronyc"] })
    );
    let updates = &facts["updates"];
    assert_eq!(
        (&updates["manager"], &updates["pending"], &updates["security_pending"]),
        (&json!("apt"), &json!(132), &json!(81))
    );
    assert!(updates["last_update_unix"].is_i64(), "from update-success-stamp: {updates}");
    assert_eq!(
        facts["listening"],
        json!([
            {"proto": "tcp", "addr": "0.0.0.0", "port": 22, "process": "sshd", "pid": 800},
            {"proto": "tcp", "addr": "0.0.0.0", "port": 443, "process": "nginx", "pid": 1000},
            {"proto": "tcp", "addr": "127.0.0.1", "port": 25, "process": null, "pid": null},
            {"proto": "tcp", "addr": "::", "port": 22, "process": "sshd", "pid": 800},
            {"proto": "udp", "addr": "127.0.0.1", "port": 323, "process": "chronyd", "pid": 530},
        ])
    );
    let antimalware = &facts["antimalware"];
    assert_eq!((&antimalware["product"], &antimalware["running"]), (&json!("clamav"), &json!(true)));
    assert_eq!(antimalware["updater_running"], true);
    assert_eq!(antimalware["signature_age_days"], 1, "from the daily.cld header");
    assert_eq!(antimalware["signature_time_source"], "header");
}

#[test]
fn unknown_and_repeated_names() {
    let facts = collect_from(&["login_defs", "login_defs", "kernel_modules"], Host::at(Path::new(FIXTURE), NOW));
    let object = facts.as_object().expect("an object");
    assert_eq!(object.len(), 2);
    let error = facts["kernel_modules"]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("unknown collector \"kernel_modules\" (known: sshd, login_defs,"), "{error}");
}

#[test]
fn an_empty_root_gives_errors_or_empty_facts_quickly() {
    let empty = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let facts = collect(ALL, empty.path());
    assert!(started.elapsed() < Duration::from_secs(2), "no command runs under a fixture root");
    assert_eq!(facts["sshd"]["error"], "sshd is not installed (no sshd program and no /etc/ssh/sshd_config)");
    assert_eq!(facts["login_defs"]["error"], "/etc/login.defs does not exist");
    assert_eq!(facts["accounts"]["error"], "/etc/passwd does not exist");
    assert_eq!(facts["firewall"]["backend"], "none");
    assert_eq!(facts["auditd"]["installed"], false);
    assert_eq!(facts["updates"]["manager"], Value::Null);
    assert_eq!(facts["antimalware"]["installed"], false);
    assert_eq!(facts["time_sync"]["service"], Value::Null);
    assert_eq!(facts["time_sync"]["synchronized"], false);
    assert_eq!(facts["listening"]["error"], "neither ss nor /proc/net/tcp is available");
}

/// This machine, with real commands: every collector answers within its budgets, and the ones
/// that only read files every Linux host has do not fail.
#[test]
fn collect_all_on_this_machine() {
    let started = Instant::now();
    let facts = collect(ALL, Path::new("/"));
    let elapsed = started.elapsed();
    // The slowest budget is apt's 20 s; collectors run in parallel.
    assert!(elapsed < Duration::from_secs(25), "took {elapsed:?}");
    for name in ALL {
        let value = &facts[*name];
        assert!(value.is_object() || value.is_array(), "{name}: {value}");
    }
    for name in ["login_defs", "accounts", "listening", "journald", "time_sync", "auditd", "antimalware"] {
        assert!(facts[name].get("error").is_none(), "{name}: {}", facts[name]);
    }
    assert!(account(&facts["accounts"], "root")["uid"] == 0, "{}", facts["accounts"]);
    eprintln!("{}", serde_json::to_string_pretty(&facts).unwrap_or_default());
}

/// A root with only an sshd_config and, when given, a recorded `sshd -T`.
fn sshd_root(sshd_t: Option<(&str, i32)>) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    let write = |path: &str, text: &str| {
        let path = root.path().join(path);
        fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    };
    write("etc/ssh/sshd_config", "PermitRootLogin no\nMatch User backup\n\tPermitRootLogin yes\n");
    if let Some((output, code)) = sshd_t {
        write("_commands/sshd -T.out", output);
        write("_commands/sshd -T.code", &code.to_string());
    }
    root
}

#[test]
fn sshd_t_is_preferred_and_match_blocks_come_from_the_file() {
    let recorded = include_str!("../../tests/fixtures/security/parsers/sshd-T.txt");
    let root = sshd_root(Some((recorded, 0)));
    let sshd = &collect(&["sshd"], root.path())["sshd"];
    assert_eq!(sshd["source"], "sshd -T");
    assert_eq!(sshd["permitrootlogin"], "without-password", "sshd -T wins over the file");
    assert_eq!(sshd["match"][0]["criteria"], "User backup");
}

#[test]
fn a_failing_sshd_t_falls_back_to_the_file_and_says_why() {
    let root = sshd_root(Some(("", 255)));
    let sshd = &collect(&["sshd"], root.path())["sshd"];
    assert_eq!(sshd["source"], "sshd_config");
    assert_eq!(sshd["permitrootlogin"], "no");
    assert_eq!(sshd["sshd_t_error"], "sshd -T: exited with status 255");
}
