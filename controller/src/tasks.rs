//! Tasks the controller sends to agents, and their results.
//!
//! A task is idempotent by id: creating a task with an id that exists returns that task if it
//! is the same request, and is refused otherwise; an agent runs a given id at most once (it
//! keeps a record by id), so a task delivered twice never runs twice.

use std::time::Duration;

use proto::v1::{CommandTask, ControllerMessage, Task, controller_message};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::{App, AppError, Principal, Role, now_ms, rfc3339};
use crate::store::TaskRecord;

/// Longest a command may run.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// How long a task waits for its agent to connect before it expires, beyond its timeout.
pub const DELIVERY_WINDOW: Duration = Duration::from_secs(15 * 60);

/// `POST /api/v1/tasks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Optional idempotency key; generated when absent.
    pub id: Option<String>,
    pub host: String,
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Seconds; default 60.
    pub timeout_seconds: Option<u64>,
}

fn valid_task_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Creates a `command` task for a host (or returns the existing one with the same id).
pub async fn create_command(app: &App, by: &Principal, req: CommandRequest) -> Result<TaskRecord, AppError> {
    if !by.may(&[Role::Operator]) {
        return Err(AppError::Forbidden(format!("role {} may not run tasks", by.role.as_str())));
    }
    if req.program.is_empty() {
        return Err(AppError::BadRequest("program is empty".into()));
    }
    let timeout = Duration::from_secs(req.timeout_seconds.unwrap_or(60));
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(AppError::BadRequest(format!("timeout_seconds must be between 1 and {}", MAX_TIMEOUT.as_secs())));
    }
    let args = json!({"program": req.program, "args": req.args, "timeout_ms": timeout.as_millis() as u64});
    if let Some(id) = &req.id {
        if !valid_task_id(id) {
            return Err(AppError::BadRequest(format!("invalid task id {id:?} (letters, digits, - _ . up to 64)")));
        }
        if let Some(existing) = app.store.get_task(id).await? {
            if existing.host == req.host && existing.args == args {
                return Ok(existing);
            }
            return Err(AppError::Conflict(format!("task {id} exists with another host or command")));
        }
    }
    if app.store.get_host(&req.host).await?.is_none() {
        return Err(AppError::NotFound(format!("no host named {}", req.host)));
    }
    let now = now_ms();
    let id = req.id.clone().unwrap_or_else(|| format!("t-{}", hex::encode(rand::random::<[u8; 8]>())));
    let window = i64::try_from((timeout + DELIVERY_WINDOW).as_millis()).unwrap_or(i64::MAX);
    let task = TaskRecord::pending(&id, &req.host, "command", args, &by.user, now, now.saturating_add(window));
    app.store.insert_task(&task).await?;
    app.metrics.tasks_created.inc();
    app.audit(
        &by.user,
        "task.create",
        Some(&req.host),
        json!({"task_id": id, "program": req.program, "args": req.args}),
    )
    .await;
    if let Some(m) = message_for(app, &task)
        && app.sessions.send(&task.host, m)
    {
        app.store.mark_task_delivered(&id, now_ms()).await?;
    }
    Ok(app.store.get_task(&id).await?.unwrap_or(task))
}

/// Waits for task `id` to finish (any state past pending and delivered), polling the store
/// where results land (a few ms each); `None` once `until` (unix ms) passes first.
pub async fn wait_finished(app: &App, id: &str, until: i64) -> Result<Option<TaskRecord>, AppError> {
    let mut wait = Duration::from_millis(5);
    loop {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(100));
        if let Some(t) = app.store.get_task(id).await?
            && !matches!(t.state.as_str(), "pending" | "delivered")
        {
            return Ok(Some(t));
        }
        if now_ms() > until {
            return Ok(None);
        }
    }
}

/// The message that carries a task of any kind to its agent (None for a kind this controller
/// cannot send).
pub fn message_for(app: &App, t: &TaskRecord) -> Option<ControllerMessage> {
    if crate::backup::runs::KINDS.contains(&t.kind.as_str()) {
        return crate::backup::runs::task_message(app, t);
    }
    if t.kind == crate::vc::KIND {
        return crate::vc::task_message(app, t);
    }
    if t.kind == "ansible" {
        return crate::ansible_run::message(t);
    }
    task_message(t)
}

/// The message that carries a command task to its agent (None for any other kind).
pub fn task_message(t: &TaskRecord) -> Option<ControllerMessage> {
    if t.kind != "command" {
        return None;
    }
    let program = t.args.get("program")?.as_str()?.to_string();
    let args = t.args.get("args")?.as_array()?.iter().filter_map(|a| a.as_str().map(str::to_string)).collect();
    let timeout_ms = t.args.get("timeout_ms").and_then(Value::as_u64).unwrap_or(60_000);
    Some(ControllerMessage {
        msg: Some(controller_message::Msg::Task(Task {
            id: t.id.clone(),
            kind: t.kind.clone(),
            deadline_unix_ms: t.deadline,
            command: Some(CommandTask { program, args, timeout_ms: u32::try_from(timeout_ms).unwrap_or(u32::MAX) }),
            ..Default::default()
        })),
    })
}

/// The JSON form of a task (`tasks show --json`).
pub fn task_json(t: &TaskRecord) -> Value {
    let opt = |v: Option<i64>| v.map(rfc3339);
    json!({
        "id": t.id,
        "host": t.host,
        "kind": t.kind,
        "program": t.args.get("program"),
        "args": t.args.get("args"),
        "created_by": t.created_by,
        "created_at": rfc3339(t.created_at),
        "deadline": rfc3339(t.deadline),
        "state": t.state,
        "finished": !matches!(t.state.as_str(), "pending" | "delivered"),
        "delivered_at": opt(t.delivered_at),
        "started_at": opt(t.started_at),
        "finished_at": opt(t.finished_at),
        "exit_code": t.exit_code,
        "stdout": String::from_utf8_lossy(&t.stdout),
        "stderr": String::from_utf8_lossy(&t.stderr),
        "stdout_truncated": t.stdout_truncated,
        "stderr_truncated": t.stderr_truncated,
        "error": t.error,
    })
}

/// Marks tasks whose deadline passed as expired, every few seconds, until shutdown.
pub async fn expire_loop(app: std::sync::Arc<App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match app.store.expire_tasks(now_ms()).await {
            Ok(ids) => {
                for id in ids {
                    tracing::warn!(task_id = id, "task expired before its agent reported a result");
                }
            }
            Err(e) => tracing::error!(error = %e, "could not expire tasks"),
        }
    }
}
