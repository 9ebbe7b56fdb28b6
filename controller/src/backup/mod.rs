//! Backups: plans from the inventory, runs by agents with restic, verification and RPO.

pub mod plans;
pub mod runs;
pub mod secrets;
pub mod snapshots;

/// Whether a task id is one of a backup run's (backup, check, restore, drill).
pub fn is_backup_task(id: &str) -> bool {
    ["bk-", "ck-", "rs-", "dr-"].iter().any(|p| id.starts_with(p))
}
pub mod schedule;

/// What the policy controls for backups read of a host (`input.backups`): for the systems it
/// serves, the oldest of their newest good restore points, the oldest of their newest restore
/// drills that passed, and whether each has a good restore point at the DR site. `null` when
/// none of its systems has a backup plan.
pub async fn policy_input(app: &crate::app::App, systems: &[String]) -> serde_json::Value {
    let planned: Vec<&String> = systems.iter().filter(|s| !app.backups.plans_of(s).is_empty()).collect();
    if planned.is_empty() {
        return serde_json::Value::Null;
    }
    let dr_repos: Vec<String> = app
        .inventory
        .as_deref()
        .map(|i| {
            i.backup_repositories
                .iter()
                .filter(|r| r.site == app.cfg.capacity.dr_site)
                .map(|r| r.name.clone())
                .collect()
        })
        .unwrap_or_default();
    let (mut last, mut tested, mut dr_copy) = (Some(i64::MAX), Some(i64::MAX), true);
    for system in planned {
        let snaps = match app.store.list_snapshots(system).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(system, error = %e, "restore points not read for policy input");
                Vec::new()
            }
        };
        let good = snaps.iter().filter(|s| s.verified != "failed");
        let newest = good.clone().map(|s| s.time).max();
        let drilled = snaps.iter().filter(|s| s.verified == "restored").filter_map(|s| s.verified_at).max();
        dr_copy &= good.clone().any(|s| dr_repos.contains(&s.repository));
        last = last.zip(newest).map(|(a, b)| a.min(b));
        tested = tested.zip(drilled).map(|(a, b)| a.min(b));
    }
    serde_json::json!({
        "last_success_unix": last.map(|t| t / 1000),
        "restore_tested_unix": tested.map(|t| t / 1000),
        "dr_copy": dr_copy,
    })
}
