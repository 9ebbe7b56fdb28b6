//! Ansible facts (`ansible_facts` and the `ansible_*` names) from the facts an agent reports
//! (the controller's `hosts show --json` `facts` object: `hostname`, `os_name`,
//! `os_version`, `kernel_release`, `cpu_count`, `memory_total_bytes`, `interfaces`,
//! `systemd`, ...). Names Ansible has and the agent's facts cannot give are left out, so a
//! playbook that reads one sees it undefined rather than a wrong value.

use serde_json::{Value as Json, json};

/// The `ansible_facts` mapping (keys without the `ansible_` prefix) for one host.
pub fn from_agent(agent: &Json) -> Json {
    let s = |k: &str| agent.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
    let os_name = s("os_name");
    let version = s("os_version");
    let distribution = distribution_of(&os_name);
    let hostname = s("hostname");
    let short = hostname.split('.').next().unwrap_or("").to_owned();
    let mut f = serde_json::Map::new();
    f.insert("system".into(), json!("Linux"));
    if !distribution.is_empty() {
        f.insert("distribution".into(), json!(distribution));
        f.insert("os_family".into(), json!(family_of(&distribution)));
    }
    if !version.is_empty() {
        f.insert("distribution_version".into(), json!(version));
        f.insert("distribution_major_version".into(), json!(version.split('.').next().unwrap_or("")));
    }
    if !hostname.is_empty() {
        f.insert("hostname".into(), json!(short));
        f.insert("nodename".into(), json!(hostname));
        f.insert("fqdn".into(), json!(hostname));
    }
    if let Some(k) = agent.get("kernel_release").and_then(Json::as_str).filter(|k| !k.is_empty()) {
        f.insert("kernel".into(), json!(k));
    }
    if let Some(n) = agent.get("cpu_count").and_then(Json::as_u64).filter(|n| *n > 0) {
        f.insert("processor_vcpus".into(), json!(n));
        f.insert("processor_nproc".into(), json!(n));
    }
    if let Some(b) = agent.get("memory_total_bytes").and_then(Json::as_u64).filter(|n| *n > 0) {
        f.insert("memtotal_mb".into(), json!(b / (1024 * 1024)));
    }
    if let Some(b) = agent.get("memory_available_bytes").and_then(Json::as_u64) {
        f.insert("memfree_mb".into(), json!(b / (1024 * 1024)));
    }
    if let Some(sd) = agent.get("systemd").and_then(Json::as_bool) {
        f.insert("service_mgr".into(), json!(if sd { "systemd" } else { "service" }));
    }
    let mut all_v4 = Vec::new();
    let mut names = Vec::new();
    for i in agent.get("interfaces").and_then(Json::as_array).into_iter().flatten() {
        let name = i.get("name").and_then(Json::as_str).unwrap_or("");
        names.push(json!(name));
        for a in i.get("addresses").and_then(Json::as_array).into_iter().flatten().filter_map(Json::as_str) {
            let ip = a.split('/').next().unwrap_or(a);
            if ip.parse::<std::net::Ipv4Addr>().is_ok_and(|v| !v.is_loopback()) {
                all_v4.push((name.to_owned(), ip.to_owned()));
            }
        }
    }
    f.insert("interfaces".into(), Json::Array(names));
    f.insert("all_ipv4_addresses".into(), Json::Array(all_v4.iter().map(|(_, a)| json!(a)).collect()));
    if let Some((iface, ip)) = all_v4.first() {
        f.insert("default_ipv4".into(), json!({"address": ip, "interface": iface}));
    }
    if let Some(fs) = agent.get("filesystems").and_then(Json::as_array) {
        let mounts: Vec<Json> = fs
            .iter()
            .map(|m| {
                json!({"mount": m.get("mount_point"), "device": m.get("device"), "fstype": m.get("fs_type"),
                       "size_total": m.get("total_bytes"), "size_available": m.get("available_bytes")})
            })
            .collect();
        f.insert("mounts".into(), Json::Array(mounts));
    }
    Json::Object(f)
}

/// `Debian GNU/Linux` → `Debian`, `Ubuntu` → `Ubuntu`, `Rocky Linux` → `Rocky`.
fn distribution_of(os_name: &str) -> String {
    let known = [
        ("debian", "Debian"),
        ("ubuntu", "Ubuntu"),
        ("red hat", "RedHat"),
        ("rhel", "RedHat"),
        ("centos", "CentOS"),
        ("rocky", "Rocky"),
        ("alma", "AlmaLinux"),
        ("fedora", "Fedora"),
        ("oracle", "OracleLinux"),
        ("suse", "SLES"),
        ("alpine", "Alpine"),
        ("arch", "Archlinux"),
    ];
    let lower = os_name.to_ascii_lowercase();
    known
        .iter()
        .find(|(k, _)| lower.contains(k))
        .map_or_else(|| os_name.split_whitespace().next().unwrap_or("").to_owned(), |(_, v)| (*v).to_owned())
}

/// Ansible's `os_family` for a distribution.
fn family_of(distribution: &str) -> &str {
    match distribution {
        "Debian" | "Ubuntu" | "Linux Mint" | "Kali" | "Raspbian" => "Debian",
        "RedHat" | "CentOS" | "Rocky" | "AlmaLinux" | "Fedora" | "OracleLinux" => "RedHat",
        "SLES" => "Suse",
        "Alpine" => "Alpine",
        "Archlinux" => "Archlinux",
        other => other,
    }
}

/// The variables a host's facts add: `ansible_facts` and `ansible_<name>` for each fact.
pub fn fact_vars(facts: &Json) -> crate::Vars {
    let mut out = crate::Vars::new();
    if let Json::Object(m) = facts {
        for (k, v) in m {
            out.insert(format!("ansible_{k}"), v.clone());
        }
    }
    out.insert("ansible_facts".into(), facts.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_facts_read_as_ansible_names() {
        let agent = json!({"hostname": "dr-compute-01.example", "os_name": "Debian GNU/Linux", "os_version": "12",
            "interfaces": [{"name": "lo", "addresses": ["127.0.0.1/8"]}, {"name": "eth0", "addresses": ["10.88.0.5/16", "fe80::1/64"]}],
            "systemd": false, "cpu_count": 2});
        let f = from_agent(&agent);
        assert_eq!(f["os_family"], "Debian");
        assert_eq!(f["distribution"], "Debian");
        assert_eq!(f["distribution_major_version"], "12");
        assert_eq!(f["hostname"], "dr-compute-01");
        assert_eq!(f["fqdn"], "dr-compute-01.example");
        assert_eq!(f["default_ipv4"]["address"], "10.88.0.5");
        let v = fact_vars(&f);
        assert_eq!(v["ansible_os_family"], "Debian");
        assert_eq!(v["ansible_facts"]["processor_vcpus"], 2);
    }
}
