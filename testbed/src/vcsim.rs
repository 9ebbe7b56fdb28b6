//! VMware's vCenter simulator (govmomi's `simulator` package, as Debian ships it) for the
//! testbed and tests: building our launcher (testbed/vcsim) with Debian's Go, starting it
//! with a province's world, and stopping it.
//!
//! The Go source is compiled into this crate, so the launcher can be built from any working
//! directory; builds are cached by a hash of that source and the Go version.
//!
//! A started simulator names its state dir in its arguments (the password file lives there)
//! and runs with that dir as its working directory and `TMPDIR`, so `testbed down`
//! ([`crate::procs::stop_all`]) finds it like the testbed's other processes.

mod shape;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use shape::{Shape, ShapeDatastore, ShapeHost, ShapeVm, province_shape};

/// The launcher's source files, compiled in so a build needs no checkout.
const SOURCES: &[(&str, &str)] = &[
    ("main.go", include_str!("../vcsim/main.go")),
    ("export.go", include_str!("../vcsim/export.go")),
    ("shape.go", include_str!("../vcsim/shape.go")),
    ("tlsdir.go", include_str!("../vcsim/tlsdir.go")),
];

/// Where Debian installs Go library packages (a GOPATH).
pub const DEBIAN_GOPATH: &str = "/usr/share/gocode";
/// The govmomi simulator package inside [`DEBIAN_GOPATH`].
const GOVMOMI_SIMULATOR: &str = "src/github.com/vmware/govmomi/simulator";
/// The Debian package that provides `go`.
pub const GO_PACKAGE: &str = "golang-go";
/// The Debian package that provides the govmomi simulator library.
pub const GOVMOMI_PACKAGE: &str = "golang-github-vmware-govmomi-dev";
/// The line the launcher prints once it serves, followed by its URL.
const READY_PREFIX: &str = "vcsim ready: ";
/// How long [`Vcsim`]'s drop waits for the simulator to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why the simulator could not be built or started.
#[derive(Debug, thiserror::Error)]
pub enum VcsimError {
    #[error("go is not installed (no `go` on PATH): install the Debian package {GO_PACKAGE}")]
    MissingGo,
    #[error(
        "the govmomi simulator library is missing ({0} does not exist): install the Debian package {GOVMOMI_PACKAGE}"
    )]
    MissingGovmomi(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("building the vcsim launcher failed ({status}): {stderr}")]
    Build { status: ExitStatus, stderr: String },
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("vcsim exited before it was ready ({status}); the end of its log {log}:\n{tail}")]
    Exited { status: ExitStatus, log: PathBuf, tail: String },
    #[error("vcsim was not ready within {secs} s; the end of its log {log}:\n{tail}")]
    Timeout { secs: u64, log: PathBuf, tail: String },
    #[error("cannot build the simulated world: {0}")]
    Shape(String),
    #[error("cannot write the shape file {path}: {source}")]
    ShapeJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VcsimError + '_ {
    move |source| VcsimError::Io { path: path.to_path_buf(), source }
}

/// Whether the simulator can be built here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcsimAvailability {
    /// Go and govmomi are installed; `go` is this program.
    Available { go: PathBuf },
    /// Something is missing; `reason` says what and which package to install.
    Missing { reason: String },
}

/// Whether Go and the govmomi simulator package are present.
pub fn status() -> VcsimAvailability {
    match toolchain() {
        Ok(go) => VcsimAvailability::Available { go },
        Err(e) => VcsimAvailability::Missing { reason: e.to_string() },
    }
}

fn toolchain() -> Result<PathBuf, VcsimError> {
    let go = find_on_path("go").ok_or(VcsimError::MissingGo)?;
    let simulator = Path::new(DEBIAN_GOPATH).join(GOVMOMI_SIMULATOR);
    if !simulator.is_dir() {
        return Err(VcsimError::MissingGovmomi(simulator));
    }
    Ok(go)
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

/// Builds the launcher into `cache_dir` (unless a build of the same source with the same Go
/// is there already) and returns its path. Safe to call concurrently: each build works in
/// its own dir and the binary appears by an atomic rename.
///
/// # Errors
/// [`VcsimError::MissingGo`] / [`VcsimError::MissingGovmomi`] naming the Debian package to
/// install, [`VcsimError::Build`] with the compiler's output, [`VcsimError::Io`].
pub fn build_launcher(cache_dir: &Path) -> Result<PathBuf, VcsimError> {
    let go = toolchain()?;
    let version = Command::new(&go)
        .arg("version")
        .output()
        .map_err(|source| VcsimError::Spawn { program: go.clone(), source })?;
    let mut hash = Sha256::new();
    hash.update(&version.stdout);
    for (name, text) in SOURCES {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
        hash.update([0]);
    }
    let key = hex::encode(hash.finalize());
    let key = key.get(..16).unwrap_or(&key);
    let out = cache_dir.join(format!("mangrove-vcsim-{key}"));
    if out.is_file() {
        return Ok(out);
    }

    let work = cache_dir.join(format!("build-{key}-{}", std::process::id()));
    fs::create_dir_all(&work).map_err(io(&work))?;
    for (name, text) in SOURCES {
        let path = work.join(name);
        fs::write(&path, text).map_err(io(&path))?;
    }
    let tmp = work.join("mangrove-vcsim");
    let gocache = cache_dir.join("gocache");
    let result = Command::new(&go)
        .arg("build")
        .arg("-o")
        .arg(&tmp)
        .arg(".")
        .current_dir(&work)
        // Debian's Go packages are a GOPATH, not modules; the build is offline.
        .env("GO111MODULE", "off")
        .env("GOPATH", DEBIAN_GOPATH)
        .env("GOCACHE", &gocache)
        .env("GOFLAGS", "")
        .output()
        .map_err(|source| VcsimError::Spawn { program: go.clone(), source });
    let finished = result.and_then(|o| {
        if o.status.success() {
            fs::rename(&tmp, &out).map_err(io(&out))
        } else {
            Err(VcsimError::Build { status: o.status, stderr: String::from_utf8_lossy(&o.stderr).trim().to_owned() })
        }
    });
    // The build dir is scratch; a leftover only wastes space.
    let _ = fs::remove_dir_all(&work);
    finished.map(|()| out)
}

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Holds the password file, the shape file, the log (`vcsim.log`) and the datastores'
    /// backing dirs (`tmp/`). Inside a testbed dir, so `testbed down` finds the process.
    pub state_dir: PathBuf,
    /// Where to serve; port 0 picks a free one (the URL says which).
    pub listen: SocketAddr,
    pub username: String,
    /// Written to a mode-0600 file, never passed on the command line.
    pub password: String,
    /// Serve HTTPS with the certificate kept here (created with its CA `ca.pem` on first
    /// start); `None` serves plain HTTP.
    pub tls_dir: Option<PathBuf>,
    /// The world to serve; `None` serves the simulator's generated model (see `extra_args`).
    pub shape: Option<Shape>,
    /// More launcher flags, e.g. `-cluster 1 -host 9 -vm 3` without a shape.
    pub extra_args: Vec<String>,
    /// How long to wait for the ready line.
    pub ready_timeout: Duration,
}

impl StartOptions {
    /// HTTPS on a free loopback port as `administrator@vsphere.local`, TLS files in
    /// `state_dir/tls`, the generated model, 60 s to get ready.
    pub fn new(state_dir: &Path, password: &str) -> StartOptions {
        StartOptions {
            state_dir: state_dir.to_path_buf(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            username: "administrator@vsphere.local".to_owned(),
            password: password.to_owned(),
            tls_dir: Some(state_dir.join("tls")),
            shape: None,
            extra_args: Vec::new(),
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// A running simulator. Dropping it stops the process unless it was [`Vcsim::detach`]ed.
#[derive(Debug)]
pub struct Vcsim {
    child: Option<Child>,
    /// The SDK URL, e.g. `https://127.0.0.1:41234/sdk`.
    pub url: String,
    /// The CA that signed the server certificate, when serving HTTPS.
    pub ca_file: Option<PathBuf>,
    /// Where the simulator's stderr goes.
    pub log: PathBuf,
    pid: u32,
}

impl Vcsim {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Leaves the simulator running after this handle is gone (the testbed stops it with
    /// `testbed down`).
    pub fn detach(mut self) -> crate::Launched {
        // Dropping a Child neither kills nor waits for it.
        self.child = None;
        crate::Launched { pid: self.pid, log: self.log.clone() }
    }
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SIGTERM lets the launcher remove its datastore dirs; SIGKILL if it does not exit.
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < STOP_GRACE {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Starts `launcher` as `opts` say and waits for it to serve.
///
/// The process gets its own process group and closed stdin, like the testbed's other
/// processes ([`crate::launch`]); stderr is appended to `state_dir/vcsim.log`. Its
/// arguments name files in `state_dir`.
///
/// # Errors
/// [`VcsimError::Exited`] or [`VcsimError::Timeout`] with the end of the log when it does
/// not get ready; [`VcsimError::Io`] / [`VcsimError::Spawn`] for files and the process.
pub fn start(launcher: &Path, opts: &StartOptions) -> Result<Vcsim, VcsimError> {
    let dir = &opts.state_dir;
    fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join("tmp");
    fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    // Named `secret`, not `password`: process lists are world-readable, and monitoring flags
    // any argument that says password.
    let password_file = dir.join("secret");
    write_private(&password_file, format!("{}\n", opts.password).as_bytes())?;

    let mut args: Vec<String> = vec![
        "-listen".into(),
        opts.listen.to_string(),
        "-username".into(),
        opts.username.clone(),
        "-secret-file".into(),
        password_file.display().to_string(),
    ];
    if let Some(tls) = &opts.tls_dir {
        args.extend(["-tls-dir".into(), tls.display().to_string()]);
    }
    if let Some(shape) = &opts.shape {
        let file = dir.join("shape.json");
        let json =
            serde_json::to_vec_pretty(shape).map_err(|source| VcsimError::ShapeJson { path: file.clone(), source })?;
        fs::write(&file, json).map_err(io(&file))?;
        args.extend(["-shape".into(), file.display().to_string()]);
    }
    args.extend(opts.extra_args.iter().cloned());

    let log = dir.join("vcsim.log");
    let err = fs::OpenOptions::new().create(true).append(true).open(&log).map_err(io(&log))?;
    let mut child = Command::new(launcher)
        .args(&args)
        .current_dir(dir)
        // The simulator keeps datastore files in TMPDIR: inside the state dir, they go with it.
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|source| VcsimError::Spawn { program: launcher.to_path_buf(), source })?;
    let pid = child.id();

    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        // The launcher points its stdout at its log right after the ready line, so this
        // thread ends at EOF then (or when the process dies).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix(READY_PREFIX) {
                    let _ = tx.send(url.trim().to_owned());
                    break;
                }
            }
        });
    }

    let mut handle = Vcsim {
        child: Some(child),
        url: String::new(),
        ca_file: opts.tls_dir.as_ref().map(|d| d.join("ca.pem")),
        log: log.clone(),
        pid,
    };
    let deadline = Instant::now() + opts.ready_timeout;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(url) => {
                handle.url = url;
                return Ok(handle);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // stdout closed without a ready line: it is exiting; give it a moment.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if let Some(child) = handle.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            handle.child = None;
            return Err(VcsimError::Exited { status, log: log.clone(), tail: tail(&log) });
        }
        if Instant::now() >= deadline {
            // `handle` is dropped here, stopping the process.
            return Err(VcsimError::Timeout { secs: opts.ready_timeout.as_secs(), log: log.clone(), tail: tail(&log) });
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), VcsimError> {
    // Mode 0600 from creation (no window where others may read it); truncate an old one.
    let mut f =
        fs::OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))
}

/// The last lines of a log, for error messages.
fn tail(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = fs::File::open(log) {
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_source_is_the_launcher_dir() {
        for (name, text) in SOURCES {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("vcsim").join(name);
            assert_eq!(fs::read_to_string(&path).ok().as_deref(), Some(*text), "{}", path.display());
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vcsim");
        let on_disk = fs::read_dir(&dir)
            .map(|d| d.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "go")).count())
            .unwrap_or_default();
        assert_eq!(on_disk, SOURCES.len(), "a .go file in {} is not in SOURCES", dir.display());
    }

    #[test]
    fn a_launcher_that_exits_reports_its_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("fake");
        fs::write(&script, "#!/bin/sh\necho 'no such flag: -shape' >&2\nexit 2\n").expect("write");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let opts = StartOptions::new(&dir.path().join("state"), "pw");
        let err = start(&script, &opts).expect_err("it exits");
        assert!(matches!(err, VcsimError::Exited { .. }), "{err}");
        assert!(err.to_string().contains("no such flag"), "{err}");
        let mode = fs::metadata(dir.path().join("state/secret")).map(|m| m.permissions()).expect("password file");
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    }
}
