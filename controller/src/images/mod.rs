//! DR images kept fresh. For each `image` workload of a recovery plan (a VM on the DC's
//! vSphere), [`refresh`] exports the VM's disk from vCenter, converts it to qcow2 with
//! qemu-img and uploads it to Glance under the plan's image name, with properties saying
//! where and when it came from ([`SOURCE_VM`], [`EXPORTED_AT`]); once the new image is active
//! the older images of that name that Mangrove made are deleted, so a boot never finds none.
//! `mangrove images refresh PLAN` runs it on demand; a workload's `refresh: {schedule}` runs
//! it on a cron schedule ([`schedule`]). [`EXPORTED_AT`] is the workload's restore point:
//! drills measure the image workload's RPO from it.

pub mod refresh;
pub mod schedule;

use std::collections::BTreeSet;
use std::sync::Mutex;

use plugins::openstack::Image;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The DC workload (VM name) an image was exported from.
pub const SOURCE_VM: &str = "mangrove_source_vm";
/// When the exported state was taken (RFC 3339): the image's age is the workload's RPO.
pub const EXPORTED_AT: &str = "mangrove_exported_at";
/// The recovery plan whose refresh made the image.
pub const PLAN: &str = "mangrove_plan";

/// Workloads being refreshed now (`plan/workload`): a second refresh of the same one is
/// refused while the first runs (two would upload two images and prune each other's).
#[derive(Debug, Default)]
pub struct Refreshing(Mutex<BTreeSet<String>>);

/// Holds a workload's place in [`Refreshing`] until dropped.
pub struct Busy<'a> {
    set: &'a Refreshing,
    key: String,
}

impl Refreshing {
    /// Marks `key` busy; `None` when it already is.
    pub fn start(&self, key: &str) -> Option<Busy<'_>> {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(key.to_string()).then(|| Busy { set: self, key: key.to_string() })
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.set.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

/// When an image's exported state was taken (unix ms), from its [`EXPORTED_AT`] property.
pub fn exported_at_ms(image: &Image) -> Option<i64> {
    let t = OffsetDateTime::parse(image.property(EXPORTED_AT)?, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The image a boot of `name` uses: among the active images of that name, the newest export
/// of ours, else the first Glance lists (its newest). Pure.
pub fn pick<'a>(images: &'a [Image], name: &str) -> Option<&'a Image> {
    let named: Vec<&Image> = images.iter().filter(|i| i.name.as_deref() == Some(name)).collect();
    let active: Vec<&Image> = named.iter().copied().filter(|i| i.status == "active").collect();
    let pool = if active.is_empty() { named } else { active };
    pool.iter()
        .copied()
        .filter(|i| exported_at_ms(i).is_some())
        .max_by_key(|i| exported_at_ms(i))
        .or(pool.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, name: &str, status: &str, exported: Option<&str>) -> Image {
        let mut extra = std::collections::BTreeMap::new();
        if let Some(t) = exported {
            extra.insert(EXPORTED_AT.to_string(), serde_json::json!(t));
        }
        Image {
            id: id.into(),
            name: Some(name.into()),
            status: status.into(),
            disk_format: Some("qcow2".into()),
            container_format: Some("bare".into()),
            size: None,
            checksum: None,
            created_at: None,
            extra,
        }
    }

    #[test]
    fn a_boot_takes_the_newest_active_export_of_that_name() {
        let images = [
            image("manual", "qlvbdh-dr", "active", None),
            image("old", "qlvbdh-dr", "active", Some("2026-11-01T02:00:00Z")),
            image("new", "qlvbdh-dr", "active", Some("2026-11-02T02:00:00Z")),
            image("uploading", "qlvbdh-dr", "saving", Some("2026-11-03T02:00:00Z")),
            image("other", "email-dr", "active", Some("2026-11-04T02:00:00Z")),
        ];
        assert_eq!(pick(&images, "qlvbdh-dr").map(|i| i.id.as_str()), Some("new"));
        assert_eq!(pick(&images[..1], "qlvbdh-dr").map(|i| i.id.as_str()), Some("manual"));
        assert_eq!(pick(&images, "nothing"), None);
        assert_eq!(exported_at_ms(&images[1]), Some(1_793_498_400_000));
    }

    #[test]
    fn a_workload_refreshes_once_at_a_time() {
        let r = Refreshing::default();
        let first = r.start("p/w").expect("free");
        assert!(r.start("p/w").is_none());
        assert!(r.start("p/other").is_some());
        drop(first);
        assert!(r.start("p/w").is_some());
    }
}
