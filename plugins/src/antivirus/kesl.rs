//! Kaspersky Endpoint Security for Linux (KESL 11/12) through its documented command-line
//! status output:
//! - `kesl-control --app-info` prints `Label: value` lines (the "INI format" of the vendor's
//!   help; `--json` exists too): name, version, policy, licence, …, the last run of the
//!   `Scan_My_Computer` task, the last release date of the application databases, whether the
//!   databases are loaded, and the state of each protection task (File Threat Protection, …).
//! - `kesl-control --get-task-state <task>` prints the task's state: `Started`, `Starting`,
//!   `Stopped`, `Stopping`, and for scan tasks `Pausing`, `Suspended`, `Resuming`.
//!
//! The labels and states are the vendor's (KESL 11.2–12.1 help, "Viewing information about the
//! application" and "Commands for managing tasks"); the exact spacing and the date format of
//! the values are inferred (samples in `plugins/tests/fixtures/kesl/`, with their provenance in
//! the README there), so the parser is lenient: labels are matched case-insensitively, values
//! trimmed, and dates accepted as `YYYY-MM-DD HH:MM:SS`, ISO 8601 (`T`, optional `Z`) or
//! `DD.MM.YYYY HH:MM:SS`, read as UTC.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{AvError, AvStatus, Product};

/// The most output read from one `kesl-control` run.
const MAX_OUTPUT: u64 = 256 * 1024;

/// What `kesl-control --app-info` says that matters here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppInfo {
    pub name: String,
    pub version: String,
    /// "Last release date of application databases" as printed.
    pub databases_released: String,
    pub databases_released_unix: Option<i64>,
    /// "Application databases loaded": `Some(true)` for Yes.
    pub databases_loaded: Option<bool>,
    /// "Last run date of the Scan_My_Computer task" (the full scan), parsed.
    pub last_full_scan_unix: Option<i64>,
    /// "File Threat Protection": the real-time protection task's state as printed.
    pub file_threat_protection: String,
}

/// Parses `kesl-control --app-info` output. Never fails: lines that are not `Label: value` are
/// skipped, unknown labels ignored, unparsable dates left `None`.
pub fn parse_app_info(text: &str) -> AppInfo {
    let mut info = AppInfo::default();
    for line in text.lines() {
        let Some((label, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match label.trim().to_ascii_lowercase().as_str() {
            "name" => info.name = value.to_owned(),
            "version" => info.version = value.to_owned(),
            "last release date of application databases" => {
                info.databases_released = value.to_owned();
                info.databases_released_unix = parse_date(value);
            }
            "application databases loaded" => info.databases_loaded = yes_no(value),
            "last run date of the scan_my_computer task" => info.last_full_scan_unix = parse_date(value),
            "file threat protection" => info.file_threat_protection = value.to_owned(),
            _ => {}
        }
    }
    info
}

/// A task state as `--get-task-state` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Started,
    Starting,
    Stopped,
    Stopping,
    Pausing,
    Suspended,
    Resuming,
}

impl TaskState {
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word.trim().to_ascii_lowercase().as_str() {
            "started" | "running" => Self::Started,
            "starting" => Self::Starting,
            "stopped" | "not running" => Self::Stopped,
            "stopping" => Self::Stopping,
            "pausing" => Self::Pausing,
            "suspended" => Self::Suspended,
            "resuming" => Self::Resuming,
            _ => return None,
        })
    }

    /// Whether the task protects now (started, or starting up).
    pub fn protecting(self) -> bool {
        matches!(self, Self::Started | Self::Starting | Self::Resuming)
    }
}

/// Parses `kesl-control --get-task-state <task>` output: the value of its `State:` line, or a
/// bare state word on a line of its own. `None` if there is neither.
pub fn parse_task_state(text: &str) -> Option<TaskState> {
    for line in text.lines() {
        if let Some((label, value)) = line.split_once(':') {
            if label.trim().eq_ignore_ascii_case("state") {
                return TaskState::parse(value);
            }
        } else if let Some(state) = TaskState::parse(line) {
            return Some(state);
        }
    }
    None
}

fn yes_no(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "loaded" => Some(true),
        "no" | "false" | "not loaded" => Some(false),
        _ => None,
    }
}

/// Parses `2026-11-26 19:45:00`, `2026-11-26T19:45:00Z` or `26.11.2026 19:45:00` (UTC).
pub fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('Z').trim_end_matches(" UTC");
    let (date, clock) = text.split_once(['T', ' ']).unwrap_or((text, "00:00:00"));
    let nums = |s: &str, sep: char| -> Option<Vec<u32>> { s.split(sep).map(|n| n.trim().parse().ok()).collect() };
    let (y, mo, d) = match (nums(date, '-'), nums(date, '.')) {
        (Some(v), _) if v.len() == 3 => (v[0], v[1], v[2]),
        (_, Some(v)) if v.len() == 3 => (v[2], v[1], v[0]),
        _ => return None,
    };
    let hms = nums(clock.trim(), ':')?;
    let (h, mi, s) = match hms.as_slice() {
        [h, m, s] => (*h, *m, *s),
        [h, m] => (*h, *m, 0),
        _ => return None,
    };
    let month = time::Month::try_from(u8::try_from(mo).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?).ok()?;
    let t = time::Time::from_hms(u8::try_from(h).ok()?, u8::try_from(mi).ok()?, u8::try_from(s).ok()?).ok()?;
    Some(date.with_time(t).assume_utc().unix_timestamp())
}

/// The status from parsed `--app-info` (and, when that has no File Threat Protection line,
/// `--get-task-state File_Threat_Protection`).
pub fn status_from(info: &AppInfo, task: Option<TaskState>) -> AvStatus {
    let realtime = TaskState::parse(&info.file_threat_protection).or(task).map(TaskState::protecting);
    AvStatus {
        product: Some(Product::Kesl),
        version: info.version.clone(),
        // The service answered --app-info; without loaded databases it scans nothing.
        engine_running: info.databases_loaded != Some(false),
        realtime_protection: realtime,
        signature_version: info.databases_released.clone(),
        signature_time_unix: info.databases_released_unix,
        signature_time_source: if info.databases_released_unix.is_some() {
            "kesl-app-info".to_owned()
        } else {
            String::new()
        },
        last_full_scan_unix: info.last_full_scan_unix,
        detail: if info.databases_loaded == Some(false) {
            "Kaspersky Endpoint Security reports its application databases are not loaded".to_owned()
        } else {
            String::new()
        },
    }
}

/// Runs `program args…` with a timeout, reading at most [`MAX_OUTPUT`] bytes of stdout.
pub fn run_bounded(program: &Path, args: &[&str], timeout: Duration) -> Result<String, AvError> {
    run_limited(program, args, timeout, MAX_OUTPUT)
}

/// Runs `program args…` with a timeout, reading at most `limit` bytes of stdout (a program that
/// prints more fails: it cannot finish writing).
pub(crate) fn run_limited(program: &Path, args: &[&str], timeout: Duration, limit: u64) -> Result<String, AvError> {
    let fail = |why: String| AvError::Command { program: format!("{} {}", program.display(), args.join(" ")), why };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let Some(stdout) = child.stdout.take() else { return Err(fail("no stdout".into())) };
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.take(limit).read_to_end(&mut out);
        out
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("no answer within {} ms", timeout.as_millis())));
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(fail(format!("exited with {status}")));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// KESL's status through `kesl-control`. Never fails: a control program that does not answer
/// means the engine is not running (named in `detail`).
pub fn collect(control: &Path, timeout: Duration, _now_unix: i64) -> AvStatus {
    let info = match run_bounded(control, &["--app-info"], timeout) {
        Ok(text) => parse_app_info(&text),
        Err(error) => {
            return AvStatus {
                product: Some(Product::Kesl),
                realtime_protection: Some(false),
                detail: format!("Kaspersky Endpoint Security is not running: {error}"),
                ..AvStatus::default()
            };
        }
    };
    let task = if TaskState::parse(&info.file_threat_protection).is_none() {
        run_bounded(control, &["--get-task-state", "File_Threat_Protection"], timeout)
            .ok()
            .and_then(|t| parse_task_state(&t))
    } else {
        None
    };
    status_from(&info, task)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn dates_in_the_accepted_forms() {
        assert_eq!(parse_date("2026-11-26 19:45:00"), Some(1_795_722_300));
        assert_eq!(parse_date("2026-11-26T19:45:00Z"), Some(1_795_722_300));
        assert_eq!(parse_date("26.11.2026 19:45:00"), Some(1_795_722_300));
        assert_eq!(parse_date("26.11.2026 19:45"), Some(1_795_722_300));
        for bad in ["Never", "", "2026-13-01 00:00:00", "2026-11-26 25:00:00", "1.2", "::", "-1--"] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn task_states() {
        assert_eq!(parse_task_state("Name: File_Threat_Protection\nState: Started\n"), Some(TaskState::Started));
        assert_eq!(parse_task_state("Stopped\n"), Some(TaskState::Stopped));
        assert_eq!(parse_task_state("garbage\n:\n"), None);
        assert!(!TaskState::Suspended.protecting());
    }

    #[test]
    fn a_control_program_that_hangs_is_cut_off() {
        let started = Instant::now();
        let error = run_bounded(Path::new("/bin/sleep"), &["5"], Duration::from_millis(200)).unwrap_err();
        assert!(error.to_string().contains("no answer within 200 ms"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let status = collect(Path::new("/nonexistent/kesl-control"), Duration::from_millis(200), 0);
        assert_eq!(status.product, Some(Product::Kesl));
        assert!(!status.engine_running);
        assert!(status.detail.starts_with("Kaspersky Endpoint Security is not running"), "{}", status.detail);
    }
}
