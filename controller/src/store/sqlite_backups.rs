//! [`BackupStore`] on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::backups::*;
use super::sqlite::{json_col, write_tx};
use super::{SqliteStore, StoreError};

fn run_from_row(r: &SqliteRow) -> Result<BackupRun, StoreError> {
    Ok(BackupRun {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        system: r.try_get("system")?,
        plan: r.try_get("plan")?,
        host: r.try_get("host")?,
        repository: r.try_get("repository")?,
        snapshot_id: r.try_get("snapshot_id")?,
        requested_by: r.try_get("requested_by")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        status: r.try_get("status")?,
        error: r.try_get("error")?,
        result: json_col(r, "result")?,
    })
}

fn snapshot_from_row(r: &SqliteRow) -> Result<SnapshotRecord, StoreError> {
    Ok(SnapshotRecord {
        repository: r.try_get("repository")?,
        snapshot_id: r.try_get("snapshot_id")?,
        system: r.try_get("system")?,
        plan: r.try_get("plan")?,
        run_id: r.try_get("run_id")?,
        host: r.try_get("host")?,
        time: r.try_get("time")?,
        bytes_added: r.try_get("bytes_added")?,
        files: r.try_get("files")?,
        manifest_sha256: r.try_get("manifest_sha256")?,
        manifest_files: r.try_get("manifest_files")?,
        verified: r.try_get("verified")?,
        verified_at: r.try_get("verified_at")?,
    })
}

#[async_trait]
impl BackupStore for SqliteStore {
    async fn insert_run(&self, run: &BackupRun) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO backup_runs (id, kind, system, plan, host, repository, snapshot_id, requested_by,
                                      started_at, finished_at, status, error, result)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&run.id)
        .bind(&run.kind)
        .bind(&run.system)
        .bind(&run.plan)
        .bind(&run.host)
        .bind(&run.repository)
        .bind(&run.snapshot_id)
        .bind(&run.requested_by)
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(&run.status)
        .bind(&run.error)
        .bind(run.result.as_ref().map(|v| v.to_string()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn finish_run(&self, id: &str, end: &RunEnd) -> Result<bool, StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        let done = sqlx::query(
            "UPDATE backup_runs SET status = ?, error = ?, result = ?, finished_at = ?
             WHERE id = ? AND status = 'running'",
        )
        .bind(&end.status)
        .bind(&end.error)
        .bind(end.result.as_ref().map(|v| v.to_string()))
        .bind(end.at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        for s in &end.snapshots {
            sqlx::query(
                "INSERT OR REPLACE INTO backup_snapshots (repository, snapshot_id, system, plan, run_id, host, time,
                     bytes_added, files, manifest_sha256, manifest_files, verified, verified_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&s.repository)
            .bind(&s.snapshot_id)
            .bind(&s.system)
            .bind(&s.plan)
            .bind(&s.run_id)
            .bind(&s.host)
            .bind(s.time)
            .bind(s.bytes_added)
            .bind(s.files)
            .bind(&s.manifest_sha256)
            .bind(s.manifest_files)
            .bind(&s.verified)
            .bind(s.verified_at)
            .execute(&mut *tx)
            .await?;
        }
        for (repository, id) in &end.forgotten {
            sqlx::query("DELETE FROM backup_snapshots WHERE repository = ? AND snapshot_id = ?")
                .bind(repository)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(v) = &end.verdict {
            apply_verdict(&mut tx, v).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn get_run(&self, id: &str) -> Result<Option<BackupRun>, StoreError> {
        let row = sqlx::query("SELECT * FROM backup_runs WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn list_runs(&self, system: Option<&str>, limit: i64) -> Result<Vec<BackupRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM backup_runs WHERE (?1 IS NULL OR system = ?1) ORDER BY started_at DESC, id LIMIT ?2",
        )
        .bind(system)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn running_run(&self, system: &str, plan: &str, kind: &str) -> Result<Option<BackupRun>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM backup_runs WHERE system = ? AND plan = ? AND kind = ? AND status = 'running'
             ORDER BY started_at DESC LIMIT 1",
        )
        .bind(system)
        .bind(plan)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn list_snapshots(&self, system: &str) -> Result<Vec<SnapshotRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM backup_snapshots WHERE system = ? ORDER BY time DESC, repository")
            .bind(system)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(snapshot_from_row).collect()
    }

    async fn newest_good_snapshots(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT system, plan, MAX(time) AS newest FROM backup_snapshots WHERE verified != 'failed'
             GROUP BY system, plan ORDER BY system, plan",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("system")?, r.try_get("plan")?, r.try_get("newest")?))).collect()
    }
}

/// A check judges every restore point its repository held when it ran; a restore, the one it
/// restored. A pass clears an earlier failure (the repository was repaired), never the other way.
async fn apply_verdict(tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>, v: &Verdict) -> Result<(), StoreError> {
    let query = match (&v.snapshot_id, v.ok) {
        (Some(id), true) => sqlx::query(
            "UPDATE backup_snapshots SET verified = 'restored', verified_at = ? WHERE repository = ? AND snapshot_id = ?",
        )
        .bind(v.at)
        .bind(&v.repository)
        .bind(id),
        (None, true) => sqlx::query(
            "UPDATE backup_snapshots SET verified = 'ok', verified_at = ?
             WHERE repository = ? AND time <= ? AND verified = 'failed'",
        )
        .bind(v.at)
        .bind(&v.repository)
        .bind(v.at),
        (_, false) => {
            sqlx::query("UPDATE backup_snapshots SET verified = 'failed', verified_at = ? WHERE repository = ? AND time <= ?")
                .bind(v.at)
                .bind(&v.repository)
                .bind(v.at)
        }
    };
    query.execute(&mut **tx).await?;
    Ok(())
}
