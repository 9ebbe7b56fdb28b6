//! The answers the API gives, gathered from the store and the configuration: forecasts per
//! site and resource, DR headroom, what-if outcomes.

use serde::Serialize;

use super::collect::settings;
use super::forecast::{DEFAULT_WINDOW_DAYS, Forecast, forecast};
use super::headroom::{self, SystemNeed};
use super::model::{DrFree, HeadroomGroup, Point, Resource};
use super::picture::{Observed, site_names, site_totals};
use super::whatif::{self, Baseline, KnownHost, Scenario, ScenarioError, Series};
use crate::app::{App, AppError, now_ms};
use crate::report_text::Lang;

const DAY: i64 = 86_400;

/// The resources forecasts and reports cover (VM counts have no capacity).
pub const PLANNED: [Resource; 3] = [Resource::Cpu, Resource::Memory, Resource::Storage];

/// One row of `capacity forecast --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastRow {
    pub site: String,
    pub resource: Resource,
    pub used: f64,
    pub capacity: f64,
    pub days_to_80: Option<f64>,
    pub days_to_100: Option<f64>,
    pub days_to_80_conservative: Option<f64>,
    pub days_to_100_conservative: Option<f64>,
    pub growth_per_month: f64,
    /// `vcpus` or `bytes`.
    pub unit: &'static str,
    pub points: usize,
}

pub fn unit(r: Resource) -> &'static str {
    match r {
        Resource::Cpu => "vcpus",
        Resource::Vms => "vms",
        Resource::Memory | Resource::Storage => "bytes",
    }
}

/// Every site's history of the planned resources, with today's capacity.
pub async fn site_series(app: &App, obs: &Observed, days: i64) -> Result<Vec<Series>, AppError> {
    let inv = app.inventory.as_deref();
    let since = now_ms() / 1000 - days * DAY;
    let mut out = Vec::new();
    for site in site_names(inv, obs) {
        let t = site_totals(inv, obs, &site, &[]);
        for r in PLANNED {
            let capacity = match r {
                Resource::Cpu => t.cores as f64 * app.cfg.capacity.overcommit(&site),
                Resource::Memory => t.memory_bytes as f64,
                _ => t.storage_bytes as f64,
            };
            let days = match &app.capacity_prometheus {
                None => app.store.daily_series("site", &site, r.as_str(), since).await?,
                Some(prom) => {
                    let (prom, s, until) = (prom.clone(), site.clone(), now_ms() / 1000);
                    tokio::task::spawn_blocking(move || prom.daily_series(&s, r.as_str(), since, until))
                        .await
                        .map_err(|e| AppError::Upstream(format!("Prometheus query did not run: {e}")))?
                        .map_err(|e| AppError::Upstream(e.to_string()))?
                }
            };
            let history = days.into_iter().map(|d| Point { at: d.day, value: d.used }).collect();
            out.push(Series { site: site.clone(), resource: r, capacity, history });
        }
    }
    Ok(out)
}

pub fn forecast_of(s: &Series, now: i64) -> Forecast {
    forecast(&s.history, s.capacity, now)
}

pub async fn forecasts(app: &App) -> Result<Vec<(Series, Forecast)>, AppError> {
    let obs = Observed::read(app.store.as_ref()).await?;
    let now = now_ms() / 1000;
    let series = site_series(app, &obs, i64::from(DEFAULT_WINDOW_DAYS)).await?;
    Ok(series
        .into_iter()
        .map(|s| {
            let f = forecast_of(&s, now);
            (s, f)
        })
        .collect())
}

pub fn forecast_row(s: &Series, f: &Forecast) -> ForecastRow {
    ForecastRow {
        site: s.site.clone(),
        resource: s.resource,
        used: f.used,
        capacity: f.capacity,
        days_to_80: f.days_to_80,
        days_to_100: f.days_to_100,
        days_to_80_conservative: f.days_to_80_conservative,
        days_to_100_conservative: f.days_to_100_conservative,
        growth_per_month: f.growth_per_month(),
        unit: unit(s.resource),
        points: f.points,
    }
}

/// The answer of `capacity headroom`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadroomAnswer {
    pub dr: DrFree,
    pub lost_hosts: Vec<String>,
    pub groups: Vec<HeadroomGroup>,
    pub summary: String,
    pub summary_vi: String,
    /// VMs at the primary site that belong to no information system (not in any group).
    pub unassigned_vms: usize,
    /// What those VMs would need at DR, and whether they fit after every group.
    pub unassigned: Unassigned,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unassigned {
    pub need: super::model::Amounts,
    pub fits_after_groups: bool,
}

fn inventory(app: &App) -> Result<&inventory::Inventory, AppError> {
    app.inventory
        .as_deref()
        .ok_or_else(|| AppError::BadRequest("the controller has no inventory, so no systems to place at DR".into()))
}

/// Hosts a scenario may lose: the platforms' hosts, then the inventory's.
fn known_hosts(inv: &inventory::Inventory, obs: &Observed) -> Vec<KnownHost> {
    let mut out: Vec<KnownHost> = Vec::new();
    for site in site_names(Some(inv), obs) {
        for h in obs.hosts_at(&site) {
            out.push(KnownHost {
                name: h.name.clone(),
                site: site.clone(),
                cores: u64::from(h.cpu_cores),
                memory_bytes: h.memory_bytes,
            });
        }
    }
    for h in &inv.hosts {
        if !out.iter().any(|k| k.name == h.name) {
            out.push(KnownHost {
                name: h.name.clone(),
                site: h.site.clone(),
                cores: u64::from(h.cpus),
                memory_bytes: h.memory_gb << 30,
            });
        }
    }
    out
}

/// DR headroom for every system, or those in `only`, or a recovery plan's systems grouped by
/// the plan's priorities (`plan`: system → priority).
pub async fn headroom(
    app: &App,
    lost: &[String],
    only: Option<&[String]>,
    plan: Option<&std::collections::BTreeMap<String, u8>>,
) -> Result<HeadroomAnswer, AppError> {
    let inv = inventory(app)?;
    let obs = Observed::read(app.store.as_ref()).await?;
    let hosts = known_hosts(inv, &obs);
    if let Some(h) = lost.iter().find(|h| !hosts.iter().any(|k| &k.name == *h)) {
        return Err(AppError::NotFound(ScenarioError::UnknownHost(h.clone()).to_string()));
    }
    let st = settings(app);
    let mut needs: Vec<SystemNeed> = headroom::system_needs(inv, &obs, &st.primary_site);
    if let Some(only) = only {
        needs.retain(|n| only.contains(&n.name));
    }
    if let Some(plan) = plan {
        needs.retain(|n| plan.contains_key(&n.name));
        for n in &mut needs {
            n.priority = plan.get(&n.name).copied().unwrap_or(n.priority);
        }
        needs.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    }
    let dr = headroom::dr_free(Some(inv), &obs, &st, lost);
    let groups = headroom::groups(&needs, dr.free);
    let loose: Vec<_> = obs.vms_at(&st.primary_site).filter(|v| v.system.is_none()).collect();
    let loose_need =
        loose.iter().map(|v| super::picture::vm_amounts(v)).fold(Default::default(), super::model::Amounts::plus);
    let all = groups.iter().fold(loose_need, |a, g| a.plus(g.need));
    let unassigned = Unassigned { need: loose_need, fits_after_groups: all.beyond(dr.free).is_zero() };
    Ok(HeadroomAnswer {
        unassigned_vms: loose.len(),
        unassigned,
        summary: headroom::summary(&groups, Lang::En),
        summary_vi: headroom::summary(&groups, Lang::Vi),
        dr,
        lost_hosts: lost.to_vec(),
        groups,
    })
}

/// The capacity report's data: `period_days` of daily history per site and resource, the
/// forecasts (fitted on a year) and the DR headroom.
pub async fn report_data(app: &App, period_days: u32) -> Result<super::report::CapacityReport, AppError> {
    use super::report::{CapacityReport, ResourceSection, SiteSection};
    let obs = Observed::read(app.store.as_ref()).await?;
    let inv = app.inventory.as_deref();
    let now = now_ms() / 1000;
    let series = site_series(app, &obs, i64::from(DEFAULT_WINDOW_DAYS.max(period_days))).await?;
    let from = now - i64::from(period_days) * DAY;
    let mut sites: Vec<SiteSection> = Vec::new();
    for s in &series {
        let f = forecast_of(s, now);
        let section = ResourceSection {
            resource: s.resource,
            capacity: s.capacity,
            used: s.history.last().map_or(f.used, |p| p.value),
            daily: s.history.iter().filter(|p| p.at >= from).copied().collect(),
            forecast: f,
        };
        match sites.iter_mut().find(|x| x.name == s.site) {
            Some(site) => site.resources.push(section),
            None => sites.push(SiteSection {
                name: s.site.clone(),
                title: inv.and_then(|i| i.sites.iter().find(|x| x.name == s.site)).and_then(|x| x.title.clone()),
                resources: vec![section],
            }),
        }
    }
    let (headroom, dr_free) = match inv {
        Some(inv) => {
            let st = settings(app);
            let dr = headroom::dr_free(Some(inv), &obs, &st, &[]);
            (headroom::groups(&headroom::system_needs(inv, &obs, &st.primary_site), dr.free), Some(dr))
        }
        None => (Vec::new(), None),
    };
    Ok(CapacityReport {
        province: inv.map(|i| i.province.clone()).unwrap_or_default(),
        generated_at: vietnam_time(now),
        period_days,
        sites,
        headroom,
        dr_free,
    })
}

/// `now` in RFC 3339 at UTC+7, the province's time (Vietnam keeps no daylight saving): the
/// report's dates are the calendar days people there live in.
fn vietnam_time(now: i64) -> String {
    let offset = time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC);
    time::OffsetDateTime::from_unix_timestamp(now)
        .map(|t| t.to_offset(offset))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| crate::app::rfc3339(now * 1000))
}

/// A what-if scenario against today's picture.
pub async fn whatif(app: &App, scenario: &Scenario) -> Result<whatif::Outcome, AppError> {
    let inv = inventory(app)?;
    let obs = Observed::read(app.store.as_ref()).await?;
    let st = settings(app);
    let series = site_series(app, &obs, i64::from(DEFAULT_WINDOW_DAYS)).await?;
    let baseline = Baseline {
        now: now_ms() / 1000,
        overcommit: site_names(Some(inv), &obs)
            .into_iter()
            .map(|s| {
                let r = app.cfg.capacity.overcommit(&s);
                (s, r)
            })
            .collect(),
        hosts: known_hosts(inv, &obs),
        primary_site: st.primary_site.clone(),
        needs: headroom::system_needs(inv, &obs, &st.primary_site),
        dr_free: headroom::dr_free(Some(inv), &obs, &st, &[]),
        dr_free_without_lost: headroom::dr_free(Some(inv), &obs, &st, &scenario.lose_hosts),
        series,
    };
    whatif::apply(&baseline, scenario).map_err(|e| match e {
        ScenarioError::UnknownHost(_) | ScenarioError::UnknownSite(_) => AppError::NotFound(e.to_string()),
        ScenarioError::Invalid(m) => AppError::BadRequest(m),
    })
}
