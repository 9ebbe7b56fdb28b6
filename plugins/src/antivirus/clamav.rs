//! ClamAV through clamd's own socket.
//!
//! - Where clamd listens, where its databases and log are, and the on-access settings come from
//!   `clamd.conf` ([`ClamdConf::parse`]): `LocalSocket` (preferred) or `TCPSocket`/`TCPAddr`,
//!   `DatabaseDirectory`, `LogFile`, `OnAccessIncludePath`, `OnAccessMountPath`,
//!   `OnAccessPrevention`.
//! - The protocol ([`exchange`]): each command is sent in its null-terminated form (`zVERSION\0`,
//!   `zSTATS\0`), the reply read until its terminating NUL (or EOF), with a timeout on connect,
//!   write and read and a bounded reply size. A socket that does not answer means the engine is
//!   not running.
//! - Signatures: the `VERSION` reply is `ClamAV <engine>/<daily version>/<daily build time>`
//!   when official databases are loaded. With custom databases only, clamd answers just
//!   `ClamAV <engine>`; then the database files in `DatabaseDirectory` tell
//!   ([`database_info`]): a `.cvd`/`.cld` header gives its version and signing time; otherwise the
//!   newest modification time of the signature files is the build time and the version names
//!   the custom files (`custom: a.ndb, b.hdb`). That is the decision for custom databases: the
//!   file's time is when it was built or installed, the best age signal there is.
//! - Real-time protection: on-access scanning needs `OnAccessIncludePath` or
//!   `OnAccessMountPath` in `clamd.conf` **and** the `clamonacc` process (ClamAV ≥ 0.102 scans
//!   on access only through it); both are checked.
//!
//! The times in the `VERSION` reply are clamd's `ctime()` text without a zone; they are read as
//! UTC (servers and the testbed's containers run in UTC).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{AvError, AvStatus, Product};

/// The longest reply read from clamd (STATS grows with the queue; 64 KiB is plenty).
pub const MAX_REPLY: usize = 64 * 1024;

/// What `clamd.conf` says that matters here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClamdConf {
    pub local_socket: Option<PathBuf>,
    pub tcp_socket: Option<u16>,
    pub tcp_addr: Option<String>,
    pub database_directory: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    pub on_access_include_paths: Vec<String>,
    pub on_access_mount_paths: Vec<String>,
    pub on_access_prevention: bool,
}

impl ClamdConf {
    /// Parses `clamd.conf`: one `Option value` per line, `#` comments, options repeated where
    /// clamd allows it. Unknown options, the `Example` line and lines without a value are
    /// ignored; a bad port is ignored (then the unix socket, if any, is used).
    pub fn parse(text: &str) -> Self {
        let mut conf = Self::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = match line.split_once(char::is_whitespace) {
                Some((k, v)) => (k, v.trim().trim_matches('"')),
                None => continue,
            };
            if value.is_empty() {
                continue;
            }
            match key.to_ascii_lowercase().as_str() {
                "localsocket" => conf.local_socket = Some(PathBuf::from(value)),
                "tcpsocket" => conf.tcp_socket = value.parse().ok(),
                "tcpaddr" => conf.tcp_addr = Some(value.to_owned()),
                "databasedirectory" => conf.database_directory = Some(PathBuf::from(value)),
                "logfile" => conf.log_file = Some(PathBuf::from(value)),
                "onaccessincludepath" => conf.on_access_include_paths.push(value.to_owned()),
                "onaccessmountpath" => conf.on_access_mount_paths.push(value.to_owned()),
                "onaccessprevention" => conf.on_access_prevention = is_yes(value),
                _ => {}
            }
        }
        conf
    }

    /// Where clamd listens: the unix socket if configured, else TCP (`TCPAddr`, default
    /// 127.0.0.1).
    pub fn endpoint(&self) -> Option<Endpoint> {
        if let Some(path) = &self.local_socket {
            return Some(Endpoint::Unix(path.clone()));
        }
        let port = self.tcp_socket?;
        let host = self.tcp_addr.clone().unwrap_or_else(|| "127.0.0.1".to_owned());
        Some(Endpoint::Tcp(host, port))
    }

    /// Whether on-access scanning is configured (paths to watch).
    pub fn on_access_configured(&self) -> bool {
        !self.on_access_include_paths.is_empty() || !self.on_access_mount_paths.is_empty()
    }

    /// The database directory, or Debian's default.
    pub fn database_dir(&self) -> PathBuf {
        self.database_directory.clone().unwrap_or_else(|| PathBuf::from("/var/lib/clamav"))
    }
}

fn is_yes(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "yes" | "true" | "1" | "on")
}

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String, u16),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Tcp(host, port) => write!(f, "tcp:{host}:{port}"),
        }
    }
}

/// Sends `z<command>\0` to clamd and reads the reply up to its NUL (or EOF), within `timeout`
/// for the connect and for each read and write, at most [`MAX_REPLY`] bytes. The reply is
/// returned without its terminator and surrounding whitespace.
pub fn exchange(endpoint: &Endpoint, command: &'static str, timeout: Duration) -> Result<String, AvError> {
    let name = endpoint.to_string();
    let connect = |source| AvError::Connect { endpoint: name.clone(), source };
    let io = |source| AvError::Exchange { endpoint: name.clone(), command, source };
    let mut stream: Box<dyn ReadWrite> = match endpoint {
        Endpoint::Unix(path) => {
            // connect(2) on a unix socket does not block on a listener that is gone (ECONNREFUSED
            // or ENOENT at once); a stuck listener is caught by the read timeout.
            let s = UnixStream::connect(path).map_err(connect)?;
            s.set_read_timeout(Some(timeout)).map_err(io)?;
            s.set_write_timeout(Some(timeout)).map_err(io)?;
            Box::new(s)
        }
        Endpoint::Tcp(host, port) => {
            let addr = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(connect)?
                .next()
                .ok_or_else(|| connect(std::io::Error::new(std::io::ErrorKind::NotFound, "no address")))?;
            let s = TcpStream::connect_timeout(&addr, timeout).map_err(connect)?;
            s.set_read_timeout(Some(timeout)).map_err(io)?;
            s.set_write_timeout(Some(timeout)).map_err(io)?;
            Box::new(s)
        }
    };
    stream.write_all(format!("z{command}\0").as_bytes()).map_err(io)?;
    let mut reply = Vec::with_capacity(256);
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if let Some(end) = chunk.iter().position(|&b| b == 0) {
            reply.extend_from_slice(&chunk[..end]);
            break;
        }
        reply.extend_from_slice(chunk);
        if reply.len() > MAX_REPLY {
            return Err(AvError::TooLong { endpoint: name, command, limit: MAX_REPLY });
        }
    }
    Ok(String::from_utf8_lossy(&reply).trim().to_owned())
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The `VERSION` reply, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionReply {
    /// Engine version, e.g. `1.4.6`.
    pub engine: String,
    /// The daily database version, when official databases are loaded.
    pub db_version: Option<u64>,
    /// The daily database build time (Unix seconds), when given.
    pub db_time_unix: Option<i64>,
}

/// Parses `ClamAV 1.4.6/27834/Thu Nov 26 08:27:51 2026` or `ClamAV 1.4.6`. `None` if the reply
/// does not start with `ClamAV ` (not clamd, or an error such as `UNKNOWN COMMAND`).
pub fn parse_version(reply: &str) -> Option<VersionReply> {
    let rest = reply.trim().strip_prefix("ClamAV ")?;
    let mut parts = rest.splitn(3, '/');
    let engine = parts.next().unwrap_or_default().trim().to_owned();
    if engine.is_empty() {
        return None;
    }
    let db_version = parts.next().and_then(|v| v.trim().parse().ok());
    let db_time_unix = parts.next().and_then(parse_ctime);
    Some(VersionReply { engine, db_version, db_time_unix })
}

/// Parses C `ctime()` text (`Thu Nov 26 08:27:51 2026`, day space-padded) as UTC.
pub fn parse_ctime(text: &str) -> Option<i64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let [_weekday, month, day, clock, year] = words.as_slice() else { return None };
    let month = match month.get(..3)?.to_ascii_lowercase().as_str() {
        "jan" => time::Month::January,
        "feb" => time::Month::February,
        "mar" => time::Month::March,
        "apr" => time::Month::April,
        "may" => time::Month::May,
        "jun" => time::Month::June,
        "jul" => time::Month::July,
        "aug" => time::Month::August,
        "sep" => time::Month::September,
        "oct" => time::Month::October,
        "nov" => time::Month::November,
        "dec" => time::Month::December,
        _ => return None,
    };
    let date = time::Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    let mut hms = clock.split(':').map(|n| n.parse::<u8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let t = time::Time::from_hms(h, m, s).ok()?;
    Some(date.with_time(t).assume_utc().unix_timestamp())
}

/// The `STATS` reply, parsed (what tells the engine is healthy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub pools: Option<u32>,
    /// `STATE:` line, e.g. `VALID PRIMARY`.
    pub state: String,
    pub threads_live: Option<u32>,
    pub threads_idle: Option<u32>,
    pub threads_max: Option<u32>,
    pub queue_items: Option<u32>,
    /// Whether the reply ended with `END` (complete).
    pub complete: bool,
}

impl Stats {
    /// clamd serves scans (its state is VALID).
    pub fn valid(&self) -> bool {
        self.state.split_whitespace().next() == Some("VALID")
    }
}

/// Parses a `STATS` reply (`POOLS: 1`, `STATE: VALID PRIMARY`, `THREADS: live 1  idle 0 max
/// 10 …`, `QUEUE: 0 items`, …, `END`). Lines it does not know are skipped.
pub fn parse_stats(reply: &str) -> Stats {
    let mut stats = Stats::default();
    for line in reply.lines() {
        let line = line.trim();
        if line == "END" {
            stats.complete = true;
            continue;
        }
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match key.trim() {
            "POOLS" => stats.pools = value.parse().ok(),
            "STATE" => stats.state = value.to_owned(),
            "THREADS" => {
                let words: Vec<&str> = value.split_whitespace().collect();
                let after = |name: &str| {
                    words.iter().position(|w| *w == name).and_then(|i| words.get(i + 1)).and_then(|v| v.parse().ok())
                };
                stats.threads_live = after("live");
                stats.threads_idle = after("idle");
                stats.threads_max = after("max");
            }
            "QUEUE" => stats.queue_items = value.split_whitespace().next().and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    stats
}

/// Signature files clamd loads besides the signed `.cvd`/`.cld` containers.
const CUSTOM_DB_SUFFIXES: &[&str] = &[
    ".ndb", ".ndu", ".hdb", ".hdu", ".hsb", ".hsu", ".mdb", ".mdu", ".msb", ".msu", ".ldb", ".ldu", ".cdb", ".idb",
    ".fp", ".sfp", ".pdb", ".gdb", ".wdb", ".yar", ".yara", ".cbc", ".ftm", ".crb", ".ign", ".ign2",
];

/// The signature database as the files in `dir` describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// The newest `.cvd`/`.cld` version, or `custom: <file names>` for custom files only.
    pub version: String,
    pub time_unix: Option<i64>,
    /// `"cvd-header"` or `"database-mtime"`.
    pub source: &'static str,
}

/// Reads the databases in `dir`: the signed containers' headers first (their version and
/// signing time), else the custom signature files (named in the version, newest mtime as the
/// time). `None` if the directory holds neither.
pub fn database_info(dir: &Path) -> Result<Option<DatabaseInfo>, AvError> {
    let read_err = |source| AvError::Read { path: dir.display().to_string(), source };
    let mut signed: Option<(u64, i64)> = None;
    let mut custom: Vec<String> = Vec::new();
    let mut custom_time: Option<i64> = None;
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.ends_with(".cvd") || name.ends_with(".cld") {
            let mut header = [0u8; 512];
            let n = std::fs::File::open(&path).and_then(|mut f| read_up_to(&mut f, &mut header)).unwrap_or(0);
            if let Some((version, stime)) = parse_cvd_header(&header[..n]) {
                // The daily database has the highest version; its time is the freshest.
                if signed.is_none_or(|(v, _)| version > v) {
                    signed = Some((version, stime));
                }
            }
        } else if CUSTOM_DB_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            let mtime = entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_secs()).ok());
            custom_time = custom_time.max(mtime);
            custom.push(name);
        }
    }
    if let Some((version, stime)) = signed {
        return Ok(Some(DatabaseInfo { version: version.to_string(), time_unix: Some(stime), source: "cvd-header" }));
    }
    if custom.is_empty() {
        return Ok(None);
    }
    custom.sort();
    Ok(Some(DatabaseInfo {
        version: format!("custom: {}", custom.join(", ")),
        time_unix: custom_time,
        source: "database-mtime",
    }))
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = f.read(&mut buf[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}

/// The version and signing time (Unix seconds) from a `.cvd`/`.cld` header:
/// `ClamAV-VDB:build time:version:signatures:level:md5:dsig:builder:stime`, space padded to 512
/// bytes.
pub fn parse_cvd_header(header: &[u8]) -> Option<(u64, i64)> {
    let text = String::from_utf8_lossy(header);
    let text = text.trim_end_matches(['\0', ' ', '\n']);
    let rest = text.strip_prefix("ClamAV-VDB:")?;
    let fields: Vec<&str> = rest.split(':').collect();
    // The build time field contains a colon-free "26 Nov 2026 07-12 +0000".
    let version = fields.get(1)?.trim().parse().ok()?;
    let stime = fields.get(7)?.trim().parse().ok()?;
    Some((version, stime))
}

/// Whether a process named `name` runs (by `/proc/*/comm`).
fn process_running(name: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else { return false };
    dir.flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .any(|e| std::fs::read_to_string(e.path().join("comm")).map(|comm| comm.trim() == name).unwrap_or(false))
}

/// ClamAV's status from the `clamd.conf` at `conf_path`. Never fails: an unreadable config or a
/// silent socket gives `engine_running: false` with the reason in `detail`.
pub fn collect(conf_path: &Path, timeout: Duration) -> AvStatus {
    let mut status = AvStatus { product: Some(Product::Clamav), ..AvStatus::default() };
    let conf = match std::fs::read_to_string(conf_path) {
        Ok(text) => ClamdConf::parse(&text),
        Err(source) => {
            status.detail = AvError::Read { path: conf_path.display().to_string(), source }.to_string();
            return status;
        }
    };
    status.realtime_protection = Some(conf.on_access_configured() && process_running("clamonacc"));
    let db = database_info(&conf.database_dir());
    let Some(endpoint) = conf.endpoint() else {
        status.detail = AvError::NoSocket { path: conf_path.display().to_string() }.to_string();
        apply_db(&mut status, db);
        return status;
    };
    match exchange(&endpoint, "VERSION", timeout) {
        Ok(reply) => match parse_version(&reply) {
            Some(v) => {
                status.version = v.engine;
                if let Some(version) = v.db_version {
                    status.signature_version = version.to_string();
                    status.signature_time_unix = v.db_time_unix;
                    status.signature_time_source = "version-reply".to_owned();
                }
                status.engine_running = true;
            }
            None => status.detail = format!("clamd at {endpoint} answered VERSION with {:?}", truncate(&reply, 80)),
        },
        Err(error) => status.detail = format!("clamd is not running: {}", error_chain(&error)),
    }
    if status.engine_running {
        match exchange(&endpoint, "STATS", timeout) {
            Ok(reply) => {
                let stats = parse_stats(&reply);
                if !stats.valid() {
                    status.engine_running = false;
                    status.detail = format!("clamd at {endpoint} reports state {:?}", truncate(&stats.state, 40));
                }
            }
            Err(error) => {
                status.engine_running = false;
                status.detail = format!("clamd is not running: {}", error_chain(&error));
            }
        }
    }
    if status.signature_time_unix.is_none() {
        apply_db(&mut status, db);
    }
    if !status.engine_running {
        status.realtime_protection = Some(false);
    }
    status
}

fn apply_db(status: &mut AvStatus, db: Result<Option<DatabaseInfo>, AvError>) {
    match db {
        Ok(Some(info)) => {
            status.signature_version = info.version;
            status.signature_time_unix = info.time_unix;
            status.signature_time_source = info.source.to_owned();
        }
        Ok(None) => {}
        Err(error) if status.detail.is_empty() => status.detail = error_chain(&error),
        Err(_) => {}
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// An error and its sources, `: `-separated.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn clamd_conf_gives_socket_paths_and_on_access_settings() {
        let conf = ClamdConf::parse(
            "# comment\nExample\nLocalSocket /run/clamav/clamd.ctl\nTCPSocket 3310\nTCPAddr 127.0.0.1\n\
             DatabaseDirectory /var/lib/clamav\nLogFile /var/log/clamav/clamav.log\n\
             OnAccessIncludePath /home\nOnAccessIncludePath /srv\nOnAccessPrevention yes\nOnAccessMountPath\n",
        );
        assert_eq!(conf.endpoint(), Some(Endpoint::Unix("/run/clamav/clamd.ctl".into())));
        assert_eq!(conf.on_access_include_paths, vec!["/home", "/srv"]);
        assert!(conf.on_access_prevention);
        assert!(conf.on_access_configured());
        assert_eq!(conf.log_file.as_deref(), Some(Path::new("/var/log/clamav/clamav.log")));

        let tcp = ClamdConf::parse("TCPSocket 3310\n");
        assert_eq!(tcp.endpoint(), Some(Endpoint::Tcp("127.0.0.1".into(), 3310)));
        assert_eq!(ClamdConf::parse("TCPSocket nope\n").endpoint(), None);
        assert!(!ClamdConf::parse("OnAccessPrevention no\n").on_access_configured());
        assert_eq!(ClamdConf::parse("").database_dir(), PathBuf::from("/var/lib/clamav"));
    }

    #[test]
    fn version_replies_with_and_without_database_version() {
        let v = parse_version("ClamAV 1.0.7/27834/Thu Nov 26 08:27:51 2026").unwrap();
        assert_eq!(v.engine, "1.0.7");
        assert_eq!(v.db_version, Some(27834));
        assert_eq!(v.db_time_unix, Some(1_795_681_671));
        let single_digit_day = parse_version("ClamAV 0.103.8/26827/Wed Feb  1 08:21:01 2023").unwrap();
        assert_eq!(single_digit_day.db_time_unix, Some(1_675_239_661));
        // Custom databases only: no version part.
        assert_eq!(
            parse_version("ClamAV 1.4.6"),
            Some(VersionReply { engine: "1.4.6".into(), db_version: None, db_time_unix: None })
        );
        assert_eq!(parse_version("UNKNOWN COMMAND"), None);
        assert_eq!(parse_version("ClamAV "), None);
        assert_eq!(parse_version("ClamAV 1.4.6/x/garbage").unwrap().db_version, None);
    }

    #[test]
    fn stats_reply_as_clamd_1_4_sends_it() {
        // Recorded from clamd 1.4.6 (Debian bookworm) answering nSTATS.
        let reply = "POOLS: 1\n\nSTATE: VALID PRIMARY\nTHREADS: live 1  idle 0 max 10 idle-timeout 30\n\
                     QUEUE: 0 items\n\tSTATS 0.000003 \n\nMEMSTATS: heap N/A mmap N/A used N/A free N/A releasable N/A \
                     pools 1 pools_used 5.882M pools_total 5.964M\nEND";
        let stats = parse_stats(reply);
        assert_eq!(stats.pools, Some(1));
        assert!(stats.valid());
        assert_eq!((stats.threads_live, stats.threads_idle, stats.threads_max), (Some(1), Some(0), Some(10)));
        assert_eq!(stats.queue_items, Some(0));
        assert!(stats.complete);
        let bad = parse_stats("STATE: INVALID\n");
        assert!(!bad.valid());
        assert!(!bad.complete);
        assert_eq!(parse_stats("garbage:::\n::\nTHREADS: live"), Stats { state: String::new(), ..Stats::default() });
    }

    #[test]
    fn cvd_headers_give_version_and_signing_time() {
        let mut header = b"ClamAV-VDB:26 Nov 2026 07-12 +0000:27834:2079321:90:6f1ed7b3c4a2e88c1bd7d1a2b3c4d5e6:S1gn:raynman:1764141120".to_vec();
        header.resize(512, b' ');
        assert_eq!(parse_cvd_header(&header), Some((27834, 1_764_141_120)));
        assert_eq!(parse_cvd_header(b"ClamAV-VDB:26 Nov 2026 07-12 +0000:27834"), None);
        assert_eq!(parse_cvd_header(b"\x1f\x8b garbage"), None);
    }

    #[test]
    fn database_directory_with_custom_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.hdb"), "x").unwrap();
        std::fs::write(dir.path().join("a.ndb"), "x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let info = database_info(dir.path()).unwrap().unwrap();
        assert_eq!(info.version, "custom: a.ndb, b.hdb");
        assert_eq!(info.source, "database-mtime");
        assert!(info.time_unix.is_some());
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(database_info(empty.path()).unwrap(), None);
        assert!(database_info(&empty.path().join("missing")).is_err());
    }

    #[test]
    fn a_socket_nobody_listens_on_is_engine_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "LocalSocket {}\nDatabaseDirectory {}\n",
                dir.path().join("none.sock").display(),
                dir.path().display()
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("t.ndb"), "Sig:0:*:41414141\n").unwrap();
        let status = collect(&conf, Duration::from_millis(200));
        assert_eq!(status.product, Some(Product::Clamav));
        assert!(!status.engine_running);
        assert!(
            status.detail.starts_with("clamd is not running: cannot connect to clamd at unix:"),
            "{}",
            status.detail
        );
        assert_eq!(status.signature_version, "custom: t.ndb");
        assert_eq!(status.realtime_protection, Some(false));
    }

    #[test]
    fn a_listener_that_never_answers_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let started = std::time::Instant::now();
        let error =
            exchange(&Endpoint::Tcp("127.0.0.1".into(), port), "VERSION", Duration::from_millis(200)).unwrap_err();
        assert!(matches!(error, AvError::Exchange { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
    }

    #[test]
    fn an_endless_reply_is_cut_at_the_limit() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let junk = vec![b'x'; 8192];
            for _ in 0..20 {
                if s.write_all(&junk).is_err() {
                    break;
                }
            }
        });
        let error = exchange(&Endpoint::Tcp("127.0.0.1".into(), port), "STATS", Duration::from_secs(2)).unwrap_err();
        assert!(matches!(error, AvError::TooLong { .. }), "{error}");
        let _ = server.join();
    }
}
