//! `time_sync`: which NTP client runs, whether the clock is synchronised, and by how much it is
//! off, from `timedatectl show` (the kernel's synchronised flag, which every NTP daemon sets)
//! and `chronyc -n tracking` when chrony runs.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Host;

/// Process names of NTP clients and the service name reported for each.
const SERVICES: &[(&str, &str)] =
    &[("chronyd", "chrony"), ("systemd-timesyncd", "systemd-timesyncd"), ("ntpd", "ntpd"), ("openntpd", "ntpd")];

pub fn collect(host: &Host) -> Result<Value, String> {
    let processes = host.processes();
    let service = SERVICES
        .iter()
        .find(|(process, _)| processes.iter().any(|(_, name)| name == process))
        .map(|(_, service)| *service);
    let mut sources = Vec::new();
    let mut problems = Vec::new();

    let mut synchronized = None;
    let mut ntp_enabled = None;
    match host.run("timedatectl", &["show"]) {
        Ok(output) if output.success() => {
            let show = parse_timedatectl_show(&output.stdout);
            synchronized = show.get("NTPSynchronized").map(|value| value == "yes");
            ntp_enabled = show.get("NTP").map(|value| value == "yes");
            sources.push("timedatectl");
        }
        Ok(output) => problems.push(format!("timedatectl show: {}", output.failure())),
        Err(error) => problems.push(error.to_string()),
    }

    let mut offset_ms = None;
    if service == Some("chrony") {
        match host.run("chronyc", &["-n", "tracking"]) {
            Ok(output) if output.success() => match parse_chronyc_tracking(&output.stdout) {
                Ok(tracking) => {
                    synchronized = synchronized.or(Some(tracking.synchronized));
                    offset_ms = tracking.offset_ms;
                    sources.push("chronyc");
                }
                Err(error) => problems.push(error),
            },
            Ok(output) => problems.push(format!("chronyc tracking: {}", output.failure())),
            Err(error) => problems.push(error.to_string()),
        }
    }
    // With no NTP client running nothing keeps the clock in step.
    if service.is_none() && synchronized.is_none() {
        synchronized = Some(false);
    }
    let mut value = json!({
        "service": service,
        "synchronized": synchronized,
        "offset_ms": offset_ms,
        "ntp_enabled": ntp_enabled,
        "sources": sources,
    });
    if !problems.is_empty() {
        value["problems"] = json!(problems);
    }
    Ok(value)
}

/// Parses `timedatectl show`: `Name=value` lines.
pub fn parse_timedatectl_show(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

/// What `chronyc tracking` says.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracking {
    pub synchronized: bool,
    /// How far the system clock is from NTP time, positive when it is ahead.
    pub offset_ms: Option<f64>,
}

/// Parses `chronyc -n tracking`: `Name : value` lines; "Leap status : Not synchronised" means
/// unsynchronised, and "System time : 0.000123 seconds fast of NTP time" gives the offset.
pub fn parse_chronyc_tracking(text: &str) -> Result<Tracking, String> {
    let fields: BTreeMap<&str, &str> =
        text.lines().filter_map(|line| line.split_once(':')).map(|(name, value)| (name.trim(), value.trim())).collect();
    let leap = fields.get("Leap status").ok_or_else(|| "chronyc tracking printed no \"Leap status\"".to_owned())?;
    let offset_ms = fields.get("System time").and_then(|time| {
        let mut words = time.split_whitespace();
        let seconds: f64 = words.next()?.parse().ok()?;
        let sign = match words.nth(1)? {
            "fast" => 1.0,
            "slow" => -1.0,
            _ => return None,
        };
        // Microsecond precision is plenty for a policy threshold.
        Some((sign * seconds * 1_000_000.0).round() / 1000.0)
    });
    Ok(Tracking { synchronized: *leap != "Not synchronised", offset_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/security/parsers");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{DIR}/{name}")).expect("fixture exists")
    }

    #[test]
    fn chrony_synchronised_and_not() {
        let synced = parse_chronyc_tracking(&fixture("chronyc-tracking-synced.txt")).expect("parses");
        assert_eq!(synced, Tracking { synchronized: true, offset_ms: Some(0.0) });
        let unsynced = parse_chronyc_tracking(&fixture("chronyc-tracking-unsynced.txt")).expect("parses");
        assert!(!unsynced.synchronized);
    }

    #[test]
    fn a_slow_clock_has_a_negative_offset() {
        let text = fixture("chronyc-tracking-synced.txt")
            .replace("0.000000000 seconds fast of NTP time", "0.002345678 seconds slow of NTP time");
        let tracking = parse_chronyc_tracking(&text).expect("parses");
        assert_eq!(tracking.offset_ms, Some(-2.346));
    }

    #[test]
    fn garbage_tracking_output_is_an_error() {
        let error = parse_chronyc_tracking("506 Cannot talk to daemon\n").expect_err("no leap status");
        assert_eq!(error, "chronyc tracking printed no \"Leap status\"");
        let tracking = parse_chronyc_tracking("Leap status : Normal\nSystem time : lots\n").expect("leap is enough");
        assert_eq!(tracking.offset_ms, None);
    }

    #[test]
    fn timedatectl_show_fields() {
        let show =
            parse_timedatectl_show("Timezone=Asia/Ho_Chi_Minh\nLocalRTC=no\nCanNTP=yes\nNTP=yes\nNTPSynchronized=no\n");
        assert_eq!(show["NTP"], "yes");
        assert_eq!(show["NTPSynchronized"], "no");
        assert!(parse_timedatectl_show("\u{0}garbage").is_empty());
    }
}
