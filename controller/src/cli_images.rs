//! `mangrove images refresh PLAN [--workload W]`: export the plan's `image` workloads from
//! vCenter, convert them to qcow2 and upload them to Glance (the previous image is replaced
//! once the new one is active). Waits for the work; exits 1 when a workload failed, with one
//! line per failure on stderr.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::cli::{emit, rows_of, s, table, urlencode};
use crate::client::Client;

/// How long the CLI waits for a refresh (a large disk takes long to export and upload).
const WAIT: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug, clap::Subcommand)]
pub enum ImagesCmd {
    /// Refresh the DR images of a plan's `image` workloads from vCenter (export, qemu-img to
    /// qcow2, Glance upload); the image's age is then the workload's RPO.
    Refresh {
        plan: String,
        /// Only this workload.
        #[arg(long)]
        workload: Option<String>,
    },
}

pub fn run(cmd: ImagesCmd, client: &Client, json_out: bool) -> Result<()> {
    match cmd {
        ImagesCmd::Refresh { plan, workload } => refresh(client, &plan, workload.as_deref(), json_out),
    }
}

fn refresh(c: &Client, plan: &str, workload: Option<&str>, json_out: bool) -> Result<()> {
    let path = format!("/api/v1/plans/{}/images/refresh", urlencode(plan));
    let out = c.post_long(&path, &json!({"workload": workload}), WAIT)?;
    let failed: Vec<String> = out["refreshed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| !r["error"].is_null())
        .map(|r| format!("{}: {}", s(&r["workload"]), s(&r["error"])))
        .collect();
    emit(json_out, &out["refreshed"], |v| {
        let rows = rows_of(v, |r| {
            vec![
                s(&r["workload"]),
                s(&r["image"]),
                s(&r["image_id"]),
                s(&r["exported_at"]),
                s(&r["replaced"].as_array().map_or(0, Vec::len).into()),
                if r["error"].is_null() { "ok".into() } else { "failed".into() },
            ]
        });
        table(&["WORKLOAD", "IMAGE", "IMAGE ID", "EXPORTED AT", "REPLACED", "RESULT"], &rows)
    });
    for f in &failed {
        eprintln!("error: image refresh of plan {plan}: {f}");
    }
    if !failed.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
