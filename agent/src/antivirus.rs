//! Anti-malware facts and threat events, collected with every fact snapshot on a real machine
//! (not for simulated ones): the product's status from [`plugins::antivirus`], and the
//! detections since the last report (clamd's log, or KESL's `ThreatDetected` events), each an
//! event of kind `antivirus.threat`.
//!
//! State kept in the agent's state dir, so a restart neither forgets nor repeats:
//! - `antivirus.json`: `{"engine_seen": "clamav" | null, "threats_detected": N}`. Once the
//!   engine has been seen running here, an engine that does not answer has *stopped* and the
//!   host is degraded (a product installed but never started is a compliance finding of the
//!   `antimalware-running` control, not a heartbeat problem).
//! - `clamd-log.cursor`: where reading clamd's log stopped ([`plugins::antivirus::logtail`]).
//! - `kesl-events.cursor`: the last KESL event id reported ([`plugins::antivirus::kesl_events`]);
//!   on the first run the detections KESL already stored are history, not news.
//!
//! All are written only after the events are in the outbox ([`Watcher::committed`]), so a
//! detection is reported at least once; it is repeated only if the agent dies between the
//! outbox write and the cursor write.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use plugins::antivirus::kesl_events::{self, EventCursor, KeslEvents};
use plugins::antivirus::logtail::{Cursor, LogTail, clamd_log};
use plugins::antivirus::{AvConfig, AvStatus, Product};
use proto::v1::{Antivirus, Event};

/// The event kind of a detection.
pub const THREAT_EVENT: &str = "antivirus.threat";

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Kept {
    engine_seen: Option<String>,
    threats_detected: u64,
}

/// Reads the product and its log each snapshot; remembers what it must across restarts.
#[derive(Debug)]
pub struct Watcher {
    config: AvConfig,
    state_file: PathBuf,
    cursor_file: PathBuf,
    state_dir: PathBuf,
    kept: Kept,
}

/// One reading: the facts, the new detections as events, and what to remember once the events
/// are stored.
#[derive(Debug)]
pub struct Reading {
    pub facts: Antivirus,
    pub events: Vec<Event>,
    commit: Option<Position>,
    kept: Kept,
}

/// Where reading detections stopped, to record once they are stored.
#[derive(Debug)]
enum Position {
    ClamdLog(LogTail, Cursor),
    KeslEvents(KeslEvents, EventCursor),
}

impl Watcher {
    pub fn new(config: AvConfig, state_dir: &Path) -> Self {
        let state_file = state_dir.join("antivirus.json");
        let kept = std::fs::read_to_string(&state_file)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Self {
            config,
            state_file,
            cursor_file: state_dir.join("clamd-log.cursor"),
            state_dir: state_dir.to_path_buf(),
            kept,
        }
    }

    /// Reads the product now (blocking: a socket or a command, bounded by the configured
    /// timeout) and its log's new detections.
    pub fn read(&self, now_unix: i64) -> Reading {
        let status = plugins::antivirus::collect(&self.config, now_unix);
        let mut kept = self.kept.clone();
        let product = status.product.map(Product::as_str);
        if status.engine_running {
            kept.engine_seen = product.map(str::to_owned);
        } else if product.is_none() {
            kept.engine_seen = None;
        }
        let mut events = Vec::new();
        let mut commit = None;
        if status.product == Some(Product::Clamav)
            && let Some(log) = clamd_log(&self.config.clamd_conf)
        {
            let tail = LogTail::new(log, &self.cursor_file);
            match tail.poll() {
                Ok((found, cursor)) => {
                    for d in found {
                        events.push(Event {
                            kind: THREAT_EVENT.to_owned(),
                            message: format!("clamav found {} in {}", d.signature, d.path),
                            fields: HashMap::from([
                                ("product".to_owned(), "clamav".to_owned()),
                                ("signature".to_owned(), d.signature),
                                ("path".to_owned(), d.path),
                                ("extended_info".to_owned(), d.extended_info),
                                ("logged_at".to_owned(), d.logged_at),
                            ]),
                        });
                    }
                    commit = Some(Position::ClamdLog(tail, cursor));
                }
                Err(error) => tracing::warn!(%error, "cannot read clamd's log for detections"),
            }
        }
        if status.product == Some(Product::Kesl) && status.engine_running {
            let reader = KeslEvents::new(
                &self.config.kesl_control,
                kesl_events::cursor_file(&self.state_dir),
                self.config.timeout(),
            );
            match reader.poll() {
                Ok((found, cursor)) => {
                    events.extend(found.into_iter().map(kesl_event));
                    commit = Some(Position::KeslEvents(reader, cursor));
                }
                Err(error) => tracing::warn!(%error, "cannot read Kaspersky's events for detections"),
            }
        }
        kept.threats_detected = kept.threats_detected.saturating_add(events.len() as u64);
        let expected = product.is_some() && kept.engine_seen.as_deref() == product;
        Reading { facts: to_proto(&status, expected, kept.threats_detected), events, commit, kept }
    }

    /// Remembers a reading whose events are stored: the log cursor and the kept state.
    pub fn committed(&mut self, reading: Reading) {
        match &reading.commit {
            Some(Position::ClamdLog(tail, cursor)) => {
                if let Err(error) = tail.commit(cursor) {
                    tracing::warn!(%error, "cannot record where clamd's log was read to");
                }
            }
            Some(Position::KeslEvents(reader, cursor)) => {
                if let Err(error) = reader.commit(cursor) {
                    tracing::warn!(%error, "cannot record the last Kaspersky event reported");
                }
            }
            None => {}
        }
        if reading.kept != self.kept {
            let text = serde_json::to_vec(&reading.kept).unwrap_or_default();
            if let Err(error) = crate::state::write_file_atomic(&self.state_file, &text, 0o600) {
                tracing::warn!(%error, path = %self.state_file.display(), "cannot record anti-malware state");
            }
            self.kept = reading.kept;
        }
    }
}

/// A KESL detection as an `antivirus.threat` event: the fields every detection has
/// (`product`, `signature`, `path`, `logged_at`) and KESL's own.
fn kesl_event(t: kesl_events::Threat) -> Event {
    Event {
        kind: THREAT_EVENT.to_owned(),
        message: format!("kesl found {} in {}", t.detect_name, t.file_name),
        fields: HashMap::from([
            ("product".to_owned(), "kesl".to_owned()),
            ("signature".to_owned(), t.detect_name),
            ("path".to_owned(), t.file_name),
            ("logged_at".to_owned(), t.date),
            ("event_id".to_owned(), t.event_id.to_string()),
            ("danger_level".to_owned(), t.danger_level),
            ("object_name".to_owned(), t.object_name),
            ("task_name".to_owned(), t.task_name),
            ("task_type".to_owned(), t.task_type),
            ("file_owner".to_owned(), t.file_owner),
        ]),
    }
}

fn to_proto(s: &AvStatus, engine_expected: bool, threats_detected: u64) -> Antivirus {
    Antivirus {
        product: s.product.map(Product::as_str).unwrap_or_default().to_owned(),
        version: s.version.clone(),
        engine_running: s.engine_running,
        engine_expected,
        realtime_protection: match s.realtime_protection {
            Some(true) => "on",
            Some(false) => "off",
            None => "",
        }
        .to_owned(),
        signature_version: s.signature_version.clone(),
        signature_time_unix: s.signature_time_unix.unwrap_or(0),
        signature_time_source: s.signature_time_source.clone(),
        last_full_scan_unix: s.last_full_scan_unix.unwrap_or(0),
        threats_detected,
        detail: s.detail.clone(),
    }
}

/// The heartbeat problem for these facts: an engine this agent has seen running that no longer
/// runs.
pub fn problem(av: &Antivirus) -> Option<String> {
    (!av.product.is_empty() && av.engine_expected && !av.engine_running).then(|| {
        let why = if av.detail.is_empty() { String::new() } else { format!(" ({})", av.detail) };
        format!("anti-malware engine {} has stopped{why}", av.product)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn a_stopped_engine_is_a_problem_only_once_seen_running() {
        let mut av = Antivirus { product: "clamav".into(), engine_running: false, ..Antivirus::default() };
        assert_eq!(problem(&av), None, "installed, never seen running: a finding, not degraded");
        av.engine_expected = true;
        av.detail = "clamd is not running: cannot connect".into();
        assert_eq!(
            problem(&av).as_deref(),
            Some("anti-malware engine clamav has stopped (clamd is not running: cannot connect)")
        );
        av.engine_running = true;
        assert_eq!(problem(&av), None);
        assert_eq!(problem(&Antivirus::default()), None);
    }

    /// clamd.conf pointing at a socket nobody serves, and a log the test writes as clamd would.
    fn fake_clamav(dir: &Path) -> (AvConfig, PathBuf) {
        let log = dir.join("clamd.log");
        let conf = dir.join("clamd.conf");
        std::fs::write(&conf, format!("LocalSocket {}\nLogFile {}\n", dir.join("no.sock").display(), log.display()))
            .unwrap();
        (AvConfig { clamd_conf: conf, timeout_ms: 200, ..AvConfig::default() }, log)
    }

    #[test]
    fn detections_become_events_once_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let (config, log) = fake_clamav(dir.path());
        std::fs::write(&log, "/old: Old.Sig FOUND\n").unwrap();
        let mut w = Watcher::new(config.clone(), dir.path());
        let first = w.read(0);
        assert!(first.events.is_empty(), "history before the agent watched is not news");
        assert_eq!(first.facts.product, "clamav");
        w.committed(first);
        std::fs::write(&log, "/old: Old.Sig FOUND\nThu Nov 26 08:27:51 2026 -> /srv/x.doc: Bad.Sig FOUND\n").unwrap();
        let r = w.read(0);
        assert_eq!(r.events.len(), 1);
        assert_eq!(r.events[0].kind, THREAT_EVENT);
        assert_eq!(r.events[0].fields["signature"], "Bad.Sig");
        assert_eq!(r.events[0].fields["path"], "/srv/x.doc");
        assert_eq!(r.facts.threats_detected, 1);
        w.committed(r);
        // Restarted: nothing new, the count kept.
        let again = Watcher::new(config, dir.path()).read(0);
        assert!(again.events.is_empty());
        assert_eq!(again.facts.threats_detected, 1);
    }

    #[test]
    fn the_engine_seen_running_is_remembered_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let (config, _) = fake_clamav(dir.path());
        std::fs::write(dir.path().join("antivirus.json"), r#"{"engine_seen":"clamav","threats_detected":0}"#).unwrap();
        let r = Watcher::new(config, dir.path()).read(0);
        assert!(!r.facts.engine_running);
        assert!(r.facts.engine_expected);
        assert!(problem(&r.facts).is_some_and(|p| p.starts_with("anti-malware engine clamav has stopped")));
    }

    /// A `kesl-control` stand-in: `--app-info` prints the recorded sample of a protected host,
    /// `-E --query` the event sample named in the file `sample`.
    fn fake_kesl(dir: &Path) -> AvConfig {
        use std::os::unix::fs::PermissionsExt;
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/tests/fixtures/kesl");
        let control = dir.join("kesl-control");
        std::fs::write(
            &control,
            format!(
                "#!/bin/sh\ncase \"$1\" in\n--app-info) cat '{}';;\n-E) cat \"$(cat '{}/sample')\";;\n*) exit 2;;\nesac\n",
                fixtures.join("app-info-protected.txt").display(),
                dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&control, std::fs::Permissions::from_mode(0o755)).unwrap();
        AvConfig { clamd_conf: dir.join("no-clamd.conf"), kesl_control: control, timeout_ms: 5000 }
    }

    #[test]
    fn kesl_detections_become_events_once_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/tests/fixtures/kesl");
        let show =
            |name: &str| std::fs::write(dir.path().join("sample"), fixtures.join(name).display().to_string()).unwrap();
        let config = fake_kesl(dir.path());
        show("events-threats.txt");
        let mut w = Watcher::new(config.clone(), dir.path());
        let first = w.read(0);
        assert_eq!(first.facts.product, "kesl");
        assert!(first.events.is_empty(), "detections stored before the agent watched are not news");
        w.committed(first);

        show("events-threats-more.txt");
        let r = w.read(0);
        assert_eq!(r.events.len(), 1);
        let e = &r.events[0];
        assert_eq!(e.kind, THREAT_EVENT);
        assert_eq!(e.fields["product"], "kesl");
        assert_eq!(e.fields["signature"], "EICAR-Test-File");
        assert_eq!(e.fields["path"], "/srv/share/cong_van_so_14.doc");
        assert_eq!(e.fields["logged_at"], "2026-11-27 08:41:05");
        assert_eq!(e.fields["event_id"], "2690");
        assert_eq!(e.fields["danger_level"], "Critical");
        assert_eq!(r.facts.threats_detected, 1);
        // The agent dies before the event is stored: a restarted agent reports it again.
        drop(r);
        let mut w = Watcher::new(config.clone(), dir.path());
        let r = w.read(0);
        assert_eq!(r.events.len(), 1);
        w.committed(r);
        // Stored: a restarted agent reports nothing twice, and keeps the count.
        let again = Watcher::new(config, dir.path()).read(0);
        assert!(again.events.is_empty());
        assert_eq!(again.facts.threats_detected, 1);
        let saved = std::fs::read_to_string(dir.path().join("kesl-events.cursor")).unwrap();
        assert_eq!(saved, r#"{"event_id":2690}"#);
    }

    #[test]
    fn kesl_events_that_cannot_be_read_keep_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let config = fake_kesl(dir.path());
        std::fs::write(dir.path().join("kesl-events.cursor"), r#"{"event_id":2671}"#).unwrap();
        std::fs::write(dir.path().join("sample"), "/nonexistent").unwrap();
        let mut w = Watcher::new(config, dir.path());
        let r = w.read(0);
        assert!(r.events.is_empty());
        assert!(r.facts.engine_running);
        w.committed(r);
        let saved = std::fs::read_to_string(dir.path().join("kesl-events.cursor")).unwrap();
        assert_eq!(saved, r#"{"event_id":2671}"#);
    }
}
