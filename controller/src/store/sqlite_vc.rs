//! [`VcStore`] on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::sqlite::{json_col, write_tx};
use super::vc::*;
use super::{SqliteStore, StoreError};

fn from_row(r: &SqliteRow) -> Result<VcCheckRecord, StoreError> {
    let reasons = json_col(r, "reasons")?.unwrap_or_default();
    Ok(VcCheckRecord {
        run_id: r.try_get("run_id")?,
        device: r.try_get("device")?,
        site: r.try_get("site")?,
        at: r.try_get("at")?,
        state: r.try_get("state")?,
        go: r.try_get::<i64, _>("go")? != 0,
        reasons: serde_json::from_value(reasons).map_err(|source| StoreError::Corrupt { column: "reasons", source })?,
        checks: json_col(r, "checks")?.unwrap_or_default(),
    })
}

const COLUMNS: &str = "SELECT run_id, device, site, at, state, go, reasons, checks FROM vc_checks";

#[async_trait]
impl VcStore for SqliteStore {
    async fn insert_vc_checks(&self, rows: &[VcCheckRecord]) -> Result<(), StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        for r in rows {
            let reasons = serde_json::to_string(&r.reasons)
                .map_err(|source| StoreError::Corrupt { column: "reasons", source })?;
            sqlx::query(
                "INSERT INTO vc_checks (run_id, device, site, at, state, go, reasons, checks)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.run_id)
            .bind(&r.device)
            .bind(&r.site)
            .bind(r.at)
            .bind(&r.state)
            .bind(i64::from(r.go))
            .bind(reasons)
            .bind(r.checks.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn recent_vc_checks(&self, device: &str, limit: i64) -> Result<Vec<VcCheckRecord>, StoreError> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("{COLUMNS} WHERE device = ? ORDER BY at DESC, id DESC LIMIT ?")))
                .bind(device)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(from_row).collect()
    }

    async fn vc_checks_since(&self, since: i64) -> Result<Vec<VcCheckRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{COLUMNS} WHERE at >= ? ORDER BY at, id")))
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn results_are_kept_newest_first() {
        let d = tempfile::tempdir().expect("tempdir");
        let s = SqliteStore::open(&d.path().join("m.db")).await.expect("open");
        let row = |run: &str, at: i64, go: bool| VcCheckRecord {
            run_id: run.into(),
            device: "vc-tinh".into(),
            site: "dc".into(),
            at,
            state: if go { "up".into() } else { "degraded".into() },
            go,
            reasons: if go { vec![] } else { vec!["SIP not answering".into()] },
            checks: serde_json::json!([{"kind": "sip_options", "ok": go}]),
        };
        s.insert_vc_checks(&[row("vc-1", 1000, true)]).await.expect("insert");
        s.insert_vc_checks(&[row("vc-2", 2000, false)]).await.expect("insert");
        let got = s.recent_vc_checks("vc-tinh", 10).await.expect("read");
        assert_eq!(got.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["vc-2", "vc-1"]);
        assert_eq!(got[0].reasons, vec!["SIP not answering".to_string()]);
        assert_eq!(s.vc_checks_since(1500).await.expect("since").len(), 1);
    }
}
