//! A stateful OpenStack simulator for the DR site: Keystone, Nova, Cinder, Glance and Neutron
//! APIs, each on its own loopback port as in a real deployment (5000, 8774, 8776, 9292, 9696),
//! accepted by the real `openstack` CLI (python-openstackclient 10.5) and by Mangrove's driver.
//!
//! It follows `/work/shared/protocols/openstack-client-calls.md`: Keystone v3 discovery,
//! password and application-credential tokens with a catalog (public and internal endpoints,
//! region `RegionOne`; block storage as both `volumev3` and `block-storage` with the project id
//! in the URL), tokens that expire after [`SimConfig::token_ttl`], per-service version
//! discovery, compute microversions 2.1–2.96 and volume 3.0–3.71 with the semantics clients
//! rely on (embedded flavor from 2.47, UUID hypervisor ids from 2.53, no resource counters in
//! hypervisors from 2.88, `os-hypervisors/statistics` only below 2.88), `limit`/`marker`
//! pagination with `*_links`/`next`, and each service's error shapes.
//!
//! # State
//! One [`state::State`] behind a mutex, written atomically (tmp + fsync + rename) to
//! `state_dir/openstack-state.json` after each change and loaded at start when present, else
//! [`seed::seed`]ed from the inventory. Uploaded image bytes go to `state_dir/images/<id>`.
//! Actions take [`SimConfig::action_delay`]: servers BUILD → ACTIVE, stop/start pass through a
//! task state, volumes/snapshots/backups go `creating` → `available` and `deleting` → gone.
//! Tokens and injected faults live in memory only: after a restart clients re-authenticate.
//!
//! # Fault injection
//! On the identity port, with any valid admin token in `X-Auth-Token`:
//!
//! - `POST /_sim/faults` `{"service": "compute"|"volume"|"image"|"network"|"identity"|"all",
//!   "kind": "down"|"slow"|"malformed"|"error"|"fail_next_action", "seconds": 5, "count": 2}`
//!   adds a fault and answers 201 with it (and its `id`). `down` answers 503 with no body (what
//!   the HAProxy in front of a dead API sends); `slow` answers after `seconds` (default 5);
//!   `malformed` answers 200 with a truncated JSON body; `error` answers 500 with the service's
//!   fault body (`computeFault` …); `fail_next_action` makes the next server create or action
//!   end in ERROR (and the next volume/snapshot/backup create end in `error`). `count` is how
//!   many requests (actions) it affects; without it, request faults last until cleared and
//!   `fail_next_action` fires once. Version discovery is affected too; `/_sim` is not.
//! - `GET /_sim/faults` lists the active faults; `DELETE /_sim/faults` clears them.
//!
//! # Config file (TOML, mode 0600: it holds passwords)
//! ```toml
//! state_dir = "/var/tmp/testbed/openstack"    # created if missing
//! inventory = "camau.yaml"                     # relative to this file; used to seed
//! host = "127.0.0.1"                           # loopback (or a private testbed network)
//! token_ttl = "1h"                             # s, m, h, d as in the inventory, or e.g. "500ms"
//! action_delay = "2s"
//! [ports]
//! identity = 5000
//! compute = 8774
//! volume = 8776
//! image = 9292
//! network = 9696
//! [admin]
//! name = "admin"
//! password = "…"
//! project = "admin"
//! [application_credential]
//! id = "…"                                     # 32 hex digits, as Keystone makes them
//! secret = "…"
//! name = "mangrove-dr"
//! ```

mod cinder;
mod faults;
mod glance;
mod http;
mod keystone;
mod neutron;
mod nova;
mod paging;
pub mod realize;
pub mod seed;
pub mod state;

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use inventory::Inventory;
use serde::{Deserialize, Serialize};

pub use seed::seed;
pub use state::State;

/// Name of the state file in [`SimConfig::state_dir`].
pub const STATE_FILE: &str = "openstack-state.json";

/// How the simulator runs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where the state file and uploaded images live.
    pub state_dir: PathBuf,
    /// The loopback address every service listens on.
    pub host: IpAddr,
    pub ports: SimPorts,
    /// Lifetime of an issued token.
    pub token_ttl: Duration,
    /// How long BUILD, stop, start, reboot, delete and volume/snapshot/backup creation take.
    pub action_delay: Duration,
    pub users: SimUsers,
    /// Seeds the state when no state file exists.
    pub inventory: Inventory,
    /// Whether and how servers whose user data enrolls an agent really run (`[realize]`).
    pub realize: Option<realize::RealizeConfig>,
}

/// One port per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimPorts {
    pub identity: u16,
    pub compute: u16,
    pub volume: u16,
    pub image: u16,
    pub network: u16,
}

impl Default for SimPorts {
    /// The ports of a real deployment.
    fn default() -> Self {
        SimPorts { identity: 5000, compute: 8774, volume: 8776, image: 9292, network: 9696 }
    }
}

/// The admin user and its application credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimUsers {
    pub admin: AdminUser,
    pub application_credential: AppCredential,
}

/// The admin user (domain `Default`) and its project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminUser {
    pub name: String,
    pub password: String,
    /// Project name (domain `Default`).
    pub project: String,
}

/// An application credential of the admin user, scoped to its project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppCredential {
    pub id: String,
    pub secret: String,
    pub name: String,
}

/// The config file's shape (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfigFile {
    pub state_dir: PathBuf,
    pub inventory: PathBuf,
    #[serde(default = "loopback")]
    pub host: IpAddr,
    #[serde(default)]
    pub ports: SimPorts,
    #[serde(default = "default_ttl")]
    pub token_ttl: String,
    #[serde(default = "default_delay")]
    pub action_delay: String,
    pub admin: AdminUser,
    pub application_credential: AppCredential,
    #[serde(default)]
    pub realize: Option<realize::RealizeConfig>,
}

fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}
fn default_ttl() -> String {
    "1h".into()
}
fn default_delay() -> String {
    "2s".into()
}

/// Why the simulator could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} for {service}: {source}")]
    Bind {
        service: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid state file: {message}")]
    State { path: PathBuf, message: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SimError + '_ {
    move |source| SimError::Io { path: path.to_path_buf(), source }
}

/// Parses a duration as the inventory writes them (`30s`, `15m`, `1h`) or in milliseconds
/// (`500ms`, for tests that need sub-second steps).
pub fn parse_sim_duration(text: &str) -> Result<Duration, String> {
    match text.trim().strip_suffix("ms") {
        Some(ms) => ms.parse::<u64>().map(Duration::from_millis).map_err(|_| format!("invalid duration `{text}`")),
        None => inventory::parse_duration(text),
    }
}

impl SimConfig {
    /// Reads the config file at `path` and the inventory it names.
    ///
    /// # Errors
    /// [`SimError::Io`] if a file cannot be read, [`SimError::Config`] naming the file and the
    /// field at fault if the config is invalid, readable by others, or binds off loopback.
    pub fn load(path: &Path) -> Result<SimConfig, SimError> {
        let bad = |message: String| SimError::Config { path: path.to_path_buf(), message };
        let meta = std::fs::metadata(path).map_err(io_err(path))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(bad(format!(
                "holds passwords but is readable by others (mode {:o}); chmod 600 it",
                meta.permissions().mode() & 0o777
            )));
        }
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        let file: SimConfigFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let inv_path = base.join(&file.inventory);
        let inventory =
            inventory::load_file(&inv_path).map_err(|e| bad(format!("inventory {}: {e}", inv_path.display())))?;
        let cfg = SimConfig {
            state_dir: base.join(&file.state_dir),
            host: file.host,
            ports: file.ports,
            token_ttl: parse_sim_duration(&file.token_ttl).map_err(|e| bad(format!("token_ttl: {e}")))?,
            action_delay: parse_sim_duration(&file.action_delay).map_err(|e| bad(format!("action_delay: {e}")))?,
            users: SimUsers { admin: file.admin, application_credential: file.application_credential },
            inventory,
            realize: file.realize,
        };
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    /// Checks what serde cannot: loopback only, distinct ports, non-empty credentials.
    pub fn validate(&self) -> Result<(), String> {
        // A container testbed's simulator listens on the gateway of a testbed docker network
        // (private, unmasqueraded, local to this machine), where the controller's container
        // reaches it.
        let testbed_net = matches!(self.host, IpAddr::V4(a) if a.is_private());
        if !self.host.is_loopback() && !testbed_net {
            return Err(format!(
                "host: {} is not a loopback address; the simulator serves loopback (or a private testbed network) only",
                self.host
            ));
        }
        let p = self.ports;
        let mut all = [p.identity, p.compute, p.volume, p.image, p.network];
        all.sort_unstable();
        if all.windows(2).any(|w| w[0] == w[1]) || all[0] == 0 {
            return Err(format!("ports: each service needs its own non-zero port, got {p:?}"));
        }
        let u = &self.users;
        for (field, v) in [
            ("admin.name", &u.admin.name),
            ("admin.password", &u.admin.password),
            ("admin.project", &u.admin.project),
            ("application_credential.id", &u.application_credential.id),
            ("application_credential.secret", &u.application_credential.secret),
        ] {
            if v.is_empty() {
                return Err(format!("{field}: must not be empty"));
            }
        }
        if self.token_ttl.is_zero() {
            return Err("token_ttl: must be above zero".into());
        }
        if let Some(r) = &self.realize {
            r.validate()?;
        }
        Ok(())
    }

    fn base(&self, port: u16) -> String {
        format!("http://{}", SocketAddr::new(self.host, port))
    }
}

/// The `clouds.yaml` for this simulator, with password auth for cloud `cloud_name`
/// (e.g. `camau-dr`).
pub fn clouds_yaml(cfg: &SimConfig, cloud_name: &str) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let a = &cfg.users.admin;
    format!(
        "clouds:\n  {cloud}:\n    auth:\n      auth_url: {url}\n      username: {user}\n      password: {pw}\n      \
         project_name: {project}\n      user_domain_name: Default\n      project_domain_name: Default\n    \
         region_name: RegionOne\n    interface: public\n    identity_api_version: 3\n",
        cloud = q(cloud_name),
        url = q(&format!("{}/v3", cfg.base(cfg.ports.identity))),
        user = q(&a.name),
        pw = q(&a.password),
        project = q(&a.project),
    )
}

/// The `clouds.yaml` for this simulator with application-credential auth (no project or
/// user names: the credential carries its scope), for cloud `cloud_name`.
pub fn clouds_yaml_app_credential(cfg: &SimConfig, cloud_name: &str) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let ac = &cfg.users.application_credential;
    format!(
        "clouds:\n  {cloud}:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {url}\n      \
         application_credential_id: {id}\n      application_credential_secret: {secret}\n    \
         region_name: RegionOne\n    interface: public\n    identity_api_version: 3\n",
        cloud = q(cloud_name),
        url = q(&format!("{}/v3", cfg.base(cfg.ports.identity))),
        id = q(&ac.id),
        secret = q(&ac.secret),
    )
}

/// Which API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Identity,
    Compute,
    Volume,
    Image,
    Network,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::Compute => "compute",
            Service::Volume => "volume",
            Service::Image => "image",
            Service::Network => "network",
        }
    }
}

/// The state and where it is saved.
pub(crate) struct Store {
    state: Mutex<State>,
    path: PathBuf,
}

impl Store {
    fn open(cfg: &SimConfig) -> Result<Store, SimError> {
        std::fs::create_dir_all(&cfg.state_dir).map_err(io_err(&cfg.state_dir))?;
        let path = cfg.state_dir.join(STATE_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => {
                let st: State = serde_json::from_slice(&bytes)
                    .map_err(|e| SimError::State { path: path.clone(), message: e.to_string() })?;
                if st.version != state::STATE_VERSION {
                    return Err(SimError::State {
                        path,
                        message: format!("version {} but this simulator writes {}", st.version, state::STATE_VERSION),
                    });
                }
                st
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let st = seed(&cfg.inventory);
                save(&path, &st)?;
                st
            }
            Err(e) => return Err(SimError::Io { path, source: e }),
        };
        Ok(Store { state: Mutex::new(state), path })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a state that was valid before the closure ran
        // (closures validate before they mutate), so carry on with it.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the state after applying due transitions; saves if those changed anything.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> Result<R, SimError> {
        let mut st = self.lock();
        if st.tick(state::now_ms()) {
            save(&self.path, &st)?;
        }
        Ok(f(&st))
    }

    /// Runs `f` on the state after applying due transitions and saves the result unless `f`
    /// failed (`f` must check before it changes anything).
    pub(crate) fn write<R, E>(&self, f: impl FnOnce(&mut State) -> Result<R, E>) -> Result<Result<R, E>, SimError> {
        let mut st = self.lock();
        let ticked = st.tick(state::now_ms());
        let out = f(&mut st);
        if ticked || out.is_ok() {
            save(&self.path, &st)?;
        }
        Ok(out)
    }
}

/// Writes the state atomically: a reader (or a crash) sees the old file or the new one.
fn save(path: &Path, st: &State) -> Result<(), SimError> {
    let bytes = serde_json::to_vec_pretty(st)
        .map_err(|e| SimError::State { path: path.to_path_buf(), message: e.to_string() })?;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    }
    Ok(())
}

/// Everything the handlers share.
pub(crate) struct Sim {
    pub(crate) cfg: SimConfig,
    pub(crate) store: Store,
    pub(crate) tokens: Mutex<HashMap<String, keystone::Token>>,
    pub(crate) faults: faults::Faults,
}

impl Sim {
    pub(crate) fn url(&self, service: Service) -> String {
        let p = self.cfg.ports;
        let port = match service {
            Service::Identity => p.identity,
            Service::Compute => p.compute,
            Service::Volume => p.volume,
            Service::Image => p.image,
            Service::Network => p.network,
        };
        self.cfg.base(port)
    }
}

/// Serves every API until `shutdown` completes.
///
/// # Errors
/// [`SimError::Bind`] if a port is taken, [`SimError::State`]/[`SimError::Io`] if the state
/// file cannot be read or written at start.
pub async fn serve(cfg: SimConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), SimError> {
    cfg.validate().map_err(|message| SimError::Config { path: cfg.state_dir.clone(), message })?;
    let store = Store::open(&cfg)?;
    let sim = Arc::new(Sim { store, tokens: Mutex::new(HashMap::new()), faults: faults::Faults::default(), cfg });
    resume_realizations(&sim)?;
    let p = sim.cfg.ports;
    let routers = [
        (Service::Identity, p.identity, keystone::router(sim.clone())),
        (Service::Compute, p.compute, nova::router(sim.clone())),
        (Service::Volume, p.volume, cinder::router(sim.clone())),
        (Service::Image, p.image, glance::router(sim.clone())),
        (Service::Network, p.network, neutron::router(sim.clone())),
    ];
    let mut bound = Vec::new();
    for (service, port, router) in routers {
        let addr = SocketAddr::new(sim.cfg.host, port);
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| SimError::Bind {
            service: service.as_str(),
            addr,
            source,
        })?;
        bound.push((listener, router));
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    // Requests apply due transitions themselves; this keeps the state file current when
    // nobody asks (someone reading the file, or a test that restarts the simulator).
    let ticker = sim.clone();
    let mut tick_rx = rx.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = every.tick() => {
                    if let Err(e) = ticker.store.read(|_| ()) {
                        tracing::error!(error = %e, "openstack simulator: cannot save the state");
                    }
                }
                _ = tick_rx.wait_for(|stop| *stop) => break,
            }
        }
    });
    let mut tasks = Vec::new();
    for (listener, router) in bound {
        let mut rx = rx.clone();
        tasks.push(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
        }));
    }
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(SimError::Runtime(e)),
            Err(e) => return Err(SimError::Runtime(std::io::Error::other(e))),
        }
    }
    Ok(())
}

/// After a restart: a build whose realisation was under way lost its token with the old
/// process, so it ends in ERROR; a teardown under way is done again (it is idempotent).
fn resume_realizations(sim: &Arc<Sim>) -> Result<(), SimError> {
    use state::RealizeState;
    let stopping = sim.store.write(|st| {
        let mut stopping = Vec::new();
        for s in &mut st.servers {
            let Some(r) = s.realized.as_mut() else { continue };
            match r.state {
                RealizeState::Starting => {
                    r.state = RealizeState::Failed { message: "the simulator restarted while the agent started".into() }
                }
                RealizeState::Stopping => stopping.push((s.id.clone(), r.clone())),
                _ => {}
            }
        }
        Ok::<_, ()>(stopping)
    })?;
    for (id, r) in stopping.unwrap_or_default() {
        let sim = sim.clone();
        tokio::task::spawn_blocking(move || realize::teardown(sim, id, r));
    }
    Ok(())
}

/// Runs [`serve`] on its own runtime until SIGTERM or SIGINT.
///
/// # Errors
/// As [`serve`], and [`SimError::Runtime`] if the runtime or signal handlers cannot start.
pub fn run_blocking(cfg: SimConfig) -> Result<(), SimError> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(SimError::Runtime)?;
    rt.block_on(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(SimError::Runtime)?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        serve(cfg, stop).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(dir: &Path, host: &str, mode: u32) -> PathBuf {
        let inv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/examples/camau.yaml");
        let text = format!(
            "state_dir = \"state\"\ninventory = {inv:?}\nhost = \"{host}\"\ntoken_ttl = \"30s\"\naction_delay = \"500ms\"\n\
             [ports]\nidentity = 15000\ncompute = 18774\nvolume = 18776\nimage = 19292\nnetwork = 19696\n\
             [admin]\nname = \"admin\"\npassword = \"pw\"\nproject = \"admin\"\n\
             [application_credential]\nid = \"abc\"\nsecret = \"s\"\nname = \"mangrove-dr\"\n"
        );
        let p = dir.join("openstack-sim.toml");
        std::fs::write(&p, text).expect("write config");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    #[test]
    fn config_file_loads_with_its_durations_and_relative_state_dir() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = SimConfig::load(&write_config(dir.path(), "127.0.0.1", 0o600)).expect("valid config");
        assert_eq!(cfg.state_dir, dir.path().join("state"));
        assert_eq!(cfg.token_ttl, Duration::from_secs(30));
        assert_eq!(cfg.action_delay, Duration::from_millis(500));
        assert_eq!(cfg.ports.compute, 18774);
        let yaml = clouds_yaml(&cfg, "camau-dr");
        assert!(yaml.contains("auth_url: \"http://127.0.0.1:15000/v3\""), "{yaml}");
        assert!(yaml.contains("region_name: RegionOne"), "{yaml}");
    }

    #[test]
    fn config_file_readable_by_others_or_off_loopback_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = SimConfig::load(&write_config(dir.path(), "127.0.0.1", 0o644)).expect_err("world-readable");
        assert!(err.to_string().contains("readable by others (mode 644); chmod 600 it"), "{err}");
        let err = SimConfig::load(&write_config(dir.path(), "192.0.2.5", 0o600)).expect_err("off loopback");
        assert!(err.to_string().contains("host: 192.0.2.5 is not a loopback address"), "{err}");
    }
}
