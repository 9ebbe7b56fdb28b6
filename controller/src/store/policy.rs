//! The policy half of the store: assignments of packs to systems or levels, waivers, and the
//! current finding of each (host, pack, control) with its history.
//!
//! Invariants: a finding's `since` moves only when its status changes, and each change adds
//! one history row in the same transaction.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assignment {
    pub id: i64,
    pub pack: String,
    /// `system` or `level`.
    pub scope: String,
    pub target: String,
    /// `audit` or `enforce`.
    pub mode: String,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiver {
    pub id: i64,
    pub control: String,
    /// `host` or `system`.
    pub scope: String,
    pub target: String,
    pub until: i64,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
}

/// A control's verdict on a host, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingRecord {
    pub host: String,
    pub pack: String,
    pub control: String,
    pub level: i64,
    pub status: String,
    pub message: String,
    pub evidence: serde_json::Value,
    pub facts_at: Option<i64>,
    pub since: i64,
    pub evaluated_at: i64,
}

#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Creates or changes (mode) the assignment of `pack` to a scope; returns it and whether
    /// it was new.
    async fn assign(&self, a: &Assignment) -> Result<(Assignment, bool), StoreError>;
    async fn list_assignments(&self) -> Result<Vec<Assignment>, StoreError>;
    async fn add_waiver(&self, w: &Waiver) -> Result<Waiver, StoreError>;
    async fn list_waivers(&self) -> Result<Vec<Waiver>, StoreError>;
    /// Replaces the findings of `host` for `pack` with `findings` (controls no longer
    /// evaluated are removed), recording each status change with `cause`.
    async fn record_findings(
        &self,
        host: &str,
        pack: &str,
        findings: &[FindingRecord],
        cause: &str,
    ) -> Result<(), StoreError>;
    /// The current findings, of one host or of all.
    async fn list_findings(&self, host: Option<&str>) -> Result<Vec<FindingRecord>, StoreError>;
    /// The status changes of one host's control, oldest first: (time, status, cause).
    async fn finding_history(&self, host: &str, control: &str) -> Result<Vec<(i64, String, String)>, StoreError>;
}
