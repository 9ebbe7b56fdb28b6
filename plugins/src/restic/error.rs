//! The one error type of the restic driver, and the pure function that reads restic's exit code
//! and stderr into it. Restic before 0.17 exits 1 for every fatal error, so the kinds come from
//! its messages; 0.17's codes (10 no repository, 11 locked, 12 wrong password) are used too.

use std::path::PathBuf;

use super::types::BackupSummary;

/// Most bytes of restic's stderr kept in an error.
pub const STDERR_TAIL_BYTES: usize = 4096;

/// What went wrong running restic. Every message says what and where (the repository location
/// with URL credentials redacted, the path); none ever holds the repository password.
#[derive(Debug, thiserror::Error)]
pub enum ResticError {
    /// No restic binary where it was looked for.
    #[error("restic is not installed (looked for {searched}); install it with `apt-get install restic`")]
    MissingBinary { searched: String },
    /// The binary is there but could not be started.
    #[error("cannot run restic at {}", .binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Nothing that looks like a repository at the location.
    #[error("no restic repository at {location}: {detail}")]
    RepositoryNotFound { location: String, detail: String },
    /// The repository's server could not be reached (refused, DNS, ssh failure, timeout).
    #[error("cannot reach the restic repository at {location}: {detail}")]
    RepositoryUnreachable { location: String, detail: String },
    /// The repository opens with no key for the configured password.
    #[error("wrong password for the restic repository at {location}")]
    WrongPassword { location: String },
    /// Another restic, alive or killed, holds a lock. `unlock` removes locks of dead processes.
    #[error("the restic repository at {location} is locked: {detail}")]
    Locked { location: String, detail: String },
    /// A path to back up does not exist (checked before restic runs).
    #[error("the path to back up does not exist: {}", .path.display())]
    SourceMissing { path: PathBuf },
    /// A disk filled up: the repository's, the cache's or the restore target's.
    #[error("no space left on device during restic {operation} with the repository at {location}: {detail}")]
    DiskFull { operation: &'static str, location: String, detail: String },
    /// restic exit code 3: the snapshot was made but some items could not be read.
    #[error(
        "backup to {location} made snapshot {} but could not read {} item(s){}",
        .summary.snapshot_id,
        .summary.unreadable_count,
        first_unreadable(.summary)
    )]
    Partial { location: String, summary: Box<BackupSummary> },
    /// `restic check` found the repository damaged; `errors` are restic's own lines.
    #[error("restic check found errors in the repository at {location}: {}", first_line(.errors))]
    CheckFailed { location: String, errors: Vec<String> },
    /// Any other failure, with the end of restic's stderr.
    #[error("restic {operation} with the repository at {location} failed ({}): {stderr_tail}", exit_text(*.exit_code))]
    Other { operation: &'static str, location: String, exit_code: Option<i32>, stderr_tail: String },
    /// The caller asked for something the driver refuses to pass to restic.
    #[error("invalid restic request: {0}")]
    InvalidRequest(String),
    /// restic succeeded but printed something the driver cannot read.
    #[error("cannot read the output of restic {operation} for {location}: {detail}")]
    Output { operation: &'static str, location: String, detail: String },
    /// Local IO around restic: the password file, a manifest, a restore target.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl ResticError {
    /// True when the same call may work later without anyone changing configuration: the
    /// server was unreachable, or a lock was held (call `unlock` first if its holder died).
    pub fn is_retryable(&self) -> bool {
        matches!(self, ResticError::RepositoryUnreachable { .. } | ResticError::Locked { .. })
    }
}

fn first_unreadable(summary: &BackupSummary) -> String {
    match summary.unreadable.first() {
        Some(first) => format!(", first {}: {}", first.item, first.message),
        None => String::new(),
    }
}

fn first_line(errors: &[String]) -> String {
    match errors {
        [] => "no details".to_string(),
        [only] => only.clone(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

fn exit_text(exit_code: Option<i32>) -> String {
    match exit_code {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".to_string(),
    }
}

/// Markers of a backend that could not be reached at all, checked before "no repository"
/// because restic adds "Is there a repository at the following location?" to those too.
const UNREACHABLE_MARKERS: &[&str] = &[
    "connection refused",
    "dial tcp",
    "no such host",
    "i/o timeout",
    "network is unreachable",
    "no route to host",
    "connection reset",
    "unable to start the sftp session",
    "host key verification failed",
    "permission denied (publickey",
    "tls: ",
    "x509: ",
];

const NOT_FOUND_MARKERS: &[&str] =
    &["is there a repository at the following location", "repository does not exist", "unable to open config file"];

/// Reads a failed restic run into an error kind. `stderr` is what restic printed, already
/// scrubbed of the password; `location` is the redacted location.
pub(crate) fn classify(operation: &'static str, location: &str, exit_code: Option<i32>, stderr: &str) -> ResticError {
    let location = location.to_string();
    let lower = stderr.to_lowercase();
    let has = |markers: &[&str]| markers.iter().any(|marker| lower.contains(marker));
    if lower.contains("no space left on device") {
        let detail = line_containing(stderr, "no space left on device");
        return ResticError::DiskFull { operation, location, detail };
    }
    if exit_code == Some(11) || lower.contains("is already locked") {
        return ResticError::Locked { location, detail: lock_detail(stderr) };
    }
    if exit_code == Some(12) || lower.contains("wrong password or no key found") {
        return ResticError::WrongPassword { location };
    }
    if has(UNREACHABLE_MARKERS) {
        return ResticError::RepositoryUnreachable { location, detail: fatal_detail(stderr) };
    }
    if exit_code == Some(10) || has(NOT_FOUND_MARKERS) {
        return ResticError::RepositoryNotFound { location, detail: fatal_detail(stderr) };
    }
    ResticError::Other { operation, location, exit_code, stderr_tail: tail(stderr, STDERR_TAIL_BYTES) }
}

/// The line that says who holds the lock and since when.
fn lock_detail(stderr: &str) -> String {
    let useful: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|line| line.contains("locked") || line.starts_with("lock was created"))
        .map(|line| line.trim_start_matches("Fatal: "))
        .collect();
    if useful.is_empty() { fatal_detail(stderr) } else { useful.join("; ") }
}

/// restic's `Fatal:` line without the prefix, else its last non-empty line.
fn fatal_detail(stderr: &str) -> String {
    let mut lines = stderr.lines().map(str::trim).filter(|line| !line.is_empty());
    if let Some(fatal) = lines.clone().find_map(|line| line.strip_prefix("Fatal: ")) {
        return fatal.to_string();
    }
    lines.next_back().unwrap_or("restic printed nothing").to_string()
}

fn line_containing(text: &str, needle_lower: &str) -> String {
    text.lines()
        .find(|line| line.to_lowercase().contains(needle_lower))
        .map(|line| line.trim().trim_start_matches("Fatal: ").to_string())
        .unwrap_or_default()
}

/// The last `max_bytes` of `text`, cut at a character boundary.
pub(crate) fn tail(text: &str, max_bytes: usize) -> String {
    let text = text.trim_end();
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut start = text.len() - max_bytes;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(error: &ResticError) -> &'static str {
        match error {
            ResticError::RepositoryNotFound { .. } => "not-found",
            ResticError::RepositoryUnreachable { .. } => "unreachable",
            ResticError::WrongPassword { .. } => "wrong-password",
            ResticError::Locked { .. } => "locked",
            ResticError::DiskFull { .. } => "disk-full",
            ResticError::Other { .. } => "other",
            _ => "unexpected",
        }
    }

    /// stderr texts as restic 0.14.0 prints them, and 0.17's dedicated exit codes.
    #[test]
    fn classify_reads_restic_messages() {
        let cases: &[(Option<i32>, &str, &str)] = &[
            (Some(1), "Fatal: wrong password or no key found\n", "wrong-password"),
            (Some(12), "Fatal: wrong password or no key found\n", "wrong-password"),
            (
                Some(1),
                "Fatal: unable to open config file: stat /srv/nope/config: no such file or directory\nIs there a repository at the following location?\n/srv/nope\n",
                "not-found",
            ),
            (Some(10), "Fatal: repository does not exist: unable to open config file\n", "not-found"),
            (
                Some(1),
                "Fatal: unable to open config file: client.Head: Head \"http://127.0.0.1:1/config\": dial tcp 127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?\nrest:http://127.0.0.1:1/\n",
                "unreachable",
            ),
            (
                Some(1),
                "Fatal: unable to open repository at sftp:nobody@127.0.0.1:/nonexist: unable to start the sftp session, error: EOF\n",
                "unreachable",
            ),
            (
                Some(1),
                "unable to create lock in backend: repository is already locked by PID 12289 on vm by root (UID 0, GID 0)\nlock was created at 2026-11-27 08:29:04 (1.527348712s ago)\nstorage ID ecadda6a\nthe `unlock` command can be used to remove stale locks\n",
                "locked",
            ),
            (
                Some(11),
                "Fatal: unable to create lock in backend: repository is already locked exclusively by PID 7 on db1 by root (UID 0, GID 0)\n",
                "locked",
            ),
            (
                Some(1),
                "Fatal: unable to save snapshot: Save(<data/1a2b>) returned error: write /srv/repo/data/1a/1a2b: no space left on device\n",
                "disk-full",
            ),
            (Some(1), "Fatal: invalid id \"zzz\": no matching ID found for prefix \"zzz\"\n", "other"),
        ];
        for (exit_code, stderr, expected) in cases {
            let error = classify("backup", "/srv/repo", *exit_code, stderr);
            assert_eq!(kind(&error), *expected, "{stderr}");
        }
    }

    #[test]
    fn locked_error_says_who_holds_the_lock() {
        let stderr = "unable to create lock in backend: repository is already locked by PID 12289 on vm by root (UID 0, GID 0)\nlock was created at 2026-11-27 08:29:04 (1.5s ago)\nstorage ID ecadda6a\n";
        let message = classify("check", "/srv/repo", Some(1), stderr).to_string();
        assert!(message.contains("/srv/repo"), "{message}");
        assert!(message.contains("PID 12289"), "{message}");
        assert!(message.contains("lock was created at 2026-11-27 08:29:04"), "{message}");
    }

    #[test]
    fn other_error_keeps_only_the_tail_of_stderr() {
        let stderr = format!("{}\nFatal: the end\n", "x".repeat(10 * STDERR_TAIL_BYTES));
        let ResticError::Other { stderr_tail, .. } = classify("restore", "/srv/repo", Some(1), &stderr) else {
            panic!("expected Other");
        };
        assert!(stderr_tail.len() <= STDERR_TAIL_BYTES + '…'.len_utf8());
        assert!(stderr_tail.ends_with("Fatal: the end"));
    }

    #[test]
    fn tail_cuts_at_a_character_boundary() {
        let text = "báo cáo ".repeat(100);
        let cut = tail(&text, 11);
        assert!(cut.starts_with('…'));
        assert!(cut.len() <= 11 + '…'.len_utf8());
    }
}
