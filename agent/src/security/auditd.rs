//! `auditd`: whether the Linux audit daemon is installed and running, how many rules the
//! kernel has loaded (`auditctl -l`; the rule files when auditctl cannot run), and the log
//! rotation settings of `auditd.conf` that decide how long audit records are kept.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Host, RunError};

const DAEMONS: &[&str] = &["/usr/sbin/auditd", "/sbin/auditd"];
const CONF: &str = "/etc/audit/auditd.conf";
const RULES: &str = "/etc/audit/audit.rules";
const RULES_DIR: &str = "/etc/audit/rules.d";
/// auditd.conf settings reported as they are written.
const CONF_KEYS: &[&str] =
    &["log_file", "max_log_file", "num_logs", "max_log_file_action", "space_left_action", "disk_full_action", "flush"];

pub fn collect(host: &Host) -> Result<Value, String> {
    let installed = host.any_exists(DAEMONS);
    if !installed {
        return Ok(json!({ "installed": false, "running": false, "enabled": null, "rules": 0, "rules_source": null }));
    }
    let mut problems = Vec::new();
    let mut running = host.running(&["auditd"]);
    let mut enabled = None;
    match host.run("auditctl", &["-s"]) {
        Ok(output) if output.success() => {
            let status = parse_auditctl_status(&output.stdout);
            enabled = status.get("enabled").and_then(|value| value.parse::<i64>().ok());
            running |= status.get("pid").and_then(|pid| pid.parse::<u32>().ok()).is_some_and(|pid| pid > 0);
        }
        Ok(output) => problems.push(format!("auditctl -s: {}", output.failure())),
        Err(error) => problems.push(error.to_string()),
    }
    let (rules, rules_source) = match host.run("auditctl", &["-l"]) {
        Ok(output) if output.success() => (count_rules(&output.stdout), "auditctl -l"),
        other => {
            match &other {
                Ok(output) => problems.push(format!("auditctl -l: {}", output.failure())),
                Err(RunError::NotInstalled(_)) => {}
                Err(error) => problems.push(error.to_string()),
            }
            // The rules that would be loaded: augenrules compiles rules.d into audit.rules.
            let mut text = host.read(RULES)?.unwrap_or_default();
            if text.trim().is_empty() {
                for path in host.list(RULES_DIR, ".rules") {
                    text.push_str(&host.read(&path)?.unwrap_or_default());
                    text.push('\n');
                }
            }
            (count_rules(&text), "rule files")
        }
    };
    let conf = host.read(CONF)?.map(|text| parse_auditd_conf(&text)).unwrap_or_default();
    let conf: BTreeMap<&str, &str> =
        CONF_KEYS.iter().filter_map(|&key| conf.get(key).map(|value| (key, value.as_str()))).collect();
    let mut value = json!({
        "installed": true,
        "running": running,
        "enabled": enabled,
        "rules": rules,
        "rules_source": rules_source,
        "config": conf,
    });
    if !problems.is_empty() {
        value["problems"] = json!(problems);
    }
    Ok(value)
}

/// Parses `auditctl -s`: `name value` lines.
pub fn parse_auditctl_status(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

/// Counts audit rules (`-a`, `-A`, `-w` lines) in `auditctl -l` output or a rules file; control
/// lines (`-D`, `-b`, `-f`, `-e`) and "No rules" are not rules.
pub fn count_rules(text: &str) -> usize {
    text.lines().map(str::trim).filter(|line| ["-a ", "-A ", "-w "].iter().any(|p| line.starts_with(p))).count()
}

/// Parses auditd.conf: `key = value` lines.
pub fn parse_auditd_conf(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditctl_status_and_rules() {
        let status = "enabled 1\nfailure 1\npid 612\nrate_limit 0\nbacklog_limit 8192\nlost 0\nbacklog 0\n\
                      backlog_wait_time 60000\nbacklog_wait_time_actual 0\nloginuid_immutable 0 unlocked\n";
        let status = parse_auditctl_status(status);
        assert_eq!(status["enabled"], "1");
        assert_eq!(status["pid"], "612");
        let rules = "-w /etc/passwd -p wa -k identity\n-w /etc/shadow -p wa -k identity\n\
                     -a always,exit -F arch=b64 -S adjtimex,settimeofday -F key=time-change\n";
        assert_eq!(count_rules(rules), 3);
        assert_eq!(count_rules("No rules\n"), 0);
        assert_eq!(count_rules("-D\n-b 8192\n-f 1\n--backlog_wait_time 60000\n-e 2\n"), 0);
        assert!(parse_auditctl_status("\u{0}\n\n").is_empty());
    }

    #[test]
    fn auditd_conf_settings() {
        let conf = parse_auditd_conf(
            "#\n# This file controls the configuration of the audit daemon\n#\n\nlocal_events = yes\nlog_file = /var/log/audit/audit.log\nmax_log_file = 8\nnum_logs = 5\nmax_log_file_action = ROTATE\n",
        );
        assert_eq!(conf["max_log_file"], "8");
        assert_eq!(conf["max_log_file_action"], "ROTATE");
    }
}
