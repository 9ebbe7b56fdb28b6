//! Device credentials: `<data_dir>/vc-credentials.toml`, readable by the controller's user
//! alone (0600, refused otherwise), next to the CA key. A password leaves this process only
//! inside a `vc_check` task sent to the proxy agent over the mTLS stream; it is never in the
//! store, a log, the audit trail or an API answer.
//!
//! ```toml
//! user = "admin"          # default for every device
//! password = "…"
//! [devices.vc-tinh]       # per device, overriding the default
//! password = "…"
//! ```

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const FILE: &str = "vc-credentials.toml";

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    user: Option<String>,
    password: Option<String>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    user: Option<String>,
    password: Option<String>,
    #[serde(default)]
    devices: BTreeMap<String, Entry>,
}

/// The credentials; `Debug` never shows a password.
#[derive(Clone, Default)]
pub struct VcCredentials {
    file: FileFormat,
}

impl std::fmt::Debug for VcCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VcCredentials").field("devices", &self.file.devices.keys().collect::<Vec<_>>()).finish()
    }
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

impl VcCredentials {
    /// Reads the file; none means no credentials (devices without a password are checked
    /// without one, and those that ask for one fail with "credentials failed").
    pub fn load(data_dir: &Path) -> Result<VcCredentials, String> {
        let p = path(data_dir);
        let meta = match std::fs::metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(VcCredentials::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", p.display())),
        };
        if meta.mode() & 0o077 != 0 {
            return Err(format!(
                "{} is readable by others (mode {:o}); run `chmod 600 {}`",
                p.display(),
                meta.mode() & 0o777,
                p.display()
            ));
        }
        let text = std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        // The parser's message may quote a line holding a secret: say only where.
        let file: FileFormat = toml::from_str(&text).map_err(|e| {
            let at = e.span().map(|s| format!(" at byte {}", s.start)).unwrap_or_default();
            format!("{} is not valid{at}: expected user, password and [devices.NAME] tables", p.display())
        })?;
        Ok(VcCredentials { file })
    }

    /// (user, password) for a device: its own entry, else the defaults (user `admin`).
    pub fn of(&self, device: &str) -> (String, String) {
        let own = self.file.devices.get(device).cloned().unwrap_or_default();
        let user = own.user.or_else(|| self.file.user.clone()).unwrap_or_else(|| "admin".into());
        let password = own.password.or_else(|| self.file.password.clone()).unwrap_or_default();
        (user, password)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn per_device_entries_override_the_default_and_others_may_not_read_the_file() {
        let d = tempfile::tempdir().expect("tempdir");
        assert_eq!(VcCredentials::load(d.path()).expect("none").of("x"), ("admin".into(), String::new()));
        let p = path(d.path());
        std::fs::write(&p, "password = \"chung-Cà-Mau\"\n[devices.vc-tinh]\nuser = \"op\"\npassword = \"riêng\"\n")
            .expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = VcCredentials::load(d.path()).expect_err("refused");
        assert!(e.contains("chmod 600") && !e.contains("chung"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let c = VcCredentials::load(d.path()).expect("read");
        assert_eq!(c.of("vc-tinh"), ("op".into(), "riêng".into()));
        assert_eq!(c.of("vc-u-minh"), ("admin".into(), "chung-Cà-Mau".into()));
        assert!(!format!("{c:?}").contains("riêng"));
    }
}
