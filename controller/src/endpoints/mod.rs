//! Endpoint protection: the province's managed computers as Kaspersky Security Center sees
//! them, rolled up per administration group (agency, district, commune) by status and reason.
//!
//! A poller reads KSC every `[ksc] poll_interval` (and on `POST /api/v1/endpoints/refresh`),
//! rolls the fleet up ([`rollup`]) and stores the result. A failed read records its error and
//! leaves the last good roll-up in place, so the summary keeps showing it with its age.
//!
//! Guarantees: reads only (KSC is never changed); a read is cancellation-safe (nothing is
//! stored until it completed); two reads never run at once.

pub mod rollup;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use plugins::ksc::status::Thresholds;
use plugins::ksc::{KscError, KscOptions};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::{App, now_ms, rfc3339};
use crate::config::Dur;
use crate::store::EndpointState;

/// The store's name for the KSC source.
pub const SOURCE: &str = "ksc";

/// `[ksc]`: where Kaspersky Security Center is and how its computers are judged.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KscConfig {
    /// `https://host[:port]` of KSC's Open API (port 13299 when left out).
    pub url: String,
    /// A KSC-internal user allowed to read the managed computers.
    pub user: String,
    /// File holding the user's password alone (mode 0600; read at each poll).
    pub password_file: PathBuf,
    /// PEM file with KSC's certificate or the CA that signed it.
    pub ca_file: PathBuf,
    /// How often KSC is read (default 5m).
    #[serde(default = "default_interval")]
    pub poll_interval: Dur,
    /// Longest wait for one KSC answer (default 30s).
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// Computers per chunk of the host search (default 100, at most 1000).
    #[serde(default = "default_page")]
    pub page_size: usize,
    /// `[ksc.thresholds.warning]` and `[ksc.thresholds.critical]`: see
    /// [`plugins::ksc::status::LevelLimits`].
    #[serde(default)]
    pub thresholds: Thresholds,
}

fn default_interval() -> Dur {
    Dur(Duration::from_secs(300))
}
fn default_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}
fn default_page() -> usize {
    100
}

impl KscConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !self.url.starts_with("https://") {
            return Err(format!("ksc.url {:?} must start with https:// (KSC serves HTTPS only)", self.url));
        }
        if self.user.trim().is_empty() {
            return Err("ksc.user is empty".into());
        }
        if !(1..=1000).contains(&self.page_size) {
            return Err(format!("ksc.page_size {} is not 1 to 1000", self.page_size));
        }
        Ok(())
    }

    /// Makes relative paths relative to `dir` (the config file's).
    pub fn resolve(&mut self, dir: &std::path::Path) {
        for p in [&mut self.password_file, &mut self.ca_file] {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }
}

/// Reads the password file, refusing one others may read.
fn password(path: &std::path::Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("KSC password file {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "KSC password file {} is readable by others (mode {mode:o}); chmod 600 it",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("KSC password file {}: {e}", path.display()))?;
    let pw = text.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        return Err(format!("KSC password file {} is empty", path.display()));
    }
    Ok(pw)
}

/// Serialises reads (the poller and the refresh endpoint).
static READING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Why a read failed: a KSC error, or the configuration around it.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("KSC is not configured (no [ksc] section)")]
    NotConfigured,
    #[error("{0}")]
    Ksc(#[from] KscError),
    #[error("{0}")]
    Local(String),
    #[error("store")]
    Store(#[from] crate::store::StoreError),
}

impl PollError {
    pub fn kind(&self) -> &'static str {
        match self {
            PollError::NotConfigured => "not_configured",
            PollError::Ksc(e) => e.kind(),
            PollError::Local(_) => "config",
            PollError::Store(_) => "store",
        }
    }
}

/// Reads KSC now, stores the roll-up (or the error) and updates the metrics. Returns the
/// total read.
pub async fn poll_once(app: &App) -> Result<u64, PollError> {
    let cfg = app.cfg.ksc.clone().ok_or(PollError::NotConfigured)?;
    let _one = READING.lock().await;
    let started = now_ms();
    let page = cfg.page_size;
    let shutdown = app.shutdown.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<plugins::ksc::Fleet, PollError> {
        let opts = KscOptions {
            url: cfg.url.clone(),
            user: cfg.user.clone(),
            password: password(&cfg.password_file).map_err(PollError::Local)?,
            ca_file: cfg.ca_file.clone(),
            timeout: cfg.timeout.0,
            page: cfg.page_size,
            result_lifetime: 600,
        };
        // Between calls, a shutdown stops the read, so the daemon exits without waiting for it.
        Ok(plugins::ksc::read_fleet_until(&opts, &|| shutdown.is_cancelled())?)
    })
    .await
    .unwrap_or_else(|e| Err(PollError::Local(format!("the KSC read stopped: {e}"))));
    let fleet = match read {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, kind = e.kind(), "KSC read failed; keeping the last roll-up");
            app.store.put_endpoint_error(SOURCE, started, &json!({"kind": e.kind(), "message": e.to_string()})).await?;
            return Err(e);
        }
    };
    let thresholds = app.cfg.ksc.as_ref().map(|k| k.thresholds.clone()).unwrap_or_default();
    let r = rollup::rollup(&fleet, &thresholds, started / 1000, page);
    let v = serde_json::to_value(&r).map_err(|e| PollError::Local(format!("roll-up: {e}")))?;
    app.store.put_endpoint_rollup(SOURCE, started, &v).await?;
    set_metrics(app, &r.groups);
    tracing::info!(computers = r.total, chunks = r.chunks, took_ms = now_ms() - started, "KSC roll-up stored");
    Ok(r.total)
}

fn set_metrics(app: &App, groups: &[rollup::GroupRoll]) {
    for g in groups {
        for (status, n) in &g.by_status {
            app.metrics.endpoint_count(&g.name, status, *n);
        }
    }
}

/// Polls every `poll_interval` until shutdown; first restores the metrics from the stored
/// roll-up so they survive a restart.
pub fn spawn(app: Arc<App>) {
    let Some(cfg) = app.cfg.ksc.clone() else { return };
    tokio::spawn(async move {
        if let Ok(Some(st)) = app.store.endpoint_state(SOURCE).await
            && let Some(r) = st.rollup.and_then(|v| serde_json::from_value::<rollup::Rollup>(v).ok())
        {
            set_metrics(&app, &r.groups);
        }
        loop {
            // The error is stored and logged by poll_once.
            let _ = poll_once(&app).await;
            tokio::select! {
                _ = tokio::time::sleep(cfg.poll_interval.0) => {}
                _ = app.shutdown.cancelled() => break,
            }
        }
    });
}

/// Age and freshness fields shared by the summary and the list.
fn freshness(st: &EndpointState, now: i64) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("as_of".into(), st.as_of.map(|t| json!(rfc3339(t))).unwrap_or(Value::Null));
    m.insert("age_seconds".into(), st.as_of.map(|t| json!((now - t).max(0) / 1000)).unwrap_or(Value::Null));
    m.insert("last_attempt".into(), json!(rfc3339(st.last_attempt)));
    m.insert("stale".into(), json!(st.last_error.is_some()));
    m.insert(
        "last_error".into(),
        match &st.last_error {
            Some(e) => {
                let mut e = e.clone();
                if let (Some(obj), Some(at)) = (e.as_object_mut(), st.error_at) {
                    obj.insert("at".into(), json!(rfc3339(at)));
                }
                e
            }
            None => Value::Null,
        },
    );
    m
}

/// The summary: `{total, by_status, by_reason, groups: [{name, total, by_status, by_reason,
/// groups}], as_of, age_seconds, last_attempt, stale, last_error, source, chunks, page_size}`.
/// `None` when no good read was ever stored.
pub fn summary(st: &EndpointState, source: &str, now: i64) -> Option<Value> {
    let mut r = st.rollup.clone()?;
    let obj = r.as_object_mut()?;
    obj.remove("rows");
    obj.extend(freshness(st, now));
    obj.insert("source".into(), json!(source));
    Some(r)
}

/// Every computer matching `status` and `reason` (when given), as stored.
pub fn list(st: &EndpointState, status: Option<&str>, reason: Option<&str>) -> Option<Vec<Value>> {
    let rows = st.rollup.as_ref()?.get("rows")?.as_array()?;
    Some(
        rows.iter()
            .filter(|r| status.is_none_or(|s| r["status"] == s))
            .filter(|r| reason.is_none_or(|x| r["reasons"].as_array().is_some_and(|a| a.iter().any(|v| v == x))))
            .cloned()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    #[test]
    fn the_ksc_section_parses_with_defaults_and_relative_paths_and_refuses_plain_http() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("controller.toml");
        std::fs::write(
            &path,
            "data_dir = \"d\"\n[ksc]\nurl = \"https://ksc.camau.gov.vn\"\nuser = \"mangrove\"\n\
             password_file = \"ksc.password\"\nca_file = \"ksc.pem\"\n[ksc.thresholds.critical]\nav_bases_days = 10\n",
        )
        .expect("write");
        let cfg = Config::load(Some(&path), |_| None).expect("valid");
        let k = cfg.ksc.expect("ksc section");
        assert_eq!(k.password_file, dir.path().join("ksc.password"));
        assert_eq!((k.poll_interval.0, k.page_size), (Duration::from_secs(300), 100));
        assert_eq!(k.thresholds.critical.av_bases_days, Some(10));
        assert_eq!(k.thresholds.warning, Thresholds::default().warning);
        for (text, want) in [
            ("url = \"http://ksc\"\n", "must start with https://"),
            ("url = \"https://ksc\"\npage_size = 0\n", "ksc.page_size 0"),
            ("url = \"https://ksc\"\npassword = \"x\"\n", "unknown field `password`"),
        ] {
            let t = format!("[ksc]\nuser = \"u\"\npassword_file = \"p\"\nca_file = \"c\"\n{text}");
            let err = match Config::parse(&t, Path::new("c.toml")) {
                Ok(c) => c.validate().expect_err(text).to_string(),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn a_password_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = password(&p).expect_err("world-readable");
        assert!(err.contains("chmod 600") && !err.contains("s3cret"), "{err}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(password(&p).expect("0600"), "s3cret");
    }
}
