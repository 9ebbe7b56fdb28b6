//! Backup runs: the controller turns a plan into a task for the agent that holds the data (a
//! backup), for a repository's host (a check) or for a restore host (a restore or drill), and
//! records what comes back: the run's outcome, the restore points it made, and what a check or
//! restore says about a repository.
//!
//! A task stored for an agent names its repositories without their passwords; the passwords
//! are added only to the message sent on the stream (see [`task_message`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use super::plans::{Plan, PlanKind, PlanRepository};
use super::secrets::RepoSecrets;
use crate::app::{App, AppError, now_ms};
use crate::store::{BackupRun, RunEnd, SnapshotRecord, TaskOutcome, TaskRecord, Verdict};

/// How long a backup may run before its agent gives up.
pub const BACKUP_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// How long a check or restore may run.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(2 * 3600);
/// How long a task may wait for its agent to connect.
const DELIVERY_WINDOW: Duration = Duration::from_secs(15 * 60);

pub const KINDS: [&str; 3] = ["backup", "restore", "backup_check"];

/// The backup state the controller keeps in memory: plans, passwords, live progress.
pub struct Backups {
    pub plans: Vec<Plan>,
    pub secrets: RepoSecrets,
    /// The latest progress event of each running task.
    progress: Mutex<HashMap<String, Value>>,
}

impl Backups {
    pub fn new(plans: Vec<Plan>, secrets: RepoSecrets) -> Backups {
        Backups { plans, secrets, progress: Mutex::new(HashMap::new()) }
    }

    pub fn plans_of(&self, system: &str) -> Vec<&Plan> {
        self.plans.iter().filter(|p| p.system == system).collect()
    }

    pub fn set_progress(&self, task_id: &str, fields: Value) {
        self.progress.lock().unwrap_or_else(|p| p.into_inner()).insert(task_id.to_string(), fields);
    }

    pub fn progress_of(&self, task_id: &str) -> Option<Value> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner()).get(task_id).cloned()
    }

    fn forget_progress(&self, task_id: &str) {
        self.progress.lock().unwrap_or_else(|p| p.into_inner()).remove(task_id);
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn repo_json(r: &PlanRepository) -> Value {
    json!({"name": r.name, "location": r.location})
}

/// Stores a task and its run, and sends the task if its agent is connected.
async fn launch(app: &App, task: TaskRecord, run: BackupRun) -> Result<BackupRun, AppError> {
    app.store.insert_task(&task).await?;
    app.store.insert_run(&run).await?;
    app.metrics.tasks_created.inc();
    if let Some(m) = task_message(app, &task)
        && app.sessions.send(&task.host, m)
    {
        app.store.mark_task_delivered(&task.id, now_ms()).await?;
    }
    Ok(run)
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", hex::encode(rand::random::<[u8; 8]>()))
}

/// A run of `plan` starting now, as the store keeps it.
pub(super) fn run_record(id: &str, kind: &str, plan: &Plan, host: &str, by: &str) -> BackupRun {
    BackupRun {
        id: id.to_string(),
        kind: kind.to_string(),
        system: plan.system.clone(),
        plan: plan.plan.clone(),
        host: host.to_string(),
        repository: None,
        snapshot_id: None,
        requested_by: by.to_string(),
        started_at: now_ms(),
        finished_at: None,
        status: "running".to_string(),
        error: None,
        result: None,
    }
}

/// Starts a run of `plan`: a backup by its host's agent, or platform snapshots of its VMs.
pub async fn start(app: &std::sync::Arc<App>, plan: &Plan, by: &str) -> Result<BackupRun, AppError> {
    match plan.kind {
        PlanKind::Files => start_backup(app, plan, by).await,
        PlanKind::PlatformSnapshots => super::snapshots::start(app, plan, by).await,
    }
}

/// Starts a backup of `plan` on its host. Refused while one of the same plan runs.
pub async fn start_backup(app: &App, plan: &Plan, by: &str) -> Result<BackupRun, AppError> {
    if let Some(r) = app.store.running_run(&plan.system, &plan.plan, "backup").await? {
        return Err(AppError::Conflict(format!(
            "a backup of {}/{} is already running (run {}, since {})",
            plan.system,
            plan.plan,
            r.id,
            crate::app::rfc3339(r.started_at)
        )));
    }
    if plan.repositories.is_empty() {
        return Err(AppError::BadRequest(format!("{}/{} has no backup repository", plan.system, plan.plan)));
    }
    let id = new_id("bk");
    let now = now_ms();
    let args = json!({
        "system": plan.system,
        "plan": plan.plan,
        "paths": plan.paths,
        "pre": plan.pre,
        "repositories": plan.repositories.iter().map(repo_json).collect::<Vec<_>>(),
        "retention": plan.retention,
        "keep_last": plan.keep_last,
        "timeout_ms": ms(BACKUP_TIMEOUT),
    });
    let deadline = now.saturating_add(ms(BACKUP_TIMEOUT + DELIVERY_WINDOW));
    let task = TaskRecord::pending(&id, &plan.host, "backup", args, by, now, deadline);
    launch(app, task, run_record(&id, "backup", plan, &plan.host, by)).await
}

/// Starts `restic check` of each of the plan's repositories, from the plan's host.
pub async fn start_checks(app: &App, plan: &Plan, subset: Option<&str>, by: &str) -> Result<Vec<BackupRun>, AppError> {
    let mut runs = Vec::new();
    for r in &plan.repositories {
        let id = new_id("ck");
        let now = now_ms();
        let args = json!({
            "system": plan.system, "plan": plan.plan, "repository": repo_json(r),
            "read_data_subset": subset.unwrap_or(""), "timeout_ms": ms(VERIFY_TIMEOUT),
        });
        let deadline = now.saturating_add(ms(VERIFY_TIMEOUT + DELIVERY_WINDOW));
        let task = TaskRecord::pending(&id, &plan.host, "backup_check", args, by, now, deadline);
        let mut run = run_record(&id, "check", plan, &plan.host, by);
        run.repository = Some(r.name.clone());
        runs.push(launch(app, task, run).await?);
    }
    Ok(runs)
}

/// What a restore is asked to do.
#[derive(Debug, Clone)]
pub struct RestoreRequest<'a> {
    pub plan: &'a Plan,
    pub snapshot: &'a SnapshotRecord,
    pub host: &'a str,
    pub target: &'a str,
    /// A drill: verify every file, then remove the target.
    pub drill: bool,
    pub force: bool,
    /// Restored directories to move into place afterwards (`from` in the snapshot → `to`).
    pub place: Vec<(String, String)>,
}

pub async fn start_restore(app: &App, req: &RestoreRequest<'_>, by: &str) -> Result<BackupRun, AppError> {
    let repo = req
        .plan
        .repositories
        .iter()
        .find(|r| r.name == req.snapshot.repository)
        .ok_or_else(|| AppError::NotFound(format!("repository {} is not in the plan", req.snapshot.repository)))?;
    if app.store.get_host(req.host).await?.is_none() {
        return Err(AppError::NotFound(format!("no host named {}", req.host)));
    }
    let id = new_id(if req.drill { "dr" } else { "rs" });
    let now = now_ms();
    let args = json!({
        "system": req.plan.system, "plan": req.plan.plan, "repository": repo_json(repo),
        "snapshot_id": req.snapshot.snapshot_id, "target": req.target, "force": req.force,
        // A restore that moves data into place verifies it first and leaves no staging behind.
        "verify": req.drill || !req.place.is_empty(), "cleanup": req.drill || !req.place.is_empty(), "manifest_sha256": req.snapshot.manifest_sha256,
        "probe": if req.drill { req.plan.probe.clone() } else { Vec::new() },
        "timeout_ms": ms(VERIFY_TIMEOUT),
        "place": req.place.iter().map(|(from, to)| json!({"from": from, "to": to})).collect::<Vec<_>>(),
    });
    let deadline = now.saturating_add(ms(VERIFY_TIMEOUT + DELIVERY_WINDOW));
    let task = TaskRecord::pending(&id, req.host, "restore", args, by, now, deadline);
    let mut run = run_record(&id, "restore", req.plan, req.host, by);
    run.repository = Some(repo.name.clone());
    run.snapshot_id = Some(req.snapshot.snapshot_id.clone());
    launch(app, task, run).await
}

fn repository(app: &App, v: &Value) -> Option<proto::v1::Repository> {
    let name = v.get("name")?.as_str()?.to_string();
    let location = v.get("location")?.as_str()?.to_string();
    match app.backups.secrets.get_or_create(&name) {
        Ok(password) => Some(proto::v1::Repository { name, location, password }),
        Err(e) => {
            tracing::error!(repository = name, error = %e, "no password for the repository; task not sent");
            None
        }
    }
}

/// A command (program and arguments) from task arguments; `None` when empty.
fn command_of(v: Option<&Value>, timeout_ms: u32) -> Option<proto::v1::CommandTask> {
    let argv = strings(v);
    let (program, args) = argv.split_first()?;
    Some(proto::v1::CommandTask { program: program.clone(), args: args.to_vec(), timeout_ms })
}

fn u32_ms(v: &Value) -> u32 {
    v.get("timeout_ms").and_then(Value::as_u64).map_or(u32::MAX, |t| u32::try_from(t).unwrap_or(u32::MAX))
}

fn keep(args: &Value, period: &str) -> u32 {
    args.pointer(&format!("/retention/{period}"))
        .and_then(Value::as_u64)
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// The message that carries a backup, check or restore task, with the repository passwords
/// added (never stored); `None` for other kinds or when a password cannot be read.
pub fn task_message(app: &App, t: &TaskRecord) -> Option<proto::v1::ControllerMessage> {
    use proto::v1::{BackupCheckTask, BackupTask, RestoreTask, Task, controller_message};
    let a = &t.args;
    let mut task = Task { id: t.id.clone(), kind: t.kind.clone(), deadline_unix_ms: t.deadline, ..Default::default() };
    match t.kind.as_str() {
        "backup" => {
            let repositories: Option<Vec<_>> =
                a.get("repositories")?.as_array()?.iter().map(|r| repository(app, r)).collect();
            let pre = a
                .get("pre")
                .and_then(Value::as_array)
                .map(|cmds| cmds.iter().filter_map(|c| command_of(Some(c), 3_600_000)).collect())
                .unwrap_or_default();
            task.backup = Some(BackupTask {
                system: a.get("system")?.as_str()?.to_string(),
                plan: a.get("plan")?.as_str()?.to_string(),
                paths: strings(a.get("paths")),
                pre,
                repositories: repositories?,
                tags: Vec::new(),
                timeout_ms: u32_ms(a),
                keep_daily: keep(a, "daily"),
                keep_weekly: keep(a, "weekly"),
                keep_monthly: keep(a, "monthly"),
                keep_last: a
                    .get("keep_last")
                    .and_then(Value::as_u64)
                    .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
            });
        }
        "backup_check" => {
            task.backup_check = Some(BackupCheckTask {
                repository: Some(repository(app, a.get("repository")?)?),
                read_data_subset: a.get("read_data_subset").and_then(Value::as_str).unwrap_or("").to_string(),
                timeout_ms: u32_ms(a),
            });
        }
        "restore" => {
            task.restore = Some(RestoreTask {
                repository: Some(repository(app, a.get("repository")?)?),
                snapshot_id: a.get("snapshot_id")?.as_str()?.to_string(),
                target: a.get("target")?.as_str()?.to_string(),
                force: a.get("force").and_then(Value::as_bool).unwrap_or(false),
                verify: a.get("verify").and_then(Value::as_bool).unwrap_or(false),
                probe: command_of(a.get("probe"), 600_000),
                cleanup: a.get("cleanup").and_then(Value::as_bool).unwrap_or(false),
                timeout_ms: u32_ms(a),
                manifest_sha256: a.get("manifest_sha256").and_then(Value::as_str).unwrap_or("").to_string(),
                place: a
                    .get("place")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        Some(proto::v1::Placement {
                            from: p.get("from")?.as_str()?.to_string(),
                            to: p.get("to")?.as_str()?.to_string(),
                        })
                    })
                    .collect(),
            });
        }
        _ => return None,
    }
    Some(proto::v1::ControllerMessage { msg: Some(controller_message::Msg::Task(task)) })
}

/// Records the outcome of a finished backup, check or restore task.
pub async fn task_finished(app: &App, host: &str, outcome: &TaskOutcome) -> Result<(), AppError> {
    let Some(run) = app.store.get_run(&outcome.task_id).await? else { return Ok(()) };
    app.backups.forget_progress(&run.id);
    let result: Option<Value> = serde_json::from_slice(&outcome.stdout).ok();
    let exited_ok = outcome.state == "exited" && outcome.exit_code == Some(0);
    let at = finish_time(outcome.finished_at, run.started_at, now_ms());
    let error = if exited_ok {
        None
    } else {
        Some(
            outcome
                .error
                .clone()
                .filter(|e| !e.is_empty())
                .or_else(|| first_error(result.as_ref()))
                .unwrap_or_else(|| format!("the {} ended {}", run.kind, outcome.state)),
        )
    };
    let status = if exited_ok { "ok" } else { "failed" };
    let snapshots = if run.kind == "backup" { snapshots_of(&run, host, result.as_ref(), at) } else { Vec::new() };
    let forgotten = if run.kind == "backup" { forgotten_of(result.as_ref()) } else { Vec::new() };
    let verdict = match (run.kind.as_str(), &run.repository) {
        ("check", Some(repo)) => Some(Verdict { repository: repo.clone(), snapshot_id: None, ok: exited_ok, at }),
        ("restore", Some(repo)) if run.id.starts_with("dr-") => {
            Some(Verdict { repository: repo.clone(), snapshot_id: run.snapshot_id.clone(), ok: exited_ok, at })
        }
        _ => None,
    };
    let end = RunEnd { status: status.to_string(), error: error.clone(), result, at, snapshots, forgotten, verdict };
    let finished = app.store.finish_run(&run.id, &end).await?;
    if finished {
        tracing::info!(run = run.id, kind = run.kind, system = run.system, status, "backup run finished");
        if let Some(e) = &error {
            tracing::warn!(run = run.id, system = run.system, error = %e, "backup run failed");
        }
    }
    Ok(())
}

/// When a run ended, on the controller's clock: the agent's word, kept within the window the
/// controller saw (after it started the run, not after the result arrived). An agent whose
/// clock runs ahead would otherwise make restore points look fresher than they are and hide an
/// RPO breach; one behind is taken at the run's start, which errs on the safe side.
fn finish_time(agent_said: Option<i64>, started: i64, now: i64) -> i64 {
    agent_said.unwrap_or(now).clamp(started, now.max(started))
}

fn first_error(result: Option<&Value>) -> Option<String> {
    let runs = result?.get("runs")?.as_array()?;
    runs.iter().find_map(|r| {
        let e = r.get("error")?.as_str()?;
        (!e.is_empty()).then(|| format!("{}: {e}", r.get("repository").and_then(Value::as_str).unwrap_or("?")))
    })
}

/// The (repository, snapshot id) pairs retention removed, as a backup result reports them.
fn forgotten_of(result: Option<&Value>) -> Vec<(String, String)> {
    let runs = result.and_then(|r| r.get("runs")).and_then(Value::as_array).cloned().unwrap_or_default();
    runs.iter()
        .filter_map(|r| Some((r.get("repository")?.as_str()?.to_string(), strings(r.get("forgotten")))))
        .flat_map(|(repo, ids)| ids.into_iter().map(move |id| (repo.clone(), id)))
        .collect()
}

/// The restore points a backup result reports (repositories that succeeded, partially or not).
fn snapshots_of(run: &BackupRun, host: &str, result: Option<&Value>, at: i64) -> Vec<SnapshotRecord> {
    let Some(result) = result else { return Vec::new() };
    let manifest = result.get("manifest");
    let runs = result.get("runs").and_then(Value::as_array).cloned().unwrap_or_default();
    runs.iter()
        .filter(|r| matches!(r.get("status").and_then(Value::as_str), Some("ok" | "partial")))
        .filter_map(|r| {
            Some(SnapshotRecord {
                repository: r.get("repository")?.as_str()?.to_string(),
                snapshot_id: r.get("snapshot_id")?.as_str().filter(|s| !s.is_empty())?.to_string(),
                system: run.system.clone(),
                plan: run.plan.clone(),
                run_id: run.id.clone(),
                host: host.to_string(),
                time: at,
                bytes_added: r.get("bytes_added").and_then(Value::as_i64),
                files: r.get("files").and_then(Value::as_i64),
                manifest_sha256: manifest.and_then(|m| m.get("sha256")).and_then(Value::as_str).map(str::to_string),
                manifest_files: manifest.and_then(|m| m.get("files")).and_then(Value::as_i64),
                verified: "ok".to_string(),
                verified_at: Some(at),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skewed_agent_clock_cannot_move_a_restore_point_outside_the_run() {
        let (started, now) = (1_000_000, 1_600_000);
        assert_eq!(finish_time(Some(1_500_000), started, now), 1_500_000);
        // Two hours ahead: taken as now, never in the future.
        assert_eq!(finish_time(Some(now + 7_200_000), started, now), now);
        // Two hours behind: taken as the run's start.
        assert_eq!(finish_time(Some(started - 7_200_000), started, now), started);
        assert_eq!(finish_time(None, started, now), now);
        // The controller's own clock set back mid-run does not panic the clamp.
        assert_eq!(finish_time(Some(5), started, started - 10), started);
    }

    #[test]
    fn a_drill_carries_its_probe_and_other_tasks_none() {
        let v = json!({"probe": ["sh", "-c", "test -s \"$MANGROVE_RESTORE_DIR/srv/db.sql\""]});
        let c = command_of(v.get("probe"), 600_000).expect("a probe");
        assert_eq!((c.program.as_str(), c.args.len(), c.timeout_ms), ("sh", 2, 600_000));
        assert!(command_of(Some(&json!([])), 1).is_none());
        assert!(command_of(None, 1).is_none());
    }
}
