//! Threat detections from clamd's log (`LogFile` in `clamd.conf`), read from where the last
//! read stopped.
//!
//! clamd logs each detection as `<path>: <signature> FOUND`, prefixed with
//! `<ctime> -> ` when `LogTime` is on, the signature followed by `(<md5>:<size>)` when
//! `ExtendedDetectionInfo` is on ([`parse_found_line`]).
//!
//! **Cursor.** Where reading stopped is kept in a small JSON file (`{"dev", "ino", "offset"}`)
//! that the caller commits ([`LogTail::commit`]) only after the detections are safely stored
//! (the agent: in its outbox), so a restart neither loses nor — outside the instant between the
//! two writes — repeats a detection. Only complete lines are consumed.
//!
//! **Decisions.** With no cursor yet (first run), reading starts at the log's current end:
//! history from before the agent watched is not reported as new. A log that is replaced
//! (another inode) or shorter than the cursor (truncated, `copytruncate` rotation) is read from
//! its start (a log truncated and refilled past the cursor between two polls cannot be told
//! from one that grew, and is read from the cursor). One poll reads at most [`MAX_READ`] bytes; the rest waits for the next poll.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::AvError;

/// The most read from the log in one poll.
pub const MAX_READ: u64 = 1024 * 1024;

/// One detection as clamd logged it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Detection {
    /// The scanned file.
    pub path: String,
    /// The signature that matched (e.g. `Mangrove.Test.Sig-1.UNOFFICIAL`).
    pub signature: String,
    /// With `ExtendedDetectionInfo yes` (Debian's default), clamd adds `(<md5>:<size>)` of the
    /// matched file to the name: that text, without its parentheses; empty otherwise.
    pub extended_info: String,
    /// The log line's time text (`LogTime yes`), empty otherwise.
    pub logged_at: String,
}

/// Parses one clamd log line; `Some` only for a detection (`… FOUND`).
pub fn parse_found_line(line: &str) -> Option<Detection> {
    let line = line.trim_end_matches(['\r', '\n']);
    let body = line.strip_suffix(" FOUND")?;
    let (logged_at, body) = match body.split_once(" -> ") {
        // `LogTime yes`: a ctime prefix. A path may itself contain " -> "; only a prefix that
        // parses as a time is taken as one.
        Some((prefix, rest)) if super::clamav::parse_ctime(prefix).is_some() => (prefix.trim().to_owned(), rest),
        _ => (String::new(), body),
    };
    let (path, signature) = body.rsplit_once(": ")?;
    let signature = signature.trim();
    let (signature, extended_info) = match signature.strip_suffix(')').and_then(|s| s.split_once('(')) {
        Some((name, info)) => (name, info),
        None => (signature, ""),
    };
    if path.is_empty() || signature.is_empty() || signature.contains(char::is_whitespace) {
        return None;
    }
    Some(Detection {
        path: path.to_owned(),
        signature: signature.to_owned(),
        extended_info: extended_info.to_owned(),
        logged_at,
    })
}

/// Where reading stopped: the log file's identity and the byte offset after the last complete
/// line read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
}

/// Reads new detections from a log, remembering where it stopped in `cursor_file`.
#[derive(Debug, Clone)]
pub struct LogTail {
    pub log: PathBuf,
    pub cursor_file: PathBuf,
}

impl LogTail {
    pub fn new(log: impl Into<PathBuf>, cursor_file: impl Into<PathBuf>) -> Self {
        Self { log: log.into(), cursor_file: cursor_file.into() }
    }

    /// The committed cursor; `None` before the first commit (or if the file is unreadable or not
    /// a cursor, which is then treated as a first run).
    pub fn saved(&self) -> Option<Cursor> {
        let text = std::fs::read_to_string(&self.cursor_file).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The detections logged since the committed cursor, and the cursor after them (commit it
    /// once they are stored). A missing log yields nothing (and a cursor that makes the log,
    /// once it appears, be read from its start).
    pub fn poll(&self) -> Result<(Vec<Detection>, Cursor), AvError> {
        let read_err = |source| AvError::Read { path: self.log.display().to_string(), source };
        let mut file = match std::fs::File::open(&self.log) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Cursor::default())),
            Err(e) => return Err(read_err(e)),
        };
        let meta = file.metadata().map_err(read_err)?;
        let (dev, ino, len) = (meta.dev(), meta.ino(), meta.len());
        let start = match self.saved() {
            None => return Ok((Vec::new(), Cursor { dev, ino, offset: len })),
            Some(c) if c.dev == dev && c.ino == ino && c.offset <= len => c.offset,
            Some(_) => 0,
        };
        file.seek(SeekFrom::Start(start)).map_err(read_err)?;
        let mut buf = Vec::new();
        file.take(MAX_READ).read_to_end(&mut buf).map_err(read_err)?;
        let consumed = match buf.iter().rposition(|&b| b == b'\n') {
            Some(last) => last + 1,
            // A full buffer with no newline is not a clamd log line: skip it.
            None if buf.len() as u64 >= MAX_READ => buf.len(),
            None => 0,
        };
        let detections =
            String::from_utf8_lossy(&buf[..consumed]).lines().filter_map(parse_found_line).collect::<Vec<_>>();
        Ok((detections, Cursor { dev, ino, offset: start + consumed as u64 }))
    }

    /// Stores `cursor` durably (written to a temporary file, synced, renamed over the old one).
    pub fn commit(&self, cursor: &Cursor) -> Result<(), AvError> {
        write_json_durably(&self.cursor_file, cursor)
    }
}

/// Writes `value` as JSON to `path` durably: to a temporary file beside it, synced, renamed over
/// the old one, the directory synced.
pub(crate) fn write_json_durably(path: &Path, value: &impl serde::Serialize) -> Result<(), AvError> {
    let write_err = |source| AvError::Read { path: path.display().to_string(), source };
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut f = std::fs::File::create(&tmp).map_err(write_err)?;
    f.write_all(text.as_bytes()).map_err(write_err)?;
    f.sync_all().map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// The log file named by a `clamd.conf` (`None` when clamd logs only to syslog).
pub fn clamd_log(conf_path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(conf_path).ok()?;
    super::clamav::ClamdConf::parse(&text).log_file
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn found_lines_with_and_without_log_time() {
        // Recorded from clamd 1.4.6 with `LogTime yes`.
        assert_eq!(
            parse_found_line("Fri Nov 27 11:55:15 2026 -> /tmp/avx/bad.txt: Mangrove.Test.Sig-1.UNOFFICIAL FOUND"),
            Some(Detection {
                path: "/tmp/avx/bad.txt".into(),
                signature: "Mangrove.Test.Sig-1.UNOFFICIAL".into(),
                extended_info: String::new(),
                logged_at: "Fri Nov 27 11:55:15 2026".into(),
            })
        );
        let plain = parse_found_line("/srv/a: b/c.txt: Eicar-Signature FOUND\n").unwrap();
        assert_eq!(
            (plain.path.as_str(), plain.signature.as_str(), plain.logged_at.as_str()),
            ("/srv/a: b/c.txt", "Eicar-Signature", "")
        );
        // Recorded from clamd 1.4.6 with Debian's clamd.conf (`ExtendedDetectionInfo true`).
        let extended = parse_found_line(
            "Fri Nov 27 12:37:07 2026 -> /tmp/invoice.doc: \
             Mangrove.Testbed.Marker-1.UNOFFICIAL(fc4ee77a0009adadc7946925cfb87cd8:54) FOUND",
        )
        .unwrap();
        assert_eq!(extended.signature, "Mangrove.Testbed.Marker-1.UNOFFICIAL");
        assert_eq!(extended.extended_info, "fc4ee77a0009adadc7946925cfb87cd8:54");
        assert_eq!(extended.path, "/tmp/invoice.doc");
        let arrow = parse_found_line("/srv/x -> y: Sig FOUND").unwrap();
        assert_eq!(arrow.path, "/srv/x -> y");
        for not_a_detection in [
            "Fri Nov 27 11:55:10 2026 -> Loaded 1 signatures.",
            "/tmp/ok.txt: OK",
            ": Sig FOUND",
            "/tmp/x:  FOUND",
            "FOUND",
            "",
        ] {
            assert_eq!(parse_found_line(not_a_detection), None, "{not_a_detection:?}");
        }
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn detections_are_read_once_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("clamd.log");
        append(&log, "/old: Old.Sig FOUND\n");
        let tail = LogTail::new(&log, dir.path().join("cursor.json"));
        // First run: history is not news.
        let (found, cursor) = tail.poll().unwrap();
        assert!(found.is_empty());
        tail.commit(&cursor).unwrap();

        append(&log, "/a: Sig.A FOUND\nstarting\n/b: Sig.B FOUND\n/partial: Sig.C FO");
        let (found, cursor) = tail.poll().unwrap();
        assert_eq!(found.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), ["/a", "/b"]);
        // Not committed (the agent died before storing them): read again.
        let (again, _) = LogTail::new(&log, dir.path().join("cursor.json")).poll().unwrap();
        assert_eq!(again.len(), 2);
        tail.commit(&cursor).unwrap();
        // A new LogTail (agent restarted) continues after them; the partial line completes.
        let restarted = LogTail::new(&log, dir.path().join("cursor.json"));
        append(&log, "UND\n");
        let (found, cursor) = restarted.poll().unwrap();
        assert_eq!(found.iter().map(|d| d.signature.as_str()).collect::<Vec<_>>(), ["Sig.C"]);
        restarted.commit(&cursor).unwrap();
        assert!(restarted.poll().unwrap().0.is_empty());

        // Rotation: a new file is read from its start.
        std::fs::rename(&log, dir.path().join("clamd.log.1")).unwrap();
        append(&log, "/c: Sig.D FOUND\n");
        let (found, cursor) = restarted.poll().unwrap();
        assert_eq!(found.len(), 1);
        restarted.commit(&cursor).unwrap();
        // Truncation (shorter than the cursor): read from the start too.
        std::fs::write(&log, "/d: E FOUND\n").unwrap();
        assert_eq!(restarted.poll().unwrap().0.len(), 1);
    }

    #[test]
    fn a_missing_log_is_read_from_its_start_once_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("clamd.log");
        let tail = LogTail::new(&log, dir.path().join("cursor.json"));
        let (found, cursor) = tail.poll().unwrap();
        assert!(found.is_empty());
        tail.commit(&cursor).unwrap();
        append(&log, "/a: Sig.A FOUND\n");
        assert_eq!(tail.poll().unwrap().0.len(), 1);
    }

    #[test]
    fn garbage_cursor_is_a_first_run() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cursor.json"), "{not json").unwrap();
        let log = dir.path().join("clamd.log");
        append(&log, "/a: Sig.A FOUND\n");
        let tail = LogTail::new(&log, dir.path().join("cursor.json"));
        assert_eq!(tail.poll().unwrap(), (Vec::new(), Cursor { offset: 16, ..tail.poll().unwrap().1 }));
    }
}
