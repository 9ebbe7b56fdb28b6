//! `POST /api/v1/ansible/run`: a playbook run through the agents. The controller loads and
//! checks the playbook from the files the CLI sends (refusing the whole run, before any host
//! changes, as `mangrove ansible run` does locally), then runs it with the engine in
//! `ansible_compat::run`, each module call sent to the host's agent as an `ansible` task
//! (the controller's ordinary task dispatch: stored, sent over the agent's stream, its result
//! awaited). Hosts whose `mangrove_agent` is not `native`, or whose agent is not connected,
//! are unreachable. Operator or admin; audited as `ansible.run`.
//!
//! Idempotence: each module call is a new task (`ans-<random>`); a module is idempotent on
//! its own (a second run reports `changed: false`), so a retried run is safe. Not
//! cancellation-safe mid-run: a dropped request leaves the tasks already sent running.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ansible_compat::run::{self, CallResult, ModuleCall, Modules, Options};
use ansible_compat::{AnsibleInventory, export, playbook};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use proto::v1::{AnsibleTask, ControllerMessage, Task, controller_message};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::api::{ApiResult, Auth, require};
use crate::app::{App, AppError, Role, now_ms};
use crate::store::TaskRecord;

/// Longest one module call may take on an agent.
const MODULE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a module call waits for its agent to take it, beyond its timeout.
const DELIVERY: Duration = Duration::from_secs(30);

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/v1/ansible/run", post(run_playbook))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    /// The playbook's path, as a key of `files`.
    playbook: String,
    /// The playbook and everything next to it (roles, vars files, templates, files).
    files: Vec<RunFile>,
    #[serde(default)]
    limit: Option<String>,
    #[serde(default)]
    check: bool,
    #[serde(default)]
    diff: bool,
    #[serde(default)]
    extra_vars: ansible_compat::Vars,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    skip_tags: Vec<String>,
    /// Answer with JSON lines as the run goes (`{"line": ...}` for each output line, then
    /// `{"result": ...}`) instead of one JSON document at the end.
    #[serde(default)]
    stream: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    path: String,
    text: String,
}

async fn run_playbook(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    body: Result<Json<RunRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(req) = body?;
    require(&p, &[Role::Operator], "run playbooks")?;
    let files: BTreeMap<String, String> = req.files.into_iter().map(|f| (f.path, f.text)).collect();
    let pb = match playbook::load(&req.playbook, &files) {
        Ok(pb) => pb,
        Err(problems) => {
            let lines: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
            return Ok(Json(json!({"playbook": req.playbook, "refused": true, "problems": lines, "ran": false}))
                .into_response());
        }
    };
    if let Err(problems) = playbook::check_vars("-e", &req.extra_vars) {
        let lines: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
        return Ok(
            Json(json!({"playbook": req.playbook, "refused": true, "problems": lines, "ran": false})).into_response()
        );
    }
    let (ai, facts, reach) = targets(&app).await?;
    app.audit(
        &p.user,
        "ansible.run",
        Some(&req.playbook),
        json!({"limit": req.limit, "check": req.check, "diff": req.diff, "tags": req.tags, "skip_tags": req.skip_tags,
               "extra_vars": req.extra_vars.keys().collect::<Vec<_>>()}),
    )
    .await;
    let options = Options {
        check: req.check,
        diff: req.diff,
        limit: req.limit.clone(),
        extra_vars: req.extra_vars.clone(),
        only_tags: ansible_compat::tags::parse_list(&req.tags),
        skip_tags: ansible_compat::tags::parse_list(&req.skip_tags),
    };
    let modules = AgentModules { app: app.clone(), rt: tokio::runtime::Handle::current(), by: p.user.clone(), reach };
    let started = std::time::Instant::now();
    let playbook_name = req.playbook.clone();
    let by = p.user.clone();
    // The engine is synchronous (it runs each task's hosts on threads); keep it off the
    // runtime's workers. Lines go out as they come when the caller streams.
    let (line_tx, line_rx) = tokio::sync::mpsc::channel::<String>(1024);
    let stream = req.stream;
    let job = tokio::task::spawn_blocking(move || {
        let input = run::Input { playbook: &pb, inventory: &ai, facts: &facts, files: &files, options };
        let mut lines = Vec::new();
        let report = run::run(&input, &modules, &mut |l| {
            if stream {
                // A caller that went away does not stop the run: its tasks are under way.
                let _ = line_tx.blocking_send(json!({"line": l}).to_string());
            }
            lines.push(l.to_owned());
        });
        (report, lines)
    });
    let finish = move |report: run::Report, lines: Vec<String>| {
        tracing::info!(
            by,
            playbook = playbook_name,
            exit_code = report.exit_code,
            ms = started.elapsed().as_millis() as u64,
            "playbook run finished"
        );
        let mut out = report.to_json();
        out["playbook"] = json!(playbook_name);
        out["refused"] = json!(false);
        out["ran"] = json!(true);
        if !stream {
            out["output"] = json!(lines);
        }
        out["elapsed_ms"] = json!(started.elapsed().as_millis() as u64);
        out
    };
    if !stream {
        let (report, lines) = job.await.map_err(|e| AppError::Conflict(format!("the playbook run stopped: {e}")))?;
        return Ok(Json(finish(report, lines)).into_response());
    }
    let (tail_tx, tail_rx) = tokio::sync::mpsc::channel::<String>(1);
    tokio::spawn(async move {
        let last = match job.await {
            Ok((report, lines)) => json!({"result": finish(report, lines)}),
            Err(e) => json!({"error": format!("the playbook run stopped: {e}")}),
        };
        let _ = tail_tx.send(last.to_string()).await;
    });
    let lines = ReceiverStream::new(line_rx).chain(ReceiverStream::new(tail_rx));
    let body = Body::from_stream(lines.map(|l| Ok::<_, std::convert::Infallible>(Bytes::from(l + "\n"))));
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// The controller's inventory as Ansible sees it, each host's facts from its agent, and
/// whether each host can run modules now (a connected native agent).
async fn targets(app: &App) -> Result<(AnsibleInventory, BTreeMap<String, Value>, Reach), AppError> {
    let inv = app
        .inventory
        .clone()
        .ok_or_else(|| AppError::Conflict("the controller was started without an inventory".into()))?;
    let ai = export::from_mangrove(&inv);
    let mut facts = BTreeMap::new();
    for h in app.store.list_hosts().await? {
        if let Some(f) = &h.facts {
            facts.insert(h.name.clone(), run::facts::from_agent(f));
        }
    }
    let mut reach = BTreeMap::new();
    for (name, vars) in &ai.hosts {
        let agent = vars.get("mangrove_agent").and_then(Value::as_str).unwrap_or("none");
        let r = if agent != "native" {
            Err(format!("{name} has mangrove_agent {agent}: only machines with a native agent run playbooks"))
        } else if !app.sessions.is_live(name) {
            Err(format!("the agent of {name} is not connected"))
        } else {
            Ok(())
        };
        reach.insert(name.clone(), r);
    }
    Ok((ai, facts, reach))
}

type Reach = BTreeMap<String, Result<(), String>>;

/// A task list as a playbook of one play on `hosts` without fact gathering, checked as
/// `mangrove ansible run` checks a playbook; and the files it was loaded from.
///
/// # Errors
/// What the runner refuses in the task list, and where.
pub fn task_list_playbook(
    hosts: &str,
    tasks: &[Value],
) -> Result<(playbook::Playbook, BTreeMap<String, String>), String> {
    const NAME: &str = "remediation.yml";
    let play =
        json!([{"name": format!("remediation on {hosts}"), "hosts": hosts, "gather_facts": false, "tasks": tasks}]);
    // JSON is YAML: the playbook loader reads it as written.
    let files = BTreeMap::from([(NAME.to_owned(), play.to_string())]);
    let pb = playbook::load(NAME, &files).map_err(|problems| {
        let lines: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
        format!("the task list is refused: {}", lines.join("; "))
    })?;
    Ok((pb, files))
}

/// Runs an Ansible task list (a policy control's remediation, held as data in its pack) on
/// `host` through its agent, as `by`, in check mode when `check`: the tasks become one play
/// on that host without fact gathering, checked against what the runner supports first.
///
/// Idempotence: as the modules' (a second run of an applied task list changes nothing).
///
/// # Errors
/// The task list is refused (what and where), or the run could not be started.
pub async fn run_tasks(
    app: &Arc<App>,
    host: &str,
    tasks: &[Value],
    check: bool,
    by: &str,
) -> Result<run::Report, String> {
    let (pb, files) = task_list_playbook(host, tasks)?;
    let (ai, facts, reach) = targets(app).await.map_err(|e| e.to_string())?;
    let modules = AgentModules { app: app.clone(), rt: tokio::runtime::Handle::current(), by: by.to_owned(), reach };
    let options = Options { check, limit: Some(host.to_owned()), ..Options::default() };
    tokio::task::spawn_blocking(move || {
        let input = run::Input { playbook: &pb, inventory: &ai, facts: &facts, files: &files, options };
        run::run(&input, &modules, &mut |_| {})
    })
    .await
    .map_err(|e| format!("the remediation run stopped: {e}"))
}

/// Module calls as `ansible` tasks to the hosts' agents.
struct AgentModules {
    app: Arc<App>,
    rt: tokio::runtime::Handle,
    by: String,
    reach: BTreeMap<String, Result<(), String>>,
}

impl Modules for AgentModules {
    fn reachable(&self, host: &str) -> Result<(), String> {
        self.reach.get(host).cloned().unwrap_or_else(|| Err(format!("{host} is not in the controller's inventory")))
    }

    fn call(&self, host: &str, call: &ModuleCall) -> CallResult {
        if let Err(e) = self.reachable(host) {
            return CallResult::Unreachable(e);
        }
        self.rt.block_on(dispatch(&self.app, host, call, &self.by))
    }
}

fn failed(msg: String) -> CallResult {
    CallResult::Done(json!({"failed": true, "changed": false, "msg": msg}))
}

async fn dispatch(app: &App, host: &str, call: &ModuleCall, by: &str) -> CallResult {
    let id = format!("ans-{}", hex::encode(rand::random::<[u8; 8]>()));
    let now = now_ms();
    let args = json!({"module": call.module, "args": call.args, "check": call.check, "diff": call.diff,
                      "become_user": call.become_user, "timeout_ms": MODULE_TIMEOUT.as_millis() as u64});
    let deadline = now.saturating_add(i64::try_from((MODULE_TIMEOUT + DELIVERY).as_millis()).unwrap_or(i64::MAX));
    let task = TaskRecord::pending(&id, host, "ansible", args, by, now, deadline);
    if let Err(e) = app.store.insert_task(&task).await {
        return failed(format!("the controller could not record the task: {e}"));
    }
    app.metrics.tasks_created.inc();
    let Some(m) = message(&task) else { return failed("the task could not be encoded".into()) };
    if !app.sessions.send(host, m) {
        return CallResult::Unreachable(format!("the agent of {host} is not connected"));
    }
    if let Err(e) = app.store.mark_task_delivered(&id, now_ms()).await {
        tracing::warn!(task_id = id, error = %e, "could not mark the task delivered");
    }
    // Results arrive as reports and are stored.
    match crate::tasks::wait_finished(app, &id, deadline).await {
        Ok(Some(t)) => outcome(host, &t),
        Ok(None) => CallResult::Unreachable(format!(
            "no result from the agent of {host} within {}s",
            (MODULE_TIMEOUT + DELIVERY).as_secs()
        )),
        Err(e) => failed(format!("the controller could not read the task: {e}")),
    }
}

fn outcome(host: &str, t: &TaskRecord) -> CallResult {
    match t.state.as_str() {
        "exited" => match serde_json::from_slice::<Value>(&t.stdout) {
            Ok(v @ Value::Object(_)) => CallResult::Done(v),
            _ if t.stdout_truncated => failed("the module's result was too large to return".into()),
            _ => failed(format!("the agent of {host} returned a result that is not JSON")),
        },
        "expired" | "interrupted" => CallResult::Unreachable(format!(
            "the agent of {host} did not finish the task ({}){}",
            t.state,
            t.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
        )),
        other => {
            failed(format!("the task {other}{}", t.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()))
        }
    }
}

/// The message that carries an `ansible` task to its agent.
pub fn message(t: &TaskRecord) -> Option<ControllerMessage> {
    if t.kind != "ansible" {
        return None;
    }
    let a = &t.args;
    let timeout_ms = a.get("timeout_ms").and_then(Value::as_u64).unwrap_or(600_000);
    Some(ControllerMessage {
        msg: Some(controller_message::Msg::Task(Task {
            id: t.id.clone(),
            kind: t.kind.clone(),
            deadline_unix_ms: t.deadline,
            ansible: Some(AnsibleTask {
                module: a.get("module")?.as_str()?.to_owned(),
                args_json: a.get("args")?.to_string(),
                check: a.get("check").and_then(Value::as_bool).unwrap_or(false),
                diff: a.get("diff").and_then(Value::as_bool).unwrap_or(false),
                timeout_ms: u32::try_from(timeout_ms).unwrap_or(u32::MAX),
                become_user: a.get("become_user").and_then(Value::as_str).unwrap_or("").to_owned(),
            }),
            ..Default::default()
        })),
    })
}
