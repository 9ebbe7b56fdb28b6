//! The video-conference half of the store: every device check result, kept.
//!
//! Invariant: results are only appended; a failed or missing check never removes what an
//! earlier one recorded (the last known state and its age come from here).

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;

/// One device's result from one check run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VcCheckRecord {
    pub run_id: String,
    pub device: String,
    pub site: String,
    pub at: i64,
    pub state: String,
    pub go: bool,
    pub reasons: Vec<String>,
    pub checks: serde_json::Value,
}

#[async_trait]
pub trait VcStore {
    /// Appends one run's results in one transaction.
    async fn insert_vc_checks(&self, rows: &[VcCheckRecord]) -> Result<(), StoreError>;
    /// A device's newest results, newest first.
    async fn recent_vc_checks(&self, device: &str, limit: i64) -> Result<Vec<VcCheckRecord>, StoreError>;
    /// Every result since `since` (unix ms), oldest first.
    async fn vc_checks_since(&self, since: i64) -> Result<Vec<VcCheckRecord>, StoreError>;
}
