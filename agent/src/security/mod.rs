//! Security facts: what the policy controls judge (effective sshd settings, password and
//! lockout policy, accounts, firewall, time sync, logging, updates, listening sockets,
//! anti-malware), collected only when an assigned control needs them.
//!
//! Each collector reads files and runs read-only commands (see [`run`]: no shell, a time and an
//! output budget) and hands the text to a pure parser that is unit-tested on fixtures. The
//! output shapes are those of "Security collectors" in the policy format notes; a collector
//! that fails gives `{"error": "…"}` for itself only.
//!
//! [`Host`] is the thin reader between the two: it reads files relative to a root, which is `/`
//! on a real machine and a fixture tree in tests. Commands run only when the root is `/`; under
//! another root they are replayed from `<root>/_commands/` (see [`Host::run`]), so the fixture
//! tree exercises every collector end to end with recorded outputs.

mod accounts;
mod antimalware;
mod auditd;
mod firewall;
mod journald;
mod listening;
mod log_forwarding;
mod login_defs;
mod pam;
mod run;
mod sshd;
mod time_sync;
mod updates;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

pub use run::{OUTPUT_BUDGET, Output, RunError, TIME_BUDGET};

/// Every collector, by the name its output is keyed by under `host.facts.security` (the
/// protocol's list, which the policy packs are checked against).
pub const ALL: &[&str] = proto::SECURITY_COLLECTORS;

/// How long [`collect`] waits for all its collectors. The slowest command budget is apt's
/// 20 s; what takes longer is stuck outside any command (a hung filesystem) and is reported as
/// an error while its thread is left to finish on its own.
pub const COLLECT_BUDGET: Duration = Duration::from_secs(30);

/// Runs the collectors named (duplicates once each) against the machine under `root` (`/`
/// normally; a fixture tree in tests) and returns an object keyed by collector name. A collector
/// that fails, panics, overruns [`COLLECT_BUDGET`] or is unknown gives `{"error": "…"}` and does
/// not affect the others.
///
/// Collectors run in parallel threads, so the whole call takes about as long as the slowest
/// collector, each bounded by its commands' budgets. Blocking: call it from
/// `tokio::task::spawn_blocking`.
pub fn collect(names: &[&str], root: &Path) -> Value {
    collect_from(names, Host::new(root))
}

fn collect_from(names: &[&str], host: Host) -> Value {
    let deadline = Instant::now() + COLLECT_BUDGET;
    let host = Arc::new(host);
    let names: BTreeSet<&str> = names.iter().copied().collect();
    let mut results: BTreeMap<String, Value> = BTreeMap::new();
    let (sender, receiver) = mpsc::channel();
    for &name in &names {
        let (host, sender, owned) = (Arc::clone(&host), sender.clone(), name.to_owned());
        let spawned = std::thread::Builder::new().name(format!("security-{name}")).spawn(move || {
            // A panic is this collector's error only (the message goes to the panic hook).
            let value = panic::catch_unwind(AssertUnwindSafe(|| collect_one(&owned, &host)))
                .unwrap_or_else(|_| error(format!("the {owned} collector panicked")));
            // The receiver is gone only if collect gave up on this collector.
            let _ = sender.send((owned, value));
        });
        if let Err(spawn) = spawned {
            results.insert(name.to_owned(), error(format!("cannot start the {name} collector: {spawn}")));
        }
    }
    drop(sender);
    while results.len() < names.len() {
        match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((name, value)) => {
                results.insert(name, value);
            }
            Err(_) => break,
        }
    }
    for name in names {
        results.entry(name.to_owned()).or_insert_with(|| {
            error(format!("the {name} collector did not finish within {}s", COLLECT_BUDGET.as_secs()))
        });
    }
    Value::Object(results.into_iter().collect::<Map<_, _>>())
}

fn collect_one(name: &str, host: &Host) -> Value {
    let result = match name {
        "sshd" => sshd::collect(host),
        "login_defs" => login_defs::collect(host),
        "pam" => pam::collect(host),
        "accounts" => accounts::collect(host),
        "firewall" => firewall::collect(host),
        "time_sync" => time_sync::collect(host),
        "journald" => journald::collect(host),
        "auditd" => auditd::collect(host),
        "log_forwarding" => log_forwarding::collect(host),
        "updates" => updates::collect(host),
        "listening" => listening::collect(host),
        "antimalware" => antimalware::collect(host),
        unknown => Err(format!("unknown collector {unknown:?} (known: {})", ALL.join(", "))),
    };
    result.unwrap_or_else(error)
}

fn error(message: String) -> Value {
    json!({ "error": message })
}

/// Files larger than this are read only up to it (configuration files are far smaller).
const FILE_BUDGET: u64 = 1024 * 1024;

/// The machine the collectors look at: files under `root`, commands run for real only when
/// `root` is `/`.
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
    live: bool,
    now_unix: i64,
}

impl Host {
    /// The machine under `root`, now.
    pub fn new(root: &Path) -> Self {
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX));
        Self::at(root, now_unix)
    }

    /// The machine under `root` at a fixed time (tests compute ages against it).
    pub fn at(root: &Path, now_unix: i64) -> Self {
        Self { root: root.to_owned(), live: root == Path::new("/"), now_unix }
    }

    /// Seconds since the epoch, the time ages are computed against.
    pub fn now_unix(&self) -> i64 {
        self.now_unix
    }

    /// The real path of `path` (absolute, as on the machine).
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// The file at `path` as text (invalid UTF-8 replaced), up to 1 MiB; `Ok(None)` if it does
    /// not exist.
    pub fn read(&self, path: &str) -> Result<Option<String>, String> {
        self.read_bytes(path, FILE_BUDGET).map(|bytes| bytes.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// The first `cap` bytes of the file at `path`; `Ok(None)` if it does not exist.
    pub fn read_bytes(&self, path: &str, cap: u64) -> Result<Option<Vec<u8>>, String> {
        let mut bytes = Vec::new();
        match fs::File::open(self.path(path)).and_then(|file| file.take(cap).read_to_end(&mut bytes)) {
            Ok(_) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(format!("cannot read {path}: {error}")),
        }
    }

    /// Whether anything exists at `path`.
    pub fn exists(&self, path: &str) -> bool {
        self.path(path).symlink_metadata().is_ok()
    }

    /// Whether any of `paths` exists.
    pub fn any_exists(&self, paths: &[&str]) -> bool {
        paths.iter().any(|path| self.exists(path))
    }

    /// The modification time of `path` in seconds since the epoch.
    pub fn mtime_unix(&self, path: &str) -> Option<i64> {
        let modified = fs::metadata(self.path(path)).and_then(|metadata| metadata.modified()).ok()?;
        let since = modified.duration_since(UNIX_EPOCH).ok()?;
        i64::try_from(since.as_secs()).ok()
    }

    /// The files in directory `dir` whose names end with `suffix`, as machine paths sorted by
    /// name; empty if the directory does not exist.
    pub fn list(&self, dir: &str, suffix: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path(dir))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.ends_with(suffix) && !name.starts_with('.'))
            .collect();
        names.sort();
        let dir = dir.trim_end_matches('/');
        names.into_iter().map(|name| format!("{dir}/{name}")).collect()
    }

    /// Runs a read-only command within the budgets of [`run`]. Under a root other than `/`, the
    /// command is not run: its standard output is read from `<root>/_commands/<key>.out` and its
    /// exit code from `<key>.code` (0 if absent), where `<key>` is the program and its arguments
    /// joined by spaces with `/` and `:` replaced by `_`; no `.out` file means "not installed".
    pub fn run(&self, program: &str, args: &[&str]) -> Result<Output, RunError> {
        self.run_within(program, args, TIME_BUDGET, OUTPUT_BUDGET)
    }

    /// [`Host::run`] with another time budget and output cap.
    pub fn run_within(&self, program: &str, args: &[&str], budget: Duration, cap: usize) -> Result<Output, RunError> {
        if self.live {
            return run::run_within(program, args, budget, cap);
        }
        let key =
            std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ").replace(['/', ':'], "_");
        let dir = self.root.join("_commands");
        let read_error = |source| RunError::Read { program: program.to_owned(), source };
        let stdout = match fs::read(dir.join(format!("{key}.out"))) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(RunError::NotInstalled(program.to_owned()));
            }
            Err(error) => return Err(read_error(error)),
        };
        let code = match fs::read_to_string(dir.join(format!("{key}.code"))) {
            Ok(code) => code.trim().parse().map_err(|_| {
                read_error(io::Error::new(io::ErrorKind::InvalidData, format!("bad exit code in {key}.code")))
            })?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
            Err(error) => return Err(read_error(error)),
        };
        let truncated = stdout.len() > cap;
        let kept = if truncated { &stdout[..cap] } else { &stdout[..] };
        let mut stdout = String::from_utf8_lossy(kept).into_owned();
        if truncated {
            stdout.truncate(stdout.rfind('\n').map_or(0, |newline| newline + 1));
        }
        Ok(Output { stdout, stderr: String::new(), code: if truncated { None } else { Some(code) }, truncated })
    }

    /// Whether `program` is installed in one of the system directories under the root.
    pub fn has_program(&self, program: &str) -> bool {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
            .iter()
            .any(|dir| self.path(&format!("{dir}/{program}")).is_file())
    }

    /// The processes under `<root>/proc`: pid and name. The name is the base name of `argv[0]`
    /// (`comm` is cut at 15 bytes: "systemd-journal" could be journald or journal-upload),
    /// falling back to `comm` for kernel threads and processes hiding their command line.
    pub fn processes(&self) -> Vec<(u32, String)> {
        let mut processes: Vec<(u32, String)> = fs::read_dir(self.path("/proc"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let argv0 = fs::read(entry.path().join("cmdline")).ok().and_then(|cmdline| {
                    let first = cmdline.split(|&byte| byte == 0).next()?;
                    let first = String::from_utf8_lossy(first);
                    // Daemons that rewrite argv ("sshd: /usr/sbin/sshd -D [listener]") keep the
                    // program before a colon or space.
                    let program = first.split([' ', ':']).next()?;
                    let name = program.rsplit('/').next()?;
                    (!name.is_empty()).then(|| name.to_owned())
                });
                let name = argv0.or_else(|| {
                    fs::read_to_string(entry.path().join("comm")).ok().map(|comm| comm.trim().to_owned())
                })?;
                Some((pid, name))
            })
            .collect();
        processes.sort();
        processes
    }

    /// Whether a process with one of these names runs.
    pub fn running(&self, names: &[&str]) -> bool {
        self.processes().iter().any(|(_, name)| names.contains(&name.as_str()))
    }
}

/// Whole days from `then` to `now` (seconds since the epoch), never negative.
pub fn days_between(then: i64, now: i64) -> i64 {
    (now.saturating_sub(then) / 86_400).max(0)
}

#[cfg(test)]
mod tests;
