//! When a resource fills up: a straight-line forecast from the history of how much of it is
//! used, with a conservative band for planning purchases.
//!
//! Pure: the caller passes the series, the capacity and `now` (unix seconds); the same input
//! always gives the same forecast, and no input makes it panic or return a NaN.
//!
//! # Method
//!
//! 1. **Clean.** Points whose value is not a finite number are dropped. Only the last
//!    [`DEFAULT_WINDOW_DAYS`] (365) days of the series are used, counted back from its latest
//!    point (not from `now`, so a collector that stopped a while ago still gives a forecast).
//!    A year is long enough for daily noise and weekly patterns (backups at the weekend) to
//!    average out, and short enough that growth from years ago does not hide today's.
//! 2. **Fit.** An ordinary least-squares line through (day, used), every point weighted the
//!    same; gaps in the series need no filling. Its slope is the expected growth per day; its
//!    value at `now` is the expected use today (`used`).
//! 3. **Scatter.** The residual standard deviation `s = √(Σ r² / (n − 2))` says how far single
//!    days stray from the line; the slope's standard error is `se = s / √Σ(x − x̄)²`.
//! 4. **Conservative band** (one-sided 90 %): the level raised by `t·s` and the slope raised by
//!    `t·se`, where `t` is the one-sided 90 % quantile of Student's t with `n − 2` degrees of
//!    freedom: 1.28 for long series, more for short ones (3.08 with 3 points), so a forecast
//!    from a few points gets the wide band it deserves. With only 2 points nothing measures
//!    the scatter and the band equals the line.
//! 5. **Dates.** Days until the line reaches 80 % and 100 % of capacity, and days until the
//!    band does (never later than the line). `Some(0.0)` when it is already there: the line
//!    at `now` or the latest observation is at or above the threshold. `None` when the line
//!    never gets there (flat or falling use), or there is nothing to fit: fewer than 2 usable
//!    points, all points at the same moment, or a capacity that is not a positive number.
//!
//! Limits: the forecast is a straight line. A one-off step (a system migrated in, bringing
//! 20 TB at once) reads as fast growth until it leaves the window; a planned step belongs in a
//! what-if scenario, not in the trend.

use serde::{Deserialize, Serialize};

use super::model::Point;

/// How much history the fit uses, in days back from the latest point (see the module doc).
pub const DEFAULT_WINDOW_DAYS: u32 = 365;

/// The share of capacity at which to plan a purchase.
pub const PLAN_THRESHOLD: f64 = 0.8;

const SECONDS_PER_DAY: f64 = 86_400.0;

/// A resource's expected use and the dates it reaches 80 % and 100 % of capacity.
/// Every number is finite; amounts are in the series' unit (bytes, vCPUs, VMs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// The moment the forecast is made from (unix seconds); the days below count from it.
    pub now: i64,
    /// Expected use at `now` (the line's value there); the latest observation when there is
    /// no line; 0 when there is no data.
    pub used: f64,
    pub capacity: f64,
    /// Expected growth per day (negative when use falls; 0 when there is no line).
    pub slope_per_day: f64,
    /// The conservative band at `now`: `used` plus t times the residual deviation.
    pub used_high: f64,
    /// The conservative growth per day: the slope plus t times its standard error.
    pub slope_per_day_high: f64,
    pub days_to_80: Option<f64>,
    pub days_to_100: Option<f64>,
    pub days_to_80_conservative: Option<f64>,
    pub days_to_100_conservative: Option<f64>,
    /// The latest usable observation.
    pub last: Option<Point>,
    /// How many points the fit used.
    pub points: usize,
    pub window_days: u32,
    /// Whether a line could be fitted; without one, `used` is the latest observation and
    /// there are no dates.
    pub trend: bool,
}

/// Use expected at a moment, and its conservative (one-sided 90 %) upper bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Demand {
    pub expected: f64,
    pub high: f64,
}

/// Forecast with the default window of [`DEFAULT_WINDOW_DAYS`]; see the module doc.
pub fn forecast(series: &[Point], capacity: f64, now: i64) -> Forecast {
    forecast_window(series, capacity, now, DEFAULT_WINDOW_DAYS)
}

/// Forecast from the last `window_days` days of the series (counted back from its latest
/// point); see the module doc.
pub fn forecast_window(series: &[Point], capacity: f64, now: i64, window_days: u32) -> Forecast {
    let capacity = if capacity.is_finite() && capacity > 0.0 { capacity } else { 0.0 };
    let points = usable_points(series, window_days);
    let last = points.iter().copied().max_by_key(|p| p.at);
    let f = Forecast {
        now,
        used: last.map_or(0.0, |p| p.value),
        capacity,
        slope_per_day: 0.0,
        used_high: last.map_or(0.0, |p| p.value),
        slope_per_day_high: 0.0,
        days_to_80: None,
        days_to_100: None,
        days_to_80_conservative: None,
        days_to_100_conservative: None,
        last,
        points: points.len(),
        window_days,
        trend: false,
    };
    let Some(line) = fit(&points, now) else { return f };
    let fitted = Forecast {
        used: line.at_now.max(0.0),
        slope_per_day: line.slope,
        used_high: (line.at_now + line.t * line.residual_sd).max(line.at_now.max(0.0)),
        slope_per_day_high: line.slope + line.t * line.slope_se,
        trend: true,
        ..f
    };
    // Sums of finite numbers near f64::MAX can still overflow; such a series has no line.
    if ![fitted.used, fitted.slope_per_day, fitted.used_high, fitted.slope_per_day_high].iter().all(|v| v.is_finite()) {
        return f;
    }
    with_dates(fitted)
}

/// Fills in the days to 80 % and 100 % for the line and for the band.
fn with_dates(mut f: Forecast) -> Forecast {
    if f.capacity <= 0.0 {
        return f;
    }
    let latest = f.last.map_or(0.0, |p| p.value);
    let reach = |level: f64, slope: f64, fraction: f64| {
        let threshold = fraction * f.capacity;
        // An observation already over the threshold counts, even when the line is below it.
        if latest >= threshold { Some(0.0) } else { days_to_reach(level, slope, threshold) }
    };
    f.days_to_80 = reach(f.used, f.slope_per_day, PLAN_THRESHOLD);
    f.days_to_100 = reach(f.used, f.slope_per_day, 1.0);
    f.days_to_80_conservative = reach(f.used_high, f.slope_per_day_high, PLAN_THRESHOLD);
    f.days_to_100_conservative = reach(f.used_high, f.slope_per_day_high, 1.0);
    f
}

impl Forecast {
    /// Use expected at `at` (unix seconds) and its conservative bound, never below 0. The band
    /// widens with the distance from `now` in either direction.
    pub fn demand_at(&self, at: i64) -> Demand {
        let days = (at.saturating_sub(self.now)) as f64 / SECONDS_PER_DAY;
        let expected = (self.used + self.slope_per_day * days).max(0.0);
        let widening = (self.used_high - self.used) + (self.slope_per_day_high - self.slope_per_day) * days.abs();
        let high = expected + widening.max(0.0);
        Demand { expected: finite_or(expected, 0.0), high: finite_or(high, expected) }
    }

    /// The moment `days` after `now` (unix seconds), saturating far in the future.
    pub fn after_days(&self, days: f64) -> i64 {
        self.now.saturating_add((days * SECONDS_PER_DAY).round() as i64)
    }

    /// Expected growth per average month (365.25 / 12 days).
    pub fn growth_per_month(&self) -> f64 {
        self.slope_per_day * 365.25 / 12.0
    }
}

/// [`Forecast::demand_at`] as a free function.
pub fn demand_at(f: &Forecast, at: i64) -> Demand {
    f.demand_at(at)
}

/// The fitted line, in days relative to `now`.
struct Line {
    at_now: f64,
    slope: f64,
    residual_sd: f64,
    slope_se: f64,
    /// The one-sided 90 % quantile for this fit's degrees of freedom (0 with 2 points).
    t: f64,
}

/// The finite points of the series within `window_days` of its latest point.
fn usable_points(series: &[Point], window_days: u32) -> Vec<Point> {
    let finite: Vec<Point> = series.iter().copied().filter(|p| p.value.is_finite()).collect();
    let Some(latest) = finite.iter().map(|p| p.at).max() else { return finite };
    let from = latest.saturating_sub(i64::from(window_days).saturating_mul(86_400));
    finite.into_iter().filter(|p| p.at >= from).collect()
}

/// Least squares through the points; `None` when there is no line to draw (fewer than two
/// points, no spread in time, or numbers too large to square).
fn fit(points: &[Point], now: i64) -> Option<Line> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    // Days relative to `now`, so the intercept is the value at `now`; i128 keeps the
    // subtraction exact for any i64 pair.
    let day = |p: &Point| (i128::from(p.at) - i128::from(now)) as f64 / SECONDS_PER_DAY;
    let mean_x = points.iter().map(day).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.value).sum::<f64>() / n;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for p in points {
        let dx = day(p) - mean_x;
        sxx += dx * dx;
        sxy += dx * (p.value - mean_y);
    }
    if !(sxx.is_finite() && sxx > 0.0 && sxy.is_finite()) {
        return None;
    }
    let slope = sxy / sxx;
    let at_now = mean_y - slope * mean_x;
    let degrees = points.len() - 2;
    let residual_sd = if degrees == 0 {
        0.0
    } else {
        let ssr: f64 = points.iter().map(|p| (p.value - (at_now + slope * day(p))).powi(2)).sum();
        (ssr / degrees as f64).sqrt()
    };
    let line = Line { at_now, slope, residual_sd, slope_se: residual_sd / sxx.sqrt(), t: t_one_sided_90(degrees) };
    [line.at_now, line.slope, line.residual_sd, line.slope_se].iter().all(|v| v.is_finite()).then_some(line)
}

/// Days from a level growing by `slope` a day until it reaches `threshold`: 0 when it is
/// there already, `None` when it never gets there or the answer is not a finite number.
fn days_to_reach(level: f64, slope: f64, threshold: f64) -> Option<f64> {
    if level >= threshold {
        return Some(0.0);
    }
    if slope <= 0.0 {
        return None;
    }
    let days = (threshold - level) / slope;
    days.is_finite().then_some(days)
}

/// One-sided 90 % quantile of Student's t: a table up to 30 degrees of freedom, then the
/// first Cornish–Fisher term around the normal's 1.2816 (within 0.001 of the exact value).
/// 0 degrees of freedom means no scatter can be measured: no band.
fn t_one_sided_90(degrees: usize) -> f64 {
    const TABLE: [f64; 30] = [
        3.078, 1.886, 1.638, 1.533, 1.476, 1.440, 1.415, 1.397, 1.383, 1.372, 1.363, 1.356, 1.350, 1.345, 1.341, 1.337,
        1.333, 1.330, 1.328, 1.325, 1.323, 1.321, 1.319, 1.318, 1.316, 1.315, 1.314, 1.313, 1.311, 1.310,
    ];
    const Z: f64 = 1.2816;
    match degrees {
        0 => 0.0,
        d if d <= TABLE.len() => TABLE[d - 1],
        d => Z + (Z.powi(3) + Z) / (4.0 * d as f64),
    }
}

fn finite_or(v: f64, fallback: f64) -> f64 {
    if v.is_finite() { v } else { fallback }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const DAY: i64 = 86_400;
    const TB: f64 = 1e12;
    const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    /// A small linear congruential generator: the same noise on every run and machine.
    struct Lcg(u64);

    impl Lcg {
        /// Uniform in [-1, 1).
        fn next_signed(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        }
    }

    /// A year of daily storage use growing exactly 1 TB a month from 80 TB, with ±`noise`
    /// (a share of the level) pseudo-random scatter and a weekly pattern of ±1 %.
    fn noisy_year(seed: u64, noise: f64) -> Vec<Point> {
        let mut rng = Lcg(seed);
        (0..365)
            .map(|d| {
                let line = 80.0 * TB + TB * d as f64 / 30.44;
                let weekly = [0.0, -0.01, -0.005, 0.0, 0.005, 0.01, 0.008][d % 7];
                let value = line * (1.0 + weekly + noise * rng.next_signed());
                Point { at: START + d as i64 * DAY, value }
            })
            .collect()
    }

    fn line(values: &[f64]) -> Vec<Point> {
        values.iter().enumerate().map(|(i, v)| Point { at: START + i as i64 * DAY, value: *v }).collect()
    }

    #[test]
    fn a_noisy_terabyte_a_month_is_forecast_within_five_percent() {
        let now = START + 364 * DAY;
        let level_now = 80.0 * TB + TB * 364.0 / 30.44;
        let true_days = (135.0 * TB - level_now) / (TB / 30.44);
        for seed in 1..=20 {
            let f = forecast(&noisy_year(seed, 0.02), 135.0 * TB, now);
            let days = f.days_to_100.expect("growing use reaches capacity");
            let error = (days - true_days).abs() / true_days;
            assert!(error < 0.05, "seed {seed}: {days:.0} days, truth {true_days:.0} ({:.1} %)", error * 100.0);
            assert!((f.growth_per_month() / TB - 30.4375 / 30.44).abs() < 0.05, "seed {seed}: growth");
            let conservative = f.days_to_100_conservative.expect("band reaches capacity");
            assert!(conservative < days, "seed {seed}: the band is earlier than the line");
            assert!(conservative <= true_days, "seed {seed}: the band is not later than the truth");
            assert!(f.days_to_80.expect("80 %") < days);
        }
    }

    #[test]
    fn the_band_covers_about_nine_in_ten_days() {
        let series = noisy_year(7, 0.03);
        let f = forecast(&series, 135.0 * TB, START + 364 * DAY);
        let covered = series.iter().filter(|p| p.value <= f.demand_at(p.at).high).count();
        let share = covered as f64 / series.len() as f64;
        assert!((0.85..=0.97).contains(&share), "share under the band: {share}");
    }

    #[test]
    fn flat_and_falling_use_never_fills() {
        let flat = forecast(&line(&[50.0; 30]), 100.0, START + 29 * DAY);
        assert_eq!((flat.days_to_80, flat.days_to_100), (None, None));
        assert_eq!((flat.days_to_80_conservative, flat.days_to_100_conservative), (None, None));
        assert_eq!(flat.used, 50.0);
        let falling: Vec<f64> = (0..30).map(|i| 70.0 - i as f64).collect();
        let f = forecast(&line(&falling), 100.0, START + 29 * DAY);
        assert_eq!((f.days_to_80, f.days_to_100), (None, None));
        assert!(f.slope_per_day < 0.0);
    }

    #[test]
    fn use_already_over_a_threshold_is_zero_days() {
        let over: Vec<f64> = (0..10).map(|i| 101.0 + i as f64).collect();
        let f = forecast(&line(&over), 100.0, START + 9 * DAY);
        assert_eq!((f.days_to_80, f.days_to_100), (Some(0.0), Some(0.0)));
        assert_eq!(f.days_to_100_conservative, Some(0.0));
        // Over 80 % and falling: 80 % is reached (0 days), 100 % never is.
        let falling: Vec<f64> = (0..10).map(|i| 95.0 - i as f64).collect();
        let f = forecast(&line(&falling), 100.0, START + 9 * DAY);
        assert_eq!((f.days_to_80, f.days_to_100), (Some(0.0), None));
    }

    #[test]
    fn an_exact_line_gives_exact_dates() {
        // 40 + 1 a day for 11 days: 50 at `now`, 80 in 30 days, 100 in 50 days.
        let values: Vec<f64> = (0..=10).map(|i| 40.0 + i as f64).collect();
        let f = forecast(&line(&values), 100.0, START + 10 * DAY);
        assert!((f.used - 50.0).abs() < 1e-9 && (f.slope_per_day - 1.0).abs() < 1e-12);
        assert!((f.days_to_80.expect("80") - 30.0).abs() < 1e-9);
        assert!((f.days_to_100.expect("100") - 50.0).abs() < 1e-9);
        assert_eq!(f.days_to_80_conservative, f.days_to_80, "no scatter, no band");
        let d = f.demand_at(f.after_days(20.0));
        assert!((d.expected - 70.0).abs() < 1e-9 && (d.high - 70.0).abs() < 1e-9);
        // `now` later than the data: the line carries on.
        let later = forecast(&line(&values), 100.0, START + 20 * DAY);
        assert!((later.used - 60.0).abs() < 1e-9 && (later.days_to_80.expect("80") - 20.0).abs() < 1e-9);
    }

    #[test]
    fn too_little_data_gives_no_dates() {
        let cases: Vec<(&str, Vec<Point>, f64)> = vec![
            ("empty", vec![], 100.0),
            ("one point", line(&[50.0]), 100.0),
            ("same moment", vec![Point { at: START, value: 10.0 }, Point { at: START, value: 60.0 }], 100.0),
            ("nan values", line(&[f64::NAN, 10.0, f64::INFINITY]), 100.0),
            ("zero capacity", line(&[10.0, 20.0, 30.0]), 0.0),
            ("nan capacity", line(&[10.0, 20.0, 30.0]), f64::NAN),
        ];
        for (name, series, capacity) in cases {
            let f = forecast(&series, capacity, START + 5 * DAY);
            assert_eq!(
                [f.days_to_80, f.days_to_100, f.days_to_80_conservative, f.days_to_100_conservative],
                [None; 4],
                "{name}"
            );
            assert!(f.capacity.is_finite() && f.used.is_finite(), "{name}");
        }
        assert_eq!(forecast(&line(&[50.0]), 100.0, START).used, 50.0, "one point is still today's use");
    }

    #[test]
    fn non_finite_points_are_skipped_not_fatal() {
        let mut values: Vec<f64> = (0..=10).map(|i| 40.0 + i as f64).collect();
        values[3] = f64::NAN;
        values[7] = f64::NEG_INFINITY;
        let f = forecast(&line(&values), 100.0, START + 10 * DAY);
        assert_eq!(f.points, 9);
        assert!((f.days_to_100.expect("100") - 50.0).abs() < 1e-9);
    }

    #[test]
    fn only_the_window_is_fitted() {
        // Fast growth long ago, flat for the last year: the old growth must not count.
        let mut series: Vec<Point> = (0..200).map(|d| Point { at: START + d * DAY, value: d as f64 }).collect();
        series.extend((200..600).map(|d| Point { at: START + d * DAY, value: 200.0 }));
        let f = forecast(&series, 1000.0, START + 599 * DAY);
        assert_eq!(f.points, 366);
        assert_eq!(f.days_to_100, None);
        let all = forecast_window(&series, 1000.0, START + 599 * DAY, 10_000);
        assert!(all.slope_per_day > 0.0 && all.days_to_100.is_some());
    }

    #[test]
    fn few_points_get_a_wide_band() {
        let few = forecast(&line(&[10.0, 13.0, 12.0, 15.0]), 100.0, START + 3 * DAY);
        let t_few = (few.used_high - few.used) / residual_sd_of(&few, &[10.0, 13.0, 12.0, 15.0]);
        assert!((t_few - 1.886).abs() < 1e-9, "t with 2 degrees of freedom: {t_few}");
        assert!((t_one_sided_90(31) - 1.309).abs() < 0.002 && (t_one_sided_90(100_000) - 1.2816).abs() < 1e-4);
    }

    fn residual_sd_of(f: &Forecast, values: &[f64]) -> f64 {
        let n = values.len();
        let ssr: f64 = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x = (i as f64) - (n - 1) as f64;
                (v - (f.used + f.slope_per_day * x)).powi(2)
            })
            .sum();
        (ssr / (n - 2) as f64).sqrt()
    }

    proptest! {
        #[test]
        fn never_panics_nor_returns_nan(
            raw in prop::collection::vec(
                (any::<i64>(), prop_oneof![any::<f64>(), -1e15..1e15f64, Just(f64::NAN)]), 0..40),
            capacity in prop_oneof![any::<f64>(), 0.0..1e15f64],
            now in any::<i64>(),
            at in any::<i64>(),
        ) {
            let series: Vec<Point> = raw.into_iter().map(|(at, value)| Point { at, value }).collect();
            let f = forecast(&series, capacity, now);
            for days in [f.days_to_80, f.days_to_100, f.days_to_80_conservative, f.days_to_100_conservative]
                .into_iter()
                .flatten()
            {
                prop_assert!(days.is_finite() && days >= 0.0, "days {days}");
            }
            for v in [f.used, f.capacity, f.slope_per_day, f.used_high, f.slope_per_day_high] {
                prop_assert!(v.is_finite(), "{f:?}");
            }
            if let (Some(c), Some(e)) = (f.days_to_100_conservative, f.days_to_100) {
                prop_assert!(c <= e, "conservative {c} after expected {e}");
            }
            if let (Some(c), Some(e)) = (f.days_to_80_conservative, f.days_to_80) {
                prop_assert!(c <= e, "conservative {c} after expected {e}");
            }
            if f.days_to_100.is_some() {
                prop_assert!(f.days_to_100_conservative.is_some());
            }
            let d = f.demand_at(at);
            prop_assert!(d.expected.is_finite() && d.high.is_finite() && d.high >= d.expected);
        }

        #[test]
        fn conservative_is_never_later_on_growing_series(
            start in 0.0..1e14f64,
            per_day in 1e6..1e11f64,
            noise in prop::collection::vec(-1.0..1.0f64, 3..120),
            capacity in 1e12..1e15f64,
        ) {
            let series: Vec<Point> = noise
                .iter()
                .enumerate()
                .map(|(d, e)| Point { at: START + d as i64 * DAY, value: start + per_day * d as f64 + e * per_day * 5.0 })
                .collect();
            let f = forecast(&series, capacity, START + noise.len() as i64 * DAY);
            if let (Some(c), Some(e)) = (f.days_to_80_conservative, f.days_to_80) {
                prop_assert!(c <= e);
            }
        }
    }
}
