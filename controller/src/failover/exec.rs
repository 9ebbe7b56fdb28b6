//! What each step does. Every step is idempotent by its key: it looks at what exists before
//! acting (a boot reuses the instance its key names, a switch replaces a record set, a clean-up
//! of something already gone succeeds), so a step a controller crash interrupted can run again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use inventory::recovery::{ProbeTarget, RecoveryMethod, RecoveryPlan};
use plugins::Hypervisor;
use plugins::hypervisor::{CreateSpec, InstanceSource, OpState, PowerAction, VmInfo};
use serde_json::{Value, json};

use super::steps::{Mode, StepKind, StepSpec};
use crate::app::{App, now_ms};
use crate::store::{DrillRun, StepRecord};

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done, with what it produced.
    Done(Value),
    /// A prompt: waiting for a person.
    Waiting(Value),
}

/// What a step sees: the run, its plan and mode, and what earlier steps produced.
pub struct Ctx<'a> {
    pub app: &'a Arc<App>,
    pub run: &'a DrillRun,
    pub plan: &'a RecoveryPlan,
    pub mode: Mode,
    pub done: &'a [StepRecord],
}

impl Ctx<'_> {
    fn result_of(&self, key: &str) -> Option<&Value> {
        self.done.iter().find(|s| s.key == key && s.state == "succeeded").and_then(|s| s.result.as_ref())
    }

    fn inventory(&self) -> Result<&inventory::Inventory, String> {
        self.app.inventory.as_deref().ok_or_else(|| "the controller runs without an inventory".to_string())
    }

    /// The zone records switch in: the test zone in a test run.
    fn zone(&self) -> Result<String, String> {
        let dns = self.plan.dns.as_ref().ok_or("the plan has no dns settings")?;
        Ok(if self.mode == Mode::Test { dns.test_zone.clone() } else { dns.zone.clone() }
            .trim_end_matches('.')
            .to_string())
    }

    fn by(&self) -> String {
        format!("drill:{}", self.run.id)
    }
}

/// The name of the DR instance a workload gets in this run: test runs carry the run id (so a
/// clean-up and its verification find exactly what the run made), real failovers `-dr`.
pub fn instance_name(run: &DrillRun, mode: Mode, workload: &str) -> String {
    match mode {
        Mode::Test => format!("drill-{}-{workload}", run.id.trim_start_matches("d-")),
        _ => format!("{workload}-dr"),
    }
}

/// Runs one step once.
pub async fn run(ctx: &Ctx<'_>, spec: &StepSpec) -> Result<Outcome, String> {
    let timeout = Duration::from_secs(spec.timeout_s.max(1));
    let work = async {
        match spec.kind {
            StepKind::Precheck => super::checks::run(ctx, &spec.key).await.map(Outcome::Done),
            StepKind::FinalBackup => final_backup(ctx, spec).await.map(Outcome::Done),
            StepKind::DcPowerOff => dc_power_off(ctx, spec).await.map(Outcome::Done),
            StepKind::DrBoot => dr_boot(ctx, spec).await.map(Outcome::Done),
            StepKind::DrRestore => dr_restore(ctx, spec).await.map(Outcome::Done),
            StepKind::DcRestore => dc_restore(ctx, spec).await.map(Outcome::Done),
            StepKind::DrRetire => dr_retire(ctx, spec).await.map(Outcome::Done),
            StepKind::Readdress => readdress(ctx, spec).await.map(Outcome::Done),
            StepKind::DnsSwitch => dns_switch(ctx, spec).await.map(Outcome::Done),
            StepKind::Probe => probe(ctx, spec, timeout).await.map(Outcome::Done),
            StepKind::Prompt => Ok(Outcome::Waiting(spec.params.clone())),
            StepKind::AgentTask => agent_task(ctx, spec).await.map(Outcome::Done),
            StepKind::Cleanup => cleanup(ctx, spec).await.map(Outcome::Done),
            StepKind::CleanupVerify => cleanup_verify(ctx).await.map(Outcome::Done),
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("no result within {} s", timeout.as_secs())),
    }
}

fn workload_of(spec: &StepSpec) -> Result<&str, String> {
    spec.workload.as_deref().ok_or_else(|| format!("step {} names no workload", spec.key))
}

fn system_of(spec: &StepSpec) -> Result<&str, String> {
    spec.system.as_deref().ok_or_else(|| format!("step {} names no system", spec.key))
}

/// The platform connection of a site.
pub(crate) fn connection(app: &App, site: &str) -> Result<plugins::connect::Connection, String> {
    let inv = app.inventory.as_deref().ok_or("the controller runs without an inventory")?;
    let platform = inv.sites.iter().find(|s| s.name == site).map(|s| s.platform.name.clone());
    let platform = platform.ok_or_else(|| format!("the inventory has no site {site}"))?;
    app.platforms
        .connection(&platform)
        .cloned()
        .ok_or_else(|| format!("platform {platform} (site {site}) is not configured in the controller"))
}

/// Runs `f` with the site's driver on a blocking thread.
pub async fn on_platform<T: Send + 'static>(
    app: &App,
    site: &str,
    f: impl FnOnce(&dyn Hypervisor) -> Result<T, plugins::PlatformError> + Send + 'static,
) -> Result<T, String> {
    let conn = connection(app, site)?;
    crate::platforms::with_driver(&conn, Duration::from_secs(900), f).await
}

/// The VM of that name on the site's platform, if any.
pub async fn find_vm(app: &App, site: &str, name: &str) -> Result<Option<VmInfo>, String> {
    let name = name.to_string();
    on_platform(app, site, move |d| Ok(d.inventory()?.vms.into_iter().find(|v| v.name == name))).await
}

/// The system's backup plan of files (the one restores come from).
fn files_plan(app: &App, system: &str) -> Result<crate::backup::plans::Plan, String> {
    app.backups
        .plans_of(system)
        .into_iter()
        .find(|p| p.kind == crate::backup::plans::PlanKind::Files)
        .cloned()
        .ok_or_else(|| format!("{system} has no file backup plan"))
}

/// The plan a failback's final backup follows: the system's file plan, taken at its DR
/// instance, of the paths the instance serves (under the restore target). A plan of its own
/// (`failback`), so these restore points, whose paths are DR's, never feed a DR restore.
pub const FAILBACK_PLAN: &str = "failback";

fn failback_plan(ctx: &Ctx<'_>, system: &str) -> Result<crate::backup::plans::Plan, String> {
    let mut plan = files_plan(ctx.app, system)?;
    let sys = ctx.plan.system(system).ok_or_else(|| format!("{system} is not in the plan"))?;
    let wl = sys
        .recover
        .iter()
        .find(|w| w.method == RecoveryMethod::Restore)
        .ok_or_else(|| format!("{system} recovers no workload by restore"))?;
    plan.host = reversed_instance(ctx, &wl.workload)?;
    plan.plan = FAILBACK_PLAN.to_string();
    plan.paths = plan.paths.iter().map(|p| format!("{}{p}", super::agents::RESTORE_TARGET)).collect();
    // The DC's pre-backup commands (database dumps) belong to the DC machine's layout.
    plan.pre = Vec::new();
    Ok(plan)
}

/// The DR instance of `workload` that the reversed run booted.
fn reversed_instance(ctx: &Ctx<'_>, workload: &str) -> Result<String, String> {
    ctx.result_of("precheck.failback")
        .and_then(|r| r["reverses"].as_str())
        .map(|_| instance_name(ctx.run, Mode::Disaster, workload))
        .ok_or_else(|| "the failback's pre-check recorded no run to reverse".to_string())
}

async fn final_backup(ctx: &Ctx<'_>, spec: &StepSpec) -> Result<Value, String> {
    let system = system_of(spec)?;
    let plan = if ctx.mode == Mode::Failback { failback_plan(ctx, system)? } else { files_plan(ctx.app, system)? };
    let run = crate::backup::runs::start_backup(ctx.app, &plan, &ctx.by()).await.map_err(|e| e.to_string())?;
    let done = wait_backup_run(ctx.app, &run.id).await?;
    Ok(json!({"backup_run": run.id, "snapshot": done.snapshot_id, "finished_at": done.finished_at}))
}

/// Waits for a backup run (backup or restore) to end; an error unless it succeeded.
async fn wait_backup_run(app: &App, id: &str) -> Result<crate::store::BackupRun, String> {
    loop {
        let r = app
            .store
            .get_run(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("backup run {id} vanished"))?;
        match r.status.as_str() {
            "running" => tokio::time::sleep(Duration::from_millis(500)).await,
            "ok" => return Ok(r),
            other => return Err(format!("{} run {id} {other}: {}", r.kind, r.error.clone().unwrap_or_default())),
        }
    }
}

async fn dc_power_off(ctx: &Ctx<'_>, spec: &StepSpec) -> Result<Value, String> {
    let wl = workload_of(spec)?.to_string();
    let Some(vm) = find_vm(ctx.app, "dc", &wl).await? else {
        return Err(format!("no VM named {wl} at the DC"));
    };
    let id = vm.id.clone();
    on_platform(ctx.app, "dc", move |d| {
        let op = d.power(&id, PowerAction::Off)?;
        plugins::hypervisor::wait(d, op, Duration::from_secs(600), |_| {})
    })
    .await?;
    Ok(json!({"vm": vm.id, "powered_off": true}))
}

async fn dr_boot(ctx: &Ctx<'_>, spec: &StepSpec) -> Result<Value, String> {
    let wl = workload_of(spec)?;
    let system = system_of(spec)?;
    let name = instance_name(ctx.run, ctx.mode, wl);
    if let Some(vm) = find_vm(ctx.app, "dr", &name).await? {
        return Ok(json!({"instance": vm.id, "name": name, "reused": true}));
    }
    let inv = ctx.inventory()?;
    let w = inv.workload(wl).ok_or_else(|| format!("the inventory has no workload {wl}"))?;
    let mapping = match spec.params["network"].as_str() {
        Some(n) => ctx.plan.networks.iter().find(|m| m.dc == n),
        None => ctx.plan.networks.first(),
    }
    .ok_or_else(|| format!("no network mapping for {wl}"))?;
    let network = if ctx.mode == Mode::Test { mapping.test.clone() } else { mapping.dr.clone() };
    let (image, exported_at) = dr_image(ctx.app, spec.params["image"].as_str().unwrap_or_default()).await?;
    let restore = spec.params["method"] == json!(RecoveryMethod::Restore.as_str());
    let user_data = if restore { Some(super::agents::user_data(ctx, &name, system).await?) } else { None };
    let create = CreateSpec {
        name: name.clone(),
        source: InstanceSource::Image(image),
        vcpus: w.vcpus,
        memory_bytes: w.memory_gb << 30,
        // The root disk is the image's: data lives on volumes or comes back by restore.
        disk_bytes: 0,
        network: Some(network.clone()),
        tags: [
            ("mangrove.run".to_string(), ctx.run.id.clone()),
            ("mangrove.system".to_string(), system.to_string()),
            ("mangrove.workload".to_string(), wl.to_string()),
        ]
        .into(),
        user_data,
    };
    let op = on_platform(ctx.app, "dr", move |d| {
        let op = d.create_instance(&create)?;
        plugins::hypervisor::wait(d, op, Duration::from_secs(900), |_| {})
    })
    .await?;
    let id = match &op.state {
        OpState::Succeeded { result } => result.clone(),
        other => return Err(format!("booting {name} ended {other:?}")),
    };
    let mut out = json!({"instance": id, "name": name, "network": network, "reused": false});
    // An image workload's data is the image's: its RPO is the export's age at the run's
    // start, measured like a restore point's.
    if let (false, Some(t)) = (restore, exported_at) {
        let started = ctx.run.started_at.unwrap_or(ctx.run.created_at);
        out["image_exported_at"] = json!(crate::app::rfc3339(t));
        out["rpo_seconds"] = json!(((started - t) / 1000).max(0));
    }
    Ok(out)
}

/// The id OpenStack knows the image `name` by (other platforms boot by name), and when its
/// exported state was taken when it is a refreshed image ([`crate::images::EXPORTED_AT`]).
async fn dr_image(app: &App, name: &str) -> Result<(String, Option<i64>), String> {
    let conn = connection(app, "dr")?;
    if conn.kind != plugins::PlatformKind::Openstack {
        return Ok((name.to_string(), None));
    }
    let found = newest_image(conn, name).await?;
    found
        .map(|i| (i.id.clone(), crate::images::exported_at_ms(&i)))
        .ok_or_else(|| format!("the DR site has no image {name}"))
}

/// The image a boot of `name` would use on the DR platform `conn` ([`crate::images::pick`]).
pub(crate) async fn newest_image(
    conn: plugins::connect::Connection,
    name: &str,
) -> Result<Option<plugins::openstack::Image>, String> {
    let wanted = name.to_string();
    tokio::task::spawn_blocking(move || {
        let driver = conn.connect_openstack()?;
        let images = driver.images();
        driver.close();
        Ok::<_, plugins::PlatformError>(crate::images::pick(&images?, &wanted).cloned())
    })
    .await
    .map_err(|e| format!("reading the DR images failed unexpectedly: {e}"))?
    .map_err(|e| e.to_string())
}

async fn dr_restore(ctx: &Ctx<'_>, spec: &StepSpec) -> Result<Value, String> {
    let wl = workload_of(spec)?;
    let system = system_of(spec)?;
    let host = instance_name(ctx.run, ctx.mode, wl);
    super::agents::wait_connected(ctx.app, &host, Duration::from_secs(600)).await?;
    let plan = files_plan(ctx.app, system)?;
    let snapshot = restore_point(ctx, system).await?;
    let req = crate::backup::runs::RestoreRequest {
        plan: &plan,
        snapshot: &snapshot,
        host: &host,
        target: super::agents::RESTORE_TARGET,
        drill: false,
        force: true,
        place: Vec::new(),
    };
    let run = crate::backup::runs::start_restore(ctx.app, &req, &ctx.by()).await.map_err(|e| e.to_string())?;
    wait_backup_run(ctx.app, &run.id).await?;
    let started = ctx.run.started_at.unwrap_or(ctx.run.created_at);
    Ok(json!({
        "restore_run": run.id, "snapshot": snapshot.snapshot_id, "repository": snapshot.repository,
        "snapshot_time": snapshot.time, "rpo_seconds": ((started - snapshot.time) / 1000).max(0),
        "host": host,
    }))
}

/// Failback: the final backup taken at DR, restored on the DC machine into a staging
/// directory, verified against its manifest, each path moved into place, the staging removed.
async fn dc_restore(ctx: &Ctx<'_>, spec: &StepSpec) -> Result<Value, String> {
    let wl = workload_of(spec)?;
    let system = system_of(spec)?;
    let plan = files_plan(ctx.app, system)?;
    let snapshot =
        final_snapshot(ctx, system).await?.ok_or_else(|| format!("no final backup of {system} at DR is recorded"))?;
    // One restore per path, staged inside it: data directories are often mount points, and
    // the agent swaps their content on their own filesystem.
    let mut runs = Vec::new();
    for path in &plan.paths {
        let target = format!("{}/.mangrove-failback-{}", path.trim_end_matches('/'), ctx.run.id);
        let req = crate::backup::runs::RestoreRequest {
            plan: &plan,
            snapshot: &snapshot,
            host: wl,
            target: &target,
            drill: false,
            force: true,
            place: vec![(format!("{}{path}", super::agents::RESTORE_TARGET), path.clone())],
        };
        let run = crate::backup::runs::start_restore(ctx.app, &req, &ctx.by()).await.map_err(|e| e.to_string())?;
        wait_backup_run(ctx.app, &run.id).await?;
        runs.push(run.id);
    }
    let started = ctx.run.started_at.unwrap_or(ctx.run.created_at);
    Ok(json!({
        "restore_runs": runs, "snapshot": snapshot.snapshot_id, "repository": snapshot.repository,
        "snapshot_time": snapshot.time, "rpo_seconds": ((started - snapshot.time) / 1000).max(0),
        "host": wl, "paths": plan.paths,
    }))
}

/// Failback: the DR instance goes once the system serves from the DC again.
async fn dr_retire(ctx: &Ctx<'_>, spec: &StepSpec) -> Result<Value, String> {
    let name = reversed_instance(ctx, workload_of(spec)?)?;
    let deleted = remove_instance(ctx.app, &name).await?;
    Ok(json!({"instance": name, "deleted": deleted}))
}

/// The machine a workload's tasks run on in this run: its DR instance, or in a failback the
/// DC machine itself.
fn machine_of(ctx: &Ctx<'_>, workload: &str) -> String {
    if ctx.mode == Mode::Failback { workload.to_string() } else { instance_name(ctx.run, ctx.mode, workload) }
}

/// A plan task: a command task for the recovered machine's agent, with an id made of the run
/// and the step, so a step run again after a crash finds the same task (an agent runs a task
/// id once) and reads its result instead of running the command twice.
async fn agent_task(ctx: &Ctx<'_>, spec: &StepSpec) -> Result<Value, String> {
    let host = machine_of(ctx, workload_of(spec)?);
    super::agents::wait_connected(ctx.app, &host, Duration::from_secs(30)).await?;
    let timeout_s = spec.params["timeout_s"].as_u64().unwrap_or(300).max(1);
    let command: Vec<String> = serde_json::from_value(spec.params["command"].clone())
        .map_err(|e| format!("step {}: bad command ({e})", spec.key))?;
    let (program, args) = command.split_first().ok_or_else(|| format!("step {}: empty command", spec.key))?;
    let id = {
        let plain = format!("{}-{}", ctx.run.id, spec.key.replace(':', "."));
        if plain.len() <= 64 {
            plain
        } else {
            use sha2::Digest;
            format!("{}-{}", ctx.run.id, &hex::encode(sha2::Sha256::digest(spec.key.as_bytes()))[..24])
        }
    };
    let by = crate::app::Principal { user: ctx.run.started_by.clone(), role: crate::app::Role::Operator };
    let req = crate::tasks::CommandRequest {
        id: Some(id.clone()),
        host: host.clone(),
        program: program.clone(),
        args: args.to_vec(),
        timeout_seconds: Some(timeout_s),
    };
    crate::tasks::create_command(ctx.app, &by, req).await.map_err(|e| e.to_string())?;
    // The command's time and half a minute for its result to come back.
    let until = now_ms().saturating_add(i64::try_from((timeout_s + 30).saturating_mul(1000)).unwrap_or(i64::MAX));
    let t = crate::tasks::wait_finished(ctx.app, &id, until)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("task {id} on {host}: no result within {} s", timeout_s + 30))?;
    let stderr = String::from_utf8_lossy(&t.stderr).trim().chars().take(500).collect::<String>();
    match (t.state.as_str(), t.exit_code) {
        ("exited", Some(0)) => Ok(json!({"task": id, "host": host, "exit_code": 0})),
        ("exited", Some(code)) => Err(format!("task {id} on {host}: {program} exited with {code}: {stderr}")),
        (state, _) => Err(format!("task {id} on {host}: {state}: {}", t.error.clone().unwrap_or(stderr))),
    }
}

/// Deletes the DR instance `name` (gone already is fine) and revokes its agent.
async fn remove_instance(app: &App, name: &str) -> Result<bool, String> {
    let deleted = match find_vm(app, "dr", name).await? {
        Some(vm) => {
            let id = vm.id.clone();
            on_platform(app, "dr", move |d| {
                let op = d.delete_instance(&id)?;
                plugins::hypervisor::wait(d, op, Duration::from_secs(600), |_| {})
            })
            .await?;
            true
        }
        None => false,
    };
    super::agents::forget(app, name).await;
    Ok(deleted)
}

/// The restore point a system recovers from: the final backup of a planned run, else the
/// newest verified one.
async fn restore_point(ctx: &Ctx<'_>, system: &str) -> Result<crate::store::SnapshotRecord, String> {
    if let Some(s) = final_snapshot(ctx, system).await? {
        return Ok(s);
    }
    let snapshots = ctx.app.store.list_snapshots(system).await.map_err(|e| e.to_string())?;
    newest_verified(&snapshots).cloned().ok_or_else(|| format!("{system} has no verified restore point"))
}

/// The restore point the run's final backup of `system` made (one per repository; the
/// first found), if the run took one; an error if it did but none is recorded.
async fn final_snapshot(ctx: &Ctx<'_>, system: &str) -> Result<Option<crate::store::SnapshotRecord>, String> {
    let Some(run) = ctx.result_of(&format!("backup.final:{system}")).and_then(|r| r["backup_run"].as_str()) else {
        return Ok(None);
    };
    let snapshots = ctx.app.store.list_snapshots(system).await.map_err(|e| e.to_string())?;
    snapshots
        .into_iter()
        .find(|s| s.run_id == run)
        .map(Some)
        .ok_or_else(|| format!("the final backup of {system} (run {run}) recorded no restore point"))
}

/// The newest restore point whose repository's last check or restore did not fail it.
pub fn newest_verified(snapshots: &[crate::store::SnapshotRecord]) -> Option<&crate::store::SnapshotRecord> {
    snapshots.iter().filter(|s| s.verified != "failed" && s.plan != FAILBACK_PLAN).max_by_key(|s| s.time)
}

async fn readdress(ctx: &Ctx<'_>, spec: &StepSpec) -> Result<Value, String> {
    let wl = workload_of(spec)?;
    let name = instance_name(ctx.run, ctx.mode, wl);
    let vm = find_vm(ctx.app, "dr", &name).await?.ok_or_else(|| format!("instance {name} is gone from the DR site"))?;
    let address = vm
        .networks
        .iter()
        .flat_map(|n| n.addresses.iter())
        .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        .cloned()
        .ok_or_else(|| format!("instance {name} has no IPv4 address yet"))?;
    Ok(json!({"instance": vm.id, "name": name, "address": address}))
}

/// The DR address of a system: its first workload's, from its `readdress` step.
fn system_address(ctx: &Ctx<'_>, system: &str) -> Result<String, String> {
    let sys = ctx.plan.system(system).ok_or_else(|| format!("{system} is not in the plan"))?;
    let wl = &sys.recover.first().ok_or_else(|| format!("{system} recovers no workload"))?.workload;
    ctx.result_of(&format!("readdress:{wl}"))
        .and_then(|r| r["address"].as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("no DR address recorded for {wl}"))
}

fn records(spec: &StepSpec) -> Vec<(String, String)> {
    spec.params["records"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| Some((r["name"].as_str()?.to_string(), r["type"].as_str().unwrap_or("A").to_string())))
                .collect()
        })
        .unwrap_or_default()
}

async fn dns_switch(ctx: &Ctx<'_>, spec: &StepSpec) -> Result<Value, String> {
    let system = system_of(spec)?;
    let zone = ctx.zone()?;
    let ttl = ctx.plan.dns.as_ref().map_or(60, |d| d.ttl);
    let before = if ctx.mode == Mode::Failback { Some(records_before_failover(ctx).await?) } else { None };
    let mut written = Vec::new();
    for (name, rtype) in records(spec) {
        let values = match &before {
            // Back to what the record held before the failover switched it.
            Some(before) => before
                .get(&format!("{name}.{zone} {rtype}"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect::<Vec<_>>())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    format!("the failover did not record what {name}.{zone} {rtype} held before it; set it by hand")
                })?,
            None => vec![system_address(ctx, system)?],
        };
        super::dns::replace(ctx.app, &zone, &name, &rtype, ttl, &values).await?;
        written.push(format!("{name}.{zone} {rtype} {}", values.join(",")));
    }
    Ok(json!({"zone": zone, "records": written}))
}

/// What the reversed run's DNS pre-check found in the production zone before it switched
/// anything (`"name.zone TYPE": [values]`).
async fn records_before_failover(ctx: &Ctx<'_>) -> Result<serde_json::Map<String, Value>, String> {
    let reversed = ctx
        .result_of("precheck.failback")
        .and_then(|r| r["reverses"].as_str())
        .ok_or("the failback's pre-check recorded no run to reverse")?;
    let steps = ctx.app.store.drill_steps(reversed).await.map_err(|e| e.to_string())?;
    steps
        .into_iter()
        .find(|s| s.key == "precheck.dns" && s.state == "succeeded")
        .and_then(|s| s.result?.get("records")?.as_object().cloned())
        .ok_or_else(|| format!("run {reversed} recorded no DNS records from before it switched them"))
}

async fn probe(ctx: &Ctx<'_>, spec: &StepSpec, timeout: Duration) -> Result<Value, String> {
    let p: inventory::recovery::Probe =
        serde_json::from_value(spec.params.clone()).map_err(|e| format!("step {}: bad probe ({e})", spec.key))?;
    let zone = ctx.zone().ok();
    let started = Instant::now();
    let mut last = String::from("not tried");
    let mut tries = 0u32;
    // Leave time for a whole try and to report the last failure: a try cut off by the
    // step's timeout would lose the reason.
    while started.elapsed() + super::probes::ONE_TRY + Duration::from_secs(2) < timeout || tries == 0 {
        tries += 1;
        match super::probes::once(ctx.app, &p, zone.as_deref()).await {
            Ok(detail) => {
                return Ok(
                    json!({"probe": p.label(), "detail": detail, "tries": tries, "ms": started.elapsed().as_millis() as u64}),
                );
            }
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let target = match p.target() {
        Some(ProbeTarget::Http(u)) => u.to_string(),
        Some(ProbeTarget::Tcp(a)) => a.to_string(),
        None => String::new(),
    };
    Err(format!("probe {} ({target}) did not pass in {tries} tries: {last}", p.label()))
}

async fn cleanup(ctx: &Ctx<'_>, spec: &StepSpec) -> Result<Value, String> {
    if spec.key.starts_with("cleanup.dns:") {
        let zone = ctx.zone()?;
        let mut removed = Vec::new();
        for (name, rtype) in records(spec) {
            super::dns::delete(ctx.app, &zone, &name, &rtype).await?;
            removed.push(format!("{name}.{zone} {rtype}"));
        }
        return Ok(json!({"removed": removed}));
    }
    let wl = workload_of(spec)?;
    let name = instance_name(ctx.run, ctx.mode, wl);
    let deleted = remove_instance(ctx.app, &name).await?;
    Ok(json!({"instance": name, "deleted": deleted}))
}

/// Re-inventories the DR site and the test zone: nothing this run made may be left.
async fn cleanup_verify(ctx: &Ctx<'_>) -> Result<Value, String> {
    let prefix = instance_name(ctx.run, ctx.mode, "");
    let left: Vec<String> = on_platform(ctx.app, "dr", move |d| {
        Ok(d.inventory()?.vms.into_iter().filter(|v| v.name.starts_with(&prefix)).map(|v| v.name).collect())
    })
    .await?;
    let mut records_left = Vec::new();
    if let Ok(zone) = ctx.zone() {
        for s in &ctx.plan.systems {
            for r in &s.dns {
                let fqdn = format!("{}.{zone}", r.name);
                if !super::dns::lookup(ctx.app, &fqdn, r.rtype.as_str()).await?.is_empty() {
                    records_left.push(fqdn);
                }
            }
        }
    }
    if !left.is_empty() || !records_left.is_empty() {
        return Err(format!(
            "left behind: {} instance(s) {:?}, {} test record(s) {:?}",
            left.len(),
            left,
            records_left.len(),
            records_left
        ));
    }
    Ok(json!({"instances_left": 0, "records_left": 0, "checked_at": now_ms()}))
}
