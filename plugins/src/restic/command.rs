//! Running the restic binary for one repository operation.
//!
//! The password reaches restic only as a 0600 file in a fresh 0700 directory, named by
//! `RESTIC_PASSWORD_FILE` (not `--password-file`: argv shows in every user's process list, and
//! monitoring flags any argument that says "password"), removed when the run ends, also on
//! error or panic. No `RESTIC_*` variable is inherited from
//! this process; the repository location goes in `RESTIC_REPOSITORY` rather than argv (argv is
//! readable by every user, the environment only by the same user). stdin is closed, so restic
//! never waits for a password prompt.

use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;

use super::config::{RepositoryConfig, Secret};
use super::error::{ResticError, STDERR_TAIL_BYTES, classify, tail};
use super::json::parse_source_error;
use super::types::SourceError;

/// Most source errors kept from one run.
pub(crate) const MAX_SOURCE_ERRORS: usize = 1000;
/// Most plain stderr lines kept from one run (the first ones: restic says what failed early).
const MAX_STDERR_LINES: usize = 400;
const MAX_STDERR_LINE_BYTES: usize = 1024;
/// Passwords shorter than this are not scrubbed from output: replacing every "ab" in restic's
/// messages would garble them, and restic never prints the password anyway.
const MIN_SCRUBBED_PASSWORD_BYTES: usize = 4;

/// How a restic run ended.
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub stderr: StderrCapture,
}

impl Finished {
    pub fn exit_code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// What restic printed on stderr, bounded in size.
#[derive(Default)]
pub(crate) struct StderrCapture {
    /// The first plain-text lines (JSON lines are parsed, not kept here).
    pub lines: Vec<String>,
    /// The last [`STDERR_TAIL_BYTES`] of everything printed.
    pub tail: String,
    /// `error` messages of `backup --json`: the first [`MAX_SOURCE_ERRORS`].
    pub source_errors: Vec<SourceError>,
    pub source_error_count: u64,
}

impl StderrCapture {
    /// The text errors are classified from.
    pub fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        text.push_str(&self.tail);
        text
    }

    fn take_line(&mut self, line: String) {
        if let Some(error) = parse_source_error(&line) {
            self.source_error_count += 1;
            if self.source_errors.len() < MAX_SOURCE_ERRORS {
                self.source_errors.push(error);
            }
        } else if self.lines.len() < MAX_STDERR_LINES {
            self.lines.push(tail_of_line(&line));
        }
        self.tail.push_str(&line);
        self.tail.push('\n');
        if self.tail.len() > 2 * STDERR_TAIL_BYTES {
            self.tail = tail(&self.tail, STDERR_TAIL_BYTES);
            self.tail.push('\n');
        }
    }
}

fn tail_of_line(line: &str) -> String {
    if line.len() <= MAX_STDERR_LINE_BYTES {
        return line.to_string();
    }
    let mut end = MAX_STDERR_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// The private directory and password file for one run; both removed on drop.
struct PasswordFile {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl PasswordFile {
    fn create(secret_dir: Option<&Path>, password: &Secret) -> Result<PasswordFile, ResticError> {
        let io_error = |what: &str| {
            let what = what.to_string();
            move |source| ResticError::Io { what, source }
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix("mangrove-restic-");
        let dir = match secret_dir {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .map_err(io_error("cannot create a private directory for the restic password file"))?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
            .map_err(io_error("cannot make the restic password directory private"))?;
        let path = dir.path().join("password");
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error("cannot create the restic password file"))?;
        file.write_all(password.bytes()).map_err(io_error("cannot write the restic password file"))?;
        Ok(PasswordFile { dir, path })
    }
}

/// Kills and reaps restic if the run is abandoned (a panic in a callback), so no restic keeps
/// running with its lock held after the driver gave up on it.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn wait(mut self) -> std::io::Result<ExitStatus> {
        match self.0.take() {
            Some(mut child) => child.wait(),
            None => Err(std::io::Error::other("restic was already reaped")),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `restic` with no inherited `RESTIC_*` variable and stdin closed.
pub(crate) fn base_command(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("RESTIC_") {
            command.env_remove(&name);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// Runs `restic <args>` against the repository, handing each stdout line to `on_line`.
/// A non-zero exit is not an error here: callers read it (exit 3 means a partial backup).
pub(crate) fn run(
    binary: &Path,
    config: &RepositoryConfig,
    args: &[OsString],
    mut on_line: impl FnMut(&str),
) -> Result<Finished, ResticError> {
    let password_file = PasswordFile::create(config.secret_dir.as_deref(), &config.password)?;
    let mut command = base_command(binary);
    command.env("RESTIC_REPOSITORY", &config.location);
    command.env("RESTIC_PASSWORD_FILE", &password_file.path);
    match &config.cache_dir {
        Some(cache_dir) => command.arg("--cache-dir").arg(cache_dir),
        None => command.arg("--no-cache"),
    };
    command.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| ResticError::Spawn { binary: binary.to_path_buf(), source })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let guard = ChildGuard(Some(child));
    let scrub_password = config.password.clone();
    let stderr_reader = thread::spawn(move || capture_stderr(stderr, &scrub_password));
    if let Some(stdout) = stdout {
        for_each_line(stdout, |line| on_line(&scrub(line, &config.password)));
    }
    let status =
        guard.wait().map_err(|source| ResticError::Io { what: "cannot wait for restic".to_string(), source })?;
    let stderr = stderr_reader.join().unwrap_or_default();
    drop(password_file.dir);
    Ok(Finished { status, stderr })
}

fn capture_stderr(stderr: Option<impl Read>, password: &Secret) -> StderrCapture {
    let mut capture = StderrCapture::default();
    if let Some(stderr) = stderr {
        for_each_line(stderr, |line| capture.take_line(scrub(line, password)));
    }
    capture
}

/// Calls `each` per line (lossily decoded, without the line end) until EOF or a read error.
fn for_each_line(reader: impl Read, mut each: impl FnMut(&str)) {
    let mut reader = BufReader::new(reader);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer);
                each(line.trim_end_matches(['\n', '\r']));
            }
        }
    }
}

/// Replaces the password wherever it appears; restic does not print it, this is a second guard.
fn scrub(line: &str, password: &Secret) -> String {
    let bytes = password.bytes();
    if bytes.len() < MIN_SCRUBBED_PASSWORD_BYTES {
        return line.to_string();
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if line.contains(text) => line.replace(text, "[redacted]"),
        _ => line.to_string(),
    }
}

/// The error for a failed run, from its exit code and stderr.
pub(crate) fn failure(operation: &'static str, config: &RepositoryConfig, finished: &Finished) -> ResticError {
    classify(operation, &config.display_location(), finished.exit_code(), &finished.stderr.text())
}

/// `--name=value`, so a value starting with `-` can never be read as a flag.
pub(crate) fn flag(name: &str, value: impl AsRef<OsStr>) -> OsString {
    let mut flag = OsString::from(format!("--{name}="));
    flag.push(value.as_ref());
    flag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_file_is_private_and_removed() {
        let password = Secret::new("correct horse battery staple");
        let file = PasswordFile::create(None, &password).expect("password file");
        let path = file.path.clone();
        let dir = file.dir.path().to_path_buf();
        assert_eq!(fs::metadata(&path).expect("file").permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&dir).expect("dir").permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::read(&path).expect("read"), b"correct horse battery staple");
        drop(file);
        assert!(!path.exists() && !dir.exists());
    }

    #[test]
    fn scrub_hides_the_password() {
        let password = Secret::new("s3cret-pass");
        assert_eq!(scrub("Fatal: s3cret-pass leaked", &password), "Fatal: [redacted] leaked");
        assert_eq!(scrub("Fatal: nothing", &password), "Fatal: nothing");
    }

    #[test]
    fn stderr_capture_stays_bounded() {
        let mut capture = StderrCapture::default();
        for index in 0..10_000 {
            capture.take_line(format!("line {index} {}", "x".repeat(100)));
        }
        assert_eq!(capture.lines.len(), MAX_STDERR_LINES);
        assert!(capture.tail.len() <= 2 * STDERR_TAIL_BYTES + 8);
        assert!(capture.tail.contains("line 9999"));
    }
}
