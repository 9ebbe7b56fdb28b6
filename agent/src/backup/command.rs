//! Runs a backup's `pre` commands and a restore's `probe` on the task's blocking thread.
//!
//! The same rules as the `command` task runner (`runner.rs`): no shell, stdin on `/dev/null`,
//! a process group of its own killed with `SIGKILL` on timeout and once the program exits.
//! It differs where these steps need it: it is synchronous (the whole backup task runs on one
//! blocking thread), it can set environment variables (the probe gets `MANGROVE_RESTORE_DIR`),
//! stdout is thrown away (a `pg_dump` writes its file, not the agent's memory) and only the end
//! of stderr is kept, for the error message.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Most bytes of stderr kept for an error message (the end: where programs say what failed).
pub const STDERR_TAIL_BYTES: usize = 2048;
/// How often a running program is looked at.
const POLL: Duration = Duration::from_millis(20);
/// How long to wait for stderr to close after the program ended (a process that left the
/// group may hold it).
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// A program to run, as a task names it.
pub struct Step<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    pub env: &'a [(&'a str, &'a std::ffi::OsStr)],
    pub timeout: Duration,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Exit code, or 128 + the signal that killed it (as a shell's `$?`).
    Exited(i32),
    TimedOut,
    /// It could not be started; why.
    NotStarted(String),
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub ended: Ended,
    /// The end of what it wrote to stderr, at most [`STDERR_TAIL_BYTES`], lossily decoded.
    pub stderr_tail: String,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.ended == Ended::Exited(0)
    }

    /// The exit code a task reports for it: the program's, or -1 when it has none.
    pub fn exit_code(&self) -> i32 {
        match self.ended {
            Ended::Exited(code) => code,
            Ended::TimedOut | Ended::NotStarted(_) => -1,
        }
    }

    /// One line for an error message: what happened to `what`, and its stderr's end.
    pub fn describe(&self, what: &str, timeout: Duration) -> String {
        let ended = match &self.ended {
            Ended::Exited(code) => format!("{what} exited with code {code}"),
            Ended::TimedOut => format!("{what} timed out after {}", humantime::format_duration(timeout)),
            Ended::NotStarted(why) => format!("{what} could not be started: {why}"),
        };
        let tail = self.stderr_tail.trim();
        if tail.is_empty() { ended } else { format!("{ended}; stderr: {tail}") }
    }
}

/// Runs `step` to its end or its timeout. Not idempotent: the program runs every call.
pub fn run(step: &Step<'_>) -> Outcome {
    let mut command = Command::new(step.program);
    command.args(step.args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).process_group(0);
    for (name, value) in step.env {
        command.env(name, value);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => return Outcome { ended: Ended::NotStarted(error.to_string()), stderr_tail: String::new() },
    };
    let stderr = read_tail_in_background(&mut child);
    let ended = wait_or_kill(&mut child, step.timeout);
    let stderr_tail = stderr.recv_timeout(DRAIN_GRACE).unwrap_or_default();
    Outcome { ended, stderr_tail }
}

/// Waits for the program until `timeout`, then kills its group; either way kills whatever is
/// left of the group once the program is gone, so nothing it started outlives the step.
fn wait_or_kill(child: &mut Child, timeout: Duration) -> Ended {
    let group = i32::try_from(child.id()).ok().map(Pid::from_raw);
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                kill_group(group);
                return Ended::Exited(exit_code(status));
            }
            Ok(None) if started.elapsed() >= timeout => {
                kill_group(group);
                let _ = child.wait();
                return Ended::TimedOut;
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(error) => {
                kill_group(group);
                let _ = child.wait();
                return Ended::NotStarted(format!("cannot wait for it: {error}"));
            }
        }
    }
}

fn kill_group(group: Option<Pid>) {
    let Some(group) = group else { return };
    match killpg(group, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(error) => tracing::debug!(pgid = group.as_raw(), %error, "cannot kill process group"),
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    status.code().or_else(|| status.signal().map(|signal| 128 + signal)).unwrap_or(-1)
}

/// Reads stderr to its end on a thread of its own (so a chatty program never blocks on a full
/// pipe) and sends back its last [`STDERR_TAIL_BYTES`].
fn read_tail_in_background(child: &mut Child) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    if let Some(mut pipe) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut tail: Vec<u8> = Vec::new();
            let mut chunk = [0_u8; 8192];
            while let Ok(read) = pipe.read(&mut chunk) {
                let Some(bytes) = chunk.get(..read).filter(|b| !b.is_empty()) else { break };
                tail.extend_from_slice(bytes);
                if tail.len() > 2 * STDERR_TAIL_BYTES {
                    tail.drain(..tail.len() - STDERR_TAIL_BYTES);
                }
            }
            let start = tail.len().saturating_sub(STDERR_TAIL_BYTES);
            let _ = sender.send(String::from_utf8_lossy(tail.get(start..).unwrap_or_default()).into_owned());
        });
    } else {
        let _ = sender.send(String::new());
    }
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_sh(script: &str, timeout: Duration) -> Outcome {
        let args = vec!["-c".to_string(), script.to_string()];
        run(&Step { program: "sh", args: &args, env: &[], timeout })
    }

    #[test]
    fn exit_code_and_the_end_of_stderr_are_kept() {
        let outcome =
            run_sh("echo out; echo 'pg_dump: error: connection refused' >&2; exit 3", Duration::from_secs(10));
        assert_eq!(outcome.ended, Ended::Exited(3));
        assert_eq!(outcome.stderr_tail.trim(), "pg_dump: error: connection refused");
        assert!(outcome.describe("pre command 1 (sh)", Duration::ZERO).contains("exited with code 3; stderr: pg_dump"));
    }

    #[test]
    fn only_the_tail_of_a_long_stderr_is_kept() {
        let outcome =
            run_sh("head -c 100000 /dev/zero | tr '\\0' x >&2; echo THE-END >&2; exit 1", Duration::from_secs(10));
        assert_eq!(outcome.ended, Ended::Exited(1));
        assert!(outcome.stderr_tail.len() <= STDERR_TAIL_BYTES);
        assert!(outcome.stderr_tail.trim_end().ends_with("THE-END"));
    }

    #[test]
    fn a_step_past_its_timeout_is_killed() {
        let begun = Instant::now();
        let outcome = run_sh("sleep 10", Duration::from_millis(200));
        assert_eq!(outcome.ended, Ended::TimedOut);
        assert!(begun.elapsed() < Duration::from_secs(3), "took {:?}", begun.elapsed());
        assert_eq!(outcome.exit_code(), -1);
    }

    #[test]
    fn environment_reaches_the_program_and_a_missing_one_is_not_started() {
        let args = vec!["-c".to_string(), "test \"$MANGROVE_RESTORE_DIR\" = /r".to_string()];
        let env = [("MANGROVE_RESTORE_DIR", std::ffi::OsStr::new("/r"))];
        let outcome = run(&Step { program: "sh", args: &args, env: &env, timeout: Duration::from_secs(10) });
        assert!(outcome.succeeded(), "{outcome:?}");
        let missing = run(&Step { program: "/no/such", args: &[], env: &[], timeout: Duration::from_secs(1) });
        assert!(matches!(missing.ended, Ended::NotStarted(_)), "{missing:?}");
    }
}
