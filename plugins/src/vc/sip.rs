//! SIP OPTIONS over UDP as a liveness probe (RFC 3261 §11). Any final response proves the
//! device's SIP stack is alive (401/403/407/486 included); only silence until the timeout
//! means "SIP not answering". Provisional (1xx) answers are read past.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A SIP status line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub code: u16,
    pub reason: String,
}

/// What an OPTIONS exchange gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipAnswer {
    pub status: StatusLine,
    /// The `Server` or `User-Agent` header, if any.
    pub agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    #[error("SIP not answering (no response to OPTIONS within {0} ms)")]
    Timeout(u128),
    #[error("SIP not answering (port unreachable)")]
    Refused,
    #[error("SIP socket error: {0}")]
    Io(String),
    #[error("malformed SIP response: {0}")]
    Malformed(String),
}

/// The header values of a request we send, random per probe.
#[derive(Debug, Clone)]
pub struct Probe {
    pub branch: String,
    pub tag: String,
    pub call_id: String,
}

impl Probe {
    pub fn new() -> Probe {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let r = seed ^ (u128::from(std::process::id()) << 64);
        let hex = format!("{r:032x}");
        Probe {
            // RFC 3261 §8.1.1.7: the branch starts with the magic cookie.
            branch: format!("z9hG4bK{}", &hex[16..]),
            tag: hex[20..].to_string(),
            call_id: format!("{}@mangrove", &hex[8..]),
        }
    }
}

impl Default for Probe {
    fn default() -> Self {
        Probe::new()
    }
}

/// The OPTIONS request for `uri`, sent from `local` (RFC 3261 §8.1.1, §11.1).
pub fn options_request(uri: &str, local: SocketAddr, p: &Probe) -> String {
    let to = uri.trim();
    format!(
        "OPTIONS {to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:mangrove@{ip}>;tag={tag}\r\n\
         To: <{to}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Contact: <sip:mangrove@{local}>\r\n\
         Accept: application/sdp\r\n\
         User-Agent: mangrove-vc-check\r\n\
         Content-Length: 0\r\n\r\n",
        ip = local.ip(),
        branch = p.branch,
        tag = p.tag,
        call_id = p.call_id,
    )
}

/// Parses a response: its status line, and checks it answers our Call-ID and CSeq method.
/// Total over any bytes.
pub fn parse_response(bytes: &[u8], call_id: Option<&str>) -> Result<SipAnswer, SipError> {
    let text = std::str::from_utf8(bytes).map_err(|_| SipError::Malformed("not UTF-8 text".into()))?;
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let first = lines.next().unwrap_or("").trim_end_matches('\r');
    let rest = first
        .strip_prefix("SIP/2.0 ")
        .ok_or_else(|| SipError::Malformed(format!("status line {:?} does not start with SIP/2.0", clip(first))))?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let code: u16 = code
        .parse()
        .ok()
        .filter(|c| (100..700).contains(c))
        .ok_or_else(|| SipError::Malformed(format!("bad status code in {:?}", clip(first))))?;
    let mut agent = None;
    let mut seen_call_id = None;
    let mut cseq_method = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "server" | "user-agent" => agent = Some(value.to_string()),
            "call-id" | "i" => seen_call_id = Some(value.to_string()),
            "cseq" => cseq_method = value.split_whitespace().nth(1).map(str::to_ascii_uppercase),
            _ => {}
        }
    }
    if let Some(want) = call_id
        && seen_call_id.as_deref() != Some(want)
    {
        return Err(SipError::Malformed("the response answers another Call-ID".into()));
    }
    if call_id.is_some() && cseq_method.as_deref() != Some("OPTIONS") {
        return Err(SipError::Malformed("the response's CSeq is not OPTIONS".into()));
    }
    Ok(SipAnswer { status: StatusLine { code, reason: reason.trim().to_string() }, agent })
}

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Sends OPTIONS to `target` (retransmitting per Timer E: 500 ms, doubling) and waits for a
/// final response until `timeout`.
pub fn options(target: SocketAddr, uri: &str, timeout: Duration) -> Result<SipAnswer, SipError> {
    let bind: SocketAddr = if target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let sock = UdpSocket::bind(bind).map_err(|e| SipError::Io(e.to_string()))?;
    sock.connect(target).map_err(|e| SipError::Io(e.to_string()))?;
    let local = sock.local_addr().map_err(|e| SipError::Io(e.to_string()))?;
    let probe = Probe::new();
    let req = options_request(uri, local, &probe);
    let started = Instant::now();
    let mut next_send = started;
    let mut interval = Duration::from_millis(500);
    let mut buf = vec![0u8; 65_535];
    loop {
        let now = Instant::now();
        if now >= next_send {
            match sock.send(req.as_bytes()) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(SipError::Refused),
                Err(e) => return Err(SipError::Io(e.to_string())),
            }
            next_send = now + interval;
            interval = (interval * 2).min(Duration::from_secs(4));
        }
        let deadline = started + timeout;
        if now >= deadline {
            return Err(SipError::Timeout(timeout.as_millis()));
        }
        let wait = next_send.min(deadline).saturating_duration_since(now).max(Duration::from_millis(1));
        sock.set_read_timeout(Some(wait)).map_err(|e| SipError::Io(e.to_string()))?;
        match sock.recv(&mut buf) {
            Ok(n) => match parse_response(&buf[..n], Some(&probe.call_id)) {
                Ok(a) if a.status.code >= 200 => return Ok(a),
                Ok(_) => {} // provisional: keep waiting for the final answer
                Err(e) => return Err(e),
            },
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(SipError::Refused),
            Err(e) => return Err(SipError::Io(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_the_mandatory_headers() {
        let p = Probe::new();
        let r = options_request("sip:192.0.2.30:5060", "10.0.0.5:40000".parse().expect("addr"), &p);
        assert!(r.starts_with("OPTIONS sip:192.0.2.30:5060 SIP/2.0\r\n"), "{r}");
        for h in [
            "Via: SIP/2.0/UDP 10.0.0.5:40000;branch=z9hG4bK",
            "Max-Forwards: 70",
            ";tag=",
            "Call-ID: ",
            "CSeq: 1 OPTIONS",
            "To: <sip:192.0.2.30:5060>",
            "Content-Length: 0\r\n\r\n",
        ] {
            assert!(r.contains(h), "{h} missing from {r}");
        }
    }

    #[test]
    fn responses_are_parsed_and_checked() {
        let ok = "SIP/2.0 200 OK\r\nVia: x\r\nCall-ID: abc@h\r\nCSeq: 1 OPTIONS\r\nServer: Polycom HDX\r\n\r\n";
        let a = parse_response(ok.as_bytes(), Some("abc@h")).expect("parsed");
        assert_eq!((a.status.code, a.status.reason.as_str(), a.agent.as_deref()), (200, "OK", Some("Polycom HDX")));
        let busy = "SIP/2.0 486 Busy Here\r\ni: abc@h\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(parse_response(busy.as_bytes(), Some("abc@h")).expect("parsed").status.code, 486);
        assert!(parse_response(ok.as_bytes(), Some("other")).is_err());
        for garbage in
            [&b""[..], b"HTTP/1.1 200 OK\r\n\r\n", b"SIP/2.0 abc\r\n", b"SIP/2.0 99 x", b"\xff\xfe", b"SIP/2.0 200"]
        {
            assert!(parse_response(garbage, None).is_err() || garbage == b"SIP/2.0 200", "{garbage:?}");
        }
    }
}
