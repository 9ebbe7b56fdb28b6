//! What state a host is in, decided from what its agent last said and when.

use serde::Serialize;

/// A host's state as `hosts list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum HostState {
    Connected,
    Degraded,
    Down,
    NeverEnrolled,
}

impl HostState {
    pub const ALL: [HostState; 4] =
        [HostState::Connected, HostState::Degraded, HostState::Down, HostState::NeverEnrolled];

    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Connected => "connected",
            HostState::Degraded => "degraded",
            HostState::Down => "down",
            HostState::NeverEnrolled => "never-enrolled",
        }
    }
}

/// Pure: `down` once `down_after_ms` have passed since the last message from the host's
/// agent; `degraded` while its latest heartbeat names problems; `never-enrolled` before any
/// agent enrolled for it.
pub fn state(enrolled: bool, last_seen: Option<i64>, problems: &[String], now: i64, down_after_ms: i64) -> HostState {
    if !enrolled {
        return HostState::NeverEnrolled;
    }
    match last_seen {
        Some(t) if now - t <= down_after_ms => {
            if problems.is_empty() {
                HostState::Connected
            } else {
                HostState::Degraded
            }
        }
        _ => HostState::Down,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_table() {
        let p = vec!["filesystem / is 97% full".to_string()];
        // (enrolled, last_seen, problems, now, expected)
        type Case<'a> = (bool, Option<i64>, &'a [String], i64, HostState);
        let cases: &[Case<'_>] = &[
            (false, None, &[], 0, HostState::NeverEnrolled),
            (false, Some(100), &[], 100, HostState::NeverEnrolled),
            (true, None, &[], 0, HostState::Down),
            (true, Some(1_000), &[], 1_000, HostState::Connected),
            (true, Some(1_000), &[], 16_000, HostState::Connected),
            (true, Some(1_000), &[], 16_001, HostState::Down),
            (true, Some(1_000), &p, 2_000, HostState::Degraded),
            (true, Some(1_000), &p, 20_000, HostState::Down),
        ];
        for (enrolled, seen, problems, now, want) in cases {
            assert_eq!(state(*enrolled, *seen, problems, *now, 15_000), *want, "{enrolled} {seen:?} {now}");
        }
    }
}
