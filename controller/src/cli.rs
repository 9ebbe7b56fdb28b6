//! The `mangrove` commands that talk to a controller through its API: human tables by
//! default, `--json` for scripts (stdout); errors go to stderr as one line.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::client::Client;

/// Prints `v` as JSON, or as the human form `human` renders.
pub fn emit(json_out: bool, v: &Value, human: impl FnOnce(&Value) -> String) {
    if json_out {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
    } else {
        print!("{}", human(v));
    }
}

/// A JSON value as a table cell: strings bare, null as `-`.
pub(crate) fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One table row per element of a JSON array (none when `list` is not an array).
pub(crate) fn rows_of(list: &Value, row: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    list.as_array().map(|a| a.iter().map(row).collect()).unwrap_or_default()
}

/// A plain text table with columns sized to their content.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

pub fn hosts_list(c: &Client, json_out: bool) -> Result<()> {
    let v = c.get("/api/v1/hosts")?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |h| {
            vec![
                s(&h["name"]),
                s(&h["site"]),
                s(&h["kind"]),
                if h["managed"] == json!(true) { "yes".into() } else { "no".into() },
                s(&h["state"]),
                s(&h["last_seen"]),
            ]
        });
        table(&["NAME", "SITE", "KIND", "MANAGED", "STATE", "LAST SEEN"], &rows)
    });
    Ok(())
}

pub fn hosts_show(c: &Client, name: &str, json_out: bool) -> Result<()> {
    let v = c.get(&format!("/api/v1/hosts/{}", urlencode(name)))?;
    emit(json_out, &v, |h| {
        let f = &h["facts"];
        let a = &h["agent"];
        let mut out = String::new();
        for (k, val) in [
            ("name", s(&h["name"])),
            ("site", s(&h["site"])),
            ("kind", s(&h["kind"])),
            ("managed", s(&h["managed"])),
            ("state", s(&h["state"])),
            ("last seen", s(&h["last_seen"])),
            (
                "problems",
                h["problems"].as_array().map(|p| p.iter().map(s).collect::<Vec<_>>().join("; ")).unwrap_or_default(),
            ),
            ("agent version", s(&a["version"])),
            ("reports stored", format!("{} (last seq {})", s(&a["reports_stored"]), s(&a["last_seq"]))),
            ("outbox backlog", s(&a["outbox_backlog"])),
            ("os", format!("{} {}", s(&f["os_name"]), s(&f["os_version"]))),
            ("kernel", s(&f["kernel_release"])),
            ("cpus", s(&f["cpu_count"])),
            (
                "memory",
                f["memory_total_bytes"]
                    .as_u64()
                    .map(|b| format!("{:.1} GiB", b as f64 / 1073741824.0))
                    .unwrap_or("-".into()),
            ),
            ("anti-malware", antivirus_line(&f["antivirus"])),
            ("facts at", s(&h["facts_at"])),
        ] {
            out.push_str(&format!("{k:<16}{val}\n"));
        }
        out
    });
    Ok(())
}

/// `clamav 1.4.6, engine running, signatures custom: a.ndb (2026-11-27T10:00:00Z), 2 threats`.
fn antivirus_line(a: &Value) -> String {
    let Some(product) = a["product"].as_str() else {
        return if a.is_object() { "none found".into() } else { "-".into() };
    };
    let engine = if a["engine_running"] == json!(true) { "engine running" } else { "engine NOT running" };
    let signed =
        a["signature_time_unix"].as_i64().map(|t| crate::app::rfc3339(t.saturating_mul(1000))).unwrap_or("-".into());
    format!(
        "{product} {}, {engine}, signatures {} ({signed}), {} threats",
        s(&a["version"]),
        s(&a["signature_version"]),
        s(&a["threats_detected"])
    )
}

pub fn token_create(
    c: &Client,
    role: &str,
    user: Option<&str>,
    host: Option<&str>,
    ttl: Option<&str>,
    json_out: bool,
) -> Result<()> {
    let v = c.post("/api/v1/tokens", &json!({"role": role, "user": user, "host": host, "ttl": ttl}))?;
    emit(json_out, &v, |v| format!("{}\n", s(&v["token"])));
    if !json_out {
        eprintln!("role {}, expires {}", s(&v["role"]), s(&v["expires_at"]));
    }
    Ok(())
}

pub fn agents_revoke(c: &Client, name: &str, json_out: bool) -> Result<()> {
    let v = c.post(&format!("/api/v1/agents/{}/revoke", urlencode(name)), &json!({}))?;
    emit(json_out, &v, |v| {
        format!(
            "revoked {} certificate(s) of {}{}\n",
            s(&v["certificates_revoked"]),
            s(&v["host"]),
            if v["stream_cut"] == json!(true) { "; its live stream was cut" } else { "" }
        )
    });
    Ok(())
}

pub struct TaskRun<'a> {
    pub host: &'a str,
    pub program: &'a str,
    pub args: &'a [String],
    pub timeout: Duration,
    pub id: Option<&'a str>,
    pub wait: bool,
}

/// Runs a command on a host and, unless told not to, waits for its result.
pub fn tasks_run(c: &Client, t: &TaskRun<'_>, json_out: bool) -> Result<()> {
    let mut v = c.post(
        "/api/v1/tasks",
        &json!({"id": t.id, "host": t.host, "program": t.program, "args": t.args, "timeout_seconds": t.timeout.as_secs().max(1)}),
    )?;
    let id = s(&v["id"]);
    if t.wait {
        // The agent may be offline: wait for its timeout plus time to be delivered.
        let limit = t.timeout + Duration::from_secs(60);
        let start = Instant::now();
        while v["finished"] != json!(true) {
            if start.elapsed() > limit {
                bail!(
                    "task {id} on {}: no result after {}s (state {}); see `mangrove tasks show {id}`",
                    t.host,
                    limit.as_secs(),
                    s(&v["state"])
                );
            }
            std::thread::sleep(Duration::from_millis(300));
            v = c.get(&format!("/api/v1/tasks/{}", urlencode(&id)))?;
        }
    }
    print_task(&v, json_out);
    task_outcome(&v, t.wait)
}

fn print_task(v: &Value, json_out: bool) {
    emit(json_out, v, |v| {
        if v["finished"] != json!(true) {
            return format!("task {} {}\n", s(&v["id"]), s(&v["state"]));
        }
        let mut out = s(&v["stdout"]);
        if v["stdout_truncated"] == json!(true) {
            out.push_str("\n[stdout truncated]\n");
        }
        out
    });
    if !json_out {
        let err = s(&v["stderr"]);
        if err != "-" && !err.is_empty() {
            eprint!("{err}");
        }
    }
}

/// An error when the task did not run to a zero exit.
fn task_outcome(v: &Value, finished_expected: bool) -> Result<()> {
    if !finished_expected {
        return Ok(());
    }
    let state = s(&v["state"]);
    match (state.as_str(), v["exit_code"].as_i64()) {
        ("exited", Some(0)) => Ok(()),
        ("exited", Some(code)) => bail!("task {} on {}: program exited with {code}", s(&v["id"]), s(&v["host"])),
        (other, _) => bail!("task {} on {}: {other}: {}", s(&v["id"]), s(&v["host"]), s(&v["error"])),
    }
}

pub fn tasks_show(c: &Client, id: &str, json_out: bool) -> Result<()> {
    let v = c.get(&format!("/api/v1/tasks/{}", urlencode(id)))?;
    emit(json_out, &v, |v| {
        let mut out = String::new();
        for k in
            ["id", "host", "state", "program", "args", "created_by", "created_at", "finished_at", "exit_code", "error"]
        {
            out.push_str(&format!("{k:<12}{}\n", s(&v[k])));
        }
        out.push_str(&format!("stdout:\n{}\n", s(&v["stdout"])));
        out.push_str(&format!("stderr:\n{}\n", s(&v["stderr"])));
        out
    });
    Ok(())
}

/// Percent-encodes a path segment.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn inventory_check(path: &std::path::Path, json_out: bool) -> Result<()> {
    let inv = inventory::load_file(path)?;
    let machines = inv.machines();
    let with_agent = machines.iter().filter(|m| m.agent != inventory::AgentMode::None).count();
    let v = json!({
        "ok": true,
        "file": path.display().to_string(),
        "province": inv.province,
        "sites": inv.sites.len(),
        "hosts": inv.hosts.len(),
        "systems": inv.systems.len(),
        "workloads": inv.workloads.len(),
        "machines_with_agent": with_agent,
        "video_endpoints": inv.video_endpoints.len(),
        "endpoint_groups": inv.endpoint_groups.len(),
    });
    emit(json_out, &v, |v| {
        format!(
            "{}: ok — {} sites, {} hosts, {} systems, {} workloads, {} machines run an agent, {} video endpoints\n",
            s(&v["file"]),
            v["sites"],
            v["hosts"],
            v["systems"],
            v["workloads"],
            v["machines_with_agent"],
            v["video_endpoints"]
        )
    });
    Ok(())
}

/// Writes `bytes` to `out`, or to stdout when there is none.
pub fn write_out(bytes: &[u8], out: Option<&std::path::Path>) -> Result<()> {
    use std::io::Write;
    match out {
        Some(path) => {
            std::fs::write(path, bytes).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
            Ok(())
        }
        None => {
            std::io::stdout().write_all(bytes)?;
            Ok(())
        }
    }
}
