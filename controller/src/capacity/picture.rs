//! What the sites hold right now, worked out from the platforms' last good syncs (with the
//! inventory's declared figures where no platform has been read), and turned into history
//! samples.
//!
//! The value a forecast follows (`used`) is, per resource:
//! - `cpu`: vCPUs allocated to VMs (running or not: all of them must run again after a
//!   failover), against the hosts' physical cores times the site's overcommit ratio;
//! - `memory`: memory allocated to VMs, against the hosts' physical memory (not overcommitted);
//! - `storage`: bytes used on the storage pools (capacity minus free), against their capacity;
//!   `provisioned` carries the VMs' disk sizes, which thin provisioning lets exceed `used`;
//! - `vms`: the number of VMs (no capacity).

use std::collections::BTreeMap;

use inventory::Inventory;
use plugins::hypervisor::HostInfo;

use super::model::{Amounts, Resource};
use crate::store::{PlatformRecord, Sample, StorageRecord, VmRecord};

/// The platforms' last good picture, as the store holds it.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub platforms: Vec<PlatformRecord>,
    pub hosts: Vec<(String, HostInfo)>,
    pub vms: Vec<VmRecord>,
    pub storage: Vec<StorageRecord>,
}

impl Observed {
    pub async fn read(store: &dyn crate::store::Store) -> Result<Observed, crate::store::StoreError> {
        Ok(Observed {
            platforms: store.list_platforms().await?,
            hosts: store.list_platform_hosts().await?,
            vms: store.list_vms().await?,
            storage: store.list_storage().await?,
        })
    }

    fn site_of_platform(&self, platform: &str) -> Option<&str> {
        self.platforms.iter().find(|p| p.name == platform).and_then(|p| p.site.as_deref())
    }

    /// Whether a platform at `site` has had a good sync.
    pub fn synced(&self, site: &str) -> bool {
        self.platforms.iter().any(|p| p.site.as_deref() == Some(site) && p.last_sync.is_some())
    }

    /// The platform hosts at `site`, by name.
    pub fn hosts_at<'a>(&'a self, site: &'a str) -> impl Iterator<Item = &'a HostInfo> + 'a {
        self.hosts.iter().filter(move |(p, _)| self.site_of_platform(p) == Some(site)).map(|(_, h)| h)
    }

    pub fn vms_at<'a>(&'a self, site: &'a str) -> impl Iterator<Item = &'a VmRecord> + 'a {
        self.vms.iter().filter(move |v| v.site.as_deref() == Some(site))
    }

    pub fn pools_at<'a>(&'a self, site: &'a str) -> impl Iterator<Item = &'a StorageRecord> + 'a {
        self.storage.iter().filter(move |s| self.site_of_platform(&s.platform) == Some(site))
    }
}

/// What one site has and what its VMs take, per resource.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SiteTotals {
    /// Physical cores, memory bytes and storage bytes.
    pub cores: u64,
    pub memory_bytes: u64,
    pub storage_bytes: u64,
    /// Allocated to VMs (storage: bytes used on the pools).
    pub vcpus: u64,
    pub vm_memory_bytes: u64,
    pub storage_used_bytes: u64,
    pub vm_disk_bytes: u64,
    pub vms: u64,
    /// True when the figures come from a platform, false when from the inventory's declaration.
    pub observed: bool,
}

pub fn vm_amounts(vm: &VmRecord) -> Amounts {
    Amounts {
        vcpus: u64::from(vm.info.vcpus),
        memory_bytes: vm.info.memory_bytes,
        storage_bytes: vm.info.disks.iter().map(|d| d.capacity_bytes).sum(),
    }
}

const GIB: u64 = 1 << 30;
const TB: f64 = 1e12;

/// The totals of `site`, leaving out the hosts named in `without` (a what-if). A site no
/// platform has reported uses the inventory's hosts and `storage_tb`.
pub fn site_totals(inv: Option<&Inventory>, obs: &Observed, site: &str, without: &[String]) -> SiteTotals {
    let mut t = SiteTotals::default();
    for h in obs.hosts_at(site).filter(|h| !without.contains(&h.name)) {
        t.cores += u64::from(h.cpu_cores);
        t.memory_bytes += h.memory_bytes;
        t.observed = true;
    }
    for p in obs.pools_at(site) {
        t.storage_bytes += p.pool.capacity_bytes;
        t.storage_used_bytes += p.pool.capacity_bytes.saturating_sub(p.pool.free_bytes);
    }
    for vm in obs.vms_at(site) {
        let a = vm_amounts(vm);
        t.vcpus += a.vcpus;
        t.vm_memory_bytes += a.memory_bytes;
        t.vm_disk_bytes += a.storage_bytes;
        t.vms += 1;
    }
    if let Some(inv) = inv {
        if !t.observed {
            for h in inv.hosts.iter().filter(|h| h.site == site && !without.contains(&h.name)) {
                t.cores += u64::from(h.cpus);
                t.memory_bytes += h.memory_gb * GIB;
            }
        }
        if t.storage_bytes == 0
            && let Some(s) = inv.sites.iter().find(|s| s.name == site)
        {
            t.storage_bytes = (s.storage_tb * TB) as u64;
        }
    }
    t
}

/// The samples of one moment: each site, host, pool and information system.
pub fn samples(inv: Option<&Inventory>, obs: &Observed, overcommit: &dyn Fn(&str) -> f64, at: i64) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut push =
        |kind: &str, scope: &str, r: Resource, capacity: Option<f64>, provisioned: Option<f64>, used: f64| {
            out.push(Sample {
                scope_kind: kind.to_string(),
                scope: scope.to_string(),
                resource: r.as_str().to_string(),
                tier: "raw".to_string(),
                at,
                capacity,
                provisioned,
                used,
                n: 1,
            })
        };
    // A site none of whose platforms has been read yet is left out: its use is unknown, and a
    // zero would read as a fall in the history.
    for site in site_names(inv, obs).into_iter().filter(|s| obs.synced(s)) {
        let t = site_totals(inv, obs, &site, &[]);
        let oc = overcommit(&site);
        push("site", &site, Resource::Cpu, Some(t.cores as f64 * oc), None, t.vcpus as f64);
        push("site", &site, Resource::Memory, Some(t.memory_bytes as f64), None, t.vm_memory_bytes as f64);
        push(
            "site",
            &site,
            Resource::Storage,
            Some(t.storage_bytes as f64),
            Some(t.vm_disk_bytes as f64),
            t.storage_used_bytes as f64,
        );
        push("site", &site, Resource::Vms, None, None, t.vms as f64);
        for h in obs.hosts_at(&site) {
            let on_host: Vec<&VmRecord> =
                obs.vms_at(&site).filter(|v| v.info.host.as_deref() == Some(&h.name)).collect();
            let vcpus: u64 = on_host.iter().map(|v| u64::from(v.info.vcpus)).sum();
            let mem: u64 = on_host.iter().map(|v| v.info.memory_bytes).sum();
            push("host", &h.name, Resource::Cpu, Some(f64::from(h.cpu_cores) * oc), None, vcpus as f64);
            push("host", &h.name, Resource::Memory, Some(h.memory_bytes as f64), None, mem as f64);
        }
    }
    for p in &obs.storage {
        let used = p.pool.capacity_bytes.saturating_sub(p.pool.free_bytes);
        let scope = format!("{}/{}", p.platform, p.pool.name);
        push("pool", &scope, Resource::Storage, Some(p.pool.capacity_bytes as f64), None, used as f64);
    }
    let mut by_system: BTreeMap<&str, (Amounts, u64)> = BTreeMap::new();
    for vm in &obs.vms {
        if let Some(sys) = vm.system.as_deref() {
            let e = by_system.entry(sys).or_default();
            e.0 = e.0.plus(vm_amounts(vm));
            e.1 += 1;
        }
    }
    for (sys, (a, n)) in by_system {
        push("system", sys, Resource::Cpu, None, None, a.vcpus as f64);
        push("system", sys, Resource::Memory, None, None, a.memory_bytes as f64);
        push("system", sys, Resource::Storage, None, Some(a.storage_bytes as f64), a.storage_bytes as f64);
        push("system", sys, Resource::Vms, None, None, n as f64);
    }
    out
}

/// Every site: the inventory's, then any a platform reports that the inventory lacks.
pub fn site_names(inv: Option<&Inventory>, obs: &Observed) -> Vec<String> {
    let mut names: Vec<String> = inv.map(|i| i.sites.iter().map(|s| s.name.clone()).collect()).unwrap_or_default();
    for p in &obs.platforms {
        if let Some(s) = &p.site
            && !names.contains(s)
        {
            names.push(s.clone());
        }
    }
    names
}
