//! `mangrove drill …` and `mangrove approvals …`: rehearse and trigger failover, follow a run,
//! approve another operator's failover, and get the drill record.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::cli::{emit, rows_of, s, table, urlencode};
use crate::client::Client;

#[derive(Debug, clap::Subcommand)]
pub enum DrillCmd {
    /// Run every pre-check of a plan and print what each step would do; changes nothing.
    Check {
        plan: String,
        #[arg(long, default_value = "test", value_parser = ["test", "planned", "disaster", "failback"])]
        mode: String,
    },
    /// Start a run: `test` at once; `planned` and `disaster` wait for a second operator's
    /// approval. Prints `run: ID` first and returns, unless `--follow`.
    Start {
        plan: String,
        #[arg(long, default_value = "test", value_parser = ["test", "planned", "disaster", "failback"])]
        mode: String,
        /// Show the groups and steps as they run, until the run ends (exit 1 unless it succeeds).
        #[arg(long)]
        follow: bool,
    },
    /// A run's state and its steps.
    Status { run: String },
    /// Follow a run until it ends.
    Follow { run: String },
    /// Runs, newest first.
    List,
    /// Stop starting new steps (running ones finish).
    Pause { run: String },
    /// Go on after a pause.
    Resume { run: String },
    /// Stop the run; a test run still cleans up.
    Abort { run: String },
    /// Confirm a prompt the run waits on.
    Confirm { run: String, step: String },
    /// Add an operator's note to the run's record.
    Note { run: String, text: String },
    /// The drill record: RTO and RPO per system against targets, steps, who, notes.
    Report {
        run: String,
        #[arg(long, default_value = "html", value_parser = ["html", "json"])]
        format: String,
        #[arg(long, default_value = "vi", value_parser = ["vi", "en"])]
        lang: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ApprovalsCmd {
    /// Requests waiting for a second operator, with what each run will do.
    List,
    /// Approve a request (not your own).
    Approve { id: String },
    /// Refuse a request.
    Refuse { id: String },
}

pub fn drill(cmd: DrillCmd, c: &Client, json_out: bool) -> Result<()> {
    match cmd {
        DrillCmd::Check { plan, mode } => check(c, &plan, &mode, json_out),
        DrillCmd::Start { plan, mode, follow: f } => start(c, &plan, &mode, f, json_out),
        DrillCmd::Status { run } => status(c, &run, json_out),
        DrillCmd::Follow { run } => follow(c, &run, json_out),
        DrillCmd::List => list(c, json_out),
        DrillCmd::Pause { run } => action(c, &run, "pause", json_out),
        DrillCmd::Resume { run } => action(c, &run, "resume", json_out),
        DrillCmd::Abort { run } => action(c, &run, "abort", json_out),
        DrillCmd::Confirm { run, step } => {
            let v =
                c.post(&format!("/api/v1/drills/{}/steps/{}/confirm", urlencode(&run), urlencode(&step)), &json!({}))?;
            emit(json_out, &v, |v| format!("confirmed {} of run {}\n", s(&v["step"]), s(&v["run"])));
            Ok(())
        }
        DrillCmd::Note { run, text } => {
            let v = c.post(&format!("/api/v1/drills/{}/notes", urlencode(&run)), &json!({"text": text}))?;
            emit(json_out, &v, |v| format!("noted at {}\n", s(&v["at"])));
            Ok(())
        }
        DrillCmd::Report { run, format, lang, out } => {
            let bytes =
                c.get_bytes(&format!("/api/v1/drills/{}/report?format={format}&lang={lang}", urlencode(&run)))?;
            crate::cli::write_out(&bytes, out.as_deref())
        }
    }
}

pub fn approvals(cmd: ApprovalsCmd, c: &Client, json_out: bool) -> Result<()> {
    match cmd {
        ApprovalsCmd::List => {
            let v = c.get("/api/v1/approvals")?;
            emit(json_out, &v, |v| {
                let rows = rows_of(v, |a| {
                    vec![
                        s(&a["id"]),
                        s(&a["run"]),
                        s(&a["plan"]),
                        s(&a["mode"]),
                        s(&a["requested_by"]),
                        s(&a["expires_at"]),
                        a["dry_run"].as_array().map_or(0, Vec::len).to_string(),
                    ]
                });
                table(&["ID", "RUN", "PLAN", "MODE", "REQUESTED BY", "EXPIRES AT", "STEPS"], &rows)
            });
            Ok(())
        }
        ApprovalsCmd::Approve { id } | ApprovalsCmd::Refuse { id } if id.is_empty() => {
            bail!("an approval id is needed")
        }
        ApprovalsCmd::Approve { id } => decide(c, &id, "approve", json_out),
        ApprovalsCmd::Refuse { id } => decide(c, &id, "refuse", json_out),
    }
}

fn decide(c: &Client, id: &str, decision: &str, json_out: bool) -> Result<()> {
    let v = c.post(&format!("/api/v1/approvals/{}/{decision}", urlencode(id)), &json!({}))?;
    emit(json_out, &v, |v| format!("run {}: {}\n", s(&v["run"]), s(&v["decision"])));
    Ok(())
}

fn check(c: &Client, plan: &str, mode: &str, json_out: bool) -> Result<()> {
    let v = c.post_long("/api/v1/drills/check", &json!({"plan": plan, "mode": mode}), Duration::from_secs(600))?;
    emit(json_out, &v, |v| {
        let mut out = format!("pre-flight of {} v{} in {} mode\n", s(&v["plan"]), s(&v["version"]), s(&v["mode"]));
        let rows = rows_of(&v["checks"], |c| {
            let detail = match &c["detail"] {
                Value::String(e) => e.clone(),
                other => other.to_string(),
            };
            vec![if c["ok"] == json!(true) { "ok".into() } else { "FAIL".into() }, s(&c["check"]), detail]
        });
        out.push_str(&table(&["", "CHECK", "DETAIL"], &rows));
        out.push_str("\nwhat the run would do:\n");
        for st in v["steps"].as_array().into_iter().flatten() {
            out.push_str(&format!("  G{} {:<34} {}\n", s(&st["group"]), s(&st["key"]), s(&st["does"])));
        }
        if v["needs_approval"] == json!(true) {
            out.push_str("this mode needs a second operator's approval before it starts\n");
        }
        out
    });
    if v["ok"] != json!(true) {
        bail!("pre-checks failed: the run would not start");
    }
    Ok(())
}

fn start(c: &Client, plan: &str, mode: &str, follow_it: bool, json_out: bool) -> Result<()> {
    let v = c.post("/api/v1/drills", &json!({"plan": plan, "mode": mode}))?;
    let run = s(&v["run"]);
    // `run: ID` comes first, whatever follows, so scripts and people can find the run.
    println!("run: {run}");
    let _ = std::io::stdout().flush();
    if json_out && !follow_it {
        emit(true, &v, |_| String::new());
        return Ok(());
    }
    if v["state"] == json!("awaiting_approval") {
        println!(
            "waiting for a second operator: approval {} (expires {}); they run `mangrove approvals approve {}`",
            s(&v["approval"]),
            s(&v["expires_at"]),
            s(&v["approval"])
        );
    } else {
        println!("{} of plan {} v{}: {} steps", s(&v["mode"]), s(&v["plan"]), s(&v["plan_version"]), s(&v["steps"]));
    }
    if follow_it { follow(c, &run, json_out) } else { Ok(()) }
}

/// Prints each step as it changes, with the run's elapsed time, until the run ends.
fn follow(c: &Client, run: &str, json_out: bool) -> Result<()> {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut last_state = String::new();
    loop {
        let v = c.get(&format!("/api/v1/drills/{}", urlencode(run)))?;
        let elapsed = v["elapsed_seconds"].as_f64().unwrap_or(0.0);
        let state = s(&v["state"]);
        if state != last_state && !json_out {
            println!("[{elapsed:>7.1}s] run {run}: {state}");
            last_state = state.clone();
        }
        for st in v["steps"].as_array().into_iter().flatten() {
            let key = s(&st["key"]);
            let now = format!("{}/{}", s(&st["state"]), s(&st["attempts"]));
            if seen.get(&key) == Some(&now) || st["state"] == json!("pending") {
                continue;
            }
            seen.insert(key.clone(), now);
            if json_out {
                continue;
            }
            let took = st["elapsed_seconds"].as_f64().map(|e| format!(" ({e:.1} s)")).unwrap_or_default();
            let mut line = format!("[{elapsed:>7.1}s] G{} {:<36} {}{took}", s(&st["group"]), key, s(&st["state"]));
            if let Some(e) = st["error"].as_str() {
                line.push_str(&format!(": {e}"));
            }
            println!("{line}");
            if let Some(ask) = waiting_for_you(run, st) {
                print!("{ask}");
            }
        }
        if !matches!(state.as_str(), "awaiting_approval" | "running" | "paused" | "aborting") {
            if json_out {
                emit(true, &v, |_| String::new());
            } else {
                println!("run {run} {state} after {elapsed:.1} s; record: mangrove drill report {run}");
            }
            if state != "succeeded" {
                bail!("run {run} ended {state}{}", v["error"].as_str().map(|e| format!(": {e}")).unwrap_or_default());
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn status(c: &Client, run: &str, json_out: bool) -> Result<()> {
    let v = c.get(&format!("/api/v1/drills/{}", urlencode(run)))?;
    emit(json_out, &v, |v| {
        let mut out = format!(
            "run {} ({} of {} v{}): {} after {:.1} s; started by {}, approved by {}\n",
            s(&v["run"]),
            s(&v["mode"]),
            s(&v["plan"]),
            s(&v["plan_version"]),
            s(&v["state"]),
            v["elapsed_seconds"].as_f64().unwrap_or(0.0),
            s(&v["started_by"]),
            s(&v["approved_by"])
        );
        let rows = rows_of(&v["steps"], |st| {
            vec![
                format!("G{}", s(&st["group"])),
                s(&st["key"]),
                s(&st["state"]),
                s(&st["attempts"]),
                st["elapsed_seconds"].as_f64().map_or("-".into(), |e| format!("{e:.1}")),
                st["error"].as_str().unwrap_or("").to_string(),
            ]
        });
        out.push_str(&table(&["GROUP", "STEP", "STATE", "TRIES", "SECONDS", "ERROR"], &rows));
        for st in v["steps"].as_array().into_iter().flatten() {
            out.push_str(&waiting_for_you(&s(&v["run"]), st).unwrap_or_default());
        }
        out
    });
    Ok(())
}

/// For a prompt step the run waits on: what the person is asked, and the command that
/// confirms it.
fn waiting_for_you(run: &str, st: &Value) -> Option<String> {
    (st["state"] == json!("waiting")).then(|| {
        format!(
            "           waiting for you: {}\n           confirm with: mangrove drill confirm {run} {}\n",
            st["result"]["text_vi"].as_str().unwrap_or("-"),
            s(&st["key"])
        )
    })
}

fn list(c: &Client, json_out: bool) -> Result<()> {
    let v = c.get("/api/v1/drills")?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |r| {
            vec![s(&r["run"]), s(&r["plan"]), s(&r["mode"]), s(&r["state"]), s(&r["started_by"]), s(&r["created_at"])]
        });
        table(&["RUN", "PLAN", "MODE", "STATE", "STARTED BY", "CREATED"], &rows)
    });
    Ok(())
}

fn action(c: &Client, run: &str, what: &str, json_out: bool) -> Result<()> {
    let v = c.post(&format!("/api/v1/drills/{}/{what}", urlencode(run)), &json!({}))?;
    emit(json_out, &v, |v| format!("run {}: {}\n", s(&v["run"]), s(&v["action"])));
    Ok(())
}
