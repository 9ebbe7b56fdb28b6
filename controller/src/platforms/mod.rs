//! Virtualization platforms seen through their drivers: scheduled and on-demand syncs that
//! store hosts, VMs and storage with history, VM-to-system mapping by the inventory's rules,
//! drift, and the power and snapshot actions operators ask for.
//!
//! Guarantees:
//! - a platform that is down, slow or answers nonsense makes its sync fail with the driver's
//!   error, sets `mangrove_platform_up{platform} 0`, and leaves the stored inventory as the
//!   last good sync left it;
//! - syncs of one platform never overlap (a per-platform lock); an on-demand sync waits for a
//!   running scheduled one and then reads the platform again;
//! - drivers run on blocking threads, each sync in its own task: a panicking driver fails that
//!   sync, not the controller.

pub mod actions;
pub mod diff;
pub mod drift;
pub mod proxy;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plugins::connect::Connection;
use plugins::hypervisor::Inventory;
use serde::Serialize;

use crate::app::{App, now_ms};

/// Longest a whole sync may take before it is abandoned and counted as failed.
const SYNC_DEADLINE: Duration = Duration::from_secs(600);

/// The configured platforms and their sync locks.
pub struct Platforms {
    conns: Vec<Connection>,
    locks: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    interval: Duration,
}

/// What one sync did, as `platforms sync` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncSummary {
    pub platform: String,
    pub ok: bool,
    pub duration_ms: i64,
    pub round_trips: i64,
    pub hosts: usize,
    pub vms: usize,
    pub storage_pools: usize,
    pub changes: usize,
    pub error: Option<String>,
}

impl Platforms {
    pub fn new(conns: Vec<Connection>, interval: Duration) -> Platforms {
        let locks = conns.iter().map(|c| (c.name.clone(), Arc::new(tokio::sync::Mutex::new(())))).collect();
        Platforms { conns, locks, interval }
    }

    pub fn connections(&self) -> &[Connection] {
        &self.conns
    }

    pub fn connection(&self, name: &str) -> Option<&Connection> {
        self.conns.iter().find(|c| c.name == name)
    }
}

/// The site whose platform this is, by the inventory.
pub fn site_of(inv: Option<&inventory::Inventory>, platform: &str) -> Option<String> {
    inv?.sites.iter().find(|s| s.platform.name == platform).map(|s| s.name.clone())
}

/// Runs `f` with a connected driver on a blocking thread, closing the session after.
pub async fn with_driver<T: Send + 'static>(
    conn: &Connection,
    deadline: Duration,
    f: impl FnOnce(&dyn plugins::Hypervisor) -> Result<T, plugins::PlatformError> + Send + 'static,
) -> Result<T, String> {
    let conn = conn.clone();
    let name = conn.name.clone();
    let job = tokio::task::spawn_blocking(move || {
        let driver = conn.connect()?;
        let out = f(driver.as_ref());
        driver.close();
        out
    });
    match tokio::time::timeout(deadline, job).await {
        Err(_) => Err(format!("platform {name}: no answer within {} s", deadline.as_secs())),
        Ok(Err(join)) => Err(format!("platform {name}: the driver failed unexpectedly ({join})")),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Ok(Ok(v))) => Ok(v),
    }
}

/// Syncs one platform now (waiting for a sync already running) and records the outcome.
pub async fn sync(app: &Arc<App>, name: &str) -> Result<SyncSummary, String> {
    let conn = app.platforms.connection(name).cloned().ok_or_else(|| format!("no platform named {name}"))?;
    let lock = app.platforms.locks.get(name).cloned().ok_or_else(|| format!("no platform named {name}"))?;
    let _guard = lock.lock().await;
    let started = Instant::now();
    let read = with_driver(&conn, SYNC_DEADLINE, |d| d.inventory()).await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let at = now_ms();
    let inv: Inventory = match read {
        Ok(inv) => inv,
        Err(error) => {
            tracing::warn!(platform = name, %error, "platform sync failed; keeping the last good inventory");
            app.metrics.platform_sync(name, false, duration_ms, 0, None);
            app.store.record_sync_failure(name, at, duration_ms, &error).await.map_err(|e| e.to_string())?;
            return Ok(SyncSummary {
                platform: name.to_string(),
                ok: false,
                duration_ms,
                round_trips: 0,
                hosts: 0,
                vms: 0,
                storage_pools: 0,
                changes: 0,
                error: Some(error),
            });
        }
    };
    let site = site_of(app.inventory.as_deref(), name);
    let before = app.store.list_vms().await.map_err(|e| e.to_string())?;
    let changes = diff::diff(name, at, &before, &inv.vms);
    let vms: Vec<_> = inv
        .vms
        .iter()
        .map(|vm| {
            let system = app.inventory.as_deref().and_then(|i| i.system_of_vm(&vm.name, &vm.tags)).map(str::to_string);
            (vm.clone(), system)
        })
        .collect();
    let summary = SyncSummary {
        platform: name.to_string(),
        ok: true,
        duration_ms,
        round_trips: i64::from(inv.round_trips),
        hosts: inv.hosts.len(),
        vms: inv.vms.len(),
        storage_pools: inv.storage.len(),
        changes: changes.len(),
        error: None,
    };
    let write = crate::store::SyncWrite {
        platform: name.to_string(),
        site,
        at,
        duration_ms,
        round_trips: summary.round_trips,
        hosts: inv.hosts,
        vms,
        storage: inv.storage,
        changes,
    };
    app.store.record_sync(&write).await.map_err(|e| e.to_string())?;
    app.metrics.platform_sync(name, true, duration_ms, summary.round_trips, Some(summary.vms));
    crate::capacity::collect::after_sync(app).await;
    tracing::info!(
        platform = name,
        vms = summary.vms,
        hosts = summary.hosts,
        round_trips = summary.round_trips,
        duration_ms,
        "platform synced"
    );
    Ok(summary)
}

/// Starts one sync loop per platform: a sync at start, then one every interval, until
/// shutdown. A failed sync is retried at the next tick; nothing here can stop the loop.
pub fn spawn_scheduler(app: Arc<App>) {
    for conn in app.platforms.connections() {
        let app = app.clone();
        let name = conn.name.clone();
        tokio::spawn(async move {
            let interval = app.platforms.interval;
            loop {
                if let Err(e) = sync(&app, &name).await {
                    tracing::warn!(platform = %name, error = %e, "platform sync could not be recorded");
                }
                tokio::select! {
                    _ = app.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        });
    }
}
