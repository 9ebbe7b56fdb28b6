//! Parsing what `restic --json` prints. Pure functions over text, checked against restic 0.14's
//! output; the fields later versions added are optional here, and unknown ones are ignored.
//!
//! restic 0.14 prints JSON for `backup`, `snapshots`, `forget` and `ls`, and plain text for
//! `init`, `check` and `restore`; later versions print JSON for those too, which is read when
//! present.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::types::{BackupProgress, ForgetGroup, ResticVersion, Snapshot, SourceError};

/// One line of `restic backup --json` (stdout, or stderr for `error`).
#[derive(Debug, Deserialize)]
#[serde(tag = "message_type")]
pub(crate) enum BackupLine {
    #[serde(rename = "status")]
    Status(RawStatus),
    #[serde(rename = "summary")]
    Summary(RawBackupSummary),
    #[serde(rename = "error")]
    Error(RawSourceError),
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawStatus {
    #[serde(default)]
    percent_done: f64,
    #[serde(default)]
    total_files: u64,
    #[serde(default)]
    files_done: u64,
    #[serde(default)]
    total_bytes: u64,
    #[serde(default)]
    bytes_done: u64,
    #[serde(default)]
    error_count: u64,
    seconds_elapsed: Option<u64>,
    seconds_remaining: Option<u64>,
    #[serde(default)]
    current_files: Vec<String>,
}

impl From<RawStatus> for BackupProgress {
    fn from(raw: RawStatus) -> Self {
        BackupProgress {
            percent_done: raw.percent_done,
            total_files: raw.total_files,
            files_done: raw.files_done,
            total_bytes: raw.total_bytes,
            bytes_done: raw.bytes_done,
            error_count: raw.error_count,
            seconds_elapsed: raw.seconds_elapsed,
            seconds_remaining: raw.seconds_remaining,
            current_files: raw.current_files,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawBackupSummary {
    #[serde(default)]
    pub files_new: u64,
    #[serde(default)]
    pub files_changed: u64,
    #[serde(default)]
    pub files_unmodified: u64,
    #[serde(default)]
    pub dirs_new: u64,
    #[serde(default)]
    pub dirs_changed: u64,
    #[serde(default)]
    pub dirs_unmodified: u64,
    #[serde(default)]
    pub data_blobs: u64,
    #[serde(default)]
    pub tree_blobs: u64,
    #[serde(default)]
    pub data_added: u64,
    #[serde(default)]
    pub total_files_processed: u64,
    #[serde(default)]
    pub total_bytes_processed: u64,
    #[serde(default)]
    pub total_duration: f64,
    /// Absent on a dry run.
    pub snapshot_id: Option<String>,
}

impl RawBackupSummary {
    pub(crate) fn duration(&self) -> Duration {
        Duration::try_from_secs_f64(self.total_duration).unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawSourceError {
    /// restic 0.14 marshals the Go error value itself (`{"Op":"open","Path":…,"Err":13}` for
    /// an `os.PathError`, `{}` for others); 0.17 sends `{"message": …}`.
    #[serde(default)]
    error: Value,
    #[serde(default)]
    during: String,
    #[serde(default)]
    item: String,
}

impl From<RawSourceError> for SourceError {
    fn from(raw: RawSourceError) -> Self {
        SourceError { message: error_message(&raw.error), during: raw.during, item: raw.item }
    }
}

fn error_message(error: &Value) -> String {
    if let Some(message) = error.get("message").and_then(Value::as_str) {
        return message.to_string();
    }
    if let Some(errno) = error.get("Err").and_then(Value::as_i64) {
        let op = error.get("Op").and_then(Value::as_str).unwrap_or("access");
        let os_error = i32::try_from(errno).map(std::io::Error::from_raw_os_error);
        return match os_error {
            Ok(os_error) => format!("{op}: {os_error}"),
            Err(_) => format!("{op}: error {errno}"),
        };
    }
    match error {
        Value::String(text) => text.clone(),
        Value::Null => "could not be read".to_string(),
        Value::Object(fields) if fields.is_empty() => "could not be read".to_string(),
        other => other.to_string(),
    }
}

/// A line that is not JSON (restic's plain-text lines) gives `None`.
pub(crate) fn parse_backup_line(line: &str) -> Option<BackupLine> {
    if !line.starts_with('{') {
        return None;
    }
    serde_json::from_str(line).ok()
}

/// An `error` message on stderr, as `backup --json` prints for unreadable items.
pub(crate) fn parse_source_error(line: &str) -> Option<SourceError> {
    match parse_backup_line(line)? {
        BackupLine::Error(raw) => Some(raw.into()),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawSnapshot {
    id: String,
    short_id: Option<String>,
    time: String,
    #[serde(default)]
    paths: Option<Vec<PathBuf>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    hostname: String,
    username: Option<String>,
    parent: Option<String>,
}

impl RawSnapshot {
    fn into_snapshot(self) -> Result<Snapshot, String> {
        let time = OffsetDateTime::parse(&self.time, &Rfc3339)
            .map_err(|error| format!("snapshot {} has an unreadable time {:?}: {error}", self.id, self.time))?;
        let short_id = self.short_id.unwrap_or_else(|| self.id.chars().take(8).collect());
        Ok(Snapshot {
            id: self.id,
            short_id,
            time,
            paths: self.paths.unwrap_or_default(),
            tags: self.tags.unwrap_or_default(),
            hostname: self.hostname,
            username: self.username.filter(|name| !name.is_empty()),
            parent: self.parent,
        })
    }
}

/// `restic snapshots --json`: one JSON array.
pub(crate) fn parse_snapshots(stdout: &str) -> Result<Vec<Snapshot>, String> {
    let json = json_array_line(stdout).ok_or("no JSON array in the output")?;
    let raw: Vec<RawSnapshot> = serde_json::from_str(json).map_err(|error| error.to_string())?;
    raw.into_iter().map(RawSnapshot::into_snapshot).collect()
}

#[derive(Debug, Deserialize)]
struct RawForgetGroup {
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    host: String,
    #[serde(default)]
    paths: Option<Vec<PathBuf>>,
    #[serde(default)]
    keep: Option<Vec<RawSnapshot>>,
    #[serde(default)]
    remove: Option<Vec<RawSnapshot>>,
}

/// `restic forget --json`: one JSON array of groups; with `--prune`, later restic versions
/// print prune's text after it, which is skipped.
pub(crate) fn parse_forget(stdout: &str) -> Result<Vec<ForgetGroup>, String> {
    let json = json_array_line(stdout).ok_or("no JSON array in the output")?;
    let raw: Vec<RawForgetGroup> = serde_json::from_str(json).map_err(|error| error.to_string())?;
    raw.into_iter()
        .map(|group| {
            let snapshots = |list: Option<Vec<RawSnapshot>>| -> Result<Vec<Snapshot>, String> {
                list.unwrap_or_default().into_iter().map(RawSnapshot::into_snapshot).collect()
            };
            Ok(ForgetGroup {
                host: group.host,
                paths: group.paths.unwrap_or_default(),
                tags: group.tags.unwrap_or_default(),
                kept: snapshots(group.keep)?,
                removed: snapshots(group.remove)?,
            })
        })
        .collect()
}

fn json_array_line(stdout: &str) -> Option<&str> {
    stdout.lines().map(str::trim).find(|line| line.starts_with('['))
}

/// The repository id `init` printed: `{"message_type":"initialized","id":…}` (0.15 and later)
/// or `created restic repository 9311142037 at /srv/repo` (0.14).
pub(crate) fn parse_init_id(line: &str) -> Option<String> {
    if line.starts_with('{') {
        let value: Value = serde_json::from_str(line).ok()?;
        return value.get("id").and_then(Value::as_str).map(str::to_string);
    }
    let rest = line.trim().strip_prefix("created restic repository ")?;
    rest.split_whitespace().next().map(str::to_string)
}

/// A `summary` line of `restore --json` (0.16 and later): (files, bytes) restored.
pub(crate) fn parse_restore_summary(line: &str) -> Option<(u64, u64)> {
    if !line.starts_with('{') {
        return None;
    }
    let value: Value = serde_json::from_str(line).ok()?;
    if value.get("message_type").and_then(Value::as_str) != Some("summary") {
        return None;
    }
    let files = value.get("files_restored").or_else(|| value.get("total_files")).and_then(Value::as_u64)?;
    let bytes = value.get("bytes_restored").or_else(|| value.get("total_bytes")).and_then(Value::as_u64).unwrap_or(0);
    Some((files, bytes))
}

/// An error reported by `check --json` (0.17 and later) on stdout.
pub(crate) fn parse_check_error(line: &str) -> Option<String> {
    if !line.starts_with('{') {
        return None;
    }
    let value: Value = serde_json::from_str(line).ok()?;
    if value.get("message_type").and_then(Value::as_str) != Some("error") {
        return None;
    }
    let message = value.get("message").or_else(|| value.get("error").and_then(|error| error.get("message")));
    Some(message.and_then(Value::as_str).map_or_else(|| value.to_string(), str::to_string))
}

/// The lines of `check`'s stderr that report damage; restic's retry chatter and its closing
/// `Fatal: repository contains errors` are left out.
pub(crate) fn check_error_lines<'a>(stderr_lines: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    stderr_lines
        .into_iter()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .filter(|line| !(line.starts_with("Load(") && line.contains("retrying after")))
        .filter(|line| !line.starts_with("Fatal: repository contains errors"))
        .filter(|line| !line.starts_with("using temporary cache") && !line.starts_with('{'))
        .map(str::to_string)
        .collect()
}

/// One node of `restic ls --json`: (path, size) of regular files; other lines give `None`.
pub(crate) fn parse_ls_file(line: &str) -> Option<(PathBuf, u64)> {
    #[derive(Deserialize)]
    struct Node {
        #[serde(rename = "type")]
        kind: Option<String>,
        path: Option<PathBuf>,
        #[serde(default)]
        size: u64,
        struct_type: Option<String>,
    }
    if !line.starts_with('{') {
        return None;
    }
    let node: Node = serde_json::from_str(line).ok()?;
    if node.struct_type.as_deref() != Some("node") || node.kind.as_deref() != Some("file") {
        return None;
    }
    Some((node.path?, node.size))
}

/// `restic version`: `restic 0.14.0 compiled with go1.19.8 on linux/amd64`.
pub(crate) fn parse_version(stdout: &str) -> Option<ResticVersion> {
    let line = stdout.lines().find(|line| line.starts_with("restic "))?.trim();
    let number = line.split_whitespace().nth(1)?;
    let mut parts = number.split(['.', '-']).map(|part| part.parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let patch = parts.next().and_then(Result::ok).unwrap_or(0);
    Some(ResticVersion { major, minor, patch, raw: line.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines printed by restic 0.14.0.
    const STATUS: &str = r#"{"message_type":"status","percent_done":0.11544912292210499,"total_files":3,"files_done":1,"total_bytes":5000012,"bytes_done":577247,"current_files":["/tmp/rt/src/big.bin","/tmp/rt/src/sub/báo cáo.txt"]}"#;
    const SUMMARY: &str = r#"{"message_type":"summary","files_new":3,"files_changed":0,"files_unmodified":0,"dirs_new":4,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":5,"tree_blobs":5,"data_added":5002600,"total_files_processed":3,"total_bytes_processed":5000012,"total_duration":0.285083597,"snapshot_id":"8d29a65f"}"#;
    const ERROR_014: &str = r#"{"message_type":"error","error":{"Op":"open","Path":"/tmp/nb/src/no.txt","Err":13},"during":"archival","item":"/tmp/nb/src/no.txt"}"#;
    const SNAPSHOTS: &str = r#"[{"time":"2026-11-27T08:27:42.058443565Z","tree":"31c6","paths":["/tmp/rt/src"],"hostname":"h1","username":"root","tags":["t1"],"id":"8d29a65f477c0e7a5180ee3daa021b0d48d1c21707e202a5c2bcc4f37e0817ec","short_id":"8d29a65f"}]"#;
    const FORGET: &str = r#"[{"tags":null,"host":"h1","paths":["/tmp/rt/src"],"keep":[{"time":"2026-11-27T08:27:51.156192515Z","parent":"b80b","tree":"e6be","paths":["/tmp/rt/src"],"hostname":"h1","username":"root","tags":["t1"],"id":"c575b80b5c0b","short_id":"c575b80b"}],"remove":[{"time":"2026-11-27T08:27:50.334626693+07:00","tree":"e6be","paths":["/tmp/rt/src"],"hostname":"h1","username":"root","tags":["t1"],"id":"b80b24464b86","short_id":"b80b2446"}],"reasons":[]}]"#;

    #[test]
    fn backup_lines_parse_into_progress_summary_and_errors() {
        let Some(BackupLine::Status(status)) = parse_backup_line(STATUS) else { panic!("status") };
        let progress = BackupProgress::from(status);
        assert_eq!((progress.files_done, progress.total_files, progress.bytes_done), (1, 3, 577247));
        assert!(progress.current_files.iter().any(|name| name.ends_with("báo cáo.txt")));

        let Some(BackupLine::Summary(summary)) = parse_backup_line(SUMMARY) else { panic!("summary") };
        assert_eq!(summary.snapshot_id.as_deref(), Some("8d29a65f"));
        assert_eq!((summary.files_new, summary.data_added, summary.total_bytes_processed), (3, 5002600, 5000012));
        assert_eq!(summary.duration().as_millis(), 285);

        let error = parse_source_error(ERROR_014).expect("error line");
        assert_eq!(error.item, "/tmp/nb/src/no.txt");
        assert_eq!(error.during, "archival");
        assert!(error.message.starts_with("open: Permission denied"), "{}", error.message);

        let newer = r#"{"message_type":"error","error":{"message":"open /x: permission denied"},"during":"archival","item":"/x"}"#;
        assert_eq!(parse_source_error(newer).expect("error line").message, "open /x: permission denied");
        assert!(parse_backup_line("Warning: at least one source file could not be read").is_none());
        assert!(matches!(
            parse_backup_line(r#"{"message_type":"verbose_status","action":"new"}"#),
            Some(BackupLine::Other)
        ));
    }

    #[test]
    fn snapshots_and_forget_parse() {
        let snapshots = parse_snapshots(SNAPSHOTS).expect("snapshots");
        assert_eq!(snapshots.len(), 1);
        assert_eq!(snapshots[0].short_id, "8d29a65f");
        assert_eq!(snapshots[0].paths, vec![PathBuf::from("/tmp/rt/src")]);
        assert_eq!(snapshots[0].time.year(), 2026);
        assert_eq!(parse_snapshots("[]\n").expect("empty"), vec![]);

        let groups = parse_forget(FORGET).expect("forget");
        assert_eq!(groups[0].kept.len(), 1);
        assert_eq!(groups[0].removed[0].short_id, "b80b2446");
        assert!(groups[0].tags.is_empty());
    }

    #[test]
    fn init_version_restore_and_check_text_parse() {
        assert_eq!(
            parse_init_id("created restic repository 9311142037 at /tmp/rt/repo").as_deref(),
            Some("9311142037")
        );
        assert_eq!(
            parse_init_id(r#"{"message_type":"initialized","id":"abc","repository":"/r"}"#).as_deref(),
            Some("abc")
        );
        let version = parse_version("restic 0.14.0 compiled with go1.19.8 on linux/amd64\n").expect("version");
        assert_eq!((version.major, version.minor, version.patch), (0, 14, 0));
        assert_eq!(
            parse_restore_summary(
                r#"{"message_type":"summary","total_files":4,"files_restored":4,"total_bytes":10,"bytes_restored":10}"#
            ),
            Some((4, 10))
        );
        let stderr = "pack de14: does not exist\nLoad(<data/de14>, 5000581, 0) returned error, retrying after 552ms: open x: no such file or directory\nFatal: repository contains errors\n";
        assert_eq!(check_error_lines(stderr.lines()), vec!["pack de14: does not exist".to_string()]);
    }
}
