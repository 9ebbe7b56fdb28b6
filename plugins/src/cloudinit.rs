//! Cloud-init user data that enrolls a new instance's agent.

/// `#cloud-config` that writes the agent's enrollment settings (the controller's enrollment
/// address and a one-time token) into `/etc/mangrove/enroll.env` (mode 0600) and starts the
/// agent; `serve_dir`, when given, is the directory the instance's service serves.
pub fn agent_user_data(enroll: &str, token: &str, serve_dir: Option<&str>) -> String {
    let mut env = format!("      MANGROVE_ENROLL={enroll}\n      MANGROVE_AGENT_TOKEN={token}\n");
    if let Some(d) = serve_dir {
        env.push_str(&format!("      MANGROVE_SERVE_DIR={d}\n"));
    }
    format!(
        "#cloud-config\nwrite_files:\n  - path: /etc/mangrove/enroll.env\n    permissions: '0600'\n    content: |\n{env}runcmd:\n  - [systemctl, start, mangrove-agent]\n"
    )
}
