//! Anti-malware signatures judged by the level: a host whose signatures are older than the
//! `antimalware-signatures` control allows at its level is `degraded`, with the reason, in
//! `hosts list`/`hosts show` and the host metrics.
//!
//! The agent reports the signature time (`facts.antivirus.signature_time_unix`); the controller
//! knows the host's systems, hence its level (the highest of them) and each system's framework
//! (the pack), and the pack's `max_signature_age_days` at that level. The strictest limit of the
//! host's packs applies. A host that serves no system, or whose pack has no such control, is not
//! judged here (the policy controls still report what they find). An engine that stops is the
//! agent's own heartbeat problem; this adds only the age.

use std::collections::HashMap;

use serde_json::Value;

use crate::app::App;
use crate::store::HostRecord;

/// The control and parameter that set the limit.
pub const CONTROL: &str = "antimalware-signatures";
pub const PARAM: &str = "max_signature_age_days";

/// The strictest signature-age limit (days) of the packs of `systems`, at their effective level.
pub fn max_signature_age_days(policies: &crate::policy::Policies, systems: &[policies::SystemRef]) -> Option<i64> {
    let level = policies::effective_level(systems)?;
    systems
        .iter()
        .filter_map(|s| policies.control(&s.framework, CONTROL))
        .filter(|meta| meta.applies_at(level))
        .filter_map(|meta| policies::params_at(meta, level).get(PARAM).and_then(Value::as_i64))
        .min()
}

/// Pure: the problem for `facts` if its signatures are older than `max_days` at `now_unix`.
pub fn signature_problem(facts: &Value, max_days: i64, level: u8, now_unix: i64) -> Option<String> {
    let av = facts.get("antivirus")?;
    let product = av["product"].as_str()?;
    let signed = av["signature_time_unix"].as_i64()?;
    let age = now_unix.saturating_sub(signed).max(0) / 86_400;
    (age > max_days)
        .then(|| format!("anti-malware {product} signatures are {age} days old; level {level} allows {max_days}"))
}

/// `hosts` with the signature-age problems the controller judges added to their own.
pub async fn with_judged_problems(app: &App, mut hosts: Vec<HostRecord>, now_ms: i64) -> Vec<HostRecord> {
    let Some(inv) = app.inventory.clone() else { return hosts };
    if !hosts.iter().any(|h| h.facts.as_ref().is_some_and(|f| f["antivirus"]["signature_time_unix"].is_i64())) {
        return hosts;
    }
    let vms = match app.store.list_vms().await {
        Ok(vms) => vms,
        Err(error) => {
            tracing::warn!(%error, "cannot read VMs to judge anti-malware signature age");
            return hosts;
        }
    };
    let mut limits: HashMap<String, Option<(i64, u8)>> = HashMap::new();
    for h in &mut hosts {
        let Some(facts) = &h.facts else { continue };
        let limit = *limits.entry(h.name.clone()).or_insert_with(|| {
            let systems = crate::policy::scope::systems_of(&inv, &h.name, &vms);
            let level = policies::effective_level(&systems)?;
            Some((max_signature_age_days(&app.policy, &systems)?, level))
        });
        if let Some((max_days, level)) = limit
            && let Some(problem) = signature_problem(facts, max_days, level, now_ms / 1000)
        {
            h.problems.push(problem);
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signature_age_against_the_limit() {
        let day = 86_400;
        let facts = |t: Value| json!({"antivirus": {"product": "clamav", "signature_time_unix": t}});
        let now = 100 * day;
        // (signature time, limit, problem?)
        let cases = [(json!(now - 3 * day), 3, false), (json!(now - 4 * day), 3, true), (json!(now + day), 1, false)];
        for (t, max, want) in cases {
            assert_eq!(signature_problem(&facts(t.clone()), max, 3, now).is_some(), want, "{t} {max}");
        }
        assert_eq!(
            signature_problem(&facts(json!(now - 9 * day)), 1, 4, now).as_deref(),
            Some("anti-malware clamav signatures are 9 days old; level 4 allows 1")
        );
        assert_eq!(signature_problem(&facts(Value::Null), 1, 4, now), None, "unknown time: not judged here");
        assert_eq!(signature_problem(&json!({"antivirus": {"product": null}}), 1, 4, now), None);
        assert_eq!(signature_problem(&json!({}), 1, 4, now), None);
    }

    #[test]
    fn the_shipped_packs_give_the_limit_by_level() {
        let policies = crate::policy::Policies::shipped().expect("packs");
        let sys = |level: u8| policies::SystemRef { name: "s".into(), level, framework: "vn-nd85-tcvn11930".into() };
        assert_eq!(max_signature_age_days(&policies, &[sys(2)]), Some(7));
        assert_eq!(max_signature_age_days(&policies, &[sys(3)]), Some(3));
        assert_eq!(max_signature_age_days(&policies, &[sys(2), sys(4)]), Some(1));
        assert_eq!(max_signature_age_days(&policies, &[sys(1)]), None, "the control starts at level 2");
        assert_eq!(max_signature_age_days(&policies, &[]), None);
    }
}
