//! The drill half of the store: runs, their steps' journal, and approvals.
//!
//! Invariants every backend keeps:
//! - a run's state changes only from one of the states the caller names (a conditional update),
//!   so two controllers or a late API call cannot move it twice;
//! - a step record is written whole (upsert) in one statement: its start is on disk before the
//!   step runs, its result before any step that depends on it starts;
//! - an approval is decided once.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillRun {
    pub id: String,
    pub plan: String,
    pub plan_version: i64,
    pub mode: String,
    pub state: String,
    pub started_by: String,
    pub approved_by: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub steps: serde_json::Value,
    pub systems: serde_json::Value,
    pub notes: serde_json::Value,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    pub run: String,
    pub key: String,
    pub state: String,
    pub attempts: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub not_before: Option<i64>,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub id: i64,
    pub run: String,
    pub plan: String,
    pub mode: String,
    pub requested_by: String,
    pub requested_at: i64,
    pub expires_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub decision: Option<String>,
}

/// A change of a run's state, applied only when the run is in one of `from`.
#[derive(Debug, Clone, Default)]
pub struct StateChange<'a> {
    pub from: &'a [&'a str],
    pub to: &'a str,
    pub approved_by: Option<&'a str>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<&'a str>,
}

#[async_trait]
pub trait DrillStore {
    /// Creates a run (and its approval request, when it needs one) in one transaction.
    async fn insert_drill(&self, run: &DrillRun, approval: Option<&Approval>) -> Result<(), StoreError>;
    async fn drill(&self, id: &str) -> Result<Option<DrillRun>, StoreError>;
    /// The newest runs first.
    async fn drills(&self, limit: i64) -> Result<Vec<DrillRun>, StoreError>;
    /// For each of `systems`, the newest run covering it that ran to its end (`succeeded` or
    /// `failed`; by `finished_at`), in any mode: `(system, run)`, sorted by system. A system no
    /// such run covers is absent.
    async fn newest_finished_drills(&self, systems: &[String]) -> Result<Vec<(String, DrillRun)>, StoreError>;
    /// Runs not yet ended (awaiting approval, running, paused, aborting).
    async fn active_drills(&self) -> Result<Vec<DrillRun>, StoreError>;
    /// Applies `change` when the run is in one of its `from` states; false otherwise.
    async fn change_drill_state(&self, id: &str, change: &StateChange<'_>) -> Result<bool, StoreError>;
    /// Appends a note (`{at, by, text}`) to the run.
    async fn add_drill_note(&self, id: &str, note: &serde_json::Value) -> Result<bool, StoreError>;
    async fn drill_steps(&self, run: &str) -> Result<Vec<StepRecord>, StoreError>;
    /// Writes a step's record whole.
    async fn put_drill_step(&self, step: &StepRecord) -> Result<(), StoreError>;
    /// Approvals, newest first; only undecided ones when `pending`.
    async fn approvals(&self, pending: bool) -> Result<Vec<Approval>, StoreError>;
    async fn approval(&self, id: i64) -> Result<Option<Approval>, StoreError>;
    /// Records a decision on an undecided approval; false when it was already decided.
    async fn decide_approval(&self, id: i64, by: &str, decision: &str, at: i64) -> Result<bool, StoreError>;
}
