//! Backups: plans from the inventory, runs by agents with restic, verification and RPO.

pub mod plans;
pub mod runs;
pub mod secrets;

/// Whether a task id is one of a backup run's (backup, check, restore, drill).
pub fn is_backup_task(id: &str) -> bool {
    ["bk-", "ck-", "rs-", "dr-"].iter().any(|p| id.starts_with(p))
}
pub mod schedule;
