//! Where a repository is and how to open it. The password lives in a [`Secret`], which never
//! prints itself; the location is shown with any credentials in its URL redacted.

use std::fmt;
use std::path::PathBuf;

/// A password held in memory only. It has no `Display`, its `Debug` prints `Secret([redacted])`,
/// and its bytes are overwritten when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().into_bytes())
    }

    /// The raw bytes, for writing the private password file and for scrubbing output.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        for byte in self.0.iter_mut() {
            *byte = 0;
        }
        // Keeps the zeroing from being optimised away as a dead store.
        std::hint::black_box(&self.0);
    }
}

/// How to reach and open one restic repository.
#[derive(Clone)]
pub struct RepositoryConfig {
    /// What restic calls the repository: a local path, `sftp:user@host:/path`,
    /// `rest:https://host:8000/name`, … It reaches restic through `RESTIC_REPOSITORY` (not the
    /// command line), so credentials in a REST URL stay out of the world-readable argv.
    pub location: String,
    /// The repository password. Restic trims white space at both ends of a password file, so a
    /// password that starts or ends with spaces does not round-trip.
    pub password: Secret,
    /// restic's cache directory (`--cache-dir`); `None` runs with `--no-cache`.
    pub cache_dir: Option<PathBuf>,
    /// Where the private 0700 directory holding the 0600 password file is made for each run;
    /// `None` uses the system temporary directory. Prefer a tmpfs such as `/run/mangrove`.
    pub secret_dir: Option<PathBuf>,
}

impl RepositoryConfig {
    pub fn new(location: impl Into<String>, password: Secret) -> Self {
        RepositoryConfig { location: location.into(), password, cache_dir: None, secret_dir: None }
    }

    pub fn with_cache_dir(mut self, cache_dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(cache_dir.into());
        self
    }

    pub fn with_secret_dir(mut self, secret_dir: impl Into<PathBuf>) -> Self {
        self.secret_dir = Some(secret_dir.into());
        self
    }

    /// The location fit for logs and error messages.
    pub fn display_location(&self) -> String {
        redact_location(&self.location)
    }
}

impl fmt::Debug for RepositoryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepositoryConfig")
            .field("location", &self.display_location())
            .field("password", &self.password)
            .field("cache_dir", &self.cache_dir)
            .field("secret_dir", &self.secret_dir)
            .finish()
    }
}

/// Replaces the password of a `scheme://user:password@host` URL inside a restic location with
/// `***`; everything else is kept so the operator still sees where the repository is.
pub fn redact_location(location: &str) -> String {
    let Some(scheme_end) = location.find("://") else {
        return location.to_string();
    };
    let authority_start = scheme_end + 3;
    let rest = &location[authority_start..];
    let authority_len = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let Some(at) = authority.rfind('@') else {
        return location.to_string();
    };
    let user_info = &authority[..at];
    let Some(colon) = user_info.find(':') else {
        return location.to_string();
    };
    format!("{}{}:***{}", &location[..authority_start], &user_info[..colon], &location[authority_start + at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_location_hides_only_url_passwords() {
        let cases = [
            ("/srv/backup/repo", "/srv/backup/repo"),
            ("sftp:backup@dr.example:/srv/restic", "sftp:backup@dr.example:/srv/restic"),
            ("rest:https://dr.example:8000/agent1/", "rest:https://dr.example:8000/agent1/"),
            ("rest:https://agent1:s3cr3t@dr.example:8000/agent1/", "rest:https://agent1:***@dr.example:8000/agent1/"),
            ("rest:http://u:p%40ss@127.0.0.1:8000/", "rest:http://u:***@127.0.0.1:8000/"),
            ("rest:http://user@127.0.0.1:8000/", "rest:http://user@127.0.0.1:8000/"),
        ];
        for (location, shown) in cases {
            assert_eq!(redact_location(location), shown, "{location}");
        }
    }

    #[test]
    fn debug_of_config_shows_no_password() {
        let config = RepositoryConfig::new("rest:http://a:urlpass@127.0.0.1:1/", Secret::new("hunter2-very-secret"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2-very-secret"), "{shown}");
        assert!(!shown.contains("urlpass"), "{shown}");
        assert!(shown.contains("127.0.0.1:1"), "{shown}");
    }
}
