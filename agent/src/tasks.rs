//! Running the tasks the controller sends, at most once per task id.
//!
//! A journal file per id (`<state-dir>/tasks/<id>`) says `started` before the program runs
//! and `done` once its result is in the outbox. So a task delivered again is not run again:
//! `done` means its result is already on its way; `started` without `done` means the agent
//! died while it ran, and the result says so (`interrupted`) instead of running a command that
//! may not be idempotent a second time.
//!
//! Kinds: `command` runs a program (`runner.rs`); `backup`, `restore` and `backup_check` run
//! restic through `backup/` on a blocking thread (the restic driver is synchronous); `vc_check`
//! checks video-conference devices through `plugins::vc`, on a blocking thread; `ansible`
//! runs one Ansible module call (`ansible/`) on a blocking thread and returns its result as
//! JSON on stdout (exit code 0, or 1 when the module failed). A task
//! whose kind's field is missing fails; an unknown kind is reported unsupported. The deadline
//! check uses the time limit of the task's own kind.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::v1::report::Body;
use proto::v1::{
    AnsibleTask, BackupCheckTask, BackupTask, CommandTask, Event, RestoreTask, Task, TaskResult, TaskStatus,
    VcCheckTask,
};
use tokio::sync::Notify;

use crate::backup::Backups;
use crate::outbox::Outbox;
use crate::runner::{CommandSpec, run_command};
use crate::state::write_atomic;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Task ids become file names: only a safe alphabet is accepted.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && id != "."
        && id != ".."
}

pub struct Tasks {
    dir: PathBuf,
    running: Mutex<HashSet<String>>,
    outbox: Arc<Mutex<Outbox>>,
    appended: Arc<Notify>,
    output_cap: usize,
    backups: Backups,
}

fn result(id: &str, status: TaskStatus, error: &str) -> TaskResult {
    let now = now_ms();
    TaskResult {
        task_id: id.to_string(),
        status: status as i32,
        error: error.to_string(),
        started_unix_ms: now,
        finished_unix_ms: now,
        ..Default::default()
    }
}

impl Tasks {
    pub fn new(
        dir: PathBuf,
        outbox: Arc<Mutex<Outbox>>,
        appended: Arc<Notify>,
        output_cap: usize,
    ) -> std::io::Result<Tasks> {
        std::fs::create_dir_all(&dir)?;
        // `dir` is `<state-dir>/tasks` (state.rs); backups keep their files beside it.
        let state_dir = dir.parent().map_or_else(|| dir.clone(), Path::to_path_buf);
        let backups = Backups::new(state_dir);
        Ok(Tasks { dir, running: Mutex::new(HashSet::new()), outbox, appended, output_cap, backups })
    }

    fn journal(&self, id: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(id)).ok()
    }

    /// Records a task's progress; false if the journal could not be written.
    fn mark(&self, id: &str, what: &str) -> bool {
        match write_atomic(&self.dir.join(id), what.as_bytes(), 0o644) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(task_id = id, error = %e, "cannot write the task journal");
                false
            }
        }
    }

    /// Puts a result in the outbox; the journal says `done` only once it is there.
    fn finish(&self, r: TaskResult) {
        let id = r.task_id.clone();
        let appended = self.outbox.lock().unwrap_or_else(|p| p.into_inner()).append(Body::TaskResult(r), now_ms());
        match appended {
            Ok(Some(_)) => {
                self.appended.notify_one();
                if valid_id(&id) {
                    let _ = self.mark(&id, "done");
                }
            }
            Ok(None) => tracing::error!(task_id = id, "outbox full: task result dropped"),
            Err(e) => tracing::error!(task_id = id, error = %e, "cannot store the task result"),
        }
    }

    /// Handles a task from the controller. Idempotent by task id; never blocks the session.
    pub fn handle(self: &Arc<Self>, task: Task) {
        let id = task.id.clone();
        if !valid_id(&id) {
            tracing::warn!(task_id = id, "task id refused (letters, digits, - _ . only)");
            self.finish(result(&id, TaskStatus::Failed, "invalid task id"));
            return;
        }
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.contains(&id) {
                return;
            }
            match self.journal(&id).as_deref() {
                Some("done") => return,
                Some(_) => {
                    drop(running);
                    tracing::warn!(task_id = id, "task was running when the agent stopped; not run again");
                    self.finish(result(
                        &id,
                        TaskStatus::Interrupted,
                        "the agent stopped while the task ran; it was not run again",
                    ));
                    return;
                }
                None => {}
            }
            running.insert(id.clone());
        }
        // Started only if it can finish before its deadline: after it, the controller has
        // already told the operator the task expired.
        let timeout_ms = i64::from(Work::timeout_ms(&task));
        if task.deadline_unix_ms != 0 && now_ms().saturating_add(timeout_ms) > task.deadline_unix_ms {
            self.refuse(&id, TaskStatus::Expired, "too late to run before its deadline; not started");
            return;
        }
        let work = match Work::of(task) {
            Ok(work) => work,
            Err((status, error)) => {
                self.refuse(&id, status, &error);
                return;
            }
        };
        // Without a journal entry a restart (or a redelivery after its result could not be
        // written) would run it again: not started, the controller offers it again later.
        if !self.mark(&id, "started") {
            tracing::error!(task_id = id, "task not started: its start cannot be recorded (disk full?)");
            self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            tracing::info!(task_id = id, kind = work.kind(), "task started");
            let mut r = me.run(&id, work).await;
            r.task_id = id.clone();
            tracing::info!(task_id = id, status = r.status, exit_code = r.exit_code, "task finished");
            me.finish(r);
            me.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        });
    }

    /// Reports a task that will not run, and forgets it.
    fn refuse(&self, id: &str, status: TaskStatus, error: &str) {
        self.finish(result(id, status, error));
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Runs one task to its result.
    async fn run(self: &Arc<Self>, id: &str, work: Work) -> TaskResult {
        match work {
            Work::Command(cmd) => {
                let spec = CommandSpec {
                    program: cmd.program,
                    args: cmd.args,
                    timeout: Duration::from_millis(u64::from(cmd.timeout_ms.max(1))),
                };
                run_command(&spec, self.output_cap).await
            }
            Work::Restic(work) => self.run_restic(id, work).await,
            Work::Vc(task) => run_vc(id, task).await,
            Work::Ansible(task) => self.run_ansible(id, task).await,
        }
    }

    /// The restic driver is synchronous: its tasks run on a blocking thread, and a panic there
    /// becomes a failed result, not a dead agent.
    async fn run_restic(self: &Arc<Self>, id: &str, work: ResticWork) -> TaskResult {
        let me = self.clone();
        let task_id = id.to_string();
        let joined = tokio::task::spawn_blocking(move || {
            let emit = |event: Event| me.report_event(event);
            match work {
                ResticWork::Backup(task) => me.backups.backup(&task_id, &task, &emit),
                ResticWork::Restore(task) => me.backups.restore(&task_id, &task),
                ResticWork::Check(task) => me.backups.check(&task_id, &task),
            }
        })
        .await;
        joined.unwrap_or_else(|e| {
            tracing::error!(task_id = id, error = %e, "task panicked");
            result(id, TaskStatus::Failed, &format!("the agent failed while running the task: {e}"))
        })
    }

    /// Runs one module call on a blocking thread (modules use blocking IO and may wait, as
    /// `wait_for` does). Idempotent as the module is; a timeout stops waiting for the result,
    /// not the module itself (the thread finishes it and its result is dropped).
    async fn run_ansible(self: &Arc<Self>, id: &str, task: AnsibleTask) -> TaskResult {
        let started = now_ms();
        let timeout_ms = task.timeout_ms;
        let work = tokio::task::spawn_blocking(move || {
            let become_user = Some(task.become_user).filter(|u| !u.is_empty());
            let opts = crate::ansible::RunOptions { check: task.check, diff: task.diff, become_user };
            let args = if task.args_json.trim().is_empty() {
                Ok(serde_json::Value::Null)
            } else {
                serde_json::from_str::<serde_json::Value>(&task.args_json)
            };
            match args {
                Ok(args) => crate::ansible::run_module(&task.module, &args, &opts),
                Err(e) => crate::ansible::ModuleResult::fail(format!("the module arguments are not JSON: {e}")),
            }
        });
        let joined = if timeout_ms == 0 {
            work.await
        } else {
            match tokio::time::timeout(Duration::from_millis(u64::from(timeout_ms)), work).await {
                Ok(joined) => joined,
                Err(_) => {
                    let mut r = result(id, TaskStatus::TimedOut, "the module did not finish within the task's timeout");
                    r.started_unix_ms = started;
                    return r;
                }
            }
        };
        let module_result = match joined {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(task_id = id, error = %e, "task panicked");
                return result(id, TaskStatus::Failed, &format!("the agent failed while running the task: {e}"));
            }
        };
        let (stdout, truncated) = ansible_stdout(&module_result, self.output_cap);
        TaskResult {
            task_id: id.to_string(),
            status: TaskStatus::Exited as i32,
            exit_code: i32::from(module_result.failed),
            stdout,
            stdout_truncated: truncated,
            started_unix_ms: started,
            finished_unix_ms: now_ms(),
            ..Default::default()
        }
    }

    /// Puts an event (backup progress) in the outbox. Best effort: a progress event that
    /// cannot be kept is not worth failing the task for.
    fn report_event(&self, event: Event) {
        let appended = self.outbox.lock().unwrap_or_else(|p| p.into_inner()).append(Body::Event(event), now_ms());
        match appended {
            Ok(Some(_)) => self.appended.notify_one(),
            Ok(None) => tracing::debug!("outbox full: progress event dropped"),
            Err(e) => tracing::debug!(error = %e, "cannot store a progress event"),
        }
    }
}

/// Checks video-conference devices on a blocking thread (the checks use blocking sockets, one
/// thread per check); the result's stdout is the devices' JSON. Idempotent: it only reads.
async fn run_vc(id: &str, task: VcCheckTask) -> TaskResult {
    let started = now_ms();
    let timeout = Duration::from_millis(u64::from(task.timeout_ms.clamp(200, 60_000)));
    let joined = tokio::task::spawn_blocking(move || {
        let devices: Vec<plugins::vc::DeviceSpec> = task.devices.into_iter().filter_map(vc_device).collect();
        plugins::vc::check_all(&devices, timeout)
    })
    .await;
    let mut r = result(id, TaskStatus::Exited, "");
    r.started_unix_ms = started;
    match joined {
        Ok(results) => r.stdout = serde_json::to_vec(&results).unwrap_or_default(),
        Err(e) => {
            r.status = TaskStatus::Failed as i32;
            r.error = format!("the device checks failed inside the agent: {e}");
            r.exit_code = 1;
        }
    }
    r.finished_unix_ms = now_ms();
    r
}

/// A device of a `vc_check` task; one with an unreadable address is skipped (and logged).
fn vc_device(d: proto::v1::VcDevice) -> Option<plugins::vc::DeviceSpec> {
    let Ok(address) = d.address.parse() else {
        tracing::warn!(device = d.name, address = d.address, "video device with an unreadable address skipped");
        return None;
    };
    let port = |p: u32, default: u16| u16::try_from(p).ok().filter(|p| *p != 0).unwrap_or(default);
    let sip_port = port(d.sip_port, 5060);
    let sip_uri = if d.sip_uri.is_empty() { format!("sip:{}:{sip_port}", d.address) } else { d.sip_uri };
    Some(plugins::vc::DeviceSpec {
        name: d.name,
        address,
        api: plugins::vc::Api::parse(&d.api),
        api_port: port(d.api_port, 24),
        sip_port,
        sip_uri,
        snmp_port: port(d.snmp_port, 161),
        snmp_community: if d.snmp_community.is_empty() { "public".into() } else { d.snmp_community },
        user: d.user,
        password: d.password,
    })
}

/// A task of a kind this agent runs, with the field of its kind.
enum Work {
    Command(CommandTask),
    Restic(ResticWork),
    Vc(VcCheckTask),
    Ansible(AnsibleTask),
}

/// A module result as the task's stdout: JSON, always whole. Over `cap` bytes, the bulky
/// fields (diff, stdout/stderr lines) are dropped and stdout/stderr shortened, so the JSON stays
/// valid; `truncated` says so.
fn ansible_stdout(r: &crate::ansible::ModuleResult, cap: usize) -> (Vec<u8>, bool) {
    let full = serde_json::to_vec(&r.to_json()).unwrap_or_default();
    if full.len() <= cap {
        return (full, false);
    }
    let mut v = r.to_json();
    if let Some(m) = v.as_object_mut() {
        for key in ["diff", "stdout_lines", "stderr_lines"] {
            m.remove(key);
        }
        for key in ["stdout", "stderr"] {
            if let Some(s) = m.get(key).and_then(serde_json::Value::as_str) {
                let keep = s.char_indices().nth(cap / 4).map_or(s.len(), |(i, _)| i);
                let short = s[..keep].to_string();
                m.insert(key.into(), serde_json::Value::String(short));
            }
        }
        m.insert("truncated".into(), serde_json::Value::Bool(true));
    }
    (serde_json::to_vec(&v).unwrap_or_default(), true)
}

/// The tasks run with restic (`backup/`).
enum ResticWork {
    Backup(BackupTask),
    Restore(RestoreTask),
    Check(BackupCheckTask),
}

impl Work {
    /// The task's own time limit, by its kind (0 when it has none).
    fn timeout_ms(task: &Task) -> u32 {
        match task.kind.as_str() {
            "command" => task.command.as_ref().map_or(0, |c| c.timeout_ms),
            "backup" => task.backup.as_ref().map_or(0, |b| b.timeout_ms),
            "restore" => task.restore.as_ref().map_or(0, |r| r.timeout_ms),
            "backup_check" => task.backup_check.as_ref().map_or(0, |c| c.timeout_ms),
            "vc_check" => task.vc_check.as_ref().map_or(0, |c| c.timeout_ms),
            "ansible" => task.ansible.as_ref().map_or(0, |a| a.timeout_ms),
            _ => 0,
        }
    }

    /// The work a task asks for, or the status and error to report instead.
    fn of(task: Task) -> Result<Work, (TaskStatus, String)> {
        let missing =
            |field: &str| (TaskStatus::Failed, format!("a {:?} task came without its {field} field", task.kind));
        let restic = |work: Option<ResticWork>, field: &str| work.map(Work::Restic).ok_or_else(|| missing(field));
        match task.kind.as_str() {
            "command" => task.command.map(Work::Command).ok_or_else(|| missing("command")),
            "backup" => restic(task.backup.map(ResticWork::Backup), "backup"),
            "restore" => restic(task.restore.map(ResticWork::Restore), "restore"),
            "backup_check" => restic(task.backup_check.map(ResticWork::Check), "backup_check"),
            "vc_check" => task.vc_check.map(Work::Vc).ok_or_else(|| missing("vc_check")),
            "ansible" => task.ansible.map(Work::Ansible).ok_or_else(|| missing("ansible")),
            other => Err((TaskStatus::Unsupported, format!("task kind {other:?} is not supported by this agent"))),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Work::Command(_) => "command",
            Work::Restic(ResticWork::Backup(_)) => "backup",
            Work::Restic(ResticWork::Restore(_)) => "restore",
            Work::Restic(ResticWork::Check(_)) => "backup_check",
            Work::Vc(_) => "vc_check",
            Work::Ansible(_) => "ansible",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Limits;

    fn setup() -> (tempfile::TempDir, Arc<Tasks>, Arc<Mutex<Outbox>>) {
        let d = tempfile::tempdir().expect("tempdir");
        let ob = Arc::new(Mutex::new(Outbox::open(&d.path().join("outbox"), Limits::default()).expect("outbox")));
        let t = Arc::new(Tasks::new(d.path().join("tasks"), ob.clone(), Arc::new(Notify::new()), 1024).expect("tasks"));
        (d, t, ob)
    }

    fn echo(id: &str) -> Task {
        Task {
            id: id.into(),
            kind: "command".into(),
            deadline_unix_ms: now_ms() + 60_000,
            command: Some(CommandTask { program: "echo".into(), args: vec!["hi".into()], timeout_ms: 5_000 }),
            ..Default::default()
        }
    }

    fn results(ob: &Arc<Mutex<Outbox>>) -> Vec<TaskResult> {
        ob.lock()
            .expect("lock")
            .pending_after(0, 100)
            .expect("pending")
            .into_iter()
            .filter_map(|r| match r.body {
                Some(Body::TaskResult(t)) => Some(t),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_task_delivered_twice_runs_once() {
        let (_d, t, ob) = setup();
        t.handle(echo("t1"));
        t.handle(echo("t1"));
        for _ in 0..100 {
            if !results(&ob).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        t.handle(echo("t1"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = results(&ob);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].stdout, b"hi\n");
    }

    #[tokio::test]
    async fn ids_that_differ_only_after_a_dot_keep_separate_journals() {
        let (d, t, ob) = setup();
        for id in ["deploy", "deploy.1", "deploy.2"] {
            t.handle(echo(id));
        }
        for _ in 0..100 {
            if results(&ob).len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(results(&ob).len(), 3);
        for id in ["deploy", "deploy.1", "deploy.2"] {
            assert_eq!(std::fs::read_to_string(d.path().join("tasks").join(id)).expect("journal"), "done");
        }
    }

    #[tokio::test]
    async fn a_task_interrupted_by_a_crash_is_not_run_again() {
        let (d, t, ob) = setup();
        std::fs::write(d.path().join("tasks").join("t2"), "started").expect("journal");
        t.handle(echo("t2"));
        let r = results(&ob);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, TaskStatus::Interrupted as i32);
    }

    #[tokio::test]
    async fn expired_unsupported_and_bad_ids_are_reported_not_run() {
        let (_d, t, ob) = setup();
        let mut late = echo("t3");
        late.deadline_unix_ms = 1;
        t.handle(late);
        let mut other = echo("t4");
        other.kind = "reboot".into();
        t.handle(other);
        t.handle(echo("../etc/passwd"));
        let statuses: Vec<i32> = results(&ob).iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            vec![TaskStatus::Expired as i32, TaskStatus::Unsupported as i32, TaskStatus::Failed as i32]
        );
    }

    const PASSWORD: &str = "kho-sao-lưu-Huế-2f8c7a1d";

    async fn wait_for_results(ob: &Arc<Mutex<Outbox>>, count: usize) -> Vec<TaskResult> {
        for _ in 0..1200 {
            let got = results(ob);
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("fewer than {count} task results after 120 s: {:?}", results(ob));
    }

    fn repository(work: &std::path::Path, name: &str) -> proto::v1::Repository {
        proto::v1::Repository {
            name: name.into(),
            location: work.join(name).to_string_lossy().into_owned(),
            password: PASSWORD.into(),
        }
    }

    /// Every file under `dir` but the secrets dir, as (path, bytes).
    fn files_under(dir: &std::path::Path, secrets: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("read dir") {
                let path = entry.expect("entry").path();
                if path == secrets {
                    continue;
                }
                if path.is_dir() {
                    pending.push(path);
                } else {
                    found.push((path.clone(), std::fs::read(&path).expect("read")));
                }
            }
        }
        found
    }

    #[tokio::test]
    async fn backup_restore_and_check_tasks_run_once_and_leave_no_password_on_disk() {
        if let Err(e) = plugins::restic::Restic::locate(None) {
            panic!("this test runs the real restic: {e} (Debian: `apt-get install -y restic`)");
        }
        let (state, t, ob) = setup();
        let work = tempfile::tempdir().expect("tempdir");
        let source = work.path().join("src");
        std::fs::create_dir_all(&source).expect("mkdir");
        std::fs::write(source.join("hồ-sơ.txt"), "hồ sơ công dân\n").expect("write");
        std::fs::write(source.join("data.bin"), vec![7_u8; 100_000]).expect("write");
        let backup = Task {
            id: "backup-1".into(),
            kind: "backup".into(),
            deadline_unix_ms: now_ms() + 600_000,
            backup: Some(BackupTask {
                system: "hotich".into(),
                plan: "daily".into(),
                paths: vec![source.to_string_lossy().into_owned()],
                repositories: vec![repository(work.path(), "local"), repository(work.path(), "dr")],
                timeout_ms: 300_000,
                ..Default::default()
            }),
            ..Default::default()
        };
        t.handle(backup.clone());
        let done = wait_for_results(&ob, 1).await;
        assert_eq!((done[0].status, done[0].exit_code), (TaskStatus::Exited as i32, 0), "{:?}", done[0]);
        let report: serde_json::Value = serde_json::from_slice(&done[0].stdout).expect("backup JSON");
        let statuses: Vec<&str> =
            report["runs"].as_array().expect("runs").iter().map(|r| r["status"].as_str().expect("status")).collect();
        assert_eq!(statuses, ["ok", "ok"]);
        let snapshot = report["runs"][1]["snapshot_id"].as_str().expect("snapshot id").to_string();
        let manifest_sha256 = report["manifest"]["sha256"].as_str().expect("sha256").to_string();
        assert_eq!(report["manifest"]["files"], 2);

        let target = work.path().join("drill");
        t.handle(Task {
            id: "restore-1".into(),
            kind: "restore".into(),
            restore: Some(RestoreTask {
                repository: Some(repository(work.path(), "dr")),
                snapshot_id: snapshot,
                target: target.to_string_lossy().into_owned(),
                verify: true,
                cleanup: true,
                manifest_sha256,
                ..Default::default()
            }),
            ..Default::default()
        });
        t.handle(Task {
            id: "check-1".into(),
            kind: "backup_check".into(),
            backup_check: Some(BackupCheckTask {
                repository: Some(repository(work.path(), "local")),
                read_data_subset: "100%".into(),
                timeout_ms: 0,
            }),
            ..Default::default()
        });
        let done = wait_for_results(&ob, 3).await;
        let by_id = |id: &str| done.iter().find(|r| r.task_id == id).unwrap_or_else(|| panic!("no result for {id}"));
        let restored: serde_json::Value = serde_json::from_slice(&by_id("restore-1").stdout).expect("restore JSON");
        assert_eq!(restored["ok"], true, "{:?}", by_id("restore-1"));
        assert_eq!((restored["files_checked"].as_u64(), restored["cleaned"].as_bool()), (Some(2), Some(true)));
        assert!(!target.exists());
        let checked: serde_json::Value = serde_json::from_slice(&by_id("check-1").stdout).expect("check JSON");
        assert_eq!(checked, serde_json::json!({"ok": true, "errors": []}));

        // Delivered again: the journal says done, nothing runs.
        t.handle(backup);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(results(&ob).len(), 3);

        let secrets = state.path().join("backup/secrets");
        let left: Vec<_> = std::fs::read_dir(&secrets).expect("secrets dir").collect();
        assert!(left.is_empty(), "password files left behind: {left:?}");
        let files = files_under(state.path(), &secrets);
        assert!(files.iter().any(|(path, _)| path.starts_with(state.path().join("outbox"))));
        for (path, bytes) in files {
            assert!(!bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()), "password in {}", path.display());
        }
    }

    #[tokio::test]
    async fn a_vc_check_task_reports_every_device_as_json() {
        let (_d, t, ob) = setup();
        let device = |name: &str, address: &str| proto::v1::VcDevice {
            name: name.into(),
            address: address.into(),
            api: "telnet".into(),
            api_port: 9,
            sip_port: 9,
            snmp_port: 9,
            password: "bí-mật".into(),
            ..Default::default()
        };
        t.handle(Task {
            id: "vc-1".into(),
            kind: "vc_check".into(),
            deadline_unix_ms: now_ms() + 60_000,
            vc_check: Some(VcCheckTask {
                devices: vec![device("vc-a", "127.0.0.1"), device("vc-bad", "not-an-address")],
                timeout_ms: 500,
            }),
            ..Default::default()
        });
        let done = wait_for_results(&ob, 1).await;
        assert_eq!(done[0].status, TaskStatus::Exited as i32, "{:?}", done[0]);
        let v: serde_json::Value = serde_json::from_slice(&done[0].stdout).expect("JSON");
        let devices = v.as_array().expect("list");
        assert_eq!(devices.len(), 1, "the unreadable address is skipped: {v}");
        assert_eq!((devices[0]["device"].as_str(), devices[0]["state"].as_str()), (Some("vc-a"), Some("down")));
        assert!(!String::from_utf8_lossy(&done[0].stdout).contains("bí-mật"));
    }

    #[test]
    fn progress_events_go_into_the_outbox() {
        let (_d, t, ob) = setup();
        let fields = std::collections::HashMap::from([("task_id".to_string(), "b1".to_string())]);
        t.report_event(Event { kind: "backup.progress".into(), message: "50%".into(), fields });
        let pending = ob.lock().expect("lock").pending_after(0, 10).expect("pending");
        assert!(
            matches!(&pending[..], [r] if matches!(&r.body, Some(Body::Event(e)) if e.kind == "backup.progress")),
            "{pending:?}"
        );
    }

    #[tokio::test]
    async fn a_backup_task_without_its_field_fails_and_an_interrupted_one_is_not_run_again() {
        let (d, t, ob) = setup();
        t.handle(Task { id: "b1".into(), kind: "backup".into(), ..Default::default() });
        std::fs::write(d.path().join("tasks").join("b2"), "started").expect("journal");
        t.handle(Task {
            id: "b2".into(),
            kind: "backup".into(),
            backup: Some(BackupTask::default()),
            ..Default::default()
        });
        let r = results(&ob);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].status, r[0].error.as_str()),
            (TaskStatus::Failed as i32, "a \"backup\" task came without its backup field")
        );
        assert_eq!(r[1].status, TaskStatus::Interrupted as i32);
    }

    fn ansible(id: &str, module: &str, args: serde_json::Value, check: bool) -> Task {
        Task {
            id: id.into(),
            kind: "ansible".into(),
            deadline_unix_ms: now_ms() + 60_000,
            ansible: Some(AnsibleTask {
                module: module.into(),
                args_json: args.to_string(),
                check,
                diff: true,
                timeout_ms: 10_000,
                become_user: String::new(),
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn an_ansible_task_returns_the_module_result_as_json_and_fails_with_the_module() {
        let (d, t, ob) = setup();
        let path = d.path().join("motd");
        let copy = serde_json::json!({"dest": path, "content": "xin chào\n", "mode": "0640"});
        t.handle(ansible("a-check", "ansible.builtin.copy", copy.clone(), true));
        let r = wait_for_results(&ob, 1).await;
        assert_eq!((r[0].status, r[0].exit_code), (TaskStatus::Exited as i32, 0), "{:?}", r[0]);
        let out: serde_json::Value = serde_json::from_slice(&r[0].stdout).expect("module JSON");
        assert_eq!(out["changed"], true);
        assert_eq!(out["diff"]["after"], "xin chào\n");
        assert!(!path.exists(), "check mode wrote the file");

        t.handle(ansible("a-run", "copy", copy.clone(), false));
        wait_for_results(&ob, 2).await;
        t.handle(ansible("a-again", "copy", copy, false));
        let r = wait_for_results(&ob, 3).await;
        let changed: Vec<serde_json::Value> = r[1..]
            .iter()
            .map(|r| serde_json::from_slice::<serde_json::Value>(&r.stdout).expect("JSON")["changed"].clone())
            .collect();
        assert_eq!(changed, [true, false]);
        assert_eq!(std::fs::read_to_string(&path).expect("written"), "xin chào\n");

        t.handle(ansible("a-bad", "file", serde_json::json!({"path": path, "colour": "blue"}), false));
        let r = wait_for_results(&ob, 4).await;
        assert_eq!((r[3].status, r[3].exit_code), (TaskStatus::Exited as i32, 1), "{:?}", r[3]);
        let out: serde_json::Value = serde_json::from_slice(&r[3].stdout).expect("module JSON");
        assert_eq!(out["failed"], true);
        let msg = out["msg"].as_str().expect("msg");
        assert!(msg.starts_with("Unsupported parameters for (file) module: colour."), "{msg}");
    }
}
