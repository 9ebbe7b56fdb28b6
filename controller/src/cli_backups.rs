//! `mangrove backup …`: plans, runs (waiting, with progress), restore points, verification and
//! restores.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cli::{emit, rows_of, s, table, urlencode};
use crate::client::Client;

/// Longest the CLI waits for one run.
const WAIT: Duration = Duration::from_secs(6 * 3600);

/// `backup plans`.
pub fn plans(c: &Client, json_out: bool) -> Result<()> {
    let v = c.get("/api/v1/backups/plans")?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |p| {
            let repos: Vec<String> =
                p["repositories"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
            let r = &p["retention"];
            let problems: Vec<String> = p["problems"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
            let (host, keep) = if p["kind"] == "platform_snapshots" {
                ("(platform)".to_string(), format!("{} per VM", p["keep_last"]))
            } else {
                (s(&p["host"]), format!("{}d/{}w/{}m", r["daily"], r["weekly"], r["monthly"]))
            };
            vec![
                s(&p["system"]),
                s(&p["plan"]),
                host,
                s(&p["schedule"]),
                repos.join(","),
                keep,
                s(&p["rpo"]),
                if problems.is_empty() { s(&p["rule"]) } else { format!("LACKS: {}", problems.join("; ")) },
            ]
        });
        table(&["SYSTEM", "PLAN", "HOST", "SCHEDULE", "REPOSITORIES", "KEEP", "RPO", "RULE"], &rows)
    });
    Ok(())
}

/// Waits for a run to finish, drawing its progress on stderr when `follow`.
pub(crate) fn wait_run(c: &Client, id: &str, follow: bool) -> Result<Value> {
    let started = Instant::now();
    let mut drawn = false;
    loop {
        let v = c.get(&format!("/api/v1/backups/runs/{}", urlencode(id)))?;
        if v["status"] != "running" {
            if drawn {
                eprintln!();
            }
            return Ok(v);
        }
        if follow {
            let p = &v["progress"];
            let pct: f64 =
                p["percent"].as_str().and_then(|x| x.parse().ok()).or_else(|| p["percent"].as_f64()).unwrap_or(0.0);
            let width = 30usize;
            let filled = ((pct / 100.0) * width as f64).round().clamp(0.0, width as f64) as usize;
            eprint!(
                "\r{} {} [{}{}] {:>5.1} % {}",
                s(&v["system"]),
                s(&p["repository"]),
                "#".repeat(filled),
                "-".repeat(width - filled),
                pct,
                s(&v["status"])
            );
            let _ = std::io::stderr().flush();
            drawn = true;
        }
        if started.elapsed() > WAIT {
            bail!("run {id} still running after {} s; see `mangrove backup list`", WAIT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub(crate) fn started_runs(v: &Value) -> Vec<String> {
    v["runs"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["id"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// `backup run SYSTEM [--plan P] [--follow]`: starts every plan (or one) and waits.
pub fn run(c: &Client, system: &str, plan: Option<&str>, follow: bool, json_out: bool) -> Result<()> {
    let v = c.post(&format!("/api/v1/backups/systems/{}/run", urlencode(system)), &json!({"plan": plan}))?;
    let mut out = Vec::new();
    let mut all_ok = true;
    for id in started_runs(&v) {
        let run = wait_run(c, &id, follow && !json_out)?;
        let per_repo = run["result"]["runs"].as_array().cloned().unwrap_or_default();
        // A platform snapshot run reports per VM: where = the platform, what = the VM.
        let per_vm = run["result"]["vms"].as_array().cloned().unwrap_or_default();
        for r in &per_vm {
            let status = if r["error"].is_null() { "ok" } else { "failed" };
            all_ok &= status == "ok";
            out.push(json!({"plan": run["plan"], "repository": r["platform"], "vm": r["vm"],
                            "snapshot_id": r["snapshot"], "deleted": r["deleted"], "status": status,
                            "error": r["error"]}));
        }
        if per_repo.is_empty() && per_vm.is_empty() {
            all_ok = false;
            out.push(json!({"plan": run["plan"], "repository": null, "snapshot_id": null, "status": "failed",
                            "error": run["error"]}));
        }
        for r in per_repo {
            let status = r["status"].as_str().unwrap_or("failed").to_string();
            all_ok &= status == "ok";
            out.push(json!({"plan": run["plan"], "repository": r["repository"], "snapshot_id": r["snapshot_id"],
                            "status": status, "error": r["error"]}));
        }
        all_ok &= run["status"] == "ok";
    }
    let summary = json!({"status": if all_ok { "ok" } else { "failed" }, "runs": out});
    emit(json_out, &summary, |v| {
        let rows = rows_of(&v["runs"], |r| {
            let place = match r["vm"].as_str() {
                Some(vm) => format!("{}/{vm}", s(&r["repository"])),
                None => s(&r["repository"]),
            };
            vec![s(&r["plan"]), place, s(&r["snapshot_id"]), s(&r["status"]), s(&r["error"])]
        });
        format!(
            "{}{system}: {}\n",
            table(&["PLAN", "REPOSITORY OR VM", "SNAPSHOT", "STATUS", "ERROR"], &rows),
            s(&v["status"])
        )
    });
    if !all_ok {
        bail!("backup of {system} failed");
    }
    Ok(())
}

/// `backup list SYSTEM`.
pub fn list(c: &Client, system: &str, json_out: bool) -> Result<()> {
    let v = c.get(&format!("/api/v1/backups/systems/{}/snapshots", urlencode(system)))?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |x| {
            vec![
                s(&x["time"]),
                s(&x["plan"]),
                s(&x["repository"]),
                s(&x["id"]),
                s(&x["bytes_added"]),
                s(&x["verified"]),
            ]
        });
        table(&["TIME", "PLAN", "REPOSITORY", "ID", "BYTES ADDED", "VERIFIED"], &rows)
    });
    Ok(())
}

/// `backup alerts`.
pub fn alerts(c: &Client, json_out: bool) -> Result<()> {
    let v = c.get("/api/v1/backups/alerts")?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |a| vec![s(&a["system"]), s(&a["kind"]), s(&a["since"])]);
        table(&["SYSTEM", "ALERT", "SINCE"], &rows)
    });
    Ok(())
}

/// `backup verify SYSTEM [--restore] [--plan P]`.
pub fn verify(c: &Client, system: &str, restore: bool, plan: Option<&str>, json_out: bool) -> Result<()> {
    let started = Instant::now();
    let v = c.post(
        &format!("/api/v1/backups/systems/{}/verify", urlencode(system)),
        &json!({"restore": restore, "plan": plan}),
    )?;
    let mut runs = Vec::new();
    for id in started_runs(&v) {
        runs.push(wait_run(c, &id, false)?);
    }
    let ok = !runs.is_empty() && runs.iter().all(|r| r["status"] == "ok");
    let summary = if restore {
        let sum = |k: &str| runs.iter().filter_map(|r| r["result"][k].as_u64()).sum::<u64>();
        json!({
            "ok": ok,
            "files_checked": sum("files_checked"),
            "mismatches": sum("mismatches"),
            "duration_seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "snapshots": runs.iter().map(|r| json!({"repository": r["repository"], "snapshot_id": r["snapshot_id"],
                "host": r["host"], "status": r["status"], "error": r["error"],
                "mismatch_examples": r["result"]["mismatch_examples"]})).collect::<Vec<_>>(),
        })
    } else {
        json!({
            "ok": ok,
            "repositories": runs.iter().map(|r| json!({"repository": r["repository"], "ok": r["status"] == "ok",
                "errors": r["result"]["errors"], "error": r["error"]})).collect::<Vec<_>>(),
            "duration_seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        })
    };
    emit(json_out, &summary, |v| {
        if restore {
            format!(
                "{system}: restore {}: {} files checked, {} mismatches in {} s\n",
                if ok { "verified" } else { "FAILED" },
                v["files_checked"],
                v["mismatches"],
                v["duration_seconds"]
            )
        } else {
            let rows = rows_of(&v["repositories"], |r| vec![s(&r["repository"]), s(&r["ok"]), s(&r["error"])]);
            table(&["REPOSITORY", "OK", "ERROR"], &rows)
        }
    });
    if !ok {
        let why =
            runs.iter().find_map(|r| r["error"].as_str().map(str::to_string)).unwrap_or_else(|| "see above".into());
        bail!("verification of {system} failed: {why}");
    }
    Ok(())
}

/// `backup restore SYSTEM --snapshot ID --to HOST:PATH [--force]`.
pub fn restore(c: &Client, system: &str, snapshot: &str, to: &str, force: bool, json_out: bool) -> Result<()> {
    let v = c
        .post(
            &format!("/api/v1/backups/systems/{}/restore", urlencode(system)),
            &json!({"snapshot": snapshot, "to": to, "force": force}),
        )
        .context("restore not started")?;
    let id = started_runs(&v).into_iter().next().context("the controller started no restore")?;
    let run = wait_run(c, &id, !json_out)?;
    emit(json_out, &run, |r| {
        format!("{system}: restore of {} to {to}: {} {}\n", s(&r["snapshot_id"]), s(&r["status"]), s(&r["error"]))
    });
    if run["status"] != "ok" {
        bail!("restore of {system} to {to} failed: {}", s(&run["error"]));
    }
    Ok(())
}
