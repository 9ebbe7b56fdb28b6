//! `pam`: account lockout (pam_faillock, or the older pam_tally2), password quality
//! (pam_pwquality or pam_cracklib), password history and second factors (Google
//! Authenticator, U2F) from the PAM stacks.
//!
//! A module counts only if a stack uses it: a `faillock.conf` without `pam_faillock.so` in the
//! auth stack locks nobody out. Module arguments override the module's configuration file, as
//! the modules do; unset values take the module's documented default.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::Host;

/// The stacks read: Debian/Ubuntu's common-* files, RHEL's system-auth and password-auth, and
/// the services whose second factor matters.
const STACKS: &[&str] = &[
    "/etc/pam.d/common-auth",
    "/etc/pam.d/common-account",
    "/etc/pam.d/common-password",
    "/etc/pam.d/system-auth",
    "/etc/pam.d/password-auth",
    "/etc/pam.d/sshd",
    "/etc/pam.d/login",
    "/etc/pam.d/sudo",
];

const FAILLOCK_CONF: &str = "/etc/security/faillock.conf";
const PWQUALITY_CONF: &str = "/etc/security/pwquality.conf";
const PWQUALITY_DROPINS: &str = "/etc/security/pwquality.conf.d";

/// pam_faillock's defaults (faillock.conf(5)).
const FAILLOCK_DEFAULTS: &[(&str, i64)] = &[("deny", 3), ("unlock_time", 600), ("fail_interval", 900)];

/// pam_pwquality's defaults (pwquality.conf(5)); credits of 0 mean "no requirement".
const PWQUALITY_DEFAULTS: &[(&str, i64)] = &[
    ("minlen", 8),
    ("dcredit", 0),
    ("ucredit", 0),
    ("lcredit", 0),
    ("ocredit", 0),
    ("minclass", 0),
    ("maxrepeat", 0),
    ("maxclassrepeat", 0),
    ("maxsequence", 0),
    ("difok", 1),
    ("retry", 1),
    ("dictcheck", 1),
    ("usercheck", 1),
];

pub fn collect(host: &Host) -> Result<Value, String> {
    let mut stacks = Vec::new();
    for path in STACKS {
        if let Some(text) = host.read(path)? {
            stacks.push(((*path).to_owned(), text));
        }
    }
    if stacks.is_empty() {
        return Err("PAM is not configured (no common-auth, system-auth or sshd stack in /etc/pam.d)".to_owned());
    }
    let faillock = host.read(FAILLOCK_CONF)?;
    let mut pwquality = host.read(PWQUALITY_CONF)?.unwrap_or_default();
    for dropin in host.list(PWQUALITY_DROPINS, ".conf") {
        if let Some(text) = host.read(&dropin)? {
            pwquality.push('\n');
            pwquality.push_str(&text);
        }
    }
    Ok(summarize(&stacks, faillock.as_deref(), &pwquality))
}

/// One line of a PAM stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamLine {
    /// auth, account, password or session (a leading `-` removed).
    pub kind: String,
    pub control: String,
    /// The module's file name without directory, e.g. `pam_faillock.so`.
    pub module: String,
    pub args: Vec<String>,
}

/// Parses a PAM stack file. `@include` lines and lines that are not `type control module …`
/// are skipped (the stacks they include are read on their own).
pub fn parse_stack(text: &str) -> Vec<PamLine> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            if line.is_empty() || line.starts_with('@') {
                return None;
            }
            let (kind, rest) = line.split_once(char::is_whitespace)?;
            let rest = rest.trim_start();
            // A control may be "[success=1 default=ignore]", spaces included.
            let (control, rest) = if rest.starts_with('[') {
                let end = rest.find(']')?;
                (&rest[..=end], &rest[end + 1..])
            } else {
                rest.split_once(char::is_whitespace).unwrap_or((rest, ""))
            };
            let mut words = rest.split_whitespace();
            let module = words.next()?;
            Some(PamLine {
                kind: kind.trim_start_matches('-').to_ascii_lowercase(),
                control: control.to_owned(),
                module: module.rsplit('/').next().unwrap_or(module).to_owned(),
                args: words.map(str::to_owned).collect(),
            })
        })
        .filter(|line| ["auth", "account", "password", "session"].contains(&line.kind.as_str()))
        .collect()
}

/// Parses a `key = value` configuration file (faillock.conf, pwquality.conf); a bare word is a
/// flag, stored with an empty value. Later lines override earlier ones.
pub fn parse_conf(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .map(|line| match line.split_once('=') {
            Some((key, value)) => (key.trim().to_owned(), value.trim().to_owned()),
            None => (line.to_owned(), String::new()),
        })
        .collect()
}

/// Module arguments as settings: `key=value`, or a flag with an empty value.
fn args_map(args: &[String]) -> BTreeMap<String, String> {
    args.iter()
        .map(|arg| match arg.split_once('=') {
            Some((key, value)) => (key.to_owned(), value.to_owned()),
            None => (arg.clone(), String::new()),
        })
        .collect()
}

/// What the stacks (path and text) enforce, with faillock.conf and pwquality.conf (plus its
/// drop-ins) as read.
pub fn summarize(stacks: &[(String, String)], faillock_conf: Option<&str>, pwquality_conf: &str) -> Value {
    let lines: Vec<(&str, PamLine)> = stacks
        .iter()
        .flat_map(|(path, text)| parse_stack(text).into_iter().map(move |line| (path.as_str(), line)))
        .collect();
    let uses = |kind: &str, module: &str| -> Vec<&PamLine> {
        lines.iter().filter(|(_, line)| line.kind == kind && line.module == module).map(|(_, line)| line).collect()
    };
    let mut problems = Vec::new();

    let faillock = if !uses("auth", "pam_faillock.so").is_empty() {
        let mut settings = parse_conf(faillock_conf.unwrap_or_default());
        for line in uses("auth", "pam_faillock.so") {
            settings.extend(args_map(&line.args));
        }
        let mut map = numbers(&settings, FAILLOCK_DEFAULTS, "pam_faillock", &mut problems);
        map.insert("module".to_owned(), json!("pam_faillock"));
        map.insert("even_deny_root".to_owned(), json!(settings.contains_key("even_deny_root")));
        Value::Object(map)
    } else if let Some(line) = uses("auth", "pam_tally2.so").into_iter().chain(uses("account", "pam_tally2.so")).next()
    {
        let settings = args_map(&line.args);
        // pam_tally2 has no default limit: without deny= it only counts.
        let mut map = numbers(&settings, &[("deny", 0), ("unlock_time", 0)], "pam_tally2", &mut problems);
        map.insert("module".to_owned(), json!("pam_tally2"));
        map.insert("even_deny_root".to_owned(), json!(settings.contains_key("even_deny_root")));
        Value::Object(map)
    } else {
        Value::Null
    };

    let quality_module =
        ["pam_pwquality.so", "pam_cracklib.so"].into_iter().find(|module| !uses("password", module).is_empty());
    let pwquality = match quality_module {
        Some(module) => {
            // pam_cracklib does not read pwquality.conf.
            let mut settings = if module == "pam_pwquality.so" { parse_conf(pwquality_conf) } else { BTreeMap::new() };
            for line in uses("password", module) {
                settings.extend(args_map(&line.args));
            }
            let name = module.trim_end_matches(".so");
            let mut map = numbers(&settings, PWQUALITY_DEFAULTS, name, &mut problems);
            if module == "pam_cracklib.so" {
                map.insert(
                    "minlen".to_owned(),
                    json!(settings.get("minlen").and_then(|v| v.parse::<i64>().ok()).unwrap_or(9)),
                );
            }
            map.insert("module".to_owned(), json!(name));
            map.insert("enforce_for_root".to_owned(), json!(settings.contains_key("enforce_for_root")));
            Value::Object(map)
        }
        None => Value::Null,
    };

    // remember=N on pam_pwhistory or pam_unix keeps the last N passwords.
    let history = ["pam_pwhistory.so", "pam_unix.so"]
        .into_iter()
        .flat_map(|module| uses("password", module))
        .filter_map(|line| args_map(&line.args).get("remember").and_then(|n| n.parse::<i64>().ok()))
        .max();

    let anywhere = |module: &str| lines.iter().any(|(_, line)| line.module == module);
    let mut map = Map::new();
    map.insert("faillock".to_owned(), faillock);
    map.insert("pwquality".to_owned(), pwquality);
    map.insert("password_history".to_owned(), json!(history));
    map.insert("pam_google_authenticator".to_owned(), json!(anywhere("pam_google_authenticator.so")));
    map.insert("pam_u2f".to_owned(), json!(anywhere("pam_u2f.so")));
    map.insert("stacks".to_owned(), json!(stacks.iter().map(|(path, _)| path).collect::<Vec<_>>()));
    if !problems.is_empty() {
        map.insert("problems".to_owned(), json!(problems));
    }
    Value::Object(map)
}

/// The numeric settings named in `defaults`, from `settings` or the default; a value that is
/// not a number is a problem and falls back to the default, as the modules do.
fn numbers(
    settings: &BTreeMap<String, String>,
    defaults: &[(&str, i64)],
    module: &str,
    problems: &mut Vec<String>,
) -> Map<String, Value> {
    defaults
        .iter()
        .map(|&(name, default)| {
            let value = match settings.get(name) {
                Some(text) => text.parse::<i64>().unwrap_or_else(|_| {
                    problems.push(format!("{module}: {name} is not a number: {text:?}"));
                    default
                }),
                None => default,
            };
            (name.to_owned(), json!(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/security/root");

    fn fixture(path: &str) -> String {
        std::fs::read_to_string(format!("{ROOT}{path}")).expect("fixture exists")
    }

    #[test]
    fn debian_common_auth_with_faillock_and_pwquality() {
        let stacks = vec![
            ("/etc/pam.d/common-auth".to_owned(), fixture("/etc/pam.d/common-auth")),
            ("/etc/pam.d/common-password".to_owned(), fixture("/etc/pam.d/common-password")),
            ("/etc/pam.d/sshd".to_owned(), fixture("/etc/pam.d/sshd")),
        ];
        let pam =
            summarize(&stacks, Some(&fixture("/etc/security/faillock.conf")), &fixture("/etc/security/pwquality.conf"));
        assert_eq!(pam["faillock"]["module"], "pam_faillock");
        assert_eq!(pam["faillock"]["deny"], 5, "from faillock.conf");
        assert_eq!(pam["faillock"]["unlock_time"], 900, "the module argument beats faillock.conf");
        assert_eq!(pam["faillock"]["fail_interval"], 900, "default");
        assert_eq!(pam["faillock"]["even_deny_root"], true);
        assert_eq!(pam["pwquality"]["minlen"], 12);
        assert_eq!(pam["pwquality"]["dcredit"], -1);
        assert_eq!(pam["pwquality"]["ucredit"], -1);
        assert_eq!(pam["pwquality"]["retry"], 3, "argument on the pam line");
        assert_eq!(pam["pwquality"]["enforce_for_root"], true);
        assert_eq!(pam["password_history"], 5);
        assert_eq!(pam["pam_google_authenticator"], true);
        assert_eq!(pam["pam_u2f"], false);
    }

    #[test]
    fn stock_debian_stacks_have_neither_lockout_nor_quality() {
        let stock = "auth\t[success=1 default=ignore]\tpam_unix.so nullok\nauth\trequisite\t\t\tpam_deny.so\n\
                     auth\trequired\t\t\tpam_permit.so\n";
        let password = "password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt\n";
        let stacks = vec![("a".to_owned(), stock.to_owned()), ("b".to_owned(), password.to_owned())];
        // A faillock.conf on its own does not lock anybody out.
        let pam = summarize(&stacks, Some("deny = 3\n"), "minlen = 14\n");
        assert_eq!(pam["faillock"], Value::Null);
        assert_eq!(pam["pwquality"], Value::Null);
        assert_eq!(pam["password_history"], Value::Null);
    }

    #[test]
    fn control_fields_with_spaces_and_optional_modules_parse() {
        let lines = parse_stack(
            "-auth [default=die success=ok] /lib/security/pam_faillock.so authfail deny=4\n@include common-auth\n",
        );
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].kind, "auth");
        assert_eq!(lines[0].control, "[default=die success=ok]");
        assert_eq!(lines[0].module, "pam_faillock.so");
        assert_eq!(lines[0].args, ["authfail", "deny=4"]);
    }

    #[test]
    fn malformed_stacks_and_values_do_not_panic() {
        assert!(parse_stack("auth [unterminated pam_x.so\nauth\nfoo bar baz\n\u{0}").is_empty());
        let stacks = vec![("s".to_owned(), "auth required pam_faillock.so deny=lots\n".to_owned())];
        let pam = summarize(&stacks, None, "");
        assert_eq!(pam["faillock"]["deny"], 3);
        assert_eq!(pam["problems"][0], "pam_faillock: deny is not a number: \"lots\"");
    }
}
