//! `mangrove capacity …`: forecasts, DR headroom, what-if scenarios, reports, history.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::capacity::whatif::{AddHosts, AddStorage, AddSystem, AddVms, Scenario, Size};
use crate::cli::{emit, rows_of, s, table, urlencode, write_out};
use crate::client::Client;

const GB: f64 = (1u64 << 30) as f64;

/// An amount in the unit people read it in: vCPUs, GB of memory, TB of storage.
fn amount(resource: &str, v: &Value) -> String {
    let Some(x) = v.as_f64() else { return "-".into() };
    match resource {
        "memory" => format!("{:.0} GB", x / GB),
        "storage" => format!("{:.1} TB", x / 1e12),
        "cpu" => format!("{x:.0} vCPU"),
        _ => format!("{x:.0}"),
    }
}

fn days(v: &Value) -> String {
    match v.as_f64() {
        None => "never".into(),
        Some(d) if d <= 0.0 => "now".into(),
        Some(d) if d > 3652.5 => "> 10 y".into(),
        Some(d) => format!("{d:.0} d"),
    }
}

fn percent(used: &Value, capacity: &Value) -> String {
    match (used.as_f64(), capacity.as_f64()) {
        (Some(u), Some(c)) if c > 0.0 => format!("{:.0} %", u / c * 100.0),
        _ => "-".into(),
    }
}

/// `capacity forecast`.
pub fn forecast(c: &Client, json_out: bool) -> Result<()> {
    let v = c.get("/api/v1/capacity/forecast")?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |r| {
            let res = s(&r["resource"]);
            vec![
                s(&r["site"]),
                res.clone(),
                amount(&res, &r["used"]),
                amount(&res, &r["capacity"]),
                percent(&r["used"], &r["capacity"]),
                amount(&res, &r["growth_per_month"]),
                format!("{} ({})", days(&r["days_to_80"]), days(&r["days_to_80_conservative"])),
                format!("{} ({})", days(&r["days_to_100"]), days(&r["days_to_100_conservative"])),
            ]
        });
        table(
            &["SITE", "RESOURCE", "USED", "CAPACITY", "USED%", "GROWTH/MONTH", "80% IN (CONS.)", "100% IN (CONS.)"],
            &rows,
        )
    });
    Ok(())
}

fn amounts(a: &Value) -> String {
    format!(
        "{} / {} / {}",
        amount("cpu", &a["vcpus"]),
        amount("memory", &a["memory_bytes"]),
        amount("storage", &a["storage_bytes"])
    )
}

fn groups_table(groups: &Value) -> String {
    let rows = rows_of(groups, |g| {
        let systems: Vec<String> = g["systems"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
        vec![
            s(&g["priority"]),
            systems.join(","),
            if g["fits"].as_bool() == Some(true) { "yes".into() } else { "NO".into() },
            amounts(&g["need"]),
            amounts(&g["shortfall"]),
        ]
    });
    table(&["PRIORITY", "SYSTEMS", "FITS", "NEED (CPU / MEMORY / STORAGE)", "SHORTFALL"], &rows)
}

/// `capacity headroom [--plan P] [--lose-host H]…`.
pub fn headroom(c: &Client, plan: Option<&str>, lose: &[String], json_out: bool) -> Result<()> {
    let mut q = Vec::new();
    if let Some(p) = plan {
        q.push(format!("plan={}", urlencode(p)));
    }
    if !lose.is_empty() {
        q.push(format!("lose_hosts={}", urlencode(&lose.join(","))));
    }
    let v = c.get(&format!("/api/v1/capacity/headroom?{}", q.join("&")))?;
    emit(json_out, &v, |v| {
        let dr = &v["dr"];
        let mut out = format!(
            "DR site {}: free {} (overcommit {}, buffer {:.0} %)\n",
            s(&dr["site"]),
            amounts(&dr["free"]),
            s(&dr["overcommit"]),
            dr["buffer"].as_f64().unwrap_or(0.0) * 100.0
        );
        out.push_str(&groups_table(&v["groups"]));
        out.push_str(&format!("{}\n", s(&v["summary"])));
        if v["unassigned_vms"].as_u64().unwrap_or(0) > 0 {
            out.push_str(&format!(
                "{} VMs at the primary site belong to no information system and are not counted\n",
                v["unassigned_vms"]
            ));
        }
        out
    });
    Ok(())
}

/// `V,M,D` (vCPUs, memory GB, disk GB).
pub fn parse_size(text: &str) -> Result<Size> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [v, m, d] = parts.as_slice() else {
        bail!("size {text:?} is not VCPUS,MEMORY_GB,DISK_GB (e.g. 4,16,200)");
    };
    let num = |what: &str, x: &str| {
        x.parse::<u64>().with_context(|| format!("size {text:?}: {what} {x:?} is not a whole number"))
    };
    Ok(Size {
        vcpus: u32::try_from(num("vCPUs", v)?).context("too many vCPUs")?,
        memory_gb: num("memory GB", m)?,
        disk_gb: num("disk GB", d)?,
    })
}

/// `CORES,MEMORY_GB`.
fn parse_host_size(text: &str) -> Result<(u32, u64)> {
    let (c, m) =
        text.split_once(',').with_context(|| format!("host size {text:?} is not CORES,MEMORY_GB (e.g. 48,512)"))?;
    let cores =
        c.trim().parse::<u32>().with_context(|| format!("host size {text:?}: cores {c:?} is not a whole number"))?;
    let mem = m
        .trim()
        .parse::<u64>()
        .with_context(|| format!("host size {text:?}: memory {m:?} is not a whole number of GB"))?;
    Ok((cores, mem))
}

/// What `capacity whatif` was asked, as flags.
#[derive(Debug, Default)]
pub struct WhatifFlags<'a> {
    pub site: &'a str,
    pub add_vms: Option<u32>,
    pub vm_size: Option<&'a str>,
    pub add_system: Option<&'a str>,
    pub priority: Option<u8>,
    pub system_size: Option<&'a str>,
    pub lose_hosts: &'a [String],
    pub add_hosts: Option<u32>,
    pub host_size: Option<&'a str>,
    pub add_storage_tb: Option<f64>,
}

pub fn scenario(f: &WhatifFlags<'_>) -> Result<Scenario> {
    let mut s = Scenario { lose_hosts: f.lose_hosts.to_vec(), ..Scenario::default() };
    if let Some(count) = f.add_vms {
        let size = parse_size(f.vm_size.context("--add-vms needs --vm-size VCPUS,MEMORY_GB,DISK_GB")?)?;
        s.add_vms.push(AddVms { site: f.site.to_string(), count, size });
    }
    if let Some(name) = f.add_system {
        let size = parse_size(f.system_size.context("--add-system needs --system-size VCPUS,MEMORY_GB,DISK_GB")?)?;
        let priority = f.priority.context("--add-system needs --priority 1-5")?;
        s.add_systems.push(AddSystem { name: name.to_string(), priority, size });
    }
    if let Some(count) = f.add_hosts {
        let (cores, memory_gb) =
            parse_host_size(f.host_size.context("--add-hosts needs --host-size CORES,MEMORY_GB")?)?;
        s.add_hosts.push(AddHosts { site: f.site.to_string(), count, cores, memory_gb });
    }
    if let Some(tb) = f.add_storage_tb {
        s.add_storage.push(AddStorage { site: f.site.to_string(), tb });
    }
    if s == Scenario::default() {
        bail!("say what to change: --add-vms, --add-system, --lose-host, --add-hosts or --add-storage");
    }
    Ok(s)
}

/// `capacity whatif …`.
pub fn whatif(c: &Client, scenario: &Scenario, json_out: bool) -> Result<()> {
    let v = c.post("/api/v1/capacity/whatif", &json!(scenario))?;
    emit(json_out, &v, |v| {
        let rows = rows_of(&v["sites"], |r| {
            let res = s(&r["resource"]);
            let (b, a) = (&r["before"], &r["after"]);
            vec![
                s(&r["site"]),
                res.clone(),
                format!("{} → {}", percent(&b["used"], &b["capacity"]), percent(&a["used"], &a["capacity"])),
                format!("{} → {}", amount(&res, &b["capacity"]), amount(&res, &a["capacity"])),
                format!("{} → {}", days(&b["days_to_80"]), days(&a["days_to_80"])),
                format!("{} → {}", days(&b["days_to_100"]), days(&a["days_to_100"])),
            ]
        });
        let mut out = table(&["SITE", "RESOURCE", "USED%", "CAPACITY", "80% IN", "100% IN"], &rows);
        out.push_str("\nDR headroom before:\n");
        out.push_str(&groups_table(&v["headroom_before"]));
        out.push_str("\nDR headroom after:\n");
        out.push_str(&groups_table(&v["headroom_after"]));
        out
    });
    Ok(())
}

/// `capacity report --format F --lang L [--period 90d] [--out FILE]`.
pub fn report(c: &Client, format: &str, lang: &str, period_days: u64, out: Option<&Path>) -> Result<()> {
    let bytes = c.get_bytes(&format!(
        "/api/v1/capacity/report?format={}&lang={}&period_days={period_days}",
        urlencode(format),
        urlencode(lang)
    ))?;
    write_out(&bytes, out)
}

/// `capacity history SCOPE --resource R [--kind K] [--days N]`.
pub fn history(c: &Client, kind: &str, scope: &str, resource: &str, days: u64, json_out: bool) -> Result<()> {
    let v = c.get(&format!(
        "/api/v1/capacity/history?kind={}&scope={}&resource={}&days={days}",
        urlencode(kind),
        urlencode(scope),
        urlencode(resource)
    ))?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |p| {
            let day = p["day"].as_i64().map(|d| crate::app::rfc3339(d * 1000)[..10].to_string()).unwrap_or_default();
            vec![
                day,
                amount(resource, &p["used"]),
                amount(resource, &p["capacity"]),
                percent(&p["used"], &p["capacity"]),
            ]
        });
        table(&["DAY", "USED", "CAPACITY", "USED%"], &rows)
    });
    Ok(())
}

/// `capacity import FILE`: a JSON array of samples, sent in batches the API accepts.
pub fn import(c: &Client, file: &Path, json_out: bool) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let samples: Vec<crate::store::Sample> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a JSON array of capacity samples", file.display()))?;
    let total = import_samples(c, &samples)?;
    emit(json_out, &json!({"imported": total}), |_| format!("imported {total} samples from {}\n", file.display()));
    Ok(())
}

/// Sends samples in batches; returns how many the controller stored.
pub fn import_samples(c: &Client, samples: &[crate::store::Sample]) -> Result<u64> {
    let mut total = 0;
    for (i, batch) in samples.chunks(crate::api_capacity::MAX_IMPORT).enumerate() {
        let v = c
            .post("/api/v1/capacity/samples", &json!(batch))
            .with_context(|| format!("batch {} (samples from {})", i + 1, i * crate::api_capacity::MAX_IMPORT))?;
        total += v["imported"].as_u64().unwrap_or(0);
    }
    Ok(total)
}
