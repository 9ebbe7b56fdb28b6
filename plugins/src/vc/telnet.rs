//! The telnet command-line API of Polycom HDX and RealPresence Group Series (Integrator's
//! Reference Manual; see `poly-endpoints.md` §2.2): log in (a password prompt appears when a
//! remote-access password is set), then `whoami`, `callinfo all` and `status`, each answered
//! with complete lines ending in CRLF.
//!
//! The parsers take text and are total: a device answering garbage gives a clear error, never a
//! panic (the `vc_telnet` fuzz target). Telnet option negotiation (IAC) is refused and skipped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What the telnet API told us.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TelnetInfo {
    pub system_name: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub software: Option<String>,
    pub uptime: Option<String>,
    pub calls: Vec<CallInfo>,
    /// `status` lines as name/value pairs.
    pub status: Vec<(String, String)>,
}

/// One `callinfo:` line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CallInfo {
    pub call_id: String,
    pub far_site: String,
    pub speed: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelnetError {
    #[error("telnet API not responding: {0}")]
    Unreachable(String),
    #[error("telnet API did not answer {what} within {ms} ms")]
    Timeout { what: String, ms: u128 },
    #[error("credentials failed: the telnet API refused the password")]
    Credentials,
    #[error("the device needs a password for its telnet API and none is configured")]
    PasswordRequired,
    #[error("telnet API answered garbage to {what}: {detail}")]
    Garbage { what: String, detail: String },
}

/// The prompt after login and after each command [Inferred: HDX prints `-> `; some firmware
/// prints none and just waits; we accept both by also ending a reply at its known last line].
pub const PROMPT: &str = "-> ";
/// Longest reply we read to one command.
const MAX_REPLY: usize = 64 * 1024;

fn garbage(what: &str, text: &str) -> TelnetError {
    let shown: String = text.chars().filter(|c| !c.is_control() || *c == ' ').take(80).collect();
    TelnetError::Garbage { what: what.to_string(), detail: format!("{shown:?}") }
}

/// Parses a `callinfo all` reply. Accepts the documented forms only.
pub fn parse_callinfo(reply: &str) -> Result<Vec<CallInfo>, TelnetError> {
    let lines: Vec<&str> = reply.lines().map(str::trim).filter(|l| !l.is_empty() && *l != PROMPT.trim()).collect();
    if lines.iter().any(|l| l.eq_ignore_ascii_case("system is not in a call")) {
        return Ok(Vec::new());
    }
    let begin = lines.iter().position(|l| *l == "callinfo begin");
    let end = lines.iter().position(|l| *l == "callinfo end");
    let (Some(b), Some(e)) = (begin, end) else { return Err(garbage("callinfo all", reply)) };
    if e < b {
        return Err(garbage("callinfo all", reply));
    }
    let mut calls = Vec::new();
    for l in &lines[b + 1..e] {
        let Some(rest) = l.strip_prefix("callinfo:") else { return Err(garbage("callinfo all", l)) };
        let f: Vec<&str> = rest.split(':').collect();
        // callid:far name:far number:speed:status:mute:direction:type — the far number may be
        // missing (the manual's second example has 7 fields).
        if f.len() < 7 {
            return Err(garbage("callinfo all", l));
        }
        let n = f.len();
        calls.push(CallInfo {
            call_id: f[0].to_string(),
            far_site: f[1].to_string(),
            speed: f[n - 5].to_string(),
            state: f[n - 4].to_string(),
        });
    }
    Ok(calls)
}

/// Parses a `whoami` banner [Inferred format]: tolerant, by key words on each line.
pub fn parse_whoami(reply: &str, info: &mut TelnetInfo) -> Result<(), TelnetError> {
    let mut any = false;
    for line in reply.lines().map(str::trim) {
        let lower = line.to_ascii_lowercase();
        let value = || line.split_once(':').map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty());
        if lower.starts_with("hi, my name is") {
            info.system_name = line.get(14..).map(|s| s.trim().trim_start_matches(':').trim().to_string());
            any = true;
        } else if lower.starts_with("model") {
            info.model = value();
            any |= info.model.is_some();
        } else if lower.starts_with("serial number") {
            info.serial = value();
            any |= info.serial.is_some();
        } else if lower.starts_with("software version") {
            info.software = value();
            any |= info.software.is_some();
        } else if lower.starts_with("uptime") {
            info.uptime = value();
        }
    }
    if any { Ok(()) } else { Err(garbage("whoami", reply)) }
}

/// Parses a `status` reply [Inferred format]: `name: value` lines (or `name value`).
pub fn parse_status(reply: &str) -> Result<Vec<(String, String)>, TelnetError> {
    let mut out = Vec::new();
    for line in reply.lines().map(str::trim).filter(|l| !l.is_empty() && *l != PROMPT.trim()) {
        let Some((k, v)) = line.split_once(':') else { return Err(garbage("status", line)) };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || " _-.".contains(c)) {
            return Err(garbage("status", line));
        }
        out.push((k.to_string(), v.to_string()));
    }
    if out.is_empty() {
        return Err(garbage("status", reply));
    }
    Ok(out)
}

/// Removes telnet IAC sequences from `data`, returning the refusals to send back (we refuse
/// every option: DO x → WONT x, WILL x → DONT x).
pub fn strip_iac(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut text, mut reply) = (Vec::with_capacity(data.len()), Vec::new());
    let mut i = 0;
    while i < data.len() {
        if data[i] != 255 {
            text.push(data[i]);
            i += 1;
            continue;
        }
        match (data.get(i + 1), data.get(i + 2)) {
            (Some(255), _) => {
                text.push(255);
                i += 2;
            }
            (Some(&cmd @ (251..=254)), Some(&opt)) => {
                let answer = if cmd == 253 || cmd == 254 { 252 } else { 254 }; // WONT / DONT
                if cmd == 253 || cmd == 251 {
                    reply.extend_from_slice(&[255, answer, opt]);
                }
                i += 3;
            }
            (Some(250), _) => {
                // Subnegotiation: skip to IAC SE.
                let end = data[i..].windows(2).position(|w| w == [255, 240]).map_or(data.len(), |p| i + p + 2);
                i = end;
            }
            (Some(_), _) => i += 2,
            (None, _) => i += 1,
        }
    }
    (text, reply)
}

/// A logged-in telnet session.
pub struct Session {
    stream: TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
    timeout: Duration,
}

impl Session {
    /// Connects and logs in; the whole session must end by `timeout` from now.
    pub fn login(addr: SocketAddr, password: Option<&str>, timeout: Duration) -> Result<Session, TelnetError> {
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| TelnetError::Unreachable(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let mut s = Session { stream, buf: Vec::new(), deadline: Instant::now() + timeout, timeout };
        let greeting = s.read_until(&["assword:", PROMPT], "the login greeting")?;
        if greeting.contains("assword:") {
            let Some(pw) = password.filter(|p| !p.is_empty()) else { return Err(TelnetError::PasswordRequired) };
            s.send(pw)?;
            let after = s.read_until(&["assword:", PROMPT, "ncorrect", "denied", "failed"], "the password")?;
            if !after.contains(PROMPT) || after.to_ascii_lowercase().contains("incorrect") {
                return Err(TelnetError::Credentials);
            }
        }
        Ok(s)
    }

    fn send(&mut self, line: &str) -> Result<(), TelnetError> {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| TelnetError::Unreachable(format!("cannot send: {e}")))
    }

    /// Reads until one of `marks` appears; returns the text read (and drops it from the buffer).
    fn read_until(&mut self, marks: &[&str], what: &str) -> Result<String, TelnetError> {
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            if let Some(end) = marks.iter().filter_map(|m| text.find(m).map(|p| p + m.len())).min() {
                let out = text[..end].to_string();
                let rest = text.as_bytes()[end..].to_vec();
                self.buf = rest;
                return Ok(out);
            }
            if self.buf.len() > MAX_REPLY {
                return Err(garbage(what, &text));
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if self.buf.is_empty() {
                    return Err(TelnetError::Timeout { what: what.into(), ms: self.timeout.as_millis() });
                }
                return Err(garbage(what, &text));
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    if self.buf.is_empty() {
                        return Err(TelnetError::Unreachable(format!(
                            "the device closed the connection before {what}"
                        )));
                    }
                    return Err(garbage(what, &text));
                }
                Ok(n) => {
                    let (clean, refusals) = strip_iac(&chunk[..n]);
                    if !refusals.is_empty() {
                        let _ = self.stream.write_all(&refusals);
                    }
                    self.buf.extend(clean);
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(TelnetError::Unreachable(e.to_string())),
            }
        }
    }

    /// Runs one command and returns its reply (up to the next prompt), without the echo.
    pub fn command(&mut self, cmd: &str) -> Result<String, TelnetError> {
        self.send(cmd)?;
        let reply = self.read_until(&[PROMPT], cmd)?;
        let body = reply.strip_suffix(PROMPT).unwrap_or(&reply);
        let body = body.trim_start_matches(['\r', '\n']);
        let body = body.strip_prefix(cmd).unwrap_or(body);
        if body.trim_start().starts_with("error:") {
            return Err(garbage(cmd, body.trim()));
        }
        Ok(body.to_string())
    }

    pub fn close(mut self) {
        let _ = self.send("exit");
    }
}

/// The whole telnet check: log in, `whoami`, `callinfo all`, `status`.
pub fn check(addr: SocketAddr, password: Option<&str>, timeout: Duration) -> Result<TelnetInfo, TelnetError> {
    let mut s = Session::login(addr, password, timeout)?;
    let mut info = TelnetInfo::default();
    parse_whoami(&s.command("whoami")?, &mut info)?;
    info.calls = parse_callinfo(&s.command("callinfo all")?)?;
    info.status = parse_status(&s.command("status")?)?;
    s.close();
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callinfo_as_the_manual_shows_it() {
        let reply = "callinfo begin\r\n\
                     callinfo:43:Polycom Group Series Demo:192.168.1.101:384:connected:notmuted:outgoing:videocall\r\n\
                     callinfo:36:192.168.1.102:256:connected:muted:outgoing:videocall\r\n\
                     callinfo end\r\n";
        let calls = parse_callinfo(reply).expect("parsed");
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].call_id.as_str(), calls[0].speed.as_str(), calls[0].state.as_str()),
            ("43", "384", "connected")
        );
        assert_eq!((calls[1].far_site.as_str(), calls[1].speed.as_str()), ("192.168.1.102", "256"));
        assert_eq!(parse_callinfo("system is not in a call\r\n").expect("idle"), vec![]);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        for bad in [
            "",
            "hello",
            "callinfo end\r\ncallinfo begin",
            "callinfo begin\r\nfoo\r\ncallinfo end",
            "callinfo begin\r\ncallinfo:1:2\r\ncallinfo end",
        ] {
            let e = parse_callinfo(bad).expect_err(bad).to_string();
            assert!(e.starts_with("telnet API answered garbage to callinfo all"), "{e}");
        }
        assert!(parse_status("\u{1}\u{2}\u{3}").is_err());
        assert!(parse_status("sip: registered\r\ngatekeeper: unregistered\r\n").is_ok());
        let mut info = TelnetInfo::default();
        assert!(parse_whoami("%%%%", &mut info).is_err());
    }

    #[test]
    fn whoami_fields_are_read_tolerantly() {
        let mut info = TelnetInfo::default();
        parse_whoami(
            "Hi, my name is : vc-tinh\r\nModel: HDX 8000\r\nSerial Number: 82051203F4A1\r\nSoftware Version: 3.1.14-61207\r\nUptime: 12 days 03:04:05\r\n",
            &mut info,
        )
        .expect("parsed");
        assert_eq!(info.model.as_deref(), Some("HDX 8000"));
        assert_eq!(info.software.as_deref(), Some("3.1.14-61207"));
        assert_eq!(info.serial.as_deref(), Some("82051203F4A1"));
    }

    #[test]
    fn iac_negotiation_is_refused_and_removed() {
        let (text, reply) = strip_iac(&[255, 253, 1, b'h', b'i', 255, 251, 3, 255, 255, 255]);
        assert_eq!(text, vec![b'h', b'i', 255]);
        assert_eq!(reply, vec![255, 252, 1, 255, 254, 3]);
    }
}
