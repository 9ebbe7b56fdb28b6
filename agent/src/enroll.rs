//! `mangrove-agent enroll`: trade a bootstrap token and a locally generated key's CSR for a
//! client certificate, trusting the controller only if its CA matches the token's fingerprint.
//! The private key never leaves this machine.

use anyhow::{Context, Result, anyhow, bail};
use proto::v1::EnrollRequest;
use proto::v1::enrollment_client::EnrollmentClient;
use rcgen::{CertificateParams, DnType, KeyPair};

use crate::state::{Enrollment, StateDir};

pub fn hostname() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A new key pair and a CSR for it (PEM).
pub fn key_and_csr(name: &str) -> Result<(String, String)> {
    let key = KeyPair::generate().context("cannot generate a key pair")?;
    let mut params = CertificateParams::new(Vec::<String>::new()).context("certificate parameters")?;
    params.distinguished_name.push(DnType::CommonName, name);
    let csr = params.serialize_request(&key).context("cannot build the CSR")?.pem().context("CSR PEM")?;
    Ok((key.serialize_pem(), csr))
}

pub async fn enroll(controller: &str, token: &str, state: &StateDir) -> Result<Enrollment> {
    let parts = proto::token::parse(token).map_err(|e| anyhow!("{e}"))?;
    let Some(fingerprint) = parts.ca_fingerprint else {
        bail!(
            "unknown token: this is a user API token, not an agent bootstrap token (create one with `mangrove token create --role agent`)"
        );
    };
    state.create()?;
    // Refuse while an agent runs on this dir: it would keep using the old identity.
    let _lock = state.lock()?;
    let host_guess = hostname();
    let (key_pem, csr) = key_and_csr(if host_guess.is_empty() { "agent" } else { &host_guess })?;
    let tls = proto::tls::pinned_client_config(fingerprint)?;
    let ch = crate::net::channel(controller, tls).await?;
    let mut client = EnrollmentClient::new(ch);
    let resp = client
        .enroll(EnrollRequest {
            token: token.to_string(),
            csr_pem: csr,
            hostname: host_guess,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            protocol_major: proto::PROTOCOL_MAJOR,
        })
        .await
        .map_err(|s| anyhow!("enrollment refused by the controller: {}", crate::net::status_text(&s)))?
        .into_inner();
    state.write_identity(&resp.certificate_pem, &key_pem)?;
    crate::state::write_atomic(&state.ca(), resp.ca_pem.as_bytes(), 0o644)?;
    let e = Enrollment {
        host: resp.host,
        agent_endpoint: resp.agent_endpoint,
        enrolled_at_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    state.write_enrollment(&e)?;
    // A host enrolled before (a reinstalled machine): number reports after what the
    // controller already holds, so new ones are not taken for replays.
    if resp.last_seq_stored > 0 {
        let mut ob = crate::outbox::Outbox::open(&state.outbox(), crate::outbox::Limits::default())?;
        ob.rebase(resp.last_seq_stored)?;
    }
    Ok(e)
}
