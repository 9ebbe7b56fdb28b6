//! Keeping capacity history: a sample of every site, host, pool and system after each good
//! platform sync, the gauges that follow it, and the folding of old samples into hourly and
//! daily averages.

use std::sync::Arc;
use std::time::Duration;

use super::headroom::{self, Settings};
use super::picture::{self, Observed};
use crate::app::{App, now_ms};
use crate::metrics::{ResourceLabel, SiteLabel, SiteResource};
use crate::store::StoreError;

/// How often old samples are folded.
const FOLD_EVERY: Duration = Duration::from_secs(3600);

/// The headroom settings of the controller's configuration.
pub fn settings(app: &App) -> Settings {
    let c = &app.cfg.capacity;
    Settings {
        primary_site: c.primary_site.clone(),
        dr_site: c.dr_site.clone(),
        dr_overcommit: c.overcommit(&c.dr_site),
        buffer: c.dr_buffer,
    }
}

/// Takes a sample of everything the platforms show now, stores it and updates the gauges.
/// Returns how many samples were written.
pub async fn sample_now(app: &Arc<App>) -> Result<usize, StoreError> {
    let obs = Observed::read(app.store.as_ref()).await?;
    let inv = app.inventory.as_deref();
    let cfg = &app.cfg.capacity;
    let at = now_ms() / 1000;
    let samples = picture::samples(inv, &obs, &|site| cfg.overcommit(site), at);
    // With Prometheus keeping the sites' history (from the gauges below), the store keeps only
    // what Prometheus does not see: hosts, pools and systems.
    let kept: Vec<_> = if app.capacity_prometheus.is_some() {
        samples.iter().filter(|s| s.scope_kind != "site").cloned().collect()
    } else {
        samples.clone()
    };
    app.store.put_samples(&kept).await?;
    for s in samples.iter().filter(|s| s.scope_kind == "site") {
        site_gauges(app, s);
    }
    if let Some(inv) = inv {
        let st = settings(app);
        let free = headroom::dr_free(Some(inv), &obs, &st, &[]);
        let groups = headroom::groups(&headroom::system_needs(inv, &obs, &st.primary_site), free.free);
        for (r, ratio) in headroom::ratios(&groups, free.free) {
            if let Some(ratio) = ratio {
                app.metrics.dr_headroom_ratio.get_or_create(&ResourceLabel { resource: r.as_str().into() }).set(ratio);
            }
        }
    }
    Ok(samples.len())
}

/// The gauges of one site sample. The absolute ones let a Prometheus server that scrapes the
/// controller keep the history (see `[capacity] prometheus`).
fn site_gauges(app: &App, s: &crate::store::Sample) {
    let m = &app.metrics;
    let l = SiteResource { site: s.scope.clone(), resource: s.resource.clone() };
    let site = SiteLabel { site: s.scope.clone() };
    match s.resource.as_str() {
        "cpu" => {
            m.capacity_used_vcpus.get_or_create(&site).set(s.used);
            m.capacity_total_vcpus.get_or_create(&site).set(s.capacity.unwrap_or(0.0));
        }
        "memory" | "storage" => {
            m.capacity_used_bytes.get_or_create(&l).set(s.used);
            m.capacity_total_bytes.get_or_create(&l).set(s.capacity.unwrap_or(0.0));
        }
        _ => return,
    }
    if let Some(cap) = s.capacity.filter(|c| *c > 0.0) {
        m.capacity_used_ratio.get_or_create(&l).set(s.used / cap);
    }
}

/// After a good sync: a sample, logged (not returned) when it fails, so the sync stands.
pub async fn after_sync(app: &Arc<App>) {
    match sample_now(app).await {
        Ok(n) => tracing::debug!(samples = n, "capacity sampled"),
        Err(e) => tracing::warn!(error = %e, "capacity sample not stored"),
    }
}

/// Folds old samples once at start and then every hour, until shutdown.
pub fn spawn_folding(app: Arc<App>) {
    tokio::spawn(async move {
        loop {
            let now = now_ms() / 1000;
            let c = &app.cfg.capacity;
            let raw_before = now - secs(c.keep_raw.0);
            let hour_before = now - secs(c.keep_hourly.0);
            match app.store.downsample(raw_before, hour_before).await {
                Ok(f) if f.raw_to_hour + f.hour_to_day > 0 => {
                    tracing::info!(raw_to_hour = f.raw_to_hour, hour_to_day = f.hour_to_day, "capacity history folded")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "capacity history not folded"),
            }
            tokio::select! {
                _ = app.shutdown.cancelled() => break,
                _ = tokio::time::sleep(FOLD_EVERY) => {}
            }
        }
    });
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}
