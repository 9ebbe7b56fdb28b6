//! `updates`: pending package updates (and how many come from a security suite) and when the
//! package index was last refreshed and packages last changed, from apt or dnf.
//!
//! Read-only: apt runs with its binary caches disabled (it builds them in memory instead of
//! writing `/var/cache/apt/*.bin`), dnf with `--cacheonly` (no metadata download). Neither
//! refreshes the index, so the counts are as fresh as `last_update_unix`.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Host, OUTPUT_BUDGET};

/// Building apt's cache in memory on a small VM takes a few seconds.
const PACKAGE_BUDGET: Duration = Duration::from_secs(20);

const APT_ARGS: &[&str] = &["list", "--upgradable", "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache="];

pub fn collect(host: &Host) -> Result<Value, String> {
    if host.has_program("apt") || host.exists("/var/lib/dpkg/status") {
        apt(host)
    } else if host.has_program("dnf") {
        dnf(host)
    } else {
        Ok(json!({ "manager": null, "pending": null, "security_pending": null, "last_update_unix": null }))
    }
}

fn apt(host: &Host) -> Result<Value, String> {
    let output = host.run_within("apt", APT_ARGS, PACKAGE_BUDGET, OUTPUT_BUDGET).map_err(|error| error.to_string())?;
    if !output.success() && !output.truncated {
        // apt's first stderr line is its "no stable CLI" warning; the error is the "E:" line.
        let error = output.stderr.lines().find(|line| line.starts_with("E:")).map(str::to_owned);
        return Err(format!("apt list --upgradable: {}", error.unwrap_or_else(|| output.failure())));
    }
    let (pending, security) = parse_apt_upgradable(&output.stdout);
    // update-success-stamp is touched by apt's daily timer; pkgcache-less hosts still have the
    // lists directory, rewritten by every `apt update`.
    let last_update = host
        .mtime_unix("/var/lib/apt/periodic/update-success-stamp")
        .or_else(|| host.mtime_unix("/var/lib/apt/lists/partial"))
        .or_else(|| host.mtime_unix("/var/lib/apt/lists"));
    let last_upgrade = host.mtime_unix("/var/log/apt/history.log").or_else(|| host.mtime_unix("/var/lib/dpkg/status"));
    Ok(json!({
        "manager": "apt",
        "pending": pending,
        "security_pending": security,
        "last_update_unix": last_update,
        "last_upgrade_unix": last_upgrade,
        "truncated": output.truncated,
    }))
}

fn dnf(host: &Host) -> Result<Value, String> {
    let output = host
        .run_within("dnf", &["-q", "-C", "check-update"], PACKAGE_BUDGET, OUTPUT_BUDGET)
        .map_err(|error| error.to_string())?;
    // check-update exits 100 when updates are pending, 0 when none, 1 on error.
    let pending = match output.code {
        Some(0) => 0,
        Some(100) => parse_dnf_check_update(&output.stdout),
        None if output.truncated => parse_dnf_check_update(&output.stdout),
        _ => return Err(format!("dnf check-update: {}", output.failure())),
    };
    let security = host
        .run_within("dnf", &["-q", "-C", "updateinfo", "list", "--security"], PACKAGE_BUDGET, OUTPUT_BUDGET)
        .ok()
        .filter(|output| output.success())
        .map(|output| parse_dnf_updateinfo(&output.stdout));
    Ok(json!({
        "manager": "dnf",
        "pending": pending,
        "security_pending": security,
        "last_update_unix": host.mtime_unix("/var/cache/dnf"),
        "last_upgrade_unix": host.mtime_unix("/var/lib/dnf/history.sqlite"),
        "truncated": output.truncated,
    }))
}

/// Parses `apt list --upgradable`: "name/suite[,suite…] version arch [upgradable from: …]".
/// Returns (pending, from a security suite).
pub fn parse_apt_upgradable(text: &str) -> (usize, usize) {
    let upgradable: Vec<&str> = text.lines().filter(|line| line.contains("[upgradable from:")).collect();
    let security = upgradable
        .iter()
        .filter(|line| {
            let suites = line.split_whitespace().next().and_then(|name| name.split_once('/')).map(|(_, suites)| suites);
            suites.is_some_and(|suites| suites.split(',').any(|suite| suite.contains("-security")))
        })
        .count();
    (upgradable.len(), security)
}

/// Parses `dnf check-update` output: "name.arch version repo" lines, up to an "Obsoleting
/// Packages" section.
pub fn parse_dnf_check_update(text: &str) -> usize {
    text.lines()
        .take_while(|line| !line.starts_with("Obsoleting"))
        .filter(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.len() == 3 && words[0].contains('.') && !line.starts_with(' ')
        })
        .count()
}

/// Parses `dnf updateinfo list --security`: "ADVISORY SEVERITY/Sec. package" lines; returns
/// the number of distinct packages.
pub fn parse_dnf_updateinfo(text: &str) -> usize {
    let mut packages: Vec<&str> = text.lines().filter_map(|line| line.split_whitespace().nth(2)).collect();
    packages.sort_unstable();
    packages.dedup();
    packages.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_upgradable_on_debian_12() {
        let text = include_str!("../../tests/fixtures/security/parsers/apt-list-upgradable.txt");
        assert_eq!(parse_apt_upgradable(text), (132, 81));
    }

    #[test]
    fn apt_security_suites_on_ubuntu() {
        let text = "Listing...\nopenssl/jammy-updates,jammy-security 3.0.2-0ubuntu1.18 amd64 [upgradable from: 3.0.2-0ubuntu1.15]\n\
                    snapd/jammy-updates 2.63+22.04 amd64 [upgradable from: 2.61.3+22.04]\n";
        assert_eq!(parse_apt_upgradable(text), (2, 1));
        assert_eq!(parse_apt_upgradable("Listing...\n"), (0, 0));
        assert_eq!(parse_apt_upgradable("\u{0}[upgradable from:\n"), (1, 0));
    }

    #[test]
    fn dnf_outputs() {
        let text = "\nopenssl.x86_64                 1:3.0.7-27.el9            baseos\nkernel.x86_64   5.14.0-427.el9   baseos\n\
                    Obsoleting Packages\ngrub2-tools.x86_64  1:2.06-77.el9  baseos\n    grub2-tools.x86_64  1:2.06-70.el9  @baseos\n";
        assert_eq!(parse_dnf_check_update(text), 2);
        let info = "RHSA-2024:2264 Important/Sec. openssl-1:3.0.7-27.el9.x86_64\nRHSA-2024:2265 Important/Sec. openssl-1:3.0.7-27.el9.x86_64\n\
                    RHSA-2024:3000 Moderate/Sec.  kernel-5.14.0-427.el9.x86_64\n";
        assert_eq!(parse_dnf_updateinfo(info), 2);
    }
}
