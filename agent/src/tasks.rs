//! Running the tasks the controller sends, at most once per task id.
//!
//! A journal file per id (`<state-dir>/tasks/<id>`) says `started` before the program runs
//! and `done` once its result is in the outbox. So a task delivered again is not run again:
//! `done` means its result is already on its way; `started` without `done` means the agent
//! died while it ran, and the result says so (`interrupted`) instead of running a command that
//! may not be idempotent a second time.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::v1::report::Body;
use proto::v1::{Task, TaskResult, TaskStatus};
use tokio::sync::Notify;

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
        Ok(Tasks { dir, running: Mutex::new(HashSet::new()), outbox, appended, output_cap })
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
        let timeout_ms = task.command.as_ref().map_or(0, |c| i64::from(c.timeout_ms));
        if task.deadline_unix_ms != 0 && now_ms().saturating_add(timeout_ms) > task.deadline_unix_ms {
            self.finish(result(&id, TaskStatus::Expired, "too late to run before its deadline; not started"));
            self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            return;
        }
        let Some(cmd) = task.command.filter(|_| task.kind == "command") else {
            self.finish(result(
                &id,
                TaskStatus::Unsupported,
                &format!("task kind {:?} is not supported by this agent", task.kind),
            ));
            self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            return;
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
            tracing::info!(task_id = id, program = cmd.program, "task started");
            let spec = CommandSpec {
                program: cmd.program,
                args: cmd.args,
                timeout: Duration::from_millis(u64::from(cmd.timeout_ms.max(1))),
            };
            let mut r = run_command(&spec, me.output_cap).await;
            r.task_id = id.clone();
            tracing::info!(task_id = id, status = r.status, exit_code = r.exit_code, "task finished");
            me.finish(r);
            me.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Limits;
    use proto::v1::CommandTask;

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
}
