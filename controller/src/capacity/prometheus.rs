//! Capacity history read from a Prometheus server that scrapes the controller's `/metrics`,
//! so a province that already runs one does not keep the history twice (`[capacity.prometheus]`).
//!
//! Meaning of a point: one per UTC day, the average of that day's samples, as
//! [`CapacityStore::daily_series`](crate::store::CapacityStore::daily_series) gives it. The query
//! `avg_over_time(<gauge>{...}[1d])` is evaluated one millisecond before each day's end, so its
//! window is `[day start, day end)`: Prometheus 3 ranges are open on the left, so the window is
//! exact; Prometheus 2 closes them, which adds a sample stamped exactly 1 ms before midnight.
//! Days without samples have no point, as in the store.
//!
//! Guarantees: nothing but `GET` is sent; label values are escaped; the extra matchers of the
//! configuration are parsed into label matchers and written back out, so they can add nothing
//! else to a query. Several series for one gauge (two controllers scraped under different labels)
//! are refused rather than summed, naming their label sets, so the operator narrows `matchers`.
//!
//! Blocking (ureq): call it from `tokio::task::spawn_blocking`. Idempotent, no state.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Dur;
use crate::store::DailyPoint;

const DAY: i64 = 86_400;
/// Prometheus refuses a range query that would return more points per series than this.
const MAX_POINTS: i64 = 11_000;
/// A runaway answer must not exhaust the controller's memory.
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// `[capacity.prometheus]`: where the history is read when a Prometheus server keeps it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PromConfig {
    /// Base URL, e.g. `http://127.0.0.1:9090` or `https://prom.tinh.vn/prometheus` (a path prefix
    /// is kept). No credentials in it: use `token_file`.
    pub url: String,
    /// PEM bundle of the CAs to trust for an `https` URL instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// File holding a bearer token, read once when the client is built; never logged.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Extra label matchers added to every selector, e.g. `{job="mangrove"}`; only matchers on
    /// labels other than `__name__`, `site` and `resource` are accepted.
    #[serde(default)]
    pub matchers: Option<LabelMatchers>,
    /// Longest wait for one answer (default 10s).
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

fn default_timeout() -> Dur {
    Dur(Duration::from_secs(10))
}

impl PromConfig {
    /// Checks what can be checked without reading files or dialing: the URL's form and that a
    /// CA file goes with `https`.
    pub fn validate(&self) -> Result<(), PromError> {
        check_url(&self.url)?;
        if self.ca_file.is_some() && !self.url.starts_with("https://") {
            return Err(PromError::Config(format!("ca_file is set but url {} is not https", self.url)));
        }
        Ok(())
    }
}

fn check_url(url: &str) -> Result<(), PromError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| PromError::Config(format!("url {url:?} must start with http:// or https://")))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(PromError::Config(format!("url {url:?} has no host")));
    }
    // Credentials in the URL would end up in error messages and logs.
    if authority.contains('@') {
        return Err(PromError::Config("url must not carry credentials; put a bearer token in token_file".into()));
    }
    if rest.contains(['?', '#']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(PromError::Config(format!("url {url:?} must be a plain base URL (no query, fragment or spaces)")));
    }
    Ok(())
}

/// What went wrong asking Prometheus; `url` is the API URL called (it never holds credentials).
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    /// The settings cannot be used (bad URL, unreadable CA or token file, bad matchers).
    #[error("capacity.prometheus: {0}")]
    Config(String),
    /// No gauge is exported for this resource.
    #[error("resource {0:?} has no gauge in Prometheus (known: cpu, memory, storage)")]
    UnknownResource(String),
    /// The asked day range is empty or longer than Prometheus answers in one query.
    #[error("cannot ask Prometheus for the days from {since} to {until}: {detail}")]
    Range { since: i64, until: i64, detail: String },
    /// No connection, or it broke.
    #[error("Prometheus at {url} is unreachable: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// No answer in time.
    #[error("Prometheus at {url} did not answer within {secs}s")]
    Timeout { url: String, secs: u64 },
    /// An HTTP error that is not an API answer (a proxy, a wrong path, missing auth).
    #[error("Prometheus at {url} answered HTTP {status} without an API answer: {body}")]
    Http { url: String, status: u16, body: String },
    /// The API answered `status: error`.
    #[error("Prometheus at {url} refused {query:?}: {error_type}: {error}")]
    Api { url: String, query: String, error_type: String, error: String },
    /// The answer does not have the documented shape.
    #[error("Prometheus at {url} sent an answer that cannot be read: {detail}")]
    Malformed { url: String, detail: String },
    /// More than one series matched; narrow `matchers`.
    #[error(
        "{query:?} on {url} matches {} series where one was expected ({}); narrow capacity.prometheus.matchers",
        label_sets.len(),
        label_sets.join("; ")
    )]
    Ambiguous { url: String, query: String, label_sets: Vec<String> },
}

impl PromError {
    /// Whether asking again later may succeed without a change of configuration.
    pub fn is_retryable(&self) -> bool {
        match self {
            PromError::Unreachable { .. } | PromError::Timeout { .. } => true,
            PromError::Http { status, .. } => *status == 429 || *status >= 500,
            PromError::Api { error_type, .. } => matches!(error_type.as_str(), "timeout" | "unavailable" | "internal"),
            _ => false,
        }
    }
}

/// A client built once from [`PromConfig`]: the CA and token files are read here.
pub struct PromClient {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
    matchers: LabelMatchers,
    timeout_secs: u64,
}

impl fmt::Debug for PromClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PromClient")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("matchers", &self.matchers.to_string())
            .finish()
    }
}

impl PromClient {
    pub fn new(cfg: &PromConfig) -> Result<Self, PromError> {
        cfg.validate()?;
        let timeout_secs = cfg.timeout.0.as_secs().max(1);
        let opts = plugins::http::HttpOptions { ca_file: cfg.ca_file.clone(), insecure: false, timeout_secs };
        let agent = plugins::http::agent(&cfg.url, &opts).map_err(|e| PromError::Config(e.to_string()))?;
        Ok(PromClient {
            agent,
            base: cfg.url.trim_end_matches('/').to_string(),
            token: cfg.token_file.as_deref().map(read_token).transpose()?,
            matchers: cfg.matchers.clone().unwrap_or_default(),
            timeout_secs,
        })
    }

    /// The server's version, from `/api/v1/status/buildinfo`, to log at start-up.
    pub fn check(&self) -> Result<String, PromError> {
        let (url, data) = self.get("/api/v1/status/buildinfo", &[], "buildinfo")?;
        data.get("version")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| PromError::Malformed { url, detail: "buildinfo has no version".into() })
    }

    /// One point per UTC day from the day holding `since` to the day holding `until` (unix
    /// seconds), oldest first; `capacity` is `None` on days without a positive total (the
    /// controller exports an unknown capacity as 0). No data at all is an empty series.
    pub fn daily_series(
        &self,
        site: &str,
        resource: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<DailyPoint>, PromError> {
        let (used_gauge, total_gauge, by_resource) = gauges(resource)?;
        let (start, end) = eval_range(since, until)?;
        let resource_label = by_resource.then_some(resource);
        let used = self.day_averages(&daily_query(used_gauge, site, resource_label, &self.matchers), &start, &end)?;
        let total = self.day_averages(&daily_query(total_gauge, site, resource_label, &self.matchers), &start, &end)?;
        Ok(join_days(&used, &total))
    }

    fn day_averages(&self, query: &str, start: &str, end: &str) -> Result<Vec<(i64, f64)>, PromError> {
        let step = DAY.to_string();
        let params = [("query", query), ("start", start), ("end", end), ("step", step.as_str())];
        let (url, data) = self.get("/api/v1/query_range", &params, query)?;
        single_series(&url, query, data)
    }

    /// Calls the API and returns the URL called (for errors) and the answer's `data`.
    fn get(&self, path: &str, params: &[(&str, &str)], query: &str) -> Result<(String, serde_json::Value), PromError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url);
        for (key, value) in params {
            req = req.query(key, value);
        }
        if let Some(token) = &self.token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        let mut resp = req.call().map_err(|e| self.transport_error(&url, e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .map_err(|e| self.transport_error(&url, e))?;
        let data = api_data(&url, query, status, &body)?;
        Ok((url, data))
    }

    fn transport_error(&self, url: &str, err: ureq::Error) -> PromError {
        let timed_out = match &err {
            ureq::Error::Timeout(_) => true,
            ureq::Error::Io(e) => matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock),
            _ => false,
        };
        if timed_out {
            PromError::Timeout { url: url.to_string(), secs: self.timeout_secs }
        } else {
            PromError::Unreachable { url: url.to_string(), source: err }
        }
    }
}

/// [`PromClient::daily_series`] with a client built for this call; build a [`PromClient`] once
/// instead where calls repeat, so the token file is read once.
pub fn daily_series(
    cfg: &PromConfig,
    site: &str,
    resource: &str,
    since: i64,
    until: i64,
) -> Result<Vec<DailyPoint>, PromError> {
    PromClient::new(cfg)?.daily_series(site, resource, since, until)
}

/// [`PromClient::check`] with a client built for this call.
pub fn check(cfg: &PromConfig) -> Result<String, PromError> {
    PromClient::new(cfg)?.check()
}

fn read_token(path: &Path) -> Result<String, PromError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PromError::Config(format!("cannot read token_file {}: {e}", path.display())))?;
    let token = text.trim();
    if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(PromError::Config(format!(
            "token_file {} must hold one bearer token (no spaces or line breaks inside)",
            path.display()
        )));
    }
    Ok(token.to_string())
}

/// The used and total gauges of a resource, and whether they carry a `resource` label.
fn gauges(resource: &str) -> Result<(&'static str, &'static str, bool), PromError> {
    match resource {
        "cpu" => Ok(("mangrove_capacity_used_vcpus", "mangrove_capacity_total_vcpus", false)),
        "memory" | "storage" => Ok(("mangrove_capacity_used_bytes", "mangrove_capacity_total_bytes", true)),
        other => Err(PromError::UnknownResource(other.to_string())),
    }
}

/// `start` and `end` of the range query: 1 ms before the end of the first and last day, so each
/// evaluation's `[1d]` window is that day (see the module header).
fn eval_range(since: i64, until: i64) -> Result<(String, String), PromError> {
    let first_day = since.div_euclid(DAY) * DAY;
    let last_day = until.div_euclid(DAY) * DAY;
    let range_error = |detail: String| PromError::Range { since, until, detail };
    if last_day < first_day {
        return Err(range_error("until is before since".into()));
    }
    let days = (last_day - first_day) / DAY + 1;
    if days > MAX_POINTS {
        return Err(range_error(format!("{days} days, Prometheus answers at most {MAX_POINTS} in one query")));
    }
    Ok((format!("{}.999", first_day + DAY - 1), format!("{}.999", last_day + DAY - 1)))
}

fn daily_query(gauge: &str, site: &str, resource: Option<&str>, extra: &LabelMatchers) -> String {
    let mut labels = format!("site=\"{}\"", escape_promql(site));
    if let Some(resource) = resource {
        labels.push_str(&format!(",resource=\"{}\"", escape_promql(resource)));
    }
    for m in &extra.0 {
        labels.push(',');
        labels.push_str(&m.to_string());
    }
    format!("avg_over_time({gauge}{{{labels}}}[1d])")
}

/// The body of a double-quoted PromQL string holding `value`.
fn escape_promql(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Used per day joined with the total of the same day.
fn join_days(used: &[(i64, f64)], total: &[(i64, f64)]) -> Vec<DailyPoint> {
    let totals: BTreeMap<i64, f64> = total.iter().copied().collect();
    used.iter()
        .map(|&(day, used)| DailyPoint { day, used, capacity: totals.get(&day).copied().filter(|c| *c > 0.0) })
        .collect()
}

#[derive(Deserialize)]
struct ApiAnswer {
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Option<Vec<String>>,
}

/// The `data` of an API answer, or the error it reports.
fn api_data(url: &str, query: &str, status: u16, body: &str) -> Result<serde_json::Value, PromError> {
    let answer: ApiAnswer = match serde_json::from_str(body) {
        Ok(a) => a,
        Err(e) if (200..300).contains(&status) => {
            return Err(PromError::Malformed { url: url.into(), detail: format!("not an API answer: {e}") });
        }
        Err(_) => return Err(PromError::Http { url: url.into(), status, body: snippet(body) }),
    };
    for warning in answer.warnings.iter().flatten() {
        tracing::warn!(url, query, warning = warning.as_str(), "Prometheus warns about a capacity query");
    }
    match answer.status.as_str() {
        "success" => answer
            .data
            .ok_or_else(|| PromError::Malformed { url: url.into(), detail: "status success without data".into() }),
        "error" => Err(PromError::Api {
            url: url.into(),
            query: query.into(),
            error_type: answer.error_type.unwrap_or_else(|| "unknown".into()),
            error: answer.error.unwrap_or_default(),
        }),
        other => Err(PromError::Malformed { url: url.into(), detail: format!("unknown status {other:?}") }),
    }
}

fn snippet(body: &str) -> String {
    const MAX_CHARS: usize = 200;
    let flat: String = body.chars().take(MAX_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if body.chars().count() > MAX_CHARS { format!("{}…", flat.trim()) } else { flat.trim().to_string() }
}

#[derive(Deserialize)]
struct Matrix {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// The `(day start, value)` points of the one series in a matrix; none when nothing matched;
/// NaN and infinite values are left out.
fn single_series(url: &str, query: &str, data: serde_json::Value) -> Result<Vec<(i64, f64)>, PromError> {
    let malformed = |detail: String| PromError::Malformed { url: url.into(), detail };
    let matrix: Matrix = serde_json::from_value(data).map_err(|e| malformed(format!("data: {e}")))?;
    if matrix.result_type != "matrix" {
        return Err(malformed(format!("resultType {:?} where a matrix was expected", matrix.result_type)));
    }
    let mut series: Vec<Series> =
        serde_json::from_value(matrix.result).map_err(|e| malformed(format!("matrix result: {e}")))?;
    if series.len() > 1 {
        let label_sets = series.iter().map(|s| label_set(&s.metric)).collect();
        return Err(PromError::Ambiguous { url: url.into(), query: query.into(), label_sets });
    }
    let Some(only) = series.pop() else { return Ok(Vec::new()) };
    let mut points = Vec::with_capacity(only.values.len());
    for (at, text) in only.values {
        let value = f64::from_str(&text).map_err(|_| malformed(format!("sample value {text:?} is not a number")))?;
        if !at.is_finite() {
            return Err(malformed(format!("sample time {at} is not a number")));
        }
        if value.is_finite() {
            // Saturating float-to-int is fine: a finite Prometheus timestamp is far inside i64.
            points.push(((at.floor() as i64).div_euclid(DAY) * DAY, value));
        }
    }
    Ok(points)
}

fn label_set(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_promql(v))).collect();
    format!("{{{}}}", inner.join(","))
}

/// Label matchers from the configuration, e.g. `{job="mangrove", instance=~"ctl-.*"}`: parsed,
/// so only matchers can be spliced into a selector, and written back out canonically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct LabelMatchers(Vec<LabelMatcher>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct LabelMatcher {
    name: String,
    op: &'static str,
    value: String,
}

impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"{}\"", self.name, self.op, escape_promql(&self.value))
    }
}

impl fmt::Display for LabelMatchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner: Vec<String> = self.0.iter().map(LabelMatcher::to_string).collect();
        write!(f, "{{{}}}", inner.join(","))
    }
}

impl From<LabelMatchers> for String {
    fn from(m: LabelMatchers) -> String {
        m.to_string()
    }
}

impl TryFrom<String> for LabelMatchers {
    type Error = PromError;
    fn try_from(s: String) -> Result<Self, PromError> {
        s.parse()
    }
}

impl FromStr for LabelMatchers {
    type Err = PromError;
    fn from_str(s: &str) -> Result<Self, PromError> {
        MatcherParser { chars: s.chars().collect(), pos: 0 }
            .parse()
            .map_err(|why| PromError::Config(format!("matchers {s:?}: {why}; write e.g. {{job=\"mangrove\"}}")))
    }
}

/// Labels the reader sets itself; a matcher on them would change which gauge is read.
const RESERVED_LABELS: [&str; 3] = ["__name__", "site", "resource"];

struct MatcherParser {
    chars: Vec<char>,
    pos: usize,
}

impl MatcherParser {
    fn parse(mut self) -> Result<LabelMatchers, String> {
        self.skip_space();
        self.expect('{')?;
        let mut matchers = Vec::new();
        loop {
            self.skip_space();
            if self.eat('}') {
                break;
            }
            matchers.push(self.matcher()?);
            self.skip_space();
            if self.eat('}') {
                break;
            }
            self.expect(',')?;
        }
        self.skip_space();
        if self.pos < self.chars.len() {
            return Err(format!("unexpected text after '}}' at character {}", self.pos + 1));
        }
        Ok(LabelMatchers(matchers))
    }

    fn matcher(&mut self) -> Result<LabelMatcher, String> {
        let name = self.label_name()?;
        if RESERVED_LABELS.contains(&name.as_str()) {
            return Err(format!("a matcher on {name:?} is not allowed: the reader sets it"));
        }
        self.skip_space();
        let op = self.op()?;
        self.skip_space();
        let value = self.string()?;
        Ok(LabelMatcher { name, op, value })
    }

    fn label_name(&mut self) -> Result<String, String> {
        let start = self.pos;
        while let Some(&c) = self.chars.get(self.pos) {
            let ok = c == '_' || c.is_ascii_alphabetic() || (self.pos > start && c.is_ascii_digit());
            if !ok {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(format!("a label name was expected at character {}", start + 1));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn op(&mut self) -> Result<&'static str, String> {
        for op in ["=~", "!~", "!=", "="] {
            let len = op.chars().count();
            if self.chars.get(self.pos..self.pos + len).is_some_and(|s| s.iter().copied().eq(op.chars())) {
                self.pos += len;
                return Ok(op);
            }
        }
        Err(format!("one of = != =~ !~ was expected at character {}", self.pos + 1))
    }

    /// A PromQL string: double- or single-quoted with the common escapes, or a raw backtick one.
    fn string(&mut self) -> Result<String, String> {
        let start = self.pos;
        let quote = match self.chars.get(self.pos) {
            Some(&q @ ('"' | '\'' | '`')) => q,
            _ => return Err(format!("a quoted value was expected at character {}", start + 1)),
        };
        self.pos += 1;
        let mut value = String::new();
        loop {
            let Some(&c) = self.chars.get(self.pos) else {
                return Err(format!("the value opened at character {} is not closed", start + 1));
            };
            self.pos += 1;
            match c {
                c if c == quote => return Ok(value),
                c if c.is_control() => return Err("control characters are not allowed in a value".into()),
                '\\' if quote != '`' => value.push(self.escape()?),
                c => value.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, String> {
        let c = self.chars.get(self.pos).copied();
        self.pos += 1;
        match c {
            Some('\\') => Ok('\\'),
            Some('"') => Ok('"'),
            Some('\'') => Ok('\''),
            Some('n') => Ok('\n'),
            Some('t') => Ok('\t'),
            Some('r') => Ok('\r'),
            Some(other) => Err(format!("escape \\{other} is not supported (use \\\\ \\\" \\' \\n \\t \\r)")),
            None => Err("the value ends inside an escape".into()),
        }
    }

    fn skip_space(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, want: char) -> bool {
        let found = self.chars.get(self.pos) == Some(&want);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, want: char) -> Result<(), String> {
        if self.eat(want) {
            return Ok(());
        }
        let found = self.chars.get(self.pos).map_or("the end".to_string(), |c| format!("{c:?}"));
        Err(format!("{want:?} was expected at character {}, found {found}", self.pos + 1))
    }
}

// Against a real Prometheus server; in the library's tests, not an integration test, so that
// testing never rebuilds the `mangrove` binary with the test run's features.
#[cfg(test)]
#[path = "prometheus_server_tests.rs"]
mod server_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:9090/api/v1/query_range";
    const Q: &str = "avg_over_time(x[1d])";
    /// 2024-01-01T00:00:00Z.
    const JAN1: i64 = 1_704_067_200;

    fn matrix_body(series: &str) -> String {
        format!(r#"{{"status":"success","data":{{"resultType":"matrix","result":[{series}]}}}}"#)
    }

    fn series_of(body: &str) -> Result<Vec<(i64, f64)>, PromError> {
        api_data(URL, Q, 200, body).and_then(|data| single_series(URL, Q, data))
    }

    #[test]
    fn a_matrix_answer_gives_one_point_per_day_at_the_day_start() {
        let body = matrix_body(&format!(
            r#"{{"metric":{{"site":"dc","resource":"storage"}},"values":[[{}.999,"100"],[{}.999,"1.5e2"]]}}"#,
            JAN1 + DAY - 1,
            JAN1 + 2 * DAY - 1
        ));
        let points = series_of(&body).expect("a good matrix parses");
        assert_eq!(points, vec![(JAN1, 100.0), (JAN1 + DAY, 150.0)]);
    }

    #[test]
    fn nan_and_infinite_values_are_left_out() {
        let body = matrix_body(&format!(
            r#"{{"metric":{{}},"values":[[{a},"NaN"],[{b},"+Inf"],[{c},"-Inf"],[{d},"7"]]}}"#,
            a = JAN1 + 10,
            b = JAN1 + DAY + 10,
            c = JAN1 + 2 * DAY + 10,
            d = JAN1 + 3 * DAY + 10
        ));
        assert_eq!(series_of(&body).expect("parses"), vec![(JAN1 + 3 * DAY, 7.0)]);
    }

    #[test]
    fn no_matching_series_is_an_empty_history() {
        assert_eq!(series_of(&matrix_body("")).expect("parses"), vec![]);
    }

    #[test]
    fn two_series_are_refused_naming_both_label_sets() {
        let body = matrix_body(
            r#"{"metric":{"instance":"ctl-a:8443","site":"dc"},"values":[]},
               {"metric":{"instance":"ctl-b:8443","site":"dc"},"values":[]}"#,
        );
        let err = series_of(&body).expect_err("two series are ambiguous");
        let text = err.to_string();
        assert!(matches!(err, PromError::Ambiguous { .. }), "{err:?}");
        assert!(text.contains(r#"{instance="ctl-a:8443",site="dc"}"#), "{text}");
        assert!(text.contains(r#"{instance="ctl-b:8443",site="dc"}"#), "{text}");
    }

    #[test]
    fn an_error_answer_says_what_and_where() {
        let body =
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:15: parse error"}"#;
        let err = api_data(URL, Q, 400, body).expect_err("an error answer is an error");
        let text = err.to_string();
        assert!(matches!(&err, PromError::Api { error_type, .. } if error_type == "bad_data"), "{err:?}");
        assert!(text.contains(URL) && text.contains("parse error") && text.contains(Q), "{text}");
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_non_api_http_error_keeps_status_and_a_short_body() {
        let body = format!("<html>{}</html>", "x".repeat(1000));
        let err = api_data(URL, Q, 502, &body).expect_err("a proxy error page is an error");
        assert!(matches!(&err, PromError::Http { status: 502, body, .. } if body.chars().count() <= 201), "{err:?}");
        assert!(err.is_retryable());
    }

    #[test]
    fn malformed_answers_are_reported_not_guessed() {
        let cases = [
            ("not json", "garbage"),
            ("vector", r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
            ("bad value", &matrix_body(r#"{"metric":{},"values":[[1,"twelve"]]}"#)),
            ("no data", r#"{"status":"success"}"#),
        ];
        for (name, body) in cases {
            let err = series_of(body).expect_err(name);
            assert!(matches!(err, PromError::Malformed { .. }), "{name}: {err:?}");
        }
    }

    #[test]
    fn used_and_total_join_by_day_and_a_zero_total_is_unknown() {
        let used = [(JAN1, 10.0), (JAN1 + DAY, 11.0), (JAN1 + 2 * DAY, 12.0)];
        let total = [(JAN1, 100.0), (JAN1 + DAY, 0.0)];
        let days = join_days(&used, &total);
        let caps: Vec<Option<f64>> = days.iter().map(|d| d.capacity).collect();
        assert_eq!(caps, vec![Some(100.0), None, None]);
        assert_eq!(days.iter().map(|d| d.day).collect::<Vec<_>>(), vec![JAN1, JAN1 + DAY, JAN1 + 2 * DAY]);
    }

    #[test]
    fn the_range_evaluates_just_before_each_day_end() {
        let (start, end) = eval_range(JAN1 + 3600, JAN1 + 2 * DAY).expect("valid range");
        assert_eq!(start, format!("{}.999", JAN1 + DAY - 1));
        assert_eq!(end, format!("{}.999", JAN1 + 3 * DAY - 1));
        assert!(matches!(eval_range(JAN1 + DAY, JAN1), Err(PromError::Range { .. })));
        assert!(matches!(eval_range(0, 20_000 * DAY), Err(PromError::Range { .. })));
    }

    #[test]
    fn queries_escape_label_values_and_pick_the_gauges() {
        let extra: LabelMatchers = r#"{job="mangrove"}"#.parse().expect("valid");
        assert_eq!(
            daily_query("mangrove_capacity_used_bytes", "dc", Some("storage"), &extra),
            r#"avg_over_time(mangrove_capacity_used_bytes{site="dc",resource="storage",job="mangrove"}[1d])"#
        );
        assert_eq!(
            daily_query("g", "a\"}) or vector(1) #\\", None, &LabelMatchers::default()),
            r#"avg_over_time(g{site="a\"}) or vector(1) #\\"}[1d])"#
        );
        assert_eq!(gauges("cpu").expect("known").0, "mangrove_capacity_used_vcpus");
        assert!(matches!(gauges("vms"), Err(PromError::UnknownResource(_))));
    }

    #[test]
    fn matchers_parse_and_print_canonically() {
        let cases = [
            (r#"{job="mangrove"}"#, r#"{job="mangrove"}"#),
            (r#" { job = 'mangrove' , instance=~`ctl-.*\d` , } "#, r#"{job="mangrove",instance=~"ctl-.*\\d"}"#),
            (r#"{env!="test",zone!~"a\"b"}"#, r#"{env!="test",zone!~"a\"b"}"#),
            ("{}", "{}"),
        ];
        for (input, canonical) in cases {
            let m: LabelMatchers = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(m.to_string(), canonical, "{input}");
        }
    }

    #[test]
    fn matchers_that_are_not_plain_label_matchers_are_refused() {
        let cases = [
            "job=\"mangrove\"",
            "{job=\"mangrove\"} or vector(1)",
            "{job=\"mangrove\"}) or up{",
            "{job=\"a\"} [5m]",
            "{job=~\"a\" or up}",
            "{job}",
            "{job=mangrove}",
            "{job==\"a\"}",
            "{job=\"unterminated}",
            "{1job=\"a\"}",
            "{__name__=\"up\"}",
            "{site=\"dr\"}",
            "{job=\"a\\x41\"}",
            "{job=\"a\nb\"}",
            "{job=\"a\"",
        ];
        for input in cases {
            let err = input.parse::<LabelMatchers>().expect_err(input);
            assert!(matches!(err, PromError::Config(_)), "{input}: {err:?}");
        }
    }

    #[test]
    fn config_refuses_bad_matchers_and_unknown_keys_and_defaults_the_timeout() {
        let good: PromConfig = toml::from_str("url = \"http://127.0.0.1:9090\"\nmatchers = '{job=\"mangrove\"}'")
            .expect("a good config parses");
        assert_eq!(good.timeout, Dur(Duration::from_secs(10)));
        assert_eq!(good.matchers.expect("set").to_string(), r#"{job="mangrove"}"#);
        let bad = toml::from_str::<PromConfig>("url = \"http://x\"\nmatchers = '{job=\"a\"} or vector(1)'")
            .expect_err("an injected expression is refused");
        assert!(bad.to_string().contains("matchers"), "{bad}");
        assert!(toml::from_str::<PromConfig>("url = \"http://x\"\npassword = \"p\"").is_err());
    }

    #[test]
    fn urls_with_credentials_or_odd_forms_are_refused() {
        for url in ["ftp://x", "http://", "http://user:pw@host:9090", "http://h/?q=1", "127.0.0.1:9090"] {
            let cfg = PromConfig {
                url: url.into(),
                ca_file: None,
                token_file: None,
                matchers: None,
                timeout: default_timeout(),
            };
            assert!(matches!(cfg.validate(), Err(PromError::Config(_))), "{url}");
        }
        let cfg = PromConfig {
            url: "http://h:9090".into(),
            ca_file: Some("/ca.pem".into()),
            token_file: None,
            matchers: None,
            timeout: default_timeout(),
        };
        assert!(cfg.validate().is_err(), "a CA file with plain http is a mistake");
    }

    #[test]
    fn the_token_is_read_trimmed_and_never_shown_by_debug() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t-token\n").expect("write token");
        let cfg = PromConfig {
            url: "http://127.0.0.1:9".into(),
            ca_file: None,
            token_file: Some(path.clone()),
            matchers: None,
            timeout: default_timeout(),
        };
        let client = PromClient::new(&cfg).expect("client builds");
        assert_eq!(client.token.as_deref(), Some("s3cr3t-token"));
        assert!(!format!("{client:?}").contains("s3cr3t"));
        std::fs::write(&path, "two words\n").expect("write token");
        assert!(matches!(PromClient::new(&cfg), Err(PromError::Config(_))));
    }
}
