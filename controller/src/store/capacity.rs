//! The capacity half of the store: history samples per scope and resource, at three tiers of
//! detail.
//!
//! Invariants every backend keeps:
//! - writing a sample for a (scope, resource, tier, time) that exists replaces it, so an import
//!   or a re-sample never doubles a point;
//! - folding (`downsample`) runs in one transaction: a point is either still raw or already in
//!   its hour row, never both or neither; averages are weighted by `n`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// One history sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// `site`, `host`, `pool` or `system`.
    pub scope_kind: String,
    pub scope: String,
    /// `cpu`, `memory`, `storage` or `vms`.
    pub resource: String,
    /// `raw`, `hour` or `day`.
    #[serde(default = "raw")]
    pub tier: String,
    /// Unix seconds.
    pub at: i64,
    #[serde(default)]
    pub capacity: Option<f64>,
    #[serde(default)]
    pub provisioned: Option<f64>,
    pub used: f64,
    /// How many raw samples this one stands for.
    #[serde(default = "one")]
    pub n: i64,
}

fn raw() -> String {
    "raw".to_string()
}

fn one() -> i64 {
    1
}

/// A day of one series: the weighted average of everything stored for that day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DailyPoint {
    /// Unix seconds of the day's start (UTC).
    pub day: i64,
    pub capacity: Option<f64>,
    pub used: f64,
}

/// What one `downsample` folded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Folded {
    pub raw_to_hour: u64,
    pub hour_to_day: u64,
}

#[async_trait]
pub trait CapacityStore: Send + Sync {
    /// Writes samples (replacing any with the same key) in one transaction.
    async fn put_samples(&self, samples: &[Sample]) -> Result<(), StoreError>;

    /// One series by day from `since` (unix seconds), oldest first, all tiers together.
    async fn daily_series(
        &self,
        scope_kind: &str,
        scope: &str,
        resource: &str,
        since: i64,
    ) -> Result<Vec<DailyPoint>, StoreError>;

    /// Folds raw samples older than `raw_before` into hourly rows and hourly rows older than
    /// `hour_before` into daily rows (unix seconds).
    async fn downsample(&self, raw_before: i64, hour_before: i64) -> Result<Folded, StoreError>;

    /// How many rows each tier holds.
    async fn sample_counts(&self) -> Result<Vec<(String, i64)>, StoreError>;
}
