//! Cinder: volumes, backups, pools and the snapshots that stand for VM snapshots.
//!
//! A VM snapshot is one Cinder snapshot per volume attached to the server, all created
//! together and tagged with the same `mangrove_group` metadata; its id is the Cinder snapshot
//! ids joined with commas. Servers without volumes (ephemeral root disk) have no snapshots
//! here.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::nova::encode;
use super::session::Service;
use super::{OpenstackDriver, running};
use crate::error::PlatformError;
use crate::hypervisor::{OpState, Operation, Snapshot, StoragePool};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// A Cinder volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, rename = "size")]
    pub size_gb: u64,
    #[serde(default, deserialize_with = "bool_or_string")]
    pub bootable: bool,
    #[serde(default)]
    pub volume_type: Option<String>,
    /// The pool that holds it (`host@backend#pool`), visible to admins.
    #[serde(default, rename = "os-vol-host-attr:host")]
    pub pool: Option<String>,
    #[serde(default)]
    pub attachments: Vec<VolumeAttachment>,
}

/// Where a volume is attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeAttachment {
    #[serde(default)]
    pub server_id: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
}

/// A Cinder backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeBackup {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub name: String,
    #[serde(default)]
    pub volume_id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, rename = "size")]
    pub size_gb: u64,
    #[serde(default)]
    pub created_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CinderSnapshot {
    id: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    volume_id: String,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    metadata: Option<std::collections::BTreeMap<String, Value>>,
    #[serde(default, rename = "os-extended-snapshot-attributes:progress")]
    progress: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Pool {
    name: String,
    #[serde(default)]
    capabilities: Option<Value>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Cinder sends `bootable` as the string "true"/"false".
fn bool_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    })
}

/// GB (Cinder means GiB) to bytes; `infinite`/`unknown` and missing values count as 0.
fn capacity_bytes(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Number(n)) => n.as_f64().map(|g| (g.max(0.0) * GIB) as u64).unwrap_or(0),
        Some(Value::String(s)) => s.parse::<f64>().map(|g| (g.max(0.0) * GIB) as u64).unwrap_or(0),
        _ => 0,
    }
}

fn pool_info(p: Pool) -> StoragePool {
    let caps = p.capabilities.unwrap_or(Value::Null);
    let name = caps.get("pool_name").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| p.name.clone());
    StoragePool {
        id: p.name,
        name,
        capacity_bytes: capacity_bytes(caps.get("total_capacity_gb")),
        free_bytes: capacity_bytes(caps.get("free_capacity_gb")),
    }
}

fn group_of(s: &CinderSnapshot) -> String {
    s.metadata
        .as_ref()
        .and_then(|m| m.get("mangrove_group"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| s.id.clone())
}

/// Cinder snapshots grouped into VM snapshots, oldest first.
fn group_snapshots(mut snaps: Vec<CinderSnapshot>) -> Vec<Snapshot> {
    snaps.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let mut out: Vec<(String, Snapshot)> = Vec::new();
    for s in snaps {
        let group = group_of(&s);
        match out.iter_mut().find(|(g, _)| *g == group) {
            Some((_, snap)) => {
                snap.id.push(',');
                snap.id.push_str(&s.id);
            }
            None => out.push((
                group,
                Snapshot {
                    id: s.id,
                    name: s.name,
                    description: s.description.filter(|d| !d.is_empty()),
                    created: s.created_at,
                    current: false,
                },
            )),
        }
    }
    out.into_iter().map(|(_, s)| s).collect()
}

/// A group id unique enough for one server's snapshots.
fn new_group() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("mg-{nanos:x}")
}

impl OpenstackDriver {
    /// Every volume of every project.
    pub fn volumes(&self) -> Result<Vec<Volume>, PlatformError> {
        self.session.list(Service::Volume, "/volumes/detail?all_tenants=True", "volumes")
    }

    /// Every volume backup of every project.
    pub fn volume_backups(&self) -> Result<Vec<VolumeBackup>, PlatformError> {
        self.session.list(Service::Volume, "/backups/detail?all_tenants=True", "backups")
    }

    /// Cinder back-end pools with their capacity (admin only).
    pub(crate) fn pools(&self) -> Result<Vec<StoragePool>, PlatformError> {
        let call = "GET /scheduler-stats/get_pools?detail=True";
        let doc = self.session.get_json(Service::Volume, "/scheduler-stats/get_pools?detail=True")?;
        let pools: Vec<Pool> = self.session.field(&doc, "pools", call)?;
        Ok(pools.into_iter().map(pool_info).collect())
    }

    fn snapshot(&self, id: &str) -> Result<Option<CinderSnapshot>, PlatformError> {
        let path = format!("/snapshots/{}", encode(id));
        let reply = self.session.call(Service::Volume, "GET", &path, None)?;
        if reply.status == 404 {
            return Ok(None);
        }
        let call = format!("GET {path}");
        let doc = self.session.json(reply, &call)?;
        self.session.field(&doc, "snapshot", &call).map(Some)
    }

    fn server_volume_ids(&self, vm: &str) -> Result<Vec<String>, PlatformError> {
        let ids = self.server_required(vm)?.volume_ids();
        if ids.is_empty() {
            return Err(PlatformError::Unsupported {
                kind: "openstack",
                what: format!("snapshot of server {vm}, which has no Cinder volume (ephemeral disks only)"),
            });
        }
        Ok(ids)
    }

    pub(crate) fn volume_snapshot_create(
        &self,
        vm: &str,
        name: &str,
        description: &str,
    ) -> Result<Operation, PlatformError> {
        let volumes = self.server_volume_ids(vm)?;
        let group = new_group();
        let mut ids = Vec::new();
        for volume in volumes {
            let body = json!({"snapshot": {
                "volume_id": volume, "name": name, "description": description,
                // force: the volume is attached (in-use); Cinder refuses without it.
                "force": true,
                "metadata": {"mangrove_vm": vm, "mangrove_group": group},
            }});
            let reply = self.session.call(Service::Volume, "POST", "/snapshots", Some(&body))?;
            let call = "POST /snapshots";
            let doc = self.session.json(reply, call)?;
            let id = doc
                .get("snapshot")
                .and_then(|s| s.get("id"))
                .and_then(Value::as_str)
                .ok_or_else(|| self.session.malformed(call, "no snapshot.id in the answer"))?;
            ids.push(id.to_string());
        }
        Ok(running(format!("snapshot:{}:available", ids.join(",")), format!("snapshot {vm} as {name:?}")))
    }

    pub(crate) fn volume_snapshot_list(&self, vm: &str) -> Result<Vec<Snapshot>, PlatformError> {
        let volumes = self.server_required(vm)?.volume_ids();
        let mut snaps = Vec::new();
        for v in &volumes {
            let path = format!("/snapshots/detail?all_tenants=True&volume_id={}", encode(v));
            let found: Vec<CinderSnapshot> = self.session.list(Service::Volume, &path, "snapshots")?;
            // The filter is applied again here: a Cinder that ignores it must not mix in other
            // volumes' snapshots.
            snaps.extend(found.into_iter().filter(|s| s.volume_id == *v));
        }
        Ok(group_snapshots(snaps))
    }

    pub(crate) fn volume_snapshot_revert(&self, vm: &str, snapshot: &str) -> Result<Operation, PlatformError> {
        let token = self.session.token(false)?;
        let base = self.session.base_url(&token, Service::Volume)?;
        if self.session.microversion(Service::Volume, &base)?.is_none_or(|v| v < (3, 40)) {
            return Err(PlatformError::Unsupported {
                kind: "openstack",
                what: "revert to snapshot (needs block-storage microversion 3.40)".into(),
            });
        }
        let mut volumes = Vec::new();
        for id in snapshot.split(',') {
            let s = self.snapshot(id)?.ok_or_else(|| self.session.not_found("snapshot", id))?;
            // Cinder reverts a volume in place; it requires the volume detached and the
            // snapshot to be its latest, and says so in its 400 if not.
            let path = format!("/volumes/{}/action", encode(&s.volume_id));
            let body = json!({"revert": {"snapshot_id": s.id}});
            let reply = self.session.call(Service::Volume, "POST", &path, Some(&body))?;
            self.session.json(reply, &format!("POST {path} revert"))?;
            volumes.push(s.volume_id);
        }
        Ok(running(format!("volume:{}:available", volumes.join(",")), format!("revert {vm} to {snapshot}")))
    }

    pub(crate) fn volume_snapshot_delete(&self, vm: &str, snapshot: &str) -> Result<Operation, PlatformError> {
        let mut pending = false;
        for id in snapshot.split(',') {
            let path = format!("/snapshots/{}", encode(id));
            let reply = self.session.call(Service::Volume, "DELETE", &path, None)?;
            if reply.status == 404 {
                continue;
            }
            self.session.json(reply, &format!("DELETE {path}"))?;
            pending = true;
        }
        let id = format!("snapshot:{snapshot}:deleted");
        let description = format!("delete snapshot {snapshot} of {vm}");
        Ok(if pending { running(id, description) } else { Operation::done(id, description, None) })
    }

    pub(crate) fn poll_snapshots(&self, ids: &[String], target: &str) -> Result<OpState, PlatformError> {
        // (done, percent) per snapshot: a snapshot being deleted may still say 100 %.
        let mut progress: Vec<(bool, u8)> = Vec::new();
        for id in ids {
            let s = self.snapshot(id)?;
            match (s, target) {
                (None, "deleted") => progress.push((true, 100)),
                (None, _) => return Ok(OpState::Failed { message: format!("snapshot {id} no longer exists") }),
                (Some(s), _) if s.status.starts_with("error") => {
                    return Ok(OpState::Failed { message: format!("snapshot {id} is in status {}", s.status) });
                }
                (Some(s), "available") if s.status == "available" => progress.push((true, 100)),
                (Some(_), "deleted") => progress.push((false, 0)),
                (Some(s), _) => {
                    let pct = s.progress.as_deref().and_then(|p| p.trim_end_matches('%').parse().ok()).unwrap_or(0);
                    progress.push((false, pct));
                }
            }
        }
        Ok(if progress.iter().all(|(done, _)| *done) {
            OpState::Succeeded { result: (target == "available").then(|| ids.join(",")) }
        } else {
            let avg = progress.iter().map(|(_, p)| u32::from(*p)).sum::<u32>() / progress.len().max(1) as u32;
            OpState::Running { progress: Some(avg.min(99) as u8) }
        })
    }

    pub(crate) fn poll_volumes(&self, ids: &[String]) -> Result<OpState, PlatformError> {
        for id in ids {
            let path = format!("/volumes/{}", encode(id));
            let call = format!("GET {path}");
            let doc = self.session.get_json(Service::Volume, &path)?;
            let v: Volume = self.session.field(&doc, "volume", &call)?;
            match v.status.as_str() {
                "available" | "in-use" => {}
                s if s.starts_with("error") => {
                    return Ok(OpState::Failed { message: format!("volume {id} is in status {s}") });
                }
                _ => return Ok(OpState::Running { progress: None }),
            }
        }
        Ok(OpState::Succeeded { result: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_with_numbers_strings_and_infinite() {
        let pools: Vec<Pool> = serde_json::from_value(json!([
            {"name": "c@lvm#LVM", "capabilities": {"pool_name": "LVM", "total_capacity_gb": 1024, "free_capacity_gb": 512.5}},
            {"name": "c@ceph#rbd", "capabilities": {"total_capacity_gb": "infinite", "free_capacity_gb": "unknown"}},
            {"name": "bare"}
        ]))
        .expect("pools");
        let p: Vec<StoragePool> = pools.into_iter().map(pool_info).collect();
        assert_eq!(p[0].name, "LVM");
        assert_eq!(p[0].capacity_bytes, 1024 * 1024 * 1024 * 1024);
        assert_eq!(p[0].free_bytes, (512.5 * GIB) as u64);
        assert_eq!((p[1].name.as_str(), p[1].capacity_bytes), ("c@ceph#rbd", 0));
        assert_eq!(p[2].free_bytes, 0);
    }

    #[test]
    fn snapshots_group_by_mangrove_group_oldest_first() {
        let snaps: Vec<CinderSnapshot> = serde_json::from_value(json!([
            {"id": "b2", "name": "nightly", "volume_id": "v2", "created_at": "2026-01-02", "metadata": {"mangrove_group": "g2"}},
            {"id": "a1", "name": "nightly", "volume_id": "v1", "created_at": "2026-01-02", "metadata": {"mangrove_group": "g2"}},
            {"id": "z9", "name": null, "volume_id": "v1", "created_at": "2026-01-01", "description": ""}
        ]))
        .expect("snapshots");
        let g = group_snapshots(snaps);
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].id.as_str(), g[0].description.as_deref()), ("z9", None));
        assert_eq!(g[1].id, "a1,b2");
    }

    #[test]
    fn volume_fields() {
        let v: Volume = serde_json::from_value(json!({"id": "v", "name": null, "size": 10, "bootable": "true",
            "attachments": [{"server_id": "s", "device": "/dev/vda"}]}))
        .expect("volume");
        assert!(v.bootable);
        assert_eq!(v.name, "");
        assert_eq!(v.attachments[0].server_id.as_deref(), Some("s"));
    }
}
