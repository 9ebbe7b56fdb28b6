//! The testbed's KSC simulator as `testbed up` and `testbed fault ksc` drive it: waiting for
//! the controller's first roll-up, and switching the simulator's faults.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::client::Client;

/// Waits until the controller has stored its first KSC roll-up; returns how many computers
/// it counted.
pub fn wait_rollup(admin: &Client, timeout: Duration) -> Result<u64> {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < timeout {
        match admin.get("/api/v1/endpoints/summary") {
            Ok(v) => {
                if let Some(n) = v["total"].as_u64() {
                    return Ok(n);
                }
            }
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("the controller has no KSC roll-up after {} s: {last}", timeout.as_secs())
}

/// `testbed fault ksc unreachable|error|malformed|session-ended|heal`.
pub fn fault(dir: &Path, kind: &str, json_out: bool) -> Result<()> {
    let dir = std::fs::canonicalize(dir).with_context(|| format!("no testbed at {}", dir.display()))?;
    let state = testbed::ksc::launch::state_dir(&dir);
    if !state.exists() {
        bail!("the testbed in {} runs no KSC simulator ({} is missing)", dir.display(), state.display());
    }
    let f = (kind != "heal").then_some(kind);
    testbed::ksc::set_fault(&state, f)?;
    let v = json!({"kind": "ksc", "fault": f});
    crate::cli::emit(json_out, &v, |_| match f {
        Some(k) => format!("the KSC simulator now answers {k}\n"),
        None => "the KSC simulator is healthy again\n".into(),
    });
    Ok(())
}
