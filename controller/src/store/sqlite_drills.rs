//! [`DrillStore`] on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::drills::*;
use super::sqlite::{json_col, write_tx};
use super::{SqliteStore, StoreError};

const RUN_COLUMNS: &str = "SELECT id, plan, plan_version, mode, state, started_by, approved_by, created_at, started_at,
    finished_at, steps, systems, notes, error FROM drill_runs";

const ACTIVE: &str = "('awaiting_approval', 'running', 'paused', 'aborting')";

fn run_of(r: &SqliteRow) -> Result<DrillRun, StoreError> {
    Ok(DrillRun {
        id: r.try_get("id")?,
        plan: r.try_get("plan")?,
        plan_version: r.try_get("plan_version")?,
        mode: r.try_get("mode")?,
        state: r.try_get("state")?,
        started_by: r.try_get("started_by")?,
        approved_by: r.try_get("approved_by")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        steps: json_col(r, "steps")?.unwrap_or_default(),
        systems: json_col(r, "systems")?.unwrap_or_default(),
        notes: json_col(r, "notes")?.unwrap_or_default(),
        error: r.try_get("error")?,
    })
}

fn step_of(r: &SqliteRow) -> Result<StepRecord, StoreError> {
    Ok(StepRecord {
        run: r.try_get("run")?,
        key: r.try_get("key")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        not_before: r.try_get("not_before")?,
        result: json_col(r, "result")?,
        error: r.try_get("error")?,
    })
}

fn approval_of(r: &SqliteRow) -> Result<Approval, StoreError> {
    Ok(Approval {
        id: r.try_get("id")?,
        run: r.try_get("run")?,
        plan: r.try_get("plan")?,
        mode: r.try_get("mode")?,
        requested_by: r.try_get("requested_by")?,
        requested_at: r.try_get("requested_at")?,
        expires_at: r.try_get("expires_at")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        decision: r.try_get("decision")?,
    })
}

fn text(v: &serde_json::Value, column: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|source| StoreError::Corrupt { column, source })
}

const APPROVAL_COLUMNS: &str = "SELECT id, run, plan, mode, requested_by, requested_at, expires_at, decided_by,
    decided_at, decision FROM drill_approvals";

#[async_trait]
impl DrillStore for SqliteStore {
    async fn insert_drill(&self, run: &DrillRun, approval: Option<&Approval>) -> Result<(), StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        sqlx::query(
            "INSERT INTO drill_runs (id, plan, plan_version, mode, state, started_by, approved_by, created_at,
             started_at, finished_at, steps, systems, notes, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&run.id)
        .bind(&run.plan)
        .bind(run.plan_version)
        .bind(&run.mode)
        .bind(&run.state)
        .bind(&run.started_by)
        .bind(&run.approved_by)
        .bind(run.created_at)
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(text(&run.steps, "steps")?)
        .bind(text(&run.systems, "systems")?)
        .bind(text(&run.notes, "notes")?)
        .bind(&run.error)
        .execute(&mut *tx)
        .await?;
        if let Some(a) = approval {
            sqlx::query(
                "INSERT INTO drill_approvals (run, plan, mode, requested_by, requested_at, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&a.run)
            .bind(&a.plan)
            .bind(&a.mode)
            .bind(&a.requested_by)
            .bind(a.requested_at)
            .bind(a.expires_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn drill(&self, id: &str) -> Result<Option<DrillRun>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{RUN_COLUMNS} WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_of).transpose()
    }

    async fn drills(&self, limit: i64) -> Result<Vec<DrillRun>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{RUN_COLUMNS} ORDER BY created_at DESC, id DESC LIMIT ?")))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_of).collect()
    }

    async fn newest_finished_drills(&self, systems: &[String]) -> Result<Vec<(String, DrillRun)>, StoreError> {
        if systems.is_empty() {
            return Ok(Vec::new());
        }
        // A run names its systems in `systems` (`{"systems": [{"name": …}, …]}`); one row per
        // (run, system), the newest finish per system kept.
        let rows = sqlx::query(
            "WITH covered AS (
                SELECT json_extract(s.value, '$.name') AS system, r.*,
                       ROW_NUMBER() OVER (PARTITION BY json_extract(s.value, '$.name')
                                          ORDER BY r.finished_at DESC, r.id DESC) AS nth
                FROM drill_runs r, json_each(r.systems, '$.systems') s
                WHERE r.state IN ('succeeded', 'failed') AND r.finished_at IS NOT NULL
                  AND json_extract(s.value, '$.name') IN (SELECT value FROM json_each(?))
             )
             SELECT system, id, plan, plan_version, mode, state, started_by, approved_by, created_at, started_at,
                    finished_at, steps, systems, notes, error
             FROM covered WHERE nth = 1 ORDER BY system",
        )
        .bind(text(&serde_json::json!(systems), "systems")?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("system")?, run_of(r)?))).collect()
    }

    async fn active_drills(&self) -> Result<Vec<DrillRun>, StoreError> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("{RUN_COLUMNS} WHERE state IN {ACTIVE} ORDER BY created_at")))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(run_of).collect()
    }

    async fn change_drill_state(&self, id: &str, c: &StateChange<'_>) -> Result<bool, StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM drill_runs WHERE id = ?").bind(id).fetch_optional(&mut *tx).await?;
        if !state.is_some_and(|s| c.from.contains(&s.as_str())) {
            tx.commit().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE drill_runs SET state = ?, approved_by = COALESCE(?, approved_by),
             started_at = COALESCE(?, started_at), finished_at = COALESCE(?, finished_at),
             error = COALESCE(?, error) WHERE id = ?",
        )
        .bind(c.to)
        .bind(c.approved_by)
        .bind(c.started_at)
        .bind(c.finished_at)
        .bind(c.error)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn add_drill_note(&self, id: &str, note: &serde_json::Value) -> Result<bool, StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        let row = sqlx::query("SELECT notes FROM drill_runs WHERE id = ?").bind(id).fetch_optional(&mut *tx).await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(false);
        };
        let mut notes = json_col(&row, "notes")?.unwrap_or_else(|| serde_json::json!([]));
        if let Some(a) = notes.as_array_mut() {
            a.push(note.clone());
        }
        sqlx::query("UPDATE drill_runs SET notes = ? WHERE id = ?")
            .bind(text(&notes, "notes")?)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn drill_steps(&self, run: &str) -> Result<Vec<StepRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT run, key, state, attempts, started_at, finished_at, not_before, result, error
             FROM drill_steps WHERE run = ? ORDER BY rowid",
        )
        .bind(run)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(step_of).collect()
    }

    async fn put_drill_step(&self, s: &StepRecord) -> Result<(), StoreError> {
        let result = s.result.as_ref().map(|r| text(r, "result")).transpose()?;
        sqlx::query(
            "INSERT INTO drill_steps (run, key, state, attempts, started_at, finished_at, not_before, result, error)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (run, key) DO UPDATE SET state = excluded.state, attempts = excluded.attempts,
             started_at = excluded.started_at, finished_at = excluded.finished_at, not_before = excluded.not_before,
             result = excluded.result, error = excluded.error",
        )
        .bind(&s.run)
        .bind(&s.key)
        .bind(&s.state)
        .bind(s.attempts)
        .bind(s.started_at)
        .bind(s.finished_at)
        .bind(s.not_before)
        .bind(result)
        .bind(&s.error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn approvals(&self, pending: bool) -> Result<Vec<Approval>, StoreError> {
        let filter = if pending { "WHERE decision IS NULL" } else { "" };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{APPROVAL_COLUMNS} {filter} ORDER BY id DESC")))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(approval_of).collect()
    }

    async fn approval(&self, id: i64) -> Result<Option<Approval>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{APPROVAL_COLUMNS} WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(approval_of).transpose()
    }

    async fn decide_approval(&self, id: i64, by: &str, decision: &str, at: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE drill_approvals SET decided_by = ?, decided_at = ?, decision = ? WHERE id = ? AND decision IS NULL",
        )
        .bind(by)
        .bind(at)
        .bind(decision)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(id: &str, systems: &[&str], mode: &str, state: &str, finished_at: Option<i64>) -> DrillRun {
        let systems: Vec<serde_json::Value> = systems.iter().map(|s| json!({"name": s})).collect();
        DrillRun {
            id: id.into(),
            plan: "camau-all".into(),
            plan_version: 1,
            mode: mode.into(),
            state: state.into(),
            started_by: "op1".into(),
            approved_by: None,
            created_at: 1,
            started_at: Some(1),
            finished_at,
            steps: json!([]),
            systems: json!({"systems": systems}),
            notes: json!([]),
            error: None,
        }
    }

    #[tokio::test]
    async fn the_newest_run_that_ran_to_its_end_is_kept_per_system() {
        let store = SqliteStore::in_memory().await.expect("store");
        for r in [
            run("old", &["email", "qlvbdh"], "test", "succeeded", Some(1_000)),
            run("newer-failed", &["email"], "disaster", "failed", Some(2_000)),
            // Ended without recovering anything, or not ended: not a drill of the system.
            run("aborted", &["email", "qlvbdh"], "test", "aborted", Some(3_000)),
            run("refused", &["qlvbdh"], "planned", "refused", Some(3_000)),
            run("running", &["email"], "test", "running", None),
            run("other", &["cong-bao"], "test", "succeeded", Some(5_000)),
        ] {
            store.insert_drill(&r, None).await.expect("insert");
        }
        let asked = ["email".to_string(), "qlvbdh".into(), "never-drilled".into()];
        let got: Vec<(String, String, String)> = store
            .newest_finished_drills(&asked)
            .await
            .expect("query")
            .into_iter()
            .map(|(system, r)| (system, r.id, r.mode))
            .collect();
        assert_eq!(
            got,
            vec![
                ("email".into(), "newer-failed".into(), "disaster".into()),
                ("qlvbdh".into(), "old".into(), "test".into()),
            ]
        );
        assert!(store.newest_finished_drills(&[]).await.expect("query").is_empty());
    }
}
