//! How a platform is configured and connected, shared by the controller (which syncs
//! platforms) and the proxy agent (which reports hosts that cannot run an agent).
//!
//! The public part (kind, endpoint, TLS) sits in the controller's or agent's TOML; the
//! secrets sit in a separate credentials file that must be readable by its owner alone
//! (mode 0600 or stricter), so they never appear in a config someone may share, in process
//! arguments or in logs.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::PlatformError;
use crate::http::HttpOptions;
use crate::hypervisor::{Hypervisor, PlatformKind};

/// One platform's connection settings (`[[platforms]]` in the controller's config, `[proxy]`
/// in a proxy agent's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// The platform's name, as the inventory's site names it (`vcenter-dc`).
    pub name: String,
    pub kind: PlatformKind,
    /// vSphere: the SDK URL (`https://vcenter.example/sdk`); OpenStack: Keystone's v3 URL
    /// (`https://keystone.example:5000/v3`); libvirt: the connection URI (`qemu:///system`).
    pub endpoint: String,
    /// The credentials file (TOML, mode 0600): `username`/`password` for vSphere; for
    /// OpenStack either `username`, `password`, `project_name` (and optionally
    /// `user_domain`, `project_domain`, default `Default`) or `application_credential_id`
    /// and `application_credential_secret`. Not needed for libvirt.
    #[serde(default)]
    pub credentials: Option<PathBuf>,
    /// OpenStack region (default `RegionOne`).
    #[serde(default)]
    pub region: Option<String>,
    /// OpenStack endpoint interface (default `public`).
    #[serde(default)]
    pub interface: Option<String>,
    /// PEM file of the CA certificates to trust for this endpoint (default: system roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Turns TLS certificate verification off; logged as a warning at every connection.
    #[serde(default)]
    pub insecure: bool,
    /// Longest wait for one answer, in seconds (default 30).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// The secrets of a credentials file. Debug never shows them.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
    pub project_name: Option<String>,
    pub user_domain: Option<String>,
    pub project_domain: Option<String>,
    pub application_credential_id: Option<String>,
    pub application_credential_secret: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("project_name", &self.project_name)
            .field("application_credential_id", &self.application_credential_id)
            .finish_non_exhaustive()
    }
}

/// Reads a credentials file, refusing one that others can read or that another user owns.
pub fn read_credentials(path: &Path) -> Result<Credentials, PlatformError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| PlatformError::Config(format!("cannot read credentials file {}: {e}", path.display())))?;
    if meta.mode() & 0o077 != 0 {
        return Err(PlatformError::Config(format!(
            "credentials file {} is readable by others (mode {:o}); run `chmod 600 {}`",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        )));
    }
    let me = nix_uid();
    if meta.uid() != me {
        return Err(PlatformError::Config(format!(
            "credentials file {} belongs to uid {}, not to this process's uid {me}",
            path.display(),
            meta.uid()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| PlatformError::Config(format!("cannot read credentials file {}: {e}", path.display())))?;
    // The parser's message can quote the offending line, which may hold a secret: say only
    // where the problem is.
    toml::from_str(&text).map_err(|e| {
        let place = e.span().map(|s| format!(" at byte {}", s.start)).unwrap_or_default();
        PlatformError::Config(format!(
            "credentials file {} is not valid{place}: expected TOML keys username/password (or application_credential_id/secret)",
            path.display()
        ))
    })
}

fn nix_uid() -> u32 {
    // The owner of our own /proc entry is our effective uid; avoids a libc dependency.
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

impl Connection {
    /// The HTTP options the drivers take.
    pub fn http(&self) -> HttpOptions {
        let mut h = HttpOptions { ca_file: self.ca_file.clone(), insecure: self.insecure, ..HttpOptions::default() };
        if let Some(t) = self.timeout_secs {
            h.timeout_secs = t;
        }
        h
    }

    fn require<'a>(&self, field: &'a Option<String>, key: &str) -> Result<&'a str, PlatformError> {
        field.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| {
            PlatformError::Config(format!("platform {}: the credentials file has no `{key}`", self.name))
        })
    }

    fn credentials(&self) -> Result<Credentials, PlatformError> {
        let path = self.credentials.as_deref().ok_or_else(|| {
            PlatformError::Config(format!("platform {} ({}) needs `credentials = FILE`", self.name, self.kind))
        })?;
        read_credentials(path)
    }

    /// Connects (logs in) and returns the driver.
    pub fn connect(&self) -> Result<Box<dyn Hypervisor>, PlatformError> {
        match self.kind {
            PlatformKind::Vsphere => Ok(Box::new(self.connect_vsphere()?)),
            PlatformKind::Openstack => Ok(Box::new(self.connect_openstack()?)),
            PlatformKind::Libvirt => self.connect_libvirt(),
        }
    }

    /// Connects to a vSphere platform and returns its own driver, for what only vSphere has
    /// (exporting a VM's disks).
    pub fn connect_vsphere(&self) -> Result<crate::vsphere::VsphereDriver, PlatformError> {
        if self.kind != PlatformKind::Vsphere {
            return Err(PlatformError::Config(format!("platform {} is {}, not vSphere", self.name, self.kind)));
        }
        let c = self.credentials()?;
        let cfg = crate::vsphere::VsphereConfig {
            url: self.endpoint.clone(),
            username: self.require(&c.username, "username")?.to_string(),
            password: self.require(&c.password, "password")?.to_string(),
            http: self.http(),
        };
        crate::vsphere::VsphereDriver::connect(cfg)
    }

    /// Connects to an OpenStack platform and returns its own driver, for what only OpenStack
    /// has (images, networks, flavors).
    pub fn connect_openstack(&self) -> Result<crate::openstack::OpenstackDriver, PlatformError> {
        if self.kind != PlatformKind::Openstack {
            return Err(PlatformError::Config(format!("platform {} is {}, not OpenStack", self.name, self.kind)));
        }
        let c = self.credentials()?;
        let auth = if c.application_credential_id.is_some() {
            crate::openstack::OpenstackAuth::ApplicationCredential {
                id: self.require(&c.application_credential_id, "application_credential_id")?.to_string(),
                secret: self.require(&c.application_credential_secret, "application_credential_secret")?.to_string(),
            }
        } else {
            crate::openstack::OpenstackAuth::Password {
                username: self.require(&c.username, "username")?.to_string(),
                password: self.require(&c.password, "password")?.to_string(),
                project_name: self.require(&c.project_name, "project_name")?.to_string(),
                user_domain: c.user_domain.clone().unwrap_or_else(|| "Default".into()),
                project_domain: c.project_domain.clone().unwrap_or_else(|| "Default".into()),
            }
        };
        let cfg = crate::openstack::OpenstackConfig {
            auth_url: self.endpoint.clone(),
            region: self.region.clone().unwrap_or_else(|| "RegionOne".into()),
            interface: self.interface.clone().unwrap_or_else(|| "public".into()),
            auth,
            http: self.http(),
        };
        crate::openstack::OpenstackDriver::connect(cfg)
    }

    #[cfg(feature = "libvirt")]
    fn connect_libvirt(&self) -> Result<Box<dyn Hypervisor>, PlatformError> {
        Ok(Box::new(crate::libvirt::LibvirtDriver::connect(&self.endpoint)?))
    }

    #[cfg(not(feature = "libvirt"))]
    fn connect_libvirt(&self) -> Result<Box<dyn Hypervisor>, PlatformError> {
        Err(PlatformError::Config(format!(
            "platform {}: this build has no libvirt driver (build with `--features libvirt`)",
            self.name
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_credentials_file_others_can_read_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vc.toml");
        std::fs::write(&path, "username = \"admin\"\npassword = \"s3cret\"\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = read_credentials(&path).map(|_| ()).expect_err("refused").to_string();
        assert!(err.contains("chmod 600") && !err.contains("s3cret"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let c = read_credentials(&path).expect("readable by its owner alone");
        assert_eq!(c.username.as_deref(), Some("admin"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn a_malformed_credentials_file_is_refused_without_echoing_its_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vc.toml");
        std::fs::write(&path, "password = s3cret-unquoted\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let err = read_credentials(&path).map(|_| ()).expect_err("refused").to_string();
        assert!(err.contains("not valid") && !err.contains("s3cret"), "{err}");
    }
}
