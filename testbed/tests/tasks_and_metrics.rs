//! Tasks as an operator runs them from the CLI, Prometheus metrics, certificate renewal.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use common::{Testbed, bin, run};

#[test]
fn tasks_run_once_return_their_output_and_fail_loudly() {
    let tb = Testbed::up(Some(common::SMALL_INVENTORY));
    tb.wait(Duration::from_secs(30), Testbed::all_connected).expect("connected");

    let v = tb.json(&["tasks", "run", "dr-compute-01", "--", "echo", "xin chào", "Cà Mau"]);
    assert_eq!(v["state"], "exited");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["stdout"], "xin chào Cà Mau\n");
    let id = v["id"].as_str().expect("id").to_string();
    let shown = tb.json(&["tasks", "show", &id]);
    assert_eq!(shown["stdout"], "xin chào Cà Mau\n");
    assert_eq!(shown["created_by"], "admin");

    // The same id twice runs once.
    let marker = tb.path().join("ran-once");
    let script = format!("echo x >> {}", marker.display());
    for _ in 0..2 {
        let v = tb.json(&["tasks", "run", "web-app-01", "--id", "append-once", "--", "sh", "-c", &script]);
        assert_eq!(v["id"], "append-once");
        assert_eq!(v["state"], "exited");
    }
    assert_eq!(std::fs::read_to_string(&marker).expect("marker"), "x\n");
    // Same id, another command: refused.
    let clash = tb.mg(&["tasks", "run", "web-app-01", "--id", "append-once", "--", "true"]);
    assert!(!clash.status.success());
    assert!(String::from_utf8_lossy(&clash.stderr).contains("409"));

    // A failing program, a missing one, a timeout: non-zero exit and a line that says so.
    let f = tb.mg(&["tasks", "run", "web-app-01", "--", "sh", "-c", "exit 3"]);
    assert!(!f.status.success());
    assert!(String::from_utf8_lossy(&f.stderr).contains("exited with 3"), "{}", String::from_utf8_lossy(&f.stderr));
    let m = tb.mg(&["tasks", "run", "web-app-01", "--", "/no/such/program"]);
    assert!(!m.status.success());
    assert!(String::from_utf8_lossy(&m.stderr).contains("No such file"), "{}", String::from_utf8_lossy(&m.stderr));
    let t = tb.mg(&["tasks", "run", "web-app-01", "--timeout", "1s", "--", "sleep", "30"]);
    assert!(!t.status.success());
    assert!(String::from_utf8_lossy(&t.stderr).contains("timed-out"), "{}", String::from_utf8_lossy(&t.stderr));

    // A task for a host whose agent is away waits for it.
    let (pid, argv) = tb.agent_of("dc-esxi-01");
    common::signal(pid, nix::sys::signal::Signal::SIGTERM);
    assert!(common::wait_exit(pid, Duration::from_secs(10)));
    let queued = tb.json(&["tasks", "run", "dc-esxi-01", "--no-wait", "--", "echo", "later"]);
    assert_eq!(queued["state"], "pending");
    tb.relaunch(&argv, "agent-again.log");
    let mut done = serde_json::Value::Null;
    for _ in 0..60 {
        done = tb.json(&["tasks", "show", queued["id"].as_str().expect("id")]);
        if done["finished"] == true {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(done["stdout"], "later\n", "{done}");
}

#[test]
fn metrics_are_prometheus_text_with_hosts_by_site_and_state() {
    let tb = Testbed::up(Some(common::SMALL_INVENTORY));
    tb.wait(Duration::from_secs(30), Testbed::all_connected).expect("connected");
    std::thread::sleep(Duration::from_secs(1));
    let mut r = tb
        .http()
        .get(format!("{}/metrics", tb.api))
        .header("Authorization", &format!("Bearer {}", tb.user_token("planner")))
        .call()
        .expect("metrics");
    assert_eq!(r.status(), 200);
    let text = r.body_mut().read_to_string().expect("body");
    for line in [
        "mangrove_hosts{site=\"dc\",state=\"connected\"} 2",
        "mangrove_hosts{site=\"dr\",state=\"connected\"} 1",
        "mangrove_hosts{site=\"dc\",state=\"down\"} 0",
        "mangrove_agent_sessions 3",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("mangrove_agent_reports_total{kind=\"heartbeat\"}"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "OpenMetrics/Prometheus text must end with # EOF");
}

/// A controller run by hand, not through the testbed, issuing certificates that live 6 s,
/// and one agent enrolled with it (not yet running). Killed on drop.
struct ShortLived {
    dir: tempfile::TempDir,
    api_port: u16,
    admin: String,
    controller: std::process::Child,
    state: std::path::PathBuf,
}

impl Drop for ShortLived {
    fn drop(&mut self) {
        let _ = self.controller.kill();
        let _ = self.controller.wait();
    }
}

impl ShortLived {
    fn start(host: &str) -> ShortLived {
        ShortLived::start_skewed(host, None)
    }

    /// As [`ShortLived::start`], the agent enrolling with its clock `clock` off (faketime).
    fn start_skewed(host: &str, clock: Option<&str>) -> ShortLived {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = testbed::layout::free_ports(3).expect("ports");
        let cfg = dir.path().join("controller.toml");
        std::fs::write(
            &cfg,
            format!(
                "data_dir = \"data\"\n[listen]\napi = \"127.0.0.1:{}\"\nagents = \"127.0.0.1:{}\"\nenroll = \"127.0.0.1:{}\"\n\
                 [agents]\ncert_ttl = \"6s\"\n",
                ports[0], ports[1], ports[2]
            ),
        )
        .expect("config");
        let log = std::fs::File::create(dir.path().join("controller.log")).expect("log");
        let controller = Command::new(bin("mangrove"))
            .args(["controller", "run", "--config"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("controller");
        let token_file = dir.path().join("data").join("admin.token");
        for _ in 0..100 {
            if token_file.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let admin = std::fs::read_to_string(&token_file).expect("admin token").trim().to_string();
        let state = dir.path().join("agent");
        let tb = ShortLived { dir, api_port: ports[0], admin, controller, state };
        let out = tb.mg(&["token", "create", "--role", "agent", "--host", host, "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let token: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let e = run(agent_command(clock)
            .args(["enroll", "--controller", &format!("127.0.0.1:{}", ports[2]), "--state-dir"])
            .arg(&tb.state)
            .env("MANGROVE_AGENT_TOKEN", token["token"].as_str().expect("token")));
        assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
        tb
    }

    fn mg(&self, args: &[&str]) -> std::process::Output {
        run(Command::new(bin("mangrove"))
            .args(args)
            .env("MANGROVE_CONTROLLER", format!("https://127.0.0.1:{}", self.api_port))
            .env("MANGROVE_TOKEN", &self.admin)
            .env("MANGROVE_CA", self.dir.path().join("data").join("ca.pem"))
            .env("MANGROVE_CONFIG", self.dir.path().join("none.toml")))
    }

    /// Runs the agent (under `faketime OFFSET` if given) for `secs` seconds; returns its log.
    fn run_agent(&self, clock: Option<&str>, secs: u64) -> String {
        let log_path = self.dir.path().join("agent.log");
        // A group of its own: faketime runs the agent as its child, and both must go (an
        // agent left behind would also hold the test's output open).
        let mut agent = agent_command(clock)
            .args(["run", "--state-dir"])
            .arg(&self.state)
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log_path).expect("log"))
            .spawn()
            .expect("agent (faketime comes from Debian's faketime package)");
        std::thread::sleep(Duration::from_secs(secs));
        let group = nix::unistd::Pid::from_raw(agent.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = agent.wait();
        std::fs::read_to_string(&log_path).expect("agent log")
    }

    fn host(&self, name: &str) -> serde_json::Value {
        let show = self.mg(&["hosts", "show", name, "--json"]);
        serde_json::from_slice(&show.stdout).expect("json")
    }

    fn renewals(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("controller.log"))
            .expect("log")
            .matches("agent certificate renewed")
            .count()
    }
}

/// `mangrove-agent`, under `faketime OFFSET` if given (Debian's faketime package; the test
/// fails if it is missing).
fn agent_command(clock: Option<&str>) -> Command {
    match clock {
        Some(offset) => {
            let mut c = Command::new("faketime");
            c.args(["-f", offset]).arg(bin("mangrove-agent")).env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
            c
        }
        None => Command::new(bin("mangrove-agent")),
    }
}

#[test]
fn agents_renew_their_certificates_before_they_expire() {
    let tb = ShortLived::start("renewer");
    let first = std::fs::read(tb.state.join("agent.pem")).expect("identity");
    let log = tb.run_agent(None, 14);
    let renewed = std::fs::read(tb.state.join("agent.pem")).expect("identity");
    assert_ne!(first, renewed, "the certificate was not renewed: {log}");
    assert!(tb.renewals() >= 2, "{log}");
    let v = tb.host("renewer");
    let a = &v["agent"];
    assert!(a["reports_stored"].as_u64().unwrap_or(0) >= 3, "reports kept arriving over renewals: {v}");
    assert_eq!(a["reports_stored"], a["last_seq"], "{v}");
}

#[test]
fn an_agent_five_minutes_off_enrolls_renews_on_the_controllers_clock_and_says_its_clock_is_off() {
    for (offset, way) in [("+300", "ahead of"), ("-300", "behind")] {
        // It enrolls with its clock off, too.
        let tb = ShortLived::start_skewed("skewed", Some(offset));
        let log = tb.run_agent(Some(offset), 14);
        // 14 s of 6 s certificates: renewed at least twice, on time, not in a loop.
        let n = tb.renewals();
        assert!((2..=6).contains(&n), "{offset}: {n} renewals\n{log}");
        let v = tb.host("skewed");
        let problems = v["problems"].to_string();
        assert!(problems.contains(&format!("s {way} the controller's")), "{offset}: {v}");
        let a = &v["agent"];
        assert!(a["reports_stored"].as_u64().unwrap_or(0) >= 3, "{offset}: reports kept arriving: {v}\n{log}");
        assert_eq!(a["reports_stored"], a["last_seq"], "{offset}: {v}");
    }
}

#[test]
fn a_certificate_that_expired_while_the_host_was_off_asks_for_enrollment() {
    let tb = ShortLived::start("sleeper");
    // The host is off longer than its certificate lives.
    std::thread::sleep(Duration::from_secs(8));
    let log = tb.run_agent(None, 4);
    assert!(log.contains("certificate expired") && log.contains("enroll again"), "{log}");
    assert!(log.contains("mangrove-agent enroll --controller"), "the message says how: {log}");
}
