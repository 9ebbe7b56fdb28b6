//! `mangrove plans …`: recovery plans — apply a file, list, show, and diff versions.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};

use crate::cli::{emit, rows_of, s, table};
use crate::client::Client;

#[derive(Debug, clap::Subcommand)]
pub enum PlansCmd {
    /// Check a recovery plan file against the inventory and the DR site, and store it as the
    /// plan's next version (nothing changes when the text is the same as the newest one).
    Apply { file: PathBuf },
    /// Every plan: its newest version, who applied it and when, its priority groups.
    List,
    /// One plan: its groups and its text (`--version N` for an older one).
    Show {
        name: String,
        #[arg(long)]
        version: Option<i64>,
    },
    /// What changes: a file against the stored plan, or two stored versions (by default the
    /// newest against the one before). Exits 1 when they differ, like `diff`.
    Diff {
        name: String,
        /// A plan file to compare with the stored version.
        file: Option<PathBuf>,
        /// The stored version to compare from (default: the newest with FILE, else the one
        /// before the newest).
        #[arg(long)]
        from: Option<i64>,
        /// The stored version to compare to (not with FILE; default: the newest).
        #[arg(long, conflicts_with = "file")]
        to: Option<i64>,
    },
}

pub fn run(cmd: PlansCmd, client: &Client, json_out: bool) -> Result<()> {
    match cmd {
        PlansCmd::Apply { file } => apply(client, &file, json_out),
        PlansCmd::List => list(client, json_out),
        PlansCmd::Show { name, version } => show(client, &name, version, json_out),
        PlansCmd::Diff { name, file, from, to } => diff(client, &name, file.as_deref(), from, to, json_out),
    }
}

fn read_plan_file(file: &Path) -> Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    String::from_utf8(bytes)
        .map_err(|e| anyhow!("{}: not UTF-8 text (at byte {})", file.display(), e.utf8_error().valid_up_to()))
}

fn groups_line(groups: &Value) -> String {
    groups
        .as_array()
        .map(|gs| {
            gs.iter()
                .map(|g| {
                    let names: Vec<String> =
                        g["systems"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
                    format!("P{}: {}", s(&g["priority"]), names.join(", "))
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

fn apply(c: &Client, file: &Path, json_out: bool) -> Result<()> {
    let text = read_plan_file(file)?;
    let out = c.post("/api/v1/plans", &json!({"file": file.display().to_string(), "text": text}))?;
    for w in out["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", s(w));
    }
    emit(json_out, &out, |v| {
        let what = if v["unchanged"] == json!(true) { "unchanged" } else { "applied" };
        format!("{what}: {} v{} ({})\n", s(&v["name"]), s(&v["version"]), groups_line(&v["groups"]))
    });
    Ok(())
}

fn list(c: &Client, json_out: bool) -> Result<()> {
    let out = c.get("/api/v1/plans")?;
    emit(json_out, &out, |v| {
        let rows = rows_of(v, |p| {
            vec![
                s(&p["name"]),
                format!("v{}", s(&p["version"])),
                s(&p["systems"]),
                s(&p["applied_by"]),
                s(&p["applied_at"]),
                if p["problem"].is_null() { groups_line(&p["groups"]) } else { s(&p["problem"]) },
            ]
        });
        table(&["PLAN", "VERSION", "SYSTEMS", "APPLIED BY", "APPLIED AT", "GROUPS"], &rows)
    });
    Ok(())
}

fn fetch(c: &Client, name: &str, version: Option<i64>) -> Result<Value> {
    let q = version.map(|v| format!("?version={v}")).unwrap_or_default();
    c.get(&format!("/api/v1/plans/{}{q}", crate::cli::urlencode(name)))
}

fn show(c: &Client, name: &str, version: Option<i64>, json_out: bool) -> Result<()> {
    let out = fetch(c, name, version)?;
    emit(json_out, &out, |v| {
        format!(
            "plan {} v{} applied by {} at {} from {}\ngroups: {}\n\n{}",
            s(&v["name"]),
            s(&v["version"]),
            s(&v["applied_by"]),
            s(&v["applied_at"]),
            s(&v["origin"]),
            groups_line(&v["groups"]),
            s(&v["text"])
        )
    });
    Ok(())
}

fn diff(c: &Client, name: &str, file: Option<&Path>, from: Option<i64>, to: Option<i64>, json_out: bool) -> Result<()> {
    let (old, new, old_label, new_label) = match file {
        Some(f) => {
            let stored = fetch(c, name, from)?;
            let label = format!("{name} v{}", s(&stored["version"]));
            (s(&stored["text"]), read_plan_file(f)?, label, f.display().to_string())
        }
        None => {
            let newer = fetch(c, name, to)?;
            let newer_v = newer["version"].as_i64().unwrap_or(1);
            let older_v = from.unwrap_or(newer_v - 1);
            if older_v < 1 {
                anyhow::bail!("plan {name} has only version {newer_v}: give a FILE to compare with it");
            }
            let older = fetch(c, name, Some(older_v))?;
            (s(&older["text"]), s(&newer["text"]), format!("{name} v{older_v}"), format!("{name} v{newer_v}"))
        }
    };
    let text_diff = similar::TextDiff::from_lines(&old, &new);
    let unified = text_diff.unified_diff().context_radius(3).header(&old_label, &new_label).to_string();
    let differ = !unified.is_empty();
    let out = json!({"from": old_label, "to": new_label, "differ": differ, "diff": unified});
    emit(json_out, &out, |v| {
        if differ { s(&v["diff"]) } else { format!("no differences between {old_label} and {new_label}\n") }
    });
    if differ {
        std::process::exit(1);
    }
    Ok(())
}
