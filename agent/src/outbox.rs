//! The agent's durable outbox: every report is on disk (fsynced) before it is sent, and stays
//! there until the controller acknowledges its sequence number.
//!
//! # On-disk format (`<state-dir>/outbox/`)
//!
//! - `<seq, 20 digits>.rep`: one report per file: the 4 bytes `MGO1`, a little-endian CRC-32
//!   of the rest, then the protobuf-encoded `mangrove.agent.v1.Report`. Written to a `.tmp`
//!   file, fsynced, renamed into place, so a crash leaves either the whole entry or none.
//! - `meta.json`: `{"last_seq_assigned", "last_seq_acked", "dropped", "compacted"}`, replaced
//!   atomically the same way after every change, so `mangrove-agent status` can read it while
//!   the agent runs.
//!
//! # Guarantees
//!
//! - Sequence numbers start at 1, increase by one, and are never reused: on open, the last
//!   assigned number is the larger of `meta.json`'s and the highest entry's.
//! - An entry is deleted only by [`Outbox::ack`], which is cumulative: acknowledging `n` means
//!   the controller stored every number up to `n` (it stores a session's reports in order).
//! - The outbox is bounded. When full, older fact snapshots are compacted first (their payload
//!   replaced by a `Compacted` marker, so the number still arrives and the controller can tell
//!   compaction from loss); when that is not enough, new heartbeats and fact snapshots are
//!   dropped; events and task results are kept up to twice the bound. Every compaction and
//!   drop is counted (in `meta.json`, and in heartbeats to the controller) and logged.
//! - A full or failing disk: a report that cannot be written gets no number and is counted
//!   as dropped; [`Outbox::write_failure`] says why until a write succeeds. An
//!   acknowledgement whose metadata cannot be written keeps the newest acknowledged entry,
//!   so the highest number assigned is never lost to a restart.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;
use proto::v1::{Compacted, Report, report::Body};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 4] = b"MGO1";

/// Why the outbox could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: corrupt metadata: {message}")]
    Meta { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io { path: path.to_path_buf(), source }
}

/// Bounds on the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most entries kept (heartbeats every 5 s fill 50,000 in about three days).
    pub max_entries: usize,
    /// Most bytes kept.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_entries: 50_000, max_bytes: 64 * 1024 * 1024 }
    }
}

/// What `meta.json` holds, and what `mangrove-agent status` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub last_seq_assigned: u64,
    pub last_seq_acked: u64,
    pub dropped: u64,
    pub compacted: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Facts,
    Heartbeat,
    Precious,
    Compacted,
}

fn kind_of(body: &Option<Body>) -> Kind {
    match body {
        Some(Body::Facts(_)) => Kind::Facts,
        Some(Body::Heartbeat(_)) => Kind::Heartbeat,
        Some(Body::Compacted(_)) => Kind::Compacted,
        _ => Kind::Precious,
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    kind: Kind,
    bytes: u64,
}

/// The outbox of one agent. Not shared between processes: the agent's state-dir lock
/// guarantees a single writer.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    limits: Limits,
    meta: Meta,
    entries: BTreeMap<u64, Entry>,
    bytes: u64,
    /// Why the last report could not be written (a full or failing disk), until one is.
    write_failure: Option<String>,
}

fn entry_name(seq: u64) -> String {
    format!("{seq:020}.rep")
}

fn encode_entry(r: &Report) -> Vec<u8> {
    let body = r.encode_to_vec();
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn decode_entry(bytes: &[u8]) -> Option<Report> {
    let (head, body) = bytes.split_at_checked(8)?;
    if &head[..4] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if crc32fast::hash(body) != crc {
        return None;
    }
    Report::decode(body).ok()
}

/// Writes `contents` to `path` atomically: temp file, fsync, rename.
fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), OutboxError> {
    crate::state::write_file_atomic(path, contents, 0o600).map_err(io(path))
}

fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Reads `meta.json` and counts entries without taking the agent's lock (for `status`).
pub fn read_status(dir: &Path) -> Result<(Meta, usize), OutboxError> {
    let meta = read_meta(dir)?;
    let len = match fs::read_dir(dir) {
        Ok(rd) => rd.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".rep")).count(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io(dir)(e)),
    };
    Ok((meta, len))
}

fn read_meta(dir: &Path) -> Result<Meta, OutboxError> {
    let path = dir.join("meta.json");
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| OutboxError::Meta { path, message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Meta::default()),
        Err(e) => Err(io(&path)(e)),
    }
}

impl Outbox {
    /// Opens (creating) the outbox in `dir`. Entries that fail their checksum are moved aside
    /// (renamed `.corrupt`), counted as dropped and logged, never silently skipped.
    pub fn open(dir: &Path, limits: Limits) -> Result<Outbox, OutboxError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        finish_rebase(dir)?;
        let mut meta = read_meta(dir)?;
        let mut entries = BTreeMap::new();
        let mut bytes = 0;
        for e in fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if name.ends_with(".tmp") {
                // An entry whose write never completed was never assigned or sent.
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(seq) = entry_seq(&name) else { continue };
            let data = fs::read(&path).map_err(io(&path))?;
            match decode_entry(&data) {
                Some(r) if r.seq == seq => {
                    let len = data.len() as u64;
                    entries.insert(seq, Entry { kind: kind_of(&r.body), bytes: len });
                    bytes += len;
                }
                _ => {
                    tracing::error!(path = %path.display(), "outbox entry is corrupt; moved aside and counted as dropped");
                    let _ = fs::rename(&path, path.with_extension("corrupt"));
                    meta.dropped += 1;
                }
            }
            meta.last_seq_assigned = meta.last_seq_assigned.max(seq);
        }
        // Entries at or below the acknowledged number may survive a crash between the ack's
        // delete and its metadata write; they are stored already.
        let stale: Vec<u64> = entries.range(..=meta.last_seq_acked).map(|(s, _)| *s).collect();
        let mut ob = Outbox { dir: dir.to_path_buf(), limits, meta, entries, bytes, write_failure: None };
        for s in stale {
            ob.remove(s)?;
        }
        // A full disk must not keep the agent from starting: it runs, and says why it cannot
        // write (the metadata is rewritten with the next change that fits).
        if let Err(e) = ob.write_meta() {
            tracing::error!(error = %e, "cannot write the outbox metadata");
            ob.write_failure = Some(e.to_string());
        }
        Ok(ob)
    }

    /// Why reports cannot be written now (e.g. the disk is full), if they cannot.
    pub fn write_failure(&self) -> Option<&str> {
        self.write_failure.as_deref()
    }

    pub fn meta(&self) -> Meta {
        self.meta
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn write_meta(&self) -> Result<(), OutboxError> {
        let text = serde_json::to_vec(&self.meta)
            .map_err(|e| OutboxError::Meta { path: self.dir.join("meta.json"), message: e.to_string() })?;
        write_atomic(&self.dir.join("meta.json"), &text)
    }

    fn remove(&mut self, seq: u64) -> Result<(), OutboxError> {
        if let Some(e) = self.entries.remove(&seq) {
            self.bytes -= e.bytes;
            let path = self.dir.join(entry_name(seq));
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(())
    }

    fn full(&self, extra: u64, factor: u64) -> bool {
        self.entries.len() as u64 + 1 > self.limits.max_entries as u64 * factor
            || self.bytes + extra > self.limits.max_bytes * factor
    }

    /// Replaces the payload of every fact snapshot but the newest with a `Compacted` marker.
    fn compact(&mut self) -> Result<u64, OutboxError> {
        let facts: Vec<u64> = self.entries.iter().filter(|(_, e)| e.kind == Kind::Facts).map(|(s, _)| *s).collect();
        let mut n = 0;
        for seq in facts.iter().rev().skip(1) {
            let path = self.dir.join(entry_name(*seq));
            let created = fs::read(&path).ok().and_then(|d| decode_entry(&d)).map(|r| r.created_unix_ms).unwrap_or(0);
            let marker = Report {
                seq: *seq,
                created_unix_ms: created,
                body: Some(Body::Compacted(Compacted { kind: "facts".into() })),
            };
            let data = encode_entry(&marker);
            write_atomic(&path, &data)?;
            if let Some(e) = self.entries.get_mut(seq) {
                self.bytes = self.bytes - e.bytes + data.len() as u64;
                *e = Entry { kind: Kind::Compacted, bytes: data.len() as u64 };
            }
            n += 1;
        }
        if n > 0 {
            self.meta.compacted += n;
            tracing::warn!(compacted = n, total = self.meta.compacted, "outbox full: older fact snapshots compacted");
        }
        Ok(n)
    }

    /// Assigns the next sequence number to `body` and writes it durably. Returns the number,
    /// or `None` if the report was dropped because the outbox is full (counted and logged).
    pub fn append(&mut self, body: Body, created_unix_ms: i64) -> Result<Option<u64>, OutboxError> {
        let kind = kind_of(&Some(body.clone()));
        let seq = self.meta.last_seq_assigned + 1;
        let report = Report { seq, created_unix_ms, body: Some(body) };
        let data = encode_entry(&report);
        let extra = data.len() as u64;
        if self.full(extra, 1)
            && let Err(e) = self.compact()
        {
            return Err(self.count_unwritten(kind, e));
        }
        let factor = if kind == Kind::Precious { 2 } else { 1 };
        if self.full(extra, factor) {
            self.meta.dropped += 1;
            self.write_meta()?;
            tracing::error!(kind = ?kind, dropped = self.meta.dropped, entries = self.entries.len(), "outbox full: report dropped");
            return Ok(None);
        }
        if let Err(e) = write_atomic(&self.dir.join(entry_name(seq)), &data) {
            // Not written, so never numbered: the number goes to the next report that is.
            return Err(self.count_unwritten(kind, e));
        }
        // The entry is on disk: from here it is pending whatever fails next, so a later
        // acknowledgement can never skip over it, and it is reported as appended.
        self.meta.last_seq_assigned = seq;
        self.entries.insert(seq, Entry { kind, bytes: extra });
        self.bytes += extra;
        match self.write_meta().and_then(|()| sync_dir(&self.dir)) {
            Ok(()) => self.write_failure = None,
            // On open the last number is also read off the entries, so none is reused.
            Err(e) => {
                tracing::error!(error = %e, seq, "report written but not the outbox metadata");
                self.write_failure = Some(e.to_string());
            }
        }
        Ok(Some(seq))
    }

    /// A report that could not be written: counted as dropped (persisted with the next
    /// metadata write that succeeds), logged, and remembered as the outbox's problem.
    fn count_unwritten(&mut self, kind: Kind, e: OutboxError) -> OutboxError {
        self.meta.dropped += 1;
        tracing::error!(kind = ?kind, dropped = self.meta.dropped, error = %e, "cannot write to the outbox: report dropped");
        self.write_failure = Some(e.to_string());
        let _ = self.write_meta();
        e
    }

    /// The controller stored every report up to `seq`: delete them.
    pub fn ack(&mut self, seq: u64) -> Result<(), OutboxError> {
        let seq = seq.min(self.meta.last_seq_assigned);
        if seq <= self.meta.last_seq_acked {
            return Ok(());
        }
        let done: Vec<u64> = self.entries.range(..=seq).map(|(s, _)| *s).collect();
        self.meta.last_seq_acked = seq;
        // The metadata first: if it cannot be written (full disk), the newest acknowledged
        // entry stays, so that a restart still reads the highest number assigned off the
        // entries and never hands it out again (the controller drops the replay).
        let written = self.write_meta();
        let keep = if written.is_err() { done.last().copied() } else { None };
        for s in done {
            if Some(s) != keep {
                self.remove(s)?;
            }
        }
        written
    }

    /// The reports waiting with a number above `after`, oldest first, up to `limit` of them.
    pub fn pending_after(&self, after: u64, limit: usize) -> Result<Vec<Report>, OutboxError> {
        let mut out = Vec::new();
        for seq in self.entries.range(after + 1..).map(|(s, _)| *s).take(limit) {
            let path = self.dir.join(entry_name(seq));
            let data = fs::read(&path).map_err(io(&path))?;
            match decode_entry(&data) {
                Some(r) => out.push(r),
                None => {
                    return Err(OutboxError::Meta {
                        path,
                        message: "entry failed its checksum after it was written".into(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The highest number waiting, if any.
    pub fn last_pending(&self) -> Option<u64> {
        self.entries.keys().next_back().copied()
    }

    /// The controller already holds numbers up to `stored` from an earlier enrollment of this
    /// host (this state dir is newer than the controller's record): renumber what is waiting
    /// to follow on from there, so nothing new is mistaken for a replay.
    pub fn rebase(&mut self, stored: u64) -> Result<(), OutboxError> {
        if stored <= self.meta.last_seq_assigned {
            return Ok(());
        }
        let waiting = self.pending_after(self.meta.last_seq_acked, usize::MAX)?;
        tracing::warn!(
            from = self.meta.last_seq_assigned,
            to = stored,
            waiting = waiting.len(),
            "controller holds later sequence numbers for this host; renumbering"
        );
        let old: Vec<u64> = self.entries.keys().copied().collect();
        // The marker makes the renumbering all-or-nothing across a crash (see finish_rebase).
        let marker = RebaseMarker { stored, old_last: self.meta.last_seq_assigned };
        let text = serde_json::to_vec(&marker)
            .map_err(|e| OutboxError::Meta { path: self.dir.join(REBASE_MARKER), message: e.to_string() })?;
        write_atomic(&self.dir.join(REBASE_MARKER), &text)?;
        let mut next = stored;
        let mut renumbered = Vec::new();
        for mut r in waiting {
            next += 1;
            r.seq = next;
            let data = encode_entry(&r);
            write_atomic(&self.dir.join(entry_name(next)), &data)?;
            renumbered.push((next, Entry { kind: kind_of(&r.body), bytes: data.len() as u64 }));
        }
        self.meta.last_seq_assigned = next;
        self.meta.last_seq_acked = stored;
        // The commit point: from here the renumbered copies are the outbox.
        self.write_meta()?;
        for s in old {
            self.remove(s)?;
        }
        for (s, e) in renumbered {
            self.bytes += e.bytes;
            self.entries.insert(s, e);
        }
        sync_dir(&self.dir)?;
        remove_marker(&self.dir)
    }
}

const REBASE_MARKER: &str = "rebase.json";

/// Written before a renumbering starts: the number the controller holds, and the last number
/// of the entries being renumbered (all old entries are at or below it, all copies above).
#[derive(Debug, Serialize, Deserialize)]
struct RebaseMarker {
    stored: u64,
    old_last: u64,
}

fn remove_marker(dir: &Path) -> Result<(), OutboxError> {
    let path = dir.join(REBASE_MARKER);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&path)(e)),
    }
}

fn entry_seq(name: &str) -> Option<u64> {
    name.strip_suffix(".rep").and_then(|s| s.parse::<u64>().ok())
}

/// Completes or undoes a renumbering a crash interrupted: past its commit point (the metadata
/// says the controller's number is acknowledged) the old entries go; before it, the partial
/// copies go and the outbox is as it was (the next session renumbers again).
fn finish_rebase(dir: &Path) -> Result<(), OutboxError> {
    let path = dir.join(REBASE_MARKER);
    let marker: RebaseMarker = match fs::read(&path) {
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| OutboxError::Meta { path: path.clone(), message: e.to_string() })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(&path)(e)),
    };
    let committed = read_meta(dir)?.last_seq_acked >= marker.stored;
    for e in fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let Some(seq) = entry_seq(&e.file_name().to_string_lossy()) else { continue };
        let stale = if committed { seq <= marker.old_last } else { seq > marker.old_last };
        if stale {
            fs::remove_file(e.path()).map_err(io(&e.path()))?;
        }
    }
    tracing::warn!(committed, "finished a renumbering interrupted by a crash");
    remove_marker(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proto::v1::{Event, Facts, Heartbeat};

    fn hb() -> Body {
        Body::Heartbeat(Heartbeat::default())
    }

    fn facts(size: usize) -> Body {
        Body::Facts(Facts { os_name: "x".repeat(size), ..Default::default() })
    }

    #[test]
    fn numbers_survive_reopen_and_ack_is_cumulative() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut ob = Outbox::open(d.path(), Limits::default()).expect("open");
        for _ in 0..5 {
            ob.append(hb(), 0).expect("append");
        }
        ob.ack(3).expect("ack");
        drop(ob);
        let mut ob = Outbox::open(d.path(), Limits::default()).expect("reopen");
        assert_eq!(ob.meta().last_seq_assigned, 5);
        assert_eq!(ob.meta().last_seq_acked, 3);
        let pending: Vec<u64> = ob.pending_after(0, 100).expect("pending").iter().map(|r| r.seq).collect();
        assert_eq!(pending, vec![4, 5]);
        assert_eq!(ob.append(hb(), 0).expect("append"), Some(6));
        ob.ack(6).expect("ack");
        assert!(ob.is_empty());
        drop(ob);
        // All acknowledged: the next number still follows on.
        let mut ob = Outbox::open(d.path(), Limits::default()).expect("reopen");
        assert_eq!(ob.append(hb(), 0).expect("append"), Some(7));
        assert_eq!(read_status(d.path()).expect("status").1, 1);
    }

    #[test]
    fn a_corrupt_entry_is_moved_aside_and_counted() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut ob = Outbox::open(d.path(), Limits::default()).expect("open");
        ob.append(hb(), 0).expect("append");
        ob.append(hb(), 0).expect("append");
        drop(ob);
        fs::write(d.path().join(entry_name(1)), b"MGO1garbage").expect("corrupt");
        fs::write(d.path().join("00000000000000000009.tmp"), b"half").expect("tmp");
        let ob = Outbox::open(d.path(), Limits::default()).expect("reopen");
        assert_eq!(ob.meta().dropped, 1);
        assert_eq!(ob.meta().last_seq_assigned, 2);
        assert_eq!(ob.len(), 1);
        assert!(d.path().join("00000000000000000001.corrupt").exists());
        assert!(!d.path().join("00000000000000000009.tmp").exists());
    }

    #[test]
    fn when_full_facts_are_compacted_then_heartbeats_dropped_but_task_results_kept() {
        let d = tempfile::tempdir().expect("tempdir");
        let limits = Limits { max_entries: 4, max_bytes: 1 << 20 };
        let mut ob = Outbox::open(d.path(), limits).expect("open");
        ob.append(facts(1000), 0).expect("append");
        ob.append(facts(1000), 0).expect("append");
        ob.append(hb(), 0).expect("append");
        ob.append(facts(1000), 0).expect("append");
        // Full by count: compaction keeps the count, so a heartbeat is dropped...
        assert_eq!(ob.append(hb(), 0).expect("append"), None);
        assert_eq!(ob.meta().compacted, 2);
        assert_eq!(ob.meta().dropped, 1);
        // ...but an event (precious) still gets in, with the next number (no gap).
        assert_eq!(ob.append(Body::Event(Event::default()), 0).expect("append"), Some(5));
        let kinds: Vec<bool> = ob
            .pending_after(0, 10)
            .expect("pending")
            .iter()
            .map(|r| matches!(r.body, Some(Body::Compacted(_))))
            .collect();
        assert_eq!(kinds, vec![true, true, false, false, false]);
    }

    #[test]
    fn rebase_follows_on_from_the_controllers_numbers() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut ob = Outbox::open(d.path(), Limits::default()).expect("open");
        ob.append(hb(), 0).expect("append");
        ob.append(hb(), 0).expect("append");
        ob.rebase(100).expect("rebase");
        let seqs: Vec<u64> = ob.pending_after(0, 10).expect("pending").iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![101, 102]);
        assert_eq!(ob.append(hb(), 0).expect("append"), Some(103));
        drop(ob);
        let ob = Outbox::open(d.path(), Limits::default()).expect("reopen");
        assert_eq!(ob.len(), 3);
    }

    fn seqs(ob: &Outbox) -> Vec<u64> {
        ob.pending_after(0, 100).expect("pending").iter().map(|r| r.seq).collect()
    }

    #[test]
    fn a_renumbering_cut_short_by_a_crash_is_undone() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut ob = Outbox::open(d.path(), Limits::default()).expect("open");
        for _ in 0..3 {
            ob.append(hb(), 0).expect("append");
        }
        drop(ob);
        // The crash came after the marker and one copy, before the commit point.
        let marker = serde_json::to_vec(&RebaseMarker { stored: 100, old_last: 3 }).expect("json");
        write_atomic(&d.path().join(REBASE_MARKER), &marker).expect("marker");
        let copy = Report { seq: 101, created_unix_ms: 0, body: Some(hb()) };
        write_atomic(&d.path().join(entry_name(101)), &encode_entry(&copy)).expect("copy");
        let mut ob = Outbox::open(d.path(), Limits::default()).expect("reopen");
        assert_eq!(seqs(&ob), vec![1, 2, 3], "back to before the renumbering");
        assert_eq!(ob.meta().last_seq_assigned, 3);
        assert!(!d.path().join(REBASE_MARKER).exists());
        // The next session renumbers again, completely.
        ob.rebase(100).expect("rebase");
        assert_eq!(seqs(&ob), vec![101, 102, 103]);
    }

    #[test]
    fn a_renumbering_past_its_commit_point_is_completed() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut ob = Outbox::open(d.path(), Limits::default()).expect("open");
        for _ in 0..2 {
            ob.append(hb(), 0).expect("append");
        }
        drop(ob);
        let marker = serde_json::to_vec(&RebaseMarker { stored: 50, old_last: 2 }).expect("json");
        write_atomic(&d.path().join(REBASE_MARKER), &marker).expect("marker");
        for seq in [51, 52] {
            let copy = Report { seq, created_unix_ms: 0, body: Some(hb()) };
            write_atomic(&d.path().join(entry_name(seq)), &encode_entry(&copy)).expect("copy");
        }
        let meta = Meta { last_seq_assigned: 52, last_seq_acked: 50, dropped: 0, compacted: 0 };
        write_atomic(&d.path().join("meta.json"), &serde_json::to_vec(&meta).expect("json")).expect("meta");
        let ob = Outbox::open(d.path(), Limits::default()).expect("reopen");
        assert_eq!(seqs(&ob), vec![51, 52]);
        assert_eq!((ob.meta().last_seq_assigned, ob.meta().last_seq_acked), (52, 50));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Append(bool),
        Ack(u64),
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<bool>().prop_map(Op::Append),
            2 => (0u64..40).prop_map(Op::Ack),
            1 => Just(Op::Reopen),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Model test: against a plain list, the outbox never loses a report it accepted,
        /// never reuses a number, and gives back exactly the unacknowledged ones in order.
        #[test]
        fn behaves_like_the_model(ops in proptest::collection::vec(op(), 1..60)) {
            let d = tempfile::tempdir().expect("tempdir");
            let limits = Limits { max_entries: 1000, max_bytes: 1 << 24 };
            let mut ob = Outbox::open(d.path(), limits).expect("open");
            let mut model: Vec<u64> = Vec::new();
            let mut last = 0u64;
            let mut acked = 0u64;
            for o in ops {
                match o {
                    Op::Append(is_facts) => {
                        let body = if is_facts { facts(10) } else { hb() };
                        let seq = ob.append(body, 0).expect("append").expect("not full");
                        prop_assert_eq!(seq, last + 1);
                        last = seq;
                        model.push(seq);
                    }
                    Op::Ack(n) => {
                        ob.ack(n).expect("ack");
                        let n = n.min(last);
                        if n > acked { acked = n; }
                        model.retain(|s| *s > acked);
                    }
                    Op::Reopen => {
                        drop(ob);
                        ob = Outbox::open(d.path(), limits).expect("reopen");
                    }
                }
                let got: Vec<u64> = ob.pending_after(0, usize::MAX).expect("pending").iter().map(|r| r.seq).collect();
                prop_assert_eq!(&got, &model);
                prop_assert_eq!(ob.meta().last_seq_assigned, last);
                prop_assert_eq!(ob.meta().last_seq_acked, acked);
            }
        }
    }
}
