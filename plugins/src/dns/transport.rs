//! One request, one answer, over UDP or TCP with std's blocking sockets and one deadline for
//! the whole exchange. No async runtime: callable from any thread (from async code, through
//! `spawn_blocking`, since it blocks for up to the timeout).

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use super::DnsError;

/// Largest UDP answer accepted (EDNS is not used, so the server keeps to 512 bytes and sets TC
/// beyond; a larger buffer costs nothing).
const UDP_BUFFER: usize = 4096;

/// Where and for what an exchange runs, for its errors.
pub(crate) struct Exchange<'a> {
    pub server: SocketAddr,
    pub timeout: Duration,
    pub operation: &'a str,
}

impl Exchange<'_> {
    fn timeout_error(&self) -> DnsError {
        DnsError::Timeout { server: self.server, operation: self.operation.to_string(), timeout: self.timeout }
    }

    fn io_error(&self, source: std::io::Error) -> DnsError {
        match source.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => self.timeout_error(),
            _ => DnsError::Unreachable { server: self.server, operation: self.operation.to_string(), source },
        }
    }

    /// What is left of the timeout, or a timeout error when nothing is.
    fn remaining(&self, deadline: Instant) -> Result<Duration, DnsError> {
        match deadline.checked_duration_since(Instant::now()) {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(self.timeout_error()),
        }
    }

    /// Sends `request` (whose id is `id`) over UDP and returns the first answer with that id.
    /// Datagrams with another id (late answers to earlier requests) are skipped.
    pub fn udp(&self, request: &[u8], id: u16) -> Result<Vec<u8>, DnsError> {
        let deadline = Instant::now() + self.timeout;
        let local: SocketAddr = match self.server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = UdpSocket::bind(local).map_err(|e| self.io_error(e))?;
        // Connected, so an ICMP port-unreachable comes back as ECONNREFUSED instead of silence.
        sock.connect(self.server).map_err(|e| self.io_error(e))?;
        sock.send(request).map_err(|e| self.io_error(e))?;
        let mut buf = vec![0u8; UDP_BUFFER];
        loop {
            sock.set_read_timeout(Some(self.remaining(deadline)?)).map_err(|e| self.io_error(e))?;
            let n = sock.recv(&mut buf).map_err(|e| self.io_error(e))?;
            if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                return Ok(buf[..n].to_vec());
            }
        }
    }

    /// Sends `request` over TCP (two-byte length prefix, RFC 1035 4.2.2) and reads one answer.
    pub fn tcp(&self, request: &[u8], id: u16) -> Result<Vec<u8>, DnsError> {
        let deadline = Instant::now() + self.timeout;
        let len = u16::try_from(request.len())
            .map_err(|_| DnsError::Invalid(format!("the request is too large ({} bytes)", request.len())))?;
        let mut stream =
            TcpStream::connect_timeout(&self.server, self.remaining(deadline)?).map_err(|e| self.io_error(e))?;
        stream.set_write_timeout(Some(self.remaining(deadline)?)).map_err(|e| self.io_error(e))?;
        let mut framed = Vec::with_capacity(request.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(request);
        stream.write_all(&framed).map_err(|e| self.io_error(e))?;
        loop {
            let mut len = [0u8; 2];
            self.read_exact(&mut stream, &mut len, deadline)?;
            let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
            self.read_exact(&mut stream, &mut answer, deadline)?;
            if answer.len() >= 2 && u16::from_be_bytes([answer[0], answer[1]]) == id {
                return Ok(answer);
            }
        }
    }

    fn read_exact(&self, stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<(), DnsError> {
        stream.set_read_timeout(Some(self.remaining(deadline)?)).map_err(|e| self.io_error(e))?;
        stream.read_exact(buf).map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => DnsError::BadResponse {
                server: self.server,
                operation: self.operation.to_string(),
                detail: "the server closed the connection without a complete answer".into(),
            },
            _ => self.io_error(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_server_times_out_naming_itself() {
        // A bound UDP socket that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let server = silent.local_addr().expect("addr");
        let ex = Exchange { server, timeout: Duration::from_millis(200), operation: "lookup of x A" };
        let err = ex.udp(&[0, 1, 0, 0], 1).expect_err("no answer");
        assert!(matches!(err, DnsError::Timeout { .. }), "{err:?}");
        assert!(err.to_string().contains(&server.to_string()), "{err}");
        assert!(err.is_retryable());
    }

    #[test]
    fn a_closed_tcp_port_is_unreachable_naming_the_server() {
        // Bind then drop: the port is free and nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
        let ex = Exchange { server: port, timeout: Duration::from_secs(2), operation: "update" };
        let err = ex.tcp(&[0, 1, 0, 0], 1).expect_err("refused");
        assert!(matches!(err, DnsError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains(&port.to_string()), "{err}");
    }
}
