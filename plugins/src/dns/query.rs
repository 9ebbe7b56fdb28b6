//! Direct queries to one server (no recursion, no system resolver): what a probe resolves
//! through, and how an update is verified.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::records::{self, RecordKind};
use super::transport::Exchange;
use super::{DnsError, rcode_name};

/// The values of `name`'s `kind` records as `server` answers them, sorted; empty when the name
/// or the type does not exist (NXDOMAIN, no data). A CNAME the server follows inside its own
/// zones is followed: an A lookup of an alias gives the target's addresses.
///
/// `name` is fully qualified (trailing dot optional). Asks over UDP, again over TCP when the
/// answer is truncated. Blocks for up to `timeout` (from async code, call it in
/// `spawn_blocking`). Idempotent, read-only.
///
/// # Errors
/// [`DnsError::Timeout`] / [`DnsError::Unreachable`] naming the server; [`DnsError::Server`]
/// for REFUSED (the server does not serve that name) or SERVFAIL.
pub fn lookup(server: SocketAddr, name: &str, kind: RecordKind, timeout: Duration) -> Result<Vec<String>, DnsError> {
    lookup_name(server, &records::absolute(name)?, kind, timeout)
}

pub(crate) fn lookup_name(
    server: SocketAddr,
    name: &Name,
    kind: RecordKind,
    timeout: Duration,
) -> Result<Vec<String>, DnsError> {
    let operation = format!("lookup of {} {kind}", records::display(name));
    let Some(answer) = ask(server, name, kind.record_type(), timeout, &operation)? else { return Ok(Vec::new()) };
    let mut values: Vec<String> = answer.answers.iter().filter_map(|r| records::text(kind, &r.data)).collect();
    values.sort();
    values.dedup();
    Ok(values)
}

/// The serial of `zone`'s SOA as `server` answers it: proof the server has loaded the zone,
/// and a count of its changes (every applied update raises it). Blocking, read-only.
///
/// # Errors
/// As [`lookup`]; [`DnsError::BadResponse`] when the answer holds no SOA for the zone.
pub fn soa_serial(server: SocketAddr, zone: &str, timeout: Duration) -> Result<u32, DnsError> {
    let name = records::absolute(zone)?;
    let operation = format!("SOA query for zone {}", records::display(&name));
    let answer = ask(server, &name, RecordType::SOA, timeout, &operation)?;
    answer
        .iter()
        .flat_map(|a| a.answers.iter())
        .find_map(|r| match &r.data {
            RData::SOA(soa) if r.name == name => Some(soa.serial),
            _ => None,
        })
        .ok_or_else(|| DnsError::BadResponse {
            server,
            operation,
            detail: format!("no SOA record for {} in the answer", records::display(&name)),
        })
}

/// Asks `server` for `name`'s `rtype` records: the answer for NOERROR, `None` for NXDOMAIN.
fn ask(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
    operation: &str,
) -> Result<Option<Message>, DnsError> {
    let ex = Exchange { server, timeout, operation };
    let mut msg = Message::query();
    msg.metadata.recursion_desired = false;
    msg.add_query(Query::query(name.clone(), rtype));
    let id = msg.metadata.id;
    let bytes = msg.to_vec().map_err(|e| DnsError::Invalid(format!("{operation}: {e}")))?;
    let bad = |detail: String| DnsError::BadResponse { server, operation: operation.to_string(), detail };
    let mut answer = Message::from_vec(&ex.udp(&bytes, id)?).map_err(|e| bad(e.to_string()))?;
    if answer.metadata.truncation {
        answer = Message::from_vec(&ex.tcp(&bytes, id)?).map_err(|e| bad(e.to_string()))?;
    }
    match answer.metadata.response_code {
        ResponseCode::NoError => Ok(Some(answer)),
        ResponseCode::NXDomain => Ok(None),
        other => Err(DnsError::Server { server, operation: operation.to_string(), rcode: rcode_name(other) }),
    }
}
