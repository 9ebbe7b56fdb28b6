//! What the driver's operations take and give back.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::manifest::Manifest;

/// The installed restic's version, from `restic version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResticVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// The whole line, e.g. `restic 0.14.0 compiled with go1.19.8 on linux/amd64`.
    pub raw: String,
}

/// What `init` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum InitOutcome {
    /// A new repository was made; restic's id for it when it printed one.
    Created { repository_id: Option<String> },
    /// A repository was already there and opens with the configured password.
    AlreadyInitialized,
}

/// One backup run.
#[derive(Debug, Clone, Default)]
pub struct BackupRequest {
    /// Files or directories to back up; relative ones are made absolute against the current
    /// directory, as restic does. Each must exist (checked before restic runs).
    pub paths: Vec<PathBuf>,
    /// Tags on the new snapshot. A tag must be non-empty and hold no comma.
    pub tags: Vec<String>,
    /// The host name recorded in the snapshot (`--host`); restic's default is the machine's.
    pub host: Option<String>,
    /// restic `--exclude` patterns.
    pub exclude: Vec<String>,
    /// Compute a [`Manifest`] of the backed-up files (SHA-256 of each) for checking restores.
    pub with_manifest: bool,
}

impl BackupRequest {
    pub fn new(paths: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        BackupRequest { paths: paths.into_iter().map(Into::into).collect(), ..BackupRequest::default() }
    }
}

/// One `status` message of `restic backup --json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BackupProgress {
    /// 0.0 ..= 1.0.
    pub percent_done: f64,
    pub total_files: u64,
    pub files_done: u64,
    pub total_bytes: u64,
    pub bytes_done: u64,
    pub error_count: u64,
    pub seconds_elapsed: Option<u64>,
    pub seconds_remaining: Option<u64>,
    pub current_files: Vec<String>,
}

/// An item restic could not read during a backup (an `error` message of `backup --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceError {
    /// The path restic was reading.
    pub item: String,
    /// The phase: `scan`, `archival`, …
    pub during: String,
    pub message: String,
}

/// The `summary` of a backup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupSummary {
    /// The new snapshot as restic reports it: restic 0.14 gives the short (8 hex digit) id,
    /// later versions the full one. Either works as an argument to `restore`.
    pub snapshot_id: String,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs_new: u64,
    pub dirs_changed: u64,
    pub dirs_unmodified: u64,
    pub data_blobs: u64,
    pub tree_blobs: u64,
    /// Bytes added to the repository (after deduplication).
    pub data_added: u64,
    pub total_files_processed: u64,
    pub total_bytes_processed: u64,
    pub total_duration: Duration,
    /// Items restic could not read (empty unless the backup was partial); the first 1000.
    pub unreadable: Vec<SourceError>,
    /// How many items restic could not read in all.
    pub unreadable_count: u64,
    /// Present when the request asked for one.
    pub manifest: Option<Manifest>,
}

/// Which snapshots an operation looks at; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct SnapshotFilter {
    /// Snapshots carrying all of these tags.
    pub tags: Vec<String>,
    pub host: Option<String>,
    /// Snapshots of exactly these paths.
    pub paths: Vec<PathBuf>,
}

/// One snapshot from `restic snapshots --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub id: String,
    pub short_id: String,
    #[serde(serialize_with = "serialize_rfc3339")]
    pub time: OffsetDateTime,
    pub paths: Vec<PathBuf>,
    pub tags: Vec<String>,
    pub hostname: String,
    pub username: Option<String>,
    pub parent: Option<String>,
}

fn serialize_rfc3339<S: serde::Serializer>(time: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let text = time.format(&time::format_description::well_known::Rfc3339).map_err(serde::ser::Error::custom)?;
    serializer.serialize_str(&text)
}

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreSummary {
    pub snapshot: String,
    pub target: PathBuf,
    /// From restic's summary where it prints one (0.16 and later); otherwise counted by walking
    /// the target directory afterwards, so files already there are counted too.
    pub files_restored: u64,
    pub bytes_restored: u64,
}

/// How many snapshots `forget` keeps; at least one field must be set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionPolicy {
    pub keep_last: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
}

impl RetentionPolicy {
    pub fn is_empty(&self) -> bool {
        self.keep_last.is_none()
            && self.keep_daily.is_none()
            && self.keep_weekly.is_none()
            && self.keep_monthly.is_none()
    }
}

/// One group restic's `forget` decided on (snapshots of one host and set of paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForgetGroup {
    pub host: String,
    pub paths: Vec<PathBuf>,
    pub tags: Vec<String>,
    pub kept: Vec<Snapshot>,
    pub removed: Vec<Snapshot>,
}

/// What `forget` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForgetOutcome {
    pub groups: Vec<ForgetGroup>,
    /// True when unreferenced data was pruned too.
    pub pruned: bool,
}

impl ForgetOutcome {
    pub fn removed_ids(&self) -> Vec<&str> {
        self.groups.iter().flat_map(|group| group.removed.iter().map(|snapshot| snapshot.id.as_str())).collect()
    }

    pub fn kept_ids(&self) -> Vec<&str> {
        self.groups.iter().flat_map(|group| group.kept.iter().map(|snapshot| snapshot.id.as_str())).collect()
    }
}
