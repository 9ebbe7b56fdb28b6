//! Probes: does a recovered system serve? A host name without a dot is relative to the zone
//! in force and is resolved through the province's DNS server (so a test drill's probe reaches
//! the DR instance through the test zone, never production); other names resolve as usual.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use inventory::recovery::{Probe, ProbeTarget};

use crate::app::App;

/// One connection or request's time limit.
pub(super) const ONE_TRY: Duration = Duration::from_secs(5);

/// Largest body read from a probed page.
const MAX_BODY: u64 = 1 << 20;

/// Tries the probe once; what it saw when it passes, why not when it fails.
pub async fn once(app: &App, p: &Probe, zone: Option<&str>) -> Result<String, String> {
    let expect = p.expect.clone().unwrap_or_default();
    match p.target() {
        Some(ProbeTarget::Http(url)) => {
            let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("bad URL {url}"))?;
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let (host, port) = split_port(authority, if scheme == "https" { 443 } else { 80 })?;
            let (fqdn, ip) = resolve(app, host, zone).await?;
            let path = if path.is_empty() { "/" } else { path };
            // HTTPS checks the certificate against the name, so it connects by name (through
            // the system's resolver); plain HTTP connects to the address our DNS server gave.
            let address = match ip {
                Some(ip) if scheme == "http" => SocketAddr::new(ip, port).to_string(),
                _ => format!("{fqdn}:{port}"),
            };
            let request_url = format!("{scheme}://{address}{path}");
            let host_header = if port == 80 || port == 443 { fqdn.clone() } else { format!("{fqdn}:{port}") };
            let (status, body) = tokio::task::spawn_blocking(move || http_get(&request_url, &host_header))
                .await
                .map_err(|e| format!("probe failed unexpectedly: {e}"))??;
            if let Some(want) = expect.status
                && status != want
            {
                return Err(format!("{url}: status {status}, expected {want}"));
            }
            if let Some(want) = &expect.body
                && !body.contains(want.as_str())
            {
                return Err(format!("{url}: status {status}, the page does not contain {want:?}"));
            }
            Ok(format!("{url} via {address}: status {status}, {} bytes", body.len()))
        }
        Some(ProbeTarget::Tcp(target)) => {
            let (host, port) = split_port(target, 0)?;
            let (fqdn, ip) = resolve(app, host, zone).await?;
            let address = match ip {
                Some(ip) => SocketAddr::new(ip, port),
                None => tokio::net::lookup_host((fqdn.as_str(), port))
                    .await
                    .map_err(|e| format!("cannot resolve {fqdn}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{fqdn} has no address"))?,
            };
            let mut conn = tokio::time::timeout(ONE_TRY, tokio::net::TcpStream::connect(address))
                .await
                .map_err(|_| format!("{target}: no connection within {} s", ONE_TRY.as_secs()))?
                .map_err(|e| format!("{target} ({address}): {e}"))?;
            if let Some(want) = &expect.body {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 4096];
                let n = tokio::time::timeout(ONE_TRY, conn.read(&mut buf))
                    .await
                    .map_err(|_| format!("{target}: no banner"))?;
                let n = n.map_err(|e| format!("{target}: {e}"))?;
                let banner = String::from_utf8_lossy(&buf[..n]);
                if !banner.contains(want.as_str()) {
                    return Err(format!("{target}: the banner does not contain {want:?}"));
                }
            }
            Ok(format!("{target} via {address}: open"))
        }
        None => Err("the probe has no target".into()),
    }
}

fn split_port(authority: &str, default: u16) -> Result<(&str, u16), String> {
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            let port = p.parse::<u16>().map_err(|_| format!("bad port in {authority}"))?;
            Ok((h.trim_matches(['[', ']']), port))
        }
        _ if default > 0 => Ok((authority, default)),
        _ => Err(format!("{authority} names no port")),
    }
}

/// A relative name (no dot) is `name.zone`, resolved through the DNS server; an address
/// is itself; anything else is left to the system's resolver (`None`).
async fn resolve(app: &App, host: &str, zone: Option<&str>) -> Result<(String, Option<IpAddr>), String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((host.to_string(), Some(ip)));
    }
    match zone {
        Some(zone) if !host.contains('.') => {
            let fqdn = format!("{host}.{zone}");
            let found = super::dns::lookup(app, &fqdn, "A").await?;
            let ip = found
                .iter()
                .find_map(|a| a.parse::<IpAddr>().ok())
                .ok_or_else(|| format!("{fqdn} has no A record on the DNS server"))?;
            Ok((fqdn, Some(ip)))
        }
        _ => Ok((host.to_string(), None)),
    }
}

fn http_get(url: &str, host: &str) -> Result<(u16, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(ONE_TRY))
        .max_redirects(0)
        .build()
        .into();
    let mut resp = agent.get(url).header("Host", host).call().map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().with_config().limit(MAX_BODY).read_to_string().unwrap_or_default();
    Ok((status, body))
}
