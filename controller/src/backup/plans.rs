//! Backup plans: what each information system backs up, where, when, how long it keeps it and
//! how it is verified — the inventory's `backup` block with what it leaves out filled from the
//! system's level and RPO, and the rule each plan satisfies (REGULATIONS.md, area 4.3).
//!
//! Defaults, by level:
//! - repositories: every repository of the inventory; level 3 and above need two (3-2-1: the
//!   data itself plus two backup copies, on separate storage, away from production);
//! - schedule: often enough that the newest restore point is never older than the RPO: every
//!   half RPO, in whole minutes, hours or days;
//! - retention: 7 daily, 4 weekly, 6 monthly; 14 / 8 / 12 from level 3;
//! - structural check (`restic check`, reading a rolling twelfth of the data): weekly;
//! - restore drill: every 6 months from level 3 (required from level 4), quarterly at level 5.
//!
//! A system whose `backup` block has `snapshots` gets a second plan, `snapshots`: platform
//! snapshots of its VMs (daily at 01:00 by default, 3 kept per VM, 7 from level 3). They are a
//! quick way back from a bad change on the VM's own storage, not a copy away from production,
//! so they never count towards the RPO and have nothing for restic to check.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone};
use inventory::{AgentMode, Inventory, Retention, System};
use serde::Serialize;

/// The name of the file plan.
pub const FILE_PLAN: &str = "files";
/// The name of the platform snapshot plan.
pub const SNAPSHOT_PLAN: &str = "snapshots";

/// What a plan makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// restic snapshots of paths, taken by the agent on the system's host.
    Files,
    /// Snapshots of the system's VMs, taken through their platform's driver.
    PlatformSnapshots,
}

/// A repository a plan writes to (its password is not here: see `secrets`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanRepository {
    pub name: String,
    pub location: String,
    pub site: String,
}

/// One backup plan of one system, with every default filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub system: String,
    pub plan: String,
    pub kind: PlanKind,
    pub level: u8,
    pub host: String,
    pub paths: Vec<String>,
    pub pre: Vec<Vec<String>>,
    pub repositories: Vec<PlanRepository>,
    pub schedule: String,
    pub retention: Retention,
    /// The newest restore points kept besides the daily, weekly and monthly ones: a day of
    /// them at the plan's RPO (two per RPO), so every point within the last day stays.
    pub keep_last: u32,
    /// Cron schedule of `restic check` (none for platform snapshots).
    pub check: Option<String>,
    pub restore_test: Option<String>,
    pub restore_host: Option<String>,
    /// The command a restore drill runs on the restored files (empty: none).
    pub probe: Vec<String>,
    #[serde(with = "inventory_duration")]
    pub rpo: Duration,
    /// The rule the plan satisfies, in words.
    pub rule: String,
    /// What the plan lacks against its level's rule (empty when it complies).
    pub problems: Vec<String>,
}

mod inventory_duration {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&inventory::format_duration(*d))
    }
}

/// Why a plan could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("system {system}: no machine runs its backup: set backup.host or give it a workload with a native agent")]
    NoHost { system: String },
    #[error("system {system}: {field} {text:?} is not a cron schedule: {why}")]
    BadCron { system: String, field: &'static str, text: String, why: String },
}

/// Every system's plans, in inventory order (its file plan, then its snapshot plan); a system
/// without `backup` has none.
pub fn plans(inv: &Inventory) -> Result<Vec<Plan>, PlanError> {
    let mut out = Vec::new();
    for s in inv.systems.iter().filter(|s| s.backup.is_some()) {
        out.push(plan(inv, s)?);
        if let Some(p) = snapshot_plan(s)? {
            out.push(p);
        }
    }
    Ok(out)
}

/// The platform snapshot plan of a system whose backup block asks for one.
fn snapshot_plan(s: &System) -> Result<Option<Plan>, PlanError> {
    let Some(spec) = s.backup.as_ref().and_then(|b| b.snapshots.as_ref()) else { return Ok(None) };
    let level = s.level.get();
    let schedule = spec.schedule.clone().unwrap_or_else(|| "0 1 * * *".to_string());
    parse_cron(&schedule).map_err(|why| PlanError::BadCron {
        system: s.name.clone(),
        field: "snapshots.schedule",
        text: schedule.clone(),
        why,
    })?;
    let keep = spec.keep.unwrap_or(if level >= 3 { 7 } else { 3 }).max(1);
    Ok(Some(Plan {
        system: s.name.clone(),
        plan: SNAPSHOT_PLAN.to_string(),
        kind: PlanKind::PlatformSnapshots,
        level,
        host: String::new(),
        paths: Vec::new(),
        pre: Vec::new(),
        repositories: Vec::new(),
        schedule,
        retention: Retention { daily: 0, weekly: 0, monthly: 0 },
        keep_last: keep,
        check: None,
        restore_test: None,
        restore_host: None,
        probe: Vec::new(),
        rpo: s.rpo,
        rule: format!("{keep} platform snapshots per VM, on the VM's own storage (not counted towards the RPO)"),
        problems: Vec::new(),
    }))
}

fn plan(inv: &Inventory, s: &System) -> Result<Plan, PlanError> {
    let b = s.backup.clone().unwrap_or_default();
    let level = s.level.get();
    let host = b
        .host
        .clone()
        .or_else(|| {
            inv.workloads
                .iter()
                .find(|w| w.agent == AgentMode::Native && inv.system_of(w) == Some(s.name.as_str()))
                .map(|w| w.name.clone())
        })
        .ok_or_else(|| PlanError::NoHost { system: s.name.clone() })?;
    let repositories: Vec<PlanRepository> = inv
        .backup_repositories
        .iter()
        .filter(|r| b.repositories.is_empty() || b.repositories.contains(&r.name))
        .map(|r| PlanRepository { name: r.name.clone(), location: r.location.clone(), site: r.site.clone() })
        .collect();
    let schedule = b.schedule.clone().unwrap_or_else(|| schedule_for(s.rpo));
    let check = b.check.clone().unwrap_or_else(|| "30 2 * * 0".to_string());
    let kind = PlanKind::Files;
    let restore_test = b.restore_test.clone().or_else(|| drill_for(level).map(str::to_string));
    for (field, text) in
        [("schedule", Some(&schedule)), ("check", Some(&check)), ("restore_test", restore_test.as_ref())]
    {
        if let Some(text) = text {
            parse_cron(text).map_err(|why| PlanError::BadCron {
                system: s.name.clone(),
                field,
                text: text.clone(),
                why,
            })?;
        }
    }
    let restore_host = b
        .restore_host
        .clone()
        .or_else(|| inv.hosts.iter().find(|h| h.site == "dr" && h.agent == AgentMode::Native).map(|h| h.name.clone()));
    let retention = b.retention.unwrap_or(if level >= 3 {
        Retention { daily: 14, weekly: 8, monthly: 12 }
    } else {
        Retention { daily: 7, weekly: 4, monthly: 6 }
    });
    let (rule, problems) = rule(level, &repositories, restore_test.as_deref());
    Ok(Plan {
        system: s.name.clone(),
        plan: FILE_PLAN.to_string(),
        kind,
        level,
        host,
        paths: b.paths.clone(),
        pre: b.pre.clone(),
        repositories,
        schedule,
        retention,
        keep_last: keep_last_for(s.rpo),
        check: Some(check),
        restore_test,
        restore_host,
        probe: b.probe.clone(),
        rpo: s.rpo,
        rule,
        problems,
    })
}

/// A cron schedule that runs at least twice per RPO.
pub fn schedule_for(rpo: Duration) -> String {
    let minutes = (rpo.as_secs() / 60 / 2).max(5);
    if minutes < 60 {
        // Cron steps must divide the hour to be regular.
        let step = [5, 10, 15, 20, 30].into_iter().rev().find(|s| *s <= minutes).unwrap_or(5);
        return format!("*/{step} * * * *");
    }
    let hours = minutes / 60;
    if hours < 24 {
        let step = [1, 2, 3, 4, 6, 8, 12].into_iter().rev().find(|s| *s <= hours).unwrap_or(1);
        return if step == 1 { "0 * * * *".to_string() } else { format!("0 */{step} * * *") };
    }
    "0 1 * * *".to_string()
}

/// Two restore points per RPO over a day, at least 1 and at most 96.
pub fn keep_last_for(rpo: Duration) -> u32 {
    let half = (rpo.as_secs() / 2).max(60);
    u32::try_from(86_400_u64.div_ceil(half)).unwrap_or(96).clamp(1, 96)
}

fn drill_for(level: u8) -> Option<&'static str> {
    match level {
        5.. => Some("0 3 1 1,4,7,10 *"),
        3 | 4 => Some("0 3 1 1,7 *"),
        _ => None,
    }
}

/// The rule a level sets for backups, and what `repositories` and the drill schedule lack.
fn rule(level: u8, repositories: &[PlanRepository], drill: Option<&str>) -> (String, Vec<String>) {
    let mut problems = Vec::new();
    let rule = match level {
        1 | 2 => "level 1–2: regular backups kept apart from production".to_string(),
        3 => "level 3: 3-2-1 (2 backup repositories), encrypted (restic), test restore every 6 months (recommended)"
            .to_string(),
        4 => "level 4: 3-2-1, encrypted, test restore at least every 6 months".to_string(),
        _ => "level 5: 3-2-1 with a geographically separate copy, encrypted, test restore quarterly".to_string(),
    };
    if repositories.is_empty() {
        problems.push("no backup repository".to_string());
    } else if level >= 3 && repositories.len() < 2 {
        problems.push(format!("level {level} needs 2 backup repositories, has {}", repositories.len()));
    }
    if level >= 4 && drill.is_none() {
        problems.push(format!("level {level} needs a scheduled test restore"));
    }
    (rule, problems)
}

/// Vietnam's time (UTC+7, no daylight saving): schedules are read in the province's time.
pub fn province_offset() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("UTC+7 is within a day")
}

pub fn parse_cron(text: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::new().parse(text).map_err(|e| e.to_string())
}

/// The first time after `after` (unix seconds) that `cron` names, in the province's time.
pub fn next_run(cron: &croner::Cron, after: i64) -> Option<i64> {
    let start: DateTime<FixedOffset> = province_offset().timestamp_opt(after, 0).single()?;
    cron.find_next_occurrence(&start, false).ok().map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camau() -> Inventory {
        inventory::parse_str(include_str!("../../../inventory/examples/camau.yaml"), "camau.yaml").expect("example")
    }

    #[test]
    fn the_example_gets_a_plan_per_system_with_level_defaults() {
        let p = plans(&camau()).expect("plans");
        // Six file plans, and web-portal's platform snapshots.
        assert_eq!(p.len(), 7);
        let wp: Vec<&str> = p.iter().filter(|p| p.system == "web-portal").map(|p| p.plan.as_str()).collect();
        assert_eq!(wp, ["files", "snapshots"]);
        let q = p.iter().find(|p| p.system == "qlvbdh").expect("qlvbdh");
        assert_eq!(q.host, "qlvbdh-app-01");
        assert_eq!(q.repositories.len(), 2);
        assert_eq!(q.schedule, "*/30 * * * *");
        assert_eq!(q.retention, Retention { daily: 14, weekly: 8, monthly: 12 });
        assert!(q.problems.is_empty(), "{:?}", q.problems);
        assert_eq!(q.restore_host.as_deref(), Some("dr-compute-01"));
        let cb = p.iter().find(|p| p.system == "cong-bao").expect("cong-bao");
        assert_eq!((cb.schedule.as_str(), cb.restore_test.as_deref()), ("0 */12 * * *", None));
    }

    #[test]
    fn a_system_asking_for_platform_snapshots_gets_a_second_plan() {
        let mut inv = camau();
        let q = inv.systems.iter_mut().find(|s| s.name == "qlvbdh").expect("qlvbdh");
        q.backup.as_mut().expect("backup").snapshots = Some(inventory::SnapshotPlanSpec::default());
        let p = plans(&inv).expect("plans");
        assert_eq!(p.len(), 8);
        let mine: Vec<&Plan> = p.iter().filter(|p| p.system == "qlvbdh").collect();
        assert_eq!(mine.iter().map(|p| p.plan.as_str()).collect::<Vec<_>>(), ["files", "snapshots"]);
        let snap = mine[1];
        assert_eq!(snap.kind, PlanKind::PlatformSnapshots);
        // Level 3 keeps a week of nightly snapshots.
        assert_eq!((snap.schedule.as_str(), snap.keep_last, snap.check.as_deref()), ("0 1 * * *", 7, None));
        assert!(snap.repositories.is_empty() && snap.problems.is_empty());
    }

    #[test]
    fn a_day_of_restore_points_is_kept_at_the_plans_pace() {
        assert_eq!(keep_last_for(Duration::from_secs(3600)), 48);
        assert_eq!(keep_last_for(Duration::from_secs(15 * 60)), 96);
        assert_eq!(keep_last_for(Duration::from_secs(86_400)), 2);
        assert_eq!(keep_last_for(Duration::from_secs(7 * 86_400)), 1);
    }

    #[test]
    fn schedules_run_at_least_twice_per_rpo() {
        assert_eq!(schedule_for(Duration::from_secs(15 * 60)), "*/5 * * * *");
        assert_eq!(schedule_for(Duration::from_secs(3600)), "*/30 * * * *");
        assert_eq!(schedule_for(Duration::from_secs(4 * 3600)), "0 */2 * * *");
        assert_eq!(schedule_for(Duration::from_secs(86_400)), "0 */12 * * *");
        assert_eq!(schedule_for(Duration::from_secs(7 * 86_400)), "0 1 * * *");
    }

    #[test]
    fn a_level_3_plan_with_one_repository_says_what_it_lacks() {
        let mut inv = camau();
        inv.backup_repositories.truncate(1);
        let p = plans(&inv).expect("plans");
        let q = p.iter().find(|p| p.system == "qlvbdh").expect("qlvbdh");
        assert_eq!(q.problems, ["level 3 needs 2 backup repositories, has 1"]);
        let cb = p.iter().find(|p| p.system == "cong-bao").expect("cong-bao");
        assert!(cb.problems.is_empty());
    }

    #[test]
    fn next_runs_follow_the_province_clock() {
        let cron = parse_cron("0 1 * * *").expect("cron");
        // 2026-11-27 00:00 UTC is 07:00 in Cà Mau: the next 01:00 there is 18:00 UTC.
        let at = 1_795_737_600;
        assert_eq!(next_run(&cron, at), Some(at + 18 * 3600));
        assert!(parse_cron("61 * * * *").is_err());
    }
}
