//! `mangrove testbed up|down`: the one-command Cà Mau testbed, driven through the testbed
//! crate's launcher and this controller's own API.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use testbed::{Layout, User, layout::CLI_MARKER, procs};

use crate::client::{Client, default_config_path};

/// The Cà Mau example inventory, built in so `testbed up` works from any directory.
pub const EMBEDDED_INVENTORY: &str = include_str!("../../inventory/examples/camau.yaml");

/// People the testbed creates: one per role, and a second operator (for approvals that need
/// two people).
const USERS: &[(&str, &str)] = &[
    ("operator", "operator"),
    ("operator2", "operator"),
    ("security", "security"),
    ("planner", "planner"),
    ("auditor", "auditor"),
];

const READY_TIMEOUT: Duration = Duration::from_secs(90);

pub struct UpOptions {
    pub dir: PathBuf,
    pub inventory: Option<PathBuf>,
    pub detach: bool,
}

/// Where the host image's build files are cached: `$XDG_CACHE_HOME/mangrove/image`
/// (`~/.cache/mangrove/image`).
pub fn image_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")).unwrap_or_else(|| PathBuf::from("."))
    });
    base.join("mangrove").join("image")
}

/// `mangrove testbed image build`: the host image for this build's agent.
pub fn image_build(json_out: bool) -> Result<()> {
    let started = Instant::now();
    let spec = testbed::image::ImageSpec {
        cache_dir: image_cache_dir(),
        agent_bin: sibling_binary("mangrove-agent")?,
        mirror: std::env::var("MANGROVE_DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".into()),
    };
    let built = testbed::image::build(&spec, &|m| progress(m))?;
    let v = json!({
        "image": built.tag,
        "base": built.base_tag,
        "base_built": built.base_built,
        "agent_layer_built": built.host_built,
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    crate::cli::emit(json_out, &v, |v| {
        format!(
            "image: {} (base {}; {})\n",
            v["image"].as_str().unwrap_or("-"),
            v["base"].as_str().unwrap_or("-"),
            match (built.base_built, built.host_built) {
                (true, _) => "base and agent layer built",
                (false, true) => "agent layer built on the cached base",
                (false, false) => "cached, nothing to build",
            }
        )
    });
    Ok(())
}

/// `$XDG_STATE_HOME/mangrove/testbed` (`~/.local/state/mangrove/testbed`).
pub fn default_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(|h| Path::new(&h).join(".local").join("state"))
            .unwrap_or_else(|| PathBuf::from("."))
    });
    base.join("mangrove").join("testbed")
}

fn sibling_binary(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find this program's path")?;
    let p = me.with_file_name(name);
    if p.exists() {
        Ok(p)
    } else {
        bail!("{name} not found next to {} — build both binaries with `cargo build --release --bins`", me.display())
    }
}

fn progress(msg: &str) {
    eprintln!("testbed: {msg}");
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
}

pub fn up(opts: UpOptions) -> Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&opts.dir).with_context(|| format!("cannot create {}", opts.dir.display()))?;
    let dir = std::fs::canonicalize(&opts.dir)?;
    if procs::under(&dir).iter().any(|(_, argv)| argv.iter().any(|a| a == "controller")) {
        bail!(
            "a testbed is already running in {}; stop it with `mangrove testbed down --dir {}`",
            dir.display(),
            dir.display()
        );
    }
    let inventory = match &opts.inventory {
        Some(p) => p.clone(),
        None => {
            let p = dir.join("inventory.yaml");
            std::fs::write(&p, EMBEDDED_INVENTORY).with_context(|| format!("cannot write {}", p.display()))?;
            p
        }
    };
    let layout = Layout::prepare(&dir, &inventory)?;
    let mangrove = std::env::current_exe()?;
    let agent_bin = sibling_binary("mangrove-agent")?;

    progress(&format!("starting the controller in {}", dir.display()));
    let ctl = testbed::spawn_detached(
        &mangrove,
        &["controller".into(), "run".into(), "--config".into(), layout.controller_config().display().to_string()],
        &layout.log("controller"),
    )?;
    let admin_token = wait_controller(&layout, ctl.pid)?;
    let admin = Client::new(&layout.api_url(), Some(admin_token.clone()), Some(&layout.controller_ca()))?;
    while !admin.ready() {
        if !alive(ctl.pid) {
            bail!("the controller exited; its log ends:\n{}", tail(&ctl.log, 15));
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!("the controller did not become ready; see {}", ctl.log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut users = vec![User { name: "admin".into(), role: "admin".into(), token: admin_token.clone() }];
    for (name, role) in USERS {
        let v = admin.post("/api/v1/tokens", &json!({"role": role, "user": name}))?;
        users.push(User { name: name.to_string(), role: role.to_string(), token: token_of(&v)? });
    }
    layout.write_users(&users)?;
    let cli = layout.write_cli_config(&admin_token)?;
    install_user_cli_config(&layout, &admin_token);

    let machines = layout.agent_machines();
    progress(&format!("enrolling {} agents", machines.len()));
    let mut enrolling = Vec::new();
    for m in &machines {
        layout.write_agent_config(m)?;
        let state = layout.agent_dir(m.name);
        if state.join("agent.pem").exists() {
            continue; // enrolled on an earlier `up`
        }
        let v = admin.post("/api/v1/tokens", &json!({"role": "agent", "host": m.name, "ttl": "10m"}))?;
        // The token goes in the environment, not in the argument list other users can read.
        let child = Command::new(&agent_bin)
            .args(["enroll", "--controller", &layout.enroll_addr().to_string(), "--state-dir"])
            .arg(&state)
            .env("MANGROVE_AGENT_TOKEN", token_of(&v)?)
            .stdin(std::process::Stdio::null())
            .output_async()?;
        enrolling.push((m.name.to_string(), child));
    }
    for (name, child) in enrolling {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("enrolling {name} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
    }
    progress("starting agents");
    for m in &machines {
        let state = layout.agent_dir(m.name);
        testbed::spawn_detached(
            &agent_bin,
            &["run".into(), "--state-dir".into(), state.display().to_string()],
            &layout.log(&format!("agent-{}", m.name)),
        )?;
    }
    let want: Vec<String> = machines.iter().map(|m| m.name.to_string()).collect();
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let hosts = admin.get("/api/v1/hosts")?;
        let connected = hosts
            .as_array()
            .map(|a| {
                a.iter().filter(|h| h["state"] == "connected" && want.iter().any(|w| h["name"] == w.as_str())).count()
            })
            .unwrap_or(0);
        if connected == want.len() {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {connected} of {} agents connected; logs are in {}", want.len(), dir.join("logs").display());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("api: {}", layout.api_url());
    println!("agents: {}", layout.agents_addr());
    println!("enroll: {}", layout.enroll_addr());
    println!("token: {admin_token}");
    println!("dir: {}", dir.display());
    println!("cli config: {}", cli.display());
    println!("testbed ready: {} hosts", want.len());
    progress(&format!("ready in {:.1} s", started.elapsed().as_secs_f64()));
    if opts.detach {
        return Ok(());
    }
    progress("running; press Ctrl-C to stop");
    wait_for_ctrl_c();
    down(&dir)
}

/// Spawning with piped output without waiting, so enrollments run side by side.
trait OutputAsync {
    fn output_async(&mut self) -> Result<std::process::Child>;
}

impl OutputAsync for Command {
    fn output_async(&mut self) -> Result<std::process::Child> {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| anyhow!("cannot start {:?}: {e}", self.get_program()))
    }
}

fn token_of(v: &Value) -> Result<String> {
    v["token"].as_str().map(str::to_string).ok_or_else(|| anyhow!("controller returned no token"))
}

/// Waits for the controller's first-start files; returns the admin token.
fn wait_controller(layout: &Layout, pid: u32) -> Result<String> {
    let start = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(layout.admin_token_file())
            && layout.controller_ca().exists()
        {
            return Ok(t.trim().to_string());
        }
        if !alive(pid) {
            bail!("the controller exited; its log ends:\n{}", tail(&layout.log("controller"), 15));
        }
        if start.elapsed() > READY_TIMEOUT {
            bail!(
                "the controller wrote no admin token in {}s; see {}",
                READY_TIMEOUT.as_secs(),
                layout.log("controller").display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Points the user's CLI config at this testbed, unless they have a config of their own.
fn install_user_cli_config(layout: &Layout, admin_token: &str) {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let Some(path) = default_config_path(&env) else { return };
    let ours = std::fs::read_to_string(&path).map(|t| t.starts_with(CLI_MARKER)).unwrap_or(true);
    if !ours {
        progress(&format!(
            "left {} alone (not written by a testbed); use MANGROVE_CONFIG={}",
            path.display(),
            layout.dir.join("cli.toml").display()
        ));
        return;
    }
    if let Err(e) = testbed::layout::write_file(&path, &layout.cli_config_text(admin_token), 0o600) {
        progress(&format!("could not write {}: {e}", path.display()));
    }
}

fn wait_for_ctrl_c() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    // Block the signals and wait for one synchronously: no handler, no unsafe code.
    if set.thread_block().is_ok() {
        let _ = set.wait();
    }
}

/// Stops every process of the testbed in `dir` and forgets the user CLI config that points
/// at it.
pub fn down(dir: &Path) -> Result<()> {
    let dir = std::fs::canonicalize(dir).with_context(|| format!("no testbed at {}", dir.display()))?;
    let n = procs::stop_all(&dir, Duration::from_secs(15));
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(path) = default_config_path(&env)
        && std::fs::read_to_string(&path).is_ok_and(|t| t.starts_with(&format!("{CLI_MARKER} {}\n", dir.display())))
    {
        let _ = std::fs::remove_file(&path);
    }
    println!("testbed down: stopped {n} processes in {}", dir.display());
    Ok(())
}
