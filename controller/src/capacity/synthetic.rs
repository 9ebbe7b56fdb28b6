//! A plausible year of history for a testbed, so capacity reports mean something on the first
//! run: each site's use grows towards today's value with the patterns real ones show — steady
//! growth of stored data, a weekly swing (full backups and exports land at the weekend), a
//! rise at the end of each quarter (reporting periods), VMs added in steps every few weeks —
//! and a little noise. Deterministic for a given seed.

use crate::store::Sample;

const DAY: i64 = 86_400;

/// One series to invent: a site's resource as it is today.
#[derive(Debug, Clone, PartialEq)]
pub struct Today {
    pub site: String,
    /// `cpu`, `memory`, `storage` or `vms`.
    pub resource: String,
    pub used: f64,
    pub capacity: Option<f64>,
}

/// A small deterministic generator (no need for statistical quality here).
struct Lcg(u64);

impl Lcg {
    /// Uniform in [-1, 1).
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

/// How far below today's level the series starts a year ago.
fn yearly_growth(resource: &str) -> f64 {
    match resource {
        "storage" => 0.30,
        "vms" => 0.12,
        _ => 0.18,
    }
}

/// Daily samples for the `days` days before `now` (the day of `now` itself is left to real
/// samples), tier `day`.
pub fn history(today: &[Today], now: i64, days: i64, seed: u64) -> Vec<Sample> {
    let first_day = now.div_euclid(DAY) - days;
    let mut out = Vec::new();
    for (k, t) in today.iter().enumerate() {
        let mut rng = Lcg(seed ^ (k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // With no use recorded yet (no platform read), invent a level a little over half full.
        let end = if t.used > 0.0 { t.used } else { t.capacity.unwrap_or(0.0) * 0.55 };
        let start = end / (1.0 + yearly_growth(&t.resource));
        for d in 0..days {
            let day = (first_day + d) * DAY;
            let progress = d as f64 / days as f64;
            let value = match t.resource.as_str() {
                // Allocation moves in steps: VMs are created a few at a time every few weeks.
                "cpu" | "memory" | "vms" => {
                    let steps = (progress * 17.0).floor() / 17.0;
                    start + (end - start) * steps
                }
                _ => {
                    let weekday = (day / DAY + 4).rem_euclid(7); // 0 = Sunday
                    let weekend = if weekday == 0 || weekday == 6 { 0.012 } else { 0.0 };
                    let quarter_end = quarter_end_rise(day);
                    let noise = rng.next() * 0.006;
                    (start + (end - start) * progress) * (1.0 + weekend + quarter_end + noise)
                }
            };
            let value = if t.resource == "vms" { value.round() } else { value };
            out.push(Sample {
                scope_kind: "site".into(),
                scope: t.site.clone(),
                resource: t.resource.clone(),
                tier: "day".into(),
                at: day,
                capacity: t.capacity,
                provisioned: None,
                used: value.max(0.0),
                n: 288,
            });
        }
    }
    out
}

/// In the last ten days of March, June, September and December, reports and exports add up
/// to 2 % more; they are archived off-site after the quarter closes.
fn quarter_end_rise(day: i64) -> f64 {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(day) else { return 0.0 };
    let last_month = matches!(t.month() as u8, 3 | 6 | 9 | 12);
    if last_month && t.day() > 20 { 0.02 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Vec<Today> {
        vec![
            Today { site: "dc".into(), resource: "storage".into(), used: 80e12, capacity: Some(135e12) },
            Today { site: "dc".into(), resource: "cpu".into(), used: 700.0, capacity: Some(2304.0) },
        ]
    }

    #[test]
    fn a_year_grows_towards_today_without_reaching_past_it() {
        let now = 1_790_000_000;
        let h = history(&today(), now, 365, 7);
        assert_eq!(h.len(), 2 * 365);
        let storage: Vec<&Sample> = h.iter().filter(|s| s.resource == "storage").collect();
        assert!(storage.iter().all(|s| s.at < now && s.tier == "day"));
        let first = storage.first().map(|s| s.used).unwrap_or_default();
        let last = storage.last().map(|s| s.used).unwrap_or_default();
        assert!(first < 0.8 * 80e12 && last > 0.95 * 80e12 && last < 1.05 * 80e12, "{first} → {last}");
        let cpu: Vec<f64> = h.iter().filter(|s| s.resource == "cpu").map(|s| s.used).collect();
        assert!(cpu.windows(2).all(|w| w[1] >= w[0]), "allocation only grows in steps");
    }

    #[test]
    fn the_same_seed_gives_the_same_year() {
        assert_eq!(history(&today(), 1_790_000_000, 30, 1), history(&today(), 1_790_000_000, 30, 1));
        assert_ne!(history(&today(), 1_790_000_000, 30, 1), history(&today(), 1_790_000_000, 30, 2));
    }
}
