//! The HTTP client set-up the HTTP-speaking drivers share: TLS verified by default (system
//! roots or a configured CA bundle), an explicit and logged opt-out, one timeout for every
//! call, and the mapping of transport failures onto [`PlatformError`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::PlatformError;

/// How a driver reaches its endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpOptions {
    /// PEM file with the CA certificates to trust instead of the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Turns certificate verification off. Logged as a warning every time a driver is built.
    #[serde(default)]
    pub insecure: bool,
    /// Longest wait for one answer; a platform slower than this is reported as timing out.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions { ca_file: None, insecure: false, timeout_secs: default_timeout_secs() }
    }
}

impl HttpOptions {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }
}

/// Builds the HTTP agent for `endpoint`. Status codes are returned, not turned into errors,
/// so drivers can read SOAP faults and JSON error bodies.
pub fn agent(endpoint: &str, opts: &HttpOptions) -> Result<ureq::Agent, PlatformError> {
    let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
    if let Some(ca) = &opts.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| PlatformError::Config(format!("cannot read CA file {} for {endpoint}: {e}", ca.display())))?;
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(PlatformError::Config(format!("CA file {} holds no certificate", ca.display())));
        }
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
    }
    if opts.insecure {
        tracing::warn!(endpoint, "TLS certificate verification is OFF for this platform (insecure = true)");
        tls = tls.disable_verification(true);
    }
    Ok(ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .timeout_global(Some(opts.timeout()))
        .build()
        .new_agent())
}

/// Maps a transport failure of `call` onto the error an operator should read.
pub fn transport_error(endpoint: &str, call: &str, opts: &HttpOptions, err: ureq::Error) -> PlatformError {
    match err {
        ureq::Error::Timeout(_) => PlatformError::Timeout {
            endpoint: endpoint.to_string(),
            call: call.to_string(),
            secs: opts.timeout().as_secs(),
        },
        ureq::Error::Io(e)
            if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock =>
        {
            PlatformError::Timeout {
                endpoint: endpoint.to_string(),
                call: call.to_string(),
                secs: opts.timeout().as_secs(),
            }
        }
        other => PlatformError::Unreachable { endpoint: endpoint.to_string(), detail: other.to_string() },
    }
}

/// Reads a response body as text, capped so a runaway answer cannot exhaust memory.
pub fn read_body(
    endpoint: &str,
    call: &str,
    opts: &HttpOptions,
    resp: &mut ureq::http::Response<ureq::Body>,
) -> Result<String, PlatformError> {
    resp.body_mut().with_config().limit(64 * 1024 * 1024).read_to_string().map_err(|e| match e {
        ureq::Error::Timeout(_) | ureq::Error::Io(_) => transport_error(endpoint, call, opts, e),
        other => PlatformError::Malformed {
            endpoint: endpoint.to_string(),
            call: call.to_string(),
            detail: format!("cannot read the body: {other}"),
        },
    })
}
