//! `mangrove platforms …` and `mangrove vms …`: the platform and VM commands.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::cli::{emit, rows_of, s, table, urlencode};
use crate::client::Client;

/// Longest the CLI waits for one platform sync or VM action.
const LONG: Duration = Duration::from_secs(1200);

fn gib(v: &Value) -> String {
    v.as_u64().map(|b| format!("{:.0}", b as f64 / 1073741824.0)).unwrap_or_else(|| "-".into())
}

pub fn platforms_list(c: &Client, json_out: bool) -> Result<()> {
    let v = c.get("/api/v1/platforms")?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |p| {
            vec![
                s(&p["name"]),
                s(&p["kind"]),
                s(&p["site"]),
                s(&p["state"]),
                s(&p["vms"]),
                s(&p["last_sync"]),
                s(&p["endpoint"]),
                p["last_error"].as_str().unwrap_or("").to_string(),
            ]
        });
        table(&["NAME", "KIND", "SITE", "STATE", "VMS", "LAST SYNC", "ENDPOINT", "LAST ERROR"], &rows)
    });
    Ok(())
}

/// Syncs one platform, or every configured one in turn, printing each as it finishes.
/// Fails (exit 1) when any sync failed, after trying them all.
pub fn platforms_sync(c: &Client, name: Option<&str>, json_out: bool) -> Result<()> {
    let names: Vec<String> = match name {
        Some(n) => vec![n.to_string()],
        None => c
            .get("/api/v1/platforms")?
            .as_array()
            .map(|a| a.iter().filter_map(|p| p["name"].as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
    };
    if names.is_empty() {
        bail!("this controller has no platforms configured ([[platforms]] in its config)");
    }
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for (i, n) in names.iter().enumerate() {
        if !json_out {
            eprintln!("[{}/{}] syncing {n} …", i + 1, names.len());
        }
        let started = Instant::now();
        let v = c.post_long(&format!("/api/v1/platforms/{}/sync", urlencode(n)), &json!({}), LONG)?;
        if !json_out {
            if v["ok"] == json!(true) {
                println!(
                    "{n}: {} hosts, {} VMs, {} storage pools, {} changes in {:.1} s ({} API round trips)",
                    s(&v["hosts"]),
                    s(&v["vms"]),
                    s(&v["storage_pools"]),
                    s(&v["changes"]),
                    started.elapsed().as_secs_f64(),
                    s(&v["round_trips"])
                );
            } else {
                println!("{n}: FAILED: {}", s(&v["error"]));
            }
        }
        if v["ok"] != json!(true) {
            failed.push(format!("{n}: {}", s(&v["error"])));
        }
        results.push(v);
    }
    if json_out {
        emit(true, &Value::Array(results), |_| String::new());
    }
    if !failed.is_empty() {
        bail!("sync failed for {}", failed.join("; "));
    }
    Ok(())
}

pub fn platforms_drift(c: &Client, json_out: bool) -> Result<()> {
    let v = c.get("/api/v1/platforms/drift")?;
    emit(json_out, &v, |v| {
        let mut out = String::new();
        let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
        let unassigned = list("unassigned");
        out.push_str(&format!("VMs that belong to no system: {}\n", unassigned.len()));
        let rows: Vec<Vec<String>> =
            unassigned.iter().map(|u| vec![s(&u["name"]), s(&u["platform"]), s(&u["host"])]).collect();
        if !rows.is_empty() {
            out.push_str(&table(&["  NAME", "PLATFORM", "HOST"], &rows.iter().map(|r| indent(r)).collect::<Vec<_>>()));
        }
        let missing = list("missing");
        out.push_str(&format!("\nDeclared workloads that do not exist: {}\n", missing.len()));
        for m in &missing {
            out.push_str(&format!("  {} (site {}, system {})\n", s(&m["name"]), s(&m["site"]), s(&m["system"])));
        }
        let changed = list("changed");
        out.push_str(&format!("\nChanged since the last sync: {}\n", changed.len()));
        for ch in &changed {
            out.push_str(&format!(
                "  {} {}: {} -> {}\n",
                s(&ch["name"]),
                s(&ch["change"]),
                compact(&ch["before"]),
                compact(&ch["after"])
            ));
        }
        let mism = list("mismatched");
        out.push_str(&format!("\nSized differently from the inventory: {}\n", mism.len()));
        for m in &mism {
            out.push_str(&format!(
                "  {}: declared {} vCPU / {} GiB, actual {} vCPU / {} GiB\n",
                s(&m["name"]),
                s(&m["declared"]["vcpus"]),
                gib(&m["declared"]["memory_bytes"]),
                s(&m["actual"]["vcpus"]),
                gib(&m["actual"]["memory_bytes"])
            ));
        }
        out
    });
    Ok(())
}

fn indent(r: &[String]) -> Vec<String> {
    let mut r = r.to_vec();
    if let Some(first) = r.first_mut() {
        *first = format!("  {first}");
    }
    r
}

fn compact(v: &Value) -> String {
    match v {
        Value::Object(m) => m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect::<Vec<_>>().join(" "),
        other => s(other),
    }
}

pub fn vms_list(c: &Client, system: Option<&str>, platform: Option<&str>, json_out: bool) -> Result<()> {
    let mut q = Vec::new();
    if let Some(sys) = system {
        q.push(format!("system={}", urlencode(sys)));
    }
    if let Some(p) = platform {
        q.push(format!("platform={}", urlencode(p)));
    }
    let path = if q.is_empty() { "/api/v1/vms".to_string() } else { format!("/api/v1/vms?{}", q.join("&")) };
    let v = c.get(&path)?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |m| {
            vec![
                s(&m["name"]),
                s(&m["platform"]),
                s(&m["site"]),
                s(&m["host"]),
                s(&m["power_state"]),
                s(&m["vcpus"]),
                gib(&m["memory_bytes"]),
                s(&m["system"]),
            ]
        });
        table(&["NAME", "PLATFORM", "SITE", "HOST", "POWER", "VCPUS", "MEM GIB", "SYSTEM"], &rows)
    });
    Ok(())
}

pub fn vms_show(c: &Client, name: &str, json_out: bool) -> Result<()> {
    let v = c.get(&format!("/api/v1/vms/{}", urlencode(name)))?;
    emit(json_out, &v, |m| {
        let mut out = String::new();
        for (k, val) in [
            ("name", s(&m["name"])),
            ("id", s(&m["id"])),
            ("platform", s(&m["platform"])),
            ("site", s(&m["site"])),
            ("host", s(&m["host"])),
            ("power", s(&m["power_state"])),
            ("vcpus", s(&m["vcpus"])),
            ("memory", format!("{} GiB", gib(&m["memory_bytes"]))),
            ("disk", format!("{} GiB", gib(&m["disk_bytes"]))),
            ("guest os", s(&m["guest_os"])),
            ("system", s(&m["system"])),
            ("tags", compact(&m["tags"])),
            ("first seen", s(&m["first_seen"])),
            ("last seen", s(&m["last_seen"])),
        ] {
            out.push_str(&format!("{k:<12}{val}\n"));
        }
        for h in m["history"].as_array().cloned().unwrap_or_default() {
            out.push_str(&format!(
                "  {} {}: {} -> {}\n",
                s(&h["at"]),
                s(&h["change"]),
                compact(&h["before"]),
                compact(&h["after"])
            ));
        }
        out
    });
    Ok(())
}

fn operation_line(v: &Value) -> String {
    let op = &v["operation"];
    match op["state"].as_str() {
        Some("succeeded") => format!("{}: {} done\n", s(&v["vm"]), s(&op["description"])),
        _ => format!("{}: {} {}: {}\n", s(&v["vm"]), s(&op["description"]), s(&op["state"]), s(&op["message"])),
    }
}

/// Fails when the platform's operation did not succeed.
fn operation_outcome(v: &Value) -> Result<()> {
    let op = &v["operation"];
    if op["state"] == json!("succeeded") {
        Ok(())
    } else {
        bail!("{}: {} {}: {}", s(&v["vm"]), s(&op["description"]), s(&op["state"]), s(&op["message"]))
    }
}

pub fn vms_power(c: &Client, name: &str, action: &str, json_out: bool) -> Result<()> {
    let v = c.post_long(&format!("/api/v1/vms/{}/power", urlencode(name)), &json!({"action": action}), LONG)?;
    emit(json_out, &v, operation_line);
    operation_outcome(&v)
}

pub fn vms_snapshot(c: &Client, name: &str, action: &str, snapshot: Option<&str>, json_out: bool) -> Result<()> {
    let path = format!("/api/v1/vms/{}/snapshots", urlencode(name));
    if action == "list" {
        let v = c.get(&path)?;
        emit(json_out, &v, |v| {
            let rows = rows_of(&v["snapshots"], |sn| {
                vec![
                    s(&sn["id"]),
                    s(&sn["name"]),
                    s(&sn["created"]),
                    if sn["current"] == json!(true) { "yes".into() } else { String::new() },
                ]
            });
            table(&["ID", "NAME", "CREATED", "CURRENT"], &rows)
        });
        return Ok(());
    }
    if !matches!(action, "create" | "revert" | "delete") {
        bail!("unknown snapshot action {action:?}; use create, list, revert or delete");
    }
    let Some(snapshot) = snapshot else {
        bail!("`vms snapshot {name} {action}` needs the snapshot's name (create) or id/name (revert, delete)");
    };
    let v = c.post_long(&path, &json!({"action": action, "snapshot": snapshot}), LONG)?;
    emit(json_out, &v, operation_line);
    operation_outcome(&v)
}
