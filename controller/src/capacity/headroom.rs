//! DR headroom: can the DR site run the province's systems if the DC is lost, and which ones?
//!
//! Each system needs at DR what its VMs at the primary site are sized to (vCPUs, memory, disk
//! sizes); a system no platform has reported uses its inventory workloads. Systems are grouped
//! by recovery priority and the groups are taken in order, their needs adding up: P2 fits when
//! P1 and P2 together fit in what DR has free. What DR has free is its hosts' cores times the
//! overcommit ratio, its hosts' memory and its pools' free bytes, each less what DR's own VMs
//! already take and less the buffer (a share of capacity held back for the failover itself
//! and for growth).

use std::collections::BTreeMap;

use inventory::Inventory;

use super::model::{Amounts, DrFree, HeadroomGroup, Resource};
use super::picture::{Observed, site_totals, vm_amounts};

/// The settings headroom is computed with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub primary_site: String,
    pub dr_site: String,
    pub dr_overcommit: f64,
    pub buffer: f64,
}

/// A system's need, as headroom counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemNeed {
    pub name: String,
    pub priority: u8,
    pub need: Amounts,
}

const GIB: u64 = 1 << 30;

/// What each system of the inventory needs at DR, in priority then name order.
pub fn system_needs(inv: &Inventory, obs: &Observed, primary: &str) -> Vec<SystemNeed> {
    let mut observed: BTreeMap<&str, Amounts> = BTreeMap::new();
    for vm in obs.vms_at(primary) {
        if let Some(sys) = vm.system.as_deref() {
            let e = observed.entry(sys).or_default();
            *e = e.plus(vm_amounts(vm));
        }
    }
    let mut needs: Vec<SystemNeed> = inv
        .systems
        .iter()
        .map(|s| {
            let declared = inv
                .workloads
                .iter()
                .filter(|w| w.system.as_deref() == Some(&s.name))
                .map(|w| Amounts {
                    vcpus: u64::from(w.vcpus),
                    memory_bytes: w.memory_gb * GIB,
                    storage_bytes: w.disk_gb * GIB,
                })
                .fold(Amounts::default(), Amounts::plus);
            let need = observed.get(s.name.as_str()).copied().unwrap_or(declared);
            SystemNeed { name: s.name.clone(), priority: s.priority.get(), need }
        })
        .collect();
    needs.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    needs
}

/// What DR has free for a failover, leaving out the hosts in `lost`.
pub fn dr_free(inv: Option<&Inventory>, obs: &Observed, s: &Settings, lost: &[String]) -> DrFree {
    let t = site_totals(inv, obs, &s.dr_site, lost);
    let cpu_capacity = t.cores as f64 * s.dr_overcommit;
    let keep = 1.0 - s.buffer.clamp(0.0, 1.0);
    let free = Amounts {
        vcpus: sub(cpu_capacity * keep, t.vcpus as f64),
        memory_bytes: sub(t.memory_bytes as f64 * keep, t.vm_memory_bytes as f64),
        storage_bytes: sub(
            t.storage_bytes as f64 * keep,
            t.storage_used_bytes.max(if t.observed { 0 } else { t.vm_disk_bytes }) as f64,
        ),
    };
    DrFree { site: s.dr_site.clone(), free, overcommit: s.dr_overcommit, buffer: s.buffer }
}

fn sub(have: f64, taken: f64) -> u64 {
    let v = (have - taken).floor();
    if v > 0.0 { v as u64 } else { 0 }
}

/// The priority groups of `needs` against `free`.
pub fn groups(needs: &[SystemNeed], free: Amounts) -> Vec<HeadroomGroup> {
    let mut by_priority: BTreeMap<u8, (Vec<String>, Amounts)> = BTreeMap::new();
    for n in needs {
        let e = by_priority.entry(n.priority).or_default();
        e.0.push(n.name.clone());
        e.1 = e.1.plus(n.need);
    }
    let mut so_far = Amounts::default();
    by_priority
        .into_iter()
        .map(|(p, (systems, need))| {
            so_far = so_far.plus(need);
            let shortfall = so_far.beyond(free);
            HeadroomGroup { priority: format!("P{p}"), systems, fits: shortfall.is_zero(), need, shortfall }
        })
        .collect()
}

/// DR free over the need of every group, per resource: 1 or more means everything fits.
/// `None` for a resource nothing needs.
pub fn ratios(groups: &[HeadroomGroup], free: Amounts) -> Vec<(Resource, Option<f64>)> {
    let total = groups.iter().fold(Amounts::default(), |a, g| a.plus(g.need));
    let ratio = |free: u64, need: u64| (need > 0).then(|| free as f64 / need as f64);
    vec![
        (Resource::Cpu, ratio(free.vcpus, total.vcpus)),
        (Resource::Memory, ratio(free.memory_bytes, total.memory_bytes)),
        (Resource::Storage, ratio(free.storage_bytes, total.storage_bytes)),
    ]
}

/// "P1–P2 fit; P3 needs 14 TB and 96 GB more" in English or Vietnamese.
pub fn summary(groups: &[HeadroomGroup], lang: crate::report_text::Lang) -> String {
    use crate::report_text::Lang;
    let fitting: Vec<&str> = groups.iter().take_while(|g| g.fits).map(|g| g.priority.as_str()).collect();
    let mut parts = Vec::new();
    if let (Some(first), Some(last)) = (fitting.first(), fitting.last()) {
        let range = if first == last { first.to_string() } else { format!("{first}–{last}") };
        parts.push(match lang {
            Lang::Vi => format!("{range} đủ chỗ"),
            Lang::En => format!("{range} fit"),
        });
    }
    if let Some(g) = groups.iter().find(|g| !g.fits) {
        let more = shortfall_words(g.shortfall);
        parts.push(match lang {
            Lang::Vi => format!("{} cần thêm {more}", g.priority),
            Lang::En => format!("{} needs {more} more", g.priority),
        });
    }
    if parts.is_empty() {
        return match lang {
            Lang::Vi => "không có hệ thống nào".to_string(),
            Lang::En => "no systems".to_string(),
        };
    }
    parts.join("; ")
}

fn shortfall_words(a: Amounts) -> String {
    let mut w = Vec::new();
    if a.storage_bytes > 0 {
        // Rounded up to a tenth of a TB, so a shortfall never reads as less than it is.
        let tenths = (a.storage_bytes as f64 / 1e11).ceil() / 10.0;
        let text = format!("{tenths:.1}");
        w.push(format!("{} TB", text.strip_suffix(".0").unwrap_or(&text)));
    }
    if a.memory_bytes > 0 {
        w.push(format!("{:.0} GB", (a.memory_bytes as f64 / GIB as f64).ceil()));
    }
    if a.vcpus > 0 {
        w.push(format!("{} vCPU", a.vcpus));
    }
    w.join(", ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use plugins::hypervisor::{DiskInfo, Health, HostConnection, HostInfo, HostPower, PowerState, StoragePool, VmInfo};

    use super::*;
    use crate::store::{PlatformRecord, StorageRecord, VmRecord};

    const GB: u64 = 1 << 30;
    const TB: u64 = 1_000_000_000_000;

    fn camau() -> Inventory {
        inventory::parse_str(include_str!("../../../inventory/examples/camau.yaml"), "camau.yaml")
            .expect("the test's setup and answers are valid")
    }

    fn platform(name: &str, site: &str) -> PlatformRecord {
        PlatformRecord {
            name: name.into(),
            kind: "test".into(),
            site: Some(site.into()),
            endpoint: "-".into(),
            up: Some(true),
            last_sync: Some(1),
            last_attempt: Some(1),
            last_error: None,
            last_duration_ms: None,
            last_round_trips: None,
        }
    }

    fn host(name: &str, cores: u32, memory: u64) -> HostInfo {
        HostInfo {
            id: name.into(),
            name: name.into(),
            connection: HostConnection::Connected,
            maintenance: false,
            power: HostPower::On,
            health: Health::Green,
            cpu_cores: cores,
            memory_bytes: memory,
            cpu_used_mhz: None,
            memory_used_bytes: None,
            cluster: None,
            hardware: None,
        }
    }

    fn vm(
        platform: &str,
        site: &str,
        name: &str,
        system: Option<&str>,
        vcpus: u32,
        mem_gb: u64,
        disk: u64,
    ) -> VmRecord {
        VmRecord {
            platform: platform.into(),
            vm_id: name.into(),
            site: Some(site.into()),
            system: system.map(str::to_string),
            first_seen: 0,
            last_seen: 0,
            info: VmInfo {
                id: name.into(),
                name: name.into(),
                host: None,
                power_state: PowerState::On,
                vcpus,
                memory_bytes: mem_gb * GB,
                disks: vec![DiskInfo { label: "d".into(), capacity_bytes: disk, storage: None }],
                networks: vec![],
                guest_os: None,
                tags: BTreeMap::new(),
            },
        }
    }

    /// A DR site of `hosts` hosts with 48 cores and 512 GiB each and 10 TB of storage, and a DC
    /// whose systems need what the figures below say.
    fn observed(dr_hosts: usize) -> Observed {
        let mut hosts: Vec<(String, HostInfo)> =
            (1..=dr_hosts).map(|i| ("os".to_string(), host(&format!("dr-compute-0{i}"), 48, 512 * GB))).collect();
        hosts.push(("vc".into(), host("dc-esxi-01", 64, 768 * GB)));
        Observed {
            platforms: vec![platform("vc", "dc"), platform("os", "dr")],
            hosts,
            vms: vec![
                vm("vc", "dc", "qlvbdh-app", Some("qlvbdh"), 100, 300, 2 * TB),
                vm("vc", "dc", "dvc-app", Some("dvc-portal"), 20, 100, TB),
                vm("vc", "dc", "email-app", Some("email"), 8, 32, 3 * TB),
                vm("vc", "dc", "cbccvc-app", Some("cbccvc"), 8, 32, 6 * TB),
                vm("vc", "dc", "infra", None, 4, 8, TB),
                vm("os", "dr", "dr-dns", None, 2, 4, 0),
            ],
            storage: vec![StorageRecord {
                platform: "os".into(),
                seen_at: 0,
                pool: StoragePool { id: "p".into(), name: "ceph".into(), capacity_bytes: 10 * TB, free_bytes: 9 * TB },
            }],
        }
    }

    fn settings() -> Settings {
        Settings { primary_site: "dc".into(), dr_site: "dr".into(), dr_overcommit: 2.0, buffer: 0.1 }
    }

    #[test]
    fn dr_free_counts_cores_times_overcommit_less_buffer_and_what_runs_there() {
        let free = dr_free(Some(&camau()), &observed(2), &settings(), &[]);
        // 2 × 48 cores × 2 = 192 vCPUs, 90 % = 172.8, less 2 running → 170.
        assert_eq!(free.free.vcpus, 170);
        assert_eq!(free.free.memory_bytes, ((1024 * GB) as f64 * 0.9) as u64 - 4 * GB);
        // 10 TB × 90 % = 9 TB, less the 1 TB used on the pool.
        assert_eq!(free.free.storage_bytes, 8 * TB);
    }

    #[test]
    fn groups_add_up_in_priority_order_and_name_the_first_that_does_not_fit() {
        let inv = camau();
        let obs = observed(2);
        let needs = system_needs(&inv, &obs, "dc");
        let free = dr_free(Some(&inv), &obs, &settings(), &[]).free;
        let g = groups(&needs, free);
        let names: Vec<&str> = g.iter().map(|g| g.priority.as_str()).collect();
        assert_eq!(names, ["P1", "P2", "P3", "P4"]);
        assert_eq!(g[0].systems, ["dvc-portal", "qlvbdh"]);
        assert_eq!(g[0].need.vcpus, 120);
        assert!(g[0].fits && g[1].fits);
        // P1 (3 TB) and P2 (3 TB, and web-portal's declared 200 GiB: no VM of it on the
        // platform) fit in 8 TB; P3 (cbccvc, 6 TB) leaves 4 TB and 200 GiB missing.
        assert!(!g[2].fits);
        assert_eq!(g[2].shortfall, Amounts { vcpus: 0, memory_bytes: 0, storage_bytes: 4 * TB + 200 * GB });
        // cong-bao has no VM on the platform: its inventory workload (2 vCPU, 8 GB, 100 GB) counts.
        assert_eq!(g[3].need, Amounts { vcpus: 2, memory_bytes: 8 * GB, storage_bytes: 100 * GB });
        assert_eq!(summary(&g, crate::report_text::Lang::En), "P1–P2 fit; P3 needs 4.3 TB more");
        assert_eq!(summary(&g, crate::report_text::Lang::Vi), "P1–P2 đủ chỗ; P3 cần thêm 4.3 TB");
    }

    #[test]
    fn losing_a_dr_host_takes_its_cores_and_memory_out_of_the_headroom() {
        let inv = camau();
        let obs = observed(2);
        let needs = system_needs(&inv, &obs, "dc");
        let whole = dr_free(Some(&inv), &obs, &settings(), &[]).free;
        let lost = dr_free(Some(&inv), &obs, &settings(), &["dr-compute-02".to_string()]).free;
        // One host of 48 cores × 2, 90 % of it, less the 2 vCPUs running: 84 (170 with both).
        assert_eq!((whole.vcpus, lost.vcpus), (170, 84));
        assert_eq!(lost.memory_bytes, ((512 * GB) as f64 * 0.9 - (4 * GB) as f64).floor() as u64);
        assert_eq!(whole.storage_bytes, lost.storage_bytes);
        let g = groups(&needs, lost);
        // 96 × 2 × 0.9 − 2 = 170.8 − 86.4 → 84 vCPUs left; P1 alone needs 120.
        assert!(!g[0].fits);
        assert_eq!(g[0].shortfall.vcpus, 120 - lost.vcpus);
        assert_eq!(ratios(&g, lost)[0].0, Resource::Cpu);
    }

    #[test]
    fn a_dr_site_no_platform_has_read_uses_the_inventory() {
        let inv = camau();
        let obs = Observed::default();
        let free = dr_free(Some(&inv), &obs, &settings(), &[]).free;
        // Six hosts of 48 cores and 512 GiB, and 117 TB, in the example.
        assert_eq!(free.vcpus, (6.0 * 48.0 * 2.0 * 0.9_f64).floor() as u64);
        assert_eq!(free.storage_bytes, (117e12 * 0.9) as u64);
    }
}
