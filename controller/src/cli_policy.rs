//! `mangrove policy packs|show|lint|test`: the policy packs shipped in this binary, and checks
//! of pack directories (a custom pack, or a copy of a shipped one) before they are used.
//! These read packs locally; they need no controller.

use std::path::Path;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::cli::{emit, s, table};

pub fn packs(json_out: bool) -> Result<()> {
    let packs = policies::shipped()?;
    let v = Value::Array(
        packs
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "framework": p.framework,
                    "version": p.version,
                    "title_vi": p.title_vi,
                    "title_en": p.title_en,
                    "controls": p.controls.len(),
                })
            })
            .collect(),
    );
    emit(json_out, &v, |v| {
        let rows: Vec<Vec<String>> = v
            .as_array()
            .map(|a| {
                a.iter().map(|p| vec![s(&p["name"]), s(&p["controls"]), s(&p["version"]), s(&p["title_vi"])]).collect()
            })
            .unwrap_or_default();
        table(&["PACK", "CONTROLS", "VERSION", "TITLE"], &rows)
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
