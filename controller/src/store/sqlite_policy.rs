//! [`PolicyStore`] on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::policy::*;
use super::sqlite::{json_col, write_tx};
use super::{SqliteStore, StoreError};

fn assignment(row: &SqliteRow) -> Result<Assignment, StoreError> {
    Ok(Assignment {
        id: row.try_get("id")?,
        pack: row.try_get("pack")?,
        scope: row.try_get("scope")?,
        target: row.try_get("target")?,
        mode: row.try_get("mode")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

fn waiver(row: &SqliteRow) -> Result<Waiver, StoreError> {
    Ok(Waiver {
        id: row.try_get("id")?,
        control: row.try_get("control")?,
        scope: row.try_get("scope")?,
        target: row.try_get("target")?,
        until: row.try_get("until")?,
        reason: row.try_get("reason")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl PolicyStore for SqliteStore {
    async fn assign(&self, a: &Assignment) -> Result<(Assignment, bool), StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        let existing = sqlx::query("SELECT * FROM policy_assignments WHERE pack = ? AND scope = ? AND target = ?")
            .bind(&a.pack)
            .bind(&a.scope)
            .bind(&a.target)
            .fetch_optional(&mut *tx)
            .await?;
        let new = existing.is_none();
        if new {
            sqlx::query(
                "INSERT INTO policy_assignments (pack, scope, target, mode, created_by, created_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&a.pack)
            .bind(&a.scope)
            .bind(&a.target)
            .bind(&a.mode)
            .bind(&a.created_by)
            .bind(a.created_at)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("UPDATE policy_assignments SET mode = ? WHERE pack = ? AND scope = ? AND target = ?")
                .bind(&a.mode)
                .bind(&a.pack)
                .bind(&a.scope)
                .bind(&a.target)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query("SELECT * FROM policy_assignments WHERE pack = ? AND scope = ? AND target = ?")
            .bind(&a.pack)
            .bind(&a.scope)
            .bind(&a.target)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((assignment(&row)?, new))
    }

    async fn list_assignments(&self) -> Result<Vec<Assignment>, StoreError> {
        let rows = sqlx::query("SELECT * FROM policy_assignments ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(assignment).collect()
    }

    async fn add_waiver(&self, w: &Waiver) -> Result<Waiver, StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        let id = sqlx::query(
            "INSERT INTO policy_waivers (control, scope, target, until, reason, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&w.control)
        .bind(&w.scope)
        .bind(&w.target)
        .bind(w.until)
        .bind(&w.reason)
        .bind(&w.created_by)
        .bind(w.created_at)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        tx.commit().await?;
        Ok(Waiver { id, ..w.clone() })
    }

    async fn list_waivers(&self) -> Result<Vec<Waiver>, StoreError> {
        let rows = sqlx::query("SELECT * FROM policy_waivers ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(waiver).collect()
    }

    async fn record_findings(
        &self,
        host: &str,
        pack: &str,
        findings: &[FindingRecord],
        cause: &str,
    ) -> Result<(), StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        let before: Vec<(String, String)> =
            sqlx::query_as("SELECT control, status FROM findings WHERE host = ? AND pack = ?")
                .bind(host)
                .bind(pack)
                .fetch_all(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM findings WHERE host = ? AND pack = ?").bind(host).bind(pack).execute(&mut *tx).await?;
        for f in findings {
            let prior = before.iter().find(|(c, _)| *c == f.control).map(|(_, s)| s.as_str());
            let changed = prior != Some(f.status.as_str());
            // `since` stays when the status did not change: the caller passes the old one.
            sqlx::query(
                "INSERT INTO findings (host, pack, control, level, status, message, evidence, facts_at, since, evaluated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(host)
            .bind(pack)
            .bind(&f.control)
            .bind(f.level)
            .bind(&f.status)
            .bind(&f.message)
            .bind(f.evidence.to_string())
            .bind(f.facts_at)
            .bind(f.since)
            .bind(f.evaluated_at)
            .execute(&mut *tx)
            .await?;
            if changed {
                sqlx::query(
                    "INSERT INTO finding_history (host, pack, control, at, status, cause) VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(host)
                .bind(pack)
                .bind(&f.control)
                .bind(f.evaluated_at)
                .bind(&f.status)
                .bind(cause)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_findings(&self, host: Option<&str>) -> Result<Vec<FindingRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM findings WHERE ? IS NULL OR host = ? ORDER BY host, pack, control")
            .bind(host)
            .bind(host)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(FindingRecord {
                    host: row.try_get("host")?,
                    pack: row.try_get("pack")?,
                    control: row.try_get("control")?,
                    level: row.try_get("level")?,
                    status: row.try_get("status")?,
                    message: row.try_get("message")?,
                    evidence: json_col(row, "evidence")?.unwrap_or(serde_json::Value::Null),
                    facts_at: row.try_get("facts_at")?,
                    since: row.try_get("since")?,
                    evaluated_at: row.try_get("evaluated_at")?,
                })
            })
            .collect()
    }

    async fn finding_history(&self, host: &str, control: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, status, cause FROM finding_history WHERE host = ? AND control = ? ORDER BY at, id",
        )
        .bind(host)
        .bind(control)
        .fetch_all(&self.pool)
        .await?)
    }
}
