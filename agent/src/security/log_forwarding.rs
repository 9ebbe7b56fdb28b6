//! `log_forwarding`: whether logs leave the machine, from rsyslog's configuration (legacy
//! `@host`/`@@host:port` actions and RainerScript `action(type="omfwd" …)`) and
//! systemd-journal-upload.

use serde_json::{Value, json};

use super::Host;

const RSYSLOG_MAIN: &str = "/etc/rsyslog.conf";
const RSYSLOG_DIR: &str = "/etc/rsyslog.d";
const JOURNAL_UPLOAD: &str = "/etc/systemd/journal-upload.conf";
const JOURNAL_UPLOAD_DIR: &str = "/etc/systemd/journal-upload.conf.d";

/// The port rsyslog forwards to when none is given.
const DEFAULT_PORT: &str = "514";

pub fn collect(host: &Host) -> Result<Value, String> {
    let mut files = Vec::new();
    if let Some(text) = host.read(RSYSLOG_MAIN)? {
        files.push(text);
    }
    for path in host.list(RSYSLOG_DIR, ".conf") {
        if let Some(text) = host.read(&path)? {
            files.push(text);
        }
    }
    let mut targets: Vec<String> = files.iter().flat_map(|text| rsyslog_targets(text)).collect();
    targets.dedup();
    let rsyslog_running = host.running(&["rsyslogd"]);

    let mut upload_texts = Vec::new();
    if let Some(text) = host.read(JOURNAL_UPLOAD)? {
        upload_texts.push(text);
    }
    for path in host.list(JOURNAL_UPLOAD_DIR, ".conf") {
        if let Some(text) = host.read(&path)? {
            upload_texts.push(text);
        }
    }
    let upload_url = upload_texts.iter().filter_map(|text| journal_upload_url(text)).next_back();
    let upload_running = host.running(&["systemd-journal-upload"]);
    Ok(json!({
        "rsyslog_remote": !targets.is_empty(),
        "rsyslog_installed": !files.is_empty(),
        "rsyslog_running": rsyslog_running,
        "targets": targets,
        "journal_upload": upload_url.is_some() && upload_running,
        "journal_upload_url": upload_url,
    }))
}

/// The remote targets (`host:port`) an rsyslog configuration file forwards to.
pub fn rsyslog_targets(text: &str) -> Vec<String> {
    let uncommented: String = text
        .lines()
        .map(|line| if line.trim_start().starts_with('#') { "" } else { line })
        .collect::<Vec<_>>()
        .join("\n");
    let mut targets = Vec::new();
    // Legacy selector lines: "*.* @@(o)host:port;Template".
    for line in uncommented.lines() {
        let mut words = line.split_whitespace();
        let (Some(selector), Some(action)) = (words.next(), words.next()) else { continue };
        if selector.contains('.')
            && !selector.contains('(')
            && let Some(target) = legacy_target(action)
        {
            targets.push(target);
        }
    }
    // RainerScript actions, possibly over several lines.
    let mut rest = uncommented.as_str();
    while let Some(start) = rest.find("action(") {
        let body = &rest[start + "action(".len()..];
        let end = closing_paren(body).unwrap_or(body.len());
        let parameters = parameters(&body[..end]);
        let get = |name: &str| {
            parameters.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
        };
        if matches!(get("type").map(str::to_ascii_lowercase).as_deref(), Some("omfwd" | "omrelp"))
            && let Some(target) = get("target")
        {
            targets.push(format!("{}:{}", bracket(target), get("port").unwrap_or(DEFAULT_PORT)));
        }
        rest = &body[end..];
    }
    targets
}

/// `@host`, `@@host:port`, `@(z9)host`, `@[2001:db8::1]:514`, optionally `;Template`.
fn legacy_target(action: &str) -> Option<String> {
    let target = action.strip_prefix("@@").or_else(|| action.strip_prefix('@'))?;
    let target = match target.strip_prefix('(') {
        Some(options) => &options[options.find(')')? + 1..],
        None => target,
    };
    let target = target.split(';').next()?;
    if target.is_empty() {
        return None;
    }
    if let Some(v6) = target.strip_prefix('[') {
        let (address, after) = v6.split_once(']')?;
        let port = after.strip_prefix(':').filter(|port| !port.is_empty()).unwrap_or(DEFAULT_PORT);
        return Some(format!("[{address}]:{port}"));
    }
    match target.split_once(':') {
        Some((host, port)) if !port.is_empty() && !port.contains(':') => Some(format!("{host}:{port}")),
        _ => Some(format!("{target}:{DEFAULT_PORT}")),
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_owned() }
}

/// The index of the `)` closing an `action(`, skipping quoted strings.
fn closing_paren(body: &str) -> Option<usize> {
    let mut quoted = false;
    for (at, c) in body.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ')' if !quoted => return Some(at),
            _ => {}
        }
    }
    None
}

/// `name="value"` pairs of a RainerScript parameter list.
fn parameters(body: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = body;
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].split_whitespace().last().unwrap_or_default().to_owned();
        let after = rest[eq + 1..].trim_start();
        let Some(quoted) = after.strip_prefix('"') else {
            rest = after;
            continue;
        };
        let Some(close) = quoted.find('"') else { break };
        pairs.push((name, quoted[..close].to_owned()));
        rest = &quoted[close + 1..];
    }
    pairs
}

/// The `URL=` of journal-upload.conf's `[Upload]` section, if set.
pub fn journal_upload_url(text: &str) -> Option<String> {
    let mut in_upload = false;
    let mut url = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_upload = line == "[Upload]";
        } else if in_upload
            && !line.starts_with('#')
            && let Some(value) = line.strip_prefix("URL=")
        {
            url = (!value.trim().is_empty()).then(|| value.trim().to_owned());
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_forwarding_lines() {
        let text = "# Forward everything\n*.* @@10.0.0.5:514\nauth,authpriv.* @logs.example.vn\n\
                    #*.* @@commented.example:514\n*.* @(z9,o)10.0.0.6:1514;RSYSLOG_ForwardFormat\n\
                    *.* @[2001:db8::5]:6514\nmail.* -/var/log/mail.log\n";
        assert_eq!(
            rsyslog_targets(text),
            ["10.0.0.5:514", "logs.example.vn:514", "10.0.0.6:1514", "[2001:db8::5]:6514"]
        );
    }

    #[test]
    fn rainerscript_actions_over_several_lines() {
        let text = "module(load=\"imuxsock\")\n*.* action(type=\"omfwd\"\n       target=\"siem.example.vn\" port=\"6514\"\n       protocol=\"tcp\" StreamDriver=\"gtls\")\n\
                    action(type=\"omfile\" file=\"/var/log/all.log\")\n\
                    action(Type=\"omfwd\" Target=\"10.1.1.1\" Protocol=\"udp\")\n";
        assert_eq!(rsyslog_targets(text), ["siem.example.vn:6514", "10.1.1.1:514"]);
    }

    #[test]
    fn stock_debian_rsyslog_forwards_nothing() {
        let text = include_str!("../../tests/fixtures/security/parsers/rsyslog-debian12.conf");
        assert!(rsyslog_targets(text).is_empty());
    }

    #[test]
    fn malformed_config_does_not_panic() {
        assert!(rsyslog_targets("*.* @\n*.* @(unclosed\naction(type=\"omfwd\" target=\"x\n*.* @[::1\n").is_empty());
        assert_eq!(legacy_target("@@"), None);
    }

    #[test]
    fn journal_upload_url() {
        assert_eq!(
            super::journal_upload_url("[Upload]\n# URL=\nURL=https://logs.example.vn:19532\n").as_deref(),
            Some("https://logs.example.vn:19532")
        );
        assert_eq!(
            super::journal_upload_url("[Upload]\n#URL=\n#ServerKeyFile=/etc/ssl/private/journal-upload.pem\n"),
            None
        );
    }
}
