//! One refresh: export → convert → upload → prune, for the `image` workloads of a plan.
//!
//! Idempotence: a refresh always makes a new image (a retry after a failure starts afresh);
//! the previous image stays until the new one is active, and only images carrying our
//! [`SOURCE_VM`](super::SOURCE_VM) property are ever deleted. The working files live in
//! `<data_dir>/images/` and are removed on every path.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use inventory::recovery::{RecoveryMethod, RecoveryPlan};
use plugins::connect::Connection;
use plugins::qemu_img::QemuImg;
use serde::Serialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use super::{EXPORTED_AT, PLAN, SOURCE_VM};
use crate::app::{App, AppError};

/// How long vCenter may take to make the export lease ready.
const LEASE_READY: Duration = Duration::from_secs(600);
/// The longest one refresh (export, conversion, upload) may take.
const REFRESH_DEADLINE: Duration = Duration::from_secs(6 * 3600);

/// One `image` workload of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub system: String,
    pub workload: String,
    /// The Glance image name the plan boots it from.
    pub image: String,
}

/// The `image` workloads of `plan`, or only `workload`. Pure.
pub fn targets(plan: &RecoveryPlan, workload: Option<&str>) -> Result<Vec<Target>, String> {
    let all: Vec<Target> = plan
        .systems
        .iter()
        .flat_map(|s| {
            s.recover.iter().filter(|w| w.method == RecoveryMethod::Image).map(|w| Target {
                system: s.name.clone(),
                workload: w.workload.clone(),
                image: w.image.clone(),
            })
        })
        .collect();
    let names = || all.iter().map(|t| t.workload.as_str()).collect::<Vec<_>>().join(", ");
    match workload {
        None if all.is_empty() => Err(format!("plan {} has no `image` workload to refresh", plan.name)),
        None => Ok(all),
        Some(w) => match all.iter().find(|t| t.workload == w) {
            Some(t) => Ok(vec![t.clone()]),
            None if all.is_empty() => Err(format!("{w} is not an `image` workload of plan {}: it has none", plan.name)),
            None => Err(format!("{w} is not an `image` workload of plan {} (those are: {})", plan.name, names())),
        },
    }
}

/// What one refresh made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refreshed {
    pub workload: String,
    /// The VM's moid at the DC.
    pub vm: String,
    pub image: String,
    pub image_id: String,
    /// RFC 3339: when the exported state was taken.
    pub exported_at: String,
    /// A running VM is exported through a temporary clone.
    pub through_clone: bool,
    /// What qemu-img read the exported disk as (`vmdk`; `raw` for an empty disk).
    pub source_format: String,
    pub virtual_size: u64,
    /// Bytes uploaded (the qcow2 file).
    pub size: u64,
    /// Older images of that name, made by us, deleted once the new one was active.
    pub replaced: Vec<String>,
}

/// One workload's result in a plan's refresh.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub workload: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub refreshed: Option<Refreshed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Refreshes the `image` workloads of plan `plan_name` (or only `workload`), one after the
/// other, each audited as `image.refresh` by `actor`. A workload that fails does not stop the
/// others; its outcome carries the error.
///
/// # Errors
/// `NotFound` for an unknown plan; `BadRequest` when the plan has no such `image` workload.
pub async fn refresh_plan(
    app: &Arc<App>,
    plan_name: &str,
    workload: Option<&str>,
    actor: &str,
) -> Result<Vec<Outcome>, AppError> {
    let (_, plan) = crate::failover::plans::load(app, plan_name, None).await?;
    let targets = targets(&plan, workload).map_err(AppError::BadRequest)?;
    let mut out = Vec::new();
    for t in targets {
        let result = refresh_one(app, &plan.name, &t, actor).await;
        out.push(match result {
            Ok(r) => Outcome { workload: t.workload, refreshed: Some(r), error: None },
            Err(e) => Outcome { workload: t.workload, refreshed: None, error: Some(e) },
        });
    }
    Ok(out)
}

/// Refreshes one workload's image; audited on success.
pub async fn refresh_one(app: &Arc<App>, plan: &str, t: &Target, actor: &str) -> Result<Refreshed, String> {
    let key = format!("{plan}/{}", t.workload);
    let Some(_busy) = app.images.start(&key) else {
        return Err(format!("a refresh of {} (plan {plan}) is already running", t.workload));
    };
    let dc = crate::failover::exec::connection(app, "dc")?;
    if dc.kind != plugins::PlatformKind::Vsphere {
        return Err(format!(
            "{} is not a vSphere VM: the DC platform {} is {}, and only vCenter exports are refreshed",
            t.workload, dc.name, dc.kind
        ));
    }
    let dr = crate::failover::exec::connection(app, "dr")?;
    if dr.kind != plugins::PlatformKind::Openstack {
        return Err(format!(
            "the DR platform {} is {}, not OpenStack: there is no Glance to upload to",
            dr.name, dr.kind
        ));
    }
    let qemu = QemuImg::find().map_err(|e| e.to_string())?;
    let vm = crate::failover::exec::find_vm(app, "dc", &t.workload)
        .await?
        .ok_or_else(|| format!("platform {} has no VM named {}", dc.name, t.workload))?;
    let work = app.cfg.data_dir.join("images");
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let (plan_owned, target, vm_id) = (plan.to_string(), t.clone(), vm.id.clone());
    let job = tokio::task::spawn_blocking(move || pipeline(&dc, &dr, &qemu, &vm_id, &plan_owned, &target, &work));
    let refreshed = match tokio::time::timeout(REFRESH_DEADLINE, job).await {
        Err(_) => {
            return Err(format!("the refresh of {} took longer than {} s", t.workload, REFRESH_DEADLINE.as_secs()));
        }
        Ok(Err(join)) => return Err(format!("the refresh of {} failed unexpectedly ({join})", t.workload)),
        Ok(Ok(r)) => r?,
    };
    tracing::info!(
        plan,
        workload = %t.workload,
        image = %refreshed.image_id,
        exported_at = %refreshed.exported_at,
        replaced = refreshed.replaced.len(),
        "DR image refreshed"
    );
    app.audit(actor, "image.refresh", Some(&key), json!(refreshed)).await;
    Ok(refreshed)
}

/// A directory removed when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The blocking part: export, convert, upload, prune.
fn pipeline(
    dc: &Connection,
    dr: &Connection,
    qemu: &QemuImg,
    vm: &str,
    plan: &str,
    t: &Target,
    work: &Path,
) -> Result<Refreshed, String> {
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let dir = WorkDir(work.join(format!("{plan}-{}-{stamp}-{}", t.workload, std::process::id())));
    std::fs::create_dir_all(&dir.0).map_err(|e| format!("cannot create {}: {e}", dir.0.display()))?;

    let vsphere = dc.connect_vsphere().map_err(|e| e.to_string())?;
    let clone = format!("{}-mangrove-export-{stamp}", t.workload);
    let export = vsphere.export_vm(vm, &clone, &dir.0, LEASE_READY);
    plugins::Hypervisor::close(&vsphere);
    let export = export.map_err(|e| format!("exporting {} from vCenter: {e}", t.workload))?;
    let disk = export.disks.first().ok_or_else(|| format!("the export of {} has no disk", t.workload))?;
    if export.disks.len() > 1 {
        // The image is what the instance boots; data disks come back by restore or volumes.
        tracing::warn!(workload = %t.workload, disks = export.disks.len(), "only the first disk becomes the DR image");
    }
    let qcow2 = dir.0.join("image.qcow2");
    let (source, converted) =
        qemu.to_qcow2(&disk.path, &qcow2).map_err(|e| format!("converting {}'s disk: {e}", t.workload))?;
    let size = std::fs::metadata(&qcow2).map(|m| m.len()).unwrap_or(0);
    let exported_at = export.taken_at.format(&Rfc3339).map_err(|e| format!("cannot write the export time: {e}"))?;
    let properties: BTreeMap<String, String> = [
        (SOURCE_VM.to_string(), t.workload.clone()),
        (EXPORTED_AT.to_string(), exported_at.clone()),
        (PLAN.to_string(), plan.to_string()),
    ]
    .into();

    let glance = dr.connect_openstack().map_err(|e| e.to_string())?;
    let uploaded = upload_and_prune(&glance, &t.image, &properties, &qcow2);
    plugins::Hypervisor::close(&glance);
    let (image_id, replaced) =
        uploaded.map_err(|e| format!("uploading {}'s image {} to Glance: {e}", t.workload, t.image))?;
    Ok(Refreshed {
        workload: t.workload.clone(),
        vm: vm.to_string(),
        image: t.image.clone(),
        image_id,
        exported_at,
        through_clone: export.through_clone,
        source_format: source.format,
        virtual_size: converted.virtual_size,
        size,
        replaced,
    })
}

/// Uploads the new image; once it is active, deletes the older ones of that name we made.
fn upload_and_prune(
    glance: &plugins::openstack::OpenstackDriver,
    name: &str,
    properties: &BTreeMap<String, String>,
    file: &Path,
) -> Result<(String, Vec<String>), String> {
    let older = glance.images_named(name).map_err(|e| e.to_string())?;
    let mut reader = File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let image = glance.upload_image_with(name, "qcow2", properties, &mut reader).map_err(|e| e.to_string())?;
    if image.status != "active" {
        if let Err(e) = glance.delete_image(&image.id) {
            tracing::warn!(image = %image.id, error = %e, "cannot delete an image that did not become active");
        }
        return Err(format!(
            "image {} is `{}` after its upload, not active; the previous image is kept",
            image.id, image.status
        ));
    }
    let mut replaced = Vec::new();
    for old in older.iter().filter(|i| i.id != image.id && i.property(SOURCE_VM).is_some()) {
        match glance.delete_image(&old.id) {
            Ok(()) => replaced.push(old.id.clone()),
            // The new image is in place; an old one left over is only space.
            Err(e) => tracing::warn!(image = %old.id, error = %e, "cannot delete a replaced image"),
        }
    }
    Ok((image.id, replaced))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> RecoveryPlan {
        let inv = inventory::parse_str(include_str!("../../../inventory/examples/camau.yaml"), "camau.yaml")
            .expect("example inventory");
        let text = "name: p\nnetworks: [ { dc: VM Network, dr: dr-prod, test: dr-drill } ]\nsystems:\n  \
                    - name: qlvbdh\n    recover: [ { workload: qlvbdh-app-01, method: image, image: q-dr } ]\n    \
                    probes: [ { tcp: 'qlvbdh:443', expect: { open: true } } ]\n  \
                    - name: email\n    recover: [ { workload: email-app-01, method: restore, image: base } ]\n    \
                    probes: [ { tcp: 'email:443', expect: { open: true } } ]\n";
        inventory::recovery::parse_plan(text, "p.yaml", &inv, &Default::default()).expect("plan")
    }

    #[test]
    fn targets_are_the_image_workloads_or_the_one_asked_for() {
        let p = plan();
        let all = targets(&p, None).expect("targets");
        assert_eq!(all, [Target { system: "qlvbdh".into(), workload: "qlvbdh-app-01".into(), image: "q-dr".into() }]);
        assert_eq!(targets(&p, Some("qlvbdh-app-01")).expect("one"), all);
        let err = targets(&p, Some("email-app-01")).expect_err("restore workload");
        assert!(err.contains("not an `image` workload") && err.contains("qlvbdh-app-01"), "{err}");
    }
}
