//! SNMP v2c GET (RFC 3416) with a small BER codec of our own (X.690, definite lengths only).
//!
//! The decoder reads untrusted bytes: it never panics, never allocates more than the input's
//! length, and refuses indefinite lengths, overlong lengths and nesting deeper than a GET
//! response needs (the `vc_snmp` fuzz target holds it to that).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The values a GET answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Integer(i64),
    OctetString(Vec<u8>),
    Null,
    Oid(Vec<u32>),
    IpAddress([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Counter64(u64),
    /// noSuchObject, noSuchInstance, endOfMibView (RFC 3416 §3).
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
    /// Any other tag, kept raw.
    Other(u8, Vec<u8>),
}

impl Value {
    /// The value as text, for sysDescr and sysName.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::OctetString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    pub fn number(&self) -> Option<u64> {
        match self {
            Value::Integer(i) => u64::try_from(*i).ok(),
            Value::Counter32(n) | Value::Gauge32(n) | Value::TimeTicks(n) => Some(u64::from(*n)),
            Value::Counter64(n) => Some(*n),
            _ => None,
        }
    }
}

/// An answer (GetResponse-PDU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub request_id: i32,
    pub error_status: i64,
    pub error_index: i64,
    pub bindings: Vec<(Vec<u32>, Value)>,
}

/// Why an SNMP exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnmpError {
    #[error("malformed SNMP message: {0}")]
    Malformed(String),
    #[error("SNMP agent did not answer within {0} ms")]
    Timeout(u128),
    #[error("SNMP socket error: {0}")]
    Io(String),
    #[error("SNMP agent answered with error-status {status} (index {index})")]
    ErrorStatus { status: i64, index: i64 },
}

fn bad(what: &str) -> SnmpError {
    SnmpError::Malformed(what.to_string())
}

// ---- encoding ----

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    push_len(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

fn int_body(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

fn oid_body(oid: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    let (a, b) = (oid.first().copied().unwrap_or(0), oid.get(1).copied().unwrap_or(0));
    let mut arcs = vec![a.saturating_mul(40).saturating_add(b)];
    arcs.extend(oid.iter().skip(2));
    for arc in arcs {
        let mut chunk = Vec::new();
        let mut v = arc;
        chunk.push((v & 0x7f) as u8);
        v >>= 7;
        while v > 0 {
            chunk.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        chunk.reverse();
        out.extend(chunk);
    }
    out
}

/// A v2c GetRequest for `oids` (values NULL).
pub fn encode_get(community: &str, request_id: i32, oids: &[Vec<u32>]) -> Vec<u8> {
    let mut vbs = Vec::new();
    for oid in oids {
        let mut vb = tlv(0x06, &oid_body(oid));
        vb.extend(tlv(0x05, &[]));
        vbs.extend(tlv(0x30, &vb));
    }
    let mut pdu = tlv(0x02, &int_body(i64::from(request_id)));
    pdu.extend(tlv(0x02, &[0]));
    pdu.extend(tlv(0x02, &[0]));
    pdu.extend(tlv(0x30, &vbs));
    let mut msg = tlv(0x02, &[1]); // version: 1 = v2c
    msg.extend(tlv(0x04, community.as_bytes()));
    msg.extend(tlv(0xa0, &pdu));
    tlv(0x30, &msg)
}

/// A GetResponse with these bindings (the testbed's responders answer with it).
pub fn encode_response(community: &str, request_id: i32, bindings: &[(Vec<u32>, Value)]) -> Vec<u8> {
    let mut vbs = Vec::new();
    for (oid, v) in bindings {
        let mut vb = tlv(0x06, &oid_body(oid));
        vb.extend(encode_value(v));
        vbs.extend(tlv(0x30, &vb));
    }
    let mut pdu = tlv(0x02, &int_body(i64::from(request_id)));
    pdu.extend(tlv(0x02, &[0]));
    pdu.extend(tlv(0x02, &[0]));
    pdu.extend(tlv(0x30, &vbs));
    let mut msg = tlv(0x02, &[1]);
    msg.extend(tlv(0x04, community.as_bytes()));
    msg.extend(tlv(0xa2, &pdu));
    tlv(0x30, &msg)
}

fn unsigned_body(v: u64) -> Vec<u8> {
    let mut b = v.to_be_bytes().to_vec();
    while b.len() > 1 && b[0] == 0 && b[1] & 0x80 == 0 {
        b.remove(0);
    }
    if b[0] & 0x80 != 0 {
        b.insert(0, 0);
    }
    b
}

fn encode_value(v: &Value) -> Vec<u8> {
    match v {
        Value::Integer(i) => tlv(0x02, &int_body(*i)),
        Value::OctetString(s) => tlv(0x04, s),
        Value::Null => tlv(0x05, &[]),
        Value::Oid(o) => tlv(0x06, &oid_body(o)),
        Value::IpAddress(a) => tlv(0x40, a),
        Value::Counter32(n) => tlv(0x41, &unsigned_body(u64::from(*n))),
        Value::Gauge32(n) => tlv(0x42, &unsigned_body(u64::from(*n))),
        Value::TimeTicks(n) => tlv(0x43, &unsigned_body(u64::from(*n))),
        Value::Counter64(n) => tlv(0x46, &unsigned_body(*n)),
        Value::NoSuchObject => tlv(0x80, &[]),
        Value::NoSuchInstance => tlv(0x81, &[]),
        Value::EndOfMibView => tlv(0x82, &[]),
        Value::Other(t, b) => tlv(*t, b),
    }
}

// ---- decoding ----

/// Reads one TLV from `input`: (tag, body, rest).
fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), SnmpError> {
    let (&tag, rest) = input.split_first().ok_or_else(|| bad("truncated: no tag"))?;
    if tag & 0x1f == 0x1f {
        return Err(bad("multi-byte tags are not used by SNMP"));
    }
    let (&first, rest) = rest.split_first().ok_or_else(|| bad("truncated: no length"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else if first == 0x80 {
        return Err(bad("indefinite length is not allowed"));
    } else {
        let n = usize::from(first & 0x7f);
        if n > 4 || rest.len() < n {
            return Err(bad("length field too long or truncated"));
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad(&format!("truncated: tag 0x{tag:02x} claims {len} bytes, {} left", rest.len())));
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn expect<'a>(input: &'a [u8], want: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), SnmpError> {
    let (tag, body, rest) = read_tlv(input)?;
    if tag != want {
        return Err(bad(&format!("expected {what} (tag 0x{want:02x}), found tag 0x{tag:02x}")));
    }
    Ok((body, rest))
}

fn int_of(body: &[u8]) -> Result<i64, SnmpError> {
    if body.is_empty() || body.len() > 8 {
        return Err(bad("integer of bad length"));
    }
    let neg = body[0] & 0x80 != 0;
    let mut v: i64 = if neg { -1 } else { 0 };
    for b in body {
        v = (v << 8) | i64::from(*b);
    }
    Ok(v)
}

fn unsigned_of(body: &[u8], max_bytes: usize) -> Result<u64, SnmpError> {
    let body = match body {
        [0, rest @ ..] if !rest.is_empty() => rest,
        b => b,
    };
    if body.is_empty() || body.len() > max_bytes {
        return Err(bad("unsigned value of bad length"));
    }
    Ok(body.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

fn oid_of(body: &[u8]) -> Result<Vec<u32>, SnmpError> {
    if body.is_empty() {
        return Err(bad("empty object identifier"));
    }
    if body.len() > 512 {
        return Err(bad("object identifier too long"));
    }
    let mut arcs = Vec::new();
    let mut v: u32 = 0;
    let mut in_arc = false;
    for b in body {
        if v > (u32::MAX >> 7) {
            return Err(bad("object identifier arc overflows"));
        }
        v = (v << 7) | u32::from(b & 0x7f);
        in_arc = b & 0x80 != 0;
        if !in_arc {
            arcs.push(v);
            v = 0;
        }
    }
    if in_arc {
        return Err(bad("object identifier ends inside an arc"));
    }
    let first = arcs.remove(0);
    let (a, b) = if first < 80 { (first / 40, first % 40) } else { (2, first - 80) };
    let mut out = vec![a, b];
    out.extend(arcs);
    Ok(out)
}

fn value_of(tag: u8, body: &[u8]) -> Result<Value, SnmpError> {
    Ok(match tag {
        0x02 => Value::Integer(int_of(body)?),
        0x04 => Value::OctetString(body.to_vec()),
        0x05 => Value::Null,
        0x06 => Value::Oid(oid_of(body)?),
        0x40 => Value::IpAddress(body.try_into().map_err(|_| bad("IpAddress is not 4 bytes"))?),
        0x41 => Value::Counter32(unsigned_of(body, 4)? as u32),
        0x42 => Value::Gauge32(unsigned_of(body, 4)? as u32),
        0x43 => Value::TimeTicks(unsigned_of(body, 4)? as u32),
        0x46 => Value::Counter64(unsigned_of(body, 8)?),
        0x80 => Value::NoSuchObject,
        0x81 => Value::NoSuchInstance,
        0x82 => Value::EndOfMibView,
        other => Value::Other(other, body.to_vec()),
    })
}

/// Decodes a v2c message holding a response PDU. Total: any input gives `Ok` or `Err`.
pub fn decode_response(input: &[u8]) -> Result<Response, SnmpError> {
    let (msg, _) = expect(input, 0x30, "message SEQUENCE")?;
    let (version, msg) = expect(msg, 0x02, "version")?;
    if int_of(version)? != 1 {
        return Err(bad("not an SNMPv2c message"));
    }
    let (_community, msg) = expect(msg, 0x04, "community")?;
    let (tag, pdu, _) = read_tlv(msg)?;
    if tag != 0xa2 {
        return Err(bad(&format!("expected a GetResponse PDU (0xa2), found tag 0x{tag:02x}")));
    }
    let (rid, pdu) = expect(pdu, 0x02, "request-id")?;
    let (es, pdu) = expect(pdu, 0x02, "error-status")?;
    let (ei, pdu) = expect(pdu, 0x02, "error-index")?;
    let (mut vbs, _) = expect(pdu, 0x30, "variable bindings")?;
    let mut bindings = Vec::new();
    while !vbs.is_empty() {
        let (vb, rest) = expect(vbs, 0x30, "variable binding")?;
        let (oid, vb) = expect(vb, 0x06, "name")?;
        let (tag, body, _) = read_tlv(vb)?;
        bindings.push((oid_of(oid)?, value_of(tag, body)?));
        vbs = rest;
    }
    let request_id = i32::try_from(int_of(rid)?).map_err(|_| bad("request-id out of range"))?;
    Ok(Response { request_id, error_status: int_of(es)?, error_index: int_of(ei)?, bindings })
}

/// Decodes a v2c GetRequest: (community, request id, OIDs). For the testbed's responder.
pub fn decode_get(input: &[u8]) -> Result<(String, i32, Vec<Vec<u32>>), SnmpError> {
    let (msg, _) = expect(input, 0x30, "message SEQUENCE")?;
    let (version, msg) = expect(msg, 0x02, "version")?;
    if int_of(version)? != 1 {
        return Err(bad("not an SNMPv2c message"));
    }
    let (community, msg) = expect(msg, 0x04, "community")?;
    let (pdu, _) = expect(msg, 0xa0, "GetRequest PDU")?;
    let (rid, pdu) = expect(pdu, 0x02, "request-id")?;
    let (_, pdu) = expect(pdu, 0x02, "error-status")?;
    let (_, pdu) = expect(pdu, 0x02, "error-index")?;
    let (mut vbs, _) = expect(pdu, 0x30, "variable bindings")?;
    let mut oids = Vec::new();
    while !vbs.is_empty() {
        let (vb, rest) = expect(vbs, 0x30, "variable binding")?;
        let (oid, _) = expect(vb, 0x06, "name")?;
        oids.push(oid_of(oid)?);
        vbs = rest;
    }
    let request_id = i32::try_from(int_of(rid)?).map_err(|_| bad("request-id out of range"))?;
    Ok((String::from_utf8_lossy(community).into_owned(), request_id, oids))
}

// ---- the exchange ----

pub const SYS_DESCR: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];
pub const SYS_UPTIME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
pub const SYS_NAME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 5, 0];
/// ifInErrors.1 and ifOutErrors.1 (IF-MIB, the first interface).
pub const IF_IN_ERRORS_1: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 14, 1];
pub const IF_OUT_ERRORS_1: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 20, 1];

/// Sends one GET and waits for its answer (same request id) until `timeout`.
pub fn get(target: SocketAddr, community: &str, oids: &[&[u32]], timeout: Duration) -> Result<Response, SnmpError> {
    let bind: SocketAddr = if target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let sock = UdpSocket::bind(bind).map_err(|e| SnmpError::Io(e.to_string()))?;
    sock.connect(target).map_err(|e| SnmpError::Io(e.to_string()))?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let request_id = ((std::process::id() ^ nanos) & 0x7fff_ffff).max(1) as i32;
    let oids: Vec<Vec<u32>> = oids.iter().map(|o| o.to_vec()).collect();
    let msg = encode_get(community, request_id, &oids);
    let started = Instant::now();
    sock.send(&msg).map_err(|e| SnmpError::Io(e.to_string()))?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(SnmpError::Timeout(timeout.as_millis()));
        }
        sock.set_read_timeout(Some(left)).map_err(|e| SnmpError::Io(e.to_string()))?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                let r = decode_response(&buf[..n])?;
                if r.request_id != request_id {
                    continue; // a late answer to someone else's request
                }
                if r.error_status != 0 {
                    return Err(SnmpError::ErrorStatus { status: r.error_status, index: r.error_index });
                }
                return Ok(r);
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(SnmpError::Timeout(timeout.as_millis()));
            }
            // ICMP port unreachable on a connected socket.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(SnmpError::Io("port unreachable (no SNMP agent listening)".into()));
            }
            Err(e) => return Err(SnmpError::Io(e.to_string())),
        }
    }
}

/// What the SNMP check reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SystemGroup {
    pub descr: Option<String>,
    pub name: Option<String>,
    /// sysUpTime in seconds (TimeTicks are hundredths).
    pub uptime_seconds: Option<u64>,
    pub if_in_errors: Option<u64>,
    pub if_out_errors: Option<u64>,
}

/// The system group and the first interface's error counters from a response.
pub fn system_group(r: &Response) -> SystemGroup {
    let find = |oid: &[u32]| r.bindings.iter().find(|(o, _)| o == oid).map(|(_, v)| v);
    SystemGroup {
        descr: find(SYS_DESCR).and_then(Value::text),
        name: find(SYS_NAME).and_then(Value::text),
        uptime_seconds: find(SYS_UPTIME).and_then(Value::number).map(|t| t / 100),
        if_in_errors: find(IF_IN_ERRORS_1).and_then(Value::number),
        if_out_errors: find(IF_OUT_ERRORS_1).and_then(Value::number),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_through_the_responder_decoder() {
        let oids = vec![SYS_DESCR.to_vec(), SYS_UPTIME.to_vec(), vec![1, 3, 6, 1, 4, 1, 13885, 101, 1, 300_000]];
        let msg = encode_get("public", 0x1234_5678, &oids);
        let (community, id, got) = decode_get(&msg).expect("decodes");
        assert_eq!((community.as_str(), id, got), ("public", 0x1234_5678, oids));
    }

    #[test]
    fn a_response_round_trips_with_every_value_type() {
        let bindings = vec![
            (SYS_DESCR.to_vec(), Value::OctetString(b"Polycom HDX 7000".to_vec())),
            (SYS_UPTIME.to_vec(), Value::TimeTicks(4_294_967_295)),
            (SYS_NAME.to_vec(), Value::OctetString(vec![b'x'; 300])),
            (IF_IN_ERRORS_1.to_vec(), Value::Counter32(128)),
            (vec![1, 3, 6, 1, 2, 1, 1, 2, 0], Value::Oid(vec![1, 3, 6, 1, 4, 1, 13885])),
            (vec![1, 3, 6, 1, 9], Value::Integer(-129)),
            (vec![1, 3, 6, 1, 10], Value::Counter64(u64::MAX)),
            (vec![1, 3, 6, 1, 11], Value::NoSuchInstance),
            (vec![1, 3, 6, 1, 12], Value::IpAddress([192, 0, 2, 30])),
        ];
        let msg = encode_response("public", -5, &bindings);
        let r = decode_response(&msg).expect("decodes");
        assert_eq!((r.request_id, r.bindings), (-5, bindings));
    }

    #[test]
    fn garbage_and_truncations_are_errors_not_panics() {
        let good = encode_response("public", 7, &[(SYS_UPTIME.to_vec(), Value::TimeTicks(100))]);
        for n in 0..good.len() {
            assert!(decode_response(&good[..n]).is_err(), "prefix of {n} bytes");
        }
        for input in [
            &b"\x30\x80\x02\x01\x01"[..],
            b"\x30\x85\xff\xff\xff\xff\xff",
            b"\x1f\x01\x00",
            b"\x30\x03\x02\x01\x00",
            b"\x30\x06\x02\x01\x01\x04\x01",
            b"\x30\x0c\x02\x01\x01\x04\x00\xa2\x05\x06\x03\xff\xff\xff",
        ] {
            assert!(decode_response(input).is_err(), "{input:?}");
        }
    }
}
