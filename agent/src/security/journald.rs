//! `journald`: where the journal is kept and for how long, from `journald.conf` and its
//! drop-ins, with its disk usage and oldest entry from `journalctl`.
//!
//! Drop-ins are merged as systemd does: `*.conf` files from `/etc`, `/run`, `/usr/local/lib`
//! and `/usr/lib` `systemd/journald.conf.d/`, a name in an earlier directory hiding the same
//! name in a later one, applied in name order after the main file; the last assignment wins.

use std::collections::BTreeMap;
use std::fs;

use serde_json::{Value, json};

use super::{Host, RunError};

const MAIN: &[&str] = &["/etc/systemd/journald.conf", "/usr/lib/systemd/journald.conf"];
const DROPIN_DIRS: &[&str] = &[
    "/etc/systemd/journald.conf.d",
    "/run/systemd/journald.conf.d",
    "/usr/local/lib/systemd/journald.conf.d",
    "/usr/lib/systemd/journald.conf.d",
];
const JOURNAL_DIRS: &[&str] = &["/var/log/journal", "/run/log/journal"];

/// Only the first entry is wanted: journalctl is stopped after this much output.
const FIRST_ENTRY_BUDGET: usize = 4096;

pub fn collect(host: &Host) -> Result<Value, String> {
    let mut texts = Vec::new();
    for main in MAIN {
        if let Some(text) = host.read(main)? {
            texts.push(text);
            break;
        }
    }
    let mut dropins: BTreeMap<String, String> = BTreeMap::new();
    for dir in DROPIN_DIRS {
        for path in host.list(dir, ".conf") {
            let name = path.rsplit('/').next().unwrap_or_default().to_owned();
            dropins.entry(name).or_insert(path);
        }
    }
    for path in dropins.values() {
        if let Some(text) = host.read(path)? {
            texts.push(text);
        }
    }
    let settings = parse_journald_conf(texts.iter().map(String::as_str));
    let mut value = summarize(&settings, host.exists("/var/log/journal"));
    let mut problems: Vec<Value> = value.get("problems").and_then(Value::as_array).cloned().unwrap_or_default();

    let disk_usage = match host.run("journalctl", &["--disk-usage"]) {
        Ok(output) if output.success() => parse_disk_usage(&output.stdout),
        Ok(output) => {
            problems.push(json!(format!("journalctl --disk-usage: {}", output.failure())));
            None
        }
        Err(RunError::NotInstalled(_)) => None,
        Err(error) => {
            problems.push(json!(error.to_string()));
            None
        }
    }
    .or_else(|| journal_files_size(host));
    value["disk_usage_bytes"] = json!(disk_usage);

    let oldest = match host.run_within(
        "journalctl",
        &["-q", "--no-pager", "-o", "short-unix"],
        super::TIME_BUDGET,
        FIRST_ENTRY_BUDGET,
    ) {
        Ok(output) => parse_first_entry(&output.stdout),
        Err(RunError::NotInstalled(_)) => None,
        Err(error) => {
            problems.push(json!(error.to_string()));
            None
        }
    };
    value["oldest_entry_unix"] = json!(oldest);
    if !problems.is_empty() {
        value["problems"] = json!(problems);
    }
    Ok(value)
}

/// The `[Journal]` settings of the files given in order (the last assignment wins). An empty
/// assignment resets the setting to its default.
pub fn parse_journald_conf<'a>(texts: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
    let mut settings = BTreeMap::new();
    for text in texts {
        let mut in_journal = false;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                in_journal = line == "[Journal]";
                continue;
            }
            let Some((key, value)) = line.split_once('=') else { continue };
            if !in_journal {
                continue;
            }
            let (key, value) = (key.trim().to_owned(), value.trim().to_owned());
            if value.is_empty() {
                settings.remove(&key);
            } else {
                settings.insert(key, value);
            }
        }
    }
    settings
}

/// The output fields from the merged settings; `journal_dir_exists` decides what
/// `Storage=auto` (the default) means.
pub fn summarize(settings: &BTreeMap<String, String>, journal_dir_exists: bool) -> Value {
    let mut problems = Vec::new();
    let storage = settings.get("Storage").map_or("auto", String::as_str).to_ascii_lowercase();
    let persistent = storage == "persistent" || (storage == "auto" && journal_dir_exists);
    let retention = settings.get("MaxRetentionSec").and_then(|text| match parse_timespan(text) {
        Some(0) => None,
        Some(seconds) => Some(seconds),
        None => {
            problems.push(format!("MaxRetentionSec={text} is not a time span"));
            None
        }
    });
    let max_use = settings.get("SystemMaxUse").and_then(|text| {
        let bytes = parse_size(text);
        if bytes.is_none() {
            problems.push(format!("SystemMaxUse={text} is not a size"));
        }
        bytes
    });
    let mut value = json!({
        "storage": storage,
        "persistent": persistent,
        "max_retention_sec": retention,
        "system_max_use_bytes": max_use,
        "forward_to_syslog": settings.get("ForwardToSyslog").map(|v| is_true(v)),
        "compress": settings.get("Compress").is_none_or(|v| is_true(v)),
        "oldest_entry_unix": null,
        "disk_usage_bytes": null,
    });
    if !problems.is_empty() {
        value["problems"] = json!(problems);
    }
    value
}

fn is_true(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "yes" | "true" | "1" | "on")
}

/// A systemd time span in seconds ("90d", "3month", "1y 6M", "7776000" = seconds).
pub fn parse_timespan(text: &str) -> Option<u64> {
    const UNITS: &[(&[&str], f64)] = &[
        (&["us", "usec", "µs"], 1e-6),
        (&["ms", "msec"], 1e-3),
        (&["", "s", "sec", "second", "seconds"], 1.0),
        (&["m", "min", "minute", "minutes"], 60.0),
        (&["h", "hr", "hour", "hours"], 3600.0),
        (&["d", "day", "days"], 86_400.0),
        (&["w", "week", "weeks"], 604_800.0),
        (&["M", "month", "months"], 2_629_800.0),
        (&["y", "year", "years"], 31_557_600.0),
    ];
    let mut total = 0.0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = rest[number_end..].trim_start();
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c.is_whitespace()).unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        let factor = UNITS.iter().find(|(names, _)| names.contains(&unit)).map(|(_, factor)| *factor)?;
        total += number * factor;
        rest = rest[unit_end..].trim_start();
    }
    // Seconds fit in u64 for any sane span; float to int saturates.
    Some(total.round() as u64)
}

/// A size with an optional 1024-based suffix (K, M, G, T, P, E; "B" allowed) in bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().trim_end_matches('B');
    let (number, suffix) = match text.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => (&text[..at], c.to_ascii_uppercase()),
        _ => (text, ' '),
    };
    let exponent = " KMGTPE".find(suffix)?;
    let number: f64 = number.trim().parse().ok()?;
    let exponent = i32::try_from(exponent).ok()?;
    Some((number * 1024f64.powi(exponent)).round() as u64)
}

/// Parses `journalctl --disk-usage`: "Archived and active journals take up 8.0M in the file
/// system."
pub fn parse_disk_usage(text: &str) -> Option<u64> {
    let after = text.split("take up ").nth(1)?;
    parse_size(after.split_whitespace().next()?)
}

/// The time of the first line of `journalctl -o short-unix` ("1732680000.123456 host …").
pub fn parse_first_entry(text: &str) -> Option<i64> {
    let first = text.lines().find(|line| !line.starts_with("--"))?;
    let seconds = first.split_whitespace().next()?.split('.').next()?;
    seconds.parse().ok()
}

/// The size of the journal files, when journalctl cannot say.
fn journal_files_size(host: &Host) -> Option<u64> {
    let mut total = 0;
    let mut found = false;
    for dir in JOURNAL_DIRS {
        for machine in fs::read_dir(host.path(dir)).into_iter().flatten().flatten() {
            for file in fs::read_dir(machine.path()).into_iter().flatten().flatten() {
                if file.file_name().to_string_lossy().contains(".journal") {
                    found = true;
                    total += file.metadata().map_or(0, |metadata| metadata.len());
                }
            }
        }
    }
    found.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropins_override_the_main_file() {
        let main = "[Journal]\n#Storage=auto\nStorage=volatile\nMaxRetentionSec=1month\nSystemMaxUse=500M\n";
        let dropin = "# site policy\n[Journal]\nStorage=persistent\nMaxRetentionSec=90day\nForwardToSyslog=yes\n";
        let settings = parse_journald_conf([main, dropin]);
        let value = summarize(&settings, false);
        assert_eq!(value["storage"], "persistent");
        assert_eq!(value["persistent"], true);
        assert_eq!(value["max_retention_sec"], 7_776_000);
        assert_eq!(value["system_max_use_bytes"], 500 * 1024 * 1024);
        assert_eq!(value["forward_to_syslog"], true);
    }

    #[test]
    fn storage_auto_is_persistent_only_with_var_log_journal() {
        let settings = parse_journald_conf(["[Journal]\n"]);
        assert_eq!(summarize(&settings, true)["persistent"], true);
        assert_eq!(summarize(&settings, false)["persistent"], false);
        assert_eq!(summarize(&settings, false)["storage"], "auto");
        assert_eq!(summarize(&settings, false)["max_retention_sec"], Value::Null);
    }

    #[test]
    fn settings_outside_the_journal_section_and_resets_are_handled() {
        let settings = parse_journald_conf([
            "[Other]\nStorage=none\n[Journal]\nMaxRetentionSec=1y\n",
            "[Journal]\nMaxRetentionSec=\n",
        ]);
        assert!(settings.is_empty());
    }

    #[test]
    fn time_spans_and_sizes() {
        assert_eq!(parse_timespan("90d"), Some(7_776_000));
        assert_eq!(parse_timespan("1y"), Some(31_557_600));
        assert_eq!(parse_timespan("1h 30min"), Some(5400));
        assert_eq!(parse_timespan("3600"), Some(3600));
        assert_eq!(parse_timespan("6months"), Some(15_778_800));
        assert_eq!(parse_timespan("forever"), None);
        assert_eq!(parse_timespan(""), None);
        assert_eq!(parse_size("8.0M"), Some(8 * 1024 * 1024));
        assert_eq!(parse_size("0B"), Some(0));
        assert_eq!(parse_size("4G"), Some(4 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn a_bad_retention_is_a_named_problem() {
        let settings = parse_journald_conf(["[Journal]\nMaxRetentionSec=a while\n"]);
        let value = summarize(&settings, true);
        assert_eq!(value["max_retention_sec"], Value::Null);
        assert_eq!(value["problems"][0], "MaxRetentionSec=a while is not a time span");
    }

    #[test]
    fn journalctl_outputs() {
        let usage = "Archived and active journals take up 56.0M in the file system.\n";
        assert_eq!(parse_disk_usage(usage), Some(56 * 1024 * 1024));
        assert_eq!(parse_disk_usage("No journal files were found.\n"), None);
        let first =
            "1764223320.512345 web-01 kernel: Linux version 6.1.0-28-amd64\n1764223320.5 web-01 kernel: Command line\n";
        assert_eq!(parse_first_entry(first), Some(1_764_223_320));
        assert_eq!(parse_first_entry("-- No entries --\n"), None);
        assert_eq!(parse_first_entry(""), None);
    }
}
