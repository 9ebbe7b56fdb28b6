//! The platform half of the store: each platform's sync state, and what its syncs found
//! (hosts, VMs, storage) with their history; and the state proxy agents report for hosts that
//! cannot run an agent.
//!
//! Invariants every backend keeps:
//! - a sync is written in one transaction: a failed or interrupted write leaves the previous
//!   sync's picture whole (never a half-replaced inventory);
//! - a failed sync changes only the platform's status row, never its hosts, VMs or storage;
//! - a VM is identified by (platform, vm_id); moves and renames are history, not new VMs.

use async_trait::async_trait;
use plugins::hypervisor::{HostInfo, StoragePool, VmInfo};
use serde::Serialize;

use super::StoreError;

/// A platform as the controller's configuration declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSeed {
    pub name: String,
    pub kind: String,
    pub site: Option<String>,
    pub endpoint: String,
}

/// A platform and how its syncs went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformRecord {
    pub name: String,
    pub kind: String,
    pub site: Option<String>,
    pub endpoint: String,
    /// `Some(true)` after a good sync, `Some(false)` after a failed one, `None` before any.
    pub up: Option<bool>,
    pub last_sync: Option<i64>,
    pub last_attempt: Option<i64>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub last_round_trips: Option<i64>,
}

/// A VM as the last good sync of its platform saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmRecord {
    pub platform: String,
    pub vm_id: String,
    pub site: Option<String>,
    pub system: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub info: VmInfo,
}

/// One change a sync saw in a VM.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmChange {
    pub platform: String,
    pub vm_id: String,
    pub name: String,
    pub at: i64,
    /// `appeared`, `gone`, `moved`, `resized`, `renamed` or `power`.
    pub change: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// A storage pool as the last good sync saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageRecord {
    pub platform: String,
    pub seen_at: i64,
    #[serde(flatten)]
    pub pool: StoragePool,
}

/// Everything a good sync writes, in one transaction.
#[derive(Debug, Clone)]
pub struct SyncWrite {
    pub platform: String,
    pub site: Option<String>,
    pub at: i64,
    pub duration_ms: i64,
    pub round_trips: i64,
    pub hosts: Vec<HostInfo>,
    /// Each VM with the system the inventory maps it to.
    pub vms: Vec<(VmInfo, Option<String>)>,
    pub storage: Vec<StoragePool>,
    /// The changes computed against the previous picture (see `platforms::diff`).
    pub changes: Vec<VmChange>,
}

/// What a proxy agent says of one host it speaks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxiedHostStatus {
    pub name: String,
    /// True when the platform can manage the host (it counts as a sign of life).
    pub reachable: bool,
    pub problems: Vec<String>,
    /// The platform's view, shown as the host's facts; `None` keeps the last one (the
    /// platform could not be read).
    pub facts: Option<serde_json::Value>,
}

/// The platform half of the store.
#[async_trait]
pub trait PlatformStore: Send + Sync {
    /// Declares the configured platforms (inserting new ones, refreshing kind, site and
    /// endpoint). Platforms no longer configured are kept with their history.
    async fn upsert_platforms(&self, seeds: &[PlatformSeed]) -> Result<(), StoreError>;

    async fn list_platforms(&self) -> Result<Vec<PlatformRecord>, StoreError>;

    /// Records a failed sync: the platform is down; its inventory stays as it was.
    async fn record_sync_failure(
        &self,
        platform: &str,
        at: i64,
        duration_ms: i64,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Records a good sync (see [`SyncWrite`]) in one transaction.
    async fn record_sync(&self, sync: &SyncWrite) -> Result<(), StoreError>;

    /// Every VM of every platform, by name.
    async fn list_vms(&self) -> Result<Vec<VmRecord>, StoreError>;

    /// The hosts the platforms report, by platform then name.
    async fn list_platform_hosts(&self) -> Result<Vec<(String, HostInfo)>, StoreError>;

    async fn list_storage(&self) -> Result<Vec<StorageRecord>, StoreError>;

    /// Changes recorded for `platform` at exactly `at` (a sync's time), or for one VM when
    /// `vm_id` is given (all times, oldest first).
    async fn vm_changes(
        &self,
        platform: &str,
        at: Option<i64>,
        vm_id: Option<&str>,
    ) -> Result<Vec<VmChange>, StoreError>;

    /// Applies a proxy agent's report on the hosts it speaks for: each must already exist
    /// (declared by the inventory); a reachable host is marked seen at `now`. Returns the
    /// names updated.
    async fn record_proxied_hosts(
        &self,
        proxy: &str,
        now: i64,
        hosts: &[ProxiedHostStatus],
    ) -> Result<Vec<String>, StoreError>;
}
