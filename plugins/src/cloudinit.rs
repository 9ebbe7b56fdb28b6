//! The cloud-init user data that makes a new instance's agent enroll: one `#cloud-config`
//! document that writes `/etc/mangrove/enroll.env` and starts the agent. The controller writes
//! it ([`agent_user_data`]) when it boots a DR instance; whatever realises the instance (cloud
//! init on a real image, the testbed's OpenStack simulator) reads it back ([`parse_enroll_env`]).
//!
//! ```text
//! #cloud-config
//! write_files:
//!   - path: /etc/mangrove/enroll.env
//!     permissions: '0600'
//!     content: |
//!       MANGROVE_ENROLL=10.77.16.10:7443
//!       MANGROVE_AGENT_TOKEN=<one-time agent bootstrap token for the instance's name>
//!       MANGROVE_SERVE_DIR=/srv/qlvbdh          (optional: the data dir the service serves)
//! runcmd:
//!   - [systemctl, start, mangrove-agent]
//! ```
//!
//! The token is a secret: neither function puts it in an error message.

use serde::Deserialize;

/// Where the enroll file goes on the instance.
pub const ENROLL_ENV_PATH: &str = "/etc/mangrove/enroll.env";

/// What the enroll file says.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollEnv {
    /// The controller's enrollment endpoint, `host:port` (`MANGROVE_ENROLL`).
    pub enroll: String,
    /// The one-time bootstrap token (`MANGROVE_AGENT_TOKEN`).
    pub token: String,
    /// The data dir the instance's service serves (`MANGROVE_SERVE_DIR`), when given.
    pub serve_dir: Option<String>,
}

impl std::fmt::Debug for EnrollEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollEnv")
            .field("enroll", &self.enroll)
            .field("token", &"<redacted>")
            .field("serve_dir", &self.serve_dir)
            .finish()
    }
}

/// Why user data could not be written or read as an agent's enroll file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudInitError {
    /// A value would break the file's line format (empty, or holding a newline or space).
    #[error("cloud-init user data: {field} {problem}")]
    BadValue { field: &'static str, problem: &'static str },
    /// The text is not a `#cloud-config` document.
    #[error("cloud-init user data does not start with #cloud-config")]
    NotCloudConfig,
    /// The YAML does not parse (the location only: the text holds a token).
    #[error("cloud-init user data is not valid YAML{location}")]
    Yaml { location: String },
    /// No `write_files` entry for the enroll file.
    #[error("cloud-init user data writes no {ENROLL_ENV_PATH}")]
    NoEnrollFile,
    /// The enroll file lacks a variable.
    #[error("{ENROLL_ENV_PATH} in the user data has no {0}")]
    Missing(&'static str),
}

fn check(field: &'static str, value: &str) -> Result<(), CloudInitError> {
    if value.is_empty() {
        return Err(CloudInitError::BadValue { field, problem: "is empty" });
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CloudInitError::BadValue { field, problem: "holds a space or a line break" });
    }
    Ok(())
}

/// The user data for an instance whose agent enrolls at `enroll_addr` (`host:port`) with
/// `token`, and whose service serves `serve_dir` when given.
///
/// # Errors
/// [`CloudInitError::BadValue`] if a value is empty or holds whitespace (it would break the
/// file's `KEY=value` lines), or `serve_dir` is not absolute.
pub fn agent_user_data(enroll_addr: &str, token: &str, serve_dir: Option<&str>) -> Result<String, CloudInitError> {
    check("the enroll address", enroll_addr)?;
    check("the token", token)?;
    let mut env = format!("      MANGROVE_ENROLL={enroll_addr}\n      MANGROVE_AGENT_TOKEN={token}\n");
    if let Some(dir) = serve_dir {
        check("the serve dir", dir)?;
        if !dir.starts_with('/') {
            return Err(CloudInitError::BadValue { field: "the serve dir", problem: "is not an absolute path" });
        }
        env.push_str(&format!("      MANGROVE_SERVE_DIR={dir}\n"));
    }
    Ok(format!(
        "#cloud-config\nwrite_files:\n  - path: {ENROLL_ENV_PATH}\n    permissions: '0600'\n    content: |\n{env}\
         runcmd:\n  - [systemctl, start, mangrove-agent]\n"
    ))
}

#[derive(Deserialize)]
struct CloudConfig {
    #[serde(default)]
    write_files: Vec<WriteFile>,
}

#[derive(Deserialize)]
struct WriteFile {
    path: String,
    #[serde(default)]
    content: String,
}

/// Reads the enroll file out of `user_data`'s `write_files`. Other keys (`runcmd`, users,
/// packages) are ignored, as are other variables in the file.
///
/// # Errors
/// [`CloudInitError::NotCloudConfig`] without the `#cloud-config` header, [`CloudInitError::Yaml`]
/// with the location only, [`CloudInitError::NoEnrollFile`], [`CloudInitError::Missing`].
pub fn parse_enroll_env(user_data: &str) -> Result<EnrollEnv, CloudInitError> {
    if user_data.lines().next().map(str::trim_end) != Some("#cloud-config") {
        return Err(CloudInitError::NotCloudConfig);
    }
    let doc: CloudConfig = serde_norway::from_str(user_data).map_err(|e| CloudInitError::Yaml {
        location: e.location().map(|l| format!(" at line {} column {}", l.line(), l.column())).unwrap_or_default(),
    })?;
    let file = doc.write_files.iter().find(|f| f.path == ENROLL_ENV_PATH).ok_or(CloudInitError::NoEnrollFile)?;
    let var = |name: &str| {
        file.content.lines().find_map(|l| {
            let (k, v) = l.trim().split_once('=')?;
            (k.trim() == name && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    };
    Ok(EnrollEnv {
        enroll: var("MANGROVE_ENROLL").ok_or(CloudInitError::Missing("MANGROVE_ENROLL"))?,
        token: var("MANGROVE_AGENT_TOKEN").ok_or(CloudInitError::Missing("MANGROVE_AGENT_TOKEN"))?,
        serve_dir: var("MANGROVE_SERVE_DIR"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_is_the_documented_cloud_config_and_reads_back() {
        let text = agent_user_data("10.77.16.10:7443", "mga1.abc.def", Some("/srv/qlvbdh")).expect("valid");
        assert!(text.starts_with("#cloud-config\nwrite_files:\n  - path: /etc/mangrove/enroll.env\n"), "{text}");
        assert!(text.contains("    permissions: '0600'\n"), "{text}");
        assert!(text.ends_with("runcmd:\n  - [systemctl, start, mangrove-agent]\n"), "{text}");
        let env = parse_enroll_env(&text).expect("parses");
        assert_eq!(env.enroll, "10.77.16.10:7443");
        assert_eq!(env.token, "mga1.abc.def");
        assert_eq!(env.serve_dir.as_deref(), Some("/srv/qlvbdh"));
        assert!(!format!("{env:?}").contains("mga1.abc.def"));
        let plain = parse_enroll_env(&agent_user_data("h:1", "t", None).expect("valid")).expect("parses");
        assert_eq!(plain.serve_dir, None);
    }

    #[test]
    fn values_that_would_break_the_file_are_refused() {
        for (addr, token, dir, want) in [
            ("", "t", None, "the enroll address is empty"),
            ("h:1", "t\nMANGROVE_ENROLL=evil:1", None, "the token holds a space or a line break"),
            ("h:1", "t", Some("srv/x"), "the serve dir is not an absolute path"),
        ] {
            let err = agent_user_data(addr, token, dir).expect_err(want);
            assert!(err.to_string().ends_with(want), "{err}");
        }
    }

    #[test]
    fn user_data_written_by_hand_parses_and_errors_never_show_the_token() {
        let hand = "#cloud-config\nusers: [default]\nwrite_files:\n- path: /etc/motd\n  content: hi\n\
                    - path: /etc/mangrove/enroll.env\n  content: \"MANGROVE_AGENT_TOKEN=tok\\nMANGROVE_ENROLL=c:9\\n\"\n";
        let env = parse_enroll_env(hand).expect("parses");
        assert_eq!((env.enroll.as_str(), env.token.as_str()), ("c:9", "tok"));
        for (text, want) in [
            ("#!/bin/sh\necho secret-tok\n", "does not start with #cloud-config"),
            ("#cloud-config\nwrite_files: [\n  secret-tok", "not valid YAML at line"),
            ("#cloud-config\nruncmd: [ls]\n", "writes no /etc/mangrove/enroll.env"),
            (
                "#cloud-config\nwrite_files:\n  - path: /etc/mangrove/enroll.env\n    content: MANGROVE_AGENT_TOKEN=secret-tok\n",
                "has no MANGROVE_ENROLL",
            ),
        ] {
            let err = parse_enroll_env(text).expect_err(want).to_string();
            assert!(err.contains(want) && !err.contains("secret-tok"), "{err}");
        }
    }
}
