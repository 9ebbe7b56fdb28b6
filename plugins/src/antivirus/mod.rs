//! Anti-malware status of the machine the agent runs on: which product protects it, whether its
//! engine runs, whether real-time (on-access) protection is on, how old its signatures are, when
//! the last full scan ran, and the threats it saw.
//!
//! Drivers, tried in this order by [`collect`]:
//! - **ClamAV** ([`clamav`]): clamd's own socket (unix or TCP, as `clamd.conf` says) answers
//!   `VERSION` and `STATS`; on-access settings come from `clamd.conf`; the signature version and
//!   build time come from the `VERSION` reply, or from the database files when clamd runs only
//!   custom databases (its reply then has no version part). Detections are read from clamd's
//!   log (`FOUND` lines) by [`logtail`].
//! - **Kaspersky Endpoint Security for Linux** ([`kesl`]): the documented `kesl-control
//!   --app-info` and `--get-task-state File_Threat_Protection` output. Detections are the
//!   `ThreatDetected` events of its event storage (`kesl-control -E --query`), read after the
//!   last event id reported by [`kesl_events`].
//! - **No product found**: neither is installed.
//!
//! The parsers are pure functions over `&str` that never panic (the fuzz target
//! `antivirus_parse` feeds them arbitrary bytes); the IO (sockets, files, commands) is bounded
//! in time and size.

pub mod clamav;
pub mod kesl;
pub mod kesl_events;
pub mod logtail;

use std::path::PathBuf;
use std::time::Duration;

/// The products this module recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Product {
    Clamav,
    Kesl,
}

impl Product {
    /// The name used in facts and policy input (`"clamav"`, `"kesl"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clamav => "clamav",
            Self::Kesl => "kesl",
        }
    }
}

/// What the anti-malware product of a machine reports. `product == None` means no product was
/// found (then every other field is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AvStatus {
    pub product: Option<Product>,
    /// The product's own version (`1.4.6` for ClamAV, `12.1.0.1297` for KESL); empty if unknown.
    pub version: String,
    /// Whether the scanning engine answers (clamd's socket; KESL's service and databases).
    pub engine_running: bool,
    /// Real-time (on-access) protection: `Some(true)` on, `Some(false)` off, `None` unknown.
    pub realtime_protection: Option<bool>,
    /// The signature database version (ClamAV's daily version number, KESL's release date as
    /// printed); empty if unknown.
    pub signature_version: String,
    /// When the signature databases were built or released (Unix seconds).
    pub signature_time_unix: Option<i64>,
    /// Where the signature time came from: `"version-reply"`, `"cvd-header"`,
    /// `"database-mtime"` or `"kesl-app-info"`; empty if unknown.
    pub signature_time_source: String,
    /// When the last full scan ran (Unix seconds), when the product says.
    pub last_full_scan_unix: Option<i64>,
    /// Why the engine is not running, or what could not be read (for the operator).
    pub detail: String,
}

impl AvStatus {
    /// The status when no product is installed.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whole days between the signature time and `now_unix` (0 for a time in the future).
    pub fn signature_age_days(&self, now_unix: i64) -> Option<i64> {
        self.signature_time_unix.map(|t| (now_unix.saturating_sub(t)).max(0) / 86_400)
    }
}

/// Where to look for the products. Defaults are Debian's and Kaspersky's install paths.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AvConfig {
    /// clamd's configuration file (default `/etc/clamav/clamd.conf`).
    pub clamd_conf: PathBuf,
    /// The KESL control program (default `/opt/kaspersky/kesl/bin/kesl-control`).
    pub kesl_control: PathBuf,
    /// Timeout for each connect/read/command (milliseconds, default 3000).
    pub timeout_ms: u64,
}

impl Default for AvConfig {
    fn default() -> Self {
        Self {
            clamd_conf: PathBuf::from("/etc/clamav/clamd.conf"),
            kesl_control: PathBuf::from("/opt/kaspersky/kesl/bin/kesl-control"),
            timeout_ms: 3000,
        }
    }
}

impl AvConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
}

/// The status of the machine's anti-malware product now: ClamAV if `clamd.conf` exists, else
/// KESL if its control program exists, else no product. Blocking (sockets and commands, each
/// bounded by the configured timeout); never fails: what cannot be read is named in `detail`.
pub fn collect(config: &AvConfig, now_unix: i64) -> AvStatus {
    if config.clamd_conf.exists() {
        return clamav::collect(&config.clamd_conf, config.timeout());
    }
    if config.kesl_control.exists() {
        return kesl::collect(&config.kesl_control, config.timeout(), now_unix);
    }
    AvStatus::none()
}

/// Why reading a product's status failed (named by what was read).
#[derive(Debug, thiserror::Error)]
pub enum AvError {
    #[error("cannot connect to clamd at {endpoint}")]
    Connect {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("clamd at {endpoint} did not answer {command}")]
    Exchange {
        endpoint: String,
        command: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("clamd at {endpoint} answered {command} with more than {limit} bytes")]
    TooLong { endpoint: String, command: &'static str, limit: usize },
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("clamd.conf {path} names no LocalSocket or TCPSocket")]
    NoSocket { path: String },
    #[error("{program} failed: {why}")]
    Command { program: String, why: String },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn signature_age_is_whole_days_and_never_negative() {
        let s = AvStatus { signature_time_unix: Some(1_000_000), ..AvStatus::default() };
        assert_eq!(s.signature_age_days(1_000_000 + 86_399), Some(0));
        assert_eq!(s.signature_age_days(1_000_000 + 3 * 86_400 + 5), Some(3));
        assert_eq!(s.signature_age_days(0), Some(0));
        assert_eq!(AvStatus::none().signature_age_days(5), None);
    }

    /// What the `antivirus_parse` fuzz target does, over fixed and pseudo-random inputs: the
    /// parsers give a value for any bytes, never a panic.
    #[test]
    fn parsers_survive_garbage() {
        let mut inputs: Vec<Vec<u8>> = [
            "",
            "ClamAV ",
            "ClamAV /",
            "ClamAV 1//",
            "ClamAV 1/2/Thu Nov 99 99:99:99 99999999999",
            "THREADS: live",
            "STATE:",
            ": FOUND",
            " -> : x FOUND",
            "x: (y) FOUND",
            "x: y() FOUND",
            "Version:",
            "State: ",
            "Last release date of application databases: 9999-99-99 99:99",
            "ClamAV-VDB::::::::::",
            "::::\n::",
            "EventType=ThreatDetected\nEventId=18446744073709551616\n",
            "EventType=\nEventId=1\n=\n",
            "EventId=1\nEventType=ThreatDetected\r\nEventId=2\r\nFileName=",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        const ALPHABET: &[u8] = b"ClamAV/: -> FOUND()\n\0.0123456789VERSIONState=EventTypeIdThreatDetected";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..200 {
            let bytes = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Mostly the characters the formats are made of.
                    ALPHABET[(state % ALPHABET.len() as u64) as usize]
                })
                .collect();
            inputs.push(bytes);
        }
        for data in inputs {
            let text = String::from_utf8_lossy(&data);
            let _ = clamav::parse_version(&text);
            let _ = clamav::parse_stats(&text);
            let _ = clamav::parse_ctime(&text);
            let _ = clamav::parse_cvd_header(&data);
            let _ = clamav::ClamdConf::parse(&text).endpoint();
            for line in text.lines() {
                let _ = logtail::parse_found_line(line);
            }
            let info = kesl::parse_app_info(&text);
            let _ = kesl::status_from(&info, kesl::parse_task_state(&text));
            let _ = kesl::parse_date(&text);
            let _ = kesl_events::after(Some(kesl_events::EventCursor::default()), kesl_events::parse_events(&text));
        }
    }

    #[test]
    fn no_product_when_nothing_is_installed() {
        let dir = tempfile::tempdir().unwrap();
        let config = AvConfig {
            clamd_conf: dir.path().join("clamd.conf"),
            kesl_control: dir.path().join("kesl-control"),
            timeout_ms: 100,
        };
        let status = collect(&config, 0);
        assert_eq!(status, AvStatus::none());
        assert!(!status.engine_running);
    }
}
