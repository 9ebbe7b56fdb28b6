//! Repository passwords. Each repository's password is made the first time a plan uses it (32
//! random bytes, base64) and kept in `<data_dir>/backup-secrets/<repository>` (0600, in a 0700
//! directory), next to the CA key: the controller's data dir is where its secrets live. The
//! password leaves this process only inside a task sent to an agent over the mTLS stream; it
//! is never in the store, a log, the audit trail or an API answer.
//!
//! Losing this directory loses the repositories: back it up with the CA (see the README).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use base64::Engine as _;

pub struct RepoSecrets {
    dir: PathBuf,
}

impl RepoSecrets {
    pub fn new(data_dir: &std::path::Path) -> RepoSecrets {
        RepoSecrets { dir: data_dir.join("backup-secrets") }
    }

    fn path(&self, repository: &str) -> Result<PathBuf, String> {
        if !inventory::is_valid_name(repository) {
            return Err(format!("{repository:?} is not a repository name"));
        }
        Ok(self.dir.join(repository))
    }

    /// The password of `repository`, made and stored on first use.
    pub fn get_or_create(&self, repository: &str) -> Result<String, String> {
        let path = self.path(repository)?;
        match fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
            Ok(_) => return Err(format!("{} is empty; restore it from the controller's backup", path.display())),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot read {}: {e}", path.display()));
            }
            Err(_) => {}
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let secret = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        // create_new: two plans racing for a new repository both end with the first one's.
        match fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
            Ok(mut f) => {
                f.write_all(secret.as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Ok(secret)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.get_or_create(repository),
            Err(e) => Err(format!("cannot create {}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_password_is_made_once_kept_private_and_read_back() {
        let d = tempfile::tempdir().expect("tempdir");
        let s = RepoSecrets::new(d.path());
        let first = s.get_or_create("dr-san").expect("made");
        assert_eq!(s.get_or_create("dr-san").expect("read"), first);
        assert_ne!(s.get_or_create("dr-nas").expect("made"), first);
        let mode = fs::metadata(d.path().join("backup-secrets/dr-san")).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir = fs::metadata(d.path().join("backup-secrets")).expect("dir").permissions().mode();
        assert_eq!(dir & 0o777, 0o700);
        assert!(s.get_or_create("../etc/passwd").is_err());
    }
}
