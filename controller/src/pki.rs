//! The controller's built-in certificate authority.
//!
//! Created on first start in the data dir (`ca.pem`, and `ca.key` with mode 0600), it signs
//! the agents' short-lived client certificates and the controller's own server certificates.
//! An agent's certificate names its host in the subject CN and as a DNS SAN; the controller
//! reads the host identity from there on every connection, never from a field the agent sends.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

/// Why the CA could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: cannot read or write")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: is readable by others (mode {mode:o}); it must be 0600")]
    KeyMode { path: PathBuf, mode: u32 },
    #[error("certificate operation failed")]
    Rcgen(#[from] rcgen::Error),
    #[error("invalid certificate signing request")]
    Csr(#[source] rcgen::Error),
    #[error("invalid host name {0:?} for a certificate")]
    HostName(String),
}

/// A signed certificate for one agent.
#[derive(Debug, Clone)]
pub struct Issued {
    pub pem: String,
    pub serial: String,
    pub not_after: OffsetDateTime,
}

/// The controller's CA: its certificate and the key that signs with it.
pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("fingerprint", &self.fingerprint()).finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.to_path_buf(), source }
}

/// Writes a file that only its owner may read, atomically (temp file, fsync, rename).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    // `<name>.tmp`, so files that differ only in extension never share a temp file.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f =
        fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io(&tmp))?;
    f.write_all(contents).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

fn random_serial() -> (SerialNumber, String) {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // no leading zero byte, so the hex form is stable
    (SerialNumber::from_slice(&bytes), hex::encode(bytes))
}

impl Ca {
    /// Loads the CA from `dir`, or creates it there on first start.
    ///
    /// Refuses a key file that others can read, rather than silently fixing it: a readable CA
    /// key means every agent identity may be forged, and the operator must know.
    pub fn load_or_create(dir: &Path) -> Result<Ca, PkiError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        if cert_path.exists() && key_path.exists() {
            let mode = fs::metadata(&key_path).map_err(io(&key_path))?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(PkiError::KeyMode { path: key_path, mode: mode & 0o777 });
            }
            let key_pem = fs::read_to_string(&key_path).map_err(io(&key_path))?;
            let cert_pem = fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
            let key = KeyPair::from_pem(&key_pem)?;
            let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
            let cert_der =
                proto::tls::certs_from_pem(&cert_pem).ok().and_then(|c| c.into_iter().next()).ok_or(PkiError::Io {
                    path: cert_path.clone(),
                    source: std::io::Error::other("no certificate in file"),
                })?;
            return Ok(Ca { cert_pem, cert_der, issuer });
        }
        fs::create_dir_all(dir).map_err(io(dir))?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Mangrove controller CA");
        dn.push(DnType::OrganizationName, "Mangrove");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::from_secs(3600);
        params.not_after = now + Duration::from_secs(10 * 365 * 24 * 3600);
        params.serial_number = Some(random_serial().0);
        let cert = params.self_signed(&key)?;
        write_private(&key_path, key.serialize_pem().as_bytes())?;
        let cert_pem = cert.pem();
        fs::write(&cert_path, &cert_pem).map_err(io(&cert_path))?;
        let cert_der = cert.der().clone();
        let issuer = Issuer::new(params, key);
        Ok(Ca { cert_pem, cert_der, issuer })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// SHA-256 of the CA certificate, as carried in bootstrap tokens.
    pub fn fingerprint(&self) -> String {
        proto::tls::fingerprint(&self.cert_der)
    }

    /// Signs an agent's CSR for `host`. Only the CSR's public key is used: the name, validity
    /// and usages are the controller's decision.
    pub fn sign_agent(&self, csr_pem: &str, host: &str, ttl: Duration) -> Result<Issued, PkiError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(PkiError::Csr)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        dn.push(DnType::OrganizationalUnitName, "agent");
        params.distinguished_name = dn;
        params.subject_alt_names =
            vec![SanType::DnsName(host.try_into().map_err(|_| PkiError::HostName(host.to_string()))?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        // A little backdating tolerates small clock differences between hosts; at most a tenth
        // of the lifetime, so agents (which renew at two thirds of it) see a sane window.
        params.not_before = now - (ttl / 10).min(Duration::from_secs(300));
        params.not_after = now + ttl;
        let (serial, serial_hex) = random_serial();
        params.serial_number = Some(serial);
        let not_after = params.not_after;
        csr.params = params;
        let cert = csr.signed_by(&self.issuer)?;
        Ok(Issued { pem: cert.pem(), serial: serial_hex, not_after })
    }

    /// A server certificate for the controller's listeners, with its key. It always names
    /// [`proto::CONTROLLER_TLS_NAME`] (what agents verify), `localhost` and the given extra
    /// names and IP addresses (what browsers and the CLI verify).
    pub fn server_identity(
        &self,
        extra_names: &[String],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
        let key = KeyPair::generate()?;
        let mut names = vec![proto::CONTROLLER_TLS_NAME.to_string(), "localhost".to_string()];
        names.extend(extra_names.iter().cloned());
        names.sort();
        names.dedup();
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        for n in &names {
            params.subject_alt_names.push(match n.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(n.as_str().try_into().map_err(|_| PkiError::HostName(n.clone()))?),
            });
        }
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, proto::CONTROLLER_TLS_NAME);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::from_secs(300);
        params.not_after = now + Duration::from_secs(365 * 24 * 3600);
        params.serial_number = Some(random_serial().0);
        let cert = params.signed_by(&key, &self.issuer)?;
        let chain = vec![cert.der().clone(), self.cert_der.clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((chain, key))
    }
}

/// The host a client certificate names (its subject CN) and its serial (lowercase hex).
pub fn peer_identity(der: &[u8]) -> Option<(String, String)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    let serial = hex::encode(cert.raw_serial());
    Some((cn, serial))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_key_is_private_and_reloads_with_same_fingerprint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::load_or_create(dir.path()).expect("create");
        let mode = fs::metadata(dir.path().join("ca.key")).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Ca::load_or_create(dir.path()).expect("reload");
        assert_eq!(ca.fingerprint(), again.fingerprint());
    }

    #[test]
    fn refuses_a_key_others_can_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        Ca::load_or_create(dir.path()).expect("create");
        fs::set_permissions(dir.path().join("ca.key"), fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = Ca::load_or_create(dir.path()).expect_err("must refuse");
        assert!(matches!(err, PkiError::KeyMode { .. }), "{err}");
    }

    #[test]
    fn signed_agent_cert_names_the_host_chosen_by_the_controller() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::load_or_create(dir.path()).expect("create");
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(vec!["evil-name".to_string()]).expect("params");
        p.distinguished_name.push(DnType::CommonName, "evil-name");
        let csr = p.serialize_request(&key).expect("csr").pem().expect("pem");
        let issued = ca.sign_agent(&csr, "dc-esxi-01", Duration::from_secs(60)).expect("sign");
        let der = proto::tls::certs_from_pem(&issued.pem).expect("pem");
        let (host, serial) = peer_identity(&der[0]).expect("identity");
        assert_eq!(host, "dc-esxi-01");
        assert_eq!(serial, issued.serial);
    }

    #[test]
    fn garbage_csr_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::load_or_create(dir.path()).expect("create");
        assert!(
            ca.sign_agent(
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
                "h",
                Duration::from_secs(1)
            )
            .is_err()
        );
        assert!(ca.sign_agent("", "h", Duration::from_secs(1)).is_err());
    }
}
