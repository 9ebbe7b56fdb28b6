//! Running the read-only commands the security collectors need, within a time budget and an
//! output budget.
//!
//! A command runs without a shell, with stdin on `/dev/null`, `LC_ALL=C` (the parsers read the
//! untranslated output) and no pager, in a process group of its own so that one `killpg(2)`
//! takes down everything it started. Programs are looked up in the system directories only,
//! never in the agent's `PATH`, so a writable directory early in `PATH` cannot substitute one.
//!
//! Output beyond the budget is not read: the command is killed as soon as the budget is
//! exceeded, what was read (cut back to the last whole line) is returned, and
//! [`Output::truncated`] says so. The callers decide what a truncated output still proves.

use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How long a collector's command may run before it is killed.
pub const TIME_BUDGET: Duration = Duration::from_secs(5);

/// How much of a command's standard output is kept.
pub const OUTPUT_BUDGET: usize = 256 * 1024;

/// How much of a command's standard error is kept (for error messages only).
const STDERR_BUDGET: usize = 4 * 1024;

/// Where programs are looked up, in this order.
const PROGRAM_DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"];

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Standard output, up to the output budget, as whole lines.
    pub stdout: String,
    /// Standard error, up to 4 KiB.
    pub stderr: String,
    /// The exit code; `None` when the command was killed (for example because its output went
    /// over the budget) or died of a signal.
    pub code: Option<i32>,
    /// The output went over the budget and was cut; the command was killed.
    pub truncated: bool,
}

impl Output {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The first line of standard error, or a description of the exit, for error messages.
    pub fn failure(&self) -> String {
        let first = self.stderr.lines().map(str::trim).find(|line| !line.is_empty());
        match (first, self.code) {
            (Some(line), _) => line.to_owned(),
            (None, Some(code)) => format!("exited with status {code}"),
            (None, None) => "was killed by a signal".to_owned(),
        }
    }
}

/// A command could not be run to the end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program is not in any of the system directories.
    #[error("{0} is not installed")]
    NotInstalled(String),
    /// The program exists but could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    /// The program did not finish within its time budget and was killed.
    #[error("{program} did not finish within {budget:?} and was killed")]
    Timeout { program: String, budget: Duration },
    /// The program's output or exit status could not be read.
    #[error("cannot read the result of {program}: {source}")]
    Read {
        program: String,
        #[source]
        source: io::Error,
    },
}

/// The absolute path of `program` in the system directories, if it is installed there.
pub fn find_program(program: &str) -> Option<PathBuf> {
    PROGRAM_DIRS.iter().map(|dir| PathBuf::from(dir).join(program)).find(|path| path.is_file())
}

/// Runs `program args…` within [`TIME_BUDGET`] and [`OUTPUT_BUDGET`] (the collectors pass
/// their own budgets to [`run_within`]; this is the default the tests use).
#[cfg(test)]
pub fn run(program: &str, args: &[&str]) -> Result<Output, RunError> {
    run_within(program, args, TIME_BUDGET, OUTPUT_BUDGET)
}

/// Runs `program args…`, killing its process group after `budget` or as soon as its standard
/// output exceeds `cap` bytes. A non-zero exit is not an error here: some commands report
/// through their exit code (`dnf check-update` exits 100 when updates are pending).
pub fn run_within(program: &str, args: &[&str], budget: Duration, cap: usize) -> Result<Output, RunError> {
    let path = find_program(program).ok_or_else(|| RunError::NotInstalled(program.to_owned()))?;
    let deadline = Instant::now() + budget;
    let mut child = Command::new(&path)
        .args(args)
        .env("LC_ALL", "C")
        .env("PAGER", "cat")
        .env("SYSTEMD_PAGER", "")
        .env("SYSTEMD_COLORS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| RunError::Spawn { program: program.to_owned(), source })?;
    let group = i32::try_from(child.id()).ok().map(Pid::from_raw);
    let timeout = || RunError::Timeout { program: program.to_owned(), budget };
    let read_error = |source| RunError::Read { program: program.to_owned(), source };

    // Threads read the pipes so that this one can give up at the deadline.
    let (sender, receiver) = mpsc::channel();
    let mut pending = 0;
    if let Some(stdout) = child.stdout.take() {
        spawn_reader(Stream::Stdout, stdout, cap, sender.clone()).map_err(|error| {
            kill_group(group, &mut child);
            read_error(error)
        })?;
        pending += 1;
    }
    if let Some(stderr) = child.stderr.take() {
        spawn_reader(Stream::Stderr, stderr, STDERR_BUDGET, sender).map_err(|error| {
            kill_group(group, &mut child);
            read_error(error)
        })?;
        pending += 1;
    }

    let mut output = Output::default();
    while pending > 0 {
        let Ok((stream, read)) = receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            kill_group(group, &mut child);
            return Err(timeout());
        };
        pending -= 1;
        let (bytes, over) = read.map_err(|error| {
            kill_group(group, &mut child);
            read_error(error)
        })?;
        match stream {
            Stream::Stdout => {
                output.truncated = over;
                output.stdout = whole_lines(&bytes, over);
                if over {
                    // Stop the command now: the rest of its output would only be thrown away.
                    kill_group(group, &mut child);
                }
            }
            Stream::Stderr => output.stderr = String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    // Both pipes are closed, so the command is exiting; wait for that within the deadline too.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                kill_group(group, &mut child);
                return Err(timeout());
            }
            Err(error) => {
                kill_group(group, &mut child);
                return Err(read_error(error));
            }
        }
    };
    output.code = exit_code(status, output.truncated);
    Ok(output)
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

type ReadResult = (Stream, io::Result<(Vec<u8>, bool)>);

/// Reads up to `cap` bytes of `pipe` on a thread and sends them with whether there was more.
/// Standard error is drained past its cap (a command must not block on it); standard output is
/// not, since the command is killed when it goes over.
fn spawn_reader(
    stream: Stream,
    mut pipe: impl Read + Send + 'static,
    cap: usize,
    sender: mpsc::Sender<ReadResult>,
) -> io::Result<()> {
    let name = match stream {
        Stream::Stdout => "security-cmd-stdout",
        Stream::Stderr => "security-cmd-stderr",
    };
    std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
        let mut bytes = Vec::new();
        let read = pipe.by_ref().take(limit).read_to_end(&mut bytes).and_then(|_| {
            let over = bytes.len() > cap;
            bytes.truncate(cap);
            if over && matches!(stream, Stream::Stderr) {
                io::copy(&mut pipe, &mut io::sink())?;
            }
            Ok((bytes, over))
        });
        // The receiver is gone only if the caller gave up already.
        let _ = sender.send((stream, read));
    })?;
    Ok(())
}

/// The text of `bytes`; when it was cut, without the last partial line, so parsers only see
/// whole lines.
fn whole_lines(bytes: &[u8], cut: bool) -> String {
    let kept =
        if cut { bytes.iter().rposition(|&byte| byte == b'\n').map_or(0, |newline| newline + 1) } else { bytes.len() };
    String::from_utf8_lossy(&bytes[..kept]).into_owned()
}

fn exit_code(status: ExitStatus, killed: bool) -> Option<i32> {
    if killed { None } else { status.code() }
}

/// Kills the command's process group and reaps the command.
fn kill_group(group: Option<Pid>, child: &mut Child) {
    match group.map(|pgid| killpg(pgid, Signal::SIGKILL)) {
        // ESRCH: nobody left in the group.
        None | Some(Ok(())) | Some(Err(Errno::ESRCH)) => {}
        Some(Err(error)) => {
            tracing::debug!(%error, "cannot kill the process group of a security collector command");
            let _ = child.kill();
        }
    }
    // Fails only if the child was reaped already.
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_and_exit_code_are_returned() {
        let output = run("sh", &["-c", "echo hello; echo oops >&2; exit 3"]).expect("sh runs");
        assert_eq!(output.stdout, "hello\n");
        assert_eq!(output.code, Some(3));
        assert!(!output.success());
        assert_eq!(output.failure(), "oops");
        assert!(!output.truncated);
    }

    #[test]
    fn a_missing_program_is_reported_as_not_installed() {
        let error = run("mangrove-no-such-program", &[]).expect_err("not installed");
        assert_eq!(error.to_string(), "mangrove-no-such-program is not installed");
    }

    #[test]
    fn output_over_the_budget_is_cut_at_a_line_and_the_command_killed() {
        let started = Instant::now();
        let output =
            run_within("sh", &["-c", "while :; do echo 0123456789; done"], TIME_BUDGET, 1000).expect("sh runs");
        assert!(output.truncated);
        assert_eq!(output.stdout.len(), 990, "whole lines of 11 bytes only");
        assert!(output.stdout.ends_with('\n'));
        assert_eq!(output.code, None);
        assert!(started.elapsed() < TIME_BUDGET, "killed at the cap, not at the deadline");
    }

    #[test]
    fn a_slow_command_and_its_children_are_killed_at_the_deadline() {
        let started = Instant::now();
        // The background sleep keeps stdout open: the whole group must go for the pipe to close.
        let error = run_within("sh", &["-c", "sleep 30.0917 & sleep 30.0917"], Duration::from_millis(300), 1024)
            .expect_err("times out");
        assert!(matches!(error, RunError::Timeout { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(100));
        let survivors = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
            .filter(|cmdline| String::from_utf8_lossy(cmdline).contains("30.0917"))
            .count();
        assert_eq!(survivors, 0, "the background sleep was killed with its group");
    }
}
