//! A driver for the `restic` backup program: it runs the real binary (synchronously, meant for a
//! worker thread), reads its `--json` output into typed results and its failures into
//! [`ResticError`] kinds a caller can act on.
//!
//! ```text
//! let restic = Restic::locate(None)?;                      // PATH, then /usr/bin/restic
//! let repo = Repository::new(restic, RepositoryConfig::new("/srv/backup/db1", Secret::new(pw))
//!     .with_cache_dir("/var/cache/mangrove/restic"));
//! repo.init()?;                                            // idempotent
//! let summary = repo.backup(&request, |progress| { … })?;  // Err(Partial) on restic exit 3
//! repo.restore("latest", target, &[])?;
//! if let Some(manifest) = &summary.manifest { verify_restore(manifest, target).is_ok() }
//! ```
//!
//! Secrets: the password exists in this process as a [`Secret`] and, for the length of one run,
//! in a 0600 file inside a fresh 0700 directory named by `RESTIC_PASSWORD_FILE` (see `command`). It
//! is never on a command line, in an environment variable, in a log line or in an error message.
//!
//! Idempotence: `init` succeeds on an existing repository with the same password; `unlock`,
//! `check`, `snapshots` and `restore` (into the same target) can be repeated; each `backup`
//! makes a new snapshot (restic deduplicates the data); `forget` applies its policy again.
//! Cancellation: a run cannot be stopped from outside yet; a panic in a progress callback kills
//! restic, and a killed restic leaves a stale lock that `unlock` removes.

mod command;
mod config;
mod error;
mod json;
mod manifest;
mod types;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

pub use config::{RepositoryConfig, Secret, redact_location};
pub use error::{ResticError, STDERR_TAIL_BYTES};
pub use manifest::{
    Manifest, ManifestEntry, Mismatch, MismatchKind, SkippedEntry, VerifyOutcome, hash_file, restored_path,
    verify_restore,
};
pub use types::{
    BackupProgress, BackupRequest, BackupSummary, ForgetGroup, ForgetOutcome, InitOutcome, ResticVersion,
    RestoreSummary, RetentionPolicy, Snapshot, SnapshotFilter, SourceError,
};

use command::{Finished, MAX_SOURCE_ERRORS, failure, flag, run};
use json::BackupLine;

/// Where restic is looked for after `PATH`.
const FALLBACK_BINARIES: &[&str] = &["/usr/bin/restic", "/usr/local/bin/restic"];

/// The restic program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restic {
    binary: PathBuf,
}

impl Restic {
    /// `explicit` if given (it must exist), else `restic` on `PATH`, else `/usr/bin/restic` or
    /// `/usr/local/bin/restic`. Missing: [`ResticError::MissingBinary`], which says how to
    /// install it.
    pub fn locate(explicit: Option<&Path>) -> Result<Restic, ResticError> {
        if let Some(binary) = explicit {
            return if is_executable_file(binary) {
                Ok(Restic { binary: binary.to_path_buf() })
            } else {
                Err(ResticError::MissingBinary { searched: binary.display().to_string() })
            };
        }
        let on_path = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).map(|dir| dir.join("restic")).collect::<Vec<_>>())
            .unwrap_or_default();
        let candidates = on_path.into_iter().chain(FALLBACK_BINARIES.iter().map(PathBuf::from));
        match candidates.into_iter().find(|candidate| is_executable_file(candidate)) {
            Some(binary) => Ok(Restic { binary }),
            None => Err(ResticError::MissingBinary { searched: format!("PATH, {}", FALLBACK_BINARIES.join(", ")) }),
        }
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `restic version`, parsed.
    pub fn version(&self) -> Result<ResticVersion, ResticError> {
        let output = command::base_command(&self.binary)
            .arg("version")
            .output()
            .map_err(|source| ResticError::Spawn { binary: self.binary.clone(), source })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(ResticError::Other {
                operation: "version",
                location: "-".to_string(),
                exit_code: output.status.code(),
                stderr_tail: error::tail(&String::from_utf8_lossy(&output.stderr), STDERR_TAIL_BYTES),
            });
        }
        json::parse_version(&stdout).ok_or_else(|| ResticError::Output {
            operation: "version",
            location: "-".to_string(),
            detail: format!("unexpected version line {:?}", stdout.trim()),
        })
    }
}

fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// One restic repository, opened with its password for every operation.
#[derive(Debug, Clone)]
pub struct Repository {
    restic: Restic,
    config: RepositoryConfig,
}

impl Repository {
    pub fn new(restic: Restic, config: RepositoryConfig) -> Self {
        Repository { restic, config }
    }

    pub fn config(&self) -> &RepositoryConfig {
        &self.config
    }

    /// Creates the repository, or checks that the existing one opens with the password.
    /// Idempotent: a second call gives [`InitOutcome::AlreadyInitialized`]; an existing
    /// repository with another password gives [`ResticError::WrongPassword`].
    pub fn init(&self) -> Result<InitOutcome, ResticError> {
        let mut repository_id = None;
        let finished = self.run(&["init".into(), "--json".into()], |line| {
            if repository_id.is_none() {
                repository_id = json::parse_init_id(line);
            }
        })?;
        if finished.success() {
            return Ok(InitOutcome::Created { repository_id });
        }
        let stderr = finished.stderr.text().to_lowercase();
        let exists = ["config file already exists", "already initialized"].iter().any(|marker| stderr.contains(marker));
        if !exists {
            return Err(failure("init", &self.config, &finished));
        }
        let opened = self.run(&["cat".into(), "config".into()], |_| {})?;
        if opened.success() { Ok(InitOutcome::AlreadyInitialized) } else { Err(failure("init", &self.config, &opened)) }
    }

    /// Backs up `request.paths`, calling `on_progress` for each status restic prints.
    ///
    /// Every path must exist ([`ResticError::SourceMissing`] otherwise, before restic runs).
    /// With `with_manifest`, the files are hashed before restic runs and the manifest is then
    /// narrowed to what the snapshot holds (`restic ls`), so excluded files and files that
    /// changed in between are not listed. restic exit 3 (snapshot made, some items unreadable)
    /// gives [`ResticError::Partial`] carrying the summary.
    pub fn backup(
        &self,
        request: &BackupRequest,
        mut on_progress: impl FnMut(&BackupProgress),
    ) -> Result<BackupSummary, ResticError> {
        let paths = absolute_sources(&request.paths)?;
        let mut args: Vec<OsString> = vec!["backup".into(), "--json".into()];
        for tag in &request.tags {
            args.push(flag("tag", checked_tag(tag)?));
        }
        if let Some(host) = &request.host {
            args.push(flag("host", checked_value("host", host)?));
        }
        for pattern in &request.exclude {
            args.push(flag("exclude", checked_value("exclude pattern", pattern)?));
        }
        args.push("--".into());
        args.extend(paths.iter().map(OsString::from));
        let manifest = if request.with_manifest { Some(Manifest::build(&paths)?) } else { None };

        let mut summary = None;
        let finished = self.run(&args, |line| match json::parse_backup_line(line) {
            Some(BackupLine::Status(status)) => on_progress(&status.into()),
            Some(BackupLine::Summary(raw)) => summary = Some(raw),
            _ => {}
        })?;
        let exit_code = finished.exit_code();
        if exit_code != Some(0) && exit_code != Some(3) {
            return Err(failure("backup", &self.config, &finished));
        }
        let Some(raw) = summary else {
            return Err(self.output_error("backup", "restic printed no summary".to_string()));
        };
        let Some(snapshot_id) = raw.snapshot_id.clone() else {
            return Err(self.output_error("backup", "restic's summary names no snapshot".to_string()));
        };
        let manifest = match manifest {
            Some(mut manifest) => {
                manifest.retain_stored(&self.stored_files(&snapshot_id)?);
                Some(manifest)
            }
            None => None,
        };
        let summary = backup_summary(raw, snapshot_id, finished, manifest);
        if exit_code == Some(3) {
            return Err(ResticError::Partial { location: self.config.display_location(), summary: Box::new(summary) });
        }
        Ok(summary)
    }

    /// Snapshots matching the filter, oldest first.
    pub fn snapshots(&self, filter: &SnapshotFilter) -> Result<Vec<Snapshot>, ResticError> {
        let mut args: Vec<OsString> = vec!["snapshots".into(), "--json".into()];
        args.extend(filter_args(filter)?);
        let stdout = self.run_for_stdout("snapshots", &args)?;
        json::parse_snapshots(&stdout).map_err(|detail| self.output_error("snapshots", detail))
    }

    /// `restic check`, reading `read_data_subset` of the pack files too when given
    /// (`"1/5"`, `"10%"`; `"100%"` reads all). Damage gives [`ResticError::CheckFailed`] with
    /// restic's own lines.
    pub fn check(&self, read_data_subset: Option<&str>) -> Result<(), ResticError> {
        let mut args: Vec<OsString> = vec!["check".into(), "--json".into()];
        if let Some(subset) = read_data_subset {
            args.push(flag("read-data-subset", checked_value("read-data subset", subset)?));
        }
        let mut json_errors = Vec::new();
        let finished = self.run(&args, |line| json_errors.extend(json::parse_check_error(line)))?;
        if finished.success() {
            return Ok(());
        }
        let classified = failure("check", &self.config, &finished);
        let stderr = finished.stderr.text();
        let damaged = stderr.contains("repository contains errors") || !json_errors.is_empty();
        if !damaged || !matches!(classified, ResticError::Other { .. }) {
            return Err(classified);
        }
        let mut errors = json_errors;
        errors.extend(json::check_error_lines(finished.stderr.lines.iter().map(String::as_str)));
        Err(ResticError::CheckFailed { location: self.config.display_location(), errors })
    }

    /// Restores `snapshot` (an id, a short id or `"latest"`) into `target`; restic puts each
    /// file under `target` at its absolute path (`target/srv/data/a.txt`). `include` limits the
    /// restore to those restic patterns.
    pub fn restore(&self, snapshot: &str, target: &Path, include: &[String]) -> Result<RestoreSummary, ResticError> {
        let mut args: Vec<OsString> = vec!["restore".into(), "--json".into(), flag("target", target)];
        for pattern in include {
            args.push(flag("include", checked_value("include pattern", pattern)?));
        }
        args.push("--".into());
        args.push(checked_snapshot_id(snapshot)?.into());
        let mut reported = None;
        let finished = self.run(&args, |line| {
            if let Some(counts) = json::parse_restore_summary(line) {
                reported = Some(counts);
            }
        })?;
        if !finished.success() {
            return Err(failure("restore", &self.config, &finished));
        }
        let (files_restored, bytes_restored) = match reported {
            Some(counts) => counts,
            None => count_files(target),
        };
        Ok(RestoreSummary {
            snapshot: snapshot.to_string(),
            target: target.to_path_buf(),
            files_restored,
            bytes_restored,
        })
    }

    /// `restic forget` with the policy over the snapshots the filter selects, grouped as
    /// restic does by host and paths; `prune` also deletes the data no snapshot uses any more.
    /// `keep_daily = 1` keeps one snapshot per day, the newest of that day.
    pub fn forget(
        &self,
        policy: &RetentionPolicy,
        filter: &SnapshotFilter,
        prune: bool,
    ) -> Result<ForgetOutcome, ResticError> {
        if policy.is_empty() {
            return Err(ResticError::InvalidRequest("forget needs at least one keep rule".to_string()));
        }
        let mut args: Vec<OsString> = vec!["forget".into(), "--json".into()];
        let rules = [
            ("keep-last", policy.keep_last),
            ("keep-daily", policy.keep_daily),
            ("keep-weekly", policy.keep_weekly),
            ("keep-monthly", policy.keep_monthly),
        ];
        for (name, count) in rules {
            if let Some(count) = count {
                args.push(flag(name, count.to_string()));
            }
        }
        args.extend(filter_args(filter)?);
        if prune {
            args.push("--prune".into());
        }
        let stdout = self.run_for_stdout("forget", &args)?;
        let groups = json::parse_forget(&stdout).map_err(|detail| self.output_error("forget", detail))?;
        Ok(ForgetOutcome { groups, pruned: prune })
    }

    /// Removes stale locks: those of restic processes that died (same host, process gone) or
    /// are older than 30 minutes. Locks of live processes stay. Call it before a run when the
    /// previous run is known to have died.
    pub fn unlock(&self) -> Result<(), ResticError> {
        self.run_for_stdout("unlock", &["unlock".into()]).map(drop)
    }

    fn run(&self, args: &[OsString], on_line: impl FnMut(&str)) -> Result<Finished, ResticError> {
        run(&self.restic.binary, &self.config, args, on_line)
    }

    fn run_for_stdout(&self, operation: &'static str, args: &[OsString]) -> Result<String, ResticError> {
        let mut stdout = String::new();
        let finished = self.run(args, |line| {
            stdout.push_str(line);
            stdout.push('\n');
        })?;
        if finished.success() { Ok(stdout) } else { Err(failure(operation, &self.config, &finished)) }
    }

    /// Regular files (path → size) in a snapshot, from `restic ls --json`.
    fn stored_files(&self, snapshot_id: &str) -> Result<HashMap<PathBuf, u64>, ResticError> {
        let mut files = HashMap::new();
        let args: Vec<OsString> =
            vec!["ls".into(), "--json".into(), "--".into(), checked_snapshot_id(snapshot_id)?.into()];
        let finished = self.run(&args, |line| files.extend(json::parse_ls_file(line)))?;
        if finished.success() { Ok(files) } else { Err(failure("ls", &self.config, &finished)) }
    }

    fn output_error(&self, operation: &'static str, detail: String) -> ResticError {
        ResticError::Output { operation, location: self.config.display_location(), detail }
    }
}

fn backup_summary(
    raw: json::RawBackupSummary,
    snapshot_id: String,
    finished: Finished,
    manifest: Option<Manifest>,
) -> BackupSummary {
    let total_duration = raw.duration();
    let mut unreadable = finished.stderr.source_errors;
    unreadable.truncate(MAX_SOURCE_ERRORS);
    BackupSummary {
        snapshot_id,
        files_new: raw.files_new,
        files_changed: raw.files_changed,
        files_unmodified: raw.files_unmodified,
        dirs_new: raw.dirs_new,
        dirs_changed: raw.dirs_changed,
        dirs_unmodified: raw.dirs_unmodified,
        data_blobs: raw.data_blobs,
        tree_blobs: raw.tree_blobs,
        data_added: raw.data_added,
        total_files_processed: raw.total_files_processed,
        total_bytes_processed: raw.total_bytes_processed,
        total_duration,
        unreadable,
        unreadable_count: finished.stderr.source_error_count,
        manifest,
    }
}

/// The paths made absolute, each checked to exist (a dangling symbolic link counts: restic
/// stores the link).
fn absolute_sources(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ResticError> {
    if paths.is_empty() {
        return Err(ResticError::InvalidRequest("a backup needs at least one path".to_string()));
    }
    paths
        .iter()
        .map(|path| {
            let absolute = std::path::absolute(path).map_err(|source| ResticError::Io {
                what: format!("cannot make {} absolute", path.display()),
                source,
            })?;
            match fs::symlink_metadata(&absolute) {
                Ok(_) => Ok(absolute),
                Err(_) => Err(ResticError::SourceMissing { path: absolute }),
            }
        })
        .collect()
}

fn filter_args(filter: &SnapshotFilter) -> Result<Vec<OsString>, ResticError> {
    let mut args = Vec::new();
    if !filter.tags.is_empty() {
        let tags = filter.tags.iter().map(|tag| checked_tag(tag)).collect::<Result<Vec<_>, _>>()?;
        args.push(flag("tag", tags.join(",")));
    }
    if let Some(host) = &filter.host {
        args.push(flag("host", checked_value("host", host)?));
    }
    for path in &filter.paths {
        args.push(flag("path", path));
    }
    Ok(args)
}

fn checked_tag(tag: &str) -> Result<&str, ResticError> {
    if tag.is_empty() || tag.contains(',') || tag.contains('\n') {
        return Err(ResticError::InvalidRequest(format!("tag {tag:?} must be non-empty and hold no comma")));
    }
    Ok(tag)
}

fn checked_value<'a>(what: &str, value: &'a str) -> Result<&'a str, ResticError> {
    if value.is_empty() || value.contains('\n') || value.contains('\0') {
        return Err(ResticError::InvalidRequest(format!("{what} {value:?} must be one non-empty line")));
    }
    Ok(value)
}

/// `latest` or 1 to 64 hex digits: restic's forms of a snapshot id.
fn checked_snapshot_id(snapshot: &str) -> Result<&str, ResticError> {
    let is_id = (1..=64).contains(&snapshot.len()) && snapshot.bytes().all(|byte| byte.is_ascii_hexdigit());
    if snapshot == "latest" || is_id {
        Ok(snapshot)
    } else {
        Err(ResticError::InvalidRequest(format!("{snapshot:?} is not a snapshot id nor \"latest\"")))
    }
}

/// Regular files and their bytes under `root`, for restic versions that print no restore
/// summary.
fn count_files(root: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(metadata) = entry.path().symlink_metadata() else { continue };
            if metadata.is_dir() {
                pending.push(entry.path());
            } else if metadata.is_file() {
                files += 1;
                bytes += metadata.len();
            }
        }
    }
    (files, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_values_that_restic_would_misread_are_refused() {
        assert!(checked_snapshot_id("latest").is_ok());
        assert!(checked_snapshot_id("8d29a65f").is_ok());
        assert!(checked_snapshot_id("--target=/").is_err());
        assert!(checked_snapshot_id("").is_err());
        assert!(checked_tag("daily").is_ok());
        assert!(checked_tag("a,b").is_err());
        assert!(checked_tag("").is_err());
        assert!(checked_value("host", "db1\n--x").is_err());
    }

    #[test]
    fn flags_keep_values_attached() {
        assert_eq!(flag("host", "-evil"), OsString::from("--host=-evil"));
    }
}
