//! [`CapacityStore`] on SQLite.

use async_trait::async_trait;
use sqlx::Row;

use super::capacity::*;
use super::sqlite::write_tx;
use super::{SqliteStore, StoreError};

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

#[async_trait]
impl CapacityStore for SqliteStore {
    async fn put_samples(&self, samples: &[Sample]) -> Result<(), StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        for s in samples {
            sqlx::query(
                "INSERT OR REPLACE INTO capacity_samples
                 (scope_kind, scope, resource, tier, at, capacity, provisioned, used, n)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&s.scope_kind)
            .bind(&s.scope)
            .bind(&s.resource)
            .bind(&s.tier)
            .bind(s.at)
            .bind(s.capacity)
            .bind(s.provisioned)
            .bind(s.used)
            .bind(s.n.max(1))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn daily_series(
        &self,
        scope_kind: &str,
        scope: &str,
        resource: &str,
        since: i64,
    ) -> Result<Vec<DailyPoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT (at / ?1) * ?1 AS day,
                    SUM(capacity * n) / SUM(CASE WHEN capacity IS NULL THEN 0 ELSE n END) AS capacity,
                    SUM(used * n) / SUM(n) AS used
             FROM capacity_samples
             WHERE scope_kind = ?2 AND scope = ?3 AND resource = ?4 AND at >= ?5
             GROUP BY day ORDER BY day",
        )
        .bind(DAY)
        .bind(scope_kind)
        .bind(scope)
        .bind(resource)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DailyPoint { day: r.try_get("day")?, capacity: r.try_get("capacity")?, used: r.try_get("used")? })
            })
            .collect()
    }

    async fn downsample(&self, raw_before: i64, hour_before: i64) -> Result<Folded, StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        let raw_to_hour = fold(&mut tx, "raw", "hour", HOUR, raw_before).await?;
        let hour_to_day = fold(&mut tx, "hour", "day", DAY, hour_before).await?;
        tx.commit().await?;
        Ok(Folded { raw_to_hour, hour_to_day })
    }

    async fn sample_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT tier, COUNT(*) AS n FROM capacity_samples GROUP BY tier ORDER BY tier")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("tier")?, r.try_get("n")?))).collect()
    }
}

/// Moves the `from` rows older than `before` into `to` rows of `bucket` seconds, merging with a
/// `to` row already there (weighted by `n`). Returns how many `from` rows were folded.
async fn fold(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    from: &str,
    to: &str,
    bucket: i64,
    before: i64,
) -> Result<u64, StoreError> {
    // Only whole buckets are folded, so a bucket is never split between two tiers.
    let before = before.div_euclid(bucket) * bucket;
    sqlx::query(
        "INSERT INTO capacity_samples (scope_kind, scope, resource, tier, at, capacity, provisioned, used, n)
         SELECT scope_kind, scope, resource, ?1, (at / ?2) * ?2,
                SUM(capacity * n) / NULLIF(SUM(CASE WHEN capacity IS NULL THEN 0 ELSE n END), 0),
                SUM(provisioned * n) / NULLIF(SUM(CASE WHEN provisioned IS NULL THEN 0 ELSE n END), 0),
                SUM(used * n) / SUM(n), SUM(n)
         FROM capacity_samples WHERE tier = ?3 AND at < ?4
         GROUP BY scope_kind, scope, resource, (at / ?2) * ?2
         ON CONFLICT (scope_kind, scope, resource, tier, at) DO UPDATE SET
            capacity = COALESCE((COALESCE(capacity, excluded.capacity) * n + COALESCE(excluded.capacity, capacity) * excluded.n)
                                / (n + excluded.n), NULL),
            provisioned = COALESCE((COALESCE(provisioned, excluded.provisioned) * n
                                    + COALESCE(excluded.provisioned, provisioned) * excluded.n) / (n + excluded.n), NULL),
            used = (used * n + excluded.used * excluded.n) / (n + excluded.n),
            n = n + excluded.n",
    )
    .bind(to)
    .bind(bucket)
    .bind(from)
    .bind(before)
    .execute(&mut **tx)
    .await?;
    let gone = sqlx::query("DELETE FROM capacity_samples WHERE tier = ? AND at < ?")
        .bind(from)
        .bind(before)
        .execute(&mut **tx)
        .await?;
    Ok(gone.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: i64, used: f64, tier: &str) -> Sample {
        Sample {
            scope_kind: "site".into(),
            scope: "dc".into(),
            resource: "storage".into(),
            tier: tier.into(),
            at,
            capacity: Some(100.0),
            provisioned: None,
            used,
            n: 1,
        }
    }

    async fn store_with_two_days_of_five_minute_samples() -> (SqliteStore, Vec<DailyPoint>) {
        let s = SqliteStore::in_memory().await.expect("the test's setup and answers are valid");
        // Two days, every 5 minutes; the value climbs through each day so averages matter.
        let samples: Vec<Sample> = (0..2 * 288)
            .map(|i| sample(10 * DAY + i * 300, (i % 288) as f64 + if i >= 288 { 1000.0 } else { 0.0 }, "raw"))
            .collect();
        s.put_samples(&samples).await.expect("the test's setup and answers are valid");
        let before = s.daily_series("site", "dc", "storage", 0).await.expect("the test's setup and answers are valid");
        (s, before)
    }

    #[tokio::test]
    async fn a_day_reads_as_the_average_of_its_samples() {
        let (_s, days) = store_with_two_days_of_five_minute_samples().await;
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].day, 10 * DAY);
        assert!((days[0].used - 143.5).abs() < 1e-9, "{}", days[0].used);
        assert!((days[1].used - 1143.5).abs() < 1e-9);
        assert_eq!(days[0].capacity, Some(100.0));
    }

    #[tokio::test]
    async fn folding_keeps_every_daily_average_and_empties_the_finer_tiers() {
        let (s, before) = store_with_two_days_of_five_minute_samples().await;
        // Fold the first day's raw samples into hours, then those hours into a day.
        let f = s.downsample(11 * DAY, 0).await.expect("the test's setup and answers are valid");
        assert_eq!(f, Folded { raw_to_hour: 288, hour_to_day: 0 });
        let f = s.downsample(11 * DAY, 11 * DAY + 5).await.expect("the test's setup and answers are valid");
        assert_eq!(f, Folded { raw_to_hour: 0, hour_to_day: 24 });
        let counts = s.sample_counts().await.expect("the test's setup and answers are valid");
        assert_eq!(counts, vec![("day".to_string(), 1), ("raw".to_string(), 288)]);
        let after = s.daily_series("site", "dc", "storage", 0).await.expect("the test's setup and answers are valid");
        assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(b.day, a.day);
            assert!((b.used - a.used).abs() < 1e-9, "{} vs {}", b.used, a.used);
        }
    }

    #[tokio::test]
    async fn folding_into_a_bucket_that_holds_an_import_weighs_both() {
        let s = SqliteStore::in_memory().await.expect("the test's setup and answers are valid");
        // An imported daily value standing for 288 samples, then raw samples of the same day.
        let mut imported = sample(5 * DAY, 10.0, "day");
        imported.n = 288;
        s.put_samples(&[imported]).await.expect("the test's setup and answers are valid");
        let raw: Vec<Sample> = (0..288).map(|i| sample(5 * DAY + i * 300, 30.0, "raw")).collect();
        s.put_samples(&raw).await.expect("the test's setup and answers are valid");
        s.downsample(6 * DAY, 6 * DAY).await.expect("the test's setup and answers are valid");
        let days = s.daily_series("site", "dc", "storage", 0).await.expect("the test's setup and answers are valid");
        assert_eq!(days.len(), 1);
        assert!((days[0].used - 20.0).abs() < 1e-9, "{}", days[0].used);
        assert_eq!(
            s.sample_counts().await.expect("the test's setup and answers are valid"),
            vec![("day".to_string(), 1)]
        );
    }

    #[tokio::test]
    async fn writing_a_sample_again_replaces_it() {
        let s = SqliteStore::in_memory().await.expect("the test's setup and answers are valid");
        s.put_samples(&[sample(DAY, 1.0, "day")]).await.expect("the test's setup and answers are valid");
        s.put_samples(&[sample(DAY, 2.0, "day")]).await.expect("the test's setup and answers are valid");
        let days = s.daily_series("site", "dc", "storage", 0).await.expect("the test's setup and answers are valid");
        assert_eq!(days.len(), 1);
        assert_eq!(days[0].used, 2.0);
    }
}
