//! `firewall`: whether a packet filter is loaded and whether inbound traffic is denied by
//! default, from `nft -j list ruleset` (which also shows rules loaded through iptables-nft), or
//! `iptables-save` where nftables is not installed.
//!
//! "Default deny inbound" means an input base chain with policy drop, or one whose last rule
//! drops or rejects everything (the `policy accept` + final `drop` style). `input_policy` is
//! null when no base chain filters input at all, so everything inbound is accepted.

use serde_json::{Value, json};

use super::{Host, RunError, TIME_BUDGET};

/// nft's JSON costs about 300 bytes a rule; hosts running kube-proxy or Docker Swarm carry
/// thousands of rules, more than the default output budget.
const NFT_OUTPUT_BUDGET: usize = 4 * 1024 * 1024;

pub fn collect(host: &Host) -> Result<Value, String> {
    match host.run_within("nft", &["-j", "list", "ruleset"], TIME_BUDGET, NFT_OUTPUT_BUDGET) {
        Ok(output) if output.truncated => {
            return Err(format!(
                "nft -j list ruleset printed more than {} MiB; the ruleset is too large to judge",
                NFT_OUTPUT_BUDGET / (1024 * 1024)
            ));
        }
        Ok(output) if output.success() => {
            let nft = parse_nft_json(&output.stdout)?;
            if nft["rules"] == 0 && nft["input_policy"].is_null() {
                // Rules loaded with iptables-legacy are invisible to nft.
                if let Ok(legacy) = host.run("iptables-legacy-save", &[]) {
                    let legacy = parse_iptables_save(&legacy.stdout);
                    if legacy["rules"] != 0 || legacy["input_policy"] == "drop" {
                        return Ok(legacy);
                    }
                }
            }
            return Ok(nft);
        }
        Ok(output) => return Err(format!("nft list ruleset failed: {}", output.failure())),
        Err(RunError::NotInstalled(_)) => {}
        Err(error) => return Err(error.to_string()),
    }
    match host.run("iptables-save", &[]) {
        Ok(output) if output.success() || output.truncated => {
            let mut value = parse_iptables_save(&output.stdout);
            // The counts are then a lower bound.
            value["truncated"] = json!(output.truncated);
            Ok(value)
        }
        Ok(output) => Err(format!("iptables-save failed: {}", output.failure())),
        Err(RunError::NotInstalled(_)) => Ok(json!({
            "backend": "none", "active": false, "input_policy": null, "input_default_deny": false, "rules": 0,
        })),
        Err(error) => Err(error.to_string()),
    }
}

/// Families whose input hook filters packets addressed to this host.
const INPUT_FAMILIES: &[&str] = &["ip", "ip6", "inet"];

/// Parses `nft -j list ruleset` output.
pub fn parse_nft_json(text: &str) -> Result<Value, String> {
    let document: Value =
        serde_json::from_str(text).map_err(|error| format!("nft -j list ruleset printed invalid JSON: {error}"))?;
    let items = document["nftables"]
        .as_array()
        .ok_or_else(|| "nft -j list ruleset printed no \"nftables\" array".to_owned())?;
    // Input base chains: (family, table, name, policy).
    let mut inputs: Vec<(&str, &str, &str, &str)> = Vec::new();
    let mut tables = 0;
    for item in items {
        if item.get("table").is_some() {
            tables += 1;
        }
        let Some(chain) = item.get("chain") else { continue };
        let family = chain["family"].as_str().unwrap_or_default();
        if chain["hook"] == "input" && chain["type"] == "filter" && INPUT_FAMILIES.contains(&family) {
            inputs.push((
                family,
                chain["table"].as_str().unwrap_or_default(),
                chain["name"].as_str().unwrap_or_default(),
                chain["policy"].as_str().unwrap_or("accept"),
            ));
        }
    }
    let rules: Vec<&Value> = items.iter().filter_map(|item| item.get("rule")).collect();
    let input_policy = if inputs.is_empty() {
        None
    } else if inputs.iter().any(|input| input.3 == "drop") {
        Some("drop")
    } else {
        Some("accept")
    };
    let ends_in_deny = inputs.iter().any(|&(family, table, name, _)| {
        rules
            .iter()
            .rev()
            .find(|rule| rule["family"] == family && rule["table"] == table && rule["chain"] == name)
            .is_some_and(|rule| nft_rule_denies_all(rule))
    });
    Ok(json!({
        "backend": "nftables",
        "active": !rules.is_empty() || input_policy == Some("drop"),
        "input_policy": input_policy,
        "input_default_deny": input_policy == Some("drop") || ends_in_deny,
        "rules": rules.len(),
        "tables": tables,
    }))
}

/// A rule with no match that drops or rejects (counters, logs and comments aside).
fn nft_rule_denies_all(rule: &Value) -> bool {
    let Some(exprs) = rule["expr"].as_array() else { return false };
    let mut denies = false;
    for expr in exprs {
        let Some(object) = expr.as_object() else { return false };
        for key in object.keys() {
            match key.as_str() {
                "drop" | "reject" => denies = true,
                "counter" | "log" | "limit" => {}
                _ => return false,
            }
        }
    }
    denies
}

/// Parses `iptables-save` output.
pub fn parse_iptables_save(text: &str) -> Value {
    let mut table = "";
    let mut input_policy: Option<String> = None;
    let mut rules = 0;
    let mut last_input_rule: Option<&str> = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('*') {
            table = name;
        } else if let Some(chain) = line.strip_prefix(':') {
            let mut words = chain.split_whitespace();
            if table == "filter" && words.next() == Some("INPUT") {
                input_policy = words.next().map(str::to_ascii_lowercase);
            }
        } else if let Some(rule) = line.strip_prefix("-A ") {
            rules += 1;
            if table == "filter"
                && let Some(rest) = rule.strip_prefix("INPUT ")
            {
                last_input_rule = Some(rest);
            }
        }
    }
    let ends_in_deny = last_input_rule.is_some_and(|rule| {
        let words: Vec<&str> = rule.split_whitespace().collect();
        matches!(words.as_slice(), ["-j", "DROP"] | ["-j", "REJECT", ..])
    });
    let drop = input_policy.as_deref() == Some("drop");
    json!({
        "backend": "iptables",
        "active": rules > 0 || drop,
        "input_policy": input_policy,
        "input_default_deny": drop || ends_in_deny,
        "rules": rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/security/parsers");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{DIR}/{name}")).expect("fixture exists")
    }

    #[test]
    fn an_inet_input_chain_with_policy_drop_is_default_deny() {
        let firewall = parse_nft_json(&fixture("nft-policy-drop.json")).expect("parses");
        assert_eq!(firewall["backend"], "nftables");
        assert_eq!(firewall["input_policy"], "drop");
        assert_eq!(firewall["input_default_deny"], true);
        assert_eq!(firewall["active"], true);
        assert_eq!(firewall["rules"], 8);
        assert_eq!(firewall["tables"], 1);
    }

    #[test]
    fn policy_accept_with_a_final_drop_is_default_deny() {
        let firewall = parse_nft_json(&fixture("nft-accept-then-drop.json")).expect("parses");
        assert_eq!(firewall["input_policy"], "accept");
        assert_eq!(firewall["input_default_deny"], true);
        assert_eq!(firewall["rules"], 3);
    }

    #[test]
    fn docker_rules_alone_are_active_but_not_default_deny() {
        // Docker's iptables-nft rules create no input chain: nothing filters inbound traffic.
        let firewall = parse_nft_json(&fixture("nft-docker-only.json")).expect("parses");
        assert_eq!(firewall["active"], true);
        assert_eq!(firewall["input_policy"], Value::Null);
        assert_eq!(firewall["input_default_deny"], false);
    }

    #[test]
    fn an_empty_ruleset_is_inactive() {
        let firewall = parse_nft_json(&fixture("nft-empty.json")).expect("parses");
        assert_eq!(firewall["active"], false);
        assert_eq!(firewall["input_policy"], Value::Null);
        assert_eq!(firewall["rules"], 0);
    }

    #[test]
    fn bad_nft_output_is_a_clear_error() {
        let error = parse_nft_json("Error: Could not process rule").expect_err("not JSON");
        assert!(error.starts_with("nft -j list ruleset printed invalid JSON"), "{error}");
        assert_eq!(parse_nft_json("{}").expect_err("no array"), "nft -j list ruleset printed no \"nftables\" array");
        assert!(parse_nft_json(r#"{"nftables": [{"chain": 7}, {"rule": {"expr": "x"}}, 3]}"#).is_ok());
    }

    #[test]
    fn iptables_save_policy_and_rules() {
        let firewall = parse_iptables_save(&fixture("iptables-save.txt"));
        assert_eq!(firewall["backend"], "iptables");
        assert_eq!(firewall["input_policy"], "drop");
        assert_eq!(firewall["input_default_deny"], true);
        assert_eq!(firewall["rules"], 5, "nat rules count too");
        let docker = parse_iptables_save(&fixture("iptables-save-docker.txt"));
        assert_eq!(docker["input_policy"], "accept");
        assert_eq!(docker["input_default_deny"], false);
        let final_reject = parse_iptables_save(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n",
        );
        assert_eq!(final_reject["input_default_deny"], true);
        let garbage = parse_iptables_save("\u{0}*\n:\n-A\n");
        assert_eq!(garbage["input_policy"], Value::Null);
    }
}
