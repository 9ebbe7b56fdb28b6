//! The controller's configuration: one TOML file, parsed once at start-up, every key
//! documented here and in the README with its default. `MANGROVE_*` environment variables
//! override the keys listed in [`Config::apply_env`]; nothing reads the environment later.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the human way in TOML: `"5s"`, `"15m"`, `"1h"`, `"90d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(Dur).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// Parses `30s`, `15m`, `1h`, `2d` (and humantime's longer forms); refuses zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?} ({e}); write e.g. 30s, 15m, 1h, 7d"))?;
    if d.is_zero() {
        return Err(format!("duration {s:?} must be longer than zero"));
    }
    Ok(d)
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the controller keeps its CA, database and bootstrap admin token.
    pub data_dir: PathBuf,
    /// Inventory file whose hosts the controller expects (optional).
    pub inventory: Option<PathBuf>,
    pub listen: Listen,
    /// `host:port` the agents are told to dial for the agent port (default: the listen
    /// address, with 127.0.0.1 for an unspecified address).
    pub advertise_agents: Option<String>,
    pub api: Api,
    pub liveness: Liveness,
    pub agents: Agents,
    pub tokens: Tokens,
    /// `[[platforms]]`: the virtualization platforms this controller syncs (see
    /// `plugins::connect::Connection`: name, kind, endpoint, credentials file, TLS).
    pub platforms: Vec<plugins::connect::Connection>,
    /// `[platform_sync] interval`: how often each platform is synced (default 5m).
    pub platform_sync: PlatformSync,
    /// `[capacity]`: overcommit, DR buffer and history retention (see [`Capacity`]).
    pub capacity: Capacity,
    /// `[backup] evaluate_every`: how often due backups start and RPO is measured (default 30s).
    pub backup: Backup,
    /// `[ksc]`: Kaspersky Security Center, read for the endpoint-protection roll-up (see
    /// [`crate::endpoints::KscConfig`]); absent = off.
    pub ksc: Option<crate::endpoints::KscConfig>,
    /// `[policy] packs`: directories of custom policy packs (the shipped packs' shape),
    /// loaded and compiled at start beside the shipped ones.
    pub policy: PolicyConfig,
    /// `[vc]`: video-conference device checks (see `crate::vc::VcConfig`).
    pub vc: crate::vc::VcConfig,
    /// `[drills]`: drills and failovers (see [`Drills`]).
    pub drills: Drills,
    /// `[dns]`: the DNS server failovers switch records on (see [`DnsConfig`]); absent = off.
    pub dns: Option<DnsConfig>,
    /// `[web]`: the web console's sign-in rules (see [`Web`]).
    pub web: Web,
}

/// `[web]`: the web console served at `/` on the API listener.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Web {
    /// A browser session unused this long is signed out (default 30m; env
    /// `MANGROVE_WEB_IDLE_TIMEOUT`).
    pub idle_timeout: Dur,
    /// Consecutive failed sign-ins that lock a user name (default 5).
    pub max_failures: u32,
    /// How long a locked name is refused, even with the right password (default 15m).
    pub lockout: Dur,
}

impl Default for Web {
    fn default() -> Self {
        Web {
            idle_timeout: Dur(Duration::from_secs(30 * 60)),
            max_failures: 5,
            lockout: Dur(Duration::from_secs(15 * 60)),
        }
    }
}

/// `[drills]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Drills {
    /// How long a planned, disaster or failback run waits for a second operator's approval
    /// before it expires (default 1h).
    pub approval_window: Dur,
    /// `host:port` of the enrollment port as DR instances reach it (they enroll their agent
    /// to receive a restore). Default: the host of `advertise_agents` with the enrollment
    /// port, else the enrollment listen address.
    pub enroll_address: Option<String>,
}

impl Default for Drills {
    fn default() -> Self {
        Drills { approval_window: Dur(Duration::from_secs(3600)), enroll_address: None }
    }
}

/// `[dns]`: the authoritative DNS server the failover's `dns.switch` updates (RFC 2136, signed
/// with TSIG) and probes resolve through.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// `host:port` of the server, UDP and TCP (required).
    pub server: SocketAddr,
    /// The TSIG key, as `tsig-keygen` writes it (required; readable by the controller alone).
    /// Checked at start; read again when used, so the secret is never kept in the config.
    pub key_file: PathBuf,
    /// The production zone planned and disaster failovers switch (required).
    pub zone: String,
    /// The isolated zone test drills switch instead of `zone` (default none: a test drill has
    /// no DNS to switch).
    #[serde(default)]
    pub test_zone: Option<String>,
    /// Longest wait for one update or lookup (default 5s).
    #[serde(default = "DnsConfig::default_timeout")]
    pub timeout: Dur,
}

impl DnsConfig {
    fn default_timeout() -> Dur {
        Dur(Duration::from_secs(5))
    }

    /// A missing, malformed or shared key stops the start, saying which file (and line).
    fn check_key_file(&self) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let path = &self.key_file;
        let meta = std::fs::metadata(path).map_err(|e| format!("dns.key_file {}: {e}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!("dns.key_file {} is readable by others (mode {mode:o}); chmod 600 it", path.display()));
        }
        plugins::dns::TsigKey::load(path).map(|_| ()).map_err(|e| {
            let why = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
            format!("dns.key_file: {e}{why}")
        })
    }

    fn validate(&self) -> Result<(), String> {
        let zone = |key: &str, z: &str| {
            let z = z.trim().trim_end_matches('.');
            if z.is_empty() || z.contains(char::is_whitespace) || z.split('.').any(str::is_empty) {
                return Err(format!("dns.{key} {z:?} is not a zone name"));
            }
            Ok(z.to_ascii_lowercase())
        };
        let prod = zone("zone", &self.zone)?;
        if let Some(t) = &self.test_zone
            && zone("test_zone", t)? == prod
        {
            return Err(format!(
                "dns.test_zone must differ from dns.zone ({prod}): a test drill never touches production"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Each a pack directory: `pack.yaml` and `controls/` (see `policy lint`).
    pub packs: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Backup {
    pub evaluate_every: Dur,
}

impl Default for Backup {
    fn default() -> Self {
        Backup { evaluate_every: Dur(Duration::from_secs(30)) }
    }
}

/// `[capacity]`: how capacity is counted and how long its history is kept.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Capacity {
    /// vCPUs per physical core a site may allocate (default 4.0), and per site
    /// (`[capacity.site_overcommit] dr = 3.0`).
    pub cpu_overcommit: f64,
    pub site_overcommit: std::collections::BTreeMap<String, f64>,
    /// The primary site and the DR site (default `dc` and `dr`).
    pub primary_site: String,
    pub dr_site: String,
    /// Share of DR capacity held back from failover headroom (default 0.10 = 10 %).
    pub dr_buffer: f64,
    /// Samples are kept as taken for this long (default 35d), then as hourly averages until
    /// `keep_hourly` (default 400d), then as daily averages for ever.
    pub keep_raw: Dur,
    pub keep_hourly: Dur,
    /// `[capacity.prometheus]`: read sites' history from this Prometheus server (which scrapes
    /// the controller's `mangrove_capacity_*` gauges) instead of keeping it in the store.
    pub prometheus: Option<crate::capacity::prometheus::PromConfig>,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            cpu_overcommit: 4.0,
            site_overcommit: Default::default(),
            primary_site: "dc".into(),
            dr_site: "dr".into(),
            dr_buffer: 0.10,
            keep_raw: Dur(Duration::from_secs(35 * 86_400)),
            keep_hourly: Dur(Duration::from_secs(400 * 86_400)),
            prometheus: None,
        }
    }
}

impl Capacity {
    /// The overcommit ratio of `site`.
    pub fn overcommit(&self, site: &str) -> f64 {
        self.site_overcommit.get(site).copied().unwrap_or(self.cpu_overcommit)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let ratios = std::iter::once(("capacity.cpu_overcommit".to_string(), self.cpu_overcommit))
            .chain(self.site_overcommit.iter().map(|(k, v)| (format!("capacity.site_overcommit.{k}"), *v)));
        for (key, v) in ratios {
            if !(v.is_finite() && v > 0.0) {
                return Err(ConfigError::Invalid(format!("{key} must be a number above 0, got {v}")));
            }
        }
        if !(0.0..1.0).contains(&self.dr_buffer) {
            return Err(ConfigError::Invalid(format!(
                "capacity.dr_buffer is a share of capacity from 0 up to (not including) 1, got {}",
                self.dr_buffer
            )));
        }
        if let Some(p) = &self.prometheus {
            p.validate().map_err(|e| ConfigError::Invalid(format!("capacity.prometheus: {e}")))?;
        }
        if self.keep_hourly.0 <= self.keep_raw.0 {
            return Err(ConfigError::Invalid("capacity.keep_hourly must be longer than capacity.keep_raw".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformSync {
    pub interval: Dur,
}

impl Default for PlatformSync {
    fn default() -> Self {
        PlatformSync { interval: Dur(Duration::from_secs(300)) }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// HTTPS JSON API, `/metrics`, `/healthz`, `/readyz`.
    pub api: SocketAddr,
    /// gRPC for enrolled agents; mutual TLS on every connection.
    pub agents: SocketAddr,
    /// Enrollment only; server-authenticated TLS.
    pub enroll: SocketAddr,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Api {
    /// Serve the API over plain HTTP. Allowed only when `listen.api` is a loopback address.
    pub plain_http: bool,
    /// PEM certificate chain and key for the API; default: issued by the built-in CA.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Extra DNS names or IP addresses for the built-in API certificate.
    pub extra_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Liveness {
    /// How often agents send a heartbeat.
    pub heartbeat_interval: Dur,
    /// A host is `down` this long after its last heartbeat.
    pub down_after: Dur,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Agents {
    /// Lifetime of an agent's client certificate; agents renew at two thirds of it.
    pub cert_ttl: Dur,
    /// How often agents send a full fact snapshot.
    pub facts_interval: Dur,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tokens {
    /// Default lifetime of an agent bootstrap token.
    pub bootstrap_ttl: Dur,
    /// Default lifetime of a user's API token.
    pub user_ttl: Dur,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/mangrove"),
            inventory: None,
            listen: Listen::default(),
            advertise_agents: None,
            api: Api::default(),
            liveness: Liveness::default(),
            agents: Agents::default(),
            tokens: Tokens::default(),
            platforms: Vec::new(),
            platform_sync: PlatformSync::default(),
            capacity: Capacity::default(),
            backup: Backup::default(),
            ksc: None,
            policy: PolicyConfig::default(),
            vc: crate::vc::VcConfig::default(),
            drills: Drills::default(),
            dns: None,
            web: Web::default(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            api: SocketAddr::from(([127, 0, 0, 1], 8443)),
            agents: SocketAddr::from(([0, 0, 0, 0], 7443)),
            enroll: SocketAddr::from(([0, 0, 0, 0], 7444)),
        }
    }
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness { heartbeat_interval: Dur(Duration::from_secs(5)), down_after: Dur(Duration::from_secs(15)) }
    }
}

impl Default for Agents {
    fn default() -> Self {
        Agents { cert_ttl: Dur(Duration::from_secs(24 * 3600)), facts_interval: Dur(Duration::from_secs(60)) }
    }
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens { bootstrap_ttl: Dur(Duration::from_secs(3600)), user_ttl: Dur(Duration::from_secs(90 * 24 * 3600)) }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: &'static str, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads the file (if given), applies `MANGROVE_*` overrides from `env`, and validates.
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut cfg = match path {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.to_path_buf(), source })?;
                Self::parse(&text, p)?
            }
            None => Config::default(),
        };
        cfg.apply_env(env)?;
        // Relative paths in the file are relative to the file, so a config moves with its dir.
        if let Some(dir) = path.and_then(Path::parent) {
            if cfg.data_dir.is_relative() {
                cfg.data_dir = dir.join(&cfg.data_dir);
            }
            if let Some(inv) = cfg.inventory.as_mut().filter(|i| i.is_relative()) {
                *inv = dir.join(&*inv);
            }
            if let Some(k) = cfg.ksc.as_mut() {
                k.resolve(dir);
            }
            if let Some(d) = cfg.dns.as_mut().filter(|d| d.key_file.is_relative()) {
                d.key_file = dir.join(&d.key_file);
            }
            for pack in cfg.policy.packs.iter_mut().filter(|p| p.is_relative()) {
                *pack = dir.join(&*pack);
            }
            for p in &mut cfg.platforms {
                for f in [&mut p.credentials, &mut p.ca_file] {
                    if let Some(path) = f.as_mut().filter(|c| c.is_relative()) {
                        *path = dir.join(&*path);
                    }
                }
            }
        }
        cfg.validate()?;
        if let Some(d) = &cfg.dns {
            d.check_key_file().map_err(ConfigError::Invalid)?;
        }
        Ok(cfg)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: toml_message(text, &e) })
    }

    /// `MANGROVE_DATA_DIR`, `MANGROVE_INVENTORY`, `MANGROVE_POLICY_PACKS` (`:`-separated
    /// directories), `MANGROVE_LISTEN_API`,
    /// `MANGROVE_LISTEN_AGENTS`, `MANGROVE_LISTEN_ENROLL`, `MANGROVE_ADVERTISE_AGENTS`,
    /// `MANGROVE_WEB_IDLE_TIMEOUT`.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("MANGROVE_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = env("MANGROVE_INVENTORY") {
            self.inventory = Some(v.into());
        }
        if let Some(v) = env("MANGROVE_POLICY_PACKS") {
            self.policy.packs = std::env::split_paths(&v).collect();
        }
        let addr = |name: &'static str, v: String| {
            v.parse::<SocketAddr>()
                .map_err(|e| ConfigError::Env { name, message: format!("{v:?} is not host:port ({e})") })
        };
        if let Some(v) = env("MANGROVE_LISTEN_API") {
            self.listen.api = addr("MANGROVE_LISTEN_API", v)?;
        }
        if let Some(v) = env("MANGROVE_LISTEN_AGENTS") {
            self.listen.agents = addr("MANGROVE_LISTEN_AGENTS", v)?;
        }
        if let Some(v) = env("MANGROVE_LISTEN_ENROLL") {
            self.listen.enroll = addr("MANGROVE_LISTEN_ENROLL", v)?;
        }
        if let Some(v) = env("MANGROVE_ADVERTISE_AGENTS") {
            self.advertise_agents = Some(v);
        }
        if let Some(v) = env("MANGROVE_WEB_IDLE_TIMEOUT") {
            self.web.idle_timeout = Dur(parse_duration(&v)
                .map_err(|message| ConfigError::Env { name: "MANGROVE_WEB_IDLE_TIMEOUT", message })?);
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.api.plain_http && !self.listen.api.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "api.plain_http is allowed only on a loopback address, not {}",
                self.listen.api
            )));
        }
        if self.api.tls_cert.is_some() != self.api.tls_key.is_some() {
            return Err(ConfigError::Invalid("api.tls_cert and api.tls_key go together".into()));
        }
        if self.liveness.down_after.0 <= self.liveness.heartbeat_interval.0 {
            return Err(ConfigError::Invalid(format!(
                "liveness.down_after ({}) must be longer than liveness.heartbeat_interval ({})",
                humantime::format_duration(self.liveness.down_after.0),
                humantime::format_duration(self.liveness.heartbeat_interval.0)
            )));
        }
        if self.agents.cert_ttl.0 < Duration::from_secs(5) {
            return Err(ConfigError::Invalid("agents.cert_ttl must be at least 5s".into()));
        }
        if self.web.max_failures == 0 {
            return Err(ConfigError::Invalid("web.max_failures must be at least 1".into()));
        }
        self.capacity.validate()?;
        if let Some(k) = &self.ksc {
            k.validate().map_err(ConfigError::Invalid)?;
        }
        self.vc.validate().map_err(ConfigError::Invalid)?;
        if let Some(d) = &self.dns {
            d.validate().map_err(ConfigError::Invalid)?;
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.platforms.iter().enumerate() {
            if !crate::app::valid_host_name(&p.name) {
                return Err(ConfigError::Invalid(format!("platforms[{i}].name {:?} is not a valid name", p.name)));
            }
            if !names.insert(p.name.as_str()) {
                return Err(ConfigError::Invalid(format!("platforms[{i}]: a second platform named {}", p.name)));
            }
            if p.endpoint.trim().is_empty() {
                return Err(ConfigError::Invalid(format!("platforms[{i}] ({}): endpoint is empty", p.name)));
            }
        }
        Ok(())
    }

    /// The enrollment endpoint DR instances are told to dial (see [`Drills::enroll_address`]).
    pub fn enroll_endpoint(&self) -> String {
        if let Some(a) = &self.drills.enroll_address {
            return a.clone();
        }
        let port = self.listen.enroll.port();
        match self.advertise_agents.as_deref().and_then(|a| a.rsplit_once(':')) {
            Some((host, _)) => format!("{host}:{port}"),
            None if self.listen.enroll.ip().is_unspecified() => format!("127.0.0.1:{port}"),
            None => self.listen.enroll.to_string(),
        }
    }

    /// The agent endpoint told to enrolling agents.
    pub fn agent_endpoint(&self) -> String {
        match &self.advertise_agents {
            Some(a) => a.clone(),
            None if self.listen.agents.ip().is_unspecified() => format!("127.0.0.1:{}", self.listen.agents.port()),
            None => self.listen.agents.to_string(),
        }
    }
}

/// A TOML error on one line: `line:column: message`.
pub fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{line}:{column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let cfg =
            Config::parse("data_dir = \"d\"\n[liveness]\ndown_after = \"20s\"\n", Path::new("c.toml")).expect("parse");
        assert_eq!(cfg.liveness.down_after.0, Duration::from_secs(20));
        assert_eq!(cfg.liveness.heartbeat_interval.0, Duration::from_secs(5));
        assert_eq!(cfg.agent_endpoint(), "127.0.0.1:7443");
    }

    #[test]
    fn refuses_unknown_keys_bad_durations_and_remote_plain_http() {
        for (text, want) in [
            ("bogus = 1", "1:1: unknown field `bogus`"),
            ("data_dir = \"x\"\n[listen]\napi = 5", "3:7: invalid type"),
            ("[liveness]\ndown_after = \"soon\"", "invalid duration"),
            ("[liveness]\ndown_after = \"0s\"", "longer than zero"),
        ] {
            let err = Config::parse(text, Path::new("c.toml")).expect_err(text).to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let mut cfg = Config::default();
        cfg.api.plain_http = true;
        cfg.listen.api = "0.0.0.0:80".parse().expect("addr");
        assert!(cfg.validate().is_err());
        let err =
            Config::load(None, |k| (k == "MANGROVE_LISTEN_API").then(|| "nope".to_string())).expect_err("bad env");
        assert!(err.to_string().contains("MANGROVE_LISTEN_API"), "{err}");
    }

    #[test]
    fn the_dns_section_is_optional_checked_and_its_key_file_read_at_start() {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(Config::default().dns, None);
        let dir = tempfile::tempdir().expect("tempdir");
        let key_path = dir.path().join("mangrove.key");
        let key = |text: &str, mode: u32| {
            std::fs::write(&key_path, text).expect("key");
            std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        let good = "key \"mangrove\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQ=\";\n};\n";
        key(good, 0o600);
        let path = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&path, format!("[dns]\nserver = \"127.0.0.1:5353\"\nzone = \"camau.gov.vn\"\n{text}"))
                .expect("config");
            Config::load(Some(&path), |_| None)
        };
        let dns =
            load("key_file = \"mangrove.key\"\ntest_zone = \"drill.camau.gov.vn\"\n").expect("load").dns.expect("dns");
        assert_eq!(dns.server, "127.0.0.1:5353".parse().expect("addr"));
        assert_eq!(dns.key_file, key_path, "relative to the config file");
        assert_eq!(dns.test_zone.as_deref(), Some("drill.camau.gov.vn"));
        assert_eq!(dns.timeout.0, Duration::from_secs(5));

        let refused = |text: &str| load(text).expect_err(text).to_string();
        let e = refused("key_file = \"mangrove.key\"\ntest_zone = \"camau.gov.vn.\"\n");
        assert!(e.contains("dns.test_zone must differ"), "{e}");
        let e = refused("key_file = \"missing.key\"\n");
        assert!(e.contains("dns.key_file") && e.contains("missing.key"), "{e}");
        let e = refused("");
        assert!(e.contains("key_file"), "{e}");
        key(good, 0o644);
        let e = refused("key_file = \"mangrove.key\"\n");
        assert!(e.contains("readable by others (mode 644)"), "{e}");
        key("key \"m\" {\n secret \"!!\";\n};\n", 0o600);
        let e = refused("key_file = \"mangrove.key\"\n");
        assert!(e.contains("mangrove.key:2: "), "{e}");
    }
}
