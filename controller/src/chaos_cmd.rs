//! `mangrove testbed chaos`: seeded faults on a running container testbed while its agents
//! report at a high rate, then heal, drain, and check that the lossless claim held.
//!
//! The agents' own records are read from their state dirs (the outbox's `meta.json`: the
//! numbers each assigned and saw acknowledged, and what it had to drop), the controller's
//! through its API and metrics. The invariants, each printed with its counts:
//! - every number an agent assigned is stored exactly once (assigned = acknowledged = the
//!   controller's last number = the number of reports it holds, per host);
//! - no outbox grew past its bound, and every drop an agent counted reached the controller;
//! - every host is `connected` after heal;
//! - no process panicked (the controller's log and every host's container log);
//! - every planned fault was applied and undone.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use testbed::chaos::{self, Planned};
use testbed::{containers, faults};

use crate::client::{CliConfig, Client};

pub struct ChaosOptions {
    pub dir: PathBuf,
    pub seed: u64,
    pub faults: usize,
    /// Spread of the fault starts; default one second per fault.
    pub duration: Option<Duration>,
    /// Faults applied or undone side by side.
    pub workers: usize,
    /// Command tasks submitted per second while faults run (on top of heartbeats).
    pub task_rate: u32,
}

/// An agent's own record of its outbox.
#[derive(Debug, Clone, Copy, Default)]
struct AgentRecord {
    assigned: u64,
    acked: u64,
    dropped: u64,
}

fn agent_record(state: &Path) -> Result<AgentRecord> {
    let path = state.join("outbox").join("meta.json");
    let v: Value = serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("{}", path.display()))?)
        .with_context(|| format!("{}", path.display()))?;
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    Ok(AgentRecord { assigned: n("last_seq_assigned"), acked: n("last_seq_acked"), dropped: n("dropped") })
}

/// The controller's record of a host.
#[derive(Debug, Clone, Default)]
struct StoreRecord {
    state: String,
    last_seq: u64,
    stored: u64,
    dropped: u64,
}

fn store_record(client: &Client, host: &str) -> Result<StoreRecord> {
    let v = client.get(&format!("/api/v1/hosts/{host}"))?;
    let a = &v["agent"];
    Ok(StoreRecord {
        state: v["state"].as_str().unwrap_or("-").to_string(),
        last_seq: a["last_seq"].as_u64().unwrap_or(0),
        stored: a["reports_stored"].as_u64().unwrap_or(0),
        dropped: a["outbox_dropped"].as_u64().unwrap_or(0),
    })
}

/// Sum of a counter family in Prometheus text.
fn metric_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Entries and bytes in an outbox dir now.
fn outbox_size(state: &Path) -> (u64, u64) {
    let Ok(rd) = std::fs::read_dir(state.join("outbox")) else { return (0, 0) };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".rep"))
        .fold((0, 0), |(n, b), e| (n + 1, b + e.metadata().map(|m| m.len()).unwrap_or(0)))
}

/// The outbox bound of an agent: its `agent.toml`'s `[outbox]`, or the defaults; reports that
/// must not be lost (events, task results) may take twice the bound.
fn outbox_bound(state: &Path) -> (u64, u64) {
    let mut entries = 50_000u64;
    let mut bytes = 64u64 << 20;
    if let Ok(text) = std::fs::read_to_string(state.join("agent.toml"))
        && let Ok(v) = text.parse::<toml::Table>()
        && let Some(o) = v.get("outbox").and_then(|o| o.as_table())
    {
        entries = o.get("max_entries").and_then(|x| x.as_integer()).map(|x| x as u64).unwrap_or(entries);
        bytes = o.get("max_bytes").and_then(|x| x.as_integer()).map(|x| x as u64).unwrap_or(bytes);
    }
    (entries * 2, bytes * 2)
}

/// A queued step: apply planned fault `i`, or undo what applying it did.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Step {
    due: std::cmp::Reverse<Instant>,
    index: usize,
    undo: bool,
}

#[derive(Default)]
struct Outcome {
    applied: BTreeMap<&'static str, u64>,
    errors: Vec<String>,
    in_force: usize,
    most_in_force: usize,
    undone: u64,
}

/// What a planned fault acts on: its host, or the sites (the partition).
fn target(p: &Planned) -> &str {
    p.host.as_deref().unwrap_or("(dc/dr)")
}

/// Runs the schedule with `workers` threads: each step when due, an undo only after its
/// apply finished, and a fault on a target only once the previous fault there was undone
/// (the plan keeps them apart, but a slow `docker stop` may not).
fn execute(dir: &Path, plan: &[Planned], workers: usize) -> Outcome {
    let start = Instant::now();
    let queue: Mutex<BinaryHeap<Step>> = Mutex::new(
        plan.iter()
            .enumerate()
            .map(|(i, p)| Step {
                due: std::cmp::Reverse(start + Duration::from_millis(p.at_ms)),
                index: i,
                undo: false,
            })
            .collect(),
    );
    let wake = Condvar::new();
    let pending = AtomicU64::new(plan.len() as u64);
    let applied: Mutex<HashMap<usize, faults::Fault>> = Mutex::new(HashMap::new());
    // Targets with a fault applied and not yet undone.
    let busy: Mutex<std::collections::HashSet<String>> = Mutex::new(Default::default());
    let outcome = Mutex::new(Outcome::default());
    let report_every = (plan.len() / 10).max(1) as u64;
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| {
                loop {
                    let step = {
                        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                        loop {
                            if pending.load(Ordering::SeqCst) == 0 {
                                return;
                            }
                            let now = Instant::now();
                            match q.peek() {
                                Some(top) if top.due.0 <= now => break q.pop(),
                                Some(top) => {
                                    let wait = top.due.0 - now;
                                    q = wake.wait_timeout(q, wait).unwrap_or_else(|p| p.into_inner()).0;
                                }
                                None => {
                                    q = wake
                                        .wait_timeout(q, Duration::from_millis(200))
                                        .unwrap_or_else(|p| p.into_inner())
                                        .0
                                }
                            }
                        }
                    };
                    let Some(step) = step else { continue };
                    let p = &plan[step.index];
                    if !step.undo && !busy.lock().unwrap_or_else(|p| p.into_inner()).insert(target(p).to_string()) {
                        // The last fault there is not undone yet: try again shortly.
                        queue
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(Step { due: std::cmp::Reverse(Instant::now() + Duration::from_millis(200)), ..step });
                        wake.notify_all();
                        continue;
                    }
                    if step.undo {
                        let f = applied.lock().unwrap_or_else(|p| p.into_inner()).remove(&step.index);
                        let done = guarded(|| f.map(|f| faults::undo(dir, &f)).transpose());
                        busy.lock().unwrap_or_else(|p| p.into_inner()).remove(target(p));
                        let mut o = outcome.lock().unwrap_or_else(|p| p.into_inner());
                        o.in_force -= 1;
                        match done {
                            Ok(_) => o.undone += 1,
                            Err(e) => o.errors.push(format!("undoing fault {} ({}): {e}", p.index, p.action.kind())),
                        }
                        drop(o);
                        finish(&pending, &wake, report_every, plan.len(), start);
                        continue;
                    }
                    let r = guarded(|| chaos::apply(dir, p));
                    if !matches!(r, Ok(Some(_))) {
                        busy.lock().unwrap_or_else(|p| p.into_inner()).remove(target(p));
                    }
                    let mut o = outcome.lock().unwrap_or_else(|p| p.into_inner());
                    match r {
                        Ok(Some(f)) => {
                            *o.applied.entry(p.action.kind()).or_default() += 1;
                            o.in_force += 1;
                            o.most_in_force = o.most_in_force.max(o.in_force);
                            drop(o);
                            applied.lock().unwrap_or_else(|p| p.into_inner()).insert(step.index, f);
                            let due = (step.due.0 + Duration::from_millis(p.hold_ms)).max(Instant::now());
                            queue.lock().unwrap_or_else(|p| p.into_inner()).push(Step {
                                due: std::cmp::Reverse(due),
                                index: step.index,
                                undo: true,
                            });
                            wake.notify_all();
                        }
                        Ok(None) => {
                            *o.applied.entry(p.action.kind()).or_default() += 1;
                            o.undone += 1;
                            drop(o);
                            finish(&pending, &wake, report_every, plan.len(), start);
                        }
                        Err(e) => {
                            o.errors.push(format!(
                                "applying fault {} ({} {}): {e}",
                                p.index,
                                p.action.kind(),
                                p.host.as_deref().unwrap_or("dc/dr")
                            ));
                            drop(o);
                            finish(&pending, &wake, report_every, plan.len(), start);
                        }
                    }
                }
            });
        }
    });
    outcome.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Runs a fault step, turning a panic into an error so that the run still ends and says so.
fn guarded<T>(step: impl FnOnce() -> Result<T, testbed::TestbedError>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("panicked".to_string()),
    }
}

/// One planned fault is over (undone, or failed).
fn finish(pending: &AtomicU64, wake: &Condvar, every: u64, total: usize, start: Instant) {
    let left = pending.fetch_sub(1, Ordering::SeqCst) - 1;
    let done = total as u64 - left;
    if done.is_multiple_of(every) || left == 0 {
        eprintln!("chaos: {done} of {total} faults done ({:.0} s)", start.elapsed().as_secs_f64());
    }
    wake.notify_all();
}

/// Submits command tasks round-robin to the hosts until `stop`; returns how many.
fn task_load(client: &Client, hosts: &[String], rate: u32, stop: &AtomicBool) -> u64 {
    if rate == 0 || hosts.is_empty() {
        return 0;
    }
    let every = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut n = 0u64;
    let mut next = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let host = &hosts[n as usize % hosts.len()];
        let body = json!({"host": host, "program": "echo", "args": [format!("chaos {n}")], "timeout_seconds": 10});
        if client.post("/api/v1/tasks", &body).is_ok() {
            n += 1;
        }
        next += every;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        } else {
            next = Instant::now();
        }
    }
    n
}

/// Where each of the testbed's log files ends now, so that the panic scan reads only what
/// this run wrote.
fn log_ends(dir: &Path) -> HashMap<PathBuf, u64> {
    std::fs::read_dir(dir.join("logs"))
        .map(|rd| rd.flatten().map(|e| (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0))).collect())
        .unwrap_or_default()
}

/// Lines that say a process panicked since the run began (`since`: log ends, and the time
/// for the containers' logs), in the controller's log and the hosts' container logs.
fn panics(dir: &Path, hosts: &[String], since: &HashMap<PathBuf, u64>, since_unix: u64) -> (usize, Vec<String>) {
    let mut found = Vec::new();
    let mut logs = 0;
    let mut scan = |name: &str, text: &str| {
        logs += 1;
        for l in text.lines().filter(|l| l.contains("panicked at")) {
            found.push(format!("{name}: {}", l.trim()));
        }
    };
    if let Ok(rd) = std::fs::read_dir(dir.join("logs")) {
        for e in rd.flatten() {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            let from = since.get(&e.path()).map(|n| *n as usize).filter(|n| *n <= bytes.len()).unwrap_or(0);
            scan(&e.file_name().to_string_lossy(), &String::from_utf8_lossy(&bytes[from..]));
        }
    }
    let since = since_unix.to_string();
    for h in hosts {
        let out = std::process::Command::new("docker")
            .args(["logs", "--since", &since, &containers::container_name(dir, h)])
            .stdin(std::process::Stdio::null())
            .output();
        if let Ok(o) = out {
            let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            scan(h, &text);
        }
    }
    (logs, found)
}

/// The testbed's API client, from the CLI config `up` wrote into its dir.
fn testbed_client(dir: &Path) -> Result<Client> {
    let path = dir.join("cli.toml");
    let cfg: CliConfig =
        CliConfig::load(&path)?.with_context(|| format!("no {}: is a testbed up there?", path.display()))?;
    let url = cfg.controller.with_context(|| format!("{}: no controller", path.display()))?;
    Client::new(&url, cfg.token, cfg.ca.as_deref())
}

pub fn run(opts: ChaosOptions, json_out: bool) -> Result<()> {
    let started = Instant::now();
    let dir = std::fs::canonicalize(&opts.dir).with_context(|| format!("no testbed at {}", opts.dir.display()))?;
    containers::plan_of(&dir).context("chaos needs a container testbed (`mangrove testbed up --hosts containers`)")?;
    if !faults::faults(&dir)?.is_empty() {
        bail!("faults are in force in {}; `mangrove testbed fault heal --dir {}` first", dir.display(), dir.display());
    }
    let client = testbed_client(&dir)?;
    let listed = client.get("/api/v1/hosts")?;
    let hosts: Vec<String> = listed
        .as_array()
        .map(|a| a.iter().filter_map(|h| h["name"].as_str()).map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|h| containers::running(&containers::container_name(&dir, h)))
        .collect();
    if hosts.is_empty() {
        bail!("no host containers are running in {}", dir.display());
    }
    let state = |h: &str| dir.join("agents").join(h);
    let before: HashMap<String, (AgentRecord, StoreRecord)> = hosts
        .iter()
        .map(|h| Ok((h.clone(), (agent_record(&state(h))?, store_record(&client, h)?))))
        .collect::<Result<_>>()?;
    let replayed_before = metric_sum(&client.get_text("/metrics")?, "mangrove_agent_reports_replayed_total");
    let logs_before = log_ends(&dir);
    let started_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);

    let duration = opts.duration.unwrap_or(Duration::from_secs(opts.faults as u64));
    let plan = chaos::plan(opts.seed, &hosts, opts.faults, duration);
    eprintln!(
        "chaos: seed {}, {} faults over {:.0} s on {} hosts, {} tasks/s",
        opts.seed,
        plan.len(),
        duration.as_secs_f64(),
        hosts.len(),
        opts.task_rate
    );

    // Load and outbox sampling run beside the faults.
    let stop = AtomicBool::new(false);
    let largest = Mutex::new((0u64, 0u64, String::new()));
    let (outcome, tasks) = std::thread::scope(|s| {
        let load = s.spawn(|| task_load(&client, &hosts, opts.task_rate, &stop));
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                for h in &hosts {
                    let (n, b) = outbox_size(&state(h));
                    let mut l = largest.lock().unwrap_or_else(|p| p.into_inner());
                    if n > l.0 || b > l.1 {
                        *l = (l.0.max(n), l.1.max(b), h.clone());
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        let outcome = execute(&dir, &plan, opts.workers);
        stop.store(true, Ordering::SeqCst);
        (outcome, load.join().unwrap_or(0))
    });
    let chaos_secs = started.elapsed().as_secs_f64();

    // Whatever is still in force (a failed undo), then drain.
    let leftover = faults::heal(&dir)?;
    eprintln!("chaos: healed; waiting for every host to connect and every outbox to drain");
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut after: HashMap<String, (AgentRecord, StoreRecord)>;
    loop {
        after = HashMap::new();
        for h in &hosts {
            // The API may be away a moment: ask again until the deadline.
            let s = store_record(&client, h).unwrap_or_default();
            after.insert(h.clone(), (agent_record(&state(h)).unwrap_or_default(), s));
        }
        let settled = after.values().all(|(a, s)| {
            s.state == "connected" && a.assigned == a.acked && s.last_seq == a.assigned && s.dropped == a.dropped
        });
        if settled || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    // Saturating: a controller restarted during the run starts its counters again.
    let replayed = metric_sum(&client.get_text("/metrics")?, "mangrove_agent_reports_replayed_total")
        .saturating_sub(replayed_before);

    let mut assigned = 0u64;
    let mut stored = 0u64;
    let mut dropped = 0u64;
    let mut lost = Vec::new();
    let mut uncounted = Vec::new();
    let mut not_connected = Vec::new();
    for h in &hosts {
        let (a0, s0) = &before[h];
        let (a1, s1) = &after[h];
        // Counted from the controller's last number at the start, not the agent's: a report
        // numbered but not yet stored then is one this run had to deliver.
        assigned += a1.assigned.saturating_sub(s0.last_seq);
        stored += s1.stored.saturating_sub(s0.stored);
        dropped += a1.dropped.saturating_sub(a0.dropped);
        if !(a1.assigned == a1.acked && s1.last_seq == a1.assigned && s1.stored == s1.last_seq) {
            lost.push(format!(
                "{h}: assigned {} acked {} controller last {} stored {}",
                a1.assigned, a1.acked, s1.last_seq, s1.stored
            ));
        }
        if s1.dropped != a1.dropped {
            uncounted.push(format!("{h}: agent dropped {}, controller knows {}", a1.dropped, s1.dropped));
        }
        if s1.state != "connected" {
            not_connected.push(format!("{h}: {}", s1.state));
        }
    }
    let (bound_n, bound_b) = hosts.iter().map(|h| outbox_bound(&state(h))).min().unwrap_or((0, 0));
    let (big_n, big_b, big_host) = largest.into_inner().unwrap_or_else(|p| p.into_inner());
    let (logs, panicked) = panics(&dir, &hosts, &logs_before, started_unix);
    let applied_total: u64 = outcome.applied.values().sum();

    let checks = [
        ("exactly once", lost.is_empty(), lost),
        ("drops counted", uncounted.is_empty(), uncounted),
        (
            "outbox bound",
            big_n <= bound_n && big_b <= bound_b,
            vec![format!("{big_host}: {big_n} entries, {big_b} bytes")],
        ),
        ("connected after heal", not_connected.is_empty(), not_connected),
        ("no panics", panicked.is_empty(), panicked),
        ("faults applied and undone", outcome.errors.is_empty() && leftover.is_empty(), {
            let mut e = outcome.errors.clone();
            e.extend(leftover.iter().map(|f| format!("still in force after the run: {}", json!(f))));
            e
        }),
    ];
    let ok = checks.iter().all(|c| c.1);
    let v = json!({
        "seed": opts.seed,
        "faults_planned": plan.len(),
        "faults_applied": outcome.applied,
        "most_faults_at_once": outcome.most_in_force,
        "tasks_submitted": tasks,
        "seconds": (chaos_secs * 10.0).round() / 10.0,
        "reports_assigned": assigned,
        "reports_stored": stored,
        "duplicates_suppressed": replayed,
        "dropped_and_counted": dropped,
        "largest_outbox": {"host": big_host, "entries": big_n, "bytes": big_b, "bound_entries": bound_n, "bound_bytes": bound_b},
        "log_files_scanned": logs,
        "invariants": checks.iter().map(|(name, holds, detail)| json!({
            "name": name, "holds": holds, "detail": if *holds { Vec::new() } else { detail.clone() },
        })).collect::<Vec<_>>(),
        "ok": ok,
    });
    crate::cli::emit(json_out, &v, |_| {
        let mark = |b: bool| if b { "holds" } else { "FAILS" };
        let kinds: Vec<String> = outcome.applied.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let mut out = format!(
            "faults: {applied_total} of {} applied ({}), up to {} at once, over {chaos_secs:.0} s; {tasks} tasks submitted\n",
            plan.len(),
            kinds.join(", "),
            outcome.most_in_force
        );
        out += &format!(
            "exactly once: {} — {assigned} reports assigned, {stored} stored, {replayed} duplicates suppressed\n",
            mark(checks[0].1)
        );
        out += &format!(
            "drops counted: {} — {dropped} dropped and counted by the agents, each count known to the controller\n",
            mark(checks[1].1)
        );
        out += &format!(
            "outbox bound: {} — largest {big_n} entries / {big_b} bytes ({big_host}), bound {bound_n} / {bound_b}\n",
            mark(checks[2].1)
        );
        out += &format!("connected after heal: {} — {} hosts\n", mark(checks[3].1), hosts.len());
        out += &format!("no panics: {} — {logs} logs scanned\n", mark(checks[4].1));
        out += &format!("faults applied and undone: {}\n", mark(checks[5].1));
        for (name, holds, detail) in &checks {
            if !holds {
                for d in detail.iter().take(10) {
                    out += &format!("  {name}: {d}\n");
                }
            }
        }
        out += &format!(
            "chaos seed {}: {} faults, {assigned} reports assigned, {stored} stored, {replayed} duplicates suppressed, \
             {dropped} dropped-and-counted: {}\n",
            opts.seed,
            plan.len(),
            if ok { "all invariants hold" } else { "INVARIANTS FAILED" }
        );
        out
    });
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
