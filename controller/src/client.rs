//! The CLI's client for the controller's HTTP API.
//!
//! Where it finds the controller, its token and the CA to trust, first match wins:
//! 1. flags `--controller URL`, `--token TOKEN`, `--ca FILE`;
//! 2. environment `MANGROVE_CONTROLLER`, `MANGROVE_TOKEN`, `MANGROVE_CA`;
//! 3. the CLI config file: `$MANGROVE_CONFIG`, else `$XDG_CONFIG_HOME/mangrove/cli.toml`
//!    (`~/.config/mangrove/cli.toml`), which `mangrove testbed up` writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The CLI config file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CliConfig {
    /// API base URL, e.g. `https://127.0.0.1:8443`.
    pub controller: Option<String>,
    /// API bearer token.
    pub token: Option<String>,
    /// PEM file of the CA that signed the API's certificate.
    pub ca: Option<PathBuf>,
}

/// Where the CLI config lives by default.
pub fn default_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env("MANGROVE_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base =
        env("XDG_CONFIG_HOME").map(PathBuf::from).or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(base.join("mangrove").join("cli.toml"))
}

impl CliConfig {
    pub fn load(path: &Path) -> Result<Option<CliConfig>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(toml::from_str(&text).with_context(|| format!("{}", path.display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

/// Flags given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub controller: Option<String>,
    pub token: Option<String>,
    pub ca: Option<PathBuf>,
}

pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// Resolves the controller, token and CA (see the module doc) and builds a client.
    pub fn resolve(flags: &Flags) -> Result<Client> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let file = match default_config_path(&env) {
            Some(p) => CliConfig::load(&p)?,
            None => None,
        }
        .unwrap_or_default();
        let base =
            flags.controller.clone().or_else(|| env("MANGROVE_CONTROLLER")).or(file.controller).ok_or_else(|| {
                anyhow!("no controller: pass --controller URL, set MANGROVE_CONTROLLER, or run `mangrove testbed up`")
            })?;
        let token = flags.token.clone().or_else(|| env("MANGROVE_TOKEN")).or(file.token);
        let ca = flags.ca.clone().or_else(|| env("MANGROVE_CA").map(PathBuf::from)).or(file.ca);
        Client::new(&base, token, ca.as_deref())
    }

    pub fn new(base: &str, token: Option<String>, ca: Option<&Path>) -> Result<Client> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            bail!("controller URL {base:?} must start with https:// (or http:// for a loopback plain-HTTP API)");
        }
        let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read CA file {}", ca.display()))?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                bail!("{}: no certificate in this CA file", ca.display());
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Ok(Client { base, token, agent })
    }

    fn finish(&self, what: &str, resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value> {
        let mut resp = resp.map_err(|e| anyhow!("cannot reach the controller at {}: {e}", self.base))?;
        let status = resp.status();
        let body: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let msg = body.get("error").and_then(Value::as_str).unwrap_or("no error message");
        bail!("{what}: controller answered {status}: {msg}")
    }

    fn auth(&self) -> Result<String> {
        self.token
            .as_ref()
            .map(|t| format!("Bearer {t}"))
            .ok_or_else(|| anyhow!("no API token: pass --token, set MANGROVE_TOKEN, or run `mangrove testbed up`"))
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        let r = self.agent.get(format!("{}{path}", self.base)).header("Authorization", &self.auth()?).call();
        self.finish(&format!("GET {path}"), r)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let r = self.agent.post(format!("{}{path}", self.base)).header("Authorization", &self.auth()?).send_json(body);
        self.finish(&format!("POST {path}"), r)
    }

    /// POST for work that may take minutes (a platform sync, a power action): waits up to
    /// `timeout` instead of the usual 30 s.
    pub fn post_long(&self, path: &str, body: &Value, timeout: Duration) -> Result<Value> {
        let r = self
            .agent
            .post(format!("{}{path}", self.base))
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Authorization", &self.auth()?)
            .send_json(body);
        self.finish(&format!("POST {path}"), r)
    }

    /// POST whose answer is JSON lines written as the work goes (a playbook run's output):
    /// calls `each` with every line's value, waiting up to `timeout` for the whole answer.
    pub fn post_lines(
        &self,
        path: &str,
        body: &Value,
        timeout: Duration,
        each: &mut dyn FnMut(Value) -> Result<()>,
    ) -> Result<()> {
        use std::io::BufRead;
        let mut resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Authorization", &self.auth()?)
            .send_json(body)
            .map_err(|e| anyhow!("cannot reach the controller at {}: {e}", self.base))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            let msg = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| "no error message".into());
            bail!("POST {path}: controller answered {status}: {msg}");
        }
        let reader = std::io::BufReader::new(resp.body_mut().as_reader());
        for line in reader.lines() {
            let line = line.map_err(|e| anyhow!("POST {path}: the answer broke off: {e}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line).with_context(|| format!("POST {path}: a line is not JSON"))?;
            each(v)?;
        }
        Ok(())
    }

    /// GET of a document (a report, a zip): its bytes, or the API's error.
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", &self.auth()?)
            .call()
            .map_err(|e| anyhow!("cannot reach the controller at {}: {e}", self.base))?;
        let status = resp.status();
        let body = resp
            .body_mut()
            .with_config()
            .limit(512 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| anyhow!("GET {path}: {e}"))?;
        if status.is_success() {
            return Ok(body);
        }
        let msg = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| "no error message".into());
        bail!("GET {path}: controller answered {status}: {msg}")
    }

    /// GET of a text resource (`/metrics`).
    pub fn get_text(&self, path: &str) -> Result<String> {
        String::from_utf8(self.get_bytes(path)?).map_err(|e| anyhow!("GET {path}: the answer is not UTF-8 text: {e}"))
    }

    /// GET without a token, for `/readyz`.
    pub fn ready(&self) -> bool {
        self.agent.get(format!("{}/readyz", self.base)).call().map(|r| r.status().is_success()).unwrap_or(false)
    }
}
