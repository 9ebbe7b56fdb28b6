//! Scheduled refreshes: every evaluation interval (the backup scheduler's, default 30 s), each
//! applied plan's `image` workloads with `refresh: {schedule}` whose cron time has come since
//! their last refresh get one, in a task of their own (a failure or a panic there is logged
//! and the next occurrence tries again). Cron schedules are read as the backup schedules are
//! (the province's time). What "last" is, is kept in memory: after a restart the schedule
//! counts from the controller's start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::app::{App, now_ms};
use crate::backup::plans::{next_run, parse_cron};

/// The scheduler's actor name in the audit trail and logs.
pub const SCHEDULER: &str = "scheduler";

/// Whether a refresh on `cron` is due at `now`, the last one (or the start) being at `last`
/// (both unix ms). Pure.
pub fn due(cron: &croner::Cron, last: i64, now: i64) -> bool {
    next_run(cron, last / 1000).is_some_and(|t| t * 1000 <= now)
}

/// One pass over the applied plans.
async fn tick(app: &Arc<App>, last: &mut BTreeMap<String, i64>, started: i64) {
    let records = match app.store.plans().await {
        Ok(r) => r,
        Err(e) => return tracing::warn!(error = %e, "recovery plans not read; no image refreshed"),
    };
    let now = now_ms();
    for record in records {
        let Ok((_, plan)) = crate::failover::plans::load(app, &record.name, Some(record.version)).await else {
            continue;
        };
        for sys in &plan.systems {
            for w in &sys.recover {
                let Some(refresh) = &w.refresh else { continue };
                let key = format!("{}/{}", plan.name, w.workload);
                let cron = match parse_cron(&refresh.schedule) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(plan = %plan.name, workload = %w.workload, error = %e, "bad refresh schedule");
                        continue;
                    }
                };
                let since = *last.entry(key.clone()).or_insert(started);
                if !due(&cron, since, now) {
                    continue;
                }
                last.insert(key, now);
                let target = super::refresh::Target {
                    system: sys.name.clone(),
                    workload: w.workload.clone(),
                    image: w.image.clone(),
                };
                let (app, plan_name) = (app.clone(), plan.name.clone());
                tokio::spawn(async move {
                    if let Err(e) = super::refresh::refresh_one(&app, &plan_name, &target, SCHEDULER).await {
                        tracing::warn!(plan = %plan_name, workload = %target.workload, error = %e, "scheduled image refresh failed");
                    }
                });
            }
        }
    }
}

/// Starts the scheduler; it stops with the controller.
pub fn spawn(app: Arc<App>, every: Duration) {
    tokio::spawn(async move {
        let started = now_ms();
        let mut last = BTreeMap::new();
        loop {
            tick(&app, &mut last, started).await;
            tokio::select! {
                _ = app.shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_is_due_once_its_cron_time_has_passed_since_the_last() {
        // 02:00 in the province (UTC+7) is 19:00 UTC the day before.
        let cron = parse_cron("0 2 * * *").expect("cron");
        let at = |h: i64| (1_793_473_200 + h * 3600) * 1000; // 2026-10-31T19:00:00Z = 02:00 ICT
        assert!(!due(&cron, at(-1), at(-1) + 1000));
        assert!(due(&cron, at(-1), at(0)));
        assert!(!due(&cron, at(0), at(23)));
        assert!(due(&cron, at(0), at(24)));
    }
}
