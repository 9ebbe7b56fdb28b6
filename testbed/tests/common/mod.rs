//! Harness for the end-to-end tests: the built `mangrove` and `mangrove-agent` binaries, a
//! testbed in a temp dir, the CLI driven with `--json`, processes found by their arguments.
#![allow(dead_code)] // each test file uses part of the harness

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A small inventory: one machine of each kind, at both sites.
pub const SMALL_INVENTORY: &str = r#"
province: Test
sites:
  - { name: dc, platform: { kind: vsphere, name: vc }, storage_tb: 10 }
  - { name: dr, platform: { kind: openstack, name: os }, storage_tb: 10 }
hosts:
  - { name: dc-esxi-01, site: dc, role: hypervisor, agent: proxy, cpus: 8, memory_gb: 64 }
  - { name: dr-compute-01, site: dr, role: hypervisor, agent: native, cpus: 8, memory_gb: 64 }
systems:
  - name: web
    title_vi: Cổng
    owner: Sở TTTT
    level: 2
    framework: vn-nd85-tcvn11930
    priority: 2
    rpo: 4h
    rto: 8h
workloads:
  - { name: web-app-01, system: web, site: dc, agent: native, vcpus: 2, memory_gb: 4, disk_gb: 40 }
"#;

/// A built binary of the workspace. The tests need both binaries built first (the README's
/// test command builds them); a missing one fails the test loudly.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(p.exists(), "{} is not built: run `cargo build --workspace --bins` before the tests", p.display());
    p
}

pub struct Testbed {
    pub dir: tempfile::TempDir,
    pub api: String,
    pub agents: String,
    pub enroll: String,
    pub token: String,
    pub up_output: String,
    /// Processes a test started again by hand; reaped when the testbed is dropped.
    relaunched: std::cell::RefCell<Vec<std::process::Child>>,
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run command")
}

impl Testbed {
    /// `mangrove testbed up --detach` in a fresh temp dir, with `inventory` (YAML text) or the
    /// built-in Cà Mau inventory.
    pub fn up(inventory: Option<&str>) -> Testbed {
        Self::up_with_env(inventory, &[])
    }

    /// [`Testbed::up`] with environment variables for the testbed and the controller it starts.
    pub fn up_with_env(inventory: Option<&str>, env: &[(&str, &str)]) -> Testbed {
        let dir = tempfile::Builder::new().prefix("mangrove-e2e-").tempdir().expect("tempdir");
        let mut cmd = Command::new(bin("mangrove"));
        cmd.envs(env.iter().copied());
        cmd.args(["testbed", "up", "--detach", "--dir"]).arg(dir.path());
        if let Some(text) = inventory {
            let inv = dir.path().join("test-inventory.yaml");
            std::fs::write(&inv, text).expect("write inventory");
            cmd.arg("--inventory").arg(&inv);
        }
        // Keep the user's own CLI config out of it.
        cmd.env("MANGROVE_CONFIG", dir.path().join("user-cli.toml"));
        let out = run(&mut cmd);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let mut tb = Testbed {
            dir,
            api: String::new(),
            agents: String::new(),
            enroll: String::new(),
            token: String::new(),
            up_output: text.clone(),
            relaunched: std::cell::RefCell::new(Vec::new()),
        };
        assert!(out.status.success(), "testbed up failed:\n{text}\n{err}");
        for line in text.lines() {
            if let Some((k, v)) = line.split_once(": ") {
                match k {
                    "api" => tb.api = v.trim().into(),
                    "agents" => tb.agents = v.trim().into(),
                    "enroll" => tb.enroll = v.trim().into(),
                    "token" => tb.token = v.trim().into(),
                    _ => {}
                }
            }
        }
        assert!(text.lines().any(|l| l.starts_with("testbed ready: ")), "{text}");
        tb
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn ca(&self) -> PathBuf {
        self.path().join("ca.pem")
    }

    /// `mangrove ARGS` as the admin (or `token`).
    pub fn mg_as(&self, token: &str, args: &[&str]) -> Output {
        run(Command::new(bin("mangrove"))
            .args(args)
            .env("MANGROVE_CONTROLLER", &self.api)
            .env("MANGROVE_TOKEN", token)
            .env("MANGROVE_CA", self.ca())
            .env("MANGROVE_CONFIG", self.path().join("user-cli.toml")))
    }

    pub fn mg(&self, args: &[&str]) -> Output {
        self.mg_as(&self.token, args)
    }

    /// `mangrove ARGS --json`, which must succeed.
    pub fn json(&self, args: &[&str]) -> Value {
        // Before the arguments: after `--` it would belong to the task's command.
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.mg(&a);
        assert!(out.status.success(), "mangrove {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }

    pub fn hosts(&self) -> Vec<Value> {
        self.json(&["hosts", "list"]).as_array().cloned().unwrap_or_default()
    }

    pub fn show(&self, name: &str) -> Value {
        self.json(&["hosts", "show", name])
    }

    /// Polls `hosts list` until `pred` holds; returns the last list, or None on timeout.
    pub fn wait(&self, timeout: Duration, pred: impl Fn(&[Value]) -> bool) -> Option<Vec<Value>> {
        poll_hosts(|| self.mg(&["hosts", "list", "--json"]), timeout, Duration::from_millis(250), pred)
    }

    pub fn all_connected(hs: &[Value]) -> bool {
        !hs.is_empty() && hs.iter().all(|h| h["state"] == "connected")
    }

    /// (pid, argv) of the agent processes of this testbed.
    pub fn agents(&self) -> Vec<(u32, Vec<String>)> {
        testbed::procs::under(self.path())
            .into_iter()
            .filter(|(_, a)| a.first().is_some_and(|p| p.ends_with("mangrove-agent")) && a.iter().any(|x| x == "run"))
            .collect()
    }

    pub fn controller(&self) -> Option<(u32, Vec<String>)> {
        testbed::procs::under(self.path())
            .into_iter()
            .find(|(_, a)| a.first().is_some_and(|p| p.ends_with("mangrove")) && a.iter().any(|x| x == "controller"))
    }

    pub fn agent_of(&self, host: &str) -> (u32, Vec<String>) {
        let dir = self.path().join("agents").join(host).display().to_string();
        self.agents().into_iter().find(|(_, a)| a.contains(&dir)).expect("agent process of host")
    }

    /// Starts `argv` again, detached, logging into the testbed's logs.
    pub fn relaunch(&self, argv: &[String], log: &str) {
        let log = std::fs::File::create(self.path().join("logs").join(log)).expect("log");
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("relaunch");
        self.relaunched.borrow_mut().push(child);
    }

    /// Every host's `reports_stored` equals its `last_seq`: no report missing on the
    /// controller.
    pub fn gaps(&self) -> Vec<String> {
        self.hosts()
            .iter()
            .filter_map(|h| {
                let name = h["name"].as_str()?;
                let a = self.show(name)["agent"].clone();
                (a["reports_stored"] != a["last_seq"]).then(|| format!("{name}: {a}"))
            })
            .collect()
    }

    /// An HTTP client for the testbed's API that trusts its CA.
    pub fn http(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .tls_config(self.tls())
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .new_agent()
    }

    /// TLS settings that trust the testbed's CA and nothing else.
    pub fn tls(&self) -> ureq::tls::TlsConfig {
        let pem = std::fs::read(self.ca()).expect("ca.pem");
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
            .build()
    }

    /// The controller's `/metrics` text.
    pub fn metrics(&self) -> String {
        let mut r = self
            .http()
            .get(format!("{}/metrics", self.api))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .expect("metrics");
        r.body_mut().read_to_string().expect("metrics text")
    }

    /// The value of the first metric line that starts with `line_start` (name and labels).
    pub fn metric(&self, line_start: &str) -> Option<f64> {
        self.metrics().lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    /// GET an API path with `token`; must answer 200 with JSON.
    pub fn api_get(&self, path: &str, token: &str) -> Value {
        let mut r = self
            .http()
            .get(format!("{}{path}", self.api))
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("API reachable");
        assert_eq!(r.status(), 200, "GET {path}");
        r.body_mut().read_json().expect("JSON")
    }

    /// The token of a testbed user from users.txt.
    /// The OpenStack simulator's Keystone URL and admin password, as `testbed up` left them.
    pub fn openstack_admin(&self) -> (String, String) {
        let auth_url = self
            .up_output
            .lines()
            .find_map(|l| l.strip_prefix("openstack: "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("the OpenStack simulator is off:\n{}", self.up_output))
            .to_string();
        let password =
            std::fs::read_to_string(self.path().join("platforms/openstack/admin.secret")).expect("admin password");
        (auth_url, password.trim().to_string())
    }

    pub fn user_token(&self, name: &str) -> String {
        let users = std::fs::read_to_string(self.path().join("users.txt")).expect("users.txt");
        users
            .lines()
            .find_map(|l| {
                let mut p = l.split(' ');
                (p.next() == Some(name)).then(|| p.nth(1).map(str::to_string)).flatten()
            })
            .expect("user in users.txt")
    }

    pub fn agent_status(&self, host: &str) -> Value {
        let out = run(Command::new(bin("mangrove-agent"))
            .args(["status", "--json", "--state-dir"])
            .arg(self.path().join("agents").join(host)));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = run(Command::new(bin("mangrove")).args(["testbed", "down", "--dir"]).arg(self.dir.path()));
        testbed::procs::stop_all(self.dir.path(), Duration::from_secs(5));
        for mut c in self.relaunched.borrow_mut().drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("signal");
}

pub fn wait_exit(pid: u32, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        match stat {
            Err(_) => return true,
            Ok(s) if s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')) => return true,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A container testbed in a temp dir, brought down (containers and networks removed) however
/// the test ends.
pub struct ContainerTestbed {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Drop for ContainerTestbed {
    fn drop(&mut self) {
        let _ = run(Command::new(bin("mangrove")).args(["testbed", "down", "--dir"]).arg(self.dir.path()));
    }
}

impl ContainerTestbed {
    /// `testbed up --hosts containers` on `inventory` (the built-in Cà Mau one if `None`),
    /// expecting `hosts` machines ready.
    pub fn up(inventory: Option<&str>, hosts: usize) -> ContainerTestbed {
        Self::up_with(inventory, hosts, &[])
    }

    /// [`ContainerTestbed::up`] with more arguments for `testbed up` (`--controller-site dr`).
    pub fn up_with(inventory: Option<&str>, hosts: usize, extra: &[&str]) -> ContainerTestbed {
        let dir = tempfile::Builder::new().prefix("mangrove-e2e-ct-").tempdir().expect("tempdir");
        let mut cmd = Command::new(bin("mangrove"));
        cmd.args(["testbed", "up", "--detach", "--hosts", "containers", "--dir"]).arg(dir.path()).args(extra);
        if let Some(text) = inventory {
            let inv = dir.path().join("inventory.yaml");
            std::fs::write(&inv, text).expect("inventory");
            cmd.arg("--inventory").arg(&inv);
        }
        let out = run(cmd.env("MANGROVE_CONFIG", dir.path().join("user-cli.toml")));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let env = vec![("MANGROVE_CONFIG".into(), dir.path().join("cli.toml").display().to_string())];
        // Built before the assertions, so that `down` runs however they end.
        let tb = ContainerTestbed { dir, env };
        assert!(
            out.status.success(),
            "testbed up --hosts containers: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(&format!("testbed ready: {hosts} hosts")), "{text}");
        tb
    }

    pub fn mg(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new(bin("mangrove"));
        c.args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        run(&mut c)
    }

    /// `mangrove ARGS` as the testbed user `name` (users.txt).
    pub fn mg_as_user(&self, name: &str, args: &[&str]) -> std::process::Output {
        let users = std::fs::read_to_string(self.dir.path().join("users.txt")).expect("users.txt");
        let token = users
            .lines()
            .find_map(|l| {
                let mut p = l.split(' ');
                (p.next() == Some(name)).then(|| p.nth(1).map(str::to_string)).flatten()
            })
            .expect("user in users.txt");
        let mut c = Command::new(bin("mangrove"));
        c.args(args).env("MANGROVE_TOKEN", token);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        run(&mut c)
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.mg(&a);
        assert!(out.status.success(), "mangrove {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    }

    pub fn wait(&self, timeout: Duration, pred: impl Fn(&[Value]) -> bool) -> Option<Vec<Value>> {
        poll_hosts(|| self.mg(&["hosts", "list", "--json"]), timeout, Duration::from_millis(500), pred)
    }

    pub fn dir_arg(&self) -> String {
        self.dir.path().display().to_string()
    }
}

/// Runs `list` (a `hosts list --json`) every `every` until its hosts satisfy `pred`; returns
/// them, or None on timeout. A failed call (the API away while a controller restarts) is
/// asked again.
pub fn poll_hosts(
    list: impl Fn() -> Output,
    timeout: Duration,
    every: Duration,
    pred: impl Fn(&[Value]) -> bool,
) -> Option<Vec<Value>> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        let out = list();
        if out.status.success()
            && let Ok(Value::Array(hs)) = serde_json::from_slice::<Value>(&out.stdout)
            && pred(&hs)
        {
            return Some(hs);
        }
        std::thread::sleep(every);
    }
    None
}

/// A host's state in a `hosts list`.
pub fn state_of<'a>(hs: &'a [Value], name: &str) -> &'a str {
    hs.iter().find(|h| h["name"] == name).and_then(|h| h["state"].as_str()).unwrap_or("missing")
}

/// Where the testbed's own logs stand now: a drill's entries are those written after it.
pub struct LogMarks {
    named: u64,
    openstack: u64,
}

impl LogMarks {
    /// The current ends of BIND's log and the OpenStack simulator's log of testbed `dir`.
    pub fn now(dir: &Path) -> LogMarks {
        let len = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
        LogMarks { named: len(named_log(dir)), openstack: len(openstack_log(dir)) }
    }

    /// Checks a finished drill (`drill status --json`) against what the platforms themselves
    /// logged since the marks: every `dr.boot` created its instance exactly once at the
    /// simulator (a boot repeated after a crash must find the instance, never make a second),
    /// and each DNS switch and record clean-up reached BIND at least once and no more often
    /// than the step was attempted.
    pub fn assert_each_step_once(&self, dir: &Path, status: &Value) {
        let since = |p: PathBuf, from: u64| {
            let text = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            String::from_utf8_lossy(&text[usize::try_from(from).unwrap_or(0).min(text.len())..]).into_owned()
        };
        let sim = since(openstack_log(dir), self.openstack);
        let updates = testbed::bind::logged_updates(&since(named_log(dir), self.named));
        let run = status["run"].as_str().expect("run id in the status");
        for st in status["steps"].as_array().into_iter().flatten() {
            let key = st["key"].as_str().unwrap_or_default();
            let attempts = st["attempts"].as_u64().unwrap_or(0) as usize;
            if let Some(wl) = key.strip_prefix("dr.boot:") {
                let name =
                    st["result"]["name"].as_str().unwrap_or_else(|| panic!("{run}: {key} names no instance: {st}"));
                let created =
                    sim.lines().filter(|l| l.contains("server created") && l.contains(&format!("name={name}"))).count();
                assert_eq!(created, 1, "{run}: the simulator created {name} ({wl}) {created} times");
            }
            let kind = if key.starts_with("dns.switch:") {
                "add"
            } else if key.starts_with("cleanup.dns:") {
                "delete-rrset"
            } else {
                continue;
            };
            let field = if kind == "add" { "records" } else { "removed" };
            for rec in st["result"][field].as_array().into_iter().flatten() {
                let fqdn = rec.as_str().and_then(|r| r.split_whitespace().next()).unwrap_or_default();
                // A switch replaces the record set (delete, then add, in one UPDATE, logged
                // together): a delete followed by an add at the name is a switch's, not a
                // clean-up's.
                let n = updates
                    .iter()
                    .enumerate()
                    .filter(|(i, u)| {
                        u.action == kind
                            && u.name == fqdn
                            && (kind == "add"
                                || !updates.get(i + 1).is_some_and(|next| next.action == "add" && next.name == fqdn))
                    })
                    .count();
                assert!(
                    (1..=attempts).contains(&n),
                    "{run}: {key} ({attempts} attempt(s)) reached BIND {n} times for {fqdn}"
                );
            }
        }
    }
}

fn named_log(dir: &Path) -> PathBuf {
    dir.join("bind").join("named.log")
}

fn openstack_log(dir: &Path) -> PathBuf {
    dir.join("logs").join("openstack-sim.log")
}

/// The latest start time of any step of a run's status (RFC 3339 strings sort by time).
pub fn latest_start(v: &Value) -> String {
    v["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["started"].as_str())
        .max()
        .unwrap_or_default()
        .to_string()
}

/// How long after `restarted` the run resumed — a step started after `marker` (the latest
/// start before the kill) or the run ended — asking `drill status` through `mg`; `None` if it
/// did not within 30 s.
pub fn resumed_after(mg: impl Fn(&[&str]) -> Output, run: &str, marker: &str, restarted: Instant) -> Option<Duration> {
    while restarted.elapsed() < Duration::from_secs(30) {
        let o = mg(&["--json", "drill", "status", run]);
        if let Ok(v) = serde_json::from_slice::<Value>(&o.stdout)
            && (latest_start(&v).as_str() > marker || v["state"] != "running")
        {
            return Some(restarted.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}
