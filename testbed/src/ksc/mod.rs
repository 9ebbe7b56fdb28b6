//! A Kaspersky Security Center Open API simulator: the province's 2,753 managed computers in
//! their administration groups, served the way `/work/shared/protocols/kaspersky-ksc-openapi.md`
//! describes (HTTPS, `POST /api/v1.0/Class.Method`, typed values, `PxgRetVal` and `PxgError`
//! envelopes).
//!
//! # Protocol
//! - `POST /api/v1.0/login` with `Authorization: KSCBasic user="<b64>", pass="<b64>",
//!   domain="…", internal="0|1"` (domain raw or base64, `internal` optional): 200 `{}`, or 401.
//!   The login is bound to its TLS connection; a call on a connection that has not logged in
//!   is answered 401 (no session header or cookie is ever needed).
//! - `Session.StartSession` returns a token that authenticates a fresh connection through
//!   `X-KSC-Session` [Inferred]; `Session.Ping`; `Session.EndSession`, after which every call
//!   in that session answers **403**.
//! - `HostGroup.GroupIdGroups` (0), `GroupIdUnassigned` (1), `GroupIdSuper` (2),
//!   `GetSubgroups {nGroupId, nDepth}` (0 = unlimited), `GetGroupId {nParent, strName}`,
//!   `FindHosts {wstrFilter, vecFieldsToReturn, vecFieldsToOrder, pParams, lMaxLifeTime}` →
//!   count + `strAccessor`, `GetHostInfo {strHostName, pFields2Return}`.
//! - `ChunkAccessor.GetItemsCount`, `GetItemsChunk {strAccessor, nStart, nCount}` →
//!   `pChunk.KLCSP_ITERATOR_ARRAY` of params containers, `Release`. Result sets expire after
//!   `lMaxLifeTime` seconds (at most 7200).
//! - Host records carry only the attributes asked for and omit null ones; datetimes are
//!   `{"type": "datetime", "value": "YYYY-MM-DDTHH:MM:SSZ"}`. Filters: the empty filter, and
//!   `(&…)(|…)(!…)` over comparisons `ATTR op N` or `ATTR & MASK op N` on integer attributes.
//! - Errors: HTTP 200 with `{"PxgError": {"code", "module", "message"}}` [Inferred status].
//!
//! # Truth and faults
//! [`seed::seed`] builds the fleet from the inventory and the configured seed; its
//! [`seed::Truth`] is written to `state_dir/ksc-truth.json` at start and returned by
//! [`truth`]. A word in `state_dir/fault` injects a fault for as long as it is there
//! (`mangrove testbed fault ksc …` writes it): `unreachable` (every connection is closed at
//! once), `error` (every method call answers an error envelope), `malformed` (every method
//! call answers truncated JSON), `session-ended` (every method call answers 403, as after
//! `Session.EndSession`). Logins still work under `error`, `malformed` and `session-ended`.
//!
//! # Config file (TOML, mode 0600: it names the password)
//! ```toml
//! state_dir = "state"             # relative to this file: TLS files, truth, fault switch
//! inventory = "inventory.yaml"    # its endpoint_groups shape the fleet
//! listen = "127.0.0.1:13299"
//! names = ["127.0.0.1"]           # the certificate's names (DNS names or IPs)
//! user = "mangrove"
//! password_file = "ksc.password"  # the password alone, mode 0600
//! seed = 2022
//! ```

mod filter;
pub mod launch;
pub mod seed;
mod server;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use seed::{Fleet, Truth};

/// The truth file in the state dir.
pub const TRUTH_FILE: &str = "ksc-truth.json";
/// The fault switch in the state dir.
pub const FAULT_FILE: &str = "fault";
/// The CA certificate clients trust, in the state dir.
pub const CA_FILE: &str = "ksc-ca.pem";

/// Faults the simulator can inject.
pub const FAULTS: &[&str] = &["unreachable", "error", "malformed", "session-ended"];

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum KscSimError {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS set-up: {0}")]
    Tls(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    state_dir: PathBuf,
    inventory: PathBuf,
    listen: SocketAddr,
    #[serde(default)]
    names: Vec<String>,
    user: String,
    password_file: PathBuf,
    #[serde(default = "default_seed")]
    seed: u64,
}

fn default_seed() -> u64 {
    2022
}

/// How the simulator runs.
#[derive(Debug, Clone)]
pub struct KscSimConfig {
    pub state_dir: PathBuf,
    pub listen: SocketAddr,
    /// Names the server certificate carries.
    pub names: Vec<String>,
    pub user: String,
    pub password: String,
    pub fleet: Fleet,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KscSimError + '_ {
    move |source| KscSimError::Io { path: path.to_path_buf(), source }
}

/// Reads a secret file, refusing one that others may read.
pub fn read_secret(path: &Path) -> Result<String, KscSimError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(KscSimError::Config {
            path: path.to_path_buf(),
            message: format!("readable by others (mode {:o}); chmod 600 it", meta.permissions().mode() & 0o777),
        });
    }
    let s = std::fs::read_to_string(path).map_err(io_err(path))?;
    let s = s.trim_end_matches(['\n', '\r']).to_string();
    if s.is_empty() {
        return Err(KscSimError::Config { path: path.to_path_buf(), message: "empty".into() });
    }
    Ok(s)
}

impl KscSimConfig {
    /// Reads the config file, the password file and the inventory, and seeds the fleet.
    pub fn load(path: &Path) -> Result<KscSimConfig, KscSimError> {
        let bad = |message: String| KscSimError::Config { path: path.to_path_buf(), message };
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        let f: ConfigFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let inv_path = base.join(&f.inventory);
        let inv = inventory::load_file(&inv_path).map_err(|e| bad(format!("inventory {}: {e}", inv_path.display())))?;
        if f.user.is_empty() {
            return Err(bad("user: must not be empty".into()));
        }
        let mut names = f.names;
        if names.is_empty() {
            names.push(f.listen.ip().to_string());
        }
        Ok(KscSimConfig {
            state_dir: base.join(&f.state_dir),
            listen: f.listen,
            names,
            user: f.user,
            password: read_secret(&base.join(&f.password_file))?,
            fleet: seed::seed(&inv, f.seed),
        })
    }
}

/// The simulator's truth for `cfg` (what it serves, counted by its own host-status policy).
pub fn truth(cfg: &KscSimConfig) -> Truth {
    cfg.fleet.truth()
}

/// Sets (`Some`) or clears (`None`) the fault of the simulator whose state dir is `state_dir`.
pub fn set_fault(state_dir: &Path, fault: Option<&str>) -> Result<(), KscSimError> {
    let path = state_dir.join(FAULT_FILE);
    match fault {
        Some(f) if FAULTS.contains(&f) => std::fs::write(&path, format!("{f}\n")).map_err(io_err(&path)),
        Some(f) => {
            Err(KscSimError::Config { path, message: format!("unknown KSC fault {f:?}; one of {}", FAULTS.join(", ")) })
        }
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(KscSimError::Io { path, source: e }),
            _ => Ok(()),
        },
    }
}

pub use server::{run_blocking, serve};
