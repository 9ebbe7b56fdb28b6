//! The task runner: runs one program for a `command` task and turns whatever happened (exit,
//! signal, timeout, failure to start) into a [`TaskResult`].
//!
//! A program runs directly (no shell), with stdin on `/dev/null`, in a process group of its own,
//! so that a timeout, a cancelled task or the end of the program can take down everything it
//! started with one `killpg(2)`. Output is captured up to a cap per stream and the rest is read
//! and thrown away, so a chatty child never blocks on a full pipe and never costs the agent more
//! than the cap in memory.
//!
//! The runner knows nothing about task ids, deadlines or the outbox: the caller fills
//! `task_id`, decides whether a task may run at all, and stores the result.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use proto::v1::{TaskResult, TaskStatus};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::time::{Instant, sleep_until};

/// A program to run: no shell, so arguments reach it exactly as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Path or name (looked up in the agent's `PATH`) of the program.
    pub program: String,
    /// Arguments, not including the program name.
    pub args: Vec<String>,
    /// How long the program may run before its process group is killed.
    pub timeout: Duration,
}

/// How long to keep reading output after the program exited (and the rest of its process group
/// was killed) while a process that left the group still holds the pipes open.
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// How long to wait for the program to die after `SIGKILL` (a process in uninterruptible sleep,
/// e.g. on a hung NFS mount, does not die) before reporting the timeout anyway.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// Bytes read from a pipe at a time.
const READ_CHUNK: usize = 8 * 1024;

/// Runs a program directly (no shell), stdin closed (`/dev/null`), in its own process group,
/// capturing stdout and stderr each capped at `output_cap` bytes (the rest is read and discarded
/// and the `*_truncated` flag set: the child never blocks on a full pipe).
///
/// Returns a [`TaskResult`] with `task_id` empty (the caller fills it) and `started_unix_ms` /
/// `finished_unix_ms` set, and:
/// - `Exited` with `exit_code` the program's exit code, or 128 + the signal number when a signal
///   killed it (like a shell's `$?`);
/// - `TimedOut` with `exit_code` -1 when it ran past `spec.timeout`: its whole process group is
///   sent `SIGKILL`, and the output read until then is kept;
/// - `Failed` with `exit_code` -1 and `error` saying what, when it could not be started (e.g.
///   "cannot start /no/such: No such file or directory").
///
/// # Guarantees
///
/// - When the program exits, whatever is left of its process group (background children) is
///   killed with `SIGKILL` too: a task leaves nothing behind in its group, and a straggler
///   holding the output pipes cannot stretch the task to its timeout. A program that must
///   outlive its task has to start its own session (`setsid`), as daemons do.
/// - A process that left the group but still holds the pipes is waited for at most
///   [`DRAIN_GRACE`] after the exit; the output is then reported as it is, with `error` saying it
///   may be incomplete (the status stays `Exited`).
/// - Memory: at most `output_cap` bytes per stream plus two read buffers.
///
/// # Idempotence and cancellation
///
/// Not idempotent in itself: every call runs the program again. The caller guards by task id
/// (a task whose id already has a result is not run again; one that was running when the agent
/// died is reported `Interrupted`, never re-run).
///
/// Cancellation-safe in the sense that dropping the future kills the program's process group
/// (`SIGKILL`) and reaps the program in the background; no result is produced, and the program
/// may have done part of its work.
///
/// # Assumptions
///
/// The program inherits the agent's environment, working directory and user. Must run inside
/// a Tokio runtime with IO and time enabled. The process group id is the program's pid; the
/// group is signalled only while that id cannot have been reused: before the program is
/// reaped, or right after, while the group still has members.
pub async fn run_command(spec: &CommandSpec, output_cap: usize) -> TaskResult {
    let started_unix_ms = unix_ms_now();
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return TaskResult {
                status: TaskStatus::Failed as i32,
                exit_code: -1,
                error: format!("cannot start {}: {}", spec.program, describe(&error)),
                started_unix_ms,
                finished_unix_ms: unix_ms_now(),
                ..TaskResult::default()
            };
        }
    };
    // Declared after `child` so that it is dropped first: on cancellation the group is killed
    // while the program is not yet reaped and its pid still names the group.
    let mut group = ProcessGroup::of(child.id());
    tracing::debug!(program = %spec.program, pid = child.id(), "program started");

    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut out = Capture::new(output_cap, stdout.is_some());
    let mut err = Capture::new(output_cap, stderr.is_some());
    let mut out_buf = vec![0_u8; READ_CHUNK];
    let mut err_buf = vec![0_u8; READ_CHUNK];

    let now = Instant::now();
    let deadline = now.checked_add(spec.timeout).unwrap_or_else(|| far_future(now));
    let mut exit: Option<io::Result<ExitStatus>> = None;
    let mut timed_out = false;
    // Set once the program exited or was killed: when to stop waiting for the rest.
    let mut give_up: Option<Instant> = None;
    let mut gave_up = false;

    while exit.is_none() || out.open || err.open {
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buf), if out.open => out.record(read, &out_buf),
            read = read_some(&mut stderr, &mut err_buf), if err.open => err.record(read, &err_buf),
            status = child.wait(), if exit.is_none() => {
                // Background children of the program: kill them so that they neither outlive
                // the task nor hold the pipes open.
                group.kill();
                exit = Some(status);
                give_up = Some(Instant::now() + DRAIN_GRACE);
            }
            () = sleep_until(deadline), if exit.is_none() && !timed_out => {
                tracing::debug!(program = %spec.program, timeout = ?spec.timeout, "program timed out");
                timed_out = true;
                group.kill();
                give_up = Some(Instant::now() + KILL_GRACE);
            }
            () = sleep_until(give_up.unwrap_or(deadline)), if give_up.is_some() => {
                gave_up = true;
                break;
            }
        }
    }
    group.disarm();

    let mut result = TaskResult {
        stdout_truncated: out.truncated,
        stderr_truncated: err.truncated,
        stdout: out.bytes,
        stderr: err.bytes,
        started_unix_ms,
        finished_unix_ms: unix_ms_now(),
        ..TaskResult::default()
    };
    match exit {
        _ if timed_out => {
            result.status = TaskStatus::TimedOut as i32;
            result.exit_code = -1;
            result.error = format!("timed out after {:?}", spec.timeout);
            if gave_up && exit.is_none() {
                result.error.push_str("; the program did not die after SIGKILL");
            }
        }
        Some(Ok(status)) => {
            result.status = TaskStatus::Exited as i32;
            result.exit_code = exit_code(status);
            if gave_up {
                result.error = "output may be incomplete: a process outside the task's \
                                process group kept stdout or stderr open"
                    .to_owned();
            }
        }
        Some(Err(error)) => {
            result.status = TaskStatus::Failed as i32;
            result.exit_code = -1;
            result.error = format!("cannot wait for {}: {}", spec.program, describe(&error));
        }
        None => {
            // The loop ends without an exit status only after a timeout.
            result.status = TaskStatus::Failed as i32;
            result.exit_code = -1;
            result.error = format!("lost track of {}", spec.program);
        }
    }
    result
}

/// The exit code as a shell reports it: the code, or 128 + the signal that killed the program.
fn exit_code(status: ExitStatus) -> i32 {
    status.code().or_else(|| status.signal().map(|signal| 128 + signal)).unwrap_or(-1)
}

/// An IO error without the "(os error N)" suffix, e.g. "No such file or directory".
fn describe(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => Errno::from_raw(code).desc().to_owned(),
        None => error.to_string(),
    }
}

fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A deadline that never comes, for timeouts too large to add to `now`.
fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Reads what is available from a pipe; a missing pipe reads as end of file. Cancel-safe, as
/// tokio's `read` is: if another branch wins, no data was read.
async fn read_some<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => Ok(0),
    }
}

/// One output stream: the first `cap` bytes, whether more came, whether the pipe is still open.
struct Capture {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
    open: bool,
}

impl Capture {
    fn new(cap: usize, open: bool) -> Self {
        Self { bytes: Vec::new(), cap, truncated: false, open }
    }

    fn record(&mut self, read: io::Result<usize>, chunk: &[u8]) {
        match read {
            Ok(0) => self.open = false,
            Ok(n) => {
                let chunk = chunk.get(..n).unwrap_or(chunk);
                let room = self.cap.saturating_sub(self.bytes.len());
                if chunk.len() > room {
                    self.truncated = true;
                }
                self.bytes.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                tracing::debug!(%error, "cannot read program output");
                self.open = false;
            }
        }
    }
}

/// The program's process group, killed with `SIGKILL` on [`kill`](Self::kill) and on drop
/// (cancellation) unless disarmed.
struct ProcessGroup {
    pgid: Option<Pid>,
}

impl ProcessGroup {
    /// The group led by the program with this pid (its pid is its group id, from
    /// `process_group(0)`). `None` only if the program was already reaped.
    fn of(pid: Option<u32>) -> Self {
        Self { pgid: pid.and_then(|pid| i32::try_from(pid).ok()).map(Pid::from_raw) }
    }

    fn kill(&self) {
        let Some(pgid) = self.pgid else { return };
        match killpg(pgid, Signal::SIGKILL) {
            // ESRCH: nobody left in the group.
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(error) => {
                tracing::debug!(pgid = pgid.as_raw(), %error, "cannot kill process group")
            }
        }
    }

    /// The task is over: the group must not be signalled again (its id may be reused).
    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(program: &str, args: &[&str], timeout: Duration) -> CommandSpec {
        CommandSpec { program: program.to_owned(), args: args.iter().map(|arg| (*arg).to_owned()).collect(), timeout }
    }

    async fn run(program: &str, args: &[&str]) -> TaskResult {
        run_command(&spec(program, args, Duration::from_secs(10)), 64 * 1024).await
    }

    /// Processes whose command line is exactly `args` (zombies have none and do not count).
    fn processes_running(args: &[&str]) -> Vec<String> {
        let wanted: Vec<u8> = args.iter().flat_map(|arg| [arg.as_bytes(), b"\0"].concat()).collect();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
            .filter(|entry| std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| cmdline == wanted))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[tokio::test]
    async fn echo_exits_zero_with_its_output() {
        let result = run("echo", &["hi"]).await;
        assert_eq!(result.status, TaskStatus::Exited as i32, "{result:?}");
        assert_eq!(result.exit_code, 0);
        assert_eq!(result.stdout, b"hi\n");
        assert!(result.stderr.is_empty());
        assert!(!result.stdout_truncated && !result.stderr_truncated);
        assert!(result.error.is_empty());
        assert!(result.task_id.is_empty());
        assert!(result.started_unix_ms > 0);
        assert!(result.finished_unix_ms >= result.started_unix_ms);
    }

    #[tokio::test]
    async fn false_exits_one() {
        let result = run("false", &[]).await;
        assert_eq!(result.status, TaskStatus::Exited as i32);
        assert_eq!(result.exit_code, 1);
    }

    #[tokio::test]
    async fn stderr_and_exit_code_are_kept_apart() {
        let result = run("sh", &["-c", "echo out; echo err >&2; exit 3"]).await;
        assert_eq!(result.status, TaskStatus::Exited as i32);
        assert_eq!(result.exit_code, 3);
        assert_eq!(result.stdout, b"out\n");
        assert_eq!(result.stderr, b"err\n");
    }

    #[tokio::test]
    async fn arguments_reach_the_program_without_a_shell() {
        let result = run("echo", &["$HOME", "a b", "*"]).await;
        assert_eq!(result.stdout, b"$HOME a b *\n");
    }

    #[tokio::test]
    async fn stdin_is_closed() {
        let result = run("cat", &[]).await;
        assert_eq!(result.status, TaskStatus::Exited as i32);
        assert_eq!(result.exit_code, 0);
        assert!(result.stdout.is_empty());
    }

    #[tokio::test]
    async fn death_by_signal_is_128_plus_the_signal() {
        let result = run("sh", &["-c", "kill -9 $$"]).await;
        assert_eq!(result.status, TaskStatus::Exited as i32);
        assert_eq!(result.exit_code, 137);
    }

    #[tokio::test]
    async fn a_missing_program_fails_to_start() {
        let result = run("/no/such", &[]).await;
        assert_eq!(result.status, TaskStatus::Failed as i32);
        assert_eq!(result.exit_code, -1);
        assert_eq!(result.error, "cannot start /no/such: No such file or directory");
        assert!(result.finished_unix_ms >= result.started_unix_ms);
    }

    #[tokio::test]
    async fn a_program_past_its_timeout_is_killed() {
        let begun = std::time::Instant::now();
        let result = run_command(&spec("sleep", &["10"], Duration::from_millis(200)), 1024).await;
        assert!(begun.elapsed() < Duration::from_secs(1), "took {:?}", begun.elapsed());
        assert_eq!(result.status, TaskStatus::TimedOut as i32, "{result:?}");
        assert_eq!(result.exit_code, -1);
        assert_eq!(result.error, "timed out after 200ms");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        // A duration no other test uses, to find the processes by their command line.
        let marker = ["sleep", "30.0417"];
        let script = "sleep 30.0417 & sleep 30.0417";
        let result = run_command(&spec("sh", &["-c", script], Duration::from_millis(300)), 1024).await;
        assert_eq!(result.status, TaskStatus::TimedOut as i32, "{result:?}");
        assert_eq!(processes_running(&marker), Vec::<String>::new());
    }

    #[tokio::test]
    async fn output_written_before_the_timeout_is_kept() {
        let result =
            run_command(&spec("sh", &["-c", "echo started; sleep 10"], Duration::from_millis(300)), 1024).await;
        assert_eq!(result.status, TaskStatus::TimedOut as i32);
        assert_eq!(result.stdout, b"started\n");
    }

    #[tokio::test]
    async fn background_children_do_not_outlive_the_program() {
        let marker = ["sleep", "30.0419"];
        let begun = std::time::Instant::now();
        let result = run("sh", &["-c", "sleep 30.0419 & echo done"]).await;
        assert!(begun.elapsed() < Duration::from_secs(2), "took {:?}", begun.elapsed());
        assert_eq!(result.status, TaskStatus::Exited as i32, "{result:?}");
        assert_eq!(result.exit_code, 0);
        assert_eq!(result.stdout, b"done\n");
        assert!(result.error.is_empty());
        assert_eq!(processes_running(&marker), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_detached_process_holding_the_pipes_does_not_hold_up_the_result() {
        let marker = ["sleep", "30.0423"];
        let begun = std::time::Instant::now();
        let result = run("sh", &["-c", "setsid sleep 30.0423 & sleep 0.2; echo x"]).await;
        let elapsed = begun.elapsed();
        // The detached sleep left the process group; end it by hand.
        for pid in processes_running(&marker) {
            if let Ok(pid) = pid.parse() {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        assert!(elapsed < DRAIN_GRACE + Duration::from_secs(1), "took {elapsed:?}");
        assert_eq!(result.status, TaskStatus::Exited as i32, "{result:?}");
        assert_eq!(result.exit_code, 0);
        assert_eq!(result.stdout, b"x\n");
        assert!(result.error.starts_with("output may be incomplete"), "{result:?}");
    }

    #[tokio::test]
    async fn output_beyond_the_cap_is_drained_and_flagged() {
        let result = run_command(&spec("head", &["-c", "1000000", "/dev/zero"], Duration::from_secs(10)), 1000).await;
        assert_eq!(result.status, TaskStatus::Exited as i32, "{result:?}");
        assert_eq!(result.exit_code, 0);
        assert_eq!(result.stdout.len(), 1000);
        assert!(result.stdout_truncated);
        assert!(!result.stderr_truncated);
    }

    #[tokio::test]
    async fn both_streams_are_capped_separately() {
        let script = "head -c 100000 /dev/zero; head -c 100000 /dev/zero >&2";
        let result = run_command(&spec("sh", &["-c", script], Duration::from_secs(10)), 10).await;
        assert_eq!(result.exit_code, 0);
        assert_eq!((result.stdout.len(), result.stderr.len()), (10, 10));
        assert!(result.stdout_truncated && result.stderr_truncated);
    }

    #[tokio::test]
    async fn a_cancelled_run_kills_the_process_group() {
        let marker = ["sleep", "30.0421"];
        let task = spec("sh", &["-c", "sleep 30.0421 & sleep 30.0421"], Duration::from_secs(60));
        let cancelled = tokio::time::timeout(Duration::from_millis(300), run_command(&task, 1024)).await;
        assert!(cancelled.is_err());
        // SIGKILL was sent when the future was dropped; give the kernel a moment to deliver it.
        let begun = std::time::Instant::now();
        while !processes_running(&marker).is_empty() && begun.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(processes_running(&marker), Vec::<String>::new());
    }

    #[test]
    fn captures_keep_the_first_bytes_up_to_the_cap() {
        let mut capture = Capture::new(5, true);
        capture.record(Ok(3), b"abc");
        assert_eq!((capture.bytes.as_slice(), capture.truncated), (&b"abc"[..], false));
        capture.record(Ok(2), b"de");
        assert_eq!((capture.bytes.as_slice(), capture.truncated), (&b"abcde"[..], false));
        capture.record(Ok(1), b"f");
        assert_eq!((capture.bytes.as_slice(), capture.truncated), (&b"abcde"[..], true));
        assert!(capture.open);
        capture.record(Ok(0), b"");
        assert!(!capture.open);
    }
}
