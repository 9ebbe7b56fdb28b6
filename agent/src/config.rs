//! The agent's configuration: `<state-dir>/agent.toml` (or `--config FILE`), parsed once at
//! start-up. Every key is optional; the defaults are below and in the README.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::facts::FactSource;
use crate::outbox::Limits;

/// Largest `task_output_cap`: stdout and stderr together stay well under the protocol's
/// message limit.
pub const MAX_TASK_OUTPUT: usize = proto::MAX_MESSAGE_BYTES / 4;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// `[facts] source = "system"` (default) or `"simulated"` with the machine's figures.
    pub facts: FactSource,
    /// `[outbox] max_entries`, `max_bytes`.
    pub outbox: Limits,
    /// Longest wait between reconnection attempts (exponential backoff with jitter up to it).
    #[serde(with = "duration")]
    pub reconnect_max: Duration,
    /// Bytes of a task's stdout and of its stderr kept (the rest is discarded, and flagged).
    pub task_output_cap: usize,
    /// `[proxy]`: speak for hosts that cannot run an agent, reading them from a platform.
    pub proxy: Option<crate::proxy::ProxyConfig>,
    /// `[antivirus] clamd_conf`, `kesl_control`, `timeout_ms`: where the anti-malware product is
    /// read from (collected only with `source = "system"`).
    pub antivirus: plugins::antivirus::AvConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            facts: FactSource::System,
            outbox: Limits::default(),
            reconnect_max: Duration::from_secs(10),
            task_output_cap: 64 * 1024,
            proxy: None,
            antivirus: plugins::antivirus::AvConfig::default(),
        }
    }
}

pub(crate) mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
    }
}

impl AgentConfig {
    /// Reads `path` if given, else `<state-dir>/agent.toml` if it exists, else the defaults.
    pub fn load(explicit: Option<&Path>, state_default: &Path) -> Result<AgentConfig> {
        let path = match explicit {
            Some(p) => p,
            None if state_default.exists() => state_default,
            None => return Ok(AgentConfig::default()),
        };
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let cfg: AgentConfig = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        // A task result must fit in one protocol message with room to spare, or it would block
        // the outbox behind it forever.
        if cfg.task_output_cap > MAX_TASK_OUTPUT {
            anyhow::bail!("{}: task_output_cap may be at most {MAX_TASK_OUTPUT} bytes", path.display());
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_facts_and_refusals() {
        let cfg: AgentConfig = toml::from_str(
            "reconnect_max = \"3s\"\n[facts]\nsource = \"simulated\"\nhostname = \"dc-esxi-01\"\nos_name = \"VMware ESXi\"\n\
             os_version = \"7.0\"\nkernel_release = \"7.0.3\"\ncpu_count = 64\nmemory_total_bytes = 824633720832\n",
        )
        .expect("parse");
        assert_eq!(cfg.reconnect_max, Duration::from_secs(3));
        assert!(matches!(cfg.facts, FactSource::Simulated(ref m) if m.cpu_count == 64));
        assert!(toml::from_str::<AgentConfig>("bogus = 1").is_err());
        assert!(toml::from_str::<AgentConfig>("reconnect_max = \"soon\"").is_err());
        assert_eq!(toml::from_str::<AgentConfig>("").expect("empty"), AgentConfig::default());
    }
}
