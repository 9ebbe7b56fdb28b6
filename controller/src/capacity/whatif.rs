//! What-if scenarios: add VMs, add a system, lose hosts, add hardware — and see what happens to
//! each site's time remaining and to the DR headroom.
//!
//! Pure over a [`Baseline`] (the series, capacities and headroom inputs of now). A scenario
//! moves levels, not trends: added VMs raise the whole use series by their size (they add to
//! today's use and keep growing as before), added or lost hardware moves capacity.

use serde::{Deserialize, Serialize};

use super::forecast::{Forecast, forecast};
use super::headroom::{self, SystemNeed};
use super::model::{Amounts, DrFree, HeadroomGroup, Point, Resource};

const GIB: u64 = 1 << 30;
const TB: f64 = 1e12;

/// VMs of one size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Size {
    pub vcpus: u32,
    pub memory_gb: u64,
    pub disk_gb: u64,
}

impl Size {
    pub fn amounts(self, count: u32) -> Amounts {
        let n = u64::from(count);
        Amounts {
            vcpus: u64::from(self.vcpus) * n,
            memory_bytes: self.memory_gb * GIB * n,
            storage_bytes: self.disk_gb * GIB * n,
        }
    }
}

/// A combination of changes. Every list may be empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    pub add_vms: Vec<AddVms>,
    pub add_systems: Vec<AddSystem>,
    pub lose_hosts: Vec<String>,
    pub add_hosts: Vec<AddHosts>,
    pub add_storage: Vec<AddStorage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddVms {
    pub site: String,
    pub count: u32,
    pub size: Size,
}

/// A new information system at the primary site, which DR must also be able to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddSystem {
    pub name: String,
    pub priority: u8,
    pub size: Size,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddHosts {
    pub site: String,
    pub count: u32,
    pub cores: u32,
    pub memory_gb: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddStorage {
    pub site: String,
    pub tb: f64,
}

/// One site's resource as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub site: String,
    pub resource: Resource,
    pub capacity: f64,
    pub history: Vec<Point>,
}

/// A host the scenario may lose: where it stands and what it brings.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownHost {
    pub name: String,
    pub site: String,
    pub cores: u64,
    pub memory_bytes: u64,
}

/// Everything a scenario is applied to.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub now: i64,
    pub series: Vec<Series>,
    pub hosts: Vec<KnownHost>,
    pub overcommit: Vec<(String, f64)>,
    pub primary_site: String,
    pub needs: Vec<SystemNeed>,
    /// DR free now, and with the scenario's lost hosts left out (computed by the caller, who
    /// has the platform picture).
    pub dr_free: DrFree,
    pub dr_free_without_lost: DrFree,
}

/// A site's resource before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub site: String,
    pub resource: Resource,
    pub before: Outlook,
    pub after: Outlook,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outlook {
    pub used: f64,
    pub capacity: f64,
    /// Used over capacity, in percent (`None` without capacity).
    pub percent: Option<f64>,
    pub days_to_80: Option<f64>,
    pub days_to_100: Option<f64>,
}

impl Outlook {
    fn of(f: &Forecast) -> Outlook {
        Outlook {
            used: f.used,
            capacity: f.capacity,
            percent: (f.capacity > 0.0).then(|| f.used / f.capacity * 100.0),
            days_to_80: f.days_to_80,
            days_to_100: f.days_to_100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub scenario: Scenario,
    pub sites: Vec<Change>,
    pub headroom_before: Vec<HeadroomGroup>,
    pub headroom_after: Vec<HeadroomGroup>,
    pub dr_free_before: Amounts,
    pub dr_free_after: Amounts,
}

/// Why a scenario cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("no host named {0} at any site")]
    UnknownHost(String),
    #[error("no site named {0}")]
    UnknownSite(String),
    #[error("{0}")]
    Invalid(String),
}

/// Applies `s` to `b`.
pub fn apply(b: &Baseline, s: &Scenario) -> Result<Outcome, ScenarioError> {
    check(b, s)?;
    let sites = b
        .series
        .iter()
        .map(|series| {
            let (d_used, d_cap) = deltas(b, s, &series.site, series.resource);
            let before = forecast(&series.history, series.capacity, b.now);
            let shifted: Vec<Point> =
                series.history.iter().map(|p| Point { at: p.at, value: p.value + d_used }).collect();
            let after = forecast(&shifted, (series.capacity + d_cap).max(0.0), b.now);
            Change {
                site: series.site.clone(),
                resource: series.resource,
                before: Outlook::of(&before),
                after: Outlook::of(&after),
            }
        })
        .collect();
    let mut needs = b.needs.clone();
    for a in &s.add_systems {
        needs.push(SystemNeed { name: a.name.clone(), priority: a.priority, need: a.size.amounts(1) });
    }
    needs.sort_by(|x, y| (x.priority, &x.name).cmp(&(y.priority, &y.name)));
    let dr_after = dr_free_after(b, s);
    Ok(Outcome {
        scenario: s.clone(),
        sites,
        headroom_before: headroom::groups(&b.needs, b.dr_free.free),
        headroom_after: headroom::groups(&needs, dr_after),
        dr_free_before: b.dr_free.free,
        dr_free_after: dr_after,
    })
}

fn check(b: &Baseline, s: &Scenario) -> Result<(), ScenarioError> {
    let known_site = |site: &str| b.series.iter().any(|x| x.site == site);
    for site in s
        .add_vms
        .iter()
        .map(|a| &a.site)
        .chain(s.add_hosts.iter().map(|a| &a.site))
        .chain(s.add_storage.iter().map(|a| &a.site))
    {
        if !known_site(site) {
            return Err(ScenarioError::UnknownSite(site.clone()));
        }
    }
    for h in &s.lose_hosts {
        if !b.hosts.iter().any(|k| &k.name == h) {
            return Err(ScenarioError::UnknownHost(h.clone()));
        }
    }
    for a in &s.add_systems {
        if !(1..=5).contains(&a.priority) {
            return Err(ScenarioError::Invalid(format!(
                "system {}: priority must be 1 to 5, got {}",
                a.name, a.priority
            )));
        }
    }
    for a in &s.add_storage {
        if !(a.tb.is_finite() && a.tb > 0.0) {
            return Err(ScenarioError::Invalid(format!(
                "add storage at {}: {} TB is not a positive number",
                a.site, a.tb
            )));
        }
    }
    Ok(())
}

fn overcommit(b: &Baseline, site: &str) -> f64 {
    b.overcommit.iter().find(|(s, _)| s == site).map_or(1.0, |(_, r)| *r)
}

fn amount_of(a: Amounts, r: Resource) -> f64 {
    match r {
        Resource::Cpu => a.vcpus as f64,
        Resource::Memory => a.memory_bytes as f64,
        Resource::Storage => a.storage_bytes as f64,
        Resource::Vms => 0.0,
    }
}

/// How much the scenario adds to the use and to the capacity of `site`'s `resource`.
fn deltas(b: &Baseline, s: &Scenario, site: &str, r: Resource) -> (f64, f64) {
    let mut used = 0.0;
    let mut cap = 0.0;
    for a in s.add_vms.iter().filter(|a| a.site == site) {
        used += if r == Resource::Vms { f64::from(a.count) } else { amount_of(a.size.amounts(a.count), r) };
    }
    if site == b.primary_site {
        for a in &s.add_systems {
            used += if r == Resource::Vms { 1.0 } else { amount_of(a.size.amounts(1), r) };
        }
    }
    let oc = overcommit(b, site);
    for h in b.hosts.iter().filter(|h| h.site == site && s.lose_hosts.contains(&h.name)) {
        cap -= match r {
            Resource::Cpu => h.cores as f64 * oc,
            Resource::Memory => h.memory_bytes as f64,
            _ => 0.0,
        };
    }
    for a in s.add_hosts.iter().filter(|a| a.site == site) {
        cap += match r {
            Resource::Cpu => f64::from(a.cores) * f64::from(a.count) * oc,
            Resource::Memory => (a.memory_gb * GIB) as f64 * f64::from(a.count),
            _ => 0.0,
        };
    }
    if r == Resource::Storage {
        cap += s.add_storage.iter().filter(|a| a.site == site).map(|a| a.tb * TB).sum::<f64>();
    }
    (used, cap)
}

/// DR free with the scenario: lost hosts out, added hardware in (less the buffer), added VMs
/// at DR taking their share.
fn dr_free_after(b: &Baseline, s: &Scenario) -> Amounts {
    let dr = &b.dr_free_without_lost;
    let keep = 1.0 - dr.buffer;
    let mut free = dr.free;
    for a in s.add_hosts.iter().filter(|a| a.site == dr.site) {
        free.vcpus += (f64::from(a.cores) * f64::from(a.count) * dr.overcommit * keep) as u64;
        free.memory_bytes += ((a.memory_gb * GIB) as f64 * f64::from(a.count) * keep) as u64;
    }
    for a in s.add_storage.iter().filter(|a| a.site == dr.site) {
        free.storage_bytes += (a.tb * TB * keep) as u64;
    }
    for a in s.add_vms.iter().filter(|a| a.site == dr.site) {
        free = free.beyond(a.size.amounts(a.count));
    }
    free
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    /// DC storage growing exactly 1 TB a month to 80 TB today, of 135 TB; DR with 500 vCPUs
    /// free, 300 without dr-compute-01.
    fn baseline() -> Baseline {
        with_lost(&[])
    }

    /// The baseline as the caller builds it for a scenario that loses `lost`.
    fn with_lost(lost: &[&str]) -> Baseline {
        let per_day = 1e12 / 30.44;
        let history =
            (0..365).map(|d| Point { at: NOW - (365 - d) * DAY, value: 80e12 - per_day * (365 - d) as f64 }).collect();
        let dr = DrFree {
            site: "dr".into(),
            free: Amounts { vcpus: 500, memory_bytes: 1000 * GIB, storage_bytes: 50 * 1_000_000_000_000 },
            overcommit: 2.0,
            buffer: 0.1,
        };
        Baseline {
            now: NOW,
            series: vec![
                Series { site: "dc".into(), resource: Resource::Storage, capacity: 135e12, history },
                Series {
                    site: "dr".into(),
                    resource: Resource::Cpu,
                    capacity: 576.0,
                    history: vec![Point { at: NOW - DAY, value: 10.0 }, Point { at: NOW, value: 10.0 }],
                },
            ],
            hosts: vec![KnownHost {
                name: "dr-compute-01".into(),
                site: "dr".into(),
                cores: 48,
                memory_bytes: 512 * GIB,
            }],
            overcommit: vec![("dc".into(), 4.0), ("dr".into(), 2.0)],
            primary_site: "dc".into(),
            needs: vec![SystemNeed {
                name: "qlvbdh".into(),
                priority: 1,
                need: Amounts { vcpus: 400, memory_bytes: 100 * GIB, storage_bytes: 1_000_000_000_000 },
            }],
            dr_free: dr.clone(),
            dr_free_without_lost: if lost.is_empty() {
                dr.clone()
            } else {
                DrFree { free: Amounts { vcpus: 300, ..dr.free }, ..dr.clone() }
            },
        }
    }

    fn change<'a>(o: &'a Outcome, site: &str, r: Resource) -> &'a Change {
        o.sites.iter().find(|c| c.site == site && c.resource == r).expect("the test's setup and answers are valid")
    }

    #[test]
    fn adding_storage_buys_the_time_it_takes_to_fill_it() {
        let s = Scenario { add_storage: vec![AddStorage { site: "dc".into(), tb: 20.0 }], ..Scenario::default() };
        let o = apply(&baseline(), &s).expect("the test's setup and answers are valid");
        let c = change(&o, "dc", Resource::Storage);
        let gained = c.after.days_to_100.expect("the test's setup and answers are valid")
            - c.before.days_to_100.expect("the test's setup and answers are valid");
        // 20 TB at 1 TB a month is 20 × 30.44 days.
        assert!((gained - 20.0 * 30.44).abs() < 2.0, "{gained}");
        assert_eq!(c.after.capacity, 155e12);
    }

    #[test]
    fn adding_vms_raises_use_now_and_brings_the_dates_forward() {
        let size = Size { vcpus: 4, memory_gb: 16, disk_gb: 1000 };
        let s = Scenario { add_vms: vec![AddVms { site: "dc".into(), count: 10, size }], ..Scenario::default() };
        let o = apply(&baseline(), &s).expect("the test's setup and answers are valid");
        let c = change(&o, "dc", Resource::Storage);
        assert!((c.after.used - c.before.used - 10.0 * 1000.0 * GIB as f64).abs() < 1e6);
        assert!(
            c.after.days_to_100.expect("the test's setup and answers are valid")
                < c.before.days_to_100.expect("the test's setup and answers are valid")
        );
    }

    #[test]
    fn losing_a_dr_host_shrinks_dr_capacity_and_can_break_the_headroom() {
        let s = Scenario { lose_hosts: vec!["dr-compute-01".into()], ..Scenario::default() };
        let o = apply(&with_lost(&["dr-compute-01"]), &s).expect("the test's setup and answers are valid");
        let c = change(&o, "dr", Resource::Cpu);
        assert_eq!(c.before.capacity - c.after.capacity, 96.0);
        assert!(o.headroom_before[0].fits);
        assert!(!o.headroom_after[0].fits);
        assert_eq!(o.headroom_after[0].shortfall.vcpus, 100);
    }

    #[test]
    fn a_new_system_joins_its_priority_group() {
        let s = Scenario {
            add_systems: vec![AddSystem {
                name: "lgsp".into(),
                priority: 1,
                size: Size { vcpus: 200, memory_gb: 64, disk_gb: 500 },
            }],
            ..Scenario::default()
        };
        let o = apply(&baseline(), &s).expect("the test's setup and answers are valid");
        assert_eq!(o.headroom_after[0].systems, ["lgsp", "qlvbdh"]);
        assert_eq!(o.headroom_after[0].shortfall.vcpus, 100, "400 + 200 needed, 500 free");
    }

    #[test]
    fn unknown_hosts_and_sites_and_bad_numbers_are_refused() {
        let b = baseline();
        let lose = Scenario { lose_hosts: vec!["nope".into()], ..Scenario::default() };
        assert_eq!(apply(&b, &lose).expect_err("refused"), ScenarioError::UnknownHost("nope".into()));
        let site = Scenario { add_storage: vec![AddStorage { site: "mars".into(), tb: 1.0 }], ..Scenario::default() };
        assert_eq!(apply(&b, &site).expect_err("refused"), ScenarioError::UnknownSite("mars".into()));
        let nan = Scenario { add_storage: vec![AddStorage { site: "dc".into(), tb: f64::NAN }], ..Scenario::default() };
        assert!(matches!(apply(&b, &nan), Err(ScenarioError::Invalid(_))));
    }
}
