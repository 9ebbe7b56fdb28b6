//! Threat detections of Kaspersky Endpoint Security for Linux, from its event storage through
//! the documented query command: `kesl-control -E --query "<field> <operator> '<value>' [and …]"`.
//!
//! Each event prints as `Field=value` lines; the vendor's example of a detection (KESL help,
//! "Events and reporting"):
//! `EventType=ThreatDetected`, `EventId=2671`, `Initiator=Product`, `Date=2020-04-30 17:17:17`,
//! `DangerLevel=Critical`, `FileName=/root/eicar.com.txt`, `ObjectName=File`,
//! `TaskName=File_Monitoring`, `RuntimeTaskId=2`, `TaskId=1`, `DetectName=EICAR-Test-File`,
//! `TaskType=OAS`, `FileOwner=root`. An `EventType=` line starts a new event, so the parser does
//! not depend on how events are separated (blank lines, inferred). File paths are kept as KESL
//! prints them (it escapes control characters and replaces invalid UTF-8 with `?`).
//!
//! **Position.** The last reported `EventId` is kept in a small JSON file (`{"event_id": N}`)
//! that the caller commits ([`KeslEvents::commit`]) only after the detections are stored, so a
//! restart neither loses nor (outside the instant between the two writes) repeats one. The
//! query asks for `EventId > 'N'` (the `>` operator is inferred from the documented
//! "comparison operator"); the ids are filtered again here, so a KESL that ignores that part
//! still reports nothing twice. With no position yet (first run), the detections already stored
//! are history: the position becomes the highest id among them and nothing is reported.
//! Known limit: if KESL's event storage starts over (a reinstall), its ids restart below the
//! kept position and its detections go unreported until they pass it; removing
//! `kesl-events.cursor` from the agent's state dir makes the next run a first run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::AvError;

/// The most output read from one event query (KESL keeps up to 500,000 events; a first run on a
/// host with a long history of detections reads them all once).
pub const MAX_EVENTS_OUTPUT: u64 = 16 * 1024 * 1024;

/// One `ThreatDetected` event.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Threat {
    /// `EventId`: increases with each event stored.
    pub event_id: u64,
    /// `Date` as printed (e.g. `2020-04-30 17:17:17`).
    pub date: String,
    /// `DetectName`: the threat's name (e.g. `EICAR-Test-File`).
    pub detect_name: String,
    /// `FileName`: the infected object's path, as KESL prints it.
    pub file_name: String,
    /// `DangerLevel` (`Critical`, `High`, …).
    pub danger_level: String,
    /// `ObjectName` (`File`, …).
    pub object_name: String,
    /// `TaskName` (`File_Monitoring`, `Scan_My_Computer`, …).
    pub task_name: String,
    /// `TaskType` (`OAS` on access, `ODS` on demand, …).
    pub task_type: String,
    /// `FileOwner`.
    pub file_owner: String,
}

/// Parses `kesl-control -E --query` output into its `ThreatDetected` events (others skipped).
/// Never fails: lines that are not `Field=value` are skipped, an event without a numeric
/// `EventId` is dropped.
pub fn parse_events(text: &str) -> Vec<Threat> {
    let mut threats = Vec::new();
    // The event being read: whether it is a detection, and its id.
    let mut current: Option<(bool, Option<u64>, Threat)> = None;
    let mut finish = |current: Option<(bool, Option<u64>, Threat)>| {
        if let Some((true, Some(id), mut t)) = current {
            t.event_id = id;
            threats.push(t);
        }
    };
    for line in text.lines() {
        let Some((field, value)) = line.split_once('=') else { continue };
        let (field, value) = (field.trim(), value.trim_end_matches('\r').trim());
        if field.eq_ignore_ascii_case("EventType") {
            finish(current.take());
            current = Some((value.eq_ignore_ascii_case("ThreatDetected"), None, Threat::default()));
            continue;
        }
        let Some((_, id, t)) = current.as_mut() else { continue };
        let value = value.to_owned();
        match field.to_ascii_lowercase().as_str() {
            "eventid" => *id = value.parse().ok(),
            "date" => t.date = value,
            "detectname" => t.detect_name = value,
            "filename" => t.file_name = value,
            "dangerlevel" => t.danger_level = value,
            "objectname" => t.object_name = value,
            "taskname" => t.task_name = value,
            "tasktype" => t.task_type = value,
            "fileowner" => t.file_owner = value,
            _ => {}
        }
    }
    finish(current);
    threats
}

/// The last event id reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventCursor {
    pub event_id: u64,
}

/// The query for the detections after `after` (all of them for `None`).
pub fn query(after: Option<u64>) -> String {
    match after {
        Some(id) => format!("EventType == 'ThreatDetected' and EventId > '{id}'"),
        None => "EventType == 'ThreatDetected'".to_owned(),
    }
}

/// The detections in `threats` after the saved position, in id order, and the position after
/// them. With no saved position (first run), none: what is stored is history.
pub fn after(saved: Option<EventCursor>, mut threats: Vec<Threat>) -> (Vec<Threat>, EventCursor) {
    let newest = threats.iter().map(|t| t.event_id).max();
    let Some(saved) = saved else {
        return (Vec::new(), EventCursor { event_id: newest.unwrap_or(0) });
    };
    threats.retain(|t| t.event_id > saved.event_id);
    threats.sort_by_key(|t| t.event_id);
    threats.dedup_by_key(|t| t.event_id);
    (threats, EventCursor { event_id: newest.unwrap_or(0).max(saved.event_id) })
}

/// Reads new detections through `kesl-control`, remembering the position in `cursor_file`.
#[derive(Debug, Clone)]
pub struct KeslEvents {
    pub control: PathBuf,
    pub cursor_file: PathBuf,
    pub timeout: Duration,
}

impl KeslEvents {
    pub fn new(control: impl Into<PathBuf>, cursor_file: impl Into<PathBuf>, timeout: Duration) -> Self {
        Self { control: control.into(), cursor_file: cursor_file.into(), timeout }
    }

    /// The committed position; `None` before the first commit (or if the file is unreadable or
    /// not a position, which is then treated as a first run).
    pub fn saved(&self) -> Option<EventCursor> {
        let text = std::fs::read_to_string(&self.cursor_file).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The detections since the committed position, and the position after them (commit it once
    /// they are stored). Fails when `kesl-control` does not answer; the position is then kept.
    pub fn poll(&self) -> Result<(Vec<Threat>, EventCursor), AvError> {
        let saved = self.saved();
        let q = query(saved.map(|c| c.event_id));
        let text = super::kesl::run_limited(&self.control, &["-E", "--query", &q], self.timeout, MAX_EVENTS_OUTPUT)?;
        Ok(after(saved, parse_events(&text)))
    }

    /// Stores `cursor` durably.
    pub fn commit(&self, cursor: &EventCursor) -> Result<(), AvError> {
        super::logtail::write_json_durably(&self.cursor_file, cursor)
    }
}

/// Where the position is kept in a state dir: `kesl-events.cursor`.
pub fn cursor_file(state_dir: &Path) -> PathBuf {
    state_dir.join("kesl-events.cursor")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn events_in_either_layout_and_only_detections() {
        let text = "EventType=ThreatDetected\nEventId=7\nDate=2026-11-27 08:00:00\nDetectName=X\nFileName=/a=b\n\
                    EventType=UpdateCompleted\nEventId=8\nDetectName=not-a-threat\n\n\
                    EventType=ThreatDetected\n\nEventId=9\n\nDetectName=Y\n\nFileName=/c\n\n\
                    EventType=ThreatDetected\nEventId=not-a-number\nDetectName=Z\n";
        let threats = parse_events(text);
        assert_eq!(
            threats.iter().map(|t| (t.event_id, t.detect_name.as_str())).collect::<Vec<_>>(),
            [(7, "X"), (9, "Y")]
        );
        assert_eq!(threats[0].file_name, "/a=b");
        assert_eq!(threats[0].date, "2026-11-27 08:00:00");
        assert!(parse_events("garbage\n=\n==\nEventId=3\n").is_empty());
    }

    #[test]
    fn position_starts_at_now_then_moves_past_what_was_reported() {
        let t = |id| Threat { event_id: id, ..Threat::default() };
        assert_eq!(after(None, vec![t(5), t(3)]), (Vec::new(), EventCursor { event_id: 5 }));
        assert_eq!(after(None, Vec::new()), (Vec::new(), EventCursor { event_id: 0 }));
        let (new, cursor) = after(Some(EventCursor { event_id: 4 }), vec![t(6), t(3), t(5), t(6)]);
        assert_eq!(new.iter().map(|t| t.event_id).collect::<Vec<_>>(), [5, 6]);
        assert_eq!(cursor.event_id, 6);
        // Nothing new: the position stays.
        assert_eq!(after(Some(EventCursor { event_id: 9 }), vec![t(2)]), (Vec::new(), EventCursor { event_id: 9 }));
        assert_eq!(query(Some(9)), "EventType == 'ThreatDetected' and EventId > '9'");
    }
}
