//! The `backup` task: `pre` commands, a content manifest, then one snapshot in each repository.
//!
//! Order matters. `pre` commands run first because they may make what is backed up (a
//! `pg_dump` into a file under `paths`); then every path must exist, so a dump that was not
//! made fails the task by name instead of backing up an empty directory. The manifest is made
//! once, before any repository, and put inside every snapshot: a restore, on any host, finds it
//! there and checks each file against it. Repositories are then tried in the task's order; one
//! failing (wrong password, unreachable, locked by a live restic) does not stop the others.
//!
//! Idempotence: each call makes a new snapshot in each repository (restic deduplicates the
//! data) and replaces the plan's manifest file. A plan runs once at a time on an agent.

use std::path::{Path, PathBuf};
use std::time::Instant;

use plugins::restic::{
    BackupProgress, BackupRequest, BackupSummary, Manifest, Repository, Restic, ResticError, RetentionPolicy,
    SnapshotFilter,
};
use proto::v1::{BackupTask, CommandTask, Event, TaskResult};
use sha2::{Digest, Sha256};

use super::command::{self, Step};
use super::progress::{self, PROGRESS_EVERY, Throttle};
use super::report::{BackupReport, ManifestReport, RunReport, RunStatus, to_stdout};
use super::{Backups, Deadline, Layout, NotRun, check_name, exited, host_name, not_run, private_dir, unlocking};
use crate::state::write_file_atomic;
use crate::tasks::now_ms;

/// How long a `pre` command may run when neither it nor the task sets a limit.
const DEFAULT_PRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);
/// The tag every snapshot made by Mangrove carries.
const MANGROVE_TAG: &str = "mangrove";

pub fn run(backups: &Backups, task_id: &str, task: &BackupTask, emit: &dyn Fn(Event)) -> Result<TaskResult, NotRun> {
    let started_unix_ms = now_ms();
    validate(task).map_err(|error| not_run(1, error))?;
    let _claim = backups
        .claim_plan(&task.system, &task.plan)
        .ok_or_else(|| not_run(1, format!("a backup of {}/{} is already running", task.system, task.plan)))?;
    let restic = backups.restic()?;
    let deadline = Deadline::after_ms(task.timeout_ms);
    run_pre_commands(&task.pre, &deadline)?;
    let sources = existing_sources(&task.paths)?;
    let layout = backups.layout();
    let manifest = write_manifest(&layout, task, &sources)?;
    let host = host_name(&backups.state_dir);
    let run = Run {
        backups,
        restic,
        task_id,
        system_plan: format!("{}/{}", task.system, task.plan),
        request: backup_request(task, &sources, &manifest.path, &layout, &host),
        snapshots_of_plan: SnapshotFilter {
            tags: plan_tags(task),
            host: Some(host).filter(|h| !h.is_empty()),
            paths: Vec::new(),
        },
        retention: RetentionPolicy {
            keep_last: Some(task.keep_last).filter(|n| *n > 0),
            keep_daily: Some(task.keep_daily).filter(|n| *n > 0),
            keep_weekly: Some(task.keep_weekly).filter(|n| *n > 0),
            keep_monthly: Some(task.keep_monthly).filter(|n| *n > 0),
        },
        deadline,
        emit,
    };
    let runs: Vec<RunReport> = task.repositories.iter().map(|repository| run.back_up_into(repository)).collect();
    let ok = runs.iter().all(|r| r.status == RunStatus::Ok);
    let error = runs
        .iter()
        .filter(|r| !r.error.is_empty())
        .map(|r| format!("{}: {}", r.repository, r.error))
        .collect::<Vec<_>>()
        .join("; ");
    let report = BackupReport { runs, manifest: manifest.report };
    Ok(TaskResult { started_unix_ms, ..exited(ok, to_stdout(&report), error) })
}

/// Refuses what would fail later in a less clear way, before anything runs.
fn validate(task: &BackupTask) -> Result<(), String> {
    check_name("system", &task.system)?;
    check_name("plan", &task.plan)?;
    if task.paths.is_empty() {
        return Err("the backup names no path".to_string());
    }
    if let Some(relative) = task.paths.iter().find(|p| !Path::new(p).is_absolute()) {
        return Err(format!("the path to back up must be absolute: {relative:?}"));
    }
    if task.repositories.is_empty() {
        return Err("the backup names no repository".to_string());
    }
    let mut names: Vec<&str> = task.repositories.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!("repository {:?} is named twice", pair[0]));
    }
    if let Some(tag) = task.tags.iter().find(|t| t.is_empty() || t.contains([',', '\n'])) {
        return Err(format!("tag {tag:?} must be non-empty and hold no comma"));
    }
    if task.pre.iter().any(|c| c.program.is_empty()) {
        return Err("a pre command names no program".to_string());
    }
    Ok(())
}

/// Runs each `pre` command in order; the first that fails stops the backup.
fn run_pre_commands(pre: &[CommandTask], deadline: &Deadline) -> Result<(), NotRun> {
    for (index, cmd) in pre.iter().enumerate() {
        let what = format!("pre command {} ({})", index + 1, cmd.program);
        if deadline.passed() {
            return Err(not_run(-1, format!("{what} not started: {} passed", deadline.describe())));
        }
        let timeout = deadline.for_step(cmd.timeout_ms, DEFAULT_PRE_TIMEOUT);
        let outcome = command::run(&Step { program: &cmd.program, args: &cmd.args, env: &[], timeout });
        tracing::info!(program = cmd.program, exit_code = outcome.exit_code(), "pre command finished");
        if !outcome.succeeded() {
            return Err(not_run(
                outcome.exit_code(),
                format!("backup not started: {}", outcome.describe(&what, timeout)),
            ));
        }
    }
    Ok(())
}

/// The paths, each checked to exist (a dangling symbolic link counts: restic stores the link).
fn existing_sources(paths: &[String]) -> Result<Vec<PathBuf>, NotRun> {
    paths
        .iter()
        .map(PathBuf::from)
        .map(|path| match std::fs::symlink_metadata(&path) {
            Ok(_) => Ok(path),
            Err(_) => Err(not_run(1, ResticError::SourceMissing { path }.to_string())),
        })
        .collect()
}

/// The manifest file as written, and what the report says of it.
struct WrittenManifest {
    path: PathBuf,
    report: ManifestReport,
}

/// Hashes every file under `sources` and writes the manifest (0600) where the snapshot will
/// pick it up. It lists neither itself nor anything else of the agent's backup files.
fn write_manifest(layout: &Layout, task: &BackupTask, sources: &[PathBuf]) -> Result<WrittenManifest, NotRun> {
    let mut manifest = Manifest::build(sources).map_err(|e| not_run(1, e.to_string()))?;
    manifest.files.retain(|entry| !entry.path.starts_with(&layout.root));
    manifest.skipped.retain(|entry| !Path::new(&entry.path).starts_with(&layout.root));
    let bytes = serde_json::to_vec(&manifest).map_err(|e| not_run(1, format!("cannot encode the manifest: {e}")))?;
    let dir = layout.manifests();
    let path = dir.join(format!("{}-{}.json", task.system, task.plan));
    private_dir(&dir)
        .and_then(|()| write_file_atomic(&path, &bytes, 0o600))
        .map_err(|e| not_run(1, format!("cannot write the manifest {}: {e}", path.display())))?;
    let report = ManifestReport {
        files: manifest.files.len() as u64,
        bytes: manifest.total_bytes(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        path: path.to_string_lossy().into_owned(),
    };
    Ok(WrittenManifest { path, report })
}

fn plan_tags(task: &BackupTask) -> Vec<String> {
    vec![format!("system={}", task.system), format!("plan={}", task.plan)]
}

/// The driver's request: the sources plus the manifest file (unless a source holds it
/// already), the plan's tags, this host, and the agent's password files and caches left out.
fn backup_request(
    task: &BackupTask,
    sources: &[PathBuf],
    manifest: &Path,
    layout: &Layout,
    host: &str,
) -> BackupRequest {
    let under_a_source = |path: &Path| sources.iter().any(|source| path.starts_with(source));
    let mut paths = sources.to_vec();
    if !under_a_source(manifest) {
        paths.push(manifest.to_path_buf());
    }
    let mut tags = plan_tags(task);
    tags.push(MANGROVE_TAG.to_string());
    tags.extend(task.tags.iter().cloned());
    let exclude = layout
        .private_parts()
        .into_iter()
        .filter(|part| under_a_source(part))
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    BackupRequest { paths, tags, host: Some(host.to_string()).filter(|h| !h.is_empty()), exclude, with_manifest: false }
}

/// What every repository's run shares.
struct Run<'a> {
    backups: &'a Backups,
    restic: Restic,
    task_id: &'a str,
    system_plan: String,
    request: BackupRequest,
    /// Finds the new snapshot's full id, and what retention applies to.
    snapshots_of_plan: SnapshotFilter,
    retention: RetentionPolicy,
    deadline: Deadline,
    emit: &'a dyn Fn(Event),
}

impl Run<'_> {
    /// One repository's run, whatever happens, as its report.
    fn back_up_into(&self, repository: &proto::v1::Repository) -> RunReport {
        let started = Instant::now();
        let mut report = RunReport {
            repository: repository.name.clone(),
            snapshot_id: String::new(),
            status: RunStatus::Failed,
            error: String::new(),
            bytes_added: 0,
            files: 0,
            duration_ms: 0,
            forgotten: Vec::new(),
        };
        if self.deadline.passed() {
            report.error = format!("not started: {} passed", self.deadline.describe());
            return report;
        }
        match self.backups.open(&self.restic, repository) {
            Err(error) => report.error = error,
            Ok(repo) => match self.snapshot(&repo, &repository.name) {
                Ok(summary) => {
                    report.status = RunStatus::Ok;
                    self.fill(&mut report, &repo, &summary);
                    self.apply_retention(&mut report, &repo);
                }
                Err(error) => {
                    report.error = error.to_string();
                    if let ResticError::Partial { summary, .. } = &error {
                        report.status = RunStatus::Partial;
                        self.fill(&mut report, &repo, summary);
                    }
                }
            },
        }
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            task_id = self.task_id,
            plan = self.system_plan,
            repository = report.repository,
            status = ?report.status,
            snapshot_id = report.snapshot_id,
            duration_ms = report.duration_ms,
            "backup into repository finished"
        );
        report
    }

    /// `init` (idempotent), then `backup`, each retried once after `unlock` if locked.
    fn snapshot(&self, repo: &Repository, name: &str) -> Result<BackupSummary, ResticError> {
        unlocking(repo, || repo.init())?;
        let mut throttle = Throttle::starting(Instant::now(), PROGRESS_EVERY);
        let mut on_progress = |reading: &BackupProgress| {
            if throttle.ready(Instant::now()) {
                (self.emit)(progress::event(self.task_id, &self.system_plan, name, reading));
            }
        };
        unlocking(repo, || repo.backup(&self.request, &mut on_progress))
    }

    /// `forget --prune` of the plan's snapshots by the retention policy, after a good backup
    /// only (a failed one must not thin out what is left). A failure here leaves the backup
    /// good and says so in the report's error.
    fn apply_retention(&self, report: &mut RunReport, repo: &Repository) {
        if self.retention.is_empty() {
            return;
        }
        match unlocking(repo, || repo.forget(&self.retention, &self.snapshots_of_plan, true)) {
            Ok(outcome) => report.forgotten = outcome.removed_ids().into_iter().map(str::to_string).collect(),
            Err(error) => report.error = format!("backed up, but retention was not applied: {error}"),
        }
    }

    fn fill(&self, report: &mut RunReport, repo: &Repository, summary: &BackupSummary) {
        report.snapshot_id = self.full_snapshot_id(repo, &summary.snapshot_id);
        report.bytes_added = summary.data_added;
        report.files = summary.total_files_processed;
    }

    /// restic 0.14 names the new snapshot by its short id; the plan's snapshots on this host
    /// give the full one. Should that listing fail, the short id still restores.
    fn full_snapshot_id(&self, repo: &Repository, reported: &str) -> String {
        const FULL_ID_LEN: usize = 64;
        if reported.len() == FULL_ID_LEN {
            return reported.to_string();
        }
        match repo.snapshots(&self.snapshots_of_plan) {
            Ok(snapshots) => snapshots
                .iter()
                .rev()
                .find(|snapshot| snapshot.id.starts_with(reported))
                .map_or_else(|| reported.to_string(), |snapshot| snapshot.id.clone()),
            Err(error) => {
                tracing::warn!(%error, snapshot_id = reported, "cannot list snapshots for the full id; reporting the short one");
                reported.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> BackupTask {
        BackupTask {
            system: "erp".into(),
            plan: "nightly".into(),
            paths: vec!["/srv/erp".into()],
            repositories: vec![proto::v1::Repository { name: "local".into(), ..Default::default() }],
            ..Default::default()
        }
    }

    #[test]
    fn tasks_that_would_fail_obscurely_are_refused_up_front() {
        assert_eq!(validate(&task()), Ok(()));
        type Change = fn(&mut BackupTask);
        let cases: Vec<(Change, &str)> = vec![
            (|t| t.system = "../etc".into(), "system"),
            (|t| t.paths = vec!["relative/dir".into()], "must be absolute"),
            (|t| t.paths.clear(), "no path"),
            (|t| t.repositories.clear(), "no repository"),
            (|t| t.repositories.push(t.repositories[0].clone()), "named twice"),
            (|t| t.tags = vec!["a,b".into()], "comma"),
        ];
        for (change, expected) in cases {
            let mut bad = task();
            change(&mut bad);
            let error = validate(&bad).expect_err(expected);
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn the_manifest_travels_in_the_snapshot_and_the_agents_secrets_do_not() {
        let layout = Layout { root: PathBuf::from("/var/lib/mangrove/backup") };
        let manifest = layout.manifests().join("erp-nightly.json");
        let request = backup_request(&task(), &[PathBuf::from("/srv/erp")], &manifest, &layout, "db1");
        assert_eq!(request.paths, vec![PathBuf::from("/srv/erp"), manifest.clone()]);
        assert_eq!(request.tags, ["system=erp", "plan=nightly", "mangrove"]);
        assert_eq!(request.host.as_deref(), Some("db1"));
        assert!(request.exclude.is_empty());

        let whole_disk = backup_request(&task(), &[PathBuf::from("/var")], &manifest, &layout, "db1");
        assert_eq!(whole_disk.paths, vec![PathBuf::from("/var")]);
        assert_eq!(whole_disk.exclude, ["/var/lib/mangrove/backup/secrets", "/var/lib/mangrove/backup/cache"]);
    }
}
