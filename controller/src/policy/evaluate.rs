//! Evaluating a host against the packs assigned to it: the input document from its latest
//! facts and its systems' backup and drill records, each pack's controls at the host's level,
//! waivers applied, findings stored with their history, and (in `enforce` mode) a remediation
//! task for each failing control whose remediation is marked safe.
//!
//! Guarantees: an evaluation changes only the findings of the host it evaluates; a remediation
//! task's id is derived from (host, pack, control, since), so evaluating again while the
//! control still fails never creates a second task for the same failure; an unsafe
//! remediation never becomes a task.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::scope;
use crate::app::{App, AppError, Principal, Role, now_ms, rfc3339};
use crate::store::{Assignment, FindingRecord, Waiver};

/// What evaluating one host did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outcome {
    pub host: String,
    pub level: Option<u8>,
    pub packs: Vec<String>,
    pub findings: usize,
    pub failing: usize,
    /// Remediation tasks created (enforce mode), or that would be created (dry run).
    pub remediations: Vec<Remediation>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Remediation {
    pub task_id: String,
    pub host: String,
    pub control: String,
    /// A command remediation's program and arguments (empty for an Ansible one).
    pub program: String,
    pub args: Vec<String>,
    /// An Ansible remediation's task list, run through the controller's playbook runner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ansible: Option<Vec<Value>>,
    /// For a dry run of an Ansible remediation: what check mode reported on the host
    /// (`{changed, failed, unreachable, tasks: [{task, status}]}`, or `{error}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Value>,
}

/// The waiver that hides a failure of `control` on `host` now, if any: one for the host or
/// for a system it serves, not yet expired. A waiver past its expiry hides nothing.
pub fn active_waiver<'a>(
    waivers: &'a [Waiver],
    control: &str,
    host: &str,
    systems: &[policies::SystemRef],
    now: i64,
) -> Option<&'a Waiver> {
    waivers.iter().find(|w| {
        w.control == control
            && w.until > now
            && match w.scope.as_str() {
                "host" => w.target == host,
                "system" => systems.iter().any(|s| s.name == w.target),
                _ => false,
            }
    })
}

fn status_word(s: policies::Status) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| "error".into())
}

/// The idempotent task id of the remediation of one failure.
fn remediation_id(host: &str, pack: &str, control: &str, since: i64) -> String {
    let digest = Sha256::digest(format!("{host}\n{pack}\n{control}\n{since}").as_bytes());
    format!("rem-{}", hex::encode(&digest[..10]))
}

/// Evaluates `host` now against its assigned packs and stores the findings.
pub async fn evaluate_host(app: &Arc<App>, host: &str, cause: &str, dry_run: bool) -> Result<Outcome, String> {
    evaluate_host_with(app, host, cause, dry_run, None).await
}

/// Evaluates `host` as if `extra` were assigned too. With `dry_run`, computes the remediations
/// enforce mode would run on the facts as they are, and stores and starts nothing.
pub async fn evaluate_host_with(
    app: &Arc<App>,
    host: &str,
    cause: &str,
    dry_run: bool,
    extra: Option<&Assignment>,
) -> Result<Outcome, String> {
    let hosts = [(host.to_string(), cause.to_string())];
    evaluate_hosts_with(app, &hosts, dry_run, extra)
        .await?
        .pop()
        .unwrap_or_else(|| Err(format!("no outcome for {host}")))
}

/// Evaluates many hosts now (`(host, cause)` each) and stores their findings: what
/// [`evaluate_host`] does for each, with the store read once for all and each pack's hosts
/// judged in one batch (`Evaluator::evaluate_level_batch`). `result[i]` is the outcome of
/// `hosts[i]`; a host that cannot be evaluated (unknown) fails alone.
pub async fn evaluate_hosts(
    app: &Arc<App>,
    hosts: &[(String, String)],
) -> Result<Vec<Result<Outcome, String>>, String> {
    evaluate_hosts_with(app, hosts, false, None).await
}

/// Hosts with a stored record that the systems `keep` accepts run on.
pub async fn hosts_where(app: &Arc<App>, keep: impl Fn(&inventory::System) -> bool) -> Result<Vec<String>, AppError> {
    let inv = app.inventory.clone().ok_or_else(|| AppError::Conflict("the controller has no inventory".into()))?;
    let vms = app.store.list_vms().await?;
    let known: Vec<String> = app.store.list_hosts().await?.into_iter().map(|h| h.name).collect();
    let mut out: Vec<String> = Vec::new();
    for s in inv.systems.iter().filter(|s| keep(s)) {
        for h in scope::system_hosts(&inv, &s.name, &vms) {
            if known.contains(&h) && !out.contains(&h) {
                out.push(h);
            }
        }
    }
    Ok(out)
}

/// Re-evaluates, in the background, the hosts of `systems` on the facts they last sent: for
/// evidence that arrives at the controller rather than from the hosts (a drill record), so its
/// findings change now instead of at each host's next facts report.
pub fn reevaluate_systems(app: &Arc<App>, systems: Vec<String>, cause: String) {
    let app = app.clone();
    tokio::spawn(async move {
        let hosts = match hosts_where(&app, |s| systems.contains(&s.name)).await {
            Ok(h) => h,
            Err(e) => return tracing::warn!(error = %e, cause, "cannot find the hosts to re-evaluate"),
        };
        let batch: Vec<(String, String)> = hosts.iter().map(|h| (h.clone(), cause.clone())).collect();
        match evaluate_hosts(&app, &batch).await {
            Ok(results) => {
                for (host, r) in hosts.iter().zip(results) {
                    if let Err(e) = r {
                        tracing::warn!(host, error = %e, cause, "re-evaluation failed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, cause, "re-evaluation failed"),
        }
    });
}

/// One host's share of a batch: what it is judged on, and the findings it gets per pack.
struct Judged {
    host: String,
    cause: String,
    sc: scope::HostScope,
    record: crate::store::HostRecord,
    existing: Vec<FindingRecord>,
    /// `(pack, mode, findings)` in the order of `sc.packs`, for the packs this controller knows.
    packs: Vec<(String, String, Vec<policies::Finding>)>,
}

/// The documents of one (pack, level) to judge together, and whose each is: (index into the
/// batch's `Judged` list, index into its `packs`).
#[derive(Default)]
struct Batch {
    inputs: Vec<Value>,
    owners: Vec<(usize, usize)>,
}

async fn evaluate_hosts_with(
    app: &Arc<App>,
    hosts: &[(String, String)],
    dry_run: bool,
    extra: Option<&Assignment>,
) -> Result<Vec<Result<Outcome, String>>, String> {
    let inv = app.inventory.clone().ok_or("the controller was started without an inventory")?;
    let mut assignments = app.store.list_assignments().await.map_err(|e| e.to_string())?;
    assignments.extend(extra.cloned());
    if assignments.is_empty() {
        // The common case on every facts report before any pack is assigned: nothing to read.
        return Ok(hosts.iter().map(|(h, _)| Ok(Outcome { host: h.clone(), ..Outcome::default() })).collect());
    }
    let vms = app.store.list_vms().await.map_err(|e| e.to_string())?;
    let now = now_ms();
    let waivers = app.store.list_waivers().await.map_err(|e| e.to_string())?;
    let mut results: Vec<Result<Outcome, String>> = Vec::with_capacity(hosts.len());
    let mut judged: Vec<(usize, Judged)> = Vec::new();
    // The hosts to judge together, per (pack, level).
    let mut batches: std::collections::BTreeMap<(String, u8), Batch> = std::collections::BTreeMap::new();
    for (host, cause) in hosts {
        let sc = scope::scope(&inv, host, &vms, &assignments);
        let out = Outcome { host: host.clone(), level: sc.level, ..Outcome::default() };
        let Some(level) = sc.level else {
            results.push(Ok(out));
            continue;
        };
        if sc.packs.is_empty() {
            results.push(Ok(out));
            continue;
        }
        let record = match app.store.get_host(host).await.map_err(|e| e.to_string())? {
            Some(record) => record,
            None => {
                results.push(Err(format!("no host named {host}")));
                continue;
            }
        };
        let existing = app.store.list_findings(Some(host)).await.map_err(|e| e.to_string())?;
        let system_names: Vec<String> = sc.systems.iter().map(|s| s.name.clone()).collect();
        let backups = crate::backup::policy_input(app, &system_names).await;
        let drills = super::drills::policy_input(app, &system_names).await;
        let index = judged.len();
        let mut packs = Vec::new();
        for (pack, mode) in &sc.packs {
            if app.policy.evaluator(pack).is_none() {
                tracing::warn!(host, pack, "assigned pack is not known to this controller");
                continue;
            }
            let input = policies::input(
                policies::HostRef {
                    name: host.clone(),
                    site: record.site.clone().unwrap_or_default(),
                    kind: record.kind.clone(),
                },
                record.facts.clone().unwrap_or(Value::Null),
                level,
                now / 1000,
            )
            .systems(sc.systems.clone())
            .backups(backups.clone())
            .drills(drills.clone())
            .build();
            let batch = batches.entry((pack.clone(), level)).or_default();
            batch.inputs.push(input);
            batch.owners.push((index, packs.len()));
            packs.push((pack.clone(), mode.clone(), Vec::new()));
        }
        // Its place in `results` is taken when the findings are in.
        results.push(Ok(out));
        judged.push((
            results.len() - 1,
            Judged { host: host.clone(), cause: cause.clone(), sc, record, existing, packs },
        ));
    }
    for ((pack, level), Batch { inputs, owners }) in batches {
        let Some(evaluator) = app.policy.evaluator(&pack) else { continue };
        let findings = tokio::task::spawn_blocking(move || evaluator.evaluate_level_batch(level, &inputs))
            .await
            .map_err(|e| format!("policy evaluation failed unexpectedly: {e}"))?;
        for ((j, p), f) in owners.into_iter().zip(findings) {
            judged[j].1.packs[p].2 = f;
        }
    }
    for (slot, j) in judged {
        results[slot] = record_outcome(app, j, now, &waivers, &assignments, dry_run, extra).await;
    }
    Ok(results)
}

/// Applies waivers to one host's findings, stores them with their history and (in enforce
/// mode, or for a dry run) works out the remediations, starting them unless `dry_run`.
async fn record_outcome(
    app: &Arc<App>,
    j: Judged,
    now: i64,
    waivers: &[Waiver],
    assignments: &[Assignment],
    dry_run: bool,
    extra: Option<&Assignment>,
) -> Result<Outcome, String> {
    let Judged { host, cause, sc, record, existing, packs } = j;
    let host = host.as_str();
    let mut out = Outcome { host: host.to_string(), level: sc.level, ..Outcome::default() };
    let level = sc.level.unwrap_or_default();
    for (pack, mode, findings) in packs {
        let mut rows = Vec::with_capacity(findings.len());
        for f in findings {
            let mut status = status_word(f.status);
            let mut message = f.message.clone();
            if matches!(status.as_str(), "fail" | "error")
                && let Some(w) = active_waiver(waivers, &f.control, host, &sc.systems, now)
            {
                message = format!("waived until {} by {}: {} ({message})", rfc3339(w.until), w.created_by, w.reason);
                status = "waived".into();
            }
            let since = existing
                .iter()
                .find(|e| e.host == host && e.pack == pack && e.control == f.control && e.status == status)
                .map_or(now, |e| e.since);
            rows.push(FindingRecord {
                host: host.to_string(),
                pack: pack.clone(),
                control: f.control.clone(),
                level: i64::from(level),
                status,
                message,
                evidence: f.evidence.clone(),
                facts_at: record.facts_at,
                since,
                evaluated_at: now,
            });
        }
        out.packs.push(pack.clone());
        out.findings += rows.len();
        out.failing += rows.iter().filter(|r| r.status == "fail").count();
        if mode == "enforce" || dry_run {
            for r in rows.iter().filter(|r| r.status == "fail") {
                let Some(meta) = app.policy.control(&pack, &r.control) else { continue };
                if !meta.remediation.safe {
                    continue;
                }
                let mut rem = Remediation {
                    task_id: remediation_id(host, &pack, &r.control, r.since),
                    host: host.to_string(),
                    control: r.control.clone(),
                    program: String::new(),
                    args: Vec::new(),
                    ansible: None,
                    check: None,
                };
                if let Some(task) = &meta.remediation.task {
                    rem.program = task.program.clone();
                    rem.args = task.args.clone();
                } else if let Some(tasks) = &meta.remediation.ansible {
                    if dry_run {
                        // What the task list would change, asked of the host in check mode.
                        // In the name of the person asking (the assignment they preview).
                        let by = extra.map_or("policy dry run", |a| a.created_by.as_str());
                        rem.check = Some(check_mode(app, host, tasks, by).await);
                    }
                    rem.ansible = Some(tasks.clone());
                } else {
                    continue;
                }
                out.remediations.push(rem);
            }
        }
        if !dry_run {
            app.store.record_findings(host, &pack, &rows, &cause).await.map_err(|e| e.to_string())?;
        }
    }
    if !dry_run {
        start_remediations(app, &out.remediations, assignments).await;
    }
    Ok(out)
}

/// An Ansible remediation run in check mode on `host`: its recap and each task's result word.
async fn check_mode(app: &Arc<App>, host: &str, tasks: &[Value], by: &str) -> Value {
    match crate::ansible_run::run_tasks(app, host, tasks, true, by).await {
        Ok(report) => {
            let stats = report.stats.get(host).map(|s| s.to_json()).unwrap_or(Value::Null);
            let words: Vec<Value> = report
                .plays
                .iter()
                .flat_map(|p| p["tasks"].as_array().cloned().unwrap_or_default())
                .map(|t| json!({"task": t["task"], "status": t["hosts"][host]["status"]}))
                .collect();
            json!({"changed": stats["changed"], "failed": stats["failed"], "unreachable": stats["unreachable"],
                   "tasks": words})
        }
        Err(e) => json!({"error": e}),
    }
}

/// Runs an Ansible remediation on its host in the background, as `by`: audited with its
/// recap, the host's remediation slot held until it ends, then fresh facts asked for so the
/// next evaluation (its cause naming the run) shows whether it worked.
fn start_ansible(app: &Arc<App>, r: &Remediation, tasks: Vec<Value>, by: &str) {
    app.remediation_started(&r.host, &r.task_id);
    tracing::info!(host = r.host, control = r.control, task_id = r.task_id, "ansible remediation started");
    let (app, r, by) = (app.clone(), r.clone(), by.to_owned());
    tokio::spawn(async move {
        let result = crate::ansible_run::run_tasks(&app, &r.host, &tasks, false, &by).await;
        let detail = match &result {
            Ok(report) => json!({"control": r.control, "task_id": r.task_id, "exit_code": report.exit_code,
                                 "stats": report.stats.get(&r.host).map(|s| s.to_json())}),
            Err(e) => json!({"control": r.control, "task_id": r.task_id, "error": e}),
        };
        if let Err(e) = &result {
            tracing::warn!(host = r.host, control = r.control, task_id = r.task_id, error = %e, "ansible remediation refused");
        }
        app.audit(&by, "policy.remediate", Some(&r.host), detail).await;
        app.ansible_remediation_finished(&r.host, &r.task_id);
        push_collectors(&app, std::slice::from_ref(&r.host), true).await;
    });
}

/// Creates the remediation tasks, in the name of the person who switched enforce on (so the
/// audit trail names them); each is idempotent by its id. A host gets one at a time.
async fn start_remediations(app: &Arc<App>, rems: &[Remediation], assignments: &[Assignment]) {
    let by = assignments
        .iter()
        .filter(|a| a.mode == "enforce")
        .map(|a| a.created_by.clone())
        .next()
        .unwrap_or_else(|| "policy".into());
    let principal = Principal { user: by, role: Role::Operator };
    // One at a time per host: the next starts at the evaluation after this one's result.
    let mut started: Vec<&str> = Vec::new();
    for r in rems {
        if started.contains(&r.host.as_str()) || app.remediation_running(&r.host) {
            continue;
        }
        if let Some(tasks) = &r.ansible {
            // Its own runs leave no task record: tried once per failure while the controller
            // runs (after a restart it may run once more, changing nothing already applied).
            if !app.ansible_remediation_ran(&r.host, &r.task_id) {
                started.push(&r.host);
                start_ansible(app, r, tasks.clone(), &principal.user);
            }
            continue;
        }
        // Already tried for this very failure: a finished task is not run again (its outcome
        // is in its result); an unfinished one is still the host's running remediation.
        match app.store.get_task(&r.task_id).await {
            Ok(Some(t)) if t.finished_at.is_some() => continue,
            Ok(Some(_)) => {
                app.remediation_started(&r.host, &r.task_id);
                started.push(&r.host);
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(task_id = r.task_id, error = %e, "cannot read the remediation task");
                continue;
            }
        }
        started.push(&r.host);
        let req = crate::tasks::CommandRequest {
            id: Some(r.task_id.clone()),
            host: r.host.clone(),
            program: r.program.clone(),
            args: r.args.clone(),
            timeout_seconds: Some(120),
        };
        match crate::tasks::create_command(app, &principal, req).await {
            Ok(_) => {
                app.remediation_started(&r.host, &r.task_id);
                tracing::info!(host = r.host, control = r.control, task_id = r.task_id, "remediation task created");
            }
            Err(e) => {
                tracing::warn!(host = r.host, control = r.control, error = %e, "cannot create the remediation task")
            }
        }
    }
}

/// The collectors `host` needs now.
pub async fn collectors_for(app: &Arc<App>, host: &str) -> Vec<String> {
    let Some(inv) = app.inventory.clone() else { return Vec::new() };
    let (Ok(vms), Ok(assignments)) = (app.store.list_vms().await, app.store.list_assignments().await) else {
        return Vec::new();
    };
    scope::collectors(&scope::scope(&inv, host, &vms, &assignments), &app.policy.packs)
}

/// Tells every live agent which collectors it needs now (after an assignment changed), and
/// asks for fresh facts when `now`.
pub async fn push_collectors(app: &Arc<App>, hosts: &[String], now: bool) {
    for h in hosts {
        let collectors = collectors_for(app, h).await;
        let msg = proto::v1::ControllerMessage {
            msg: Some(proto::v1::controller_message::Msg::FactsRequest(proto::v1::FactsRequest {
                security_collectors: collectors,
                now,
            })),
        };
        app.sessions.send(h, msg);
    }
}

/// Findings as the API returns them, with the control's metadata the reader needs.
pub fn finding_json(app: &App, f: &FindingRecord) -> Value {
    let meta = app.policy.control(&f.pack, &f.control);
    json!({
        "host": f.host,
        "pack": f.pack,
        "framework": app.policy.pack(&f.pack).map(|p| p.framework.clone()),
        "control": f.control,
        "clause": meta.map(|m| m.clause.clone()),
        "title_vi": meta.map(|m| m.title_vi.clone()),
        "title_en": meta.map(|m| m.title_en.clone()),
        "severity": meta.map(|m| m.severity),
        "level": f.level,
        "status": f.status,
        "message": f.message,
        "evidence": f.evidence,
        "facts_at": f.facts_at.map(rfc3339),
        "since": rfc3339(f.since),
        "evaluated_at": rfc3339(f.evaluated_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiver(control: &str, scope: &str, target: &str, until: i64) -> Waiver {
        Waiver {
            id: 1,
            control: control.into(),
            scope: scope.into(),
            target: target.into(),
            until,
            reason: "vendor patch pending".into(),
            created_by: "security".into(),
            created_at: 0,
        }
    }

    #[test]
    fn a_waiver_applies_to_its_host_or_system_until_it_expires() {
        let systems = vec![policies::SystemRef { name: "dvc-portal".into(), level: 3, framework: "f".into() }];
        let w = vec![waiver("ssh-root-login", "system", "dvc-portal", 1_000)];
        assert!(active_waiver(&w, "ssh-root-login", "h1", &systems, 999).is_some());
        assert!(active_waiver(&w, "ssh-root-login", "h1", &systems, 1_000).is_none(), "expired: hides nothing");
        assert!(active_waiver(&w, "time-sync", "h1", &systems, 10).is_none());
        assert!(active_waiver(&w, "ssh-root-login", "h1", &[], 10).is_none(), "another system's host");
        let h = vec![waiver("ssh-root-login", "host", "h1", 1_000)];
        assert!(active_waiver(&h, "ssh-root-login", "h1", &[], 10).is_some());
        assert!(active_waiver(&h, "ssh-root-login", "h2", &[], 10).is_none());
    }

    #[test]
    fn a_failure_keeps_its_remediation_id_until_it_changes() {
        let a = remediation_id("h", "p", "c", 5);
        assert_eq!(a, remediation_id("h", "p", "c", 5));
        assert_ne!(a, remediation_id("h", "p", "c", 6));
        assert!(a.len() <= 64 && a.starts_with("rem-"));
    }
}
