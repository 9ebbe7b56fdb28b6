//! The fault schedule of `mangrove testbed chaos`: a pure function of the seed, the hosts and
//! the fault count, so that a seed names a run and the same seed replays it.
//!
//! Faults start spread over the run and last a few seconds each, so several are in force at
//! once (on different hosts). A host has at most one fault at a time and the partition is
//! one at a time, as planned; a start finding every host taken moves to when one is free.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::faults::{self, Fault};
use crate::layout::TestbedError;

/// What a planned fault does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    Partition,
    /// SIGKILL the agent: instantaneous, nothing to undo.
    Kill,
    Stop,
    Pause,
    Clock {
        offset_seconds: i64,
    },
    DiskFull,
    Latency {
        delay_ms: u64,
    },
}

impl Action {
    /// The kind, as `testbed fault` and the chaos report name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Partition => "partition",
            Action::Kill => "kill",
            Action::Stop => "stop",
            Action::Pause => "pause",
            Action::Clock { .. } => "clock",
            Action::DiskFull => "disk-full",
            Action::Latency { .. } => "latency",
        }
    }
}

/// One fault of the schedule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Planned {
    pub index: usize,
    /// Milliseconds from the start of the run.
    pub at_ms: u64,
    /// How long it stays in force before it is undone.
    pub hold_ms: u64,
    /// The host, for all but the partition.
    pub host: Option<String>,
    pub action: Action,
}

/// Weights of the fault kinds, in percent.
const WEIGHTS: &[(u32, &str)] =
    &[(18, "kill"), (14, "stop"), (14, "pause"), (12, "clock"), (14, "disk-full"), (16, "latency"), (12, "partition")];

const HOLD_MS: std::ops::Range<u64> = 2_000..8_000;
/// After a fault is undone its host is left alone this long, so that faults on a host do not
/// merge into one long outage.
const REST_MS: u64 = 1_000;

fn pick_kind(rng: &mut StdRng) -> &'static str {
    let mut r = rng.random_range(0..WEIGHTS.iter().map(|w| w.0).sum::<u32>());
    for (w, k) in WEIGHTS {
        if r < *w {
            return k;
        }
        r -= w;
    }
    "kill"
}

/// The schedule of `count` faults over `duration` on `hosts`.
pub fn plan(seed: u64, hosts: &[String], count: usize, duration: Duration) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let span = (duration.as_millis() as u64).max(1);
    let slot = (span / count.max(1) as u64).max(1);
    let mut busy_until = vec![0u64; hosts.len()];
    let mut partition_until = 0u64;
    let mut out = Vec::with_capacity(count);
    for index in 0..count {
        let mut at = index as u64 * slot + rng.random_range(0..slot);
        let kind = pick_kind(&mut rng);
        let hold = if kind == "kill" { 0 } else { rng.random_range(HOLD_MS) };
        if kind == "partition" || hosts.is_empty() {
            at = at.max(partition_until);
            partition_until = at + hold + REST_MS;
            out.push(Planned { index, at_ms: at, hold_ms: hold, host: None, action: Action::Partition });
            continue;
        }
        let free: Vec<usize> = (0..hosts.len()).filter(|&h| busy_until[h] <= at).collect();
        let h = if free.is_empty() {
            // Every host is taken: wait for the first to be free.
            let (h, until) =
                busy_until.iter().enumerate().min_by_key(|(_, u)| **u).map(|(h, u)| (h, *u)).unwrap_or((0, at));
            at = until;
            h
        } else {
            free[rng.random_range(0..free.len())]
        };
        busy_until[h] = at + hold + REST_MS;
        let action = match kind {
            "kill" => Action::Kill,
            "stop" => Action::Stop,
            "pause" => Action::Pause,
            "clock" => {
                let secs = rng.random_range(30..=600i64);
                Action::Clock { offset_seconds: if rng.random_bool(0.5) { secs } else { -secs } }
            }
            "disk-full" => Action::DiskFull,
            _ => Action::Latency { delay_ms: rng.random_range(100..=1500) },
        };
        out.push(Planned { index, at_ms: at, hold_ms: hold, host: Some(hosts[h].clone()), action });
    }
    out.sort_by_key(|p| (p.at_ms, p.index));
    out
}

/// Applies a planned fault; returns what to undo later (`None` for a kill).
pub fn apply(dir: &std::path::Path, p: &Planned) -> Result<Option<Fault>, TestbedError> {
    let host = p.host.as_deref().unwrap_or_default();
    Ok(Some(match &p.action {
        Action::Partition => faults::partition(dir, "dc", "dr")?,
        Action::Kill => {
            faults::kill_agent(dir, host)?;
            return Ok(None);
        }
        Action::Stop => faults::host_fault(dir, host, false)?,
        Action::Pause => faults::host_fault(dir, host, true)?,
        Action::Clock { offset_seconds } => faults::clock(dir, host, &format!("{offset_seconds:+}s"))?,
        Action::DiskFull => faults::disk_full(dir, host)?,
        Action::Latency { delay_ms } => faults::latency(dir, host, &format!("{delay_ms}ms"))?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("h{i}")).collect()
    }

    #[test]
    fn a_seed_names_one_schedule() {
        let a = plan(7, &hosts(15), 1000, Duration::from_secs(1000));
        assert_eq!(a, plan(7, &hosts(15), 1000, Duration::from_secs(1000)));
        assert_ne!(a, plan(8, &hosts(15), 1000, Duration::from_secs(1000)));
        assert_eq!(a.len(), 1000);
    }

    #[test]
    fn faults_overlap_across_hosts_but_never_on_one() {
        let p = plan(7, &hosts(15), 1000, Duration::from_secs(1000));
        for (i, a) in p.iter().enumerate() {
            for b in &p[i + 1..] {
                if b.at_ms >= a.at_ms + a.hold_ms + REST_MS {
                    break;
                }
                assert!(a.host != b.host, "{a:?} overlaps {b:?}");
            }
        }
        let overlapping = p.windows(2).filter(|w| w[1].at_ms < w[0].at_ms + w[0].hold_ms).count();
        assert!(overlapping > 100, "faults should overlap in time; {overlapping} did");
        for kind in ["partition", "kill", "stop", "pause", "clock", "disk-full", "latency"] {
            let n = p.iter().filter(|f| f.action.kind() == kind).count();
            assert!(n > 50, "{kind}: only {n} of 1000");
        }
    }
}
