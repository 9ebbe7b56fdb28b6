//! `mangrove policy packs|show|lint|test`: the policy packs a controller evaluates (shipped and
//! custom), and checks of pack directories (a custom pack, or a copy of a shipped one) before
//! they are used. `show`, `lint` and `test` read packs locally and need no controller.

use std::path::Path;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::cli::{emit, rows_of, s, table};
use crate::client::Client;

/// A pack as `policy packs --json` shows it.
pub fn pack_json(p: &policies::Pack, source: Option<&str>) -> Value {
    json!({
        "name": p.name,
        "framework": p.framework,
        "version": p.version,
        "title_vi": p.title_vi,
        "title_en": p.title_en,
        "controls": p.controls.len(),
        "source": source,
    })
}

/// `policy packs`: from the controller (shipped and custom packs), or without one, the packs
/// shipped in this binary.
pub fn packs(c: Option<&Client>, json_out: bool) -> Result<()> {
    let v = match c {
        Some(c) => c.get("/api/v1/policy/packs")?,
        None => {
            eprintln!("no controller configured: the packs shipped in this binary (custom packs live on a controller)");
            Value::Array(policies::shipped()?.iter().map(|p| pack_json(p, Some("shipped"))).collect())
        }
    };
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |p| {
            vec![s(&p["name"]), s(&p["controls"]), s(&p["version"]), s(&p["source"]), s(&p["title_vi"])]
        });
        table(&["PACK", "CONTROLS", "VERSION", "SOURCE", "TITLE"], &rows)
    });
    Ok(())
}

/// `policy show CONTROL` or `PACK/CONTROL`: the control's metadata, in every shipped pack that
/// has it unless a pack is named.
pub fn show(control: &str, json_out: bool) -> Result<()> {
    let (pack, id) = match control.split_once('/') {
        Some((p, c)) => (Some(p), c),
        None => (None, control),
    };
    let packs = policies::shipped()?;
    let found: Vec<Value> = packs
        .iter()
        .filter(|p| pack.is_none_or(|name| p.name == name))
        .filter_map(|p| {
            p.control(id).map(|c| {
                let mut v = json!(c.meta);
                v["pack"] = json!(p.name);
                v["framework"] = json!(p.framework);
                v
            })
        })
        .collect();
    if found.is_empty() {
        bail!("no control {control} in the shipped packs (see `mangrove policy packs`)");
    }
    let v = Value::Array(found);
    emit(json_out, &v, |v| {
        let mut out = String::new();
        for c in v.as_array().cloned().unwrap_or_default() {
            for (k, val) in [
                ("pack", s(&c["pack"])),
                ("id", s(&c["id"])),
                ("title", s(&c["title_vi"])),
                ("title (en)", s(&c["title_en"])),
                ("clause", s(&c["clause"])),
                ("levels", s(&c["levels"])),
                ("severity", s(&c["severity"])),
                ("kind", s(&c["kind"])),
                ("facts", s(&c["facts"])),
                ("params", s(&c["params"])),
                ("remediation", s(&c["remediation"]["text_vi"])),
                ("safe", s(&c["remediation"]["safe"])),
                ("source", s(&c["source"])),
            ] {
                out.push_str(&format!("{k:<12}{val}\n"));
            }
            out.push('\n');
        }
        out
    });
    Ok(())
}

/// `policy lint DIR`: metadata and Rego checked; one `file:line:column: message` per problem.
pub fn lint(dir: &Path, json_out: bool) -> Result<()> {
    if !dir.is_dir() {
        bail!("{}: not a pack directory", dir.display());
    }
    let diags = policies::lint(dir);
    let v = Value::Array(
        diags
            .iter()
            .map(|d| json!({"file": d.file.display().to_string(), "line": d.line, "column": d.column, "message": d.message}))
            .collect(),
    );
    emit(json_out, &v, |_| diags.iter().map(|d| format!("{d}\n")).collect());
    if !diags.is_empty() {
        bail!("{}: {} problem(s)", dir.display(), diags.len());
    }
    if !json_out {
        eprintln!("{}: no problems", dir.display());
    }
    Ok(())
}

/// `policy test DIR`: every control's Rego unit tests.
pub fn test(dir: &Path, json_out: bool) -> Result<()> {
    let report = policies::run_tests_dir(dir)?;
    let v = json!({
        "passed": report.passed.len(),
        "failed": report.failed.iter().map(|(id, why)| json!({"test": id.to_string(), "message": why})).collect::<Vec<_>>(),
    });
    emit(json_out, &v, |_| {
        let mut out: String = report.failed.iter().map(|(id, why)| format!("FAIL {id}: {why}\n")).collect();
        out.push_str(&format!("{} passed, {} failed\n", report.passed.len(), report.failed.len()));
        out
    });
    if !report.is_success() {
        bail!("{}: {} test(s) failed", dir.display(), report.failed.len());
    }
    Ok(())
}

/// `policy assign PACK --system S|--level N [--mode audit|enforce] [--dry-run]`.
pub fn assign(
    c: &crate::client::Client,
    pack: &str,
    system: Option<&str>,
    level: Option<u8>,
    mode: &str,
    dry_run: bool,
    json_out: bool,
) -> Result<()> {
    let v = c.post_long(
        "/api/v1/policy/assignments",
        &json!({"pack": pack, "system": system, "level": level, "mode": mode, "dry_run": dry_run}),
        std::time::Duration::from_secs(300),
    )?;
    emit(json_out, &v, |v| {
        if v["dry_run"] == json!(true) {
            let rems = v["remediations"].as_array().cloned().unwrap_or_default();
            let mut out = format!("dry run: nothing changed; enforce would run {} task(s) now\n", rems.len());
            for r in rems {
                if r["ansible"].is_array() {
                    // An Ansible remediation: what check mode on the host said it would change.
                    let c = &r["check"];
                    let what = if c["error"].is_string() {
                        format!("check mode failed: {}", s(&c["error"]))
                    } else {
                        let tasks: Vec<String> = c["tasks"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|t| format!("{} ({})", s(&t["task"]), s(&t["status"])))
                            .collect();
                        format!(
                            "ansible, check mode: {} changed, {} failed: {}",
                            s(&c["changed"]),
                            s(&c["failed"]),
                            tasks.join(", ")
                        )
                    };
                    out.push_str(&format!("  {} {}: {what}\n", s(&r["host"]), s(&r["control"])));
                    continue;
                }
                out.push_str(&format!(
                    "  {} {}: {} {}\n",
                    s(&r["host"]),
                    s(&r["control"]),
                    s(&r["program"]),
                    s(&r["args"])
                ));
            }
            return out;
        }
        let a = &v["assignment"];
        format!(
            "{} {} to {} {} in {} mode ({} hosts)\n",
            if v["new"] == json!(true) { "assigned" } else { "changed" },
            s(&a["pack"]),
            s(&a["scope"]),
            s(&a["target"]),
            s(&a["mode"]),
            v["hosts"].as_array().map_or(0, Vec::len)
        )
    });
    Ok(())
}

/// `policy waive CONTROL --host H|--system S --until DATE --reason TEXT`.
pub fn waive(
    c: &crate::client::Client,
    control: &str,
    host: Option<&str>,
    system: Option<&str>,
    until: &str,
    reason: &str,
    json_out: bool,
) -> Result<()> {
    let v = c.post_long(
        "/api/v1/policy/waivers",
        &json!({"control": control, "host": host, "system": system, "until": until, "reason": reason}),
        std::time::Duration::from_secs(120),
    )?;
    emit(json_out, &v, |v| {
        let mut out = format!("waived {} until {}\n", s(&v["waiver"]["control"]), s(&v["until"]));
        if v["already_expired"] == json!(true) {
            out.push_str("note: that time has passed, so the waiver hides nothing\n");
        }
        out
    });
    Ok(())
}

/// `policy evaluate [--host H|--system S]`: returns when the evaluation is done.
pub fn evaluate(c: &crate::client::Client, host: Option<&str>, system: Option<&str>, json_out: bool) -> Result<()> {
    let v = c.post_long(
        "/api/v1/policy/evaluate",
        &json!({"host": host, "system": system}),
        std::time::Duration::from_secs(300),
    )?;
    emit(json_out, &v, |v| {
        let rows = rows_of(&v["hosts"], |h| {
            vec![
                s(&h["host"]),
                s(&h["level"]),
                h["packs"].as_array().map(|p| p.iter().map(s).collect::<Vec<_>>().join(",")).unwrap_or_default(),
                s(&h["findings"]),
                s(&h["failing"]),
                h["remediations"].as_array().map_or(0, Vec::len).to_string(),
            ]
        });
        table(&["HOST", "LEVEL", "PACKS", "FINDINGS", "FAILING", "REMEDIATIONS"], &rows)
    });
    Ok(())
}

/// `policy findings [--host H] [--system S] [--status S]`.
pub fn findings(
    c: &crate::client::Client,
    host: Option<&str>,
    system: Option<&str>,
    status: Option<&str>,
    json_out: bool,
) -> Result<()> {
    let mut q = Vec::new();
    for (k, v) in [("host", host), ("system", system), ("status", status)] {
        if let Some(v) = v {
            q.push(format!("{k}={}", crate::cli::urlencode(v)));
        }
    }
    let path = if q.is_empty() {
        "/api/v1/policy/findings".into()
    } else {
        format!("/api/v1/policy/findings?{}", q.join("&"))
    };
    let v = c.get(&path)?;
    emit(json_out, &v, |v| {
        let rows =
            rows_of(v, |f| vec![s(&f["host"]), s(&f["control"]), s(&f["status"]), s(&f["since"]), s(&f["message"])]);
        table(&["HOST", "CONTROL", "STATUS", "SINCE", "MESSAGE"], &rows)
    });
    Ok(())
}

/// `policy history HOST CONTROL`: when the control started failing there, when it was fixed,
/// and by what.
pub fn history(c: &crate::client::Client, host: &str, control: &str, json_out: bool) -> Result<()> {
    let v = c.get(&format!(
        "/api/v1/policy/history?host={}&control={}",
        crate::cli::urlencode(host),
        crate::cli::urlencode(control)
    ))?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |h| vec![s(&h["at"]), s(&h["status"]), s(&h["cause"])]);
        table(&["AT", "STATUS", "CAUSE"], &rows)
    });
    Ok(())
}

/// `compliance report [--system S] [--framework F] --format html|json|csv --lang vi|en [--out FILE]`.
pub fn compliance_report(
    c: &crate::client::Client,
    system: Option<&str>,
    framework: Option<&str>,
    format: &str,
    lang: &str,
    out: Option<&Path>,
) -> Result<()> {
    let mut q =
        vec![format!("format={}", crate::cli::urlencode(format)), format!("lang={}", crate::cli::urlencode(lang))];
    if let Some(s) = system {
        q.push(format!("system={}", crate::cli::urlencode(s)));
    }
    if let Some(f) = framework {
        q.push(format!("framework={}", crate::cli::urlencode(f)));
    }
    let bytes = c.get_bytes(&format!("/api/v1/compliance/report?{}", q.join("&")))?;
    crate::cli::write_out(&bytes, out)
}

/// `compliance evidence --system S --out FILE.zip`.
pub fn compliance_evidence(c: &crate::client::Client, system: &str, out: &Path) -> Result<()> {
    let bytes = c.get_bytes(&format!("/api/v1/compliance/evidence?system={}", crate::cli::urlencode(system)))?;
    crate::cli::write_out(&bytes, Some(out))
}

/// `compliance scores`: the score by system, by level and by site.
pub fn compliance_scores(c: &crate::client::Client, json_out: bool) -> Result<()> {
    let v = c.get("/api/v1/compliance/scores")?;
    emit(json_out, &v, |v| {
        let mut rows: Vec<Vec<String>> = Vec::new();
        for (group, key) in [("systems", "system"), ("levels", "level"), ("sites", "site")] {
            for g in v[group].as_array().cloned().unwrap_or_default() {
                rows.push(vec![key.to_string(), s(&g[key]), s(&g["score"])]);
            }
        }
        table(&["BY", "WHICH", "SCORE"], &rows)
    });
    Ok(())
}

/// `systems list`: each information system with its level, framework, owner, hosts and score.
pub fn systems_list(c: &crate::client::Client, json_out: bool) -> Result<()> {
    let v = c.get("/api/v1/systems")?;
    emit(json_out, &v, |v| {
        let rows = rows_of(v, |sys| {
            let hosts = sys["hosts"].as_array().map(|h| h.iter().map(s).collect::<Vec<_>>().join(", "));
            vec![
                s(&sys["name"]),
                s(&sys["level"]),
                s(&sys["framework"]),
                s(&sys["owner"]),
                s(&sys["score"]),
                hosts.unwrap_or_default(),
            ]
        });
        table(&["NAME", "LEVEL", "FRAMEWORK", "OWNER", "SCORE", "HOSTS"], &rows)
    });
    Ok(())
}
