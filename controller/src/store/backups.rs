//! The backup half of the store: runs (backup, check, restore) and the restore points they made.
//!
//! Invariants every backend keeps:
//! - a run finishes once: `finish_run` changes only a run still `running`;
//! - a check or restore that fails marks every restore point of its repository written before
//!   it `failed`, in the same transaction as the run's end; one that passes marks them good again.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupRun {
    pub id: String,
    pub kind: String,
    pub system: String,
    pub plan: String,
    pub host: String,
    pub repository: Option<String>,
    pub snapshot_id: Option<String>,
    pub requested_by: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub status: String,
    pub error: Option<String>,
    pub result: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotRecord {
    pub repository: String,
    pub snapshot_id: String,
    pub system: String,
    pub plan: String,
    pub run_id: String,
    pub host: String,
    pub time: i64,
    pub bytes_added: Option<i64>,
    pub files: Option<i64>,
    pub manifest_sha256: Option<String>,
    pub manifest_files: Option<i64>,
    pub verified: String,
    pub verified_at: Option<i64>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    pub status: String,
    pub error: Option<String>,
    pub result: Option<serde_json::Value>,
    pub at: i64,
    pub snapshots: Vec<SnapshotRecord>,
    /// (repository, snapshot id) that retention removed: no longer restore points.
    pub forgotten: Vec<(String, String)>,
    pub verdict: Option<Verdict>,
}

/// How a finished check or restore judged its repository (or one snapshot of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub repository: String,
    /// A restore judges the snapshot it restored; a check, everything up to `at`.
    pub snapshot_id: Option<String>,
    pub ok: bool,
    pub at: i64,
}

#[async_trait]
pub trait BackupStore: Send + Sync {
    async fn insert_run(&self, run: &BackupRun) -> Result<(), StoreError>;

    /// Ends a running run, with the snapshots it made and the verdict it gives, in one
    /// transaction. False when the run was not running (finished already).
    async fn finish_run(&self, id: &str, end: &RunEnd) -> Result<bool, StoreError>;

    async fn get_run(&self, id: &str) -> Result<Option<BackupRun>, StoreError>;

    /// Runs of a system (all systems when `None`), newest first.
    async fn list_runs(&self, system: Option<&str>, limit: i64) -> Result<Vec<BackupRun>, StoreError>;

    /// The run of this kind still running for a plan, if any.
    async fn running_run(&self, system: &str, plan: &str, kind: &str) -> Result<Option<BackupRun>, StoreError>;

    /// Restore points of a system, newest first.
    async fn list_snapshots(&self, system: &str) -> Result<Vec<SnapshotRecord>, StoreError>;

    /// The time of the newest restore point of each system that is not `failed`.
    async fn newest_good_snapshots(&self) -> Result<Vec<(String, String, i64)>, StoreError>;
}
