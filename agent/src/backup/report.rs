//! The JSON each backup task puts in its result's stdout, as the proto documents it. The field
//! names are a contract with the controller: renaming one is a protocol change.
//!
//! Text fields are always strings (`""` when there is nothing to say), so a reader never has
//! to tell a missing field from a null one; `probe_exit_code` is the one nullable field.

use serde::{Deserialize, Serialize};

/// A `backup` task's stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupReport {
    /// One entry per repository, in the task's order.
    pub runs: Vec<RunReport>,
    pub manifest: ManifestReport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Ok,
    /// A snapshot was made but some files could not be read.
    Partial,
    Failed,
}

/// The backup into one repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The repository's name from the task.
    pub repository: String,
    /// The full (64 hex digit) id where restic's list gave it, else restic's short id; `""`
    /// when no snapshot was made.
    pub snapshot_id: String,
    pub status: RunStatus,
    /// Why the run failed or was partial; `""` when ok.
    pub error: String,
    /// Bytes added to the repository after deduplication.
    pub bytes_added: u64,
    /// Files restic processed.
    pub files: u64,
    pub duration_ms: u64,
    /// Snapshots of the plan retention removed from this repository after the backup.
    pub forgotten: Vec<String>,
}

/// The content manifest made before the backup, stored inside every snapshot at `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestReport {
    pub files: u64,
    pub bytes: u64,
    /// SHA-256 (lowercase hex) of the manifest file's bytes; a restore checks its restored copy
    /// against it.
    pub sha256: String,
    /// Where the manifest file was on the backed-up host.
    pub path: String,
}

/// A `restore` task's stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreReport {
    /// The restore worked, and so did every check asked for (verify, probe, cleanup).
    pub ok: bool,
    pub files_checked: u64,
    /// Files (or the manifest itself) that did not come back as backed up.
    pub mismatches: u64,
    /// The first [`MAX_MISMATCH_EXAMPLES`] mismatches.
    pub mismatch_examples: Vec<MismatchExample>,
    /// The whole task: restore, verify, probe and cleanup.
    pub duration_seconds: f64,
    /// `null` when the task had no probe.
    pub probe_exit_code: Option<i32>,
    /// The target was removed and is gone (false when cleanup was not asked for).
    pub cleaned: bool,
}

/// Most mismatches a restore report lists.
pub const MAX_MISMATCH_EXAMPLES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MismatchExample {
    /// The path as backed up.
    pub path: String,
    pub why: String,
}

/// A `backup_check` task's stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub ok: bool,
    /// restic's own lines about the damage, or why the check could not run.
    pub errors: Vec<String>,
}

/// The report as stdout bytes. These types always serialise; should one ever not, the
/// message is valid JSON still.
pub fn to_stdout<T: Serialize>(report: &T) -> Vec<u8> {
    serde_json::to_vec(report).unwrap_or_else(|e| format!("{{\"report_error\":{:?}}}", e.to_string()).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_report_has_the_field_names_of_the_proto() {
        let report = BackupReport {
            runs: vec![RunReport {
                repository: "dr".into(),
                snapshot_id: "ab".into(),
                status: RunStatus::Partial,
                error: String::new(),
                bytes_added: 1,
                files: 2,
                duration_ms: 3,
                forgotten: vec!["cd".into()],
            }],
            manifest: ManifestReport { files: 4, bytes: 5, sha256: "ff".into(), path: "/m.json".into() },
        };
        let json: serde_json::Value = serde_json::from_slice(&to_stdout(&report)).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "runs": [{"repository": "dr", "snapshot_id": "ab", "status": "partial", "error": "",
                          "bytes_added": 1, "files": 2, "duration_ms": 3, "forgotten": ["cd"]}],
                "manifest": {"files": 4, "bytes": 5, "sha256": "ff", "path": "/m.json"}
            })
        );
    }

    #[test]
    fn restore_report_has_the_field_names_of_the_proto() {
        let report = RestoreReport {
            ok: false,
            files_checked: 3,
            mismatches: 1,
            mismatch_examples: vec![MismatchExample { path: "/a".into(), why: "missing from the restore".into() }],
            duration_seconds: 1.5,
            probe_exit_code: None,
            cleaned: true,
        };
        let json: serde_json::Value = serde_json::from_slice(&to_stdout(&report)).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"ok": false, "files_checked": 3, "mismatches": 1,
                "mismatch_examples": [{"path": "/a", "why": "missing from the restore"}],
                "duration_seconds": 1.5, "probe_exit_code": null, "cleaned": true})
        );
    }
}
