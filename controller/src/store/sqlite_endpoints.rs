//! [`EndpointStore`] on SQLite.

use async_trait::async_trait;
use sqlx::Row;

use super::endpoints::*;
use super::sqlite::{json_col, write_tx};
use super::{SqliteStore, StoreError};

#[async_trait]
impl EndpointStore for SqliteStore {
    async fn put_endpoint_rollup(&self, source: &str, at: i64, rollup: &serde_json::Value) -> Result<(), StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        sqlx::query(
            "INSERT INTO endpoint_rollups (source, rollup, as_of, last_attempt, last_error, error_at)
             VALUES (?1, ?2, ?3, ?3, NULL, NULL)
             ON CONFLICT (source) DO UPDATE SET rollup = ?2, as_of = ?3, last_attempt = ?3,
                 last_error = NULL, error_at = NULL",
        )
        .bind(source)
        .bind(rollup.to_string())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn put_endpoint_error(&self, source: &str, at: i64, error: &serde_json::Value) -> Result<(), StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        sqlx::query(
            "INSERT INTO endpoint_rollups (source, rollup, as_of, last_attempt, last_error, error_at)
             VALUES (?1, NULL, NULL, ?2, ?3, ?2)
             ON CONFLICT (source) DO UPDATE SET last_attempt = ?2, last_error = ?3, error_at = ?2",
        )
        .bind(source)
        .bind(at)
        .bind(error.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn endpoint_state(&self, source: &str) -> Result<Option<EndpointState>, StoreError> {
        let row = sqlx::query("SELECT * FROM endpoint_rollups WHERE source = ?")
            .bind(source)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(EndpointState {
            source: r.try_get("source")?,
            rollup: json_col(&r, "rollup")?,
            as_of: r.try_get("as_of")?,
            last_attempt: r.try_get("last_attempt")?,
            last_error: json_col(&r, "last_error")?,
            error_at: r.try_get("error_at")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn an_error_keeps_the_last_good_rollup_and_a_good_read_clears_the_error() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open(&dir.path().join("m.db")).await.expect("store");
        assert!(store.endpoint_state("ksc").await.expect("read").is_none());
        store.put_endpoint_error("ksc", 5, &json!({"kind": "unreachable", "message": "down"})).await.expect("error");
        let s = store.endpoint_state("ksc").await.expect("read").expect("row");
        assert_eq!((s.rollup, s.as_of, s.last_attempt), (None, None, 5));
        store.put_endpoint_rollup("ksc", 10, &json!({"total": 2753})).await.expect("rollup");
        store.put_endpoint_error("ksc", 20, &json!({"kind": "malformed", "message": "bad"})).await.expect("error");
        let s = store.endpoint_state("ksc").await.expect("read").expect("row");
        assert_eq!(s.rollup, Some(json!({"total": 2753})));
        assert_eq!((s.as_of, s.last_attempt, s.error_at), (Some(10), 20, Some(20)));
        assert_eq!(s.last_error.expect("error")["kind"], "malformed");
        store.put_endpoint_rollup("ksc", 30, &json!({"total": 2754})).await.expect("rollup");
        let s = store.endpoint_state("ksc").await.expect("read").expect("row");
        assert_eq!((s.as_of, s.last_error, s.error_at), (Some(30), None, None));
    }
}
