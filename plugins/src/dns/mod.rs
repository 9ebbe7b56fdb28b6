//! A DNS client for the failover's `dns.switch`: RFC 2136 dynamic updates signed with TSIG
//! (RFC 8945) to one authoritative server, and direct queries to that server.
//!
//! ```text
//! let key = TsigKey::load(Path::new("/etc/bind/mangrove.key"))?;     // `tsig-keygen` output
//! let dns = Updater::new(server, "drill.camau.gov.vn", key, Duration::from_secs(5))?;
//! dns.replace("web-portal", RecordKind::A, 60, &["192.0.2.154".into()])?;  // delete + add, one UPDATE
//! assert_eq!(dns.lookup("web-portal", RecordKind::A)?, ["192.0.2.154"]);
//! dns.delete("web-portal", RecordKind::A)?;
//! let addrs = dns::lookup(server, "web-portal.camau.gov.vn", RecordKind::A, timeout)?; // no key needed
//! ```
//!
//! Blocking, with std sockets and no async runtime: calls never panic inside a tokio runtime,
//! but they wait for up to their timeout, so async callers run them in
//! `tokio::task::spawn_blocking`. Messages are built and signed with `hickory-proto`.
//!
//! Idempotence: `replace` with the same values and `delete` of absent records leave the zone
//! as it was, so both can be retried after a timeout. `lookup` only reads.
//!
//! Secrets: the key's secret is held as a [`KeySecret`], whose `Debug` is redacted; it is
//! never logged, never in an error, and never on a command line.

mod error;
mod key;
mod query;
mod records;
mod transport;
mod update;

use hickory_proto::op::ResponseCode;

pub use error::DnsError;
pub use key::{KeyFileError, KeySecret, TsigAlgorithm, TsigKey, parse_keys};
pub use query::{lookup, soa_serial};
pub use records::RecordKind;
pub use update::Updater;

/// The mnemonic of a response code, as dig prints it.
fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::YXRRSet => "YXRRSET".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        other => format!("rcode {}", u16::from(other)),
    }
}
