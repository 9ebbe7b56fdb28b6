//! OpenStack driver: a small blocking client for Keystone v3, Nova, Cinder, Glance and
//! Neutron over the shared ureq agent (see `crate::http`).
//!
//! We speak the REST APIs directly rather than through the `openstack`/`openstack_sdk` crates:
//! the driver needs a small subset, blocking calls that fit [`Hypervisor`], our own timeouts,
//! TLS settings and error messages, and no second (async) HTTP stack. The requests follow
//! what the OpenStack CLI sends (`/work/shared/protocols/openstack-client-calls.md`).
//!
//! - Keystone: password (project-scoped) or application-credential tokens; the token is
//!   renewed before it expires (see `keystone::renewal_margin`) and once more when a service
//!   answers 401, after which the call is retried once.
//! - Microversions: discovered once per service; compute min(offered, 2.79), block storage
//!   min(offered, 3.60). 2.79 keeps the hypervisor counters that 2.88 removed.
//! - Operation ids are `server:<uuid>:<ACTIVE|SHUTOFF|DELETED>`,
//!   `snapshot:<id>[,<id>…]:<available|deleted>` and `volume:<id>[,<id>…]:available`, so a
//!   restarted controller can poll them again.

mod cinder;
mod glance;
mod keystone;
mod neutron;
mod nova;
mod session;

use serde::Deserialize;
use time::OffsetDateTime;

pub use cinder::{Volume, VolumeAttachment, VolumeBackup};
pub use glance::Image;
pub use neutron::{FixedIp, FloatingIp, Network, Port};
pub use nova::Flavor;

use crate::error::PlatformError;
use crate::http::HttpOptions;
use crate::hypervisor::{CreateSpec, Hypervisor, Inventory, OpState, Operation, PlatformKind, PowerAction, Snapshot};
use session::{Service, Session};

fn default_region() -> String {
    "RegionOne".into()
}
fn default_interface() -> String {
    "public".into()
}
fn default_domain() -> String {
    "Default".into()
}

/// How to reach and log in to one OpenStack cloud. Read from the controller's platform file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenstackConfig {
    /// Keystone v3 URL, e.g. `https://keystone.example:5000/v3` (`/v3` is added when missing).
    pub auth_url: String,
    /// Region whose endpoints to use.
    #[serde(default = "default_region")]
    pub region: String,
    /// Catalog interface: `public`, `internal` or `admin`.
    #[serde(default = "default_interface")]
    pub interface: String,
    pub auth: OpenstackAuth,
    #[serde(default)]
    pub http: HttpOptions,
}

/// Credentials. In a file: `auth = { type = "password", username = …, password = …,
/// project_name = … }` or `auth = { type = "application_credential", id = …, secret = … }`.
#[derive(Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OpenstackAuth {
    Password {
        username: String,
        #[serde(default = "default_domain")]
        user_domain: String,
        password: String,
        project_name: String,
        #[serde(default = "default_domain")]
        project_domain: String,
    },
    ApplicationCredential {
        id: String,
        secret: String,
    },
}

impl OpenstackAuth {
    /// Who is logging in, for messages (never the secret).
    pub fn user(&self) -> String {
        match self {
            OpenstackAuth::Password { username, user_domain, .. } => format!("{username}@{user_domain}"),
            OpenstackAuth::ApplicationCredential { id, .. } => format!("application credential {id}"),
        }
    }
}

impl std::fmt::Debug for OpenstackAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenstackAuth::Password { username, user_domain, project_name, project_domain, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .field("user_domain", user_domain)
                .field("password", &"<redacted>")
                .field("project_name", project_name)
                .field("project_domain", project_domain)
                .finish(),
            OpenstackAuth::ApplicationCredential { id, .. } => {
                f.debug_struct("ApplicationCredential").field("id", id).field("secret", &"<redacted>").finish()
            }
        }
    }
}

impl std::fmt::Debug for OpenstackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenstackConfig")
            .field("auth_url", &self.auth_url)
            .field("region", &self.region)
            .field("interface", &self.interface)
            .field("auth", &self.auth)
            .field("http", &self.http)
            .finish()
    }
}

impl OpenstackConfig {
    /// Checks the URL and settles its form (no trailing slash, ending in `/v3`).
    fn normalised(mut self) -> Result<OpenstackConfig, PlatformError> {
        let url = self.auth_url.trim().trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
            return Err(PlatformError::Config(format!("OpenStack auth_url {:?} is not an http(s) URL", self.auth_url)));
        }
        self.auth_url = if url.ends_with("/v3") { url } else { format!("{url}/v3") };
        if !matches!(self.interface.as_str(), "public" | "internal" | "admin") {
            return Err(PlatformError::Config(format!(
                "OpenStack interface {:?} is not public, internal or admin",
                self.interface
            )));
        }
        Ok(self)
    }
}

/// What Keystone says about the current token ([`OpenstackDriver::verify_token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub expires_at: OffsetDateTime,
}

/// A logged-in connection to one OpenStack cloud. Blocking; share it behind an `Arc`.
pub struct OpenstackDriver {
    session: Session,
}

impl std::fmt::Debug for OpenstackDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenstackDriver").field("endpoint", &self.session.endpoint).finish()
    }
}

impl OpenstackDriver {
    /// Logs in to Keystone (one request). Bad credentials → [`PlatformError::Auth`] with
    /// Keystone's message. Services are looked up in the catalog, and their versions
    /// discovered, on first use.
    pub fn connect(cfg: OpenstackConfig) -> Result<OpenstackDriver, PlatformError> {
        let session = Session::new(cfg.normalised()?)?;
        session.token(false)?;
        Ok(OpenstackDriver { session })
    }

    /// When the current token expires (Keystone's clock).
    pub fn token_expires_at(&self) -> Option<OffsetDateTime> {
        self.session.peek().map(|t| t.expires_at)
    }

    /// An opaque fingerprint of the current token (its last characters), to tell tokens apart
    /// without logging one.
    pub fn token_fingerprint(&self) -> Option<String> {
        self.session.peek().map(|t| t.id.chars().rev().take(12).collect::<String>().chars().rev().collect())
    }

    /// Gets a new token now, whatever the current one's expiry.
    pub fn renew(&self) -> Result<(), PlatformError> {
        self.session.token(true).map(|_| ())
    }

    /// Asks Keystone to validate the current token (`GET /v3/auth/tokens`): a cheap check that
    /// the cloud still accepts us, through the same renewal and 401-retry path as every call.
    pub fn verify_token(&self) -> Result<TokenInfo, PlatformError> {
        // The subject token must be the one the request is authenticated with, so this is
        // built per attempt rather than through `Session::call`.
        let call = "GET /v3/auth/tokens";
        for attempt in 0..2 {
            let token = self.session.token(attempt > 0)?;
            let reply = self.session.call_with_subject(&token, call)?;
            if reply.status == 401 && attempt == 0 {
                continue;
            }
            let doc = self.session.json(reply, call)?;
            let body = serde_json::to_string(&doc).map_err(|e| self.session.malformed(call, e.to_string()))?;
            let parsed = keystone::parse_token(&self.session.endpoint, Some(&token.id), &body)?;
            return Ok(TokenInfo {
                user_id: parsed.user_id,
                project_id: parsed.project_id,
                expires_at: parsed.expires_at,
            });
        }
        Err(self.session.refused_401(call))
    }

    /// The catalog URL the driver uses for a service type (`identity`, `compute`,
    /// `block-storage`, `image`, `network`), for diagnostics.
    pub fn service_url(&self, service_type: &str) -> Result<String, PlatformError> {
        let svc = match service_type {
            "identity" => Service::Identity,
            "compute" => Service::Compute,
            "block-storage" | "volumev3" | "volume" => Service::Volume,
            "image" => Service::Image,
            "network" => Service::Network,
            other => return Err(PlatformError::Config(format!("unknown OpenStack service type {other:?}"))),
        };
        let token = self.session.token(false)?;
        self.session.base_url(&token, svc)
    }
}

/// Parsed operation id: kind, object ids, target state.
fn parse_op(endpoint: &str, id: &str) -> Result<(String, Vec<String>, String), PlatformError> {
    let mut parts = id.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(kind), Some(ids), Some(target)) if !ids.is_empty() => {
            Ok((kind.to_string(), ids.split(',').map(str::to_string).collect(), target.to_string()))
        }
        _ => Err(PlatformError::NotFound {
            endpoint: endpoint.to_string(),
            what: "operation".into(),
            id: id.to_string(),
        }),
    }
}

fn running(id: String, description: String) -> Operation {
    Operation { id, description, state: OpState::Running { progress: None } }
}

impl Hypervisor for OpenstackDriver {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Openstack
    }

    fn endpoint(&self) -> &str {
        &self.session.endpoint
    }

    fn inventory(&self) -> Result<Inventory, PlatformError> {
        session::trips_reset();
        let hosts = self.hosts()?;
        let (vms, volumes_needed) = self.servers_for_inventory()?;
        let has_volume = self.session.has_service(Service::Volume)?;
        let volumes = if has_volume && volumes_needed { self.volumes()? } else { Vec::new() };
        let vms = nova::attach_volumes(vms, &volumes);
        let storage = if has_volume { self.pools()? } else { Vec::new() };
        Ok(Inventory { hosts, vms, storage, round_trips: session::trips() })
    }

    fn power(&self, vm: &str, action: PowerAction) -> Result<Operation, PlatformError> {
        self.server_power(vm, action)
    }

    fn snapshot_create(&self, vm: &str, name: &str, description: &str) -> Result<Operation, PlatformError> {
        self.volume_snapshot_create(vm, name, description)
    }

    fn snapshot_list(&self, vm: &str) -> Result<Vec<Snapshot>, PlatformError> {
        self.volume_snapshot_list(vm)
    }

    fn snapshot_revert(&self, vm: &str, snapshot: &str) -> Result<Operation, PlatformError> {
        self.volume_snapshot_revert(vm, snapshot)
    }

    fn snapshot_delete(&self, vm: &str, snapshot: &str) -> Result<Operation, PlatformError> {
        self.volume_snapshot_delete(vm, snapshot)
    }

    fn create_instance(&self, spec: &CreateSpec) -> Result<Operation, PlatformError> {
        self.server_create(spec)
    }

    fn delete_instance(&self, vm: &str) -> Result<Operation, PlatformError> {
        self.server_delete(vm)
    }

    fn poll(&self, op: &Operation) -> Result<Operation, PlatformError> {
        let (kind, ids, target) = parse_op(&self.session.endpoint, &op.id)?;
        let state = match kind.as_str() {
            "server" => self.poll_server(&ids[0], &target)?,
            "snapshot" => self.poll_snapshots(&ids, &target)?,
            "volume" => self.poll_volumes(&ids)?,
            _ => return Err(self.session.not_found("operation", &op.id)),
        };
        Ok(Operation { id: op.id.clone(), description: op.description.clone(), state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_from_toml_like_json_and_debug_hides_secrets() {
        let cfg: OpenstackConfig = serde_json::from_str(
            r#"{"auth_url": "http://127.0.0.1:5000", "auth": {"type": "password", "username": "admin",
                "password": "hunter2", "project_name": "admin"}}"#,
        )
        .expect("valid config");
        assert_eq!(cfg.region, "RegionOne");
        assert_eq!(cfg.interface, "public");
        let cfg = cfg.normalised().expect("valid");
        assert_eq!(cfg.auth_url, "http://127.0.0.1:5000/v3");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2") && shown.contains("redacted"), "{shown}");
        let ac: OpenstackAuth =
            serde_json::from_str(r#"{"type": "application_credential", "id": "i", "secret": "s3"}"#).expect("valid");
        assert!(!format!("{ac:?}").contains("s3"));
        assert!(serde_json::from_str::<OpenstackAuth>(r#"{"type": "token", "id": "i"}"#).is_err());
    }

    #[test]
    fn bad_urls_are_config_errors() {
        for url in ["ftp://x", "keystone:5000", "http://"] {
            let cfg = OpenstackConfig {
                auth_url: url.into(),
                region: default_region(),
                interface: default_interface(),
                auth: OpenstackAuth::ApplicationCredential { id: "i".into(), secret: "s".into() },
                http: HttpOptions::default(),
            };
            assert!(matches!(OpenstackDriver::connect(cfg), Err(PlatformError::Config(_))), "{url}");
        }
    }

    #[test]
    fn operation_ids_round_trip() {
        let (k, ids, t) = parse_op("e", "snapshot:a,b:available").expect("valid");
        assert_eq!((k.as_str(), ids, t.as_str()), ("snapshot", vec!["a".to_string(), "b".to_string()], "available"));
        assert!(parse_op("e", "task-12").is_err());
    }
}
