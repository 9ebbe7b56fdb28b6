//! Power and snapshot actions on a VM found by sync, by name. The caller (the API) checks the
//! role and writes the audit record; this module finds the VM, runs the driver and waits for
//! the platform's operation to end.

use std::sync::Arc;
use std::time::Duration;

use plugins::hypervisor::{Operation, PowerAction, Snapshot, wait};
use serde::Serialize;

use crate::app::App;
use crate::store::VmRecord;

/// Longest wait for one action's operation on the platform.
const ACTION_DEADLINE: Duration = Duration::from_secs(900);

/// Why an action could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no VM named {0}; run `mangrove platforms sync` if it is new")]
    NotFound(String),
    #[error("{name} names {count} VMs (on {platforms}); write PLATFORM/NAME")]
    Ambiguous { name: String, count: usize, platforms: String },
    #[error("platform {0} is not configured on this controller")]
    NoPlatform(String),
    #[error("{0}")]
    Platform(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Finds a VM by `NAME` or `PLATFORM/NAME`.
pub fn find<'a>(vms: &'a [VmRecord], name: &str) -> Result<&'a VmRecord, ActionError> {
    let (platform, vm) = match name.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, name),
    };
    let hits: Vec<&VmRecord> =
        vms.iter().filter(|v| v.info.name == vm && platform.is_none_or(|p| v.platform == p)).collect();
    match hits.as_slice() {
        [] => Err(ActionError::NotFound(name.to_string())),
        [one] => Ok(one),
        many => Err(ActionError::Ambiguous {
            name: name.to_string(),
            count: many.len(),
            platforms: many.iter().map(|v| v.platform.as_str()).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// What a finished action reports.
#[derive(Debug, Clone, Serialize)]
pub struct ActionOutcome {
    pub vm: String,
    pub platform: String,
    pub operation: Operation,
}

async fn vm_and_conn(app: &Arc<App>, name: &str) -> Result<(VmRecord, plugins::connect::Connection), ActionError> {
    let vms = app.store.list_vms().await?;
    let vm = find(&vms, name)?.clone();
    let conn =
        app.platforms.connection(&vm.platform).cloned().ok_or_else(|| ActionError::NoPlatform(vm.platform.clone()))?;
    Ok((vm, conn))
}

/// Powers a VM on, off or down (guest shutdown) and waits for it.
pub async fn power(app: &Arc<App>, name: &str, action: PowerAction) -> Result<ActionOutcome, ActionError> {
    let (vm, conn) = vm_and_conn(app, name).await?;
    let id = vm.vm_id.clone();
    let op = super::with_driver(&conn, ACTION_DEADLINE, move |d| {
        let op = d.power(&id, action)?;
        wait(d, op, ACTION_DEADLINE, |_| {})
    })
    .await
    .map_err(ActionError::Platform)?;
    resync(app, &vm.platform).await;
    Ok(ActionOutcome { vm: vm.info.name, platform: vm.platform, operation: op })
}

/// A snapshot change, as `vms snapshot NAME create|revert|delete` asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotAction {
    Create { name: String, description: String },
    Revert { snapshot: String },
    Delete { snapshot: String },
}

/// A VM's snapshots, as `vms snapshot NAME list` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotList {
    pub vm: String,
    pub platform: String,
    pub snapshots: Vec<Snapshot>,
}

/// Resolves `snapshot` as an id or, failing that, a snapshot name that is unique on the VM.
fn snapshot_id(list: &[Snapshot], snapshot: &str) -> Result<String, plugins::PlatformError> {
    if list.iter().any(|s| s.id == snapshot) {
        return Ok(snapshot.to_string());
    }
    let named: Vec<&Snapshot> = list.iter().filter(|s| s.name == snapshot).collect();
    match named.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(plugins::PlatformError::NotFound {
            endpoint: String::new(),
            what: "snapshot".into(),
            id: snapshot.to_string(),
        }),
        _ => Err(plugins::PlatformError::Config(format!(
            "{} snapshots are named {snapshot:?}; give the id (see `vms snapshot NAME list`)",
            named.len()
        ))),
    }
}

/// Lists a VM's snapshots. Read-only.
pub async fn snapshot_list(app: &Arc<App>, name: &str) -> Result<SnapshotList, ActionError> {
    let (vm, conn) = vm_and_conn(app, name).await?;
    let id = vm.vm_id.clone();
    let snapshots = super::with_driver(&conn, ACTION_DEADLINE, move |d| d.snapshot_list(&id))
        .await
        .map_err(ActionError::Platform)?;
    Ok(SnapshotList { vm: vm.info.name, platform: vm.platform, snapshots })
}

/// Creates, reverts to or deletes a snapshot and waits for the platform to finish.
pub async fn snapshot(app: &Arc<App>, name: &str, action: SnapshotAction) -> Result<ActionOutcome, ActionError> {
    let (vm, conn) = vm_and_conn(app, name).await?;
    let id = vm.vm_id.clone();
    let op = super::with_driver(&conn, ACTION_DEADLINE, move |d| {
        let op = match &action {
            SnapshotAction::Create { name, description } => d.snapshot_create(&id, name, description)?,
            SnapshotAction::Revert { snapshot } => {
                let sid = snapshot_id(&d.snapshot_list(&id)?, snapshot)?;
                d.snapshot_revert(&id, &sid)?
            }
            SnapshotAction::Delete { snapshot } => {
                let sid = snapshot_id(&d.snapshot_list(&id)?, snapshot)?;
                d.snapshot_delete(&id, &sid)?
            }
        };
        wait(d, op, ACTION_DEADLINE, |_| {})
    })
    .await
    .map_err(ActionError::Platform)?;
    resync(app, &vm.platform).await;
    Ok(ActionOutcome { vm: vm.info.name, platform: vm.platform, operation: op })
}

/// Refreshes the platform's picture after an action, so `vms show` says what the action did.
/// A failed re-sync does not fail the action (it is done); the next scheduled sync catches up.
async fn resync(app: &Arc<App>, platform: &str) {
    if let Err(e) = super::sync(app, platform).await {
        tracing::warn!(%platform, error = %e, "re-sync after an action failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugins::hypervisor::{PowerState, VmInfo};

    fn rec(platform: &str, name: &str) -> VmRecord {
        VmRecord {
            platform: platform.into(),
            vm_id: format!("{platform}-{name}"),
            site: None,
            system: None,
            first_seen: 0,
            last_seen: 0,
            info: VmInfo {
                id: format!("{platform}-{name}"),
                name: name.into(),
                host: None,
                power_state: PowerState::On,
                vcpus: 1,
                memory_bytes: 1,
                disks: vec![],
                networks: vec![],
                guest_os: None,
                tags: Default::default(),
            },
        }
    }

    #[test]
    fn names_resolve_uniquely_or_say_why_not() {
        let vms = vec![rec("vc", "web-01"), rec("os", "web-01"), rec("vc", "db-01")];
        assert_eq!(find(&vms, "db-01").map(|v| v.vm_id.as_str()).ok(), Some("vc-db-01"));
        assert_eq!(find(&vms, "os/web-01").map(|v| v.vm_id.as_str()).ok(), Some("os-web-01"));
        let err = find(&vms, "web-01").map(|_| ()).expect_err("ambiguous").to_string();
        assert!(err.contains("2 VMs") && err.contains("vc, os"), "{err}");
        assert!(matches!(find(&vms, "nope"), Err(ActionError::NotFound(_))));
    }

    #[test]
    fn snapshots_resolve_by_id_or_unique_name() {
        let s = |id: &str, name: &str| Snapshot {
            id: id.into(),
            name: name.into(),
            description: None,
            created: None,
            current: false,
        };
        let list = vec![s("snapshot-1", "before-patch"), s("snapshot-2", "nightly"), s("snapshot-3", "nightly")];
        assert_eq!(snapshot_id(&list, "snapshot-2").ok().as_deref(), Some("snapshot-2"));
        assert_eq!(snapshot_id(&list, "before-patch").ok().as_deref(), Some("snapshot-1"));
        assert!(snapshot_id(&list, "nightly").is_err());
        assert!(snapshot_id(&list, "nope").is_err());
    }
}
