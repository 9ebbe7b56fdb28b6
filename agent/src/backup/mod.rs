//! The agent's side of backups: the `backup`, `restore` and `backup_check` tasks, run with the
//! restic driver (`plugins::restic`).
//!
//! The driver is synchronous, so each task runs whole on one blocking thread (the caller's
//! `spawn_blocking`); the functions here never touch the async runtime. They turn everything
//! that happens into a [`TaskResult`]: `Failed` when nothing was done (restic missing, an
//! invalid task, a failing `pre` command, a missing source path, a plan already running),
//! `Exited` with the JSON documented in the proto (and in [`report`]) once restic ran.
//!
//! Layout under the agent's state dir, kept on the agent's own disk (not `/tmp`, which may be
//! a small tmpfs or shared):
//!
//! ```text
//! <state-dir>/backup/manifests/<system>-<plan>.json   0600, the content manifest of the last
//!                                                     backup of that plan; it travels inside
//!                                                     the snapshot too
//! <state-dir>/backup/cache/<repository>/              restic's cache for that repository
//! <state-dir>/backup/secrets/                         0700; the driver's password files live
//!                                                     here for the length of one restic run
//! ```
//!
//! Passwords reach the agent only in the task and go to restic only through the driver's
//! password file; they are never in a result, an event, a log line or a file that outlives a
//! run. Results are scrubbed of them once more before they leave ([`redact`]).
//!
//! Idempotence: none of these tasks is run twice for one task id (the caller's journal). A
//! backup repeated under a new id makes new snapshots (restic deduplicates); a restore into
//! the same target needs `force` the second time; a check can be repeated freely.
//! Cancellation: a restic run cannot be stopped from outside; the task's timeout is checked
//! between steps (before each `pre` command and each repository), so a step that has started
//! runs to its end.

mod check;
mod command;
mod progress;
pub mod report;
mod restore;
mod snapshot;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use plugins::restic::{Repository, RepositoryConfig, Restic, ResticError, Secret};
use proto::v1::{BackupCheckTask, BackupTask, Event, RestoreTask, TaskResult, TaskStatus};

use crate::state::StateDir;
use crate::tasks::now_ms;

/// Passwords shorter than this are not scrubbed from results: replacing a short common string
/// would garble the JSON, and nothing here prints a password in the first place.
const MIN_REDACTED_PASSWORD_BYTES: usize = 8;

/// Runs backup tasks for one agent; shared by all its tasks.
pub struct Backups {
    state_dir: PathBuf,
    /// The restic binary to use instead of looking it up (tests).
    restic_binary: Option<PathBuf>,
    /// `<system>/<plan>` of the backups running now: a plan runs once at a time.
    running_plans: Mutex<HashSet<String>>,
}

impl Backups {
    /// `state_dir` is made absolute: the manifest's path is stored in snapshots.
    pub fn new(state_dir: PathBuf) -> Backups {
        let state_dir = std::path::absolute(&state_dir).unwrap_or(state_dir);
        // Nothing runs yet: a password file still here was left by a run the agent died in. Its
        // restic may outlive it, holding the repository's lock and writing a snapshot nobody
        // will record: stop it, then remove the file (the next run clears the stale lock).
        let stale = state_dir.join("backup").join("secrets");
        stop_orphaned_restic(&stale);
        if stale.exists()
            && let Err(e) = std::fs::remove_dir_all(&stale)
        {
            tracing::error!(dir = %stale.display(), error = %e, "cannot remove password files left by an earlier run");
        }
        Backups { state_dir, restic_binary: None, running_plans: Mutex::new(HashSet::new()) }
    }

    /// Looks for restic at `binary` only (a missing one behaves as restic not installed).
    #[cfg(test)]
    pub fn with_restic_binary(mut self, binary: PathBuf) -> Backups {
        self.restic_binary = Some(binary);
        self
    }

    /// Runs a `backup` task; `emit` receives throttled `backup.progress` events.
    pub fn backup(&self, task_id: &str, task: &BackupTask, emit: &dyn Fn(Event)) -> TaskResult {
        let passwords: Vec<&str> = task.repositories.iter().map(|r| r.password.as_str()).collect();
        let result = snapshot::run(self, task_id, task, emit);
        finish(task_id, result, &passwords)
    }

    /// Runs a `restore` task.
    pub fn restore(&self, task_id: &str, task: &RestoreTask) -> TaskResult {
        let passwords: Vec<&str> = task.repository.iter().map(|r| r.password.as_str()).collect();
        let result = restore::run(self, task);
        finish(task_id, result, &passwords)
    }

    /// Runs a `backup_check` task.
    pub fn check(&self, task_id: &str, task: &BackupCheckTask) -> TaskResult {
        let passwords: Vec<&str> = task.repository.iter().map(|r| r.password.as_str()).collect();
        let result = check::run(self, task);
        finish(task_id, result, &passwords)
    }

    fn layout(&self) -> Layout {
        Layout { root: self.state_dir.join("backup") }
    }

    /// restic, or the `Failed` result that says how to install it.
    fn restic(&self) -> Result<Restic, NotRun> {
        Restic::locate(self.restic_binary.as_deref()).map_err(|error| {
            tracing::warn!(%error, "restic not found");
            not_run(1, format!("restic is not installed on {}: apt-get install restic", host_name(&self.state_dir)))
        })
    }

    /// Claims `<system>/<plan>` until the guard is dropped; `None` while another task holds it.
    fn claim_plan(&self, system: &str, plan: &str) -> Option<PlanClaim<'_>> {
        let key = format!("{system}/{plan}");
        let claimed = self.running_plans.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone());
        // Made only once claimed, after the lock is released: dropping a claim releases it.
        claimed.then(|| PlanClaim { backups: self, key })
    }

    /// A driver handle on one repository of a task, with its cache and password file on the
    /// agent's disk.
    fn open(&self, restic: &Restic, repository: &proto::v1::Repository) -> Result<Repository, String> {
        check_name("repository name", &repository.name)?;
        if repository.location.is_empty() {
            return Err(format!("repository {} has no location", repository.name));
        }
        if repository.password.is_empty() {
            return Err(format!("repository {} came without its password", repository.name));
        }
        let layout = self.layout();
        let secrets =
            layout.secrets_dir().map_err(|e| format!("cannot prepare {}: {e}", layout.secrets().display()))?;
        let config = RepositoryConfig::new(repository.location.clone(), Secret::new(repository.password.clone()))
            .with_cache_dir(layout.cache(&repository.name))
            .with_secret_dir(secrets);
        Ok(Repository::new(restic.clone(), config))
    }
}

/// Holds a plan for one backup; releases it on drop (also when the task panics).
struct PlanClaim<'a> {
    backups: &'a Backups,
    key: String,
}

impl Drop for PlanClaim<'_> {
    fn drop(&mut self) {
        self.backups.running_plans.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

/// Where backup files live under the state dir (see the module comment).
struct Layout {
    root: PathBuf,
}

impl Layout {
    fn manifests(&self) -> PathBuf {
        self.root.join("manifests")
    }
    fn cache(&self, repository: &str) -> PathBuf {
        self.root.join("cache").join(repository)
    }
    fn secrets(&self) -> PathBuf {
        self.root.join("secrets")
    }

    /// The secrets dir, made (or made again) private.
    fn secrets_dir(&self) -> std::io::Result<PathBuf> {
        let dir = self.secrets();
        private_dir(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(dir)
    }

    /// What a backup must neither list in its manifest nor hand to restic: the password files
    /// and restic's cache, should the state dir lie under a backed-up path.
    fn private_parts(&self) -> [PathBuf; 2] {
        [self.secrets(), self.root.join("cache")]
    }
}

/// Creates `dir` and its missing parents with mode 0700.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// The host name snapshots are recorded under: the one this agent enrolled as, else the
/// machine's.
fn host_name(state_dir: &Path) -> String {
    match StateDir::new(state_dir).enrollment() {
        Ok(enrollment) => enrollment.host,
        Err(_) => nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
    }
}

/// System, plan and repository names become file names and tags.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    let fine = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if fine {
        Ok(())
    } else {
        Err(format!("{what} {name:?} must be 1 to 64 letters, digits, - _ . (not starting with .)"))
    }
}

/// When a task must stop starting new steps.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    until: Option<Instant>,
    timeout: Duration,
}

impl Deadline {
    /// `timeout_ms` 0 means no limit.
    fn after_ms(timeout_ms: u32) -> Deadline {
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        Deadline { until: (timeout_ms > 0).then(|| Instant::now() + timeout), timeout }
    }

    fn remaining(&self) -> Option<Duration> {
        self.until.map(|until| until.saturating_duration_since(Instant::now()))
    }

    fn passed(&self) -> bool {
        self.remaining().is_some_and(|left| left.is_zero())
    }

    /// How long a step may run: its own limit (0: none) and the task's, whichever ends first;
    /// `fallback` when neither sets one.
    fn for_step(&self, step_timeout_ms: u32, fallback: Duration) -> Duration {
        let own = (step_timeout_ms > 0).then(|| Duration::from_millis(u64::from(step_timeout_ms)));
        match (own, self.remaining()) {
            (Some(own), Some(left)) => own.min(left),
            (Some(own), None) => own,
            (None, Some(left)) => left,
            (None, None) => fallback,
        }
    }

    fn describe(&self) -> String {
        format!("the task's timeout of {}", humantime::format_duration(self.timeout))
    }
}

/// Pauses before each retry of a locked repository's operation, after an `unlock`.
const LOCKED_RETRY_PAUSES: [Duration; 3] = [Duration::ZERO, Duration::from_secs(1), Duration::from_secs(3)];

/// Retries `op` after `unlock` while the repository is locked: a restic killed earlier (an
/// agent restart, a crash) leaves a stale lock, which `unlock` removes. restic judges a lock
/// stale only once its holder's process is gone, and a killed holder lingers until it is
/// reaped, so the retries are spaced out; a live holder's lock stays and the last retry
/// reports it.
fn unlocking<T>(repository: &Repository, mut op: impl FnMut() -> Result<T, ResticError>) -> Result<T, ResticError> {
    let mut result = op();
    for pause in LOCKED_RETRY_PAUSES {
        let Err(ResticError::Locked { location, detail }) = &result else { break };
        tracing::warn!(repository = location, detail, "repository locked; removing stale locks and retrying");
        std::thread::sleep(pause);
        repository.unlock()?;
        result = op();
    }
    result
}

/// Why a task did nothing; reported `Failed` with this exit code and error.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NotRun {
    exit_code: i32,
    error: String,
}

fn not_run(exit_code: i32, error: String) -> NotRun {
    NotRun { exit_code, error }
}

/// A result for a task that ran: `stdout` is its JSON report.
fn exited(ok: bool, stdout: Vec<u8>, error: String) -> TaskResult {
    TaskResult {
        status: TaskStatus::Exited as i32,
        exit_code: if ok { 0 } else { 1 },
        stdout,
        error,
        ..TaskResult::default()
    }
}

/// Fills id and times, and scrubs the passwords once more.
fn finish(task_id: &str, result: Result<TaskResult, NotRun>, passwords: &[&str]) -> TaskResult {
    let mut result = result.unwrap_or_else(|not_run| TaskResult {
        status: TaskStatus::Failed as i32,
        exit_code: not_run.exit_code,
        error: not_run.error,
        ..TaskResult::default()
    });
    result.task_id = task_id.to_string();
    if result.started_unix_ms == 0 {
        result.started_unix_ms = now_ms();
    }
    result.finished_unix_ms = now_ms();
    for password in passwords.iter().filter(|p| p.len() >= MIN_REDACTED_PASSWORD_BYTES) {
        result.error = redact(&result.error, password);
        result.stdout = redact(&String::from_utf8_lossy(&result.stdout), password).into_bytes();
        result.stderr = redact(&String::from_utf8_lossy(&result.stderr), password).into_bytes();
    }
    result
}

/// `text` with every occurrence of `password` replaced.
fn redact(text: &str, password: &str) -> String {
    if text.contains(password) { text.replace(password, "[redacted]") } else { text.to_string() }
}

/// Kills (SIGKILL) every restic process whose password file lies under `secrets`: one started
/// by an earlier life of this agent. Found by its environment (readable for our own user's
/// processes), which names the file; restic's argv never holds it.
fn stop_orphaned_restic(secrets: &std::path::Path) {
    let needle = format!("RESTIC_PASSWORD_FILE={}/", secrets.display());
    let Ok(procs) = std::fs::read_dir("/proc") else { return };
    let mut killed = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        let ours = environ.split(|b| *b == 0).any(|var| var.starts_with(needle.as_bytes()));
        if ours {
            tracing::warn!(pid, "stopping a restic left running by a backup the agent died in");
            if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).is_ok() {
                killed.push(entry.path());
            }
        }
    }
    // Until its parent reaps it, a killed restic still counts as alive to restic's stale-lock
    // test, and its lock would refuse the first task: wait for it to go.
    let until = Instant::now() + ORPHAN_REAP_WAIT;
    while killed.iter().any(|p| p.exists()) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(p) = killed.iter().find(|p| p.exists()) {
        tracing::warn!(process = %p.display(), "a stopped restic has not been reaped; its lock may hold up the next task");
    }
}

/// How long the agent waits at start for the restic processes it stopped to be reaped.
const ORPHAN_REAP_WAIT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn names_that_could_escape_a_directory_or_split_a_tag_are_refused() {
        for bad in ["", "..", ".hidden", "a/b", "a,b", "a b", &"x".repeat(65)] {
            assert!(check_name("system", bad).is_err(), "{bad:?}");
        }
        for good in ["erp", "db-1", "hue_gov.vn", "A9"] {
            assert!(check_name("system", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn a_step_gets_the_shorter_of_its_own_limit_and_what_is_left() {
        let none = Deadline::after_ms(0);
        assert_eq!(none.for_step(0, Duration::from_secs(7)), Duration::from_secs(7));
        assert_eq!(none.for_step(2_000, Duration::from_secs(7)), Duration::from_secs(2));
        let task = Deadline::after_ms(60_000);
        assert!(task.for_step(0, Duration::from_secs(3600)) <= Duration::from_secs(60));
        assert_eq!(task.for_step(1_000, Duration::from_secs(3600)), Duration::from_secs(1));
        assert!(!task.passed());
        let gone = Deadline { until: Some(Instant::now()), timeout: Duration::from_millis(1) };
        assert!(gone.passed());
    }

    #[test]
    fn a_claimed_plan_cannot_be_claimed_again_until_released() {
        let backups = Backups::new(PathBuf::from("/nonexistent"));
        let first = backups.claim_plan("erp", "nightly");
        assert!(first.is_some());
        assert!(backups.claim_plan("erp", "nightly").is_none());
        assert!(backups.claim_plan("erp", "weekly").is_some());
        drop(first);
        assert!(backups.claim_plan("erp", "nightly").is_some());
    }

    #[test]
    fn finish_scrubs_passwords_from_every_text() {
        let leaky = TaskResult {
            error: "bad: Mật-khẩu-dài-123".into(),
            stdout: b"{\"x\":\"Mat-khau-dai-123\"}".to_vec(),
            ..TaskResult::default()
        };
        let result = finish("t1", Ok(leaky), &["Mật-khẩu-dài-123", "Mat-khau-dai-123", "short"]);
        assert_eq!(result.error, "bad: [redacted]");
        assert_eq!(result.stdout, b"{\"x\":\"[redacted]\"}");
        assert_eq!(result.task_id, "t1");
        assert!(result.finished_unix_ms >= result.started_unix_ms);
    }
}
