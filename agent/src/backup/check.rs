//! The `backup_check` task: `restic check`, reading a subset of the pack files when asked.
//!
//! A repository that cannot be opened (wrong password, unreachable) is reported as not ok with
//! the reason, like damage: either way its snapshots cannot be trusted to restore now.
//! Idempotent: it only reads (restic takes an exclusive lock while it runs).

use plugins::restic::ResticError;
use proto::v1::{BackupCheckTask, TaskResult};

use super::report::{CheckReport, to_stdout};
use super::{Backups, NotRun, exited, not_run, unlocking};
use crate::tasks::now_ms;

pub fn run(backups: &Backups, task: &BackupCheckTask) -> Result<TaskResult, NotRun> {
    let started_unix_ms = now_ms();
    let repository = task.repository.as_ref().ok_or_else(|| not_run(1, "the check names no repository".into()))?;
    let restic = backups.restic()?;
    let repo = backups.open(&restic, repository).map_err(|error| not_run(1, error))?;
    let subset = Some(task.read_data_subset.as_str()).filter(|s| !s.is_empty());
    let errors = match unlocking(&repo, || repo.check(subset)) {
        Ok(()) => Vec::new(),
        Err(ResticError::CheckFailed { errors, .. }) if !errors.is_empty() => errors,
        Err(error) => vec![error.to_string()],
    };
    let ok = errors.is_empty();
    tracing::info!(repository = repository.name, ok, errors = errors.len(), "repository check finished");
    let error = match errors.as_slice() {
        [] => String::new(),
        [first, ..] => format!("repository {} failed its check: {first}", repository.name),
    };
    let report = CheckReport { ok, errors };
    Ok(TaskResult { started_unix_ms, ..exited(ok, to_stdout(&report), error) })
}
