//! The `restore` task: a snapshot into a target directory, then (as asked) a check of every
//! file against the manifest recorded at backup time, a probe, and removal of the target.
//!
//! The restore may run on another host than the backup (a DR host whose state dir differs),
//! so the manifest is found in the restored tree, not by its path on the backed-up host: a
//! file `…/backup/manifests/<name>.json`; with several (a snapshot of another agent's state dir
//! too), the one named after the snapshot's `system=` and `plan=` tags.
//!
//! Guarantees: a target that is not empty is refused unless `force`, before anything is
//! written; a target too near the root (`/`, `/srv`) is refused, as cleanup removes it whole.
//! Idempotence: restoring again into the same target needs `force`.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use plugins::restic::{Manifest, Repository, SnapshotFilter, verify_restore};
use proto::v1::{CommandTask, RestoreTask, TaskResult};
use sha2::{Digest, Sha256};

use super::command::{self, Step};
use super::report::{MAX_MISMATCH_EXAMPLES, MismatchExample, RestoreReport, to_stdout};
use super::{Backups, Deadline, NotRun, exited, not_run, private_dir, unlocking};
use crate::tasks::now_ms;

/// How long a probe may run when neither it nor the task sets a limit.
const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(600);
/// Fewest normal components of a target path: `/var/tmp/drill` yes, `/srv` no.
const MIN_TARGET_DEPTH: usize = 2;
pub const MANIFEST_DIFFERS: &str = "manifest differs from the one recorded at backup";

pub fn run(backups: &Backups, task: &RestoreTask) -> Result<TaskResult, NotRun> {
    let started = Instant::now();
    let started_unix_ms = now_ms();
    let repository = task.repository.as_ref().ok_or_else(|| not_run(1, "the restore names no repository".into()))?;
    if task.snapshot_id.is_empty() {
        return Err(not_run(1, "the restore names no snapshot (an id or \"latest\")".into()));
    }
    let target = checked_target(&task.target).map_err(|error| not_run(1, error))?;
    refuse_unless_empty(&target, task.force).map_err(|error| not_run(1, error))?;
    let restic = backups.restic()?;
    let repo = backups.open(&restic, repository).map_err(|error| not_run(1, error))?;

    let deadline = Deadline::after_ms(task.timeout_ms);
    let mut findings = Findings::default();
    match restore(&repo, &task.snapshot_id, &target) {
        Ok(()) => {
            if task.verify {
                findings.verify(&repo, task, &target);
            }
            if let Some(probe) = task.probe.as_ref().filter(|p| !p.program.is_empty()) {
                findings.probe(probe, &target, &deadline);
            }
            // Only data that came back whole replaces what a host has.
            if findings.problems.is_empty() && findings.mismatches == 0 {
                for p in &task.place {
                    if let Err(problem) = place(&target, &p.from, &p.to) {
                        findings.problems.push(problem);
                        break;
                    }
                }
            }
        }
        Err(error) => findings.problems.push(error),
    }
    if task.cleanup {
        findings.clean_up(&target);
    }
    let ok = findings.ok(task.cleanup);
    tracing::info!(
        snapshot_id = task.snapshot_id,
        target = %target.display(),
        ok,
        files_checked = findings.files_checked,
        mismatches = findings.mismatches,
        "restore finished"
    );
    let error = findings.error();
    let report = RestoreReport {
        ok,
        files_checked: findings.files_checked,
        mismatches: findings.mismatches,
        mismatch_examples: findings.examples,
        duration_seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        probe_exit_code: findings.probe_exit_code,
        cleaned: findings.cleaned,
    };
    Ok(TaskResult { started_unix_ms, ..exited(ok, to_stdout(&report), error) })
}

/// An absolute path without `.` or `..`, deep enough that removing it whole is not a disaster.
fn checked_target(target: &str) -> Result<PathBuf, String> {
    let path = Path::new(target);
    if !path.is_absolute() {
        return Err(format!("the restore target must be an absolute path: {target:?}"));
    }
    if path.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir)) {
        return Err(format!("the restore target must not contain . or ..: {target:?}"));
    }
    let depth = path.components().filter(|c| matches!(c, Component::Normal(_))).count();
    if depth < MIN_TARGET_DEPTH {
        return Err(format!("the restore target {target} is too near the root (at least /a/b)"));
    }
    Ok(path.to_path_buf())
}

/// Refuses a target that holds anything (unless `force`) or is not a directory.
fn refuse_unless_empty(target: &Path, force: bool) -> Result<(), String> {
    match std::fs::symlink_metadata(target) {
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(format!("cannot look at the restore target {}: {error}", target.display())),
        Ok(metadata) if !metadata.is_dir() => {
            Err(format!("the restore target {} exists and is not a directory; nothing was restored", target.display()))
        }
        Ok(_) if force => Ok(()),
        Ok(_) => match std::fs::read_dir(target).map(|mut entries| entries.next().is_none()) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "the restore target {} is not empty; nothing was restored (set force to restore into it anyway)",
                target.display()
            )),
            Err(error) => Err(format!("cannot list the restore target {}: {error}", target.display())),
        },
    }
}

/// restic restore into `target` (made 0700 if missing: it will hold a copy of the data).
fn restore(repo: &Repository, snapshot: &str, target: &Path) -> Result<(), String> {
    private_dir(target).map_err(|e| format!("cannot create the restore target {}: {e}", target.display()))?;
    unlocking(repo, || repo.restore(snapshot, target, &[])).map(drop).map_err(|e| e.to_string())
}

/// Where a placement keeps what `to` held while the restored content moves in.
const REPLACED: &str = ".mangrove-replaced";

/// Puts the restored directory `from` (its path in the snapshot, found under `target`) in
/// place of the content of `to`. Data directories are often mount points, which cannot be
/// renamed, so the swap happens inside `to`, entry by entry, on its own filesystem: `to`'s
/// entries move into `<to>/.mangrove-replaced`, the restored entries move in, the old ones
/// are removed. `target` must lie inside `to` (the restore stages there) and is left alone.
/// If an entry cannot move in, the ones moved so far go back to the staging and the old
/// content comes back: `to` is never left half-replaced. A leftover of an interrupted
/// attempt is removed first. `to` takes the restored directory's permissions.
fn place(target: &Path, from: &str, to: &str) -> Result<(), String> {
    let relative = Path::new(from)
        .strip_prefix("/")
        .ok()
        .filter(|r| r.components().all(|c| matches!(c, Component::Normal(_))) && r.components().next().is_some())
        .ok_or_else(|| format!("a placement's source must be an absolute path without . or ..: {from:?}"))?;
    let to = checked_target(to).map_err(|e| format!("placement of {from}: {e}"))?;
    let staged = target.join(relative);
    if !staged.is_dir() {
        return Err(format!("the snapshot holds no directory {from}; {} was left as it was", to.display()));
    }
    let staging_root = target
        .strip_prefix(&to)
        .ok()
        .and_then(|r| r.components().next())
        .map(|c| to.join(c))
        .ok_or_else(|| format!("the restore must stage inside {} to put {from} there", to.display()))?;
    let aside = to.join(REPLACED);
    if aside.exists() {
        std::fs::remove_dir_all(&aside).map_err(|e| format!("cannot remove the leftover {}: {e}", aside.display()))?;
    }
    let err = |what: &str, p: &Path, e: std::io::Error| format!("cannot {what} {}: {e}", p.display());
    std::fs::create_dir(&aside).map_err(|e| err("create", &aside, e))?;
    let old: Vec<PathBuf> = entries(&to)?.into_iter().filter(|p| *p != aside && *p != staging_root).collect();
    for p in &old {
        let dest = aside.join(p.file_name().unwrap_or_default());
        std::fs::rename(p, &dest).map_err(|e| err("move aside", p, e))?;
    }
    let mut moved = Vec::new();
    for p in entries(&staged)? {
        let dest = to.join(p.file_name().unwrap_or_default());
        if let Err(e) = std::fs::rename(&p, &dest) {
            // Back as it was: the new entries to the staging, the old ones home.
            for (src, dst) in moved.iter().rev() {
                let _ = std::fs::rename(dst, src);
            }
            for o in &old {
                let _ = std::fs::rename(aside.join(o.file_name().unwrap_or_default()), o);
            }
            return Err(format!("{}; {} was left as it was", err("move in", &p, e), to.display()));
        }
        moved.push((p, dest));
    }
    if let Ok(meta) = std::fs::metadata(&staged)
        && let Err(e) = std::fs::set_permissions(&to, meta.permissions())
    {
        tracing::warn!(path = %to.display(), error = %e, "the restored directory's permissions were not applied");
    }
    if let Err(e) = std::fs::remove_dir_all(&aside) {
        tracing::warn!(path = %aside.display(), error = %e, "the replaced content was not removed");
    }
    tracing::info!(from, to = %to.display(), entries = moved.len(), "restored content moved into place");
    Ok(())
}

/// The entries of directory `dir`.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::read_dir(dir)
        .and_then(|rd| rd.map(|e| e.map(|e| e.path())).collect())
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))
}

/// What the restore found, step by step.
#[derive(Default)]
struct Findings {
    /// Steps that failed, each one sentence.
    problems: Vec<String>,
    files_checked: u64,
    mismatches: u64,
    examples: Vec<MismatchExample>,
    probe_exit_code: Option<i32>,
    cleaned: bool,
}

impl Findings {
    fn ok(&self, cleanup_asked: bool) -> bool {
        self.problems.is_empty() && self.mismatches == 0 && (self.cleaned || !cleanup_asked)
    }

    fn error(&self) -> String {
        let mut parts = self.problems.clone();
        if let Some(first) = self.examples.first() {
            parts.push(format!(
                "{} file(s) did not come back as backed up, first {}: {}",
                self.mismatches, first.path, first.why
            ));
        }
        parts.join("; ")
    }

    /// Checks the restored manifest against its recorded hash, then every file against it.
    fn verify(&mut self, repo: &Repository, task: &RestoreTask, target: &Path) {
        let found = match find_manifest(repo, &task.snapshot_id, target) {
            Ok(found) => found,
            Err(problem) => return self.problems.push(problem),
        };
        let bytes = match std::fs::read(&found) {
            Ok(bytes) => bytes,
            Err(e) => return self.problems.push(format!("cannot read the restored manifest {}: {e}", found.display())),
        };
        let recorded = task.manifest_sha256.trim().to_ascii_lowercase();
        if !recorded.is_empty() && hex::encode(Sha256::digest(&bytes)) != recorded {
            self.mismatches = 1;
            let path = original_path(target, &found);
            self.examples.push(MismatchExample { path, why: MANIFEST_DIFFERS.to_string() });
            return;
        }
        let manifest: Manifest = match serde_json::from_slice(&bytes) {
            Ok(manifest) => manifest,
            Err(e) => {
                return self.problems.push(format!("the restored manifest {} is not readable: {e}", found.display()));
            }
        };
        let outcome = verify_restore(&manifest, target);
        self.files_checked = outcome.files_checked;
        self.mismatches = outcome.mismatches.len() as u64;
        self.examples = outcome
            .mismatches
            .iter()
            .take(MAX_MISMATCH_EXAMPLES)
            .map(|m| MismatchExample { path: m.path.to_string_lossy().into_owned(), why: m.why.to_string() })
            .collect();
    }

    /// Runs the probe with `MANGROVE_RESTORE_DIR` set to the target.
    fn probe(&mut self, probe: &CommandTask, target: &Path, deadline: &Deadline) {
        let what = format!("probe ({})", probe.program);
        if deadline.passed() {
            self.problems.push(format!("{what} not started: {} passed", deadline.describe()));
            return;
        }
        let timeout = deadline.for_step(probe.timeout_ms, DEFAULT_PROBE_TIMEOUT);
        let env = [("MANGROVE_RESTORE_DIR", target.as_os_str())];
        let outcome = command::run(&Step { program: &probe.program, args: &probe.args, env: &env, timeout });
        self.probe_exit_code = Some(outcome.exit_code());
        if !outcome.succeeded() {
            self.problems.push(outcome.describe(&what, timeout));
        }
    }

    /// Removes the target and checks that it is gone.
    fn clean_up(&mut self, target: &Path) {
        if let Err(e) = std::fs::remove_dir_all(target)
            && e.kind() != ErrorKind::NotFound
        {
            self.problems.push(format!("cannot remove the restore target {}: {e}", target.display()));
        }
        self.cleaned = std::fs::symlink_metadata(target).is_err_and(|e| e.kind() == ErrorKind::NotFound);
        if !self.cleaned {
            self.problems.push(format!("the restore target {} is still there after cleanup", target.display()));
        }
    }
}

/// The path a restored file had on the backed-up host.
fn original_path(target: &Path, restored: &Path) -> String {
    let relative = restored.strip_prefix(target).unwrap_or(restored);
    Path::new("/").join(relative).to_string_lossy().into_owned()
}

/// The manifest in the restored tree: the only one, or the one named after the snapshot's plan.
fn find_manifest(repo: &Repository, snapshot: &str, target: &Path) -> Result<PathBuf, String> {
    let mut candidates = manifest_candidates(target);
    if candidates.len() <= 1 {
        return candidates.pop().ok_or_else(|| "no manifest in this snapshot".to_string());
    }
    let name = plan_manifest_name(repo, snapshot)?;
    let mut named: Vec<PathBuf> =
        candidates.iter().filter(|c| c.file_name().is_some_and(|f| f.to_string_lossy() == name)).cloned().collect();
    match named.len() {
        1 => named.pop().ok_or_else(|| "no manifest in this snapshot".to_string()),
        n => Err(format!("{} manifests in this snapshot and {n} of them named {name}", candidates.len())),
    }
}

/// `<system>-<plan>.json`, from the tags of the restored snapshot.
fn plan_manifest_name(repo: &Repository, snapshot: &str) -> Result<String, String> {
    let snapshots = repo.snapshots(&SnapshotFilter::default()).map_err(|e| e.to_string())?;
    let chosen = if snapshot == "latest" {
        snapshots.iter().max_by_key(|s| s.time)
    } else {
        snapshots.iter().find(|s| s.id.starts_with(snapshot))
    };
    let tags = chosen.map(|s| s.tags.as_slice()).unwrap_or_default();
    let tag = |key: &str| tags.iter().find_map(|t| t.strip_prefix(key)).map(str::to_string);
    match (tag("system="), tag("plan=")) {
        (Some(system), Some(plan)) => Ok(format!("{system}-{plan}.json")),
        _ => Err(format!("several manifests in snapshot {snapshot} and no system=/plan= tags to choose one")),
    }
}

/// Regular files `…/backup/manifests/*.json` under `root`; symbolic links are not followed.
fn manifest_candidates(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && is_manifest_path(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn is_manifest_path(path: &Path) -> bool {
    let named = |p: Option<&Path>, name: &str| p.and_then(Path::file_name).is_some_and(|n| n == name);
    let dir = path.parent();
    path.extension().is_some_and(|e| e == "json")
        && named(dir, "manifests")
        && named(dir.and_then(Path::parent), "backup")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_that_cleanup_could_not_safely_remove_are_refused() {
        for bad in ["relative/dir", "/", "/srv", "/var/tmp/../lib", "./var/tmp"] {
            assert!(checked_target(bad).is_err(), "{bad}");
        }
        assert_eq!(checked_target("/var/tmp/drill"), Ok(PathBuf::from("/var/tmp/drill")));
    }

    #[test]
    fn a_target_with_files_is_refused_without_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("t");
        assert_eq!(refuse_unless_empty(&target, false), Ok(()), "missing is fine");
        std::fs::create_dir(&target).expect("mkdir");
        assert_eq!(refuse_unless_empty(&target, false), Ok(()), "empty is fine");
        std::fs::write(target.join("keep.txt"), "x").expect("write");
        let refused = refuse_unless_empty(&target, false).expect_err("not empty");
        assert!(refused.contains("is not empty") && refused.contains("force"), "{refused}");
        assert_eq!(refuse_unless_empty(&target, true), Ok(()));
        assert!(refuse_unless_empty(&target.join("keep.txt"), true).is_err(), "a file is never a target");
    }

    #[test]
    fn manifests_are_found_by_their_place_in_any_state_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wanted = dir.path().join("var/lib/mangrove/backup/manifests/erp-nightly.json");
        let elsewhere = [
            dir.path().join("srv/backup/other.json"),
            dir.path().join("srv/manifests/x.json"),
            dir.path().join("var/lib/mangrove/backup/manifests/notes.txt"),
        ];
        for file in elsewhere.iter().chain([&wanted]) {
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(file, "{}").expect("write");
        }
        assert_eq!(manifest_candidates(dir.path()), vec![wanted.clone()]);
        assert_eq!(original_path(dir.path(), &wanted), "/var/lib/mangrove/backup/manifests/erp-nightly.json");
    }

    #[test]
    fn a_placed_directory_replaces_the_content_whole_and_a_missing_one_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("srv/site");
        // The restore stages inside the destination (a mount point cannot be renamed).
        let target = live.join(".mangrove-failback-d-1");
        let restored = target.join("var/lib/mangrove/recovered/srv/site");
        std::fs::create_dir_all(restored.join("sub")).expect("mkdir");
        std::fs::write(restored.join("index.html"), "from DR").expect("write");
        std::fs::write(restored.join("sub/new.txt"), "written at DR").expect("write");
        std::fs::write(live.join("index.html"), "old").expect("write");
        std::fs::write(live.join("deleted-at-dr.txt"), "gone").expect("write");
        let live_s = live.to_str().expect("utf-8");

        // Nothing under the snapshot path: an error, and the live directory is untouched.
        let missing = place(&target, "/var/lib/mangrove/recovered/srv/other", live_s);
        assert!(missing.expect_err("missing").contains("holds no directory"));
        assert_eq!(std::fs::read_to_string(live.join("index.html")).expect("read"), "old");
        for bad in ["relative", "/a/../b", "/"] {
            assert!(place(&target, bad, live_s).is_err(), "{bad}");
        }
        assert!(place(&target, "/var/lib/mangrove/recovered/srv/site", "/srv").is_err(), "too near the root");
        let elsewhere = dir.path().join("other/dir");
        std::fs::create_dir_all(&elsewhere).expect("mkdir");
        let outside = place(&target, "/var/lib/mangrove/recovered/srv/site", elsewhere.to_str().expect("utf-8"));
        assert!(outside.expect_err("staging outside").contains("must stage inside"));

        place(&target, "/var/lib/mangrove/recovered/srv/site", live_s).expect("placed");
        assert_eq!(std::fs::read_to_string(live.join("index.html")).expect("read"), "from DR");
        assert_eq!(std::fs::read_to_string(live.join("sub/new.txt")).expect("read"), "written at DR");
        assert!(!live.join("deleted-at-dr.txt").exists(), "the old content is replaced whole, not merged");
        assert!(!live.join(REPLACED).exists(), "the old content is removed");
        assert!(target.exists(), "the staging is left for the restore's clean-up");
        assert!(!restored.join("index.html").exists(), "moved, not copied");
    }
}
