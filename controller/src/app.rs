//! The controller's shared state and the operations the API and the gRPC services share:
//! people and their roles, tokens, authentication, the audit trail.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::pki::Ca;
use crate::sessions::Sessions;
use crate::store::{Store, StoreError, TokenRecord};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// RFC 3339 text for a unix-millisecond time.
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A person's role (or `agent` for a bootstrap token). `admin` may do all the others may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Operator,
    Security,
    Planner,
    Auditor,
    Agent,
}

impl Role {
    pub const PEOPLE: [Role; 5] = [Role::Admin, Role::Operator, Role::Security, Role::Planner, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Security => "security",
            Role::Planner => "planner",
            Role::Auditor => "auditor",
            Role::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Admin, Role::Operator, Role::Security, Role::Planner, Role::Auditor, Role::Agent]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Who is calling, proven by their bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub role: Role,
}

impl Principal {
    /// True if the principal has one of `roles`, or is an admin.
    pub fn may(&self, roles: &[Role]) -> bool {
        self.role == Role::Admin || roles.contains(&self.role)
    }
}

/// Why an operation was refused; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// A platform (vCenter, OpenStack …) failed or refused what was asked of it.
    #[error("{0}")]
    Upstream(String),
    #[error("store")]
    Store(#[from] StoreError),
}

/// A token just created; `token` is the only time its secret is ever shown.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CreatedToken {
    pub token: String,
    pub role: String,
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// The controller: configuration, store, CA, live sessions, metrics.
pub struct App {
    pub cfg: Config,
    pub store: Arc<dyn Store>,
    pub ca: Ca,
    pub sessions: Sessions,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
    /// The inventory the controller was started with, if any.
    pub inventory: Option<Arc<inventory::Inventory>>,
    pub platforms: crate::platforms::Platforms,
    pub policy: crate::policy::Policies,
    /// Backup plans, repository passwords and live progress.
    pub backups: crate::backup::runs::Backups,
    /// The Prometheus server sites' capacity history is read from, when configured.
    pub capacity_prometheus: Option<Arc<crate::capacity::prometheus::PromClient>>,
    /// Systems whose RPO is breached now.
    pub backup_breaches: crate::backup::schedule::Breaches,
    /// The drills this controller drives.
    pub drills: crate::failover::runs::Drills,
    /// DR image refreshes running now.
    pub images: crate::images::Refreshing,
    /// Remediation tasks per host (see [`Remediating`]).
    pub remediating: std::sync::Mutex<std::collections::HashMap<String, Remediating>>,
}

/// A host's remediation tasks: the one running, and those finished but not yet followed by an
/// evaluation (which names them as its cause).
#[derive(Debug, Default)]
pub struct Remediating {
    pub running: Vec<String>,
    pub done: Vec<String>,
    /// Ansible remediations that ran to the end (they leave no task record; not run again for
    /// the same failure while the controller runs).
    pub ansible_ran: Vec<String>,
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Equality that takes the same time wherever the first difference is.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn secret_matches(secret: &str, hash: &str) -> bool {
    ct_eq(hash_secret(secret).as_bytes(), hash.as_bytes())
}

pub fn random_hex(bytes: usize) -> String {
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(v)
}

/// A valid host name for a certificate: DNS labels of letters, digits and hyphens.
pub fn valid_host_name(name: &str) -> bool {
    inventory::is_dns_name(name)
}

impl App {
    /// Notes a remediation task started on `host`.
    pub fn remediation_started(&self, host: &str, task_id: &str) {
        let mut m = self.remediating.lock().unwrap_or_else(|p| p.into_inner());
        let r = m.entry(host.to_string()).or_default();
        if !r.running.iter().any(|t| t == task_id) {
            r.running.push(task_id.to_string());
        }
    }

    /// Notes that a remediation task's result arrived.
    pub fn remediation_finished(&self, host: &str, task_id: &str) {
        let mut m = self.remediating.lock().unwrap_or_else(|p| p.into_inner());
        let r = m.entry(host.to_string()).or_default();
        r.running.retain(|t| t != task_id);
        r.done.push(task_id.to_string());
    }

    /// Notes that an Ansible remediation run on `host` ended; it counts as tried.
    pub fn ansible_remediation_finished(&self, host: &str, id: &str) {
        self.remediation_finished(host, id);
        let mut m = self.remediating.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(host.to_string()).or_default().ansible_ran.push(id.to_string());
    }

    /// Whether the Ansible remediation `id` already ran on `host`.
    pub fn ansible_remediation_ran(&self, host: &str, id: &str) -> bool {
        self.remediating
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .is_some_and(|r| r.ansible_ran.iter().any(|t| t == id))
    }

    /// Whether a remediation task is running on `host` (remediations of one host run one at a
    /// time: two scripts editing one file at once could lose an edit).
    pub fn remediation_running(&self, host: &str) -> bool {
        self.remediating.lock().unwrap_or_else(|p| p.into_inner()).get(host).is_some_and(|r| !r.running.is_empty())
    }

    /// The cause to record for `host`'s next evaluation: the remediation tasks that finished
    /// there since the last one, or `evaluation`.
    pub fn take_evaluation_cause(&self, host: &str) -> String {
        let mut m = self.remediating.lock().unwrap_or_else(|p| p.into_inner());
        let done = m.get_mut(host).map(|r| std::mem::take(&mut r.done)).unwrap_or_default();
        if done.is_empty() { "evaluation".into() } else { format!("remediation task {}", done.join(", ")) }
    }

    /// Records a change a person (or an agent acting under a person's token) made.
    pub async fn audit(&self, actor: &str, action: &str, target: Option<&str>, detail: serde_json::Value) {
        if let Err(e) = self.store.append_audit(now_ms(), actor, action, target, &detail).await {
            // The change itself succeeded; losing its audit line must be loud.
            tracing::error!(actor, action, error = %e, "could not write the audit log");
        }
    }

    /// Issues a token. `role = agent` makes a single-use bootstrap token (optionally bound to
    /// `host`); any other role makes an API token for `user`, creating the user with that role.
    pub async fn create_token(
        &self,
        by: &Principal,
        role: &str,
        user: Option<&str>,
        host: Option<&str>,
        ttl: Option<Duration>,
    ) -> Result<CreatedToken, AppError> {
        let role = Role::parse(role).ok_or_else(|| {
            AppError::BadRequest(format!(
                "unknown role {role:?}; roles are admin, operator, security, planner, auditor, agent"
            ))
        })?;
        let now = now_ms();
        let id = random_hex(8);
        let secret = random_hex(24);
        let (kind, default_ttl, text, user_name, host) = if role == Role::Agent {
            if !by.may(&[Role::Operator]) {
                return Err(AppError::Forbidden(format!("role {} may not enroll agents", by.role.as_str())));
            }
            if user.is_some() {
                return Err(AppError::BadRequest("an agent token names a host (--host), not a user".into()));
            }
            if let Some(h) = host
                && !valid_host_name(h)
            {
                return Err(AppError::BadRequest(format!("invalid host name {h:?}")));
            }
            let text = proto::token::bootstrap(&id, &secret, &self.ca.fingerprint());
            ("bootstrap", self.cfg.tokens.bootstrap_ttl.0, text, Some(by.user.clone()), host.map(str::to_string))
        } else {
            if !by.may(&[]) {
                return Err(AppError::Forbidden("only an admin may issue tokens to people".into()));
            }
            if host.is_some() {
                return Err(AppError::BadRequest("--host applies only to --role agent".into()));
            }
            let Some(user) = user.filter(|u| !u.is_empty()) else {
                return Err(AppError::BadRequest(format!("a {} token needs --user NAME", role.as_str())));
            };
            if !crate::users::valid_user_name(user) {
                return Err(AppError::BadRequest(format!("invalid user name {user:?}")));
            }
            self.store.ensure_user(user, role.as_str(), now).await.map_err(|e| match e {
                StoreError::RoleMismatch { .. } => AppError::Conflict(e.to_string()),
                e => AppError::Store(e),
            })?;
            ("user", self.cfg.tokens.user_ttl.0, proto::token::user(&id, &secret), Some(user.to_string()), None)
        };
        let ttl = ttl.unwrap_or(default_ttl);
        let expires_at = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        self.store
            .insert_token(&TokenRecord {
                id: id.clone(),
                secret_hash: hash_secret(&secret),
                kind: kind.to_string(),
                role: role.as_str().to_string(),
                user_name: user_name.clone(),
                host: host.clone(),
                created_at: now,
                expires_at: Some(expires_at),
                used_at: None,
            })
            .await?;
        let target = if role == Role::Agent { host.clone() } else { user_name.clone() };
        self.audit(
            &by.user,
            "token.create",
            target.as_deref(),
            serde_json::json!({"token_id": id, "role": role.as_str(), "expires_at": rfc3339(expires_at)}),
        )
        .await;
        Ok(CreatedToken {
            token: text,
            role: role.as_str().to_string(),
            expires_at: Some(rfc3339(expires_at)),
            user: if role == Role::Agent { None } else { user_name },
            host,
        })
    }

    /// Who a bearer token belongs to. Bootstrap tokens are not API credentials.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AppError> {
        let refuse = || AppError::Unauthenticated("invalid or unknown API token".into());
        let parts = proto::token::parse(bearer).map_err(|_| refuse())?;
        if parts.prefix != proto::token::USER_PREFIX {
            return Err(refuse());
        }
        let t = self.store.get_token(parts.id).await?.ok_or_else(refuse)?;
        if t.kind != "user" || !secret_matches(parts.secret, &t.secret_hash) {
            return Err(refuse());
        }
        if t.expires_at.is_some_and(|e| e <= now_ms()) {
            return Err(AppError::Unauthenticated("API token expired".into()));
        }
        let role = Role::parse(&t.role).ok_or_else(refuse)?;
        Ok(Principal { user: t.user_name.unwrap_or_default(), role })
    }

    /// On first start (no users yet): creates user `admin` and writes its token to
    /// `<data_dir>/admin.token` (mode 0600), the credential to create everyone else with.
    pub async fn bootstrap_admin(&self) -> Result<(), anyhow::Error> {
        let path = self.cfg.data_dir.join("admin.token");
        // Only on first start: a deleted token file must not mint a new admin credential.
        if path.exists() || self.store.user_count().await? > 0 {
            return Ok(());
        }
        let system = Principal { user: "controller".into(), role: Role::Admin };
        let t = self
            .create_token(&system, "admin", Some("admin"), None, Some(Duration::from_secs(365 * 24 * 3600)))
            .await?;
        crate::pki::write_private(&path, format!("{}\n", t.token).as_bytes())?;
        tracing::info!(path = %path.display(), "wrote the bootstrap admin token");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_names() {
        let op = Principal { user: "a".into(), role: Role::Operator };
        assert!(op.may(&[Role::Operator]));
        assert!(!op.may(&[Role::Auditor]));
        assert!(Principal { user: "r".into(), role: Role::Admin }.may(&[Role::Auditor]));
        assert!(valid_host_name("dc-esxi-01"));
        assert!(!valid_host_name("a b"));
        assert!(!valid_host_name("-x"));
        assert!(!valid_host_name(""));
        assert!(secret_matches("s", &hash_secret("s")));
        assert!(!secret_matches("t", &hash_secret("s")));
    }
}
