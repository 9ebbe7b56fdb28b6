//! Readiness checks before recurring meetings: each `[[vc.schedules]]` entry names a cron
//! schedule (in the province's time, like the backup schedules) at which every device (of its
//! site, or all) is checked; a device that is no-go raises an alert (logged at warn, listed by
//! `GET /api/v1/vc/alerts` and `mangrove vc alerts`, counted in `mangrove_vc_alerts`) that
//! stays until a later check finds it go.
//!
//! The alerts live in this process (a restarted controller raises them again at the next
//! scheduled check); the results themselves are in the store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::{App, now_ms, rfc3339};
use crate::backup::plans::{next_run, parse_cron};

/// `[[vc.schedules]]`: a check before a recurring meeting.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// What the meeting is, e.g. `giao-ban-tuan` (the weekly provincial meeting).
    pub name: String,
    /// When to check (cron, province time), e.g. `30 7 * * 1` for 07:30 every Monday.
    pub cron: String,
    /// Only this site's devices (default: all).
    #[serde(default)]
    pub site: Option<String>,
}

impl Schedule {
    pub fn validate(&self) -> Result<(), String> {
        parse_cron(&self.cron).map(|_| ()).map_err(|e| format!("vc.schedules {}: cron {:?}: {e}", self.name, self.cron))
    }
}

/// Alerts in force: device → the alert.
fn alerts() -> &'static Mutex<BTreeMap<String, Value>> {
    static ALERTS: OnceLock<Mutex<BTreeMap<String, Value>>> = OnceLock::new();
    ALERTS.get_or_init(Default::default)
}

/// The alerts in force, oldest first.
pub fn current() -> Vec<Value> {
    let mut v: Vec<Value> = alerts().lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
    v.sort_by(|a, b| a["since"].as_str().cmp(&b["since"].as_str()));
    v
}

/// Raises or clears the alerts from one check's outcomes (pure over the alert map).
pub fn record(map: &mut BTreeMap<String, Value>, schedule: &str, outcomes: &[super::Outcome], now: i64) {
    for o in outcomes {
        if o.go {
            if map.remove(&o.device).is_some() {
                tracing::info!(device = o.device, schedule, "video device ready again; alert cleared");
            }
            continue;
        }
        let since =
            map.get(&o.device).and_then(|a| a["since"].as_str().map(str::to_string)).unwrap_or_else(|| rfc3339(now));
        tracing::warn!(device = o.device, site = o.site, schedule, reasons = ?o.reasons, "video device NOT ready for the meeting");
        map.insert(
            o.device.clone(),
            json!({"device": o.device, "site": o.site, "schedule": schedule, "reasons": o.reasons, "since": since, "checked_at": rfc3339(now)}),
        );
    }
}

/// Runs the schedules until shutdown (nothing when there are none).
pub fn spawn(app: Arc<App>) {
    let schedules = app.cfg.vc.schedules.clone();
    if schedules.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let mut last: Vec<i64> = vec![now_ms() / 1000; schedules.len()];
        loop {
            let now = now_ms() / 1000;
            for (i, s) in schedules.iter().enumerate() {
                let Ok(cron) = parse_cron(&s.cron) else { continue };
                if next_run(&cron, last[i]).is_some_and(|t| t <= now) {
                    last[i] = now;
                    match super::check(&app, s.site.as_deref(), "scheduler").await {
                        Ok(out) => {
                            let mut map = alerts().lock().unwrap_or_else(|p| p.into_inner());
                            record(&mut map, &s.name, &out, now_ms());
                            app.metrics.vc.alerts.set(i64::try_from(map.len()).unwrap_or(i64::MAX));
                        }
                        Err(e) => tracing::warn!(schedule = s.name, error = %e, "scheduled video check did not run"),
                    }
                }
            }
            tokio::select! {
                _ = app.shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(device: &str, go: bool) -> super::super::Outcome {
        super::super::Outcome {
            device: device.into(),
            site: "dc".into(),
            model: "Polycom HDX 7000".into(),
            go,
            state: if go { "up".into() } else { "degraded".into() },
            reasons: if go { vec![] } else { vec!["SIP not answering".into()] },
            checks: vec![],
            checked_at: String::new(),
            last_up: None,
        }
    }

    #[test]
    fn a_no_go_raises_an_alert_that_a_go_clears() {
        let mut m = BTreeMap::new();
        record(&mut m, "giao-ban", &[outcome("vc-u-minh", false), outcome("vc-tinh", true)], 1_000);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["vc-u-minh"]);
        record(&mut m, "giao-ban", &[outcome("vc-u-minh", false)], 2_000);
        assert_eq!(m["vc-u-minh"]["since"], rfc3339(1_000), "an alert keeps when it began");
        record(&mut m, "giao-ban", &[outcome("vc-u-minh", true)], 3_000);
        assert!(m.is_empty());
        assert!(Schedule { name: "x".into(), cron: "30 7 * * 1".into(), site: None }.validate().is_ok());
        assert!(Schedule { name: "x".into(), cron: "every monday".into(), site: None }.validate().is_err());
    }
}
