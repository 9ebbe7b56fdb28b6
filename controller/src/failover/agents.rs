//! The agents of DR instances: a one-time enrollment token handed to the instance at boot
//! (cloud-init user data), waiting for the agent to connect, and revoking it at clean-up.

use std::time::{Duration, Instant};

use super::exec::Ctx;
use crate::app::{App, Principal, Role, now_ms};

/// Where a recovered instance's restore lands: the restored paths appear under it
/// (`/var/lib/mangrove/recovered/srv/qlvbdh`), and the instance serves from there.
pub const RESTORE_TARGET: &str = "/var/lib/mangrove/recovered";

/// How long an instance's enrollment token lives: long enough for a slow boot.
const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The cloud-init user data that enrolls the instance's agent as `host` (a one-time token
/// whose host is the instance's name) and tells it which restored directory to serve.
pub async fn user_data(ctx: &Ctx<'_>, host: &str, system: &str) -> Result<String, String> {
    let by = Principal { user: ctx.run.started_by.clone(), role: Role::Operator };
    let token = ctx
        .app
        .create_token(&by, "agent", None, Some(host), Some(TOKEN_TTL))
        .await
        .map_err(|e| format!("no enrollment token for {host}: {e}"))?;
    let serve = ctx
        .app
        .backups
        .plans_of(system)
        .into_iter()
        .find_map(|p| p.paths.first().cloned())
        .map(|p| format!("{RESTORE_TARGET}{p}"));
    plugins::cloudinit::agent_user_data(&ctx.app.cfg.enroll_endpoint(), &token.token, serve.as_deref())
        .map_err(|e| format!("no user data for {host}: {e}"))
}

/// Whether `host`'s agent has enrolled and is connected now.
pub async fn is_connected(app: &App, host: &str) -> Result<bool, String> {
    let down_after = i64::try_from(app.cfg.liveness.down_after.0.as_millis()).unwrap_or(i64::MAX);
    Ok(app.store.get_host(host).await.map_err(|e| e.to_string())?.is_some_and(|h| {
        matches!(
            crate::hosts::state(h.enrolled_at.is_some(), h.last_seen, &h.problems, now_ms(), down_after),
            crate::hosts::HostState::Connected | crate::hosts::HostState::Degraded
        )
    }))
}

/// Waits until `host`'s agent has enrolled and is connected.
pub async fn wait_connected(app: &App, host: &str, timeout: Duration) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if is_connected(app, host).await? {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(format!("the agent of {host} did not connect within {} s", timeout.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Revokes a removed instance's agent: its certificate can no longer connect.
pub async fn forget(app: &App, host: &str) {
    if let Err(e) = app.store.revoke_host(host, now_ms()).await {
        tracing::warn!(host, error = %e, "could not revoke a removed DR instance's agent");
    }
}
