//! DNS for drills: record switches (RFC 2136 with TSIG) and lookups through the province's
//! DNS server, as `[dns]` in the controller's configuration names it (server and key; the
//! zones come from the recovery plan). The client blocks, so each call runs on a blocking
//! thread; the key is read from its file at each use and never kept or logged.

use plugins::dns::{RecordKind, TsigKey, Updater};

use crate::app::App;

fn settings(app: &App) -> Result<crate::config::DnsConfig, String> {
    app.cfg.dns.clone().ok_or_else(|| {
        "no DNS server is configured: add [dns] server, key_file and zone to the controller's configuration".to_string()
    })
}

fn kind(rtype: &str) -> Result<RecordKind, String> {
    match rtype {
        "A" => Ok(RecordKind::A),
        "AAAA" => Ok(RecordKind::Aaaa),
        other => Err(format!("record type {other} is not switched (A or AAAA)")),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f).await.map_err(|e| format!("the DNS call failed unexpectedly: {e}"))?
}

fn updater(cfg: &crate::config::DnsConfig, zone: &str) -> Result<Updater, String> {
    let key = TsigKey::load(&cfg.key_file).map_err(|e| e.to_string())?;
    Updater::new(cfg.server, zone, key, cfg.timeout.0).map_err(|e| e.to_string())
}

/// Points `name.zone` (`rtype`) at `values`, replacing what was there. Idempotent.
pub async fn replace(
    app: &App,
    zone: &str,
    name: &str,
    rtype: &str,
    ttl: u32,
    values: &[String],
) -> Result<(), String> {
    let (cfg, zone, name, kind, values) =
        (settings(app)?, zone.to_string(), name.to_string(), kind(rtype)?, values.to_vec());
    blocking(move || updater(&cfg, &zone)?.replace(&name, kind, ttl, &values).map_err(|e| e.to_string())).await
}

/// Removes `name.zone`'s `rtype` records (nothing there is fine).
pub async fn delete(app: &App, zone: &str, name: &str, rtype: &str) -> Result<(), String> {
    let (cfg, zone, name, kind) = (settings(app)?, zone.to_string(), name.to_string(), kind(rtype)?);
    blocking(move || updater(&cfg, &zone)?.delete(&name, kind).map_err(|e| e.to_string())).await
}

/// The `rtype` records of `fqdn`, asked of the DNS server (no key needed).
pub async fn lookup(app: &App, fqdn: &str, rtype: &str) -> Result<Vec<String>, String> {
    let (cfg, fqdn, kind) = (settings(app)?, fqdn.to_string(), kind(rtype)?);
    blocking(move || plugins::dns::lookup(cfg.server, &fqdn, kind, cfg.timeout.0).map_err(|e| e.to_string())).await
}

/// The server answers for `zone`: its SOA serial.
pub async fn check_zone(app: &App, zone: &str) -> Result<String, String> {
    let (cfg, zone) = (settings(app)?, zone.to_string());
    blocking(move || {
        plugins::dns::soa_serial(cfg.server, &zone, cfg.timeout.0)
            .map(|serial| format!("{zone} served by {} (SOA serial {serial})", cfg.server))
            .map_err(|e| e.to_string())
    })
    .await
}
