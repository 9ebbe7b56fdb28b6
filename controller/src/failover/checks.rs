//! Pre-checks: what must hold before a run changes anything. Each reads only; `drill check`
//! runs them all without starting a run.

use std::time::Duration;

use inventory::recovery::RecoveryMethod;
use serde_json::{Value, json};

use super::exec::{Ctx, newest_verified, on_platform};
use super::steps::Mode;
use crate::app::now_ms;

/// Runs the pre-check `key`; what it found, or why the run must not start.
pub async fn run(ctx: &Ctx<'_>, key: &str) -> Result<Value, String> {
    match key {
        "precheck.dr_hosts" => dr_hosts(ctx).await,
        "precheck.dr_catalog" => dr_catalog(ctx).await,
        "precheck.headroom" => headroom(ctx).await,
        "precheck.restore_points" => restore_points(ctx).await,
        "precheck.dns" => dns(ctx).await,
        "precheck.dc" => dc(ctx).await,
        "precheck.failback" => failback(ctx).await,
        "precheck.dc_agents" => dc_agents(ctx).await,
        other => Err(format!("unknown pre-check {other}")),
    }
}

async fn dr_hosts(ctx: &Ctx<'_>) -> Result<Value, String> {
    let hosts = ctx.app.store.list_hosts().await.map_err(|e| e.to_string())?;
    let down_after = i64::try_from(ctx.app.cfg.liveness.down_after.0.as_millis()).unwrap_or(i64::MAX);
    let now = now_ms();
    let dr: Vec<_> = hosts.iter().filter(|h| h.managed && h.site.as_deref() == Some("dr")).collect();
    let (up, down): (Vec<&crate::store::HostRecord>, Vec<&crate::store::HostRecord>) = dr.iter().partition(|h| {
        matches!(
            crate::hosts::state(h.enrolled_at.is_some(), h.last_seen, &h.problems, now, down_after),
            crate::hosts::HostState::Connected | crate::hosts::HostState::Degraded
        )
    });
    let down: Vec<&str> = down.iter().map(|h| h.name.as_str()).collect();
    if up.is_empty() {
        return Err(format!("no DR host is connected ({} known: {})", dr.len(), down.join(", ")));
    }
    Ok(json!({"connected": up.len(), "of": dr.len(), "down": down}))
}

async fn dr_catalog(ctx: &Ctx<'_>) -> Result<Value, String> {
    let (catalog, warnings) = super::plans::dr_catalog(ctx.app).await;
    let (Some(images), Some(networks)) = (&catalog.images, &catalog.networks) else {
        return Err(warnings.join("; "));
    };
    let mut missing = Vec::new();
    for s in &ctx.plan.systems {
        for w in &s.recover {
            if !images.contains(&w.image) {
                missing.push(format!("image {} (for {})", w.image, w.workload));
            }
        }
    }
    for m in &ctx.plan.networks {
        let n = if ctx.mode == Mode::Test { &m.test } else { &m.dr };
        if !networks.contains(n) {
            missing.push(format!("network {n}"));
        }
    }
    if !missing.is_empty() {
        return Err(format!("the DR site lacks {}", missing.join(", ")));
    }
    Ok(json!({"images": images.len(), "networks": networks.len()}))
}

async fn headroom(ctx: &Ctx<'_>) -> Result<Value, String> {
    let inv = ctx.app.inventory.as_deref().ok_or("the controller runs without an inventory")?;
    let priorities = super::plans::priorities(ctx.plan, inv);
    let answer =
        crate::capacity::query::headroom(ctx.app, &[], None, Some(&priorities)).await.map_err(|e| e.to_string())?;
    let short: Vec<&str> = answer.groups.iter().filter(|g| !g.fits).map(|g| g.priority.as_str()).collect();
    if !short.is_empty() {
        return Err(format!("the DR site cannot hold the plan: {}", answer.summary));
    }
    Ok(json!({"summary": answer.summary, "groups": answer.groups.len()}))
}

/// Each system restored from backup has a restore point within its RPO (a planned run takes
/// a final backup, so there it only needs a backup plan); each `image` workload whose plan
/// keeps its image fresh (`refresh`) has an image exported within its system's RPO.
async fn restore_points(ctx: &Ctx<'_>) -> Result<Value, String> {
    let inv = ctx.app.inventory.as_deref().ok_or("the controller runs without an inventory")?;
    let now = now_ms();
    let mut found = serde_json::Map::new();
    let mut problems = Vec::new();
    image_ages(ctx, inv, now, &mut found, &mut problems).await?;
    for s in &ctx.plan.systems {
        if !s.recover.iter().any(|w| w.method == RecoveryMethod::Restore) {
            continue;
        }
        if ctx.app.backups.plans_of(&s.name).is_empty() {
            problems.push(format!("{} has no backup plan", s.name));
            continue;
        }
        if ctx.mode == Mode::Planned {
            found.insert(s.name.clone(), json!({"final_backup": true}));
            continue;
        }
        let rpo = inv.system(&s.name).map_or(Duration::from_secs(86_400), |x| x.rpo);
        let snapshots = ctx.app.store.list_snapshots(&s.name).await.map_err(|e| e.to_string())?;
        match newest_verified(&snapshots) {
            None => problems.push(format!("{} has no verified restore point", s.name)),
            Some(p) => {
                let age = Duration::from_millis(u64::try_from(now - p.time).unwrap_or(0));
                if age > rpo {
                    problems.push(format!(
                        "{}'s newest verified restore point is {} old, beyond its RPO of {}",
                        s.name,
                        inventory::format_duration(Duration::from_secs(age.as_secs())),
                        inventory::format_duration(rpo)
                    ));
                }
                found.insert(s.name.clone(), json!({"snapshot": p.snapshot_id, "age_seconds": age.as_secs()}));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(Value::Object(found))
}

/// The refreshed images' ages against their systems' RPO.
async fn image_ages(
    ctx: &Ctx<'_>,
    inv: &inventory::Inventory,
    now: i64,
    found: &mut serde_json::Map<String, Value>,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    for s in &ctx.plan.systems {
        let rpo = inv.system(&s.name).map_or(Duration::from_secs(86_400), |x| x.rpo);
        for w in s.recover.iter().filter(|w| w.method == RecoveryMethod::Image && w.refresh.is_some()) {
            let conn = super::exec::connection(ctx.app, "dr")?;
            let image = super::exec::newest_image(conn, &w.image).await?;
            let exported = image.as_ref().and_then(crate::images::exported_at_ms);
            match image_age(&ctx.plan.name, &w.workload, &w.image, &s.name, exported, now, rpo) {
                Err(problem) => problems.push(problem),
                Ok(age) => {
                    found.insert(
                        w.workload.clone(),
                        json!({"image": image.map(|i| i.id), "exported_at": exported.map(crate::app::rfc3339),
                               "age_seconds": age.as_secs()}),
                    );
                }
            }
        }
    }
    Ok(())
}

/// A refreshed image's age, or why it does not do: none exported yet, or exported longer ago
/// than the system's RPO. Pure.
fn image_age(
    plan: &str,
    workload: &str,
    image: &str,
    system: &str,
    exported: Option<i64>,
    now: i64,
    rpo: Duration,
) -> Result<Duration, String> {
    let Some(exported) = exported else {
        return Err(format!(
            "{workload} has no refreshed image {image} (run `mangrove images refresh {plan} --workload {workload}`)"
        ));
    };
    let age = Duration::from_millis(u64::try_from(now - exported).unwrap_or(0));
    if age > rpo {
        return Err(format!(
            "{workload}'s image {image} was exported {} ago, beyond {system}'s RPO of {}",
            inventory::format_duration(Duration::from_secs(age.as_secs())),
            inventory::format_duration(rpo)
        ));
    }
    Ok(age)
}

/// The zone answers; outside test runs, also what the plan's records hold before anything
/// switches them (a failback puts those values back).
async fn dns(ctx: &Ctx<'_>) -> Result<Value, String> {
    let dns = ctx.plan.dns.as_ref().ok_or("the plan has no dns settings")?;
    let zone = if ctx.mode == Mode::Test { &dns.test_zone } else { &dns.zone };
    let zone = zone.trim_end_matches('.');
    let soa = super::dns::check_zone(ctx.app, zone).await?;
    let mut records = serde_json::Map::new();
    if matches!(ctx.mode, Mode::Planned | Mode::Disaster) {
        for s in &ctx.plan.systems {
            for r in &s.dns {
                let fqdn = format!("{}.{zone}", r.name);
                let values = super::dns::lookup(ctx.app, &fqdn, r.rtype.as_str()).await?;
                records.insert(format!("{fqdn} {}", r.rtype.as_str()), json!(values));
            }
        }
    }
    Ok(json!({"zone": zone, "soa": soa, "records": records}))
}

/// The run a failback reverses: the plan's newest planned or disaster run that succeeded,
/// with each workload's DR instance still there (and, for restored ones, its agent connected).
async fn failback(ctx: &Ctx<'_>) -> Result<Value, String> {
    let runs = ctx.app.store.drills(500).await.map_err(|e| e.to_string())?;
    let reversed = runs
        .iter()
        .find(|r| r.plan == ctx.run.plan && matches!(r.mode.as_str(), "planned" | "disaster") && r.state == "succeeded")
        .ok_or_else(|| {
            format!(
                "plan {} has no planned or disaster run that succeeded: nothing runs at DR to fail back",
                ctx.run.plan
            )
        })?;
    let mut problems = Vec::new();
    let mut instances = Vec::new();
    for s in &ctx.plan.systems {
        for w in &s.recover {
            let name = super::exec::instance_name(reversed, Mode::Disaster, &w.workload);
            match super::exec::find_vm(ctx.app, "dr", &name).await? {
                None => problems.push(format!("{name} is not at the DR site")),
                Some(_)
                    if w.method == RecoveryMethod::Restore && !super::agents::is_connected(ctx.app, &name).await? =>
                {
                    problems.push(format!("the agent of {name} is not connected"))
                }
                Some(vm) => instances.push(json!({"name": name, "id": vm.id})),
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(json!({"reverses": reversed.id, "mode": reversed.mode, "instances": instances}))
}

/// The DC machines a failback restores into are up, their agents connected.
async fn dc_agents(ctx: &Ctx<'_>) -> Result<Value, String> {
    let mut down = Vec::new();
    let mut up = 0;
    for s in &ctx.plan.systems {
        for w in s.recover.iter().filter(|w| w.method == RecoveryMethod::Restore) {
            if super::agents::is_connected(ctx.app, &w.workload).await? {
                up += 1;
            } else {
                down.push(w.workload.clone());
            }
        }
    }
    if !down.is_empty() {
        return Err(format!("not connected at the DC (power them on first): {}", down.join(", ")));
    }
    Ok(json!({"connected": up}))
}

async fn dc(ctx: &Ctx<'_>) -> Result<Value, String> {
    let hosts = on_platform(ctx.app, "dc", |d| Ok(d.hosts()?.len())).await?;
    Ok(json!({"dc_hosts": hosts}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refreshed_image_must_exist_and_be_younger_than_the_rpo() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        let now = 100 * 3_600_000;
        let age = |exported: Option<i64>, rpo| image_age("p", "w", "w-dr", "s", exported, now, rpo);
        assert_eq!(age(Some(now - 3_600_000), h(4)), Ok(h(1)));
        assert_eq!(age(Some(now - 4 * 3_600_000), h(4)), Ok(h(4)));
        let old = age(Some(now - 5 * 3_600_000), h(4)).expect_err("older than the RPO");
        assert!(old.contains("exported 5h ago, beyond s's RPO of 4h"), "{old}");
        let none = age(None, h(4)).expect_err("no image");
        assert!(
            none.contains("w has no refreshed image w-dr") && none.contains("images refresh p --workload w"),
            "{none}"
        );
    }
}
