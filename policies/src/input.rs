//! The input document the controls read (schema version [`INPUT_SCHEMA_VERSION`]), built one
//! way for every caller. Its JSON Schema is [`INPUT_SCHEMA_JSON`] (`schema/input-v1.json`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The version of the input document built here; packs name the version they read.
pub const INPUT_SCHEMA_VERSION: u32 = 1;

/// The JSON Schema (draft 2020-12) of the input document.
pub const INPUT_SCHEMA_JSON: &str = include_str!("../schema/input-v1.json");

/// The host or VM being judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRef {
    pub name: String,
    pub site: String,
    /// `vm`, `host` (bare metal or hypervisor), `container`, …, as the inventory says.
    pub kind: String,
}

/// An information system the host serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemRef {
    pub name: String,
    pub level: u8,
    pub framework: String,
}

/// The level a host is judged at: the highest of the systems it serves ("highest component
/// wins"); `None` when it serves none.
pub fn effective_level(systems: &[SystemRef]) -> Option<u8> {
    systems.iter().map(|s| s.level).max()
}

/// Builds an input document; start with [`input`].
#[derive(Debug, Clone)]
pub struct InputBuilder {
    now_unix: i64,
    host: HostRef,
    facts: Value,
    level: u8,
    systems: Vec<SystemRef>,
    params: Map<String, Value>,
    platform: Value,
    backups: Value,
    endpoint: Value,
    evidence: Value,
    drills: Value,
}

/// Starts an input document for `host` with the agent's fact snapshot `facts` (the object
/// whose `security` member holds the collectors' outputs), judged at `level`, at `now_unix`.
/// Everything else defaults to empty/null; `params` is normally filled per control by
/// [`crate::Evaluator::evaluate_level`].
pub fn input(host: HostRef, facts: Value, level: u8, now_unix: i64) -> InputBuilder {
    InputBuilder {
        now_unix,
        host,
        facts,
        level,
        systems: Vec::new(),
        params: Map::new(),
        platform: Value::Null,
        backups: Value::Null,
        endpoint: Value::Null,
        evidence: Value::Null,
        drills: Value::Null,
    }
}

impl InputBuilder {
    pub fn systems(mut self, systems: Vec<SystemRef>) -> Self {
        self.systems = systems;
        self
    }

    pub fn params(mut self, params: Map<String, Value>) -> Self {
        self.params = params;
        self
    }

    /// vCenter/OpenStack state of the VM: `{"vm": {...}, "platform_state": "up"}`.
    pub fn platform(mut self, platform: Value) -> Self {
        self.platform = platform;
        self
    }

    /// `{"last_success_unix": …, "restore_tested_unix": …, "dr_copy": bool}`.
    pub fn backups(mut self, backups: Value) -> Self {
        self.backups = backups;
        self
    }

    /// `{"product": …, "signature_age_days": n, "running": bool}`.
    pub fn endpoint(mut self, endpoint: Value) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// `{"<control id>": {"uploaded_unix": …, "file": …}}`.
    pub fn evidence(mut self, evidence: Value) -> Self {
        self.evidence = evidence;
        self
    }

    /// The newest finished drill of each system the host serves, by system name (null for a
    /// system never drilled): `{"<system>": {"run": …, "plan": …, "mode": …, "result": …,
    /// "finished_unix": …, "passed": bool, "rto_seconds": …, "rto_target_seconds": …,
    /// "rpo_seconds": …, "rpo_target_seconds": …} | null}`.
    pub fn drills(mut self, drills: Value) -> Self {
        self.drills = drills;
        self
    }

    pub fn build(self) -> Value {
        let mut facts = match self.facts {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => {
                // Not an object: keep it visible to the Rego rather than dropping it silently.
                let mut map = Map::new();
                map.insert("raw".to_owned(), other);
                map
            }
        };
        // Controls read `host.facts.security.<collector>`; an absent member reads as "not collected".
        facts.entry("security").or_insert_with(|| Value::Object(Map::new()));
        antimalware_from_antivirus(&mut facts, self.now_unix);
        json!({
            "schema_version": INPUT_SCHEMA_VERSION,
            "now_unix": self.now_unix,
            "host": {"name": self.host.name, "site": self.host.site, "kind": self.host.kind, "facts": facts},
            "level": self.level,
            "systems": self.systems,
            "params": self.params,
            "platform": self.platform,
            "backups": self.backups,
            "endpoint": self.endpoint,
            "evidence": self.evidence,
            "drills": self.drills,
        })
    }
}

/// The agent's anti-malware facts (`facts.antivirus`, read from the product itself: clamd's
/// socket, `kesl-control`) stand in for the `antimalware` collector's output, which the
/// anti-malware controls read, when that collector did not run or found no product. Signature
/// age is counted in whole days from the signature time to `now_unix`.
fn antimalware_from_antivirus(facts: &mut Map<String, Value>, now_unix: i64) {
    let Some(av) = facts.get("antivirus").filter(|a| a["product"].is_string()) else { return };
    let age = av["signature_time_unix"].as_i64().map(|t| now_unix.saturating_sub(t).max(0) / 86_400);
    let derived = json!({
        "product": av["product"],
        "installed": true,
        "running": av["engine_running"].as_bool().unwrap_or(false),
        "signature_age_days": age,
        "realtime_protection": av["realtime_protection"],
        "source": "agent antivirus facts",
    });
    let Some(Value::Object(security)) = facts.get_mut("security") else { return };
    let collected_installed = security.get("antimalware").is_some_and(|a| a["installed"] == Value::Bool(true));
    if !collected_installed {
        security.insert("antimalware".to_owned(), derived);
    }
}

#[cfg(test)]
mod antivirus_tests {
    use super::*;

    fn host() -> HostRef {
        HostRef { name: "h".into(), site: "dc".into(), kind: "vm".into() }
    }

    #[test]
    fn antivirus_facts_feed_the_antimalware_controls() {
        let facts = json!({"antivirus": {"product": "clamav", "engine_running": false,
            "signature_time_unix": 1_000_000, "realtime_protection": null}});
        let v = input(host(), facts, 3, 1_000_000 + 4 * 86_400 + 7).build();
        let am = &v["host"]["facts"]["security"]["antimalware"];
        assert_eq!(am["product"], "clamav");
        assert_eq!(am["installed"], true);
        assert_eq!(am["running"], false);
        assert_eq!(am["signature_age_days"], 4);
        // No product found: nothing derived (the collector's view, if any, stands).
        let none = input(host(), json!({"antivirus": {"product": null}}), 3, 0).build();
        assert_eq!(none["host"]["facts"]["security"], json!({}));
        // A collector that found the product installed is kept.
        let kept = json!({"security": {"antimalware": {"product": "clamav", "installed": true, "running": true}},
            "antivirus": {"product": "clamav", "engine_running": false}});
        let v = input(host(), kept, 3, 0).build();
        assert_eq!(v["host"]["facts"]["security"]["antimalware"]["running"], true);
    }
}
