//! Keystone v3: the token request body, the token answer (id, expiry, catalog) and the rule
//! for when to renew. Pure functions; the HTTP exchange lives in `session`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::OpenstackAuth;
use crate::error::PlatformError;

/// A Keystone token with what the driver needs from its answer.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// The `X-Subject-Token` value.
    pub id: String,
    pub expires_at: OffsetDateTime,
    /// Keystone's own `issued_at`; with `expires_at` it gives the lifetime without trusting
    /// that our clock agrees with Keystone's.
    pub issued_at: Option<OffsetDateTime>,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub catalog: Catalog,
}

impl Token {
    /// How long the token was issued for, as Keystone counts it.
    pub fn lifetime(&self, now: OffsetDateTime) -> Duration {
        let from = self.issued_at.unwrap_or(now);
        let secs = (self.expires_at - from).whole_seconds();
        Duration::from_secs(u64::try_from(secs).unwrap_or(0))
    }
}

/// The body of `POST /v3/auth/tokens` for these credentials, as the OpenStack CLI sends it.
pub(crate) fn auth_body(auth: &OpenstackAuth) -> Value {
    match auth {
        OpenstackAuth::Password { username, user_domain, password, project_name, project_domain } => json!({
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": username, "domain": {"name": user_domain}, "password": password}}
                },
                "scope": {"project": {"name": project_name, "domain": {"name": project_domain}}}
            }
        }),
        // An application credential carries its own project scope; Keystone refuses a scope
        // block next to it.
        OpenstackAuth::ApplicationCredential { id, secret } => json!({
            "auth": {
                "identity": {
                    "methods": ["application_credential"],
                    "application_credential": {"id": id, "secret": secret}
                }
            }
        }),
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: String,
    #[serde(default)]
    issued_at: Option<String>,
    #[serde(default)]
    user: Option<IdOnly>,
    #[serde(default)]
    project: Option<IdOnly>,
    #[serde(default)]
    catalog: Vec<CatalogService>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// One service of the catalog.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CatalogService {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CatalogEndpoint {
    pub interface: String,
    #[serde(default)]
    pub region_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    pub url: String,
}

/// The service catalog that came with the token.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    pub services: Vec<CatalogService>,
}

impl Catalog {
    /// The URL of the first of `types` (the service type and its aliases, in preference
    /// order) with an endpoint for `interface` in `region`, without a trailing slash.
    pub fn url(&self, types: &[&str], interface: &str, region: &str) -> Option<String> {
        let interface = interface.trim_end_matches("URL");
        types.iter().find_map(|t| {
            self.services.iter().filter(|s| s.kind == *t).find_map(|s| {
                s.endpoints
                    .iter()
                    .find(|e| {
                        e.interface == interface
                            && (e.region_id.as_deref() == Some(region) || e.region.as_deref() == Some(region))
                    })
                    .map(|e| e.url.trim_end_matches('/').to_string())
            })
        })
    }
}

/// Reads Keystone's 201 answer. `subject_token` is the `X-Subject-Token` header.
pub(crate) fn parse_token(endpoint: &str, subject_token: Option<&str>, body: &str) -> Result<Token, PlatformError> {
    let malformed = |detail: String| PlatformError::Malformed {
        endpoint: endpoint.to_string(),
        call: "POST /v3/auth/tokens".to_string(),
        detail,
    };
    let id = subject_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed("no X-Subject-Token header".to_string()))?
        .to_string();
    let answer: TokenAnswer = serde_json::from_str(body).map_err(|e| malformed(format!("token body: {e}")))?;
    let t = answer.token;
    let expires_at = OffsetDateTime::parse(&t.expires_at, &Rfc3339)
        .map_err(|e| malformed(format!("token.expires_at {:?}: {e}", t.expires_at)))?;
    let issued_at = match t.issued_at {
        Some(s) => {
            Some(OffsetDateTime::parse(&s, &Rfc3339).map_err(|e| malformed(format!("token.issued_at {s:?}: {e}")))?)
        }
        None => None,
    };
    Ok(Token {
        id,
        expires_at,
        issued_at,
        user_id: t.user.map(|u| u.id),
        project_id: t.project.map(|p| p.id),
        catalog: Catalog { services: t.catalog },
    })
}

/// How long before expiry a token is replaced.
///
/// A tenth of the lifetime, but at least two call timeouts (so a token checked just before a
/// slow call cannot expire while the call is in flight), at most 5 minutes (Keystone's
/// default hour gives 5 minutes), and never more than half the lifetime (so a short-lived
/// token is not renewed on every call).
pub(crate) fn renewal_margin(lifetime: Duration, call_timeout: Duration) -> Duration {
    (lifetime / 10).max(call_timeout * 2).min(Duration::from_secs(300)).min(lifetime / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_margin_table() {
        let s = Duration::from_secs;
        // (lifetime, call timeout, margin)
        for (life, timeout, margin) in [
            (3600, 30, 300), // default Keystone hour: 5 minutes before expiry
            (600, 30, 60),   // 10 minutes: two timeouts beat a tenth
            (120, 30, 60),   // short token: capped at half the lifetime
            (30, 5, 10),     // the test Keystone: renew after 20 s
            (86400, 30, 300),
            (0, 30, 0),
        ] {
            assert_eq!(renewal_margin(s(life), s(timeout)), s(margin), "lifetime {life} s, timeout {timeout} s");
        }
    }

    #[test]
    fn catalog_picks_interface_region_and_aliases() {
        let body = r#"{"token": {"expires_at": "2026-11-26T22:56:12.000000Z", "issued_at": "2026-11-26T21:56:12.000000Z",
          "user": {"id": "u1"}, "project": {"id": "p1"},
          "catalog": [
            {"type": "volumev3", "endpoints": [
              {"interface": "internal", "region_id": "RegionOne", "url": "http://int:8776/v3/p1"},
              {"interface": "public", "region": "RegionOne", "url": "http://pub:8776/v3/p1/"}]},
            {"type": "compute", "endpoints": [
              {"interface": "public", "region_id": "RegionTwo", "url": "http://two:8774/v2.1"}]}]}}"#;
        let t = parse_token("ks", Some("tok"), body).expect("valid token");
        assert_eq!(t.id, "tok");
        assert_eq!(t.lifetime(OffsetDateTime::now_utc()), Duration::from_secs(3600));
        let vol = ["block-storage", "volumev3", "volumev2"];
        assert_eq!(t.catalog.url(&vol, "public", "RegionOne").as_deref(), Some("http://pub:8776/v3/p1"));
        assert_eq!(t.catalog.url(&vol, "internal", "RegionOne").as_deref(), Some("http://int:8776/v3/p1"));
        assert_eq!(t.catalog.url(&["compute"], "public", "RegionOne"), None);
        assert_eq!(t.catalog.url(&["compute"], "public", "RegionTwo").as_deref(), Some("http://two:8774/v2.1"));
    }

    #[test]
    fn token_without_header_or_expiry_is_malformed() {
        let err =
            parse_token("ks", None, r#"{"token": {"expires_at": "2026-11-26T22:56:12Z"}}"#).expect_err("invalid token");
        assert!(err.to_string().contains("X-Subject-Token"), "{err}");
        let err = parse_token("ks", Some("t"), r#"{"token": {}}"#).expect_err("invalid token");
        assert!(err.to_string().contains("expires_at"), "{err}");
        let err = parse_token("ks", Some("t"), r#"{"token": {"expires_at": "soon"}}"#).expect_err("invalid token");
        assert!(err.to_string().contains("soon"), "{err}");
    }

    #[test]
    fn application_credential_body_has_no_scope() {
        let b = auth_body(&OpenstackAuth::ApplicationCredential { id: "i".into(), secret: "s".into() });
        assert!(b["auth"].get("scope").is_none());
        assert_eq!(b["auth"]["identity"]["methods"][0], "application_credential");
    }
}
