//! [`RecoveryPlanStore`] on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::recovery::*;
use super::sqlite::write_tx;
use super::{SqliteStore, StoreError};

fn from_row(r: &SqliteRow) -> Result<PlanRecord, StoreError> {
    Ok(PlanRecord {
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        text: r.try_get("text")?,
        digest: r.try_get("digest")?,
        origin: r.try_get("origin")?,
        applied_by: r.try_get("applied_by")?,
        applied_at: r.try_get("applied_at")?,
    })
}

const COLUMNS: &str = "SELECT name, version, text, digest, origin, applied_by, applied_at FROM recovery_plans";

#[async_trait]
impl RecoveryPlanStore for SqliteStore {
    async fn apply_plan(&self, record: &PlanRecord) -> Result<Applied, StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        let newest =
            sqlx::query("SELECT version, digest FROM recovery_plans WHERE name = ? ORDER BY version DESC LIMIT 1")
                .bind(&record.name)
                .fetch_optional(&mut *tx)
                .await?;
        let (last, digest): (i64, Option<String>) = match &newest {
            Some(r) => (r.try_get("version")?, Some(r.try_get("digest")?)),
            None => (0, None),
        };
        if digest.as_deref() == Some(record.digest.as_str()) {
            tx.commit().await?;
            return Ok(Applied::Unchanged(last));
        }
        sqlx::query(
            "INSERT INTO recovery_plans (name, version, text, digest, origin, applied_by, applied_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&record.name)
        .bind(last + 1)
        .bind(&record.text)
        .bind(&record.digest)
        .bind(&record.origin)
        .bind(&record.applied_by)
        .bind(record.applied_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Applied::New(last + 1))
    }

    async fn plan(&self, name: &str, version: Option<i64>) -> Result<Option<PlanRecord>, StoreError> {
        let row = match version {
            Some(v) => {
                sqlx::query(sqlx::AssertSqlSafe(format!("{COLUMNS} WHERE name = ? AND version = ?")))
                    .bind(name)
                    .bind(v)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!("{COLUMNS} WHERE name = ? ORDER BY version DESC LIMIT 1")))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        row.as_ref().map(from_row).transpose()
    }

    async fn plans(&self) -> Result<Vec<PlanRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{COLUMNS} p WHERE version = (SELECT MAX(version) FROM recovery_plans q WHERE q.name = p.name) ORDER BY name"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(text: &str) -> PlanRecord {
        PlanRecord {
            name: "camau-all".into(),
            version: 0,
            text: text.into(),
            digest: crate::app::hash_secret(text),
            origin: "camau-all.yaml".into(),
            applied_by: "op1".into(),
            applied_at: 1,
        }
    }

    #[tokio::test]
    async fn versions_are_added_only_when_the_text_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("m.db")).await.expect("open");
        assert_eq!(store.apply_plan(&record("a")).await.expect("apply"), Applied::New(1));
        assert_eq!(store.apply_plan(&record("a")).await.expect("apply"), Applied::Unchanged(1));
        assert_eq!(store.apply_plan(&record("b")).await.expect("apply"), Applied::New(2));
        assert_eq!(store.plan("camau-all", None).await.expect("get").map(|p| p.text), Some("b".into()));
        assert_eq!(store.plan("camau-all", Some(1)).await.expect("get").map(|p| p.text), Some("a".into()));
        assert_eq!(store.plan("camau-all", Some(3)).await.expect("get"), None);
        let all = store.plans().await.expect("list");
        assert_eq!(all.iter().map(|p| (p.name.as_str(), p.version)).collect::<Vec<_>>(), vec![("camau-all", 2)]);
    }
}
