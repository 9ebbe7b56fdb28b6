//! Who may speak for which host, and what a proxy agent's reading means for each: a proxy
//! agent reports only the `agent: proxy` hosts of the site whose platform names it as proxy,
//! decided from the inventory and the agent's certificate identity, never from what the agent
//! claims.

use proto::v1::ProxiedHosts;
use serde_json::json;

use crate::store::ProxiedHostStatus;

/// The inventory's hosts `proxy` speaks for.
pub fn spoken_for<'a>(inv: &'a inventory::Inventory, proxy: &str) -> Vec<&'a str> {
    let sites: Vec<&str> =
        inv.sites.iter().filter(|s| s.platform.proxy.as_deref() == Some(proxy)).map(|s| s.name.as_str()).collect();
    inv.hosts
        .iter()
        .filter(|h| h.agent == inventory::AgentMode::Proxy && sites.contains(&h.site.as_str()))
        .map(|h| h.name.as_str())
        .collect()
}

/// The inventory name a platform's host name stands for: the same name, or its first DNS
/// label (vCenter often knows hosts by FQDN).
fn inventory_name<'a>(ours: &[&'a str], platform_name: &str) -> Option<&'a str> {
    let short = platform_name.split('.').next().unwrap_or(platform_name);
    ours.iter().copied().find(|n| *n == platform_name).or_else(|| ours.iter().copied().find(|n| *n == short))
}

/// What a reading says of each host `proxy` speaks for. Hosts the platform did not list, or
/// all of them when it could not be read, are unreachable with the reason as a problem.
pub fn statuses(inv: &inventory::Inventory, proxy: &str, reading: &ProxiedHosts) -> Vec<ProxiedHostStatus> {
    let ours = spoken_for(inv, proxy);
    let platform = &reading.platform;
    let mut out: Vec<ProxiedHostStatus> = Vec::new();
    if reading.error.is_empty() {
        for h in &reading.hosts {
            let Some(name) = inventory_name(&ours, &h.name) else { continue };
            let mut problems = Vec::new();
            let connected = h.connection == "connected";
            if !connected {
                problems.push(format!("{platform} reports it {}", h.connection.replace('_', " ")));
            }
            if h.power != "on" {
                problems.push(format!("{platform} reports its power {}", h.power));
            }
            if h.maintenance {
                problems.push(format!("in maintenance mode ({platform})"));
            }
            if h.health == "red" || h.health == "yellow" {
                problems.push(format!("{platform} reports its health {}", h.health));
            }
            out.push(ProxiedHostStatus {
                name: name.to_string(),
                reachable: connected && h.power == "on",
                problems,
                facts: Some(json!({
                    "source": platform,
                    "hostname": h.name,
                    "os_name": "VMware ESXi",
                    "connection": h.connection,
                    "maintenance": h.maintenance,
                    "power": h.power,
                    "health": h.health,
                    "cpu_count": h.cpu_cores,
                    "memory_total_bytes": h.memory_bytes,
                    "cpu_used_mhz": h.cpu_used_mhz,
                    "memory_used_bytes": h.memory_used_bytes,
                    "cluster": h.cluster,
                    "hardware": h.hardware,
                })),
            });
        }
    }
    for name in ours {
        if out.iter().any(|s| s.name == name) {
            continue;
        }
        let why = if reading.error.is_empty() {
            format!("{platform} does not list this host")
        } else {
            format!("{platform} cannot be read: {}", reading.error)
        };
        out.push(ProxiedHostStatus { name: name.to_string(), reachable: false, problems: vec![why], facts: None });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use proto::v1::ProxiedHost;

    fn inv() -> inventory::Inventory {
        inventory::parse_str(include_str!("../../../inventory/examples/camau.yaml"), "camau.yaml")
            .expect("the example loads")
    }

    fn host(name: &str, connection: &str, maintenance: bool) -> ProxiedHost {
        ProxiedHost {
            name: name.into(),
            connection: connection.into(),
            maintenance,
            power: "on".into(),
            health: "green".into(),
            ..Default::default()
        }
    }

    fn reading(hosts: Vec<ProxiedHost>, error: &str) -> ProxiedHosts {
        ProxiedHosts { platform: "vcenter-dc".into(), read_unix_ms: 1, hosts, error: error.into() }
    }

    #[test]
    fn only_the_sites_proxy_speaks_for_its_proxied_hosts() {
        let inv = inv();
        let r = reading(vec![host("dc-esxi-01", "connected", false), host("dr-compute-01", "connected", false)], "");
        let s = statuses(&inv, "dc-proxy-01", &r);
        assert_eq!(s.len(), 9, "the nine ESXi hosts, never dr-compute-01");
        assert!(s.iter().all(|h| h.name.starts_with("dc-esxi-")));
        assert!(statuses(&inv, "qlvbdh-app-01", &r).is_empty(), "a machine that is no site's proxy speaks for nobody");
    }

    #[test]
    fn what_a_reading_means_for_each_host() {
        let inv = inv();
        let r = reading(
            vec![
                host("dc-esxi-01.camau.gov.vn", "connected", false),
                host("dc-esxi-02", "not_responding", false),
                host("dc-esxi-03", "connected", true),
            ],
            "",
        );
        let s = statuses(&inv, "dc-proxy-01", &r);
        let get = |n: &str| s.iter().find(|h| h.name == n).expect("present");
        assert!(get("dc-esxi-01").reachable && get("dc-esxi-01").problems.is_empty(), "FQDN matched to its label");
        assert!(!get("dc-esxi-02").reachable);
        assert_eq!(get("dc-esxi-02").problems, vec!["vcenter-dc reports it not responding"]);
        assert!(get("dc-esxi-03").reachable && get("dc-esxi-03").problems[0].contains("maintenance"));
        assert!(!get("dc-esxi-04").reachable && get("dc-esxi-04").problems[0].contains("does not list"));
        assert!(get("dc-esxi-04").facts.is_none(), "the last facts are kept");
    }

    #[test]
    fn an_unreadable_platform_makes_every_host_unreachable_with_the_reason() {
        let s = statuses(&inv(), "dc-proxy-01", &reading(vec![], "cannot reach https://vc/sdk: refused"));
        assert_eq!(s.len(), 9);
        assert!(s.iter().all(|h| !h.reachable && h.problems[0].contains("cannot be read: cannot reach")));
    }
}
