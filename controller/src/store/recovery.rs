//! The recovery-plan half of the store: every applied version of every plan.
//!
//! Invariant: versions are only added, numbered 1, 2, … per plan, and only when the text
//! changes; applying the same text again names the version that holds it.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;

/// One applied version of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanRecord {
    pub name: String,
    pub version: i64,
    pub text: String,
    pub digest: String,
    pub origin: String,
    pub applied_by: String,
    pub applied_at: i64,
}

/// What applying a plan's text did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A new version was stored.
    New(i64),
    /// The newest version already holds this text.
    Unchanged(i64),
}

#[async_trait]
pub trait RecoveryPlanStore {
    /// Stores `record.text` as the plan's next version unless its newest version has the same
    /// digest (`record.version` is ignored), in one transaction.
    async fn apply_plan(&self, record: &PlanRecord) -> Result<Applied, StoreError>;
    /// A version of a plan, or its newest when `version` is `None`.
    async fn plan(&self, name: &str, version: Option<i64>) -> Result<Option<PlanRecord>, StoreError>;
    /// The newest version of every plan, by name.
    async fn plans(&self) -> Result<Vec<PlanRecord>, StoreError>;
}
