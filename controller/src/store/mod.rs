//! The controller's store: one interface ([`Store`]) over the database that holds desired and
//! observed state. SQLite (WAL, versioned migrations) is the embedded default; a PostgreSQL
//! backend implements the same trait when the controller runs as several replicas.
//!
//! Invariants every backend keeps:
//! - a report is stored at most once per (host, sequence number) and the host's counters move
//!   only when a new one is stored, in the same transaction (a replay never double-counts);
//! - a bootstrap token is marked used by exactly one caller (a conditional update);
//! - a task result completes only a task of the host that sent it.

pub mod backups;
pub mod capacity;
pub mod drills;
pub mod endpoints;
pub mod platforms;
pub mod policy;
pub mod recovery;
pub mod sqlite;
mod sqlite_backups;
mod sqlite_capacity;
mod sqlite_drills;
mod sqlite_endpoints;
mod sqlite_platforms;
mod sqlite_policy;
mod sqlite_recovery;
mod sqlite_vc;
mod sqlite_web;
pub mod vc;
pub mod web;

use async_trait::async_trait;
use serde::Serialize;

pub use backups::{BackupRun, BackupStore, RunEnd, SnapshotRecord, Verdict};
pub use capacity::{CapacityStore, DailyPoint, Folded, Sample};
pub use drills::{Approval, DrillRun, DrillStore, StateChange, StepRecord};
pub use endpoints::{EndpointState, EndpointStore};
pub use platforms::{
    PlatformRecord, PlatformSeed, PlatformStore, ProxiedHostStatus, StorageRecord, SyncWrite, VmChange, VmRecord,
};
pub use policy::{Assignment, FindingRecord, PolicyStore, Waiver};
pub use recovery::{Applied, PlanRecord, RecoveryPlanStore};
pub use sqlite::SqliteStore;
pub use vc::{VcCheckRecord, VcStore};
pub use web::{LockoutRule, PasswordAdded, UserRecord, WebSession, WebStore};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt value in column {column}")]
    Corrupt {
        column: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("user {user} already exists with role {existing}, not {requested}")]
    RoleMismatch { user: String, existing: String, requested: String },
}

/// A host the inventory declares, as the store first learns of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSeed {
    pub name: String,
    pub site: String,
    pub kind: String,
}

/// An event report as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventReport {
    pub seq: i64,
    pub created_at: i64,
    pub received_at: i64,
    /// The report as the agent sent it (a `proto::v1::Report`).
    pub payload: Vec<u8>,
}

/// A host and what its agent last said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostRecord {
    pub name: String,
    pub site: Option<String>,
    pub kind: String,
    pub managed: bool,
    pub enrolled_at: Option<i64>,
    pub last_seen: Option<i64>,
    pub last_seq: i64,
    pub reports_stored: i64,
    pub problems: Vec<String>,
    pub outbox_backlog: i64,
    pub outbox_dropped: i64,
    pub outbox_compacted: i64,
    pub agent_version: Option<String>,
    pub facts: Option<serde_json::Value>,
    pub facts_at: Option<i64>,
    /// The proxy agent that reports this host (ESXi hosts), if any.
    pub proxied_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub secret_hash: String,
    /// `bootstrap` or `user`.
    pub kind: String,
    pub role: String,
    pub user_name: Option<String>,
    pub host: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub used_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRecord {
    pub serial: String,
    pub host: String,
    pub not_after: i64,
    pub revoked_at: Option<i64>,
}

/// What an enrollment writes: the host (created unmanaged if the inventory does not know it)
/// and its first certificate.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub host: String,
    pub serial: String,
    pub issued_at: i64,
    pub not_after: i64,
}

/// What a heartbeat says of its host: the problems it names and its outbox counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeartbeatStatus {
    pub problems: Vec<String>,
    pub backlog: i64,
    pub dropped: i64,
    pub compacted: i64,
}

/// How a stored report changes the host's observed state.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportEffect {
    Heartbeat(HeartbeatStatus),
    Facts {
        json: serde_json::Value,
        agent_version: String,
    },
    TaskResult(TaskOutcome),
    /// An event (e.g. a backup's progress): stored; the controller may act on it.
    Event {
        kind: String,
        fields: std::collections::BTreeMap<String, String>,
    },
    /// Compacted placeholders: stored, no other effect.
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskOutcome {
    pub task_id: String,
    pub state: String,
    pub exit_code: Option<i64>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub error: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewReport {
    pub host: String,
    pub seq: i64,
    pub kind: &'static str,
    pub created_at: i64,
    pub received_at: i64,
    pub payload: Vec<u8>,
    pub effect: ReportEffect,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRecord {
    pub id: String,
    pub host: String,
    pub kind: String,
    pub args: serde_json::Value,
    pub created_by: String,
    pub created_at: i64,
    pub deadline: i64,
    pub state: String,
    pub delivered_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub exit_code: Option<i64>,
    #[serde(skip)]
    pub stdout: Vec<u8>,
    #[serde(skip)]
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub error: Option<String>,
}

impl TaskRecord {
    /// A task just created, not yet delivered.
    pub fn pending(
        id: &str,
        host: &str,
        kind: &str,
        args: serde_json::Value,
        created_by: &str,
        created_at: i64,
        deadline: i64,
    ) -> TaskRecord {
        TaskRecord {
            id: id.to_string(),
            host: host.to_string(),
            kind: kind.to_string(),
            args,
            created_by: created_by.to_string(),
            created_at,
            deadline,
            state: "pending".into(),
            delivered_at: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            stdout: vec![],
            stderr: vec![],
            stdout_truncated: false,
            stderr_truncated: false,
            error: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: serde_json::Value,
}

/// The one interface to the controller's database.
#[async_trait]
pub trait Store:
    PlatformStore
    + PolicyStore
    + CapacityStore
    + BackupStore
    + EndpointStore
    + VcStore
    + RecoveryPlanStore
    + DrillStore
    + WebStore
    + Send
    + Sync
    + 'static
{
    /// Declares the inventory's hosts: inserts the new ones, marks all of them managed and
    /// refreshes site and kind. Idempotent.
    async fn upsert_inventory_hosts(&self, seeds: &[HostSeed]) -> Result<(), StoreError>;
    async fn list_hosts(&self) -> Result<Vec<HostRecord>, StoreError>;
    async fn get_host(&self, name: &str) -> Result<Option<HostRecord>, StoreError>;

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Marks a token used; false when someone else used it first.
    async fn mark_token_used(&self, id: &str, now: i64, by: &str) -> Result<bool, StoreError>;

    /// Creates the user with `role`, or returns the role it already has if that is the same.
    async fn ensure_user(&self, name: &str, role: &str, now: i64) -> Result<(), StoreError>;

    async fn record_enrollment(&self, e: &Enrollment) -> Result<(), StoreError>;
    /// Adds a renewed certificate, but only while `old_serial` (the one presented) is still
    /// unrevoked; false otherwise. Atomic with respect to [`Store::revoke_host`].
    async fn add_renewed_cert(&self, old_serial: &str, cert: &CertRecord, issued_at: i64) -> Result<bool, StoreError>;
    /// Whether `host` holds a certificate that is neither revoked nor expired at `now`.
    async fn has_live_cert(&self, host: &str, now: i64) -> Result<bool, StoreError>;
    async fn user_count(&self) -> Result<i64, StoreError>;
    async fn get_cert(&self, serial: &str) -> Result<Option<CertRecord>, StoreError>;
    /// Revokes every certificate issued to `host`; returns how many were live.
    async fn revoke_host(&self, host: &str, now: i64) -> Result<u64, StoreError>;

    /// Stores a report once; returns false for a replay (already stored).
    async fn store_report(&self, r: &NewReport) -> Result<bool, StoreError>;
    /// The events `host` reported (newest first, at most `limit`): their stored reports,
    /// protobuf-encoded (decoded by `crate::api_events`).
    async fn list_event_reports(&self, host: &str, limit: i64) -> Result<Vec<EventReport>, StoreError>;
    async fn touch_host(&self, host: &str, now: i64) -> Result<(), StoreError>;
    /// A heartbeat sent outside the outbox: liveness, problems and outbox counters, no report.
    async fn record_unsequenced_heartbeat(&self, host: &str, now: i64, hb: &HeartbeatStatus) -> Result<(), StoreError>;

    async fn insert_task(&self, t: &TaskRecord) -> Result<(), StoreError>;
    async fn get_task(&self, id: &str) -> Result<Option<TaskRecord>, StoreError>;
    /// Tasks for `host` not yet finished whose deadline has not passed, oldest first.
    async fn open_tasks(&self, host: &str, now: i64) -> Result<Vec<TaskRecord>, StoreError>;
    async fn mark_task_delivered(&self, id: &str, now: i64) -> Result<(), StoreError>;
    /// Marks open tasks past their deadline `expired`; returns their ids.
    async fn expire_tasks(&self, now: i64) -> Result<Vec<String>, StoreError>;

    async fn append_audit(
        &self,
        at: i64,
        actor: &str,
        action: &str,
        target: Option<&str>,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError>;
    async fn list_audit(&self, limit: i64) -> Result<Vec<AuditRecord>, StoreError>;
}
