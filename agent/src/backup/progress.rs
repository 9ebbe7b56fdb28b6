//! Backup progress as `backup.progress` events. Each event is a durable report (an outbox
//! entry, fsynced), so they are throttled: at most one per [`PROGRESS_EVERY`] per repository,
//! and none for a backup that ends sooner.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use plugins::restic::BackupProgress;
use proto::v1::Event;

pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);
pub const EVENT_KIND: &str = "backup.progress";

/// Lets one update through per interval, counted from the start.
pub struct Throttle {
    last: Instant,
    every: Duration,
}

impl Throttle {
    pub fn starting(now: Instant, every: Duration) -> Throttle {
        Throttle { last: now, every }
    }

    /// True when an update may go out at `now` (and then counts it as sent).
    pub fn ready(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.last) < self.every {
            return false;
        }
        self.last = now;
        true
    }
}

/// The event for one progress reading of the backup into `repository`.
pub fn event(task_id: &str, system_plan: &str, repository: &str, progress: &BackupProgress) -> Event {
    let percent = (progress.percent_done * 100.0).clamp(0.0, 100.0).round();
    let fields = HashMap::from([
        ("task_id".to_string(), task_id.to_string()),
        ("repository".to_string(), repository.to_string()),
        ("percent".to_string(), format!("{percent:.0}")),
        ("bytes_done".to_string(), progress.bytes_done.to_string()),
        ("total_bytes".to_string(), progress.total_bytes.to_string()),
        ("files_done".to_string(), progress.files_done.to_string()),
    ]);
    Event {
        kind: EVENT_KIND.to_string(),
        message: format!("backup of {system_plan} to {repository}: {percent:.0}%"),
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_one_update_per_interval_and_none_in_the_first() {
        let start = Instant::now();
        let mut throttle = Throttle::starting(start, PROGRESS_EVERY);
        let at = |ms: u64| start + Duration::from_millis(ms);
        let sent: Vec<u64> = [0, 500, 1_999, 2_000, 2_100, 3_999, 4_000, 9_000, 9_001]
            .into_iter()
            .filter(|ms| throttle.ready(at(*ms)))
            .collect();
        assert_eq!(sent, vec![2_000, 4_000, 9_000]);
    }

    #[test]
    fn event_fields_are_the_documented_ones() {
        let progress = BackupProgress {
            percent_done: 0.4267,
            bytes_done: 10,
            total_bytes: 40,
            files_done: 3,
            ..BackupProgress::default()
        };
        let event = event("t9", "erp/nightly", "dr", &progress);
        assert_eq!(event.kind, "backup.progress");
        let mut names: Vec<&str> = event.fields.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["bytes_done", "files_done", "percent", "repository", "task_id", "total_bytes"]);
        assert_eq!(event.fields["percent"], "43");
        assert_eq!(event.fields["total_bytes"], "40");
    }
}
