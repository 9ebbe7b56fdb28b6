//! The capacity history reader against a real Prometheus server (Debian package `prometheus`,
//! which ships `prometheus` and `promtool`): 120 days of hourly synthetic gauges are turned into
//! TSDB blocks with `promtool tsdb create-blocks-from openmetrics`, a server with no scrape
//! targets is started on a free loopback port over them, and the reader's days are compared
//! with the synthetic line.

use std::fmt::Write as _;
use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::capacity::prometheus::{self, PromConfig, PromError};
use crate::store::DailyPoint;

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;
const DAYS: i64 = 120;
const STORAGE_TOTAL: f64 = 20e12;
const STORAGE_START: f64 = 1e12;
/// 8 TB over the 120 days: about 1 % of use a day, so a day's average read for the wrong day
/// misses the 1 % tolerance.
const STORAGE_GROWTH_PER_SEC: f64 = 8e12 / (DAYS * DAY) as f64;
const DR_VCPUS_USED: f64 = 200.0;
const DR_VCPUS_TOTAL: f64 = 512.0;
const INSTALL_HINT: &str = "install the Debian package `prometheus` (apt-get install -y prometheus), \
     which ships both `prometheus` and `promtool`; do not let its service run on port 9090";

fn storage_used_at(t: i64, first_day: i64) -> f64 {
    STORAGE_START + STORAGE_GROWTH_PER_SEC * (t - first_day) as f64
}

/// The path of `name` on PATH; a missing tool fails the test with what to install.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not on PATH: {INSTALL_HINT}"))
}

/// OpenMetrics text of the synthetic history: each family's samples together, times in seconds.
/// `job="old"` is a second controller that reported the DC's storage for the last 10 days.
fn openmetrics(first_day: i64) -> String {
    let hours = || (0..DAYS * 24).map(move |h| first_day + h * HOUR);
    let mut text = String::new();
    text.push_str("# TYPE mangrove_capacity_used_bytes gauge\n");
    for t in hours() {
        let used = storage_used_at(t, first_day);
        writeln!(text, r#"mangrove_capacity_used_bytes{{job="mangrove",site="dc",resource="storage"}} {used} {t}"#)
            .expect("write to a String");
    }
    for t in hours().skip(((DAYS - 10) * 24) as usize) {
        writeln!(text, r#"mangrove_capacity_used_bytes{{job="old",site="dc",resource="storage"}} 5 {t}"#)
            .expect("write to a String");
    }
    text.push_str("# TYPE mangrove_capacity_total_bytes gauge\n");
    for t in hours() {
        writeln!(
            text,
            r#"mangrove_capacity_total_bytes{{job="mangrove",site="dc",resource="storage"}} {STORAGE_TOTAL} {t}"#
        )
        .expect("write to a String");
    }
    text.push_str("# TYPE mangrove_capacity_used_vcpus gauge\n");
    for t in hours() {
        writeln!(text, r#"mangrove_capacity_used_vcpus{{job="mangrove",site="dr"}} {DR_VCPUS_USED} {t}"#)
            .expect("write to a String");
    }
    text.push_str("# TYPE mangrove_capacity_total_vcpus gauge\n");
    for t in hours() {
        writeln!(text, r#"mangrove_capacity_total_vcpus{{job="mangrove",site="dr"}} {DR_VCPUS_TOTAL} {t}"#)
            .expect("write to a String");
    }
    text.push_str("# EOF\n");
    text
}

/// A Prometheus process killed (and reaped) when dropped, also when the test panics.
struct RunningPrometheus {
    child: Child,
    log: PathBuf,
}

impl RunningPrometheus {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

impl Drop for RunningPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_loopback_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

fn run_checked(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}; {INSTALL_HINT}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start_prometheus(dir: &Path, data_dir: &Path, port: u16) -> RunningPrometheus {
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\nscrape_configs: []\n").expect("write prometheus.yml");
    let log = dir.join("prometheus.log");
    let log_file = std::fs::File::create(&log).expect("create the log file");
    let child = Command::new(tool("prometheus"))
        .arg(format!("--storage.tsdb.path={}", data_dir.display()))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=10y")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("clone the log handle"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start prometheus: {e}; {INSTALL_HINT}"));
    RunningPrometheus { child, log }
}

fn wait_ready(prom: &mut RunningPrometheus, port: u16) {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(2))).proxy(None).build().into();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = prom.child.try_wait().expect("poll prometheus") {
            panic!("prometheus exited ({status}) before it was ready:\n{}", prom.log_text());
        }
        if let Ok(mut resp) = agent.get(&format!("http://127.0.0.1:{port}/-/ready")).call() {
            let mut body = String::new();
            let _ = resp.body_mut().as_reader().read_to_string(&mut body);
            if resp.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "prometheus not ready after 90s:\n{}", prom.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn config(url: &str, matchers: Option<&str>) -> PromConfig {
    let mut text = format!("url = {url:?}\ntimeout = \"20s\"\n");
    if let Some(m) = matchers {
        writeln!(text, "matchers = {m:?}").expect("write to a String");
    }
    toml::from_str(&text).expect("a valid [capacity.prometheus] table")
}

fn relative_error(got: f64, want: f64) -> f64 {
    ((got - want) / want).abs()
}

#[test]
fn daily_history_comes_from_a_real_prometheus() {
    let started = Instant::now();
    let promtool = tool("promtool");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs() as i64;
    let today = now.div_euclid(DAY) * DAY;
    // Blocks must lie in the past: the history ends with yesterday's last hour.
    let first_day = today - DAYS * DAY;

    let dir = tempfile::tempdir().expect("temp dir");
    let metrics_file = dir.path().join("history.om.txt");
    let data_dir = dir.path().join("tsdb");
    std::fs::write(&metrics_file, openmetrics(first_day)).expect("write the OpenMetrics file");
    run_checked(
        Command::new(&promtool)
            // The default 2 h blocks make 1440 directories and take minutes to write; 30-day
            // blocks (Prometheus compacts up to 31 days itself) take about a second.
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet", "--max-block-duration=720h"])
            .arg(&metrics_file)
            .arg(&data_dir),
        "promtool tsdb create-blocks-from openmetrics",
    );
    let blocks_built = started.elapsed();

    let port = free_loopback_port();
    let mut prom = start_prometheus(dir.path(), &data_dir, port);
    wait_ready(&mut prom, port);
    let ready = started.elapsed();
    let url = format!("http://127.0.0.1:{port}");
    let cfg = config(&url, Some(r#"{job="mangrove"}"#));

    let version = prometheus::check(&cfg).expect("buildinfo answers");
    assert!(version.chars().next().is_some_and(|c| c.is_ascii_digit()), "version {version:?}");

    let query_started = Instant::now();
    let storage = prometheus::daily_series(&cfg, "dc", "storage", first_day, now).expect("storage history");
    let query_time = query_started.elapsed();
    assert_eq!(storage.len(), DAYS as usize, "one point per day with samples, none for today");
    for (i, point) in storage.iter().enumerate() {
        let day = first_day + i as i64 * DAY;
        assert_eq!(point.day, day, "point {i} is at its UTC day start");
        // The day's samples are at 00:00 .. 23:00, so their average is the line at 11:30.
        let want = storage_used_at(day + 11 * HOUR + HOUR / 2, first_day);
        assert!(relative_error(point.used, want) < 0.01, "day {i}: used {} where the line gives {want}", point.used);
        assert_eq!(point.capacity, Some(STORAGE_TOTAL), "day {i}: capacity");
    }

    let partial =
        prometheus::daily_series(&cfg, "dc", "storage", first_day + 10 * DAY + 5 * HOUR, first_day + 12 * DAY)
            .expect("a partial range");
    let days: Vec<i64> = partial.iter().map(|p| p.day).collect();
    assert_eq!(days, vec![first_day + 10 * DAY, first_day + 11 * DAY, first_day + 12 * DAY]);

    let cpu = prometheus::daily_series(&cfg, "dr", "cpu", first_day, now).expect("cpu history");
    assert_eq!(cpu.len(), DAYS as usize);
    assert!(cpu.iter().all(|p| p.used == DR_VCPUS_USED && p.capacity == Some(DR_VCPUS_TOTAL)), "{:?}", cpu.first());

    let none = prometheus::daily_series(&cfg, "nowhere", "storage", first_day, now).expect("an unknown site");
    assert_eq!(none, Vec::<DailyPoint>::new());
    // Escaping, proven on the real parser: a site name that would close the selector matches
    // nothing instead of adding `or vector(1)` to the query.
    let hostile = prometheus::daily_series(&cfg, "dc\"}[1d]) or vector(1) #", "storage", first_day, now)
        .expect("a hostile site name is just a name");
    assert!(hostile.is_empty(), "{hostile:?}");

    // Without the job matcher the old controller's series matches too: refused, both named.
    let err = prometheus::daily_series(&config(&url, None), "dc", "storage", first_day, now)
        .expect_err("two series for one gauge");
    let text = err.to_string();
    assert!(matches!(err, PromError::Ambiguous { .. }), "{err:?}");
    assert!(text.contains(r#"job="mangrove""#) && text.contains(r#"job="old""#), "{text}");

    // A matcher that is well formed but that Prometheus refuses (a broken regex): its error
    // answer is reported with its type and where it came from.
    let err = prometheus::daily_series(&config(&url, Some(r#"{job=~"("}"#)), "dc", "storage", first_day, now)
        .expect_err("Prometheus refuses the regex");
    let text = err.to_string();
    assert!(matches!(&err, PromError::Api { error_type, .. } if error_type == "bad_data"), "{err:?}");
    assert!(text.contains(&format!("{url}/api/v1/query_range")) && text.contains("job=~"), "{text}");

    let closed_port = free_loopback_port();
    let closed_url = format!("http://127.0.0.1:{closed_port}");
    let err = prometheus::daily_series(&config(&closed_url, None), "dc", "storage", first_day, now)
        .expect_err("nothing listens there");
    assert!(matches!(err, PromError::Unreachable { .. }) && err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains(&format!("{closed_url}/api/v1/query_range")), "{err}");

    // An expression smuggled in through the matchers never reaches a query: the configuration
    // holding it does not parse.
    let refused = toml::from_str::<PromConfig>(&format!(
        "url = {url:?}\nmatchers = '{{job=\"mangrove\"}}[1d]) or vector(1) or avg_over_time(up{{'"
    ))
    .expect_err("an injected expression is refused");
    assert!(refused.to_string().contains("matchers"), "{refused}");

    drop(prom);
    eprintln!(
        "blocks built in {blocks_built:?}, prometheus ready at {ready:?}, 120-day query pair in {query_time:?}, \
         total {:?}",
        started.elapsed()
    );
}
