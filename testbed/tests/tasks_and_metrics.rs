//! Tasks as an operator runs them from the CLI, Prometheus metrics, certificate renewal.

mod common;

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

#[test]
fn agents_renew_their_certificates_before_they_expire() {
    // A controller run by hand, not through the testbed: certificates living 6 s.
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
    let mut controller = Command::new(bin("mangrove"))
        .args(["controller", "run", "--config"])
        .arg(&cfg)
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
    let mg = |args: &[&str]| {
        run(Command::new(bin("mangrove"))
            .args(args)
            .env("MANGROVE_CONTROLLER", format!("https://127.0.0.1:{}", ports[0]))
            .env("MANGROVE_TOKEN", &admin)
            .env("MANGROVE_CA", dir.path().join("data").join("ca.pem"))
            .env("MANGROVE_CONFIG", dir.path().join("none.toml")))
    };
    let out = mg(&["token", "create", "--role", "agent", "--host", "renewer", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let state = dir.path().join("agent");
    let e = run(Command::new(bin("mangrove-agent"))
        .args(["enroll", "--controller", &format!("127.0.0.1:{}", ports[2]), "--state-dir"])
        .arg(&state)
        .env("MANGROVE_AGENT_TOKEN", token["token"].as_str().expect("token")));
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let first = std::fs::read(state.join("agent.pem")).expect("identity");
    let mut agent = Command::new(bin("mangrove-agent"))
        .args(["run", "--state-dir"])
        .arg(&state)
        .stderr(std::fs::File::create(dir.path().join("agent.log")).expect("log"))
        .spawn()
        .expect("agent");
    std::thread::sleep(Duration::from_secs(14));
    let renewed = std::fs::read(state.join("agent.pem")).expect("identity");
    let show = mg(&["hosts", "show", "renewer", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
    let _ = agent.kill();
    let _ = controller.kill();
    let _ = agent.wait();
    let _ = controller.wait();
    assert_ne!(first, renewed, "the certificate was not renewed");
    // Still connected after its first certificate expired: the renewed one is in use.
    assert_eq!(v["state"], "connected", "{v}");
    let log = std::fs::read_to_string(dir.path().join("controller.log")).expect("log");
    assert!(log.matches("agent certificate renewed").count() >= 2, "{log}");
}
