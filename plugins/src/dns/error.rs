//! What can go wrong talking to a DNS server, in words an operator can act on. Every variant
//! names the server; none holds the key's secret.

use std::net::SocketAddr;
use std::time::Duration;

/// Why a DNS update or lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The server did not accept the TSIG signature: the key (name, algorithm or secret) is not
    /// the one the server has. `detail` is the server's TSIG error (BADSIG, BADKEY).
    #[error("DNS server {server} rejected TSIG key {key:?} for zone {zone} ({detail}): the key is wrong")]
    KeyRejected { server: SocketAddr, zone: String, key: String, detail: String },
    /// The server's clock and this machine's differ by more than the signature's fudge (BADTIME).
    #[error(
        "DNS server {server} rejected TSIG key {key:?} for zone {zone}: the signature's time is outside the server's window (BADTIME); check both clocks"
    )]
    ClockSkew { server: SocketAddr, zone: String, key: String },
    /// The server refused: updates of this zone are not allowed (for this key, or at all).
    #[error(
        "DNS server {server} refused the update of zone {zone} with key {key:?} (REFUSED): updates are not allowed for this zone and key"
    )]
    Refused { server: SocketAddr, zone: String, key: String },
    /// The server does not serve the zone (NOTAUTH with a valid signature).
    #[error("DNS server {server} is not authoritative for zone {zone} (NOTAUTH): it does not serve this zone")]
    NotAuthoritative { server: SocketAddr, zone: String },
    /// The server found a name outside the zone in the update (NOTZONE).
    #[error("DNS server {server} answered NOTZONE: {name} is not inside zone {zone}")]
    NotZone { server: SocketAddr, zone: String, name: String },
    /// A name given to the client is not inside its zone (caught before sending).
    #[error("{name} is not inside zone {zone}")]
    OutsideZone { name: String, zone: String },
    /// The request is not valid: a bad name, a value that does not fit the record type.
    #[error("invalid DNS request: {0}")]
    Invalid(String),
    /// No answer in time.
    #[error("no answer from DNS server {server} within {} ({operation})", humanize(*.timeout))]
    Timeout { server: SocketAddr, operation: String, timeout: Duration },
    /// The server could not be reached (connection refused, no route, …).
    #[error("cannot reach DNS server {server} ({operation})")]
    Unreachable {
        server: SocketAddr,
        operation: String,
        #[source]
        source: std::io::Error,
    },
    /// The server answered with an error code not covered above (SERVFAIL, FORMERR, …).
    #[error("DNS server {server} answered {rcode} to {operation}")]
    Server { server: SocketAddr, operation: String, rcode: String },
    /// The answer could not be read or was not correctly signed.
    #[error("bad answer from DNS server {server} to {operation}: {detail}")]
    BadResponse { server: SocketAddr, operation: String, detail: String },
}

impl DnsError {
    /// True when the same call may work later without anyone changing configuration: the
    /// server was slow or unreachable, or failed on its side (SERVFAIL).
    pub fn is_retryable(&self) -> bool {
        match self {
            DnsError::Timeout { .. } | DnsError::Unreachable { .. } => true,
            DnsError::Server { rcode, .. } => rcode.starts_with("SERVFAIL"),
            _ => false,
        }
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{} s", d.as_secs()) } else { format!("{} ms", d.as_millis()) }
}
