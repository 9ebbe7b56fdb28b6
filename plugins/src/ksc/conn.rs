//! One persistent HTTPS connection speaking HTTP/1.1, one request at a time.
//!
//! KSC binds a login to its TCP/TLS connection and sends no session header or cookie, and its
//! calls are synchronous per connection (protocol notes §1). A pooling client could send the
//! next call on another connection, which KSC would treat as unauthenticated; so this client
//! owns exactly one stream and writes the next request only after the previous answer is read.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

/// Most bytes one answer may have (2,753 hosts in chunks of 100 are far below this).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// An answer: status, headers (lowercase names), body.
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Why the connection failed.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// Connect, TLS handshake or the stream itself failed (including a closed connection).
    Io(std::io::Error),
    /// The read or write timed out.
    Timeout,
    /// The bytes were not an HTTP/1.1 answer.
    Protocol(String),
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "{e}"),
            ConnError::Timeout => write!(f, "timed out"),
            ConnError::Protocol(m) => write!(f, "not an HTTP answer: {m}"),
        }
    }
}

fn io(e: std::io::Error) -> ConnError {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => ConnError::Timeout,
        _ => ConnError::Io(e),
    }
}

/// The TLS settings: the given CA bundle (PEM), or none — KSC's certificate is usually
/// self-signed, so an operator must name it; there is no fallback to "insecure".
pub(crate) fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let pem = std::fs::read(ca_file).map_err(|e| format!("cannot read CA file {}: {e}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    let mut n = 0;
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        let c = c.map_err(|e| format!("CA file {}: {e}", ca_file.display()))?;
        roots.add(c).map_err(|e| format!("CA file {}: {e}", ca_file.display()))?;
        n += 1;
    }
    if n == 0 {
        return Err(format!("CA file {} holds no certificate", ca_file.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// `https://host[:port]` → (host, port); the port defaults to KSC's 13299.
pub(crate) fn parse_url(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .trim()
        .strip_prefix("https://")
        .ok_or_else(|| format!("KSC URL {url:?} must start with https:// (KSC serves HTTPS only)"))?;
    let hostport = rest.trim_end_matches('/');
    if hostport.is_empty() || hostport.contains('/') {
        return Err(format!("KSC URL {url:?} must be https://host[:port] with no path"));
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h.to_string(), p.parse::<u16>().map_err(|_| format!("KSC URL {url:?}: bad port {p:?}"))?)
        }
        _ => (hostport.to_string(), 13299),
    };
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

pub(crate) struct Conn {
    stream: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
    host: String,
}

impl Conn {
    pub fn open(host: &str, port: u16, tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Result<Conn, ConnError> {
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(io)?
            .next()
            .ok_or_else(|| ConnError::Io(std::io::Error::other(format!("{host} has no address"))))?;
        let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(|e| match io(e) {
            ConnError::Io(e) => ConnError::Io(std::io::Error::new(e.kind(), format!("connect: {e}"))),
            other => other,
        })?;
        tcp.set_read_timeout(Some(timeout)).map_err(io)?;
        tcp.set_write_timeout(Some(timeout)).map_err(io)?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| ConnError::Io(std::io::Error::other(format!("{host}: {e}"))))?;
        let tls = rustls::ClientConnection::new(tls, name).map_err(|e| ConnError::Io(std::io::Error::other(e)))?;
        let mut stream = rustls::StreamOwned::new(tls, tcp);
        // Handshake now, so an untrusted certificate shows up as "unreachable" at connect.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).map_err(|e| match io(e) {
                ConnError::Io(e) => ConnError::Io(std::io::Error::new(e.kind(), format!("TLS handshake failed: {e}"))),
                other => other,
            })?;
        }
        Ok(Conn { stream: BufReader::new(stream), host: format!("{host}:{port}") })
    }

    /// POSTs `body` to `path` and reads the whole answer.
    pub fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Reply, ConnError> {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: keep-alive\r\n",
            self.host,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let w = self.stream.get_mut();
        w.write_all(req.as_bytes()).map_err(io)?;
        w.write_all(body).map_err(io)?;
        w.flush().map_err(io)?;
        self.read_reply()
    }

    fn line(&mut self) -> Result<String, ConnError> {
        let mut buf = Vec::new();
        let n = (&mut self.stream).take(16 * 1024).read_until(b'\n', &mut buf).map_err(io)?;
        if n == 0 {
            return Err(ConnError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        String::from_utf8(buf)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|_| ConnError::Protocol("header line is not UTF-8".into()))
    }

    fn read_reply(&mut self) -> Result<Reply, ConnError> {
        let status_line = self.line()?;
        let mut parts = status_line.splitn(3, ' ');
        let (proto, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if !proto.starts_with("HTTP/1.") {
            return Err(ConnError::Protocol(format!("status line {status_line:?}")));
        }
        let status = code.parse::<u16>().map_err(|_| ConnError::Protocol(format!("status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let l = self.line()?;
            if l.is_empty() {
                break;
            }
            if headers.len() > 200 {
                return Err(ConnError::Protocol("more than 200 headers".into()));
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let find = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let body = if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            self.read_chunked()?
        } else if let Some(len) = find("content-length") {
            let len: usize = len.parse().map_err(|_| ConnError::Protocol(format!("content-length {len:?}")))?;
            if len > MAX_BODY {
                return Err(ConnError::Protocol(format!("body of {len} bytes is over the limit")));
            }
            let mut b = vec![0; len];
            self.stream.read_exact(&mut b).map_err(io)?;
            b
        } else if status == 204 || status == 304 {
            Vec::new()
        } else {
            let mut b = Vec::new();
            (&mut self.stream).take(MAX_BODY as u64).read_to_end(&mut b).map_err(io)?;
            b
        };
        Ok(Reply { status, headers, body })
    }

    fn read_chunked(&mut self) -> Result<Vec<u8>, ConnError> {
        let mut body = Vec::new();
        loop {
            let l = self.line()?;
            let size = usize::from_str_radix(l.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| ConnError::Protocol(format!("chunk size {l:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line()?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(ConnError::Protocol("chunked body over the limit".into()));
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.stream.read_exact(&mut body[start..]).map_err(io)?;
            self.line()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_default_to_port_13299_and_must_be_https() {
        assert_eq!(parse_url("https://ksc.camau.gov.vn"), Ok(("ksc.camau.gov.vn".into(), 13299)));
        assert_eq!(parse_url("https://127.0.0.1:23299/"), Ok(("127.0.0.1".into(), 23299)));
        assert_eq!(parse_url("https://[::1]:13299"), Ok(("::1".into(), 13299)));
        assert!(parse_url("http://ksc:13299").is_err_and(|e| e.contains("https://")));
        assert!(parse_url("https://ksc/api").is_err());
    }
}
