//! The agent's state dir: what enrollment wrote, the config, the lock that keeps a second
//! agent off the same dir, and the outbox.
//!
//! ```text
//! <state-dir>/agent.toml        optional configuration (see config.rs)
//! <state-dir>/agent.pem         mode 0600: client certificate and its private key, replaced
//!                               atomically together on renewal
//! <state-dir>/ca.pem            the controller's CA
//! <state-dir>/enrollment.json   host name and agent endpoint from enrollment
//! <state-dir>/agent.lock        held (flock) while `mangrove-agent run` runs
//! <state-dir>/outbox/           see outbox.rs
//! <state-dir>/tasks/            one journal file per task id (see tasks.rs)
//! ```

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// What enrollment told the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    pub host: String,
    pub agent_endpoint: String,
    pub enrolled_at_unix: i64,
}

#[derive(Debug, Clone)]
pub struct StateDir {
    pub dir: PathBuf,
}

/// Writes a file atomically (temp file, fsync, rename) with `mode`: a crash leaves the old
/// file or the new one, never half of either. The one way the agent replaces a file.
pub fn write_file_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    // `<name>.tmp`, not `with_extension`: `a.1` and `a.2` must not share a temp file.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| f.write_all(contents).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        // On a full disk the half-written temp file holds the space that was left.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself must survive a power cut too.
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => fs::File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

/// [`write_file_atomic`] with the path in the error.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    write_file_atomic(path, contents, mode).with_context(|| format!("cannot write {}", path.display()))
}

impl StateDir {
    pub fn new(dir: &Path) -> StateDir {
        StateDir { dir: dir.to_path_buf() }
    }

    pub fn identity(&self) -> PathBuf {
        self.dir.join("agent.pem")
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn enrollment_file(&self) -> PathBuf {
        self.dir.join("enrollment.json")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("agent.toml")
    }
    pub fn outbox(&self) -> PathBuf {
        self.dir.join("outbox")
    }
    pub fn tasks(&self) -> PathBuf {
        self.dir.join("tasks")
    }

    pub fn create(&self) -> Result<()> {
        fs::create_dir_all(&self.dir).with_context(|| format!("cannot create state dir {}", self.dir.display()))
    }

    /// Takes the state dir's lock for the life of the returned file: a second agent on the same
    /// dir would interleave two outboxes and two identities.
    pub fn lock(&self) -> Result<fs::File> {
        let path = self.dir.join("agent.lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(fs::TryLockError::WouldBlock) => {
                bail!(
                    "another mangrove-agent is running on state dir {} (it holds {})",
                    self.dir.display(),
                    path.display()
                )
            }
            Err(fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
        }
    }

    pub fn enrollment(&self) -> Result<Enrollment> {
        let path = self.enrollment_file();
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "{} is not enrolled ({} missing); run `mangrove-agent enroll` first",
                self.dir.display(),
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("{}: corrupt", path.display()))
    }

    pub fn write_enrollment(&self, e: &Enrollment) -> Result<()> {
        write_atomic(&self.enrollment_file(), &serde_json::to_vec_pretty(e)?, 0o644)
    }

    /// Stores certificate and key together, so they can never be out of step.
    pub fn write_identity(&self, cert_pem: &str, key_pem: &str) -> Result<()> {
        write_atomic(&self.identity(), format!("{cert_pem}{key_pem}").as_bytes(), 0o600)
    }

    /// The TLS client configuration for the agent port, from the files on disk now.
    pub fn client_tls(&self) -> Result<rustls::ClientConfig> {
        let id = fs::read_to_string(self.identity())
            .with_context(|| format!("cannot read {}", self.identity().display()))?;
        let ca = fs::read_to_string(self.ca()).with_context(|| format!("cannot read {}", self.ca().display()))?;
        let chain = proto::tls::certs_from_pem(&id).with_context(|| format!("{}", self.identity().display()))?;
        let key = proto::tls::key_from_pem(&id).with_context(|| format!("{}", self.identity().display()))?;
        let ca = proto::tls::certs_from_pem(&ca).with_context(|| format!("{}", self.ca().display()))?;
        Ok(proto::tls::mtls_client_config(&ca, chain, key)?)
    }

    /// (not_before, not_after) of the current certificate, in unix seconds.
    pub fn cert_validity(&self) -> Result<(i64, i64)> {
        let id = fs::read_to_string(self.identity())?;
        let chain = proto::tls::certs_from_pem(&id)?;
        let first = chain.first().context("no certificate")?;
        let (_, cert) = x509_parser::parse_x509_certificate(first).context("cannot parse the agent certificate")?;
        Ok((cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp()))
    }
}
