//! Finding and stopping the processes of a testbed: every process whose command line names
//! the testbed dir.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// (pid, argv) of the processes whose arguments mention `dir`, except this process.
pub fn under(dir: &Path) -> Vec<(u32, Vec<String>)> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else { return out };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(raw) = fs::read(e.path().join("cmdline")) else { continue };
        let argv: Vec<String> =
            raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if argv.iter().any(|a| mentions(a, &needle)) {
            out.push((pid, argv));
        }
    }
    out.sort();
    out
}

/// True if `arg` is `dir` or a path inside it (not merely a sibling sharing a prefix).
fn mentions(arg: &str, dir: &str) -> bool {
    let value = arg.split_once('=').map_or(arg, |(_, v)| v);
    value == dir || value.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// Whether `pid` is a live process (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent's wait is missing.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn pid(p: u32) -> Option<Pid> {
    i32::try_from(p).ok().map(Pid::from_raw)
}

/// Stops every process of the testbed in `dir`: SIGTERM, then SIGKILL for those still alive
/// after `grace`. Agents go first so they do not spend the controller's shutdown reconnecting.
/// Returns how many processes were stopped.
pub fn stop_all(dir: &Path, grace: Duration) -> usize {
    let procs = under(dir);
    let (agents, rest): (Vec<_>, Vec<_>) =
        procs.iter().partition(|(_, argv)| argv.first().is_some_and(|a| a.ends_with("mangrove-agent")));
    for group in [agents, rest] {
        for (p, _) in &group {
            if let Some(p) = pid(*p) {
                // A process that exits in between is what we wanted anyway.
                let _ = kill(p, Signal::SIGCONT);
                let _ = kill(p, Signal::SIGTERM);
            }
        }
        let start = Instant::now();
        while group.iter().any(|(p, _)| alive(*p)) && start.elapsed() < grace {
            std::thread::sleep(Duration::from_millis(50));
        }
        for (p, _) in &group {
            if alive(*p)
                && let Some(p) = pid(*p)
            {
                let _ = kill(p, Signal::SIGKILL);
            }
        }
    }
    procs.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_only_the_dir_and_paths_inside_it() {
        assert!(mentions("/tmp/tb", "/tmp/tb"));
        assert!(mentions("/tmp/tb/agents/x", "/tmp/tb"));
        assert!(mentions("--state-dir=/tmp/tb/agents/x", "/tmp/tb"));
        assert!(!mentions("/tmp/tb2/agents/x", "/tmp/tb"));
        assert!(!mentions("/tmp", "/tmp/tb"));
    }

    #[test]
    fn stops_a_process_that_names_the_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("marker");
        std::fs::write(&marker, "").expect("marker");
        // `tail -f PATH` keeps the path in its argv and never forks (a shell running `sleep`
        // would: between its fork and the exec, two processes name the dir).
        let mut child = std::process::Command::new("tail").arg("-f").arg(&marker).spawn().expect("spawn tail");
        // Until the child has exec'd, its command line is still this test's.
        let mut found = Vec::new();
        for _ in 0..100 {
            found = under(dir.path());
            if found.iter().any(|(p, _)| *p == child.id()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(found.iter().any(|(p, _)| *p == child.id()), "{found:?}");
        assert_eq!(stop_all(dir.path(), Duration::from_secs(5)), 1);
        let status = child.wait().expect("wait");
        assert!(!status.success());
        assert!(under(dir.path()).is_empty());
    }
}
